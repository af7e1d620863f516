//! The operator's chat window (`/console/chat`): offers and chats over one WebSocket per
//! tab, and attachments. Canned messages are in [`super::canned`], past chats in
//! [`super::history`].
//!
//! The socket sends a chat's events from the last sequence number the tab saw (its
//! `hello`), then whatever the store has after that each time the chat is woken (by this
//! node, or by the tail that finds other nodes' events). Every request frame with a client id is answered
//! with an `ack` or an `error` carrying it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use hotline_core::chat::{Audience, ChatError, EventKind, NewEvent, Sender, Target};
use hotline_core::users::WebSession;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::hub::Push;
use super::view::{chat_view, event_frame};
use super::{error_message, publish, push_view};
use crate::auth::{Csrf, OperatorPage, same_origin};
use crate::error::WebError;
use crate::state::WebState;
use crate::unix_ms;

/// What the operator works as, from the session (chats need an operator account).
struct Me {
    user_id: i64,
    operator: String,
    display: String,
}

fn me_of(s: &WebSession) -> Option<Me> {
    let operator = s.user.operator.clone()?;
    let display = if s.user.display_name.trim().is_empty() {
        s.user.name.clone()
    } else {
        s.user.display_name.clone()
    };
    Some(Me {
        user_id: s.user.id,
        operator,
        display,
    })
}

pub(super) fn queues_json(state: &WebState) -> Vec<Value> {
    state
        .telephony
        .queue_names()
        .into_iter()
        .map(|(name, display)| {
            let display = if display.is_empty() {
                name.clone()
            } else {
                display
            };
            json!({ "name": name, "display_name": display })
        })
        .collect()
}

/// The queues the operator is a member of.
pub(super) fn my_queues(state: &WebState, operator: &str) -> Vec<String> {
    state
        .telephony
        .queue_names()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|q| {
            state
                .telephony
                .queue_members(q)
                .iter()
                .any(|m| m == operator)
        })
        .collect()
}

/// GET /console/chat
pub(crate) async fn page(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
) -> Response {
    let Some(me) = me_of(&s) else {
        return state.error_page(
            StatusCode::FORBIDDEN,
            "Your user is not linked to an operator account, so it cannot take chats. An admin can link it.",
        );
    };
    let users = state.store.users().await.unwrap_or_default();
    let operators: Vec<Value> = users
        .iter()
        .filter_map(|u| {
            let op = u.operator.as_ref()?;
            let display = if u.display_name.trim().is_empty() {
                op.clone()
            } else {
                u.display_name.clone()
            };
            Some(json!({ "name": op, "display_name": display }))
        })
        .collect();
    let capacity = state
        .store
        .operators()
        .await
        .ok()
        .and_then(|ops| ops.into_iter().find(|o| o.name == me.operator))
        .map_or(3, |o| o.chat_capacity);
    state.render(
        "chat_console.html",
        minijinja::context! {
            me => crate::pages::me(&s),
            user => json!({ "name": me.operator, "display_name": me.display }),
            csrf => s.csrf_token,
            queues => queues_json(&state),
            operators => operators,
            wrapup_categories => state.chat.config.wrapup_categories,
            capacity => capacity,
        },
    )
}

/// GET /console/chat/targets: where a chat can be transferred or invited to, as seed
/// 004's transfer dialog shows it: each queue with its calls and chats waiting and its
/// members free and busy, each colleague with their state and conversations. Figures the
/// telephony side cannot give now are left out (the dialog shows the names alone).
pub(crate) async fn targets(
    State(state): State<Arc<WebState>>,
    OperatorPage(_): OperatorPage,
) -> Response {
    let board = state.telephony.board().await.unwrap_or_default();
    let rows = |key: &str| -> Vec<Value> {
        board
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (figures, chats) = (rows("queues"), rows("chats"));
    let chats_in = |queue: &str, states: &[&str]| {
        chats
            .iter()
            .filter(|c| {
                c["queue"] == queue && states.contains(&c["state"].as_str().unwrap_or_default())
            })
            .count()
    };
    let queues: Vec<Value> = queues_json(&state)
        .into_iter()
        .filter_map(|q| {
            let name = q["name"].as_str()?.to_string();
            let f = figures.iter().find(|f| f["queue"] == name.as_str())?;
            Some(json!({
                "name": name,
                "waiting_calls": f["waiting"],
                "waiting_chats": chats_in(&name, &["waiting", "offered"]),
                "active_chats": chats_in(&name, &["active"]),
                "online": f["online"],
                "busy": f["busy"],
            }))
        })
        .collect();
    let operators: Vec<Value> = rows("operators")
        .iter()
        .map(|o| {
            json!({
                "name": o["operator"],
                "state": o["state"],
                "conversations": o["conversations"],
            })
        })
        .collect();
    Json(json!({ "queues": queues, "operators": operators })).into_response()
}

/// GET /console/chat/ws
pub(crate) async fn socket(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "not from this site").into_response();
    }
    let Some(me) = me_of(&s) else {
        return (StatusCode::FORBIDDEN, "no operator account").into_response();
    };
    super::chat_socket(ws).on_upgrade(move |socket| serve(state, me, socket))
}

