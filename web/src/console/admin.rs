//! Admin pages: users and roles, operators' SIP accounts, queues.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hotline_core::users::{NewUser, Role, UserError, WebSession};
use serde::{Deserialize, Serialize};

use crate::auth::{AdminPage, CsrfForm, SupervisorPage};
use crate::error::WebError;
use crate::pages::me;
use crate::state::WebState;
use crate::telephony::OperatorForm;
use crate::unix_ms;

#[derive(Serialize)]
struct UserRow {
    name: String,
    display_name: String,
    role: &'static str,
    operator: Option<String>,
}

pub(super) async fn users(State(state): State<Arc<WebState>>, AdminPage(s): AdminPage) -> Response {
    users_page(&state, &s, None, StatusCode::OK).await
}

async fn users_page(
    state: &WebState,
    s: &WebSession,
    message: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let users = match state.store.users().await {
        Ok(u) => u,
        Err(e) => return WebError::database("listing users", e).into_response(),
    };
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| UserRow {
            name: u.name,
            display_name: u.display_name,
            role: u.role.as_str(),
            operator: u.operator,
        })
        .collect();
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let mut r = state.render(
        "admin_users.html",
        minijinja::context! {
            me => me(s),
            users => rows,
            roles => roles,
            message => message.map(|(kind, text)| minijinja::context! { kind => kind, text => text }),
        },
    );
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
pub(super) struct NewUserForm {
    name: String,
    #[serde(default)]
    display_name: String,
    role: String,
    password: String,
    #[serde(default)]
    operator: String,
}

pub(super) async fn add_user(
    State(state): State<Arc<WebState>>,
    CsrfForm(AdminPage(s), f): CsrfForm<AdminPage, NewUserForm>,
) -> Response {
    let Some(role) = Role::parse(&f.role) else {
        let msg = "Choose a role: operator, supervisor or admin.";
        return users_page(&state, &s, Some(("error", msg)), StatusCode::BAD_REQUEST).await;
    };
    let operator = f.operator.trim();
    let new = NewUser {
        name: f.name.trim(),
        display_name: f.display_name.trim(),
        role,
        password: &f.password,
        operator: (!operator.is_empty()).then_some(operator),
        now_ms: unix_ms(),
    };
    match state.store.add_user(&new).await {
        Ok(_) => {
            tracing::info!(by = %s.user.name, user = %new.name, role = role.as_str(), "user added");
            Redirect::to("/admin/users").into_response()
        }
        Err(e @ (UserError::Exists(_) | UserError::Invalid(_))) => {
            let msg = e.to_string();
            users_page(&state, &s, Some(("error", &msg)), StatusCode::BAD_REQUEST).await
        }
        Err(UserError::Store(e)) => WebError::database("adding a user", e).into_response(),
    }
}

#[derive(Serialize)]
struct OperatorRow {
    name: String,
    display_name: String,
    sip_user: String,
    chat_capacity: i64,
    status: Option<String>,
}

pub(super) async fn operators(
    State(state): State<Arc<WebState>>,
    AdminPage(s): AdminPage,
) -> Response {
    operators_page(&state, &s, None, StatusCode::OK).await
}

