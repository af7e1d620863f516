//! The `queue` step and callback offers through the interpreter: music,
//! announcements, the runtime's answers, and the offer rules (VIP,
//! holiday, time of day, workday, special day, never) with the offer key
//! leading into the callback step.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::Duration;

use common::{Clock, TempFlows, call, drain, play};
use hotline_ivr::{Action, FlowRun, FlowSet, QueueStatus};

const FLOW: &str = r#"name = "q"
numbers = ["1", "2"]
start = "which"

[steps.which]
type = "caller"
rules = [{ prefix = "1", next = "wait" }]
default = "quiet"

# Number 1 waits here: announcements, keys, a maximum wait.
[steps.wait]
type = "queue"
queue = "support"
music = "music"
announce = "hold"
announce_every = 30
announce_position = true
announce_wait = true
max_wait = 600
on_timeout = "timeout"
on_unavailable = "busy"
keys = { "0" = "menu_again", "*" = "timeout" }
offers = "std"

# Number 2 waits here: music and offers only, VIP callers first.
[steps.quiet]
type = "queue"
queue = "support"
priority = 3
music = ["music", "music2"]
max_wait = 600
on_timeout = "timeout"
on_unavailable = "busy"
offers = "std"

[steps.menu_again]
type = "hangup"
prompts = "menu"

[steps.timeout]
type = "hangup"
prompts = "timeout"

[steps.busy]
type = "hangup"
prompts = "busy"

[steps.cb]
type = "callback"
confirm_prompt = "confirm"
enter_prompt = "enter"
readback = false
promise = "p-default"
next = "bye"
on_fail = "bye"

[steps.bye]
type = "hangup"

[offers.std]
calendar = "office"
callback = "cb"
prompt = "offer"

[[offers.std.rules]]
vip = "gold"
offer = "at_entry_and_every"
every = 60
key = "9"
promise = "p-vip"

[[offers.std.rules]]
days = ["holiday"]
offer = "at_entry"
promise = "p-holiday"

[[offers.std.rules]]
days = ["workday"]
hours = ["16:00-24:00"]
offer = "at_entry"
promise = "p-late"

[[offers.std.rules]]
days = ["workday"]
offer = "at_entry_and_every"
wait_over = 120
every = 90
promise = "p-today"

[[offers.std.rules]]
days = ["special"]
offer = "every"
every = 45
promise = "p-special"

[[offers.std.rules]]
offer = "never"
"#;

fn set() -> (TempFlows, FlowSet) {
    let t = TempFlows::new("queue");
    t.calendar("office")
        .built_in_prompts()
        .prompts(&[
            "music",
            "music2",
            "hold",
            "menu",
            "timeout",
            "busy",
            "confirm",
            "enter",
            "offer",
            "p-default",
            "p-vip",
            "p-holiday",
            "p-late",
            "p-today",
            "p-special",
        ])
        .file("queues.toml", "[queues.support]\n")
        .file("vip/gold.txt", "+36 30 999 9999\n")
        .flow("q.toml", FLOW);
    let set = t.load();
    (t, set)
}

const MON_10: &str = "2026-03-02T10:00:00+01:00";
const VIP: &str = "06309999999";
const CALLER: &str = "06301234567";

fn waiting(position: u32, secs: u64) -> QueueStatus {
    QueueStatus::Waiting {
        position,
        expected_wait: Duration::from_secs(secs),
    }
}

