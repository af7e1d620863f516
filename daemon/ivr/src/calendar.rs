//! Calendars: when the hotline is open. One file per calendar under
//! `ivr-flows/calendars/` (format in `ivr-flows/README.md`, "Calendars"):
//! a time zone, weekly open hours, holidays (dated or every year), moved
//! workdays and special days.
//!
//! Every question is asked with a UTC instant and answered by turning it
//! into the calendar's wall-clock time (chrono-tz), so DST is right by
//! construction: a range is open while the local clock reads inside it.
//! A range belongs to the day it starts on; an overnight range (`22:00-06:00`)
//! runs into the next morning whatever that next day is.
//!
//! No I/O here except [`load_calendars`], and no clock: callers pass `now`.

mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

pub use parse::{load_calendars, parse_calendar};

/// How far [`Calendar::next_open`] and [`Calendar::next_close`] look ahead.
pub const SEARCH_DAYS: i64 = 366;

const MINUTES_PER_DAY: u16 = 24 * 60;

/// Weekday keys as written in calendar files, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One open range of a day, `"HH:MM-HH:MM"` in the calendar's local time.
///
/// `24:00` is allowed as an end (until midnight); an end before the start
/// is an overnight range that closes the next morning (`22:00-06:00`);
/// start == end is an error (an empty range). `22:00-00:00` is the same as
/// `22:00-24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeRange {
    /// Minutes after midnight, 0..1440.
    start: u16,
    /// Minutes after midnight, 1..=1440; below `start` when overnight.
    end: u16,
}

impl TimeRange {
    /// From minutes after midnight: `start` in 0..1440, `end` in 0..=1440,
    /// different from `start`. An `end` of 0 means midnight (as 1440).
    pub fn new(start: u16, end: u16) -> Option<Self> {
        if start >= MINUTES_PER_DAY || end > MINUTES_PER_DAY || start == end {
            return None;
        }
        let end = if end == 0 { MINUTES_PER_DAY } else { end };
        Some(Self { start, end })
    }

    /// Opening time, minutes after midnight.
    pub fn start_minute(self) -> u16 {
        self.start
    }

    /// Closing time, minutes after midnight (1440 = midnight); on the next
    /// day when [`is_overnight`](Self::is_overnight).
    pub fn end_minute(self) -> u16 {
        self.end
    }

    /// Closes the next morning.
    pub fn is_overnight(self) -> bool {
        self.end < self.start
    }

    /// Minutes of wall-clock time the range spans.
    pub fn minutes(self) -> u16 {
        if self.is_overnight() {
            MINUTES_PER_DAY - self.start + self.end
        } else {
            self.end - self.start
        }
    }

    /// The part on its own day: `[start, end)` in minutes.
    fn own_day(self) -> (u16, u16) {
        if self.is_overnight() {
            (self.start, MINUTES_PER_DAY)
        } else {
            (self.start, self.end)
        }
    }

    /// The part on the next day, if overnight: `[0, end)`.
    fn next_day(self) -> Option<(u16, u16)> {
        self.is_overnight().then_some((0, self.end))
    }
}

fn covers((from, to): (u16, u16), second: u32) -> bool {
    u32::from(from) * 60 <= second && second < u32::from(to) * 60
}

