//! Visual sessions, the operator's side: the invite form on the home page, the session
//! page (invite status, live picture, chat, snapshots, files) and ending the session.
//! The customer's side is [`super::customer`], the WebSocket relay [`super`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use chrono::{NaiveDate, TimeZone};
use hotline_core::notify::{Channel, InviteContext, NewMessage, render_invite};
use hotline_core::users::WebSession;
use hotline_core::visual::{FileKind, InviteChannel, NewVisualSession, VisualError, VisualSession};
use serde::{Deserialize, Serialize};

use crate::auth::{Csrf, CsrfForm, NoFields, OperatorPage, same_origin};
use crate::error::WebError;
use crate::pages::me;
use crate::state::WebState;
use crate::unix_ms;
use crate::visual::{self as hub, Event};

/// Everything the home page's visual-session part shows.
pub(crate) async fn home_context(
    state: &WebState,
    s: &WebSession,
    day: Option<&str>,
) -> minijinja::Value {
    let now = unix_ms();
    let store = &state.store;
    let licenses = store
        .licenses_for_user(s.user.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|l| minijinja::context! { id => l.id, name => l.name, credits => l.credits })
        .collect::<Vec<_>>();
    let active = store
        .active_visual_session(s.user.id, now)
        .await
        .ok()
        .flatten()
        .map(|v| minijinja::context! { id => v.id, case_number => v.case_number });
    let day_range = day.and_then(|d| day_bounds(state, d));
    let recent = store
        .recent_visual_sessions(s.user.id, day_range, 10)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            minijinja::context! {
                id => r.id,
                case_number => r.case_number,
                date => state.local_time(r.created_at_ms),
                duration => r.duration_ms.map(duration_text),
                customer => r.customer,
                license => r.license_name,
            }
        })
        .collect::<Vec<_>>();
    minijinja::context! {
        licenses => licenses,
        active => active,
        recent => recent,
        day => day.unwrap_or(""),
        bad_day => day.is_some_and(|d| !d.is_empty() && day_range.is_none()),
    }
}

/// The start and end of a day (YYYY-MM-DD) in the console's time zone, as unix ms.
fn day_bounds(state: &WebState, day: &str) -> Option<(i64, i64)> {
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let start = state
        .settings
        .time_zone
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()?;
    let next = state
        .settings
        .time_zone
        .from_local_datetime(&date.succ_opt()?.and_hms_opt(0, 0, 0)?)
        .earliest()?;
    Some((start.timestamp_millis(), next.timestamp_millis()))
}

fn duration_text(ms: i64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

#[derive(Deserialize)]
pub(crate) struct InviteForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    license: String,
    #[serde(default)]
    case_number: String,
    #[serde(default)]
    generate_case: Option<String>,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    /// The call the invite was sent from (the call panel's button), to link them.
    #[serde(default)]
    call_id: String,
}

