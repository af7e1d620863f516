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
    super::router(calls().await, None, Some(TOKEN.into()), "hotline".into())
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
    let (sip, _sip_inputs) = crate::sip_driver::channel();
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
        rtp_ports: crate::net::RtpPorts::new(loopback, (40000, 40100)),
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
    send(app, Method::GET, path, Some(TOKEN), None, "").await
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
    let r = send(
        &app,
        Method::PUT,
        "/api/v1/operators/anna/state",
        Some(TOKEN),
        Some("application/json"),
        r#"{"state": online}"#,
    )
    .await;
    let detail = r.problem(StatusCode::BAD_REQUEST);
    assert!(detail.contains("line 1 column"), "{detail}");

    // Valid JSON without a required field: 422 naming it.
    let r = send(
        &app,
        Method::PUT,
        "/api/v1/operators/anna/state",
        Some(TOKEN),
        Some("application/json"),
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
    send(
        app,
        method,
        path,
        Some(TOKEN),
        Some("application/json"),
        r#"{"state":"online"}"#,
    )
    .await
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
    let r = send(
        &app,
        Method::DELETE,
        "/api/v1/queues",
        Some(TOKEN),
        None,
        "",
    )
    .await;
    r.problem(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers[header::ALLOW], "GET");
    let r = send(
        &app,
        Method::GET,
        "/api/operators/anna/state",
        Some(TOKEN),
        None,
        "",
    )
    .await;
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

    let r = send(
        &app,
        Method::PUT,
        "/api/v1/operators/nobody/state",
        Some(TOKEN),
        Some("application/json"),
        r#"{"state":"busy"}"#,
    )
    .await;
    let detail = r.problem(StatusCode::BAD_REQUEST);
    assert!(detail.contains("unknown state \"busy\""), "{detail}");

    // No [trunk]: click-to-call can't place the customer's leg.
    let r = send(
        &app,
        Method::POST,
        "/api/v1/calls",
        Some(TOKEN),
        Some("application/json"),
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

/// The status alone: the live figures' body never ends.
async fn status_of(app: &axum::Router, method: &Method, path: &str) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status()
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
        ("GET", "/queues"),
        ("GET", "/queues/live"),
        ("GET", "/operators"),
        ("POST", "/operators"),
        ("PUT", "/operators/{name}/state"),
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
        let concrete = path.replace("{name}", "anna");
        for method in &all {
            let documented = item.get(method.as_str().to_lowercase()).is_some();
            let status = status_of(&app, method, &concrete).await;
            if documented {
                assert!(
                    status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
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
