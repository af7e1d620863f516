//! Checks of one parsed flow against the rest of the set (queues,
//! calendars, VIP lists) and of its shape: steps nothing leads to,
//! loops that spin without the caller, callback steps an anonymous caller
//! reaches without a way to key in a number.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use crate::calendar::Calendar;
use crate::error::FlowError;
use crate::load::CheckReport;
use crate::model::{CallerMatch, EdgeKind, Flow, Ref, Step, StepKind, TransferTo};
use crate::parse::did_you_mean;
use crate::queues::{QUEUES_FILE, QueueDef};
use crate::vip::VipList;

/// The rest of the set a flow is checked against.
pub(crate) struct World<'a> {
    pub queues: &'a BTreeMap<String, QueueDef>,
    pub have_queues_file: bool,
    /// `queues.toml` exists but could not be read: its own errors say why.
    pub queues_unreadable: bool,
    pub calendars: &'a BTreeMap<String, Arc<Calendar>>,
    /// Stems of `calendars/*.toml`, loaded or not.
    pub calendar_files: &'a BTreeSet<String>,
    pub vip_lists: &'a BTreeMap<String, Arc<VipList>>,
}

/// Names of other files a flow uses, where it uses them.
#[derive(Default)]
pub(crate) struct FileRefs<'f> {
    pub queues: Vec<&'f Ref>,
    pub calendars: Vec<&'f Ref>,
    pub vip_lists: Vec<&'f Ref>,
}

pub(crate) fn file_refs(flow: &Flow) -> FileRefs<'_> {
    let mut r = FileRefs::default();
    for step in flow.steps.values() {
        match &step.kind {
            StepKind::Schedule(s) => r.calendars.push(&s.calendar),
            StepKind::Caller(c) => {
                for rule in &c.rules {
                    if let CallerMatch::Vip(v) = &rule.when {
                        r.vip_lists.push(v);
                    }
                }
            }
            StepKind::Queue(q) => r.queues.push(&q.queue),
            StepKind::Callback(c) => r.queues.extend(c.queue.as_ref()),
            StepKind::Transfer(t) => {
                if let TransferTo::Queue(q) = &t.to {
                    r.queues.push(q);
                }
            }
            _ => {}
        }
    }
    for set in flow.offers.values() {
        r.calendars.extend(set.calendar.as_ref());
        for rule in &set.rules {
            r.vip_lists.extend(rule.vip.as_ref());
        }
    }
    // Empty names are placeholders for problems already reported.
    for v in [&mut r.queues, &mut r.calendars, &mut r.vip_lists] {
        v.retain(|r| !r.name.is_empty());
    }
    r
}

/// `queues.toml` against the rest of the set: the calendars callback windows
/// name.
pub(crate) fn check_queues(path: &Path, world: &World<'_>, report: &mut CheckReport) {
    for q in world.queues.values() {
        let Some(name) = q.callbacks.window.calendar() else {
            continue;
        };
        // A file that exists but did not load has its own errors.
        if world.calendars.contains_key(name) || world.calendar_files.contains(name) {
            continue;
        }
        let hint = did_you_mean(name, world.calendar_files.iter().map(String::as_str));
        report.errors.push(FlowError::at(
            path,
            q.callbacks.calendar_at,
            format!(
                "no calendar named `{name}`{hint}; a calendar is the file calendars/{name}.toml"
            ),
        ));
    }
}