fn music(names: &[&str]) -> Action {
    Action::PlayLoop {
        prompts: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn enter(priority: u8) -> Action {
    Action::EnterQueue {
        queue: "support".into(),
        priority,
        skill: None,
        record: None,
    }
}

/// A call on number 2 (the quiet queue), entered at 0 ms.
fn quiet(set: &FlowSet, caller: &str, at: &str, clock: &Clock) -> FlowRun {
    let mut run = call(set, "2", caller, at, clock);
    assert_eq!(drain(&mut run), [enter(3), music(&["music", "music2"])]);
    run
}

#[test]
fn music_announcements_and_the_runtime() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = call(&set, "1", "100", MON_10, &clock);
    assert_eq!(drain(&mut run), [enter(0), music(&["music"])]);
    assert_eq!(run.current_step(), Some("wait"));
    // Announcements and the maximum wait run from entry.
    assert_eq!(run.poll_timeout(), Some(clock.at(30_000)));

    // The entry announcement: position and wait, then the music again.
    run.on_queue_status(clock.at(100), waiting(1, 30));
    assert_eq!(
        drain(&mut run),
        [play(&["queue-position", "digit-1", "wait-under-1"])]
    );
    run.on_playback_done(clock.at(2000));
    assert_eq!(drain(&mut run), [music(&["music"])]);
    // A stray "done" while the music loops changes nothing.
    run.on_playback_done(clock.at(2100));
    assert_eq!(drain(&mut run), []);

    // Every 30 s: the announcement with the latest numbers.
    run.handle_timeout(clock.at(30_000));
    assert_eq!(
        drain(&mut run),
        [play(&["hold", "queue-position", "digit-1", "wait-under-1"])]
    );
    run.on_playback_done(clock.at(31_000));
    assert_eq!(drain(&mut run), [music(&["music"])]);
    run.on_queue_status(clock.at(40_000), waiting(12, 25 * 60));
    assert_eq!(drain(&mut run), []);
    run.handle_timeout(clock.at(60_000));
    assert_eq!(
        drain(&mut run),
        [play(&["hold", "queue-position-many", "wait-under-30"])]
    );
    // At 90 s the announcement and the workday offer (wait 25 min > 120 s)
    // come due while the last one still plays: they wait for it.
    run.handle_timeout(clock.at(90_000));
    assert_eq!(drain(&mut run), []);
    run.on_playback_done(clock.at(90_500));
    assert_eq!(
        drain(&mut run),
        [play(&[
            "hold",
            "queue-position-many",
            "wait-under-30",
            "offer"
        ])]
    );
    run.on_playback_done(clock.at(92_000));
    assert_eq!(drain(&mut run), [music(&["music"])]);
    assert_eq!(run.poll_timeout(), Some(clock.at(120_000)));

    // A queue key leaves the queue for its step.
    run.on_digit(clock.at(95_000), '0');
    assert_eq!(
        drain(&mut run),
        [Action::StopPlayback, Action::LeaveQueue, play(&["menu"])]
    );
    assert_eq!(run.path(), ["which", "wait", "menu_again"]);
}

#[test]
fn connected_ends_the_flow_without_hangup() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = quiet(&set, CALLER, MON_10, &clock);
    run.on_queue_status(clock.at(10), waiting(2, 60));
    assert_eq!(drain(&mut run), []);
    run.on_queue_status(clock.at(5000), QueueStatus::Connected);
    assert_eq!(drain(&mut run), [Action::StopPlayback]);
    assert!(run.is_finished());
    assert_eq!(run.current_step(), None);
    // Nothing more from the flow.
    run.on_digit(clock.at(6000), '1');
    run.handle_timeout(clock.at(600_000));
    run.on_queue_status(clock.at(7000), QueueStatus::Unavailable);
    assert_eq!(drain(&mut run), []);
    assert_eq!(run.poll_timeout(), None);
}

#[test]
fn unavailable_and_max_wait() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = quiet(&set, CALLER, MON_10, &clock);
    run.on_queue_status(clock.at(10), QueueStatus::Unavailable);
    assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["busy"])]);
    assert_eq!(run.path(), ["which", "quiet", "busy"]);

    let mut run = quiet(&set, CALLER, MON_10, &clock);
    run.on_queue_status(clock.at(10), waiting(1, 60));
    // Workday rule: 60 s is not over 120 s, so the 90 s offers stay quiet.
    assert_eq!(run.poll_timeout(), Some(clock.at(90_000)));
    let mut t = 90_000;
    while t < 600_000 {
        run.handle_timeout(clock.at(t));
        assert_eq!(drain(&mut run), [], "at {t}");
        t += 90_000;
    }
    assert_eq!(run.poll_timeout(), Some(clock.at(600_000)));
    run.handle_timeout(clock.at(600_000));
    assert_eq!(
        drain(&mut run),
        [Action::StopPlayback, Action::LeaveQueue, play(&["timeout"])]
    );
}

