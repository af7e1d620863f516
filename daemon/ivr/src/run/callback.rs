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
    promise: Option<String>,
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
    Closing,
}

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
            Stage::Failing | Stage::Closing => None,
        }
    }

    pub(super) fn waiting_for_input(&self) -> bool {
        match &self.stage {
            Stage::Confirm { until } => until.is_some(),
            Stage::Entry { until, entry } => until.is_some() && entry.is_empty(),
            Stage::Failing | Stage::Closing => false,
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
        let (queue, promise) = match offer {
            Some(o) => (
                Some(o.queue),
                o.promise
                    .or_else(|| c.promise.as_ref().map(|r| r.name.clone())),
            ),
            None => (
                c.queue.as_ref().map(|r| r.name.clone()),
                c.promise.as_ref().map(|r| r.name.clone()),
            ),
        };
        let mut run = CallbackRun {
            step: step.name.clone(),
            failures: 0,
            stage: Stage::Failing,
            queue,
            promise,
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
            Stage::Closing => self.next = Some(c.next.name.clone()),
            Stage::Confirm { .. } | Stage::Entry { .. } => {}
        }
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
                    self.callback_accept(c, own);
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
                    Key::Submit(entry) => self.callback_submit(c, entry),
                    Key::More => {}
                    Key::Bad(so_far) => {
                        self.note(|| format!("key {digit} in a number (after `{so_far}`)"));
                        self.callback_fail(c);
                    }
                }
            }
            Stage::Failing | Stage::Closing => {}
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
                    self.callback_submit(c, entry);
                }
            }
            _ => {}
        }
    }

    fn callback_submit(&mut self, c: &Callback, entry: String) {
        match validate(c, &entry) {
            Ok(number) => {
                self.note(|| format!("number {entry} accepted"));
                self.callback_accept(c, number);
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
    fn callback_accept(&mut self, c: &Callback, number: String) {
        let Phase::Callback(run) = &mut self.phase else {
            return;
        };
        let queue = run.queue.clone();
        let promise = run.promise.clone();
        run.stage = Stage::Closing;
        let mut prompts = Vec::new();
        if c.readback {
            prompts.extend(names(&c.readback_prompt));
            prompts.extend(number::spoken_digits(&number).chars().map(digit_prompt));
        }
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
                Stage::Failing | Stage::Closing => return,
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
