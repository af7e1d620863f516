//! The missed-calls widget's actions: calling a customer back off the shared list (a
//! claim, then the operator's phone rings and then the customer's), correcting the outcome
//! of one's own attempt (a voicemail is no success), and putting a number on the list by
//! hand. A claim is one conditional update in the store: of two operators clicking
//! together, one wins, the other is told. The list itself reaches the page over the
//! console's WebSocket (live.rs).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use hotline_core::callbacks::{AttemptOutcome, CallbackError, CallbackSource, NewCallbackNote};
use hotline_core::notify::webhook;
use serde::Deserialize;

use super::live::CORRECTION_WINDOW_MS;
use crate::auth::{Csrf, OperatorPage};
use crate::error::WebError;
use crate::state::WebState;
use crate::unix_ms;

/// How long a claim holds before the entry returns to everyone's list: longer than any
/// call, so it only matters when the operator's call never reports back.
const CLAIM_MS: i64 = 60 * 60 * 1000;

fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    WebError::json(status, message.into()).into_response()
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
        CallbackError::Store(e) => WebError::database_json("callback list", e).into_response(),
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
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    Path(id): Path<i64>,
) -> Response {
    let who = operator_of(&s);
    // A fresh claim only: a double click or a second tab must not start a second call
    // (which would fail as busy and then give the first call's claim away).
    let entry = match state
        .store
        .claim_callback_once(id, &who, CLAIM_MS, unix_ms())
        .await
    {
        Ok(e) => e,
        Err(CallbackError::AlreadyClaimed { by }) if by == who => {
            return refusal(
                StatusCode::CONFLICT,
                "You are already calling this customer back.",
            );
        }
        Err(e) => return store_refusal(e),
    };
    state.live.callbacks_changed();
    match state
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
            if let Err(e) = state
                .store
                .release_callback(entry.id, &who, &note, unix_ms())
                .await
            {
                tracing::error!(entry = entry.id, "releasing a callback claim: {e}");
            }
            state.live.callbacks_changed();
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
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    Path(id): Path<i64>,
    body: Option<Json<Correction>>,
) -> Response {
    let Some(Json(body)) = body else {
        return refusal(
            StatusCode::BAD_REQUEST,
            r#"Send JSON like {"outcome": "no_answer", "note": "voicemail"}."#,
        );
    };
    let Some(outcome) = AttemptOutcome::parse(&body.outcome) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "The outcome is one of success, no_answer, busy, rejected, failed.",
        );
    };
    let queue = match state.store.callback_entry(id).await {
        Ok(Some(e)) => e.queue,
        Ok(None) => return refusal(StatusCode::NOT_FOUND, "No such entry."),
        Err(e) => return store_refusal(e.into()),
    };
    let hide_ms = state.telephony.callback_hide_ms(queue.as_deref());
    match state
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
            state.live.callbacks_changed();
            if let Some(notifier) = &state.settings.notifier {
                let data = webhook::callback_done(&e, outcome, &operator_of(&s), true);
                if let Err(err) = notifier.webhook(webhook::CALLBACK_DONE, &data).await {
                    tracing::warn!(entry = e.id, "callback.done webhook not stored: {err}");
                }
            }
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
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(_)): Csrf<OperatorPage>,
    body: Option<Json<NewEntry>>,
) -> Response {
    let Some(Json(body)) = body else {
        return refusal(
            StatusCode::BAD_REQUEST,
            r#"Send JSON like {"number": "+36301234567", "queue": "support"}."#,
        );
    };
    // People write numbers with spaces and dashes; the list (and the trunk) wants the
    // canonical form, the same as callers' numbers.
    let Ok(number) = hotline_core::address::phone_number(&body.number) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Give the number as digits with an optional leading +, 3–20 of them.",
        );
    };
    let number = number.as_str();
    // Nothing goes on the list that Hotline may not dial (issue 8's dial plan).
    if let Err(why) = state.telephony.check_dialable(number) {
        return refusal(
            StatusCode::BAD_REQUEST,
            format!("This number cannot be called back: {why}."),
        );
    }
    let queue = body
        .queue
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    if let Some(q) = queue
        && !state
            .telephony
            .queue_names()
            .iter()
            .any(|(name, _)| name == q)
    {
        return refusal(
            StatusCode::BAD_REQUEST,
            format!("There is no queue {q:?}; leave the queue empty or name one that exists."),
        );
    }
    let note = NewCallbackNote {
        number,
        queue,
        source: CallbackSource::Operator,
        promised_at_ms: None,
        call_id: None,
        now_ms: unix_ms(),
    };
    match state.store.note_callback(&note).await {
        Ok(e) => {
            state.live.callbacks_changed();
            (
                StatusCode::CREATED,
                Json(serde_json::json!({ "id": e.id, "count": e.count })),
            )
                .into_response()
        }
        Err(e) => store_refusal(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use std::time::Duration;

    use hotline_core::callbacks::{CallbackSource, NewCallbackNote};
    use hotline_core::store::Store;
    use hotline_core::users::Role;
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{self, FakePhones, Login, Queue};

    struct Setup {
        app: axum::Router,
        store: Store,
        phones: Arc<FakePhones>,
        anna: Login,
    }

    /// Operator anna; one queue, a dial plan that refuses premium numbers (+3690…), calls
    /// that take a moment to start; callback.done is posted.
    async fn setup() -> Setup {
        let store = testing::store().await;
        let anna = testing::login(&store, "anna", Role::Operator).await;
        let phones = Arc::new(FakePhones {
            queues: vec![Queue {
                name: "support",
                display_name: "Support",
                members: &[],
            }],
            call_outcome: Ok("c2c-1".into()),
            call_delay: Duration::from_millis(20),
            refused_prefix: Some("+3690"),
            ..Default::default()
        });
        let app = testing::state(&store)
            .phones(phones.clone())
            .webhooks(vec![testing::hook(HOOK_URL, webhook::CALLBACK_DONE)])
            .app();
        Setup {
            app,
            store,
            phones,
            anna,
        }
    }

    async fn post(s: &Setup, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        testing::send_json(&s.app, &s.anna, "POST", uri, body).await
    }

    const HOOK_URL: &str = "http://127.0.0.1:9/hooks/callbacks";

    #[tokio::test]
    async fn a_corrected_outcome_is_posted_as_callback_done() {
        let s = setup().await;
        let now = unix_ms();
        let entry = s
            .store
            .note_callback(&NewCallbackNote {
                number: "+36301234567",
                queue: Some("support"),
                source: CallbackSource::Missed,
                promised_at_ms: None,
                call_id: None,
                now_ms: now,
            })
            .await
            .unwrap();
        s.store
            .claim_callback(entry.id, "anna", 60_000, now)
            .await
            .unwrap();
        s.store
            .finish_callback(entry.id, "anna", AttemptOutcome::NoAnswer, None, 0, now)
            .await
            .unwrap();
        let uri = format!("/console/callbacks/{}/outcome", entry.id);
        let (status, body) = post(
            &s,
            &uri,
            Some(json!({ "outcome": "success", "note": "it was her" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let deliveries = testing::webhook_deliveries(&s.store).await;
        assert_eq!(deliveries.len(), 1);
        let (to, event, d) = &deliveries[0];
        assert_eq!((to.as_str(), event.as_str()), (HOOK_URL, "callback.done"));
        assert_eq!(d.data["id"], entry.id);
        assert_eq!(d.data["number"], "+36301234567");
        assert_eq!(d.data["outcome"], "success");
        assert_eq!(d.data["operator"], "anna");
        assert_eq!(d.data["corrected"], true);
        assert_eq!(d.data["done"], true);
        assert_eq!(d.data["attempts"], 1, "a correction is no new attempt");
    }

    #[tokio::test]
    async fn a_double_click_starts_one_call() {
        let s = setup().await;
        let entry = s
            .store
            .note_callback(&NewCallbackNote {
                number: "+36301234567",
                queue: Some("support"),
                source: CallbackSource::Missed,
                promised_at_ms: None,
                call_id: None,
                now_ms: unix_ms(),
            })
            .await
            .unwrap();
        let uri = format!("/console/callbacks/{}/claim", entry.id);
        let (a, b) = tokio::join!(post(&s, &uri, None), post(&s, &uri, None));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "{a:?} {b:?}"
        );
        let refused = if a.0 == StatusCode::CONFLICT {
            a.1
        } else {
            b.1
        };
        assert_eq!(
            refused["error"],
            "You are already calling this customer back."
        );
        let calls = s.phones.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].number, "+36301234567");
        assert_eq!(calls[0].callback, Some(entry.id));
        // The one call keeps its claim: the entry stays off the list.
        let e = s.store.callback_entry(entry.id).await.unwrap().unwrap();
        assert_eq!(e.claimed_by.as_deref(), Some("anna"));
    }

    #[tokio::test]
    async fn numbers_go_on_the_list_for_queues_that_exist_and_if_dialable() {
        let s = setup().await;
        for (form, refusal) in [
            (
                json!({ "number": "+36 30 123 4567", "queue": "no-such-queue" }),
                "no queue \"no-such-queue\"",
            ),
            (
                json!({ "number": "+36 90 123 456", "queue": "support" }),
                "blocked by the dial plan",
            ),
        ] {
            let (status, body) = post(&s, "/console/callbacks", Some(form)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            let error = body["error"].as_str().unwrap();
            assert!(error.contains(refusal), "{body}");
        }
        assert!(
            s.store
                .callback_list(unix_ms(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let (status, body) = post(
            &s,
            "/console/callbacks",
            Some(json!({ "number": "+36 30 123 4567", "queue": "support" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = post(
            &s,
            "/console/callbacks",
            Some(json!({ "number": "+36 30 123 4568" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "no queue is fine");
        assert_eq!(s.store.callback_list(unix_ms(), 10).await.unwrap().len(), 2);
    }
}
