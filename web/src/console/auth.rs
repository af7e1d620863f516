//! Login, logout, the session cookie, role checks and CSRF.
//!
//! The session cookie is HttpOnly, SameSite=Lax and Secure when served over TLS. Forms
//! carry the session's CSRF token (`_csrf`), scripts send it as `X-CSRF-Token`; a request
//! whose Origin is another site is refused as well. The login form, which has no session
//! yet, uses a double-submit cookie.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hotline_core::users::{LoginError, Role, WebSession, random_token};
use serde::Deserialize;

use super::Console;

const SESSION_COOKIE: &str = "hl_session";
const LOGIN_COOKIE: &str = "hl_login";
/// Failed logins from one address within `IP_WINDOW_MS` before it must wait.
const IP_MAX_FAILURES: u32 = 20;
const IP_WINDOW_MS: i64 = 10 * 60 * 1000;

pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The client's address when the server was started with connect info.
pub(super) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(console: &Console, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The logged-in session of this request, if any.
pub(super) async fn session(console: &Console, headers: &HeaderMap) -> Option<WebSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match console.store.web_session(token, unix_ms()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reading a web session: {e}");
            None
        }
    }
}

/// The session, when it may see a page needing `role`: otherwise the login page (not
/// logged in) or a 403 page (logged in without the role).
pub(super) async fn require(
    console: &Console,
    headers: &HeaderMap,
    role: Role,
) -> Result<WebSession, Response> {
    let Some(s) = session(console, headers).await else {
        return Err(Redirect::to("/login").into_response());
    };
    if !s.user.role.allows(role) {
        return Err(console.error_page(
            StatusCode::FORBIDDEN,
            &format!("This page is for the {} role.", role.as_str()),
        ));
    }
    Ok(s)
}

fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A state-changing request must carry the session's CSRF token and, when the browser
/// says where it comes from, come from this site.
pub(super) fn check_csrf(
    console: &Console,
    s: &WebSession,
    headers: &HeaderMap,
    given: Option<&str>,
) -> Result<(), Response> {
    let given = given.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    let token_ok = given.is_some_and(|g| same_text(g, &s.csrf_token));
    if token_ok && same_origin(headers) {
        Ok(())
    } else {
        Err(console.error_page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Reload the page and try again.",
        ))
    }
}

pub(super) fn same_origin(headers: &HeaderMap) -> bool {
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

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

/// Only a path on this site, never another site (`//evil`, `https://…`).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

pub(super) async fn login_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if session(&console, &headers).await.is_some() {
        return Redirect::to(safe_next(q.next.as_deref())).into_response();
    }
    login_form(&console, safe_next(q.next.as_deref()), None, StatusCode::OK)
}

fn login_form(console: &Console, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let login_csrf = random_token();
    let mut r = console.render(
        "login.html",
        minijinja::context! { login_csrf => login_csrf, next => next, error => error },
    );
    *r.status_mut() = status;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(console, LOGIN_COOKIE, &login_csrf, 3600),
    );
    r
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    name: String,
    password: String,
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub(super) async fn login(
    State(console): State<Arc<Console>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(Some(&f.next)).to_string();
    let double_submit = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same_text(c, &f.csrf));
    if !double_submit || !same_origin(&headers) {
        return login_form(
            &console,
            &next,
            Some("The login form expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let now = unix_ms();
    if let Some(ip) = ip
        && too_many_failures(&console, ip, now)
    {
        return login_form(
            &console,
            &next,
            Some("Too many failed logins from this address. Wait a few minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    match console
        .store
        .login(f.name.trim(), &f.password, now, &console.policy)
        .await
    {
        Ok(logged_in) => {
            tracing::info!(user = %logged_in.session.user.name, "logged in");
            let max_age = (logged_in.session.expires_at_ms - now) / 1000;
            let mut r = Redirect::to(&next).into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&console, SESSION_COOKIE, &logged_in.token, max_age),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&console, LOGIN_COOKIE, "", 0),
            );
            r
        }
        Err(LoginError::Store(e)) => {
            tracing::error!("login: {e}");
            login_form(
                &console,
                &next,
                Some("The database failed; try again."),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
        Err(e) => {
            if let Some(ip) = ip {
                count_failure(&console, ip, now);
            }
            tracing::info!(name = %f.name, "login refused: {e}");
            login_form(
                &console,
                &next,
                Some(&e.to_string()),
                StatusCode::UNAUTHORIZED,
            )
        }
    }
}

fn too_many_failures(console: &Console, ip: IpAddr, now: i64) -> bool {
    let Ok(map) = console.failures.lock() else {
        return false;
    };
    map.get(&ip)
        .is_some_and(|(n, since)| now - since < IP_WINDOW_MS && *n >= IP_MAX_FAILURES)
}

fn count_failure(console: &Console, ip: IpAddr, now: i64) {
    if let Ok(mut map) = console.failures.lock() {
        map.retain(|_, (_, since)| now - *since < IP_WINDOW_MS);
        map.entry(ip).or_insert((0, now)).0 += 1;
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

pub(super) async fn logout(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let Some(s) = session(&console, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    if let Err(r) = check_csrf(&console, &s, &headers, Some(&f.csrf)) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = console.store.logout(token).await
    {
        tracing::error!("logout: {e}");
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&console, SESSION_COOKIE, "", 0),
    );
    r
}

/// Extractors for handlers: the session, when it may use a route needing that role;
/// otherwise the login page (not logged in) or a 403 page (logged in, lacking the role).
macro_rules! role_extractor {
    ($name:ident, $role:expr) => {
        pub(super) struct $name(pub WebSession);

        impl FromRequestParts<Arc<Console>> for $name {
            type Rejection = Response;

            async fn from_request_parts(
                parts: &mut Parts,
                console: &Arc<Console>,
            ) -> Result<Self, Self::Rejection> {
                require(console, &parts.headers, $role).await.map($name)
            }
        }
    };
}

role_extractor!(OperatorPage, Role::Operator);
role_extractor!(SupervisorPage, Role::Supervisor);
role_extractor!(AdminPage, Role::Admin);
