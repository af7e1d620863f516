//! Auto-callback windows on virtual times: weekday hours, overnight rules,
//! calendars (holidays, moved workdays), the DST days of Europe/Budapest at
//! their transitions, and `next_open` checked against a minute-by-minute
//! search.
//!
//! Budapest is UTC+1 in winter (CET) and UTC+2 in summer (CEST). In 2026 the
//! clocks go 02:00 → 03:00 on 29 March (at 01:00 UTC) and 03:00 → 02:00 on
//! 25 October (at 01:00 UTC).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use hotline_ivr::calendar::{Calendar, parse_calendar};
use hotline_ivr::{CallbackWindow, WindowError, WindowRule};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window(rules: &[&str]) -> CallbackWindow {
    CallbackWindow::parse(rules, "Europe/Budapest", None).unwrap()
}

fn with_calendar(rules: &[&str], calendar: &str) -> CallbackWindow {
    CallbackWindow::parse(rules, "Europe/Budapest", Some(calendar)).unwrap()
}

fn fixture(name: &str) -> Calendar {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/calendars")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    parse_calendar(&path, &text).unwrap()
}

/// Which of `times` (RFC 3339) the window is open at.
fn open_at(w: &CallbackWindow, cal: Option<&Calendar>, times: &[&str]) -> Vec<bool> {
    times.iter().map(|t| w.is_open(utc(t), cal)).collect()
}

#[test]
fn weekday_hours() {
    // 09:00 to 16:00, Monday to Friday.
    let w = window(&["* 9-15 * * mon-fri"]);
    assert_eq!(
        open_at(
            &w,
            None,
            &[
                "2026-03-02T08:59:59+01:00", // Monday, a second early
                "2026-03-02T09:00:00+01:00",
                "2026-03-02T15:59:59+01:00",
                "2026-03-02T16:00:00+01:00",
                "2026-03-06T12:00:00+01:00", // Friday
                "2026-03-07T12:00:00+01:00", // Saturday
                "2026-03-08T12:00:00+01:00", // Sunday
                // Summer time: the same wall clock, an hour earlier in UTC.
                "2026-06-01T09:00:00+02:00",
                "2026-06-01T06:59:00Z", // 08:59 CEST
            ]
        ),
        [false, true, true, false, true, false, false, true, false]
    );
    // Open now: now. Mid-minute before opening: the opening minute.
    let open = utc("2026-03-02T10:17:42+01:00");
    assert_eq!(w.next_open(open, None), Some(open));
    assert_eq!(
        w.next_open(utc("2026-03-02T08:59:30+01:00"), None),
        Some(utc("2026-03-02T09:00:00+01:00"))
    );
    // After Friday's close: across the weekend to Monday 09:00.
    assert_eq!(
        w.next_open(utc("2026-03-06T16:00:00+01:00"), None),
        Some(utc("2026-03-09T09:00:00+01:00"))
    );
    // Across the weekend of the spring change: Monday 09:00 is summer time.
    assert_eq!(
        w.next_open(utc("2026-03-27T17:00:00+01:00"), None),
        Some(utc("2026-03-30T09:00:00+02:00"))
    );
}

