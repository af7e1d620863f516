//! Keeps the running daemon's view of operators in step with the store: their SIP
//! accounts go to the SIP endpoint (digest HA1s), and together with the flow set's queues
//! to the queue task. It re-reads the store every few seconds, so an operator added with
//! `hotline operator add` (or, later, the admin pages, on any node) applies without a
//! restart, and it re-sends the queues whenever the flows are reloaded.

use std::sync::Arc;
use std::time::Duration;

use hotline_core::acd::OperatorState;
use hotline_core::operators::{Operator, SipDigest};
use hotline_sip::Credential;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::actors::SipCommand;
use crate::actors::{AcdInput, OperatorAccount};
use crate::context::Calls;

const EVERY: Duration = Duration::from_secs(5);

pub async fn run(
    calls: Arc<Calls>,
    realm: String,
    flows_changed: Arc<Notify>,
    operators_changed: Arc<Notify>,
) {
    let mut known: Vec<Operator> = Vec::new();
    let mut first = true;
    // Ends with the store (the daemon is stopping).
    while !calls.store.is_closed() {
        match calls.store.operators().await {
            Ok(ops) if ops != known || first => {
                apply(&calls, &realm, &known, &ops).await;
                known = ops;
                if first {
                    restore_chosen_states(&calls).await;
                }
                first = false;
            }
            Ok(_) => {}
            Err(e) if !calls.store.is_closed() => warn!("reading operators: {e}"),
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = flows_changed.notified() => configure_queues(&calls, &known).await,
            _ = operators_changed.notified() => {}
        }
    }
}

async fn apply(calls: &Calls, realm: &str, before: &[Operator], now: &[Operator]) {
    for gone in before
        .iter()
        .filter(|b| !now.iter().any(|n| n.sip_user == b.sip_user))
    {
        info!(operator = %gone.name, "operator removed");
        calls
            .sip
            .command(SipCommand::SetCredentials(gone.sip_user.clone(), None))
            .await;
    }
    for op in now {
        // HA1 binds the password to a realm: a changed realm needs the passwords set again.
        let algorithm = match SipDigest::parse(&op.sip_digest) {
            Ok(SipDigest::Sha256) => hotline_sip::Algorithm::Sha256,
            Ok(SipDigest::Md5) => hotline_sip::Algorithm::Md5,
            Err(e) => {
                warn!(operator = %op.name, "{e}; MD5 challenged");
                hotline_sip::Algorithm::Md5
            }
        };
        let credential = (op.realm == realm).then(|| Credential {
            ha1_md5: op.ha1_md5.clone(),
            ha1_sha256: op.ha1_sha256.clone(),
            algorithm,
        });
        if credential.is_none() {
            warn!(operator = %op.name, stored = %op.realm, configured = %realm,
                  "operator's SIP password was set for another realm; set it again");
        }
        calls
            .sip
            .command(SipCommand::SetCredentials(op.sip_user.clone(), credential))
            .await;
    }
    info!(operators = now.len(), "operators loaded");
    configure_queues(calls, now).await;
}

/// At start, operators are put back in the state they last chose (not everyone offline).
async fn restore_chosen_states(calls: &Calls) {
    let states = match calls.store.operator_chosen_states().await {
        Ok(s) => s,
        Err(e) => {
            warn!("reading operators' chosen states: {e}");
            return;
        }
    };
    for (name, state) in states {
        // Offline is where everyone starts anyway.
        let Some(state) = OperatorState::parse(&state).filter(|s| *s != OperatorState::Offline)
        else {
            continue;
        };
        match crate::api::apply_operator_state(&calls.acd, &name, state).await {
            Ok(()) => {
                info!(operator = %name, state = state.as_str(), "chosen state restored")
            }
            Err(e) => warn!(operator = %name, "chosen state not restored: {e}"),
        }
    }
}

async fn configure_queues(calls: &Calls, ops: &[Operator]) {
    let queues = calls.flows_now().set.queues().values().cloned().collect();
    let operators = ops
        .iter()
        .map(|o| OperatorAccount {
            name: o.name.clone(),
            sip_user: o.sip_user.clone(),
            chat_capacity: u8::try_from(o.chat_capacity).unwrap_or(3),
        })
        .collect();
    calls
        .acd
        .send(AcdInput::Configure { queues, operators })
        .await;
}
