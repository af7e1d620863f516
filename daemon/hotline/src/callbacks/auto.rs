//! The automatic callback (C3): for every queue with `auto = true`, while its window is
//! open (cron rules and calendar, on the flows' clock), the scheduler takes entries off the
//! shared list and calls the customers back itself, agent-first: the callback enters the
//! queue like a caller (ordered by the queue's policy against live callers), the queue
//! rings a free operator, and when they answer the customer is dialled through the trunk.
//!
//! - Never more callbacks than free operators, and never more than the queue's share of
//!   its staffed operators: the queue engine's `callback_room` says how many may start.
//! - Each entry is claimed first with the same conditional update operators use, under a
//!   name of this node's own: two daemons on one database never dial one entry, and an
//!   operator clicking at the same moment is told the automatic callback has it.
//! - An attempt counts (retry delay, maximum attempts) only when the customer was dialled;
//!   when no operator took the callback, the claim is given back.
//! - Customer-first (`mode = "customer-first"`): the customer is dialled first and hears
//!   `confirm_prompt`; only when they press `confirm_key` does the callback enter the queue
//!   for an operator, so an answering machine is never put through. Callbacks being
//!   confirmed count against the queue's room.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hotline_core::acd::{CallerId, RingFailure};
use hotline_core::call_session::PlacedStart;
use hotline_core::callbacks::CallbackEntry;
use hotline_core::cdr::{CallStart, CdrRef, EndReason};
use hotline_core::time::{millis, unix_ms};
use hotline_ivr::CallbackMode;
use hotline_sip::sdp::Negotiated;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::attempts::{OutcomeRules, rules_for};
use super::attempts::{Reached, attempt_outcome};
use crate::actors::AcdInput;
use crate::actors::CallEvent;
use crate::actors::SipCommand;
use crate::call::PlacedCall;
use crate::config::Trunk;
use crate::context::Calls;
use crate::outbound::{self, NotAnswered, Ports};

/// How often the scheduler looks for work.
const TICK: Duration = Duration::from_secs(1);
/// How long a claim holds if this node dies mid-call: the entry is back then.
const CLAIM_MS: i64 = 30 * 60 * 1000;
/// How long a placed callback may wait for an operator before it is given back.
const WAIT_FOR_OPERATOR: Duration = Duration::from_secs(120);
/// Callback callers are numbered apart from SIP call handles.
const CALLER_BASE: u64 = 1 << 62;

/// This process's name in claims, random per start: two daemons never share one, and a
/// restarted daemon (in a container, with the same host name and PID) never takes its
/// predecessor's claims for its own.
pub fn claimer_name() -> String {
    format!("Automatic callback ({:016x})", rand::random::<u64>())
}

