//! The HTTP API the operator console and scripts use: operator states, live queue
//! figures, click-to-call, call records and chats, under /api/v1 (the first /api paths
//! stay as deprecated aliases). It takes the bearer token from the settings or a per-user
//! token (see `tokens`); without either it is off.
//! Every error is RFC 9457 problem details; /api/v1/openapi.json describes every route.

mod cli;
mod openapi;
mod problem;
mod records;
#[cfg(test)]
mod tests;
mod tokens;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use hotline_core::acd::{OperatorState, OperatorStatus};
use hotline_core::operators::{OperatorError, SipDigest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::actors::{AcdHandle, AcdInput};
use crate::click_to_call::ClickToCallError;
use crate::config::Trunk;
use crate::context::Calls;
pub use cli::{TokenCommand, token_cmd};
use openapi::{Op, Routes};
use problem::{ApiJson, ApiPath, Problem};

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
    let api = Api {
        acd: calls.acd.clone(),
        calls,
        trunk,
        token: token.map(Arc::from),
        realm: Arc::from(realm),
    };
    // Served from the table it is built from, once the table is complete.
    let document = Arc::new(std::sync::OnceLock::new());
    let (router, built) = routes(api.clone(), document.clone()).finish();
    let _ = document.set(built);
    router
        // Anything else below /api is a problem-details 404, not the web pages' 404.
        .route("/api", any(unknown_path))
        .route("/api/{*rest}", any(unknown_path))
        .with_state(api)
}

/// Every route, as served and as /api/v1/openapi.json lists it.
fn routes(api: Api, document: Arc<std::sync::OnceLock<serde_json::Value>>) -> Routes<Api> {
    let figures = json!({ "type": "array", "items": { "type": "object", "properties": {
        "queue": { "type": "string" }, "waiting": { "type": "integer" },
        "longest_wait_secs": { "type": "integer" }, "online": { "type": "integer" },
        "busy": { "type": "integer" }, "paused": { "type": "integer" },
        "away": { "type": "integer" }, "available": { "type": "integer" } } } });
    let operators_list = json!({ "type": "array", "items": { "type": "object", "properties": {
        "name": { "type": "string" }, "state": { "type": "string" },
        "since_secs": { "type": ["integer", "null"] },
        "queues": { "type": "array", "items": { "type": "string" } },
        "phone_registered": { "type": "boolean" }, "missed_rings": { "type": "integer" },
        "visual_sessions": { "type": "integer" } } } });
    Routes::new()
        .route(
            "/calls",
            get(records::list_calls).post(click_to_call),
            vec![
                Op::new(Method::GET, "Call records, newest first, with the fields of `hotline calls`")
                    .query(records::CALLS_QUERY)
                    .ok(200, "a page of records", records::page_schema("calls"))
                    .errors(&[400, 500]),
                Op::new(Method::POST, "Click-to-call: ring the operator's phone, then the customer through the trunk")
                    .body(json!({ "type": "object", "required": ["operator", "to"], "properties": {
                        "operator": { "type": "string" }, "to": { "type": "string" } } }))
                    .ok(202, "the operator's phone rings", json!({ "type": "object",
                        "properties": { "call_id": { "type": "string" } } }))
                    .errors(&[400, 403, 404, 409, 415, 422, 503]),
            ],
        )
        .route(
            "/chats",
            get(records::list_chats),
            vec![Op::new(Method::GET, "Chats, newest first")
                .query(records::CHATS_QUERY)
                .ok(200, "a page of chats", records::page_schema("chats"))
                .errors(&[400, 500])],
        )
        .route(
            "/chats/{id}",
            get(records::chat),
            vec![Op::new(Method::GET, "A chat and all its messages and events, private notes included")
                .ok(200, "the chat", json!({ "type": "object", "properties": {
                    "chat": { "type": "object" },
                    "messages": { "type": "array", "items": { "type": "object" } } } }))
                .errors(&[400, 404, 500])],
        )
        .route(
            "/queues",
            get(queues),
            vec![Op::new(Method::GET, "Live figures of every queue").ok(200, "the figures", figures).errors(&[503])],
        )
        .route(
            "/queues/live",
            get(queues_live),
            vec![Op::new(Method::GET, "Server-Sent Events: a `queues` event (the figures) whenever they change")
                .ok_as(200, "the event stream", "text/event-stream")],
        )
        .route(
            "/operators",
            get(operators).post(add_operator),
            vec![
                Op::new(Method::GET, "Operators: chosen state, queues, phone registration")
                    .ok(200, "the operators", operators_list)
                    .errors(&[503]),
                Op::new(Method::POST, "Add an operator account (the SIP password is kept only as digest HA1s)")
                    .body(json!({ "type": "object", "required": ["name", "sip_password"], "properties": {
                        "name": { "type": "string" }, "sip_user": { "type": "string" },
                        "display_name": { "type": "string" },
                        "chat_capacity": { "type": "integer", "minimum": 1, "maximum": 10 },
                        "sip_password": { "type": "string" },
                        "digest": { "type": "string", "enum": ["MD5", "SHA-256"] } } }))
                    .ok(201, "created", json!({ "type": "object", "properties": {
                        "id": { "type": "integer" }, "name": { "type": "string" } } }))
                    .errors(&[400, 409, 415, 422, 500]),
            ],
        )
        .route(
            "/operators/{name}/state",
            put(set_state),
            vec![
                Op::new(Method::PUT, "Set an operator's chosen state (kept across restarts)")
                    .body(json!({ "type": "object", "required": ["state"], "properties": {
                        "state": { "type": "string", "enum": ["online", "away", "pause", "offline"] } } }))
                    .ok(204, "set", json!({}))
                    .errors(&[400, 404, 415, 422]),
            ],
        )
        .route(
            "/tokens",
            get(tokens::list).post(tokens::add),
            vec![
                Op::new(Method::GET, "Per-user API tokens: name, owner, created, last used (admins)")
                    .ok(200, "the tokens", json!({ "type": "array", "items": { "type": "object", "properties": {
                        "name": { "type": "string" }, "owner": { "type": "string" },
                        "created_at_ms": { "type": "integer" },
                        "last_used_at_ms": { "type": ["integer", "null"] } } } }))
                    .errors(&[403, 500]),
                Op::new(Method::POST, "Make a token that acts with a user's role; it is shown only in this answer (admins)")
                    .body(json!({ "type": "object", "required": ["name", "user"], "properties": {
                        "name": { "type": "string" }, "user": { "type": "string" } } }))
                    .ok(201, "made", json!({ "type": "object", "properties": {
                        "name": { "type": "string" }, "owner": { "type": "string" },
                        "token": { "type": "string" } } }))
                    .errors(&[400, 403, 409, 415, 422, 500]),
            ],
        )
        .route(
            "/tokens/{name}",
            axum::routing::delete(tokens::revoke),
            vec![Op::new(Method::DELETE, "Revoke a token: it stops working at once (admins)")
                .ok(204, "revoked", json!({}))
                .errors(&[403, 404, 500])],
        )
        // The token is checked before any extractor reads the body.
        .map_router(|r| r.route_layer(axum::middleware::from_fn_with_state(api, authorize)))
        .public(
            "/openapi.json",
            get(move || async move { Json(document.get().cloned().unwrap_or_default()) }),
            vec![Op::new(Method::GET, "This document (OpenAPI 3.1); needs no token")
                .ok(200, "the document", json!({ "type": "object" }))],
        )
}

