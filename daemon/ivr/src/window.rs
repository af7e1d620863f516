//! Auto-callback windows: the minutes in which the daemon may dial customers
//! by itself (`[queues.NAME.callbacks]`, keys `windows`, `time_zone`,
//! `calendar`; format in `ivr-flows/README.md`, "Queues").
//!
//! A window is a list of 5-field cron rules (minute hour day-of-month month
//! day-of-week) read on the wall clock of one time zone. A minute is open
//! when any rule matches it. A rule describes minutes that are allowed, not
//! events that fire, so DST needs no special case:
//!
//! - On the spring-forward day the skipped wall-clock minutes (02:00–02:59 in
//!   Budapest) never happen, so a rule for them opens nothing that day.
//! - On the fall-back day the repeated minutes happen twice, and both real
//!   instants are open.
//!
//! Day-of-month and day-of-week follow standard (Vixie) cron: when both are
//! restricted, a day matches if either does (`* * 1 * mon` is the 1st and
//! every Monday); a `*` field is ignored. A rule never runs past midnight:
//! `* 22-23,0-4 * * fri` is Friday evening and Friday early morning; for the
//! night into Saturday add `* 0-4 * * sat`. Ranges cannot wrap (`22-4` is an
//! error with a hint). Parsing and field matching are the `croner` crate's;
//! the search for the next open minute is ours, because croner's own search
//! moves a time inside a DST gap to after the jump (an event would still fire;
//! a window minute that does not exist must not open).
//!
//! With a calendar, a minute is open only if the calendar is open then and the
//! day (in the calendar's zone) is not a holiday, even a holiday with short
//! hours. The calendar only closes: a `mon-fri` rule does not open on a moved
//! Saturday workday; write the day fields as `* *` (or add `sat`) and let the
//! calendar say which days are worked.
//!
//! Pure: no I/O and no clock; callers pass the instant.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::calendar::{Calendar, DayKind};

/// The zone of a window that names neither a zone nor a calendar.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Europe::Budapest;

/// How far [`CallbackWindow::next_open`] looks ahead.
pub const WINDOW_SEARCH_DAYS: i64 = 400;

/// The five fields, for messages.
const FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 or sun-sat, 0 and 7 both Sunday"),
];

const SYNTAX_HELP: &str = "write 5 fields: minute hour day-of-month month day-of-week, \
     e.g. \"* 9-16 * * mon-fri\" (every minute 09:00-16:59 on weekdays); \
     fields take *, numbers, ranges (9-16), lists (1,15) and steps (*/15)";

/// Why a window rule or zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("window rule `{rule}` has {found} fields; {SYNTAX_HELP}")]
    FieldCount { rule: String, found: usize },
    #[error(
        "window rule `{rule}`: the {field} range `{range}` runs backwards; cron ranges do not \
         wrap around, write `{suggestion}`"
    )]
    BackwardsRange {
        rule: String,
        field: &'static str,
        range: String,
        suggestion: String,
    },
    #[error("window rule `{rule}`: bad {field} field `{value}` ({allowed}): {detail}")]
    BadField {
        rule: String,
        field: &'static str,
        value: String,
        allowed: &'static str,
        detail: String,
    },
    #[error("window rule `{rule}` is not a cron rule: {detail}; {SYNTAX_HELP}")]
    Syntax { rule: String, detail: String },
    #[error("unknown time zone `{name}`{hint}; use an IANA name such as \"Europe/Budapest\"")]
    UnknownZone { name: String, hint: String },
}

/// One 5-field cron rule, read on a wall clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRule {
    text: String,
    cron: Cron,
}

impl WindowRule {
    /// Parses `"minute hour day-of-month month day-of-week"`; names such as
    /// `mon-fri` and `jan` are allowed, in any case.
    pub fn parse(text: &str) -> Result<Self, WindowError> {
        let rule = text.trim().to_owned();
        let fields: Vec<&str> = rule.split_whitespace().collect();
        // croner also takes 6 and 7 fields and `@daily`; admins know 5.
        if fields.len() != 5 {
            return Err(WindowError::FieldCount {
                found: fields.len(),
                rule,
            });
        }
        for (i, field) in fields.iter().enumerate() {
            if let Some((range, suggestion)) = backwards_range(field, i) {
                return Err(WindowError::BackwardsRange {
                    rule: rule.clone(),
                    field: FIELDS[i].0,
                    range,
                    suggestion,
                });
            }
        }
        match parser().parse(&rule) {
            Ok(cron) => Ok(Self { text: rule, cron }),
            Err(whole) => Err(blame_field(&rule, &fields).unwrap_or(WindowError::Syntax {
                detail: whole.to_string(),
                rule,
            })),
        }
    }

