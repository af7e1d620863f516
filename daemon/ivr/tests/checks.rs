//! `flow check`: every check, each at its exact file:line:col, all in one
//! run; warnings apart from errors.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::TempFlows;
use hotline_ivr::{CheckReport, check_dir, load_dir};

/// Errors and warnings as `file:line:col: message`, paths relative to the
/// flows directory.
fn report(t: &TempFlows) -> (Vec<String>, Vec<String>) {
    let CheckReport { errors, warnings } = check_dir(t.path());
    let dir = format!("{}/", t.path().display());
    let rel = |v: Vec<hotline_ivr::FlowError>| -> Vec<String> {
        v.iter().map(|e| e.to_string().replace(&dir, "")).collect()
    };
    (rel(errors), rel(warnings))
}

const A: &str = r##"name = "a"
numbers = ["1"]
start = "hours"

[steps.hours]
type = "schedule"
calendar = "ofice"
open = "who"
closed = "who"

[steps.who]
type = "caller"
rules = [
  { vip = "golden", next = "wait" },
  { prefix = "06 3x", next = "wait" },
  { next = "wait" },
  { anonymous = true, vip = "gold", next = "wait" },
]
default = "wait"

[steps.wait]
type = "queue"
queue = "suport"
music = "music"
announce = "hello"
announce_position = true
max_wait = 60
on_unavailable = "wait"
keys = { "1" = "bye", "12" = "bye" }
offers = "std"

[steps.cb]
type = "callback"
confirm_prompt = "cb"
min_digits = 12
max_digits = 10
patterns = ["06[2-9", "06XXXXXXXXXXXXXX"]
own_key = "2"
next = "bye"
on_fail = "bye"

[steps.loop1]
type = "goto"
next = "loop2"

[steps.loop2]
type = "set"
variables = { x = "${nope}", 1y = "a", caller = "b", z = "${x" }
next = "loop1"

[steps.xfer]
type = "transfer"
operator = "anna"
number = "12a"
on_fail = "bye"

[steps.bye]
type = "hangup"
prompts = "bye"

[offers.std]
calendar = "bad"
callback = "bye"
[[offers.std.rules]]
days = ["workdays"]
hours = ["08:00-12:00", "11:00-13:00", "25:00-26:00"]
offer = "at_entry"
every = 30
[[offers.std.rules]]
offer = "every"
prompt = "offer"
[[offers.std.rules]]
offer = "never"
prompt = "offer"
[[offers.std.rules]]
vip = "gold"
offer = "at_entry"
prompt = "offer"

[offers.unused]
rules = [{ days = ["holiday"], offer = "never" }]
"##;

