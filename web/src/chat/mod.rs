//! Web chat (PRODUCT H1–H6): the widget a company puts on its site, the visitor's page in
//! its iframe, and what both sides' sockets share. The operator's side is
//! [`operator`]; the offer loop is [`dispatch`].
//!
//! Every event is stored (with the chat's next sequence number) before anyone is told;
//! sockets are only woken and read the store from the last number they sent, so a
//! reconnect or a restart resumes exactly. Visibility (private events) is decided in the
//! store by `Audience`, nowhere here.

pub mod canned;
pub mod dispatch;
pub mod files;
pub mod history;
pub mod hub;
pub mod limits;
pub mod operator;
pub mod sweep;
pub mod view;
mod visitor;

#[cfg(test)]
mod tests;

pub use visitor::send_transcript as visitor_transcript;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use hotline_core::chat::{ChatError, MAX_FILE_BYTES, MAX_FILES_PER_MESSAGE};
use serde::Deserialize;

use crate::state::WebState;

/// `[chat]` in hotline.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    pub sites: Vec<Site>,
    /// Seconds an operator has to accept an offered chat before it goes to another.
    pub offer_timeout_secs: u64,
    /// What an operator may choose when wrapping up a chat.
    pub wrapup_categories: Vec<String>,
    /// Requests per minute per client address and per site (`[chat.limits]`).
    pub limits: limits::LimitsConfig,
    /// A waiting (or offered) chat whose visitor has had no socket open for this long
    /// ends by itself.
    pub abandon_waiting_after_secs: u64,
    /// All files of one chat together, in MiB.
    pub files_quota_mb: u64,
    /// Files uploaded but never sent in a message are removed after this.
    pub unsent_files_after_secs: u64,
    /// Signed visitor fields older than this are refused.
    pub signature_max_age_secs: u64,
}

impl Default for ChatConfig {
    /// One site, `demo`, for the support queue, embeddable from this server itself: the
    /// embedded defaults run a chat out of the box (`/chat/demo`).
    fn default() -> ChatConfig {
        ChatConfig {
            sites: vec![Site {
                key: "demo".into(),
                name: "Hotline demo".into(),
                queues: vec!["support".into()],
                greeting: "Hello! Write your question; an operator will answer shortly.".into(),
                greetings: Default::default(),
                colour: default_colour(),
                allowed_origins: Vec::new(),
                hmac_secret: None,
            }],
            offer_timeout_secs: 30,
            wrapup_categories: vec![
                "Question answered".into(),
                "Order".into(),
                "Complaint".into(),
                "Other".into(),
            ],
            limits: limits::LimitsConfig::default(),
            abandon_waiting_after_secs: 300,
            files_quota_mb: 50,
            unsent_files_after_secs: 3600,
            signature_max_age_secs: 24 * 3600,
        }
    }
}

/// A website that embeds the widget (`[[chat.sites]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// In the script's URL: `/chat/widget.js?site=KEY`.
    pub key: String,
    pub name: String,
    /// The queues the visitor may choose (the first is the default).
    pub queues: Vec<String>,
    /// The automatic first message of every chat.
    #[serde(default)]
    pub greeting: String,
    /// A queue's own greeting instead (`[chat.sites.greetings] sales = "…"`).
    #[serde(default)]
    pub greetings: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_colour")]
    pub colour: String,
    /// Origins (`https://www.example.com`) whose pages may frame the chat; this server's
    /// own pages always may.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Signs verified visitor fields (HMAC-SHA256 over
    /// `visitor_key\ntimestamp\ncustomer_id\nemail\nname`, see `hotline_core::chat`).
    #[serde(default)]
    pub hmac_secret: Option<String>,
}

fn default_colour() -> String {
    "#0b5cad".into()
}

impl Site {
    /// The greeting a chat in `queue` starts with (empty: none).
    pub fn greeting_for(&self, queue: &str) -> &str {
        self.greetings
            .get(queue)
            .map_or(self.greeting.as_str(), String::as_str)
    }
}

