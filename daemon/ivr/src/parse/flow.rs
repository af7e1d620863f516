//! One flow file → [`Flow`]: the top-level keys, then steps and offer rule
//! sets, then the references that stay inside the file (steps, offer rule
//! sets, variables). References to other files are checked by `check.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use toml::de::DeTable;

use super::offers::read_offers;
use super::steps::read_step;
use super::{Cx, Fields, did_you_mean, parse_document};
use crate::error::{FlowError, Loc};
use crate::model::{Flow, Ref, StepKind};

// Upper bound that catches typos (an extra zero or three), not policy.
const MAX_RING_MS: u64 = 300_000;

/// Variables every call has; `set` values may use them as `${caller}`.
pub(crate) const BUILTIN_VARIABLES: &[&str] = &["caller", "called", "flow"];

/// What came out of one file.
pub(crate) struct Parsed {
    /// `None` on a syntax error.
    pub flow: Option<Flow>,
    pub errors: Vec<FlowError>,
    pub warnings: Vec<FlowError>,
}

/// Parse one flow file. The flow is usable only if there are no errors
/// (it may hold placeholders where something was wrong).
pub(crate) fn parse_flow(path: &Path, text: &str, version: String) -> Parsed {
    let (doc, mut cx) = match parse_document(path, text) {
        Ok(d) => d,
        Err(errors) => {
            return Parsed {
                flow: None,
                errors,
                warnings: Vec::new(),
            };
        }
    };
    let flow = read_flow(&mut cx, path, doc.get_ref(), version);
    Parsed {
        flow: Some(flow),
        errors: cx.errors,
        warnings: cx.warnings,
    }
}

fn read_flow(cx: &mut Cx<'_>, path: &Path, doc: &DeTable<'_>, version: String) -> Flow {
    let mut f = Fields::new(doc, Loc::new(1, 1), "the flow".to_owned()).labeled("flow");

    let name = f.require(cx, "name").and_then(|v| cx.string(v, "name"));
    if let Some(n) = &name
        && n.name.trim().is_empty()
    {
        cx.err_at(n.at, "`name` must not be empty");
    }

    let mut numbers = Vec::new();
    if let Some(v) = f.get("numbers") {
        if v.get_ref().is_array() {
            numbers = cx.strings(v, "numbers").unwrap_or_default();
        } else {
            cx.wrong_type(v, "numbers", "an array of strings");
        }
    }
    let mut seen: BTreeMap<&str, Loc> = BTreeMap::new();
    for n in &numbers {
        if n.name.is_empty() || n.name.chars().any(|c| c.is_whitespace() || c == '@') {
            cx.err_at(
                n.at,
                format!(
                    "number `{}` must be the user part of the called URI, e.g. \"100\"",
                    n.name
                ),
            );
        } else if let Some(first) = seen.get(n.name.as_str()) {
            cx.err_at(
                n.at,
                format!("number `{}` is listed twice (first at {first})", n.name),
            );
        } else {
            seen.insert(&n.name, n.at);
        }
    }

    let default = match f.get("default") {
        Some(v) => cx
            .bool(v, "default")
            .unwrap_or(false)
            .then(|| cx.loc(v.span())),
        None => None,
    };
    let ring_ms = f
        .get("ring_ms")
        .and_then(|v| cx.uint(v, "ring_ms", 0, MAX_RING_MS))
        .unwrap_or(0);
    let start = f.require(cx, "start").and_then(|v| cx.string(v, "start"));

    let mut steps = BTreeMap::new();
    let mut defined = BTreeSet::new();
    if let Some(v) = f.require(cx, "steps") {
        match v.get_ref().as_table() {
            Some(t) if t.is_empty() => {
                cx.err(v.span(), "`steps` is empty; a flow needs at least one step")
            }
            Some(t) => {
                for (k, sv) in t.iter() {
                    defined.insert(k.get_ref().to_string());
                    if let Some(step) = read_step(cx, k, sv) {
                        steps.insert(step.name.clone(), step);
                    }
                }
            }
            None => cx.wrong_type(v, "steps", "a table of steps ([steps.NAME])"),
        }
    }
    let offers = f
        .get("offers")
        .map(|v| read_offers(cx, v))
        .unwrap_or_default();
    f.finish(cx);

    let flow = Flow {
        name_at: name.as_ref().map_or(Loc::new(1, 1), |r| r.at),
        name: name.map(|r| r.name).unwrap_or_default(),
        version,
        ring_ms,
        file: path.to_owned(),
        numbers,
        default,
        start: start.unwrap_or_else(|| Ref::new("", Loc::new(1, 1))),
        steps,
        offers,
        calendars: BTreeMap::new(),
        vip_lists: BTreeMap::new(),
    };
    check_in_file(cx, &flow, &defined);
    flow
}

