//! `[queues.NAME.callbacks]` in queues.toml: defaults, every key read, the
//! window's zone taken from its calendar, and every error at its line:col.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use chrono::{DateTime, Utc};
use common::{TempFlows, brief};
use hotline_ivr::{
    CallbackMode, CallbackPolicy, CallbackSettings, DEFAULT_CALLBACK_MAX_SHARE,
    DEFAULT_CONFIRM_KEY, DEFAULT_HIDE_AFTER_FAILURE_SECS, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_DELAY_SECS, DEFAULT_SUCCESS_AFTER_SECS, check_dir,
};

/// A set needs a flow; this one uses no queue.
const FLOW: &str = r#"name = "f"
default = true
start = "bye"

[steps.bye]
type = "hangup"
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn defaults_when_nothing_is_said() {
    let t = TempFlows::new("cbs-defaults");
    t.flow("f.toml", FLOW).file(
        "queues.toml",
        "[queues.support]\n\n[queues.sales]\n[queues.sales.callbacks]\n",
    );
    let set = t.load();
    for name in ["support", "sales"] {
        let cb = &set.queues()[name].callbacks;
        assert_eq!(cb, &CallbackSettings::default(), "{name}");
        assert_eq!(cb.hide_after_failure_secs, 900);
        assert_eq!(cb.success_after_secs, 10);
        assert!(!cb.auto);
        assert!(cb.window.rules().is_empty());
        assert_eq!(cb.window.time_zone(), chrono_tz::Europe::Budapest);
        assert_eq!(cb.window.calendar(), None);
        assert_eq!(cb.policy, CallbackPolicy::Interleaved);
        assert_eq!(cb.max_share_percent, 50);
        assert_eq!(cb.retry_delay_secs, 600);
        assert_eq!(cb.max_attempts, 3);
        assert_eq!(cb.mode, CallbackMode::AgentFirst);
    }
    // The consts say the same as the brief's numbers.
    assert_eq!(
        (
            DEFAULT_HIDE_AFTER_FAILURE_SECS,
            DEFAULT_SUCCESS_AFTER_SECS,
            DEFAULT_CALLBACK_MAX_SHARE,
            DEFAULT_RETRY_DELAY_SECS,
            DEFAULT_MAX_ATTEMPTS,
            DEFAULT_CONFIRM_KEY,
        ),
        (900, 10, 50, 600, 3, '1')
    );
    // Auto off: never allowed, whatever the time.
    assert!(
        !set.queues()["support"]
            .callbacks
            .auto_allowed(utc("2026-03-02T10:00:00Z"), None)
    );
}