#[test]
fn overnight_rule() {
    // 22:00 to 05:00: a cron range cannot wrap, so two ranges.
    let w = window(&["* 22-23,0-4 * * *"]);
    assert_eq!(
        open_at(
            &w,
            None,
            &[
                "2026-03-03T21:59:00+01:00",
                "2026-03-03T22:00:00+01:00",
                "2026-03-03T23:59:59+01:00",
                "2026-03-04T00:00:00+01:00",
                "2026-03-04T04:59:00+01:00",
                "2026-03-04T05:00:00+01:00",
                "2026-03-04T12:00:00+01:00",
            ]
        ),
        [false, true, true, true, true, false, false]
    );
    assert_eq!(
        w.next_open(utc("2026-03-04T05:00:00+01:00"), None),
        Some(utc("2026-03-04T22:00:00+01:00"))
    );
    // Written as a wrapping range: refused with the rewrite.
    assert_eq!(
        WindowRule::parse("* 22-4 * * *").unwrap_err(),
        WindowError::BackwardsRange {
            rule: "* 22-4 * * *".to_owned(),
            field: "hour",
            range: "22-4".to_owned(),
            suggestion: "22-23,0-4".to_owned(),
        }
    );
    // A rule's day fields are about the minute's own day: Friday night
    // into Saturday needs a Saturday rule too.
    let fri = window(&["* 22-23 * * fri", "* 0-4 * * sat"]);
    assert_eq!(
        open_at(
            &fri,
            None,
            &[
                "2026-03-06T23:00:00+01:00", // Friday
                "2026-03-07T03:00:00+01:00", // Saturday morning
                "2026-03-07T23:00:00+01:00", // Saturday night
                "2026-03-06T03:00:00+01:00", // Friday morning
            ]
        ),
        [true, true, false, false]
    );
}

#[test]
fn day_of_month_or_day_of_week() {
    // Both restricted: the 1st of the month or any Monday (standard cron).
    let w = window(&["* 10 1 * mon"]);
    assert_eq!(
        open_at(
            &w,
            None,
            &[
                "2026-03-01T10:30:00+01:00", // Sunday the 1st
                "2026-03-02T10:30:00+01:00", // Monday the 2nd
                "2026-03-03T10:30:00+01:00", // Tuesday
            ]
        ),
        [true, true, false]
    );
    // One of them `*`: only the other counts.
    let first = window(&["* 10 1 * *"]);
    assert_eq!(
        open_at(
            &first,
            None,
            &["2026-03-01T10:30:00+01:00", "2026-03-02T10:30:00+01:00"]
        ),
        [true, false]
    );
    // Names, lists and steps; months by name.
    let w = window(&["*/15 8,12 * jan,dec sat-sun"]);
    assert_eq!(
        open_at(
            &w,
            None,
            &[
                "2026-12-05T08:15:00+01:00", // Saturday in December
                "2026-12-05T08:16:00+01:00",
                "2026-12-06T12:45:00+01:00", // Sunday
                "2026-11-07T08:15:00+01:00", // November
                "2026-12-07T08:15:00+01:00", // Monday
            ]
        ),
        [true, false, true, false, false]
    );
}

#[test]
fn holidays_and_closed_hours_of_the_calendar() {
    let office = fixture("office");
    // Every day 09:00-16:00, but only when the office calendar is open.
    let w = with_calendar(&["* 9-15 * * *"], "office");
    assert_eq!(
        open_at(
            &w,
            Some(&office),
            &[
                "2026-12-23T10:00:00+01:00", // Wednesday
                "2026-12-24T10:00:00+01:00", // holiday (Christmas Eve)
                "2026-12-25T10:00:00+01:00", // every-year holiday
                "2026-12-11T13:59:00+01:00", // Friday: office closes 14:00
                "2026-12-11T14:00:00+01:00",
                "2026-12-05T10:00:00+01:00", // Saturday: office closed
            ]
        ),
        [true, false, false, true, false, false]
    );
    // The window names a calendar: without it, closed and no next opening.
    let t = utc("2026-12-23T10:00:00+01:00");
    assert!(!w.is_open(t, None));
    assert_eq!(w.next_open(t, None), None);
    // A window without a calendar ignores one passed in.
    assert!(window(&["* 9-15 * * *"]).is_open(utc("2026-12-24T10:00:00+01:00"), Some(&office)));

    // Across Christmas: Thursday and Friday holidays, the weekend, Monday.
    assert_eq!(
        w.next_open(utc("2026-12-23T16:00:00+01:00"), Some(&office)),
        Some(utc("2026-12-28T09:00:00+01:00"))
    );
    // Across New Year: the short 31st (08:00-12:00), the holiday, a weekend.
    assert_eq!(
        w.next_open(utc("2026-12-31T08:30:00+01:00"), Some(&office)),
        Some(utc("2026-12-31T09:00:00+01:00"))
    );
    assert_eq!(
        w.next_open(utc("2026-12-31T12:00:00+01:00"), Some(&office)),
        Some(utc("2027-01-04T09:00:00+01:00"))
    );
    // The calendar opens later than the rule: Friday after 14:00, to Monday
    // (the Saturday 12 December is a moved workday: see below).
    assert_eq!(
        w.next_open(utc("2026-12-04T14:00:00+01:00"), Some(&office)),
        Some(utc("2026-12-07T09:00:00+01:00"))
    );
}

