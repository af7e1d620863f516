//! The dial plan (PRODUCT T5): the one place that decides whether Hotline may dial a
//! number, whoever asked for it (an IVR or phone transfer, a click-to-call, a callback
//! from the list, a task, an automatic or direct callback).
//!
//! Patterns are Asterisk's extension patterns, matched against the canonical form of the
//! number ([`crate::number::normalize`], `+36…`): `X` is any digit, `Z` 1–9, `N` 2–9,
//! `[1-5]` or `[137]` one digit of a set, `.` one or more digits more, `!` zero or more,
//! anything else itself. A leading `_` (Asterisk's marker) is allowed and ignored.
//!
//! A number is dialled when an `allow` pattern matches and no `block` pattern does.

use crate::number;

/// Hungarian geographic numbers (Budapest 1 + 7 digits, other areas 2 + 6 digits) and
/// mobiles (20, 30, 31, 50, 70 + 7 digits).
pub const DEFAULT_ALLOW: &[&str] = &[
    "+361XXXXXXX",
    "+36NXXXXXXX",
    "+36[2357]0XXXXXXX",
    "+3631XXXXXXX",
];
/// Premium rate (90, 91) and audiotex (81) services.
pub const DEFAULT_BLOCK: &[&str] = &["+3690.", "+3691.", "+3681."];

/// One pattern, checked when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// One character out of a set (a digit, `+`, or a class).
    One(Vec<char>),
    /// `.`: one or more characters more.
    OneOrMore,
    /// `!`: zero or more characters more.
    ZeroOrMore,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let body = text.strip_prefix('_').unwrap_or(text);
        let mut items = Vec::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            let item = match c {
                'X' | 'x' => Item::One(('0'..='9').collect()),
                'Z' | 'z' => Item::One(('1'..='9').collect()),
                'N' | 'n' => Item::One(('2'..='9').collect()),
                '.' | '!' if chars.peek().is_some() => {
                    return Err(format!("{text:?}: `{c}` may only end a pattern"));
                }
                '.' => Item::OneOrMore,
                '!' => Item::ZeroOrMore,
                '[' => {
                    let mut set = Vec::new();
                    let mut prev: Option<char> = None;
                    loop {
                        match chars.next() {
                            Some(']') if !set.is_empty() => break,
                            Some('-') if prev.is_some() => {
                                let (Some(lo), Some(hi)) = (prev, chars.next()) else {
                                    return Err(format!("{text:?}: unfinished range"));
                                };
                                if !hi.is_ascii_digit() || hi < lo {
                                    return Err(format!("{text:?}: bad range {lo}-{hi}"));
                                }
                                set.extend((lo..=hi).skip(1));
                                prev = None;
                            }
                            Some(d) if d.is_ascii_digit() => {
                                set.push(d);
                                prev = Some(d);
                            }
                            _ => {
                                return Err(format!(
                                    "{text:?}: a [set] holds digits and ranges like [1-5]"
                                ));
                            }
                        }
                    }
                    Item::One(set)
                }
                '+' if items.is_empty() => Item::One(vec!['+']),
                d if d.is_ascii_digit() => Item::One(vec![d]),
                other => {
                    return Err(format!(
                        "{text:?}: `{other}` is not a digit or one of X Z N [..] . ! (and + first)"
                    ));
                }
            };
            items.push(item);
        }
        if items.is_empty() {
            return Err("an empty pattern matches nothing".to_string());
        }
        Ok(Pattern {
            text: text.to_string(),
            items,
        })
    }

    pub fn matches(&self, number: &str) -> bool {
        let chars: Vec<char> = number.chars().collect();
        let mut i = 0;
        for item in &self.items {
            match item {
                Item::One(set) => {
                    if chars.get(i).is_none_or(|c| !set.contains(c)) {
                        return false;
                    }
                    i += 1;
                }
                Item::OneOrMore => return i < chars.len(),
                Item::ZeroOrMore => return true,
            }
        }
        i == chars.len()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Why a number may not be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0:?} is not a phone number: {1}")]
    NotANumber(String, String),
    #[error("{number} is blocked by the dial plan ({pattern})")]
    Blocked { number: String, pattern: String },
    #[error("{0} is not in the dial plan (no allowed pattern matches)")]
    NotAllowed(String),
}

