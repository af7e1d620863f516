//! Visual sessions, the customer's side and the relay between the two browsers.
//!
//! The customer opens the invite link (`/v/{token}`) on a phone: after consent the camera
//! picture goes to the operator's browser over WebRTC, browser to browser. The daemon only
//! relays the signalling (offer, answer, ICE candidates) and the chat over one WebSocket
//! per browser, stores chat messages with a sequence number (a reconnecting page asks for
//! what it missed) and keeps photos and snapshots with the case.
//!
//! The relay is in memory, per node: both browsers of a session must reach the same node
//! (sticky sessions behind a load balancer).
//!
//! The operator's side is [`operator`], the customer's [`customer`].
//!
//! The sockets take frames as chat's do ([`crate::chat::chat_socket`]: 64 KiB at most) and
//! at the same rates per socket as a chat visitor's per address (`[chat.limits]`): chat
//! messages (and resync requests) as `messages`, WebRTC signalling as `drafts`. A photo
//! upload's link is checked before a byte of its body is read.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::ws::{Message as WsMessage, WebSocket};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hotline_core::visual::{FileKind, Party, SmsLimits, VisualSession};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::state::WebState;
use crate::unix_ms;

pub mod customer;
pub mod operator;

/// Photos and snapshots: at most this many bytes each.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// What a chat message may hold.
const MAX_CHAT_CHARS: usize = 4000;

/// What visual sessions need beyond the store and the shared [`crate::state::WebSettings`].
pub struct VisualSettings {
    /// The RTCPeerConnection `iceServers` (STUN/TURN), as JSON.
    pub ice_servers_json: String,
    pub sms_limits: SmsLimits,
    pub hub: Hub,
}

impl Default for VisualSettings {
    /// No STUN/TURN servers, the default SMS limits.
    fn default() -> VisualSettings {
        VisualSettings {
            ice_servers_json: "[]".into(),
            sms_limits: SmsLimits::default(),
            hub: Hub::default(),
        }
    }
}

/// Who gets an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    Operator,
    Customer,
    Both,
}

/// What the server tells a browser, as JSON with a `type`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The operator ended the session (or it expired).
    Ended,
    /// The customer opened the link.
    Joined,
    /// Whether the other side's page is connected.
    Presence { operator: bool, customer: bool },
    Chat {
        seq: i64,
        from: &'static str,
        text: String,
        client_id: Option<String>,
        at_ms: i64,
    },
    /// Offer, answer or ICE candidate from the other browser, passed on unread.
    Signal { data: serde_json::Value },
    /// A photo or snapshot was stored.
    File { file: FileJson },
    /// A request could not be carried out.
    Error { message: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct FileJson {
    pub id: String,
    pub kind: &'static str,
    pub url: String,
    pub content_type: String,
    pub size: i64,
}

/// What a browser sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming {
    /// Chat messages after `after` (0: all), sent right after connecting.
    Hello {
        after: i64,
    },
    Chat {
        text: String,
        client_id: Option<String>,
    },
    Signal {
        data: serde_json::Value,
    },
}

/// An event for one socket, serialized once per send; `last` closes the socket after it.
struct Outgoing {
    text: String,
    last: bool,
}

type Sender = mpsc::UnboundedSender<Outgoing>;

#[derive(Default)]
struct Room {
    operator: Vec<(u64, Sender)>,
    customer: Vec<(u64, Sender)>,
}

/// The connected browsers of every session on this node.
#[derive(Default)]
pub struct Hub {
    rooms: Mutex<HashMap<i64, Room>>,
    next: std::sync::atomic::AtomicU64,
    /// Per operator, the session pages they have open on this node.
    open_pages: Mutex<HashMap<String, u8>>,
}

impl Hub {
    /// The operator opened (`true`) or closed a session's page; how many they have open.
    pub fn operator_page(&self, operator: &str, opened: bool) -> u8 {
        let mut pages = self.open_pages.lock().unwrap_or_else(|e| e.into_inner());
        let n = pages.entry(operator.to_string()).or_default();
        *n = if opened {
            n.saturating_add(1)
        } else {
            n.saturating_sub(1)
        };
        let open = *n;
        if open == 0 {
            pages.remove(operator);
        }
        open
    }

