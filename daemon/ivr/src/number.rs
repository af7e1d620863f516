//! Phone numbers as admins and callers write them: one canonical form so a
//! VIP list entry `06 30 123 4567` matches a caller `+36301234567`, and a
//! keyed-in callback number is stored the way the trunk dials it.
//!
//! The rule (documented in ivr-flows/README.md, "Phone numbers"):
//! white space (spaces, tabs, pasted non-breaking spaces) and `-` `–` `.` `/` `(` `)`
//! are dropped; what is left must be
//! digits, optionally after one leading `+`; then `00…` becomes `+…`
//! (international prefix) and `06…` becomes `+36…` (Hungarian national
//! prefix). Anything else is kept as it is (`100`, `+4930…`, `0123`).

/// Characters people put between digit groups (pasted numbers bring non-breaking spaces
/// and en dashes along).
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '–' | '.' | '/' | '(' | ')')
}

/// Why a text is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberError {
    /// 0-based char index of the offending character in the input (or of
    /// its end when the number is too short).
    pub index: usize,
    pub message: String,
}

/// Fewest digits a number can have; shorter ones are typos.
const MIN_DIGITS: usize = 3;
/// E.164 allows 15 digits; a few more covers `00` and `06` prefixes and extensions
/// some exchanges take (customer numbers on tasks and callbacks allow 20).
const MAX_DIGITS: usize = 20;

/// The canonical form of `raw`, or why it is not a phone number.
pub fn normalize(raw: &str) -> Result<String, NumberError> {
    let out = canonical_form(raw)?;
    // Digits as written (before `06` → `+36`), so the limits read as the admin typed.
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    let end = raw.chars().count();
    if digits < MIN_DIGITS {
        return Err(NumberError {
            index: end,
            message: format!("a phone number needs at least {MIN_DIGITS} digits"),
        });
    }
    if digits > MAX_DIGITS {
        return Err(NumberError {
            index: end,
            message: format!("a phone number has at most {MAX_DIGITS} digits"),
        });
    }
    Ok(out)
}

/// The canonical form of `raw` without the digit-count limits, for checks of their own
/// on it (Hungarian mobiles for SMS): separators dropped, digits after an optional
/// leading `+`, then `00…` → `+…` and `06…` → `+36…`. May be empty or `+`.
pub fn canonical_form(raw: &str) -> Result<String, NumberError> {
    cleaned(raw, "a phone number").map(canonical)
}

/// `raw` without separators: digits after an optional leading `+`, or where the first
/// other character is (`what` names the text in the message).
fn cleaned(raw: &str, what: &str) -> Result<String, NumberError> {
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if is_separator(c) {
            continue;
        }
        if (c == '+' && out.is_empty()) || c.is_ascii_digit() {
            out.push(c);
        } else {
            let message = if c == '+' {
                "`+` may only start a number".to_owned()
            } else {
                format!("`{c}` is not allowed in {what}")
            };
            return Err(NumberError { index: i, message });
        }
    }
    Ok(out)
}

/// `00…` → `+…`, `06…` → `+36…`; `s` is digits with an optional leading `+`.
fn canonical(s: String) -> String {
    if let Some(rest) = s.strip_prefix("00") {
        format!("+{rest}")
    } else if let Some(rest) = s.strip_prefix("06") {
        format!("+36{rest}")
    } else {
        s
    }
}

/// A number prefix (for `caller` rules) in the same canonical form, so
/// `06 30` and `+3630` are the same prefix. Shorter than a number is fine.
pub fn normalize_prefix(raw: &str) -> Result<String, NumberError> {
    let out = cleaned(raw, "a number prefix")?;
    if out.is_empty() || out == "+" {
        return Err(NumberError {
            index: 0,
            message: "a number prefix needs at least one digit".to_owned(),
        });
    }
    Ok(canonical(out))
}

/// The caller as the flow compares it: canonical when it is a number,
/// otherwise unchanged (a SIP user name such as `alice`).
pub fn caller_key(caller: &str) -> String {
    normalize(caller).unwrap_or_else(|_| caller.to_owned())
}

/// Caller IDs that mean "withheld". Compared case-insensitively.
const WITHHELD: &[&str] = &[
    "",
    "anonymous",
    "unknown",
    "restricted",
    "private",
    "unavailable",
];

/// True when the caller withheld their number.
pub fn is_anonymous(caller: &str) -> bool {
    let c = caller.trim();
    WITHHELD.iter().any(|w| c.eq_ignore_ascii_case(w))
}

/// The digits to read back to a caller: Hungarian numbers in the national
/// form they know (`+3630…` → `0630…`), others without the `+`.
pub fn spoken_digits(normalized: &str) -> String {
    let national = match normalized.strip_prefix("+36") {
        Some(rest) => format!("06{rest}"),
        None => normalized.trim_start_matches('+').to_owned(),
    };
    national.chars().filter(char::is_ascii_digit).collect()
}

/// One position of a [`NumberPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Any,
    /// Allowed digits, as a bit set over 0-9.
    Set(u16),
}

