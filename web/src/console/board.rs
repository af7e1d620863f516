//! The supervisors' live board (PRODUCT S1): every queue's figures, every operator's state
//! and conversations, every call in progress and every chat, updated over a WebSocket once
//! a second when anything changed; and the wallboard, the queues in large type with no
//! controls, for a screen on the wall.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::{Csrf, SupervisorPage, same_origin};
use crate::error::WebError;
use crate::pages::me;
use crate::state::WebState;
use crate::telephony::{MonitorAction, Supervisor};

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

#[derive(serde::Deserialize)]
pub(super) struct MonitorBody {
    call_id: String,
    action: MonitorAction,
}

/// POST /supervisor/monitor `{"call_id", "action"}`: listen, whisper, barge, take over
/// or stop (PRODUCT S1), with the supervisor's own phone.
pub(super) async fn monitor(
    State(state): State<Arc<WebState>>,
    Csrf(SupervisorPage(s)): Csrf<SupervisorPage>,
    body: Option<Json<MonitorBody>>,
) -> Response {
    let refuse =
        |status, message: &str| WebError::json(status, message.to_string()).into_response();
    let Some(Json(body)) = body else {
        return refuse(
            StatusCode::BAD_REQUEST,
            r#"send {"call_id": "…", "action": "listen|whisper|barge|take_over|stop"}"#,
        );
    };
    let Some(operator) = s.user.operator.as_deref() else {
        return refuse(
            StatusCode::CONFLICT,
            "Your user has no operator account, so no phone to listen with: an admin links one on the users page.",
        );
    };
    let who = Supervisor {
        user: &s.user.name,
        admin: s.user.role.allows(hotline_core::users::Role::Admin),
        operator,
    };
    match state
        .telephony
        .monitor_call(who, &body.call_id, body.action)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refuse(StatusCode::CONFLICT, &e),
    }
}

/// The newest entries of the monitoring audit log the board shows.
const LOG_SHOWN: i64 = 10;

async fn serve(state: Arc<WebState>, mut socket: WebSocket) {
    let mut last = String::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let frame = match state.telephony.board().await {
                    Some(mut data) => {
                        // Who listened to which call, newest first (every use is logged).
                        data["monitoring"] = match state.store.monitoring_log(LOG_SHOWN).await {
                            Ok(rows) => serde_json::json!(rows),
                            Err(e) => {
                                tracing::warn!("reading the monitoring log: {e}");
                                serde_json::json!([])
                            }
                        };
                        serde_json::json!({ "type": "board", "data": data })
                    }
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
