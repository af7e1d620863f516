//! The visitor's endpoints under abuse: rate limits per address and per site (HTTP and
//! socket frames), abandoned waiting chats, the transcript limit under parallel requests,
//! uploads streamed to disk with a per-chat quota and unsent files swept, and signed
//! visitor fields with their time and visitor key.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hotline_core::chat::{Audience, ChatState, EventKind, SignedVisitor, sign_visitor};
use hotline_core::notify::webhook::{self, WebhookConfig};
use hotline_core::store::Store;
use serde_json::{Value, json};

use super::ChatConfig;
use super::limits::{Limit, LimitsConfig};
use crate::state::WebState;
use crate::testing::{self, Reply, send};
use crate::unix_ms;

struct Setup {
    app: Router,
    state: Arc<WebState>,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SECRET: &str = "site-secret";

/// The embedded defaults' chat settings, with a secret on the demo site.
fn defaults() -> ChatConfig {
    let mut c = ChatConfig::default();
    c.sites[0].hmac_secret = Some(SECRET.into());
    c
}

/// A console on a SQLite file (WAL, a writer and readers, as the daemon has it) with
/// `config`, and a files directory of its own.
async fn setup(config: ChatConfig) -> Setup {
    setup_with_webhooks(config, Vec::new()).await
}

/// [`setup`] with a notifier that posts to `webhooks` (none: no notifier).
async fn setup_with_webhooks(config: ChatConfig, webhooks: Vec<WebhookConfig>) -> Setup {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hotline-chat-test-{}-{}-{}",
        std::process::id(),
        unix_ms(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/hotline.db?mode=rwc", dir.display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let state = testing::state(&store)
        .webhooks(webhooks)
        .files_dir(dir.join("files"))
        .chat(config)
        .build();
    Setup {
        app: crate::app(state.clone()),
        state,
        dir,
    }
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xC633_6400 + n)) // 198.51.100.0/24 and on
}

/// A request as it comes from `from` (the daemon serves with connect info).
fn request(method: &str, uri: &str, from: IpAddr, content_type: &str, body: Body) -> Request<Body> {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .unwrap();
    testing::from_peer(req, SocketAddr::new(from, 40_000))
}

async fn post_json(app: &Router, uri: &str, from: IpAddr, body: Value) -> Reply {
    send(
        app,
        request(
            "POST",
            uri,
            from,
            "application/json",
            Body::from(body.to_string()),
        ),
    )
    .await
}

fn start_form(visitor_key: &str) -> Value {
    json!({ "site": "demo", "visitor_key": visitor_key, "name": "Béla" })
}

