//! Callbacks in the daemon: putting callers on the shared list (with the time they are
//! promised), the attempts operators and the scheduler make, and the automatic callback.
//! The list itself (entries, claims, requests, missed calls) is in `hotline_core::callbacks`.
//!
//! - `promise`: the callback time a caller is told, computed in one place.
//! - `attempts`: what an attempt's outcome means for its entry (queue rules, metrics, webhook).
//! - `auto`: the scheduler that calls customers back by itself (C3).
//! - `cli`: the callback commands (`callbacks`, `missed`, `callback-list`, `callback-report`).

use hotline_core::callbacks::requests::{NewCallbackRequest, RequestSource};
use hotline_core::callbacks::{CallbackError, CallbackSource, NewCallbackNote};
use hotline_core::time::unix_ms;
use tracing::{info, warn};

use crate::context::Calls;

pub mod attempts;
pub mod auto;
pub mod cli;
pub mod promise;

/// A caller's entry on the shared callback list, as noted.
pub struct Noted {
    pub id: i64,
    /// The time promised to a caller who asked for the callback.
    pub promised_at_ms: Option<i64>,
}

/// Puts the caller on the shared callback list (one entry per number: a repeat caller
/// updates theirs). Anonymous callers are counted as missed calls but can't be called back.
/// Returns the entry (with the promised time) when it is on the list.
pub async fn note_on_callback_list(
    calls: &Calls,
    call_id: &str,
    number: &str,
    queue: Option<&str>,
    source: CallbackSource,
) -> Option<Noted> {
    // A caller who asked for a callback is promised a time (tracked in the promise report).
    let promised_at_ms = match (source, queue) {
        (CallbackSource::Ivr, Some(q)) => promise::promise_for(calls, q).await,
        _ => None,
    };
    let note = NewCallbackNote {
        number,
        queue,
        source,
        promised_at_ms,
        call_id: Some(call_id),
        now_ms: unix_ms(),
    };
    match calls.store.note_callback(&note).await {
        Ok(entry) => {
            info!(%call_id, %number, entry = entry.id, count = entry.count, "on the callback list");
            // A number the dial plan refuses stays listed, marked, and is never dialled
            // by itself (T5).
            let refused = calls
                .trunk
                .as_ref()
                .and_then(|t| t.dialplan.check(number).err())
                .map(|e| e.to_string());
            if refused != entry.undialable {
                if let Some(why) = &refused {
                    info!(%call_id, %number, entry = entry.id, "cannot be dialled: {why}");
                }
                if let Err(e) = calls
                    .store
                    .mark_undialable(entry.id, refused.as_deref())
                    .await
                {
                    warn!(%call_id, entry = entry.id, "marking the number undialable: {e}");
                }
            }
            Some(Noted {
                id: entry.id,
                promised_at_ms,
            })
        }
        Err(CallbackError::Anonymous) => None,
        Err(e) => {
            warn!(%call_id, %number, "NOT on the callback list: {e}");
            None
        }
    }
}

/// Stores the flow's callback request and puts the caller on the shared list; the promised
/// time, when there is one, as the session wants it (ms from now, still today).
pub async fn store_callback_request(
    calls: &Calls,
    call_id: &str,
    number: &str,
    queue: Option<String>,
    promise: Option<String>,
) -> Option<(u64, bool)> {
    let stored = calls
        .store
        .insert_callback_request(&NewCallbackRequest {
            number,
            queue: queue.as_deref(),
            promise: promise.as_deref(),
            source: RequestSource::Ivr,
            call_id: Some(call_id),
            requested_at_ms: unix_ms(),
        })
        .await;
    match stored {
        Ok(id) => {
            info!(call_id = %call_id, %number, id, "callback request recorded");
            let noted = note_on_callback_list(
                calls,
                call_id,
                number,
                queue.as_deref(),
                CallbackSource::Ivr,
            )
            .await;
            // The flow may say the computed time (its fallback otherwise).
            let promised_at_ms = noted.and_then(|n| n.promised_at_ms)?;
            Some(promise::promise_distance(
                calls,
                queue.as_deref(),
                promised_at_ms,
            ))
        }
        Err(e) => {
            warn!(call_id = %call_id, %number, "callback request NOT stored: {e}");
            None
        }
    }
}