    /// The rule as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the rule allows the minute `wall` is in.
    pub fn matches(&self, wall: NaiveDateTime) -> bool {
        self.month_ok(wall.month())
            && self.day_ok(wall.date())
            && self.hour_ok(wall.hour())
            && self.minute_ok(wall.minute())
    }

    // croner's field matchers only fail on out-of-range input: no match.
    fn minute_ok(&self, m: u32) -> bool {
        self.cron.pattern.minute_match(m).unwrap_or(false)
    }

    fn hour_ok(&self, h: u32) -> bool {
        self.cron.pattern.hour_match(h).unwrap_or(false)
    }

    fn month_ok(&self, m: u32) -> bool {
        self.cron.pattern.month_match(m).unwrap_or(false)
    }

    fn day_ok(&self, d: NaiveDate) -> bool {
        self.cron
            .pattern
            .day_match(d.year(), d.month(), d.day(), cron_weekday(d.weekday()))
            .unwrap_or(false)
    }

    /// The first instant from `t` on (at most `limit`) whose wall-clock
    /// minute in `tz` the rule allows.
    ///
    /// Skips a whole day when the month or day cannot match, to the next
    /// allowed hour or minute otherwise. A skip aims at a wall-clock time and
    /// takes the first instant showing it, but never jumps over a UTC-offset
    /// change: after a fall-back the clock shows earlier minutes again, and
    /// those may match (the second 02:30).
    fn next_match(
        &self,
        tz: Tz,
        mut t: DateTime<Utc>,
        limit: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        while t <= limit {
            let wall = t.with_timezone(&tz).naive_local();
            let date = wall.date();
            let next_day = || date.succ_opt().map(midnight);
            let at_hour = |h: u32| date.and_hms_opt(h, 0, 0);
            let aim = if !self.month_ok(wall.month()) || !self.day_ok(date) {
                next_day()
            } else if !self.hour_ok(wall.hour()) {
                match (wall.hour() + 1..24).find(|&h| self.hour_ok(h)) {
                    Some(h) => at_hour(h),
                    None => next_day(),
                }
            } else if !self.minute_ok(wall.minute()) {
                match (wall.minute() + 1..60).find(|&m| self.minute_ok(m)) {
                    Some(m) => date.and_hms_opt(wall.hour(), m, 0),
                    None if wall.hour() < 23 => at_hour(wall.hour() + 1),
                    None => next_day(),
                }
            } else {
                return Some(t);
            };
            let target = first_after(tz, aim?, t);
            t = match offset_change(tz, t, target) {
                Some(change) if change < target => change,
                _ => target,
            };
        }
        None
    }
}

impl FromStr for WindowRule {
    type Err = WindowError;

    fn from_str(s: &str) -> Result<Self, WindowError> {
        Self::parse(s)
    }
}

impl fmt::Display for WindowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

fn cron_weekday(w: Weekday) -> croner::Weekday {
    croner::Weekday::from_days_from_sunday(w.num_days_from_sunday())
}

/// A range `a-b` with `a > b` in field `i` (numbers only; names are
/// checked by croner), with the rewrite that means what was probably meant.
fn backwards_range(field: &str, i: usize) -> Option<(String, String)> {
    let max = match i {
        0 => 59,
        1 => 23,
        _ => return None,
    };
    for part in field.split(',') {
        let range = part.split('/').next().unwrap_or(part);
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) else {
            continue;
        };
        if a > b && a <= max {
            let first = if a == max {
                a.to_string()
            } else {
                format!("{a}-{max}")
            };
            let second = if b == 0 {
                "0".to_owned()
            } else {
                format!("0-{b}")
            };
            return Some((range.to_owned(), format!("{first},{second}")));
        }
    }
    None
}

/// Which field croner refused: each field alone, the others `*`.
fn blame_field(rule: &str, fields: &[&str]) -> Option<WindowError> {
    let p = parser();
    fields.iter().enumerate().find_map(|(i, value)| {
        let mut alone = ["*"; 5];
        alone[i] = value;
        let err = p.parse(&alone.join(" ")).err()?;
        let (field, allowed) = FIELDS[i];
        Some(WindowError::BadField {
            rule: rule.to_owned(),
            field,
            value: (*value).to_owned(),
            allowed,
            detail: croner_detail(&err),
        })
    })
}