/// A chat started from `from`: its token and id.
async fn start(app: &Router, from: IpAddr, visitor_key: &str) -> (String, i64) {
    let a = post_json(app, "/chat/start", from, start_form(visitor_key)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    (
        a.json["token"].as_str().unwrap().to_string(),
        a.json["chat"]["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn new_chats_are_limited_per_address() {
    let s = setup(defaults()).await;
    // The probe: 30 new chats from one address within a second.
    let mut accepted = 0;
    let mut refused = Vec::new();
    for i in 0..30 {
        let a = post_json(&s.app, "/chat/start", ip(1), start_form(&format!("vk-{i}"))).await;
        match a.status {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused.push(a),
            other => panic!("unexpected {other}: {}", a.json),
        }
    }
    assert_eq!(accepted, 5, "5 a minute per address by default");
    assert_eq!(refused.len(), 25);
    let r = &refused[0];
    let message = r.json["error"].as_str().unwrap();
    assert!(message.starts_with("Too many new chats"), "{message}");
    let wait: u64 = r
        .header(header::RETRY_AFTER)
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    // Another address is not held up by this one.
    start(&s.app, ip(2), "vk-other").await;
}

#[tokio::test]
async fn new_chats_are_limited_per_site() {
    let mut c = defaults();
    c.limits.start = Limit {
        per_address: 5,
        per_site: 8,
    };
    let s = setup(c).await;
    let mut accepted = 0;
    for i in 0..20 {
        let a = post_json(&s.app, "/chat/start", ip(i), start_form(&format!("vk-{i}"))).await;
        if a.status == StatusCode::OK {
            accepted += 1;
        } else {
            assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(
                a.json["error"]
                    .as_str()
                    .unwrap()
                    .contains("on this website"),
                "{}",
                a.json
            );
        }
    }
    assert_eq!(accepted, 8);
}

#[tokio::test]
async fn socket_frames_over_the_limit_get_an_error_frame() {
    let mut c = defaults();
    c.limits.messages = Limit {
        per_address: 3,
        per_site: 0,
    };
    c.limits.drafts = Limit {
        per_address: 2,
        per_site: 0,
    };
    c.limits.page_views = Limit {
        per_address: 2,
        per_site: 0,
    };
    let s = setup(c).await;
    let (_, chat_id) = start(&s.app, ip(1), "vk-1").await;
    let chat = s.state.store.chat(chat_id).await.unwrap().unwrap();
    let frame = |i: usize| {
        json!({ "t": "send", "client_id": format!("c{i}"), "text": format!("hello {i}") })
            .to_string()
    };
    for i in 0..3 {
        let reply = super::visitor::handle(&s.state, &chat, ip(1), &frame(i))
            .await
            .unwrap();
        assert_eq!(reply["t"], "ack", "{reply}");
    }
    let reply = super::visitor::handle(&s.state, &chat, ip(1), &frame(3))
        .await
        .unwrap();
    assert_eq!(reply["t"], "error", "{reply}");
    assert_eq!(reply["client_id"], "c3");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many messages"),
        "{reply}"
    );
    // Not stored: the greeting and three messages.
    let events = s
        .state
        .store
        .chat_events(chat_id, 0, Audience::Visitor)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Message)
            .count(),
        3
    );
    // Menu answers count as messages.
    let answer = json!({ "t": "answer", "client_id": "a1", "menu_seq": 1, "choice": "x" });
    let reply = super::visitor::handle(&s.state, &chat, ip(1), &answer.to_string())
        .await
        .unwrap();
    assert_eq!(reply["t"], "error");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many messages")
    );

    let draft = json!({ "t": "draft", "text": "typing" }).to_string();
    for _ in 0..2 {
        assert_eq!(
            super::visitor::handle(&s.state, &chat, ip(1), &draft).await,
            None
        );
    }
    let reply = super::visitor::handle(&s.state, &chat, ip(1), &draft)
        .await
        .unwrap();
    assert_eq!(reply["t"], "error");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many typing updates")
    );

    let page = json!({ "t": "page", "url": "https://shop.example/a", "title": "A" }).to_string();
    for _ in 0..2 {
        assert_eq!(
            super::visitor::handle(&s.state, &chat, ip(1), &page).await,
            None
        );
    }
    let reply = super::visitor::handle(&s.state, &chat, ip(1), &page)
        .await
        .unwrap();
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many page views")
    );
    assert_eq!(
        s.state
            .store
            .page_views(chat.visitor_id, 50)
            .await
            .unwrap()
            .len(),
        2
    );
    // Another address (another visitor of the site) still writes.
    let reply = super::visitor::handle(&s.state, &chat, ip(2), &frame(9))
        .await
        .unwrap();
    assert_eq!(reply["t"], "ack", "{reply}");
}

