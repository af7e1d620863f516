//! Every API error as RFC 9457 problem details (`application/problem+json`), including
//! axum's own extractor rejections, which would otherwise be plain text.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub const CONTENT_TYPE_PROBLEM: &str = "application/problem+json";

/// An error response: the status, and a detail a person can act on.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    /// 401 with the challenge RFC 6750 asks for.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::UNAUTHORIZED, detail);
        p.headers.push((
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="hotline""#),
        ));
        p
    }

    /// 405 naming the methods the path takes.
    pub fn method_not_allowed(allow: &str) -> Problem {
        let mut p = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("this path takes {allow}"),
        );
        if let Ok(v) = HeaderValue::from_str(allow) {
            p.headers.push((ALLOW, v));
        }
        p
    }

    pub fn not_found_path(path: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!("no API route {path}: see /api/v1/openapi.json"),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // "about:blank": the title is the status's own phrase (RFC 9457, section 4.2.1).
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PROBLEM));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Problem {
        let detail = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON with the header Content-Type: application/json \
                 (curl: -H 'Content-Type: application/json')"
                    .to_string()
            }
            // The parser's own message: what is wrong, at which line and column.
            _ => r.body_text(),
        };
        Problem::new(r.status(), detail)
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Problem {
        Problem::new(r.status(), r.body_text())
    }
}

/// `Json` whose rejection is a [`Problem`].
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// `Path` whose rejection is a [`Problem`].
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Problem {
        Problem::new(r.status(), r.body_text())
    }
}

/// `Query` whose rejection is a [`Problem`].
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}
