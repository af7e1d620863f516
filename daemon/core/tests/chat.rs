//! Web chat: visitors and signatures, offers and capacity (also raced), acceptance,
//! events with their numbering, deduplication and visibility, the end and wrap-up,
//! invitations, transfers, canned messages, tags, notes, page views and files. Every
//! store test runs on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::chat::{
    Audience, Chat, ChatError, ChatState, EventKind, InviteState, MAX_SIGNATURE_CLOCK_SKEW_S,
    NewChat, NewChatFile, NewEvent, NewVisitor, Sender, SenderKind, SignatureError, SignedVisitor,
    Target, new_file_id, sign_visitor, verified_fields, verify_signature,
};
use hotline_core::store::Store;
use serde_json::json;
use sqlx::Row;

use common::chat::{SEC, T0, accepted_chat, agent, op, operator, visitor, waiting_chat};

fn text(sender: Sender, body: &str, client_id: Option<&str>) -> NewEvent {
    NewEvent {
        client_id: client_id.map(str::to_string),
        ..NewEvent::new(EventKind::Message, sender, body)
    }
}

fn private(sender: Sender, body: &str) -> NewEvent {
    NewEvent {
        private: true,
        ..NewEvent::new(EventKind::Message, sender, body)
    }
}

async fn state(store: &Store, chat_id: i64) -> Chat {
    store.chat(chat_id).await.unwrap().unwrap()
}

