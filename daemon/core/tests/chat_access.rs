//! Who may read and touch which chat (issue 15): an operator sees the chats they took
//! part in and those of their queues; only an operator in a chat is "in" it. Every test
//! runs on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::chat::{Chat, Sender};
use hotline_core::store::Store;

use common::chat::{SEC, T0, accepted_chat, agent, waiting_chat};

fn ids(list: &[hotline_core::chat::ChatSummary]) -> Vec<i64> {
    let mut v: Vec<i64> = list.iter().map(|s| s.id).collect();
    v.sort();
    v
}

on_both_databases!(
    operators_see_their_chats_and_their_queues,
    |store: Store| async move {
        let anna = agent(&store, "anna", 3).await;
        let bela = agent(&store, "bela", 3).await;
        let annas = accepted_chat(&store, "sales", "anna", anna, T0).await;
        let belas = accepted_chat(&store, "support", "bela", bela, T0).await;
        let waiting_sales = waiting_chat(&store, "sales", T0).await;
        let billing = waiting_chat(&store, "billing", T0).await;
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
    let anna = agent(&store, "anna", 3).await;
    let bela = agent(&store, "bela", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
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
    let anna = agent(&store, "anna", 3).await;
    agent(&store, "bela", 3).await;
    let c = accepted_chat(&store, "sales", "anna", anna, T0).await;
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