    pub fn send(&self, session: i64, to: To, event: &Event) {
        let Ok(text) = serde_json::to_string(event) else {
            return;
        };
        let last = matches!(event, Event::Ended);
        let Ok(rooms) = self.rooms.lock() else {
            return;
        };
        let Some(room) = rooms.get(&session) else {
            return;
        };
        let targets = match to {
            To::Operator => [&room.operator[..], &[]],
            To::Customer => [&room.customer[..], &[]],
            To::Both => [&room.operator[..], &room.customer[..]],
        };
        for (_, tx) in targets.into_iter().flatten() {
            let _ = tx.send(Outgoing {
                text: text.clone(),
                last,
            });
        }
    }

    fn presence(&self, session: i64) -> Event {
        let rooms = self.rooms.lock();
        let (operator, customer) = rooms
            .ok()
            .and_then(|r| {
                r.get(&session)
                    .map(|room| (!room.operator.is_empty(), !room.customer.is_empty()))
            })
            .unwrap_or((false, false));
        Event::Presence { operator, customer }
    }

    fn join(&self, session: i64, party: Party, tx: Sender) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut rooms) = self.rooms.lock() {
            let room = rooms.entry(session).or_default();
            match party {
                Party::Operator => room.operator.push((id, tx)),
                Party::Customer => room.customer.push((id, tx)),
            }
        }
        id
    }

    fn leave(&self, session: i64, id: u64) {
        if let Ok(mut rooms) = self.rooms.lock()
            && let Some(room) = rooms.get_mut(&session)
        {
            room.operator.retain(|(i, _)| *i != id);
            room.customer.retain(|(i, _)| *i != id);
            if room.operator.is_empty() && room.customer.is_empty() {
                rooms.remove(&session);
            }
        }
    }
}

/// A socket's frames per minute, as [`crate::chat::limits`] allows a chat visitor's
/// address: no limit when the limits are off or a budget is 0.
struct FrameBudget {
    messages: Option<DefaultDirectRateLimiter>,
    signals: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
}

impl FrameBudget {
    fn new(limits: &crate::chat::limits::LimitsConfig) -> FrameBudget {
        let budget = |per_minute: u32| {
            NonZeroU32::new(per_minute)
                .filter(|_| limits.enabled)
                .map(|n| RateLimiter::direct(Quota::per_minute(n)))
        };
        FrameBudget {
            messages: budget(limits.messages.per_address),
            signals: budget(limits.drafts.per_address),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one frame of the kind, or says how long to wait.
    fn take(&self, signal: bool) -> Result<(), String> {
        let limiter = if signal {
            &self.signals
        } else {
            &self.messages
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now()).as_secs().max(1);
            let what = if signal {
                "connection updates"
            } else {
                "messages"
            };
            format!("Too many {what}: please wait {wait} s and try again.")
        })
    }
}

/// Relays one browser's WebSocket until it closes or the session ends.
pub async fn serve_socket(state: Arc<WebState>, session: i64, party: Party, mut socket: WebSocket) {
    let hub = &state.visual.hub;
    let budget = FrameBudget::new(&state.chat.config.limits);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let me = hub.join(session, party, tx);
    hub.send(session, To::Both, &hub.presence(session));
    let other = match party {
        Party::Operator => To::Customer,
        Party::Customer => To::Operator,
    };
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                if socket.send(WsMessage::Text(out.text.into())).await.is_err() || out.last {
                    break;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let replies = handle(&state, &budget, session, party, other, text.as_str()).await;
                let mut gone = false;
                for reply in replies {
                    if let Ok(json) = serde_json::to_string(&reply)
                        && socket.send(WsMessage::Text(json.into())).await.is_err()
                    {
                        gone = true;
                        break;
                    }
                }
                if gone {
                    break;
                }
            }
        }
    }
    hub.leave(session, me);
    hub.send(session, To::Both, &hub.presence(session));
}

/// Acts on one message from a browser; returns what only that browser should hear.
async fn handle(
    state: &WebState,
    budget: &FrameBudget,
    session: i64,
    party: Party,
    other: To,
    text: &str,
) -> Vec<Event> {
    let hub = &state.visual.hub;
    let store = &state.store;
    let Ok(incoming) = serde_json::from_str::<Incoming>(text) else {
        return vec![Event::Error {
            message: "unreadable message".into(),
        }];
    };
    if let Err(message) = budget.take(matches!(incoming, Incoming::Signal { .. })) {
        return vec![Event::Error { message }];
    }
    match incoming {
        Incoming::Hello { after } => {
            // Missed messages, each as it would have come live, to this browser only.
            store
                .visual_messages(session, after)
                .await
                .unwrap_or_default()
                .iter()
                .map(chat_event)
                .collect()
        }
        Incoming::Chat { text, client_id } => {
            let text = text.trim();
            if text.is_empty() || text.chars().count() > MAX_CHAT_CHARS {
                return vec![Event::Error {
                    message: format!("a message has 1 to {MAX_CHAT_CHARS} characters"),
                }];
            }
            match store
                .add_visual_message(session, party, text, client_id, unix_ms())
                .await
            {
                Ok(m) => {
                    hub.send(session, To::Both, &chat_event(&m));
                    Vec::new()
                }
                Err(e) => vec![Event::Error {
                    message: e.to_string(),
                }],
            }
        }
        Incoming::Signal { data } => {
            hub.send(session, other, &Event::Signal { data });
            Vec::new()
        }
    }
}

