//! Click-to-call (T4) and operators' callbacks from the console: ring the operator's phone
//! first; when they answer, dial the customer through the trunk with the hotline number
//! (or the operator's own number, see direct callback) as caller ID; when the customer answers, bridge the two. A call made off a callback
//! entry records its outcome on the entry (success rule and hide time from the entry's
//! queue). Only the authenticated API and console start one.

use std::sync::Arc;
use std::time::Instant;

use hotline_core::acd::CallerId;
use hotline_core::call_session::PlacedStart;
use hotline_core::cdr::{CallStart, EndReason};
use hotline_core::time::unix_ms;
use hotline_sip::registrar::Binding;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::actors::{AcdInput, CallEvent, SipCommand};
use crate::call::PlacedCall;
use crate::callbacks::attempts::Reached;
use crate::config::Trunk;
use crate::context::Calls;
use crate::outbound::{self, NotAnswered, Ports};

#[derive(Debug, thiserror::Error)]
pub enum ClickToCallError {
    #[error("no trunk is configured (trunk.address), so Hotline cannot call out")]
    NoTrunk,
    #[error(transparent)]
    Refused(#[from] hotline_ivr::dialplan::Refusal),
    #[error("no operator named {0:?}")]
    UnknownOperator(String),
    #[error("{0}'s phone is not registered")]
    NotRegistered(String),
    #[error("no free RTP port")]
    NoPorts,
    #[error("{0} is on another call")]
    Busy(String),
}

/// A click-to-call to place.
pub struct Order {
    pub operator: String,
    pub to: String,
    /// The callback entry this call works off (claimed by `operator`).
    pub callback: Option<i64>,
}

/// Checks the request and starts the call; returns its call id (as in the CDR).
pub async fn start(
    calls: Arc<Calls>,
    trunk: Option<Trunk>,
    order: Order,
) -> Result<String, ClickToCallError> {
    let trunk = trunk.ok_or(ClickToCallError::NoTrunk)?;
    let to = trunk.dialplan.check(&order.to)?;
    let operator = order.operator;
    let contacts = calls
        .acd
        .ask(|reply| AcdInput::Contacts {
            operator: operator.clone(),
            reply,
        })
        .await
        .flatten()
        .ok_or_else(|| ClickToCallError::UnknownOperator(operator.clone()))?;
    let contact = contacts
        .into_iter()
        .max_by_key(|b| b.expires_at)
        .ok_or_else(|| ClickToCallError::NotRegistered(operator.clone()))?;
    let a = calls.rtp_ports.bind().ok_or(ClickToCallError::NoPorts)?;
    let b = calls.rtp_ports.bind().ok_or(ClickToCallError::NoPorts)?;
    let call_id = format!("c2c-{:016x}", rand::random::<u64>());
    // Busy to the queues from now until the call and its wrap-up are over (PRODUCT Q1):
    // the wrap-up of the callback entry's queue, else the shortest of the operator's.
    let queue = match order.callback {
        Some(entry) => calls
            .store
            .callback_entry(entry)
            .await
            .ok()
            .flatten()
            .and_then(|e| e.queue),
        None => None,
    };
    let key = CallerId(rand::random());
    let started = calls
        .acd
        .ask(|reply| AcdInput::OutboundStarted {
            operator: operator.clone(),
            call: key,
            queue,
            reply,
        })
        .await;
    if !matches!(started, Some(Ok(()))) {
        return Err(ClickToCallError::Busy(operator));
    }
    let call = Placed {
        operator,
        to,
        contact,
        call_id: call_id.clone(),
        callback: order.callback,
        key,
    };
    tokio::spawn(run(calls, trunk, call, a, b));
    Ok(call_id)
}

struct Placed {
    operator: String,
    to: String,
    contact: Binding,
    call_id: String,
    callback: Option<i64>,
    /// The operator's busy mark in the queue engine.
    key: CallerId,
}

async fn run(calls: Arc<Calls>, trunk: Trunk, call: Placed, a: Ports, b: Ports) {
    // An operator with an own number calls from it, and the customer is linked to them
    // (direct callback): their next call to that number reaches this operator.
    let flows = calls.flows_now();
    let caller_id = match calls
        .store
        .remember_direct_call(&call.operator, &call.to, unix_ms(), flows.set.calendars())
        .await
    {
        Ok(Some(own)) => own,
        Ok(None) => trunk.caller_id.clone(),
        Err(e) => {
            warn!(call_id = %call.call_id, operator = %call.operator, "direct-callback link not made: {e}");
            trunk.caller_id.clone()
        }
    };
    drop(flows);
    let cdr = calls
        .cdr
        .start_call(CallStart {
            call_id: call.call_id.clone(),
            caller: caller_id.clone(),
            called: call.to.clone(),
            started_at_ms: unix_ms(),
            flow: None,
            flow_version: None,
        })
        .await;
    let (tx, mut events) = mpsc::channel(64);
    let (reason, reached) =
        match connect(&calls, &trunk, &caller_id, &call, (a, b), tx, &mut events).await {
            Ok(placed) => {
                let since = Instant::now();
                let outcome = crate::call::serve_placed(&calls, placed, &mut events, cdr).await;
                let reason = outcome.reason;
                // The session told the queue engine when the operator's part ended.
                crate::call::end_record(&calls, cdr, &call.call_id, outcome, unix_ms()).await;
                (reason, Reached::Connected(since.elapsed()))
            }
            Err((reason, reached)) => {
                outbound::end_cdr(&calls, cdr, None, reason, Some(&call.operator)).await;
                // An operator whose phone never answered is free at once, no wrap-up.
                let (operator, key) = (call.operator.clone(), call.key);
                calls
                    .acd
                    .send(if reached == Reached::OperatorNotAnswered {
                        AcdInput::OutboundCancelled {
                            operator,
                            call: key,
                        }
                    } else {
                        AcdInput::OutboundEnded {
                            operator,
                            call: key,
                        }
                    })
                    .await;
                (reason, reached)
            }
        };
    info!(call_id = %call.call_id, operator = %call.operator, to = %call.to,
        reason = reason.as_str(), "click-to-call ended");
    if let Some(entry) = call.callback {
        crate::callbacks::attempts::record_attempt(&calls, entry, &call.operator, reached).await;
    }
}

/// Rings the operator, then the customer; once both answered, the call to run. `Err`:
/// why it ended before, and how far the attempt got.
async fn connect(
    calls: &Calls,
    trunk: &Trunk,
    caller_id: &str,
    call: &Placed,
    (a_ports, b_ports): (Ports, Ports),
    tx: mpsc::Sender<CallEvent>,
    events: &mut mpsc::Receiver<CallEvent>,
) -> Result<PlacedCall, (EndReason, Reached)> {
    let sip = &calls.sip;
    let rang_at_ms = unix_ms();
    // The operator's phone shows whom it is about to call.
    let Some(a) = outbound::invite_operator(
        calls,
        &call.contact,
        &call.to,
        Some(if call.callback.is_some() {
            "Callback"
        } else {
            "Click-to-call"
        }),
        &outbound::first_offer(),
        &a_ports.0,
        tx.clone(),
        true,
    )
    .await
    else {
        return Err((EndReason::TransportError, Reached::OperatorNotAnswered));
    };
    info!(call_id = %call.call_id, operator = %call.operator, "click-to-call: ringing the operator");
    let a_answer = match outbound::wait_answer(events, a).await {
        Ok(n) => n,
        Err(why) => {
            sip.command(SipCommand::Hangup(a)).await;
            let reason = match why {
                NotAnswered::Broken => EndReason::TransportError,
                _ => EndReason::Rejected,
            };
            return Err((reason, Reached::OperatorNotAnswered));
        }
    };
    let operator_leg = outbound::answered_leg(
        calls,
        &call.operator,
        &call.contact,
        &a_ports.0,
        &a_answer,
        rang_at_ms,
    );
    let Some((b, sdp_session)) = outbound::invite_customer(
        calls,
        trunk,
        &call.to,
        caller_id,
        &a_answer,
        &b_ports.0,
        tx.clone(),
    )
    .await
    else {
        sip.command(SipCommand::Hangup(a)).await;
        return Err((
            EndReason::TransportError,
            Reached::CustomerNotAnswered(NotAnswered::Broken),
        ));
    };
    info!(call_id = %call.call_id, to = %call.to, "click-to-call: dialling the customer through the trunk");
    let b_answer = match outbound::wait_answer(events, b).await {
        Ok(n) => n,
        Err(why) => {
            sip.command(SipCommand::Hangup(a)).await;
            sip.command(SipCommand::Hangup(b)).await;
            let reason = if why == NotAnswered::OtherLegEnded {
                EndReason::OperatorHangup
            } else {
                EndReason::Rejected
            };
            return Err((reason, Reached::CustomerNotAnswered(why)));
        }
    };
    info!(call_id = %call.call_id, operator = %call.operator, to = %call.to, "click-to-call: connected");
    Ok(PlacedCall {
        setup: outbound::customer_dialog(b, &call.call_id, &call.to, caller_id, trunk, tx),
        key: call.key,
        ports: b_ports,
        answer: b_answer,
        sdp_session,
        queue: None,
        start: PlacedStart::Operator {
            leg: operator_leg,
            outbound: true,
        },
        operator: Some((a, a_ports)),
        until_queued: None,
    })
}
