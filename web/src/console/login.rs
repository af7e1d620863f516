//! Login and logout. The session cookie and the role and CSRF checks are in
//! [`crate::auth`]; the login form, which has no session yet, uses a double-submit cookie.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hotline_core::tokens::random_token;
use hotline_core::users::LoginError;
use serde::Deserialize;

use crate::auth::{
    CsrfForm, NoFields, OperatorPage, SESSION_COOKIE, cookie, same_origin, same_text, session,
    set_cookie,
};
use crate::state::WebState;
use crate::{ClientIp, unix_ms};

const LOGIN_COOKIE: &str = "hl_login";
/// Failed logins from one address within `IP_WINDOW_MS` before it must wait (against
/// floods that try many names; the per-account limits are in the store).
const IP_MAX_FAILURES: u32 = 20;
const IP_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Expired sessions and stale failure counts are deleted on a login at most this often.
const PURGE_EVERY_MS: i64 = 60 * 1000;

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

/// Only a path on this site, never another site: `/` and then not a second `/` or `\\`
/// (`//evil.example` is another site to a browser), only visible ASCII (browsers drop
/// tabs and newlines, so `/<TAB>/evil.example` would be `//evil.example` to them), no
/// backslash anywhere and none of these in percent-encoded form. Anything else: `/`.
fn safe_next(next: Option<&str>) -> &str {
    let Some(n) = next else {
        return "/";
    };
    let local = n.starts_with('/')
        && !n[1..].starts_with(['/', '\\'])
        && n.len() <= 2048
        && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !hides_a_dangerous_byte(n);
    if local { n } else { "/" }
}

/// A `%XX` for a control character or a backslash, or a `%2F` right after the first
/// slash: harmless to a browser, but not to everything that may decode it once more.
fn hides_a_dangerous_byte(n: &str) -> bool {
    let b = n.as_bytes();
    let hex = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
    b.iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .any(|(i, _)| {
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return false;
            };
            let byte = hi * 16 + lo;
            byte < 0x20 || byte == 0x7f || byte == 0x5c || (i == 1 && byte == 0x2f)
        })
}

pub(super) async fn login_page(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if session(&state, &headers).await.is_some() {
        return Redirect::to(safe_next(q.next.as_deref())).into_response();
    }
    login_form(&state, safe_next(q.next.as_deref()), None, StatusCode::OK)
}