fn chat_event(m: &hotline_core::visual::VisualMessage) -> Event {
    Event::Chat {
        seq: m.seq,
        from: m.from.as_str(),
        text: m.text.clone(),
        client_id: m.client_id.clone(),
        at_ms: m.created_at_ms,
    }
}

/// Stores an image (checked by its content, not its name) for the session's case.
pub async fn save_image(
    state: &WebState,
    session: &VisualSession,
    kind: FileKind,
    body: &[u8],
) -> Result<FileJson, (StatusCode, String)> {
    if body.len() > MAX_IMAGE_BYTES {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "an image may have at most {} MB",
                MAX_IMAGE_BYTES / 1024 / 1024
            ),
        ));
    }
    let content_type = match infer::get(body).map(|t| t.mime_type()) {
        Some(t @ ("image/jpeg" | "image/png" | "image/webp" | "image/gif")) => t,
        _ => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "only JPEG, PNG, WebP or GIF pictures".into(),
            ));
        }
    };
    let size = i64::try_from(body.len()).unwrap_or(i64::MAX);
    let file = state
        .store
        .add_visual_file(session.id, kind, content_type, size, unix_ms())
        .await
        .map_err(|e| (StatusCode::CONFLICT, e.to_string()))?;
    let dir = &state.settings.files_dir;
    let path = dir.join(&file.id);
    if let Err(e) = tokio::fs::create_dir_all(dir).await {
        tracing::error!("creating {}: {e}", dir.display());
    }
    if let Err(e) = tokio::fs::write(&path, body).await {
        tracing::error!("writing {}: {e}", path.display());
        return Err((
            StatusCode::INSUFFICIENT_STORAGE,
            "the picture could not be stored".into(),
        ));
    }
    let json = FileJson {
        url: format!("/visual/{}/files/{}", session.id, file.id),
        kind: kind.as_str(),
        id: file.id,
        content_type: content_type.to_string(),
        size,
    };
    state.visual.hub.send(
        session.id,
        To::Operator,
        &Event::File { file: json.clone() },
    );
    Ok(json)
}

/// The picture an upload carries, read only now (after its link or session was checked)
/// and at most [`MAX_IMAGE_BYTES`]; a larger one is refused as it arrives.
pub async fn read_image(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(serde_json::json!({ "error": "the picture is larger than 20 MB" })),
        )
            .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_IMAGE_BYTES) {
        return Err(too_large());
    }
    // With its length declared (as browsers do) and within the limit, a body that fails
    // stopped coming (the body timeout, a dropped connection): not a size problem.
    axum::body::to_bytes(body, MAX_IMAGE_BYTES)
        .await
        .map_err(|_| match declared {
            Some(_) => (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": "the upload stopped before the picture was complete" })),
            )
                .into_response(),
            None => too_large(),
        })
}

/// The operator's and the customer's routes.
pub fn router() -> Router<Arc<WebState>> {
    // The body limit only backs up `read_image`, which checks it as the body arrives.
    let images = || DefaultBodyLimit::max(MAX_IMAGE_BYTES);
    Router::new()
        .route("/visual", post(operator::create))
        .route("/visual/{id}", get(operator::page))
        .route("/visual/{id}/status", get(operator::status))
        .route("/visual/{id}/end", post(operator::end))
        .route("/visual/{id}/ws", get(operator::socket))
        .route(
            "/visual/{id}/snapshots",
            post(operator::snapshot).layer(images()),
        )
        .route("/visual/{id}/files/{file}", get(operator::file))
        .route("/v/{token}", get(customer::page))
        .route("/v/{token}/ws", get(customer::socket))
        .route("/v/{token}/photos", post(customer::photo).layer(images()))
}
