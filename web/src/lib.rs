//! hotline-web: the HTTP side of Hotline: the operational endpoints — `GET /healthz` for
//! load balancers and systemd checks, `GET /metrics` for Prometheus — and the operator
//! console ([`console`]), visual sessions ([`visual`]) and web chat ([`chat`]), all in one
//! [`router`].
//!
//! Dependencies point one way: [`state`], [`auth`], [`error`], [`pages`] and
//! [`telephony`] at the bottom ([`state::WebState`] holds each feature's settings, data
//! only); [`chat`] above them; [`visual`] (its sockets take frames as chat's do); [`console`]
//! (the home page shows the visual sessions) at the top.
//!
//! It owns no telephony state: what it reports comes in through `Health` and the metrics
//! renderer the binary hands over.

pub mod assets;
pub mod auth;
pub mod chat;
pub mod client_ip;
pub mod console;
pub mod error;
pub mod pages;
pub mod server;
pub mod state;
pub mod telephony;
#[cfg(test)]
mod testing;
pub mod visual;

pub use client_ip::{ClientIp, TrustedProxies};
/// Now in unix ms, as the store keeps times.
pub use hotline_core::time::unix_ms;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Readiness as the daemon sees it; set by the binary, read by `/healthz`.
#[derive(Debug, Default)]
pub struct Health {
    sip_bound: AtomicBool,
    store_ready: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    pub fn set_sip_bound(&self) {
        self.sip_bound.store(true, Ordering::Release);
    }
    pub fn set_store_ready(&self) {
        self.store_ready.store(true, Ordering::Release);
    }
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// 200 once SIP is bound and the store is migrated; 503 before, and while draining.
    fn status(&self) -> (StatusCode, &'static str) {
        if self.draining.load(Ordering::Acquire) {
            (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        } else if !self.sip_bound.load(Ordering::Acquire) {
            (StatusCode::SERVICE_UNAVAILABLE, "starting: SIP not bound\n")
        } else if !self.store_ready.load(Ordering::Acquire) {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "starting: store not migrated\n",
            )
        } else {
            (StatusCode::OK, "ok\n")
        }
    }
}

/// Server-Sent Events: one `event` carrying the JSON `fetch` returns whenever it differs
/// from the last one sent, checked every second; the stream ends when `fetch` gives `None`.
pub fn live_json<F, Fut>(event: &'static str, fetch: F) -> axum::response::Response
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<serde_json::Value>> + Send,
{
    use axum::response::sse::{Event, KeepAlive, Sse};
    let stream =
        futures_util::stream::unfold((fetch, None::<String>), move |(fetch, last)| async move {
            loop {
                let json = serde_json::to_string(&fetch().await?).ok()?;
                if last.as_deref() != Some(json.as_str()) {
                    let e = Event::default().event(event).data(json.clone());
                    return Some((Ok::<_, std::convert::Infallible>(e), (fetch, Some(json))));
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Renders the Prometheus text exposition.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: MetricsRenderer,
}

/// The whole web app: the operational endpoints, the console, chat, visual sessions and
/// the pages' assets.
pub fn router(
    health: Arc<Health>,
    metrics: MetricsRenderer,
    state: Arc<state::WebState>,
) -> Router {
    ops(health, metrics).merge(app(state))
}

/// `/healthz` and `/metrics`.
fn ops(health: Arc<Health>, metrics: MetricsRenderer) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { health, metrics })
}

/// The console's, chat's and visual sessions' routes, and the assets their pages load.
pub fn app(state: Arc<state::WebState>) -> Router {
    Router::new()
        .merge(console::router())
        .merge(chat::router())
        .merge(visual::router())
        .route("/assets/{name}", get(assets::asset))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    state.health.status()
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (state.metrics)(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;

    async fn get_status(app: &Router, path: &str) -> StatusCode {
        let req = Request::get(path).body(Body::empty()).unwrap();
        testing::send(app, req).await.status
    }

    #[tokio::test]
    async fn healthz_follows_readiness_and_draining() {
        let health = Arc::new(Health::default());
        let app = ops(
            health.clone(),
            Arc::new(|| "hotline_active_calls 0\n".into()),
        );
        assert_eq!(
            get_status(&app, "/healthz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_sip_bound();
        assert_eq!(
            get_status(&app, "/healthz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_store_ready();
        assert_eq!(get_status(&app, "/healthz").await, StatusCode::OK);
        health.set_draining();
        assert_eq!(
            get_status(&app, "/healthz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get_status(&app, "/metrics").await, StatusCode::OK);
        assert_eq!(get_status(&app, "/nope").await, StatusCode::NOT_FOUND);
    }
}
