//! The shipped example flow (ivr-flows/main.toml) driven on a virtual clock.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{Clock, drain, play};
use hotline_ivr::{Action, Flow, FlowRun, FlowSet, load_dir};

fn flows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows")
}

fn example() -> FlowSet {
    match load_dir(&flows_dir()) {
        Ok(set) => set,
        Err(errors) => panic!(
            "example flows do not load:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn main_flow() -> Arc<Flow> {
    example().for_number("100").unwrap()
}

/// Starts the call and plays the greeting to its end: the menu prompt is playing.
fn at_menu(clock: &Clock) -> FlowRun {
    let mut run = FlowRun::new(main_flow(), common::ctx());
    run.start(clock.at(0));
    assert_eq!(drain(&mut run), [play(&["welcome"])]);
    run.on_playback_done(clock.at(3000));
    assert_eq!(drain(&mut run), [play(&["menu"])]);
    run
}

#[test]
fn loads_and_routes_numbers() {
    let set = example();
    let main = set.for_number("100").unwrap();
    assert_eq!(main.name, "main");
    assert_eq!(main.ring_ms, 0);
    // Default flow catches everything else.
    assert!(Arc::ptr_eq(&set.for_number("0612345678").unwrap(), &main));
    assert_eq!(main.version.len(), 12);
    assert_eq!(set.version().len(), 12);
    assert!(set.version().chars().all(|c| c.is_ascii_hexdigit()));

    let names: Vec<String> = set.prompt_names().into_iter().collect();
    // main.toml's prompts, hotline.toml's, and the ones announcements and
    // read-backs are built from.
    let mut expected: Vec<String> = [
        "callback-menu",
        "cb-confirm",
        "cb-enter",
        "cb-invalid",
        "cb-readback",
        "closed",
        "goodbye",
        "hold-music",
        "holiday",
        "hotline-menu",
        "invalid",
        "menu",
        "no-agent",
        "offer-callback",
        "please-hold",
        "promise-30min",
        "promise-next-workday",
        "promise-today",
        "queue-position",
        "queue-position-many",
        "sales",
        "support",
        "transferring",
        "vip-menu",
        "vip-welcome",
        "wait-over-30",
        "wait-under-1",
        "wait-under-10",
        "wait-under-15",
        "wait-under-2",
        "wait-under-20",
        "wait-under-3",
        "wait-under-30",
        "wait-under-5",
        "welcome",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain((0..10).map(|d| format!("digit-{d}")))
    .collect();
    expected.sort();
    assert_eq!(names, expected);
    for n in &names {
        assert!(set.prompt_path(n).is_file(), "{n}");
    }
    assert_eq!(
        set.prompt_path("menu"),
        flows_dir().join("prompts").join("menu.wav")
    );
}

#[test]
fn press_1_for_sales() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    // The timeout runs only once the prompt has finished.
    assert_eq!(run.poll_timeout(), None);
    run.on_playback_done(clock.at(9000));
    assert_eq!(run.poll_timeout(), Some(clock.at(14_000)));

    run.on_digit(clock.at(10_000), '1');
    assert_eq!(drain(&mut run), [play(&["sales"])]);
    assert_eq!(run.poll_timeout(), None);
    run.on_playback_done(clock.at(14_000));
    assert_eq!(drain(&mut run), [play(&["goodbye"])]);
    assert!(!run.is_finished());
    run.on_playback_done(clock.at(17_000));
    assert_eq!(drain(&mut run), [Action::Hangup]);
    assert!(run.is_finished());

    assert_eq!(run.path(), ["greeting", "main_menu", "sales", "goodbye"]);
    assert_eq!(run.digits(), "1");
}

#[test]
fn press_2_for_support() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    run.on_playback_done(clock.at(9000));
    run.on_digit(clock.at(9500), '2');
    assert_eq!(drain(&mut run), [play(&["support"])]);
    run.on_playback_done(clock.at(13_000));
    run.on_playback_done(clock.at(16_000));
    assert_eq!(drain(&mut run), [play(&["goodbye"]), Action::Hangup]);
    assert_eq!(run.path(), ["greeting", "main_menu", "support", "goodbye"]);
    assert_eq!(run.digits(), "2");
}

#[test]
fn invalid_digit_reprompts_then_accepts() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    run.on_playback_done(clock.at(9000));
    run.on_digit(clock.at(10_000), '7');
    assert_eq!(drain(&mut run), [play(&["invalid", "menu"])]);
    assert_eq!(run.poll_timeout(), None);
    run.on_playback_done(clock.at(18_000));
    assert_eq!(run.poll_timeout(), Some(clock.at(23_000)));
    run.on_digit(clock.at(19_000), '2');
    assert_eq!(drain(&mut run), [play(&["support"])]);
    assert_eq!(run.path(), ["greeting", "main_menu", "support"]);
    assert_eq!(run.digits(), "72");
}

