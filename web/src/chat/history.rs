//! Past chats for the console: the list by tag and a chat's whole transcript.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hotline_core::chat::Audience;
use hotline_core::users::WebSession;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error_message;
use super::operator::my_queues;
use crate::auth::OperatorPage;
use crate::pages::me;
use crate::state::WebState;

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    tag: String,
}

/// Supervisors (and admins) read every chat's history; operators theirs (issue 15).
fn sees_every_chat(s: &WebSession) -> bool {
    s.user.role.allows(hotline_core::users::Role::Supervisor)
}

/// The queues of the user's operator account (none without one).
fn queues_of(state: &WebState, s: &WebSession) -> Vec<String> {
    s.user
        .operator
        .as_deref()
        .map(|op| my_queues(state, op))
        .unwrap_or_default()
}

/// GET /console/chat/history?tag=…: past chats with a tag (seed 004: tags are kept with the
/// session and can be filtered). Operators see the chats they took part in and those of
/// their queues; supervisors all.
pub(crate) async fn history(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let tag = q.tag.trim().to_string();
    let chats = if tag.is_empty() {
        Vec::new()
    } else if sees_every_chat(&s) {
        state
            .store
            .chats_with_tag(&tag, 200)
            .await
            .unwrap_or_default()
    } else {
        state
            .store
            .chats_with_tag_for(&tag, 200, s.user.id, &queues_of(&state, &s))
            .await
            .unwrap_or_default()
    };
    let rows: Vec<Value> = chats
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "started": state.local_time(c.created_at_ms),
                "visitor_name": c.visitor_name,
                "queue": c.queue,
                "operators": c.operators,
                "tags": c.tags,
                "state": c.state,
            })
        })
        .collect();
    state.render(
        "chat_history.html",
        minijinja::context! { me => me(&s), tag => tag, chats => rows },
    )
}

/// GET /console/chat/history/{id}: the whole conversation as the organisation keeps it,
/// private messages marked.
pub(crate) async fn transcript(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path(id): Path<i64>,
) -> Response {
    let Ok(Some(chat)) = state.store.chat(id).await else {
        return state.error_page(StatusCode::NOT_FOUND, "There is no such chat.");
    };
    if !sees_every_chat(&s) {
        match state
            .store
            .chat_visible_to(id, s.user.id, &queues_of(&state, &s))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return state.error_page(
                    StatusCode::FORBIDDEN,
                    "This chat is not yours to read: operators see the chats they took part in and those of their queues.",
                );
            }
            Err(e) => {
                return state.error_page(StatusCode::SERVICE_UNAVAILABLE, &error_message(&e));
            }
        }
    }
    let visitor = state.store.visitor(chat.visitor_id).await.ok().flatten();
    let tags = state.store.chat_tags(id).await.unwrap_or_default();
    let events: Vec<Value> = state
        .store
        .chat_events(id, 0, Audience::Operators)
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let who = match e.from {
                hotline_core::chat::SenderKind::Visitor => visitor
                    .as_ref()
                    .and_then(|v| v.name.clone())
                    .unwrap_or_else(|| "Visitor".into()),
                _ if e.name.is_empty() => "Hotline".into(),
                _ => e.name.clone(),
            };
            let text = if e.body.is_empty() {
                format!("({})", e.kind.as_str())
            } else {
                e.body.clone()
            };
            json!({ "at": state.local_time(e.created_at_ms), "who": who,
                    "private": e.private, "text": text })
        })
        .collect();
    state.render(
        "chat_transcript.html",
        minijinja::context! {
            me => me(&s),
            chat => json!({ "id": chat.id, "queue": chat.queue }),
            visitor_name => visitor.and_then(|v| v.name),
            started => state.local_time(chat.created_at_ms),
            ended => chat.ended_at_ms.map(|t| state.local_time(t)),
            tags => tags,
            events => events,
        },
    )
}
