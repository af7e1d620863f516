//! `[offers.NAME]`: callback offer rule sets. The set gives defaults
//! (calendar, callback step, key, prompts); `[[offers.NAME.rules]]` are
//! tried in order and the first whose conditions hold decides.

use std::collections::BTreeMap;

use super::{Cx, Fields, Value};
use crate::calendar::TimeRange;
use crate::error::Loc;
use crate::model::{DaySel, OfferRule, OfferSet, OfferWhen, Ref, ranges_overlap};

const MIN_EVERY_S: u64 = 10;
const MAX_EVERY_S: u64 = 3600;
const MAX_WAIT_OVER_S: u64 = 86_400;

pub(super) fn read_offers(cx: &mut Cx<'_>, v: &Value<'_>) -> BTreeMap<String, OfferSet> {
    let mut out = BTreeMap::new();
    let Some(t) = v.get_ref().as_table() else {
        cx.wrong_type(v, "offers", "a table of rule sets ([offers.NAME])");
        return out;
    };
    for (k, sv) in t.iter() {
        let name = k.get_ref().to_string();
        let Some(table) = sv.get_ref().as_table() else {
            cx.wrong_type(sv, &format!("offers.{name}"), "a table");
            continue;
        };
        let at = cx.loc(sv.span());
        let mut f = Fields::new(table, at, format!("offer rule set `{name}`")).labeled("offers");
        let calendar = f
            .get("calendar")
            .and_then(|v| cx.file_name(v, "calendar", "calendar"));
        let callback = f.get("callback").and_then(|v| cx.string(v, "callback"));
        let key = f.get("key").and_then(|v| cx.key(v, "key"));
        let prompt = f
            .get("prompt")
            .map(|v| cx.prompts(v, "prompt", true))
            .unwrap_or_default();
        let promise = f.get("promise").and_then(|v| cx.prompt(v, "promise"));
        let defaults = Defaults {
            key: key.unwrap_or('1'),
            prompt,
            promise,
            calendar: calendar.is_some(),
        };
        let mut rules = Vec::new();
        if let Some(v) = f.require(cx, "rules") {
            match v.get_ref().as_array() {
                Some(items) if items.is_empty() => cx.err(v.span(), "`rules` is empty"),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(r) = read_rule(cx, item, i + 1, &name, &defaults) {
                            rules.push(r);
                        }
                    }
                }
                None => cx.wrong_type(v, "rules", "an array of tables ([[offers.NAME.rules]])"),
            }
        }
        f.finish(cx);
        warn_dead_rules(cx, &name, &rules);
        out.insert(
            name.clone(),
            OfferSet {
                name,
                at,
                calendar,
                callback,
                rules,
            },
        );
    }
    out
}

/// Set-level values a rule inherits.
struct Defaults {
    key: char,
    prompt: Vec<Ref>,
    promise: Option<Ref>,
    calendar: bool,
}

