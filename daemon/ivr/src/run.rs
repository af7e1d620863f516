//! The interpreter: one call's walk through a flow. Pure state machine:
//! events in (answer, playback done, digit, timeout), actions out. Time only
//! arrives as `now`, so tests drive it with a virtual clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{Flow, Lookup, Menu, Ref, StepKind};

/// What the daemon must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play these prompts back to back, replacing anything still playing.
    /// Call [`FlowRun::on_playback_done`] once after the last one ends.
    Play {
        prompts: Vec<String>,
    },
    /// Stop the current playback (a digit barged in). No
    /// `on_playback_done` is expected for the stopped playback.
    StopPlayback,
    Hangup,
}

/// Step entries one event may cause without waiting on the caller. Today
/// every path waits (a menu consumes a digit or plays); the next step types
/// (goto, set) can loop, and a looping flow must hang up, not spin.
const MAX_HOPS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A `hangup` step's prompts are playing.
    HangingUp,
    Finished,
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

/// One call's walk through a flow.
///
/// The daemon feeds events and, after each, drains [`Self::poll_action`]
/// until `None` and re-arms its timer from [`Self::poll_timeout`]:
///
/// - [`Self::start`] once the call is answered;
/// - [`Self::on_playback_done`] when the last `Play` ended by itself
///   (not after `StopPlayback`; a stray report is ignored);
/// - [`Self::on_digit`] for each DTMF digit;
/// - [`Self::handle_timeout`] when the deadline passes.
///
/// Digits during an uninterruptible play, a menu's final failure notice or
/// a goodbye are ignored (but recorded in [`Self::digits`]). During an
/// interruptible play or a menu prompt they barge in: `StopPlayback`, then
/// the digit is acted on.
#[derive(Debug)]
pub struct FlowRun {
    flow: Arc<Flow>,
    phase: Phase,
    actions: VecDeque<Action>,
    digits: String,
    path: Vec<String>,
    /// Digits that barged into an interruptible play, kept for the next menu.
    typeahead: VecDeque<char>,
    /// The step to enter when the current event finishes its work.
    next: Option<String>,
}

impl FlowRun {
    pub fn new(flow: Arc<Flow>) -> Self {
        Self {
            flow,
            phase: Phase::NotStarted,
            actions: VecDeque::new(),
            digits: String::new(),
            path: Vec::new(),
            typeahead: VecDeque::new(),
            next: None,
        }
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// The call was answered: enter the start step. Only the first call counts.
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::NotStarted {
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
                }
                MenuState::Failing => {
                    self.next = menu_of(&flow, step).map(|m| m.on_fail.name.clone());
                    if self.next.is_none() {
                        self.hang_up();
                    }
                }
                MenuState::Waiting { .. } => {}
            },
            Phase::HangingUp => self.hang_up(),
            Phase::NotStarted | Phase::Finished => {}
        }
        self.drive(now);
    }

    /// A DTMF digit (`0-9`, `*`, `#`, `A-D`). Recorded in [`Self::digits`]
    /// whenever the call is in the flow, even when the current step ignores
    /// it (an uninterruptible play, a goodbye).
    pub fn on_digit(&mut self, now: Instant, digit: char) {
        let digit = digit.to_ascii_uppercase();
        if !is_dtmf_event(digit) || matches!(self.phase, Phase::NotStarted | Phase::Finished) {
            return;
        }
        self.digits.push(digit);
        let flow = Arc::clone(&self.flow);
        match &self.phase {
            Phase::Playing { step } => {
                if let Some(StepKind::Play(p)) = flow.step(step).map(|s| &s.kind)
                    && p.interruptible
                {
                    self.actions.push_back(Action::StopPlayback);
                    self.typeahead.push_back(digit);
                    self.next = Some(p.next.name.clone());
                }
            }
            Phase::Menu { state, .. } => match state {
                MenuState::Prompting => {
                    self.actions.push_back(Action::StopPlayback);
                    self.menu_digit(now, digit);
                }
                MenuState::Waiting { .. } => self.menu_digit(now, digit),
                // Leaving the menu anyway.
                MenuState::Failing => {}
            },
            Phase::HangingUp | Phase::NotStarted | Phase::Finished => {}
        }
        self.drive(now);
    }

    /// Call when `now` reaches [`Self::poll_timeout`]; early calls are ignored.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Menu {
            state: MenuState::Waiting { deadline, entry },
            ..
        } = &self.phase
            && now >= *deadline
        {
            // A half-typed multi-digit choice that stalls is a wrong entry.
            let kind = if entry.is_empty() {
                Failure::Timeout
            } else {
                Failure::Invalid
            };
            self.fail(kind);
            self.drive(now);
        }
    }

    /// When the menu gives up waiting for a digit, if it is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Menu {
                state: MenuState::Waiting { deadline, .. },
                ..
            } => Some(*deadline),
            _ => None,
        }
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

    /// The step the call is in, if it is in one.
    pub fn current_step(&self) -> Option<&str> {
        match &self.phase {
            Phase::Playing { step } | Phase::Menu { step, .. } => Some(step),
            Phase::HangingUp => self.path.last().map(String::as_str),
            Phase::NotStarted | Phase::Finished => None,
        }
    }

    /// True once `Hangup` has been queued.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Enters queued steps until the flow waits on the caller or the media.
    fn drive(&mut self, now: Instant) {
        let mut hops = 0;
        while let Some(name) = self.next.take() {
            hops += 1;
            if hops > MAX_HOPS {
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
        match &step.kind {
            StepKind::Play(p) => {
                self.play(&p.prompts);
                self.phase = Phase::Playing { step: name };
            }
            StepKind::Menu(m) => {
                if self.typeahead.is_empty() {
                    self.play(&m.prompts);
                    self.phase = Phase::Menu {
                        step: name.clone(),
                        failures: 0,
                        state: MenuState::Prompting,
                    };
                } else {
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
            }
            StepKind::Hangup(h) => {
                self.typeahead.clear();
                if h.prompts.is_empty() {
                    self.hang_up();
                } else {
                    self.play(&h.prompts);
                    self.phase = Phase::HangingUp;
                }
            }
        }
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
            Lookup::Invalid => self.fail(Failure::Invalid),
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
        let notice: &[Ref] = match kind {
            Failure::Invalid => &menu.invalid_prompts,
            Failure::Timeout => menu.timeout_prompts(),
        };
        if *failures <= menu.retries {
            *state = MenuState::Prompting;
            let prompts: Vec<Ref> = notice.iter().chain(&menu.prompts).cloned().collect();
            self.play(&prompts);
        } else if !notice.is_empty() {
            *state = MenuState::Failing;
            self.play(notice);
        } else {
            self.next = Some(menu.on_fail.name.clone());
        }
    }

    fn play(&mut self, prompts: &[Ref]) {
        self.actions.push_back(Action::Play {
            prompts: prompts.iter().map(|r| r.name.clone()).collect(),
        });
    }

    fn hang_up(&mut self) {
        self.next = None;
        self.typeahead.clear();
        self.actions.push_back(Action::Hangup);
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
