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
    body: Result<Json<MonitorBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let refuse =
        |status, message: &str| WebError::json(status, message.to_string()).into_response();
    let Ok(Json(body)) = body else {
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

/// How often a board reads today's service level again (from the day's call records).
const SERVICE_LEVEL_EVERY: Duration = Duration::from_secs(30);

/// Today's service level per queue (% answered within the queue's target, else the
/// reports' default, as the day's report counts it), `{queue: percent or null}`.
async fn service_level_today(state: &WebState) -> serde_json::Value {
    use hotline_core::reports::{ReportOptions, day_bounds, day_report};
    let tz = state.settings.time_zone;
    let date = super::reports::today(state);
    let Some((since, until)) = day_bounds(&tz, date) else {
        return serde_json::json!({});
    };
    let calls = match state.store.calls_started_in(since, until).await {
        Ok((calls, _)) => calls,
        Err(e) => {
            tracing::warn!("reading today's calls for the board: {e}");
            return serde_json::json!({});
        }
    };
    let options = ReportOptions {
        queue_targets: state.telephony.queue_targets(),
        ..ReportOptions::default()
    };
    let Some(report) = day_report(&calls, &tz, date, &options) else {
        return serde_json::json!({});
    };
    report
        .queues
        .iter()
        .map(|(q, f)| (q.clone(), serde_json::json!(f.service_level())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn serve(state: Arc<WebState>, mut socket: WebSocket) {
    let mut last = String::new();
    let mut tick = tokio::time::interval(TICK);
    let mut service_level: Option<(tokio::time::Instant, serde_json::Value)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let frame = match state.telephony.board().await {
                    Some(mut data) => {
                        if service_level.as_ref().is_none_or(|(at, _)| at.elapsed() >= SERVICE_LEVEL_EVERY) {
                            service_level = Some((tokio::time::Instant::now(), service_level_today(&state).await));
                        }
                        if let Some((_, sl)) = &service_level {
                            data["service_level"] = sl.clone();
                        }
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use hotline_core::users::Role;
    use serde_json::json;

    use crate::testing;

    #[tokio::test]
    async fn only_a_supervisor_with_a_phone_may_monitor_and_the_telephony_side_decides_the_rest() {
        let store = testing::store().await;
        let app = testing::state(&store).app();
        let olga = testing::login(&store, "olga", Role::Operator).await;
        // A supervisor without an operator account has no phone to listen with.
        let sara = testing::login(&store, "sara", Role::Supervisor).await;
        testing::add_operator(&store, "vera").await;
        testing::add_user(&store, "vera", Role::Supervisor, Some("vera")).await;
        let vera = testing::log_in(&store, "vera").await;
        let listen = json!({ "call_id": "c-1", "action": "listen" });
        let send = |who, body| testing::send_json(&app, who, "POST", "/supervisor/monitor", body);

        let (status, _) = send(&olga, Some(listen.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, reply) = send(&sara, Some(listen.clone())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            reply["error"]
                .as_str()
                .is_some_and(|e| e.contains("no operator account")),
            "{reply}"
        );
        for bad in [None, Some(json!({ "call_id": "c-1", "action": "shout" }))] {
            let (status, reply) = send(&vera, bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        }
        // The fake telephony side monitors nothing: its refusal is what the page shows.
        let (status, reply) = send(&vera, Some(listen)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(reply["error"], "Calls cannot be monitored here.");
    }
}
