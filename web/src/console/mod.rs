//! The operator console: login, the operator's home page with its widgets (calls,
//! callbacks, tasks) and the admin pages. The operator's sides of chat and visual
//! sessions are in [`crate::chat::operator`] and [`crate::visual::operator`].
//!
//! Pages are rendered on the server (minijinja, HTML auto-escaped) with small JS modules
//! for what changes live. Every route names the role it needs and, when it changes
//! anything, the CSRF check, with the extractors of [`crate::auth`]. Telephony (operator
//! states, queue figures, SIP accounts) is reached through [`crate::telephony::Telephony`], which the daemon
//! implements.

// A refusal is a whole page; handlers return it as they are, so it is not boxed.
#![allow(clippy::result_large_err)]

mod admin;
mod board;
mod callbacks;
pub mod calls;
mod direct;
mod home;
pub(crate) mod live;
mod login;
mod recordings;
mod reports;
mod tasks;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::state::WebState;

/// Login, the home page with its widgets, and the admin pages.
pub fn router() -> Router<Arc<WebState>> {
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/console/status", post(home::set_status))
        .route("/console/live", get(live::socket))
        .route("/console/call/hold", post(calls::hold))
        .route("/console/call/transfer", post(calls::transfer))
        .route("/console/call/consult", post(calls::end_consult))
        .route("/console/call/wrapup", post(calls::wrapup))
        .route("/console/call/dial", post(calls::dial))
        .route("/console/call/hangup", post(calls::hangup))
        .route("/console/call/record", post(calls::record))
        .route("/console/call/ready", post(calls::ready))
        .route("/console/callbacks", post(callbacks::add))
        .route("/console/callbacks/{id}/claim", post(callbacks::claim))
        .route("/console/tasks", get(tasks::list).post(tasks::add))
        .route("/console/tasks/assignees", get(tasks::assignees))
        .route("/console/tasks/{id}/complete", post(tasks::complete))
        .route("/console/tasks/{id}/reschedule", post(tasks::reschedule))
        .route("/console/tasks/{id}/call", post(tasks::call))
        .route("/console/tasks/{id}/events", get(tasks::events))
        .route("/console/callbacks/{id}/outcome", post(callbacks::correct))
        .route("/admin/users", get(admin::users).post(admin::add_user))
        .route(
            "/admin/operators",
            get(admin::operators).post(admin::add_operator),
        )
        .route(
            "/admin/operators/{name}/capacity",
            post(admin::set_capacity),
        )
        .route("/admin/queues", get(admin::queues))
        .route("/supervisor", get(board::page))
        .route("/supervisor/wallboard", get(board::wallboard))
        .route("/supervisor/live", get(board::socket))
        .route("/supervisor/monitor", post(board::monitor))
        .route("/supervisor/reports", get(reports::day))
        .route("/supervisor/reports/range", get(reports::range))
        .route("/supervisor/record", post(recordings::record))
        .route("/supervisor/recordings", get(recordings::page))
        .route("/supervisor/recordings/{id}/audio", get(recordings::audio))
        .route(
            "/supervisor/recordings/{id}/download",
            get(recordings::download),
        )
        .route("/admin/direct", get(direct::page).post(direct::save))
        .route(
            "/admin/licenses",
            get(admin::licenses).post(admin::change_license),
        )
        .route("/admin/outbox", get(admin::outbox))
        .route("/admin/notifications", get(admin::notifications))
}
