//! What the web console asks of the telephony side: operator states, queue figures and
//! new operator accounts, answered from the queue task and the store.

use hotline_core::call_session::ConsultState;
use std::sync::Arc;

use hotline_core::acd::OperatorState;
use hotline_ivr::TransferTarget;
use hotline_web::telephony::{
    BoxFuture, CallControl, OperatorForm, PageLink, PhoneFromPage, Telephony, TransferTo,
};

use crate::actors::AcdInput;
use crate::actors::{CallEvent, ConsoleControl};
use crate::api::status_name;
use crate::context::Calls;

pub struct ConsoleLink {
    pub calls: Arc<Calls>,
    pub realm: String,
    /// Outbound calls (click-to-call, callbacks) go through it.
    pub trunk: Option<crate::config::Trunk>,
    /// The operators' console tabs as their phones.
    pub phones: Arc<crate::browser_phone::BrowserPhones>,
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
            let call = self.calls.operator_call(operator)?;
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
            Some(serde_json::json!({
                "call_id": call.call_id,
                "caller": call.caller,
                "queue": call.queue,
                "since_ms": call.since_ms,
                "held": call.held,
                "note": call.note.as_ref().map(|(_, n)| n),
                "note_from": call.note.as_ref().map(|(by, _)| by),
                "consult": call.consult.as_ref().map(|c| match c {
                    ConsultState::Ringing { with } => serde_json::json!({ "with": with, "talking": false }),
                    ConsultState::Talking { with } => serde_json::json!({ "with": with, "talking": true }),
                    ConsultState::Ended { message } => serde_json::json!({ "ended": message }),
                }),
                "targets": targets,
            }))
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
}