impl Refusal {
    /// The SIP status a transfer to such a number gets.
    pub fn sip_status(&self) -> u16 {
        match self {
            Refusal::NotANumber(..) => 484,
            Refusal::Blocked { .. } | Refusal::NotAllowed(_) => 403,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    allow: Vec<Pattern>,
    block: Vec<Pattern>,
}

impl Default for DialPlan {
    fn default() -> Self {
        let parse = |list: &[&str]| list.iter().filter_map(|p| Pattern::parse(p).ok()).collect();
        DialPlan {
            allow: parse(DEFAULT_ALLOW),
            block: parse(DEFAULT_BLOCK),
        }
    }
}

impl DialPlan {
    pub fn new(allow: &[String], block: &[String]) -> Result<DialPlan, String> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(DialPlan {
            allow: parse(allow)?,
            block: parse(block)?,
        })
    }

    /// The number as the trunk dials it (canonical), or why it may not be dialled.
    pub fn check(&self, raw: &str) -> Result<String, Refusal> {
        let number =
            number::normalize(raw).map_err(|e| Refusal::NotANumber(raw.to_string(), e.message))?;
        if let Some(p) = self.block.iter().find(|p| p.matches(&number)) {
            return Err(Refusal::Blocked {
                number,
                pattern: p.as_str().to_string(),
            });
        }
        if self.allow.iter().any(|p| p.matches(&number)) {
            Ok(number)
        } else {
            Err(Refusal::NotAllowed(number))
        }
    }
}

/// Transfer steps the daemon would fail on every call, as warnings at their target
/// (`flow check`): to a number `plan` refuses, or to an operator in no queue (an
/// operator is rung in their first queue).
pub fn transfer_warnings(set: &crate::FlowSet, plan: &DialPlan) -> Vec<crate::FlowError> {
    let mut found = Vec::new();
    for flow in set.flows() {
        for step in flow.steps.values() {
            let crate::StepKind::Transfer(t) = &step.kind else {
                continue;
            };
            let (at, why) = match &t.to {
                crate::TransferTo::External(written, _) => match plan.check(&written.name) {
                    Err(why) => (written.at, why.to_string()),
                    Ok(_) => continue,
                },
                crate::TransferTo::Operator(op) => {
                    let in_a_queue = set.queues().values().any(|q| q.members.contains(&op.name));
                    if in_a_queue {
                        continue;
                    }
                    (
                        op.at,
                        format!("{}, who is in no queue of queues.toml", op.name),
                    )
                }
                crate::TransferTo::Queue(_) => continue,
            };
            found.push(crate::FlowError::at(
                flow.file.clone(),
                at,
                format!(
                    "step `{}` transfers to {why}: the call always takes `on_fail` ({})",
                    step.name, t.on_fail.name
                ),
            ));
        }
    }
    found.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_default_plan_allows_hungarian_numbers_and_blocks_premium_and_abroad() {
        let plan = DialPlan::default();
        for ok in [
            "+36 1 234 5678",
            "06 30 616 7347",
            "+36205551234",
            "+3670 555 1234",
            "06 52 123 456", // Debrecen
        ] {
            assert!(plan.check(ok).is_ok(), "{ok}");
        }
        assert_eq!(plan.check("06 30 616 7347").unwrap(), "+36306167347");
        assert!(matches!(
            plan.check("06 90 123 456"),
            Err(Refusal::Blocked { .. })
        ));
        assert!(matches!(
            plan.check("+44 20 7946 0000"),
            Err(Refusal::NotAllowed(_))
        ));
        assert!(matches!(
            plan.check("+36 30 616 73"), // too short for a mobile
            Err(Refusal::NotAllowed(_))
        ));
        assert!(matches!(
            plan.check("call me"),
            Err(Refusal::NotANumber(..))
        ));
        assert_eq!(
            plan.check("+44 20 7946 0000").unwrap_err().sip_status(),
            403
        );
    }

    #[test]
    fn patterns_as_asterisk_writes_them() {
        let p = Pattern::parse("_+4420[1-3]X.").unwrap();
        assert!(p.matches("+44201123"));
        assert!(!p.matches("+442011"), "`.` needs one more digit");
        assert!(!p.matches("+44204123"));
        assert!(Pattern::parse("+49!").unwrap().matches("+49"));
        let plan = DialPlan::new(&["+44.".into()], &["+449.".into()]).unwrap();
        assert!(plan.check("+44 20 7946 0000").is_ok());
        assert!(plan.check("+44 909 0000").is_err());
        for bad in ["", "+36.X", "+36[9-1]", "+36[a]", "36+", "+36Q"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
