//! The `callback` step saying the time Hotline computed (`promise_computed`): the
//! read-back plays while the runtime computes; the first prompt that fits is said; a
//! runtime that tells nothing within 2 s gets the fallback; an offer rule's promise wins.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{Clock, TempFlows, call, drain, play};
use hotline_ivr::{Action, FlowRun, FlowSet};

const FLOW: &str = r#"name = "c"
numbers = ["1", "2"]
start = "which"

[steps.which]
type = "caller"
rules = [{ anonymous = true, next = "bye" }, { prefix = "+3670", next = "plain" }]
default = "cb"

[steps.cb]
type = "callback"
confirm_prompt = "confirm"
readback_prompt = "readback"
promise = "promise-fixed"
queue = "support"
next = "bye"
on_fail = "bye"

[steps.cb.promise_computed]
soon = "promise-soon"
soon_minutes = 20
today = "promise-today"
later = "promise-later"

# Without read-back and without a fixed promise.
[steps.plain]
type = "callback"
confirm_prompt = "confirm"
readback = false
queue = "support"
next = "bye"
on_fail = "bye"
promise_computed = { soon = "promise-soon", today = "promise-today", later = "promise-later" }

[steps.bye]
type = "hangup"
prompts = "bye"
"#;

fn set() -> (TempFlows, FlowSet) {
    let t = TempFlows::new("computed-promise");
    t.built_in_prompts()
        .prompts(&[
            "confirm",
            "readback",
            "promise-fixed",
            "promise-soon",
            "promise-today",
            "promise-later",
            "bye",
        ])
        .file("queues.toml", "[queues.support]\n")
        .flow("c.toml", FLOW);
    let set = t.load();
    (t, set)
}

const AT: &str = "2026-03-02T10:00:00+01:00";

fn readback(number: &str) -> Action {
    let mut p = vec!["readback".to_owned()];
    p.extend(number.chars().map(|d| format!("digit-{d}")));
    Action::Play { prompts: p }
}

fn request(number: &str) -> Action {
    Action::CallbackRequest {
        number: number.into(),
        queue: Some("support".into()),
        promise: None,
    }
}

/// A caller on `cb` who confirms their own number at 4 s (the question ends at 3 s).
fn confirmed(set: &FlowSet, clock: &Clock) -> FlowRun {
    let mut run = call(set, "1", "+36301234567", AT, clock);
    assert_eq!(drain(&mut run), [play(&["confirm"])]);
    run.on_playback_done(clock.at(3000));
    run.on_digit(clock.at(4000), '1');
    assert_eq!(
        drain(&mut run),
        [request("+36301234567"), readback("06301234567")]
    );
    run
}

#[test]
fn the_computed_time_is_said_after_the_read_back() {
    let (_t, set) = set();
    for (in_min, same_day, said) in [
        (5, true, "promise-soon"),
        (20, true, "promise-soon"),
        (21, true, "promise-today"),
        (21, false, "promise-later"),
        (600, false, "promise-later"),
    ] {
        let clock = Clock::new();
        let mut run = confirmed(&set, &clock);
        // The time comes while the read-back still plays: nothing is said over it.
        run.on_callback_promise(clock.at(4050), in_min * 60_000, same_day);
        assert_eq!(drain(&mut run), [], "{in_min} min");
        run.on_playback_done(clock.at(9000));
        assert_eq!(drain(&mut run), [play(&[said])], "{in_min} min");
        run.on_playback_done(clock.at(11000));
        assert_eq!(drain(&mut run), [play(&["bye"])]);
        assert_eq!(run.path(), ["which", "cb", "bye"]);
    }
}

#[test]
fn a_time_after_the_read_back_is_said_at_once() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = confirmed(&set, &clock);
    run.on_playback_done(clock.at(4500));
    // Waiting for the time, at most 2 s after the request.
    assert_eq!(drain(&mut run), []);
    assert_eq!(run.poll_timeout(), Some(clock.at(6000)));
    run.on_callback_promise(clock.at(4700), 30 * 60_000, true);
    assert_eq!(drain(&mut run), [play(&["promise-today"])]);
    assert_eq!(run.poll_timeout(), None);
    // A second answer changes nothing.
    run.on_callback_promise(clock.at(4800), 60_000, true);
    assert_eq!(drain(&mut run), []);
}

