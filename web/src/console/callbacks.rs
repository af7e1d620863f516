//! The missed-calls widget's actions: calling a customer back off the shared list (a
//! claim, then the operator's phone rings and then the customer's), correcting the outcome
//! of one's own attempt (a voicemail is no success), and putting a number on the list by
//! hand. A claim is one conditional update in the store: of two operators clicking
//! together, one wins, the other is told. The list itself reaches the page over the
//! console's WebSocket (live.rs).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use hotline_core::callbacks::{CallbackError, CallbackSource, NewCallbackNote, Outcome};
use serde::Deserialize;

use super::Console;
use super::auth::{OperatorPage, check_csrf, unix_ms};
use super::live::CORRECTION_WINDOW_MS;

/// How long a claim holds before the entry returns to everyone's list: longer than any
/// call, so it only matters when the operator's call never reports back.
const CLAIM_MS: i64 = 60 * 60 * 1000;

fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn store_refusal(e: CallbackError) -> Response {
    match e {
        CallbackError::AlreadyClaimed { by } => refusal(
            StatusCode::CONFLICT,
            format!("{by} is already calling this customer back."),
        ),
        CallbackError::NotFound => refusal(StatusCode::NOT_FOUND, "No such entry."),
        CallbackError::Invalid(m) => refusal(StatusCode::BAD_REQUEST, m),
        CallbackError::Anonymous => refusal(StatusCode::BAD_REQUEST, e.to_string()),
        CallbackError::Store(e) => {
            tracing::error!("callback list: {e}");
            refusal(StatusCode::SERVICE_UNAVAILABLE, "The database failed.")
        }
        e => refusal(StatusCode::CONFLICT, e.to_string()),
    }
}

fn operator_of(s: &hotline_core::users::WebSession) -> String {
    s.user
        .operator
        .clone()
        .unwrap_or_else(|| s.user.name.clone())
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
    let who = operator_of(&s);
    let entry = match console
        .store
        .claim_callback(id, &who, CLAIM_MS, unix_ms())
        .await
    {
        Ok(e) => e,
        Err(e) => return store_refusal(e),
    };
    console.live.callbacks_changed();
    match console
        .telephony
        .call_customer(&who, &entry.number, Some(entry.id))
        .await
    {
        Ok(call_id) => Json(serde_json::json!({
            "id": entry.id,
            "number": entry.number,
            "call_id": call_id,
        }))
        .into_response(),
        Err(why) => {
            // Nothing was dialled: the entry goes back on everyone's list at once.
            let note = format!("the call could not start: {why}");
            if let Err(e) = console
                .store
                .release_callback(entry.id, &who, &note, unix_ms())
                .await
            {
                tracing::error!(entry = entry.id, "releasing a callback claim: {e}");
            }
            console.live.callbacks_changed();
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The call could not start: {why}."),
            )
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Correction {
    outcome: String,
    note: Option<String>,
}

/// POST /console/callbacks/{id}/outcome: the operator corrects their last attempt's
/// outcome ({"outcome": "no_answer", "note": "voicemail"}).
pub(super) async fn correct(
    State(console): State<Arc<Console>>,
    OperatorPage(s): OperatorPage,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Option<Json<Correction>>,
) -> Response {
    if let Err(r) = check_csrf(&console, &s, &headers, None) {
        return r;
    }
    let Some(Json(body)) = body else {
        return refusal(
            StatusCode::BAD_REQUEST,
            r#"Send JSON like {"outcome": "no_answer", "note": "voicemail"}."#,
        );
    };
    let Some(outcome) = Outcome::parse(&body.outcome) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "The outcome is one of success, no_answer, busy, rejected, failed.",
        );
    };
    let queue = match console.store.callback_entry(id).await {
        Ok(Some(e)) => e.queue,
        Ok(None) => return refusal(StatusCode::NOT_FOUND, "No such entry."),
        Err(e) => return store_refusal(e.into()),
    };
    let hide_ms = console.telephony.callback_hide_ms(queue.as_deref());
    match console
        .store
        .correct_callback(
            id,
            &operator_of(&s),
            outcome,
            body.note.as_deref(),
            hide_ms,
            CORRECTION_WINDOW_MS,
            unix_ms(),
        )
        .await
    {
        Ok(e) => {
            console.live.callbacks_changed();
            Json(serde_json::json!({ "id": e.id, "state": e.state.as_str() })).into_response()
        }
        Err(e) => store_refusal(e),
    }
}

#[derive(Deserialize)]
pub(super) struct NewEntry {
    number: String,
    queue: Option<String>,
}

/// POST /console/callbacks: an operator puts a customer on the list
/// ({"number": "+36301234567", "queue": "support"}).
pub(super) async fn add(
    State(console): State<Arc<Console>>,
    OperatorPage(s): OperatorPage,
    headers: HeaderMap,
    body: Option<Json<NewEntry>>,
) -> Response {
    if let Err(r) = check_csrf(&console, &s, &headers, None) {
        return r;
    }
    let Some(Json(body)) = body else {
        return refusal(
            StatusCode::BAD_REQUEST,
            r#"Send JSON like {"number": "+36301234567", "queue": "support"}."#,
        );
    };
    // People write numbers with spaces and dashes; the list (and the trunk) wants digits.
    let number: String = body
        .number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '/' | '.'))
        .collect();
    let number = number.as_str();
    let digits = number.strip_prefix('+').unwrap_or(number);
    if !(3..=20).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Give the number as digits with an optional leading +, 3–20 of them.",
        );
    }
    let queue = body
        .queue
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    let note = NewCallbackNote {
        number,
        queue,
        source: CallbackSource::Operator,
        promised_at_ms: None,
        call_id: None,
        now_ms: unix_ms(),
    };
    match console.store.note_callback(&note).await {
        Ok(e) => {
            console.live.callbacks_changed();
            (
                StatusCode::CREATED,
                Json(serde_json::json!({ "id": e.id, "count": e.count })),
            )
                .into_response()
        }
        Err(e) => store_refusal(e),
    }
}