/// References that stay inside the file, checked against every step *name*
/// (not only the ones that parsed), so one broken step does not cascade.
fn check_in_file(cx: &mut Cx<'_>, flow: &Flow, defined: &BTreeSet<String>) {
    check_step_ref(cx, &flow.start, defined);
    for step in flow.steps.values() {
        for r in step.kind.step_refs() {
            check_step_ref(cx, r, defined);
        }
    }
    for set in flow.offers.values() {
        if let Some(cb) = &set.callback {
            check_step_ref(cx, cb, defined);
            if let Some(step) = flow.step(&cb.name)
                && !matches!(step.kind, StepKind::Callback(_))
            {
                cx.err_at(
                    cb.at,
                    format!(
                        "`callback` must name a callback step; `{}` is a {} step",
                        cb.name,
                        step.kind.type_name()
                    ),
                );
            }
        }
    }

    let mut used_offers = BTreeSet::new();
    for step in flow.steps.values() {
        let StepKind::Queue(q) = &step.kind else {
            continue;
        };
        if let Some(cb) = &q.callback
            && let Some(target) = flow.step(&cb.name)
            && !matches!(target.kind, StepKind::Callback(_))
        {
            cx.err_at(
                cb.at,
                format!(
                    "`callback` must name a callback step; `{}` is a {} step",
                    cb.name,
                    target.kind.type_name()
                ),
            );
        }
        let Some(o) = &q.offers else {
            if let Some(cb) = &q.callback {
                cx.err_at(
                    cb.at,
                    "`callback` is only used with `offers` (the offer key leads there); \
                     add `offers` or remove `callback`",
                );
            }
            continue;
        };
        used_offers.insert(o.name.as_str());
        let Some(set) = flow.offers.get(&o.name) else {
            let hint = did_you_mean(&o.name, flow.offers.keys().map(String::as_str));
            cx.err_at(
                o.at,
                format!(
                    "no offer rule set named `{}` in this flow{hint}; define it as [offers.{}]",
                    o.name, o.name
                ),
            );
            continue;
        };
        if q.callback.is_none() && set.callback.is_none() && set_offers_anything(set) {
            cx.err_at(
                o.at,
                format!(
                    "the callback offer needs a callback step: set `callback` in this step \
                     or in [offers.{}]",
                    o.name
                ),
            );
        }
        // The offer key must not also leave the queue for another step.
        for rule in &set.rules {
            if rule.offer == crate::model::OfferWhen::Never {
                continue;
            }
            if let Some(k) = q.keys.iter().find(|k| k.digits.starts_with(rule.key)) {
                cx.err_at(
                    k.at,
                    format!(
                        "key `{}` is also the callback offer key of [offers.{}] (rule at line {}); \
                         use another key",
                        k.digits, o.name, rule.at.line
                    ),
                );
            }
        }
    }
    for set in flow.offers.values() {
        if !used_offers.contains(set.name.as_str()) {
            cx.warn_at(
                set.at,
                format!(
                    "offer rule set `{}` is not used by any queue step (`offers = \"{}\"`)",
                    set.name, set.name
                ),
            );
        }
    }

    // `${name}` in `set` values: a built-in or a variable some step sets.
    let mut variables: BTreeSet<&str> = BUILTIN_VARIABLES.iter().copied().collect();
    for step in flow.steps.values() {
        if let StepKind::Set(s) = &step.kind {
            variables.extend(s.values.iter().map(|(n, _)| n.name.as_str()));
            if !s.tags.is_empty() {
                variables.insert("tags");
            }
        }
    }
    for step in flow.steps.values() {
        let StepKind::Set(s) = &step.kind else {
            continue;
        };
        for (_, value) in &s.values {
            for (offset, name) in crate::vars::refs(&value.name) {
                if !variables.contains(name) {
                    let at = Loc::new(value.at.line, value.at.col + 1 + offset);
                    let hint = did_you_mean(name, variables.iter().copied());
                    cx.err_at(
                        at,
                        format!(
                            "unknown variable `${{{name}}}`{hint}; known: {}",
                            variables.iter().copied().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
    }
}

fn set_offers_anything(set: &crate::model::OfferSet) -> bool {
    set.rules
        .iter()
        .any(|r| r.offer != crate::model::OfferWhen::Never)
}

fn check_step_ref(cx: &mut Cx<'_>, r: &Ref, defined: &BTreeSet<String>) {
    // Empty names are placeholders for keys already reported missing.
    if r.name.is_empty() || defined.contains(&r.name) {
        return;
    }
    let hint = did_you_mean(&r.name, defined.iter().map(String::as_str));
    cx.err_at(r.at, format!("no step named `{}`{hint}", r.name));
}

/// Every key the parser accepts, by table label (`flow`, `step.TYPE`,
/// `offers`, `offer_rule`, `caller_rule`, `promise_computed`). Read off the parser itself: a
/// document with every step type is parsed while [`Fields`] records what
/// each reader asked for, so the schema test compares against what the
/// code really accepts.
#[cfg(test)]
pub(crate) fn known_keys() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut text = String::from("name = \"x\"\nstart = \"play\"\n");
    for ty in crate::model::STEP_TYPES {
        text.push_str(&format!("[steps.{ty}]\ntype = \"{ty}\"\n"));
    }
    text.push_str("[[steps.caller.rules]]\nnext = \"play\"\n");
    text.push_str("[steps.callback.promise_computed]\n");
    text.push_str("[offers.o]\n[[offers.o.rules]]\noffer = \"never\"\n");
    super::recorder::start();
    let _ = parse_flow(Path::new("x.toml"), &text, String::new());
    super::recorder::take()
}