/// Runs the scheduler until the daemon stops.
pub async fn run(calls: Arc<Calls>, trunk: Option<Trunk>) {
    let claimer = claimer_name();
    let mut next_caller = CALLER_BASE;
    let mut warned = std::collections::BTreeSet::new();
    // Per queue: customer-first callbacks dialling or waiting for the key, not yet in the
    // queue engine.
    let mut confirming: HashMap<String, Arc<AtomicU32>> = HashMap::new();
    let mut shutdown = calls.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        let flows = calls.flows_now();
        let now = calls.clock.now();
        for (name, q) in flows.set.queues() {
            let settings = &q.callbacks;
            if !settings.auto {
                continue;
            }
            let Some(trunk) = trunk.as_ref() else {
                if warned.insert(format!("{name}:trunk")) {
                    warn!(queue = %name, "auto-callback is on, but no trunk is configured (trunk.address): nothing is dialled");
                }
                continue;
            };
            let customer_first = match &settings.mode {
                CallbackMode::AgentFirst => None,
                CallbackMode::CustomerFirst {
                    confirm_prompt,
                    confirm_key,
                } => match flows.prompts.get(&confirm_prompt.name) {
                    Some(_) => Some(Confirmation {
                        prompt: confirm_prompt.name.clone(),
                        key: *confirm_key,
                    }),
                    None => {
                        if warned.insert(format!("{name}:prompt")) {
                            warn!(queue = %name, prompt = %confirm_prompt.name, "auto-callback: the confirmation prompt is not loaded; nothing is dialled");
                        }
                        continue;
                    }
                },
            };
            let confirming_now = confirming.entry(name.clone()).or_default().clone();
            let calendar = settings
                .window
                .calendar()
                .and_then(|c| flows.set.calendar(c));
            if !settings.auto_allowed(now, calendar.as_deref()) {
                continue;
            }
            let room = calls
                .acd
                .ask(|reply| AcdInput::CallbackRoom {
                    queue: name.clone(),
                    reply,
                })
                .await
                .unwrap_or(0)
                .saturating_sub(confirming_now.load(Ordering::Relaxed));
            if room == 0 {
                continue;
            }
            let now_ms = unix_ms();
            let candidates = match calls
                .store
                .auto_callback_candidates(
                    name,
                    i64::from(settings.max_attempts),
                    now_ms,
                    i64::from(room) * 2,
                )
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    warn!(queue = %name, "auto-callback: reading the list: {e}");
                    continue;
                }
            };
            let retry = Duration::from_secs(settings.retry_delay_secs);
            let mut started = 0;
            for entry in candidates {
                if started == room {
                    break;
                }
                let entry = match calls
                    .store
                    .claim_callback_once(entry.id, &claimer, CLAIM_MS, unix_ms())
                    .await
                {
                    Ok(e) => e,
                    // Another node or an operator took it: the next one.
                    Err(_) => continue,
                };
                next_caller += 1;
                let caller = CallerId(next_caller);
                let (tx, rx) = mpsc::channel(64);
                let job = Job {
                    calls: calls.clone(),
                    trunk: trunk.clone(),
                    entry,
                    claimer: claimer.clone(),
                    caller,
                    queue: name.clone(),
                    rules: rules_for(&calls, Some(name)),
                    retry,
                };
                if let Some(confirmation) = customer_first.clone() {
                    started += 1;
                    confirming_now.fetch_add(1, Ordering::Relaxed);
                    info!(queue = %name, entry = job.entry.id, number = %job.entry.number, "auto-callback placed (customer first)");
                    tokio::spawn(job.run_customer_first(
                        tx,
                        rx,
                        confirmation,
                        confirming_now.clone(),
                    ));
                    continue;
                }
                let entry = &job.entry;
                // The clock the queue engine orders by: the customer's first call, as long
                // ago as it was.
                let age = Duration::from_millis(
                    u64::try_from(unix_ms().saturating_sub(entry.first_at_ms)).unwrap_or(0),
                );
                let since = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                let queued = calls
                    .acd
                    .ask(|reply| AcdInput::EnqueueCallback {
                        caller,
                        queue: name.clone(),
                        since,
                        events: tx.clone(),
                        reply,
                    })
                    .await
                    .unwrap_or(false);
                if !queued {
                    give_back(
                        &calls,
                        entry,
                        &claimer,
                        "the queue did not take the callback",
                    )
                    .await;
                    continue;
                }
                started += 1;
                info!(queue = %name, entry = entry.id, number = %entry.number, "auto-callback placed");
                tokio::spawn(job.run(tx, rx));
            }
        }
    }
}

async fn give_back(calls: &Calls, entry: &CallbackEntry, claimer: &str, why: &str) {
    if let Err(e) = calls
        .store
        .release_callback(entry.id, claimer, why, unix_ms())
        .await
    {
        warn!(
            entry = entry.id,
            "auto-callback: giving the entry back: {e}"
        );
    }
}

struct Job {
    calls: Arc<Calls>,
    trunk: Trunk,
    entry: CallbackEntry,
    claimer: String,
    caller: CallerId,
    queue: String,
    rules: OutcomeRules,
    retry: Duration,
}

/// What a customer-first callback plays, and the key that confirms.
#[derive(Clone)]
struct Confirmation {
    /// The prompt's name (checked to be loaded).
    prompt: String,
    key: char,
}

/// The operator leg the queue asked for.
struct Leg {
    handle: hotline_sip::CallHandle,
    operator: String,
    contact: hotline_sip::registrar::Binding,
    rang_at_ms: i64,
    ports: Ports,
}

impl Job {
    /// A new call id and its record, from the hotline's number to the customer.
    async fn start_record(&self) -> (String, CdrRef) {
        let call_id = format!("acb-{:016x}", rand::random::<u64>());
        let cdr = self
            .calls
            .cdr
            .start_call(CallStart {
                call_id: call_id.clone(),
                caller: self.trunk.caller_id.clone(),
                called: self.entry.number.clone(),
                started_at_ms: unix_ms(),
                flow: None,
                flow_version: None,
            })
            .await;
        (call_id, cdr)
    }

