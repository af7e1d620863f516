//! The operator console: login, the operator's home page and the admin pages.
//!
//! Pages are rendered on the server (minijinja, HTML auto-escaped) with small JS modules
//! for what changes live. Every route finds the browser's session itself and checks the
//! role it needs; every form and state-changing request carries the session's CSRF token.
//! Telephony (operator states, queue figures, SIP accounts) is reached through
//! [`Telephony`], which the daemon implements.

// A refusal is a whole page; handlers return it as they are, so it is not boxed.
#![allow(clippy::result_large_err)]

mod admin;
mod callbacks;
pub mod calls;
mod chat;
mod direct;
mod home;
mod live;
mod login;
mod tasks;
mod visual;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hotline_core::store::Store;
use hotline_core::users::{LoginPolicy, Role, WebSession};
use serde::Serialize;

pub use crate::unix_ms;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the console needs from the telephony side of the daemon.
pub trait Telephony: Send + Sync + 'static {
    /// online, away, pause or offline; busy and wrap-up follow calls.
    fn set_operator_state<'a>(
        &'a self,
        operator: &'a str,
        state: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The operator's status as the queues see it (online, busy, wrap-up, …).
    fn operator_status<'a>(&'a self, operator: &'a str) -> BoxFuture<'a, Option<String>>;
    /// Every queue's figures (waiting, longest wait, online, busy, paused …) as JSON.
    fn queue_figures(&self) -> BoxFuture<'_, Option<serde_json::Value>>;
    /// A new operator account with a SIP password (only digest HA1s are kept).
    fn add_operator<'a>(&'a self, form: &'a OperatorForm) -> BoxFuture<'a, Result<i64, String>>;
    /// Rings the operator's phone, then the customer through the trunk (the hotline number,
    /// or the operator's own number, as caller ID). `callback`: the callback-list entry the
    /// call works off, already claimed by the operator; the call's outcome is recorded on
    /// it. Returns the call id, or why the call could not start.
    fn call_customer<'a>(
        &'a self,
        operator: &'a str,
        number: &'a str,
        callback: Option<i64>,
    ) -> BoxFuture<'a, Result<String, String>>;
    /// How long an entry of `queue` stays off the list after a failed attempt, in ms.
    fn callback_hide_ms(&self, queue: Option<&str>) -> i64;
    /// Whether the dial plan lets Hotline dial `number` (the number as it would be
    /// dialled), or why not: numbers operators put on the callback list must pass it.
    fn check_dialable(&self, number: &str) -> Result<String, String> {
        Ok(number.to_string())
    }
    /// Every queue's name and display name (chat topics, invite and transfer lists).
    fn queue_names(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The operators of a queue (who may be offered its chats).
    fn queue_members(&self, _queue: &str) -> Vec<String> {
        Vec::new()
    }
    /// The operator's open chats: with any, the queues offer them no voice call.
    fn set_chat_load<'a>(&'a self, _operator: &'a str, _chats: i64) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The visual sessions whose page the operator has open: with any, the queues offer
    /// them no voice call.
    fn set_visual_load<'a>(&'a self, _operator: &'a str, _open: u8) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The operator's connected call for the call panel, as JSON (`call_id`, `caller`,
    /// `queue`, `since_ms`, `held`, `note`, `note_from`, `consult`, `targets`), or `None`.
    fn operator_call<'a>(&'a self, _operator: &'a str) -> BoxFuture<'a, Option<serde_json::Value>> {
        Box::pin(async { None })
    }
    /// Holds, resumes or transfers the operator's connected call.
    fn call_control<'a>(
        &'a self,
        _operator: &'a str,
        _control: calls::CallControl,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("calls are not controlled from here".to_string()) })
    }
}

/// The admin's form for an operator's SIP account.
#[derive(Clone, Debug)]
pub struct OperatorForm {
    pub name: String,
    pub sip_user: String,
    pub display_name: String,
    /// Concurrent chats; `None`: the default.
    pub chat_capacity: Option<i64>,
    pub sip_password: String,
}

pub struct Console {
    pub store: Store,
    pub telephony: Arc<dyn Telephony>,
    pub policy: LoginPolicy,
    /// Cookies marked Secure: set when the console is served over TLS (a proxy).
    pub secure_cookies: bool,
    pub visual: crate::visual::VisualSettings,
    /// The home page's live widgets.
    pub live: live::LiveFeeds,
    /// Web chat: the sites and the connected sockets.
    pub chat: crate::chat::ChatSettings,
    /// Failed logins per client address in the current window, against floods that
    /// try many user names (the per-account lockout is in the store).
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
    /// When a login last purged expired sessions (unix ms).
    last_purge_ms: AtomicI64,
}

impl Console {
    pub fn new(
        store: Store,
        telephony: Arc<dyn Telephony>,
        policy: LoginPolicy,
        secure_cookies: bool,
        visual: crate::visual::VisualSettings,
    ) -> Console {
        Console {
            store,
            telephony,
            policy,
            secure_cookies,
            visual,
            live: live::LiveFeeds::default(),
            chat: crate::chat::ChatSettings::default(),
            failures: Mutex::new(HashMap::new()),
            last_purge_ms: AtomicI64::new(0),
        }
    }

    /// The chat sites and settings (`[chat]`), set before the console is shared.
    pub fn with_chat(mut self, config: crate::chat::ChatConfig) -> Console {
        self.chat.config = config;
        self
    }

    /// A page, or a plain error page when the template fails.
    pub(crate) fn render(&self, name: &str, ctx: minijinja::Value) -> Response {
        crate::pages::render(name, ctx)
    }

    /// A page for customers (no console layout, no session).
    pub(crate) fn render_public(&self, name: &str, ctx: minijinja::Value) -> Response {
        self.render(name, ctx)
    }

    /// A time for people, in the console's time zone.
    pub(crate) fn local_time(&self, ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| {
                t.with_timezone(&self.visual.time_zone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// A page that says what went wrong, with the right status.
    pub(crate) fn error_page(&self, status: StatusCode, message: &str) -> Response {
        crate::error::WebError::page(status, message.to_string()).into_response()
    }
}

pub fn router(console: Arc<Console>) -> Router {
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

/// What every page's layout shows of the logged-in user.
#[derive(Serialize)]
struct Me<'a> {
    name: &'a str,
    display_name: &'a str,
    role: &'static str,
    operator: Option<&'a str>,
    is_admin: bool,
    is_supervisor: bool,
    csrf: &'a str,
}

fn me(s: &WebSession) -> Me<'_> {
    Me {
        name: &s.user.name,
        display_name: &s.user.display_name,
        role: s.user.role.as_str(),
        operator: s.user.operator.as_deref(),
        is_admin: s.user.role.allows(Role::Admin),
        is_supervisor: s.user.role.allows(Role::Supervisor),
        csrf: &s.csrf_token,
    }
}

/// Telephony for tests of pages that don't use it.
#[cfg(test)]
pub(crate) struct NoPhones;

#[cfg(test)]
impl Telephony for NoPhones {
    fn set_operator_state<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn operator_status<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async { None })
    }
    fn queue_figures(&self) -> BoxFuture<'_, Option<serde_json::Value>> {
        Box::pin(async { None })
    }
    fn add_operator<'a>(&'a self, _: &'a OperatorForm) -> BoxFuture<'a, Result<i64, String>> {
        Box::pin(async { Err("not here".into()) })
    }
    fn call_customer<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Option<i64>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async { Err("not here".into()) })
    }
    fn callback_hide_ms(&self, _: Option<&str>) -> i64 {
        0
    }
}
