//! Drives the sans-IO queue engine (`hotline_core::acd::Acd`): one task owns it; call
//! tasks, the SIP task (phone registrations) and the HTTP API talk to it over a channel,
//! and its actions go back to the call tasks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hotline_core::acd::{
    Acd, AcdAction, CallbackPolicy, CallerId, CallerKind, OperatorConfig, QueueConfig,
};
use hotline_ivr::QueueDef;
use hotline_sip::registrar::Binding;
use metrics::gauge;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::actors::{AcdHandle, AcdInput, CallEvent, OperatorAccount, RingOrder};
use crate::metrics::{QUEUE_LONGEST_WAIT, QUEUE_OPERATORS, QUEUE_WAITING};

pub fn channel() -> (AcdHandle, mpsc::Receiver<AcdInput>) {
    let (tx, rx) = mpsc::channel(4096);
    (AcdHandle(tx), rx)
}

struct State {
    acd: Acd,
    callers: HashMap<CallerId, mpsc::Sender<CallEvent>>,
    operators: HashMap<String, OperatorAccount>,
    /// SIP user → current bindings, from the registrar.
    bindings: HashMap<String, Vec<Binding>>,
    /// Operator → their console tab, when it is their phone (it takes the SIP phone's place).
    browsers: HashMap<String, Binding>,
    queues: Vec<String>,
    /// Queue members without an operator account, as last reported.
    unknown_members: Vec<String>,
}

pub async fn run(mut inputs: mpsc::Receiver<AcdInput>) {
    let mut st = State {
        acd: Acd::new(),
        callers: HashMap::new(),
        operators: HashMap::new(),
        bindings: HashMap::new(),
        browsers: HashMap::new(),
        queues: Vec::new(),
        unknown_members: Vec::new(),
    };
    let far = Duration::from_secs(3600);
    loop {
        let deadline = st
            .acd
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + far);
        tokio::select! {
            input = inputs.recv() => {
                let Some(input) = input else { break };
                st.handle(Instant::now(), input);
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                st.acd.handle_timeout(Instant::now());
            }
        }
        st.dispatch();
        st.export_figures(Instant::now());
    }
}