fn overlaps(a: (u16, u16), b: (u16, u16)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

impl FromStr for TimeRange {
    type Err = String;

    /// `"08:00-17:00"`; also `8:00 - 17:00` and an en dash (`08:00–17:00`).
    fn from_str(s: &str) -> Result<Self, String> {
        let syntax = || {
            format!(
                "`{s}` is not a time range: write \"HH:MM-HH:MM\", e.g. \"08:00-17:00\" \
                 (\"22:00-06:00\" runs overnight, \"24:00\" is midnight)"
            )
        };
        let (a, b) = s.split_once(['-', '–']).ok_or_else(syntax)?;
        let start = parse_hhmm(a.trim()).ok_or_else(syntax)?;
        let end = parse_hhmm(b.trim()).ok_or_else(syntax)?;
        if start == MINUTES_PER_DAY {
            return Err(format!(
                "`{s}`: 24:00 can only end a range; a day starts at 00:00"
            ));
        }
        if start == end {
            return Err(format!("`{s}` is an empty range (it starts when it ends)"));
        }
        Self::new(start, end).ok_or_else(syntax)
    }
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00 → minutes.
fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// What kind of day a date is in a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayKind {
    /// A weekday with open hours in `[hours]`.
    Workday,
    /// The weekly hours say closed all day (weekends, usually).
    Weekend,
    /// Listed under `[[holidays]]` (closed, or shortened `hours`).
    Holiday { name: String },
    /// Listed under `[[workdays]]`: a rest day that is worked (Hungary works
    /// some Saturdays in exchange for a bridge day).
    MovedWorkday { name: String },
    /// Listed under `[[special]]`: a day with its own hours.
    Special { name: String },
}

impl DayKind {
    /// The holiday's or special day's name; `None` for ordinary days.
    pub fn name(&self) -> Option<&str> {
        match self {
            DayKind::Workday | DayKind::Weekend => None,
            DayKind::Holiday { name }
            | DayKind::MovedWorkday { name }
            | DayKind::Special { name } => Some(name),
        }
    }
}

/// A calendar's answer for one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The instant on the calendar's wall clock.
    pub local: DateTime<Tz>,
    /// The kind of `local`'s date (even when `open` comes from an overnight
    /// range begun the day before).
    pub day: DayKind,
    /// Inside a range of that local day, or of an overnight range begun the
    /// day before.
    pub open: bool,
}

/// A day that is not an ordinary week day.
#[derive(Debug, Clone)]
struct Exception {
    kind: DayKind,
    hours: Vec<TimeRange>,
}

impl Exception {
    fn is_holiday(&self) -> bool {
        matches!(self.kind, DayKind::Holiday { .. })
    }
}

/// A loaded calendar file. Build one with [`parse_calendar`] or
/// [`load_calendars`].
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    file: PathBuf,
    tz: Tz,
    /// Monday first.
    weekly: [Vec<TimeRange>; 7],
    /// Holidays, moved workdays and special days with a full date; at most
    /// one per date (the parser refuses two).
    dated: BTreeMap<NaiveDate, Exception>,
    /// Every-year holidays and special days, by (month, day).
    yearly: BTreeMap<(u32, u32), Exception>,
}

impl Calendar {
    /// The file stem: flows name a calendar by it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file it was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The exception that decides `date`, if any. Precedence: a dated
    /// holiday, an every-year holiday, a moved workday, a dated special day,
    /// an every-year special day. (The parser refuses a moved workday or a
    /// dated special day on an every-year holiday, so none is dead.)
    fn exception(&self, date: NaiveDate) -> Option<&Exception> {
        let dated = self.dated.get(&date);
        let yearly = self.yearly.get(&(date.month(), date.day()));
        dated
            .filter(|e| e.is_holiday())
            .or(yearly.filter(|e| e.is_holiday()))
            .or(dated)
            .or(yearly)
    }

    /// The ranges that open on `date` (an overnight one closes the next
    /// day). Empty: no range starts that day.
    pub fn hours_on(&self, date: NaiveDate) -> &[TimeRange] {
        match self.exception(date) {
            Some(e) => &e.hours,
            None => self.weekly_hours(date.weekday()),
        }
    }

