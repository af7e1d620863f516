//! The `callback` step through the interpreter: the caller's own number or
//! a keyed-in one, validation, retries, read-back and the promise.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{Clock, TempFlows, call, drain, play};
use hotline_ivr::{Action, FlowRun, FlowSet};

const FLOW: &str = r#"name = "c"
numbers = ["1", "2"]
start = "which"

[steps.which]
type = "caller"
rules = [
  { anonymous = true, next = "cb" },
  { prefix = "1", next = "cb" },
]
default = "own_only"

[steps.cb]
type = "callback"
confirm_prompt = "confirm"
enter_prompt = "enter"
invalid_prompt = "invalid"
readback_prompt = "readback"
timeout_ms = 5000
retries = 1
min_digits = 10
max_digits = 11
patterns = ["06[2357]0XXXXXXX", "061XXXXXXX"]
promise = "promise"
queue = "support"
next = "bye"
on_fail = "fail"

# Number 2: only the caller's own number, with other keys.
[steps.own_only]
type = "callback"
confirm_prompt = "confirm"
own_key = "5"
readback = false
next = "bye"
on_fail = "fail"

[steps.bye]
type = "hangup"
prompts = "bye"

[steps.fail]
type = "hangup"
prompts = "fail"
"#;

fn set() -> (TempFlows, FlowSet) {
    let t = TempFlows::new("callback");
    t.built_in_prompts()
        .prompts(&[
            "confirm", "enter", "invalid", "readback", "promise", "bye", "fail",
        ])
        .file("queues.toml", "[queues.support]\n")
        .flow("c.toml", FLOW);
    let set = t.load();
    (t, set)
}

const AT: &str = "2026-03-02T10:00:00+01:00";

fn keys(run: &mut FlowRun, clock: &Clock, from: u64, keys: &str) -> u64 {
    let mut t = from;
    for k in keys.chars() {
        run.on_digit(clock.at(t), k);
        t += 100;
    }
    t
}

fn digits_of(number: &str) -> Vec<String> {
    number.chars().map(|d| format!("digit-{d}")).collect()
}

fn closing(number: &str) -> Action {
    let mut p = vec!["readback".to_owned()];
    p.extend(digits_of(number));
    p.push("promise".to_owned());
    Action::Play { prompts: p }
}

fn request(number: &str) -> Action {
    Action::CallbackRequest {
        number: number.into(),
        queue: Some("support".into()),
        promise: Some("promise".into()),
    }
}

#[test]
fn own_number_read_back_and_promised() {
    let (_t, set) = set();
    let clock = Clock::new();
    // Callers whose number starts with 1 reach `cb` (others `own_only`).
    let run = call(&set, "1", "+36301234567", AT, &clock);
    assert_eq!(run.path(), ["which", "own_only"]);

    let mut run = call(&set, "1", "1234567", AT, &clock);
    assert_eq!(drain(&mut run), [play(&["confirm"])]);
    run.on_playback_done(clock.at(3000));
    assert_eq!(run.poll_timeout(), Some(clock.at(8000)));
    run.on_digit(clock.at(4000), '1');
    // The request goes out before the read-back (a hang-up during it still
    // leaves the request).
    assert_eq!(drain(&mut run), [request("1234567"), closing("1234567")]);
    run.on_playback_done(clock.at(9000));
    assert_eq!(drain(&mut run), [play(&["bye"])]);
    assert_eq!(run.path(), ["which", "cb", "bye"]);
}

#[test]
fn another_number_keyed_in() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "1", "1234567", AT, &clock);
    assert_eq!(drain(&mut run), [play(&["confirm"])]);
    // `2` barges into the question.
    run.on_digit(clock.at(500), '2');
    assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["enter"])]);
    run.on_playback_done(clock.at(3000));
    let t = keys(
        &mut run,
        &clock,
        4000,
        "06 30 123 4567#".replace(' ', "").as_str(),
    );
    assert_eq!(
        drain(&mut run),
        [request("+36301234567"), closing("06301234567")]
    );
    run.on_playback_done(clock.at(t + 5000));
    assert_eq!(drain(&mut run), [play(&["bye"])]);
}

