//! The operator's call panel on the home page (PRODUCT T6 from the console): who is on
//! the line, hold and resume, and a transfer to an operator, a queue or a number with a
//! note the receiver's panel shows: at once (blind), or after consulting the operator or
//! number while the caller holds, then completed or cancelled. The live socket pushes the panel (`type: "call"`,
//! see live.rs); these are its buttons.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{Csrf, OperatorPage};
use crate::error::WebError;
use crate::state::WebState;
use crate::telephony::{CallControl, TransferTo};

/// Longest note a transfer carries.
const MAX_NOTE: usize = 500;

#[derive(Deserialize)]
pub(super) struct HoldBody {
    held: bool,
}

#[derive(Deserialize)]
pub(super) struct RecordBody {
    on: bool,
}

#[derive(Deserialize)]
pub(super) struct WrapupBody {
    call_id: String,
    category: String,
    #[serde(default)]
    note: String,
    /// Comma-separated, as typed.
    #[serde(default)]
    tags: String,
}

/// At most this many tags on a call, each at most `MAX_TAG` characters.
const MAX_TAGS: usize = 10;
const MAX_TAG: usize = 40;

/// The tags as typed ("refund,  VIP ,") kept tidy: trimmed, blanks and repeats dropped,
/// joined with ", "; or why they are refused.
fn tidy_tags(typed: &str) -> Result<Option<String>, String> {
    let mut tags: Vec<&str> = Vec::new();
    for tag in typed.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if tag.chars().count() > MAX_TAG {
            return Err(format!(
                "A tag is at most {MAX_TAG} characters: {tag:?} is longer."
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("At most {MAX_TAGS} tags."));
    }
    Ok((!tags.is_empty()).then(|| tags.join(", ")))
}

#[derive(Deserialize)]
pub(super) struct TransferBody {
    to: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    consult: bool,
}

#[derive(Deserialize)]
pub(super) struct DialBody {
    number: String,
}

#[derive(Deserialize)]
pub(super) struct EndConsultBody {
    complete: bool,
}

fn refused(status: StatusCode, message: &str) -> Response {
    WebError::json(status, message.to_string()).into_response()
}

/// The operator account behind a button the page sent, or the answer that refuses it.
fn operator(s: &hotline_core::users::WebSession) -> Result<&str, Response> {
    s.user.operator.as_deref().ok_or_else(|| {
        refused(
            StatusCode::CONFLICT,
            "Your user is not linked to an operator account, so it has no calls.",
        )
    })
}

async fn control(state: &WebState, operator: &str, control: CallControl) -> Response {
    match state.telephony.call_control(operator, control).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(StatusCode::CONFLICT, &e),
    }
}

/// A call-panel button whose body only picks one of two ways (`usage` says how): the
/// operator behind the page asks their call for `control(body)`.
async fn button<B>(
    state: &WebState,
    s: &hotline_core::users::WebSession,
    body: Option<Json<B>>,
    usage: &str,
    control_of: impl FnOnce(B) -> CallControl,
) -> Response {
    let who = match operator(s) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(Json(body)) = body else {
        return refused(StatusCode::BAD_REQUEST, usage);
    };
    control(state, who, control_of(body)).await
}

/// POST /console/call/hold `{"held": true|false}`.
pub(super) async fn hold(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    body: Option<Json<HoldBody>>,
) -> Response {
    let usage = r#"send {"held": true} or {"held": false}"#;
    button(&state, &s, body, usage, |b| CallControl::Hold(b.held)).await
}

/// POST /console/call/transfer `{"to": "operator:bela" | "queue:sales" | "number:…",
/// "note": "…", "consult": false}`.
pub(super) async fn transfer(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    body: Option<Json<TransferBody>>,
) -> Response {
    let who = match operator(&s) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(Json(body)) = body else {
        return refused(
            StatusCode::BAD_REQUEST,
            "Choose whom to transfer the caller to.",
        );
    };
    let Some(to) = TransferTo::parse(&body.to) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "Choose an operator or a queue, or type a number.",
        );
    };
    let note = body.note.trim();
    if note.chars().count() > MAX_NOTE {
        return refused(
            StatusCode::BAD_REQUEST,
            &format!("The note is too long: at most {MAX_NOTE} characters."),
        );
    }
    let note = note.to_string();
    let consult = body.consult;
    control(&state, who, CallControl::Transfer { to, note, consult }).await
}