    /// The weekly hours of one weekday, from `[hours]`.
    pub fn weekly_hours(&self, day: Weekday) -> &[TimeRange] {
        self.weekly
            .get(day.num_days_from_monday() as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Holiday beats moved workday beats special day beats the weekly hours.
    pub fn day_kind(&self, date: NaiveDate) -> DayKind {
        match self.exception(date) {
            Some(e) => e.kind.clone(),
            None if self.weekly_hours(date.weekday()).is_empty() => DayKind::Weekend,
            None => DayKind::Workday,
        }
    }

    pub fn status(&self, at: DateTime<Utc>) -> Status {
        let local = at.with_timezone(&self.tz);
        Status {
            day: self.day_kind(local.date_naive()),
            open: self.open_at_wall(local.naive_local()),
            local,
        }
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.open_at_wall(at.with_timezone(&self.tz).naive_local())
    }

    /// `at` if open now, else the first instant it opens, looking up to
    /// [`SEARCH_DAYS`] ahead; `None` if it stays closed that long.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_state(at, true)
    }

    /// `at` if closed now, else the first instant it closes, looking up to
    /// [`SEARCH_DAYS`] ahead; `None` if it stays open that long. Touching
    /// ranges (`20:00-24:00` then `00:00-06:00`) are one opening.
    pub fn next_close(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_state(at, false)
    }

    fn open_at_wall(&self, wall: NaiveDateTime) -> bool {
        let date = wall.date();
        let second = wall.time().num_seconds_from_midnight();
        self.hours_on(date)
            .iter()
            .any(|r| covers(r.own_day(), second))
            || date.pred_opt().is_some_and(|prev| {
                self.hours_on(prev)
                    .iter()
                    .filter_map(|r| r.next_day())
                    .any(|part| covers(part, second))
            })
    }

    /// The first instant from `at` on where the open state is `open`.
    ///
    /// The state can only change at a range boundary, at local midnight or
    /// at a UTC-offset change, so it is enough to test those instants in
    /// order. They are made day by day: every instant made from a date is
    /// at or after that date's first moment, so anything earlier is final.
    fn next_state(&self, at: DateTime<Utc>, open: bool) -> Option<DateTime<Utc>> {
        if self.is_open(at) == open {
            return Some(at);
        }
        let limit = at.checked_add_signed(TimeDelta::days(SEARCH_DAYS))?;
        let today = at.with_timezone(&self.tz).date_naive();
        let mut date = today.pred_opt().unwrap_or(today);
        let mut pending = BTreeSet::new();
        loop {
            let floor = self
                .first_at_or_after(midnight(date))
                .filter(|f| *f <= limit);
            while let Some(&c) = pending.first() {
                if floor.is_some_and(|f| c >= f) {
                    break;
                }
                pending.pop_first();
                if c > limit {
                    return None;
                }
                if c > at && self.is_open(c) == open {
                    return Some(c);
                }
            }
            // Past the search limit: everything that could be found is checked.
            floor?;
            self.push_boundaries(date, &mut pending);
            date = date.succ_opt()?;
        }
    }

    /// Every instant made from `date` where the open state may change.
    fn push_boundaries(&self, date: NaiveDate, out: &mut BTreeSet<DateTime<Utc>>) {
        let start = midnight(date);
        let Some(next) = date.succ_opt().map(midnight) else {
            return;
        };
        self.push_wall(start, out);
        let at = |base: NaiveDateTime, minute: u16| {
            base.checked_add_signed(TimeDelta::minutes(i64::from(minute)))
        };
        for r in self.hours_on(date) {
            let end = if r.is_overnight() {
                at(next, r.end)
            } else {
                at(start, r.end)
            };
            for wall in [at(start, r.start), end].into_iter().flatten() {
                self.push_wall(wall, out);
            }
        }
        // A DST change moves the wall clock without crossing a boundary of
        // ours (the repeated hour), so it is a candidate too.
        if let (Some(a), Some(b)) = (self.first_at_or_after(start), self.first_at_or_after(next))
            && self.offset(a) != self.offset(b)
            && let Some(t) = self.offset_change(a, b)
        {
            out.insert(t);
        }
    }

    /// Where a wall-clock time happens: once, twice (the repeated hour of a
    /// fall-back night) or, inside a spring-forward gap, at the jump.
    fn push_wall(&self, wall: NaiveDateTime, out: &mut BTreeSet<DateTime<Utc>>) {
        match self.tz.from_local_datetime(&wall) {
            MappedLocalTime::Single(t) => {
                out.insert(t.to_utc());
            }
            MappedLocalTime::Ambiguous(a, b) => {
                out.insert(a.to_utc());
                out.insert(b.to_utc());
            }
            MappedLocalTime::None => {
                out.extend(self.after_gap(wall));
            }
        }
    }

    /// The first instant whose wall-clock time is `wall` or later.
    fn first_at_or_after(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            MappedLocalTime::Single(t) | MappedLocalTime::Ambiguous(t, _) => Some(t.to_utc()),
            MappedLocalTime::None => self.after_gap(wall),
        }
    }

