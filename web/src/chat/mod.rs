//! Web chat (PRODUCT H1–H6): the widget a company puts on its site, the visitor's page in
//! its iframe, and what both sides' sockets share. The operator's side is
//! `console::chat`; the offer loop is [`dispatch`].
//!
//! Every event is stored (with the chat's next sequence number) before anyone is told;
//! sockets are only woken and read the store from the last number they sent, so a
//! reconnect or a restart resumes exactly. Visibility (private events) is decided in the
//! store by `Audience`, nowhere here.

pub mod dispatch;
pub mod files;
pub mod hub;
pub mod view;
mod visitor;

pub use visitor::send_transcript as visitor_transcript;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use hotline_core::chat::{ChatError, MAX_FILE_BYTES, MAX_FILES_PER_MESSAGE};
use serde::Deserialize;

use crate::console::Console;

/// `[chat]` in hotline.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    pub sites: Vec<Site>,
    /// Seconds an operator has to accept an offered chat before it goes to another.
    pub offer_timeout_secs: u64,
    /// What an operator may choose when wrapping up a chat.
    pub wrapup_categories: Vec<String>,
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
    /// Signs verified visitor fields (HMAC-SHA256 over `customer_id\nemail\nname`).
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

    /// Problems that must stop start-up, as messages naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(5..=600).contains(&self.offer_timeout_secs) {
            return Err("chat.offer_timeout_secs must be 5–600".into());
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
pub async fn publish(console: &Console, chat_id: i64) -> Vec<String> {
    let operators = console
        .store
        .chat_listeners(chat_id)
        .await
        .unwrap_or_default();
    console.chat.hub.wake(chat_id, &operators);
    operators
}

/// Sends the chat's fresh view to every operator in it: details changed that are no
/// event (tags, notes, visitor fields, pages visited).
pub async fn push_view(console: &Console, chat_id: i64) {
    let Ok(Some(chat)) = console.store.chat(chat_id).await else {
        return;
    };
    let frame = serde_json::json!({ "t": "chat", "chat": view::chat_view(console, &chat).await });
    for p in console
        .store
        .chat_participants(chat_id)
        .await
        .unwrap_or_default()
    {
        if p.is_open() {
            console.chat.hub.to_operator(&p.operator, &frame);
        }
    }
}

pub fn router() -> Router<Arc<Console>> {
    // Uploads: the limit is checked per file as it streams; this only bounds the request.
    let upload_limit =
        DefaultBodyLimit::max((MAX_FILE_BYTES as usize + 64 * 1024) * MAX_FILES_PER_MESSAGE);
    Router::new()
        .route("/chat/widget.js", get(visitor::widget_script))
        .route("/chat/demo", get(visitor::demo_page))
        .route("/chat/visitor", get(visitor::page))
        .route("/chat/start", post(visitor::start))
        .route("/chat/ws", get(visitor::socket))
        .route("/chat/files", post(visitor::upload).layer(upload_limit))
        .route("/chat/files/{id}", get(visitor::download))
        .route("/chat/transcript", post(visitor::transcript))
}