#[test]
fn references_shapes_and_settings() {
    let t = TempFlows::new("check-a");
    t.prompts(&["hello", "bye", "music", "offer", "cb", "enter"])
        .file(
            "queues.toml",
            "[queues.support]\n[queues.sales]\ncolour = \"red\"\n",
        )
        .file(
            "vip/gold.txt",
            "# vips\n+36 30 123 4567\n06 30 12x4567\n\n06301234567  # again\n",
        )
        .file(
            "calendars/bad.toml",
            "timezone = \"Europe/Budapestt\"\n[hours]\nmon = [\"08:00-17:00\"]\n",
        )
        .calendar("office")
        .flow("a.toml", A);
    let (errors, warnings) = report(&t);
    assert_eq!(
        errors,
        [
            "a.toml:7:12: no calendar named `ofice` (did you mean `office`?); a calendar is the file calendars/ofice.toml",
            "a.toml:14:11: no VIP list named `golden` (did you mean `gold`?); a VIP list is the file vip/golden.txt",
            "a.toml:15:19: prefix `06 3x`: `x` is not allowed in a number prefix",
            r#"a.toml:16:3: rule 3 of step `who` needs a condition: `anonymous = true`, `vip = "LIST"` or `prefix = "06 30"`"#,
            "a.toml:17:3: rule 4 of step `who` has more than one condition; write one rule per condition",
            "a.toml:21:1: these steps can go round forever without playing anything or waiting for the caller: `wait` (queue, on_unavailable) → `wait`; add a play or menu step to the loop, or point one of them elsewhere",
            "a.toml:23:9: no queue named `suport` (did you mean `support`?); declare it in queues.toml as [queues.suport]",
            "a.toml:25:12: `announce` needs `announce_every` (seconds between announcements)",
            "a.toml:26:21: `announce_position = true` plays prompts that are missing or not 8000 Hz mono 16-bit PCM WAV: queue-position, queue-position-many, digit-1, digit-2, digit-3, digit-4, digit-5, digit-6, digit-7, digit-8, digit-9 (prompts/make-prompts.sh makes them)",
            "a.toml:27:12: `max_wait` needs `on_timeout` (the step after the wait)",
            "a.toml:29:10: key `1` is also the callback offer key of [offers.std] (rule at line 75); use another key",
            "a.toml:29:23: `12`: each of `keys` is one keypad key (0-9, * or #)",
            "a.toml:32:1: the number read-back (`readback`, on unless set to false) plays prompts that are missing or not 8000 Hz mono 16-bit PCM WAV: digit-0, digit-1, digit-2, digit-3, digit-4, digit-5, digit-6, digit-7, digit-8, digit-9 (prompts/make-prompts.sh makes them)",
            "a.toml:35:14: `min_digits` (12) is more than `max_digits` (10)",
            "a.toml:37:13: pattern `06[2-9`: `[` is not closed (write digits, X for any digit, [2-9] or [237] for a choice)",
            "a.toml:37:23: pattern `06XXXXXXXXXXXXXX` takes 16 digits, outside min_digits..max_digits (12..10), so it can never match",
            "a.toml:42:1: these steps can go round forever without playing anything or waiting for the caller: `loop1` (goto, next) → `loop2` (set, next) → `loop1`; add a play or menu step to the loop, or point one of them elsewhere",
            "a.toml:48:20: unknown variable `${nope}`; known: called, caller, flow, x",
            "a.toml:48:30: variable name `1y` must start with a letter or `_` and use letters, digits, `_`, `-`, `.`",
            "a.toml:48:40: `caller` is set by Hotline; choose another name",
            "a.toml:48:59: `${` is not closed with `}`",
            "a.toml:51:1: step `xfer` has more than one target; give one of `operator`, `queue`, `number`",
            "a.toml:54:13: number `12a`: `a` is not allowed in a phone number",
            "a.toml:63:12: `callback` must name a callback step; `bye` is a hangup step",
            "a.toml:64:1: rule 1 of offer rule set `std` offers a callback but has no `prompt` (set it here or in [offers.std])",
            "a.toml:65:9: unknown day kind `workdays` (did you mean `workday`?); known: workday, moved_workday, weekend, holiday, special",
            "a.toml:66:25: `11:00-13:00` overlaps `08:00-12:00` in the same rule; join them into one range",
            r#"a.toml:66:40: `25:00-26:00` is not a time range: write "HH:MM-HH:MM", e.g. "08:00-17:00" ("22:00-06:00" runs overnight, "24:00" is midnight)"#,
            r#"a.toml:68:9: `every` only applies with offer = "every" or "at_entry_and_every""#,
            r#"a.toml:69:1: rule 2 of offer rule set `std`: offer = "every" needs `every` (seconds between offers)"#,
            r#"a.toml:74:10: `prompt` does nothing with offer = "never""#,
            r#"a.toml:81:19: `days` needs a calendar: set `calendar = "NAME"` in [offers.unused] (calendars/NAME.toml gives the day kinds and the time zone)"#,
            r#"calendars/bad.toml:1:12: unknown time zone `Europe/Budapestt` (did you mean `Europe/Budapest`?); use an IANA name such as "Europe/Budapest""#,
            "queues.toml:3:1: unknown key `colour` in queue `sales` (known keys: display_name, members, skills, ring_timeout, max_misses, wrap_up, callbacks, supervisors, service_level_secs, monitor_beep, record)",
            "vip/gold.txt:3:9: `06 30 12x4567` is not a phone number: `x` is not allowed in a phone number (write one number per line, digits with an optional leading +; spaces and dashes are ignored)",
        ]
    );
    assert_eq!(
        warnings,
        [
            "a.toml:32:1: step `cb` is never reached: no step leads to it from `start`",
            "a.toml:42:1: step `loop1` is never reached: no step leads to it from `start`",
            "a.toml:46:1: step `loop2` is never reached: no step leads to it from `start`",
            "a.toml:51:1: step `xfer` is never reached: no step leads to it from `start`",
            r#"a.toml:80:1: offer rule set `unused` is not used by any queue step (`offers = "unused"`)"#,
            "vip/gold.txt:5:1: +36301234567 is already listed on line 2",
        ]
    );
    // The same errors refuse the set.
    assert_eq!(load_dir(t.path()).unwrap_err().len(), errors.len());
}

