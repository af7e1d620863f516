//! What the web console asks of the telephony side: operator states, queue figures and
//! new operator accounts, answered from the queue task and the store.

use hotline_core::call_session::ConsultState;
use std::sync::Arc;

use hotline_core::acd::OperatorState;
use hotline_ivr::TransferTarget;
use hotline_web::telephony::{
    BoxFuture, CallControl, MonitorAction, OperatorForm, PageLink, PhoneFromPage, Supervisor,
    Telephony, TransferTo,
};

use crate::actors::AcdInput;
use crate::actors::{CallEvent, ConsoleControl};
use crate::api::status_name;
use crate::context::{CallerHistory, Calls};

pub struct ConsoleLink {
    pub calls: Arc<Calls>,
    pub realm: String,
    /// Outbound calls (click-to-call, callbacks) go through it.
    pub trunk: Option<crate::config::Trunk>,
    /// The operators' console tabs as their phones.
    pub phones: Arc<crate::browser_phone::BrowserPhones>,
}

/// Previous calls the screen pop lists.
const PREVIOUS_CALLS: usize = 10;
/// Callback entries, tasks and chats it lists at most, each.
const HISTORY_ITEMS: i64 = 10;

/// Task parameters that name the customer.
const NAME_PARAMS: [&str; 4] = ["name", "customer", "customer_name", "contact"];

impl ConsoleLink {
    /// A queue's `supervisors` say who may monitor and record its calls; a queue that
    /// names none, every supervisor; admins always may.
    fn may_supervise(&self, who: &Supervisor<'_>, call_id: &str) -> Result<(), String> {
        let flows = self.calls.flows();
        let queue = self.calls.live.queue_of(call_id);
        let def = queue.as_ref().and_then(|q| flows.set.queues().get(q));
        if let (Some(q), false) = (def, who.admin)
            && !q.supervisors.is_empty()
            && !q.supervisors.iter().any(|s| s == who.user)
        {
            return Err(format!("You do not supervise the queue {}.", q.name));
        }
        Ok(())
    }

    /// The screen pop for the operator's call (ringing or connected): what the caller did
    /// in the flow (`so_far`), a VIP mark, a name if a task or chat knows one, and the
    /// number's history (`history`).
    async fn add_screen_pop(
        &self,
        shown: &mut serde_json::Value,
        operator: &str,
        call_id: &str,
        caller: &str,
    ) {
        let so_far = self.calls.caller_so_far(call_id);
        let history = self.caller_history(call_id, caller).await;
        let flows = self.calls.flows_now();
        // The operator sees the tasks of the queues they are in, as on their task list.
        let my_queues: Vec<&str> = flows
            .set
            .queues()
            .iter()
            .filter(|(_, q)| q.members.iter().any(|m| m == operator))
            .map(|(name, _)| name.as_str())
            .collect();
        let queues = hotline_core::tasks::Queues::Only(&my_queues);
        let tasks: Vec<_> = history
            .tasks
            .iter()
            .filter(|t| t.visible_to(operator, queues))
            .take(HISTORY_ITEMS as usize)
            .collect();
        let name = tasks
            .iter()
            .flat_map(|t| t.params.iter())
            .find(|p| NAME_PARAMS.iter().any(|n| p.key.eq_ignore_ascii_case(n)))
            .map(|p| p.value.clone())
            .or_else(|| {
                history
                    .chats
                    .iter()
                    .find_map(|c| c.visitor_name.clone().filter(|n| !n.trim().is_empty()))
            });
        let Some(fields) = shown.as_object_mut() else {
            return;
        };
        fields.insert("name".into(), serde_json::json!(name));
        fields.insert(
            "vip".into(),
            serde_json::json!(so_far.as_ref().is_some_and(|s| s.vip)),
        );
        fields.insert("so_far".into(), serde_json::json!(so_far));
        fields.insert(
            "history".into(),
            serde_json::json!({
                "calls": history.calls.iter().map(|c| serde_json::json!({
                    "started_at_ms": c.started_at_ms,
                    "answered": c.answered_at_ms.is_some() && c.operator.is_some(),
                    "end_reason": c.end_reason,
                    "operator": c.operator,
                    "queue": c.service.queue,
                    "wrapup_category": c.wrapup_category,
                })).collect::<Vec<_>>(),
                "callbacks": history.callbacks.iter().map(|e| serde_json::json!({
                    "id": e.id,
                    "state": e.state.as_str(),
                    "queue": e.queue,
                    "count": e.count,
                    "last_at_ms": e.last_at_ms,
                    "promised_at_ms": e.promised_at_ms,
                    "attempts": e.attempts,
                    "last_outcome": e.last_outcome.map(|o| o.as_str()),
                })).collect::<Vec<_>>(),
                "tasks": tasks.iter().map(|t| serde_json::json!({
                    "id": t.id,
                    "title": t.title,
                    "due_at_ms": t.due_at_ms,
                    "note": t.note,
                })).collect::<Vec<_>>(),
                "chats": history.chats.iter().map(|c| serde_json::json!({
                    "id": c.id,
                    "topic": c.topic,
                    "queue": c.queue,
                    "state": c.state,
                    "created_at_ms": c.created_at_ms,
                    "operators": c.operators,
                })).collect::<Vec<_>>(),
                "incomplete": history.incomplete,
            }),
        );
    }

