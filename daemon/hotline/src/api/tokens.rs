//! Who a bearer token is, what it may do, and the admin's token routes: POST and GET
//! /api/v1/tokens, DELETE /api/v1/tokens/{name}. The configured token (api.token) may do
//! everything; a per-user token acts with its user's role: an admin everything, a
//! supervisor the read-only routes, an operator only its own operator's state.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hotline_core::api_tokens::TokenError;
use hotline_core::users::Role;
use serde::Deserialize;
use serde_json::json;

use super::Api;
use super::problem::{ApiJson, ApiPath, Problem};

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The token from the settings.
    Configured,
    /// A per-user token: the user's role and the operator account they work as.
    User {
        role: Role,
        operator: Option<String>,
    },
}

impl Caller {
    /// Whether the caller may send `method` to `path` (an /api or /api/v1 path).
    pub fn may(&self, method: &Method, path: &str) -> bool {
        let rest = path
            .strip_prefix("/api/v1/")
            .or_else(|| path.strip_prefix("/api/"))
            .unwrap_or("");
        let parts: Vec<&str> = rest.split('/').collect();
        match self {
            Caller::Configured => true,
            Caller::User {
                role: Role::Admin, ..
            } => true,
            Caller::User {
                role: Role::Supervisor,
                ..
            } => (method == Method::GET || method == Method::HEAD) && parts[0] != "tokens",
            Caller::User {
                role: Role::Operator,
                operator,
            } => {
                method == Method::PUT
                    && matches!(parts.as_slice(), ["operators", name, "state"]
                        if operator.as_deref() == Some(*name))
            }
        }
    }
}

/// The caller a request's bearer token names, or the problem that refuses it.
pub async fn identify(api: &Api, headers: &HeaderMap) -> Result<Caller, Problem> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if given.starts_with(hotline_core::api_tokens::PREFIX) {
        let now_ms = api.calls.clock.now().timestamp_millis();
        return match api.calls.store.api_token_user(given, now_ms).await {
            Ok(Some(user)) => Ok(Caller::User {
                role: user.role,
                operator: user.operator,
            }),
            Ok(None) => Err(wrong_token()),
            Err(e) => {
                tracing::error!("API: checking a token: {e}");
                Err(Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the database failed; see the log",
                ))
            }
        };
    }
    let Some(token) = &api.token else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "the API is off: set api.token (or HOTLINE_API_TOKEN), or use a token from \
             `hotline token add`",
        ));
    };
    // Compare without an early exit, so timing doesn't reveal the token.
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(Caller::Configured)
    } else {
        Err(wrong_token())
    }
}

fn wrong_token() -> Problem {
    Problem::unauthorized("missing or wrong bearer token (Authorization: Bearer TOKEN)")
}

#[derive(Deserialize)]
pub struct NewTokenBody {
    name: String,
    /// The user whose role the token acts with.
    user: String,
}

/// POST /api/v1/tokens: 201 with the token, shown only now.
pub async fn add(State(api): State<Api>, ApiJson(body): ApiJson<NewTokenBody>) -> Response {
    let now_ms = api.calls.clock.now().timestamp_millis();
    match api
        .calls
        .store
        .add_api_token(&body.name, &body.user, now_ms)
        .await
    {
        Ok(token) => (
            StatusCode::CREATED,
            Json(json!({ "name": body.name, "owner": body.user, "token": token })),
        )
            .into_response(),
        Err(e) => token_error(e),
    }
}

/// GET /api/v1/tokens: name, owner, created and last used; never the tokens.
pub async fn list(State(api): State<Api>) -> Response {
    match api.calls.store.api_tokens().await {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => token_error(e),
    }
}

/// DELETE /api/v1/tokens/{name}: the token stops working at once.
pub async fn revoke(State(api): State<Api>, ApiPath(name): ApiPath<String>) -> Response {
    match api.calls.store.revoke_api_token(&name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => token_error(e),
    }
}

fn token_error(e: TokenError) -> Response {
    let status = match &e {
        TokenError::Exists(_) => StatusCode::CONFLICT,
        TokenError::NoUser(_) | TokenError::BadName(_) => StatusCode::BAD_REQUEST,
        TokenError::NotFound(_) => StatusCode::NOT_FOUND,
        TokenError::Store(e) => {
            tracing::error!("API: tokens: {e}");
            return Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database failed; see the log",
            )
            .into_response();
        }
    };
    Problem::new(status, e.to_string()).into_response()
}
