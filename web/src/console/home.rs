//! The operator's home page: status switch and live queue figures.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hotline_core::users::WebSession;
use serde::Deserialize;

use super::me;
use crate::auth::{CsrfForm, OperatorPage};
use crate::state::WebState;

/// The states an operator may choose; busy and wrap-up follow calls.
const CHOOSABLE: [&str; 3] = ["online", "away", "pause"];

pub(super) async fn home(
    State(console): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Query(q): super::visual::HomeQuery,
) -> Response {
    render_home(&console, &s, q.day.as_deref(), minijinja::context! {}).await
}

/// The home page; `form` keeps what the operator typed into a refused invite form.
pub(super) async fn render_home(
    console: &WebState,
    s: &WebSession,
    day: Option<&str>,
    form: minijinja::Value,
) -> Response {
    let status = match &s.user.operator {
        Some(op) => console.telephony.operator_status(op).await,
        None => None,
    };
    console.render(
        "home.html",
        minijinja::context! {
            me => me(s),
            status => status,
            states => CHOOSABLE,
            visual => super::visual::home_context(console, s, day).await,
            wrapup_categories => &console.chat.config.wrapup_categories,
            form => form,
        },
    )
}

#[derive(Deserialize)]
pub(super) struct StatusForm {
    state: String,
}

pub(super) async fn set_status(
    State(console): State<Arc<WebState>>,
    CsrfForm(OperatorPage(s), f): CsrfForm<OperatorPage, StatusForm>,
) -> Response {
    let Some(operator) = &s.user.operator else {
        return console.error_page(
            StatusCode::CONFLICT,
            "Your user is not linked to an operator account, so it has no status. An admin can link it.",
        );
    };
    if !CHOOSABLE.contains(&f.state.as_str()) {
        return console.error_page(StatusCode::BAD_REQUEST, "Choose online, away or pause.");
    }
    match console
        .telephony
        .set_operator_state(operator, &f.state)
        .await
    {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => console.error_page(StatusCode::CONFLICT, &e),
    }
}
