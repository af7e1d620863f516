//! `schedule` steps through the interpreter, at the edges: midnight,
//! overnight ranges, the DST change days in Europe/Budapest, a moved
//! Saturday workday, 31 December → 1 January. Test calendars are in
//! tests/fixtures/calendars; only `hungary_smoke` reads the shipped one.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{Clock, TempFlows, call, drain, play};
use hotline_ivr::{Action, FlowSet};

const BRANCHES: &[&str] = &["open", "closed", "holiday", "weekend", "xmas", "hello"];

/// Number "1": the schedule first; "2": a play step, then the schedule.
fn set(calendar: &str) -> (TempFlows, FlowSet) {
    let t = TempFlows::new(&format!("sched-{calendar}"));
    t.calendar(calendar).prompts(BRANCHES).flow(
        "s.toml",
        &format!(
            r#"name = "s"
numbers = ["1"]
start = "hours"

[steps.hours]
type = "schedule"
calendar = "{calendar}"
open = "open"
closed = "closed"
holiday = "holiday"
weekend = "weekend"
days = {{ "Christmas Eve" = "xmas" }}

[steps.open]
type = "hangup"
prompts = "open"

[steps.closed]
type = "hangup"
prompts = "closed"

[steps.holiday]
type = "hangup"
prompts = "holiday"

[steps.weekend]
type = "hangup"
prompts = "weekend"

[steps.xmas]
type = "hangup"
prompts = "xmas"
"#
        ),
    );
    t.flow(
        "later.toml",
        &format!(
            r#"name = "later"
numbers = ["2"]
start = "hello"

[steps.hello]
type = "play"
prompts = "hello"
next = "hours"

[steps.hours]
type = "schedule"
calendar = "{calendar}"
open = "open"
closed = "closed"

[steps.open]
type = "hangup"
prompts = "open"

[steps.closed]
type = "hangup"
prompts = "closed"
"#
        ),
    );
    let set = t.load();
    (t, set)
}

/// The branch a call answered at `at` takes.
fn branch(set: &FlowSet, at: &str) -> String {
    let clock = Clock::new();
    let run = call(set, "1", "06301234567", at, &clock);
    assert_eq!(run.path().len(), 2, "{:?}", run.path());
    run.path()[1].clone()
}