const B: &str = r##"name = "b"
numbers = ["2"]
start = "hours"

[steps.hours]
type = "schedule"
calendar = "office"
open = "who"
closed = "cb_own"

[steps.who]
type = "caller"
rules = [{ anonymous = false, next = "hours" }, { prefix = "1", next = "hours" }]
default = "q"

[steps.q]
type = "queue"
queue = "support"
on_unavailable = "bye"
offers = "std"
callback = "bye"

[steps.cb_own]
type = "callback"
confirm_prompt = "cb"
readback = false
next = "bye"
on_fail = "bye"

[steps.t]
type = "transfer"
on_fail = "bye"

[steps.bye]
type = "hangup"

[offers.std]
rules = [{ offer = "at_entry", prompt = "offer" }]
"##;

#[test]
fn loops_anonymous_callers_and_targets() {
    let t = TempFlows::new("check-b");
    t.prompts(&["hello", "bye", "music", "offer", "cb", "enter"])
        .calendar("office")
        .flow("b.toml", B);
    let (errors, warnings) = report(&t);
    assert_eq!(
        errors,
        [
            "b.toml:5:1: these steps can go round forever without playing anything or waiting for the caller: `hours` (schedule, open) → `who` (caller, rules) → `hours`; add a play or menu step to the loop, or point one of them elsewhere",
            "b.toml:13:24: `anonymous = false` is not a condition; rules are tried in order, so put `anonymous = true` rules first and let the others follow",
            "b.toml:18:9: no queue named `support`: there is no queues.toml; declare queues there as [queues.support]",
            "b.toml:21:12: `callback` must name a callback step; `bye` is a hangup step",
            r#"b.toml:23:1: callback step `cb_own` has no `enter_prompt`, but a caller with a withheld number can reach it (hours → cb_own) and has no own number to confirm; add `enter_prompt`, or send anonymous callers elsewhere first with a caller step rule { anonymous = true, next = "..." }"#,
            "b.toml:30:1: step `t` needs a target: `operator`, `queue` or `number`",
        ]
    );
    assert_eq!(
        warnings,
        ["b.toml:30:1: step `t` is never reached: no step leads to it from `start`",]
    );
}

const C: &str = r##"name = "c"
numbers = ["3"]
start = "q"

[steps.q]
type = "queue"
queue = "support"
musik = "hello"
announce_every = 30
on_timeout = "bye"
on_unavailable = "q2"
offers = "std"

[steps.q2]
type = "queue"
queue = "support"
on_unavailable = "bye"
callback = "cb"

[steps.cb]
type = "callback"
own_key = "1"
other_key = "1"
next = "bye"
on_fail = "bye"

[steps.who]
type = "caller"
rules = []
default = "bye"

[steps.bye]
type = "hangup"
prompt = "bye"

[offers.std]
colour = "red"
prompt = "offer"

[[offers.std.rules]]
offer = "at_entry"
wait = 30

[[offers.std.rules]]
vip = "gold"
offer = "at_entry"
"##;

