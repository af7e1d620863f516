//! The visitor's side: the widget script, the page in its iframe, starting a chat, the
//! visitor's socket, attachments and the transcript by e-mail.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use hotline_core::chat::{
    Audience, Chat, ChatError, EventKind, NewChat, NewEvent, NewVisitor, Sender, SignedVisitor,
    verified_fields,
};
use hotline_core::notify::{Channel, NewMessage};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::hub::Push;
use super::limits::Action;
use super::view::{event_frame, state_frame};
use super::{Site, VisitorIp, error_message, publish, too_many};
use crate::state::WebState;
use crate::unix_ms;

const WIDGET_JS: &str = include_str!("../../assets/chat-widget.js");

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

#[derive(Deserialize)]
pub struct SiteQuery {
    site: Option<String>,
}

pub async fn widget_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

/// A page of this server with the widget on it: the embedded defaults' chat, at once.
pub async fn demo_page(Query(q): Query<SiteQuery>) -> Response {
    let site = q.site.unwrap_or_else(|| "demo".into());
    let site: String = site
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Chat demo</title></head><body><main><h1>A company's website</h1>\
         <p>The chat button in the corner is Hotline's widget for site <code>{site}</code>.</p>\
         </main><script src=\"/chat/widget.js?site={site}\" async></script></body></html>"
    ))
    .into_response()
}

fn queues_for(state: &WebState, site: &Site) -> Vec<Value> {
    let names = state.telephony.queue_names();
    site.queues
        .iter()
        .map(|q| {
            let display = names
                .iter()
                .find(|(n, _)| n == q)
                .map(|(_, d)| d.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| q.clone());
            json!({ "name": q, "display_name": display })
        })
        .collect()
}

