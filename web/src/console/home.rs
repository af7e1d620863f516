//! The operator's home page: status switch and live queue figures.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::{CsrfForm, OperatorPage};
use crate::pages::CHOOSABLE;
use crate::state::WebState;

#[derive(Deserialize)]
pub(super) struct DayQuery {
    /// The visual sessions of this day (YYYY-MM-DD) in the recent list.
    day: Option<String>,
}

pub(super) async fn home(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Query(q): Query<DayQuery>,
) -> Response {
    let visual = crate::visual::operator::home_context(&state, &s, q.day.as_deref()).await;
    crate::pages::home(&state, &s, visual, minijinja::context! {}).await
}

#[derive(Deserialize)]
pub(super) struct StatusForm {
    state: String,
}

pub(super) async fn set_status(
    State(state): State<Arc<WebState>>,
    CsrfForm(OperatorPage(s), f): CsrfForm<OperatorPage, StatusForm>,
) -> Response {
    let Some(operator) = &s.user.operator else {
        return state.error_page(
            StatusCode::CONFLICT,
            "Your user is not linked to an operator account, so it has no status. An admin can link it.",
        );
    };
    if !CHOOSABLE.contains(&f.state.as_str()) {
        return state.error_page(StatusCode::BAD_REQUEST, "Choose online, away or pause.");
    }
    match state.telephony.set_operator_state(operator, &f.state).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => state.error_page(StatusCode::CONFLICT, &e),
    }
}