#[test]
fn unknown_keys_and_settings_that_need_each_other() {
    let t = TempFlows::new("check-c");
    t.prompts(&["hello", "bye", "offer", "cb"])
        .file("queues.toml", "[queues.support]\n")
        .flow("c.toml", C)
        .flow(
            "d.toml",
            r#"name = "d"
start = "bye"

[steps.bye]
type = "hangup"
"#,
        );
    let (errors, warnings) = report(&t);
    assert_eq!(
        errors,
        [
            "c.toml:8:1: unknown key `musik` in step `q` (did you mean `music`? known keys: type, queue, priority, skill, music, announce, announce_every, announce_position, announce_wait, max_wait, on_timeout, on_unavailable, keys, offers, callback, record, record_prompt)",
            "c.toml:9:18: `announce_every` has nothing to announce: add `announce`, `announce_position = true` or `announce_wait = true`",
            "c.toml:10:14: `on_timeout` needs `max_wait` (seconds before it applies)",
            "c.toml:12:10: the callback offer needs a callback step: set `callback` in this step or in [offers.std]",
            "c.toml:18:12: `callback` is only used with `offers` (the offer key leads there); add `offers` or remove `callback`",
            "c.toml:20:1: step `cb` needs `confirm_prompt` (to call back the caller's own number), `enter_prompt` (to key in a number), or both",
            "c.toml:20:1: the number read-back (`readback`, on unless set to false) plays prompts that are missing or not 8000 Hz mono 16-bit PCM WAV: digit-0, digit-1, digit-2, digit-3, digit-4, digit-5, digit-6, digit-7, digit-8, digit-9 (prompts/make-prompts.sh makes them)",
            "c.toml:23:13: `other_key` must differ from `own_key` (both are `1`)",
            "c.toml:29:9: `rules` is empty; a caller step needs at least one rule",
            "c.toml:34:1: unknown key `prompt` in step `bye` (did you mean `prompts`? known keys: type, prompts)",
            "c.toml:37:1: unknown key `colour` in offer rule set `std` (known keys: calendar, callback, key, prompt, promise, rules)",
            "c.toml:42:1: unknown key `wait` in rule 1 of offer rule set `std` (known keys: days, hours, vip, offer, wait_over, every, key, prompt, promise)",
            "c.toml:45:7: no VIP list named `gold`; a VIP list is the file vip/gold.txt",
        ]
    );
    assert_eq!(
        warnings,
        [
            "c.toml:20:1: step `cb` is never reached: no step leads to it from `start`",
            "c.toml:27:1: step `who` is never reached: no step leads to it from `start`",
            "c.toml:44:1: this rule of offer rule set `std` never applies: the rule at line 40 has no conditions and matches every call first",
            r#"d.toml:1:8: flow `d` answers no number: add `numbers = ["..."]` or `default = true`"#,
        ]
    );
}

#[test]
fn warnings_alone_do_not_stop_a_set() {
    let t = TempFlows::new("check-warn");
    t.prompts(&["bye"]).flow("d.toml", r#"name = "d"
start = "bye"

[steps.bye]
type = "hangup"
"#).flow(
        "e.toml",
        "name = \"e\"\ndefault = true\nstart = \"bye\"\n[steps.bye]\ntype = \"hangup\"\n[steps.draft]\ntype = \"hangup\"\n",
    );
    let (errors, warnings) = report(&t);
    assert_eq!(errors, Vec::<String>::new());
    let want = [
        r#"d.toml:1:8: flow `d` answers no number: add `numbers = ["..."]` or `default = true`"#,
        "e.toml:6:1: step `draft` is never reached: no step leads to it from `start`",
    ];
    assert_eq!(warnings, want);
    let set = load_dir(t.path()).unwrap();
    assert_eq!(set.warnings().len(), 2);
}

