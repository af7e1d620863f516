//! The `queue` step: the waiting caller's experience. The runtime owns the
//! queue itself (`EnterQueue` / `LeaveQueue`, and answers with
//! [`QueueStatus`]); the interpreter owns what the caller hears meanwhile:
//! hold music, announcements with position and expected wait, and callback
//! offers decided by the flow's offer rules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Timelike;

use super::{Action, FlowRun, OfferContext, Phase, QueueStatus};
use crate::model::{
    OfferWhen, POSITION_MANY_PROMPT, POSITION_PROMPT, POSITION_SAID_UP_TO, Queue, Step, StepKind,
    WAIT_BUCKETS_MIN, WAIT_OVER_PROMPT, digit_prompt, range_covers, wait_prompt,
};

/// One visit to a queue step.
#[derive(Debug)]
pub(super) struct QueueRun {
    pub(super) step: String,
    /// The runtime's latest `Waiting`: position and expected wait.
    status: Option<(u32, Duration)>,
    /// The first `Waiting` (entry announcement and offer) was handled.
    entry_done: bool,
    /// What the matching offer rule says, if it offers at all.
    plan: Option<OfferPlan>,
    /// An offer was made: its key now takes the caller to the callback step.
    offered: bool,
    /// The consent notice (`record_prompt`) plays: the caller joins the queue when it
    /// has been heard, so no operator can answer (and recording begin) before.
    consent: bool,
    /// An announcement or offer is playing over the music.
    pub(super) speaking: bool,
    /// Announcements that came due while another was playing.
    pending: Vec<String>,
    next_announce: Option<Instant>,
    next_offer: Option<Instant>,
    deadline: Option<Instant>,
}

/// The offer rule that applies to this visit, copied out of the flow.
#[derive(Debug, Clone)]
struct OfferPlan {
    key: char,
    prompt: Vec<String>,
    promise: Option<String>,
    at_entry: bool,
    every: Option<Duration>,
    wait_over: Duration,
    callback: String,
}

impl OfferPlan {
    /// Offers are made only while the expected wait is over the limit (an
    /// unknown wait does not hold one back).
    fn allows(&self, status: Option<(u32, Duration)>) -> bool {
        status.is_none_or(|(_, wait)| wait > self.wait_over)
    }
}

impl QueueRun {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        [self.deadline, self.next_announce, self.next_offer]
            .into_iter()
            .flatten()
            .min()
    }
}

fn queue_of<'f>(flow: &'f crate::model::Flow, step: &str) -> Option<&'f Queue> {
    match flow.step(step).map(|s| &s.kind) {
        Some(StepKind::Queue(q)) => Some(q),
        _ => None,
    }
}

/// "Your position is" + the number, for the runtime's position.
fn position_prompts(position: u32) -> Vec<String> {
    let position = position.max(1);
    if position <= POSITION_SAID_UP_TO {
        let digit = char::from_digit(position, 10).unwrap_or('1');
        vec![POSITION_PROMPT.to_owned(), digit_prompt(digit)]
    } else {
        vec![POSITION_MANY_PROMPT.to_owned()]
    }
}

/// "Less than N minutes" for the smallest N the wait is under.
fn wait_prompts(wait: Duration) -> Vec<String> {
    let secs = wait.as_secs();
    let prompt = WAIT_BUCKETS_MIN
        .iter()
        .find(|&&m| secs < m * 60)
        .map_or_else(|| WAIT_OVER_PROMPT.to_owned(), |&m| wait_prompt(m));
    vec![prompt]
}

/// Position and expected-wait parts, as the step asks, for a known status.
fn status_prompts(q: &Queue, status: Option<(u32, Duration)>) -> Vec<String> {
    let Some((position, wait)) = status else {
        return Vec::new();
    };
    let mut v = Vec::new();
    if q.announce_position.is_some() {
        v.extend(position_prompts(position));
    }
    if q.announce_wait.is_some() {
        v.extend(wait_prompts(wait));
    }
    v
}

impl FlowRun {
    pub(super) fn enter_queue(&mut self, now: Instant, step: &Step, q: &Queue) {
        let plan = self.pick_offer_rule(now, q);
        let consent = !q.record_prompt.is_empty();
        if consent {
            self.play_names(q.record_prompt.iter().map(|r| r.name.clone()).collect());
        } else {
            self.join_queue(q);
        }
        let secs = Duration::from_secs;
        self.phase = Phase::Queue(Box::new(QueueRun {
            step: step.name.clone(),
            status: None,
            entry_done: false,
            next_offer: plan.as_ref().and_then(|p| p.every).map(|e| now + e),
            plan,
            offered: false,
            consent,
            speaking: consent,
            pending: Vec::new(),
            next_announce: q.announce_every.map(|e| now + secs(e)),
            deadline: q.max_wait.map(|m| now + secs(m)),
        }));
        self.input_epoch += 1;
    }

