//! The `callback` step: confirm the caller's own number or key in another,
//! validate it, emit the request, read the number back and say when to
//! expect the call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Action, FlowRun, OfferContext, Phase};
use crate::model::{Callback, Ref, Step, StepKind, digit_prompt};
use crate::number;

#[derive(Debug)]
pub(super) struct CallbackRun {
    pub(super) step: String,
    failures: u32,
    stage: Stage,
    queue: Option<String>,
    /// The fixed promise (an offer rule's or the step's).
    promise: Option<String>,
    /// The promise is the computed time (the fixed one is only the fallback).
    computed: bool,
}

#[derive(Debug)]
enum Stage {
    /// "Press 1 for your own number, 2 for another": `None` while the
    /// question plays, then the deadline for a key.
    Confirm { until: Option<Instant> },
    /// Keying in a number: `None` while the prompt plays.
    Entry {
        until: Option<Instant>,
        entry: String,
    },
    /// The last failure's notice plays; then `on_fail`.
    Failing,
    /// Read-back and promise play; then `next`.
    Closing {
        /// The promise waits for the time Hotline computes (`promise_computed`).
        computed: Option<AwaitedPromise>,
    },
}

/// A computed promise being waited for while the read-back plays.
#[derive(Debug)]
struct AwaitedPromise {
    /// The read-back has finished playing (or there was none).
    readback_done: bool,
    /// The prompt chosen from the computed time, once it came.
    prompt: Option<String>,
    /// Without a time by then, the fallback prompt is said.
    until: Instant,
}

/// How long a computed promise may take before the fallback is said: the caller must
/// not sit in silence because the store is slow.
const PROMISE_WAIT: Duration = Duration::from_secs(2);

/// What a key does to a number being keyed in.
enum Key {
    Submit(String),
    More,
    Bad(String),
}

impl CallbackRun {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Confirm { until } | Stage::Entry { until, .. } => *until,
            Stage::Closing {
                computed: Some(a), ..
            } if a.prompt.is_none() => Some(a.until),
            Stage::Failing | Stage::Closing { .. } => None,
        }
    }

    pub(super) fn waiting_for_input(&self) -> bool {
        match &self.stage {
            Stage::Confirm { until } => until.is_some(),
            Stage::Entry { until, entry } => until.is_some() && entry.is_empty(),
            Stage::Failing | Stage::Closing { .. } => false,
        }
    }
}

fn callback_of<'f>(flow: &'f crate::model::Flow, step: &str) -> Option<&'f Callback> {
    match flow.step(step).map(|s| &s.kind) {
        Some(StepKind::Callback(c)) => Some(c),
        _ => None,
    }
}

fn names(refs: &[Ref]) -> Vec<String> {
    refs.iter().map(|r| r.name.clone()).collect()
}

/// Why a keyed-in number is refused, if it is.
fn validate(c: &Callback, entry: &str) -> Result<String, String> {
    if entry.is_empty() {
        return Err("nothing keyed in".to_owned());
    }
    if !entry.chars().all(|d| d.is_ascii_digit()) {
        return Err(format!("`{entry}` has keys other than digits"));
    }
    let n = entry.len();
    if n < c.min_digits {
        return Err(format!(
            "`{entry}` is too short ({n} digits, at least {})",
            c.min_digits
        ));
    }
    if n > c.max_digits {
        return Err(format!(
            "`{entry}` is too long ({n} digits, at most {})",
            c.max_digits
        ));
    }
    if !c.patterns.is_empty() && !c.patterns.iter().any(|p| p.matches(entry)) {
        return Err(format!("`{entry}` matches none of the step's patterns"));
    }
    number::normalize(entry).map_err(|e| format!("`{entry}`: {}", e.message))
}

impl FlowRun {
    pub(super) fn enter_callback(
        &mut self,
        now: Instant,
        step: &Step,
        c: &Callback,
        offer: Option<OfferContext>,
    ) {
        let (queue, rule_promise) = match offer {
            Some(o) => (Some(o.queue), o.promise),
            None => (c.queue.as_ref().map(|r| r.name.clone()), None),
        };
        // An offer rule's promise is a commitment to a kind of caller: it wins over both
        // the computed time and the step's own promise.
        let computed = rule_promise.is_none() && c.promise_computed.is_some();
        let promise = rule_promise.or_else(|| c.promise.as_ref().map(|r| r.name.clone()));
        let mut run = CallbackRun {
            step: step.name.clone(),
            failures: 0,
            stage: Stage::Failing,
            queue,
            promise,
            computed,
        };
        // A caller ID that is no phone number (withheld, or a SIP name)
        // cannot be called back: only a keyed-in number will do.
        let own_number = !self.anonymous && number::normalize(&self.ctx.caller).is_ok();
        if own_number && !c.confirm_prompt.is_empty() {
            run.stage = Stage::Confirm { until: None };
            self.phase = Phase::Callback(Box::new(run));
            self.play(&c.confirm_prompt);
        } else if !c.enter_prompt.is_empty() {
            if !own_number {
                self.note(|| "no number to call back: the caller must key one in".to_owned());
            }
            run.stage = Stage::Entry {
                until: None,
                entry: String::new(),
            };
            self.phase = Phase::Callback(Box::new(run));
            self.play(&c.enter_prompt);
        } else {
            let target = c.on_fail.name.clone();
            self.note(|| format!("no number to call back and no `enter_prompt` → {target}"));
            self.phase = Phase::Callback(Box::new(run));
            self.next = Some(target);
        }
        let _ = now;
    }

