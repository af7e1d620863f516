//! Canned messages: the operator's search and favourites in the chat window, and the
//! supervisors' page that keeps them (`/admin/canned`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::error_message;
use super::operator::{json_error, my_queues, queues_json};
use crate::auth::{Csrf, CsrfForm, NoFields, OperatorPage, SupervisorPage};
use crate::pages::me;
use crate::state::WebState;

#[derive(Deserialize)]
pub(crate) struct CannedQuery {
    #[serde(default)]
    q: String,
    chat: Option<i64>,
}

/// GET /console/chat/canned?q=…&chat=ID: the canned messages for the chat's queue (or
/// the operator's queues), favourites first.
pub(crate) async fn canned(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Query(q): Query<CannedQuery>,
) -> Response {
    let queues = match q.chat {
        Some(id) => match state.store.chat(id).await {
            Ok(Some(c)) => vec![c.queue],
            _ => Vec::new(),
        },
        None => s
            .user
            .operator
            .as_deref()
            .map(|op| my_queues(&state, op))
            .unwrap_or_default(),
    };
    match state.store.canned_for(s.user.id, &queues, &q.q).await {
        Ok(list) => Json(json!({ "canned": list })).into_response(),
        Err(e) => json_error(StatusCode::BAD_REQUEST, error_message(&e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct FavouriteForm {
    on: bool,
}

/// POST /console/chat/canned/{id}/favourite
pub(crate) async fn favourite(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    Path(id): Path<i64>,
    Json(f): Json<FavouriteForm>,
) -> Response {
    match state.store.set_canned_favourite(s.user.id, id, f.on).await {
        Ok(_) => Json(json!({ "ok": true })).into_response(),
        Err(e) => json_error(StatusCode::BAD_REQUEST, error_message(&e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct AdminQuery {
    msg: Option<String>,
    error: Option<String>,
}

/// GET /admin/canned: supervisors keep the canned messages.
pub(crate) async fn admin_page(
    State(state): State<Arc<WebState>>,
    SupervisorPage(s): SupervisorPage,
    Query(q): Query<AdminQuery>,
) -> Response {
    let canned = state.store.all_canned().await.unwrap_or_default();
    state.render(
        "admin_canned.html",
        minijinja::context! {
            me => me(&s),
            csrf => s.csrf_token,
            canned => canned,
            queues => queues_json(&state),
            message => q.msg,
            error => q.error,
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct CannedForm {
    #[serde(default)]
    queue: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

fn back(result: Result<&str, String>) -> Response {
    let q = match result {
        Ok(m) => format!("msg={}", urlencode(m)),
        Err(e) => format!("error={}", urlencode(&e)),
    };
    Redirect::to(&format!("/admin/canned?{q}")).into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn queue_of(f: &CannedForm) -> Option<String> {
    let q = f.queue.trim();
    (!q.is_empty()).then(|| q.to_string())
}

/// POST /admin/canned
pub(crate) async fn admin_add(
    State(state): State<Arc<WebState>>,
    CsrfForm(SupervisorPage(s), f): CsrfForm<SupervisorPage, CannedForm>,
) -> Response {
    back(
        state
            .store
            .add_canned(queue_of(&f), &f.title, &f.body, s.user.id)
            .await
            .map(|_| "Canned message added.")
            .map_err(|e| error_message(&e)),
    )
}

/// POST /admin/canned/{id}
pub(crate) async fn admin_update(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    CsrfForm(SupervisorPage(_), f): CsrfForm<SupervisorPage, CannedForm>,
) -> Response {
    back(
        state
            .store
            .update_canned(id, queue_of(&f), &f.title, &f.body)
            .await
            .map(|_| "Canned message saved.")
            .map_err(|e| error_message(&e)),
    )
}

/// POST /admin/canned/{id}/delete
pub(crate) async fn admin_delete(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    CsrfForm(SupervisorPage(_), _): CsrfForm<SupervisorPage, NoFields>,
) -> Response {
    back(
        state
            .store
            .delete_canned(id)
            .await
            .map(|_| "Canned message deleted.")
            .map_err(|e| error_message(&e)),
    )
}
