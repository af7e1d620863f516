//! Call records and chats, read a page at a time: GET /api/v1/calls, /api/v1/chats and
//! /api/v1/chats/{id}. The queries are the store's own (`hotline calls` reads the same);
//! a page that may have more ends with `next`, the cursor for the following page.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hotline_core::cdr::CallFilter;
use hotline_core::chat::{Audience, ChatFilter, ChatState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Api;
use super::problem::{ApiPath, ApiQuery, Problem};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

pub const CALLS_QUERY: &[(&str, &str)] = &[
    (
        "since",
        "started at or after: RFC 3339, or a date (its midnight UTC)",
    ),
    (
        "until",
        "started before: RFC 3339, or a date (its midnight UTC)",
    ),
    ("queue", "the queue the caller last waited in"),
    ("operator", "the operator who took the call"),
    ("limit", "records per page, 1-1000 (default 100)"),
    ("cursor", "the `next` of the previous page"),
];

pub const CHATS_QUERY: &[(&str, &str)] = &[
    (
        "since",
        "created at or after: RFC 3339, or a date (its midnight UTC)",
    ),
    (
        "until",
        "created before: RFC 3339, or a date (its midnight UTC)",
    ),
    ("queue", "the chat's queue"),
    ("state", "waiting, offered, active or ended"),
    ("limit", "chats per page, 1-1000 (default 100)"),
    ("cursor", "the `next` of the previous page"),
];

/// `{ "<key>": [...], "next": "<cursor>" | null }`.
pub fn page_schema(key: &str) -> Value {
    json!({ "type": "object", "required": [key, "next"], "properties": {
        key: { "type": "array", "items": { "type": "object" } },
        "next": { "type": ["string", "null"],
                  "description": "pass as `cursor` for the next page; null on the last" } } })
}

#[derive(Deserialize)]
pub struct CallsQuery {
    since: Option<String>,
    until: Option<String>,
    queue: Option<String>,
    operator: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct ChatsQuery {
    since: Option<String>,
    until: Option<String>,
    queue: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The paging parameters, checked.
struct Paging {
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    limit: i64,
    before_id: Option<i64>,
}

fn paging(
    since: Option<&str>,
    until: Option<&str>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Paging, Problem> {
    let instant = |name: &str, v: Option<&str>| {
        v.filter(|v| !v.is_empty())
            .map(|v| {
                crate::parse_instant(v)
                    .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("{name}: {e}")))
            })
            .transpose()
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("limit: {limit} is not within 1-{MAX_LIMIT}"),
        ));
    }
    let before_id = cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("cursor: {c:?} is not a `next` this API gave"),
                )
            })
        })
        .transpose()?;
    Ok(Paging {
        since_ms: instant("since", since)?,
        until_ms: instant("until", until)?,
        limit,
        before_id,
    })
}

/// The page and its `next`: one more row than the page was asked for, so the last page
/// says it is the last.
fn page<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| rows.last().map(|r| id(r).to_string()))
        .flatten();
    (rows, next)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.is_empty())
}

fn store_failed(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!("API: reading {what}: {e}");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the database failed; see the log",
    )
    .into_response()
}

/// GET /api/v1/calls: call records, newest first, with the fields of `hotline calls`.
pub async fn list_calls(State(api): State<Api>, ApiQuery(q): ApiQuery<CallsQuery>) -> Response {
    let p = match paging(
        q.since.as_deref(),
        q.until.as_deref(),
        q.limit,
        q.cursor.as_deref(),
    ) {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    let filter = CallFilter {
        since_ms: p.since_ms,
        until_ms: p.until_ms,
        queue: non_empty(q.queue),
        operator: non_empty(q.operator),
        before_id: p.before_id,
        limit: p.limit + 1,
    };
    match api.calls.store.calls_matching(&filter).await {
        Ok(rows) => {
            let (rows, next) = page(rows, p.limit, |c| c.id);
            // Each record links its recordings (PRODUCT S2); supervisors play them there.
            let ids: Vec<&str> = rows.iter().map(|c| c.call_id.as_str()).collect();
            let recordings = match api.calls.store.recordings_of_calls(&ids).await {
                Ok(r) => r,
                Err(e) => return store_failed("recordings", e),
            };
            let calls: Vec<Value> = rows
                .iter()
                .map(|c| {
                    let mut v = c.to_json();
                    v["recordings"] = recordings
                        .iter()
                        .filter(|r| r.call_id == c.call_id)
                        .map(|r| {
                            json!({
                                "id": r.id,
                                "status": r.status,
                                "duration_ms": r.duration_ms,
                                "audio": format!("/supervisor/recordings/{}/audio", r.id),
                            })
                        })
                        .collect();
                    v
                })
                .collect();
            Json(json!({ "calls": calls, "next": next })).into_response()
        }
        Err(e) => store_failed("call records", e),
    }
}

/// GET /api/v1/chats: chats, newest first.
pub async fn list_chats(State(api): State<Api>, ApiQuery(q): ApiQuery<ChatsQuery>) -> Response {
    let p = match paging(
        q.since.as_deref(),
        q.until.as_deref(),
        q.limit,
        q.cursor.as_deref(),
    ) {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    let state = match non_empty(q.state) {
        None => None,
        Some(s) => match ChatState::parse(&s) {
            Some(state) => Some(state),
            None => {
                return Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("state: {s:?}: use waiting, offered, active or ended"),
                )
                .into_response();
            }
        },
    };
    let filter = ChatFilter {
        since_ms: p.since_ms,
        until_ms: p.until_ms,
        queue: non_empty(q.queue),
        state,
        before_id: p.before_id,
        limit: p.limit + 1,
    };
    match api.calls.store.chats_matching(&filter).await {
        Ok(rows) => {
            let (chats, next) = page(rows, p.limit, |c| c.id);
            Json(json!({ "chats": chats, "next": next })).into_response()
        }
        Err(e) => store_failed("chats", e),
    }
}

/// GET /api/v1/chats/{id}: the chat and its transcript as operators see it (private
/// notes included), through the same query as the visitor's transcript.
pub async fn chat(State(api): State<Api>, ApiPath(id): ApiPath<i64>) -> Response {
    let store = &api.calls.store;
    let chat = match store.chat(id).await {
        Ok(Some(chat)) => chat,
        Ok(None) => {
            return Problem::new(StatusCode::NOT_FOUND, format!("no chat {id}")).into_response();
        }
        Err(e) => return store_failed("a chat", e),
    };
    match store.chat_events(id, 0, Audience::Operators).await {
        Ok(messages) => Json(json!({ "chat": chat, "messages": messages })).into_response(),
        Err(e) => store_failed("a chat's messages", e),
    }
}
