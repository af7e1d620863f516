//! The interpreter: one call's walk through a flow. Pure state machine:
//! events in (answer, playback done, digit, timeout, queue status,
//! transfer result), actions out. Time only arrives as `now`, so tests and
//! `flow simulate` drive it with a virtual clock; the wall-clock time that
//! schedules and offer rules need is `answered_at` plus the time since
//! [`FlowRun::start`].

mod callback;
mod queue;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::calendar::DayKind;
use crate::model::{CallerMatch, Flow, Lookup, Menu, Ref, Step, StepKind, TransferTo};
use crate::number;
use crate::vars;

use callback::CallbackRun;
use queue::QueueRun;

/// Who called whom, and when the call was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The caller's user part; `"anonymous"` when withheld.
    pub caller: String,
    /// The called number (user part).
    pub called: String,
    /// Wall-clock time of the answer; the flow's schedules use it.
    pub answered_at: DateTime<Utc>,
}

/// The runtime's word on a caller in a queue (after [`Action::EnterQueue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    /// On entry and whenever it changes. `position` 1 is next.
    Waiting {
        position: u32,
        expected_wait: Duration,
    },
    /// An operator answered: the flow's part is over (no `Hangup` follows).
    Connected,
    /// The queue cannot take the caller (unknown at runtime, closed, nobody
    /// logged in): the flow goes to the step's `on_unavailable`.
    Unavailable,
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// An operator by login name.
    Operator(String),
    /// A queue, which then owns the caller (no flow-side hold music).
    Queue(String),
    /// An outside number through the trunk (canonical form).
    External(String),
}

/// What the daemon must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play these prompts back to back, replacing anything still playing.
    /// Call [`FlowRun::on_playback_done`] once after the last one ends.
    Play {
        prompts: Vec<String>,
    },
    /// Hold music: repeat these until `StopPlayback` or another `Play` /
    /// `PlayLoop`. Never reported done.
    PlayLoop {
        prompts: Vec<String>,
    },
    /// Stop the current playback (a digit barged in, or the caller leaves
    /// the queue). No `on_playback_done` is expected for what was stopped.
    StopPlayback,
    Hangup,
    /// Put the caller in this queue; answer with
    /// [`FlowRun::on_queue_status`]. Higher `priority` is served first.
    EnterQueue {
        queue: String,
        priority: u8,
        /// Only members with this skill may take the call.
        skill: Option<String>,
        /// The step's recording setting; `None`: the queue's.
        record: Option<crate::queues::RecordMode>,
    },
    /// Take the caller out of the queue they are in (they chose a callback
    /// or another step, or waited `max_wait`).
    LeaveQueue,
    /// Record a callback request. `number` is canonical (`+36…`);
    /// `promise` is the prompt that told the caller when to expect the call,
    /// `None` when the step says the computed time: answer with
    /// [`FlowRun::on_callback_promise`].
    CallbackRequest {
        number: String,
        queue: Option<String>,
        promise: Option<String>,
    },
    /// Hand the call over; answer with [`FlowRun::on_transfer_result`].
    Transfer {
        target: TransferTarget,
    },
    /// A `set` step recorded this (also in [`FlowRun::variables`]).
    SetVariable {
        name: String,
        value: String,
    },
}

/// Step entries one event may cause without waiting on the caller. The
/// checker refuses loops of non-waiting steps; this is the belt to that
/// brace: a looping flow must hang up, not spin.
const MAX_HOPS: usize = 1000;