impl State {
    fn handle(&mut self, now: Instant, input: AcdInput) {
        match input {
            AcdInput::Enqueue {
                caller,
                queue,
                priority,
                skill,
                events,
            } => {
                self.callers.insert(caller, events);
                // Errors come back as an Unavailable action too.
                if let Err(e) = self.acd.enqueue_needing(
                    now,
                    caller,
                    &queue,
                    priority,
                    CallerKind::Inbound,
                    skill.as_deref(),
                ) {
                    info!(?caller, %queue, "caller not queued: {e}");
                }
            }
            AcdInput::EnqueueCallback {
                caller,
                queue,
                since,
                events,
                reply,
            } => {
                self.callers.insert(caller, events);
                let queued = match self.acd.enqueue_callback(now, caller, &queue, 0, since) {
                    Ok(_) => true,
                    Err(e) => {
                        info!(?caller, %queue, "callback not queued: {e}");
                        self.callers.remove(&caller);
                        false
                    }
                };
                let _ = reply.send(queued);
            }
            AcdInput::ExpectedWait {
                queue,
                position,
                reply,
            } => {
                let waiting = self.acd.figures(now, &queue).map_or(0, |f| f.waiting);
                let _ = reply.send(
                    self.acd
                        .expected_wait(&queue, position.saturating_add(waiting)),
                );
            }
            AcdInput::CallbackRoom { queue, reply } => {
                let _ = reply.send(self.acd.callback_room(&queue));
            }
            AcdInput::EnqueueDirect {
                caller,
                queue,
                priority,
                skill,
                operator,
                events,
            } => {
                self.callers.insert(caller, events);
                // An operator without an account is never available: the caller simply
                // waits in the queue. Errors come back as an Unavailable action too.
                if let Err(e) = self.acd.enqueue_direct(
                    now,
                    caller,
                    &queue,
                    priority,
                    skill.as_deref(),
                    &operator,
                ) {
                    info!(?caller, %queue, %operator, "direct caller not queued: {e}");
                }
            }
            AcdInput::EnqueueTransferred {
                caller,
                queue,
                priority,
                since,
                events,
            } => {
                self.callers.insert(caller, events);
                // Errors come back as an Unavailable action too.
                if let Err(e) = self
                    .acd
                    .enqueue_transferred(now, caller, &queue, priority, since)
                {
                    info!(?caller, %queue, "transferred caller not queued: {e}");
                }
            }
            AcdInput::Leave { caller, reply } => {
                let left = self.acd.leave(now, caller);
                self.callers.remove(&caller);
                let _ = reply.send(left);
            }
            AcdInput::RingAnswered {
                caller,
                operator,
                reply,
            } => {
                let ok = self.acd.ring_answered(now, caller, &operator).is_ok();
                let _ = reply.send(ok);
            }
            AcdInput::RingFailed {
                caller,
                operator,
                failure,
            } => {
                if let Err(e) = self.acd.ring_failed(now, caller, &operator, failure) {
                    debug!(?caller, %operator, "ring failure for a ring already over: {e}");
                }
            }
            AcdInput::CallEnded { caller } => {
                self.acd.call_ended(now, caller);
                self.callers.remove(&caller);
            }
            AcdInput::Rekey { from, to, events } => {
                if self.acd.rekey(from, to) {
                    self.callers.remove(&from);
                    self.callers.insert(to, events);
                }
            }
            AcdInput::Registration(r) => {
                if r.contacts.is_empty() {
                    self.bindings.remove(&r.user);
                } else {
                    self.bindings.insert(r.user.clone(), r.contacts);
                }
                if let Some(op) = self.operators.values().find(|o| o.sip_user == r.user) {
                    let name = op.name.clone();
                    let reachable = !self.contacts(&name).is_empty();
                    info!(operator = %name, reachable, "phone registration changed");
                    self.acd.set_reachable(now, &name, reachable);
                }
            }
            AcdInput::EndWrapUp { operator, reply } => {
                let ended = self.acd.end_wrap_up(now, &operator);
                if ended {
                    info!(%operator, "wrap-up ended early");
                }
                let _ = reply.send(ended);
            }
            AcdInput::BrowserPhone { operator, binding } => {
                match binding {
                    Some(b) => self.browsers.insert(operator.clone(), b),
                    None => self.browsers.remove(&operator),
                };
                if self.operators.contains_key(&operator) {
                    let reachable = !self.contacts(&operator).is_empty();
                    info!(%operator, reachable, "browser phone changed");
                    self.acd.set_reachable(now, &operator, reachable);
                }
            }
            AcdInput::Configure { queues, operators } => self.configure(now, queues, operators),
            AcdInput::SetState {
                operator,
                state,
                reply,
            } => {
                let known = self.operators.contains_key(&operator);
                if known {
                    info!(%operator, ?state, "operator state");
                    self.acd.set_state(now, &operator, state);
                }
                let _ = reply.send(if known {
                    Ok(())
                } else {
                    Err(format!("no operator named {operator:?}"))
                });
            }
            AcdInput::Figures { reply } => {
                let figures = self
                    .queues
                    .iter()
                    .filter_map(|q| self.acd.figures(now, q).map(|f| (q.clone(), f)))
                    .collect();
                let _ = reply.send(figures);
            }
            AcdInput::Contacts { operator, reply } => {
                let contacts = self
                    .operators
                    .contains_key(&operator)
                    .then(|| self.contacts(&operator));
                let _ = reply.send(contacts);
            }
            AcdInput::OutboundStarted {
                operator,
                call,
                queue,
                reply,
            } => {
                let started = self
                    .acd
                    .outbound_started(now, &operator, call, queue.as_deref())
                    .map_err(|e| e.to_string());
                let _ = reply.send(started);
            }
            AcdInput::OutboundCancelled { operator, call } => {
                self.acd.outbound_cancelled(now, &operator, call);
            }
            AcdInput::OutboundEnded { operator, call } => {
                self.acd.outbound_ended(now, &operator, call);
            }
            AcdInput::SetVisualSessions { operator, open } => {
                if self.operators.contains_key(&operator) {
                    self.acd.set_visual_sessions(now, &operator, open);
                }
            }
            AcdInput::SetChats { operator, chats } => {
                if self.operators.contains_key(&operator) {
                    self.acd.set_chats(now, &operator, chats);
                }
            }
            AcdInput::FreeMember {
                queue,
                except,
                reply,
            } => {
                let _ = reply.send(self.acd.free_member(&queue, &except));
            }
            AcdInput::Operator { name, reply } => {
                let _ = reply.send(self.acd.operator_view(&name));
            }
            AcdInput::Operators { reply } => {
                let mut names: Vec<&String> = self.operators.keys().collect();
                names.sort();
                let views = names
                    .into_iter()
                    .filter_map(|n| self.acd.operator_view(n).map(|v| (n.clone(), v)))
                    .collect();
                let _ = reply.send(views);
            }
        }
    }

    /// One line when a queue member without an account appears: a typo in queues.toml
    /// warns; a fresh install with no operators yet only informs.
    fn report_unknown_members(&mut self, queues: &[QueueDef]) {
        let mut unknown: Vec<String> = queues
            .iter()
            .flat_map(|q| q.members.iter().map(move |m| (m, &q.name)))
            .filter(|(m, _)| !self.operators.contains_key(*m))
            .map(|(m, q)| format!("{m} ({q})"))
            .collect();
        unknown.sort();
        if unknown == self.unknown_members {
            return;
        }
        // Only news is worth a line: a set that merely shrank (operators being added one
        // by one) says nothing new.
        let news = unknown.iter().any(|m| !self.unknown_members.contains(m));
        if news {
            let list = unknown.join(", ");
            if self.operators.is_empty() {
                info!(members = %list, "no operator accounts yet: queue members get calls once added (hotline operator add)");
            } else {
                warn!(members = %list, "queue members without an operator account (hotline operator add)");
            }
        }
        self.unknown_members = unknown;
    }