    async fn run(self, tx: mpsc::Sender<CallEvent>, mut events: mpsc::Receiver<CallEvent>) {
        let calls = &self.calls;
        let offer = outbound::first_offer();
        let Some((leg, answer)) = self.find_operator(&tx, &mut events, &offer).await else {
            calls
                .acd
                .send(AcdInput::Leave {
                    caller: self.caller,
                    reply: tokio::sync::oneshot::channel().0,
                })
                .await;
            give_back(
                calls,
                &self.entry,
                &self.claimer,
                "no operator took the automatic callback",
            )
            .await;
            return;
        };
        let (call_id, cdr) = self.start_record().await;
        let operator = leg.operator.clone();
        let placed = self
            .call_customer(tx, &mut events, leg, &answer, &call_id)
            .await;
        let reached = match placed {
            Ok(placed) => {
                let since = Instant::now();
                let outcome = crate::call::serve_placed(calls, placed, &mut events, cdr).await;
                // The session ended the operator's conversation in the queue engine.
                crate::call::end_record(calls, cdr, &call_id, outcome, unix_ms()).await;
                Reached::Connected(since.elapsed())
            }
            Err((reason, reached)) => {
                calls
                    .acd
                    .send(AcdInput::CallEnded {
                        caller: self.caller,
                    })
                    .await;
                outbound::end_cdr(calls, cdr, None, reason, Some(&operator)).await;
                reached
            }
        };
        self.finish(&call_id, reached, Some(&operator)).await;
    }

    /// Records how the attempt went on the entry.
    async fn finish(&self, call_id: &str, reached: Reached, operator: Option<&str>) {
        let calls = &self.calls;
        let (outcome, note, hide) = attempt_outcome(reached, self.rules.success_after);
        let hide_ms = if hide {
            millis(self.rules.hide_after_failure)
        } else {
            0
        };
        let note = match operator {
            Some(op) => format!("{note} (automatic, operator {op})"),
            None => format!("{note} (automatic)"),
        };
        match calls
            .store
            .finish_auto_callback(
                self.entry.id,
                &self.claimer,
                outcome,
                Some(&note),
                hide_ms,
                millis(self.retry),
                unix_ms(),
            )
            .await
        {
            Ok(e) => {
                super::attempts::attempt_recorded(&calls.notifier, &e, outcome, None).await;
                info!(%call_id, entry = e.id, outcome = outcome.as_str(), auto_attempts = e.auto_attempts, "auto-callback ended")
            }
            Err(e) => {
                warn!(%call_id, entry = self.entry.id, "auto-callback outcome NOT recorded: {e}")
            }
        }
    }

