//! Interpreter behaviour the example flow does not exercise.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;

use common::{Clock, TempFlows, drain, play};
use hotline_ivr::{Action, Flow, FlowRun, load_dir};

const PROMPTS: &[&str] = &["hello", "menu", "a", "b", "c", "oops", "silence", "bye"];

fn flow(tag: &str, text: &str) -> Arc<Flow> {
    let t = TempFlows::new(tag);
    t.flow("f.toml", text).prompts(PROMPTS);
    let set = load_dir(t.path()).unwrap_or_else(|e| panic!("{:?}", common::brief(&e)));
    set.for_number("1").unwrap()
}

#[test]
fn interruptible_play_keeps_the_digit_for_the_menu() {
    let f = flow(
        "barge",
        r#"
name = "f"
numbers = ["1"]
start = "hello"
[steps.hello]
type = "play"
prompts = ["hello"]
interruptible = true
next = "menu"
[steps.menu]
type = "menu"
prompt = "menu"
choices = { "1" = "a", "2" = "b" }
on_fail = "bye"
[steps.a]
type = "play"
prompts = "a"
next = "bye"
[steps.b]
type = "play"
prompts = ["b", "c"]
next = "bye"
[steps.bye]
type = "hangup"
"#,
    );
    let clock = Clock::new();
    let mut run = FlowRun::new(f, common::ctx());
    run.start(clock.at(0));
    assert_eq!(drain(&mut run), [play(&["hello"])]);
    run.on_digit(clock.at(100), '2');
    // The menu acts on the kept digit without playing its prompt.
    assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["b", "c"])]);
    assert_eq!(run.path(), ["hello", "menu", "b"]);
    run.on_playback_done(clock.at(2000));
    // A hangup step without prompts hangs up at once.
    assert_eq!(drain(&mut run), [Action::Hangup]);
    assert!(run.is_finished());
    assert_eq!(run.digits(), "2");
}

const MULTI: &str = r#"
name = "f"
numbers = ["1"]
start = "menu"
[steps.menu]
type = "menu"
prompt = ["menu"]
timeout_ms = 3000
retries = 1
invalid_prompt = "oops"
timeout_prompt = "silence"
choices = { "10" = "a", "11" = "b", "2" = "c", "*" = "menu" }
on_fail = "bye"
[steps.a]
type = "play"
prompts = ["a"]
next = "bye"
[steps.b]
type = "play"
prompts = ["b"]
next = "bye"
[steps.c]
type = "play"
prompts = ["c"]
next = "bye"
[steps.bye]
type = "hangup"
prompts = ["bye"]
"#;

#[test]
fn multi_digit_choices() {
    let clock = Clock::new();
    let mut run = FlowRun::new(flow("multi", MULTI), common::ctx());
    run.start(clock.at(0));
    run.on_playback_done(clock.at(1000));
    assert_eq!(run.poll_timeout(), Some(clock.at(4000)));
    run.on_digit(clock.at(2000), '1');
    assert_eq!(drain(&mut run), [play(&["menu"])]);
    // Each digit restarts the wait.
    assert_eq!(run.poll_timeout(), Some(clock.at(5000)));
    run.on_digit(clock.at(4500), '1');
    assert_eq!(drain(&mut run), [play(&["b"])]);
    assert_eq!(run.path(), ["menu", "b"]);
    assert_eq!(run.digits(), "11");
}

#[test]
fn half_typed_choice_times_out_as_invalid() {
    let clock = Clock::new();
    let mut run = FlowRun::new(flow("half", MULTI), common::ctx());
    run.start(clock.at(0));
    run.on_digit(clock.at(500), '1');
    assert_eq!(drain(&mut run), [play(&["menu"]), Action::StopPlayback]);
    run.handle_timeout(clock.at(3500));
    assert_eq!(drain(&mut run), [play(&["oops", "menu"])]);
    run.on_playback_done(clock.at(6000));
    // A plain timeout gets its own notice; retries = 1 so it is the last.
    run.handle_timeout(clock.at(9000));
    assert_eq!(drain(&mut run), [play(&["silence"])]);
    run.on_playback_done(clock.at(10_000));
    assert_eq!(drain(&mut run), [play(&["bye"])]);
    assert_eq!(run.path(), ["menu", "bye"]);
}

#[test]
fn wrong_second_digit_is_invalid() {
    let clock = Clock::new();
    let mut run = FlowRun::new(flow("wrong", MULTI), common::ctx());
    run.start(clock.at(0));
    run.on_playback_done(clock.at(1000));
    run.on_digit(clock.at(1500), '1');
    run.on_digit(clock.at(1600), '5');
    assert_eq!(drain(&mut run), [play(&["menu"]), play(&["oops", "menu"])]);
    run.on_digit(clock.at(1700), '*');
    assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["menu"])]);
    assert_eq!(run.path(), ["menu", "menu"]);
    assert_eq!(run.digits(), "15*");
}

#[test]
fn no_notice_and_no_retries_goes_straight_to_on_fail() {
    let f = flow(
        "noretry",
        r#"
name = "f"
numbers = ["1"]
start = "menu"
[steps.menu]
type = "menu"
prompt = "menu"
retries = 0
choices = { "1" = "bye" }
on_fail = "bye"
[steps.bye]
type = "hangup"
prompts = "bye"
"#,
    );
    let clock = Clock::new();
    let mut run = FlowRun::new(f, common::ctx());
    run.start(clock.at(0));
    run.on_playback_done(clock.at(1000));
    assert_eq!(run.poll_timeout(), Some(clock.at(6000)));
    run.handle_timeout(clock.at(6000));
    assert_eq!(drain(&mut run), [play(&["menu"]), play(&["bye"])]);
    // Digits during the goodbye are recorded, not acted on.
    run.on_digit(clock.at(6500), '1');
    assert_eq!(drain(&mut run), []);
    run.on_playback_done(clock.at(7000));
    assert_eq!(drain(&mut run), [Action::Hangup]);
    assert_eq!(run.path(), ["menu", "bye"]);
    assert_eq!(run.digits(), "1");
}

#[test]
fn typeahead_invalid_digit_reprompts() {
    let f = flow(
        "typeahead",
        r#"
name = "f"
numbers = ["1"]
start = "hello"
[steps.hello]
type = "play"
prompts = ["hello"]
interruptible = true
next = "menu"
[steps.menu]
type = "menu"
prompt = "menu"
invalid_prompt = "oops"
choices = { "1" = "bye" }
on_fail = "bye"
[steps.bye]
type = "hangup"
"#,
    );
    let clock = Clock::new();
    let mut run = FlowRun::new(f, common::ctx());
    run.start(clock.at(0));
    run.on_digit(clock.at(10), '7');
    assert_eq!(
        drain(&mut run),
        [
            play(&["hello"]),
            Action::StopPlayback,
            play(&["oops", "menu"])
        ]
    );
    run.on_digit(clock.at(20), '1');
    assert_eq!(drain(&mut run), [Action::StopPlayback, Action::Hangup]);
    assert_eq!(run.path(), ["hello", "menu", "bye"]);
}