#[test]
fn a_broken_support_file_is_reported_once() {
    // A queues.toml, calendar or VIP list that does not load is reported
    // at its own error; flows that name what it declares get no second one.
    let t = TempFlows::new("check-support");
    t.prompts(&["bye"])
        .file("queues.toml", "[queues.support\n")
        .file(
            "calendars/office.toml",
            "timezone = \"Mars/Olympus\"\n[hours]\n",
        )
        .file("vip/gold.txt", "06 30 x\n")
        .flow(
            "f.toml",
            r#"name = "f"
default = true
start = "hours"
[steps.hours]
type = "schedule"
calendar = "office"
open = "who"
closed = "who"
[steps.who]
type = "caller"
rules = [{ vip = "gold", next = "q" }]
default = "q"
[steps.q]
type = "queue"
queue = "support"
on_unavailable = "bye"
[steps.bye]
type = "hangup"
"#,
        );
    let (errors, warnings) = report(&t);
    assert_eq!(
        errors,
        [
            r#"calendars/office.toml:1:12: unknown time zone `Mars/Olympus`; use an IANA name such as "Europe/Budapest""#,
            "queues.toml:1:16: TOML syntax error: unclosed table, expected `]`",
            "vip/gold.txt:1:7: `06 30 x` is not a phone number: `x` is not allowed in a phone number (write one number per line, digits with an optional leading +; spaces and dashes are ignored)",
        ]
    );
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn skills_name_members_and_queue_steps_name_declared_skills() {
    let t = TempFlows::new("skills");
    t.prompts(&["music"])
        .file(
            "queues.toml",
            r#"[queues.support]
members = ["anna", "bela"]
[queues.support.skills]
english = ["anna"]
german = ["bela", "cili"]
"#,
        )
        .flow(
            "s.toml",
            r#"name = "s"
numbers = ["1"]
start = "en"

[steps.en]
type = "queue"
queue = "support"
skill = "englsh"
music = "music"
on_unavailable = "de"

[steps.de]
type = "queue"
queue = "support"
skill = "german"
music = "music"
on_unavailable = "bye"

[steps.bye]
type = "hangup"
"#,
        );
    let (errors, _) = report(&t);
    assert_eq!(
        errors,
        [
            "queues.toml:5:19: skill `german` names `cili`, who is not a member of queue `support`; add them to `members`",
            r#"s.toml:8:9: queue `support` has no skill `englsh` (did you mean `english`?); declare who has it in queues.toml as [queues.support.skills] englsh = ["operator"]"#,
        ]
    );
}

/// Transfers the daemon would fail on every call, warned at their target: a number the
/// dial plan refuses, an operator in no queue. `flow simulate` fails them the same way.
#[test]
fn transfers_that_always_fail_are_warned_and_simulated_as_failing() {
    let t = TempFlows::new("check-transfer");
    t.prompts(&["bye"])
        .file("queues.toml", "[queues.support]\nmembers = [\"anna\"]\n")
        .flow(
            "x.toml",
            r#"name = "x"
numbers = ["5"]
start = "premium"

[steps.premium]
type = "transfer"
number = "06 90 123 456"
on_fail = "nobody"

[steps.nobody]
type = "transfer"
operator = "zoltan"
on_fail = "anna"

[steps.anna]
type = "transfer"
operator = "anna"
on_fail = "bye"

[steps.bye]
type = "hangup"
prompts = ["bye"]
"#,
        );
    let set = load_dir(t.path()).unwrap();
    let plan = hotline_ivr::dialplan::DialPlan::default();
    let dir = format!("{}/", t.path().display());
    let warned: Vec<String> = hotline_ivr::dialplan::transfer_warnings(&set, &plan)
        .iter()
        .map(|e| e.to_string().replace(&dir, ""))
        .collect();
    assert_eq!(
        warned,
        [
            "x.toml:7:10: step `premium` transfers to +3690123456 is blocked by the dial plan (+3690.): the call always takes `on_fail` (nobody)",
            "x.toml:12:12: step `nobody` transfers to zoltan, who is in no queue of queues.toml: the call always takes `on_fail` (anna)",
        ]
    );
    let lines = hotline_ivr::simulate(
        &set,
        &hotline_ivr::SimInput {
            called: "5".into(),
            caller: "+36209990000".into(),
            at: chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00+01:00").unwrap(),
            digits: Vec::new(),
            queue_wait: None,
            expected_wait: std::time::Duration::from_secs(60),
            promise_in: None,
            dial_plan: plan,
        },
    )
    .unwrap();
    let text: Vec<String> = lines.iter().map(|l| l.text.clone()).collect();
    assert!(
        text.iter().any(|l| l.contains("transfer failed → nobody")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|l| l.contains("transfer failed → anna")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|l| l.contains("transfer succeeded")),
        "{text:#?}"
    );
}

#[test]
fn recording_settings_are_checked_where_they_are_written() {
    let t = TempFlows::new("check-record");
    t.prompts(&["notice"])
        .file("queues.toml", "[queues.support]\nrecord = \"sometimes\"\n")
        .flow(
            "r.toml",
            r#"name = "r"
start = "wait"

[steps.wait]
type = "queue"
queue = "support"
record = "off"
record_prompt = "notice"
on_unavailable = "bye"

[steps.bye]
type = "hangup"
"#,
        );
    let (errors, _) = report(&t);
    assert_eq!(
        errors,
        [
            "queues.toml:2:10: `record` must be one of \"off\", \"always\", \"on_demand\", found \"sometimes\"",
            "r.toml:8:17: `record_prompt` tells the caller a call is recorded, but this step has `record = \"off\"`",
        ]
    );
}