/// A template for keyed-in numbers: digits match themselves, `X` any digit,
/// `[2-9]` or `[237]` one of those digits; the length must match exactly.
/// E.g. `06[237]0XXXXXXX` is a Hungarian mobile number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPattern {
    pub text: String,
    slots: Vec<Slot>,
}

impl NumberPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "pattern `{text}`: {why} (write digits, X for any digit, [2-9] or [237] for a choice)"
            )
        };
        let mut slots = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '0'..='9' => slots.push(Slot::Set(1 << digit(c))),
                'X' | 'x' => slots.push(Slot::Any),
                '[' => {
                    let mut set = 0u16;
                    let mut prev: Option<u32> = None;
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some('-') => {
                                let (Some(lo), Some(hi @ '0'..='9')) = (prev, chars.next()) else {
                                    return Err(bad("a range needs a digit on each side of `-`"));
                                };
                                let hi = digit(hi);
                                if hi < lo {
                                    return Err(bad("a range must go upwards"));
                                }
                                for d in lo..=hi {
                                    set |= 1 << d;
                                }
                                prev = None;
                            }
                            Some(d @ '0'..='9') => {
                                set |= 1 << digit(d);
                                prev = Some(digit(d));
                            }
                            Some(_) => return Err(bad("only digits and `-` go inside [ ]")),
                            None => return Err(bad("`[` is not closed")),
                        }
                    }
                    if set == 0 {
                        return Err(bad("`[]` is empty"));
                    }
                    slots.push(Slot::Set(set));
                }
                _ => return Err(bad(&format!("`{c}` is not allowed"))),
            }
        }
        if slots.is_empty() {
            return Err(bad("it is empty"));
        }
        Ok(Self {
            text: text.to_owned(),
            slots,
        })
    }

    /// Digits the pattern takes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `digits` (only 0-9) fits the template.
    pub fn matches(&self, digits: &str) -> bool {
        digits.chars().count() == self.slots.len()
            && digits.chars().zip(&self.slots).all(|(c, s)| match s {
                Slot::Any => c.is_ascii_digit(),
                Slot::Set(bits) => c.is_ascii_digit() && bits & (1 << digit(c)) != 0,
            })
    }
}

fn digit(c: char) -> u32 {
    c.to_digit(10).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hungarian_forms_are_one_number() {
        for raw in [
            "+36 30 123 4567",
            "06301234567",
            "06-30-123-4567",
            "0036301234567",
            "+36(30)123-4567",
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok("+36301234567"), "{raw}");
        }
        assert_eq!(normalize("100").as_deref(), Ok("100"));
        assert_eq!(normalize("+49 30 1234").as_deref(), Ok("+49301234"));
        assert_eq!(normalize("0049301234").as_deref(), Ok("+49301234"));
    }

    #[test]
    fn bad_numbers_point_at_the_character() {
        let e = normalize("06 30 12a4567").unwrap_err();
        assert_eq!(e.index, 8);
        assert!(e.message.contains("`a`"));
        assert_eq!(normalize("06+30").unwrap_err().index, 2);
        assert_eq!(normalize("12").unwrap_err().index, 2);
        assert!(normalize("+").is_err());
        assert_eq!(
            normalize("1".repeat(20).as_str()).as_deref(),
            Ok("1".repeat(20).as_str())
        );
        assert!(normalize(&"1".repeat(21)).is_err());
    }

    #[test]
    fn pasted_separators_are_dropped() {
        assert_eq!(
            normalize("06\u{a0}30–123–4567").as_deref(),
            Ok("+36301234567")
        );
        assert_eq!(canonical_form(" - ").as_deref(), Ok(""));
        assert_eq!(canonical_form("06").as_deref(), Ok("+36"));
    }

    #[test]
    fn prefixes_and_callers() {
        assert_eq!(normalize_prefix("06 30").as_deref(), Ok("+3630"));
        assert_eq!(normalize_prefix("+3630").as_deref(), Ok("+3630"));
        assert_eq!(normalize_prefix("1").as_deref(), Ok("1"));
        assert!(normalize_prefix("+").is_err());
        assert_eq!(caller_key("alice"), "alice");
        assert_eq!(caller_key("06301234567"), "+36301234567");
        assert!(is_anonymous("Anonymous"));
        assert!(is_anonymous(""));
        assert!(!is_anonymous("100"));
        assert_eq!(spoken_digits("+36301234567"), "06301234567");
        assert_eq!(spoken_digits("+49301234"), "49301234");
    }

    #[test]
    fn patterns() {
        let p = NumberPattern::parse("06[2357]0XXXXXXX").unwrap();
        assert_eq!(p.len(), 11);
        assert!(p.matches("06301234567"));
        assert!(p.matches("06701234567"));
        assert!(!p.matches("06401234567"));
        assert!(!p.matches("0630123456"));
        let r = NumberPattern::parse("06[2-9]XXXXXXX").unwrap();
        assert!(r.matches("0622123456"));
        assert!(!r.matches("0612123456"));
        for bad in ["", "06[", "06[]", "06[a]", "06[9-2]", "06Y", "[-3]"] {
            assert!(NumberPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
