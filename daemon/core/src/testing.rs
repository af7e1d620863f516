//! Fixtures the tests of this crate and of the daemon share, so each exists once: a call
//! record built by hand and stored. Only in test builds (`test` or the `test-support`
//! feature, which dev-dependencies switch on).

use crate::cdr::{CallEnd, CallStart, EndReason};
use crate::store::{Store, StoreError};

/// A call's start with the plain values most tests want: an ordinary caller on 100, no flow.
/// Change a field with `CallStart { caller: …, ..call_start(id, at) }`.
pub fn call_start(call_id: &str, started_at_ms: i64) -> CallStart {
    CallStart {
        call_id: call_id.into(),
        caller: "+36301234567".into(),
        called: "100".into(),
        started_at_ms,
        flow: None,
        flow_version: None,
    }
}

/// A caller's hang-up at `ended_at_ms` with nothing else recorded.
pub fn call_end(ended_at_ms: i64) -> CallEnd {
    CallEnd {
        ended_at_ms,
        reason: EndReason::CallerHangup,
        digits: String::new(),
        path: Vec::new(),
        variables: "{}".into(),
        operator: None,
        service: Default::default(),
    }
}

/// Stores a finished call straight in the store (not through the CDR writer) and
/// returns its row id.
pub async fn store_finished_call(
    store: &Store,
    start: &CallStart,
    end: &CallEnd,
) -> Result<i64, StoreError> {
    let id = store.insert_call(start).await?;
    store.finish_call(id, end).await?;
    Ok(id)
}