    /// Waits for the queue to ring an operator and for one to answer; `None` when nobody
    /// did in time or the queue gave the callback up.
    async fn find_operator(
        &self,
        tx: &mpsc::Sender<CallEvent>,
        events: &mut mpsc::Receiver<CallEvent>,
        offer: &Negotiated,
    ) -> Option<(Leg, Negotiated)> {
        let calls = &self.calls;
        let caller = self.caller;
        let mut leg: Option<Leg> = None;
        let deadline = tokio::time::sleep(WAIT_FOR_OPERATOR);
        tokio::pin!(deadline);
        loop {
            let ev = tokio::select! {
                _ = &mut deadline => {
                    if let Some(l) = leg.take() {
                        calls.sip.command(SipCommand::Hangup(l.handle)).await;
                    }
                    return None;
                }
                ev = events.recv() => ev?,
            };
            match ev {
                CallEvent::RingOperator(order) => {
                    let fail = |failure| AcdInput::RingFailed {
                        caller,
                        operator: order.operator.clone(),
                        failure,
                    };
                    let contact = order.contacts.iter().max_by_key(|b| b.expires_at);
                    let ports = calls.rtp_ports.bind();
                    let (Some(contact), Some(ports), None) = (contact, ports, leg.as_ref()) else {
                        calls.acd.send(fail(RingFailure::Unreachable)).await;
                        continue;
                    };
                    let handle = outbound::invite_operator(
                        calls,
                        contact,
                        &self.entry.number,
                        Some("Callback"),
                        offer,
                        &ports.0,
                        tx.clone(),
                        false,
                    )
                    .await;
                    match handle {
                        Some(handle) => {
                            leg = Some(Leg {
                                handle,
                                operator: order.operator.clone(),
                                contact: contact.clone(),
                                rang_at_ms: unix_ms(),
                                ports,
                            });
                        }
                        None => calls.acd.send(fail(RingFailure::Unreachable)).await,
                    }
                }
                CallEvent::CancelRing => {
                    if let Some(l) = leg.take() {
                        calls.sip.command(SipCommand::Hangup(l.handle)).await;
                    }
                }
                CallEvent::LegFailed { leg: h, status } => {
                    if let Some(l) = leg.take_if(|l| l.handle == h) {
                        let failure = hotline_core::call_session::ring_failure(status);
                        calls
                            .acd
                            .send(AcdInput::RingFailed {
                                caller,
                                operator: l.operator,
                                failure,
                            })
                            .await;
                    }
                }
                CallEvent::LegAnswered { leg: h, sdp } => {
                    let Some(l) = leg.take_if(|l| l.handle == h) else {
                        calls.sip.command(SipCommand::Hangup(h)).await;
                        continue;
                    };
                    let accepted = calls
                        .acd
                        .ask(|reply| AcdInput::RingAnswered {
                            caller,
                            operator: l.operator.clone(),
                            reply,
                        })
                        .await
                        .unwrap_or(false);
                    let answer = sdp
                        .as_deref()
                        .and_then(|s| hotline_sip::sdp::negotiate(s).ok());
                    match (accepted, answer) {
                        (true, Some(answer)) => return Some((l, answer)),
                        (accepted, _) => {
                            calls.sip.command(SipCommand::Hangup(h)).await;
                            if accepted {
                                calls.acd.send(AcdInput::CallEnded { caller }).await;
                                return None;
                            }
                        }
                    }
                }
                CallEvent::QueueStatus(hotline_ivr::QueueStatus::Unavailable) => {
                    if let Some(l) = leg.take() {
                        calls.sip.command(SipCommand::Hangup(l.handle)).await;
                    }
                    return None;
                }
                _ => {}
            }
        }
    }

    /// The operator is on the line: dial the customer; once they answer, the call to run.
    /// `Err`: why it ended before, and how far the attempt got.
    async fn call_customer(
        &self,
        tx: mpsc::Sender<CallEvent>,
        events: &mut mpsc::Receiver<CallEvent>,
        leg: Leg,
        operator_answer: &Negotiated,
        call_id: &str,
    ) -> Result<PlacedCall, (EndReason, Reached)> {
        let calls = &self.calls;
        let sip = &calls.sip;
        let Some(ports) = calls.rtp_ports.bind() else {
            sip.command(SipCommand::Hangup(leg.handle)).await;
            return Err((
                EndReason::Rejected,
                Reached::CustomerNotAnswered(NotAnswered::Broken),
            ));
        };
        let Some((b, sdp_session)) = outbound::invite_customer(
            calls,
            &self.trunk,
            &self.entry.number,
            &self.trunk.caller_id,
            operator_answer,
            &ports.0,
            tx.clone(),
        )
        .await
        else {
            sip.command(SipCommand::Hangup(leg.handle)).await;
            return Err((
                EndReason::TransportError,
                Reached::CustomerNotAnswered(NotAnswered::Broken),
            ));
        };
        info!(%call_id, operator = %leg.operator, number = %self.entry.number, "auto-callback: dialling the customer");
        let answer = match outbound::wait_answer(events, b).await {
            Ok(n) => n,
            Err(why) => {
                sip.command(SipCommand::Hangup(leg.handle)).await;
                sip.command(SipCommand::Hangup(b)).await;
                return Err((EndReason::Rejected, Reached::CustomerNotAnswered(why)));
            }
        };
        let operator_leg = outbound::answered_leg(
            calls,
            &leg.operator,
            &leg.contact,
            &leg.ports.0,
            operator_answer,
            leg.rang_at_ms,
        );
        Ok(PlacedCall {
            setup: self.customer_dialog(b, call_id, tx),
            key: self.caller,
            ports,
            answer,
            sdp_session,
            queue: Some(self.queue.clone()),
            start: PlacedStart::Operator {
                leg: operator_leg,
                outbound: false,
            },
            operator: Some((leg.handle, leg.ports)),
            until_queued: None,
        })
    }