#[test]
fn a_holiday_with_short_hours_is_still_a_holiday() {
    let cal = parse_calendar(
        Path::new("calendars/short.toml"),
        r#"timezone = "Europe/Budapest"
[hours]
mon = ["08:00-17:00"]
tue = ["08:00-17:00"]
wed = ["08:00-17:00"]
thu = ["08:00-17:00"]
fri = ["08:00-17:00"]

[[holidays]]
date = "2026-12-24"
name = "Christmas Eve"
hours = ["08:00-12:00"]
"#,
    )
    .unwrap();
    let t = utc("2026-12-24T10:00:00+01:00");
    assert!(cal.is_open(t), "the calendar itself is open");
    let w = with_calendar(&["* 9-15 * * *"], "short");
    assert!(!w.is_open(t, Some(&cal)));
    // The next day (Christmas is an ordinary Friday in this calendar).
    assert_eq!(
        w.next_open(t, Some(&cal)),
        Some(utc("2026-12-25T09:00:00+01:00"))
    );
}

#[test]
fn moved_saturday_workday() {
    let office = fixture("office");
    // Saturday 12 December 2026 is worked like a Thursday (08:00-17:00).
    let every_day = with_calendar(&["* 9-15 * * *"], "office");
    assert_eq!(
        open_at(
            &every_day,
            Some(&office),
            &[
                "2026-12-12T10:00:00+01:00", // the moved workday
                "2026-12-05T10:00:00+01:00", // an ordinary Saturday
            ]
        ),
        [true, false]
    );
    assert_eq!(
        every_day.next_open(utc("2026-12-11T16:00:00+01:00"), Some(&office)),
        Some(utc("2026-12-12T09:00:00+01:00"))
    );
    // The calendar only closes: a Monday-Friday rule does not open on the
    // moved Saturday (documented; write `* *` day fields with a calendar).
    let weekdays = with_calendar(&["* 9-15 * * mon-fri"], "office");
    assert!(!weekdays.is_open(utc("2026-12-12T10:00:00+01:00"), Some(&office)));
    assert_eq!(
        weekdays.next_open(utc("2026-12-11T16:00:00+01:00"), Some(&office)),
        Some(utc("2026-12-14T09:00:00+01:00"))
    );
}

