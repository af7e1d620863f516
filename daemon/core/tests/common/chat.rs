//! Chats as the chat test files set them up: operators with their web users, visitors,
//! and chats waiting in a queue or accepted by an operator.

use std::sync::atomic::{AtomicU64, Ordering};

use hotline_core::chat::{Chat, NewChat, NewVisitor, Sender, Visitor};
use hotline_core::operators::NewOperator;
use hotline_core::store::Store;
use hotline_core::users::{NewUser, Role};

pub const T0: i64 = 1_700_000_000_000;
pub const SEC: i64 = 1000;

pub async fn operator(store: &Store, name: &str, capacity: i64) {
    store
        .add_operator(&NewOperator {
            name,
            display_name: name,
            sip_user: name,
            realm: "hotline",
            ha1_md5: "x",
            ha1_sha256: "y",
            sip_digest: Default::default(),
            chat_capacity: capacity,
            created_at_ms: T0,
        })
        .await
        .unwrap();
}

/// An operator and the web user who works as them ("anna" shows as "Anna"); returns the
/// user's id.
pub async fn agent(store: &Store, name: &str, capacity: i64) -> i64 {
    operator(store, name, capacity).await;
    let display = format!("{}{}", name[..1].to_uppercase(), &name[1..]);
    store
        .add_user(&NewUser {
            name,
            display_name: &display,
            role: Role::Operator,
            password: "correct horse battery",
            operator: Some(name),
            now_ms: T0,
        })
        .await
        .unwrap()
}

pub fn op(user_id: i64) -> Sender {
    Sender::Operator {
        user_id,
        name: String::new(),
    }
}

// Visitor keys unique within a test binary, so every chat has a visitor of its own.
static NEXT: AtomicU64 = AtomicU64::new(1);

pub async fn visitor(store: &Store) -> Visitor {
    let key = format!("visitor-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    store
        .upsert_visitor(&NewVisitor {
            site: "demo".into(),
            visitor_key: key,
            name: Some("Béla".into()),
            now_ms: T0,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// A new visitor's chat in `queue`, started at `now_ms` and waiting.
pub async fn waiting_chat(store: &Store, queue: &str, now_ms: i64) -> Chat {
    let v = visitor(store).await;
    let (chat, token) = store
        .create_chat(&NewChat {
            site: "demo".into(),
            visitor_id: v.id,
            queue: queue.into(),
            topic: "Order 1234".into(),
            page_url: "https://shop.example/cart".into(),
            browser: "Firefox 140".into(),
            os: "Linux".into(),
            user_agent: "Mozilla/5.0".into(),
            now_ms,
        })
        .await
        .unwrap();
    assert_eq!(token.len(), 32);
    chat
}

/// A chat in `queue` started at `at`, offered to `operator` then and accepted a second later.
pub async fn accepted_chat(
    store: &Store,
    queue: &str,
    operator: &str,
    user_id: i64,
    at: i64,
) -> Chat {
    let c = waiting_chat(store, queue, at).await;
    assert!(
        store
            .offer_chat(c.id, operator, at, at + 30 * SEC)
            .await
            .unwrap()
    );
    store
        .accept_chat(c.id, operator, user_id, at + SEC)
        .await
        .unwrap()
}
