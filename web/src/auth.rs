//! Who is asking: the session cookie, role checks and CSRF, as extractors.
//!
//! The session cookie is HttpOnly, SameSite=Lax and Secure when served over TLS. A
//! handler names what it needs: [`OperatorPage`], [`SupervisorPage`] or [`AdminPage`] (a
//! logged-in user with at least that role), wrapped in [`Csrf`] for a state-changing
//! request from a script (the session's token in `X-CSRF-Token`) or taken with its form by
//! [`CsrfForm`] (the token in the form's `_csrf` field). A request whose Origin is another
//! site is refused as well.
//!
//! Refusals: not logged in, the login page; logged in without the role, a 403 page; a
//! missing or wrong token, a 403 page.

use std::sync::Arc;

use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hotline_core::users::{Role, WebSession};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::WebError;
use crate::state::WebState;
use crate::unix_ms;

pub(crate) const SESSION_COOKIE: &str = "hl_session";

/// The value of the request's cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` for one of the console's cookies (HttpOnly, SameSite=Lax, Secure behind
/// TLS).
pub(crate) fn set_cookie(state: &WebState, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The logged-in session of this request, if any.
pub(crate) async fn session(state: &WebState, headers: &HeaderMap) -> Option<WebSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match state.store.web_session(token, unix_ms()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reading a web session: {e}");
            None
        }
    }
}

/// The session, when it may see a page needing `role`: otherwise the login page (not
/// logged in) or a 403 page (logged in without the role).
async fn require(
    state: &WebState,
    headers: &HeaderMap,
    role: Role,
) -> Result<WebSession, Response> {
    let Some(s) = session(state, headers).await else {
        return Err(Redirect::to("/login").into_response());
    };
    if !s.user.role.allows(role) {
        return Err(WebError::page(
            StatusCode::FORBIDDEN,
            format!("This page is for the {} role.", role.as_str()),
        )
        .into_response());
    }
    Ok(s)
}

/// Compares in constant time (tokens are secrets).
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A state-changing request must carry the session's CSRF token (`given` from a form
/// field, else the `X-CSRF-Token` header) and, when the browser says where it comes from,
/// come from this site.
fn check_csrf(s: &WebSession, headers: &HeaderMap, given: Option<&str>) -> Result<(), WebError> {
    let given = given.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    let token_ok = given.is_some_and(|g| same_text(g, &s.csrf_token));
    if token_ok && same_origin(headers) {
        Ok(())
    } else {
        Err(WebError::page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Reload the page and try again.",
        ))
    }
}

/// No Origin header, or one naming this host (sockets and the login form check this).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// A logged-in user extractor: its session.
pub trait LoggedIn {
    fn session(&self) -> &WebSession;
}

/// Extractors for handlers: the session, when it may use a route needing that role;
/// otherwise the login page (not logged in) or a 403 page (logged in, lacking the role).
macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        pub struct $name(pub WebSession);

        impl FromRequestParts<Arc<WebState>> for $name {
            type Rejection = Response;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &Arc<WebState>,
            ) -> Result<Self, Self::Rejection> {
                require(state, &parts.headers, $role).await.map($name)
            }
        }

        impl LoggedIn for $name {
            fn session(&self) -> &WebSession {
                &self.0
            }
        }
    };
}

role_extractor!(
    /// Any logged-in user (operator is the least role).
    OperatorPage,
    Role::Operator
);
role_extractor!(
    /// A supervisor or an admin.
    SupervisorPage,
    Role::Supervisor
);
role_extractor!(
    /// An admin.
    AdminPage,
    Role::Admin
);

/// `A` on a state-changing request from a script: the session's CSRF token in the
/// `X-CSRF-Token` header, and from this site. Checked before the body is read.
pub struct Csrf<A>(pub A);

impl<A> FromRequestParts<Arc<WebState>> for Csrf<A>
where
    A: FromRequestParts<Arc<WebState>, Rejection = Response> + LoggedIn + Send,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Self, Self::Rejection> {
        let who = A::from_request_parts(parts, state).await?;
        check_csrf(who.session(), &parts.headers, None).map_err(IntoResponse::into_response)?;
        Ok(Csrf(who))
    }
}

/// The form of a button that posts nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// `A` and a posted form `T`: the form carries the session's CSRF token in its `_csrf`
/// field and comes from this site. A form that does not parse is refused as [`Form`]
/// refuses it.
pub struct CsrfForm<A, T>(pub A, pub T);

impl<A, T> FromRequest<Arc<WebState>> for CsrfForm<A, T>
where
    A: FromRequestParts<Arc<WebState>, Rejection = Response> + LoggedIn + Send,
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<WebState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let who = A::from_request_parts(&mut parts, state).await?;
        let (method, uri, headers) = (
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
        );
        // Read once (within the route's body limit), then parsed as the form and for its
        // token: the form types need no `_csrf` field of their own.
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let again = || {
            let mut r = Request::new(Body::from(bytes.clone()));
            *r.method_mut() = method.clone();
            *r.uri_mut() = uri.clone();
            *r.headers_mut() = headers.clone();
            r
        };
        let Form(form) = Form::<T>::from_request(again(), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Form(field) = Form::<CsrfField>::from_request(again(), state)
            .await
            .map_err(IntoResponse::into_response)?;
        check_csrf(who.session(), &headers, Some(&field.csrf))
            .map_err(IntoResponse::into_response)?;
        Ok(CsrfForm(who, form))
    }
}
