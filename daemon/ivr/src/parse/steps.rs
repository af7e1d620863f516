//! `[steps.NAME]` tables. Each reader asks for every one of its keys even
//! when an earlier one was wrong, so all problems show in one run (and the
//! schema test can list the keys).

use std::borrow::Cow;

use toml::Spanned;

use super::{Cx, Fields, Value, is_dtmf};
use crate::error::Loc;
use crate::model::{
    Callback, CallerBranch, CallerMatch, CallerRule, Choice, ComputedPromise, Goto, Hangup, Menu,
    Play, Queue, Ref, STEP_TYPES, Schedule, SetVars, Step, StepKind, Transfer, TransferTo,
};
use crate::number::{self, NumberPattern};
use crate::parse::flow::BUILTIN_VARIABLES;
use crate::queues::RecordMode;
use crate::vars;

pub(crate) const DEFAULT_MENU_TIMEOUT_MS: u64 = 5000;
pub(crate) const DEFAULT_MENU_RETRIES: u64 = 2;
pub(crate) const DEFAULT_ENTRY_TIMEOUT_MS: u64 = 8000;
pub(crate) const DEFAULT_MIN_DIGITS: u64 = 6;
pub(crate) const DEFAULT_MAX_DIGITS: u64 = 15;
// Upper bounds that catch typos (an extra zero or three), not policy.
const MAX_MENU_TIMEOUT_MS: u64 = 600_000;
const MAX_MENU_RETRIES: u64 = 20;
const MAX_QUEUE_WAIT_S: u64 = 86_400;
const MIN_PERIOD_S: u64 = 10;
const MAX_PERIOD_S: u64 = 3600;
const MAX_NUMBER_DIGITS: u64 = 20;

fn label(ty: &str) -> &'static str {
    match ty {
        "play" => "step.play",
        "menu" => "step.menu",
        "schedule" => "step.schedule",
        "caller" => "step.caller",
        "queue" => "step.queue",
        "callback" => "step.callback",
        "set" => "step.set",
        "transfer" => "step.transfer",
        "hangup" => "step.hangup",
        "goto" => "step.goto",
        _ => "step",
    }
}

