//! The supervisors' live board (PRODUCT S1): every queue's figures, every operator's state
//! and conversations, every call in progress and every chat, updated over a WebSocket once
//! a second when anything changed; and the wallboard, the queues in large type with no
//! controls, for a screen on the wall.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::{SupervisorPage, same_origin};
use crate::pages::me;
use crate::state::WebState;

/// How often the board is read again.
const TICK: Duration = Duration::from_secs(1);

/// GET /supervisor: the board.
pub(super) async fn page(
    State(state): State<Arc<WebState>>,
    SupervisorPage(s): SupervisorPage,
) -> Response {
    state.render(
        "board.html",
        minijinja::context! { me => me(&s), wall => false },
    )
}

/// GET /supervisor/wallboard: the queues only, in large type.
pub(super) async fn wallboard(
    State(state): State<Arc<WebState>>,
    SupervisorPage(s): SupervisorPage,
) -> Response {
    state.render(
        "board.html",
        minijinja::context! { me => me(&s), wall => true },
    )
}

/// GET /supervisor/live: the board's WebSocket.
pub(super) async fn socket(
    State(state): State<Arc<WebState>>,
    SupervisorPage(_): SupervisorPage,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Another site's page must not read the floor.
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "not from this site").into_response();
    }
    ws.on_upgrade(move |socket| serve(state, socket))
}

async fn serve(state: Arc<WebState>, mut socket: WebSocket) {
    let mut last = String::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let frame = match state.telephony.board().await {
                    Some(data) => serde_json::json!({ "type": "board", "data": data }),
                    None => serde_json::json!({ "type": "unavailable" }),
                }
                .to_string();
                if frame != last {
                    if socket.send(Message::Text(frame.clone().into())).await.is_err() {
                        return;
                    }
                    last = frame;
                }
            }
            msg = socket.recv() => match msg {
                // The page sends nothing but pings and the close.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