#[derive(Debug)]
enum Phase {
    NotStarted,
    /// A `play` step's prompts are playing.
    Playing {
        step: String,
    },
    Menu {
        step: String,
        /// Invalid entries and timeouts so far in this visit.
        failures: u32,
        state: MenuState,
    },
    Queue(Box<QueueRun>),
    Callback(Box<CallbackRun>),
    Transfer {
        step: String,
        /// The result is awaited (the prompts, if any, are done).
        waiting: bool,
    },
    /// A `hangup` step's prompts are playing.
    HangingUp,
    /// `Hangup` was emitted.
    Finished,
    /// Handed to an operator or transferred: over, without `Hangup`.
    Handed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MenuState {
    /// The prompt (maybe after an invalid/timeout notice) is playing; a
    /// digit barges in.
    Prompting,
    /// Prompt done; waiting for (more) digits until `deadline`.
    Waiting { deadline: Instant, entry: String },
    /// The last failure's notice is playing; then `on_fail`.
    Failing,
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Invalid,
    Timeout,
}

/// What an offer hands to the callback step it leads to.
#[derive(Debug, Clone)]
struct OfferContext {
    queue: String,
    promise: Option<String>,
}

/// One call's walk through a flow.
///
/// The daemon feeds events and, after each, drains [`Self::poll_action`]
/// until `None` and re-arms its timer from [`Self::poll_timeout`]:
///
/// - [`Self::start`] once the call is answered;
/// - [`Self::on_playback_done`] when the last `Play` ended by itself
///   (not after `StopPlayback`; a stray report is ignored);
/// - [`Self::on_digit`] for each DTMF digit;
/// - [`Self::handle_timeout`] when the deadline passes;
/// - [`Self::on_queue_status`] after `EnterQueue`, and on every change;
/// - [`Self::on_transfer_result`] after `Transfer`;
/// - [`Self::on_callback_promise`] after `CallbackRequest`.
///
/// Digits during an uninterruptible play, a menu's final failure notice or
/// a goodbye are ignored (but recorded in [`Self::digits`]). During an
/// interruptible play or a menu prompt they barge in: `StopPlayback`, then
/// the digit is acted on.
#[derive(Debug)]
pub struct FlowRun {
    flow: Arc<Flow>,
    ctx: CallContext,
    /// The caller in canonical form (or as given when not a number).
    caller_key: String,
    anonymous: bool,
    started: Option<Instant>,
    phase: Phase,
    actions: VecDeque<Action>,
    digits: String,
    path: Vec<String>,
    /// Digits that barged into an interruptible play, kept for the next menu.
    typeahead: VecDeque<char>,
    /// The step to enter when the current event finishes its work.
    next: Option<String>,
    variables: BTreeMap<String, String>,
    /// Set when a queue's offer key leads to a callback step.
    offer: Option<OfferContext>,
    /// Counts points where the flow starts waiting for the caller (for
    /// `flow simulate`, which presses keys there).
    input_epoch: u64,
    /// Actions emitted so far; notes are placed between actions by it.
    emitted: u64,
    /// Why the flow went where it went, when tracing (`flow simulate`).
    trace: Option<Vec<(u64, String)>>,
}

impl FlowRun {
    pub fn new(flow: Arc<Flow>, ctx: CallContext) -> Self {
        let anonymous = number::is_anonymous(&ctx.caller);
        Self {
            caller_key: number::caller_key(&ctx.caller),
            anonymous,
            flow,
            ctx,
            started: None,
            phase: Phase::NotStarted,
            actions: VecDeque::new(),
            digits: String::new(),
            path: Vec::new(),
            typeahead: VecDeque::new(),
            next: None,
            variables: BTreeMap::new(),
            offer: None,
            input_epoch: 0,
            emitted: 0,
            trace: None,
        }
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    pub fn context(&self) -> &CallContext {
        &self.ctx
    }

    /// The call was answered: enter the start step. Only the first call counts.
    pub fn start(&mut self, now: Instant) {
        if matches!(self.phase, Phase::NotStarted) {
            self.started = Some(now);
            self.next = Some(self.flow.start.name.clone());
            self.drive(now);
        }
    }

    /// The last `Play` finished. Ignored when nothing is playing (e.g. a
    /// late report for a playback that was stopped).
    pub fn on_playback_done(&mut self, now: Instant) {
        let flow = Arc::clone(&self.flow);
        match &mut self.phase {
            Phase::Playing { step } => {
                if let Some(StepKind::Play(p)) = flow.step(step).map(|s| &s.kind) {
                    self.next = Some(p.next.name.clone());
                } else {
                    self.hang_up();
                }
            }
            Phase::Menu { step, state, .. } => match state {
                MenuState::Prompting => {
                    let timeout = menu_of(&flow, step).map_or(0, |m| m.timeout_ms);
                    *state = MenuState::Waiting {
                        deadline: now + Duration::from_millis(timeout),
                        entry: String::new(),
                    };
                    self.input_epoch += 1;
                }
                MenuState::Failing => {
                    self.next = menu_of(&flow, step).map(|m| m.on_fail.name.clone());
                    if self.next.is_none() {
                        self.hang_up();
                    }
                }
                MenuState::Waiting { .. } => {}
            },
            Phase::Queue(_) => self.queue_playback_done(),
            Phase::Callback(_) => self.callback_playback_done(now),
            Phase::Transfer { step, waiting } => {
                if !*waiting {
                    *waiting = true;
                    let step = step.clone();
                    self.emit_transfer(&step);
                }
            }
            Phase::HangingUp => self.hang_up(),
            Phase::NotStarted | Phase::Finished | Phase::Handed => {}
        }
        self.drive(now);
    }

    /// A DTMF digit (`0-9`, `*`, `#`, `A-D`). Recorded in [`Self::digits`]
    /// whenever the call is in the flow, even when the current step ignores
    /// it (an uninterruptible play, a goodbye).
    pub fn on_digit(&mut self, now: Instant, digit: char) {
        let digit = digit.to_ascii_uppercase();
        if !is_dtmf_event(digit)
            || matches!(
                self.phase,
                Phase::NotStarted | Phase::Finished | Phase::Handed
            )
        {
            return;
        }
        self.digits.push(digit);
        let flow = Arc::clone(&self.flow);
        match &self.phase {
            Phase::Playing { step } => {
                if let Some(StepKind::Play(p)) = flow.step(step).map(|s| &s.kind)
                    && p.interruptible
                {
                    self.push(Action::StopPlayback);
                    self.typeahead.push_back(digit);
                    self.next = Some(p.next.name.clone());
                }
            }
            Phase::Menu { state, .. } => match state {
                MenuState::Prompting => {
                    self.push(Action::StopPlayback);
                    self.menu_digit(now, digit);
                }
                MenuState::Waiting { .. } => self.menu_digit(now, digit),
                // Leaving the menu anyway.
                MenuState::Failing => {}
            },
            Phase::Queue(_) => self.queue_digit(digit),
            Phase::Callback(_) => self.callback_digit(now, digit),
            Phase::Transfer { .. }
            | Phase::HangingUp
            | Phase::NotStarted
            | Phase::Finished
            | Phase::Handed => {}
        }
        self.drive(now);
    }

    /// Call when `now` reaches [`Self::poll_timeout`]; early calls are ignored.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.phase {
            Phase::Menu {
                state: MenuState::Waiting { deadline, entry },
                ..
            } if now >= *deadline => {
                // A half-typed multi-digit choice that stalls is a wrong entry.
                let kind = if entry.is_empty() {
                    Failure::Timeout
                } else {
                    Failure::Invalid
                };
                self.fail(kind);
            }
            Phase::Queue(_) => self.queue_timeout(now),
            Phase::Callback(_) => self.callback_timeout(now),
            _ => return,
        }
        self.drive(now);
    }