#[test]
fn spring_forward_in_budapest() {
    // 29 March 2026: 01:59:59 CET (00:59:59Z) is followed by 03:00 CEST
    // (01:00Z). The wall-clock minutes 02:00-02:59 do not happen.
    let before = "2026-03-29T00:59:00Z"; // 01:59 local
    let after = "2026-03-29T01:00:00Z"; // 03:00 local

    let early = window(&["* 0-1 * * *"]);
    let three = window(&["* 3 * * *"]);
    let two = window(&["* 2 * * *"]);
    let half_past_two = window(&["30 2 * * *"]);
    assert_eq!(open_at(&early, None, &[before, after]), [true, false]);
    assert_eq!(open_at(&three, None, &[before, after]), [false, true]);
    assert_eq!(open_at(&two, None, &[before, after]), [false, false]);

    // The minute right after the jump opens a 03:00 rule.
    assert_eq!(three.next_open(utc(before), None), Some(utc(after)));
    // 02:xx does not happen that day: the next one is Monday's (summer time).
    assert_eq!(
        two.next_open(utc(before), None),
        Some(utc("2026-03-30T02:00:00+02:00"))
    );
    assert_eq!(
        half_past_two.next_open(utc("2026-03-28T23:00:00Z"), None),
        Some(utc("2026-03-30T02:30:00+02:00"))
    );
    // Each real minute of the night, a 02:30 rule is never open.
    let mut t = utc("2026-03-28T23:00:00Z");
    while t < utc("2026-03-29T04:00:00Z") {
        assert!(!half_past_two.is_open(t, None), "{t}");
        t += TimeDelta::minutes(1);
    }
    // An every-minute rule around the jump: no gap in real time.
    let always = window(&["* * * * *"]);
    assert_eq!(open_at(&always, None, &[before, after]), [true, true]);
}

#[test]
fn fall_back_in_budapest() {
    // 25 October 2026: 02:59:59 CEST (00:59:59Z) is followed by 02:00 CET
    // (01:00Z). The wall-clock minutes 02:00-02:59 happen twice.
    let before = "2026-10-25T00:59:00Z"; // 02:59 CEST
    let after = "2026-10-25T01:00:00Z"; // 02:00 CET

    let two = window(&["* 2 * * *"]);
    let three = window(&["* 3 * * *"]);
    assert_eq!(open_at(&two, None, &[before, after]), [true, true]);
    assert_eq!(open_at(&three, None, &[before, after]), [false, false]);
    // From 02:59 CEST, 03:00 comes after the repeated hour.
    assert_eq!(
        three.next_open(utc(before), None),
        Some(utc("2026-10-25T03:00:00+01:00"))
    );

    // Both 02:30s are open, and nothing else that night.
    let w = window(&["30 2 * * *"]);
    let first = utc("2026-10-25T02:30:00+02:00");
    let second = utc("2026-10-25T02:30:00+01:00");
    assert_eq!(second - first, TimeDelta::hours(1));
    let mut opened = Vec::new();
    let mut t = utc("2026-10-24T22:00:00Z");
    while t < utc("2026-10-25T04:00:00Z") {
        if w.is_open(t, None) {
            opened.push(t);
        }
        t += TimeDelta::minutes(1);
    }
    assert_eq!(opened, [first, second]);

    // next_open neither skips the second 02:30 nor loops on the first.
    assert_eq!(
        w.next_open(utc("2026-10-25T00:00:00+02:00"), None),
        Some(first)
    );
    assert_eq!(w.next_open(first, None), Some(first));
    assert_eq!(
        w.next_open(first + TimeDelta::minutes(1), None),
        Some(second)
    );
    // From 02:45 CEST the hour has no 02:30 left; the repeated hour has.
    assert_eq!(
        w.next_open(utc("2026-10-25T02:45:00+02:00"), None),
        Some(second)
    );
    assert_eq!(
        w.next_open(second + TimeDelta::seconds(1), None),
        Some(second + TimeDelta::seconds(1)),
        "still inside the open minute"
    );
    assert_eq!(
        w.next_open(second + TimeDelta::minutes(1), None),
        Some(utc("2026-10-26T02:30:00+01:00"))
    );
}

#[test]
fn zones() {
    assert!(matches!(
        CallbackWindow::parse(&["* * * * *"], "Mars/Olympus", None),
        Err(WindowError::UnknownZone { .. })
    ));
    let e = CallbackWindow::parse(&["* * * * *"], "budapest", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown time zone `budapest` (did you mean `Europe/Budapest`?); use an IANA name such as \"Europe/Budapest\""
    );
    // Not UTC by accident: the same rule in two zones.
    let london = CallbackWindow::parse(&["* 9 * * *"], "Europe/London", None).unwrap();
    let budapest = window(&["* 9 * * *"]);
    let t = utc("2026-03-02T09:30:00Z");
    assert!(london.is_open(t, None));
    assert!(!budapest.is_open(t, None));
    assert_eq!(london.time_zone(), chrono_tz::Europe::London);
}