impl ChatConfig {
    pub fn site(&self, key: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.key == key)
    }

    pub fn files_quota_bytes(&self) -> i64 {
        i64::try_from(self.files_quota_mb)
            .unwrap_or(i64::MAX)
            .saturating_mul(1024 * 1024)
    }

    fn secs_ms(secs: u64) -> i64 {
        i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
    }

    pub fn abandon_waiting_after_ms(&self) -> i64 {
        Self::secs_ms(self.abandon_waiting_after_secs)
    }

    pub fn unsent_files_after_ms(&self) -> i64 {
        Self::secs_ms(self.unsent_files_after_secs)
    }

    pub fn signature_max_age_s(&self) -> i64 {
        i64::try_from(self.signature_max_age_secs).unwrap_or(i64::MAX)
    }

    /// Problems that must stop start-up, as messages naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(5..=600).contains(&self.offer_timeout_secs) {
            return Err("chat.offer_timeout_secs must be 5–600".into());
        }
        // The sweep refreshes connected visitors every SWEEP_EVERY: well below this.
        if !(60..=86_400).contains(&self.abandon_waiting_after_secs) {
            return Err("chat.abandon_waiting_after_secs must be 60–86400".into());
        }
        if !(1..=100_000).contains(&self.files_quota_mb) {
            return Err("chat.files_quota_mb must be 1–100000".into());
        }
        if !(60..=30 * 86_400).contains(&self.unsent_files_after_secs) {
            return Err("chat.unsent_files_after_secs must be 60–2592000".into());
        }
        if !(60..=30 * 86_400).contains(&self.signature_max_age_secs) {
            return Err("chat.signature_max_age_secs must be 60–2592000".into());
        }
        for s in &self.sites {
            let ok_key = !s.key.is_empty()
                && s.key.len() <= 64
                && s.key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok_key {
                return Err(format!(
                    "chat.sites: key {:?} may only have letters, digits, - and _",
                    s.key
                ));
            }
            if s.queues.is_empty() {
                return Err(format!("chat.sites {:?}: queues is empty", s.key));
            }
            for o in &s.allowed_origins {
                let ok = (o.starts_with("http://") || o.starts_with("https://"))
                    && !o
                        .trim_end_matches('/')
                        .contains(|c: char| c.is_whitespace() || c == ';' || c == '\'' || c == '"');
                if !ok {
                    return Err(format!(
                        "chat.sites {:?}: allowed origin {o:?} must look like https://www.example.com",
                        s.key
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What chat needs beyond the store.
#[derive(Default)]
pub struct ChatSettings {
    pub config: ChatConfig,
    pub hub: hub::ChatHub,
    /// Visitor sockets open per chat, capped at [`MAX_VISITOR_SOCKETS_PER_CHAT`].
    pub visitor_sockets: VisitorSockets,
    /// Made from `config.limits` when first used (the config is set after `default`).
    limiters: OnceLock<limits::ChatLimiters>,
}

impl ChatSettings {
    pub fn limiters(&self) -> &limits::ChatLimiters {
        self.limiters
            .get_or_init(|| limits::ChatLimiters::new(&self.config.limits))
    }
}

/// Visitor sockets one chat may have open on this node: a few tabs or devices of one
/// visitor. Without a cap one chat token could hold sockets (and connections of the
/// server's cap) without end.
pub const MAX_VISITOR_SOCKETS_PER_CHAT: usize = 5;

/// Open visitor sockets per chat. A slot is taken before the upgrade, so a burst can't
/// pass the cap, and is given back when the socket's task ends (or the upgrade fails).
#[derive(Clone, Default)]
pub struct VisitorSockets(Arc<Mutex<HashMap<i64, usize>>>);

/// One open visitor socket of a chat.
pub struct VisitorSocketSlot {
    open: VisitorSockets,
    chat: i64,
}

impl VisitorSockets {
    /// A slot for another socket of `chat`, or `None` when it has `max` open.
    pub fn take(&self, chat: i64, max: usize) -> Option<VisitorSocketSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(chat).or_default();
        if *n >= max {
            if *n == 0 {
                open.remove(&chat);
            }
            return None;
        }
        *n += 1;
        Some(VisitorSocketSlot {
            open: self.clone(),
            chat,
        })
    }

    /// Sockets of `chat` open now.
    pub fn open(&self, chat: i64) -> usize {
        let open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&chat).copied().unwrap_or(0)
    }
}

impl Drop for VisitorSocketSlot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.chat) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.chat);
            }
        }
    }
}

/// The visitor's address, for the rate limits: the shared [`crate::ClientIp`] (the TCP
/// peer, or behind a proxy in `http.trusted_proxies` the address it saw). Without connect
/// info (the router called directly) all share the unspecified address.
pub fn client_ip(parts: &Parts) -> IpAddr {
    crate::ClientIp::from_parts(parts)
        .0
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// [`client_ip`] as an extractor.
pub struct VisitorIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for VisitorIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(VisitorIp(client_ip(parts)))
    }
}

