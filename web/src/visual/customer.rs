//! Visual sessions, the customer's side: the invite link's page (`/v/{token}`), its
//! socket and the photos it uploads. Unknown, ended and expired links look alike.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use hotline_core::visual::{FileKind, Party, VisualSession};

use super::{Event, To, read_image, save_image, serve_socket};
use crate::state::WebState;
use crate::unix_ms;

/// The session an invite link opens; `None` for unknown, ended and expired links alike.
async fn by_token(state: &WebState, token: &str) -> Option<VisualSession> {
    // Tokens are long random text; anything else is not worth a query.
    if token.len() > 200 {
        return None;
    }
    state
        .store
        .visual_session_by_token(token, unix_ms())
        .await
        .ok()
        .flatten()
}

pub async fn page(State(state): State<Arc<WebState>>, Path(token): Path<String>) -> Response {
    let Some(v) = by_token(&state, &token).await else {
        return gone(&state);
    };
    let mut r = state.render_public(
        "customer.html",
        minijinja::context! {
            case_number => v.case_number,
            ice_servers => state.visual.ice_servers_json.as_str(),
        },
    );
    // The link is a secret: don't leak it to other sites or caches.
    let h = r.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// One page for unknown, ended and expired links: it reveals nothing.
fn gone(state: &WebState) -> Response {
    let mut r = state.render_public("customer_gone.html", minijinja::context! {});
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

pub async fn socket(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(v) = by_token(&state, &token).await else {
        return (StatusCode::NOT_FOUND, "this link is not valid").into_response();
    };
    if v.joined_at_ms.is_none() {
        match state
            .store
            .mark_visual_session_joined(v.id, unix_ms())
            .await
        {
            Ok(_) => state.visual.hub.send(v.id, To::Operator, &Event::Joined),
            Err(e) => tracing::warn!(session = v.id, "marking joined: {e}"),
        }
    }
    crate::chat::chat_socket(ws)
        .on_upgrade(move |socket| serve_socket(state, v.id, Party::Customer, socket))
}

/// POST /v/{token}/photos: the link is checked before the body is read, so an unknown
/// link costs no upload.
pub async fn photo(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(v) = by_token(&state, &token).await else {
        return (StatusCode::NOT_FOUND, "this link is not valid").into_response();
    };
    let body = match read_image(&headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match save_image(&state, &v, FileKind::Photo, &body).await {
        // The customer learns that it arrived, not where it is kept.
        Ok(_) => (StatusCode::CREATED, Json(serde_json::json!({ "ok": true }))).into_response(),
        Err((status, msg)) => crate::error::WebError::json(status, msg).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::Router;
    use axum::http::Request;
    use futures_util::{SinkExt, StreamExt};
    use hotline_core::users::Role;
    use hotline_core::visual::{InviteChannel, NewVisualSession};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;
    use crate::testing::{self, Ws};
    use crate::visual::MAX_IMAGE_BYTES;
    use axum::body::Bytes;

    /// The console's routes and an open session's link token.
    async fn setup() -> (Router, String) {
        let store = testing::store().await;
        let now = unix_ms();
        let user = testing::add_user(&store, "anna", Role::Operator, None).await;
        let license = store.add_license("Main", 10, now).await.unwrap();
        store.grant_license(user, license).await.unwrap();
        let created = store
            .create_visual_session(&NewVisualSession {
                operator_user_id: user,
                license_id: license,
                channel: InviteChannel::Email,
                email: Some("customer@example.com".into()),
                now_ms: now,
                ..Default::default()
            })
            .await
            .unwrap();
        let app = testing::state(&store)
            .files_dir(std::env::temp_dir().join(format!("hotline-visual-{now}")))
            .app();
        (app, created.token)
    }

    /// A body that notes whether anyone read it.
    fn watched_body(read: Arc<AtomicBool>, bytes: usize) -> Body {
        let chunk = Bytes::from(vec![0u8; 64 * 1024]);
        let chunks = bytes.div_ceil(chunk.len());
        let stream = futures_util::stream::iter(0..chunks).map(move |_| {
            read.store(true, Ordering::SeqCst);
            Ok::<_, std::io::Error>(chunk.clone())
        });
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_photo_for_an_unknown_link_is_refused_unread() {
        let (app, token) = setup().await;
        let read = Arc::new(AtomicBool::new(false));
        let req = Request::post("/v/not-a-link/photos")
            .header("content-type", "image/png")
            .body(watched_body(read.clone(), 1024 * 1024))
            .unwrap();
        assert_eq!(testing::send(&app, req).await.status, StatusCode::NOT_FOUND);
        assert!(!read.load(Ordering::SeqCst), "the body was read");

        // A good link with too big a picture (no length given): refused as it arrives.
        let req = Request::post(format!("/v/{token}/photos"))
            .body(watched_body(read.clone(), MAX_IMAGE_BYTES + 128 * 1024))
            .unwrap();
        assert_eq!(
            testing::send(&app, req).await.status,
            StatusCode::PAYLOAD_TOO_LARGE
        );

        // And a real picture arrives.
        let png = [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ];
        let req = Request::post(format!("/v/{token}/photos"))
            .body(Body::from(png.to_vec()))
            .unwrap();
        assert_eq!(testing::send(&app, req).await.status, StatusCode::CREATED);
    }

    async fn customer_socket(app: Router, token: &str) -> Ws {
        let addr = testing::serve(app).await;
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/v/{token}/ws"), stream)
            .await
            .unwrap();
        ws
    }

    #[tokio::test]
    async fn visual_sockets_take_frames_as_chat_does() {
        let (app, token) = setup().await;
        let mut ws = customer_socket(app.clone(), &token).await;
        // Presence comes first.
        assert_eq!(
            testing::next_json(&mut ws).await.unwrap()["type"],
            "presence"
        );
        // A frame far bigger than any message or offer: the socket is closed.
        let big = json_signal(100 * 1024);
        ws.send(Message::Text(big.into())).await.unwrap();
        assert_eq!(
            testing::next_json(&mut ws).await,
            None,
            "a 100 KiB frame was taken"
        );

        // Messages at the chat visitor's rate (30 a minute): the 31st is refused.
        let mut ws = customer_socket(app, &token).await;
        let mut refused = None;
        for i in 0..31 {
            let frame = serde_json::json!({ "type": "chat", "text": format!("m{i}") });
            ws.send(Message::Text(frame.to_string().into()))
                .await
                .unwrap();
            loop {
                let v = testing::next_json(&mut ws).await.unwrap();
                match v["type"].as_str() {
                    Some("chat") => break,
                    Some("error") => {
                        refused = Some((i, v));
                        break;
                    }
                    _ => {}
                }
            }
        }
        let (i, v) = refused.expect("no message was refused");
        assert_eq!(i, 30, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("Too many messages"),
            "{v}"
        );
    }

    fn json_signal(bytes: usize) -> String {
        serde_json::json!({ "type": "signal", "data": { "sdp": "x".repeat(bytes) } }).to_string()
    }
}