#[tokio::test]
async fn abandoned_waiting_chats_end_by_themselves() {
    let s = setup(defaults()).await;
    let (_, gone) = start(&s.app, ip(1), "vk-gone").await;
    let (_, here) = start(&s.app, ip(2), "vk-here").await;
    // The second visitor's page has its socket open on this node.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let socket = s.state.chat.hub.join_visitor(here, tx);
    let now = unix_ms();
    // Within the 5 minutes nothing ends.
    super::sweep::sweep(&s.state, now + 4 * 60_000).await;
    for id in [gone, here] {
        let c = s.state.store.chat(id).await.unwrap().unwrap();
        assert_eq!(c.state, ChatState::Waiting);
    }
    super::sweep::sweep(&s.state, now + 6 * 60_000).await;
    let c = s.state.store.chat(gone).await.unwrap().unwrap();
    assert_eq!(c.state, ChatState::Ended);
    let events = s
        .state
        .store
        .chat_events(gone, 0, Audience::Visitor)
        .await
        .unwrap();
    let end = events.last().unwrap();
    assert_eq!(end.kind, EventKind::End);
    assert_eq!(end.data["reason"], "abandoned");
    let c = s.state.store.chat(here).await.unwrap().unwrap();
    assert_eq!(
        c.state,
        ChatState::Waiting,
        "a connected visitor keeps waiting"
    );
    // Once that visitor's page is gone too, it ends 5 minutes after it was last seen.
    let mut hub_ids = s.state.chat.hub.visitor_chats();
    hub_ids.sort();
    assert_eq!(hub_ids, [here]);
    s.state.chat.hub.leave_visitor(here, socket);
    super::sweep::sweep(&s.state, now + 10 * 60_000).await;
    let c = s.state.store.chat(here).await.unwrap().unwrap();
    assert_eq!(c.state, ChatState::Waiting);
    super::sweep::sweep(&s.state, now + 11 * 60_000 + 1).await;
    let c = s.state.store.chat(here).await.unwrap().unwrap();
    assert_eq!(c.state, ChatState::Ended);
    assert!(s.state.store.queue_positions().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_transcript_requests_cannot_pass_the_limit() {
    let mut c = defaults();
    c.limits.enabled = false;
    let s = setup(c).await;
    let (token, chat_id) = start(&s.app, ip(1), "vk-1").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let app = s.app.clone();
        let uri = format!("/chat/transcript?token={token}");
        set.spawn(async move {
            post_json(&app, &uri, ip(i), json!({ "email": "bela@example.com" }))
                .await
                .status
        });
    }
    let statuses = set.join_all().await;
    let sent = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((sent, refused), (3, 9), "{statuses:?}");
    let queued = s
        .state
        .store
        .messages_related(&format!("chat:{chat_id}"))
        .await
        .unwrap();
    assert_eq!(queued.len(), 3);
    // The operator's wrap-up copy is counted too, and never refused.
    let chat = s.state.store.chat(chat_id).await.unwrap().unwrap();
    super::visitor_transcript(&s.state, &chat, "bela@example.com")
        .await
        .unwrap();
    assert_eq!(
        s.state.store.chat_transcripts_sent(chat_id).await.unwrap(),
        4
    );
}

#[tokio::test]
async fn transcript_requests_are_limited_per_address() {
    let mut c = defaults();
    c.limits.transcripts = Limit {
        per_address: 1,
        per_site: 0,
    };
    let s = setup(c).await;
    let (token, _) = start(&s.app, ip(1), "vk-1").await;
    let uri = format!("/chat/transcript?token={token}");
    let body = json!({ "email": "bela@example.com" });
    assert_eq!(
        post_json(&s.app, &uri, ip(1), body.clone()).await.status,
        StatusCode::OK
    );
    let a = post_json(&s.app, &uri, ip(1), body).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .starts_with("Too many transcript requests")
    );
}

const BOUNDARY: &str = "hotline-test-boundary";

fn part_head(name: &str) -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes()
}

