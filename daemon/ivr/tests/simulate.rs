//! `flow simulate`: golden outputs for the shipped example flows at chosen
//! moments, compared whole so any change in what a caller hears shows up;
//! plus the simulator's own rules. Regenerate the golden files after an
//! intended change with `UPDATE_GOLDEN=1 cargo test -p hotline-ivr --test
//! simulate` and review the diff.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::TempFlows;
use hotline_ivr::{FlowSet, SimError, SimInput, load_dir, simulate};

fn example() -> FlowSet {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows");
    load_dir(&dir).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn input(called: &str, caller: &str, at: &str, digits: &str) -> SimInput {
    SimInput {
        called: called.into(),
        caller: caller.into(),
        at: chrono::DateTime::parse_from_rfc3339(at).unwrap(),
        digits: if digits.is_empty() {
            Vec::new()
        } else {
            digits.split(',').map(String::from).collect()
        },
        queue_wait: None,
        expected_wait: Duration::from_secs(60),
        promise_in: None,
        dial_plan: Default::default(),
    }
}

/// The simulation as printed, with flow versions masked (they change with
/// every edit of a flow file, comments included).
fn run(set: &FlowSet, input: &SimInput) -> String {
    let mut out = String::new();
    for line in simulate(set, input).unwrap() {
        out.push_str(&line.to_string());
        out.push('\n');
    }
    for f in set.flows() {
        out = out.replace(&f.version, "VERSION");
    }
    out
}

fn golden(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        got == want,
        "simulation differs from {}:\n--- got ---\n{got}--- want ---\n{want}",
        path.display()
    );
}

#[test]
fn workday_support_queue_callback_offer() {
    // Monday 10:00: open. Support (1); a 3-minute wait gets the workday
    // offer at entry; the caller takes it (1) and confirms their number (1).
    let mut i = input("300", "06201112222", "2026-03-02T10:00:00+01:00", "1,1,1");
    i.expected_wait = Duration::from_secs(180);
    golden("workday_offer", &run(&example(), &i));
}

#[test]
fn holiday_anonymous_callback_request() {
    // Christmas Eve 2026 is a holiday; a withheld number keys one in, the
    // first try too short.
    let i = input(
        "300",
        "anonymous",
        "2026-12-24T10:00:00+01:00",
        "1,0630123,06301234567#",
    );
    golden("holiday_anonymous", &run(&example(), &i));
}

#[test]
fn after_hours_another_number() {
    // Friday 15:30: closed (Friday ends at 14:00).
    let i = input(
        "+3612345678",
        "0612345678",
        "2026-03-06T15:30:00+01:00",
        "1,2,0612345678#",
    );
    golden("after_hours", &run(&example(), &i));
}

#[test]
fn vip_caller_answered_in_the_queue() {
    // A caller on vip/vip.txt: the VIP menu, the priority queue, offers at
    // entry and every minute; an operator answers after 100 s.
    let mut i = input("300", "+36 30 123 4567", "2026-03-02T10:00:00+01:00", "1");
    i.queue_wait = Some(Duration::from_secs(100));
    i.expected_wait = Duration::from_secs(240);
    golden("vip_answered", &run(&example(), &i));
}

#[test]
fn main_flow_unchanged() {
    // The demo number 100: welcome, menu, sales, goodbye (any time of day).
    let i = input("100", "100", "2026-03-07T03:00:00+01:00", "1");
    golden("main_sales", &run(&example(), &i));
}

#[test]
fn a_waiting_flow_with_nobody_pressing_stops_and_says_so() {
    let t = TempFlows::new("sim-wait");
    t.prompts(&["m"]).file("queues.toml", "[queues.q]\n").flow(
        "f.toml",
        r#"name = "f"
default = true
start = "wait"
[steps.wait]
type = "queue"
queue = "q"
music = "m"
on_unavailable = "bye"
[steps.bye]
type = "hangup"
"#,
    );
    let set = t.load();
    let lines = simulate(&set, &input("9", "1", "2026-03-02T10:00:00+01:00", "")).unwrap();
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    let text: Vec<String> = text
        .iter()
        .map(|l| l.replace(&set.flows()[0].version, "V"))
        .collect();
    assert_eq!(
        text,
        [
            "   +0.000s  call from 1 to 9, answered Mon 2026-03-02 10:00:00 +01:00: flow `f` (f.toml, version V)",
            "   +0.000s  step wait (queue)",
            "   +0.000s    enter queue q (priority 0)",
            "   +0.000s    music m (looped)",
            "   +0.000s  the queue reports position 1, expected wait 60s",
            "   +0.000s  nothing more happens: the flow waits for a key the caller never presses",
        ]
    );
}

#[test]
fn a_long_wait_is_cut_at_two_hours() {
    let t = TempFlows::new("sim-cap");
    t.prompts(&["m", "a"])
        .file("queues.toml", "[queues.q]\n")
        .flow(
            "f.toml",
            r#"name = "f"
default = true
start = "wait"
[steps.wait]
type = "queue"
queue = "q"
music = "m"
announce = "a"
announce_every = 3600
on_unavailable = "bye"
[steps.bye]
type = "hangup"
"#,
        );
    let set = t.load();
    let lines = simulate(&set, &input("9", "1", "2026-03-02T10:00:00+01:00", "")).unwrap();
    let last = lines.last().unwrap();
    assert_eq!(last.at_ms, 2 * 3600 * 1000);
    assert_eq!(
        last.to_string(),
        "+7200.000s  stopped: two hours of call time simulated"
    );
    // The hourly announcement was heard at 1 h and at 2 h.
    let plays: Vec<u64> = lines
        .iter()
        .filter(|l| l.text == "  play a (0.200s)")
        .map(|l| l.at_ms)
        .collect();
    assert_eq!(plays, [3_600_000, 7_200_000]);
}

#[test]
fn bad_input() {
    let set = example();
    assert_eq!(
        simulate(&set, &input("300", "1", "2026-03-02T10:00:00+01:00", "1,x"))
            .unwrap_err()
            .to_string(),
        "digits entry `x`: use keypad keys (0-9, *, #, A-D), or `-` to press nothing at that point"
    );
    let t = TempFlows::new("sim-nodefault");
    t.prompts(&["m"]).flow(
        "f.toml",
        "name = \"f\"\nnumbers = [\"1\"]\nstart = \"a\"\n[steps.a]\ntype = \"hangup\"\n",
    );
    let set = t.load();
    assert_eq!(
        simulate(&set, &input("2", "1", "2026-03-02T10:00:00+01:00", "")),
        Err(SimError::NoFlow("2".into()))
    );
}