    pub(super) fn callback_playback_done(&mut self, now: Instant) {
        let flow = Arc::clone(&self.flow);
        let Phase::Callback(run) = &mut self.phase else {
            return;
        };
        let Some(c) = callback_of(&flow, &run.step) else {
            self.hang_up();
            return;
        };
        let wait = now + Duration::from_millis(c.timeout_ms);
        match &mut run.stage {
            Stage::Confirm { until } if until.is_none() => {
                *until = Some(wait);
                self.input_epoch += 1;
            }
            Stage::Entry { until, entry } if until.is_none() => {
                // Keys pressed during the prompt already started the wait.
                debug_assert!(entry.is_empty());
                *until = Some(wait);
                self.input_epoch += 1;
            }
            Stage::Failing => self.next = Some(c.on_fail.name.clone()),
            Stage::Closing { computed: None } => self.next = Some(c.next.name.clone()),
            Stage::Closing { computed: Some(a) } => {
                a.readback_done = true;
                if let Some(prompt) = a.prompt.take() {
                    self.say_promise(prompt);
                }
            }
            Stage::Confirm { .. } | Stage::Entry { .. } => {}
        }
    }

    /// The time Hotline computed for the callback just requested: `in_ms` from now,
    /// `same_day` when that is still today. Ignored unless the step waits for one.
    pub(super) fn on_callback_promise_inner(&mut self, in_ms: u64, same_day: bool) {
        let flow = Arc::clone(&self.flow);
        let Phase::Callback(run) = &mut self.phase else {
            return;
        };
        let Some(c) = callback_of(&flow, &run.step) else {
            return;
        };
        let (Some(computed), Stage::Closing { computed: Some(a) }) =
            (&c.promise_computed, &mut run.stage)
        else {
            return;
        };
        if a.prompt.is_some() {
            return;
        }
        let prompt = computed.prompt_for(in_ms, same_day).name.clone();
        let readback_done = a.readback_done;
        if !readback_done {
            a.prompt = Some(prompt.clone());
        }
        self.note(|| format!("promised in {} min: {prompt}", in_ms.div_ceil(60_000)));
        if readback_done {
            self.say_promise(prompt);
        }
    }

    /// Plays the promise; the step then goes on to `next`.
    fn say_promise(&mut self, prompt: String) {
        if let Phase::Callback(run) = &mut self.phase {
            run.stage = Stage::Closing { computed: None };
        }
        self.play_names(vec![prompt]);
    }

    pub(super) fn callback_digit(&mut self, now: Instant, digit: char) {
        let flow = Arc::clone(&self.flow);
        let Phase::Callback(run) = &mut self.phase else {
            return;
        };
        let Some(c) = callback_of(&flow, &run.step) else {
            return;
        };
        match &mut run.stage {
            Stage::Confirm { until } => {
                if until.is_none() {
                    self.push(Action::StopPlayback);
                }
                if digit == c.own_key {
                    let own = number::normalize(&self.ctx.caller).unwrap_or_default();
                    self.note(|| format!("the caller confirms their own number {own}"));
                    self.callback_accept(now, c, own);
                } else if digit == c.other_key && !c.enter_prompt.is_empty() {
                    self.note(|| "the caller will key in another number".to_owned());
                    if let Phase::Callback(run) = &mut self.phase {
                        run.stage = Stage::Entry {
                            until: None,
                            entry: String::new(),
                        };
                    }
                    self.play(&c.enter_prompt);
                } else {
                    self.note(|| format!("key {digit} is not an answer here"));
                    self.callback_fail(c);
                }
            }
            Stage::Entry { until, entry } => {
                let prompting = until.is_none();
                let outcome = match digit {
                    '#' => Key::Submit(std::mem::take(entry)),
                    '0'..='9' => {
                        entry.push(digit);
                        *until = Some(now + Duration::from_millis(c.timeout_ms));
                        Key::More
                    }
                    _ => Key::Bad(std::mem::take(entry)),
                };
                if prompting {
                    self.push(Action::StopPlayback);
                }
                match outcome {
                    Key::Submit(entry) => self.callback_submit(now, c, entry),
                    Key::More => {}
                    Key::Bad(so_far) => {
                        self.note(|| format!("key {digit} in a number (after `{so_far}`)"));
                        self.callback_fail(c);
                    }
                }
            }
            Stage::Failing | Stage::Closing { .. } => {}
        }
    }

