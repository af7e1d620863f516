//! The missed-calls widget: the shared callback list, the same for every operator and
//! live, and claiming an entry to call the customer back. A claim is one conditional
//! update in the store: of two operators clicking together, one wins, the other is told.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use hotline_core::callbacks::CallbackError;

use super::Console;
use super::auth::{OperatorPage, check_csrf, session, unix_ms};

/// How long a claim holds before the entry returns to everyone's list.
const CLAIM_MS: i64 = 10 * 60 * 1000;
/// Entries the widget shows.
const SHOWN: i64 = 50;

/// GET /console/callbacks/live: the list as Server-Sent Events, whenever it changes.
pub(super) async fn live(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if session(&console, &headers).await.is_none() {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    }
    crate::live_json("callbacks", move || {
        let console = console.clone();
        async move {
            let list = console.store.callback_list(unix_ms(), SHOWN).await.ok()?;
            let rows: Vec<_> = list
                .into_iter()
                .map(|e| {
                    serde_json::json!({
                        "id": e.id,
                        "number": e.number,
                        "count": e.count,
                        "first": console.local_time(e.first_at_ms),
                        "last": console.local_time(e.last_at_ms),
                        "queue": e.queue,
                        "promised": e.promised_at_ms.map(|t| console.local_time(t)),
                        "attempts": e.attempts,
                    })
                })
                .collect();
            Some(serde_json::Value::Array(rows))
        }
    })
}

/// POST /console/callbacks/{id}/claim: this operator calls the customer back.
pub(super) async fn claim(
    State(console): State<Arc<Console>>,
    OperatorPage(s): OperatorPage,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = check_csrf(&console, &s, &headers, None) {
        return r;
    }
    let who = s
        .user
        .operator
        .clone()
        .unwrap_or_else(|| s.user.name.clone());
    let refusal = |status: StatusCode, message: String| {
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    };
    match console
        .store
        .claim_callback(id, &who, CLAIM_MS, unix_ms())
        .await
    {
        Ok(e) => Json(serde_json::json!({ "id": e.id, "number": e.number })).into_response(),
        Err(CallbackError::AlreadyClaimed { by }) => refusal(
            StatusCode::CONFLICT,
            format!("{by} is already calling this customer back."),
        ),
        Err(CallbackError::Store(e)) => {
            tracing::error!("claiming a callback: {e}");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database failed.".into(),
            )
        }
        Err(e) => refusal(StatusCode::CONFLICT, e.to_string()),
    }
}