fn check(set: &FlowSet, cases: &[(&str, &str)]) {
    let got: Vec<(&str, String)> = cases.iter().map(|(at, _)| (*at, branch(set, at))).collect();
    let want: Vec<(&str, String)> = cases.iter().map(|(at, b)| (*at, b.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn office_hours_and_their_edges() {
    let (_t, set) = set("office");
    check(
        &set,
        &[
            // Monday 2 March 2026, CET (+01:00).
            ("2026-03-02T07:59:59+01:00", "closed"),
            ("2026-03-02T08:00:00+01:00", "open"),
            ("2026-03-02T16:59:59+01:00", "open"),
            ("2026-03-02T17:00:00+01:00", "closed"),
            // The same instant written in UTC.
            ("2026-03-02T07:00:00Z", "open"),
            ("2026-03-02T06:59:59Z", "closed"),
            // Friday closes at 14:00.
            ("2026-03-06T13:59:59+01:00", "open"),
            ("2026-03-06T14:00:00+01:00", "closed"),
            ("2026-03-07T10:00:00+01:00", "weekend"),
            ("2026-03-08T10:00:00+01:00", "weekend"),
        ],
    );
}

#[test]
fn midnight() {
    let (_t, set) = set("office");
    check(
        &set,
        &[
            ("2026-03-02T23:59:59+01:00", "closed"),
            ("2026-03-03T00:00:00+01:00", "closed"),
            // Friday night into Saturday: closed, then the weekend.
            ("2026-03-06T23:59:59+01:00", "closed"),
            ("2026-03-07T00:00:00+01:00", "weekend"),
        ],
    );
}

#[test]
fn holidays_named_days_and_a_moved_saturday() {
    let (_t, set) = set("office");
    check(
        &set,
        &[
            // Christmas Eve has its own branch by name, beating `holiday`.
            ("2026-12-24T10:00:00+01:00", "xmas"),
            ("2026-12-25T10:00:00+01:00", "holiday"),
            // Saturday 12 December is worked with Thursday's hours.
            ("2026-12-12T07:59:00+01:00", "closed"),
            ("2026-12-12T10:00:00+01:00", "open"),
            ("2026-12-12T16:59:00+01:00", "open"),
            ("2026-12-12T17:00:00+01:00", "closed"),
            // The Saturday after is an ordinary weekend day.
            ("2026-12-19T10:00:00+01:00", "weekend"),
        ],
    );
}

#[test]
fn new_years_eve_into_new_year() {
    let (_t, set) = set("office");
    check(
        &set,
        &[
            // 31 December is a special day open 08:00-12:00.
            ("2026-12-31T11:59:59+01:00", "open"),
            ("2026-12-31T12:00:00+01:00", "closed"),
            ("2026-12-31T23:59:59+01:00", "closed"),
            // 1 January is a holiday every year.
            ("2027-01-01T00:00:00+01:00", "holiday"),
            ("2027-01-01T10:00:00+01:00", "holiday"),
            ("2028-01-01T10:00:00+01:00", "holiday"),
            ("2027-01-04T10:00:00+01:00", "open"),
        ],
    );
}

#[test]
fn overnight_ranges() {
    let (_t, set) = set("night");
    check(
        &set,
        &[
            ("2026-03-02T21:59:59+01:00", "closed"),
            ("2026-03-02T22:00:00+01:00", "open"),
            ("2026-03-02T23:59:59+01:00", "open"),
            ("2026-03-03T00:00:00+01:00", "open"),
            ("2026-03-03T05:59:59+01:00", "open"),
            ("2026-03-03T06:00:00+01:00", "closed"),
            // The night of 31 December runs into the 1 January holiday...
            ("2026-12-31T23:30:00+01:00", "open"),
            ("2027-01-01T00:30:00+01:00", "open"),
            ("2027-01-01T06:00:00+01:00", "holiday"),
            // ...but the holiday itself opens no night.
            ("2027-01-01T22:30:00+01:00", "holiday"),
            ("2027-01-02T00:30:00+01:00", "closed"),
            ("2027-01-02T22:00:00+01:00", "open"),
        ],
    );
}

#[test]
fn dst_change_days_in_budapest() {
    let (_t, set) = set("dst");
    check(
        &set,
        &[
            // 29 March 2026: 02:00 CET jumps to 03:00 CEST. Open 01:00-04:00
            // local is two real hours.
            ("2026-03-28T23:59:59Z", "closed"), // 00:59:59 CET
            ("2026-03-29T00:00:00Z", "open"),   // 01:00 CET
            ("2026-03-29T00:59:59Z", "open"),   // 01:59:59 CET
            ("2026-03-29T01:00:00Z", "open"),   // 03:00 CEST
            ("2026-03-29T01:59:59Z", "open"),   // 03:59:59 CEST
            ("2026-03-29T02:00:00Z", "closed"), // 04:00 CEST
            // 25 October 2026: 03:00 CEST falls back to 02:00 CET; the
            // repeated hour is open both times: four real hours.
            ("2026-10-24T22:59:59Z", "closed"), // 00:59:59 CEST
            ("2026-10-24T23:00:00Z", "open"),   // 01:00 CEST
            ("2026-10-25T00:30:00Z", "open"),   // 02:30 CEST
            ("2026-10-25T01:30:00Z", "open"),   // 02:30 CET
            ("2026-10-25T02:59:59Z", "open"),   // 03:59:59 CET
            ("2026-10-25T03:00:00Z", "closed"), // 04:00 CET
            // Monday 08:00 local is 06:00 UTC in summer, 07:00 in winter.
            ("2026-03-23T06:30:00Z", "closed"),
            ("2026-03-23T07:00:00Z", "open"),
            ("2026-03-30T05:59:59Z", "closed"),
            ("2026-03-30T06:00:00Z", "open"),
            ("2026-10-26T06:59:59Z", "closed"),
            ("2026-10-26T07:00:00Z", "open"),
        ],
    );
}

#[test]
fn the_wall_clock_moves_with_the_call() {
    // Answered at 16:59:50; the schedule is reached after the greeting.
    let (_t, set) = set("office");
    for (done_ms, want) in [(9_999, "open"), (10_000, "closed")] {
        let clock = Clock::new();
        let mut run = call(
            &set,
            "2",
            "06301234567",
            "2026-03-02T16:59:50+01:00",
            &clock,
        );
        assert_eq!(drain(&mut run), [play(&["hello"])]);
        run.on_playback_done(clock.at(done_ms));
        assert_eq!(drain(&mut run), [play(&[want])]);
        assert_eq!(run.path(), ["hello", "hours", want]);
        assert_eq!(
            run.wall_clock(clock.at(done_ms)).to_rfc3339(),
            if done_ms == 9_999 {
                "2026-03-02T15:59:59.999+00:00"
            } else {
                "2026-03-02T16:00:00+00:00"
            }
        );
    }
}

#[test]
fn hungary_smoke() {
    // The shipped calendar, as the example flows use it.
    let t = TempFlows::new("sched-hungary");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../ivr-flows/calendars/hungary.toml"),
    )
    .unwrap();
    t.file("calendars/hungary.toml", &shipped)
        .prompts(BRANCHES)
        .flow(
            "s.toml",
            r#"name = "s"
numbers = ["1"]
start = "hours"
[steps.hours]
type = "schedule"
calendar = "hungary"
open = "open"
closed = "closed"
holiday = "holiday"
[steps.open]
type = "hangup"
prompts = "open"
[steps.closed]
type = "hangup"
prompts = "closed"
[steps.holiday]
type = "hangup"
prompts = "holiday"
"#,
        );
    let set = t.load();
    check(
        &set,
        &[
            ("2026-03-02T10:00:00+01:00", "open"),
            ("2026-03-06T15:00:00+01:00", "closed"),
            ("2026-03-15T10:00:00+01:00", "holiday"),
            ("2026-12-24T10:00:00+01:00", "holiday"),
        ],
    );
    let clock = Clock::new();
    let mut run = call(&set, "1", "100", "2026-03-02T10:00:00+01:00", &clock);
    run.on_playback_done(clock.at(1));
    assert_eq!(drain(&mut run), [play(&["open"]), Action::Hangup]);
}
