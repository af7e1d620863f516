//! The callback time a caller is promised: when the request can be kept (`promise_for`),
//! and how the flow's prompt says it (`promise_distance`).

use hotline_core::time::{millis, unix_ms};
use tracing::warn;

use crate::context::Calls;

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

/// How far off a promised time is (ms, at least 0) and whether it is still today on the
/// flows' clock in the queue's callback time zone: what the flow's `promise_computed`
/// prompts choose by.
pub fn promise_distance(calls: &Calls, queue: Option<&str>, promised_at_ms: i64) -> (u64, bool) {
    let in_ms = u64::try_from(promised_at_ms.saturating_sub(unix_ms())).unwrap_or(0);
    let tz = queue
        .and_then(|q| {
            calls
                .flows_now()
                .set
                .queues()
                .get(q)
                .map(|q| q.callbacks.window.time_zone())
        })
        .unwrap_or(hotline_ivr::window::DEFAULT_TIME_ZONE);
    let now = calls.clock.now().with_timezone(&tz);
    let then = now + chrono::Duration::milliseconds(i64::try_from(in_ms).unwrap_or(i64::MAX));
    (in_ms, then.date_naive() == now.date_naive())
}
