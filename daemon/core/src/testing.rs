//! Fixtures the tests of this crate and of the daemon share, so each exists once: a call
//! record built by hand and stored, and a visitor's chats in queues. Only in test builds (`test` or the `test-support`
//! feature, which dev-dependencies switch on).

use crate::cdr::{CallEnd, CallStart, EndReason};
use crate::chat::{ChatError, NewChat, NewVisitor};
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

/// One visitor ("v-1" on site "main", seen at `start_ms`) with a chat in each of `queues`:
/// the n-th (from 1) has the topic "topic n" and starts at `start_ms + n * step_ms`.
/// Returns the chats' ids in that order.
pub async fn chats_in_queues(
    store: &Store,
    start_ms: i64,
    step_ms: i64,
    queues: &[&str],
) -> Result<Vec<i64>, ChatError> {
    let visitor = store
        .upsert_visitor(&NewVisitor {
            site: "main".into(),
            visitor_key: "v-1".into(),
            now_ms: start_ms,
            ..NewVisitor::default()
        })
        .await?;
    let mut ids = Vec::new();
    for (n, queue) in (1..).zip(queues) {
        let (chat, _token) = store
            .create_chat(&NewChat {
                site: "main".into(),
                visitor_id: visitor.id,
                queue: (*queue).into(),
                topic: format!("topic {n}"),
                now_ms: start_ms + n * step_ms,
                ..NewChat::default()
            })
            .await?;
        ids.push(chat.id);
    }
    Ok(ids)
}