fn seqs(events: &[hotline_core::chat::ChatEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

on_both_databases!(visitors_and_chats, |store: Store| async move {
    let v = store
        .upsert_visitor(&NewVisitor {
            site: "demo".into(),
            visitor_key: "k1".into(),
            name: Some("  Anna Kovács ".into()),
            email: Some("Anna@Example.HU".into()),
            now_ms: T0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(v.name.as_deref(), Some("Anna Kovács"));
    assert_eq!(v.email.as_deref(), Some("Anna@example.hu"));
    assert!(v.verified.is_empty());
    // The same key again is the same visitor; blank fields keep what is stored.
    let again = store
        .upsert_visitor(&NewVisitor {
            site: "demo".into(),
            visitor_key: "k1".into(),
            phone: Some("+36 30 123 4567".into()),
            now_ms: T0 + SEC,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(again.id, v.id);
    assert_eq!(again.name.as_deref(), Some("Anna Kovács"));
    assert_eq!(again.phone.as_deref(), Some("+36 30 123 4567"));
    assert_eq!(again.last_seen_at_ms, T0 + SEC);
    // Another site: another visitor.
    let other = store
        .upsert_visitor(&NewVisitor {
            site: "other".into(),
            visitor_key: "k1".into(),
            now_ms: T0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_ne!(other.id, v.id);
    assert!(matches!(
        store
            .upsert_visitor(&NewVisitor {
                site: "demo".into(),
                visitor_key: "k1".into(),
                email: Some("not an address".into()),
                now_ms: T0,
                ..Default::default()
            })
            .await,
        Err(ChatError::Invalid(_))
    ));

    let (chat, token) = store
        .create_chat(&NewChat {
            site: "demo".into(),
            visitor_id: v.id,
            queue: "sales".into(),
            page_url: "https://shop.example/".into(),
            now_ms: T0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(chat.state, ChatState::Waiting);
    assert_eq!(chat.last_seq, 0);
    assert_eq!(
        store.chat_by_token(&token).await.unwrap(),
        Some(chat.clone())
    );
    assert_eq!(store.chat_by_token("nope").await.unwrap(), None);
    // Only the token's hash is stored.
    let stored: String = sqlx::query("SELECT token_hash FROM chats WHERE id = $1")
        .bind(chat.id)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_ne!(stored, token);
    // A visitor of another site, a javascript: address.
    for bad in [
        NewChat {
            site: "other".into(),
            visitor_id: v.id,
            queue: "sales".into(),
            now_ms: T0,
            ..Default::default()
        },
        NewChat {
            site: "demo".into(),
            visitor_id: v.id,
            queue: "sales".into(),
            page_url: "javascript:alert(1)".into(),
            now_ms: T0,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            store.create_chat(&bad).await,
            Err(ChatError::Invalid(_))
        ));
    }

    // Queue positions: waiting and offered chats of the queue, oldest first.
    let second = waiting_chat(&store, "sales", T0 + SEC).await;
    let elsewhere = waiting_chat(&store, "support", T0 + 2 * SEC).await;
    assert_eq!(store.queue_position(chat.id).await.unwrap(), Some(1));
    assert_eq!(store.queue_position(second.id).await.unwrap(), Some(2));
    assert_eq!(store.queue_position(elsewhere.id).await.unwrap(), Some(1));
    // The same for every waiting chat in one query (the offer loop tells visitors).
    let mut places = store.queue_positions().await.unwrap();
    places.sort_by_key(|p| p.0);
    let mut expected = vec![
        (chat.id, ChatState::Waiting, 1),
        (second.id, ChatState::Waiting, 2),
        (elsewhere.id, ChatState::Waiting, 1),
    ];
    expected.sort_by_key(|p| p.0);
    assert_eq!(places, expected);
    let waiting: Vec<i64> = store
        .waiting_chats(T0)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(waiting, [chat.id, second.id, elsewhere.id]);

    // As JSON for the web layer: no visitor key.
    let js = serde_json::to_value(&v).unwrap();
    assert!(js.get("visitor_key").is_none());
    assert_eq!(serde_json::to_value(&chat).unwrap()["state"], "waiting");
});

on_both_databases!(
    offers_reject_expire_never_again,
    |store: Store| async move {
        agent(&store, "anna", 3).await;
        agent(&store, "bela", 3).await;
        let cecil = agent(&store, "cecil", 3).await;
        let c = waiting_chat(&store, "sales", T0).await;

        assert!(
            store
                .offer_chat(c.id, "anna", T0, T0 + 30 * SEC)
                .await
                .unwrap()
        );
        let offered = state(&store, c.id).await;
        assert_eq!(offered.state, ChatState::Offered);
        assert_eq!(offered.offered_to.as_deref(), Some("anna"));
        assert_eq!(offered.offer_expires_at_ms, Some(T0 + 30 * SEC));
        assert_eq!(store.chat_load("anna").await.unwrap(), 1);
        assert_eq!(store.offered_chats("anna").await.unwrap().len(), 1);
        // Offered to one operator at a time.
        assert!(
            !store
                .offer_chat(c.id, "bela", T0, T0 + 30 * SEC)
                .await
                .unwrap()
        );
        assert_eq!(store.queue_position(c.id).await.unwrap(), Some(1));

        // Rejected: back to waiting, never to anna again.
        assert!(store.reject_chat(c.id, "anna", T0 + SEC).await.unwrap());
        assert!(!store.reject_chat(c.id, "anna", T0 + SEC).await.unwrap());
        assert_eq!(state(&store, c.id).await.state, ChatState::Waiting);
        assert_eq!(store.chat_load("anna").await.unwrap(), 0);
        assert!(
            !store
                .offer_chat(c.id, "anna", T0 + 2 * SEC, T0 + 40 * SEC)
                .await
                .unwrap()
        );

        // Not answered in time: the sweep puts it back, once.
        assert!(
            store
                .offer_chat(c.id, "bela", T0 + 2 * SEC, T0 + 12 * SEC)
                .await
                .unwrap()
        );
        assert!(store.expire_offers(T0 + 11 * SEC).await.unwrap().is_empty());
        assert_eq!(
            store.expire_offers(T0 + 12 * SEC).await.unwrap(),
            [(c.id, "bela".to_string())]
        );
        assert!(store.expire_offers(T0 + 13 * SEC).await.unwrap().is_empty());
        assert_eq!(state(&store, c.id).await.state, ChatState::Waiting);
        assert_eq!(store.chat_load("bela").await.unwrap(), 0);
        assert!(
            !store
                .offer_chat(c.id, "bela", T0 + 13 * SEC, T0 + 40 * SEC)
                .await
                .unwrap()
        );
        assert_eq!(store.chat_declines(c.id).await.unwrap(), ["anna", "bela"]);

        // The third operator takes it.
        assert!(
            store
                .offer_chat(c.id, "cecil", T0 + 14 * SEC, T0 + 44 * SEC)
                .await
                .unwrap()
        );
        let taken = store
            .accept_chat(c.id, "cecil", cecil, T0 + 15 * SEC)
            .await
            .unwrap();
        assert_eq!(taken.state, ChatState::Active);
        assert_eq!(taken.accepted_at_ms, Some(T0 + 15 * SEC));
        assert_eq!(store.queue_position(c.id).await.unwrap(), None);
        assert!(!store.offer_chat(c.id, "anna", T0, T0 + SEC).await.unwrap());

        // Unknown operators and offers that expire before they start.
        assert!(matches!(
            store.offer_chat(c.id, "nobody", T0, T0 + SEC).await,
            Err(ChatError::NotFound)
        ));
        assert!(matches!(
            store.offer_chat(c.id, "anna", T0, T0).await,
            Err(ChatError::Invalid(_))
        ));
    }
);

on_both_databases!(
    capacity_holds_under_concurrent_offers,
    |store: Store| async move {
        // Eight chats offered at once to an operator with room for three: three get through.
        for name in ["anna", "bela", "cecil", "dora"] {
            operator(&store, name, 3).await;
            let mut chats = Vec::new();
            for _ in 0..8 {
                chats.push(waiting_chat(&store, "sales", T0).await.id);
            }
            let mut set = tokio::task::JoinSet::new();
            for id in chats {
                let store = store.clone();
                set.spawn(
                    async move { store.offer_chat(id, name, T0, T0 + 30 * SEC).await.unwrap() },
                );
            }
            let won = set.join_all().await.into_iter().filter(|w| *w).count();
            assert_eq!(won, 3, "{name}");
            assert_eq!(store.chat_load(name).await.unwrap(), 3);
            assert_eq!(store.offered_chats(name).await.unwrap().len(), 3);
        }

        // One chat offered to many operators at once: one gets it.
        let names: Vec<String> = (0..6).map(|i| format!("op{i}")).collect();
        for n in &names {
            operator(&store, n, 3).await;
        }
        for round in 0..3 {
            let c = waiting_chat(&store, "sales", T0 + round).await;
            let mut set = tokio::task::JoinSet::new();
            for n in names.clone() {
                let store = store.clone();
                set.spawn(async move {
                    let won = store.offer_chat(c.id, &n, T0, T0 + 30 * SEC).await.unwrap();
                    (n, won)
                });
            }
            let winners: Vec<String> = set
                .join_all()
                .await
                .into_iter()
                .filter(|(_, won)| *won)
                .map(|(n, _)| n)
                .collect();
            assert_eq!(winners.len(), 1, "{winners:?}");
            assert_eq!(
                state(&store, c.id).await.offered_to,
                winners.first().cloned()
            );
        }
    }
);

on_both_databases!(
    accepting_an_expired_offer_conflicts,
    |store: Store| async move {
        let anna = agent(&store, "anna", 3).await;
        let bela = agent(&store, "bela", 3).await;
        let c = waiting_chat(&store, "sales", T0).await;
        assert!(
            store
                .offer_chat(c.id, "anna", T0, T0 + 10 * SEC)
                .await
                .unwrap()
        );
        // Too late, before the sweep noticed: refused, and the chat waits again.
        let late = store.accept_chat(c.id, "anna", anna, T0 + 10 * SEC).await;
        assert!(matches!(late, Err(ChatError::Conflict(m)) if m.contains("expired")));
        assert_eq!(state(&store, c.id).await.state, ChatState::Waiting);
        assert_eq!(store.chat_declines(c.id).await.unwrap(), ["anna"]);
        assert_eq!(store.chat_load("anna").await.unwrap(), 0);

        // Someone else's offer, a user who isn't that operator, an unknown chat.
        assert!(
            store
                .offer_chat(c.id, "bela", T0 + 11 * SEC, T0 + 40 * SEC)
                .await
                .unwrap()
        );
        assert!(matches!(
            store.accept_chat(c.id, "anna", anna, T0 + 12 * SEC).await,
            Err(ChatError::Conflict(_))
        ));
        assert!(matches!(
            store.accept_chat(c.id, "bela", anna, T0 + 12 * SEC).await,
            Err(ChatError::Invalid(_))
        ));
        assert!(matches!(
            store
                .accept_chat(999_999, "bela", bela, T0 + 12 * SEC)
                .await,
            Err(ChatError::NotFound)
        ));
        let chat = store
            .accept_chat(c.id, "bela", bela, T0 + 12 * SEC)
            .await
            .unwrap();
        assert_eq!(chat.state, ChatState::Active);
        assert_eq!(chat.offered_to, None);
        // Taken: a second accept conflicts.
        assert!(matches!(
            store.accept_chat(c.id, "bela", bela, T0 + 13 * SEC).await,
            Err(ChatError::Conflict(_))
        ));
        let people = store.chat_participants(c.id).await.unwrap();
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].name, "Bela");
        assert!(people[0].is_open());
        let events = store.chat_events(c.id, 0, Audience::Visitor).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Join);
        assert_eq!(events[0].name, "Bela");
        assert_eq!(store.chat_load("bela").await.unwrap(), 1);
        assert_eq!(store.operator_chats(bela).await.unwrap().len(), 1);
        // The sweep doesn't touch an accepted chat.
        assert!(
            store
                .expire_offers(T0 + 100 * SEC)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

on_both_databases!(
    private_events_never_reach_the_visitor,
    |store: Store| async move {
        let anna = agent(&store, "anna", 3).await;
        let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
        let now = T0 + 2 * SEC;
        store
            .add_chat_event(
                c.id,
                &text(Sender::Visitor, "Hello, my order?", Some("v1")),
                now,
            )
            .await
            .unwrap();
        let note = store
            .add_chat_event(c.id, &private(op(anna), "VIP customer, be nice"), now)
            .await
            .unwrap();
        assert!(note.private);
        assert_eq!(note.name, "Anna");
        store
            .add_chat_event(c.id, &text(op(anna), "Let me check.", Some("o1")), now)
            .await
            .unwrap();
        // A visitor's event is never private.
        let sneaky = NewEvent {
            private: true,
            ..text(Sender::Visitor, "psst", None)
        };
        assert!(matches!(
            store.add_chat_event(c.id, &sneaky, now).await,
            Err(ChatError::Invalid(_))
        ));

        let ops = store
            .chat_events(c.id, 0, Audience::Operators)
            .await
            .unwrap();
        assert_eq!(seqs(&ops), [1, 2, 3, 4]);
        let visitor = store.chat_events(c.id, 0, Audience::Visitor).await.unwrap();
        assert_eq!(seqs(&visitor), [1, 2, 4]);
        assert!(visitor.iter().all(|e| !e.private));
        assert!(!visitor.iter().any(|e| e.body.contains("VIP")));
        assert_eq!(visitor[1].from, SenderKind::Visitor);
        assert_eq!(visitor[1].name, "Béla");

        // Private files follow their message; the visitor gets only what was sent to them.
        let secret = new_file_id();
        let shared = new_file_id();
        for (id, private) in [(&secret, true), (&shared, false)] {
            store
                .add_chat_file(&NewChatFile {
                    id: id.clone(),
                    chat_id: c.id,
                    name: "terms.pdf".into(),
                    content_type: "application/pdf".into(),
                    size: 1234,
                    private,
                    uploaded_by: op(anna),
                    now_ms: now,
                })
                .await
                .unwrap();
        }
        // Not sent yet: operators only.
        assert!(
            store
                .chat_file_for(&shared, c.id, Audience::Visitor)
                .await
                .unwrap()
                .is_none()
        );
        store
            .add_chat_event(
                c.id,
                &NewEvent {
                    private: true,
                    data: json!({ "files": [secret] }),
                    ..NewEvent::new(EventKind::Attachment, op(anna), "internal copy")
                },
                now,
            )
            .await
            .unwrap();
        let sent = store
            .add_chat_event(
                c.id,
                &NewEvent {
                    data: json!({ "files": [{ "id": shared }] }),
                    ..NewEvent::new(EventKind::Message, op(anna), "Our terms")
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(sent.data["files"][0]["name"], "terms.pdf");
        assert_eq!(sent.data["files"][0]["size"], 1234);
        assert!(
            store
                .chat_file_for(&secret, c.id, Audience::Visitor)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .chat_file_for(&secret, c.id, Audience::Operators)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .chat_file_for(&shared, c.id, Audience::Visitor)
                .await
                .unwrap()
                .is_some()
        );
        // Not in another chat, not twice, not too many.
        assert!(
            store
                .chat_file_for(&shared, c.id + 1, Audience::Operators)
                .await
                .unwrap()
                .is_none()
        );
        let again = NewEvent {
            data: json!({ "files": [shared] }),
            ..NewEvent::new(EventKind::Message, op(anna), "again")
        };
        assert!(matches!(
            store.add_chat_event(c.id, &again, now).await,
            Err(ChatError::Invalid(_))
        ));
        let six: Vec<String> = (0..6).map(|_| new_file_id()).collect();
        let many = NewEvent {
            data: json!({ "files": six }),
            ..NewEvent::new(EventKind::Message, op(anna), "")
        };
        assert!(matches!(
            store.add_chat_event(c.id, &many, now).await,
            Err(ChatError::Invalid(_))
        ));

        // The transcript path (the same function) after the end: still no private events.
        store
            .end_chat(c.id, Sender::Visitor, now + SEC)
            .await
            .unwrap();
        let transcript = store.chat_events(c.id, 0, Audience::Visitor).await.unwrap();
        assert!(transcript.iter().all(|e| !e.private));
        assert_eq!(transcript.last().map(|e| e.kind), Some(EventKind::End));
        assert!(
            store
                .chat_events(c.id, 0, Audience::Operators)
                .await
                .unwrap()
                .iter()
                .any(|e| e.body == "internal copy")
        );
    }
);

on_both_databases!(resume_after_gaps, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await; // seq 1: join
    let mut now = T0 + 2 * SEC;
    for i in 0..3 {
        now += SEC;
        store
            .add_chat_event(c.id, &text(Sender::Visitor, &format!("v{i}"), None), now)
            .await
            .unwrap(); // 2, 3, 4
    }
    store
        .add_chat_event(c.id, &private(op(anna), "p1"), now)
        .await
        .unwrap(); // 5
    store
        .add_chat_event(c.id, &private(op(anna), "p2"), now)
        .await
        .unwrap(); // 6
    store
        .add_chat_event(c.id, &text(op(anna), "o1", None), now)
        .await
        .unwrap(); // 7

    // The visitor saw up to 3: they get 4 and 7, in order, nothing twice.
    let missed = store.chat_events(c.id, 3, Audience::Visitor).await.unwrap();
    assert_eq!(seqs(&missed), [4, 7]);
    // Resuming from a seq inside the gap works the same.
    assert_eq!(
        seqs(&store.chat_events(c.id, 5, Audience::Visitor).await.unwrap()),
        [7]
    );
    assert_eq!(
        seqs(&store.chat_events(c.id, 7, Audience::Visitor).await.unwrap()),
        [] as [i64; 0]
    );
    // Operators resume through the private ones.
    assert_eq!(
        seqs(
            &store
                .chat_events(c.id, 4, Audience::Operators)
                .await
                .unwrap()
        ),
        [5, 6, 7]
    );
    assert_eq!(state(&store, c.id).await.last_seq, 7);
});

on_both_databases!(
    duplicate_client_ids_are_stored_once,
    |store: Store| async move {
        let anna = agent(&store, "anna", 3).await;
        let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
        let first = store
            .add_chat_event(c.id, &text(Sender::Visitor, "hi", Some("c1")), T0 + 2 * SEC)
            .await
            .unwrap();
        let again = store
            .add_chat_event(c.id, &text(Sender::Visitor, "hi", Some("c1")), T0 + 3 * SEC)
            .await
            .unwrap();
        assert_eq!(again, first);
        // The same client id in another chat is another message.
        let other = accepted_chat(&store, "sales", "anna", anna, T0).await;
        let elsewhere = store
            .add_chat_event(
                other.id,
                &text(Sender::Visitor, "hi", Some("c1")),
                T0 + 2 * SEC,
            )
            .await
            .unwrap();
        assert_ne!(elsewhere.id, first.id);

        // Ten resends racing: one event, the same answer for all.
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let store = store.clone();
            let id = c.id;
            set.spawn(async move {
                store
                    .add_chat_event(
                        id,
                        &text(Sender::Visitor, "again?", Some("c2")),
                        T0 + 4 * SEC,
                    )
                    .await
                    .unwrap()
            });
        }
        let results = set.join_all().await;
        assert!(
            results
                .iter()
                .all(|e| e.id == results[0].id && e.seq == results[0].seq)
        );
        // And ten different messages racing: ten consecutive numbers.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..10 {
            let store = store.clone();
            let id = c.id;
            set.spawn(async move {
                let cid = format!("m{i}");
                store
                    .add_chat_event(
                        id,
                        &text(Sender::Visitor, "x", Some(cid.as_str())),
                        T0 + 5 * SEC,
                    )
                    .await
                    .unwrap()
                    .seq
            });
        }
        let mut got = set.join_all().await;
        got.sort();
        let start = results[0].seq + 1;
        assert_eq!(got, (start..start + 10).collect::<Vec<_>>());
        let all = store
            .chat_events(c.id, 0, Audience::Operators)
            .await
            .unwrap();
        assert_eq!(seqs(&all), (1..=all.len() as i64).collect::<Vec<_>>());
        assert_eq!(
            all.iter()
                .filter(|e| e.client_id.as_deref() == Some("c2"))
                .count(),
            1
        );
        assert!(matches!(
            store
                .add_chat_event(
                    c.id,
                    &text(Sender::Visitor, "x", Some("c".repeat(65).as_str())),
                    T0
                )
                .await,
            Err(ChatError::Invalid(_))
        ));
    }
);

on_both_databases!(end_is_idempotent, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let bela = agent(&store, "bela", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
    // Only an operator in the chat ends it.
    assert!(matches!(
        store.end_chat(c.id, op(bela), T0 + 2 * SEC).await,
        Err(ChatError::Conflict(_))
    ));
    let ended = store
        .end_chat(c.id, Sender::Visitor, T0 + 2 * SEC)
        .await
        .unwrap();
    assert_eq!(ended.state, ChatState::Ended);
    assert_eq!(ended.ended_by, Some(SenderKind::Visitor));
    let again = store.end_chat(c.id, op(anna), T0 + 3 * SEC).await.unwrap();
    assert_eq!(again, ended);
    let ends: Vec<_> = store
        .chat_events(c.id, 0, Audience::Visitor)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::End)
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].data, json!({ "by": "visitor" }));

    // After the end: no more messages, but operators' private notes are kept.
    assert!(matches!(
        store
            .add_chat_event(c.id, &text(Sender::Visitor, "hello?", None), T0 + 4 * SEC)
            .await,
        Err(ChatError::Conflict(_))
    ));
    assert!(matches!(
        store
            .add_chat_event(c.id, &text(op(anna), "bye", None), T0 + 4 * SEC)
            .await,
        Err(ChatError::Conflict(_))
    ));
    store
        .add_chat_event(
            c.id,
            &private(op(anna), "customer left angry"),
            T0 + 4 * SEC,
        )
        .await
        .unwrap();
    // A resend of a message stored before the end still gets its answer.
    assert!(matches!(
        store.end_chat(999_999, Sender::Visitor, T0).await,
        Err(ChatError::NotFound)
    ));
    // A waiting chat can be ended by the visitor too.
    let w = waiting_chat(&store, "sales", T0).await;
    assert_eq!(
        store
            .end_chat(w.id, Sender::Visitor, T0 + SEC)
            .await
            .unwrap()
            .state,
        ChatState::Ended
    );
});

on_both_databases!(wrap_up_frees_capacity, |store: Store| async move {
    let anna = agent(&store, "anna", 1).await;
    let c1 = accepted_chat(&store, "sales", "anna", anna, T0).await;
    let c2 = waiting_chat(&store, "sales", T0).await;
    assert!(
        !store
            .offer_chat(c2.id, "anna", T0 + 2 * SEC, T0 + 30 * SEC)
            .await
            .unwrap()
    );
    // Wrap-up comes after the end; the end alone doesn't free the place.
    assert!(matches!(
        store
            .wrap_up_chat(c1.id, anna, "sale", "", T0 + 2 * SEC)
            .await,
        Err(ChatError::Conflict(_))
    ));
    store.end_chat(c1.id, op(anna), T0 + 3 * SEC).await.unwrap();
    assert_eq!(store.chat_load("anna").await.unwrap(), 1);
    assert!(
        !store
            .offer_chat(c2.id, "anna", T0 + 3 * SEC, T0 + 30 * SEC)
            .await
            .unwrap()
    );
    store
        .wrap_up_chat(c1.id, anna, "sale", "Ordered the red one.", T0 + 4 * SEC)
        .await
        .unwrap();
    // Again: nothing changes.
    store
        .wrap_up_chat(c1.id, anna, "other", "", T0 + 5 * SEC)
        .await
        .unwrap();
    assert_eq!(store.chat_load("anna").await.unwrap(), 0);
    let p = &store.chat_participants(c1.id).await.unwrap()[0];
    assert_eq!(p.wrap_up_category.as_deref(), Some("sale"));
    assert_eq!(p.wrap_up_note.as_deref(), Some("Ordered the red one."));
    assert_eq!(p.wrapped_up_at_ms, Some(T0 + 4 * SEC));
    assert!(store.operator_chats(anna).await.unwrap().is_empty());
    assert!(
        store
            .offer_chat(c2.id, "anna", T0 + 5 * SEC, T0 + 30 * SEC)
            .await
            .unwrap()
    );
    // Someone who wasn't in the chat has nothing to wrap up.
    let bela = agent(&store, "bela", 1).await;
    assert!(matches!(
        store.wrap_up_chat(c1.id, bela, "", "", T0 + 6 * SEC).await,
        Err(ChatError::Conflict(_))
    ));
});

on_both_databases!(one_invitation_at_a_time, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let bela = agent(&store, "bela", 3).await;
    let cecil = agent(&store, "cecil", 3).await;
    let dora = agent(&store, "dora", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
    let now = T0 + 2 * SEC;
    let support = vec!["support".to_string()];

    let inv = store
        .invite_to_chat(c.id, anna, Target::Operator("bela".into()), now)
        .await
        .unwrap();
    assert_eq!(inv.state, InviteState::Pending);
    assert_eq!(inv.from_name, "Anna");
    let js = serde_json::to_value(&inv).unwrap();
    assert_eq!(js["operator"], "bela");
    // One pending at a time.
    assert!(matches!(
        store
            .invite_to_chat(c.id, anna, Target::Queue("support".into()), now)
            .await,
        Err(ChatError::Conflict(_))
    ));
    assert_eq!(store.pending_invite(c.id).await.unwrap(), Some(inv.clone()));
    assert_eq!(
        store.pending_invites_for("bela", &[]).await.unwrap(),
        std::slice::from_ref(&inv)
    );
    assert!(
        store
            .pending_invites_for("cecil", &support)
            .await
            .unwrap()
            .is_empty()
    );
    // Only the invited operator answers.
    assert!(matches!(
        store.answer_invite(inv.id, "cecil", cecil, true, now).await,
        Err(ChatError::Conflict(_))
    ));
    let no = store
        .answer_invite(inv.id, "bela", bela, false, now)
        .await
        .unwrap();
    assert_eq!(no.state, InviteState::Declined);
    assert!(matches!(
        store.answer_invite(inv.id, "bela", bela, true, now).await,
        Err(ChatError::Conflict(_))
    ));

    // Now anyone from a queue: a "no" hides it from that operator only.
    let q = store
        .invite_to_chat(c.id, anna, Target::Queue("support".into()), now)
        .await
        .unwrap();
    assert_eq!(
        store
            .pending_invites_for("cecil", &support)
            .await
            .unwrap()
            .len(),
        1
    );
    let still = store
        .answer_invite(q.id, "cecil", cecil, false, now)
        .await
        .unwrap();
    assert_eq!(still.state, InviteState::Pending);
    assert!(
        store
            .pending_invites_for("cecil", &support)
            .await
            .unwrap()
            .is_empty()
    );
    let yes = store
        .answer_invite(q.id, "dora", dora, true, now)
        .await
        .unwrap();
    assert_eq!(yes.state, InviteState::Accepted);
    assert_eq!(yes.answered_by.as_deref(), Some("dora"));
    assert!(
        store
            .pending_invites_for("dora", &support)
            .await
            .unwrap()
            .is_empty()
    );
    let people: Vec<String> = store
        .chat_participants(c.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.operator)
        .collect();
    assert_eq!(people, ["anna", "dora"]);
    assert_eq!(store.chat_load("dora").await.unwrap(), 1);
    // Invitations are operators' business; the visitor only sees Dora join.
    let seen = store.chat_events(c.id, 0, Audience::Visitor).await.unwrap();
    assert!(seen.iter().all(|e| e.kind != EventKind::Invite));
    assert_eq!(
        seen.last().map(|e| (e.kind, e.name.as_str())),
        Some((EventKind::Join, "Dora"))
    );

    // Answered: another may be sent; a pending one can be withdrawn; anna may leave now.
    let again = store
        .invite_to_chat(c.id, dora, Target::Operator("bela".into()), now)
        .await
        .unwrap();
    assert!(matches!(
        store
            .invite_to_chat(c.id, anna, Target::Operator("cecil".into()), now)
            .await,
        Err(ChatError::Conflict(_))
    ));
    store.cancel_invite(again.id, anna, now).await.unwrap();
    assert!(
        store
            .pending_invites_for("bela", &[])
            .await
            .unwrap()
            .is_empty()
    );
    store.leave_chat(c.id, anna, now + SEC).await.unwrap();
    store.leave_chat(c.id, anna, now + SEC).await.unwrap();
    assert_eq!(store.chat_load("anna").await.unwrap(), 0);
    // The last operator can't just leave an active chat.
    assert!(matches!(
        store.leave_chat(c.id, dora, now + SEC).await,
        Err(ChatError::Conflict(_))
    ));
    // The end withdraws a pending invitation.
    let last = store
        .invite_to_chat(c.id, dora, Target::Queue("support".into()), now)
        .await
        .unwrap();
    store.end_chat(c.id, op(dora), now + 2 * SEC).await.unwrap();
    assert!(store.pending_invite(c.id).await.unwrap().is_none());
    assert!(matches!(
        store
            .answer_invite(last.id, "cecil", cecil, true, now)
            .await,
        Err(ChatError::Conflict(_))
    ));
});

on_both_databases!(transfer_goes_back_to_waiting, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let bela = agent(&store, "bela", 3).await;
    let cecil = agent(&store, "cecil", 3).await;
    agent(&store, "dora", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
    let now = T0 + 2 * SEC;

    let moved = store
        .transfer_chat(
            c.id,
            anna,
            Target::Queue("support".into()),
            "Wants a refund",
            now,
        )
        .await
        .unwrap();
    assert_eq!(moved.state, ChatState::Waiting);
    assert_eq!(moved.queue, "support");
    assert_eq!(moved.for_operator, None);
    assert_eq!(store.chat_load("anna").await.unwrap(), 0);
    assert!(store.operator_chats(anna).await.unwrap().is_empty());
    let notes = store.chat_notes(c.id).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].transfer);
    assert_eq!(notes[0].text, "Wants a refund");
    assert_eq!(notes[0].author, "Anna");
    // The note is for operators; the visitor sees Anna leave.
    let ops = store
        .chat_events(c.id, 0, Audience::Operators)
        .await
        .unwrap();
    let transfer = ops.iter().find(|e| e.kind == EventKind::Transfer).unwrap();
    assert!(transfer.private);
    assert_eq!(
        transfer.data,
        json!({ "to": { "queue": "support" }, "note": "Wants a refund" })
    );
    let seen = store.chat_events(c.id, 0, Audience::Visitor).await.unwrap();
    assert!(seen.iter().all(|e| e.kind != EventKind::Transfer));
    assert_eq!(seen.last().map(|e| e.kind), Some(EventKind::Leave));
    // Not back to anna; the next operator takes it and sees the note.
    assert!(
        !store
            .offer_chat(c.id, "anna", now, now + 30 * SEC)
            .await
            .unwrap()
    );
    assert!(
        store
            .offer_chat(c.id, "bela", now, now + 30 * SEC)
            .await
            .unwrap()
    );
    store
        .accept_chat(c.id, "bela", bela, now + SEC)
        .await
        .unwrap();
    assert_eq!(store.visitor_notes(c.visitor_id).await.unwrap(), notes);

    // To a named operator: only they get the offer; if they say no, the queue does.
    let named = store
        .transfer_chat(
            c.id,
            bela,
            Target::Operator("cecil".into()),
            "",
            now + 2 * SEC,
        )
        .await
        .unwrap();
    assert_eq!(named.for_operator.as_deref(), Some("cecil"));
    assert_eq!(store.chat_notes(c.id).await.unwrap().len(), 1);
    assert!(
        !store
            .offer_chat(c.id, "dora", now, now + 30 * SEC)
            .await
            .unwrap()
    );
    assert!(
        store
            .offer_chat(c.id, "cecil", now, now + 30 * SEC)
            .await
            .unwrap()
    );
    store
        .reject_chat(c.id, "cecil", now + 3 * SEC)
        .await
        .unwrap();
    assert_eq!(state(&store, c.id).await.for_operator, None);
    assert!(
        store
            .offer_chat(c.id, "dora", now, now + 30 * SEC)
            .await
            .unwrap()
    );

    // Only an active chat, by someone in it, to someone else.
    assert!(matches!(
        store
            .transfer_chat(c.id, cecil, Target::Queue("x".into()), "", now)
            .await,
        Err(ChatError::Conflict(_))
    ));
    let d = accepted_chat(&store, "sales", "cecil", cecil, T0).await;
    assert!(matches!(
        store
            .transfer_chat(d.id, cecil, Target::Operator("cecil".into()), "", now)
            .await,
        Err(ChatError::Invalid(_))
    ));
    assert!(matches!(
        store
            .transfer_chat(d.id, cecil, Target::Operator("nobody".into()), "", now)
            .await,
        Err(ChatError::Invalid(_))
    ));
});

on_both_databases!(canned_favourites_first, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let bela = agent(&store, "bela", 3).await;
    let zebra = store
        .add_canned(None, "Zebra crossing", "Cross at the zebra.", anna)
        .await
        .unwrap();
    let apple = store
        .add_canned(Some("sales".into()), "apple", "We sell Apples.", anna)
        .await
        .unwrap();
    let mango = store
        .add_canned(
            Some("sales".into()),
            "Mango",
            "Ripe ÁRVÍZTŰRŐ mangoes.",
            anna,
        )
        .await
        .unwrap();
    store
        .add_canned(Some("support".into()), "Reset", "Turn it off and on.", anna)
        .await
        .unwrap();
    store
        .set_canned_favourite(anna, zebra.id, true)
        .await
        .unwrap();
    store
        .set_canned_favourite(anna, zebra.id, true)
        .await
        .unwrap();
    store
        .set_canned_favourite(anna, mango.id, true)
        .await
        .unwrap();
    let sales = vec!["sales".to_string()];
    let titles = |list: Vec<hotline_core::chat::Canned>| {
        list.into_iter()
            .map(|c| (c.title, c.favourite))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        titles(store.canned_for(anna, &sales, "").await.unwrap()),
        [
            ("Mango".to_string(), true),
            ("Zebra crossing".to_string(), true),
            ("apple".to_string(), false)
        ]
    );
    // Another user's stars are their own.
    assert_eq!(
        titles(store.canned_for(bela, &sales, "").await.unwrap()),
        [
            ("apple".to_string(), false),
            ("Mango".to_string(), false),
            ("Zebra crossing".to_string(), false)
        ]
    );
    // Search in title and text, any case (also beyond ASCII).
    assert_eq!(
        titles(store.canned_for(anna, &sales, "APPLE").await.unwrap()),
        [("apple".to_string(), false)]
    );
    assert_eq!(
        titles(store.canned_for(anna, &sales, "árvíztűrő").await.unwrap()),
        [("Mango".to_string(), true)]
    );
    assert_eq!(store.canned_for(anna, &[], "").await.unwrap().len(), 1);

    store
        .set_canned_favourite(anna, mango.id, false)
        .await
        .unwrap();
    let updated = store
        .update_canned(apple.id, None, "Apple", "Apples for everyone.")
        .await
        .unwrap();
    assert_eq!(updated.queue, None);
    store.delete_canned(zebra.id).await.unwrap();
    assert!(matches!(
        store.delete_canned(zebra.id).await,
        Err(ChatError::NotFound)
    ));
    assert_eq!(
        titles(store.canned_for(anna, &[], "").await.unwrap()),
        [("Apple".to_string(), false)]
    );
    assert_eq!(store.all_canned().await.unwrap().len(), 3);
    assert!(matches!(
        store.add_canned(None, "", "body", anna).await,
        Err(ChatError::Invalid(_))
    ));
    assert!(matches!(
        store.set_canned_favourite(anna, 999_999, true).await,
        Err(ChatError::NotFound)
    ));
});

on_both_databases!(verified_fields_are_locked, |store: Store| async move {
    let secret = "s3cret";
    let fields = SignedVisitor {
        visitor_key: "signed",
        timestamp_s: T0 / 1000,
        customer_id: "C-77",
        email: "anna@example.com",
        name: "Anna Kovács",
    };
    let sig = sign_visitor(secret, &fields);
    let verified = verified_fields(secret, &fields, "signed", &sig, T0, DAY_S).unwrap();
    assert_eq!(verified, ["customer_id", "email", "name"]);
    let v = store
        .upsert_visitor(&NewVisitor {
            site: "demo".into(),
            visitor_key: "signed".into(),
            name: Some("Anna Kovács".into()),
            email: Some("anna@example.com".into()),
            customer_id: Some("C-77".into()),
            verified,
            now_ms: T0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(v.verified, ["name", "email", "customer_id"]);
    for field in ["name", "email", "customer_id"] {
        assert!(
            matches!(
                store.update_visitor_field(v.id, field, "changed@example.com").await,
                Err(ChatError::Invalid(m)) if m.contains("verified")
            ),
            "{field}"
        );
    }
    // Unverified fields are the operator's to fill in.
    let edited = store
        .update_visitor_field(v.id, "phone", "+36 1 234 5678")
        .await
        .unwrap();
    assert_eq!(edited.phone.as_deref(), Some("+36 1 234 5678"));
    assert_eq!(edited.email.as_deref(), Some("anna@example.com"));
    assert!(matches!(
        store.update_visitor_field(v.id, "password", "x").await,
        Err(ChatError::Invalid(_))
    ));
    assert!(matches!(
        store.update_visitor_field(999_999, "phone", "1").await,
        Err(ChatError::NotFound)
    ));

    // The same signed value again keeps the lock; an unsigned new value drops it.
    let back = store
        .upsert_visitor(&NewVisitor {
            site: "demo".into(),
            visitor_key: "signed".into(),
            email: Some("other@example.com".into()),
            name: Some("Anna Kovács".into()),
            now_ms: T0 + SEC,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(back.verified, ["name", "customer_id"]);
    let fixed = store
        .update_visitor_field(v.id, "email", "anna.k@example.com")
        .await
        .unwrap();
    assert_eq!(fixed.email.as_deref(), Some("anna.k@example.com"));
    // A field can't be "verified" without a value, and the phone is never signed.
    for verified in [vec!["email".to_string()], vec!["phone".to_string()]] {
        assert!(matches!(
            store
                .upsert_visitor(&NewVisitor {
                    site: "demo".into(),
                    visitor_key: "x".into(),
                    phone: Some("1".into()),
                    verified,
                    now_ms: T0,
                    ..Default::default()
                })
                .await,
            Err(ChatError::Invalid(_))
        ));
    }
});

const DAY_S: i64 = 24 * 3600;

#[test]
fn signatures() {
    let f = SignedVisitor {
        visitor_key: "vk-1",
        timestamp_s: T0 / 1000,
        customer_id: "C-1",
        email: "a@example.com",
        name: "Anna",
    };
    let check = |f: &SignedVisitor, key: &str, sig: &str, now_ms: i64| {
        verify_signature("k", f, key, sig, now_ms, DAY_S)
    };
    let sig = sign_visitor("k", &f);
    assert_eq!(sig.len(), 64);
    assert_eq!(check(&f, "vk-1", &sig, T0), Ok(()));
    assert_eq!(check(&f, "vk-1", &sig.to_uppercase(), T0), Ok(()));
    let changed = |g: fn(&mut SignedVisitor)| {
        let mut other = f;
        g(&mut other);
        other
    };
    for other in [
        changed(|f| f.name = "Anne"),
        changed(|f| f.customer_id = "C-2"),
        changed(|f| f.timestamp_s += 1),
    ] {
        assert_eq!(
            check(&other, other.visitor_key, &sig, T0),
            Err(SignatureError::Mismatch)
        );
    }
    assert_eq!(
        verify_signature("other", &f, "vk-1", &sig, T0, DAY_S),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature("", &f, "vk-1", &sig, T0, DAY_S),
        Err(SignatureError::NoSecret)
    );
    assert_eq!(
        check(&f, "vk-1", &sig[..62], T0),
        Err(SignatureError::Malformed)
    );
    assert_eq!(check(&f, "vk-1", "zz", T0), Err(SignatureError::Malformed));
    assert_eq!(check(&f, "vk-1", "", T0), Err(SignatureError::Malformed));
    // The fields can't be shifted between each other: a line break, the separator, is
    // refused inside a field.
    let shifted = changed(|f| {
        f.customer_id = "C-1\na@example.com";
        f.email = "";
    });
    assert_eq!(
        check(&shifted, "vk-1", &sig, T0),
        Err(SignatureError::LineBreak)
    );
    // Another visitor's signature: refused, whether the fields name the other key...
    assert_eq!(
        check(&f, "vk-2", &sig, T0),
        Err(SignatureError::OtherVisitor)
    );
    // ...or were re-labelled with this visitor's key (the key is inside the HMAC).
    let relabelled = changed(|f| f.visitor_key = "vk-2");
    assert_eq!(
        check(&relabelled, "vk-2", &sig, T0),
        Err(SignatureError::Mismatch)
    );
    // Old signatures are refused after the maximum age, and so are ones from the future
    // beyond a little clock skew.
    let age = |s: i64| T0 + s * 1000;
    assert_eq!(check(&f, "vk-1", &sig, age(DAY_S)), Ok(()));
    assert_eq!(
        check(&f, "vk-1", &sig, age(DAY_S + 1)),
        Err(SignatureError::Expired)
    );
    assert_eq!(
        verify_signature("k", &f, "vk-1", &sig, age(3601), 3600),
        Err(SignatureError::Expired)
    );
    assert_eq!(
        check(&f, "vk-1", &sig, age(-MAX_SIGNATURE_CLOCK_SKEW_S)),
        Ok(())
    );
    assert_eq!(
        check(&f, "vk-1", &sig, age(-MAX_SIGNATURE_CLOCK_SKEW_S - 1)),
        Err(SignatureError::FromTheFuture)
    );
    // Absent fields sign as empty; only present ones count as verified.
    let partial = SignedVisitor {
        customer_id: "",
        name: "",
        ..f
    };
    let partial_sig = sign_visitor("k", &partial);
    assert_eq!(
        verified_fields("k", &partial, "vk-1", &partial_sig, T0, DAY_S).unwrap(),
        ["email"]
    );
    assert_eq!(
        verified_fields("k", &partial, "vk-1", &sig, T0, DAY_S),
        Err(SignatureError::Mismatch)
    );
}

on_both_databases!(option_menus_and_answers, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
    let now = T0 + 2 * SEC;
    let menu = store
        .add_chat_event(
            c.id,
            &NewEvent {
                data: json!({ "prompt": "Which colour?", "choices": ["Red", " Blue "] }),
                client_id: Some("menu1".into()),
                ..NewEvent::new(EventKind::Options, op(anna), "")
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(menu.body, "Which colour?");
    assert_eq!(
        menu.data,
        json!({ "prompt": "Which colour?", "choices": ["Red", "Blue"] })
    );
    let answer = |choice: &str, seq: i64| NewEvent {
        data: json!({ "menu_seq": seq, "choice": choice }),
        ..NewEvent::new(EventKind::Answer, Sender::Visitor, "")
    };
    let a = store
        .add_chat_event(c.id, &answer("Blue", menu.seq), now)
        .await
        .unwrap();
    assert_eq!(a.body, "Blue");
    assert_eq!(a.data, json!({ "menu_seq": menu.seq, "choice": "Blue" }));
    for bad in [answer("Green", menu.seq), answer("Red", a.seq)] {
        assert!(matches!(
            store.add_chat_event(c.id, &bad, now).await,
            Err(ChatError::Invalid(_))
        ));
    }
    // 2–10 choices, none twice; operators don't answer; visitors don't ask.
    for choices in [
        json!(["only"]),
        json!(["a", "a"]),
        json!((0..11).map(|i| i.to_string()).collect::<Vec<_>>()),
    ] {
        let bad = NewEvent {
            data: json!({ "prompt": "?", "choices": choices }),
            ..NewEvent::new(EventKind::Options, op(anna), "")
        };
        assert!(matches!(
            store.add_chat_event(c.id, &bad, now).await,
            Err(ChatError::Invalid(_))
        ));
    }
    let visitor_menu = NewEvent {
        data: json!({ "prompt": "?", "choices": ["a", "b"] }),
        ..NewEvent::new(EventKind::Options, Sender::Visitor, "")
    };
    assert!(matches!(
        store.add_chat_event(c.id, &visitor_menu, now).await,
        Err(ChatError::Invalid(_))
    ));
    // Lifecycle kinds come only from their own calls.
    assert!(matches!(
        store
            .add_chat_event(
                c.id,
                &NewEvent::new(EventKind::End, Sender::System, ""),
                now
            )
            .await,
        Err(ChatError::Invalid(_))
    ));
    // The system's greeting; a message too long.
    let hello = store
        .add_chat_event(
            c.id,
            &NewEvent::new(EventKind::Greeting, Sender::System, "Welcome!"),
            now,
        )
        .await
        .unwrap();
    assert_eq!(hello.from, SenderKind::System);
    assert!(matches!(
        store
            .add_chat_event(c.id, &text(Sender::Visitor, &"x".repeat(4001), None), now)
            .await,
        Err(ChatError::Invalid(_))
    ));
    // An operator who isn't in the chat can't write in it.
    let bela = agent(&store, "bela", 3).await;
    assert!(matches!(
        store
            .add_chat_event(c.id, &text(op(bela), "hi", None), now)
            .await,
        Err(ChatError::Conflict(_))
    ));
    // As JSON for the web layer.
    let js = serde_json::to_value(&menu).unwrap();
    assert_eq!(js["kind"], "options");
    assert_eq!(js["from"], "operator");
    assert_eq!(js["name"], "Anna");
    assert_eq!(js["private"], false);
});

on_both_databases!(tags_notes_pages_and_past_chats, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
    store.add_chat_tag(c.id, " campaign-2025 ").await.unwrap();
    store.add_chat_tag(c.id, "campaign-2025").await.unwrap();
    store.add_chat_tag(c.id, "vip").await.unwrap();
    assert_eq!(
        store.chat_tags(c.id).await.unwrap(),
        ["campaign-2025", "vip"]
    );
    assert!(store.remove_chat_tag(c.id, "vip").await.unwrap());
    assert!(!store.remove_chat_tag(c.id, "vip").await.unwrap());
    assert!(matches!(
        store.add_chat_tag(c.id, &"t".repeat(41)).await,
        Err(ChatError::Invalid(_))
    ));
    assert!(matches!(
        store.add_chat_tag(999_999, "x").await,
        Err(ChatError::NotFound)
    ));
    let tagged = store.chats_with_tag("campaign-2025", 10).await.unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].operators, ["Anna"]);
    assert_eq!(tagged[0].tags, ["campaign-2025"]);
    assert_eq!(tagged[0].visitor_name.as_deref(), Some("Béla"));

    let note = store
        .add_chat_note(c.id, anna, "Call back on Monday", T0 + 2 * SEC)
        .await
        .unwrap();
    assert!(!note.transfer);
    assert_eq!(
        store.chat_notes(c.id).await.unwrap(),
        std::slice::from_ref(&note)
    );

    // A later chat of the same visitor sees the old notes and chats.
    let (later, _) = store
        .create_chat(&NewChat {
            site: "demo".into(),
            visitor_id: c.visitor_id,
            queue: "sales".into(),
            now_ms: T0 + 60 * SEC,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.visitor_notes(later.visitor_id).await.unwrap(), [note]);
    let past: Vec<i64> = store
        .visitor_chats(c.visitor_id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(past, [later.id, c.id]);

    let page = store
        .add_page_view(
            c.visitor_id,
            Some(c.id),
            "https://shop.example/p/1",
            "Shoes\n",
            T0,
        )
        .await
        .unwrap();
    assert_eq!(page.title, "Shoes");
    store
        .add_page_view(
            c.visitor_id,
            None,
            "https://shop.example/cart",
            "Cart",
            T0 + SEC,
        )
        .await
        .unwrap();
    let pages: Vec<String> = store
        .page_views(c.visitor_id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.url)
        .collect();
    assert_eq!(
        pages,
        ["https://shop.example/cart", "https://shop.example/p/1"]
    );
    assert!(matches!(
        store
            .add_page_view(c.visitor_id, None, "javascript:alert(1)", "", T0)
            .await,
        Err(ChatError::Invalid(_))
    ));
    let other = visitor(&store).await;
    assert!(matches!(
        store
            .add_page_view(other.id, Some(c.id), "https://shop.example/", "", T0)
            .await,
        Err(ChatError::Invalid(_))
    ));

    // Visitor uploads: never private, readable by the visitor before they are sent.
    let id = new_file_id();
    let f = store
        .add_chat_file(&NewChatFile {
            id: id.clone(),
            chat_id: c.id,
            name: "photo.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 20 * 1024 * 1024,
            private: false,
            uploaded_by: Sender::Visitor,
            now_ms: T0,
        })
        .await
        .unwrap();
    assert_eq!(store.chat_file(&id).await.unwrap(), Some(f));
    assert!(
        store
            .chat_file_for(&id, c.id, Audience::Visitor)
            .await
            .unwrap()
            .is_some()
    );
    for bad in [
        NewChatFile {
            id: new_file_id(),
            chat_id: c.id,
            name: "big.bin".into(),
            content_type: "application/octet-stream".into(),
            size: 20 * 1024 * 1024 + 1,
            private: false,
            uploaded_by: Sender::Visitor,
            now_ms: T0,
        },
        NewChatFile {
            id: new_file_id(),
            chat_id: c.id,
            name: "secret.txt".into(),
            content_type: "text/plain".into(),
            size: 1,
            private: true,
            uploaded_by: Sender::Visitor,
            now_ms: T0,
        },
        NewChatFile {
            id: "../../etc/passwd".into(),
            chat_id: c.id,
            name: "x".into(),
            content_type: "text/plain".into(),
            size: 1,
            private: false,
            uploaded_by: Sender::Visitor,
            now_ms: T0,
        },
    ] {
        assert!(matches!(
            store.add_chat_file(&bad).await,
            Err(ChatError::Invalid(_))
        ));
    }
    // The operator can't send the visitor's upload as their own.
    let stolen = NewEvent {
        data: json!({ "files": [id] }),
        ..NewEvent::new(EventKind::Attachment, op(anna), "")
    };
    assert!(matches!(
        store.add_chat_event(c.id, &stolen, T0).await,
        Err(ChatError::Invalid(_))
    ));
});

// The operators a chat's news is pushed to: the one it is offered to, then those in it,
// never one who left.
on_both_databases!(chat_listeners, |store: Store| async move {
    let anna = agent(&store, "anna", 3).await;
    let bela = agent(&store, "bela", 3).await;
    let c = waiting_chat(&store, "sales", T0).await;
    assert!(store.chat_listeners(c.id).await.unwrap().is_empty());
    assert!(
        store
            .offer_chat(c.id, "anna", T0, T0 + 30 * SEC)
            .await
            .unwrap()
    );
    assert_eq!(store.chat_listeners(c.id).await.unwrap(), vec!["anna"]);
    store
        .accept_chat(c.id, "anna", anna, T0 + SEC)
        .await
        .unwrap();
    assert_eq!(store.chat_listeners(c.id).await.unwrap(), vec!["anna"]);
    store
        .invite_to_chat(c.id, anna, Target::Operator("bela".into()), T0 + 2 * SEC)
        .await
        .unwrap();
    let invite = store.pending_invite(c.id).await.unwrap().unwrap();
    store
        .answer_invite(invite.id, "bela", bela, true, T0 + 3 * SEC)
        .await
        .unwrap();
    let mut both = store.chat_listeners(c.id).await.unwrap();
    both.sort();
    assert_eq!(both, vec!["anna", "bela"]);
    store.leave_chat(c.id, anna, T0 + 4 * SEC).await.unwrap();
    assert_eq!(store.chat_listeners(c.id).await.unwrap(), vec!["bela"]);
});

const MIN: i64 = 60 * SEC;

on_both_databases!(abandoned_waiting_chats_end, |store: Store| async move {
    operator(&store, "anna", 3).await;
    let anna = agent(&store, "bela", 3).await;
    let never = waiting_chat(&store, "sales", T0).await;
    let seen = waiting_chat(&store, "sales", T0).await;
    let offered = waiting_chat(&store, "sales", T0).await;
    assert!(
        store
            .offer_chat(offered.id, "anna", T0 + SEC, T0 + 10 * MIN)
            .await
            .unwrap()
    );
    let active = accepted_chat(&store, "sales", "bela", anna, T0).await;
    // The second visitor's socket was open four minutes in; ended chats aren't touched.
    store
        .touch_chat_visitors(&[seen.id, 999_999], T0 + 4 * MIN)
        .await
        .unwrap();
    // Nothing is gone for five minutes yet.
    assert!(
        store
            .end_abandoned_chats(T0 + 5 * MIN - 5 * MIN, T0 + 5 * MIN)
            .await
            .unwrap()
            .is_empty()
    );
    let now = T0 + 6 * MIN;
    let mut ended = store.end_abandoned_chats(now - 5 * MIN, now).await.unwrap();
    ended.sort_by_key(|a| a.chat_id);
    assert_eq!(
        ended,
        [
            hotline_core::chat::AbandonedChat {
                chat_id: never.id,
                offered_to: None
            },
            hotline_core::chat::AbandonedChat {
                chat_id: offered.id,
                offered_to: Some("anna".into())
            },
        ]
    );
    for id in [never.id, offered.id] {
        let c = state(&store, id).await;
        assert_eq!(c.state, ChatState::Ended);
        assert_eq!(c.ended_by, Some(SenderKind::System));
        assert_eq!(c.offered_to, None);
        let events = store.chat_events(id, 0, Audience::Visitor).await.unwrap();
        let end = events.last().unwrap();
        assert_eq!(end.kind, EventKind::End);
        assert_eq!(end.data, json!({ "by": "system", "reason": "abandoned" }));
    }
    // The offered operator's place is free again.
    assert_eq!(store.chat_load("anna").await.unwrap(), 0);
    assert_eq!(state(&store, seen.id).await.state, ChatState::Waiting);
    assert_eq!(state(&store, active.id).await.state, ChatState::Active);
    // Run again: nothing more; later the second one goes too.
    assert!(
        store
            .end_abandoned_chats(now - 5 * MIN, now)
            .await
            .unwrap()
            .is_empty()
    );
    let later = T0 + 9 * MIN + 1;
    let ended = store
        .end_abandoned_chats(later - 5 * MIN, later)
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].chat_id, seen.id);
    assert_eq!(state(&store, active.id).await.state, ChatState::Active);
    assert!(store.queue_positions().await.unwrap().is_empty());
});

on_both_databases!(transcript_count_is_atomic, |store: Store| async move {
    let c = waiting_chat(&store, "sales", T0).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        let id = c.id;
        set.spawn(async move { store.count_chat_transcript(id, Some(3)).await.unwrap() });
    }
    let counted = set.join_all().await.into_iter().filter(|c| *c).count();
    assert_eq!(counted, 3);
    assert_eq!(store.chat_transcripts_sent(c.id).await.unwrap(), 3);
    // Without a limit (the operator's copy) it always counts; a copy not queued is given
    // back.
    assert!(store.count_chat_transcript(c.id, None).await.unwrap());
    assert_eq!(store.chat_transcripts_sent(c.id).await.unwrap(), 4);
    store.uncount_chat_transcript(c.id).await.unwrap();
    assert_eq!(store.chat_transcripts_sent(c.id).await.unwrap(), 3);
    assert!(!store.count_chat_transcript(c.id, Some(3)).await.unwrap());
    assert!(matches!(
        store.count_chat_transcript(999_999, Some(3)).await,
        Err(ChatError::NotFound)
    ));
});

on_both_databases!(
    chat_file_quota_and_unsent_files,
    |store: Store| async move {
        let c = waiting_chat(&store, "sales", T0).await;
        let file = |size: i64, now_ms: i64| NewChatFile {
            id: new_file_id(),
            chat_id: c.id,
            name: "photo.jpg".into(),
            content_type: "image/jpeg".into(),
            size,
            private: false,
            uploaded_by: Sender::Visitor,
            now_ms,
        };
        let quota = 10 * 1024 * 1024;
        let sent = store
            .add_chat_file_within(&file(6 * 1024 * 1024, T0), quota)
            .await
            .unwrap();
        assert!(matches!(
            store
                .add_chat_file_within(&file(5 * 1024 * 1024, T0), quota)
                .await,
            Err(ChatError::OverQuota(m)) if m.contains("10 MB")
        ));
        let unsent = store
            .add_chat_file_within(&file(4 * 1024 * 1024, T0 + MIN), quota)
            .await
            .unwrap();
        assert_eq!(
            store.chat_files_bytes(c.id).await.unwrap(),
            10 * 1024 * 1024
        );
        // Parallel uploads can't pass the quota together: the chat's lock counts them.
        let other = waiting_chat(&store, "sales", T0).await;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let store = store.clone();
            let f = NewChatFile {
                chat_id: other.id,
                ..file(3 * 1024 * 1024, T0)
            };
            set.spawn(async move { store.add_chat_file_within(&f, quota).await.is_ok() });
        }
        let took = set.join_all().await.into_iter().filter(|ok| *ok).count();
        assert_eq!(took, 3);
        // Sent in a message: kept; never sent and an hour old: removed.
        store
            .add_chat_event(
                c.id,
                &NewEvent {
                    data: json!({ "files": [sent.id] }),
                    ..NewEvent::new(EventKind::Attachment, Sender::Visitor, "")
                },
                T0 + 2 * MIN,
            )
            .await
            .unwrap();
        assert!(
            store
                .remove_unsent_chat_files(T0 + MIN)
                .await
                .unwrap()
                .iter()
                .all(|id| *id != unsent.id && *id != sent.id)
        );
        let removed = store.remove_unsent_chat_files(T0 + 61 * MIN).await.unwrap();
        assert!(removed.contains(&unsent.id));
        assert!(!removed.contains(&sent.id));
        assert!(store.chat_file(&unsent.id).await.unwrap().is_none());
        assert!(store.chat_file(&sent.id).await.unwrap().is_some());
    }
);

on_both_databases!(
    open_chats_are_every_chat_not_ended,
    |store: Store| async move {
        let anna = agent(&store, "anna", 3).await;
        let waiting = waiting_chat(&store, "support", T0).await;
        let active = accepted_chat(&store, "sales", "anna", anna, T0).await;
        let ended = waiting_chat(&store, "sales", T0 + SEC).await;
        store
            .end_chat(ended.id, Sender::Visitor, T0 + 2 * SEC)
            .await
            .unwrap();
        let open: Vec<(i64, ChatState)> = store
            .open_chats()
            .await
            .unwrap()
            .iter()
            .map(|c| (c.id, c.state))
            .collect();
        assert_eq!(
            open,
            [
                (waiting.id, ChatState::Waiting),
                (active.id, ChatState::Active)
            ]
        );
    }
);
