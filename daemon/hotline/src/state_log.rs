//! The operators' state history (PRODUCT S3: time online, busy, paused, in wrap-up): once
//! a second the queue engine's view of every operator is compared with the last one, and
//! each change is stored with when it began (`operator_states`), for the reports.
//!
//! Sampling keeps the queue engine free of store writes; a state that lasted less than a
//! second between two samples may be missed, which the reports' minutes do not show.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_core::acd::OperatorStatus;
use hotline_core::operator_states::state_name;
use tracing::warn;

use crate::actors::AcdInput;
use crate::context::Calls;

const EVERY: Duration = Duration::from_secs(1);

pub async fn run(calls: Arc<Calls>) {
    let mut shown: HashMap<String, (OperatorStatus, Option<Instant>)> = HashMap::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(views) = calls.acd.ask(|reply| AcdInput::Operators { reply }).await else {
            return;
        };
        let (now, now_ms) = (Instant::now(), hotline_core::time::unix_ms());
        for (name, view) in views {
            let seen = (view.state, view.since);
            if shown.get(&name) == Some(&seen) {
                continue;
            }
            // When the state began, on the wall clock (the engine's is monotonic).
            let ago = view.since.map_or(0, |s| {
                hotline_core::time::millis(now.saturating_duration_since(s))
            });
            if let Err(e) = calls
                .store
                .log_operator_state(&name, state_name(view.state), now_ms - ago)
                .await
            {
                warn!(operator = %name, "operator state NOT logged: {e}");
                continue;
            }
            shown.insert(name, seen);
        }
    }
}