pub(crate) fn check_flow(flow: &Flow, world: &World<'_>, report: &mut CheckReport) {
    let err = |report: &mut CheckReport, r: &Ref, msg: String| {
        report.errors.push(FlowError::at(&flow.file, r.at, msg));
    };
    let refs = file_refs(flow);
    for q in refs.queues {
        if world.queues.contains_key(&q.name) || world.queues_unreadable {
            continue;
        }
        let msg = if world.have_queues_file {
            let hint = did_you_mean(&q.name, world.queues.keys().map(String::as_str));
            format!(
                "no queue named `{}`{hint}; declare it in {QUEUES_FILE} as [queues.{}]",
                q.name, q.name
            )
        } else {
            format!(
                "no queue named `{}`: there is no {QUEUES_FILE}; declare queues there as [queues.{}]",
                q.name, q.name
            )
        };
        err(report, q, msg);
    }
    for c in refs.calendars {
        if world.calendars.contains_key(&c.name) || world.calendar_files.contains(&c.name) {
            continue;
        }
        let hint = did_you_mean(&c.name, world.calendar_files.iter().map(String::as_str));
        err(
            report,
            c,
            format!(
                "no calendar named `{}`{hint}; a calendar is the file calendars/{}.toml",
                c.name, c.name
            ),
        );
    }
    for v in refs.vip_lists {
        if world.vip_lists.contains_key(&v.name) {
            continue;
        }
        let hint = did_you_mean(&v.name, world.vip_lists.keys().map(String::as_str));
        err(
            report,
            v,
            format!(
                "no VIP list named `{}`{hint}; a VIP list is the file vip/{}.txt",
                v.name, v.name
            ),
        );
    }
    for step in flow.steps.values() {
        let StepKind::Queue(q) = &step.kind else {
            continue;
        };
        let (Some(skill), Some(def)) = (&q.skill, world.queues.get(&q.queue.name)) else {
            continue;
        };
        if !def.skills.contains_key(&skill.name) {
            let hint = did_you_mean(&skill.name, def.skills.keys().map(String::as_str));
            err(
                report,
                skill,
                format!(
                    "queue `{}` has no skill `{}`{hint}; declare who has it in {QUEUES_FILE} as [queues.{}.skills] {} = [\"operator\"]",
                    q.queue.name, skill.name, q.queue.name, skill.name
                ),
            );
        }
    }

    if flow.numbers.is_empty() && !flow.is_default() && !flow.name.is_empty() {
        report.warnings.push(FlowError::at(
            &flow.file,
            flow.name_at,
            format!(
                "flow `{}` answers no number: add `numbers = [\"...\"]` or `default = true`",
                flow.name
            ),
        ));
    }
    if flow.step(&flow.start.name).is_none() {
        // Reported by the parser; the shape checks need a start.
        return;
    }
    unreachable_steps(flow, report);
    silent_loops(flow, report);
    anonymous_callbacks(flow, report);
}

/// Steps nothing leads to from `start`: a warning (admins keep drafts).
fn unreachable_steps(flow: &Flow, report: &mut CheckReport) {
    let seen = reach(flow, &flow.start.name, |_, _| true);
    for step in flow.steps.values() {
        if !seen.contains_key(step.name.as_str()) {
            report.warnings.push(FlowError::at(
                &flow.file,
                step.at,
                format!(
                    "step `{}` is never reached: no step leads to it from `start`",
                    step.name
                ),
            ));
        }
    }
}

/// Breadth-first from `from` over the edges `follow` allows; each reached
/// step with the step it was reached from (for paths in messages).
fn reach<'f>(
    flow: &'f Flow,
    from: &'f str,
    follow: impl Fn(&'f Step, &'f Ref) -> bool,
) -> BTreeMap<&'f str, Option<&'f str>> {
    let mut seen: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut todo = VecDeque::from([from]);
    seen.insert(from, None);
    while let Some(name) = todo.pop_front() {
        let Some(step) = flow.step(name) else {
            continue;
        };
        for (r, _, _) in flow.edges(step) {
            if follow(step, r)
                && flow.step(&r.name).is_some()
                && !seen.contains_key(r.name.as_str())
            {
                seen.insert(&r.name, Some(name));
                todo.push_back(&r.name);
            }
        }
    }
    seen
}

