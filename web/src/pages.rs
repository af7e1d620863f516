//! The pages' templates (compiled in, minijinja with HTML auto-escaping), rendering, the
//! layout's view of the user ([`me`]) and the operator's home page, which features
//! render again with a refused form.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use hotline_core::users::{Role, WebSession};
use minijinja::Environment;
use serde::Serialize;

use crate::state::WebState;

/// Every page's template, compiled once for the process.
static TEMPLATES_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, text) in TEMPLATES {
        if let Err(e) = env.add_template(name, text) {
            // The templates are compiled in; a broken one is a bug caught by the tests.
            tracing::error!("template {name}: {e}");
        }
    }
    env
});

/// A page, or a plain error page when the template fails.
pub fn render(name: &str, ctx: minijinja::Value) -> Response {
    match TEMPLATES_ENV.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("rendering {name}: {e:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered; see the log",
            )
                .into_response()
        }
    }
}

/// What every page's layout shows of the logged-in user.
#[derive(Serialize)]
pub struct Me<'a> {
    name: &'a str,
    display_name: &'a str,
    role: &'static str,
    operator: Option<&'a str>,
    is_admin: bool,
    is_supervisor: bool,
    csrf: &'a str,
}

pub fn me(s: &WebSession) -> Me<'_> {
    Me {
        name: &s.user.name,
        display_name: &s.user.display_name,
        role: s.user.role.as_str(),
        operator: s.user.operator.as_deref(),
        is_admin: s.user.role.allows(Role::Admin),
        is_supervisor: s.user.role.allows(Role::Supervisor),
        csrf: &s.csrf_token,
    }
}

/// The states an operator may choose on the home page; busy and wrap-up follow calls.
pub const CHOOSABLE: [&str; 3] = ["online", "away", "pause"];

/// The operator's home page. Features fill their parts: `visual`, the visual sessions'
/// (`crate::visual::operator::home_context`); `form`, what the operator typed into a
/// refused invite form.
pub async fn home(
    state: &WebState,
    s: &WebSession,
    visual: minijinja::Value,
    form: minijinja::Value,
) -> Response {
    let status = match &s.user.operator {
        Some(op) => state.telephony.operator_status(op).await,
        None => None,
    };
    render(
        "home.html",
        minijinja::context! {
            me => me(s),
            status => status,
            states => CHOOSABLE,
            visual => visual,
            wrapup_categories => &state.chat.config.wrapup_categories,
            form => form,
            // The browser phone gathers TURN candidates too (operators behind strict NAT).
            ice_servers => state.visual.ice_servers_json.as_str(),
        },
    )
}

const TEMPLATES: [(&str, &str); 23] = [
    ("base.html", include_str!("../templates/base.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("board.html", include_str!("../templates/board.html")),
    ("reports.html", include_str!("../templates/reports.html")),
    (
        "recordings.html",
        include_str!("../templates/recordings.html"),
    ),
    (
        "admin_users.html",
        include_str!("../templates/admin_users.html"),
    ),
    (
        "admin_operators.html",
        include_str!("../templates/admin_operators.html"),
    ),
    (
        "admin_direct.html",
        include_str!("../templates/admin_direct.html"),
    ),
    (
        "admin_queues.html",
        include_str!("../templates/admin_queues.html"),
    ),
    (
        "visual_session.html",
        include_str!("../templates/visual_session.html"),
    ),
    ("customer.html", include_str!("../templates/customer.html")),
    (
        "admin_licenses.html",
        include_str!("../templates/admin_licenses.html"),
    ),
    (
        "admin_outbox.html",
        include_str!("../templates/admin_outbox.html"),
    ),
    (
        "admin_notifications.html",
        include_str!("../templates/admin_notifications.html"),
    ),
    (
        "customer_gone.html",
        include_str!("../templates/customer_gone.html"),
    ),
    (
        "tasks_widget.html",
        include_str!("../templates/tasks_widget.html"),
    ),
    (
        "chat_console.html",
        include_str!("../templates/chat_console.html"),
    ),
    (
        "chat_visitor.html",
        include_str!("../templates/chat_visitor.html"),
    ),
    (
        "admin_canned.html",
        include_str!("../templates/admin_canned.html"),
    ),
    (
        "chat_history.html",
        include_str!("../templates/chat_history.html"),
    ),
    (
        "chat_transcript.html",
        include_str!("../templates/chat_transcript.html"),
    ),
];