/// croner's message without its type prefixes.
fn croner_detail(e: &croner::errors::CronError) -> String {
    let s = e.to_string();
    let s = s.strip_prefix("Component error: ").unwrap_or(&s);
    let s = s
        .strip_prefix("Pattern contains illegal characters: ")
        .unwrap_or(s);
    s.trim_end_matches('.').to_owned()
}

/// An IANA zone name; unknown is an error, never UTC.
pub fn parse_time_zone(name: &str) -> Result<Tz, WindowError> {
    name.parse::<Tz>().map_err(|_| {
        let wanted = name.trim().to_ascii_lowercase().replace(' ', "_");
        let zones = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        // "europe/budapest" or "Budapest" → "Europe/Budapest".
        let hint = zones()
            .find(|z| z.to_ascii_lowercase() == wanted)
            .or_else(|| {
                zones().find(|z| {
                    !wanted.is_empty()
                        && z.rsplit('/')
                            .next()
                            .is_some_and(|city| city.to_ascii_lowercase() == wanted)
                })
            })
            .map(|z| format!(" (did you mean `{z}`?)"))
            .unwrap_or_default();
        WindowError::UnknownZone {
            name: name.to_owned(),
            hint,
        }
    })
}

/// When auto-callbacks may dial: cron rules on one zone's wall clock, and
/// optionally a calendar that must be open (and not on a holiday).
///
/// The calendar is held by name; pass the loaded one to [`is_open`] and
/// [`next_open`] (`FlowSet::calendar`), so a reloaded flow set's calendar is
/// the one used.
///
/// [`is_open`]: CallbackWindow::is_open
/// [`next_open`]: CallbackWindow::next_open
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackWindow {
    rules: Vec<WindowRule>,
    tz: Tz,
    calendar: Option<String>,
}

impl Default for CallbackWindow {
    /// No rules (never open), Budapest, no calendar.
    fn default() -> Self {
        Self::new(Vec::new(), DEFAULT_TIME_ZONE, None)
    }
}

impl CallbackWindow {
    pub fn new(rules: Vec<WindowRule>, tz: Tz, calendar: Option<String>) -> Self {
        Self {
            rules,
            tz,
            calendar,
        }
    }

    /// From rule texts and a zone name, as written in `queues.toml`.
    pub fn parse(rules: &[&str], zone: &str, calendar: Option<&str>) -> Result<Self, WindowError> {
        let rules = rules
            .iter()
            .map(|r| WindowRule::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(
            rules,
            parse_time_zone(zone)?,
            calendar.map(str::to_owned),
        ))
    }

    pub fn rules(&self) -> &[WindowRule] {
        &self.rules
    }

