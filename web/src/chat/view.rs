//! The JSON both sides' pages read: events as frames, and the operator's view of a chat
//! (visitor details beside the conversation).

use hotline_core::chat::{Audience, Chat, ChatEvent, SenderKind};
use serde_json::{Value, json};

use crate::state::WebState;

/// How many past chats (with transcripts) the details panel shows.
const PAST_CHATS: usize = 5;
/// How many pages visited it lists.
const PAGES: i64 = 50;

/// One event as a frame for `audience`. `user` is the sending operator's login name
/// (operators' pages tell their own messages by it).
pub fn event_frame(e: &ChatEvent, audience: Audience, user: Option<&str>) -> Value {
    let mut frame = json!({
        "t": "event",
        "chat": e.chat_id,
        "seq": e.seq,
        "kind": e.kind,
        "from": e.from,
        "name": e.name,
        "text": e.body,
        "data": e.data,
        "at": e.created_at_ms,
    });
    // The sender's own client id lets its page swap its "sending…" copy for this.
    let own_side = match audience {
        Audience::Visitor => e.from == SenderKind::Visitor,
        Audience::Operators => e.from == SenderKind::Operator,
    };
    if own_side && let Some(c) = &e.client_id {
        frame["client_id"] = json!(c);
    }
    if audience == Audience::Operators {
        frame["private"] = json!(e.private);
        frame["user_id"] = json!(e.user_id);
        if let Some(u) = user {
            frame["user"] = json!(u);
        }
    }
    frame
}

/// The chat as the operator's page shows it: state, visitor fields (which are verified),
/// parameters, tags, notes, pages visited, past chats with transcripts, participants and
/// the pending invitation.
pub async fn chat_view(state: &WebState, chat: &Chat) -> Value {
    let store = &state.store;
    let visitor = store.visitor(chat.visitor_id).await.ok().flatten();
    let participants = store.chat_participants(chat.id).await.unwrap_or_default();
    let tags = store.chat_tags(chat.id).await.unwrap_or_default();
    let notes = store
        .visitor_notes(chat.visitor_id)
        .await
        .unwrap_or_default();
    let pages = store
        .page_views(chat.visitor_id, PAGES)
        .await
        .unwrap_or_default();
    let mut past = Vec::new();
    for c in store
        .visitor_chats(chat.visitor_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.id != chat.id)
        .take(PAST_CHATS)
    {
        let transcript: Vec<Value> = store
            .chat_events(c.id, 0, Audience::Operators)
            .await
            .unwrap_or_default()
            .iter()
            .map(|e| event_frame(e, Audience::Operators, None))
            .collect();
        past.push(json!({
            "id": c.id,
            "started_at": c.created_at_ms,
            "ended_at": c.ended_at_ms,
            "operator": c.operators.join(", "),
            "queue": c.queue,
            "tags": c.tags,
            "transcript": transcript,
        }));
    }
    let pending = store.pending_invite(chat.id).await.ok().flatten();
    json!({
        "id": chat.id,
        "site": chat.site,
        "state": chat.state,
        "queue": chat.queue,
        "topic": chat.topic,
        "created_at": chat.created_at_ms,
        "ended_at": chat.ended_at_ms,
        "ended_by": chat.ended_by,
        "last_seq": chat.last_seq,
        "visitor": visitor.map(|v| json!({
            "id": v.id,
            "name": v.name,
            "email": v.email,
            "phone": v.phone,
            "customer_id": v.customer_id,
            "verified": v.verified,
        })),
        "params": {
            "page_url": chat.page_url,
            "browser": chat.browser,
            "os": chat.os,
        },
        "tags": tags,
        "notes": notes.iter().map(|n| json!({
            "user": n.author,
            "text": n.text,
            "at": n.created_at_ms,
            "transfer": n.transfer,
            "chat": n.chat_id,
        })).collect::<Vec<_>>(),
        "pages": pages.iter().map(|p| json!({
            "url": p.url, "title": p.title, "at": p.at_ms,
        })).collect::<Vec<_>>(),
        "past": past,
        "participants": participants.iter().filter(|p| p.left_at_ms.is_none()).map(|p| json!({
            "name": p.operator,
            "display_name": p.name,
            "wrapped_up": p.wrapped_up_at_ms.is_some(),
        })).collect::<Vec<_>>(),
        "pending_invite": pending,
    })
}

/// The visitor's state frame: where the chat is, and the place in the queue while it
/// waits.
pub async fn state_frame(state: &WebState, chat: &Chat) -> Value {
    let position = match chat.state {
        hotline_core::chat::ChatState::Waiting | hotline_core::chat::ChatState::Offered => {
            state.store.queue_position(chat.id).await.ok().flatten()
        }
        _ => None,
    };
    json!({ "t": "state", "state": chat.state, "position": position })
}