fn multipart(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend(part_head(name));
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").into_bytes());
    body
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

async fn upload(app: &Router, token: &str, from: IpAddr, files: &[(&str, &[u8])]) -> Reply {
    send(
        app,
        request(
            "POST",
            &format!("/chat/files?token={token}"),
            from,
            &multipart_type(),
            Body::from(multipart(files)),
        ),
    )
    .await
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn text(bytes: usize) -> Vec<u8> {
    "Order 1234, line of text.\n"
        .bytes()
        .cycle()
        .take(bytes)
        .collect()
}

#[tokio::test]
async fn uploads_stream_to_disk_as_they_arrive() {
    let s = setup(defaults()).await;
    let (token, _) = start(&s.app, ip(1), "vk-1").await;
    let files_dir = s.dir.join("files").join("chat");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let req = request(
        "POST",
        &format!("/chat/files?token={token}"),
        ip(1),
        &multipart_type(),
        Body::from_stream(stream),
    );
    let app = s.app.clone();
    let response = tokio::spawn(async move { send(&app, req).await });
    let first = text(2 * 1024 * 1024);
    let mut head = part_head("notes.txt");
    head.extend_from_slice(&first);
    tx.send(Ok(head)).await.unwrap();
    // The first 2 MB are on disk (in the part file) while the rest hasn't been sent.
    let mut on_disk = 0;
    for _ in 0..200 {
        on_disk = files_in(&files_dir)
            .iter()
            .filter(|n| n.ends_with(".part"))
            .map(|n| std::fs::metadata(files_dir.join(n)).map_or(0, |m| m.len()))
            .sum::<u64>();
        if on_disk >= 2 * 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        on_disk >= 2 * 1024 * 1024,
        "{on_disk} bytes on disk mid-upload"
    );
    let mut rest = text(1024 * 1024);
    rest.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    tx.send(Ok(rest)).await.unwrap();
    drop(tx);
    let a = response.await.unwrap();
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let file = &a.json["files"][0];
    assert_eq!(file["type"], "text/plain");
    assert_eq!(file["size"], 3 * 1024 * 1024);
    let id = file["id"].as_str().unwrap();
    // The part became the file, whole.
    assert_eq!(files_in(&files_dir), [id.to_string()]);
    assert_eq!(
        std::fs::metadata(files_dir.join(id)).unwrap().len(),
        3 * 1024 * 1024
    );
}

#[tokio::test]
async fn uploads_are_refused_over_the_size_the_quota_and_the_rate() {
    let mut c = defaults();
    c.files_quota_mb = 1;
    c.limits.uploads = Limit {
        per_address: 3,
        per_site: 0,
    };
    let s = setup(c).await;
    let (token, _) = start(&s.app, ip(1), "vk-1").await;
    let files_dir = s.dir.join("files").join("chat");
    // Binary that isn't a picture or PDF: 415, nothing left behind.
    let binary = vec![0u8; 64 * 1024];
    let a = upload(&s.app, &token, ip(2), &[("x.bin", &binary)]).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.json);
    assert!(files_in(&files_dir).is_empty());

    // The chat's quota: 1 MB together.
    let part = text(600 * 1024);
    let a = upload(&s.app, &token, ip(1), &[("one.txt", &part)]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let a = upload(&s.app, &token, ip(1), &[("two.txt", &part)]).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.json);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .contains("at most 1 MB together"),
        "{}",
        a.json
    );
    assert_eq!(files_in(&files_dir).len(), 1);
    // A small one still fits.
    let a = upload(&s.app, &token, ip(1), &[("note.txt", b"hello")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);

    // The address's budget (3 a minute) is gone now: refused before the body is read.
    let a = upload(&s.app, &token, ip(1), &[("more.txt", b"hello")]).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.json);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .starts_with("Too many uploads")
    );
    assert!(a.header(header::RETRY_AFTER).is_some());
}

#[tokio::test]
async fn files_over_20_mb_are_refused_as_they_arrive() {
    let s = setup(defaults()).await;
    let (token, _) = start(&s.app, ip(1), "vk-1").await;
    let files_dir = s.dir.join("files").join("chat");
    let big = text(20 * 1024 * 1024 + 1);
    let a = upload(&s.app, &token, ip(1), &[("big.txt", &big)]).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.json);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .contains("larger than 20 MB")
    );
    assert!(
        files_in(&files_dir).is_empty(),
        "{:?}",
        files_in(&files_dir)
    );
}