pub(super) fn read_step(
    cx: &mut Cx<'_>,
    key: &Spanned<Cow<'_, str>>,
    v: &Value<'_>,
) -> Option<Step> {
    let name = key.get_ref().to_string();
    let Some(table) = v.get_ref().as_table() else {
        cx.wrong_type(v, &format!("steps.{name}"), "a table");
        return None;
    };
    let at = cx.loc(v.span());
    let mut f = Fields::new(table, at, format!("step `{name}`"));
    let ty = f.require(cx, "type").and_then(|t| cx.string(t, "type"))?;
    f.label = label(&ty.name);
    let kind = match ty.name.as_str() {
        "play" => StepKind::Play(read_play(cx, &mut f)),
        "menu" => StepKind::Menu(read_menu(cx, &mut f)),
        "schedule" => StepKind::Schedule(read_schedule(cx, &mut f)),
        "caller" => StepKind::Caller(read_caller(cx, &mut f, &name)),
        "queue" => StepKind::Queue(read_queue(cx, &mut f)),
        "callback" => StepKind::Callback(read_callback(cx, &mut f, &name)),
        "set" => StepKind::Set(read_set(cx, &mut f, &name)),
        "transfer" => StepKind::Transfer(read_transfer(cx, &mut f, &name)),
        "hangup" => StepKind::Hangup(read_hangup(cx, &mut f)),
        "goto" => StepKind::Goto(Goto {
            next: required_ref(cx, &mut f, "next"),
        }),
        other => {
            let hint = super::closest(other, STEP_TYPES.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            cx.err_at(
                ty.at,
                format!(
                    "unknown step type `{other}` ({hint}known types: {})",
                    STEP_TYPES.join(", ")
                ),
            );
            // Its other keys mean nothing without a type: don't report them.
            return None;
        }
    };
    f.finish(cx);
    Some(Step { name, at, kind })
}

fn placeholder(at: Loc) -> Ref {
    Ref::new("", at)
}

fn required_ref(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, key: &'static str) -> Ref {
    f.require(cx, key)
        .and_then(|v| cx.string(v, key))
        .unwrap_or_else(|| placeholder(f.at))
}

fn opt_ref(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, key: &'static str) -> Option<Ref> {
    f.get(key).and_then(|v| cx.string(v, key))
}

fn opt_prompts(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, key: &'static str) -> Vec<Ref> {
    f.get(key)
        .map(|v| cx.prompts(v, key, false))
        .unwrap_or_default()
}

fn read_play(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Play {
    let prompts = f
        .require(cx, "prompts")
        .map(|v| cx.prompts(v, "prompts", true))
        .unwrap_or_default();
    let interruptible = f
        .get("interruptible")
        .and_then(|v| cx.bool(v, "interruptible"))
        .unwrap_or(false);
    let next = required_ref(cx, f, "next");
    Play {
        prompts,
        interruptible,
        next,
    }
}

/// `{ "1" = "sales", ... }`: keys → steps. `single`: one key each.
fn read_choices(cx: &mut Cx<'_>, v: &Value<'_>, key: &str, single: bool) -> Vec<Choice> {
    let mut choices = Vec::new();
    match v.get_ref().as_table() {
        Some(t) if t.is_empty() => cx.err(v.span(), format!("`{key}` is empty")),
        Some(t) => {
            for (k, target) in t.iter() {
                let digits = k.get_ref().to_string();
                let at = cx.loc(k.span());
                if digits.is_empty() || !digits.chars().all(is_dtmf) {
                    cx.err_at(
                        at,
                        format!("choice `{digits}` must be keypad digits (0-9, * or #)"),
                    );
                    continue;
                }
                if single && digits.chars().count() != 1 {
                    cx.err_at(
                        at,
                        format!("`{digits}`: each of `{key}` is one keypad key (0-9, * or #)"),
                    );
                    continue;
                }
                if let Some(target) = cx.string(target, key) {
                    choices.push(Choice { digits, at, target });
                }
            }
        }
        None => cx.wrong_type(v, key, "a table like { \"1\" = \"sales\" }"),
    }
    choices
}

fn read_menu(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Menu {
    let prompts = f
        .require(cx, "prompt")
        .map(|v| cx.prompts(v, "prompt", true))
        .unwrap_or_default();
    let timeout_ms = f
        .get("timeout_ms")
        .and_then(|v| cx.uint(v, "timeout_ms", 1, MAX_MENU_TIMEOUT_MS))
        .unwrap_or(DEFAULT_MENU_TIMEOUT_MS);
    let retries = f
        .get("retries")
        .and_then(|v| cx.uint(v, "retries", 0, MAX_MENU_RETRIES))
        .unwrap_or(DEFAULT_MENU_RETRIES);
    let invalid_prompts = opt_prompts(cx, f, "invalid_prompt");
    let timeout_prompts = f
        .get("timeout_prompt")
        .map(|v| cx.prompts(v, "timeout_prompt", false));
    let choices = f
        .require(cx, "choices")
        .map(|v| read_choices(cx, v, "choices", false))
        .unwrap_or_default();
    // The menu acts as soon as the entry equals a choice, so a choice that
    // extends another ("1" and "12") could never be picked.
    for c in &choices {
        if let Some(short) = choices
            .iter()
            .find(|o| o.digits.len() < c.digits.len() && c.digits.starts_with(&o.digits))
        {
            cx.err_at(
                c.at,
                format!(
                    "choice `{}` can never be picked: the menu acts on `{}` as soon as it is pressed",
                    c.digits, short.digits
                ),
            );
        }
    }
    let on_fail = required_ref(cx, f, "on_fail");
    Menu {
        prompts,
        timeout_ms,
        retries: u32::try_from(retries).unwrap_or(u32::MAX),
        invalid_prompts,
        timeout_prompts,
        choices,
        on_fail,
    }
}

fn read_schedule(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Schedule {
    let calendar = f
        .require(cx, "calendar")
        .and_then(|v| cx.file_name(v, "calendar", "calendar"))
        .unwrap_or_else(|| placeholder(f.at));
    let open = required_ref(cx, f, "open");
    let closed = required_ref(cx, f, "closed");
    let holiday = opt_ref(cx, f, "holiday");
    let weekend = opt_ref(cx, f, "weekend");
    let mut days = Vec::new();
    if let Some(v) = f.get("days") {
        match v.get_ref().as_table() {
            Some(t) => {
                for (k, target) in t.iter() {
                    let day = Ref::new(k.get_ref().to_string(), cx.loc(k.span()));
                    if day.name.trim().is_empty() {
                        cx.err_at(day.at, "a day name must not be empty");
                        continue;
                    }
                    if let Some(target) = cx.string(target, "days") {
                        days.push((day, target));
                    }
                }
            }
            None => cx.wrong_type(
                v,
                "days",
                "a table of day names, like { \"Christmas Eve\" = \"xmas\" }",
            ),
        }
    }
    Schedule {
        calendar,
        open,
        closed,
        holiday,
        weekend,
        days,
    }
}

fn read_caller(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, step: &str) -> CallerBranch {
    let mut rules = Vec::new();
    if let Some(v) = f.require(cx, "rules") {
        match v.get_ref().as_array() {
            Some(items) if items.is_empty() => cx.err(
                v.span(),
                "`rules` is empty; a caller step needs at least one rule",
            ),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(rule) = read_caller_rule(cx, item, i + 1, step) {
                        rules.push(rule);
                    }
                }
            }
            None => cx.wrong_type(
                v,
                "rules",
                "an array of tables, like [{ vip = \"vip\", next = \"vip_menu\" }]",
            ),
        }
    }
    let default = required_ref(cx, f, "default");
    CallerBranch { rules, default }
}

fn read_caller_rule(cx: &mut Cx<'_>, v: &Value<'_>, n: usize, step: &str) -> Option<CallerRule> {
    let Some(t) = v.get_ref().as_table() else {
        cx.wrong_type(v, "rules", "an array of tables");
        return None;
    };
    let at = cx.loc(v.span());
    let mut f = Fields::new(t, at, format!("rule {n} of step `{step}`")).labeled("caller_rule");
    let mut conds = Vec::new();
    if let Some(v) = f.get("anonymous")
        && let Some(b) = cx.bool(v, "anonymous")
    {
        if b {
            conds.push(CallerMatch::Anonymous);
        } else {
            cx.err(
                v.span(),
                "`anonymous = false` is not a condition; rules are tried in order, so put \
                 `anonymous = true` rules first and let the others follow",
            );
        }
    }
    if let Some(v) = f.get("vip")
        && let Some(r) = cx.file_name(v, "vip", "VIP list")
    {
        conds.push(CallerMatch::Vip(r));
    }
    if let Some(v) = f.get("prefix")
        && let Some(raw) = cx.strings(v, "prefix")
    {
        if raw.is_empty() {
            cx.err(v.span(), "`prefix` needs at least one prefix");
        }
        let mut prefixes = Vec::new();
        for r in &raw {
            match number::normalize_prefix(&r.name) {
                Ok(p) => prefixes.push(p),
                Err(e) => cx.err_at(
                    Loc::new(r.at.line, r.at.col + 1 + e.index),
                    format!("prefix `{}`: {}", r.name, e.message),
                ),
            }
        }
        if !prefixes.is_empty() {
            conds.push(CallerMatch::Prefix(prefixes));
        }
    }
    let next = required_ref(cx, &mut f, "next");
    let what = f.what().to_owned();
    f.finish(cx);
    match conds.len() {
        1 => conds.pop().map(|when| CallerRule { at, when, next }),
        0 => {
            // Nothing parsed may mean a bad condition already reported.
            if !t.contains_key("anonymous") && !t.contains_key("vip") && !t.contains_key("prefix") {
                cx.err_at(
                    at,
                    format!(
                        "{what} needs a condition: `anonymous = true`, `vip = \"LIST\"` or \
                         `prefix = \"06 30\"`"
                    ),
                );
            }
            None
        }
        _ => {
            cx.err_at(
                at,
                format!("{what} has more than one condition; write one rule per condition"),
            );
            None
        }
    }
}

fn read_queue(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Queue {
    let queue = f
        .require(cx, "queue")
        .and_then(|v| cx.file_name(v, "queue", "queue"))
        .unwrap_or_else(|| placeholder(f.at));
    let priority = f
        .get("priority")
        .and_then(|v| cx.uint(v, "priority", 0, 9))
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(0);
    let skill = f
        .get("skill")
        .and_then(|v| cx.file_name(v, "skill", "skill"));
    let music = opt_prompts(cx, f, "music");
    let announce_v = f.get("announce");
    let announce = announce_v
        .map(|v| cx.prompts(v, "announce", false))
        .unwrap_or_default();
    let every_v = f.get("announce_every");
    let announce_every =
        every_v.and_then(|v| cx.uint(v, "announce_every", MIN_PERIOD_S, MAX_PERIOD_S));
    let flag = |cx: &mut Cx<'_>, v: Option<&Value<'_>>, key: &str| {
        v.and_then(|v| cx.bool(v, key).filter(|b| *b).map(|_| cx.loc(v.span())))
    };
    let announce_position = flag(cx, f.get("announce_position"), "announce_position");
    let announce_wait = flag(cx, f.get("announce_wait"), "announce_wait");
    let max_wait_v = f.get("max_wait");
    let max_wait = max_wait_v.and_then(|v| cx.uint(v, "max_wait", 1, MAX_QUEUE_WAIT_S));
    let on_timeout = opt_ref(cx, f, "on_timeout");
    let on_unavailable = required_ref(cx, f, "on_unavailable");
    let keys = f
        .get("keys")
        .map(|v| read_choices(cx, v, "keys", true))
        .unwrap_or_default();
    let offers = opt_ref(cx, f, "offers");
    let callback = opt_ref(cx, f, "callback");
    let record = f
        .get("record")
        .and_then(|v| crate::queues::choice(cx, v, "record", &RecordMode::NAMES))
        .and_then(|i| RecordMode::ALL.get(i).copied());
    let record_prompt_v = f.get("record_prompt");
    let record_prompt = record_prompt_v
        .map(|v| cx.prompts(v, "record_prompt", false))
        .unwrap_or_default();
    if let Some(v) = record_prompt_v
        && record == Some(RecordMode::Off)
    {
        cx.err(
            v.span(),
            "`record_prompt` tells the caller a call is recorded, but this step has \
             `record = \"off\"`",
        );
    }

    if let Some(v) = announce_v
        && !announce.is_empty()
        && every_v.is_none()
    {
        cx.err(
            v.span(),
            "`announce` needs `announce_every` (seconds between announcements)",
        );
    }
    if let Some(v) = every_v
        && announce.is_empty()
        && announce_position.is_none()
        && announce_wait.is_none()
    {
        cx.err(
            v.span(),
            "`announce_every` has nothing to announce: add `announce`, \
             `announce_position = true` or `announce_wait = true`",
        );
    }
    match (max_wait_v, &on_timeout) {
        (Some(v), None) => cx.err(
            v.span(),
            "`max_wait` needs `on_timeout` (the step after the wait)",
        ),
        (None, Some(r)) => cx.err_at(
            r.at,
            "`on_timeout` needs `max_wait` (seconds before it applies)",
        ),
        _ => {}
    }
    Queue {
        queue,
        priority,
        skill,
        music,
        announce,
        announce_every,
        announce_position,
        announce_wait,
        max_wait,
        on_timeout,
        on_unavailable,
        keys,
        offers,
        callback,
        record,
        record_prompt,
    }
}

fn read_callback(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, step: &str) -> Callback {
    let confirm_prompt = opt_prompts(cx, f, "confirm_prompt");
    let own_key = f.get("own_key").and_then(|v| cx.key(v, "own_key"));
    let other_v = f.get("other_key");
    let other_key = other_v.and_then(|v| cx.key(v, "other_key"));
    let enter_prompt = opt_prompts(cx, f, "enter_prompt");
    let invalid_prompt = opt_prompts(cx, f, "invalid_prompt");
    let timeout_ms = f
        .get("timeout_ms")
        .and_then(|v| cx.uint(v, "timeout_ms", 1, MAX_MENU_TIMEOUT_MS))
        .unwrap_or(DEFAULT_ENTRY_TIMEOUT_MS);
    let retries = f
        .get("retries")
        .and_then(|v| cx.uint(v, "retries", 0, MAX_MENU_RETRIES))
        .unwrap_or(DEFAULT_MENU_RETRIES);
    let min_v = f.get("min_digits");
    let min_digits = min_v
        .and_then(|v| cx.uint(v, "min_digits", 3, MAX_NUMBER_DIGITS))
        .unwrap_or(DEFAULT_MIN_DIGITS);
    let max_digits = f
        .get("max_digits")
        .and_then(|v| cx.uint(v, "max_digits", 3, MAX_NUMBER_DIGITS))
        .unwrap_or(DEFAULT_MAX_DIGITS);
    let mut patterns = Vec::new();
    if let Some(v) = f.get("patterns") {
        match v.get_ref().as_array() {
            Some(_) => {
                for r in cx.strings(v, "patterns").unwrap_or_default() {
                    match NumberPattern::parse(&r.name) {
                        Ok(p) if !(min_digits..=max_digits).contains(&(p.len() as u64)) => {
                            cx.err_at(
                                r.at,
                                format!(
                                    "pattern `{}` takes {} digits, outside min_digits..max_digits \
                                     ({min_digits}..{max_digits}), so it can never match",
                                    r.name,
                                    p.len()
                                ),
                            );
                        }
                        Ok(p) => patterns.push(p),
                        Err(e) => cx.err_at(r.at, e),
                    }
                }
            }
            None => cx.wrong_type(v, "patterns", "an array of strings"),
        }
    }
    let readback = f
        .get("readback")
        .and_then(|v| cx.bool(v, "readback"))
        .unwrap_or(true);
    let readback_prompt = opt_prompts(cx, f, "readback_prompt");
    let promise = f.get("promise").and_then(|v| cx.prompt(v, "promise"));
    let promise_computed = f
        .get("promise_computed")
        .and_then(|v| read_computed_promise(cx, v, step));
    let queue = f
        .get("queue")
        .and_then(|v| cx.file_name(v, "queue", "queue"));
    let next = required_ref(cx, f, "next");
    let on_fail = required_ref(cx, f, "on_fail");

    if confirm_prompt.is_empty() && enter_prompt.is_empty() {
        cx.err_at(
            f.at,
            format!(
                "step `{step}` needs `confirm_prompt` (to call back the caller's own number), \
                 `enter_prompt` (to key in a number), or both"
            ),
        );
    }
    if min_digits > max_digits
        && let Some(v) = min_v
    {
        cx.err(
            v.span(),
            format!("`min_digits` ({min_digits}) is more than `max_digits` ({max_digits})"),
        );
    }
    let own_key = own_key.unwrap_or('1');
    let other_key = other_key.unwrap_or('2');
    if own_key == other_key
        && let Some(v) = other_v
    {
        cx.err(
            v.span(),
            format!("`other_key` must differ from `own_key` (both are `{own_key}`)"),
        );
    }
    Callback {
        confirm_prompt,
        own_key,
        other_key,
        enter_prompt,
        invalid_prompt,
        timeout_ms,
        retries: u32::try_from(retries).unwrap_or(u32::MAX),
        min_digits: usize::try_from(min_digits).unwrap_or(usize::MAX),
        max_digits: usize::try_from(max_digits).unwrap_or(usize::MAX),
        patterns,
        readback,
        readback_prompt,
        promise,
        promise_computed,
        queue,
        next,
        on_fail,
    }
}

/// Default of `promise_computed.soon_minutes`.
const DEFAULT_SOON_MINUTES: u64 = 30;

/// `[steps.NAME.promise_computed]`: `soon`, `today` and `later` prompts (all three, so
/// every computed time has words), and `soon_minutes`.
fn read_computed_promise(cx: &mut Cx<'_>, v: &Value<'_>, step: &str) -> Option<ComputedPromise> {
    let Some(t) = v.get_ref().as_table() else {
        cx.wrong_type(v, "promise_computed", "a table");
        return None;
    };
    let at = cx.loc(v.span());
    let mut f = Fields::new(t, at, format!("`promise_computed` of step `{step}`"))
        .labeled("promise_computed");
    let prompt = |cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, key: &'static str| {
        f.require(cx, key).and_then(|v| cx.prompt(v, key))
    };
    let soon = prompt(cx, &mut f, "soon");
    let today = prompt(cx, &mut f, "today");
    let later = prompt(cx, &mut f, "later");
    let soon_minutes = f
        .get("soon_minutes")
        .and_then(|v| cx.uint(v, "soon_minutes", 1, 24 * 60))
        .unwrap_or(DEFAULT_SOON_MINUTES);
    f.finish(cx);
    Some(ComputedPromise {
        soon: soon?,
        soon_minutes,
        today: today?,
        later: later?,
    })
}

fn read_set(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, step: &str) -> SetVars {
    let mut values = Vec::new();
    if let Some(v) = f.get("variables") {
        match v.get_ref().as_table() {
            Some(t) => {
                for (k, val) in t.iter() {
                    let name = Ref::new(k.get_ref().to_string(), cx.loc(k.span()));
                    if !vars::valid_name(&name.name) {
                        cx.err_at(
                            name.at,
                            format!(
                                "variable name `{}` must start with a letter or `_` and use \
                                 letters, digits, `_`, `-`, `.`",
                                name.name
                            ),
                        );
                        continue;
                    }
                    if BUILTIN_VARIABLES.contains(&name.name.as_str()) || name.name == "tags" {
                        cx.err_at(
                            name.at,
                            format!(
                                "`{}` is set by Hotline; choose another name{}",
                                name.name,
                                if name.name == "tags" {
                                    " (add tags with `tags = [...]`)"
                                } else {
                                    ""
                                }
                            ),
                        );
                        continue;
                    }
                    let Some(value) = cx.string(val, &name.name) else {
                        continue;
                    };
                    if let Err((offset, msg)) = vars::check(&value.name) {
                        cx.err_at(Loc::new(value.at.line, value.at.col + 1 + offset), msg);
                        continue;
                    }
                    values.push((name, value));
                }
            }
            None => cx.wrong_type(v, "variables", "a table like { segment = \"vip\" }"),
        }
    }
    let tags_v = f.get("tags");
    let tags = tags_v
        .and_then(|v| cx.strings(v, "tags"))
        .unwrap_or_default();
    for t in &tags {
        if t.name.is_empty() || t.name.contains(',') || t.name.trim() != t.name {
            cx.err_at(
                t.at,
                format!(
                    "tag `{}` must be non-empty, without commas or surrounding spaces",
                    t.name
                ),
            );
        }
    }
    let next = required_ref(cx, f, "next");
    if values.is_empty() && tags.is_empty() {
        cx.err_at(
            f.at,
            format!("step `{step}` sets nothing: add `variables = {{ name = \"value\" }}` or `tags = [\"tag\"]`"),
        );
    }
    SetVars { values, tags, next }
}

fn read_transfer(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, step: &str) -> Transfer {
    let mut targets = Vec::new();
    if let Some(v) = f.get("operator")
        && let Some(r) = cx.string(v, "operator")
    {
        if r.name.is_empty() || r.name.chars().any(char::is_whitespace) {
            cx.err_at(
                r.at,
                format!("operator `{}` must be a login name without spaces", r.name),
            );
        } else {
            targets.push(TransferTo::Operator(r));
        }
    }
    if let Some(v) = f.get("queue")
        && let Some(r) = cx.file_name(v, "queue", "queue")
    {
        targets.push(TransferTo::Queue(r));
    }
    if let Some(v) = f.get("number")
        && let Some(r) = cx.string(v, "number")
    {
        match number::normalize(&r.name) {
            Ok(n) => targets.push(TransferTo::External(r, n)),
            Err(e) => cx.err_at(
                Loc::new(r.at.line, r.at.col + 1 + e.index),
                format!("number `{}`: {}", r.name, e.message),
            ),
        }
    }
    let prompts = opt_prompts(cx, f, "prompts");
    let on_fail = required_ref(cx, f, "on_fail");
    let given = ["operator", "queue", "number"]
        .iter()
        .filter(|k| f.has(k))
        .count();
    if given == 0 {
        cx.err_at(
            f.at,
            format!("step `{step}` needs a target: `operator`, `queue` or `number`"),
        );
    } else if given > 1 {
        cx.err_at(
            f.at,
            format!(
                "step `{step}` has more than one target; give one of `operator`, `queue`, `number`"
            ),
        );
    }
    let to = if given == 1 { targets.pop() } else { None };
    Transfer {
        to: to.unwrap_or_else(|| TransferTo::Operator(placeholder(f.at))),
        prompts,
        on_fail,
    }
}

fn read_hangup(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Hangup {
    Hangup {
        prompts: opt_prompts(cx, f, "prompts"),
    }
}