    /// For a wall time skipped by a spring-forward jump: the jump itself
    /// (the first instant whose wall time is later). The wall clock only
    /// rises within a day and a half of a gap, so bisect on whole seconds.
    fn after_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let base = wall.and_utc().timestamp();
        let (mut lo, mut hi) = (base - 36 * 3600, base + 36 * 3600);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let later = DateTime::from_timestamp(mid, 0)
                .is_some_and(|t| t.with_timezone(&self.tz).naive_local() >= wall);
            if later {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0)
    }

    fn offset(&self, t: DateTime<Utc>) -> FixedOffset {
        self.tz.offset_from_utc_datetime(&t.naive_utc()).fix()
    }

    /// The first instant in `(a, b]` with `b`'s UTC offset (one change
    /// between them).
    fn offset_change(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let target = self.offset(b);
        let (mut lo, mut hi) = (a.timestamp(), b.timestamp());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let same = DateTime::from_timestamp(mid, 0).is_some_and(|t| self.offset(t) == target);
            if same {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0)
    }
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Result<TimeRange, String> {
        s.parse()
    }

    #[test]
    fn time_ranges_parse() {
        let day = r("08:00-17:00").unwrap();
        assert_eq!((day.start_minute(), day.end_minute()), (480, 1020));
        assert!(!day.is_overnight());
        assert_eq!(day.minutes(), 540);
        assert_eq!(day.to_string(), "08:00-17:00");

        let night = r("22:00-06:00").unwrap();
        assert!(night.is_overnight());
        assert_eq!(night.minutes(), 480);
        assert_eq!(night.own_day(), (1320, 1440));
        assert_eq!(night.next_day(), Some((0, 360)));

        assert_eq!(r("8:00 - 17:30").unwrap().to_string(), "08:00-17:30");
        assert_eq!(r("08:00–17:00").unwrap().to_string(), "08:00-17:00");
        assert_eq!(r("20:00-24:00").unwrap().end_minute(), 1440);
        assert_eq!(r("00:00-24:00").unwrap().minutes(), 1440);
        // Ending at 00:00 is ending at midnight, not overnight.
        let to_midnight = r("22:00-00:00").unwrap();
        assert!(!to_midnight.is_overnight());
        assert_eq!(to_midnight.to_string(), "22:00-24:00");
    }

    #[test]
    fn bad_time_ranges() {
        for bad in [
            "",
            "08:00",
            "8-17",
            "08:00-17",
            "08:0-17:00",
            "25:00-26:00",
            "08:60-09:00",
            "24:01-01:00",
            "08:00-17:00-18:00",
            "x8:00-17:00",
            "008:00-17:00",
        ] {
            let e = r(bad).unwrap_err();
            assert!(e.contains("is not a time range"), "{bad}: {e}");
        }
        assert!(r("10:00-10:00").unwrap_err().contains("empty range"));
        assert!(r("00:00-00:00").unwrap_err().contains("empty range"));
        assert!(r("24:00-06:00").unwrap_err().contains("24:00 can only end"));
    }

    #[test]
    fn overlap_and_cover() {
        assert!(overlaps((0, 10), (5, 15)));
        assert!(!overlaps((0, 10), (10, 15)));
        assert!(covers((480, 1020), 480 * 60));
        assert!(!covers((480, 1020), 1020 * 60));
        assert!(covers((1320, 1440), 86_399));
    }
}