/// POST /visual: creates the session (charging 1 credit), queues the invite and takes
/// the operator to the session page. Refusals come back on the home page, form kept.
pub(crate) async fn create(
    State(state): State<Arc<WebState>>,
    CsrfForm(OperatorPage(s), f): CsrfForm<OperatorPage, InviteForm>,
) -> Response {
    let channel = match f.channel.as_str() {
        "" | "sms" => InviteChannel::Sms,
        "email" => InviteChannel::Email,
        _ => return refuse(&state, &s, &f, "Choose SMS or e-mail.".into()).await,
    };
    let Ok(license_id) = f.license.parse::<i64>() else {
        return refuse(&state, &s, &f, "Choose a license.".into()).await;
    };
    let now = unix_ms();
    let case_number = if f.generate_case.is_some() || f.case_number.trim().is_empty() {
        None
    } else {
        Some(f.case_number.trim().to_string())
    };
    let new = NewVisualSession {
        operator_user_id: s.user.id,
        license_id,
        channel,
        case_number,
        phone: (channel == InviteChannel::Sms).then(|| f.phone.clone()),
        email: (channel == InviteChannel::Email).then(|| f.email.clone()),
        sms_limits: state.visual.sms_limits,
        now_ms: now,
    };
    let created = match state.store.create_visual_session(&new).await {
        Ok(c) => c,
        Err(VisualError::ActiveSession { id }) => {
            return refuse_with_link(&state, &s, &f, id).await;
        }
        Err(VisualError::Store(e)) => {
            return WebError::database("creating a visual session", e).into_response();
        }
        Err(e) => return refuse(&state, &s, &f, e.to_string()).await,
    };
    let session = created.session;
    // From the call panel: the session belongs to that call, when the call was this
    // operator's (their panel showed it).
    let call_id = f.call_id.trim();
    if let Some(operator) = s.user.operator.as_deref()
        && !call_id.is_empty()
        && state.live.was_shown(operator, call_id)
        && let Err(e) = state
            .store
            .link_visual_session_to_call(session.id, s.user.id, call_id)
            .await
    {
        tracing::warn!(
            session = session.id,
            call_id,
            "linking the session to its call: {e}"
        );
    }
    let link = format!(
        "{}/v/{}",
        state.settings.public_url.trim_end_matches('/'),
        created.token
    );
    let ctx = InviteContext {
        link,
        case_number: session.case_number.clone(),
        operator: s.user.display_name.clone(),
    };
    let (notify_channel, to) = match channel {
        InviteChannel::Sms => (Channel::Sms, session.phone.clone().unwrap_or_default()),
        InviteChannel::Email => (Channel::Email, session.email.clone().unwrap_or_default()),
    };
    // The session exists and is charged: the invite must not be lost. A template error
    // is a configuration fault; it is shown on the session page.
    match render_invite(&state.settings.notify, notify_channel, &ctx) {
        Ok(rendered) => {
            let related = format!("visual:{}", session.id);
            let msg = NewMessage::from_rendered(&rendered, &to, &related, now);
            match state.store.enqueue_message(&msg).await {
                Ok(_) => {
                    if let Some(n) = &state.settings.notifier {
                        n.wake();
                    }
                }
                Err(e) => tracing::error!(session = session.id, "storing the invite: {e}"),
            }
        }
        Err(e) => tracing::error!(session = session.id, "invite template: {e}"),
    }
    tracing::info!(user = %s.user.name, session = session.id, channel = channel.as_str(),
                   case = %session.case_number, "visual session created");
    Redirect::to(&format!("/visual/{}", session.id)).into_response()
}

async fn refuse(state: &WebState, s: &WebSession, f: &InviteForm, error: String) -> Response {
    refusal(state, s, f, error, None).await
}

async fn refuse_with_link(state: &WebState, s: &WebSession, f: &InviteForm, id: i64) -> Response {
    let error = "You already have an active session: close it before starting a new one.";
    refusal(state, s, f, error.into(), Some(id)).await
}

async fn refusal(
    state: &WebState,
    s: &WebSession,
    f: &InviteForm,
    error: String,
    active_id: Option<i64>,
) -> Response {
    let mut r = crate::pages::home(
        state,
        s,
        home_context(state, s, None).await,
        minijinja::context! {
            error => error,
            active_link => active_id,
            channel => f.channel,
            license => f.license,
            case_number => f.case_number,
            phone => f.phone,
            email => f.email,
            call_id => f.call_id,
        },
    )
    .await;
    *r.status_mut() = if active_id.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    };
    r
}

/// The session when it belongs to this operator; otherwise the page that says why.
async fn own_session(state: &WebState, s: &WebSession, id: i64) -> Result<VisualSession, Response> {
    match state.store.visual_session(id).await {
        Ok(Some(v)) if v.operator_user_id == s.user.id => Ok(v),
        Ok(Some(_)) => Err(state.error_page(
            StatusCode::FORBIDDEN,
            "This session belongs to another operator.",
        )),
        Ok(None) => Err(state.error_page(StatusCode::NOT_FOUND, "No such session.")),
        Err(e) => Err(WebError::database("reading a visual session", e).into_response()),
    }
}