/// The iframe's page. Only the site's own origins (and this server) may frame it.
pub async fn page(State(state): State<Arc<WebState>>, Query(q): Query<SiteQuery>) -> Response {
    let Some(site) = q.site.as_deref().and_then(|k| state.chat.config.site(k)) else {
        return (StatusCode::NOT_FOUND, Html("<p>No such chat site.</p>")).into_response();
    };
    let mut r = state.render_public(
        "chat_visitor.html",
        minijinja::context! {
            site_key => site.key,
            site_name => site.name,
            greeting => site.greeting,
            colour => site.colour,
            queues => queues_for(&state, site),
            hmac_enabled => site.hmac_secret.is_some(),
            allowed_origins => site.allowed_origins,
        },
    );
    let ancestors = std::iter::once("'self'".to_string())
        .chain(
            site.allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_string()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    if let Ok(v) = format!("frame-ancestors {ancestors}").parse() {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

#[derive(Deserialize)]
pub struct StartForm {
    site: String,
    visitor_key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    queue: Option<String>,
    /// What the site passed (`window.hotlineChat`): name, email, customer_id, and with a
    /// signature the visitor key and timestamp it signed.
    fields: Option<serde_json::Map<String, Value>>,
    signature: Option<String>,
    page_url: Option<String>,
    page_title: Option<String>,
}

fn field<'a>(fields: &'a Option<serde_json::Map<String, Value>>, key: &str) -> &'a str {
    fields
        .as_ref()
        .and_then(|f| f.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The site's signing time: Unix seconds, as a number or a string of digits (0: none).
fn timestamp_field(fields: &Option<serde_json::Map<String, Value>>) -> i64 {
    match fields.as_ref().and_then(|f| f.get("timestamp")) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// The browser and system a User-Agent names, roughly, for the operator's details panel.
fn browser_and_os(ua: &str) -> (String, String) {
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "other"
    };
    let os = if ua.contains("Android") {
        "Android"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") {
        "macOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        "other"
    };
    (browser.into(), os.into())
}

/// Starts a chat: the visitor (fields the site signed are verified), the chat in the
/// chosen queue, its greeting and the page it started on. Returns the visitor's token.
pub async fn start(
    State(state): State<Arc<WebState>>,
    VisitorIp(ip): VisitorIp,
    headers: HeaderMap,
    Json(f): Json<StartForm>,
) -> Response {
    let Some(site) = state.chat.config.site(&f.site).cloned() else {
        return json_error(StatusCode::NOT_FOUND, "no such chat site");
    };
    if let Err(r) = state.chat.limiters().check(Action::Start, ip, &site.key) {
        return too_many(&r);
    }
    let queue = f.queue.clone().unwrap_or_else(|| site.queues[0].clone());
    if !site.queues.contains(&queue) {
        return json_error(StatusCode::BAD_REQUEST, "choose one of the topics offered");
    }
    let now = unix_ms();
    // Signed fields win over what was typed: they are what the site vouches for.
    let (signed_name, signed_email, customer_id) = (
        field(&f.fields, "name"),
        field(&f.fields, "email"),
        field(&f.fields, "customer_id"),
    );
    let verified = match (&site.hmac_secret, &f.signature) {
        (Some(secret), Some(sig)) if !sig.is_empty() => {
            // The key the site signed for; without one, this request's (which the site
            // can't have signed: refused as a mismatch).
            let signed_key = match field(&f.fields, "visitor_key") {
                "" => f.visitor_key.as_str(),
                k => k,
            };
            let signed = SignedVisitor {
                visitor_key: signed_key,
                timestamp_s: timestamp_field(&f.fields),
                customer_id,
                email: signed_email,
                name: signed_name,
            };
            match verified_fields(
                secret,
                &signed,
                &f.visitor_key,
                sig,
                now,
                state.chat.config.signature_max_age_s(),
            ) {
                Ok(v) => v,
                Err(e) => {
                    tracing::info!(site = %site.key, "signed visitor fields refused: {e}");
                    return json_error(StatusCode::BAD_REQUEST, e.to_string());
                }
            }
        }
        _ => Vec::new(),
    };
    let pick = |typed: &str, signed: &str, key: &str| -> Option<String> {
        let v = if verified.iter().any(|k| k == key) {
            signed
        } else {
            typed
        };
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_string())
    };
    let name = pick(&f.name, signed_name, "name");
    if name.is_none() {
        return json_error(StatusCode::BAD_REQUEST, "please tell us your name");
    }
    let email = pick(&f.email, signed_email, "email");
    if let Some(e) = &email
        && let Err(err) = hotline_core::address::validate_email(e)
    {
        return json_error(StatusCode::BAD_REQUEST, err.to_string());
    }
    let visitor = NewVisitor {
        site: site.key.clone(),
        visitor_key: f.visitor_key.clone(),
        name,
        email,
        phone: None,
        customer_id: (!customer_id.is_empty()).then(|| customer_id.to_string()),
        verified,
        now_ms: now,
    };
    let visitor = match state.store.upsert_visitor(&visitor).await {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, error_message(&e)),
    };
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(500)
        .collect::<String>();
    let (browser, os) = browser_and_os(&ua);
    let page_url = f.page_url.clone().unwrap_or_default();
    let page_url = if page_url.starts_with("http://") || page_url.starts_with("https://") {
        page_url
    } else {
        String::new()
    };
    let new = NewChat {
        site: site.key.clone(),
        visitor_id: visitor.id,
        queue: queue.clone(),
        topic: String::new(),
        page_url: page_url.clone(),
        browser,
        os,
        user_agent: ua,
        now_ms: now,
    };
    let (chat, token) = match state.store.create_chat(&new).await {
        Ok(c) => c,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, error_message(&e)),
    };
    let greeting = site.greeting_for(&queue);
    if !greeting.trim().is_empty() {
        let greeting = NewEvent::new(EventKind::Greeting, Sender::System, greeting);
        if let Err(e) = state.store.add_chat_event(chat.id, &greeting, now).await {
            tracing::warn!(chat = chat.id, "greeting not stored: {e}");
        }
    }
    if !page_url.is_empty() {
        let title = f.page_title.clone().unwrap_or_default();
        let _ = state
            .store
            .add_page_view(visitor.id, Some(chat.id), &page_url, &title, now)
            .await;
    }
    tracing::info!(chat = chat.id, site = %site.key, %queue, "chat started");
    state.chat.hub.dispatch.notify_one();
    Json(json!({ "token": token, "chat": { "id": chat.id, "state": chat.state } })).into_response()
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
    #[serde(default)]
    after: i64,
}

async fn chat_of(state: &WebState, token: Option<&str>) -> Option<Chat> {
    state.store.chat_by_token(token?).await.ok().flatten()
}

pub async fn socket(
    State(state): State<Arc<WebState>>,
    VisitorIp(ip): VisitorIp,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let chat = chat_of(&state, q.token.as_deref()).await;
    // A few tabs of one visitor; more are refused before the upgrade (the page's socket
    // retries with backoff and gets in when another tab closes).
    let slot = match &chat {
        Some(chat) => {
            let max = super::MAX_VISITOR_SOCKETS_PER_CHAT;
            match state.chat.visitor_sockets.take(chat.id, max) {
                Some(slot) => Some(slot),
                None => {
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "5")],
                        Json(json!({
                            "error": format!(
                                "This chat is already open in {max} windows; close one of them and try again."
                            )
                        })),
                    )
                        .into_response();
                }
            }
        }
        None => None,
    };
    super::chat_socket(ws).on_upgrade(move |mut socket| async move {
        // Held until the socket's task ends.
        let _slot = slot;
        match chat {
            Some(chat) => serve(state, chat, ip, q.after, socket).await,
            None => {
                // A page that knows the code forgets the chat and shows the form again.
                let close = CloseFrame {
                    code: 4404,
                    reason: "no such chat".into(),
                };
                let _ = socket.send(WsMessage::Close(Some(close))).await;
            }
        }
    })
}