#[tokio::test]
async fn files_never_sent_are_swept() {
    let s = setup(defaults()).await;
    let (token, chat_id) = start(&s.app, ip(1), "vk-1").await;
    let chat = s.state.store.chat(chat_id).await.unwrap().unwrap();
    let files_dir = s.dir.join("files").join("chat");
    let a = upload(
        &s.app,
        &token,
        ip(1),
        &[("kept.txt", b"sent with a message")],
    )
    .await;
    let kept = a.json["files"][0]["id"].as_str().unwrap().to_string();
    let a = upload(&s.app, &token, ip(1), &[("dropped.txt", b"never sent")]).await;
    let dropped = a.json["files"][0]["id"].as_str().unwrap().to_string();
    let send = json!({ "t": "send", "client_id": "c1", "text": "", "files": [kept] });
    let reply = super::visitor::handle(&s.state, &chat, ip(1), &send.to_string())
        .await
        .unwrap();
    assert_eq!(reply["t"], "ack", "{reply}");
    // A leftover part file of an upload cut off by a stop.
    std::fs::write(files_dir.join("0123.part"), b"half").unwrap();

    let now = unix_ms();
    super::sweep::sweep(&s.state, now + 30 * 60_000).await;
    assert_eq!(files_in(&files_dir).len(), 3, "nothing is an hour old yet");
    super::sweep::sweep(&s.state, now + 61 * 60_000).await;
    super::sweep::remove_stale_parts(&s.state, now + 61 * 60_000).await;
    assert_eq!(files_in(&files_dir), std::slice::from_ref(&kept));
    assert!(s.state.store.chat_file(&dropped).await.unwrap().is_none());
    assert!(s.state.store.chat_file(&kept).await.unwrap().is_some());
}

fn signed_form(visitor_key: &str, signed_key: &str, timestamp_s: i64) -> Value {
    let f = SignedVisitor {
        visitor_key: signed_key,
        timestamp_s,
        customer_id: "C-77",
        email: "kata@example.org",
        name: "Kata Signed",
    };
    json!({
        "site": "demo",
        "visitor_key": visitor_key,
        "name": "typed name",
        "fields": {
            "name": f.name, "email": f.email, "customer_id": f.customer_id,
            "visitor_key": signed_key, "timestamp": timestamp_s.to_string(),
        },
        "signature": sign_visitor(SECRET, &f),
    })
}

#[tokio::test]
async fn signed_fields_carry_their_time_and_visitor() {
    let s = setup(defaults()).await;
    let now_s = unix_ms() / 1000;
    // Fresh, for this visitor: verified.
    let a = post_json(
        &s.app,
        "/chat/start",
        ip(1),
        signed_form("vk-kata", "vk-kata", now_s),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let chat = s
        .state
        .store
        .chat(a.json["chat"]["id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    let visitor = s
        .state
        .store
        .visitor(chat.visitor_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(visitor.visitor_key, "vk-kata");
    assert_eq!(visitor.name.as_deref(), Some("Kata Signed"));
    assert_eq!(visitor.verified, ["name", "email", "customer_id"]);
    // Older than a day: refused.
    let old = signed_form("vk-kata", "vk-kata", now_s - 24 * 3600 - 60);
    let a = post_json(&s.app, "/chat/start", ip(2), old).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json["error"].as_str().unwrap().contains("expired"),
        "{}",
        a.json
    );
    // Kata's signature used by another visitor: refused.
    let foreign = signed_form("vk-mallory", "vk-kata", now_s);
    let a = post_json(&s.app, "/chat/start", ip(3), foreign).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .contains("another visitor"),
        "{}",
        a.json
    );
    // ...also when the fields are relabelled with the other visitor's key.
    let mut relabelled = signed_form("vk-mallory", "vk-kata", now_s);
    relabelled["fields"]["visitor_key"] = json!("vk-mallory");
    let a = post_json(&s.app, "/chat/start", ip(3), relabelled).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json["error"].as_str().unwrap().contains("does not match"),
        "{}",
        a.json
    );
    // The old form (no visitor key or time in it) is refused too.
    let mut old_format = signed_form("vk-kata", "vk-kata", now_s);
    let fields = old_format["fields"].as_object_mut().unwrap();
    fields.remove("visitor_key");
    fields.remove("timestamp");
    let a = post_json(&s.app, "/chat/start", ip(4), old_format).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.json);
}