pub(crate) async fn page(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path(id): Path<i64>,
) -> Response {
    let v = match own_session(&state, &s, id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = unix_ms();
    if v.is_open_at(now) {
        // The operator is here: the hour of grace starts again.
        let _ = state.store.touch_visual_session(id, now).await;
    }
    state.render(
        "visual_session.html",
        minijinja::context! {
            me => me(&s),
            session => minijinja::context! {
                id => v.id,
                case_number => v.case_number,
                channel => v.channel.as_str(),
                customer => v.customer(),
                license => v.license_name,
                open => v.is_open_at(now),
                joined => v.joined_at_ms.is_some(),
            },
            ice_servers => state.visual.ice_servers_json.as_str(),
        },
    )
}

#[derive(Serialize)]
struct InviteStatus {
    status: String,
    to: String,
    error: Option<String>,
    attempts: i64,
}

#[derive(Serialize)]
struct FileJson {
    id: String,
    kind: &'static str,
    url: String,
    content_type: String,
    size: i64,
}

/// GET /visual/{id}/status: the invite's delivery, the session's state and its files.
pub(crate) async fn status(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path(id): Path<i64>,
) -> Response {
    let v = match own_session(&state, &s, id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let invites: Vec<InviteStatus> = state
        .store
        .messages_related(&format!("visual:{id}"))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| InviteStatus {
            status: m.status.as_str().to_string(),
            to: m.to,
            error: m.last_error,
            attempts: m.attempts,
        })
        .collect();
    let files: Vec<FileJson> = state
        .store
        .visual_files(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|f| FileJson {
            url: format!("/visual/{id}/files/{}", f.id),
            kind: f.kind.as_str(),
            id: f.id,
            content_type: f.content_type,
            size: f.size,
        })
        .collect();
    Json(serde_json::json!({
        "open": v.is_open_at(unix_ms()),
        "joined": v.joined_at_ms.is_some(),
        "invites": invites,
        "files": files,
    }))
    .into_response()
}

pub(crate) async fn end(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    CsrfForm(OperatorPage(s), _): CsrfForm<OperatorPage, NoFields>,
) -> Response {
    if let Err(r) = own_session(&state, &s, id).await {
        return r;
    }
    match state.store.end_visual_session(id, unix_ms()).await {
        Ok(_) | Err(VisualError::Ended) => {
            state.visual.hub.send(id, hub::To::Both, &Event::Ended);
            Redirect::to("/").into_response()
        }
        Err(e) => state.error_page(StatusCode::CONFLICT, &e.to_string()),
    }
}

/// POST /visual/{id}/snapshots: a still from the live picture (JPEG or PNG body).
pub(crate) async fn snapshot(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Body,
) -> Response {
    // The session is checked before the body is read.
    let v = match own_session(&state, &s, id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = match hub::read_image(&headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match hub::save_image(&state, &v, FileKind::Snapshot, &body).await {
        Ok(file) => (StatusCode::CREATED, Json(file)).into_response(),
        Err((status, msg)) => WebError::json(status, msg).into_response(),
    }
}

/// GET /visual/{id}/files/{file}: photos and snapshots, for the session's operator only.
pub(crate) async fn file(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path((id, file_id)): Path<(i64, String)>,
) -> Response {
    if let Err(r) = own_session(&state, &s, id).await {
        return r;
    }
    let Ok(Some(f)) = state.store.visual_file(&file_id).await else {
        return state.error_page(StatusCode::NOT_FOUND, "No such file.");
    };
    if f.session_id != id {
        return state.error_page(StatusCode::NOT_FOUND, "No such file.");
    }
    match tokio::fs::read(state.settings.files_dir.join(&f.id)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, f.content_type),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{}-{}\"", f.kind.as_str(), f.id),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(file = %f.id, "reading a stored file: {e}");
            state.error_page(StatusCode::NOT_FOUND, "The file is gone.")
        }
    }
}

/// The operator's WebSocket: signalling, chat and events of their own session.
pub(crate) async fn socket(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    headers: HeaderMap,
    Path(id): Path<i64>,
    ws: axum::extract::WebSocketUpgrade,
) -> Response {
    // A page from another site must not open the operator's socket.
    if !same_origin(&headers) {
        return state.error_page(StatusCode::FORBIDDEN, "Not from this site.");
    }
    let v = match own_session(&state, &s, id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !v.is_open_at(unix_ms()) {
        return state.error_page(StatusCode::GONE, "This session has ended.");
    }
    // While the page is open the operator is with the customer: busy to the queues (Q1).
    let operator = s.user.operator.clone();
    crate::chat::chat_socket(ws).on_upgrade(move |socket| async move {
        if let Some(op) = &operator {
            let open = state.visual.hub.operator_page(op, true);
            state.telephony.set_visual_load(op, open).await;
        }
        hub::serve_socket(
            state.clone(),
            id,
            hotline_core::visual::Party::Operator,
            socket,
        )
        .await;
        if let Some(op) = &operator {
            let open = state.visual.hub.operator_page(op, false);
            state.telephony.set_visual_load(op, open).await;
        }
    })
}