    /// The customer's dialog, for the call driver.
    fn customer_dialog(
        &self,
        handle: hotline_sip::CallHandle,
        call_id: &str,
        tx: mpsc::Sender<CallEvent>,
    ) -> crate::actors::CallSetup {
        outbound::customer_dialog(
            handle,
            call_id,
            &self.entry.number,
            &self.trunk.caller_id,
            &self.trunk,
            tx,
        )
    }
}

impl Job {
    /// Customer-first: dial the customer, play the confirmation prompt, and only after the
    /// key enter the queue for an operator.
    async fn run_customer_first(
        self,
        tx: mpsc::Sender<CallEvent>,
        mut events: mpsc::Receiver<CallEvent>,
        confirmation: Confirmation,
        confirming: Arc<AtomicU32>,
    ) {
        // Leaves the count of callbacks being confirmed however this ends.
        struct Confirming(Arc<AtomicU32>);
        impl Drop for Confirming {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let confirming = Confirming(confirming);
        let calls = &self.calls;
        let sip = &calls.sip;
        let Some(ports) = calls.rtp_ports.bind() else {
            give_back(calls, &self.entry, &self.claimer, "no free RTP port").await;
            return;
        };
        let (call_id, cdr) = self.start_record().await;
        let end = |answered, reason| outbound::end_cdr(calls, cdr, answered, reason, None);
        let b = outbound::invite_customer(
            calls,
            &self.trunk,
            &self.entry.number,
            &self.trunk.caller_id,
            &outbound::first_offer(),
            &ports.0,
            tx.clone(),
        )
        .await;
        let Some((b, sdp_session)) = b else {
            end(None, EndReason::TransportError).await;
            self.finish(
                &call_id,
                Reached::CustomerNotAnswered(NotAnswered::Broken),
                None,
            )
            .await;
            return;
        };
        info!(%call_id, number = %self.entry.number, "auto-callback: dialling the customer first");
        let answer = match outbound::wait_answer(&mut events, b).await {
            Ok(n) => n,
            Err(why) => {
                sip.command(SipCommand::Hangup(b)).await;
                end(None, EndReason::Rejected).await;
                self.finish(&call_id, Reached::CustomerNotAnswered(why), None)
                    .await;
                return;
            }
        };
        info!(%call_id, number = %self.entry.number, "auto-callback: the customer answered; asking for the key");
        // The queue engine orders the callback by the customer's first call.
        let age = Duration::from_millis(
            u64::try_from(unix_ms().saturating_sub(self.entry.first_at_ms)).unwrap_or(0),
        );
        let since = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        let flow = hotline_core::call_session::confirmation_flow(
            &confirmation.prompt,
            confirmation.key,
            &self.queue,
            WAIT_FOR_OPERATOR,
        );
        let placed = PlacedCall {
            setup: self.customer_dialog(b, &call_id, tx),
            key: self.caller,
            ports,
            answer,
            sdp_session,
            queue: None,
            start: PlacedStart::Flow {
                flow: Arc::new(flow),
                called: self.entry.number.clone(),
                callback_since: since,
            },
            operator: None,
            // In the queue, it counts there, not as being confirmed.
            until_queued: Some(Box::new(confirming)),
        };
        let outcome = crate::call::serve_placed(calls, placed, &mut events, cdr).await;
        let operator = outcome.operator.clone();
        let reached = match (&operator, &outcome.service.queue) {
            (Some(_), _) => Reached::Connected(talk_time(&outcome.service.legs)),
            (None, Some(_)) => Reached::NoOperator,
            (None, None) => Reached::NotConfirmed,
        };
        crate::call::end_record(calls, cdr, &call_id, outcome, unix_ms()).await;
        self.finish(&call_id, reached, operator.as_deref()).await;
    }
}

/// How long the customer talked with operators, over every leg that answered.
fn talk_time(legs: &[hotline_core::cdr::CallLeg]) -> Duration {
    let ms: i64 = legs
        .iter()
        .filter_map(|l| l.answered_at_ms.map(|a| l.ended_at_ms.saturating_sub(a)))
        .sum();
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_claimer_is_new_at_every_start() {
        // Host name and PID repeat across restarts (PID 1 in a container): the name must not.
        let a = super::claimer_name();
        let b = super::claimer_name();
        assert_ne!(a, b);
        assert!(a.starts_with("Automatic callback ("), "{a}");
    }
}
