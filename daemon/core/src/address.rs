//! Addresses people type: e-mail addresses and phone numbers.
//!
//! Phone numbers have one canonical form, `hotline_ivr::number` (`06…` → `+36…`,
//! `00…` → `+…`). Visual-session invitations go by SMS to Hungarian mobiles only (seed
//! 000: "+36… or 06…"): that is a check on the canonical form here. A mobile number is
//! +36, a network code (20, 30, 31, 50, 70) and 7 digits. The forms accepted are
//! `+36 30 616 7347`, `+36306167347`, `06306167347`, `06 20 7737884` and
//! `0036 30 616 7347`, with spaces, dashes, dots, parentheses or slashes anywhere between
//! the digits. Landlines, service numbers and foreign numbers are refused.

use hotline_ivr::number;

/// A phone number as people type it, in the one canonical form (`hotline_ivr::number`):
/// what the callback list, tasks and flows all store and compare.
pub use hotline_ivr::number::{NumberError, normalize as phone_number};

/// Shown with every refusal, so the operator sees what to type instead.
pub const ACCEPTED_FORMS: &str = "enter a Hungarian mobile number such as +36 30 616 7347, \
     +36306167347, 06306167347, 06 20 773 7884 or 0036 30 616 7347 (networks 20, 30, 31, \
     50, 70; spaces, dashes, dots, slashes and parentheses may separate the digits)";

/// Mobile network codes that follow +36 / 06.
pub const MOBILE_NETWORKS: [&str; 5] = ["20", "30", "31", "50", "70"];

/// Digits after +36 / 06: the network code and the subscriber's 7 digits.
const NATIONAL_DIGITS: usize = 9;

/// Longer input is not a phone number, whatever it holds.
const MAX_INPUT_CHARS: usize = 40;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty: {ACCEPTED_FORMS}")]
    Empty,
    #[error("a phone number can't contain {0:?}: {ACCEPTED_FORMS}")]
    InvalidCharacter(char),
    #[error("only Hungarian numbers (+36, 06 or 0036) are accepted: {ACCEPTED_FORMS}")]
    Foreign,
    #[error("start the number with +36 or 06: {ACCEPTED_FORMS}")]
    MissingPrefix,
    #[error("06 {prefix}… is a landline or service number, not a mobile: {ACCEPTED_FORMS}")]
    NotMobile { prefix: String },
    #[error(
        "the number is too short: {digits} digits after +36 / 06, a mobile number has 9 \
         (network code and 7 digits): {ACCEPTED_FORMS}"
    )]
    TooShort { digits: usize },
    #[error(
        "the number is too long: {digits} digits after +36 / 06, a mobile number has 9 \
         (network code and 7 digits): {ACCEPTED_FORMS}"
    )]
    TooLong { digits: usize },
}

/// Parses a Hungarian mobile number typed in any of the accepted forms into E.164.
pub fn parse_hu_mobile(input: &str) -> Result<String, PhoneError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(PhoneError::Empty);
    }
    if let Some((end, _)) = input.char_indices().nth(MAX_INPUT_CHARS) {
        let digits = input[..end].chars().filter(char::is_ascii_digit).count();
        return Err(PhoneError::TooLong { digits });
    }
    // The one canonical form; the digit count is checked below, for mobiles.
    let canonical = number::canonical_form(input).map_err(|e| {
        input
            .chars()
            .nth(e.index)
            .map_or(PhoneError::Empty, PhoneError::InvalidCharacter)
    })?;
    let national = match canonical.strip_prefix("+36") {
        Some(national) => national,
        None if canonical.starts_with('+') => return Err(PhoneError::Foreign),
        None if canonical.is_empty() => return Err(PhoneError::Empty),
        None if canonical.len() < 2 => return Err(PhoneError::TooShort { digits: 0 }),
        None => return Err(PhoneError::MissingPrefix),
    };
    // Budapest's area code is the one with a single digit.
    if national.starts_with('1') {
        return Err(PhoneError::NotMobile { prefix: "1".into() });
    }
    if national.len() < 2 {
        return Err(PhoneError::TooShort {
            digits: national.len(),
        });
    }
    let network = &national[..2];
    if !MOBILE_NETWORKS.contains(&network) {
        return Err(PhoneError::NotMobile {
            prefix: network.to_string(),
        });
    }
    match national.len() {
        NATIONAL_DIGITS => Ok(canonical),
        n if n < NATIONAL_DIGITS => Err(PhoneError::TooShort { digits: n }),
        n => Err(PhoneError::TooLong { digits: n }),
    }
}