/// A cycle of steps joined by silent edges (goto, set, schedule, caller,
/// an at-once queue refusal or transfer failure) spins forever without the
/// caller hearing anything: an error, reported once per cycle at its
/// first step in the file.
fn silent_loops(flow: &Flow, report: &mut CheckReport) {
    let silent_edges = |name: &str| -> Vec<(&str, &'static str)> {
        flow.step(name)
            .map(|s| {
                flow.edges(s)
                    .into_iter()
                    .filter(|(r, k, _)| *k == EdgeKind::Silent && flow.step(&r.name).is_some())
                    .map(|(r, _, key)| (r.name.as_str(), key))
                    .collect()
            })
            .unwrap_or_default()
    };
    let silent =
        |name: &str| -> Vec<&str> { silent_edges(name).into_iter().map(|(n, _)| n).collect() };
    // Peel off steps whose silent edges all lead out of any cycle; what is
    // left is on a cycle or leads into one.
    let mut left: BTreeSet<&str> = flow.steps.keys().map(String::as_str).collect();
    loop {
        let done: Vec<&str> = left
            .iter()
            .copied()
            .filter(|n| silent(n).iter().all(|t| !left.contains(t)))
            .collect();
        if done.is_empty() {
            break;
        }
        for n in done {
            left.remove(n);
        }
    }
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    // In file order, so each cycle is reported at its first step.
    let mut order: Vec<&Step> = left.iter().filter_map(|n| flow.step(n)).collect();
    order.sort_by_key(|s| s.at);
    for start in order {
        if reported.contains(start.name.as_str()) {
            continue;
        }
        // Walk silent edges inside `left` until a step repeats: that is a cycle.
        let mut walk: Vec<&str> = vec![&start.name];
        let cycle = loop {
            let Some(&cur) = walk.last() else { break None };
            let Some(next) = silent(cur).into_iter().find(|t| left.contains(t)) else {
                break None;
            };
            if let Some(pos) = walk.iter().position(|w| *w == next) {
                break Some(walk.split_off(pos));
            }
            walk.push(next);
        };
        let Some(cycle) = cycle else { continue };
        if cycle.iter().any(|n| reported.contains(n)) {
            continue;
        }
        reported.extend(cycle.iter().copied());
        // Start the message at the cycle's first step in the file.
        let first = cycle
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| flow.step(n).map(|s| s.at))
            .map_or(0, |(i, _)| i);
        let mut ring: Vec<&str> = cycle[first..]
            .iter()
            .chain(&cycle[..first])
            .copied()
            .collect();
        let Some(&head) = ring.first() else { continue };
        ring.push(head);
        let path = ring
            .windows(2)
            .map(|w| {
                let (from, to) = (w[0], w[1]);
                let ty = flow.step(from).map_or("", |s| s.kind.type_name());
                let key = silent_edges(from)
                    .into_iter()
                    .find(|(n, _)| *n == to)
                    .map_or("", |(_, k)| k);
                format!("`{from}` ({ty}, {key}) → ")
            })
            .collect::<String>()
            + &format!("`{head}`");
        let at = flow.step(head).map(|s| s.at).unwrap_or_default();
        report.errors.push(FlowError::at(
            &flow.file,
            at,
            format!(
                "these steps can go round forever without playing anything or waiting for the \
                 caller: {path}; add a play or menu step to the loop, or point one of them elsewhere"
            ),
        ));
    }
}

/// An anonymous caller has no number to confirm; a callback step they can
/// reach must let them key one in.
fn anonymous_callbacks(flow: &Flow, report: &mut CheckReport) {
    // At a caller step an anonymous caller takes the first `anonymous`
    // rule, else the default; VIP and prefix rules never match them.
    let follow = |step: &Step, r: &Ref| match &step.kind {
        StepKind::Caller(c) => {
            let target = c
                .rules
                .iter()
                .find(|rule| matches!(rule.when, CallerMatch::Anonymous))
                .map_or(&c.default, |rule| &rule.next);
            std::ptr::eq(r, target)
        }
        _ => true,
    };
    let seen = reach(flow, &flow.start.name, follow);
    for step in flow.steps.values() {
        let StepKind::Callback(cb) = &step.kind else {
            continue;
        };
        if !cb.enter_prompt.is_empty() || !seen.contains_key(step.name.as_str()) {
            continue;
        }
        let mut path = vec![step.name.as_str()];
        while let Some(Some(prev)) = path.last().and_then(|n| seen.get(n)) {
            path.push(prev);
        }
        path.reverse();
        report.errors.push(FlowError::at(
            &flow.file,
            step.at,
            format!(
                "callback step `{}` has no `enter_prompt`, but a caller with a withheld number \
                 can reach it ({}) and has no own number to confirm; add `enter_prompt`, or \
                 send anonymous callers elsewhere first with a caller step rule \
                 {{ anonymous = true, next = \"...\" }}",
                step.name,
                path.join(" → ")
            ),
        ));
    }
}