/// A refusal as the sockets and the JSON endpoints show it.
pub fn error_message(e: &ChatError) -> String {
    match e {
        ChatError::Store(err) => {
            tracing::error!("chat store: {err}");
            "the database failed; try again".into()
        }
        other => other.to_string(),
    }
}

/// A request over a rate limit: 429 with the message as JSON (`{"error": …}`, what the
/// widget shows) and `Retry-After`.
pub fn too_many(r: &limits::Refusal) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::RETRY_AFTER, r.retry_after_s.to_string())],
        axum::Json(serde_json::json!({ "error": r.message })),
    )
        .into_response()
}

/// A chat socket's buffers: chat frames are small, and with thousands of waiting visitors
/// the 128 KiB read buffer tungstenite starts with per socket is most of the daemon's
/// memory. A frame carries at most a message (`MAX_MESSAGE_CHARS`) in JSON; anything far
/// bigger is refused (the default would take 64 MiB).
pub fn chat_socket(ws: axum::extract::WebSocketUpgrade) -> axum::extract::WebSocketUpgrade {
    const MAX_FRAME: usize = 64 * 1024;
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
}

/// Tells everyone concerned that the chat has news: its visitor's sockets, and the
/// operators in it or offered it.
pub async fn publish(state: &WebState, chat_id: i64) -> Vec<String> {
    let operators = state
        .store
        .chat_listeners(chat_id)
        .await
        .unwrap_or_default();
    state.chat.hub.wake(chat_id, &operators);
    operators
}

/// The `chat.ended` webhook, for a chat this call just ended: by its visitor, an
/// operator or the abandoned-chat sweep (every end comes through here, once).
pub async fn post_ended(state: &WebState, chat_id: i64) {
    use hotline_core::notify::webhook;
    let Some(notifier) = &state.settings.notifier else {
        return;
    };
    if !notifier.wants(webhook::CHAT_ENDED) {
        return;
    }
    match state.store.ended_chat(chat_id).await {
        Ok(Some(c)) => {
            if let Err(e) = notifier
                .webhook(webhook::CHAT_ENDED, &webhook::chat_ended(&c))
                .await
            {
                tracing::warn!(chat = chat_id, "chat.ended webhook not stored: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(chat = chat_id, "chat.ended webhook: reading the chat: {e}"),
    }
}

/// Sends the chat's fresh view to every operator in it: details changed that are no
/// event (tags, notes, visitor fields, pages visited).
pub async fn push_view(state: &WebState, chat_id: i64) {
    let Ok(Some(chat)) = state.store.chat(chat_id).await else {
        return;
    };
    let frame = serde_json::json!({ "t": "chat", "chat": view::chat_view(state, &chat).await });
    for p in state
        .store
        .chat_participants(chat_id)
        .await
        .unwrap_or_default()
    {
        if p.is_open() {
            state.chat.hub.to_operator(&p.operator, &frame);
        }
    }
}

/// The visitor's routes, the operator's chat window and the canned-messages admin page.
pub fn router() -> Router<Arc<WebState>> {
    // Uploads: the limit is checked per file as it streams; this only bounds the request.
    let upload_limit =
        || DefaultBodyLimit::max((MAX_FILE_BYTES as usize + 64 * 1024) * MAX_FILES_PER_MESSAGE);
    Router::new()
        .route("/chat/widget.js", get(visitor::widget_script))
        .route("/chat/demo", get(visitor::demo_page))
        .route("/chat/visitor", get(visitor::page))
        .route("/chat/start", post(visitor::start))
        .route("/chat/ws", get(visitor::socket))
        .route("/chat/files", post(visitor::upload).layer(upload_limit()))
        .route("/chat/files/{id}", get(visitor::download))
        .route("/chat/transcript", post(visitor::transcript))
        .route("/console/chat", get(operator::page))
        .route("/console/chat/ws", get(operator::socket))
        .route("/console/chat/targets", get(operator::targets))
        .route("/console/chat/canned", get(canned::canned))
        .route(
            "/console/chat/canned/{id}/favourite",
            post(canned::favourite),
        )
        .route(
            "/console/chat/{id}/files",
            post(operator::upload).layer(upload_limit()),
        )
        .route("/console/chat/files/{id}", get(operator::download))
        .route("/console/chat/history", get(history::history))
        .route("/console/chat/history/{id}", get(history::transcript))
        .route(
            "/admin/canned",
            get(canned::admin_page).post(canned::admin_add),
        )
        .route("/admin/canned/{id}", post(canned::admin_update))
        .route("/admin/canned/{id}/delete", post(canned::admin_delete))
}