async fn unknown_path(uri: Uri) -> Problem {
    Problem::not_found_path(uri.path())
}

/// A problem-details error with a message a person can act on.
fn error(status: StatusCode, message: &str) -> Response {
    Problem::new(status, message).into_response()
}

/// Lets the request through with a token that may make it.
async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    match tokens::identify(&api, request.headers()).await {
        Err(problem) => problem.into_response(),
        Ok(caller) if !caller.may(request.method(), request.uri().path()) => Problem::new(
            StatusCode::FORBIDDEN,
            "this token's user may not do this: supervisors' tokens read, operators' tokens \
             set their own operator's state",
        )
        .into_response(),
        Ok(_) => next.run(request).await,
    }
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

async fn queues(State(api): State<Api>) -> Response {
    match figures_json(&api.acd).await {
        Some(body) => Json(body).into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the queue task is not running",
        ),
    }
}

/// GET /api/v1/queues/live: Server-Sent Events, one `queues` event (the same JSON as
/// /api/v1/queues) whenever the figures change, checked every second.
async fn queues_live(State(api): State<Api>) -> Response {
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

async fn operators(State(api): State<Api>) -> Response {
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

/// POST /api/v1/calls: click-to-call. 202 with the call id once the operator's phone rings.
async fn click_to_call(State(api): State<Api>, ApiJson(body): ApiJson<CallBody>) -> Response {
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

/// POST /api/v1/operators: a new operator account; 201 with its id. The SIP password is
/// kept only as digest HA1s.
async fn add_operator(State(api): State<Api>, ApiJson(body): ApiJson<NewOperatorBody>) -> Response {
    let sip_digest = match body.digest.as_deref().map(SipDigest::parse).transpose() {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let form = crate::accounts::NewOperatorAccount {
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
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<StateBody>,
) -> Response {
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