#[test]
fn timeouts_until_on_fail() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    let mut t = 9000;
    run.on_playback_done(clock.at(t));
    // retries = 2: two re-prompts, then on_fail.
    for _ in 0..2 {
        let deadline = run.poll_timeout().unwrap();
        assert_eq!(deadline, clock.at(t + 5000));
        // Early wake-ups do nothing.
        run.handle_timeout(clock.at(t + 4999));
        assert_eq!(drain(&mut run), []);
        run.handle_timeout(deadline);
        assert_eq!(drain(&mut run), [play(&["invalid", "menu"])]);
        assert_eq!(run.poll_timeout(), None);
        t += 5000 + 8000;
        run.on_playback_done(clock.at(t));
    }
    run.handle_timeout(clock.at(t + 5000));
    // Last failure: the notice alone, then on_fail.
    assert_eq!(drain(&mut run), [play(&["invalid"])]);
    assert_eq!(run.poll_timeout(), None);
    run.on_playback_done(clock.at(t + 7000));
    assert_eq!(drain(&mut run), [play(&["goodbye"])]);
    run.on_playback_done(clock.at(t + 9000));
    assert_eq!(drain(&mut run), [Action::Hangup]);
    assert!(run.is_finished());
    assert_eq!(run.path(), ["greeting", "main_menu", "goodbye"]);
    assert_eq!(run.digits(), "");
}

#[test]
fn invalid_and_timeout_share_the_retry_count() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    run.on_playback_done(clock.at(9000));
    run.on_digit(clock.at(9100), '5');
    run.on_playback_done(clock.at(17_000));
    run.handle_timeout(clock.at(22_000));
    run.on_playback_done(clock.at(30_000));
    run.on_digit(clock.at(30_100), '#');
    assert_eq!(
        drain(&mut run),
        [
            play(&["invalid", "menu"]),
            play(&["invalid", "menu"]),
            play(&["invalid"])
        ]
    );
    // Digits while the final notice plays are recorded but change nothing.
    run.on_digit(clock.at(30_200), '1');
    assert_eq!(drain(&mut run), []);
    run.on_playback_done(clock.at(32_000));
    assert_eq!(drain(&mut run), [play(&["goodbye"])]);
    assert_eq!(run.digits(), "5#1");
    assert_eq!(run.path(), ["greeting", "main_menu", "goodbye"]);
}

#[test]
fn digit_barges_into_menu_prompt() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    run.on_digit(clock.at(4000), '2');
    assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["support"])]);
    // The stopped menu prompt reports nothing; the support prompt's end does.
    run.on_playback_done(clock.at(7000));
    assert_eq!(drain(&mut run), [play(&["goodbye"])]);
    assert_eq!(run.path(), ["greeting", "main_menu", "support", "goodbye"]);
}

#[test]
fn digit_barges_into_invalid_notice() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    run.on_digit(clock.at(4000), '8');
    assert_eq!(
        drain(&mut run),
        [Action::StopPlayback, play(&["invalid", "menu"])]
    );
    run.on_digit(clock.at(4500), '1');
    assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["sales"])]);
    assert_eq!(run.digits(), "81");
}

