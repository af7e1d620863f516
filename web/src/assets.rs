//! The console's and the pages' scripts and styles (`web/assets/`), served at
//! `/assets/{name}`. Every file the pages load is listed here once.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A script or style sheet of `web/assets/`, by its file name.
macro_rules! js {
    ($name:literal) => {
        (
            $name,
            "text/javascript; charset=utf-8",
            include_str!(concat!("../assets/", $name)),
        )
    };
}
macro_rules! css {
    ($name:literal) => {
        (
            $name,
            "text/css; charset=utf-8",
            include_str!(concat!("../assets/", $name)),
        )
    };
}

/// Served from the binary, so `cargo run` needs no files beside it. The chat window's
/// parts (`chat-operator-*.js`) are modules that `chat-operator.js` imports.
const ASSETS: &[(&str, &str, &str)] = &[
    js!("board.js"),
    js!("call-panel.js"),
    js!("recordings.js"),
    js!("dom.js"),
    js!("phone.js"),
    js!("request.js"),
    css!("console.css"),
    js!("console.js"),
    js!("visual-operator.js"),
    js!("visual-link.js"),
    js!("visual-customer.js"),
    js!("tasks.js"),
    css!("chat.css"),
    js!("chat-format.js"),
    js!("chat-link.js"),
    js!("chat-visitor.js"),
    js!("chat-operator.js"),
    js!("chat-operator-base.js"),
    js!("chat-operator-link.js"),
    js!("chat-operator-tabs.js"),
    js!("chat-operator-offers.js"),
    js!("chat-operator-conversation.js"),
    js!("chat-operator-composer.js"),
    js!("chat-operator-details.js"),
    js!("chat-operator-dialogs.js"),
    js!("chat-operator-canned.js"),
    js!("chat-operator-transfer.js"),
    js!("chat-operator-wrapup.js"),
    css!("chat-operator.css"),
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

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A module a script imports (`from '/assets/x.js'`, `from './x.js'`, `import './x.js'`)
    /// that is not listed here would be a 404 in the browser.
    #[test]
    fn every_imported_module_is_served() {
        for (name, _, body) in ASSETS {
            for line in body.lines() {
                let line = line.trim_start();
                let quoted = line
                    .split_once(" from '")
                    .map(|(_, rest)| rest)
                    .or_else(|| line.strip_prefix("import '"));
                let Some(quoted) = quoted else { continue };
                let path = quoted.split('\'').next().unwrap_or_default();
                let file = path.trim_start_matches("/assets/").trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == file),
                    "{name} imports {path}, which is not served"
                );
            }
        }
    }
}