async fn operators_page(
    state: &WebState,
    s: &WebSession,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let ops = match state.store.operators().await {
        Ok(o) => o,
        Err(e) => return WebError::database("listing operators", e).into_response(),
    };
    let mut rows = Vec::with_capacity(ops.len());
    for o in ops {
        rows.push(OperatorRow {
            status: state.telephony.operator_status(&o.name).await,
            name: o.name,
            display_name: o.display_name,
            sip_user: o.sip_user,
            chat_capacity: o.chat_capacity,
        });
    }
    let mut r = state.render(
        "admin_operators.html",
        minijinja::context! { me => me(s), operators => rows, error => error },
    );
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
pub(super) struct NewOperatorForm {
    name: String,
    #[serde(default)]
    sip_user: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    chat_capacity: String,
    sip_password: String,
}

pub(super) async fn add_operator(
    State(state): State<Arc<WebState>>,
    CsrfForm(AdminPage(s), f): CsrfForm<AdminPage, NewOperatorForm>,
) -> Response {
    let chat_capacity = match f.chat_capacity.trim() {
        "" => None,
        n => match n.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                let msg = "Concurrent chats: a number from 1 to 10.";
                return operators_page(&state, &s, Some(msg), StatusCode::BAD_REQUEST).await;
            }
        },
    };
    let name = f.name.trim().to_string();
    let form = OperatorForm {
        sip_user: match f.sip_user.trim() {
            "" => name.clone(),
            u => u.to_string(),
        },
        display_name: f.display_name.trim().to_string(),
        chat_capacity,
        sip_password: f.sip_password,
        name,
    };
    match state.telephony.add_operator(&form).await {
        Ok(_) => Redirect::to("/admin/operators").into_response(),
        Err(e) => operators_page(&state, &s, Some(&e), StatusCode::BAD_REQUEST).await,
    }
}

#[derive(Deserialize)]
pub(super) struct CapacityForm {
    chat_capacity: String,
}

/// POST /admin/operators/{name}/capacity: how many chats the operator may have at once.
pub(super) async fn set_capacity(
    State(state): State<Arc<WebState>>,
    Path(name): Path<String>,
    CsrfForm(AdminPage(s), f): CsrfForm<AdminPage, CapacityForm>,
) -> Response {
    let result = match f.chat_capacity.trim().parse::<i64>() {
        Err(_) => Err("Concurrent chats: a number from 1 to 10.".to_string()),
        Ok(capacity) => match state.store.set_chat_capacity(&name, capacity).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("There is no operator {name:?}.")),
            Err(e) => Err(e.to_string()),
        },
    };
    match result {
        Ok(()) => Redirect::to("/admin/operators").into_response(),
        Err(msg) => operators_page(&state, &s, Some(&msg), StatusCode::BAD_REQUEST).await,
    }
}

pub(super) async fn queues(
    State(state): State<Arc<WebState>>,
    SupervisorPage(s): SupervisorPage,
) -> Response {
    let figures = state.telephony.queue_figures().await;
    state.render(
        "admin_queues.html",
        minijinja::context! { me => me(&s), queues => figures },
    )
}

// ---- licenses and their credits ----------------------------------------------------

#[derive(Deserialize)]
pub(super) struct LicenseQuery {
    history: Option<i64>,
}

pub(super) async fn licenses(
    State(state): State<Arc<WebState>>,
    AdminPage(s): AdminPage,
    axum::extract::Query(q): axum::extract::Query<LicenseQuery>,
) -> Response {
    licenses_page(&state, &s, q.history, None, StatusCode::OK).await
}

