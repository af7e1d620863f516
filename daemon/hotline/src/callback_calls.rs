//! What a callback call means for its entry on the shared list: the queue's rules (how
//! long a call must last to count as a success, how long a failed entry hides) and the
//! recording of each attempt's outcome.

use std::time::Duration;

use hotline_core::callbacks::CallbackError;
use tracing::{info, warn};

use crate::call::{Calls, unix_ms};
use crate::outbound::{Reached, attempt_outcome};

/// When an attempt counts as a success, and how long a failed entry stays off the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeRules {
    pub success_after: Duration,
    pub hide_after_failure: Duration,
}

impl Default for OutcomeRules {
    fn default() -> Self {
        OutcomeRules {
            success_after: Duration::from_secs(10),
            hide_after_failure: Duration::from_secs(900),
        }
    }
}

/// The rules of the entry's queue (the defaults for an entry without one, or a queue the
/// flows no longer declare).
pub fn rules_for(_calls: &Calls, _queue: Option<&str>) -> OutcomeRules {
    OutcomeRules::default()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Records how a callback attempt by `claimer` on `entry` went.
pub async fn record_attempt(calls: &Calls, entry: i64, claimer: &str, reached: Reached) {
    let queue = match calls.store.callback_entry(entry).await {
        Ok(Some(e)) => e.queue,
        Ok(None) => return,
        Err(e) => {
            warn!(entry, "callback outcome NOT recorded: reading the entry: {e}");
            return;
        }
    };
    let rules = rules_for(calls, queue.as_deref());
    let (outcome, note, hide) = attempt_outcome(reached, rules.success_after);
    let hide_ms = if hide {
        millis(rules.hide_after_failure)
    } else {
        0
    };
    match calls
        .store
        .finish_callback(entry, claimer, outcome, Some(&note), hide_ms, unix_ms())
        .await
    {
        Ok(_) => info!(entry, %claimer, outcome = outcome.as_str(), %note, "callback attempt recorded"),
        Err(CallbackError::NotClaimer { by }) => {
            warn!(entry, %claimer, ?by, "callback outcome not recorded: another operator took the entry over")
        }
        Err(e) => warn!(entry, %claimer, "callback outcome NOT recorded: {e}"),
    }
}