/// A tab's socket and what it has sent of each of the operator's chats.
struct Tab {
    state: Arc<WebState>,
    me: Me,
    socket: WebSocket,
    /// Chat id → the last sequence number sent.
    chats: HashMap<i64, i64>,
    /// Operators' login names by user id, for the `user` of event frames.
    names: HashMap<i64, String>,
}

impl Tab {
    async fn send(&mut self, v: &Value) -> bool {
        self.socket
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .is_ok()
    }

    async fn user_name(&mut self, user_id: Option<i64>) -> Option<String> {
        let id = user_id?;
        if let Some(n) = self.names.get(&id) {
            return Some(n.clone());
        }
        let user = self.state.store.user(id).await.ok().flatten()?;
        let name = user.operator.unwrap_or(user.name);
        self.names.insert(id, name.clone());
        Some(name)
    }

    /// Sends the chat's view and its events after what this tab has.
    async fn open_chat(&mut self, chat_id: i64, after: i64) -> bool {
        let Ok(Some(chat)) = self.state.store.chat(chat_id).await else {
            return true;
        };
        let view = chat_view(&self.state, &chat).await;
        if !self.send(&json!({ "t": "chat", "chat": view })).await {
            return false;
        }
        self.chats.insert(chat_id, after.max(0));
        self.catch_up(chat_id).await
    }

    /// Events of a chat this tab shows, after the last it sent. A change of who is in
    /// it or of its state sends the view again.
    async fn catch_up(&mut self, chat_id: i64) -> bool {
        let Some(&last) = self.chats.get(&chat_id) else {
            return true;
        };
        let events = match self
            .state
            .store
            .chat_events(chat_id, last, Audience::Operators)
            .await
        {
            Ok(e) => e,
            Err(_) => return true,
        };
        let mut changed = false;
        for e in &events {
            let user = self.user_name(e.user_id).await;
            if !self
                .send(&event_frame(e, Audience::Operators, user.as_deref()))
                .await
            {
                return false;
            }
            self.chats.insert(chat_id, e.seq);
            changed |= !e.kind.is_conversation();
        }
        if changed && let Ok(Some(chat)) = self.state.store.chat(chat_id).await {
            let view = chat_view(&self.state, &chat).await;
            return self.send(&json!({ "t": "chat", "chat": view })).await;
        }
        true
    }

    /// Opens chats the operator is in that this tab doesn't show yet (accepted in another
    /// tab, an invitation taken elsewhere).
    async fn find_new_chats(&mut self) -> bool {
        let mine = self
            .state
            .store
            .operator_chats(self.me.user_id)
            .await
            .unwrap_or_default();
        for chat in mine {
            if !self.chats.contains_key(&chat.id) && !self.open_chat(chat.id, 0).await {
                return false;
            }
        }
        true
    }

    /// After `hello`: the operator's chats from where the tab left off, the offers and
    /// the invitations waiting for them.
    async fn hello(&mut self, resume: HashMap<String, i64>) -> bool {
        let mine = self
            .state
            .store
            .operator_chats(self.me.user_id)
            .await
            .unwrap_or_default();
        for chat in mine {
            let after = resume.get(&chat.id.to_string()).copied().unwrap_or(0);
            if !self.open_chat(chat.id, after).await {
                return false;
            }
        }
        let offers = self
            .state
            .store
            .offered_chats(&self.me.operator)
            .await
            .unwrap_or_default();
        for chat in offers {
            let view = chat_view(&self.state, &chat).await;
            let frame = json!({ "t": "offer", "chat": view,
                                "expires_at": chat.offer_expires_at_ms, "now": unix_ms() });
            if !self.send(&frame).await {
                return false;
            }
        }
        let queues = my_queues(&self.state, &self.me.operator);
        let invites = self
            .state
            .store
            .pending_invites_for(&self.me.operator, &queues)
            .await
            .unwrap_or_default();
        for invite in invites {
            if !self.send(&json!({ "t": "invite", "invite": invite })).await {
                return false;
            }
        }
        true
    }
}

