//! What a callback call means for its entry on the shared list: the queue's rules (how
//! long a call must last to count as a success, how long a failed entry hides) and the
//! recording of each attempt's outcome.

use std::time::Duration;

use hotline_core::callbacks::{CallbackEntry, CallbackError};
use tracing::{info, warn};

use crate::context::{Calls, unix_ms};
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
            success_after: Duration::from_secs(hotline_ivr::DEFAULT_SUCCESS_AFTER_SECS),
            hide_after_failure: Duration::from_secs(hotline_ivr::DEFAULT_HIDE_AFTER_FAILURE_SECS),
        }
    }
}

/// The rules of the entry's queue (the defaults for an entry without one, or a queue the
/// flows no longer declare).
pub fn rules_for(calls: &Calls, queue: Option<&str>) -> OutcomeRules {
    let flows = calls.flows_now();
    match queue.and_then(|q| flows.set.queues().get(q)) {
        Some(q) => OutcomeRules {
            success_after: Duration::from_secs(q.callbacks.success_after_secs),
            hide_after_failure: Duration::from_secs(q.callbacks.hide_after_failure_secs),
        },
        None => OutcomeRules::default(),
    }
}

/// Counts a finished attempt, and for a success whether the promise was kept.
pub fn count_attempt(e: &CallbackEntry, by: &'static str) {
    let outcome = e.last_outcome.map_or("none", |o| o.as_str());
    metrics::counter!(crate::metrics::CALLBACK_ATTEMPTS, "outcome" => outcome, "by" => by)
        .increment(1);
    if let (Some(done), Some(promised)) = (e.done_at_ms, e.promised_at_ms) {
        let result = if done <= promised { "kept" } else { "late" };
        metrics::counter!(crate::metrics::CALLBACK_PROMISES, "result" => result).increment(1);
    }
}

/// Rounds promises up to this, so callers hear (and operators see) round times.
const PROMISE_STEP_MS: i64 = 5 * 60 * 1000;

/// When a new callback request for `queue` can be kept: the open entries due before it
/// and the live callers waiting, each taking the queue's mean handling time spread over
/// its staffed operators; not before the queue's callback window opens (when it has one,
/// whether Hotline or the operators make the calls). Rounded up to 5 minutes. `None` when
/// the queue is unknown.
pub async fn promise_for(calls: &Calls, queue: &str) -> Option<i64> {
    let now_ms = unix_ms();
    let backlog = calls
        .store
        .callback_backlog(queue, now_ms)
        .await
        .map_err(|e| warn!(%queue, "promise: reading the backlog: {e}"))
        .ok()?;
    let position = u32::try_from(backlog).unwrap_or(u32::MAX).saturating_add(1);
    let wait = calls
        .acd
        .ask(|reply| crate::actors::AcdInput::ExpectedWait {
            queue: queue.to_string(),
            position,
            reply,
        })
        .await
        .flatten()?;
    let mut start_ms = now_ms;
    let flows = calls.flows_now();
    if let Some(q) = flows.set.queues().get(queue)
        && !q.callbacks.window.rules().is_empty()
    {
        let window = &q.callbacks.window;
        let calendar = window.calendar().and_then(|c| flows.set.calendar(c));
        let now = calls.clock.now();
        if let Some(open) = window.next_open(now, calendar.as_deref()) {
            start_ms = start_ms.saturating_add((open - now).num_milliseconds().max(0));
        }
    }
    let at = start_ms.saturating_add(millis(wait));
    Some(at.saturating_add(PROMISE_STEP_MS - 1) / PROMISE_STEP_MS * PROMISE_STEP_MS)
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
            warn!(
                entry,
                "callback outcome NOT recorded: reading the entry: {e}"
            );
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
        Ok(e) => {
            count_attempt(&e, "operator");
            info!(entry, %claimer, outcome = outcome.as_str(), %note, "callback attempt recorded")
        }
        Err(CallbackError::NotClaimer { by }) => {
            warn!(entry, %claimer, ?by, "callback outcome not recorded: another operator took the entry over")
        }
        Err(e) => warn!(entry, %claimer, "callback outcome NOT recorded: {e}"),
    }
}