    /// The zone the rules are read in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    pub(crate) fn set_time_zone(&mut self, tz: Tz) {
        self.tz = tz;
    }

    /// The calendar (file stem under `calendars/`) that must be open too.
    pub fn calendar(&self) -> Option<&str> {
        self.calendar.as_deref()
    }

    /// Whether dialling is allowed at `at`: a rule allows its minute and, if
    /// the window names a calendar, `calendar` is open and `at` is not on one
    /// of its holidays.
    ///
    /// Pass the calendar the window names. Without it such a window is
    /// closed (never dial without the check the admin asked for); a calendar
    /// passed to a window that names none is ignored.
    pub fn is_open(&self, at: DateTime<Utc>, calendar: Option<&Calendar>) -> bool {
        let wall = at.with_timezone(&self.tz).naive_local();
        self.rules.iter().any(|r| r.matches(wall)) && self.calendar_allows(at, calendar).is_ok()
    }

    /// `at` if open, else the first instant it opens (the start of a
    /// minute), looking [`WINDOW_SEARCH_DAYS`] ahead; `None` if it stays
    /// closed that long, has no rules, or names a calendar not passed.
    pub fn next_open(
        &self,
        at: DateTime<Utc>,
        calendar: Option<&Calendar>,
    ) -> Option<DateTime<Utc>> {
        if self.is_open(at, calendar) {
            return Some(at);
        }
        if self.calendar.is_some() && calendar.is_none() {
            return None;
        }
        let limit = at.checked_add_signed(TimeDelta::days(WINDOW_SEARCH_DAYS))?;
        // The minute of `at` is closed; offsets are whole minutes, so the
        // next UTC minute is the next wall-clock minute.
        let mut t = floor_minute(at).checked_add_signed(TimeDelta::minutes(1))?;
        while t <= limit {
            let candidate = self
                .rules
                .iter()
                .filter_map(|r| r.next_match(self.tz, t, limit))
                .min()?;
            // Each branch moves strictly past `candidate` (closed there), so
            // this ends.
            t = match self.calendar_allows(candidate, calendar) {
                Ok(()) => return Some(candidate),
                Err(Closed::Holiday(cal)) => {
                    let tz = cal.timezone();
                    let date = candidate.with_timezone(&tz).date_naive();
                    first_after(tz, midnight(date.succ_opt()?), candidate)
                }
                Err(Closed::Calendar(cal)) => match cal.next_open(candidate) {
                    Some(open) if open > candidate => open,
                    Some(_) => candidate.checked_add_signed(TimeDelta::minutes(1))?,
                    None => return None,
                },
                Err(Closed::NoCalendar) => return None,
            };
        }
        None
    }

    fn calendar_allows<'c>(
        &self,
        at: DateTime<Utc>,
        calendar: Option<&'c Calendar>,
    ) -> Result<(), Closed<'c>> {
        if self.calendar.is_none() {
            return Ok(());
        }
        let Some(cal) = calendar else {
            return Err(Closed::NoCalendar);
        };
        let status = cal.status(at);
        if matches!(status.day, DayKind::Holiday { .. }) {
            Err(Closed::Holiday(cal))
        } else if !status.open {
            Err(Closed::Calendar(cal))
        } else {
            Ok(())
        }
    }
}

/// Why the calendar closes a minute the rules allow.
enum Closed<'c> {
    NoCalendar,
    Holiday(&'c Calendar),
    Calendar(&'c Calendar),
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).unwrap_or(t)
}

/// The first instant after `after` whose wall clock in `tz` shows `wall`,
/// or, if `wall` is skipped by a spring-forward jump, the jump. Never at or
/// before `after` (then the next minute): the caller must move forward.
fn first_after(tz: Tz, wall: NaiveDateTime, after: DateTime<Utc>) -> DateTime<Utc> {
    let step = after
        .checked_add_signed(TimeDelta::minutes(1))
        .map_or(after, floor_minute);
    let found = match tz.from_local_datetime(&wall) {
        MappedLocalTime::Single(t) => Some(t.to_utc()),
        // The repeated hour: the first showing still ahead.
        MappedLocalTime::Ambiguous(a, b) => {
            [a.to_utc(), b.to_utc()].into_iter().find(|t| *t > after)
        }
        // A gap ends on a whole minute: the first wall minute that exists
        // after `wall` is the jump. Gaps are an hour, rarely a day.
        MappedLocalTime::None => (1..=48 * 60).find_map(|m| {
            let later = wall.checked_add_signed(TimeDelta::minutes(m))?;
            tz.from_local_datetime(&later)
                .earliest()
                .map(|t| t.to_utc())
        }),
    };
    found.filter(|t| *t > after).unwrap_or(step)
}

/// The first instant in `(a, b]` with `b`'s UTC offset, if `a`'s differs
/// (at most one change between them: callers look a day ahead at most).
fn offset_change(tz: Tz, a: DateTime<Utc>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let target = offset(b);
    if offset(a) == target {
        return None;
    }
    let (mut lo, mut hi) = (a.timestamp(), b.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if DateTime::from_timestamp(mid, 0).is_some_and(|t| offset(t) == target) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backwards_ranges_get_a_rewrite() {
        assert_eq!(
            backwards_range("22-4", 1),
            Some(("22-4".to_owned(), "22-23,0-4".to_owned()))
        );
        assert_eq!(
            backwards_range("23-0", 1),
            Some(("23-0".to_owned(), "23,0".to_owned()))
        );
        assert_eq!(
            backwards_range("50-10/5", 0),
            Some(("50-10".to_owned(), "50-59,0-10".to_owned()))
        );
        assert_eq!(backwards_range("9-16", 1), None);
        assert_eq!(backwards_range("5-1", 4), None);
    }

    #[test]
    fn floor_minute_truncates() {
        let t = DateTime::from_timestamp(125, 7).unwrap();
        assert_eq!(floor_minute(t).timestamp(), 120);
    }
}
