//! The one refusal type of the web app: a status and a message, answered as the request
//! expects it: the console's error page for pages and forms, `{"error": …}` for scripts.
//!
//! A store failure is logged here with what was being done; the user only reads that the
//! database failed.

use std::borrow::Cow;
use std::fmt;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What the user reads when the store fails; the details are in the log.
pub const DATABASE_FAILED: &str = "The database failed.";

/// How a refusal is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// The console's error page (HTML).
    Page,
    /// `{"error": "…"}`, for the pages' scripts.
    Json,
}

/// A request refused or failed, with the status and the message its user sees.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    pub shown: Shown,
}

impl WebError {
    /// An error page.
    pub fn page(status: StatusCode, message: impl Into<Cow<'static, str>>) -> WebError {
        WebError {
            status,
            message: message.into(),
            shown: Shown::Page,
        }
    }

    /// A JSON refusal (`{"error": …}`).
    pub fn json(status: StatusCode, message: impl Into<Cow<'static, str>>) -> WebError {
        WebError {
            status,
            message: message.into(),
            shown: Shown::Json,
        }
    }

    /// The store failed while `doing`: logged, and a 503 page that says only that.
    pub fn database(doing: &str, e: impl fmt::Display) -> WebError {
        tracing::error!("{doing}: {e}");
        WebError::page(StatusCode::SERVICE_UNAVAILABLE, DATABASE_FAILED)
    }

    /// [`WebError::database`] as JSON.
    pub fn database_json(doing: &str, e: impl fmt::Display) -> WebError {
        WebError::database(doing, e).as_json()
    }

    /// The same refusal as JSON.
    pub fn as_json(mut self) -> WebError {
        self.shown = Shown::Json;
        self
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for WebError {}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self.shown {
            Shown::Page => {
                let mut r = crate::pages::render(
                    "error.html",
                    minijinja::context! {
                        status => self.status.as_u16(),
                        message => self.message.as_ref(),
                    },
                );
                *r.status_mut() = self.status;
                r
            }
            Shown::Json => (
                self.status,
                Json(serde_json::json!({ "error": self.message })),
            )
                .into_response(),
        }
    }
}