fn login_form(state: &WebState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let login_csrf = random_token();
    let mut r = state.render(
        "login.html",
        minijinja::context! { login_csrf => login_csrf, next => next, error => error },
    );
    *r.status_mut() = status;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &login_csrf, 3600),
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
    State(state): State<Arc<WebState>>,
    client: ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(Some(&f.next)).to_string();
    let double_submit = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same_text(c, &f.csrf));
    if !double_submit || !same_origin(&headers) {
        return login_form(
            &state,
            &next,
            Some("The login form expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let now = unix_ms();
    purge_now_and_then(&state, now).await;
    let name = f.name.trim();
    // Counted before the check, like the store's per-account counts: a parallel burst
    // from one address can't get more than its share checked.
    if let Some(ip) = client.0
        && !reserve_ip_attempt(&state, ip, now)
    {
        log_refusal(name, client, "throttled");
        return login_form(
            &state,
            &next,
            Some("Too many failed logins from this address. Wait a few minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    // The store counts per address as this throttle does: an IPv6 client by its /64.
    let address = client
        .0
        .map(|ip| throttle_key(ip).to_string())
        .unwrap_or_default();
    let result = state
        .store
        .login_from(name, &f.password, &address, now, &state.policy)
        .await;
    // Only a wrong password counts against the address: the rest never reached argon2.
    if !matches!(result, Err(LoginError::BadCredentials))
        && let Some(ip) = client.0
    {
        release_ip_attempt(&state, ip);
    }
    match result {
        Ok(logged_in) => {
            tracing::info!(user = %logged_in.session.user.name, from = %client, "logged in");
            let max_age = (logged_in.session.expires_at_ms - now) / 1000;
            let mut r = Redirect::to(&next).into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &logged_in.token, max_age),
            );
            h.append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
            r
        }
        Err(LoginError::Store(e)) => {
            tracing::error!("login: {e}");
            login_form(
                &state,
                &next,
                Some("The database failed; try again."),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
        Err(e) => {
            let (reason, status) = match e {
                LoginError::Locked { .. } => ("locked", StatusCode::TOO_MANY_REQUESTS),
                LoginError::Busy => ("busy", StatusCode::TOO_MANY_REQUESTS),
                _ => ("bad_credentials", StatusCode::UNAUTHORIZED),
            };
            log_refusal(name, client, reason);
            login_form(&state, &next, Some(&e.to_string()), status)
        }
    }
}

/// The security log's line for a refused login, one per refusal, for fail2ban:
/// `security: login refused user=<name> from=<address> reason=<reason>`. The name is
/// cut to the characters a user name may have (others become `?`), so a name can't
/// forge a second `from=` or a line break.
fn refusal_line(name: &str, client: ClientIp, reason: &str) -> String {
    let name: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!("security: login refused user={name} from={client} reason={reason}")
}

fn log_refusal(name: &str, client: ClientIp, reason: &str) {
    tracing::warn!(target: "hotline::security", "{}", refusal_line(name, client, reason));
}

/// Deletes expired sessions and stale failure counts, at most once per `PURGE_EVERY_MS`.
async fn purge_now_and_then(state: &WebState, now: i64) {
    let last = state.last_purge_ms.load(Ordering::Relaxed);
    if now - last < PURGE_EVERY_MS
        || state
            .last_purge_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match state.store.purge_expired_logins(now, &state.policy).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!("purged {n} expired web sessions"),
        Err(e) => tracing::warn!("purging expired web sessions: {e}"),
    }
}

/// The address the per-address count is kept for: IPv6 clients by their /64, as one
/// host usually has a whole /64 to pick addresses from.
fn throttle_key(ip: IpAddr) -> IpAddr {
    hotline_sip::limits::source_host(ip)
}

/// Counts one attempt from `ip`; `false`: it has had its `IP_MAX_FAILURES` in this window.
fn reserve_ip_attempt(state: &WebState, ip: IpAddr, now: i64) -> bool {
    let Ok(mut map) = state.failures.lock() else {
        return true;
    };
    map.retain(|_, (_, since)| now - *since < IP_WINDOW_MS);
    let (count, _) = map.entry(throttle_key(ip)).or_insert((0, now));
    if *count >= IP_MAX_FAILURES {
        return false;
    }
    *count += 1;
    true
}

/// Gives back an attempt that was not a failure.
fn release_ip_attempt(state: &WebState, ip: IpAddr) {
    if let Ok(mut map) = state.failures.lock()
        && let Some((count, _)) = map.get_mut(&throttle_key(ip))
    {
        *count = count.saturating_sub(1);
    }
}

pub(super) async fn logout(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    _: CsrfForm<OperatorPage, NoFields>,
) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.logout(token).await
    {
        tracing::error!("logout: {e}");
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, PASSWORD};
    use axum::body::Body;
    use axum::http::Request;
    use hotline_core::store::Store;
    use hotline_core::users::{LoginPolicy, PasswordChecks, Role};
    use std::net::SocketAddr;
    use std::time::Duration;

    /// An admin (not logged in) and the app with `policy`.
    async fn fixture(policy: LoginPolicy) -> (Store, axum::Router) {
        let store = testing::store().await;
        testing::add_user(&store, "admin", Role::Admin, None).await;
        let app = testing::state(&store).policy(policy).app();
        (store, app)
    }

    fn form_value(v: &str) -> String {
        v.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    /// A login POST from `peer` with the double-submit cookie; the status, the
    /// Location and the page.
    async fn post_login(
        app: &axum::Router,
        peer: &str,
        password: &str,
        next: &str,
    ) -> (StatusCode, Option<String>, String) {
        let body = format!(
            "_csrf=t0k&name=admin&password={}&next={}",
            form_value(password),
            form_value(next)
        );
        let req = Request::post("/login")
            .header(header::COOKIE, "hl_login=t0k")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        let r = testing::send(app, testing::from_peer(req, peer)).await;
        let location = r.header(header::LOCATION);
        (r.status, location, r.text)
    }

    #[test]
    fn next_must_be_a_path_on_this_site() {
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/a\\b",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/\n/evil.example",
            "/ok\u{7f}",
            "/caf\u{e9}",
            "/a b",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        for good in [
            "/",
            "/admin/users",
            "/console/chat?x=1&y=%20z",
            "/https://x",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        assert_eq!(safe_next(None), "/");
    }

    #[tokio::test]
    async fn a_login_goes_only_to_local_paths() {
        let (_, app) = fixture(LoginPolicy::default()).await;
        let (status, location, _) =
            post_login(&app, "192.0.2.1:4000", PASSWORD, "/\t/evil.example").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/"));
        let (_, location, _) = post_login(&app, "192.0.2.1:4000", PASSWORD, "/admin/users").await;
        assert_eq!(location.as_deref(), Some("/admin/users"));
        // The form keeps only a safe `next` too.
        let req = Request::get("/login?next=%2F%2Fevil.example")
            .body(Body::empty())
            .unwrap();
        let page = testing::send(&app, req).await.text;
        assert!(page.contains(r#"name="next" value="&#x2f;""#), "{page}");
    }

    #[tokio::test]
    async fn sixty_parallel_guesses_from_one_address_check_five() {
        let policy = LoginPolicy {
            checks: PasswordChecks::new(2, Duration::from_secs(60)),
            ..LoginPolicy::default()
        };
        let checks = policy.checks.clone();
        let (_, app) = fixture(policy).await;
        let mut tasks = Vec::new();
        for i in 0..60 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                post_login(&app, "203.0.113.5:4000", &format!("wrong-{i}"), "/").await
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            let (status, _, page) = t.await.unwrap();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let page = page.to_lowercase();
                assert!(page.contains("too many failed logins"), "{page}");
            }
            statuses.push(status);
        }
        let count = |s| statuses.iter().filter(|x| **x == s).count();
        assert_eq!(checks.checked(), 5);
        assert_eq!(count(StatusCode::UNAUTHORIZED), 5);
        assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 55);
        // The right password now waits too; from another address it works.
        let (status, _, _) = post_login(&app, "203.0.113.5:4000", PASSWORD, "/").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let (status, _, _) = post_login(&app, "198.51.100.1:4000", PASSWORD, "/").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }

    #[tokio::test]
    async fn a_login_that_waits_too_long_gets_429_with_a_message() {
        let policy = LoginPolicy {
            checks: PasswordChecks::new(0, Duration::from_millis(50)),
            ..LoginPolicy::default()
        };
        let (_, app) = fixture(policy).await;
        let (status, _, page) = post_login(&app, "192.0.2.1:4000", PASSWORD, "/").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            page.contains("the server is busy checking other logins: try again in a moment"),
            "{page}"
        );
    }

    #[tokio::test]
    async fn a_login_purges_expired_sessions() {
        let (store, app) = fixture(LoginPolicy::default()).await;
        let short = LoginPolicy {
            session_ms: 1,
            ..LoginPolicy::default()
        };
        let old = store
            .login("admin", PASSWORD, unix_ms() - 10_000, &short)
            .await
            .unwrap();
        // At time 0 every stored session would still be valid: `None` means deleted.
        assert!(store.web_session(&old.token, 0).await.unwrap().is_some());
        // Even a failed login sweeps.
        let (status, _, _) = post_login(&app, "192.0.2.1:4000", "wrong-password", "/").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(store.web_session(&old.token, 0).await.unwrap().is_none());
    }

    #[test]
    fn the_refusal_line_is_stable_and_unforgeable() {
        let from = ClientIp(Some("203.0.113.5".parse().unwrap()));
        assert_eq!(
            refusal_line("admin", from, "bad_credentials"),
            "security: login refused user=admin from=203.0.113.5 reason=bad_credentials"
        );
        assert_eq!(
            refusal_line("x from=10.0.0.1\nsecurity: y", from, "locked"),
            "security: login refused user=x?from?10.0.0.1?security??y from=203.0.113.5 reason=locked"
        );
        assert_eq!(
            refusal_line("", ClientIp(None), "busy"),
            "security: login refused user= from=unknown reason=busy"
        );
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle_key(a), throttle_key(b));
        assert_ne!(throttle_key(a), throttle_key(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(throttle_key(v4), v4);
    }

    /// A state-changing request without the session's token is refused with the 403
    /// page, whether its token comes in a form field or in `X-CSRF-Token`.
    #[tokio::test]
    async fn forms_and_scripts_must_carry_the_csrf_token() {
        let (store, app) = fixture(LoginPolicy::default()).await;
        let login = testing::log_in(&store, "admin").await;
        let app = &app;
        let send = |uri: &str, form: Option<&str>, header: Option<&str>| {
            let mut req = Request::post(uri).header(header::COOKIE, &login.cookie);
            if let Some(token) = header {
                req = req.header("x-csrf-token", token);
            }
            let body = match form {
                Some(f) => {
                    req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                    Body::from(f.to_string())
                }
                None => {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                    Body::from("{}")
                }
            };
            testing::send(app, req.body(body).unwrap())
        };
        let csrf = login.csrf.as_str();
        let r = send("/logout", Some("_csrf=wrong"), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.text.contains("This form has expired"));
        let r = send("/console/callbacks", None, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = send("/console/callbacks", None, Some("wrong")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // With the token: past the check (the incomplete body is then refused as before).
        let r = send("/console/callbacks", None, Some(csrf)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = send("/logout", Some(&format!("_csrf={csrf}")), None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        // Logged out: the login page.
        let r = send("/logout", Some(&format!("_csrf={csrf}")), None).await;
        assert_eq!(r.header(header::LOCATION).unwrap(), "/login");
    }
}
