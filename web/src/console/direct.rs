//! Admin page: direct callback per operator (PRODUCT C5; admin-only, C6). One row per
//! operator (from the store's operators): the own number, the mode (explained in words),
//! the lengths and the calendar. An empty number turns direct callback off. Both the page
//! and the save need the admin role, checked on the server by the [`AdminPage`] extractor;
//! the save carries the session's CSRF token.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hotline_core::direct::{DirectError, DirectForm, DirectLengths, DirectMode};
use hotline_core::users::WebSession;
use serde::{Deserialize, Serialize};

use crate::auth::{AdminPage, CsrfForm};
use crate::error::WebError;
use crate::pages::me;
use crate::state::WebState;
use crate::unix_ms;

/// One operator's row, as shown (or as the admin typed it, after an error).
#[derive(Clone, Debug, Serialize)]
struct Row {
    name: String,
    display_name: String,
    /// Direct callback is on (an own number is set).
    on: bool,
    own_number: String,
    mode: String,
    minutes: String,
    hours: String,
    days: String,
    calendar: String,
}

#[derive(Serialize)]
struct ModeChoice {
    number: i64,
    words: &'static str,
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    saved: Option<String>,
}

/// GET /admin/direct.
pub(super) async fn page(
    State(state): State<Arc<WebState>>,
    AdminPage(s): AdminPage,
    Query(q): Query<PageQuery>,
) -> Response {
    render(&state, &s, None, q.saved.as_deref(), StatusCode::OK).await
}

/// The page; `refused` is the row the admin submitted and why it was refused.
async fn render(
    state: &WebState,
    s: &WebSession,
    refused: Option<(Row, String)>,
    saved: Option<&str>,
    status: StatusCode,
) -> Response {
    let store = &state.store;
    let (operators, settings) = match (store.operators().await, store.all_direct_settings().await) {
        (Ok(o), Ok(d)) => (o, d),
        (Err(e), _) | (_, Err(e)) => {
            return WebError::database("direct callback page", e).into_response();
        }
    };
    let defaults = DirectLengths::default();
    let mut rows: Vec<Row> = operators
        .into_iter()
        .map(|o| {
            let d = settings.iter().find(|d| d.operator == o.name);
            let lengths = d.map_or(defaults, |d| d.lengths);
            Row {
                on: d.is_some(),
                own_number: d.map(|d| d.own_number.clone()).unwrap_or_default(),
                mode: d.map_or(DirectMode::Hours, |d| d.mode).number().to_string(),
                minutes: lengths.minutes.to_string(),
                hours: lengths.hours.to_string(),
                days: lengths.days.to_string(),
                calendar: d.and_then(|d| d.calendar.clone()).unwrap_or_default(),
                name: o.name,
                display_name: o.display_name,
            }
        })
        .collect();
    let mut error = None;
    if let Some((typed, message)) = refused {
        error = Some(format!("{}: {message}", typed.name));
        if let Some(row) = rows.iter_mut().find(|r| r.name == typed.name) {
            *row = Row {
                on: row.on,
                display_name: row.display_name.clone(),
                ..typed
            };
        }
    }
    let modes: Vec<ModeChoice> = DirectMode::ALL
        .into_iter()
        .map(|m| ModeChoice {
            number: m.number(),
            words: m.describe(),
        })
        .collect();
    let mut r = state.render(
        "admin_direct.html",
        minijinja::context! {
            me => me(s),
            operators => rows,
            modes => modes,
            error => error,
            saved => saved,
        },
    );
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
pub(super) struct SaveForm {
    operator: String,
    #[serde(default)]
    own_number: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    calendar: String,
}

/// A whole number the admin typed, or what to tell them.
fn whole(v: &str, what: &str) -> Result<i64, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{what} {:?}: give a whole number.", v.trim()))
}

/// POST /admin/direct: saves one operator's row; an empty number turns it off.
pub(super) async fn save(
    State(state): State<Arc<WebState>>,
    CsrfForm(AdminPage(s), f): CsrfForm<AdminPage, SaveForm>,
) -> Response {
    let operator = f.operator.trim().to_string();
    let typed = Row {
        name: operator.clone(),
        display_name: String::new(),
        on: false,
        own_number: f.own_number.trim().to_string(),
        mode: f.mode.trim().to_string(),
        minutes: f.minutes.trim().to_string(),
        hours: f.hours.trim().to_string(),
        days: f.days.trim().to_string(),
        calendar: f.calendar.trim().to_string(),
    };
    let refuse = |message: String| (typed.clone(), message);
    let store = &state.store;
    let result: Result<(), (Row, String)> = if typed.own_number.is_empty() {
        match store.clear_direct_settings(&operator).await {
            Ok(_) => Ok(()),
            Err(e) => {
                return WebError::database("turning direct callback off", e).into_response();
            }
        }
    } else {
        let numbers = (
            whole(&typed.mode, "Mode"),
            whole(&typed.minutes, "Minutes"),
            whole(&typed.hours, "Hours"),
            whole(&typed.days, "Days"),
        );
        match numbers {
            (Ok(mode), Ok(minutes), Ok(hours), Ok(days)) => {
                let form = DirectForm {
                    own_number: &typed.own_number,
                    mode,
                    lengths: DirectLengths {
                        minutes,
                        hours,
                        days,
                    },
                    calendar: Some(typed.calendar.as_str()),
                };
                match store.set_direct_settings(&operator, &form, unix_ms()).await {
                    Ok(_) => Ok(()),
                    Err(DirectError::Store(e)) => {
                        return WebError::database("saving direct callback settings", e)
                            .into_response();
                    }
                    Err(e) => Err(refuse(e.to_string())),
                }
            }
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => Err(refuse(e)),
        }
    };
    match result {
        Ok(()) => {
            tracing::info!(by = %s.user.name, %operator, number = %typed.own_number,
                           mode = %typed.mode, "direct callback settings saved");
            Redirect::to(&format!("/admin/direct?saved={}", urlencode(&operator))).into_response()
        }
        Err(refused) => render(&state, &s, Some(refused), None, StatusCode::BAD_REQUEST).await,
    }
}