    fn configure(&mut self, now: Instant, queues: Vec<QueueDef>, operators: Vec<OperatorAccount>) {
        for op in &operators {
            let config = OperatorConfig {
                chat_capacity: op.chat_capacity,
            };
            if let Err(e) = self.acd.set_operator(&op.name, config) {
                warn!(operator = %op.name, "operator not configured: {e}");
            }
        }
        self.operators = operators.into_iter().map(|o| (o.name.clone(), o)).collect();
        // A phone may have registered before the operator was known.
        let known: Vec<String> = self.operators.keys().cloned().collect();
        for name in known {
            let reachable = !self.contacts(&name).is_empty();
            self.acd.set_reachable(now, &name, reachable);
        }
        let names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
        for old in &self.queues {
            if !names.contains(old) {
                self.acd.remove_queue(now, old);
            }
        }
        self.report_unknown_members(&queues);
        for q in queues {
            let mut config = QueueConfig::new(q.name.clone());
            for (i, member) in q.members.iter().enumerate() {
                let skills = q
                    .skills
                    .iter()
                    .filter(|(_, who)| who.contains(member))
                    .map(|(skill, _)| skill.clone());
                config = config.with_skilled_member(
                    member.clone(),
                    u8::try_from(i).unwrap_or(u8::MAX),
                    skills,
                );
            }
            config.ring_timeout = Duration::from_secs(q.ring_timeout_secs);
            config.max_misses_before_pause = q.max_misses;
            config.wrap_up = Duration::from_secs(q.wrap_up_secs);
            config.callback_policy = match q.callbacks.policy {
                hotline_ivr::CallbackPolicy::CallbacksFirst => CallbackPolicy::CallbacksFirst,
                hotline_ivr::CallbackPolicy::Interleaved => CallbackPolicy::Interleaved,
                hotline_ivr::CallbackPolicy::LiveFirst => CallbackPolicy::LiveFirst,
            };
            config.callback_max_share = q.callbacks.max_share_percent;
            self.acd.set_queue(now, config);
        }
        self.queues = names;
    }

    /// Where the operator's phone is: their console tab when it is their phone, else
    /// their SIP phone's bindings (none: not reachable).
    fn contacts(&self, operator: &str) -> Vec<Binding> {
        if let Some(b) = self.browsers.get(operator) {
            return vec![b.clone()];
        }
        self.operators
            .get(operator)
            .and_then(|o| self.bindings.get(&o.sip_user))
            .cloned()
            .unwrap_or_default()
    }

    fn dispatch(&mut self) {
        while let Some(action) = self.acd.poll_action() {
            let (caller, event) = match action {
                AcdAction::Ring {
                    caller,
                    operator,
                    queue,
                } => {
                    let contacts = self.contacts(&operator);
                    debug!(?caller, %operator, %queue, "ring");
                    (
                        caller,
                        CallEvent::RingOperator(RingOrder { operator, contacts }),
                    )
                }
                AcdAction::CancelRing { caller, .. } => (caller, CallEvent::CancelRing),
                AcdAction::Waiting {
                    caller,
                    position,
                    expected_wait,
                } => (
                    caller,
                    CallEvent::QueueStatus(hotline_ivr::QueueStatus::Waiting {
                        position,
                        expected_wait,
                    }),
                ),
                AcdAction::Unavailable { caller } => (
                    caller,
                    CallEvent::QueueStatus(hotline_ivr::QueueStatus::Unavailable),
                ),
                // The call task learnt it from the answered leg.
                AcdAction::Connected { .. } => continue,
                AcdAction::OperatorPaused { operator, reason } => {
                    warn!(%operator, ?reason, "operator paused automatically");
                    continue;
                }
            };
            if let Some(tx) = self.callers.get(&caller)
                && tx.try_send(event).is_err()
            {
                debug!(?caller, "call task gone or busy; queue action dropped");
            }
        }
    }

    fn export_figures(&self, now: Instant) {
        for q in &self.queues {
            if let Some(f) = self.acd.figures(now, q) {
                let q = q.clone();
                gauge!(QUEUE_WAITING, "queue" => q.clone()).set(f64::from(f.waiting));
                gauge!(QUEUE_LONGEST_WAIT, "queue" => q.clone()).set(f.longest_wait.as_secs_f64());
                gauge!(QUEUE_OPERATORS, "queue" => q.clone(), "state" => "online")
                    .set(f64::from(f.online));
                gauge!(QUEUE_OPERATORS, "queue" => q.clone(), "state" => "busy")
                    .set(f64::from(f.busy));
                gauge!(QUEUE_OPERATORS, "queue" => q.clone(), "state" => "paused")
                    .set(f64::from(f.paused));
                gauge!(QUEUE_OPERATORS, "queue" => q, "state" => "away").set(f64::from(f.away));
            }
        }
    }
}