#[test]
fn every_key_is_read() {
    let t = TempFlows::new("cbs-all");
    t.flow("f.toml", FLOW)
        .prompts(&["cb-press-1"])
        .calendar("office")
        .file(
            "calendars/ny.toml",
            "timezone = \"America/New_York\"\n[hours]\nmon = [\"09:00-17:00\"]\n",
        )
        .file(
            "queues.toml",
            r##"[queues.support]
members = ["anna"]

[queues.support.callbacks]
hide_after_failure = 1800
success_after = 20
auto = true
windows = ["* 9-15 * * mon-fri", "0-29 16 * * MON-THU"]
time_zone = "Europe/London"
calendar = "office"
policy = "callbacks-first"
max_share = 30
retry_delay = 900
max_attempts = 5
mode = "customer-first"
confirm_prompt = "cb-press-1"
confirm_key = "#"

# A calendar without its own zone: the rules are read in the calendar's.
[queues.sales.callbacks]
auto = true
windows = "* 9-16 * * *"
calendar = "ny"
policy = "live-first"
mode = "customer-first"
confirm_prompt = "cb-press-1"

[queues.night.callbacks]
policy = "interleaved"
mode = "agent-first"
time_zone = "UTC"
"##,
        );
    let set = t.load();
    let cb = &set.queues()["support"].callbacks;
    assert_eq!(cb.hide_after_failure_secs, 1800);
    assert_eq!(cb.success_after_secs, 20);
    assert!(cb.auto);
    let rules: Vec<&str> = cb.window.rules().iter().map(|r| r.as_str()).collect();
    assert_eq!(rules, ["* 9-15 * * mon-fri", "0-29 16 * * MON-THU"]);
    // Its own zone wins over the calendar's.
    assert_eq!(cb.window.time_zone(), chrono_tz::Europe::London);
    assert_eq!(cb.window.calendar(), Some("office"));
    assert_eq!(cb.policy, CallbackPolicy::CallbacksFirst);
    assert_eq!(cb.max_share_percent, 30);
    assert_eq!(cb.retry_delay_secs, 900);
    assert_eq!(cb.max_attempts, 5);
    match &cb.mode {
        CallbackMode::CustomerFirst {
            confirm_prompt,
            confirm_key,
        } => {
            assert_eq!(confirm_prompt.name, "cb-press-1");
            assert_eq!(*confirm_key, '#');
        }
        other => panic!("{other:?}"),
    }

    let sales = &set.queues()["sales"].callbacks;
    assert_eq!(sales.window.time_zone(), chrono_tz::America::New_York);
    assert_eq!(sales.window.rules().len(), 1);
    assert_eq!(sales.policy, CallbackPolicy::LiveFirst);
    assert!(matches!(
        sales.mode,
        CallbackMode::CustomerFirst {
            confirm_key: '1',
            ..
        }
    ));
    let night = &set.queues()["night"].callbacks;
    assert_eq!(night.window.time_zone(), chrono_tz::UTC);
    assert_eq!(night.policy, CallbackPolicy::Interleaved);
    assert_eq!(night.mode, CallbackMode::AgentFirst);

    // The confirm prompt is a prompt of the set, with its play time.
    assert!(set.prompt_names().contains("cb-press-1"));
    assert!(set.prompt_duration("cb-press-1").is_some());

    // The calendar helper gives what the window names; with it, the window
    // decides (Monday 2 March 2026, 10:00 in London = 11:00 in Budapest).
    let office = set.calendar("office").unwrap();
    assert!(set.calendar("nope").is_none());
    let monday = utc("2026-03-02T10:00:00Z");
    assert!(cb.auto_allowed(monday, Some(&office)));
    // Without the calendar it names, the window stays shut.
    assert!(!cb.auto_allowed(monday, None));
    // New York: 09:00 EST is 14:00 UTC.
    let ny = set.calendar("ny").unwrap();
    assert!(!sales.auto_allowed(utc("2026-03-02T13:59:00Z"), Some(&ny)));
    assert!(sales.auto_allowed(utc("2026-03-02T14:00:00Z"), Some(&ny)));
}

