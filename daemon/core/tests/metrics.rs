//! The figures hotline-core gives `/metrics`: the chat's first response and the outbox's
//! send time (recorded where they are known), and the counts behind the chat and outbox
//! gauges. Rendered as Prometheus text, as an admin scrapes it; on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use hotline_core::chat::{ChatState, EventKind, FIRST_RESPONSE_METRIC, NewEvent, Sender};
use hotline_core::notify::{
    Channel, MessageStatus, NewMessage, Notifier, NotifyConfig, NotifyMode, SEND_SECONDS_METRIC,
    SmsConfig,
};
use hotline_core::store::Store;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use common::chat::{SEC, T0, accepted_chat, agent, waiting_chat};

/// A recorder for this test's thread (the tests' runtime has one thread, so the
/// notifier's task records here too).
fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new().build_recorder()
}

/// The value of a rendered line `name{labels} value`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A chat in `queue` started at `at`; with `operator`, that operator has accepted it.
async fn chat(store: &Store, queue: &str, at: i64, operator: Option<(&str, i64)>) -> i64 {
    match operator {
        Some((name, user_id)) => accepted_chat(store, queue, name, user_id, at).await.id,
        None => waiting_chat(store, queue, at).await.id,
    }
}

fn says(sender: Sender, body: &str, private: bool, client_id: &str) -> NewEvent {
    NewEvent {
        private,
        client_id: Some(client_id.into()),
        ..NewEvent::new(EventKind::Message, sender, body)
    }
}

on_both_databases!(
    a_chats_first_response_is_counted_once_from_its_start,
    |store: Store| async move {
        let recorder = recorder();
        let _local = metrics::set_default_local_recorder(&recorder);
        let anna = agent(&store, "anna", 5).await;
        let op = Sender::Operator {
            user_id: anna,
            name: String::new(),
        };
        let c = chat(&store, "sales", T0, Some(("anna", anna))).await;
        let add = |ev: NewEvent, at: i64| {
            let store = store.clone();
            async move { store.add_chat_event(c, &ev, at).await.unwrap() }
        };
        // The visitor's words and an operators-only note are no response.
        add(says(Sender::Visitor, "Hello?", false, "v1"), T0 + 2 * SEC).await;
        add(says(op.clone(), "VIP, be nice", true, "n1"), T0 + 5 * SEC).await;
        let count = format!("{FIRST_RESPONSE_METRIC}_count");
        let text = recorder.handle().render();
        assert_eq!(value(&text, &count), None, "{text}");
        // 25 s after the chat started, anna answers; a resend and her next words don't
        // count again.
        add(
            says(op.clone(), "Hi, let me check.", false, "o1"),
            T0 + 25 * SEC,
        )
        .await;
        add(
            says(op.clone(), "Hi, let me check.", false, "o1"),
            T0 + 26 * SEC,
        )
        .await;
        add(says(op.clone(), "Found it.", false, "o2"), T0 + 40 * SEC).await;
        let text = recorder.handle().render();
        assert_eq!(value(&text, &count), Some(1.0), "{text}");
        assert_eq!(
            value(&text, &format!("{FIRST_RESPONSE_METRIC}_sum")),
            Some(25.0),
            "{text}"
        );
    }
);

on_both_databases!(
    open_chats_are_counted_by_queue_and_state,
    |store: Store| async move {
        let anna = agent(&store, "anna", 5).await;
        chat(&store, "sales", T0, None).await;
        chat(&store, "sales", T0, None).await;
        let offered = chat(&store, "support", T0, None).await;
        assert!(
            store
                .offer_chat(offered, "anna", T0, T0 + 30 * SEC)
                .await
                .unwrap()
        );
        chat(&store, "support", T0, Some(("anna", anna))).await;
        let ended = chat(&store, "support", T0, Some(("anna", anna))).await;
        let me = Sender::Operator {
            user_id: anna,
            name: String::new(),
        };
        store.end_chat(ended, me, T0 + 9 * SEC).await.unwrap();

        let mut counts = store.chat_counts().await.unwrap();
        counts.sort_by_key(|(q, s, _)| (q.clone(), s.as_str()));
        assert_eq!(
            counts,
            vec![
                ("sales".to_string(), ChatState::Waiting, 2),
                ("support".to_string(), ChatState::Active, 1),
                ("support".to_string(), ChatState::Offered, 1),
            ]
        );
    }
);

/// An SMS gateway that says yes to everything; its base URL.
async fn gateway() -> String {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/sms")
}

fn now_ms() -> i64 {
    hotline_core::time::unix_ms()
}

on_both_databases!(
    pending_messages_are_counted_and_the_send_time_recorded_by_channel,
    |store: Store| async move {
        let recorder = recorder();
        let _local = metrics::set_default_local_recorder(&recorder);
        // Stored 3 s ago, while no notifier ran.
        let stored_at = now_ms() - 3 * SEC;
        let sms = |to| NewMessage {
            channel: Channel::Sms,
            to,
            subject: "",
            body: "Your link",
            related: "visual:1",
            now_ms: stored_at,
        };
        let first = store.enqueue_message(&sms("+36301234567")).await.unwrap();
        store.enqueue_message(&sms("+36301234568")).await.unwrap();
        assert_eq!(
            store.outbox_pending().await.unwrap(),
            vec![(Channel::Sms, 2)]
        );

        let config = NotifyConfig {
            mode: NotifyMode::Send,
            poll_ms: 50,
            sms: SmsConfig {
                url: gateway().await,
                ..SmsConfig::default()
            },
            ..NotifyConfig::default()
        };
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.outbox_pending().await.unwrap() != vec![] {
            assert!(Instant::now() < deadline, "the messages were never sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        notifier.stop().await;
        let sent = store.message(first).await.unwrap().unwrap();
        assert_eq!(sent.status, MessageStatus::Sent);

        let text = recorder.handle().render();
        let series = |s: &str| format!("{SEND_SECONDS_METRIC}_{s}{{channel=\"sms\"}}");
        assert_eq!(value(&text, &series("count")), Some(2.0), "{text}");
        let sum = value(&text, &series("sum")).unwrap();
        assert!(
            (6.0..20.0).contains(&sum),
            "two sends of 3 s and more: {sum}\n{text}"
        );
        assert!(!text.contains("channel=\"email\""), "{text}");
    }
);