#[test]
fn digits_during_the_prompt_start_the_number() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "1", "anonymous", AT, &clock);
    // A withheld number: straight to keying in.
    assert_eq!(drain(&mut run), [play(&["enter"])]);
    run.on_digit(clock.at(100), '0');
    assert_eq!(drain(&mut run), [Action::StopPlayback]);
    assert_eq!(run.poll_timeout(), Some(clock.at(5100)));
    keys(&mut run, &clock, 200, "612345678#");
    assert_eq!(
        drain(&mut run),
        [request("+3612345678"), closing("0612345678")]
    );
}

#[test]
fn a_pause_ends_the_number_like_hash() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "1", "anonymous", AT, &clock);
    assert_eq!(drain(&mut run), [play(&["enter"])]);
    run.on_playback_done(clock.at(2000));
    let t = keys(&mut run, &clock, 3000, "06701234567");
    assert_eq!(drain(&mut run), []);
    // Each key restarts the wait.
    assert_eq!(run.poll_timeout(), Some(clock.at(t - 100 + 5000)));
    run.handle_timeout(clock.at(t - 100 + 5000));
    assert_eq!(
        drain(&mut run),
        [request("+36701234567"), closing("06701234567")]
    );
}

#[test]
fn invalid_numbers_are_asked_again_then_on_fail() {
    let (_t, set) = set();
    let clock = Clock::new();
    let refused = |number: &str| {
        let mut run = call(&set, "1", "anonymous", AT, &clock);
        run.on_playback_done(clock.at(2000));
        keys(&mut run, &clock, 3000, number);
        let mut actions = drain(&mut run);
        actions.retain(|a| *a != Action::StopPlayback);
        actions
    };
    let again = || vec![play(&["enter"]), play(&["invalid", "enter"])];
    // Too short, too long, no pattern matches (a 06 40… number), a `*`,
    // nothing at all.
    assert_eq!(refused("063012345#"), again());
    assert_eq!(refused("063012345678#"), again());
    assert_eq!(refused("06401234567#"), again());
    assert_eq!(refused("0630*"), again());
    assert_eq!(refused("#"), again());

    // retries = 1: the second bad entry plays the notice, then on_fail.
    let mut run = call(&set, "1", "anonymous", AT, &clock);
    run.on_playback_done(clock.at(2000));
    run.handle_timeout(clock.at(7000));
    assert_eq!(
        drain(&mut run),
        [play(&["enter"]), play(&["invalid", "enter"])]
    );
    run.on_playback_done(clock.at(9000));
    keys(&mut run, &clock, 9500, "123#");
    assert_eq!(drain(&mut run), [play(&["invalid"])]);
    // Keys during the last notice are ignored.
    run.on_digit(clock.at(9800), '1');
    assert_eq!(drain(&mut run), []);
    run.on_playback_done(clock.at(11_000));
    assert_eq!(drain(&mut run), [play(&["fail"])]);
    assert_eq!(run.path(), ["which", "cb", "fail"]);
    assert_eq!(run.digits(), "123#1");
}

#[test]
fn wrong_key_or_silence_at_the_question() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "1", "1234567", AT, &clock);
    run.on_playback_done(clock.at(2000));
    run.on_digit(clock.at(2500), '7');
    assert_eq!(
        drain(&mut run),
        [play(&["confirm"]), play(&["invalid", "confirm"])]
    );
    run.on_playback_done(clock.at(5000));
    run.handle_timeout(clock.at(10_000));
    assert_eq!(drain(&mut run), [play(&["invalid"])]);
    run.on_playback_done(clock.at(11_000));
    assert_eq!(drain(&mut run), [play(&["fail"])]);
}

#[test]
fn own_number_only() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "2", "06 20 111 2222", AT, &clock);
    assert_eq!(drain(&mut run), [play(&["confirm"])]);
    run.on_playback_done(clock.at(1000));
    // `2` means nothing without `enter_prompt`; the own key is `5`.
    run.on_digit(clock.at(1500), '2');
    assert_eq!(drain(&mut run), [play(&["confirm"])]);
    run.on_digit(clock.at(1600), '5');
    assert_eq!(
        drain(&mut run),
        [
            Action::StopPlayback,
            Action::CallbackRequest {
                number: "+36201112222".into(),
                queue: None,
                promise: None,
            },
            play(&["bye"]),
        ]
    );

    // A caller ID that is no number cannot be called back.
    let mut run = call(&set, "2", "alice", AT, &clock);
    assert_eq!(drain(&mut run), [play(&["fail"])]);
    assert_eq!(run.path(), ["which", "own_only", "fail"]);
}
