//! The HTTP server loop for the console, chat and health endpoints.
//!
//! `axum::serve` has neither a header-read timeout nor a connection cap, so a slowloris
//! client (one that opens connections and sends a request line a byte at a time) could
//! hold sockets and memory for ever. This loop does what `axum::serve` does (hyper's
//! connection builder with upgrades, for the WebSockets) and adds these limits:
//! - every connection must deliver a complete request head within `header_read_timeout`,
//!   also between keep-alive requests;
//! - a request body that sends nothing for `body_read_timeout` fails: an idle time
//!   between reads, not a deadline for the whole body, so a large upload at any steady
//!   speed goes through while a body sent a byte now and then for ever does not;
//! - at most `max_connections` are open at once, WebSockets included (the slot is held by
//!   the socket itself, so an upgraded connection keeps it until it closes);
//! - at most `max_connections_per_address` of them from one client address (IPv4: the
//!   address, IPv6: its /64), so one client can't take every slot and lock everyone else
//!   (the console shares this server) out. The address is the TCP peer: the cap acts
//!   before any request, when `X-Forwarded-For` can't be read yet. A peer in
//!   `trusted_proxies` is exempt, since every client behind a proxy shares its address;
//!   such a proxy should limit connections per client itself.
//!
//! A connection over either cap gets a short 503 and is closed.
//!
//! Each request carries `ConnectInfo<SocketAddr>` as axum's own serve gives it, so
//! [`crate::ClientIp`] and `ConnectInfo` extractors keep working.
//!
//! Every request is logged once under the target `http_access` ([`with_access_log`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::http::Request;
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::{ClientIp, TrustedProxies};

/// `[http]` limits of the server.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64); peers in
    /// `trusted_proxies` are exempt.
    pub max_connections_per_address: usize,
    pub header_read_timeout: Duration,
    /// How long a request body may send nothing (between reads, not in all).
    pub body_read_timeout: Duration,
    /// `http.trusted_proxies`: exempt from `max_connections_per_address`.
    pub trusted_proxies: TrustedProxies,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            max_connections_per_address: 64,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// What a connection over a cap reads before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\n\
Content-Length: 52\r\n\r\nThe server has too many connections; try again soon.";

/// An address over its cap is logged at most this often (a flood must not flood the log).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` for ever.
pub async fn serve(listener: TcpListener, app: Router, limits: HttpLimits) {
    let app = with_access_log(app, limits.trusted_proxies.clone());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(OpenPerAddress::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("http accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer_ip = peer.ip().to_canonical();
        let address_slot = if limits.trusted_proxies.contains(peer_ip) {
            None
        } else {
            match per_address.take(peer_ip, limits.max_connections_per_address, Instant::now()) {
                Ok(slot) => Some(slot),
                Err(OverAddressCap { log }) => {
                    refuse(&stream);
                    if log {
                        tracing::warn!(
                            target: "hotline::security",
                            "security: http connection refused reason=\"too many from this \
                             address (http.max_connections_per_address)\" from={peer_ip}"
                        );
                    }
                    continue;
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(&stream);
            tracing::debug!(%peer, "http connection refused: at http.max_connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(serve_connection(
            HeldStream {
                stream,
                _slot: slot,
                _address_slot: address_slot,
            },
            peer,
            app,
            limits.header_read_timeout,
            limits.body_read_timeout,
        ));
    }
}

/// Logs each request of `app` once its response head is ready (a WebSocket at its 101):
/// method, path, status, milliseconds and the client (behind `trusted` proxies, the
/// address they saw), at INFO under the target `http_access`; `/healthz` and `/metrics`,
/// polled by machines, at DEBUG. The query string is left out: it can carry tokens.
pub fn with_access_log(app: Router, trusted: TrustedProxies) -> Router {
    app.layer(axum::middleware::from_fn_with_state(trusted, access_log))
}

async fn access_log(
    State(trusted): State<TrustedProxies>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = loggable_path(req.uri().path());
    let client = match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => ClientIp(Some(trusted.client(peer.ip(), req.headers()))),
        None => ClientIp(None),
    };
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if path == "/healthz" || path == "/metrics" {
        tracing::debug!(target: "http_access", %method, %path, status, ms, %client, "request");
    } else {
        tracing::info!(target: "http_access", %method, %path, status, ms, %client, "request");
    }
    response
}

/// The path as logged: a visual session's link (`/v/{token}`) is the customer's key to
/// it, so the token is left out.
fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/v/") {
        Some(rest) => match rest.find('/') {
            Some(i) => format!("/v/{{token}}{}", &rest[i..]),
            None => "/v/{token}".into(),
        },
        None => path.into(),
    }
}

