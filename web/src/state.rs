//! The web app's state ([`WebState`]): the store, the telephony side, the settings every
//! part uses ([`WebSettings`]) and each feature's own (chat, visual sessions, the
//! console's live widgets).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hotline_core::notify::{NotifierHandle, NotifyConfig};
use hotline_core::store::Store;
use hotline_core::users::LoginPolicy;

use crate::telephony::Telephony;

/// What chat, visual sessions and the console pages share.
pub struct WebSettings {
    /// How customers reach this server, for links (e.g. https://help.example.com).
    pub public_url: String,
    /// How invites and webhooks are sent (`[notify]`).
    pub notify: NotifyConfig,
    pub notifier: Option<NotifierHandle>,
    /// Uploaded files: visual sessions' photos and snapshots, chat attachments (`chat/`).
    pub files_dir: PathBuf,
    /// Dates on the pages are in this zone, and times are typed in it.
    pub time_zone: chrono_tz::Tz,
    /// Recorded calls (`[recordings] dir`); the rows' paths are relative to it.
    pub recordings_dir: PathBuf,
}

/// The whole web app's state, shared by every route.
pub struct WebState {
    pub store: Store,
    pub telephony: Arc<dyn Telephony>,
    pub policy: LoginPolicy,
    /// Cookies marked Secure: set when the console is served over TLS (a proxy).
    pub secure_cookies: bool,
    pub settings: WebSettings,
    pub visual: crate::visual::VisualSettings,
    /// The home page's live widgets.
    pub live: crate::console::live::LiveFeeds,
    /// Web chat: the sites and the connected sockets.
    pub chat: crate::chat::ChatSettings,
    /// Failed logins per client address in the current window, against floods that
    /// try many user names (the per-account lockout is in the store).
    pub(crate) failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
    /// When a login last purged expired sessions (unix ms).
    pub(crate) last_purge_ms: AtomicI64,
}

impl WebState {
    pub fn new(
        store: Store,
        telephony: Arc<dyn Telephony>,
        policy: LoginPolicy,
        secure_cookies: bool,
        settings: WebSettings,
        visual: crate::visual::VisualSettings,
    ) -> WebState {
        WebState {
            store,
            telephony,
            policy,
            secure_cookies,
            settings,
            visual,
            live: Default::default(),
            chat: crate::chat::ChatSettings::default(),
            failures: Mutex::new(HashMap::new()),
            last_purge_ms: AtomicI64::new(0),
        }
    }

    /// The chat sites and settings (`[chat]`), set before the console is shared.
    pub fn with_chat(mut self, config: crate::chat::ChatConfig) -> WebState {
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
                t.with_timezone(&self.settings.time_zone)
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