#[test]
fn vip_offer_at_entry_and_every_minute_then_the_key() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = quiet(&set, VIP, MON_10, &clock);
    // The offer key does nothing before an offer.
    run.on_digit(clock.at(5), '9');
    assert_eq!(drain(&mut run), []);
    run.on_queue_status(clock.at(10), waiting(1, 30));
    assert_eq!(drain(&mut run), [play(&["offer"])]);
    run.on_playback_done(clock.at(3000));
    assert_eq!(drain(&mut run), [music(&["music", "music2"])]);
    assert_eq!(run.poll_timeout(), Some(clock.at(60_000)));
    run.handle_timeout(clock.at(60_000));
    assert_eq!(drain(&mut run), [play(&["offer"])]);
    run.on_playback_done(clock.at(63_000));
    assert_eq!(drain(&mut run), [music(&["music", "music2"])]);
    assert_eq!(run.poll_timeout(), Some(clock.at(120_000)));
    // The workday rule's key `1` is not this rule's key.
    run.on_digit(clock.at(70_000), '1');
    assert_eq!(drain(&mut run), []);
    // The key leaves the queue into the callback step, which knows the
    // queue and the VIP rule's promise.
    run.on_digit(clock.at(71_000), '9');
    assert_eq!(
        drain(&mut run),
        [Action::StopPlayback, Action::LeaveQueue, play(&["confirm"])]
    );
    assert_eq!(run.path(), ["which", "quiet", "cb"]);
    run.on_digit(clock.at(72_000), '1');
    assert_eq!(
        drain(&mut run),
        [
            Action::StopPlayback,
            Action::CallbackRequest {
                number: "+36309999999".into(),
                queue: Some("support".into()),
                promise: Some("p-vip".into()),
            },
            play(&["p-vip"]),
        ]
    );
    run.on_playback_done(clock.at(75_000));
    assert_eq!(drain(&mut run), [Action::Hangup]);
}

/// The prompts of the first play after entering the quiet queue at `at`
/// with `wait` seconds expected, and the next timer after entry.
fn entry(set: &FlowSet, caller: &str, at: &str, wait: u64) -> (Vec<Action>, Option<u64>) {
    let clock = Clock::new();
    let mut run = quiet(set, caller, at, &clock);
    run.on_queue_status(clock.at(0), waiting(1, wait));
    let actions = drain(&mut run);
    let next = run
        .poll_timeout()
        .map(|t| t.duration_since(clock.t0).as_millis() as u64);
    (actions, next)
}

/// What, when, expected wait (s), the entry's actions, the next timer (ms).
type Case = (&'static str, &'static str, u64, Vec<Action>, Option<u64>);

#[test]
fn each_rule_decides_when_to_offer() {
    let (_t, set) = set();
    let offer = || vec![play(&["offer"])];
    let cases: Vec<Case> = vec![
        // VIP on a holiday: the VIP rule comes first.
        (
            "vip holiday",
            "2026-12-25T10:00:00+01:00",
            30,
            offer(),
            Some(60_000),
        ),
        // Holiday: at entry only; then only the maximum wait is left.
        (
            "holiday",
            "2026-12-25T10:00:00+01:00",
            30,
            offer(),
            Some(600_000),
        ),
        // A workday after 16:00: at entry, whatever the wait.
        (
            "late",
            "2026-03-02T16:30:00+01:00",
            5,
            offer(),
            Some(600_000),
        ),
        (
            "late, edge",
            "2026-03-02T15:59:59+01:00",
            5,
            vec![],
            Some(90_000),
        ),
        // A workday: only when the wait is over 120 s; then every 90 s.
        ("workday, short wait", MON_10, 120, vec![], Some(90_000)),
        ("workday, long wait", MON_10, 121, offer(), Some(90_000)),
        // The moved Saturday counts as a workday.
        (
            "moved Saturday",
            "2026-12-12T10:00:00+01:00",
            300,
            offer(),
            Some(90_000),
        ),
        // A special day: every 45 s, not at entry.
        (
            "special",
            "2026-12-31T10:00:00+01:00",
            300,
            vec![],
            Some(45_000),
        ),
        // A weekend: never.
        (
            "weekend",
            "2026-03-07T10:00:00+01:00",
            3000,
            vec![],
            Some(600_000),
        ),
    ];
    for (what, at, wait, want_actions, want_next) in cases {
        let caller = if what.starts_with("vip") { VIP } else { CALLER };
        let (actions, next) = entry(&set, caller, at, wait);
        assert_eq!((what, actions, next), (what, want_actions, want_next));
    }
}