/// What the visitor's page sends.
#[derive(Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Incoming {
    Send {
        client_id: Option<String>,
        #[serde(default)]
        text: String,
        #[serde(default)]
        files: Vec<String>,
    },
    Answer {
        client_id: Option<String>,
        menu_seq: i64,
        choice: String,
    },
    Draft {
        #[serde(default)]
        text: String,
    },
    End {},
    Page {
        url: String,
        #[serde(default)]
        title: String,
    },
}

async fn send_json(socket: &mut WebSocket, v: &Value) -> bool {
    socket
        .send(WsMessage::Text(v.to_string().into()))
        .await
        .is_ok()
}

/// Sends what the visitor has not seen yet (events after `last`, and the state when it
/// changed). Returns false when the socket is gone.
async fn catch_up(
    state: &WebState,
    chat_id: i64,
    socket: &mut WebSocket,
    last: &mut i64,
    shown: &mut Value,
) -> bool {
    // The chat's row is read first time and after events that change its state (a join,
    // an end, a transfer): plain messages cost one query.
    let mut changed = shown.is_null();
    if let Ok(events) = state
        .store
        .chat_events(chat_id, *last, Audience::Visitor)
        .await
    {
        for e in &events {
            if !send_json(socket, &event_frame(e, Audience::Visitor, None)).await {
                return false;
            }
            *last = e.seq;
            changed |= !e.kind.is_conversation();
        }
    }
    // The state when it changed; the place in the queue is read only then (the offer loop
    // tells later moves), so a message costs no ranking of the waiting chats.
    if changed
        && let Ok(Some(chat)) = state.store.chat(chat_id).await
        && shown.get("state") != Some(&serde_json::json!(chat.state))
    {
        let now = state_frame(state, &chat).await;
        if !send_json(socket, &now).await {
            return false;
        }
        *shown = now;
    }
    true
}

async fn serve(state: Arc<WebState>, chat: Chat, ip: IpAddr, after: i64, mut socket: WebSocket) {
    let hub = &state.chat.hub;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let me = hub.join_visitor(chat.id, tx);
    let mut last = after.max(0);
    let mut shown = Value::Null;
    // Events come by wakes (this node's and the tail's), the place in the queue from the
    // offer loop: the socket itself never polls.
    if catch_up(&state, chat.id, &mut socket, &mut last, &mut shown).await {
        loop {
            tokio::select! {
                push = rx.recv() => {
                    let ok = match push {
                        Some(Push::Wake(_)) => catch_up(&state, chat.id, &mut socket, &mut last, &mut shown).await,
                        Some(Push::Frame(text)) => socket.send(WsMessage::Text(text.into())).await.is_ok(),
                        None => false,
                    };
                    if !ok { break; }
                }
                incoming = socket.recv() => {
                    let text = match incoming {
                        Some(Ok(WsMessage::Text(t))) => t,
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => continue,
                    };
                    // What it stored comes back by the wake its publish sent this socket too.
                    if let Some(reply) = handle(&state, &chat, ip, text.as_str()).await
                        && !send_json(&mut socket, &reply).await
                    {
                        break;
                    }
                }
            }
        }
    }
    hub.leave_visitor(chat.id, me);
}