async fn serve(state: Arc<WebState>, me: Me, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let hub_id = state.chat.hub.join_operator(&me.operator, tx);
    let operator = me.operator.clone();
    let mut tab = Tab {
        state: state.clone(),
        me,
        socket,
        chats: HashMap::new(),
        names: HashMap::new(),
    };
    // Events come by wakes (this node's and the tail's); the tick finds chats this
    // operator joined elsewhere (another tab, another node).
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            push = rx.recv() => {
                let ok = match push {
                    Some(Push::Wake(chat)) => {
                        if tab.chats.contains_key(&chat) { tab.catch_up(chat).await } else { tab.find_new_chats().await }
                    }
                    Some(Push::Frame(text)) => tab.socket.send(WsMessage::Text(text.into())).await.is_ok(),
                    None => false,
                };
                if !ok { break; }
            }
            _ = tick.tick() => {
                if !tab.find_new_chats().await { break; }
            }
            incoming = tab.socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                if !handle(&mut tab, text.as_str()).await { break; }
            }
        }
    }
    state.chat.hub.leave_operator(&operator, hub_id);
}

/// A frame from the operator's tab.
#[derive(Deserialize)]
struct Incoming {
    t: String,
    client_id: Option<String>,
    chat: Option<i64>,
    #[serde(default)]
    resume: HashMap<String, i64>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    choices: Vec<String>,
    #[serde(default)]
    category: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    transcript: bool,
    operator: Option<String>,
    queue: Option<String>,
    invite: Option<i64>,
    #[serde(default)]
    accept: bool,
    add: Option<String>,
    remove: Option<String>,
    name: Option<String>,
    value: Option<String>,
}

impl Incoming {
    fn target(&self) -> Option<Target> {
        match (&self.operator, &self.queue) {
            (Some(o), _) if !o.is_empty() => Some(Target::Operator(o.clone())),
            (_, Some(q)) if !q.is_empty() => Some(Target::Queue(q.clone())),
            _ => None,
        }
    }
}

/// Handles one frame; false when the socket is gone.
async fn handle(tab: &mut Tab, text: &str) -> bool {
    let Ok(f) = serde_json::from_str::<Incoming>(text) else {
        return tab
            .send(&json!({ "t": "error", "message": "unreadable message" }))
            .await;
    };
    if f.t == "hello" {
        return tab.hello(f.resume.clone()).await;
    }
    let Some(chat_id) = f.chat.or(if f.t == "invite_answer" {
        Some(0)
    } else {
        None
    }) else {
        return tab
            .send(&json!({ "t": "error", "client_id": f.client_id, "message": "which chat?" }))
            .await;
    };
    let result = act(tab, &f, chat_id).await;
    match result {
        Ok(Some(seq)) => {
            tab.send(&json!({ "t": "ack", "client_id": f.client_id, "chat": chat_id, "seq": seq }))
                .await
        }
        Ok(None) if f.client_id.is_some() => {
            tab.send(&json!({ "t": "ack", "client_id": f.client_id, "chat": chat_id }))
                .await
        }
        Ok(None) => true,
        Err(e) => {
            tab.send(
                &json!({ "t": "error", "client_id": f.client_id, "chat": chat_id,
                               "message": error_message(&e) }),
            )
            .await
        }
    }
}

/// Frames that change or reach into a chat without a store call that checks who sends
/// them: only an operator in the chat may (issue 15).
const IN_CHAT_ONLY: [&str; 4] = ["tag", "note", "field", "typing"];

/// Refuses a frame the operator may not send: the frames above for a chat they are not
/// in, and accepting an invitation to a queue they are not a member of.
async fn check_access(
    state: &WebState,
    me: &Me,
    f: &Incoming,
    chat_id: i64,
) -> Result<(), ChatError> {
    if IN_CHAT_ONLY.contains(&f.t.as_str()) && !state.store.is_in_chat(chat_id, me.user_id).await? {
        return Err(ChatError::Conflict("you are not in this chat".into()));
    }
    if f.t == "invite_answer"
        && f.accept
        && let Some(invite) = f.invite
        && let Some(queue) = state.store.invite_queue(invite).await?
        && !my_queues(state, &me.operator).contains(&queue)
    {
        return Err(ChatError::Conflict(format!(
            "this invitation is for the {queue} queue, and you are not one of its operators"
        )));
    }
    Ok(())
}

