//! The API as a script sees it: the router on an in-memory SQLite store and a running
//! queue task, requests through `oneshot`.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use crate::context::{Calls, WallClock};

const TOKEN: &str = "test-token-123";

async fn app() -> axum::Router {
    app_on(calls().await)
}

fn app_on(calls: Arc<Calls>) -> axum::Router {
    super::router(calls, None, Some(TOKEN.into()), "hotline".into())
}

async fn calls() -> Arc<Calls> {
    let store = hotline_core::store::Store::connect("sqlite::memory:")
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dir = std::env::temp_dir().join(format!("hotline-api-test-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let cdr = hotline_core::cdr::CdrLog::start(
        store.clone(),
        hotline_core::cdr::CdrOptions::new(&dir, "test"),
    );
    let (sip, _sip_inputs) = crate::sip_driver::channel(None);
    let (acd, acd_inputs) = crate::acd_driver::channel();
    tokio::spawn(crate::acd_driver::run(acd_inputs));
    let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows");
    let flows = crate::flows::load(&flows).unwrap();
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let notifier =
        hotline_core::notify::Notifier::start(store.clone(), Default::default()).unwrap();
    Arc::new(Calls {
        store,
        cdr,
        flows: RwLock::new(Arc::new(flows)),
        sip,
        rtp_ports: std::sync::Arc::new(crate::net::RtpPorts::new(loopback, (40000, 40100))),
        local: crate::net::LocalAddress::new(None, loopback),
        rtp_timeout: std::time::Duration::from_secs(30),
        relay: None,
        notifier,
        shutdown,
        active: Default::default(),
        acd,
        clock: WallClock::real(),
        trunk: None,
        connected: Default::default(),
        dialogs: Default::default(),
        live: Default::default(),
        flows_changed: Default::default(),
        operators_changed: Default::default(),
        recordings: crate::config::Recordings {
            dir: std::env::temp_dir(),
            stereo: false,
            retention_days: 0,
        },
    })
}

struct Reply {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts an RFC 9457 body with this status, and gives its detail.
    fn problem(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.body
        );
        let p = self.json();
        assert_eq!(p["status"], status.as_u16(), "{p}");
        assert_eq!(p["type"], "about:blank", "{p}");
        assert_eq!(p["title"], status.canonical_reason().unwrap(), "{p}");
        p["detail"].as_str().unwrap().to_string()
    }
}

async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        content_type,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(app: &axum::Router, path: &str) -> Reply {
    send_as(app, Method::GET, path, TOKEN).await
}

/// A request without a body, with `token`.
async fn send_as(app: &axum::Router, method: Method, path: &str, token: &str) -> Reply {
    send(app, method, path, Some(token), None, "").await
}

/// A JSON body with `token`: the shape of the API's writes.
async fn send_json(
    app: &axum::Router,
    method: Method,
    path: &str,
    token: &str,
    body: &str,
) -> Reply {
    send(
        app,
        method,
        path,
        Some(token),
        Some("application/json"),
        body,
    )
    .await
}

#[tokio::test]
async fn v1_paths_and_the_old_aliases_answer_alike() {
    let app = app().await;
    for path in [
        "/api/v1/queues",
        "/api/queues",
        "/api/v1/operators",
        "/api/operators",
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert_eq!(r.content_type, "application/json", "{path}");
        assert_eq!(r.json(), Value::Array(vec![]), "{path}");
    }
}

#[tokio::test]
async fn a_form_encoded_body_is_a_415_problem_naming_the_header() {
    let app = app().await;
    // What `curl -d '{"state":"online"}'` sends without -H 'Content-Type: …'.
    let r = send(
        &app,
        Method::PUT,
        "/api/v1/operators/anna/state",
        Some(TOKEN),
        Some("application/x-www-form-urlencoded"),
        r#"{"state":"online"}"#,
    )
    .await;
    r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // As README.md prints it.
    assert_eq!(
        r.body,
        r#"{"detail":"send the body as JSON with the header Content-Type: application/json (curl: -H 'Content-Type: application/json')","status":415,"title":"Unsupported Media Type","type":"about:blank"}"#
    );
}