#[test]
fn every_error_at_its_place() {
    let t = TempFlows::new("cbs-errors");
    t.flow("f.toml", FLOW).calendar("office").file(
        "queues.toml",
        r##"[queues.support.callbacks]
hide_after_failure = "15m"
success_after = 601
auto = "yes"
windows = ["* 9-16 * *", "60 9 * * *", "* 22-4 * * *", "* * * * funday", 5]
time_zone = "Europe/Budapset"
calendar = "ofice"
policy = "callbacks_first"
max_share = 0
retry_delay = 5
max_attempts = 21
mode = "customer-first"
confirm_key = "12"
retry_dealy = 60

[queues.sales.callbacks]
auto = true
mode = "agent-first"
confirm_prompt = "cb-press-1"
confirm_key = "2"
max_share = 101
hide_after_failure = 86401

[queues.night.callbacks]
auto = true
windows = []
mode = "robot-first"
calendar = "../office"

[queues.day.callbacks]
mode = "customer-first"
confirm_prompt = "no-such-prompt"
max_attempts = 0
time_zone = 1

[queues.late]
callbacks = 5
"##,
    );
    let report = check_dir(t.path());
    let dir = t.path().display().to_string();
    let errors: Vec<String> = brief(&report.errors)
        .into_iter()
        .map(|e| e.replace(&dir, "DIR"))
        .collect();
    assert_eq!(
        errors,
        [
            "queues.toml:2:22: `hide_after_failure` must be a whole number, found string",
            "queues.toml:3:17: `success_after` must be between 0 and 600, found 601",
            "queues.toml:4:8: `auto` must be true or false, found string",
            "queues.toml:5:12: window rule `* 9-16 * *` has 4 fields; write 5 fields: minute hour day-of-month month day-of-week, e.g. \"* 9-16 * * mon-fri\" (every minute 09:00-16:59 on weekdays); fields take *, numbers, ranges (9-16), lists (1,15) and steps (*/15)",
            "queues.toml:5:26: window rule `60 9 * * *`: bad minute field `60` (0-59): Number out of bounds",
            "queues.toml:5:40: window rule `* 22-4 * * *`: the hour range `22-4` runs backwards; cron ranges do not wrap around, write `22-23,0-4`",
            "queues.toml:5:56: window rule `* * * * funday`: bad day-of-week field `funday` (0-7 or sun-sat, 0 and 7 both Sunday): CronPattern contains illegal character 'F' in part 'FUNDAY'",
            "queues.toml:5:74: `windows` must be a string, found integer",
            "queues.toml:6:13: unknown time zone `Europe/Budapset`; use an IANA name such as \"Europe/Budapest\"",
            "queues.toml:7:12: no calendar named `ofice` (did you mean `office`?); a calendar is the file calendars/ofice.toml",
            "queues.toml:8:10: `policy` must be one of \"callbacks-first\", \"interleaved\", \"live-first\", found \"callbacks_first\" (did you mean `callbacks-first`?)",
            "queues.toml:9:13: `max_share` must be between 1 and 100, found 0",
            "queues.toml:10:15: `retry_delay` must be between 60 and 604800, found 5",
            "queues.toml:11:16: `max_attempts` must be between 1 and 20, found 21",
            "queues.toml:12:8: mode = \"customer-first\" needs `confirm_prompt`: the prompt that asks the customer to press `confirm_key` before an operator is connected",
            "queues.toml:13:15: `confirm_key` must be one keypad key (0-9, * or #), found `12`",
            "queues.toml:14:1: unknown key `retry_dealy` in [queues.support.callbacks] (did you mean `retry_delay`? known keys: hide_after_failure, success_after, auto, windows, time_zone, calendar, policy, max_share, retry_delay, max_attempts, mode, confirm_prompt, confirm_key)",
            "queues.toml:17:8: auto-callback needs at least one window: add windows = [\"* 9-15 * * mon-fri\"] (cron rules: minute hour day-of-month month day-of-week)",
            "queues.toml:19:18: `confirm_prompt` is only used with mode = \"customer-first\" (the customer presses a key before an operator is connected); set `mode` or remove it",
            "queues.toml:20:15: `confirm_key` is only used with mode = \"customer-first\" (the customer presses a key before an operator is connected); set `mode` or remove it",
            "queues.toml:21:13: `max_share` must be between 1 and 100, found 101",
            "queues.toml:22:22: `hide_after_failure` must be between 0 and 86400, found 86401",
            "queues.toml:26:11: auto-callback needs at least one window: add windows = [\"* 9-15 * * mon-fri\"] (cron rules: minute hour day-of-month month day-of-week)",
            "queues.toml:27:8: `mode` must be one of \"agent-first\", \"customer-first\", found \"robot-first\"",
            "queues.toml:28:12: calendar name `../office` may only use letters, digits, `-`, `_` and `.`",
            "queues.toml:32:18: prompt `no-such-prompt`: file DIR/prompts/no-such-prompt.wav not found",
            "queues.toml:33:16: `max_attempts` must be between 1 and 20, found 0",
            "queues.toml:34:13: `time_zone` must be a string, found integer",
            "queues.toml:37:13: `callbacks` must be a table ([queues.late.callbacks]), found integer",
        ]
    );
    assert!(report.warnings.is_empty(), "{:?}", brief(&report.warnings));
}

#[test]
fn zone_hint_for_a_near_name() {
    let t = TempFlows::new("cbs-zone");
    t.flow("f.toml", FLOW).file(
        "queues.toml",
        "[queues.support.callbacks]\ntime_zone = \"budapest\"\n",
    );
    assert_eq!(
        brief(&check_dir(t.path()).errors),
        [
            "queues.toml:2:13: unknown time zone `budapest` (did you mean `Europe/Budapest`?); use an IANA name such as \"Europe/Budapest\""
        ]
    );
}