/// Acts on one frame; returns the reply for this socket only (an ack or an error). A
/// frame over the address's or the site's rate limit is answered with an error frame
/// (the widget shows its message; a send keeps its client id) and not acted on.
pub(super) async fn handle(state: &WebState, chat: &Chat, ip: IpAddr, text: &str) -> Option<Value> {
    let store = &state.store;
    let now = unix_ms();
    let Ok(incoming) = serde_json::from_str::<Incoming>(text) else {
        return Some(json!({ "t": "error", "message": "unreadable message" }));
    };
    let (action, client_id) = match &incoming {
        Incoming::Send { client_id, .. } | Incoming::Answer { client_id, .. } => {
            (Some(Action::Message), client_id.clone())
        }
        Incoming::Draft { .. } => (Some(Action::Draft), None),
        Incoming::Page { .. } => (Some(Action::PageView), None),
        Incoming::End {} => (None, None),
    };
    if let Some(action) = action
        && let Err(r) = state.chat.limiters().check(action, ip, &chat.site)
    {
        let mut frame =
            json!({ "t": "error", "message": r.message, "retry_after": r.retry_after_s });
        if let Some(c) = client_id {
            frame["client_id"] = json!(c);
        }
        return Some(frame);
    }
    let stored = |client_id: Option<String>, r: Result<hotline_core::chat::ChatEvent, _>| match r {
        Ok(e) => json!({ "t": "ack", "client_id": client_id, "seq": e.seq }),
        Err(e) => json!({ "t": "error", "client_id": client_id, "message": error_message(&e) }),
    };
    match incoming {
        Incoming::Send {
            client_id,
            text,
            files,
        } => {
            let kind = if text.trim().is_empty() && !files.is_empty() {
                EventKind::Attachment
            } else {
                EventKind::Message
            };
            let mut event = NewEvent::new(kind, Sender::Visitor, text);
            if !files.is_empty() {
                event.data = json!({ "files": files });
            }
            event.client_id = client_id.clone();
            let r = store.add_chat_event(chat.id, &event, now).await;
            let ok = r.is_ok();
            let reply = stored(client_id, r);
            if ok {
                // The draft became the message: gone at the operators.
                let frame = json!({ "t": "draft", "chat": chat.id, "text": "" });
                for op in publish(state, chat.id).await {
                    state.chat.hub.to_operator(&op, &frame);
                }
            }
            Some(reply)
        }
        Incoming::Answer {
            client_id,
            menu_seq,
            choice,
        } => {
            let mut event = NewEvent::new(EventKind::Answer, Sender::Visitor, choice.clone());
            event.data = json!({ "menu_seq": menu_seq, "choice": choice });
            event.client_id = client_id.clone();
            let r = store.add_chat_event(chat.id, &event, now).await;
            let ok = r.is_ok();
            let reply = stored(client_id, r);
            if ok {
                publish(state, chat.id).await;
            }
            Some(reply)
        }
        Incoming::Draft { text } => {
            // The operators see the draft live; it is never stored.
            let text: String = text
                .chars()
                .take(hotline_core::chat::MAX_MESSAGE_CHARS)
                .collect();
            let frame = json!({ "t": "draft", "chat": chat.id, "text": text });
            for op in state
                .store
                .chat_listeners(chat.id)
                .await
                .unwrap_or_default()
            {
                state.chat.hub.to_operator(&op, &frame);
            }
            None
        }
        Incoming::End {} => match store
            .end_chat_reporting(chat.id, Sender::Visitor, now)
            .await
        {
            Ok((_, ended)) => {
                publish(state, chat.id).await;
                if ended {
                    super::post_ended(state, chat.id).await;
                }
                state.chat.hub.dispatch.notify_one();
                None
            }
            Err(e) => Some(json!({ "t": "error", "message": error_message(&e) })),
        },
        Incoming::Page { url, title } => {
            if let Err(e) = store
                .add_page_view(chat.visitor_id, Some(chat.id), &url, &title, now)
                .await
            {
                tracing::debug!(chat = chat.id, "page view not kept: {e}");
            }
            super::push_view(state, chat.id).await;
            None
        }
    }
}

pub async fn upload(
    State(state): State<Arc<WebState>>,
    VisitorIp(ip): VisitorIp,
    Query(q): Query<TokenQuery>,
    multipart: Multipart,
) -> Response {
    let Some(chat) = chat_of(&state, q.token.as_deref()).await else {
        return json_error(StatusCode::NOT_FOUND, "this chat no longer exists");
    };
    // Before a byte of the body is read.
    if let Err(r) = state.chat.limiters().check(Action::Upload, ip, &chat.site) {
        return too_many(&r);
    }
    match super::files::receive(&state, chat.id, Sender::Visitor, multipart).await {
        Ok(files) => Json(super::files::files_json(&files)).into_response(),
        Err((status, message)) => json_error(status, message),
    }
}