    /// The caller enters the step's queue, with its music.
    fn join_queue(&mut self, q: &Queue) {
        self.push(Action::EnterQueue {
            queue: q.queue.name.clone(),
            priority: q.priority,
            skill: q.skill.as_ref().map(|s| s.name.clone()),
            record: q.record,
        });
        if !q.music.is_empty() {
            self.push(Action::PlayLoop {
                prompts: q.music.iter().map(|r| r.name.clone()).collect(),
            });
        }
    }

    /// The first rule of the step's offer rule set whose conditions hold
    /// now decides for the whole visit.
    fn pick_offer_rule(&mut self, now: Instant, q: &Queue) -> Option<OfferPlan> {
        let flow = Arc::clone(&self.flow);
        let set = flow.offers.get(&q.offers.as_ref()?.name)?;
        let status = set
            .calendar
            .as_ref()
            .and_then(|c| flow.calendars.get(&c.name))
            .map(|cal| cal.status(self.wall_clock(now)));
        for (i, rule) in set.rules.iter().enumerate() {
            if !rule.days.is_empty() {
                let Some(st) = &status else { continue };
                if !rule.days.iter().any(|d| d.matches(&st.day)) {
                    continue;
                }
            }
            if !rule.hours.is_empty() {
                let Some(st) = &status else { continue };
                let minute = u16::try_from(st.local.hour() * 60 + st.local.minute()).unwrap_or(0);
                if !rule.hours.iter().any(|h| range_covers(*h, minute)) {
                    continue;
                }
            }
            if let Some(list) = &rule.vip {
                let on_list = !self.anonymous
                    && flow
                        .vip_lists
                        .get(&list.name)
                        .is_some_and(|l| l.contains(&self.ctx.caller));
                if !on_list {
                    continue;
                }
            }
            self.note(|| {
                let mut s = format!(
                    "offer rule {} of `{}` (line {}) applies: offer = {}",
                    i + 1,
                    set.name,
                    rule.at.line,
                    rule.offer.name()
                );
                if rule.offer != OfferWhen::Never {
                    if rule.wait_over > 0 {
                        s.push_str(&format!(
                            ", when the expected wait is over {}s",
                            rule.wait_over
                        ));
                    }
                    if let Some(e) = rule.every {
                        s.push_str(&format!(", every {e}s"));
                    }
                    s.push_str(&format!(", key {}", rule.key));
                }
                s
            });
            if rule.offer == OfferWhen::Never {
                return None;
            }
            let callback = flow.offer_callback(q)?.name.clone();
            return Some(OfferPlan {
                key: rule.key,
                prompt: rule.prompt.iter().map(|r| r.name.clone()).collect(),
                promise: rule.promise.as_ref().map(|r| r.name.clone()),
                at_entry: rule.offer.at_entry(),
                every: rule
                    .every
                    .filter(|_| rule.offer.repeats())
                    .map(Duration::from_secs),
                wait_over: Duration::from_secs(rule.wait_over),
                callback,
            });
        }
        self.note(|| {
            format!(
                "no rule of offer rule set `{}` applies: no callback offer",
                set.name
            )
        });
        None
    }

    pub(super) fn queue_status(&mut self, now: Instant, status: QueueStatus) {
        let flow = Arc::clone(&self.flow);
        let Phase::Queue(qr) = &mut self.phase else {
            return;
        };
        let Some(q) = queue_of(&flow, &qr.step) else {
            self.hang_up();
            return;
        };
        match status {
            QueueStatus::Waiting {
                position,
                expected_wait,
            } => {
                qr.status = Some((position, expected_wait));
                if qr.entry_done {
                    return;
                }
                qr.entry_done = true;
                let mut prompts = status_prompts(q, qr.status);
                let mut note = None;
                if let Some(plan) = &qr.plan
                    && plan.at_entry
                {
                    if plan.allows(qr.status) {
                        prompts.extend(plan.prompt.iter().cloned());
                        qr.offered = true;
                        note = Some(format!("callback offer at entry (key {})", plan.key));
                    } else {
                        note = Some(format!(
                            "no offer at entry: the expected wait {}s is not over {}s",
                            expected_wait.as_secs(),
                            plan.wait_over.as_secs()
                        ));
                    }
                }
                if let Some(n) = note {
                    self.note(|| n);
                }
                self.queue_speak(prompts);
            }
            QueueStatus::Connected => {
                self.note(|| "an operator answered: the flow's part is over".to_owned());
                self.push(Action::StopPlayback);
                self.phase = Phase::Handed;
            }
            QueueStatus::Unavailable => {
                let target = q.on_unavailable.name.clone();
                self.note(|| format!("the queue cannot take the call → {target}"));
                self.push(Action::StopPlayback);
                self.next = Some(target);
            }
        }
        let _ = now;
    }

