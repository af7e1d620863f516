//! The HTTP API the operator console (next issue) and scripts use: operator states and
//! live queue figures. Until web login exists it takes a bearer token from the settings;
//! without one configured it is off.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use hotline_core::acd::{OperatorState, OperatorStatus};
use hotline_core::operators::{OperatorError, SipDigest};
use serde::{Deserialize, Serialize};

use crate::actors::{AcdHandle, AcdInput};
use crate::click_to_call::ClickToCallError;
use crate::config::Trunk;
use crate::context::Calls;

#[derive(Clone)]
struct Api {
    acd: AcdHandle,
    calls: Arc<Calls>,
    trunk: Option<Trunk>,
    token: Option<Arc<str>>,
    /// The SIP realm operators' HA1s are computed for.
    realm: Arc<str>,
}

pub fn router(
    calls: Arc<Calls>,
    trunk: Option<Trunk>,
    token: Option<String>,
    realm: String,
) -> Router {
    Router::new()
        .route("/api/calls", post(click_to_call))
        .route("/api/queues", get(queues))
        .route("/api/queues/live", get(queues_live))
        .route("/api/operators", get(operators).post(add_operator))
        .route("/api/operators/{name}/state", put(set_state))
        .with_state(Api {
            acd: calls.acd.clone(),
            calls,
            trunk,
            token: token.map(Arc::from),
            realm: Arc::from(realm),
        })
}

/// A JSON error body with a message a person can act on.
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The response that refuses the request, or `None` when it may go ahead.
fn deny(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &api.token else {
        return Some(error(
            StatusCode::NOT_FOUND,
            "the API is off: set api.token (or HOTLINE_API_TOKEN)",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare without an early exit, so timing doesn't reveal the token.
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    (!same).then(|| error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))
}

#[derive(Serialize)]
pub(crate) struct QueueFiguresJson {
    pub(crate) queue: String,
    pub(crate) waiting: u32,
    longest_wait_secs: u64,
    online: u32,
    busy: u32,
    paused: u32,
    away: u32,
    available: u32,
}

async fn queues(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&api, &headers) {
        return r;
    }
    match figures_json(&api.acd).await {
        Some(body) => Json(body).into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the queue task is not running",
        ),
    }
}

/// GET /api/queues/live: Server-Sent Events, one `queues` event (the same JSON as
/// /api/queues) whenever the figures change, checked every second.
async fn queues_live(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&api, &headers) {
        return r;
    }
    let acd = api.acd.clone();
    hotline_web::live_json("queues", move || {
        let acd = acd.clone();
        async move { serde_json::to_value(figures_json(&acd).await?).ok() }
    })
}

pub(crate) async fn figures_json(acd: &AcdHandle) -> Option<Vec<QueueFiguresJson>> {
    let figures = acd.ask(|reply| AcdInput::Figures { reply }).await?;
    let body = figures
        .into_iter()
        .map(|(queue, f)| QueueFiguresJson {
            queue,
            waiting: f.waiting,
            longest_wait_secs: f.longest_wait.as_secs(),
            online: f.online,
            busy: f.busy,
            paused: f.paused,
            away: f.away,
            available: f.available,
        })
        .collect();
    Some(body)
}

#[derive(Serialize)]
struct OperatorJson {
    name: String,
    state: &'static str,
    since_secs: Option<u64>,
    queues: Vec<String>,
    phone_registered: bool,
    missed_rings: u32,
    /// Visual sessions whose page the operator has open (busy to the queues meanwhile).
    visual_sessions: u8,
}

pub(crate) fn status_name(s: OperatorStatus) -> &'static str {
    match s {
        OperatorStatus::Online => "online",
        OperatorStatus::Busy => "busy",
        OperatorStatus::WrapUp => "wrap-up",
        OperatorStatus::Away => "away",
        OperatorStatus::Pause => "pause",
        OperatorStatus::Offline => "offline",
    }
}

async fn operators(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&api, &headers) {
        return r;
    }
    let Some(views) = api.acd.ask(|reply| AcdInput::Operators { reply }).await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the queue task is not running",
        );
    };
    let now = Instant::now();
    let body: Vec<OperatorJson> = views
        .into_iter()
        .map(|(name, v)| OperatorJson {
            name,
            state: status_name(v.state),
            since_secs: v.since.map(|t| now.saturating_duration_since(t).as_secs()),
            queues: v.queues,
            phone_registered: v.reachable,
            missed_rings: v.misses,
            visual_sessions: v.visual_sessions,
        })
        .collect();
    Json(body).into_response()
}

#[derive(Deserialize)]
struct CallBody {
    /// The operator whose phone rings first.
    operator: String,
    /// The customer's number, dialled through the trunk.
    to: String,
}