pub async fn download(
    State(state): State<Arc<WebState>>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(chat) = chat_of(&state, q.token.as_deref()).await else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    match state
        .store
        .chat_file_for(&id, chat.id, Audience::Visitor)
        .await
    {
        Ok(Some(file)) => super::files::serve(&state, &file).await,
        _ => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[derive(Deserialize)]
pub struct TranscriptForm {
    email: String,
}

/// The conversation as the visitor saw it (never private events), as plain text.
pub async fn transcript_text(state: &WebState, chat: &Chat) -> String {
    let events = state
        .store
        .chat_events(chat.id, 0, Audience::Visitor)
        .await
        .unwrap_or_default();
    let tz = state.settings.time_zone;
    let mut out = String::new();
    for e in events {
        let at = chrono::DateTime::from_timestamp_millis(e.created_at_ms)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let who = match e.from {
            hotline_core::chat::SenderKind::Visitor => "You".to_string(),
            _ if e.name.is_empty() => "Hotline".to_string(),
            _ => e.name.clone(),
        };
        let text = match e.kind {
            EventKind::Join => format!("{who} joined the chat"),
            EventKind::Leave => format!("{who} left the chat"),
            EventKind::End => "The chat ended".to_string(),
            EventKind::Options => {
                let prompt = e.data.get("prompt").and_then(Value::as_str).unwrap_or("");
                let choices: Vec<&str> = e
                    .data
                    .get("choices")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                format!("{who}: {prompt} [{}]", choices.join(" / "))
            }
            _ => {
                let files: Vec<&str> = e
                    .data
                    .get("files")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f.get("name").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut line = format!("{who}: {}", e.body);
                if !files.is_empty() {
                    line.push_str(&format!(" (files: {})", files.join(", ")));
                }
                line
            }
        };
        out.push_str(&format!("[{at}] {text}\n"));
    }
    out
}

/// Queues the operator's copy of the transcript to `to` (the wrap-up's "send the
/// transcript"): counted with the visitor's, never refused by the count.
pub async fn send_transcript(state: &WebState, chat: &Chat, to: &str) -> Result<(), String> {
    let to = hotline_core::address::validate_email(to).map_err(|e| e.to_string())?;
    if let Err(e) = state.store.count_chat_transcript(chat.id, None).await {
        return Err(error_message(&e));
    }
    queue_transcript(state, chat, &to).await
}

/// Queues the transcript e-mail to `to` (through the notification outbox); a copy that
/// could not be queued is given back to the chat's count.
async fn queue_transcript(state: &WebState, chat: &Chat, to: &str) -> Result<(), String> {
    let site = state
        .chat
        .config
        .site(&chat.site)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| chat.site.clone());
    let body = format!(
        "Your chat with {site}\n\n{}\nThank you for contacting us.\n",
        transcript_text(state, chat).await
    );
    let subject = format!("Your chat with {site}");
    let related = format!("chat:{}", chat.id);
    let msg = NewMessage {
        channel: Channel::Email,
        to,
        subject: &subject,
        body: &body,
        related: &related,
        now_ms: unix_ms(),
    };
    if let Err(e) = state.store.enqueue_message(&msg).await {
        tracing::error!(chat = chat.id, "transcript e-mail not stored: {e}");
        let _ = state.store.uncount_chat_transcript(chat.id).await;
        return Err("the e-mail could not be queued; try again".to_string());
    }
    if let Some(n) = &state.settings.notifier {
        n.wake();
    }
    Ok(())
}

/// Transcript e-mails one chat may ask for (the operator's wrap-up copy counts too).
pub const MAX_TRANSCRIPTS_PER_CHAT: i64 = 3;

pub async fn transcript(
    State(state): State<Arc<WebState>>,
    VisitorIp(ip): VisitorIp,
    Query(q): Query<TokenQuery>,
    Json(f): Json<TranscriptForm>,
) -> Response {
    let Some(chat) = chat_of(&state, q.token.as_deref()).await else {
        return json_error(StatusCode::NOT_FOUND, "this chat no longer exists");
    };
    if let Err(r) = state
        .chat
        .limiters()
        .check(Action::Transcript, ip, &chat.site)
    {
        return too_many(&r);
    }
    let to = match hotline_core::address::validate_email(&f.email) {
        Ok(to) => to,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // A chat token must not make Hotline a mail cannon: a few copies per chat, counted in
    // the chat's row by one conditional update (so across nodes, restarts and parallel
    // requests).
    match state
        .store
        .count_chat_transcript(chat.id, Some(MAX_TRANSCRIPTS_PER_CHAT))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return json_error(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "This chat's transcript has been sent {MAX_TRANSCRIPTS_PER_CHAT} times already; no more copies can be sent."
                ),
            );
        }
        Err(ChatError::NotFound) => {
            return json_error(StatusCode::NOT_FOUND, "this chat no longer exists");
        }
        Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, error_message(&e)),
    }
    match queue_transcript(&state, &chat, &to).await {
        Ok(()) => Json(json!({ "sent": true })).into_response(),
        Err(m) => json_error(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}