    /// What the store knows of the caller: read on the call's first panel update and kept
    /// while the call lasts, so the once-a-second updates don't query the store.
    async fn caller_history(&self, call_id: &str, caller: &str) -> Arc<CallerHistory> {
        if let Some(known) = self.calls.caller_history(call_id) {
            return known;
        }
        let mut history = CallerHistory::default();
        if hotline_core::callbacks::is_anonymous(caller) {
            let history = Arc::new(history);
            self.calls.keep_caller_history(call_id, history.clone());
            return history;
        }
        let store = &self.calls.store;
        let mut failed = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(%call_id, "screen pop: {what} not read: {e}");
            history.incomplete = true;
        };
        // One more than shown: this call's own record is among them.
        let calls = match store
            .calls_from_number(caller, PREVIOUS_CALLS as i64 + 1)
            .await
        {
            Ok(calls) => calls,
            Err(e) => {
                failed("previous calls", &e);
                Vec::new()
            }
        };
        let callbacks = store
            .callback_entries_for_number(caller, HISTORY_ITEMS)
            .await
            .unwrap_or_else(|e| {
                failed("callback entries", &e);
                Vec::new()
            });
        let tasks = store
            .open_tasks_for_number(caller, HISTORY_ITEMS * 5)
            .await
            .unwrap_or_else(|e| {
                failed("tasks", &e);
                Vec::new()
            });
        let chats = store
            .chats_for_phone(caller, HISTORY_ITEMS)
            .await
            .unwrap_or_else(|e| {
                failed("chats", &e);
                Vec::new()
            });
        history.calls = calls
            .into_iter()
            .filter(|c| c.call_id != call_id)
            .take(PREVIOUS_CALLS)
            .collect();
        history.callbacks = callbacks;
        history.tasks = tasks;
        history.chats = chats;
        let history = Arc::new(history);
        self.calls.keep_caller_history(call_id, history.clone());
        history
    }
}