    /// The next moment [`Self::handle_timeout`] has work: a menu or number
    /// entry giving up, a queue announcement, offer or maximum wait.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Menu {
                state: MenuState::Waiting { deadline, .. },
                ..
            } => Some(*deadline),
            Phase::Queue(q) => q.poll_timeout(),
            Phase::Callback(c) => c.poll_timeout(),
            _ => None,
        }
    }

    /// The runtime's answer to `EnterQueue`, and each change after it.
    /// Ignored when the call is not waiting in a queue step.
    pub fn on_queue_status(&mut self, now: Instant, status: QueueStatus) {
        if matches!(self.phase, Phase::Queue(_)) {
            self.queue_status(now, status);
            self.drive(now);
        }
    }

    /// The time Hotline computed for the callback just requested: `in_ms` from now,
    /// `same_day` when that is still today on the flows' clock. A step with
    /// `promise_computed` says it; otherwise (or once its fallback was said) it is
    /// ignored.
    pub fn on_callback_promise(&mut self, now: Instant, in_ms: u64, same_day: bool) {
        self.on_callback_promise_inner(in_ms, same_day);
        self.drive(now);
    }

    /// The flow is not run at all: the call reached its operator without one (a call
    /// Hotline placed). Its part counts as over, as after a transfer.
    pub fn skip(&mut self, now: Instant) {
        if matches!(self.phase, Phase::NotStarted) {
            self.started = Some(now);
            self.phase = Phase::Handed;
        }
    }

    /// The runtime's answer to `Transfer`: `ok` ends the flow's part (no
    /// `Hangup` follows); a failure goes to the step's `on_fail`.
    pub fn on_transfer_result(&mut self, now: Instant, ok: bool) {
        let Phase::Transfer {
            step,
            waiting: true,
        } = &self.phase
        else {
            return;
        };
        let step = step.clone();
        if ok {
            self.note(|| "transfer succeeded: the call leaves the flow".to_owned());
            self.phase = Phase::Handed;
            return;
        }
        match self.flow.step(&step).map(|s| &s.kind) {
            Some(StepKind::Transfer(t)) => {
                let target = t.on_fail.name.clone();
                self.note(|| format!("transfer failed → {target}"));
                self.next = Some(target);
            }
            _ => self.hang_up(),
        }
        self.drive(now);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Every digit the caller pressed, in order.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// Steps entered, in order; a step entered again appears again.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// Variables and tags recorded by `set` steps (tags as `tags`, comma
    /// separated), for the call record.
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.variables
    }

    /// The step the call is in, if it is in one.
    pub fn current_step(&self) -> Option<&str> {
        match &self.phase {
            Phase::Playing { step } | Phase::Menu { step, .. } | Phase::Transfer { step, .. } => {
                Some(step)
            }
            Phase::Queue(q) => Some(&q.step),
            Phase::Callback(c) => Some(&c.step),
            Phase::HangingUp => self.path.last().map(String::as_str),
            Phase::NotStarted | Phase::Finished | Phase::Handed => None,
        }
    }

    /// True once the flow's part is over: `Hangup` was queued, or the
    /// caller was connected to an operator or transferred.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished | Phase::Handed)
    }

    /// The wall-clock time at `now`.
    pub fn wall_clock(&self, now: Instant) -> DateTime<Utc> {
        let since = self
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        let since = chrono::TimeDelta::from_std(since).unwrap_or(chrono::TimeDelta::MAX);
        self.ctx
            .answered_at
            .checked_add_signed(since)
            .unwrap_or(self.ctx.answered_at)
    }

    /// Record why the flow goes where it goes (for `flow simulate`).
    pub(crate) fn enable_trace(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// Notes since the last call, each with the number of actions emitted
    /// before it.
    pub(crate) fn take_trace(&mut self) -> Vec<(u64, String)> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// `Some(n)` while the flow waits for the caller to press something;
    /// `n` changes each time a new wait begins.
    pub(crate) fn input_point(&self) -> Option<u64> {
        let waiting = match &self.phase {
            Phase::Menu {
                state: MenuState::Waiting { entry, .. },
                ..
            } => entry.is_empty(),
            Phase::Queue(q) => !q.speaking,
            Phase::Callback(c) => c.waiting_for_input(),
            _ => false,
        };
        waiting.then_some(self.input_epoch)
    }

    fn note(&mut self, text: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push((self.emitted, text()));
        }
    }

    fn push(&mut self, action: Action) {
        self.emitted += 1;
        self.actions.push_back(action);
    }

    /// Enters queued steps until the flow waits on the caller or the media.
    fn drive(&mut self, now: Instant) {
        let mut hops = 0;
        while let Some(name) = self.next.take() {
            hops += 1;
            if hops > MAX_HOPS {
                self.note(|| "the flow loops without waiting: hanging up".to_owned());
                self.hang_up();
                return;
            }
            self.enter(now, name);
        }
    }

    fn enter(&mut self, now: Instant, name: String) {
        let flow = Arc::clone(&self.flow);
        // The loader guarantees every reference resolves; if not, end the
        // call rather than leave the caller in silence.
        let Some(step) = flow.step(&name) else {
            self.hang_up();
            return;
        };
        self.path.push(name.clone());
        // An offer's context only carries into the callback step it leads to.
        let offer = self.offer.take();
        let ty = step.kind.type_name();
        match &step.kind {
            StepKind::Play(p) => {
                self.note(|| format!("step {name} ({ty})"));
                self.play(&p.prompts);
                self.phase = Phase::Playing { step: name };
            }
            StepKind::Menu(m) => {
                self.note(|| format!("step {name} ({ty})"));
                self.enter_menu(now, name, m);
            }
            StepKind::Hangup(h) => {
                self.note(|| format!("step {name} ({ty})"));
                self.typeahead.clear();
                if h.prompts.is_empty() {
                    self.hang_up();
                } else {
                    self.play(&h.prompts);
                    self.phase = Phase::HangingUp;
                }
            }
            StepKind::Goto(g) => {
                self.note(|| format!("step {name} ({ty}) → {}", g.next.name));
                self.next = Some(g.next.name.clone());
            }
            StepKind::Schedule(_) => self.enter_schedule(now, step),
            StepKind::Caller(_) => self.enter_caller(step),
            StepKind::Set(_) => self.enter_set(step),
            StepKind::Transfer(t) => {
                let target = match &t.to {
                    TransferTo::Operator(r) => TransferTarget::Operator(r.name.clone()),
                    TransferTo::Queue(r) => TransferTarget::Queue(r.name.clone()),
                    TransferTo::External(_, n) => TransferTarget::External(n.clone()),
                };
                self.note(|| format!("step {name} ({ty}) to {}", describe_target(&target)));
                self.typeahead.clear();
                if t.prompts.is_empty() {
                    self.phase = Phase::Transfer {
                        step: name.clone(),
                        waiting: true,
                    };
                    self.emit_transfer(&name);
                } else {
                    self.play(&t.prompts);
                    self.phase = Phase::Transfer {
                        step: name,
                        waiting: false,
                    };
                }
            }
            StepKind::Queue(q) => {
                self.note(|| format!("step {name} ({ty})"));
                self.typeahead.clear();
                self.enter_queue(now, step, q);
            }
            StepKind::Callback(c) => {
                self.note(|| format!("step {name} ({ty})"));
                self.typeahead.clear();
                self.enter_callback(now, step, c, offer);
            }
        }
    }

    fn emit_transfer(&mut self, step: &str) {
        let Some(StepKind::Transfer(t)) = self.flow.step(step).map(|s| s.kind.clone()) else {
            self.hang_up();
            return;
        };
        let target = match t.to {
            TransferTo::Operator(r) => TransferTarget::Operator(r.name),
            TransferTo::Queue(r) => TransferTarget::Queue(r.name),
            TransferTo::External(_, n) => TransferTarget::External(n),
        };
        self.push(Action::Transfer { target });
    }

    fn enter_menu(&mut self, now: Instant, name: String, m: &Menu) {
        if self.typeahead.is_empty() {
            self.play(&m.prompts);
            self.phase = Phase::Menu {
                step: name,
                failures: 0,
                state: MenuState::Prompting,
            };
            return;
        }
        // The caller already answered: skip the prompt.
        self.phase = Phase::Menu {
            step: name.clone(),
            failures: 0,
            state: MenuState::Waiting {
                deadline: now + Duration::from_millis(m.timeout_ms),
                entry: String::new(),
            },
        };
        while self.next.is_none() && self.is_waiting_in(&name) {
            let Some(d) = self.typeahead.pop_front() else {
                break;
            };
            self.menu_digit(now, d);
        }
    }

    fn enter_schedule(&mut self, now: Instant, step: &Step) {
        let StepKind::Schedule(s) = &step.kind else {
            return;
        };
        let Some(cal) = self.flow.calendars.get(&s.calendar.name).cloned() else {
            self.hang_up();
            return;
        };
        let status = cal.status(self.wall_clock(now));
        let named = status
            .day
            .name()
            .and_then(|n| s.days.iter().find(|(d, _)| d.name == n));
        let (why, target) = if let Some((day, target)) = named {
            (format!("named day `{}`", day.name), target)
        } else if status.open {
            ("open".to_owned(), &s.open)
        } else {
            match (&status.day, &s.holiday, &s.weekend) {
                (DayKind::Holiday { .. }, Some(h), _) => ("closed, holiday".to_owned(), h),
                (DayKind::Weekend, _, Some(w)) => ("closed, weekend".to_owned(), w),
                _ => ("closed".to_owned(), &s.closed),
            }
        };
        let target = target.name.clone();
        self.note(|| {
            format!(
                "step {} (schedule): calendar `{}` at {} is {why} ({}) → {target}",
                step.name,
                s.calendar.name,
                status.local.format("%a %Y-%m-%d %H:%M %Z"),
                describe_day(&status.day),
            )
        });
        self.next = Some(target);
    }

    fn enter_caller(&mut self, step: &Step) {
        let StepKind::Caller(c) = &step.kind else {
            return;
        };
        let hit = c
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| self.caller_matches(&r.when));
        let (why, target) = match hit {
            Some((i, r)) => (
                format!("rule {} ({})", i + 1, describe_match(&r.when)),
                &r.next,
            ),
            None => ("no rule matches: default".to_owned(), &c.default),
        };
        let target = target.name.clone();
        let caller = self.ctx.caller.clone();
        self.note(|| format!("step {} (caller): {caller}: {why} → {target}", step.name));
        self.next = Some(target);
    }

    fn caller_matches(&self, when: &CallerMatch) -> bool {
        match when {
            CallerMatch::Anonymous => self.anonymous,
            CallerMatch::Vip(list) => {
                !self.anonymous
                    && self
                        .flow
                        .vip_lists
                        .get(&list.name)
                        .is_some_and(|l| l.contains(&self.ctx.caller))
            }
            CallerMatch::Prefix(prefixes) => {
                !self.anonymous && prefixes.iter().any(|p| self.caller_key.starts_with(p))
            }
        }
    }

    fn enter_set(&mut self, step: &Step) {
        let StepKind::Set(s) = &step.kind else {
            return;
        };
        self.note(|| format!("step {} (set)", step.name));
        for (name, value) in &s.values {
            let mut lookup = self.variables.clone();
            lookup.insert("caller".to_owned(), self.ctx.caller.clone());
            lookup.insert("called".to_owned(), self.ctx.called.clone());
            lookup.insert("flow".to_owned(), self.flow.name.clone());
            let value = vars::expand(&value.name, &lookup);
            self.variables.insert(name.name.clone(), value.clone());
            self.push(Action::SetVariable {
                name: name.name.clone(),
                value,
            });
        }
        if !s.tags.is_empty() {
            let mut tags: Vec<String> = self
                .variables
                .get("tags")
                .map(|t| t.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            for t in &s.tags {
                if !tags.contains(&t.name) {
                    tags.push(t.name.clone());
                }
            }
            let value = tags.join(",");
            self.variables.insert("tags".to_owned(), value.clone());
            self.push(Action::SetVariable {
                name: "tags".to_owned(),
                value,
            });
        }
        self.next = Some(s.next.name.clone());
    }

    fn is_waiting_in(&self, name: &str) -> bool {
        matches!(&self.phase, Phase::Menu { step, state: MenuState::Waiting { .. }, .. } if step == name)
    }

    /// A digit for the current menu (prompting or waiting).
    fn menu_digit(&mut self, now: Instant, digit: char) {
        let flow = Arc::clone(&self.flow);
        let Phase::Menu { step, state, .. } = &mut self.phase else {
            return;
        };
        let Some(menu) = menu_of(&flow, step) else {
            self.hang_up();
            return;
        };
        let mut entry = match state {
            MenuState::Waiting { entry, .. } => std::mem::take(entry),
            MenuState::Prompting | MenuState::Failing => String::new(),
        };
        entry.push(digit);
        match menu.lookup(&entry) {
            Lookup::Choice(target) => self.next = Some(target.name.clone()),
            Lookup::Partial => {
                // Each digit of a longer choice restarts the wait.
                *state = MenuState::Waiting {
                    deadline: now + Duration::from_millis(menu.timeout_ms),
                    entry,
                };
            }
            Lookup::Invalid => {
                self.note(|| format!("`{entry}` is not a choice"));
                self.fail(Failure::Invalid);
            }
        }
    }

    /// An invalid entry or timeout: re-prompt while retries last, then `on_fail`.
    fn fail(&mut self, kind: Failure) {
        let flow = Arc::clone(&self.flow);
        let Phase::Menu {
            step,
            failures,
            state,
        } = &mut self.phase
        else {
            return;
        };
        let Some(menu) = menu_of(&flow, step) else {
            self.hang_up();
            return;
        };
        // Whatever else was typed ahead belongs to the failed entry.
        self.typeahead.clear();
        *failures = failures.saturating_add(1);
        let count = *failures;
        let notice: &[Ref] = match kind {
            Failure::Invalid => &menu.invalid_prompts,
            Failure::Timeout => menu.timeout_prompts(),
        };
        if count <= menu.retries {
            *state = MenuState::Prompting;
            let prompts: Vec<Ref> = notice.iter().chain(&menu.prompts).cloned().collect();
            self.note_failure(kind, count, menu.retries);
            self.play(&prompts);
        } else if !notice.is_empty() {
            *state = MenuState::Failing;
            self.note_failure(kind, count, menu.retries);
            self.play(notice);
        } else {
            self.note_failure(kind, count, menu.retries);
            self.next = Some(menu.on_fail.name.clone());
        }
    }

    fn note_failure(&mut self, kind: Failure, count: u32, retries: u32) {
        self.note(|| {
            let what = match kind {
                Failure::Invalid => "wrong entry",
                Failure::Timeout => "no key pressed in time",
            };
            if count <= retries {
                format!("{what}: asking again ({count} of {retries} retries used)")
            } else {
                format!("{what}: out of retries, on_fail")
            }
        });
    }

    fn play(&mut self, prompts: &[Ref]) {
        self.play_names(prompts.iter().map(|r| r.name.clone()).collect());
    }

    fn play_names(&mut self, prompts: Vec<String>) {
        self.push(Action::Play { prompts });
    }

    fn hang_up(&mut self) {
        self.next = None;
        self.typeahead.clear();
        self.push(Action::Hangup);
        self.phase = Phase::Finished;
    }
}