#[test]
fn windows_that_never_open() {
    let none = CallbackWindow::default();
    assert!(!none.is_open(utc("2026-03-02T10:00:00Z"), None));
    assert_eq!(none.next_open(utc("2026-03-02T10:00:00Z"), None), None);
    // 31 February: parses, never matches; the search is bounded.
    let never = window(&["* * 31 2 *"]);
    assert_eq!(never.next_open(utc("2026-03-02T10:00:00Z"), None), None);
    // A rule a year away is found; one past the search limit is not.
    let once_a_year = window(&["0 12 1 3 *"]);
    assert_eq!(
        once_a_year.next_open(utc("2026-03-01T12:01:00+01:00"), None),
        Some(utc("2027-03-01T12:00:00+01:00"))
    );
    let leap_day = window(&["0 12 29 2 *"]);
    assert_eq!(
        leap_day.next_open(utc("2026-03-02T10:00:00Z"), None),
        None,
        "29 February 2028 is more than 400 days ahead"
    );
}

/// The first open instant at or after `from`, minute by minute (slow, plain).
fn brute_next_open(
    w: &CallbackWindow,
    cal: Option<&Calendar>,
    from: DateTime<Utc>,
    days: i64,
) -> Option<DateTime<Utc>> {
    if w.is_open(from, cal) {
        return Some(from);
    }
    let secs = from.timestamp();
    let mut t = DateTime::from_timestamp(secs - secs.rem_euclid(60) + 60, 0).unwrap();
    let end = from + TimeDelta::days(days);
    while t <= end {
        if w.is_open(t, cal) {
            return Some(t);
        }
        t += TimeDelta::minutes(1);
    }
    None
}

/// Rules, the calendar (name and loaded), where the starts begin.
type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a Calendar)>, &'a str);

#[test]
fn next_open_agrees_with_a_minute_by_minute_search() {
    let office = fixture("office");
    let dst = fixture("dst");
    let cases: [Case<'_>; 7] = [
        (&["30 2 * * *"], None, "2026-03-27T00:00:00Z"),
        (&["30 2 * * *"], None, "2026-10-23T00:00:00Z"),
        (
            &["*/20 1-3 * * sun", "59 23 * * *"],
            None,
            "2026-10-23T00:00:00Z",
        ),
        (
            &["*/20 1-3 * * sun", "0 0 * * *"],
            None,
            "2026-03-27T00:00:00Z",
        ),
        (
            &["* 2 * * *", "45 9-15 * * mon-fri"],
            Some(("dst", &dst)),
            "2026-10-23T00:00:00Z",
        ),
        (
            &["* 9-15 * * *"],
            Some(("office", &office)),
            "2026-12-22T00:00:00Z",
        ),
        (
            &["*/7 * * * *"],
            Some(("dst", &dst)),
            "2026-03-27T00:00:00Z",
        ),
    ];
    for (rules, cal, start) in cases {
        let w = match cal {
            Some((name, _)) => with_calendar(rules, name),
            None => window(rules),
        };
        let cal = cal.map(|(_, c)| c);
        // Starts every 97 minutes and 13 seconds over four days.
        let mut from = utc(start);
        let end = from + TimeDelta::days(4);
        let mut checked = 0;
        while from < end {
            let expected = brute_next_open(&w, cal, from, 8);
            assert!(
                expected.is_some(),
                "{rules:?} from {from}: test horizon too short"
            );
            assert_eq!(w.next_open(from, cal), expected, "{rules:?} from {from}");
            from += TimeDelta::seconds(97 * 60 + 13);
            checked += 1;
        }
        assert!(checked > 50);
    }
}