fn read_rule(
    cx: &mut Cx<'_>,
    v: &Value<'_>,
    n: usize,
    set: &str,
    defaults: &Defaults,
) -> Option<OfferRule> {
    let Some(t) = v.get_ref().as_table() else {
        cx.wrong_type(v, "rules", "an array of tables");
        return None;
    };
    let at = cx.loc(v.span());
    let mut f =
        Fields::new(t, at, format!("rule {n} of offer rule set `{set}`")).labeled("offer_rule");
    let mut ok = true;

    let days_v = f.get("days");
    let mut days = Vec::new();
    if let Some(v) = days_v {
        for r in cx.strings(v, "days").unwrap_or_default() {
            match DaySel::parse(&r.name) {
                Some(d) => days.push(d),
                None => {
                    ok = false;
                    let hint = super::did_you_mean(&r.name, DaySel::NAMES.iter().copied());
                    cx.err_at(
                        r.at,
                        format!(
                            "unknown day kind `{}`{hint}; known: {}",
                            r.name,
                            DaySel::NAMES.join(", ")
                        ),
                    );
                }
            }
        }
    }
    let hours_v = f.get("hours");
    let mut hours: Vec<(TimeRange, Loc)> = Vec::new();
    if let Some(v) = hours_v {
        for r in cx.strings(v, "hours").unwrap_or_default() {
            match r.name.parse::<TimeRange>() {
                Ok(range) => {
                    if let Some((other, _)) = hours.iter().find(|(o, _)| ranges_overlap(*o, range))
                    {
                        ok = false;
                        cx.err_at(
                            r.at,
                            format!("`{range}` overlaps `{other}` in the same rule; join them into one range"),
                        );
                    }
                    hours.push((range, r.at));
                }
                Err(e) => {
                    ok = false;
                    cx.err_at(r.at, e);
                }
            }
        }
    }
    let vip = f
        .get("vip")
        .and_then(|v| cx.file_name(v, "vip", "VIP list"));
    let offer = match f.require(cx, "offer").and_then(|v| cx.string(v, "offer")) {
        Some(r) => match r.name.as_str() {
            "never" => Some(OfferWhen::Never),
            "at_entry" => Some(OfferWhen::AtEntry),
            "every" => Some(OfferWhen::Every),
            "at_entry_and_every" => Some(OfferWhen::AtEntryAndEvery),
            other => {
                let hint = super::did_you_mean(other, OfferWhen::NAMES.iter().copied());
                cx.err_at(
                    r.at,
                    format!(
                        "`offer` must be one of {}, found `{other}`{hint}",
                        OfferWhen::NAMES.join(", ")
                    ),
                );
                None
            }
        },
        None => None,
    };
    let wait_over_v = f.get("wait_over");
    let wait_over = wait_over_v.and_then(|v| cx.uint(v, "wait_over", 0, MAX_WAIT_OVER_S));
    let every_v = f.get("every");
    let every = every_v.and_then(|v| cx.uint(v, "every", MIN_EVERY_S, MAX_EVERY_S));
    let key_v = f.get("key");
    let key = key_v.and_then(|v| cx.key(v, "key"));
    let prompt_v = f.get("prompt");
    let prompt = prompt_v
        .map(|v| cx.prompts(v, "prompt", true))
        .unwrap_or_default();
    let promise_v = f.get("promise");
    let promise = promise_v.and_then(|v| cx.prompt(v, "promise"));
    f.finish(cx);

    if !defaults.calendar {
        for (v, key) in [(days_v, "days"), (hours_v, "hours")] {
            if let Some(v) = v {
                ok = false;
                cx.err(
                    v.span(),
                    format!(
                        "`{key}` needs a calendar: set `calendar = \"NAME\"` in [offers.{set}] \
                         (calendars/NAME.toml gives the day kinds and the time zone)"
                    ),
                );
            }
        }
    }
    let offer = offer?;
    let prompt = if prompt.is_empty() {
        defaults.prompt.clone()
    } else {
        prompt
    };
    if offer == OfferWhen::Never {
        // What a "never" rule would say is never heard: flag it, it is
        // usually a rule the admin meant to be another mode.
        for (v, key) in [
            (wait_over_v, "wait_over"),
            (every_v, "every"),
            (key_v, "key"),
            (prompt_v, "prompt"),
            (promise_v, "promise"),
        ] {
            if let Some(v) = v {
                ok = false;
                cx.err(
                    v.span(),
                    format!("`{key}` does nothing with offer = \"never\""),
                );
            }
        }
    } else {
        if prompt.is_empty() {
            ok = false;
            cx.err_at(
                at,
                format!(
                    "rule {n} of offer rule set `{set}` offers a callback but has no `prompt` \
                     (set it here or in [offers.{set}])"
                ),
            );
        }
        match (offer.repeats(), every_v, every) {
            (true, None, _) => {
                ok = false;
                cx.err_at(
                    at,
                    format!(
                        "rule {n} of offer rule set `{set}`: offer = \"{}\" needs `every` \
                         (seconds between offers)",
                        offer.name()
                    ),
                );
            }
            (false, Some(v), _) => {
                ok = false;
                cx.err(
                    v.span(),
                    "`every` only applies with offer = \"every\" or \"at_entry_and_every\"",
                );
            }
            _ => {}
        }
    }
    if !ok {
        return None;
    }
    Some(OfferRule {
        at,
        days,
        hours: hours.into_iter().map(|(r, _)| r).collect(),
        vip,
        offer,
        wait_over: wait_over.unwrap_or(0),
        every,
        key: key.unwrap_or(defaults.key),
        prompt,
        promise: promise.or_else(|| defaults.promise.clone()),
    })
}

/// A rule after one without conditions can never apply.
fn warn_dead_rules(cx: &mut Cx<'_>, set: &str, rules: &[OfferRule]) {
    let catch_all = rules
        .iter()
        .position(|r| r.days.is_empty() && r.hours.is_empty() && r.vip.is_none());
    if let Some(i) = catch_all {
        let line = rules[i].at.line;
        for r in &rules[i + 1..] {
            cx.warn_at(
                r.at,
                format!(
                    "this rule of offer rule set `{set}` never applies: the rule at line {line} \
                     has no conditions and matches every call first"
                ),
            );
        }
    }
}