/// Carries out a frame; `Some(seq)` for a stored event.
async fn act(tab: &mut Tab, f: &Incoming, chat_id: i64) -> Result<Option<i64>, ChatError> {
    check_access(&tab.state, &tab.me, f, chat_id).await?;
    let state = tab.state.clone();
    let store = &state.store;
    let hub = &state.chat.hub;
    let now = unix_ms();
    let me = Sender::Operator {
        user_id: tab.me.user_id,
        name: tab.me.display.clone(),
    };
    match f.t.as_str() {
        "accept" => {
            store
                .accept_chat(chat_id, &tab.me.operator, tab.me.user_id, now)
                .await?;
            tracing::info!(chat = chat_id, operator = %tab.me.operator, "chat accepted");
            // The queues learn of the chat at once (no voice call now).
            hub.dispatch.notify_one();
            hub.to_operator(
                &tab.me.operator,
                &json!({ "t": "offer_gone", "chat": chat_id }),
            );
            publish(&state, chat_id).await;
            tab.open_chat(chat_id, 0).await;
            Ok(None)
        }
        "reject" => {
            store.reject_chat(chat_id, &tab.me.operator, now).await?;
            tracing::info!(chat = chat_id, operator = %tab.me.operator, "chat rejected");
            hub.to_operator(
                &tab.me.operator,
                &json!({ "t": "offer_gone", "chat": chat_id }),
            );
            hub.dispatch.notify_one();
            publish(&state, chat_id).await;
            Ok(None)
        }
        "send" | "options" => {
            let mut event = if f.t == "options" {
                let mut e = NewEvent::new(EventKind::Options, me, f.prompt.clone());
                e.data = json!({ "prompt": f.prompt, "choices": f.choices });
                e
            } else if f.text.trim().is_empty() && !f.files.is_empty() {
                NewEvent::new(EventKind::Attachment, me, String::new())
            } else {
                NewEvent::new(EventKind::Message, me, f.text.clone())
            };
            if !f.files.is_empty() {
                event.data = json!({ "files": f.files });
            }
            event.private = f.private;
            event.client_id = f.client_id.clone();
            let stored = store.add_chat_event(chat_id, &event, now).await?;
            publish(&state, chat_id).await;
            Ok(Some(stored.seq))
        }
        "typing" => {
            let frame = json!({ "t": "typing", "chat": chat_id, "name": tab.me.display });
            if !f.private {
                hub.to_visitor(chat_id, &json!({ "t": "typing", "name": tab.me.display }));
            }
            for p in store.chat_participants(chat_id).await.unwrap_or_default() {
                if p.is_open() && p.operator != tab.me.operator {
                    hub.to_operator(&p.operator, &frame);
                }
            }
            Ok(None)
        }
        "end" => {
            let (_, ended) = store.end_chat_reporting(chat_id, me, now).await?;
            publish(&state, chat_id).await;
            if ended {
                crate::chat::post_ended(&state, chat_id).await;
            }
            Ok(None)
        }
        "wrapup" => {
            store
                .wrap_up_chat(chat_id, tab.me.user_id, &f.category, &f.note, now)
                .await?;
            if f.transcript
                && let Some(chat) = store.chat(chat_id).await?
                && let Some(email) = store.visitor(chat.visitor_id).await?.and_then(|v| v.email)
                && let Err(m) = crate::chat::visitor_transcript(&state, &chat, &email).await
            {
                tracing::warn!(chat = chat_id, "transcript not sent: {m}");
            }
            tab.chats.remove(&chat_id);
            hub.to_operator(&tab.me.operator, &json!({ "t": "closed", "chat": chat_id }));
            hub.dispatch.notify_one();
            Ok(None)
        }
        "leave" => {
            store.leave_chat(chat_id, tab.me.user_id, now).await?;
            tab.chats.remove(&chat_id);
            hub.to_operator(&tab.me.operator, &json!({ "t": "closed", "chat": chat_id }));
            publish(&state, chat_id).await;
            hub.dispatch.notify_one();
            Ok(None)
        }
        "transfer" => {
            let Some(target) = f.target() else {
                return Err(ChatError::Invalid("transfer to whom?".into()));
            };
            store
                .transfer_chat(chat_id, tab.me.user_id, target, &f.note, now)
                .await?;
            tab.chats.remove(&chat_id);
            hub.to_operator(&tab.me.operator, &json!({ "t": "closed", "chat": chat_id }));
            publish(&state, chat_id).await;
            hub.dispatch.notify_one();
            Ok(None)
        }
        "invite" => {
            let Some(target) = f.target() else {
                return Err(ChatError::Invalid("invite whom?".into()));
            };
            let invite = store
                .invite_to_chat(chat_id, tab.me.user_id, target.clone(), now)
                .await?;
            let frame = json!({ "t": "invite", "invite": invite });
            match target {
                Target::Operator(op) => hub.to_operator(&op, &frame),
                Target::Queue(q) => {
                    for op in state.telephony.queue_members(&q) {
                        if op != tab.me.operator {
                            hub.to_operator(&op, &frame);
                        }
                    }
                }
            }
            publish(&state, chat_id).await;
            push_view(&state, chat_id).await;
            Ok(None)
        }
        "invite_answer" => {
            let Some(invite) = f.invite else {
                return Err(ChatError::Invalid("which invitation?".into()));
            };
            let answered = store
                .answer_invite(invite, &tab.me.operator, tab.me.user_id, f.accept, now)
                .await?;
            hub.to_operator(
                &tab.me.operator,
                &json!({ "t": "invite_gone", "invite": invite }),
            );
            publish(&state, answered.chat_id).await;
            if f.accept {
                tab.open_chat(answered.chat_id, 0).await;
            }
            push_view(&state, answered.chat_id).await;
            Ok(None)
        }
        "tag" => {
            if let Some(t) = &f.add {
                store.add_chat_tag(chat_id, t).await?;
            } else if let Some(t) = &f.remove {
                store.remove_chat_tag(chat_id, t).await?;
            }
            push_view(&state, chat_id).await;
            Ok(None)
        }
        "note" => {
            store
                .add_chat_note(chat_id, tab.me.user_id, &f.text, now)
                .await?;
            push_view(&state, chat_id).await;
            Ok(None)
        }
        "field" => {
            let Some(chat) = store.chat(chat_id).await? else {
                return Err(ChatError::NotFound);
            };
            store
                .update_visitor_field(
                    chat.visitor_id,
                    f.name.as_deref().unwrap_or(""),
                    f.value.as_deref().unwrap_or(""),
                )
                .await?;
            push_view(&state, chat_id).await;
            Ok(None)
        }
        other => Err(ChatError::Invalid(format!("unknown request {other:?}"))),
    }
}