/// POST /console/call/consult `{"complete": true|false}`: completes the consultation
/// (the caller goes to the consulted party) or cancels it.
pub(super) async fn end_consult(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    body: Option<Json<EndConsultBody>>,
) -> Response {
    let usage = r#"send {"complete": true} or {"complete": false}"#;
    button(&state, &s, body, usage, |b| {
        CallControl::EndConsult(b.complete)
    })
    .await
}

/// Longest wrap-up note.
const MAX_WRAPUP_NOTE: usize = 2000;

/// POST /console/call/wrapup `{"call_id", "category", "note"}`: the operator's wrap-up of
/// a call their panel showed (as for chats: a category from `chat.wrapup_categories`),
/// kept in the call's record.
pub(super) async fn wrapup(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    body: Option<Json<WrapupBody>>,
) -> Response {
    let who = match operator(&s) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(Json(body)) = body else {
        return refused(StatusCode::BAD_REQUEST, "Choose a category.");
    };
    if !state.chat.config.wrapup_categories.contains(&body.category) {
        return refused(StatusCode::BAD_REQUEST, "Choose one of the categories.");
    }
    let note = body.note.trim();
    if note.chars().count() > MAX_WRAPUP_NOTE {
        return refused(
            StatusCode::BAD_REQUEST,
            &format!("The note is too long: at most {MAX_WRAPUP_NOTE} characters."),
        );
    }
    let tags = match tidy_tags(&body.tags) {
        Ok(t) => t,
        Err(e) => return refused(StatusCode::BAD_REQUEST, &e),
    };
    if !state.live.was_shown(who, &body.call_id) {
        return refused(StatusCode::FORBIDDEN, "That is not one of your calls.");
    }
    let note = (!note.is_empty()).then_some(note);
    match state
        .store
        .set_call_wrapup(&body.call_id, Some(&body.category), note, tags.as_deref())
        .await
    {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => refused(StatusCode::NOT_FOUND, "No such call."),
        Err(e) => WebError::database_json(&format!("storing the wrap-up of {}", body.call_id), e)
            .into_response(),
    }
}

/// POST /console/call/record `{"on": true|false}`: starts or stops recording the call,
/// where its queue records on demand (PRODUCT S2).
pub(super) async fn record(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    body: Option<Json<RecordBody>>,
) -> Response {
    let usage = r#"send {"on": true} or {"on": false}"#;
    button(&state, &s, body, usage, |b| CallControl::Record(b.on)).await
}

/// POST /console/call/hangup: ends the operator's connected call.
pub(super) async fn hangup(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
) -> Response {
    match operator(&s) {
        Ok(who) => control(&state, who, CallControl::Hangup).await,
        Err(r) => r,
    }
}

/// POST /console/call/ready: ends the operator's wrap-up now; the queues may ring them.
pub(super) async fn ready(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
) -> Response {
    let who = match operator(&s) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match state.telephony.end_wrap_up(who).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(StatusCode::CONFLICT, &e),
    }
}

/// POST /console/call/dial: the phone panel's dial field. The operator's phone rings
/// first (a browser phone answers by itself), then the number, through the dial plan.
pub(super) async fn dial(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    body: Option<Json<DialBody>>,
) -> Response {
    let who = match operator(&s) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(Json(body)) = body else {
        return refused(StatusCode::BAD_REQUEST, "Send {\"number\": \"…\"}.");
    };
    let typed = body.number.trim();
    if typed.is_empty() {
        return refused(StatusCode::BAD_REQUEST, "Type the number to call.");
    }
    let number = match state.telephony.check_dialable(typed) {
        Ok(n) => n,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    match state.telephony.call_customer(who, &number, None).await {
        Ok(call_id) => {
            Json(serde_json::json!({ "call_id": call_id, "number": number })).into_response()
        }
        Err(e) => refused(StatusCode::CONFLICT, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_kept_tidy_and_bounded() {
        assert_eq!(
            tidy_tags(" refund,  VIP ,, refund ,"),
            Ok(Some("refund, VIP".to_string()))
        );
        assert_eq!(tidy_tags(" , "), Ok(None));
        assert!(tidy_tags(&"x".repeat(41)).is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert!(tidy_tags(&eleven.join(",")).is_err());
    }

    #[test]
    fn transfer_targets_as_the_form_sends_them() {
        assert_eq!(
            TransferTo::parse("operator:bela"),
            Some(TransferTo::Operator("bela".into()))
        );
        assert_eq!(
            TransferTo::parse("number: 06 30 555 0100"),
            Some(TransferTo::Number("06 30 555 0100".into()))
        );
        assert_eq!(TransferTo::parse("queue:"), None);
        assert_eq!(TransferTo::parse("bela"), None);
        assert_eq!(TransferTo::parse("pbx:1"), None);
    }
}