/// The longest e-mail address accepted (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Why an e-mail address is refused; the message says what to enter instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the e-mail address {0}: enter one like name@example.com")]
pub struct EmailError(String);

/// Checks an e-mail address the way a form should: one `@`, a dot in the domain, no
/// spaces. Returns it trimmed, with the domain in lower case.
pub fn validate_email(input: &str) -> Result<String, EmailError> {
    let bad = |why: &str| Err(EmailError(why.to_string()));
    let v = input.trim();
    if v.is_empty() {
        return bad("is empty");
    }
    if v.chars().count() > MAX_EMAIL_CHARS {
        return bad(&format!("is longer than {MAX_EMAIL_CHARS} characters"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains spaces");
    }
    if let Some(c) = v.chars().find(|c| "<>()[]\\,;:\"".contains(*c)) {
        return bad(&format!("can't contain {c:?}"));
    }
    let Some((local, domain)) = v.split_once('@') else {
        return bad("has no @");
    };
    if domain.contains('@') {
        return bad("has more than one @");
    }
    if local.is_empty() || local.len() > 64 {
        return bad("needs 1–64 characters before the @");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return bad("needs a dot in the part after the @");
    }
    if labels
        .iter()
        .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return bad("has a misplaced dot or dash after the @");
    }
    if labels.last().is_some_and(|tld| tld.chars().count() < 2) {
        return bad("ends in a one-letter domain");
    }
    let address = format!("{local}@{}", domain.to_lowercase());
    // What the mailer will parse: an address it refuses is refused here, not at sending.
    match address.parse::<lettre::Address>() {
        Ok(_) => Ok(address),
        Err(_) => bad("is not a valid address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses() {
        for (input, want) in [
            ("anna@example.com", "anna@example.com"),
            (
                "  Anna.Kovacs+kar@Example.HU ",
                "Anna.Kovacs+kar@example.hu",
            ),
            ("a@b.co", "a@b.co"),
            ("x@mail.example-site.hu", "x@mail.example-site.hu"),
        ] {
            assert_eq!(validate_email(input).ok().as_deref(), Some(want), "{input}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        for input in [
            "",
            "anna",
            "anna@",
            "@example.com",
            "anna@example",
            "anna@@example.com",
            "anna@x@example.com",
            "anna kovacs@example.com",
            "anna@exa mple.com",
            "anna@.example.com",
            "anna@example..com",
            "anna@example.com.",
            "anna@example.c",
            "anna@-example.com",
            "<anna@example.com>",
            "anna@example.com, bela@example.com",
            "anna@example.com\n",
            long.as_str(),
        ] {
            if input == "anna@example.com\n" {
                // Trimmed: a trailing line break from a paste is fine.
                assert!(validate_email(input).is_ok());
                continue;
            }
            assert!(
                matches!(validate_email(input), Err(EmailError(_))),
                "{input:?}"
            );
        }
    }

    #[test]
    fn accepts_the_seed_forms() {
        // The seed's examples (manual 000), except `+3630552735`: see the next test.
        for (input, want) in [
            ("+36 30 616 7347", "+36306167347"),
            ("06306167347", "+36306167347"),
            ("06 20 7737884", "+36207737884"),
        ] {
            assert_eq!(parse_hu_mobile(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn the_seed_example_without_spaces_is_a_digit_short() {
        // `+3630552735` has 6 digits after the network code 30: no such mobile number
        // exists, so it is refused with a message that says so. Its form (+36 and the
        // digits without separators) is accepted once the number is complete.
        assert_eq!(
            parse_hu_mobile("+3630552735"),
            Err(PhoneError::TooShort { digits: 8 })
        );
        assert_eq!(
            parse_hu_mobile("+36305527350").as_deref(),
            Ok("+36305527350")
        );
        assert_eq!(
            parse_hu_mobile("+36306167347").as_deref(),
            Ok("+36306167347")
        );
    }

    #[test]
    fn accepts_every_network_and_separator() {
        for (input, want) in [
            ("+36 20 123 4567", "+36201234567"),
            ("+36 31 123 4567", "+36311234567"),
            ("+36 50 123 4567", "+36501234567"),
            ("+36 70 123 4567", "+36701234567"),
            ("0036 30 616 7347", "+36306167347"),
            ("0036306167347", "+36306167347"),
            ("+36-30-616-7347", "+36306167347"),
            ("06-30-616-7347", "+36306167347"),
            ("06.30.616.7347", "+36306167347"),
            ("06 (30) 616-7347", "+36306167347"),
            ("(06 30) 616 7347", "+36306167347"),
            ("+36 (30) 616 7347", "+36306167347"),
            ("06/30/616-7347", "+36306167347"),
            ("06-30/6167347", "+36306167347"),
            ("  06 30 616 7347  ", "+36306167347"),
            ("06\u{a0}30\u{a0}616\u{a0}7347", "+36306167347"),
            ("06–30–616–7347", "+36306167347"),
            ("+36 30 61 67 347", "+36306167347"),
        ] {
            assert_eq!(parse_hu_mobile(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn refuses_wrong_numbers() {
        use PhoneError::*;
        let cases: &[(&str, PhoneError)] = &[
            ("", Empty),
            ("   ", Empty),
            ("- ( ) /", Empty),
            ("+36 1 234 5678", NotMobile { prefix: "1".into() }),
            ("06 1 234 5678", NotMobile { prefix: "1".into() }),
            (
                "06 22 123 456",
                NotMobile {
                    prefix: "22".into(),
                },
            ),
            (
                "06 80 123 456",
                NotMobile {
                    prefix: "80".into(),
                },
            ),
            (
                "06 90 123 4567",
                NotMobile {
                    prefix: "90".into(),
                },
            ),
            (
                "+36 06 30 616 7347",
                NotMobile {
                    prefix: "06".into(),
                },
            ),
            ("+44 7700 900123", Foreign),
            ("0044 7700 900123", Foreign),
            ("+1 202 555 0143", Foreign),
            ("+3", Foreign),
            ("30 616 7347", MissingPrefix),
            ("36306167347", MissingPrefix),
            ("6306167347", MissingPrefix),
            ("7", TooShort { digits: 0 }),
            ("+36", TooShort { digits: 0 }),
            ("06", TooShort { digits: 0 }),
            ("06 3", TooShort { digits: 1 }),
            ("06 30", TooShort { digits: 2 }),
            ("06 30 616 734", TooShort { digits: 8 }),
            ("06 30 616 73477", TooLong { digits: 10 }),
            ("+36 30 616 7347 1", TooLong { digits: 10 }),
            ("06 30 ABC DEFG", InvalidCharacter('A')),
            ("06 30 616 734O", InvalidCharacter('O')),
            ("06306167347x", InvalidCharacter('x')),
            ("06 30 616 7347 ext 12", InvalidCharacter('e')),
            ("++36306167347", InvalidCharacter('+')),
            ("06+306167347", InvalidCharacter('+')),
            ("tel:+36306167347", InvalidCharacter('t')),
            ("06_30_616_7347", InvalidCharacter('_')),
            ("06 30 616 7347; drop table", InvalidCharacter(';')),
            ("٠٦٣٠٦١٦٧٣٤٧", InvalidCharacter('٠')),
        ];
        for (input, want) in cases {
            assert_eq!(parse_hu_mobile(input).as_ref(), Err(want), "{input:?}");
        }
        let long = "0".repeat(200);
        assert!(matches!(
            parse_hu_mobile(&long),
            Err(PhoneError::TooLong { .. })
        ));
        let spaced = format!("06 30 616 7347{}", " -".repeat(30));
        assert!(matches!(
            parse_hu_mobile(&spaced),
            Err(PhoneError::TooLong { .. })
        ));
    }

    #[test]
    fn refusals_show_the_accepted_forms() {
        for input in ["", "+36 1 234 5678", "+44 20 7946 0000", "06 30 12", "abc"] {
            let msg = parse_hu_mobile(input)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(ACCEPTED_FORMS), "{input}: {msg}");
        }
    }
}
