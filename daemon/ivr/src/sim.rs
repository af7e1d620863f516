//! `hotline flow simulate`: the real [`FlowRun`] on a virtual clock, with a
//! scripted caller and a stand-in runtime, printed step by step.
//!
//! The stand-in runtime: a prompt plays for its WAV's length; a queue
//! reports position 1 and `expected_wait` as soon as the caller enters, and
//! an operator answers after `queue_wait` (never without it); a transfer
//! succeeds; a callback step that says the computed time is told
//! `promise_in` (never without it: its fallback is said). The caller presses each `digits` entry at the next point the
//! flow waits for a key (after a menu's prompt, after the callback step's
//! question, in a queue when the caller enters or an announcement ends),
//! one key every 200 ms; `-` lets that point pass.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};

use crate::load::FlowSet;
use crate::run::{Action, CallContext, FlowRun, QueueStatus, TransferTarget, describe_target};

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimInput {
    pub called: String,
    /// `"anonymous"` for a withheld number.
    pub caller: String,
    /// When the call is answered (the flow's schedules see this time).
    pub at: DateTime<FixedOffset>,
    /// Pressed one entry per point where the flow waits for input: `"1"`,
    /// `"#"`, `"06301234567#"`; `"-"` presses nothing there.
    pub digits: Vec<String>,
    /// An operator answers a queued caller after this; `None`: never.
    pub queue_wait: Option<Duration>,
    /// The expected wait the queue reports.
    pub expected_wait: Duration,
    /// The callback time the stand-in runtime computes; `None`: it tells none.
    pub promise_in: Option<Duration>,
    /// The daemon's dial plan: a transfer to a number it refuses fails, as in the daemon.
    pub dial_plan: crate::dialplan::DialPlan,
}

/// One printed line: milliseconds since the answer, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimLine {
    pub at_ms: u64,
    pub text: String,
}

impl fmt::Display for SimLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = format!("+{}.{:03}s", self.at_ms / 1000, self.at_ms % 1000);
        write!(f, "{t:>10}  {}", self.text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("no flow answers `{0}` and no flow is the default")]
    NoFlow(String),
    #[error(
        "digits entry `{0}`: use keypad keys (0-9, *, #, A-D), or `-` to press nothing at that point"
    )]
    BadDigits(String),
}

/// The position the stand-in queue reports.
pub const SIM_QUEUE_POSITION: u32 = 1;
/// Time between the keys of one entry.
pub const SIM_KEY_GAP_MS: u64 = 200;
/// Simulated call time before the simulation gives up.
pub const SIM_MAX_MS: u64 = 2 * 3600 * 1000;
/// Lines before the simulation gives up.
pub const SIM_MAX_LINES: usize = 10_000;
/// Events before the simulation gives up.
const SIM_MAX_EVENTS: u32 = 1_000_000;

