//! The console's and the pages' scripts and styles (`web/assets/`), served at
//! `/assets/{name}`. Every file the pages load is listed here once.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Served from the binary, so `cargo run` needs no files beside it.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "call-panel.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/call-panel.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    ),
    (
        "visual-operator.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/visual-operator.js"),
    ),
    (
        "visual-link.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/visual-link.js"),
    ),
    (
        "visual-customer.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/visual-customer.js"),
    ),
    (
        "tasks.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/tasks.js"),
    ),
    (
        "chat.css",
        "text/css; charset=utf-8",
        include_str!("../assets/chat.css"),
    ),
    (
        "chat-format.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/chat-format.js"),
    ),
    (
        "chat-visitor.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/chat-visitor.js"),
    ),
    (
        "chat-operator.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/chat-operator.js"),
    ),
    (
        "chat-operator.css",
        "text/css; charset=utf-8",
        include_str!("../assets/chat-operator.css"),
    ),
];

pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