fn menu_of<'f>(flow: &'f Flow, step: &str) -> Option<&'f Menu> {
    match flow.step(step).map(|s| &s.kind) {
        Some(StepKind::Menu(m)) => Some(m),
        _ => None,
    }
}

/// The sixteen RFC 4733 DTMF events.
fn is_dtmf_event(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

pub fn describe_target(t: &TransferTarget) -> String {
    match t {
        TransferTarget::Operator(o) => format!("operator {o}"),
        TransferTarget::Queue(q) => format!("queue {q}"),
        TransferTarget::External(n) => format!("number {n}"),
    }
}

fn describe_day(day: &DayKind) -> String {
    match day {
        DayKind::Workday => "workday".to_owned(),
        DayKind::Weekend => "weekend".to_owned(),
        DayKind::Holiday { name } => format!("holiday: {name}"),
        DayKind::MovedWorkday { name } => format!("moved workday: {name}"),
        DayKind::Special { name } => format!("special day: {name}"),
    }
}

fn describe_match(m: &CallerMatch) -> String {
    match m {
        CallerMatch::Anonymous => "withheld number".to_owned(),
        CallerMatch::Vip(l) => format!("on VIP list `{}`", l.name),
        CallerMatch::Prefix(p) => format!("number starts with {}", p.join(" or ")),
    }
}
