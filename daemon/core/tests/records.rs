//! The filtered, paged record queries behind GET /api/v1/calls and /api/v1/chats (and
//! `hotline calls`), on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::cdr::{CallEnd, CallFilter, CallStart, Service};
use hotline_core::chat::{ChatFilter, ChatState};
use hotline_core::store::Store;
use hotline_core::testing::{call_end, call_start, chats_in_queues, store_finished_call};

/// A finished call that waited in `queue` and was taken by `operator`.
async fn call(store: &Store, n: i64, queue: Option<&str>, operator: Option<&str>) -> i64 {
    let start = CallStart {
        caller: format!("+3610000{n}"),
        ..call_start(&format!("call-{n}"), 1_000_000 + n * 1000)
    };
    let end = CallEnd {
        operator: operator.map(String::from),
        service: Service {
            queue: queue.map(String::from),
            ..Service::default()
        },
        ..call_end(1_000_000 + n * 1000 + 500)
    };
    store_finished_call(store, &start, &end).await.unwrap()
}

fn ids_of_calls(calls: &[hotline_core::cdr::CallRecord]) -> Vec<String> {
    calls.iter().map(|c| c.call_id.clone()).collect()
}

on_both_databases!(
    calls_by_queue_operator_time_and_cursor,
    |store: Store| async move {
        call(&store, 1, Some("sales"), Some("anna")).await;
        let second = call(&store, 2, Some("support"), Some("anna")).await;
        call(&store, 3, Some("sales"), Some("bela")).await;
        call(&store, 4, None, None).await;

        let all = |f: CallFilter| {
            let store = store.clone();
            async move { ids_of_calls(&store.calls_matching(&f).await.unwrap()) }
        };
        let base = CallFilter {
            limit: 10,
            ..CallFilter::default()
        };
        assert_eq!(
            all(base.clone()).await,
            ["call-4", "call-3", "call-2", "call-1"]
        );
        assert_eq!(
            all(CallFilter {
                queue: Some("sales".into()),
                ..base.clone()
            })
            .await,
            ["call-3", "call-1"]
        );
        assert_eq!(
            all(CallFilter {
                operator: Some("anna".into()),
                ..base.clone()
            })
            .await,
            ["call-2", "call-1"]
        );
        assert_eq!(
            all(CallFilter {
                since_ms: Some(1_002_000),
                until_ms: Some(1_004_000),
                ..base.clone()
            })
            .await,
            ["call-3", "call-2"]
        );
        assert_eq!(
            all(CallFilter {
                before_id: Some(second),
                ..base.clone()
            })
            .await,
            ["call-1"]
        );
        assert_eq!(
            all(CallFilter {
                limit: 2,
                ..base.clone()
            })
            .await,
            ["call-4", "call-3"]
        );
        // `hotline calls` reads the same query.
        assert_eq!(
            ids_of_calls(&store.calls_between(Some(1_002_000), None, 2).await.unwrap()),
            ["call-4", "call-3"]
        );
    }
);

on_both_databases!(
    chats_by_queue_state_time_and_cursor,
    |store: Store| async move {
        let ids = chats_in_queues(&store, 1_000_000, 1000, &["sales", "support", "sales"])
            .await
            .unwrap();
        let topics = |f: ChatFilter| {
            let store = store.clone();
            async move {
                store
                    .chats_matching(&f)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|c| c.topic)
                    .collect::<Vec<_>>()
            }
        };
        let base = ChatFilter {
            limit: 10,
            ..ChatFilter::default()
        };
        assert_eq!(
            topics(base.clone()).await,
            ["topic 3", "topic 2", "topic 1"]
        );
        assert_eq!(
            topics(ChatFilter {
                queue: Some("sales".into()),
                ..base.clone()
            })
            .await,
            ["topic 3", "topic 1"]
        );
        assert_eq!(
            topics(ChatFilter {
                state: Some(ChatState::Waiting),
                ..base.clone()
            })
            .await,
            ["topic 3", "topic 2", "topic 1"]
        );
        assert!(
            topics(ChatFilter {
                state: Some(ChatState::Ended),
                ..base.clone()
            })
            .await
            .is_empty()
        );
        assert_eq!(
            topics(ChatFilter {
                since_ms: Some(1_002_000),
                until_ms: Some(1_003_000),
                ..base.clone()
            })
            .await,
            ["topic 2"]
        );
        assert_eq!(
            topics(ChatFilter {
                before_id: Some(ids[2]),
                limit: 1,
                ..base.clone()
            })
            .await,
            ["topic 2"]
        );
    }
);