#[test]
fn workday_offer_follows_the_expected_wait() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = quiet(&set, CALLER, MON_10, &clock);
    run.on_queue_status(clock.at(0), waiting(1, 60));
    assert_eq!(drain(&mut run), []);
    run.handle_timeout(clock.at(90_000));
    assert_eq!(drain(&mut run), []);
    // The wait grows: the next offer is made.
    run.on_queue_status(clock.at(100_000), waiting(4, 400));
    assert_eq!(drain(&mut run), []);
    run.handle_timeout(clock.at(180_000));
    assert_eq!(drain(&mut run), [play(&["offer"])]);
    // The key barges into the offer.
    run.on_digit(clock.at(181_000), '1');
    assert_eq!(
        drain(&mut run),
        [Action::StopPlayback, Action::LeaveQueue, play(&["confirm"])]
    );
    run.on_playback_done(clock.at(183_000));
    run.on_digit(clock.at(184_000), '1');
    assert_eq!(
        drain(&mut run),
        [
            Action::CallbackRequest {
                number: "+36301234567".into(),
                queue: Some("support".into()),
                promise: Some("p-today".into()),
            },
            play(&["p-today"]),
        ]
    );
}

#[test]
fn special_day_offers_every_45_seconds() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = quiet(&set, CALLER, "2026-12-31T10:00:00+01:00", &clock);
    run.on_queue_status(clock.at(0), waiting(1, 300));
    assert_eq!(drain(&mut run), []);
    for k in 1..=3 {
        let t = k * 45_000;
        assert_eq!(run.poll_timeout(), Some(clock.at(t)));
        run.handle_timeout(clock.at(t));
        assert_eq!(drain(&mut run), [play(&["offer"])]);
        run.on_playback_done(clock.at(t + 2000));
        assert_eq!(drain(&mut run), [music(&["music", "music2"])]);
    }
    // A late timer does not burst: the missed ticks are skipped.
    run.handle_timeout(clock.at(400_000));
    assert_eq!(drain(&mut run), [play(&["offer"])]);
    assert_eq!(run.poll_timeout(), Some(clock.at(405_000)));
}

#[test]
fn never_means_the_key_does_nothing() {
    let (_t, set) = set();
    let clock = Clock::new();
    let mut run = quiet(&set, CALLER, "2026-03-07T10:00:00+01:00", &clock);
    run.on_queue_status(clock.at(0), waiting(1, 3000));
    run.on_digit(clock.at(1000), '1');
    assert_eq!(drain(&mut run), []);
    assert_eq!(run.current_step(), Some("quiet"));
    assert_eq!(run.digits(), "1");
}

#[test]
fn a_recorded_queue_plays_its_consent_notice_before_the_caller_joins() {
    let flow = r#"name = "rec"
numbers = ["3"]
start = "wait"

[steps.wait]
type = "queue"
queue = "support"
music = "music"
record = "always"
record_prompt = "recorded"
on_unavailable = "bye"

[steps.bye]
type = "hangup"
"#;
    let t = TempFlows::new("queue-record");
    t.built_in_prompts()
        .prompts(&["music", "recorded"])
        .file("queues.toml", "[queues.support]\nrecord = \"on_demand\"\n")
        .flow("rec.toml", flow);
    let set = t.load();
    assert_eq!(
        set.queues()["support"].record,
        hotline_ivr::RecordMode::OnDemand
    );
    let clock = Clock::new();
    let mut run = call(&set, "3", CALLER, MON_10, &clock);
    // The notice first: nobody can answer (and recording begin) before it is heard.
    assert_eq!(drain(&mut run), [play(&["recorded"])]);
    run.on_playback_done(clock.at(3000));
    assert_eq!(
        drain(&mut run),
        [
            Action::EnterQueue {
                queue: "support".into(),
                priority: 0,
                skill: None,
                record: Some(hotline_ivr::RecordMode::Always),
            },
            music(&["music"]),
        ]
    );
    // Then it waits as any caller does.
    run.on_queue_status(clock.at(3100), waiting(1, 30));
    run.on_queue_status(clock.at(5000), QueueStatus::Connected);
    assert_eq!(drain(&mut run), [Action::StopPlayback]);
}