impl Telephony for ConsoleLink {
    fn set_operator_state<'a>(
        &'a self,
        operator: &'a str,
        state: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let Some(state) = OperatorState::parse(state) else {
                return Err(format!("unknown state {state:?}"));
            };
            crate::api::set_operator_state(&self.calls, operator, state).await
        })
    }

    fn operator_status<'a>(&'a self, operator: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let views = self
                .calls
                .acd
                .ask(|reply| AcdInput::Operators { reply })
                .await?;
            views
                .into_iter()
                .find(|(name, _)| name == operator)
                .map(|(_, v)| crate::api::status_name(v.state).to_string())
        })
    }

    fn queue_figures(&self) -> BoxFuture<'_, Option<serde_json::Value>> {
        Box::pin(async move {
            let figures = crate::api::figures_json(&self.calls.acd).await?;
            serde_json::to_value(figures).ok()
        })
    }

    fn add_operator<'a>(&'a self, form: &'a OperatorForm) -> BoxFuture<'a, Result<i64, String>> {
        Box::pin(async move {
            let id = crate::accounts::create_operator(
                &self.calls.store,
                &crate::accounts::NewOperatorAccount {
                    realm: &self.realm,
                    name: &form.name,
                    sip_user: &form.sip_user,
                    display_name: &form.display_name,
                    chat_capacity: form.chat_capacity.unwrap_or(3),
                    sip_digest: Default::default(),
                    password: &form.sip_password,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            self.calls.operators_changed.notify_one();
            Ok(id)
        })
    }

    fn call_customer<'a>(
        &'a self,
        operator: &'a str,
        number: &'a str,
        callback: Option<i64>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            crate::click_to_call::start(
                self.calls.clone(),
                self.trunk.clone(),
                crate::click_to_call::Order {
                    operator: operator.to_string(),
                    to: number.to_string(),
                    callback,
                },
            )
            .await
            .map_err(|e| e.to_string())
        })
    }

    fn check_dialable(&self, number: &str) -> Result<String, String> {
        // Without a trunk nothing is dialled at all; the call attempt says so.
        match &self.trunk {
            Some(trunk) => trunk.dialplan.check(number).map_err(|e| e.to_string()),
            None => Ok(number.to_string()),
        }
    }

    fn queue_names(&self) -> Vec<(String, String)> {
        self.calls
            .flows_now()
            .set
            .queues()
            .iter()
            .map(|(name, q)| (name.clone(), q.display_name.clone()))
            .collect()
    }

    fn queue_targets(&self) -> std::collections::BTreeMap<String, i64> {
        self.calls
            .flows_now()
            .set
            .queues()
            .iter()
            .filter_map(|(name, q)| {
                Some((name.clone(), i64::try_from(q.service_level_secs?).ok()?))
            })
            .collect()
    }

    fn queue_members(&self, queue: &str) -> Vec<String> {
        self.calls
            .flows_now()
            .set
            .queues()
            .get(queue)
            .map(|q| q.members.clone())
            .unwrap_or_default()
    }

    fn set_chat_load<'a>(&'a self, operator: &'a str, chats: i64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let chats = u8::try_from(chats.max(0)).unwrap_or(u8::MAX);
            self.calls
                .acd
                .send(AcdInput::SetChats {
                    operator: operator.to_string(),
                    chats,
                })
                .await;
        })
    }

    fn set_visual_load<'a>(&'a self, operator: &'a str, open: u8) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.calls
                .acd
                .send(AcdInput::SetVisualSessions {
                    operator: operator.to_string(),
                    open,
                })
                .await;
        })
    }

    fn operator_call<'a>(&'a self, operator: &'a str) -> BoxFuture<'a, Option<serde_json::Value>> {
        Box::pin(async move {
            let Some(call) = self.calls.operator_call(operator) else {
                // Not in a call: maybe one rings their phone (the screen pop).
                let ringing = self.calls.ringing_call(operator)?;
                let mut shown = serde_json::json!({
                    // Not `call_id`: a call that only rang is not the operator's to wrap up.
                    "ringing_call_id": ringing.call_id,
                    "ringing": true,
                    "caller": ringing.caller,
                    "since_ms": ringing.since_ms,
                });
                self.add_screen_pop(&mut shown, operator, &ringing.call_id, &ringing.caller)
                    .await;
                return Some(shown);
            };
            // Where the caller could go: the other operators with their state, the queues
            // with their waiting callers (as seed 004's transfer dialog shows them).
            let operators = self
                .calls
                .acd
                .ask(|reply| AcdInput::Operators { reply })
                .await
                .unwrap_or_default();
            let figures = crate::api::figures_json(&self.calls.acd)
                .await
                .unwrap_or_default();
            let flows = self.calls.flows_now();
            let mut targets: Vec<serde_json::Value> = operators
                .iter()
                .filter(|(name, _)| name != operator)
                .map(|(name, v)| {
                    serde_json::json!({
                        "value": format!("operator:{name}"),
                        "label": format!("{name} ({})", status_name(v.state)),
                    })
                })
                .collect();
            targets.extend(flows.set.queues().iter().map(|(name, q)| {
                let waiting = figures
                    .iter()
                    .find(|f| f.queue == *name)
                    .map_or(0, |f| f.waiting);
                serde_json::json!({
                    "value": format!("queue:{name}"),
                    "label": format!("{} queue ({waiting} waiting)", q.display_name),
                })
            }));
            let mut shown = serde_json::json!({
                "call_id": call.call_id,
                "caller": call.caller,
                "queue": call.queue,
                "since_ms": call.since_ms,
                "held": call.held,
                "record": call.record.name(),
                "recording": call.recording,
                "note": call.note.as_ref().map(|(_, n)| n),
                "note_from": call.note.as_ref().map(|(by, _)| by),
                "consult": call.consult.as_ref().map(|c| match c {
                    ConsultState::Ringing { with } => serde_json::json!({ "with": with, "talking": false }),
                    ConsultState::Talking { with } => serde_json::json!({ "with": with, "talking": true }),
                    ConsultState::Ended { message } => serde_json::json!({ "ended": message }),
                }),
                "targets": targets,
            });
            // The visual sessions invited from this call (PRODUCT V4).
            let visual = match self
                .calls
                .store
                .visual_sessions_of_call(&call.call_id)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(call_id = %call.call_id, "reading the call's visual sessions: {e}");
                    Vec::new()
                }
            };
            shown["visual_sessions"] = visual
                .into_iter()
                .map(|(id, case, state)| serde_json::json!({ "id": id, "case_number": case, "state": state }))
                .collect();
            self.add_screen_pop(&mut shown, operator, &call.call_id, &call.caller)
                .await;
            Some(shown)
        })
    }

    fn call_control<'a>(
        &'a self,
        operator: &'a str,
        control: CallControl,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let call = self
                .calls
                .operator_call(operator)
                .ok_or("You are not in a call.")?;
            let (reply, answer) = tokio::sync::oneshot::channel();
            let control = match control {
                CallControl::Hold(held) => ConsoleControl::Hold { held, reply },
                CallControl::Transfer { to, note, consult } => {
                    let to = match to {
                        TransferTo::Operator(o) => TransferTarget::Operator(o),
                        TransferTo::Queue(q) => TransferTarget::Queue(q),
                        TransferTo::Number(n) => TransferTarget::External(n),
                    };
                    if consult {
                        ConsoleControl::Consult { to, note, reply }
                    } else {
                        ConsoleControl::Transfer { to, note, reply }
                    }
                }
                CallControl::EndConsult(complete) => ConsoleControl::EndConsult { complete, reply },
                CallControl::Hangup => ConsoleControl::Hangup { reply },
                CallControl::Record(on) => {
                    if call.record != hotline_ivr::RecordMode::OnDemand {
                        return Err("This call's queue does not record on demand.".to_string());
                    }
                    ConsoleControl::Record {
                        on,
                        by: operator.to_string(),
                        reply,
                    }
                }
            };
            call.control
                .send(CallEvent::Console(control))
                .await
                .map_err(|_| "The call has just ended.".to_string())?;
            answer
                .await
                .map_err(|_| "The call has just ended.".to_string())?
        })
    }

    fn end_wrap_up<'a>(&'a self, operator: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let operator = operator.to_string();
            match self
                .calls
                .acd
                .ask(|reply| AcdInput::EndWrapUp { operator, reply })
                .await
            {
                Some(true) => Ok(()),
                Some(false) => Err("You are not in wrap-up.".to_string()),
                None => Err("The queues do not answer; try again.".to_string()),
            }
        })
    }

    fn callback_hide_ms(&self, queue: Option<&str>) -> i64 {
        let rules = crate::callbacks::attempts::rules_for(&self.calls, queue);
        hotline_core::time::millis(rules.hide_after_failure)
    }

    fn phone_message<'a>(
        &'a self,
        operator: &'a str,
        page: &'a PageLink,
        message: PhoneFromPage,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.phones.message(operator, page, message))
    }

    fn page_closed<'a>(&'a self, operator: &'a str, page_id: u64) -> BoxFuture<'a, ()> {
        Box::pin(self.phones.page_closed(operator, page_id))
    }

    fn monitor_call<'a>(
        &'a self,
        who: Supervisor<'a>,
        call_id: &'a str,
        action: MonitorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        use hotline_core::call_session::{MonitorMode, MonitorRequest};
        Box::pin(async move {
            let gone = || "That call has ended.".to_string();
            let control = self.calls.live.control(call_id).ok_or_else(gone)?;
            self.may_supervise(&who, call_id)?;
            let flows = self.calls.flows();
            let queue = self.calls.live.queue_of(call_id);
            let def = queue.as_ref().and_then(|q| flows.set.queues().get(q));
            let beep = def.is_some_and(|q| q.monitor_beep);
            let mode = |mode| MonitorRequest::Mode { mode, beep };
            let request = match action {
                MonitorAction::Listen => mode(MonitorMode::Listen),
                MonitorAction::Whisper => mode(MonitorMode::Whisper),
                MonitorAction::Barge => mode(MonitorMode::Barge),
                MonitorAction::TakeOver => MonitorRequest::TakeOver,
                MonitorAction::Stop => MonitorRequest::Stop,
            };
            let (reply, answer) = tokio::sync::oneshot::channel();
            let event = CallEvent::Console(ConsoleControl::Monitor {
                supervisor: who.operator.to_string(),
                request,
                reply,
            });
            control.send(event).await.map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        })
    }

    fn record_call<'a>(
        &'a self,
        who: Supervisor<'a>,
        call_id: &'a str,
        on: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let gone = || "That call has ended.".to_string();
            let control = self.calls.live.control(call_id).ok_or_else(gone)?;
            self.may_supervise(&who, call_id)?;
            let on_demand = self
                .calls
                .connected_calls()
                .values()
                .any(|c| c.call_id == call_id && c.record == hotline_ivr::RecordMode::OnDemand);
            if !on_demand {
                return Err("That call is not one its queue records on demand.".to_string());
            }
            let (reply, answer) = tokio::sync::oneshot::channel();
            let event = CallEvent::Console(ConsoleControl::Record {
                on,
                by: who.user.to_string(),
                reply,
            });
            control.send(event).await.map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        })
    }

    fn board(&self) -> BoxFuture<'_, Option<serde_json::Value>> {
        Box::pin(async move {
            // The same rows as `hotline show`, so the board and the command line agree.
            use crate::control::LiveState;
            let live: &Calls = &self.calls;
            let (queues, operators, calls, chats) =
                tokio::join!(live.queues(), live.operators(), live.calls(), live.chats());
            Some(serde_json::json!({
                "queues": queues.ok()?,
                "operators": operators.ok()?,
                "calls": calls.ok()?,
                "chats": chats.unwrap_or_default(),
            }))
        })
    }
}