#[test]
fn digits_during_greeting_are_ignored_but_recorded() {
    let clock = Clock::new();
    let mut run = FlowRun::new(main_flow(), common::ctx());
    run.start(clock.at(0));
    assert_eq!(drain(&mut run), [play(&["welcome"])]);
    run.on_digit(clock.at(500), '1');
    assert_eq!(drain(&mut run), []);
    run.on_playback_done(clock.at(3000));
    // The menu still plays in full: the '1' was not kept.
    assert_eq!(drain(&mut run), [play(&["menu"])]);
    run.on_playback_done(clock.at(9000));
    run.on_digit(clock.at(9100), '2');
    assert_eq!(drain(&mut run), [play(&["support"])]);
    assert_eq!(run.digits(), "12");
}

#[test]
fn nine_repeats_the_menu_with_fresh_retries() {
    let clock = Clock::new();
    let mut run = at_menu(&clock);
    run.on_playback_done(clock.at(9000));
    run.handle_timeout(clock.at(14_000));
    run.on_playback_done(clock.at(22_000));
    run.handle_timeout(clock.at(27_000));
    assert_eq!(
        drain(&mut run),
        [play(&["invalid", "menu"]), play(&["invalid", "menu"])]
    );
    run.on_digit(clock.at(28_000), '9');
    assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["menu"])]);
    run.on_playback_done(clock.at(34_000));
    // Two failures already happened in the earlier visit; this one re-prompts.
    run.handle_timeout(clock.at(39_000));
    assert_eq!(drain(&mut run), [play(&["invalid", "menu"])]);
    run.on_playback_done(clock.at(47_000));
    run.on_digit(clock.at(48_000), '1');
    assert_eq!(drain(&mut run), [play(&["sales"])]);
    assert_eq!(run.path(), ["greeting", "main_menu", "main_menu", "sales"]);
    assert_eq!(run.digits(), "91");
}

#[test]
fn stray_events_are_ignored() {
    let clock = Clock::new();
    let mut run = FlowRun::new(main_flow(), common::ctx());
    // Nothing before the call is answered.
    run.on_digit(clock.at(0), '1');
    run.on_playback_done(clock.at(0));
    run.handle_timeout(clock.at(0));
    assert_eq!(drain(&mut run), []);
    assert_eq!(run.digits(), "");
    assert!(run.path().is_empty());

    run.start(clock.at(0));
    run.start(clock.at(1));
    assert_eq!(drain(&mut run), [play(&["welcome"])]);
    run.on_playback_done(clock.at(3000));
    run.on_playback_done(clock.at(9000));
    assert_eq!(drain(&mut run), [play(&["menu"])]);
    // A second "done" while waiting for a digit does not move the deadline.
    run.on_playback_done(clock.at(9500));
    assert_eq!(run.poll_timeout(), Some(clock.at(14_000)));
    // Not a DTMF event.
    run.on_digit(clock.at(9600), 'x');
    assert_eq!(drain(&mut run), []);
    assert_eq!(run.digits(), "");

    run.on_digit(clock.at(10_000), '1');
    run.on_playback_done(clock.at(14_000));
    run.on_playback_done(clock.at(17_000));
    assert_eq!(
        drain(&mut run),
        [play(&["sales"]), play(&["goodbye"]), Action::Hangup]
    );
    // After hangup everything is ignored.
    run.on_digit(clock.at(18_000), '2');
    run.on_playback_done(clock.at(18_000));
    run.handle_timeout(clock.at(99_000));
    assert_eq!(drain(&mut run), []);
    assert_eq!(run.digits(), "1");
    assert!(run.is_finished());
}

#[test]
fn shipped_schema_is_the_one_hotline_prints() {
    // `hotline flow schema > ivr-flows/flow.schema.json` made it.
    let shipped = std::fs::read_to_string(flows_dir().join("flow.schema.json")).unwrap();
    assert_eq!(
        shipped,
        format!("{}\n", hotline_ivr::FLOW_SCHEMA_JSON.trim_end()),
        "run `hotline flow schema > ivr-flows/flow.schema.json`"
    );
}
