//! Who may read and touch which chat (issue 15): an operator sees the chats they took
//! part in and those of their queues; only an operator in a chat is "in" it. Every test
//! runs on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use hotline_core::chat::{Chat, NewChat, NewVisitor, Sender};
use hotline_core::operators::NewOperator;
use hotline_core::store::Store;
use hotline_core::users::{NewUser, Role};

const T0: i64 = 1_700_000_000_000;
const SEC: i64 = 1000;

/// An operator and the web user who works as them; returns the user's id.
async fn agent(store: &Store, name: &str) -> i64 {
    store
        .add_operator(&NewOperator {
            name,
            display_name: name,
            sip_user: name,
            realm: "hotline",
            ha1_md5: "x",
            ha1_sha256: "y",
            sip_digest: Default::default(),
            chat_capacity: 3,
            created_at_ms: T0,
        })
        .await
        .unwrap();
    store
        .add_user(&NewUser {
            name,
            display_name: name,
            role: Role::Operator,
            password: "correct horse battery",
            operator: Some(name),
            now_ms: T0,
        })
        .await
        .unwrap()
}

static NEXT: AtomicU64 = AtomicU64::new(1);

async fn chat_in(store: &Store, queue: &str) -> Chat {
    let v = store
        .upsert_visitor(&NewVisitor {
            site: "demo".into(),
            visitor_key: format!("visitor-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            name: Some("Béla".into()),
            now_ms: T0,
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .create_chat(&NewChat {
            site: "demo".into(),
            visitor_id: v.id,
            queue: queue.into(),
            topic: "Order".into(),
            now_ms: T0,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

async fn accepted(store: &Store, queue: &str, operator: &str, user_id: i64) -> Chat {
    let c = chat_in(store, queue).await;
    assert!(
        store
            .offer_chat(c.id, operator, T0, T0 + 30 * SEC)
            .await
            .unwrap()
    );
    store
        .accept_chat(c.id, operator, user_id, T0 + SEC)
        .await
        .unwrap()
}

fn ids(list: &[hotline_core::chat::ChatSummary]) -> Vec<i64> {
    let mut v: Vec<i64> = list.iter().map(|s| s.id).collect();
    v.sort();
    v
}

on_both_databases!(
    operators_see_their_chats_and_their_queues,
    |store: Store| async move {
        let anna = agent(&store, "anna").await;
        let bela = agent(&store, "bela").await;
        let annas = accepted(&store, "sales", "anna", anna).await;
        let belas = accepted(&store, "support", "bela", bela).await;
        let waiting_sales = chat_in(&store, "sales").await;
        let billing = chat_in(&store, "billing").await;
        for c in [&annas, &belas, &waiting_sales, &billing] {
            store.add_chat_tag(c.id, "vip").await.unwrap();
        }
        let sales = vec!["sales".to_string()];
        // Anna, of sales: her chat and sales' chats; not Bela's support chat, not billing.
        let seen = store
            .chats_with_tag_for("vip", 100, anna, &sales)
            .await
            .unwrap();
        assert_eq!(ids(&seen), ids_of(&[&annas, &waiting_sales]));
        // Bela is in no queue: only the chat he took part in.
        let seen = store
            .chats_with_tag_for("vip", 100, bela, &[])
            .await
            .unwrap();
        assert_eq!(ids(&seen), ids_of(&[&belas]));
        // Supervisors list everything.
        assert_eq!(store.chats_with_tag("vip", 100).await.unwrap().len(), 4);

        for (chat, anna_sees) in [
            (&annas, true),
            (&waiting_sales, true),
            (&belas, false),
            (&billing, false),
        ] {
            assert_eq!(
                store.chat_visible_to(chat.id, anna, &sales).await.unwrap(),
                anna_sees,
                "chat {} in {}",
                chat.id,
                chat.queue
            );
        }
        assert!(!store.chat_visible_to(999_999, anna, &sales).await.unwrap());
        // Once she has left a chat she took part in, she still sees its history.
        store
            .end_chat(
                belas.id,
                Sender::Operator {
                    user_id: bela,
                    name: String::new(),
                },
                T0 + 5 * SEC,
            )
            .await
            .unwrap();
        store
            .wrap_up_chat(belas.id, bela, "", "", T0 + 6 * SEC)
            .await
            .unwrap();
        assert!(store.chat_visible_to(belas.id, bela, &[]).await.unwrap());
    }
);

fn ids_of(chats: &[&Chat]) -> Vec<i64> {
    let mut v: Vec<i64> = chats.iter().map(|c| c.id).collect();
    v.sort();
    v
}

on_both_databases!(in_the_chat_until_the_wrap_up, |store: Store| async move {
    let anna = agent(&store, "anna").await;
    let bela = agent(&store, "bela").await;
    let c = accepted(&store, "sales", "anna", anna).await;
    assert!(store.is_in_chat(c.id, anna).await.unwrap());
    assert!(!store.is_in_chat(c.id, bela).await.unwrap());
    assert!(!store.is_in_chat(999_999, anna).await.unwrap());
    let me = Sender::Operator {
        user_id: anna,
        name: String::new(),
    };
    store.end_chat(c.id, me, T0 + 5 * SEC).await.unwrap();
    assert!(
        store.is_in_chat(c.id, anna).await.unwrap(),
        "still in it for the wrap-up"
    );
    store
        .wrap_up_chat(c.id, anna, "", "", T0 + 6 * SEC)
        .await
        .unwrap();
    assert!(!store.is_in_chat(c.id, anna).await.unwrap());
});

on_both_databases!(an_invitation_names_its_queue, |store: Store| async move {
    let anna = agent(&store, "anna").await;
    agent(&store, "bela").await;
    let c = accepted(&store, "sales", "anna", anna).await;
    let to_queue = store
        .invite_to_chat(
            c.id,
            anna,
            hotline_core::chat::Target::Queue("billing".into()),
            T0 + 2 * SEC,
        )
        .await
        .unwrap();
    assert_eq!(
        store.invite_queue(to_queue.id).await.unwrap().as_deref(),
        Some("billing")
    );
    store
        .cancel_invite(to_queue.id, anna, T0 + 3 * SEC)
        .await
        .unwrap();
    let by_name = store
        .invite_to_chat(
            c.id,
            anna,
            hotline_core::chat::Target::Operator("bela".into()),
            T0 + 4 * SEC,
        )
        .await
        .unwrap();
    assert_eq!(store.invite_queue(by_name.id).await.unwrap(), None);
    assert_eq!(store.invite_queue(999_999).await.unwrap(), None);
});