/// Walks a call through `set` and returns what happened, line by line.
pub fn simulate(set: &FlowSet, input: &SimInput) -> Result<Vec<SimLine>, SimError> {
    for d in &input.digits {
        let keys_ok = !d.is_empty()
            && d.chars().all(|c| {
                c.is_ascii_digit() || matches!(c.to_ascii_uppercase(), '*' | '#' | 'A'..='D')
            });
        if d != "-" && !keys_ok {
            return Err(SimError::BadDigits(d.clone()));
        }
    }
    let flow = set
        .for_number(&input.called)
        .ok_or_else(|| SimError::NoFlow(input.called.clone()))?;
    let t0 = Instant::now();
    let ctx = CallContext {
        caller: input.caller.clone(),
        called: input.called.clone(),
        answered_at: input.at.with_timezone(&Utc),
    };
    let mut sim = Sim {
        set,
        input,
        t0,
        now: 0,
        lines: Vec::new(),
        playback_end: None,
        answer_at: None,
        status_due: false,
        transfer_due: None,
        promise_due: false,
        keys: VecDeque::new(),
        next_entry: 0,
        last_epoch: None,
        taken: 0,
    };
    let file = flow
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    sim.line(format!(
        "call from {} to {}, answered {}: flow `{}` ({file}, version {})",
        input.caller,
        input.called,
        input.at.format("%a %Y-%m-%d %H:%M:%S %:z"),
        flow.name,
        flow.version
    ));
    if flow.ring_ms > 0 {
        sim.line(format!(
            "(the caller first hears ringing for {}; times count from the answer)",
            secs(flow.ring_ms)
        ));
    }
    let mut run = FlowRun::new(flow, ctx);
    run.enable_trace();
    run.start(t0);
    let mut events = 0u32;
    loop {
        sim.drain(&mut run);
        events += 1;
        // Belt and braces: events that print nothing cannot spin forever.
        if events > SIM_MAX_EVENTS {
            sim.line(format!("stopped: more than {SIM_MAX_EVENTS} events"));
            break;
        }
        if run.is_finished() {
            break;
        }
        if sim.lines.len() >= SIM_MAX_LINES {
            sim.line(format!("stopped: more than {SIM_MAX_LINES} lines"));
            break;
        }
        sim.maybe_press(&run);
        let timeout = run.poll_timeout().map(|t| sim.ms(t));
        let next = [
            sim.playback_end,
            sim.keys.front().map(|k| k.0),
            sim.answer_at,
            timeout,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = next else {
            sim.line(
                "nothing more happens: the flow waits for a key the caller never presses"
                    .to_owned(),
            );
            break;
        };
        if t > SIM_MAX_MS {
            sim.now = SIM_MAX_MS;
            sim.line("stopped: two hours of call time simulated".to_owned());
            break;
        }
        sim.now = t.max(sim.now);
        let now = sim.instant();
        // One event at a time, in a fixed order for equal times.
        if sim.playback_end == Some(t) {
            sim.playback_end = None;
            run.on_playback_done(now);
        } else if sim.keys.front().is_some_and(|k| k.0 == t) {
            if let Some((_, key)) = sim.keys.pop_front() {
                run.on_digit(now, key);
            }
        } else if sim.answer_at == Some(t) {
            sim.answer_at = None;
            sim.line("an operator answers".to_owned());
            run.on_queue_status(now, QueueStatus::Connected);
        } else {
            run.handle_timeout(now);
        }
    }
    if !run.variables().is_empty() {
        let vars: Vec<String> = run
            .variables()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        sim.line(format!("variables recorded: {}", vars.join(", ")));
    }
    Ok(sim.lines)
}

struct Sim<'a> {
    set: &'a FlowSet,
    input: &'a SimInput,
    t0: Instant,
    /// Virtual milliseconds since the answer.
    now: u64,
    lines: Vec<SimLine>,
    /// When the playing `Play` ends (not music: it never ends).
    playback_end: Option<u64>,
    /// When the operator answers the queued caller.
    answer_at: Option<u64>,
    /// The stand-in queue owes its first status.
    status_due: bool,
    /// The stand-in runtime owes a transfer result.
    /// A transfer was asked for: whether it works.
    transfer_due: Option<bool>,
    /// The stand-in runtime owes a computed callback time.
    promise_due: bool,
    /// Keys of the entry being pressed, with when.
    keys: VecDeque<(u64, char)>,
    next_entry: usize,
    last_epoch: Option<u64>,
    /// Actions taken from the run so far (to place notes between them).
    taken: u64,
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

impl Sim<'_> {
    fn line(&mut self, text: String) {
        self.lines.push(SimLine {
            at_ms: self.now,
            text,
        });
    }

    fn instant(&self) -> Instant {
        self.t0 + Duration::from_millis(self.now)
    }

    fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.t0).as_millis()).unwrap_or(u64::MAX)
    }

    /// Prints what the run did and plays the runtime's part, until the run
    /// waits for the clock.
    fn drain(&mut self, run: &mut FlowRun) {
        loop {
            let actions: Vec<Action> = std::iter::from_fn(|| run.poll_action()).collect();
            let mut notes = run.take_trace().into_iter().peekable();
            for a in actions {
                self.taken += 1;
                while let Some((_, text)) = notes.next_if(|(c, _)| *c < self.taken) {
                    self.note(text);
                }
                self.act(a);
            }
            for (_, text) in notes {
                self.note(text);
            }
            let now = self.instant();
            if self.status_due {
                self.status_due = false;
                let wait = self.input.expected_wait;
                self.line(format!(
                    "the queue reports position {SIM_QUEUE_POSITION}, expected wait {}s",
                    wait.as_secs()
                ));
                run.on_queue_status(
                    now,
                    QueueStatus::Waiting {
                        position: SIM_QUEUE_POSITION,
                        expected_wait: wait,
                    },
                );
            } else if let Some(ok) = self.transfer_due.take() {
                run.on_transfer_result(now, ok);
            } else if let (true, Some(promise_in)) = (self.promise_due, self.input.promise_in) {
                self.promise_due = false;
                let in_ms = u64::try_from(promise_in.as_millis()).unwrap_or(u64::MAX);
                let wall_now = self.input.at + Duration::from_millis(self.now);
                let same_day = (wall_now + promise_in).date_naive() == wall_now.date_naive();
                self.line(format!(
                    "the runtime promises the callback in {} min",
                    in_ms.div_ceil(60_000)
                ));
                run.on_callback_promise(now, in_ms, same_day);
            } else {
                break;
            }
        }
    }

    fn note(&mut self, text: String) {
        if text.starts_with("step ") {
            self.line(text);
        } else {
            self.line(format!("  {text}"));
        }
    }

    fn act(&mut self, a: Action) {
        let text = match a {
            Action::Play { prompts } => {
                let ms: u64 = prompts
                    .iter()
                    .filter_map(|p| self.set.prompt_duration(p))
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
                    .sum();
                self.playback_end = Some(self.now.saturating_add(ms));
                format!("play {} ({})", prompts.join(", "), secs(ms))
            }
            Action::PlayLoop { prompts } => {
                self.playback_end = None;
                format!("music {} (looped)", prompts.join(", "))
            }
            Action::StopPlayback => {
                self.playback_end = None;
                "stop playback".to_owned()
            }
            Action::Hangup => "hang up".to_owned(),
            Action::EnterQueue {
                queue,
                priority,
                skill,
                ..
            } => {
                self.status_due = true;
                self.answer_at = self.input.queue_wait.map(|w| {
                    self.now
                        .saturating_add(u64::try_from(w.as_millis()).unwrap_or(u64::MAX))
                });
                match skill {
                    Some(skill) => {
                        format!("enter queue {queue} (priority {priority}, skill {skill})")
                    }
                    None => format!("enter queue {queue} (priority {priority})"),
                }
            }
            Action::LeaveQueue => {
                self.answer_at = None;
                "leave the queue".to_owned()
            }
            Action::CallbackRequest {
                number,
                queue,
                promise,
            } => {
                self.promise_due = promise.is_none();
                format!(
                    "callback request: {number}, queue {}, promise {}",
                    queue.as_deref().unwrap_or("-"),
                    promise.as_deref().unwrap_or("(computed)")
                )
            }
            Action::Transfer { target } => {
                // What the daemon refuses whoever is online: a number the dial plan
                // forbids, an operator in no queue.
                let refused = match &target {
                    TransferTarget::External(n) => {
                        self.input.dial_plan.check(n).err().map(|e| e.to_string())
                    }
                    TransferTarget::Operator(o) => (!self
                        .set
                        .queues()
                        .values()
                        .any(|q| q.members.iter().any(|m| m == o)))
                    .then(|| format!("{o} is in no queue")),
                    TransferTarget::Queue(_) => None,
                };
                self.transfer_due = Some(refused.is_none());
                match refused {
                    Some(why) => {
                        format!("transfer to {}: refused, {why}", describe_target(&target))
                    }
                    None => format!("transfer to {}", describe_target(&target)),
                }
            }
            Action::SetVariable { name, value } => format!("set {name} = {value}"),
        };
        self.line(format!("  {text}"));
    }

    /// At a new point where the flow waits for a key, the caller presses
    /// the next entry.
    fn maybe_press(&mut self, run: &FlowRun) {
        if !self.keys.is_empty() {
            return;
        }
        let Some(epoch) = run.input_point() else {
            return;
        };
        if self.last_epoch == Some(epoch) {
            return;
        }
        self.last_epoch = Some(epoch);
        let Some(entry) = self.input.digits.get(self.next_entry).cloned() else {
            return;
        };
        self.next_entry += 1;
        if entry == "-" {
            self.line("the caller presses nothing".to_owned());
            return;
        }
        self.line(format!("the caller presses {entry}"));
        for (i, key) in entry.chars().enumerate() {
            self.keys
                .push_back((self.now + i as u64 * SIM_KEY_GAP_MS, key));
        }
    }
}