/// The short 503 of a connection over a cap; the socket closes when it is dropped.
fn refuse(stream: &TcpStream) {
    // A fresh socket's send buffer is empty, so this never blocks the loop; if the write
    // fails the client only sees the close.
    let _ = stream.try_write(BUSY_RESPONSE);
}

async fn serve_connection(
    stream: HeldStream,
    peer: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
) {
    let service = app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        // The timer runs only while the handler waits for the client's next bytes.
        req.map(|body| Body::new(TimeoutBody::new(body_read_timeout, body)))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    if let Err(e) = connection.await {
        tracing::debug!(%peer, "http connection: {e}");
    }
}

/// The client as a whole, for the per-address cap: an IPv6 host has a /64 of its own.
fn host(ip: IpAddr) -> IpAddr {
    hotline_sip::limits::source_host(ip)
}

/// Open connections per client host; an entry exists only while the host has one open.
#[derive(Default)]
struct OpenPerAddress(Mutex<HashMap<IpAddr, HostOpen>>);

#[derive(Default)]
struct HostOpen {
    connections: usize,
    /// When a refusal of this host was last logged.
    logged_at: Option<Instant>,
}

/// A connection over its address's cap; `log`: the refusal is due in the security log.
struct OverAddressCap {
    log: bool,
}

impl OpenPerAddress {
    fn take(
        self: &Arc<Self>,
        ip: IpAddr,
        max: usize,
        now: Instant,
    ) -> Result<AddressSlot, OverAddressCap> {
        let host = host(ip);
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = open.entry(host).or_default();
        if entry.connections >= max {
            let log = entry
                .logged_at
                .is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
            if log {
                entry.logged_at = Some(now);
            }
            return Err(OverAddressCap { log });
        }
        entry.connections += 1;
        Ok(AddressSlot {
            table: self.clone(),
            host,
        })
    }
}

/// One connection of a host's count; given back when the connection goes.
struct AddressSlot {
    table: Arc<OpenPerAddress>,
    host: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = open.get_mut(&self.host) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                open.remove(&self.host);
            }
        }
    }
}

/// A connection with its slots of `max_connections` and of its address's cap: they go
/// when the socket does, also after a WebSocket upgrade took the socket out of hyper's
/// hands.
struct HeldStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _address_slot: Option<AddressSlot>,
}