    /// Plays announcements over the music, or keeps them for when the one
    /// playing ends.
    fn queue_speak(&mut self, prompts: Vec<String>) {
        if prompts.is_empty() {
            return;
        }
        let Phase::Queue(qr) = &mut self.phase else {
            return;
        };
        if qr.speaking {
            qr.pending.extend(prompts);
            return;
        }
        qr.speaking = true;
        self.play_names(prompts);
    }

    pub(super) fn queue_playback_done(&mut self) {
        let flow = Arc::clone(&self.flow);
        let Phase::Queue(qr) = &mut self.phase else {
            return;
        };
        // The music never reports done; a stray report changes nothing.
        if !qr.speaking {
            return;
        }
        if qr.consent {
            qr.consent = false;
            qr.speaking = false;
            if let Some(q) = queue_of(&flow, &qr.step) {
                self.join_queue(q);
            }
            return;
        }
        if !qr.pending.is_empty() {
            let prompts = std::mem::take(&mut qr.pending);
            self.play_names(prompts);
            return;
        }
        qr.speaking = false;
        let music: Vec<String> = queue_of(&flow, &qr.step)
            .map(|q| q.music.iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default();
        if !music.is_empty() {
            self.push(Action::PlayLoop { prompts: music });
        }
        self.input_epoch += 1;
    }

    pub(super) fn queue_timeout(&mut self, now: Instant) {
        let flow = Arc::clone(&self.flow);
        let Phase::Queue(qr) = &mut self.phase else {
            return;
        };
        let Some(q) = queue_of(&flow, &qr.step) else {
            self.hang_up();
            return;
        };
        if qr.deadline.is_some_and(|d| d <= now) {
            let target = q.on_timeout.as_ref().map(|r| r.name.clone());
            let waited = q.max_wait.unwrap_or(0);
            self.push(Action::StopPlayback);
            self.push(Action::LeaveQueue);
            match target {
                Some(t) => {
                    self.note(|| format!("waited the maximum {waited}s → {t}"));
                    self.next = Some(t);
                }
                None => self.hang_up(),
            }
            return;
        }
        let mut prompts = Vec::new();
        let mut notes = Vec::new();
        if let (Some(at), Some(every)) = (qr.next_announce, q.announce_every)
            && at <= now
        {
            prompts.extend(q.announce.iter().map(|r| r.name.clone()));
            prompts.extend(status_prompts(q, qr.status));
            qr.next_announce = Some(next_tick(at, Duration::from_secs(every), now));
            notes.push("announcement".to_owned());
        }
        if let (Some(at), Some(plan)) = (qr.next_offer, &qr.plan)
            && at <= now
        {
            if let Some(every) = plan.every {
                qr.next_offer = Some(next_tick(at, every, now));
            } else {
                qr.next_offer = None;
            }
            if plan.allows(qr.status) {
                prompts.extend(plan.prompt.iter().cloned());
                qr.offered = true;
                notes.push(format!("callback offer (key {})", plan.key));
            } else {
                notes.push(format!(
                    "no offer: the expected wait is not over {}s",
                    plan.wait_over.as_secs()
                ));
            }
        }
        for n in notes {
            self.note(|| n);
        }
        self.queue_speak(prompts);
    }

    pub(super) fn queue_digit(&mut self, digit: char) {
        let flow = Arc::clone(&self.flow);
        let Phase::Queue(qr) = &mut self.phase else {
            return;
        };
        let Some(q) = queue_of(&flow, &qr.step) else {
            return;
        };
        if let Some(k) = q.keys.iter().find(|k| k.digits.starts_with(digit)) {
            let target = k.target.name.clone();
            self.push(Action::StopPlayback);
            self.push(Action::LeaveQueue);
            self.note(|| format!("key {digit} leaves the queue → {target}"));
            self.next = Some(target);
            return;
        }
        match &qr.plan {
            Some(plan) if qr.offered && plan.key == digit => {
                let offer = OfferContext {
                    queue: q.queue.name.clone(),
                    promise: plan.promise.clone(),
                };
                let target = plan.callback.clone();
                self.push(Action::StopPlayback);
                self.push(Action::LeaveQueue);
                self.note(|| format!("the caller takes the callback offer → {target}"));
                self.offer = Some(offer);
                self.next = Some(target);
            }
            _ => self.note(|| format!("key {digit} does nothing here")),
        }
    }
}

/// The first tick after `now` of a period that fired at `at` (late timers
/// skip what they missed instead of bursting).
fn next_tick(at: Instant, every: Duration, now: Instant) -> Instant {
    let mut t = at + every;
    if every.is_zero() {
        return now + Duration::from_secs(1);
    }
    while t <= now {
        t += every;
    }
    t
}