/// Operator names are plain (letters, digits, `.`, `_`, `-`), but a refused name could be
/// anything: percent-encode all else.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use hotline_core::store::Store;
    use hotline_core::users::Role;

    struct Fixture {
        store: Store,
        app: axum::Router,
    }

    /// Session cookie and CSRF token of a new user with `role` (no operator account).
    async fn login(store: &Store, name: &str, role: Role) -> (String, String) {
        testing::add_user(store, name, role, None).await;
        let l = testing::log_in(store, name).await;
        (l.cookie, l.csrf)
    }

    /// Operators anna and bela, no direct settings yet.
    async fn fixture() -> Fixture {
        let store = testing::store().await;
        for name in ["anna", "bela"] {
            testing::add_operator(&store, name).await;
        }
        Fixture {
            app: testing::state(&store).app(),
            store,
        }
    }

    async fn get(app: &axum::Router, cookie: &str) -> (StatusCode, String) {
        testing::get_page(app, cookie, "/admin/direct").await
    }

    async fn post(app: &axum::Router, cookie: &str, body: &str) -> (StatusCode, String) {
        testing::post_form(app, cookie, "/admin/direct", body).await
    }

    fn row(csrf: &str, operator: &str, number: &str, mode: u8, minutes: &str) -> String {
        format!(
            "_csrf={csrf}&operator={operator}&own_number={number}&mode={mode}\
             &minutes={minutes}&hours=24&days=7&calendar=hungary"
        )
    }

    #[tokio::test]
    async fn only_admins_see_and_change_the_settings() {
        let f = fixture().await;
        let (op_cookie, op_csrf) = login(&f.store, "olga", Role::Operator).await;
        let (sup_cookie, sup_csrf) = login(&f.store, "sara", Role::Supervisor).await;
        let (admin_cookie, admin_csrf) = login(&f.store, "adam", Role::Admin).await;

        // Not logged in: to the login page.
        let (status, _) = get(&f.app, "").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        for (cookie, csrf) in [(&op_cookie, &op_csrf), (&sup_cookie, &sup_csrf)] {
            assert_eq!(get(&f.app, cookie).await.0, StatusCode::FORBIDDEN);
            let (status, _) =
                post(&f.app, cookie, &row(csrf, "anna", "%2B3612345601", 2, "30")).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
        assert_eq!(f.store.direct_settings("anna").await.unwrap(), None);

        // The admin sees every operator, with the modes in words.
        let (status, page) = get(&f.app, &admin_cookie).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("anna") && page.contains("bela"), "{page}");
        assert!(page.contains(DirectMode::NextWorkday.describe()), "{page}");

        // Without the CSRF token: refused.
        let (status, _) = post(
            &f.app,
            &admin_cookie,
            &row("", "anna", "%2B3612345601", 2, "30"),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(f.store.direct_settings("anna").await.unwrap(), None);

        // Saved, then shown.
        let (status, _) = post(
            &f.app,
            &admin_cookie,
            &row(&admin_csrf, "anna", "06+1+234+5601", 1, "45"),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let s = f.store.direct_settings("anna").await.unwrap().unwrap();
        assert_eq!(
            (
                s.own_number.as_str(),
                s.mode,
                s.lengths.minutes,
                s.calendar.as_deref()
            ),
            ("+3612345601", DirectMode::NextCall, 45, Some("hungary"))
        );
        let (_, page) = get(&f.app, &admin_cookie).await;
        assert!(page.contains("+3612345601"), "{page}");
    }

    #[tokio::test]
    async fn refusals_are_shown_on_the_page_and_change_nothing() {
        let f = fixture().await;
        let (cookie, csrf) = login(&f.store, "adam", Role::Admin).await;
        post(
            &f.app,
            &cookie,
            &row(&csrf, "anna", "%2B3612345601", 2, "30"),
        )
        .await;
        for (body, message) in [
            (
                row(&csrf, "bela", "%2B3612345601", 2, "30"),
                "already the own number of operator anna",
            ),
            (
                row(&csrf, "bela", "%2B3612345602", 1, "0"),
                "minutes 0: must be 1–1440",
            ),
            (
                row(&csrf, "bela", "%2B3612345602", 1, "ten"),
                "give a whole number",
            ),
            (row(&csrf, "bela", "12x", 1, "30"), "own number"),
            (
                row(&csrf, "nobody", "%2B3612345602", 1, "30"),
                "no operator named",
            ),
        ] {
            let (status, page) = post(&f.app, &cookie, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(page.contains(message), "{message}: {page}");
        }
        assert_eq!(f.store.direct_settings("bela").await.unwrap(), None);
        // What the admin typed is kept in the refused row.
        let (_, page) = post(
            &f.app,
            &cookie,
            &row(&csrf, "bela", "%2B3612345699", 1, "0"),
        )
        .await;
        assert!(page.contains("+3612345699"), "{page}");

        // An empty number turns it off.
        let (status, _) = post(&f.app, &cookie, &row(&csrf, "anna", "", 2, "30")).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(f.store.direct_settings("anna").await.unwrap(), None);
    }
}