impl AsyncRead for HeldStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HeldStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientIp;
    use axum::extract::WebSocketUpgrade;
    use axum::routing::{get, post};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: HttpLimits) -> SocketAddr {
        let app = Router::new()
            .route(
                "/ip",
                get(|ClientIp(ip): ClientIp| async move { format!("{ip:?}") }),
            )
            .route(
                "/len",
                post(|body: axum::body::Bytes| async move { format!("{} bytes", body.len()) }),
            )
            .route(
                "/ws",
                get(|ws: WebSocketUpgrade| async move {
                    ws.on_upgrade(|mut socket| async move {
                        let _ = socket
                            .send(axum::extract::ws::Message::Text("hello".into()))
                            .await;
                        // Open until the client goes.
                        let _ = socket.recv().await;
                    })
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app, limits));
        addr
    }

    /// Everything the server sends until it closes, or what came within `wait`.
    async fn read_until_close(stream: &mut TcpStream, wait: Duration) -> (String, bool) {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => return (String::from_utf8_lossy(&got).into(), false),
            }
        }
    }

    #[tokio::test]
    async fn half_a_request_line_is_closed_after_the_header_timeout() {
        let addr = start(HttpLimits {
            max_connections: 8,
            header_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        })
        .await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /ip HT").await.unwrap();
        let started = Instant::now();
        let (_, closed) = read_until_close(&mut slow, Duration::from_secs(5)).await;
        assert!(closed, "the server kept a half-sent request open");
        assert!(started.elapsed() < Duration::from_secs(3));

        // An idle connection that never sends a byte goes the same way.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let (_, closed) = read_until_close(&mut idle, Duration::from_secs(5)).await;
        assert!(closed, "the server kept an idle connection open");
    }

    #[tokio::test]
    async fn requests_carry_the_peer_address() {
        let addr = start(HttpLimits::default()).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (text, _) = read_until_close(&mut c, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("Some(127.0.0.1)"), "{text}");
    }

    #[tokio::test]
    async fn connections_over_the_cap_get_503_until_one_closes() {
        let addr = start(HttpLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(30),
            ..HttpLimits::default()
        })
        .await;
        let first = TcpStream::connect(addr).await.unwrap();
        // Let the server take the first one before the second arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        let (text, closed) = read_until_close(&mut second, Duration::from_secs(5)).await;
        assert!(closed);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.ends_with("try again soon."), "{text}");
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (text, _) = read_until_close(&mut third, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }

    #[tokio::test]
    async fn websocket_upgrades_work_and_hold_their_slot() {
        let addr = start(HttpLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        })
        .await;
        let mut ws = TcpStream::connect(addr).await.unwrap();
        ws.write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
        let mut buf = vec![0u8; 1024];
        let mut got = Vec::new();
        // The 101 head and the first frame ("hello", unmasked text).
        while !got.windows(5).any(|w| w == b"hello") {
            let n = tokio::time::timeout(Duration::from_secs(5), ws.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 101"));
        // Past the header timeout the upgraded socket still holds the only slot.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut other = TcpStream::connect(addr).await.unwrap();
        let (text, _) = read_until_close(&mut other, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    }

    /// A connection from `local` (any 127.x.y.z: all of 127/8 is loopback on Linux).
    async fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    }

    async fn get_ip(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        read_until_close(stream, Duration::from_secs(5)).await.0
    }

    #[tokio::test]
    async fn one_address_cannot_take_every_connection() {
        let addr = start(HttpLimits {
            max_connections: 8,
            max_connections_per_address: 2,
            header_read_timeout: Duration::from_secs(30),
            ..HttpLimits::default()
        })
        .await;
        // Two idle connections (a slowloris) from one address: its share.
        let first = connect_from("127.0.0.1", addr).await;
        let _second = connect_from("127.0.0.1", addr).await;
        let mut third = connect_from("127.0.0.1", addr).await;
        let (text, closed) = read_until_close(&mut third, Duration::from_secs(5)).await;
        assert!(closed, "a third connection from one address was kept");
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.ends_with("try again soon."), "{text}");
        // Everyone else is still served.
        let mut other = connect_from("127.0.0.2", addr).await;
        let text = get_ip(&mut other).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        // The address gets its slot back when one of its connections closes.
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = connect_from("127.0.0.1", addr).await;
        let text = get_ip(&mut again).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }

    #[tokio::test]
    async fn a_trusted_proxy_is_not_capped_per_address() {
        let addr = start(HttpLimits {
            max_connections: 8,
            max_connections_per_address: 1,
            trusted_proxies: TrustedProxies::new(vec!["127.0.0.1".parse().unwrap()]),
            ..HttpLimits::default()
        })
        .await;
        // Every client behind the proxy comes from its address.
        let _held = [
            connect_from("127.0.0.1", addr).await,
            connect_from("127.0.0.1", addr).await,
        ];
        let mut third = connect_from("127.0.0.1", addr).await;
        let text = get_ip(&mut third).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        // Others are still capped.
        let _held_other = connect_from("127.0.0.2", addr).await;
        let mut over = connect_from("127.0.0.2", addr).await;
        let (text, _) = read_until_close(&mut over, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_an_ipv4_client_its_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            host(ip("2001:db8:1:2::1")),
            host(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(host(ip("2001:db8:1:2::1")), host(ip("2001:db8:1:3::1")));
        assert_ne!(host(ip("192.0.2.1")), host(ip("192.0.2.2")));
        // A dual-stack socket's IPv4-mapped peer is its IPv4 address.
        assert_eq!(host(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let table = Arc::new(OpenPerAddress::default());
        let now = Instant::now();
        let _slot = table.take(ip("2001:db8:1:2::1"), 1, now).ok().unwrap();
        let Err(over) = table.take(ip("2001:db8:1:2::2"), 1, now) else {
            panic!("a second connection from the /64 was let in");
        };
        assert!(over.log, "the first refusal is logged");
        // Then not again until LOG_EVERY has passed.
        let Err(over) = table.take(ip("2001:db8:1:2::2"), 1, now) else {
            panic!("let in");
        };
        assert!(!over.log);
        let Err(over) = table.take(ip("2001:db8:1:2::2"), 1, now + LOG_EVERY) else {
            panic!("let in");
        };
        assert!(over.log);
        assert!(table.take(ip("2001:db8:1:3::1"), 1, now).is_ok());
    }

    /// Captures events as `LEVEL target: field=value …` lines.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct Fields(String);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let meta = event.metadata();
            let mut fields = Fields(format!("{} {}:", meta.level(), meta.target()));
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    impl Capture {
        fn access_lines(&self) -> Vec<String> {
            let lines = std::mem::take(&mut *self.0.lock().unwrap());
            lines
                .into_iter()
                .filter(|l| l.contains(" http_access:"))
                .collect()
        }
    }

    async fn request(app: &Router, method: &str, uri: &str, peer: &str, xff: Option<&str>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", xff);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let _ = app.clone().oneshot(req).await.unwrap();
    }

    #[tokio::test]
    async fn every_request_is_one_access_line_without_its_query_string() {
        let capture = Capture::default();
        let _guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(capture.clone()));
        let app = Router::new()
            .route("/console/status", post(|| async { "ok" }))
            .route("/v/{token}", get(|| async { "page" }))
            .route("/healthz", get(|| async { "ok" }));
        let app = with_access_log(app, TrustedProxies::new(vec!["10.0.0.1".parse().unwrap()]));

        request(
            &app,
            "POST",
            "/console/status?token=s3cret",
            "203.0.113.5:4000",
            None,
        )
        .await;
        let lines = capture.access_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(line.starts_with("INFO http_access:"), "{line}");
        for part in [
            "method=POST",
            "path=/console/status ",
            "status=200",
            "ms=",
            "client=203.0.113.5",
        ] {
            assert!(line.contains(part), "{part} missing: {line}");
        }
        assert!(!line.contains("s3cret") && !line.contains('?'), "{line}");

        // Behind a trusted proxy, the client it saw; a 404 is logged too.
        request(&app, "GET", "/nope", "10.0.0.1:4000", Some("198.51.100.7")).await;
        let lines = capture.access_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("client=198.51.100.7"), "{lines:?}");
        assert!(lines[0].contains("status=404"), "{lines:?}");

        // A visual session's token is its key: not logged.
        request(&app, "GET", "/v/secret-token", "203.0.113.5:4000", None).await;
        let lines = capture.access_lines();
        assert!(lines[0].contains("path=/v/{token} "), "{lines:?}");
        assert!(!lines[0].contains("secret-token"), "{lines:?}");

        // Health checks are polled all day: DEBUG only.
        request(&app, "GET", "/healthz", "127.0.0.1:4000", None).await;
        let lines = capture.access_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("DEBUG http_access:"), "{lines:?}");
    }

    #[test]
    fn loggable_paths_leave_out_visual_tokens_only() {
        assert_eq!(loggable_path("/v/abc"), "/v/{token}");
        assert_eq!(loggable_path("/v/abc/ws"), "/v/{token}/ws");
        assert_eq!(loggable_path("/visual/12/ws"), "/visual/12/ws");
        assert_eq!(loggable_path("/console"), "/console");
    }

    #[tokio::test]
    async fn a_body_that_stops_is_cut_after_the_body_timeout() {
        let addr = start(HttpLimits {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        })
        .await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            .await
            .unwrap();
        let started = Instant::now();
        let (text, closed) = read_until_close(&mut slow, Duration::from_secs(5)).await;
        assert!(closed, "the server kept waiting for the body: {text}");
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_slow_but_steady_body_is_not_cut() {
        let addr = start(HttpLimits {
            body_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        })
        .await;
        let mut upload = TcpStream::connect(addr).await.unwrap();
        upload
            .write_all(
                b"POST /len HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 12\r\n\r\n",
            )
            .await
            .unwrap();
        // 1.2 s in all, four times the timeout, but never 300 ms without a byte.
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            upload.write_all(b"x").await.unwrap();
        }
        let (text, _) = read_until_close(&mut upload, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("12 bytes"), "{text}");
    }
}
