//! One WebSocket per console tab for the home page's live widgets (DESIGN: "small JS
//! modules for live widgets over one WebSocket per tab"): the queue figures, the shared
//! missed-calls list, the operator's own recent callbacks, and a nudge for the tasks widget.
//!
//! The callback list is read by one poller per daemon, whatever the number of tabs, and
//! handed to every socket through a `watch`; an action on this node (a claim, a
//! correction) wakes the poller at once, so the entry leaves every other operator's list
//! without waiting for the next tick. Changes made on another node (PostgreSQL) or by the
//! telephony side arrive with the next tick. A socket sends a widget only when it changed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Notify, watch};

use crate::auth::{OperatorPage, same_origin};
use crate::state::WebState;
use crate::unix_ms;

/// How often the shared list and each socket's own widgets are read again.
const TICK: Duration = Duration::from_secs(1);
/// Entries the missed-calls widget shows.
const SHOWN: i64 = 50;
/// How far back the operator's own callbacks are offered for correction.
pub(super) const CORRECTION_WINDOW_MS: i64 = 60 * 60 * 1000;

/// The shared feed of the callback list (started by the first socket).
#[derive(Default)]
pub struct LiveFeeds {
    callbacks: OnceLock<watch::Receiver<Arc<String>>>,
    /// The calls each operator's call panel showed lately (newest last): the ones they
    /// may wrap up.
    shown_calls: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    /// Wakes the poller after a change made here.
    changed: Arc<Notify>,
}

/// Calls an operator may still wrap up, at most.
const WRAPPABLE: usize = 10;

impl LiveFeeds {
    /// The operator's panel showed call `call_id`.
    fn shown(&self, operator: &str, call_id: &str) {
        let mut shown = match self.shown_calls.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let calls = shown.entry(operator.to_string()).or_default();
        if !calls.iter().any(|c| c == call_id) {
            calls.push(call_id.to_string());
            if calls.len() > WRAPPABLE {
                calls.remove(0);
            }
        }
    }

    /// Whether the operator's panel showed call `call_id` (so they may wrap it up).
    pub fn was_shown(&self, operator: &str, call_id: &str) -> bool {
        let shown = match self.shown_calls.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        shown
            .get(operator)
            .is_some_and(|calls| calls.iter().any(|c| c == call_id))
    }

    /// The list changed on this node: read it again now.
    pub fn callbacks_changed(&self) {
        self.changed.notify_one();
    }
}

fn callbacks_feed(state: &Arc<WebState>) -> watch::Receiver<Arc<String>> {
    state
        .live
        .callbacks
        .get_or_init(|| {
            let (tx, rx) = watch::channel(Arc::new(String::new()));
            let state = state.clone();
            tokio::spawn(async move {
                let changed = state.live.changed.clone();
                loop {
                    if let Some(json) = callback_rows(&state).await
                        && **tx.borrow() != json
                    {
                        tx.send_replace(Arc::new(json));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(TICK) => {}
                        _ = changed.notified() => {}
                    }
                }
            });
            rx
        })
        .clone()
}

/// The missed-calls widget's message, or `None` when the store failed (the widget keeps
/// what it shows).
async fn callback_rows(state: &WebState) -> Option<String> {
    let list = match state.store.callback_list(unix_ms(), SHOWN).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("reading the callback list: {e}");
            return None;
        }
    };
    let rows: Vec<_> = list
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "number": e.number,
                "count": e.count,
                "first": state.local_time(e.first_at_ms),
                "last": state.local_time(e.last_at_ms),
                "queue": e.queue,
                "promised": e.promised_at_ms.map(|t| state.local_time(t)),
                "attempts": e.attempts,
                "auto_attempts": e.auto_attempts,
                "last_outcome": e.last_outcome.map(|o| o.as_str()),
                "for_operator": e.for_operator,
                "undialable": e.undialable,
            })
        })
        .collect();
    serde_json::to_string(&serde_json::json!({ "type": "callbacks", "data": rows })).ok()
}

/// The operator's own recent callback attempts, which they may still correct.
async fn my_attempts(state: &WebState, operator: &str) -> Option<String> {
    let now = unix_ms();
    let rows = state
        .store
        .recent_callback_attempts(operator, now - CORRECTION_WINDOW_MS, 10)
        .await
        .ok()?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(a, number)| {
            serde_json::json!({
                "entry": a.entry_id,
                "number": number,
                "outcome": a.outcome.map(|o| o.as_str()),
                "note": a.note,
                "ended": a.ended_at_ms.map(|t| state.local_time(t)),
            })
        })
        .collect();
    serde_json::to_string(&serde_json::json!({ "type": "mine", "data": rows })).ok()
}

/// The operator's call panel (see calls.rs); `null` without a call.
fn call_frame(call: Option<serde_json::Value>) -> String {
    serde_json::json!({ "type": "call", "data": call }).to_string()
}

async fn figures(state: &WebState) -> Option<String> {
    let data = state.telephony.queue_figures().await?;
    serde_json::to_string(&serde_json::json!({ "type": "queues", "data": data })).ok()
}

/// GET /console/live: the home page's WebSocket.
pub(super) async fn socket(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // A page from another site must not read the operators' lists.
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "not from this site").into_response();
    }
    let operator = s
        .user
        .operator
        .clone()
        .unwrap_or_else(|| s.user.name.clone());
    ws.on_upgrade(move |socket| serve(state, operator, socket))
}

async fn serve(state: Arc<WebState>, operator: String, mut socket: WebSocket) {
    let mut feed = callbacks_feed(&state);
    feed.mark_changed();
    let mut last_figures = String::new();
    let mut last_mine = String::new();
    // The page starts with "No call".
    let mut last_call = call_frame(None);
    let mut tick = tokio::time::interval(TICK);
    loop {
        let mut out = Vec::new();
        tokio::select! {
            r = feed.changed() => {
                if r.is_err() {
                    return;
                }
                let list = feed.borrow_and_update().clone();
                if !list.is_empty() {
                    out.push(list.to_string());
                }
                // An outcome recorded may have changed this operator's own list too.
                if let Some(m) = my_attempts(&state, &operator).await
                    && m != last_mine
                {
                    last_mine.clone_from(&m);
                    out.push(m);
                }
            }
            _ = tick.tick() => {
                let call = state.telephony.operator_call(&operator).await;
                if let Some(id) = call.as_ref().and_then(|c| c["call_id"].as_str()) {
                    state.live.shown(&operator, id);
                }
                let call = call_frame(call);
                if call != last_call {
                    last_call.clone_from(&call);
                    out.push(call);
                }
                if let Some(f) = figures(&state).await
                    && f != last_figures
                {
                    last_figures.clone_from(&f);
                    out.push(f);
                }
                if let Some(m) = my_attempts(&state, &operator).await
                    && m != last_mine
                {
                    last_mine.clone_from(&m);
                    out.push(m);
                }
            }
            msg = socket.recv() => match msg {
                // The page sends nothing but pings and the close.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
        for text in out {
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}