#[test]
fn the_settings_are_checked() {
    assert_eq!(ChatConfig::default().validate(), Ok(()));
    for (c, setting) in [
        (
            ChatConfig {
                abandon_waiting_after_secs: 10,
                ..Default::default()
            },
            "abandon_waiting_after_secs",
        ),
        (
            ChatConfig {
                files_quota_mb: 0,
                ..Default::default()
            },
            "files_quota_mb",
        ),
        (
            ChatConfig {
                unsent_files_after_secs: 0,
                ..Default::default()
            },
            "unsent_files_after_secs",
        ),
        (
            ChatConfig {
                signature_max_age_secs: 0,
                ..Default::default()
            },
            "signature_max_age_secs",
        ),
    ] {
        assert!(c.validate().unwrap_err().contains(setting), "{setting}");
    }
    // The defaults the README and the shipped config state.
    let d = LimitsConfig::default();
    assert!(d.enabled);
    assert_eq!((d.start.per_address, d.start.per_site), (5, 300));
    assert_eq!((d.messages.per_address, d.messages.per_site), (30, 1200));
    assert_eq!(
        (d.page_views.per_address, d.page_views.per_site),
        (30, 1200)
    );
    assert_eq!((d.drafts.per_address, d.drafts.per_site), (240, 6000));
    assert_eq!((d.uploads.per_address, d.uploads.per_site), (10, 300));
    assert_eq!((d.transcripts.per_address, d.transcripts.per_site), (5, 60));
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let s = setup(defaults()).await;
    let proxy: IpAddr = "127.0.0.1".parse().unwrap();
    let trusted = crate::TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let app = s.app.clone().layer(axum::Extension(trusted));
    let from = |client: &str, key: &str| {
        let mut req = request(
            "POST",
            "/chat/start",
            proxy,
            "application/json",
            Body::from(start_form(key).to_string()),
        );
        req.headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
        req
    };
    // Six visitors behind the proxy: each has its own five a minute.
    for i in 0..6 {
        let a = send(&app, from(&format!("203.0.113.{i}"), &format!("vk-{i}"))).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    }
    // One of them starting more is limited as itself.
    let statuses: Vec<StatusCode> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(
                send(&app, from("203.0.113.0", &format!("vk-again-{i}")))
                    .await
                    .status,
            );
        }
        v
    };
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        4,
        "{statuses:?}"
    );
}

type VisitorWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A visitor socket of `token` on the server at `addr`, or the HTTP answer that refused it.
async fn visitor_socket(
    addr: SocketAddr,
    token: &str,
) -> Result<VisitorWs, (StatusCode, Option<String>, Value)> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/chat/ws?token={token}");
    match tokio_tungstenite::client_async(url, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let retry_after = res
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_string());
            let json = serde_json::from_slice(res.body().as_deref().unwrap_or_default())
                .unwrap_or(Value::Null);
            Err((
                StatusCode::from_u16(res.status().as_u16()).unwrap(),
                retry_after,
                json,
            ))
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

#[tokio::test]
async fn a_chat_has_at_most_five_visitor_sockets() {
    let s = setup(defaults()).await;
    let (token, chat_id) = start(&s.app, ip(1), "vk-1").await;
    let (other_token, _) = start(&s.app, ip(2), "vk-2").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::server::serve(
        listener,
        s.app.clone(),
        crate::server::HttpLimits::default(),
    ));
    let mut open = Vec::new();
    for _ in 0..super::MAX_VISITOR_SOCKETS_PER_CHAT {
        open.push(visitor_socket(addr, &token).await.unwrap());
    }
    assert_eq!(s.state.chat.visitor_sockets.open(chat_id), 5);
    // The sixth is refused before the upgrade, with a message.
    let Err((status, retry_after, json)) = visitor_socket(addr, &token).await else {
        panic!("a sixth socket of one chat was opened");
    };
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("5"));
    let message = json["error"].as_str().unwrap();
    assert!(message.contains("already open in 5 windows"), "{message}");
    // Another chat is not held up.
    let _other = visitor_socket(addr, &other_token).await.unwrap();
    // A closed socket gives its place back.
    let mut closing = open.pop().unwrap();
    closing.close(None).await.unwrap();
    drop(closing);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.state.chat.visitor_sockets.open(chat_id) > 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _again = visitor_socket(addr, &token).await.unwrap();
}