/// Is the user in the chat now (files may be sent and read only then)?
async fn in_chat(state: &WebState, chat_id: i64, user_id: i64) -> bool {
    state
        .store
        .chat_participants(chat_id)
        .await
        .unwrap_or_default()
        .iter()
        .any(|p| p.user_id == user_id)
}

pub(super) fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    WebError::json(status, message.into()).into_response()
}

/// POST /console/chat/{id}/files
pub(crate) async fn upload(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    Path(chat_id): Path<i64>,
    multipart: Multipart,
) -> Response {
    if !in_chat(&state, chat_id, s.user.id).await {
        return json_error(StatusCode::FORBIDDEN, "you are not in this chat");
    }
    let display = if s.user.display_name.trim().is_empty() {
        s.user.name.clone()
    } else {
        s.user.display_name.clone()
    };
    let sender = Sender::Operator {
        user_id: s.user.id,
        name: display,
    };
    match super::files::receive(&state, chat_id, sender, multipart).await {
        Ok(files) => Json(super::files::files_json(&files)).into_response(),
        Err((status, message)) => json_error(status, message),
    }
}

/// GET /console/chat/files/{id}: for the chat's operators, and supervisors.
pub(crate) async fn download(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path(id): Path<String>,
) -> Response {
    let Ok(Some(file)) = state.store.chat_file(&id).await else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let supervisor = s.user.role.allows(hotline_core::users::Role::Supervisor);
    if !supervisor && !in_chat(&state, file.chat_id, s.user.id).await {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    }
    super::files::serve(&state, &file).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use hotline_core::chat::{Chat, NewChat, NewVisitor, Target};
    use hotline_core::notify::webhook;
    use hotline_core::store::Store;
    use hotline_core::users::Role;
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

    use super::*;
    use crate::testing::{self, FakePhones, Login, Queue, Ws};

    struct Setup {
        app: axum::Router,
        store: Store,
        anna: Login,
        bela: Login,
        sara: Login,
    }

    /// Two queues: anna takes sales, bela support; sara supervises; chat.ended is posted.
    async fn setup() -> Setup {
        let store = testing::store().await;
        let anna = testing::login(&store, "anna", Role::Operator).await;
        let bela = testing::login(&store, "bela", Role::Operator).await;
        let sara = testing::login(&store, "sara", Role::Supervisor).await;
        let phones = FakePhones {
            queues: vec![
                Queue {
                    name: "sales",
                    display_name: "Sales",
                    members: &["anna"],
                },
                Queue {
                    name: "support",
                    display_name: "Support",
                    members: &["bela"],
                },
            ],
            ..Default::default()
        };
        let app = testing::state(&store)
            .phones(Arc::new(phones))
            .webhooks(vec![testing::hook(HOOK_URL, webhook::CHAT_ENDED)])
            .app();
        Setup {
            app,
            store,
            anna,
            bela,
            sara,
        }
    }

    async fn chat(store: &Store, queue: &str, key: &str) -> Chat {
        let v = store
            .upsert_visitor(&NewVisitor {
                site: "demo".into(),
                visitor_key: key.into(),
                name: Some("Béla".into()),
                now_ms: unix_ms(),
                ..Default::default()
            })
            .await
            .unwrap();
        store
            .create_chat(&NewChat {
                site: "demo".into(),
                visitor_id: v.id,
                queue: queue.into(),
                topic: "Order".into(),
                now_ms: unix_ms(),
                ..Default::default()
            })
            .await
            .unwrap()
            .0
    }

    /// A chat `operator` accepted.
    async fn taken(store: &Store, queue: &str, key: &str, operator: &str, user_id: i64) -> Chat {
        let c = chat(store, queue, key).await;
        let now = unix_ms();
        assert!(
            store
                .offer_chat(c.id, operator, now, now + 30_000)
                .await
                .unwrap()
        );
        store
            .accept_chat(c.id, operator, user_id, now)
            .await
            .unwrap()
    }

    async fn get(s: &Setup, who: &Login, uri: &str) -> (StatusCode, String) {
        testing::get_page(&s.app, &who.cookie, uri).await
    }

    #[tokio::test]
    async fn operators_read_their_chats_and_their_queues_supervisors_all() {
        let s = setup().await;
        let belas = taken(&s.store, "support", "v1", "bela", s.bela.user_id).await;
        let sales = chat(&s.store, "sales", "v2").await;
        for c in [&belas, &sales] {
            s.store.add_chat_tag(c.id, "vip").await.unwrap();
        }
        let link = |c: &Chat| format!("/console/chat/history/{}\"", c.id);
        let (status, page) = get(&s, &s.anna, "/console/chat/history?tag=vip").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&link(&sales)), "sales is anna's queue");
        assert!(
            !page.contains(&link(&belas)),
            "bela's support chat is not hers"
        );
        let (_, page) = get(&s, &s.sara, "/console/chat/history?tag=vip").await;
        assert!(page.contains(&link(&sales)) && page.contains(&link(&belas)));

        let (status, page) = get(&s, &s.anna, &format!("/console/chat/history/{}", belas.id)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("not yours to read"), "{page}");
        for (who, chat) in [(&s.anna, &sales), (&s.bela, &belas), (&s.sara, &belas)] {
            let (status, _) = get(&s, who, &format!("/console/chat/history/{}", chat.id)).await;
            assert_eq!(status, StatusCode::OK, "chat {}", chat.id);
        }
    }

    /// The console served on a loopback port, and a tab's socket for `who`.
    async fn tab(s: &Setup, who: &Login) -> Ws {
        let addr = testing::serve(s.app.clone()).await;
        let mut req = format!("ws://{addr}/console/chat/ws")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("cookie", who.cookie.parse().unwrap());
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
        ws
    }

    /// Sends a frame and returns the answer carrying its client id.
    async fn ask(ws: &mut Ws, mut frame: Value) -> Value {
        use futures_util::SinkExt;
        frame["client_id"] = json!("c1");
        ws.send(tungstenite::Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        loop {
            let v = testing::next_json(ws).await.expect("the socket closed");
            if v["client_id"] == "c1" {
                return v;
            }
        }
    }

    const HOOK_URL: &str = "http://127.0.0.1:9/hooks/chats";

    #[tokio::test]
    async fn a_chat_the_operator_ends_is_posted_once_as_chat_ended() {
        let s = setup().await;
        let belas = taken(&s.store, "support", "v1", "bela", s.bela.user_id).await;
        let mut bela = tab(&s, &s.bela).await;
        let end = json!({ "t": "end", "chat": belas.id });
        assert_eq!(ask(&mut bela, end.clone()).await["t"], "ack");
        // Ending it again changes nothing and posts nothing.
        assert_eq!(ask(&mut bela, end).await["t"], "ack");

        let deliveries = testing::webhook_deliveries(&s.store).await;
        assert_eq!(deliveries.len(), 1, "one delivery per end");
        let (to, event, d) = &deliveries[0];
        assert_eq!((to.as_str(), event.as_str()), (HOOK_URL, "chat.ended"));
        let ended = s.store.chat(belas.id).await.unwrap().unwrap();
        assert_eq!(d.data["id"], belas.id);
        assert_eq!(d.data["queue"], "support");
        assert_eq!(d.data["topic"], "Order");
        assert_eq!(d.data["operator"], "bela");
        assert_eq!(d.data["operators"], json!(["bela"]));
        assert_eq!(d.data["visitor_name"], "Béla");
        assert_eq!(d.data["ended_by"], "operator");
        assert_eq!(d.data["started_at_ms"], belas.created_at_ms);
        assert_eq!(d.data["ended_at_ms"], ended.ended_at_ms.unwrap());
        assert_eq!(d.data["messages"], 0);
    }

    #[tokio::test]
    async fn only_an_operator_in_the_chat_tags_notes_edits_and_types() {
        let s = setup().await;
        let belas = taken(&s.store, "support", "v1", "bela", s.bela.user_id).await;
        let mut anna = tab(&s, &s.anna).await;
        for frame in [
            json!({ "t": "tag", "chat": belas.id, "add": "spam" }),
            json!({ "t": "note", "chat": belas.id, "text": "rude customer" }),
            json!({ "t": "field", "chat": belas.id, "name": "name", "value": "Mallory" }),
            json!({ "t": "typing", "chat": belas.id }),
        ] {
            let answer = ask(&mut anna, frame.clone()).await;
            assert_eq!(answer["t"], "error", "{frame} → {answer}");
            assert_eq!(answer["message"], "you are not in this chat");
        }
        // Nothing changed.
        assert!(s.store.chat_tags(belas.id).await.unwrap().is_empty());
        assert!(s.store.chat_notes(belas.id).await.unwrap().is_empty());
        let visitor = s.store.visitor(belas.visitor_id).await.unwrap().unwrap();
        assert_eq!(visitor.name.as_deref(), Some("Béla"));

        // Bela, who is in it, may.
        let mut bela = tab(&s, &s.bela).await;
        let answer = ask(
            &mut bela,
            json!({ "t": "tag", "chat": belas.id, "add": "vip" }),
        )
        .await;
        assert_eq!(answer["t"], "ack", "{answer}");
        assert_eq!(s.store.chat_tags(belas.id).await.unwrap(), ["vip"]);
    }

    #[tokio::test]
    async fn a_queue_invitation_is_taken_only_by_the_queues_operators() {
        let s = setup().await;
        let belas = taken(&s.store, "support", "v1", "bela", s.bela.user_id).await;
        // Bela asks the support queue (his own) for help: anna is not in it.
        let invite = s
            .store
            .invite_to_chat(
                belas.id,
                s.bela.user_id,
                Target::Queue("support".into()),
                unix_ms(),
            )
            .await
            .unwrap();
        let mut anna = tab(&s, &s.anna).await;
        let answer = ask(
            &mut anna,
            json!({ "t": "invite_answer", "invite": invite.id, "accept": true }),
        )
        .await;
        assert_eq!(answer["t"], "error", "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("support queue"),
            "{answer}"
        );
        assert!(!s.store.is_in_chat(belas.id, s.anna.user_id).await.unwrap());
        let pending = s.store.pending_invite(belas.id).await.unwrap();
        assert_eq!(pending.map(|i| i.id), Some(invite.id), "still waiting");
    }
}