/// POST /api/calls: click-to-call. 202 with the call id once the operator's phone rings.
async fn click_to_call(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Option<Json<CallBody>>,
) -> Response {
    if let Some(r) = deny(&api, &headers) {
        return r;
    }
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            r#"send JSON like {"operator": "anna", "to": "+36301234567"}"#,
        );
    };
    let order = crate::click_to_call::Order {
        operator: body.operator,
        to: body.to,
        callback: None,
    };
    match crate::click_to_call::start(api.calls.clone(), api.trunk.clone(), order).await {
        Ok(call_id) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "call_id": call_id })),
        )
            .into_response(),
        Err(e) => {
            let status = match e {
                ClickToCallError::NoTrunk | ClickToCallError::NoPorts => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                ClickToCallError::Refused(hotline_ivr::dialplan::Refusal::NotANumber(..)) => {
                    StatusCode::BAD_REQUEST
                }
                ClickToCallError::Refused(_) => StatusCode::FORBIDDEN,
                ClickToCallError::UnknownOperator(_) => StatusCode::NOT_FOUND,
                ClickToCallError::NotRegistered(_) | ClickToCallError::Busy(_) => {
                    StatusCode::CONFLICT
                }
            };
            error(status, &e.to_string())
        }
    }
}

#[derive(Deserialize)]
struct NewOperatorBody {
    name: String,
    /// Defaults to the name.
    sip_user: Option<String>,
    display_name: Option<String>,
    /// Concurrent chats, 1–10 (default 3).
    chat_capacity: Option<i64>,
    sip_password: String,
    /// "MD5" (default) or "SHA-256": the one digest challenge the phone gets.
    digest: Option<String>,
}

/// POST /api/operators: a new operator account; 201 with its id. The SIP password is
/// kept only as digest HA1s.
async fn add_operator(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Option<Json<NewOperatorBody>>,
) -> Response {
    if let Some(r) = deny(&api, &headers) {
        return r;
    }
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            r#"send JSON like {"name": "anna", "sip_password": "…", "display_name": "Anna", "sip_user": "anna", "chat_capacity": 3}"#,
        );
    };
    let sip_digest = match body.digest.as_deref().map(SipDigest::parse).transpose() {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let form = crate::accounts::OperatorForm {
        realm: &api.realm,
        sip_digest,
        name: &body.name,
        sip_user: body.sip_user.as_deref().unwrap_or(&body.name),
        display_name: body.display_name.as_deref().unwrap_or(&body.name),
        chat_capacity: body.chat_capacity.unwrap_or(3),
        password: &body.sip_password,
    };
    match crate::accounts::create_operator(&api.calls.store, &form).await {
        Ok(id) => {
            // The phone may register at once, not at the next periodic sync.
            api.calls.operators_changed.notify_one();
            (
                StatusCode::CREATED,
                Json(serde_json::json!({ "id": id, "name": body.name })),
            )
                .into_response()
        }
        Err(OperatorError::Exists(..)) => error(
            StatusCode::CONFLICT,
            "an operator with this name or SIP user already exists",
        ),
        Err(e @ OperatorError::Invalid(_)) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(OperatorError::Store(e)) => {
            tracing::error!("adding an operator: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database failed; see the log",
            )
        }
    }
}

#[derive(Deserialize)]
struct StateBody {
    state: String,
}

async fn set_state(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<StateBody>>,
) -> Response {
    if let Some(r) = deny(&api, &headers) {
        return r;
    }
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            r#"send JSON like {"state": "online"} (online, away, pause, offline)"#,
        );
    };
    let Some(state) = OperatorState::parse(&body.state) else {
        let other = &body.state;
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "unknown state {other:?}: use online, away, pause or offline (busy and wrap-up follow calls)"
            ),
        );
    };
    match set_operator_state(&api.calls, &name, state).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, &e),
    }
}

/// Sets an operator's chosen state (the API and the console's status switch) and keeps it
/// in the store, so a restart puts the operator back in it.
pub(crate) async fn set_operator_state(
    calls: &Calls,
    operator: &str,
    state: OperatorState,
) -> Result<(), String> {
    apply_operator_state(&calls.acd, operator, state).await?;
    if let Err(e) = calls
        .store
        .set_operator_chosen_state(operator, state.as_str())
        .await
    {
        tracing::warn!(%operator, "chosen state not kept for a restart: {e}");
    }
    Ok(())
}

/// Tells the queue task an operator's chosen state.
pub(crate) async fn apply_operator_state(
    acd: &AcdHandle,
    operator: &str,
    state: OperatorState,
) -> Result<(), String> {
    acd.ask(|reply| AcdInput::SetState {
        operator: operator.to_string(),
        state,
        reply,
    })
    .await
    .unwrap_or_else(|| Err("the queue task is not running".to_string()))
}