#[tokio::test]
async fn bad_json_is_a_400_problem_with_the_parsers_message() {
    let app = app().await;
    let r = send_json(
        &app,
        Method::PUT,
        "/api/v1/operators/anna/state",
        TOKEN,
        r#"{"state": online}"#,
    )
    .await;
    let detail = r.problem(StatusCode::BAD_REQUEST);
    assert!(detail.contains("line 1 column"), "{detail}");

    // Valid JSON without a required field: 422 naming it.
    let r = send_json(
        &app,
        Method::PUT,
        "/api/v1/operators/anna/state",
        TOKEN,
        r#"{"stat": "online"}"#,
    )
    .await;
    let detail = r.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("missing field `state`"), "{detail}");
}

#[tokio::test]
async fn a_path_that_is_not_utf8_is_a_400_problem() {
    let app = app().await;
    let r = get_with_method(&app, Method::PUT, "/api/v1/operators/%FF/state").await;
    let detail = r.problem(StatusCode::BAD_REQUEST);
    assert!(detail.to_lowercase().contains("utf-8"), "{detail}");
}

async fn get_with_method(app: &axum::Router, method: Method, path: &str) -> Reply {
    send_json(app, method, path, TOKEN, r#"{"state":"online"}"#).await
}

#[tokio::test]
async fn unknown_api_paths_are_404_problems() {
    let app = app().await;
    for path in [
        "/api/v1/nothing",
        "/api/nothing",
        "/api",
        "/api/v1",
        "/api/v1/operators/anna/mood",
    ] {
        let detail = get(&app, path).await.problem(StatusCode::NOT_FOUND);
        assert!(detail.contains(path), "{path}: {detail}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = app().await;
    let r = send_as(&app, Method::DELETE, "/api/v1/queues", TOKEN).await;
    r.problem(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers[header::ALLOW], "GET");
    let r = send_as(&app, Method::GET, "/api/operators/anna/state", TOKEN).await;
    r.problem(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers[header::ALLOW], "PUT");
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_a_401_problem_with_a_bearer_challenge() {
    let app = app().await;
    for token in [None, Some("wrong"), Some("test-token-12")] {
        let r = send(&app, Method::GET, "/api/v1/operators", token, None, "").await;
        r.problem(StatusCode::UNAUTHORIZED);
        let challenge = r.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    // The token is checked before the body is read: no token, bad body, still 401.
    let r = send(
        &app,
        Method::PUT,
        "/api/v1/operators/anna/state",
        None,
        Some("text/plain"),
        "x",
    )
    .await;
    r.problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn app_errors_are_problems_too() {
    let app = app().await;
    let r = get_with_method(&app, Method::PUT, "/api/v1/operators/nobody/state").await;
    let detail = r.problem(StatusCode::NOT_FOUND);
    assert!(detail.contains("nobody"), "{detail}");

    let r = send_json(
        &app,
        Method::PUT,
        "/api/v1/operators/nobody/state",
        TOKEN,
        r#"{"state":"busy"}"#,
    )
    .await;
    let detail = r.problem(StatusCode::BAD_REQUEST);
    assert!(detail.contains("unknown state \"busy\""), "{detail}");

    // No [trunk]: click-to-call can't place the customer's leg.
    let r = send_json(
        &app,
        Method::POST,
        "/api/v1/calls",
        TOKEN,
        r#"{"operator":"anna","to":"+36301234567"}"#,
    )
    .await;
    r.problem(StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn the_api_is_off_without_a_token_setting() {
    let app = super::router(calls().await, None, None, "hotline".into());
    let detail = get(&app, "/api/v1/queues")
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(detail.contains("api.token"), "{detail}");
}

/// The status, and whether it is the router's "no API route" 404. Only the start of
/// the body is read: the live figures' body never ends.
async fn status_of(app: &axum::Router, method: &Method, path: &str) -> (StatusCode, bool) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    if status != StatusCode::NOT_FOUND {
        return (status, false);
    }
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        status,
        String::from_utf8_lossy(&body).contains("no API route"),
    )
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_only_what_the_router_serves() {
    let app = app().await;
    // No token needed.
    let r = send(&app, Method::GET, "/api/v1/openapi.json", None, None, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();

    let mut listed: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String)> = [
        ("POST", "/calls"),
        ("GET", "/calls"),
        ("GET", "/chats"),
        ("GET", "/chats/{id}"),
        ("GET", "/queues"),
        ("GET", "/queues/live"),
        ("GET", "/operators"),
        ("POST", "/operators"),
        ("PUT", "/operators/{name}/state"),
        ("GET", "/tokens"),
        ("POST", "/tokens"),
        ("DELETE", "/tokens/{name}"),
    ]
    .iter()
    .flat_map(|(m, p)| {
        [
            (m.to_string(), format!("/api/v1{p}")),
            (m.to_string(), format!("/api{p}")),
        ]
    })
    .chain([("GET".to_string(), "/api/v1/openapi.json".to_string())])
    .collect();
    expected.sort();
    assert_eq!(listed, expected);

    // The old paths are marked deprecated, the v1 ones are not.
    for (method, path) in &listed {
        let op = &paths[path][method.to_lowercase()];
        let legacy = !path.starts_with("/api/v1/");
        assert_eq!(
            op["deprecated"].as_bool().unwrap_or(false),
            legacy,
            "{method} {path}"
        );
        assert!(
            op["responses"].as_object().unwrap().len() >= 2,
            "{method} {path}"
        );
    }

    // The router serves exactly the documented methods of each documented path: every
    // other method is its 405, every documented one is not a 404 or 405.
    let all = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    for (path, item) in paths {
        // A chat id that is not a number: a 400, neither 404 nor 405.
        let concrete = path.replace("{name}", "anna").replace("{id}", "x");
        for method in &all {
            let documented = item.get(method.as_str().to_lowercase()).is_some();
            let (status, unknown) = status_of(&app, method, &concrete).await;
            if documented {
                // A 404 from the handler (no such token) is fine; the router's is not.
                assert!(
                    !unknown && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {concrete}: {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {concrete}"
                );
            }
        }
    }
}

/// A finished call that started at `started_at_ms`, waited in `queue`, taken by `operator`.
async fn add_call(calls: &Calls, n: i64, started_at_ms: i64, queue: &str, operator: &str) {
    use hotline_core::cdr::{CallEnd, CallStart, Service};
    use hotline_core::testing::{call_end, call_start};
    // Through the CDR writer, as calls are written: it closes open rows at its start.
    let call = calls
        .cdr
        .start_call(CallStart {
            caller: format!("+36100{n}"),
            flow: Some("main".into()),
            ..call_start(&format!("call-{n}"), started_at_ms)
        })
        .await;
    calls
        .cdr
        .end_call(
            call,
            CallEnd {
                digits: "2".into(),
                path: vec!["menu".into(), "queue".into()],
                variables: r#"{"lang":"en"}"#.into(),
                operator: Some(operator.into()),
                service: Service {
                    queue: Some(queue.into()),
                    wait_ms: Some(7000),
                    ..Service::default()
                },
                ..call_end(started_at_ms + 61_000)
            },
        )
        .await;
    calls.cdr.flush().await;
}

fn call_ids(r: &Reply) -> Vec<String> {
    r.json()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn call_records_filter_and_page_with_a_next_cursor() {
    let calls = calls().await;
    // 2026-12-01T10:00:00Z, then a call a day.
    let day0 = 1_796_119_200_000;
    add_call(&calls, 1, day0, "sales", "anna").await;
    add_call(&calls, 2, day0 + 86_400_000, "support", "anna").await;
    add_call(&calls, 3, day0 + 2 * 86_400_000, "sales", "bela").await;
    // Call 1 was recorded: its record links the recording.
    let recording = calls
        .store
        .insert_recording(&hotline_core::recordings::NewRecording {
            call_id: "call-1",
            caller: "+36301234567",
            operator: Some("anna"),
            queue: Some("sales"),
            path: "r.wav",
            layout: "mono",
            started_by: None,
            started_at_ms: day0 + 5000,
        })
        .await
        .unwrap();
    let app = app_on(calls);

    let r = get(&app, "/api/v1/calls").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(call_ids(&r), ["call-3", "call-2", "call-1"]);
    assert_eq!(r.json()["next"], Value::Null);
    assert_eq!(
        r.json()["calls"][2]["recordings"],
        serde_json::json!([{ "id": recording, "status": "recording", "duration_ms": null,
            "audio": format!("/supervisor/recordings/{recording}/audio") }])
    );
    assert_eq!(r.json()["calls"][0]["recordings"], serde_json::json!([]));
    // The fields of `hotline calls`, as JSON.
    let first = &r.json()["calls"][2];
    let header: Vec<&str> = hotline_core::cdr::CSV_HEADER.split(',').collect();
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut want = header.clone();
    want.push("recordings");
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(first["queue"], "sales", "{first}");
    assert_eq!(first["operator"], "anna");
    assert_eq!(first["start"], "2026-12-01T10:00:00.000Z");
    assert_eq!(first["duration"], 61);
    assert_eq!(first["wait_ms"], 7000);
    assert_eq!(first["variables"]["lang"], "en");

    // Two pages of two and one.
    let r = get(&app, "/api/v1/calls?limit=2").await;
    assert_eq!(call_ids(&r), ["call-3", "call-2"]);
    let next = r.json()["next"].as_str().unwrap().to_string();
    let r = get(&app, &format!("/api/v1/calls?limit=2&cursor={next}")).await;
    assert_eq!(call_ids(&r), ["call-1"]);
    assert_eq!(r.json()["next"], Value::Null);

    let r = get(&app, "/api/v1/calls?queue=sales").await;
    assert_eq!(call_ids(&r), ["call-3", "call-1"]);
    let r = get(&app, "/api/v1/calls?operator=anna&queue=support").await;
    assert_eq!(call_ids(&r), ["call-2"]);
    let r = get(
        &app,
        "/api/v1/calls?since=2026-12-02&until=2026-12-03T00:00:00Z",
    )
    .await;
    assert_eq!(call_ids(&r), ["call-2"]);
    // The deprecated alias answers alike.
    let r = get(&app, "/api/calls?operator=bela").await;
    assert_eq!(call_ids(&r), ["call-3"]);

    // Bad parameters are 400 problems that say what to send.
    let detail = get(&app, "/api/v1/calls?since=yesterday")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(
        detail.contains("since") && detail.contains("RFC 3339"),
        "{detail}"
    );
    let detail = get(&app, "/api/v1/calls?limit=0")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(detail.contains("1-1000"), "{detail}");
    let detail = get(&app, "/api/v1/calls?limit=many")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(detail.contains("limit"), "{detail}");
    let detail = get(&app, "/api/v1/calls?cursor=abc")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(detail.contains("cursor"), "{detail}");
    // And the token is still needed.
    send(&app, Method::GET, "/api/v1/calls", None, None, "")
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn chats_list_by_queue_and_state_and_one_chat_has_its_messages() {
    use hotline_core::chat::{EventKind, NewEvent, Sender};
    let calls = calls().await;
    let store = &calls.store;
    let ids = hotline_core::testing::chats_in_queues(
        store,
        1_796_119_200_000,
        86_400_000,
        &["sales", "support", "sales"],
    )
    .await
    .unwrap();
    store
        .add_chat_event(
            ids[0],
            &NewEvent::new(EventKind::Message, Sender::Visitor, "Hello, my order?"),
            1_796_119_200_000 + 86_400_000 + 1000,
        )
        .await
        .unwrap();
    let app = app_on(calls.clone());

    let topics = |r: &Reply| -> Vec<String> {
        r.json()["chats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["topic"].as_str().unwrap().to_string())
            .collect()
    };
    let r = get(&app, "/api/v1/chats").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(topics(&r), ["topic 3", "topic 2", "topic 1"]);
    assert_eq!(r.json()["chats"][0]["state"], "waiting");
    let r = get(&app, "/api/v1/chats?queue=sales&state=waiting&limit=1").await;
    assert_eq!(topics(&r), ["topic 3"]);
    let next = r.json()["next"].as_str().unwrap().to_string();
    let r = get(
        &app,
        &format!("/api/v1/chats?queue=sales&state=waiting&limit=1&cursor={next}"),
    )
    .await;
    assert_eq!(topics(&r), ["topic 1"]);
    assert_eq!(r.json()["next"], Value::Null);
    let r = get(&app, "/api/v1/chats?state=ended").await;
    assert_eq!(topics(&r), Vec::<String>::new());
    let r = get(&app, "/api/v1/chats?since=2026-12-03&until=2026-12-04").await;
    assert_eq!(topics(&r), ["topic 2"]);
    let detail = get(&app, "/api/v1/chats?state=closed")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(
        detail.contains("waiting, offered, active or ended"),
        "{detail}"
    );

    let r = get(&app, &format!("/api/v1/chats/{}", ids[0])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = r.json();
    assert_eq!(body["chat"]["topic"], "topic 1");
    let messages = body["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m["body"] == "Hello, my order?" && m["from"] == "visitor"),
        "{body}"
    );
    let detail = get(&app, "/api/v1/chats/999999")
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(detail.contains("999999"), "{detail}");
    get(&app, "/api/v1/chats/abc")
        .await
        .problem(StatusCode::BAD_REQUEST);
}

async fn add_user(
    calls: &Calls,
    name: &str,
    role: hotline_core::users::Role,
    operator: Option<&str>,
) {
    calls
        .store
        .add_user(&hotline_core::users::NewUser {
            name,
            display_name: name,
            role,
            password: "a-long-password",
            operator,
            now_ms: 1,
        })
        .await
        .unwrap();
}

/// Makes a token for `user` with the configured token; the token.
async fn make_token(app: &axum::Router, name: &str, user: &str) -> String {
    let r = send_json(
        app,
        Method::POST,
        "/api/v1/tokens",
        TOKEN,
        &format!(r#"{{"name":"{name}","user":"{user}"}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["owner"], user);
    r.json()["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn per_user_tokens_act_with_their_users_role() {
    use hotline_core::users::Role;
    let calls = calls().await;
    add_user(&calls, "root", Role::Admin, None).await;
    add_user(&calls, "sam", Role::Supervisor, None).await;
    add_user(&calls, "anna", Role::Operator, Some("anna")).await;
    let app = app_on(calls);
    let admin = make_token(&app, "admin-script", "root").await;
    let supervisor = make_token(&app, "wallboard", "sam").await;
    let operator = make_token(&app, "anna-phone", "anna").await;
    assert!(admin.starts_with("hlt_") && admin.len() == 68, "{admin}");

    let status = |token: String, method: Method, path: &'static str, body: &'static str| {
        let app = app.clone();
        async move { send_json(&app, method, path, &token, body).await }
    };
    let state = r#"{"state":"online"}"#;

    // The supervisor reads, and only reads.
    for path in [
        "/api/v1/queues",
        "/api/v1/operators",
        "/api/v1/calls",
        "/api/chats",
    ] {
        let r = status(supervisor.clone(), Method::GET, path, "").await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    let detail = status(
        supervisor.clone(),
        Method::PUT,
        "/api/v1/operators/anna/state",
        state,
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    assert!(detail.contains("supervisors' tokens read"), "{detail}");
    status(supervisor.clone(), Method::GET, "/api/v1/tokens", "")
        .await
        .problem(StatusCode::FORBIDDEN);

    // The operator sets their own state (the queue task doesn't know anna: 404), no one
    // else's, and reads nothing.
    let r = status(
        operator.clone(),
        Method::PUT,
        "/api/v1/operators/anna/state",
        state,
    )
    .await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    status(
        operator.clone(),
        Method::PUT,
        "/api/operators/bela/state",
        state,
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    status(operator.clone(), Method::GET, "/api/v1/queues", "")
        .await
        .problem(StatusCode::FORBIDDEN);

    // The admin lists the tokens (never the tokens themselves) and revokes one.
    let r = status(admin.clone(), Method::GET, "/api/v1/tokens", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = r.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin-script", "anna-phone", "wallboard"]);
    assert_eq!(listed[2]["owner"], "sam");
    assert!(listed[2]["last_used_at_ms"].is_i64(), "{listed}");
    assert!(!r.body.contains(&supervisor), "a token is shown only once");
    let r = status(
        admin.clone(),
        Method::DELETE,
        "/api/v1/tokens/wallboard",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    status(supervisor.clone(), Method::GET, "/api/v1/queues", "")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    status(
        admin.clone(),
        Method::DELETE,
        "/api/v1/tokens/wallboard",
        "",
    )
    .await
    .problem(StatusCode::NOT_FOUND);

    // Token errors are problems too.
    let r = send_json(
        &app,
        Method::POST,
        "/api/v1/tokens",
        &admin,
        r#"{"name":"anna-phone","user":"anna"}"#,
    )
    .await;
    r.problem(StatusCode::CONFLICT);
    let r = send_json(
        &app,
        Method::POST,
        "/api/v1/tokens",
        &admin,
        r#"{"name":"x","user":"nobody"}"#,
    )
    .await;
    assert!(r.problem(StatusCode::BAD_REQUEST).contains("nobody"));
}

#[tokio::test]
async fn per_user_tokens_work_without_the_configured_token() {
    let calls = calls().await;
    add_user(&calls, "sam", hotline_core::users::Role::Supervisor, None).await;
    let token = format!("hlt_{}", "0".repeat(64));
    let now = calls.clock.now().timestamp_millis();
    let made = calls
        .store
        .add_api_token("wallboard", "sam", now)
        .await
        .unwrap();
    let app = super::router(calls, None, None, "hotline".into());
    let r = send_as(&app, Method::GET, "/api/v1/queues", &made).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    send_as(&app, Method::GET, "/api/v1/queues", &token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
}