async fn licenses_page(
    state: &WebState,
    s: &WebSession,
    history_of: Option<i64>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let store = &state.store;
    let (licenses, users) = match (store.licenses().await, store.users().await) {
        (Ok(l), Ok(u)) => (l, u),
        (Err(e), _) | (_, Err(e)) => {
            return WebError::database("the licenses page", e).into_response();
        }
    };
    let history = match history_of {
        Some(id) => store
            .license_history(id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                minijinja::context! {
                    at => state.local_time(e.at_ms),
                    kind => e.kind.as_str(),
                    amount => e.amount,
                    balance => e.balance_after,
                    user => e.user_name,
                    case_number => e.case_number,
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let licenses: Vec<_> = licenses
        .into_iter()
        .map(|l| minijinja::context! { id => l.id, name => l.name, credits => l.credits })
        .collect();
    let users: Vec<_> = users
        .into_iter()
        .map(|u| minijinja::context! { id => u.id, name => u.name })
        .collect();
    let mut r = state.render(
        "admin_licenses.html",
        minijinja::context! {
            me => me(s), licenses => licenses, users => users, history => history,
            history_of => history_of, error => error,
        },
    );
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
pub(super) struct LicenseForm {
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    license: String,
    #[serde(default)]
    credits: String,
    #[serde(default)]
    user: String,
}

/// POST /admin/licenses: add a license, top one up, or let a user use one.
pub(super) async fn change_license(
    State(state): State<Arc<WebState>>,
    CsrfForm(AdminPage(s), f): CsrfForm<AdminPage, LicenseForm>,
) -> Response {
    let number = |v: &str, what: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| format!("{what}: give a whole number."))
    };
    let store = &state.store;
    let now = unix_ms();
    let result: Result<(), String> = match f.action.as_str() {
        "add" => match number(&f.credits, "Credits") {
            Ok(c) => store
                .add_license(&f.name, c, now)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        "top_up" => match (number(&f.license, "License"), number(&f.credits, "Credits")) {
            (Ok(l), Ok(c)) => store
                .top_up_license(l, c, s.user.id, now)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "grant" => match (number(&f.license, "License"), number(&f.user, "User")) {
            (Ok(l), Ok(u)) => store.grant_license(u, l).await.map_err(|e| e.to_string()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        _ => Err("Unknown action.".into()),
    };
    match result {
        Ok(()) => Redirect::to("/admin/licenses").into_response(),
        Err(e) => licenses_page(&state, &s, None, Some(&e), StatusCode::BAD_REQUEST).await,
    }
}

// ---- the outbox --------------------------------------------------------------------

pub(super) async fn outbox(
    State(state): State<Arc<WebState>>,
    AdminPage(s): AdminPage,
) -> Response {
    let messages = match state.store.outbox_messages(100).await {
        Ok(m) => m,
        Err(e) => return WebError::database("the outbox page", e).into_response(),
    };
    let rows: Vec<_> = messages
        .into_iter()
        .map(|m| {
            minijinja::context! {
                at => state.local_time(m.created_at_ms),
                channel => m.channel.as_str(),
                to => m.to,
                subject => m.subject,
                body => m.body,
                status => m.status.as_str(),
                error => m.last_error,
                attempts => m.attempts,
            }
        })
        .collect();
    state.render(
        "admin_outbox.html",
        minijinja::context! {
            me => me(&s),
            messages => rows,
            mode => state.settings.notify.mode.as_str(),
        },
    )
}

// ---- notification settings -----------------------------------------------------------

/// GET /admin/notifications: how invites are sent, as configured (`[notify]`); secrets
/// are not shown.
pub(super) async fn notifications(
    State(state): State<Arc<WebState>>,
    AdminPage(s): AdminPage,
) -> Response {
    let n = &state.settings.notify;
    // A gateway URL may carry an API key in its query.
    let sms_url = n.sms.url.split('?').next().unwrap_or("").to_string();
    state.render(
        "admin_notifications.html",
        minijinja::context! {
            me => me(&s),
            mode => n.mode.as_str(),
            sms => minijinja::context! {
                url => sms_url,
                query_hidden => n.sms.url.contains('?'),
                method => n.sms.method,
                header_names => n.sms.headers.keys().collect::<Vec<_>>(),
                content_type => n.sms.content_type,
            },
            email => minijinja::context! {
                host => n.email.host,
                port => n.email.effective_port(),
                tls => format!("{:?}", n.email.tls).to_lowercase(),
                username => n.email.username,
                password_set => !n.email.password.is_empty(),
                from => n.email.from,
            },
            templates => minijinja::context! {
                sms_invite => n.templates.sms_invite,
                email_subject => n.templates.email_invite_subject,
                email_body => n.templates.email_invite_body,
            },
            retry => minijinja::context! {
                max_attempts => n.retry.max_attempts,
                first_backoff_ms => n.retry.first_backoff_ms,
                max_backoff_ms => n.retry.max_backoff_ms,
            },
            sms_limits => minijinja::context! {
                per_operator_per_hour => state.visual.sms_limits.per_operator_per_hour,
                per_number_per_day => state.visual.sms_limits.per_number_per_day,
            },
        },
    )
}