const HOOK_URL: &str = "http://127.0.0.1:9/hooks/chat";

/// A webhook for `chat.ended` whose receiver never answers: deliveries stay in the outbox.
fn chat_hook() -> WebhookConfig {
    testing::hook(HOOK_URL, webhook::CHAT_ENDED)
}

/// The `chat.ended` deliveries stored so far, oldest first: (URL, delivery).
async fn chat_ended_deliveries(store: &Store) -> Vec<(String, webhook::Delivery)> {
    testing::webhook_deliveries(store)
        .await
        .into_iter()
        .filter(|(_, event, _)| event == webhook::CHAT_ENDED)
        .map(|(to, _, d)| (to, d))
        .collect()
}

#[tokio::test]
async fn a_chat_the_visitor_ends_is_posted_once_as_chat_ended() {
    let s = setup_with_webhooks(defaults(), vec![chat_hook()]).await;
    let (_, chat_id) = start(&s.app, ip(1), "vk-hook").await;
    let chat = s.state.store.chat(chat_id).await.unwrap().unwrap();
    let send = json!({ "t": "send", "client_id": "c1", "text": "hello" }).to_string();
    let reply = super::visitor::handle(&s.state, &chat, ip(1), &send).await;
    assert_eq!(reply.unwrap()["t"], "ack");
    assert!(chat_ended_deliveries(&s.state.store).await.is_empty());

    let end = json!({ "t": "end" }).to_string();
    assert_eq!(
        super::visitor::handle(&s.state, &chat, ip(1), &end).await,
        None
    );
    // A second end (another tab) changes nothing and posts nothing.
    super::visitor::handle(&s.state, &chat, ip(1), &end).await;

    let ended = s.state.store.chat(chat_id).await.unwrap().unwrap();
    let deliveries = chat_ended_deliveries(&s.state.store).await;
    assert_eq!(deliveries.len(), 1, "one delivery per end");
    let (to, d) = &deliveries[0];
    assert_eq!(to, HOOK_URL);
    assert_eq!(d.event, "chat.ended");
    assert_eq!(
        d.data,
        json!({
            "id": chat_id,
            "site": "demo",
            "queue": chat.queue,
            "topic": chat.topic,
            "operator": null,
            "operators": [],
            "visitor_name": "Béla",
            "visitor_email": null,
            "started_at_ms": chat.created_at_ms,
            "accepted_at_ms": null,
            "ended_at_ms": ended.ended_at_ms.unwrap(),
            "ended_by": "visitor",
            "messages": 1,
        })
    );
}

#[tokio::test]
async fn an_abandoned_chat_is_posted_as_chat_ended_by_the_system() {
    let s = setup_with_webhooks(defaults(), vec![chat_hook()]).await;
    let (_, chat_id) = start(&s.app, ip(1), "vk-gone").await;
    let now = unix_ms();
    super::sweep::sweep(&s.state, now + 4 * 60_000).await;
    assert!(chat_ended_deliveries(&s.state.store).await.is_empty());
    super::sweep::sweep(&s.state, now + 6 * 60_000).await;
    super::sweep::sweep(&s.state, now + 7 * 60_000).await;
    let deliveries = chat_ended_deliveries(&s.state.store).await;
    assert_eq!(deliveries.len(), 1, "one delivery per end");
    let data = &deliveries[0].1.data;
    assert_eq!(data["id"], chat_id);
    assert_eq!(data["ended_by"], "system");
    assert_eq!(data["ended_at_ms"], now + 6 * 60_000);
    assert_eq!(data["visitor_name"], "Béla");
    assert_eq!(data["operator"], Value::Null);
    assert_eq!(data["messages"], 0);
}
