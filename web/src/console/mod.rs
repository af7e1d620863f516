//! The operator console: login, the operator's home page and the admin pages.
//!
//! Pages are rendered on the server (minijinja, HTML auto-escaped) with small JS modules
//! for what changes live. Every route names the role it needs and, when it changes
//! anything, the CSRF check, with the extractors of [`crate::auth`]. Telephony (operator
//! states, queue figures, SIP accounts) is reached through [`Telephony`], which the daemon
//! implements.

// A refusal is a whole page; handlers return it as they are, so it is not boxed.
#![allow(clippy::result_large_err)]

mod admin;
mod callbacks;
pub mod calls;
mod chat;
mod direct;
mod home;
pub(crate) mod live;
mod login;
mod tasks;
mod visual;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::pages::me;
use crate::state::WebState;
#[cfg(test)]
pub(crate) use crate::telephony::NoPhones;
pub use crate::telephony::{BoxFuture, OperatorForm, Telephony};
pub use crate::unix_ms;

pub fn router(console: Arc<WebState>) -> Router {
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
        .route("/console/callbacks", post(callbacks::add))
        .route("/console/callbacks/{id}/claim", post(callbacks::claim))
        .route("/console/tasks", get(tasks::list).post(tasks::add))
        .route("/console/tasks/assignees", get(tasks::assignees))
        .route("/console/tasks/{id}/complete", post(tasks::complete))
        .route("/console/tasks/{id}/reschedule", post(tasks::reschedule))
        .route("/console/tasks/{id}/call", post(tasks::call))
        .route("/console/tasks/{id}/events", get(tasks::events))
        .route("/console/callbacks/{id}/outcome", post(callbacks::correct))
        .route("/console/chat", get(chat::page))
        .route("/console/chat/ws", get(chat::socket))
        .route("/console/chat/canned", get(chat::canned))
        .route("/console/chat/canned/{id}/favourite", post(chat::favourite))
        .route(
            "/console/chat/{id}/files",
            post(chat::upload).layer(DefaultBodyLimit::max(
                (hotline_core::chat::MAX_FILE_BYTES as usize + 64 * 1024)
                    * hotline_core::chat::MAX_FILES_PER_MESSAGE,
            )),
        )
        .route("/console/chat/files/{id}", get(chat::download))
        .route("/console/chat/history", get(chat::history))
        .route("/console/chat/history/{id}", get(chat::transcript))
        .route("/admin/canned", get(chat::admin_page).post(chat::admin_add))
        .route("/admin/canned/{id}", post(chat::admin_update))
        .route("/admin/canned/{id}/delete", post(chat::admin_delete))
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
        .route("/admin/direct", get(direct::page).post(direct::save))
        .route(
            "/admin/licenses",
            get(admin::licenses).post(admin::change_license),
        )
        .route("/admin/outbox", get(admin::outbox))
        .route("/admin/notifications", get(admin::notifications))
        .route("/visual", post(visual::create))
        .route("/visual/{id}", get(visual::page))
        .route("/visual/{id}/status", get(visual::status))
        .route("/visual/{id}/end", post(visual::end))
        .route("/visual/{id}/ws", get(visual::socket))
        .route(
            "/visual/{id}/snapshots",
            post(visual::snapshot).layer(DefaultBodyLimit::max(crate::visual::MAX_IMAGE_BYTES)),
        )
        .route("/visual/{id}/files/{file}", get(visual::file))
        .route("/v/{token}", get(crate::visual::customer_page))
        .route("/v/{token}/ws", get(crate::visual::customer_socket))
        .route(
            "/v/{token}/photos",
            post(crate::visual::customer_photo)
                .layer(DefaultBodyLimit::max(crate::visual::MAX_IMAGE_BYTES)),
        )
        .route("/assets/{name}", get(crate::assets::asset))
        .merge(crate::chat::router())
        .with_state(console)
}