#[test]
fn without_a_time_in_2_s_the_fallback_is_said() {
    let (_t, set) = set();
    // The step's own promise.
    let clock = Clock::new();
    let mut run = confirmed(&set, &clock);
    run.on_playback_done(clock.at(5000));
    run.handle_timeout(clock.at(5999));
    assert_eq!(drain(&mut run), []);
    run.handle_timeout(clock.at(6000));
    assert_eq!(drain(&mut run), [play(&["promise-fixed"])]);
    // A late time is ignored.
    run.on_callback_promise(clock.at(6100), 60_000, true);
    assert_eq!(drain(&mut run), []);
    run.on_playback_done(clock.at(8000));
    assert_eq!(drain(&mut run), [play(&["bye"])]);

    // The deadline passes during a long read-back: the fallback follows it.
    let clock = Clock::new();
    let mut run = confirmed(&set, &clock);
    run.handle_timeout(clock.at(6000));
    assert_eq!(drain(&mut run), []);
    run.on_playback_done(clock.at(9000));
    assert_eq!(drain(&mut run), [play(&["promise-fixed"])]);

    // No fixed promise: the vaguest computed prompt.
    let clock = Clock::new();
    let mut run = call(&set, "1", "+36701234567", AT, &clock);
    assert_eq!(drain(&mut run), [play(&["confirm"])]);
    run.on_playback_done(clock.at(3000));
    run.on_digit(clock.at(4000), '1');
    assert_eq!(drain(&mut run), [request("+36701234567")]);
    assert_eq!(run.poll_timeout(), Some(clock.at(6000)));
    run.handle_timeout(clock.at(6000));
    assert_eq!(drain(&mut run), [play(&["promise-later"])]);
}

#[test]
fn without_read_back_the_time_is_said_when_it_comes() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "1", "+36701234567", AT, &clock);
    drain(&mut run);
    run.on_playback_done(clock.at(3000));
    run.on_digit(clock.at(4000), '1');
    assert_eq!(drain(&mut run), [request("+36701234567")]);
    run.on_callback_promise(clock.at(4010), 10 * 60_000, true);
    assert_eq!(drain(&mut run), [play(&["promise-soon"])]);
}

#[test]
fn a_time_outside_the_step_is_ignored() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "1", "+36301234567", AT, &clock);
    assert_eq!(drain(&mut run), [play(&["confirm"])]);
    run.on_callback_promise(clock.at(100), 60_000, true);
    assert_eq!(drain(&mut run), []);
    assert_eq!(run.path(), ["which", "cb"]);
}

#[test]
fn check_reports_a_bad_promise_computed_at_its_place() {
    let t = TempFlows::new("computed-promise-bad");
    t.built_in_prompts()
        .prompts(&["confirm", "soon", "bye"])
        .file("queues.toml", "[queues.support]\n")
        .flow(
            "c.toml",
            r#"name = "c"
numbers = ["1"]
start = "cb"

[steps.cb]
type = "callback"
confirm_prompt = "confirm"
queue = "support"
next = "bye"
on_fail = "bye"

[steps.cb.promise_computed]
soon = "soon"
soon_minutes = 0
today = "missing-prompt"
latr = "soon"

[steps.bye]
type = "hangup"
prompts = "bye"
"#,
        );
    let report = hotline_ivr::check_dir(t.path());
    let dir = format!("{}/", t.path().display());
    let errors: Vec<String> = report
        .errors
        .iter()
        .map(|e| e.to_string().replace(&dir, ""))
        .collect();
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(
        has("c.toml:12:1: `promise_computed` of step `cb` is missing required key `later`"),
        "{errors:#?}"
    );
    assert!(has("c.toml:14:16: "), "soon_minutes 0: {errors:#?}");
    assert!(has("c.toml:16:1: unknown key `latr`"), "{errors:#?}");
}

#[test]
fn check_reports_a_missing_computed_promise_prompt() {
    let t = TempFlows::new("computed-promise-missing");
    t.built_in_prompts()
        .prompts(&["confirm", "soon", "bye"])
        .file("queues.toml", "[queues.support]\n")
        .flow(
            "c.toml",
            r#"name = "c"
numbers = ["1"]
start = "cb"

[steps.cb]
type = "callback"
confirm_prompt = "confirm"
enter_prompt = "confirm"
queue = "support"
next = "bye"
on_fail = "bye"
promise_computed = { soon = "soon", today = "soon", later = "not-recorded" }

[steps.bye]
type = "hangup"
prompts = "bye"
"#,
        );
    let report = hotline_ivr::check_dir(t.path());
    let all: Vec<String> = report
        .errors
        .iter()
        .chain(&report.warnings)
        .map(|e| e.to_string())
        .collect();
    assert!(
        all.iter()
            .any(|e| e.contains("c.toml:12:61: prompt `not-recorded`")),
        "{all:#?}"
    );
}
