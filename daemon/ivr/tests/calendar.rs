//! Calendars: parsing errors at their spans, and open/closed answers at
//! exact instants across midnight, overnight ranges, DST days, holidays and
//! moved workdays.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use hotline_ivr::calendar::{Calendar, DayKind, TimeRange, load_calendars, parse_calendar};

const FILE: &str = "calendars/test.toml";

fn cal(text: &str) -> Calendar {
    match parse_calendar(Path::new(FILE), text) {
        Ok(c) => c,
        Err(e) => panic!(
            "unexpected errors:\n{}",
            e.iter().map(|e| format!("{e}\n")).collect::<String>()
        ),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse_calendar(Path::new(FILE), text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn holiday(name: &str) -> DayKind {
    DayKind::Holiday {
        name: name.to_owned(),
    }
}

/// Asserts the calendar opens exactly at `open` and closes exactly at
/// `close` (and is closed just before, open just before closing).
#[track_caller]
fn assert_opening(c: &Calendar, open: &str, close: &str) {
    let (open, close) = (utc(open), utc(close));
    let before = open - TimeDelta::seconds(1);
    assert!(!c.is_open(before), "open at {before}");
    assert_eq!(c.next_open(before), Some(open));
    assert!(c.is_open(open), "closed at {open}");
    assert_eq!(c.next_close(open), Some(close));
    assert!(c.is_open(close - TimeDelta::seconds(1)));
    assert!(!c.is_open(close), "open at {close}");
}

/// The brief's example format.
const EXAMPLE: &str = r#"timezone = "Europe/Budapest"

[hours]
mon = ["08:00-17:00"]
tue = ["08:00-12:00", "13:00-17:00"]
fri = ["08:00-14:00", "22:00-06:00"]
sun = []

[[holidays]]
date = "2026-12-24"
name = "Christmas Eve"

[[holidays]]
date = "--03-15"
name = "National Day"

[[workdays]]
date = "2026-01-10"
like = "fri"
name = "Working Saturday for 2 January"

[[special]]
date = "2026-12-31"
hours = ["08:00-12:00"]
name = "New Year's Eve"
"#;

#[test]
fn example_format_parses() {
    let c = cal(EXAMPLE);
    assert_eq!(c.name(), "test");
    assert_eq!(c.file(), Path::new(FILE));
    assert_eq!(c.timezone(), chrono_tz::Europe::Budapest);
    assert_eq!(c.day_kind(day("2026-01-05")), DayKind::Workday); // Monday
    assert_eq!(c.day_kind(day("2026-01-07")), DayKind::Weekend); // Wednesday: not listed
    assert_eq!(c.day_kind(day("2026-01-11")), DayKind::Weekend); // Sunday: []
    assert_eq!(c.day_kind(day("2026-12-24")), holiday("Christmas Eve"));
    assert_eq!(c.day_kind(day("2026-03-15")), holiday("National Day"));
    assert_eq!(c.day_kind(day("2031-03-15")), holiday("National Day"));
    assert_eq!(
        c.day_kind(day("2026-01-10")),
        DayKind::MovedWorkday {
            name: "Working Saturday for 2 January".into()
        }
    );
    assert_eq!(c.day_kind(day("2026-12-31")).name(), Some("New Year's Eve"));
    let fri: Vec<String> = c
        .hours_on(day("2026-01-09"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(fri, ["08:00-14:00", "22:00-06:00"]);
    // The moved Saturday has Friday's hours, overnight range included.
    assert_eq!(c.hours_on(day("2026-01-10")), c.hours_on(day("2026-01-09")));

    // Tuesday's lunch break (winter: UTC+1).
    assert_opening(&c, "2026-01-06T07:00:00Z", "2026-01-06T11:00:00Z");
    assert_opening(&c, "2026-01-06T12:00:00Z", "2026-01-06T16:00:00Z");
    // Special day: 08:00-12:00 only.
    assert_opening(&c, "2026-12-31T07:00:00Z", "2026-12-31T11:00:00Z");
}

#[test]
fn every_error_at_its_span() {
    let text = r#"timezone = "Europe/Budapset"
colour = "red"

[hours]
mon = ["08:00-12:00", "11:00-17:00"]
tue = ["8am-5pm"]
wed = ["10:00-10:00"]
fri = ["08:00-14:00", "22:00-06:00"]
sat = ["05:00-10:00"]
monday = ["08:00-17:00"]
thu = "24:00-06:00"

[[holidays]]
date = "2026-02-30"
name = "No such day"

[[holidays]]
date = "2026-12-24"
name = "Christmas Eve"

[[workdays]]
date = "2026-12-24"
like = "fri"
name = "Clash"

[[workdays]]
date = "2026-01-10"
like = "fry"
name = "Typo"

[[workdays]]
date = "2026-01-17"
like = "sun"
name = "Closed weekday"

[[workdays]]
date = "--01-24"
hours = ["08:00-12:00"]
name = "Yearly workday"

[[special]]
date = "2026-12-31"
name = "No hours"

[[holidays]]
date = "--05-01"
name = "Labour Day"

[[special]]
date = "2027-05-01"
hours = ["08:00-12:00"]
name = "Dead"

[[holidays]]
date = 2026-12-25T10:00:00
"#;
    let f = FILE;
    assert_eq!(
        errors(text),
        [
            format!(
                "{f}:1:12: unknown time zone `Europe/Budapset` (did you mean `Europe/Budapest`?); \
                 use an IANA name such as \"Europe/Budapest\""
            ),
            format!(
                "{f}:2:1: unknown key `colour` in the calendar \
                 (known keys: timezone, hours, holidays, workdays, special)"
            ),
            format!("{f}:5:23: `11:00-17:00` overlaps `08:00-12:00` on mon"),
            format!(
                "{f}:6:8: `8am-5pm` is not a time range: write \"HH:MM-HH:MM\", e.g. \
                 \"08:00-17:00\" (\"22:00-06:00\" runs overnight, \"24:00\" is midnight)"
            ),
            format!("{f}:7:8: `10:00-10:00` is an empty range (it starts when it ends)"),
            format!(
                "{f}:9:8: `05:00-10:00` overlaps fri's overnight range `22:00-06:00`, \
                 which is open until 06:00 on sat"
            ),
            format!(
                "{f}:10:1: unknown weekday `monday` in [hours] (did you mean `mon`? \
                 weekdays are mon, tue, wed, thu, fri, sat, sun)"
            ),
            format!("{f}:11:7: `24:00-06:00`: 24:00 can only end a range; a day starts at 00:00"),
            format!("{f}:14:8: `2026-02-30` does not exist (February 2026 has 28 days)"),
            format!(
                "{f}:22:8: 2026-12-24 is already listed as a holiday at line 18; list each day \
                 once (a day is a holiday, a moved workday or a special day)"
            ),
            format!(
                "{f}:28:8: unknown weekday `fry` in `like` (did you mean `fri`? \
                 weekdays are mon, tue, wed, thu, fri, sat, sun)"
            ),
            format!(
                "{f}:33:8: `like = \"sun\"`: sun has no open hours in [hours], so this moved \
                 workday would be closed all day; name a weekday that has hours, or give \
                 `hours = [...]` instead"
            ),
            format!(
                "{f}:37:8: a moved workday needs a full date (YYYY-MM-DD), not `--01-24`: \
                 moved workdays are decreed year by year"
            ),
            format!("{f}:41:1: this special day ([[special]]) is missing required key `hours`"),
            format!(
                "{f}:50:8: 2027-05-01 is a holiday every year (`--05-01` at line 46), and a \
                 holiday beats a special day, so this entry would never apply"
            ),
            format!("{f}:54:1: this holiday ([[holidays]]) is missing required key `name`"),
            format!("{f}:55:8: `date` must be a date without a time, e.g. 2026-12-24"),
        ]
    );
}

#[test]
fn more_errors() {
    // A bare TOML date that does not exist is caught by the TOML parser.
    let e = errors("timezone = \"UTC\"\n[hours]\n[[holidays]]\ndate = 2026-02-30\nname = \"x\"\n");
    assert_eq!(
        e,
        [format!(
            "{FILE}:4:8: TOML syntax error: invalid date, expected day between 01 and 28"
        )]
    );

    let text = r#"[hours]
mon = "08:00-17:00"
sun = ["20:00-07:00"]
tue = ["08:00-17:00"]
wed = 8

[[workdays]]
date = "2026-01-10"
like = "fri"
hours = ["08:00-12:00"]
name = "Both"

[[workdays]]
date = "2026-01-17"
name = "Neither"

[[workdays]]
date = "2026-01-24"
hours = []
name = "Empty"

[[holidays]]
date = "2026-05-01"
name = ""
hour = ["08:00-12:00"]

[[special]]
date = "2026-12-30"
hours = ["20:00-08:00"]
name = "Night shift"

[[special]]
date = "2026-12-31"
hours = ["07:00-12:00", "11:00-13:00"]
name = "Overlaps itself and the night before"

[[holidays]]
date = "2026-06-01"
hours = ["22:00-09:00"]
name = "Runs into Tuesday's morning"
"#;
    let f = FILE;
    assert_eq!(
        errors(text),
        [
            format!("{f}:1:1: the calendar is missing required key `timezone`"),
            format!(
                "{f}:5:7: `hours.wed` must be a list of time ranges like [\"08:00-17:00\"], \
                 found integer"
            ),
            format!("{f}:9:8: give either `like` or `hours` for a moved workday, not both"),
            format!(
                "{f}:13:1: this moved workday needs its hours: `like = \"fri\"` (that weekday's \
                 hours) or `hours = [\"08:00-16:00\"]`"
            ),
            format!(
                "{f}:19:9: a moved workday with no hours would be closed all day; list its \
                 hours, or make it a holiday"
            ),
            format!("{f}:24:8: `name` must not be empty"),
            format!(
                "{f}:25:1: unknown key `hour` in this holiday ([[holidays]]) (did you mean \
                 `hours`? known keys: date, name, hours)"
            ),
            format!(
                "{f}:34:10: `07:00-12:00` overlaps 2026-12-30's overnight range `20:00-08:00`, \
                 which is open until 08:00 on 2026-12-31"
            ),
            format!("{f}:34:25: `11:00-13:00` overlaps `07:00-12:00` on 2026-12-31"),
            format!(
                "{f}:39:10: `22:00-09:00` runs overnight until 09:00 on 2026-06-02, \
                 overlapping that day's `08:00-17:00`"
            ),
        ]
    );

    let text = "timezone = \"UTC\"\nholidays = { date = \"2026-01-01\" }\nspecial = [1]\n\
                workdays = [{ date = 20260110, name = 3, like = \"fri\" }]\n\
                [hours]\nmon = [1, \"09:00-10:00\"]\n";
    assert_eq!(
        errors(text),
        [
            format!(
                "{f}:2:12: `holidays` must be a list of tables: write each one under its own \
                 [[holidays]] line, found table"
            ),
            format!("{f}:3:12: `special` must be a table ([[special]]), found integer"),
            format!(
                "{f}:4:22: `date` must be a date: \"YYYY-MM-DD\", or \"--MM-DD\" for every \
                 year, found integer"
            ),
            format!("{f}:4:39: `name` must be a string, found integer"),
            format!(
                "{f}:4:49: `like = \"fri\"`: fri has no open hours in [hours], so this moved \
                 workday would be closed all day; name a weekday that has hours, or give \
                 `hours = [...]` instead"
            ),
            format!(
                "{f}:6:8: time ranges in `hours.mon` must be strings like \"08:00-17:00\", \
                 found integer"
            ),
        ]
    );
}

#[test]
fn no_cascade_from_a_broken_weekday() {
    // Friday's range does not parse; `like = "fri"` is not a second error.
    let e = errors(
        "timezone = \"UTC\"\n[hours]\nfri = [\"8-14\"]\n\
         [[workdays]]\ndate = \"2026-01-10\"\nlike = \"fri\"\nname = \"x\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with(&format!("{FILE}:3:8: `8-14` is not a time range")));
}

#[test]
fn unknown_timezone_is_never_utc() {
    let e = errors("timezone = \"Mars/Olympus_Mons\"\n[hours]\nmon = [\"08:00-17:00\"]\n");
    assert_eq!(
        e,
        [format!(
            "{FILE}:1:12: unknown time zone `Mars/Olympus_Mons`; use an IANA name such as \
             \"Europe/Budapest\""
        )]
    );
    let e = errors("timezone = \"\"\n[hours]\n");
    assert_eq!(e.len(), 1);
    let e = errors("[hours]\nmon = [\"08:00-17:00\"]\n");
    assert_eq!(
        e,
        [format!(
            "{FILE}:1:1: the calendar is missing required key `timezone`"
        )]
    );
    // [hours] is required too: a calendar without it is a mistake.
    let e = errors("timezone = \"UTC\"\n");
    assert_eq!(
        e,
        [format!(
            "{FILE}:1:1: the calendar is missing required key `hours`"
        )]
    );
}

#[test]
fn file_name_is_the_calendar_name() {
    let c = parse_calendar(
        Path::new("x/office-hours.toml"),
        "timezone = \"UTC\"\n[hours]\n",
    );
    assert_eq!(c.unwrap().name(), "office-hours");
    let e = parse_calendar(
        Path::new("x/my hours.toml"),
        "timezone = \"UTC\"\n[hours]\n",
    );
    assert_eq!(
        e.unwrap_err()[0].to_string(),
        "x/my hours.toml: calendar file name `my hours` may only use letters, digits, `-`, `_` \
         and `.` (flows name a calendar by its file name without .toml)"
    );
}

#[test]
fn time_range_api() {
    let r: TimeRange = "22:00-06:00".parse().unwrap();
    assert!(r.is_overnight());
    assert_eq!(
        (r.start_minute(), r.end_minute(), r.minutes()),
        (1320, 360, 480)
    );
    assert_eq!(r.to_string(), "22:00-06:00");
    assert_eq!(TimeRange::new(0, 1440).unwrap().to_string(), "00:00-24:00");
    assert_eq!(TimeRange::new(600, 600), None);
    assert_eq!(TimeRange::new(1440, 60), None);
    assert!("10:00-10:00".parse::<TimeRange>().is_err());
}

const EVERY_DAY_MORNING_AND_NIGHT: &str = r#"timezone = "Europe/Budapest"

[hours]
mon = ["08:00-12:00", "22:00-06:00"]
tue = ["08:00-12:00", "22:00-06:00"]
wed = ["08:00-12:00", "22:00-06:00"]
thu = ["08:00-12:00", "22:00-06:00"]
fri = ["08:00-12:00", "22:00-06:00"]
sat = ["08:00-12:00", "22:00-06:00"]
sun = ["08:00-12:00", "22:00-06:00"]
"#;

#[test]
fn overnight_range_on_dst_nights() {
    let c = cal(EVERY_DAY_MORNING_AND_NIGHT);
    let hours = |open: &str, close: &str| (utc(close) - utc(open)).num_hours();

    // An ordinary winter night: 22:00 CET → 06:00 CET, 8 h.
    assert_opening(&c, "2026-03-21T21:00:00Z", "2026-03-22T05:00:00Z");
    assert_eq!(hours("2026-03-21T21:00:00Z", "2026-03-22T05:00:00Z"), 8);

    // Spring forward, 29 March 2026 02:00 → 03:00: 22:00 CET → 06:00 CEST,
    // 7 h of real time.
    assert_opening(&c, "2026-03-28T21:00:00Z", "2026-03-29T04:00:00Z");
    assert_eq!(hours("2026-03-28T21:00:00Z", "2026-03-29T04:00:00Z"), 7);
    // Open straight through the missing hour.
    assert!(c.is_open(utc("2026-03-29T00:59:59Z")));
    assert!(c.is_open(utc("2026-03-29T01:00:00Z")));

    // Fall back, 25 October 2026 03:00 → 02:00: 22:00 CEST → 06:00 CET, 9 h.
    assert_opening(&c, "2026-10-24T20:00:00Z", "2026-10-25T05:00:00Z");
    assert_eq!(hours("2026-10-24T20:00:00Z", "2026-10-25T05:00:00Z"), 9);
    assert!(c.is_open(utc("2026-10-25T00:30:00Z"))); // 02:30 CEST
    assert!(c.is_open(utc("2026-10-25T01:30:00Z"))); // 02:30 CET
}

#[test]
fn morning_opening_on_dst_days() {
    let c = cal(EVERY_DAY_MORNING_AND_NIGHT);
    // 08:00 the day before the change is still winter time (UTC+1) …
    assert_opening(&c, "2026-03-28T07:00:00Z", "2026-03-28T11:00:00Z");
    // … and on the change day itself it is summer time (UTC+2).
    assert_opening(&c, "2026-03-29T06:00:00Z", "2026-03-29T10:00:00Z");
    let s = c.status(utc("2026-03-29T06:00:00Z"));
    assert_eq!((s.local.hour(), s.local.minute()), (8, 0));
    assert_eq!(s.local.offset().to_string(), "CEST");
    assert!(s.open);

    // Autumn: 08:00 CEST the day before, 08:00 CET on the change day.
    assert_opening(&c, "2026-10-24T06:00:00Z", "2026-10-24T10:00:00Z");
    assert_opening(&c, "2026-10-25T07:00:00Z", "2026-10-25T11:00:00Z");
    let s = c.status(utc("2026-10-25T07:00:00Z"));
    assert_eq!(
        (s.local.hour(), s.local.offset().to_string()),
        (8, "CET".into())
    );
}

#[test]
fn boundaries_inside_the_dst_change() {
    let c = cal("timezone = \"Europe/Budapest\"\n[hours]\nsun = [\"02:30-05:00\"]\n");
    // An ordinary Sunday: 02:30-05:00 CEST.
    assert_opening(&c, "2026-10-18T00:30:00Z", "2026-10-18T03:00:00Z");
    // 02:30 does not exist on 29 March: it opens when the clock jumps to 03:00.
    assert_opening(&c, "2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z");
    // 02:30 happens twice on 25 October: the clock reading decides, so it
    // opens at 02:30 CEST, closes when the clock falls back to 02:00, and
    // opens again at 02:30 CET until 05:00 CET.
    let at = utc("2026-10-25T00:00:00Z");
    assert_eq!(c.next_open(at), Some(utc("2026-10-25T00:30:00Z")));
    assert_eq!(
        c.next_close(utc("2026-10-25T00:30:00Z")),
        Some(utc("2026-10-25T01:00:00Z"))
    );
    assert_eq!(
        c.next_open(utc("2026-10-25T01:00:00Z")),
        Some(utc("2026-10-25T01:30:00Z"))
    );
    assert_eq!(
        c.next_close(utc("2026-10-25T01:30:00Z")),
        Some(utc("2026-10-25T04:00:00Z"))
    );
}

#[test]
fn midnight_boundaries() {
    let c = cal(r#"timezone = "Europe/Budapest"
[hours]
mon = ["20:00-24:00"]
tue = ["00:00-06:00"]
wed = ["09:00-17:00"]
thu = ["22:00-00:00"]
"#);
    // Monday 20:00-24:00 and Tuesday 00:00-06:00 touch: one opening.
    let mon_2359 = utc("2026-01-05T22:59:59Z");
    let tue_0000 = utc("2026-01-05T23:00:00Z");
    assert!(c.is_open(mon_2359));
    assert!(c.is_open(tue_0000));
    assert_eq!(
        c.next_close(utc("2026-01-05T19:00:00Z")),
        Some(utc("2026-01-06T05:00:00Z"))
    );
    let s = c.status(mon_2359);
    assert_eq!(s.local.date_naive(), day("2026-01-05"));
    assert_eq!(s.day, DayKind::Workday);
    let s = c.status(tue_0000);
    assert_eq!(s.local.date_naive(), day("2026-01-06"));
    assert_eq!((s.local.hour(), s.open), (0, true));

    // Thursday 22:00 until midnight (written 00:00): open at 23:59:59, closed
    // at 00:00:00 Friday.
    assert_opening(&c, "2026-01-08T21:00:00Z", "2026-01-08T23:00:00Z");
    assert!(c.is_open(utc("2026-01-08T22:59:59Z")));
    let s = c.status(utc("2026-01-08T23:00:00Z"));
    assert_eq!((s.local.date_naive(), s.open), (day("2026-01-09"), false));
    assert_eq!(s.day, DayKind::Weekend); // Friday has no hours
}

#[test]
fn year_end_into_a_recurring_new_year() {
    let c = cal(r#"timezone = "Europe/Budapest"
[hours]
mon = ["08:00-17:00"]
tue = ["08:00-17:00"]
wed = ["08:00-17:00"]
thu = ["08:00-17:00", "22:00-02:00"]
fri = ["08:00-17:00"]

[[holidays]]
date = "--01-01"
name = "New Year's Day"

[[holidays]]
date = "2026-12-24"
name = "Christmas Eve"
"#);
    // Thursday 31 December 2026: the night range runs into the holiday (a
    // range belongs to the day it starts on).
    assert_opening(&c, "2026-12-31T21:00:00Z", "2027-01-01T01:00:00Z");
    let s = c.status(utc("2026-12-31T22:59:59Z"));
    assert_eq!((s.local.date_naive(), s.open), (day("2026-12-31"), true));
    assert_eq!(s.day, DayKind::Workday);
    let s = c.status(utc("2026-12-31T23:00:00Z"));
    assert_eq!((s.local.date_naive(), s.open), (day("2027-01-01"), true));
    assert_eq!(s.day, holiday("New Year's Day"));
    // The holiday itself (a Friday) stays closed; next opening is Monday.
    assert!(!c.is_open(utc("2027-01-01T09:00:00Z")));
    assert_eq!(
        c.next_open(utc("2027-01-01T01:00:00Z")),
        Some(utc("2027-01-04T07:00:00Z"))
    );
    assert_eq!(c.day_kind(day("2028-01-01")), holiday("New Year's Day"));

    // A holiday Thursday has no night range either: Friday 00:30 is closed.
    assert!(!c.is_open(utc("2026-12-24T10:00:00Z")));
    assert!(!c.is_open(utc("2026-12-24T23:30:00Z")));
    assert!(!c.is_open(utc("2026-12-23T23:30:00Z"))); // Wednesday has no night range
    assert!(c.is_open(utc("2026-12-17T23:30:00Z"))); // an ordinary Thursday night
}

#[test]
fn recurring_and_dated_days() {
    let c = cal(r#"timezone = "Europe/Budapest"
[hours]
mon = ["08:00-17:00"]
tue = ["08:00-17:00"]
wed = ["08:00-17:00"]
thu = ["08:00-17:00"]
fri = ["08:00-17:00"]

[[holidays]]
date = "--12-24"
name = "Christmas Eve"

[[holidays]]
date = "2026-12-24"
hours = ["08:00-12:00"]
name = "Christmas Eve, short day"

[[special]]
date = "--12-31"
hours = ["08:00-12:00"]
name = "New Year's Eve"

[[special]]
date = "2027-12-31"
hours = ["09:00-10:00"]
name = "New Year's Eve 2027"

[[holidays]]
date = "2029-12-31"
name = "Bridge day"

[[workdays]]
date = "2028-12-31"
like = "fri"
name = "Working Sunday"
"#);
    // A dated holiday overrides the every-year one: shortened hours in 2026.
    assert_eq!(
        c.day_kind(day("2026-12-24")),
        holiday("Christmas Eve, short day")
    );
    assert_opening(&c, "2026-12-24T07:00:00Z", "2026-12-24T11:00:00Z");
    // Other years: the every-year holiday, closed all day (a Friday in 2027).
    assert_eq!(c.day_kind(day("2027-12-24")), holiday("Christmas Eve"));
    assert!(!c.is_open(utc("2027-12-24T09:00:00Z")));
    // Every-year special day, and a dated one overriding it.
    assert_opening(&c, "2026-12-31T07:00:00Z", "2026-12-31T11:00:00Z");
    assert_opening(&c, "2027-12-31T08:00:00Z", "2027-12-31T09:00:00Z");
    assert_eq!(
        c.day_kind(day("2027-12-31")).name(),
        Some("New Year's Eve 2027")
    );
    // A holiday beats a special day; a moved workday beats a special day.
    assert_eq!(c.day_kind(day("2029-12-31")), holiday("Bridge day"));
    assert!(!c.is_open(utc("2029-12-31T09:00:00Z")));
    assert_eq!(
        c.day_kind(day("2028-12-31")),
        DayKind::MovedWorkday {
            name: "Working Sunday".into()
        }
    );
    assert_opening(&c, "2028-12-31T07:00:00Z", "2028-12-31T16:00:00Z");
}

#[test]
fn new_york_is_not_budapest() {
    let c = cal(r#"timezone = "America/New_York"
[hours]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]
"#);
    assert_eq!(c.timezone(), chrono_tz::America::New_York);
    // Friday 6 March 2026: EST (UTC-5).
    assert_opening(&c, "2026-03-06T14:00:00Z", "2026-03-06T22:00:00Z");
    // US clocks spring forward on Sunday 8 March: Monday is EDT (UTC-4).
    assert_eq!(
        c.next_open(utc("2026-03-06T22:00:00Z")),
        Some(utc("2026-03-09T13:00:00Z"))
    );
    assert_opening(&c, "2026-03-09T13:00:00Z", "2026-03-09T21:00:00Z");
    // Between the US and European changes (Budapest still on CET).
    assert_eq!(
        c.status(utc("2026-03-20T13:00:00Z")).local.to_rfc3339(),
        "2026-03-20T09:00:00-04:00"
    );
    // And back on Sunday 1 November.
    assert_opening(&c, "2026-10-30T13:00:00Z", "2026-10-30T21:00:00Z");
    assert_opening(&c, "2026-11-02T14:00:00Z", "2026-11-02T22:00:00Z");
}

#[test]
fn next_open_and_close_edges() {
    let always = cal(r#"timezone = "UTC"
[hours]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]
"#);
    let at = utc("2026-06-01T12:34:56Z");
    assert_eq!(always.next_open(at), Some(at));
    assert_eq!(always.next_close(at), None);

    let never = cal("timezone = \"UTC\"\n[hours]\n");
    assert_eq!(never.next_open(at), None);
    assert_eq!(never.next_close(at), Some(at));
    assert_eq!(never.day_kind(day("2026-06-01")), DayKind::Weekend);

    // Only one special day: found within 366 days, not beyond.
    let once = cal(r#"timezone = "Europe/Budapest"
[hours]

[[special]]
date = "2028-01-03"
hours = ["08:00-09:00"]
name = "Open day"
"#);
    assert_eq!(
        once.next_open(utc("2027-06-01T00:00:00Z")),
        Some(utc("2028-01-03T07:00:00Z"))
    );
    assert_eq!(once.next_open(utc("2026-06-01T00:00:00Z")), None);
    assert_eq!(
        once.next_close(utc("2028-01-03T07:00:00Z")),
        Some(utc("2028-01-03T08:00:00Z"))
    );
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hotline-calendar-test-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_a_directory() {
    let t = TempDir::new("load");
    assert!(load_calendars(&t.0.join("nope")).unwrap().is_empty());

    t.write(
        "office.toml",
        "timezone = \"Europe/Budapest\"\n[hours]\nmon = [\"08:00-17:00\"]\n",
    );
    t.write(
        "night.toml",
        "timezone = \"Europe/Budapset\"\n[hours]\nmon = [\"22:00-22:00\"]\n",
    );
    t.write(".office.toml.swp", "not toml");
    t.write(".hidden.toml", "not toml");
    t.write("notes.txt", "not toml");
    std::fs::create_dir_all(t.0.join("old")).unwrap();
    t.write("old/x.toml", "not toml");
    std::fs::write(t.0.join("latin1.toml"), b"timezone = \"UTC\"\n# caf\xe9\n").unwrap();

    let errors: Vec<String> = load_calendars(&t.0)
        .unwrap_err()
        .iter()
        .map(|e| {
            let name = e.file.file_name().unwrap().to_string_lossy().into_owned();
            format!("{name}:{}:{}: {}", e.line, e.col, e.message)
        })
        .collect();
    assert_eq!(
        errors,
        [
            "latin1.toml:2:6: file is not valid UTF-8",
            "night.toml:1:12: unknown time zone `Europe/Budapset` (did you mean \
             `Europe/Budapest`?); use an IANA name such as \"Europe/Budapest\"",
            "night.toml:3:8: `22:00-22:00` is an empty range (it starts when it ends)",
        ]
    );

    t.write(
        "night.toml",
        "timezone = \"Europe/Budapest\"\n[hours]\nmon = [\"22:00-06:00\"]\n",
    );
    std::fs::remove_file(t.0.join("latin1.toml")).unwrap();
    let set = load_calendars(&t.0).unwrap();
    assert_eq!(set.keys().collect::<Vec<_>>(), ["night", "office"]);
    assert_eq!(set["night"].name(), "night");
    assert_eq!(set["office"].file(), t.0.join("office.toml"));
}

fn shipped() -> std::sync::Arc<Calendar> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows/calendars");
    let set = match load_calendars(&dir) {
        Ok(s) => s,
        Err(e) => panic!("{}", e.iter().map(|e| format!("{e}\n")).collect::<String>()),
    };
    set.get("hungary").cloned().unwrap()
}

#[test]
fn shipped_hungarian_calendar() {
    let hu = shipped();
    assert_eq!(hu.timezone(), chrono_tz::Europe::Budapest);

    // An ordinary Tuesday, 10:00 CET.
    let s = hu.status(utc("2026-03-10T09:00:00Z"));
    assert_eq!((s.day, s.open), (DayKind::Workday, true));
    // Friday closes at 14:00.
    assert!(hu.is_open(utc("2026-03-13T12:59:59Z")));
    assert!(!hu.is_open(utc("2026-03-13T13:00:00Z")));

    // National Day, every year (a Sunday in 2026, a Monday in 2027).
    for d in ["2026-03-15", "2027-03-15"] {
        assert_eq!(
            hu.day_kind(day(d)).name(),
            Some("National Day, 1848 Revolution (nemzeti ünnep)")
        );
    }
    assert!(!hu.is_open(utc("2027-03-15T09:00:00Z")));

    // Good Friday 2026, 10:00 CEST: closed.
    let s = hu.status(utc("2026-04-03T08:00:00Z"));
    assert_eq!(s.day, holiday("Good Friday (nagypéntek)"));
    assert!(!s.open);
    // Easter: closed Thursday 17:00 to Tuesday 08:00 (Good Friday, the
    // weekend, Easter Monday).
    assert_eq!(
        hu.next_close(utc("2026-04-02T08:00:00Z")),
        Some(utc("2026-04-02T15:00:00Z"))
    );
    assert_eq!(
        hu.next_open(utc("2026-04-02T15:00:00Z")),
        Some(utc("2026-04-07T06:00:00Z"))
    );

    // New Year 2026: Thursday holiday, Friday bridge day, worked on
    // Saturday 10 January with Friday's hours (08:00-14:00 CET).
    assert_eq!(
        hu.next_open(utc("2025-12-31T23:00:00Z")),
        Some(utc("2026-01-05T07:00:00Z"))
    );
    assert_eq!(
        hu.day_kind(day("2026-01-02")).name(),
        Some("Bridge day after New Year (áthelyezett pihenőnap)")
    );
    let s = hu.status(utc("2026-01-10T09:00:00Z"));
    assert!(s.open);
    assert!(matches!(s.day, DayKind::MovedWorkday { .. }));
    assert_opening(&hu, "2026-01-10T07:00:00Z", "2026-01-10T13:00:00Z");
    // 21 August off, 8 August worked; 24 December off, 12 December worked
    // with Thursday's hours (until 17:00).
    assert!(!hu.is_open(utc("2026-08-21T08:00:00Z")));
    assert!(hu.is_open(utc("2026-08-08T08:00:00Z")));
    assert!(!hu.is_open(utc("2026-12-24T09:00:00Z")));
    assert_opening(&hu, "2026-12-12T07:00:00Z", "2026-12-12T16:00:00Z");

    // 2027's movable holidays.
    for d in ["2027-03-26", "2027-03-29", "2027-05-17"] {
        assert!(
            matches!(hu.day_kind(day(d)), DayKind::Holiday { .. }),
            "{d}"
        );
    }
    // Every holiday and moved day has a name.
    let mut d = day("2026-01-01");
    while d < day("2028-01-01") {
        if let Some(name) = hu.day_kind(d).name() {
            assert!(!name.trim().is_empty(), "{d}");
        }
        d = d.succ_opt().unwrap();
    }
}

#[test]
fn a_midnight_that_does_not_exist() {
    // Chile springs forward at 24:00 on the first Saturday of September:
    // Sunday 6 September 2026 starts at 01:00 (-03), 00:00 never happens.
    let c = cal(r#"timezone = "America/Santiago"
[hours]
sat = ["20:00-24:00"]
sun = ["00:00-02:00"]
"#);
    // Saturday 20:00 -04 until Sunday 02:00 -03: one opening of 5 h.
    assert_opening(&c, "2026-09-06T00:00:00Z", "2026-09-06T05:00:00Z");
    let s = c.status(utc("2026-09-06T04:00:00Z"));
    assert_eq!(s.local.to_rfc3339(), "2026-09-06T01:00:00-03:00");
    assert!(c.is_open(utc("2026-09-06T03:59:59Z"))); // Saturday 23:59:59 -04
}