    pub(super) fn callback_timeout(&mut self, now: Instant) {
        let flow = Arc::clone(&self.flow);
        let Phase::Callback(run) = &mut self.phase else {
            return;
        };
        let Some(c) = callback_of(&flow, &run.step) else {
            return;
        };
        match &mut run.stage {
            Stage::Confirm { until: Some(t) } if *t <= now => {
                self.note(|| "no key pressed in time".to_owned());
                self.callback_fail(c);
            }
            // A pause after some digits ends the entry as `#` would:
            // callers often forget the `#`.
            Stage::Entry {
                until: Some(t),
                entry,
            } if *t <= now => {
                let entry = std::mem::take(entry);
                if entry.is_empty() {
                    self.note(|| "no number keyed in time".to_owned());
                    self.callback_fail(c);
                } else {
                    self.callback_submit(now, c, entry);
                }
            }
            Stage::Closing { computed: Some(a) } if a.prompt.is_none() && a.until <= now => {
                // No time came: the step's own promise, else the vaguest computed one.
                let fallback = run
                    .promise
                    .clone()
                    .or_else(|| c.promise_computed.as_ref().map(|p| p.later.name.clone()));
                let readback_done = a.readback_done;
                if !readback_done {
                    a.prompt = fallback.clone();
                }
                self.note(|| "no computed promise in time: the fallback is said".to_owned());
                if let (true, Some(prompt)) = (readback_done, fallback) {
                    self.say_promise(prompt);
                }
            }
            _ => {}
        }
    }

    fn callback_submit(&mut self, now: Instant, c: &Callback, entry: String) {
        match validate(c, &entry) {
            Ok(number) => {
                self.note(|| format!("number {entry} accepted"));
                self.callback_accept(now, c, number);
            }
            Err(why) => {
                self.note(|| format!("number refused: {why}"));
                self.callback_fail(c);
            }
        }
    }

    /// A good number: the request goes out at once (a caller who hangs up
    /// during the read-back still gets the call), then the read-back and
    /// the promise play.
    fn callback_accept(&mut self, now: Instant, c: &Callback, number: String) {
        let Phase::Callback(run) = &mut self.phase else {
            return;
        };
        let queue = run.queue.clone();
        let promise = run.promise.clone();
        let mut prompts = Vec::new();
        if c.readback {
            prompts.extend(names(&c.readback_prompt));
            prompts.extend(number::spoken_digits(&number).chars().map(digit_prompt));
        }
        if run.computed {
            // The read-back plays while Hotline computes the time (`on_callback_promise`).
            run.stage = Stage::Closing {
                computed: Some(AwaitedPromise {
                    readback_done: prompts.is_empty(),
                    prompt: None,
                    until: now + PROMISE_WAIT,
                }),
            };
            self.push(Action::CallbackRequest {
                number,
                queue,
                promise: None,
            });
            if !prompts.is_empty() {
                self.play_names(prompts);
            }
            return;
        }
        run.stage = Stage::Closing { computed: None };
        prompts.extend(promise.iter().cloned());
        self.push(Action::CallbackRequest {
            number,
            queue,
            promise,
        });
        if prompts.is_empty() {
            self.next = Some(c.next.name.clone());
        } else {
            self.play_names(prompts);
        }
    }

    /// A wrong key, a bad number or silence: ask again while retries last,
    /// then `on_fail`.
    fn callback_fail(&mut self, c: &Callback) {
        let Phase::Callback(run) = &mut self.phase else {
            return;
        };
        run.failures = run.failures.saturating_add(1);
        let count = run.failures;
        if count <= c.retries {
            let question = match &mut run.stage {
                Stage::Confirm { until } => {
                    *until = None;
                    &c.confirm_prompt
                }
                Stage::Entry { until, entry } => {
                    *until = None;
                    entry.clear();
                    &c.enter_prompt
                }
                Stage::Failing | Stage::Closing { .. } => return,
            };
            let prompts: Vec<String> = names(&c.invalid_prompt)
                .into_iter()
                .chain(names(question))
                .collect();
            let retries = c.retries;
            self.note(|| format!("asking again ({count} of {retries} retries used)"));
            self.play_names(prompts);
        } else if !c.invalid_prompt.is_empty() {
            run.stage = Stage::Failing;
            self.note(|| "out of retries, on_fail".to_owned());
            self.play(&c.invalid_prompt);
        } else {
            run.stage = Stage::Failing;
            self.note(|| "out of retries, on_fail".to_owned());
            self.next = Some(c.on_fail.name.clone());
        }
    }
}
