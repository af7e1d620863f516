//! The tasks widget (PRODUCT C4) as JSON endpoints for `assets/tasks.js`: list, add,
//! complete, reschedule, history, and call the customer of a task.
//!
//! Who sees what: an operator sees the tasks assigned to them, to the queues they are a
//! member of (from the daemon's flow set, through `Telephony`), to nobody, and those they
//! created; supervisors see every queue's. Actions on a task the operator doesn't see
//! answer 404, as for a task that isn't there.
//!
//! Calling a task's customer first claims the task (one conditional update: of two
//! operators clicking together one wins, the other is told who is calling), then asks the
//! telephony side to ring the operator's phone and the customer. When the call can't start,
//! the claim is given back at once with the reason in the task's history.
//!
//! Errors are `{ "error": "…" }` written for the page: 400 bad input, 404 no such task,
//! 409 a claim or state conflict, 502 the call could not start, 503 the database failed.
//! Times go out in the console's time zone, and `datetime-local` values come in in it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use chrono::TimeZone;
use hotline_core::tasks::{Assignee, NewTask, Queues, Task, TaskError, TaskParam};
use hotline_core::users::WebSession;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::{Csrf, OperatorPage};
use crate::error::WebError;
use crate::state::WebState;
use crate::unix_ms;

/// How long a call claim holds before another operator may call the task's customer.
const CLAIM_MS: i64 = 10 * 60 * 1000;
/// Tasks the widget shows.
const SHOWN: i64 = 200;

/// The name tasks are assigned to and claimed by: the operator account, else the user.
fn who(s: &WebSession) -> String {
    s.user
        .operator
        .clone()
        .unwrap_or_else(|| s.user.name.clone())
}

fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    WebError::json(status, message.into()).into_response()
}

fn task_refusal(e: TaskError) -> Response {
    let status = match &e {
        TaskError::Invalid(_) => StatusCode::BAD_REQUEST,
        TaskError::NotFound => StatusCode::NOT_FOUND,
        TaskError::AlreadyClaimed { .. }
        | TaskError::AlreadyCalling
        | TaskError::CallInProgress { .. }
        | TaskError::Done
        | TaskError::NoNumber
        | TaskError::NotClaimer => StatusCode::CONFLICT,
        TaskError::Store(e) => return store_failed(e),
    };
    refusal(status, e.to_string())
}

fn store_failed(e: impl std::fmt::Display) -> Response {
    WebError::database_json("tasks", e).into_response()
}

/// A JSON body, or a 400 that says what is wrong with it. An empty body is `{}`.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| refusal(StatusCode::BAD_REQUEST, format!("Bad request: {e}.")))
}

/// A `datetime-local` value (`2026-03-01T14:30`, seconds optional) in the console's zone.
fn parse_local(tz: chrono_tz::Tz, v: &str) -> Result<i64, String> {
    let v = v.trim();
    let naive = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| "Give the due time as a date and a time.".to_string())?;
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.timestamp_millis()),
        // The hour the clocks go back happens twice: the first one.
        chrono::LocalResult::Ambiguous(first, _) => Ok(first.timestamp_millis()),
        chrono::LocalResult::None => Err(format!(
            "{v} doesn't exist in {tz}: the clocks go forward then."
        )),
    }
}

/// The value a `datetime-local` input shows for `ms`.
fn local_input(state: &WebState, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&state.settings.time_zone)
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn task_json(state: &WebState, t: &Task, me: &str, now: i64) -> Value {
    let assignee = t.assignee.as_ref().map(|a| {
        json!({
            "kind": a.kind(),
            "name": a.name(),
            "label": match a {
                Assignee::Operator(o) if o == me => "me".to_string(),
                Assignee::Operator(o) => o.clone(),
                Assignee::Queue(q) => format!("queue {q}"),
            },
        })
    });
    json!({
        "id": t.id,
        "title": t.title,
        "number": t.number,
        "note": t.note,
        "due": state.local_time(t.due_at_ms),
        "due_input": local_input(state, t.due_at_ms),
        "due_ms": t.due_at_ms,
        "overdue": t.is_overdue_at(now),
        "assignee": assignee,
        "state": t.state.as_str(),
        "params": t.params.iter().map(|p| json!({ "key": p.key, "value": p.value })).collect::<Vec<_>>(),
        "created_by": t.created_by,
        "created": state.local_time(t.created_at_ms),
        "calling": t.claimed_at(now),
        "done_by": t.done_by,
        "done": t.done_at_ms.map(|ms| state.local_time(ms)),
        "call_id": t.call_id,
        "callback_entry_id": t.callback_entry_id,
    })
}

/// The queue names the telephony side reports (none when it doesn't answer).
async fn queue_names(state: &WebState) -> Option<Vec<String>> {
    let figures = state.telephony.queue_figures().await?;
    Some(
        figures
            .as_array()?
            .iter()
            .filter_map(|q| q.get("queue")?.as_str().map(str::to_string))
            .collect(),
    )
}

/// The queues whose tasks the user sees: the operator's own queues; `None` for every
/// queue (supervisors, and a telephony side that names no queues).
fn task_queues(state: &WebState, s: &WebSession) -> Option<Vec<String>> {
    if s.user.role.allows(hotline_core::users::Role::Supervisor) {
        return None;
    }
    let names = state.telephony.queue_names();
    if names.is_empty() {
        return None;
    }
    let me = who(s);
    Some(
        names
            .into_iter()
            .map(|(q, _)| q)
            .filter(|q| state.telephony.queue_members(q).contains(&me))
            .collect(),
    )
}

/// The task, when this operator sees it; otherwise the 404 a missing task gets.
async fn visible_task(state: &WebState, s: &WebSession, id: i64) -> Result<Task, Response> {
    let me = who(s);
    let queues = task_queues(state, s);
    let refs: Vec<&str> = queues.iter().flatten().map(String::as_str).collect();
    let scope = match &queues {
        Some(_) => Queues::Only(&refs),
        None => Queues::Any,
    };
    match state.store.task(id).await {
        Ok(Some(t)) if t.visible_to(&me, scope) => Ok(t),
        Ok(_) => Err(task_refusal(TaskError::NotFound)),
        Err(e) => Err(store_failed(e)),
    }
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    /// `1`: done tasks too, after the open ones.
    #[serde(default)]
    done: Option<String>,
}

/// GET /console/tasks: the tasks this operator sees, open ones by due time (the overdue
/// first), each with `overdue`, who is `calling` it and times in the console's zone;
/// `?done=1` adds the done ones.
pub(super) async fn list(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Query(q): Query<ListQuery>,
) -> Response {
    let me = who(&s);
    let include_done = q.done.as_deref() == Some("1");
    let now = unix_ms();
    let queues = task_queues(&state, &s);
    let refs: Vec<&str> = queues.iter().flatten().map(String::as_str).collect();
    let scope = match &queues {
        Some(_) => Queues::Only(&refs),
        None => Queues::Any,
    };
    match state.store.tasks_for(&me, scope, include_done, SHOWN).await {
        Ok(tasks) => Json(json!({
            "me": me,
            // The console's wall clock, for the widget's default times: the browser may be
            // in another zone, and due times are entered in the console's.
            "now_input": local_input(&state, now),
            "tasks": tasks.iter().map(|t| task_json(&state, t, &me, now)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => store_failed(e),
    }
}

/// GET /console/tasks/assignees: whom a task can be given to, for the add form.
pub(super) async fn assignees(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
) -> Response {
    let me = who(&s);
    let operators = match state.store.operators().await {
        Ok(ops) => ops
            .into_iter()
            .map(|o| json!({ "name": o.name, "display_name": o.display_name }))
            .collect::<Vec<_>>(),
        Err(e) => return store_failed(e),
    };
    Json(json!({
        "me": me,
        "operators": operators,
        "queues": queue_names(&state).await.unwrap_or_default(),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddBody {
    title: String,
    #[serde(default)]
    number: Option<String>,
    /// `datetime-local` in the console's zone.
    due: String,
    #[serde(default)]
    note: Option<String>,
    /// `""`/absent: anyone; `me`; `operator:NAME`; `queue:NAME`.
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    params: Vec<ParamBody>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    callback_entry_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ParamBody {
    key: String,
    value: String,
}

/// The assignee the form chose; operators and queues must exist (a task for a typo would
/// be seen by no one but its author).
async fn parse_assignee(
    state: &WebState,
    me: &str,
    v: Option<&str>,
) -> Result<Option<Assignee>, Response> {
    let v = v.map(str::trim).unwrap_or_default();
    if v.is_empty() || v == "anyone" {
        return Ok(None);
    }
    if v == "me" {
        return Ok(Some(Assignee::Operator(me.to_string())));
    }
    if let Some(name) = v.strip_prefix("operator:").map(str::trim) {
        if name == me {
            return Ok(Some(Assignee::Operator(me.to_string())));
        }
        let known = state.store.operators().await.map_err(store_failed)?;
        if known.iter().any(|o| o.name == name) {
            return Ok(Some(Assignee::Operator(name.to_string())));
        }
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            format!("There is no operator named {name:?}."),
        ));
    }
    if let Some(name) = v.strip_prefix("queue:").map(str::trim) {
        // When the telephony side doesn't answer the name can't be checked: take it.
        match queue_names(state).await {
            Some(queues) if !queues.iter().any(|q| q == name) => Err(refusal(
                StatusCode::BAD_REQUEST,
                format!("There is no queue named {name:?}."),
            )),
            _ => Ok(Some(Assignee::Queue(name.to_string()))),
        }
    } else {
        Err(refusal(
            StatusCode::BAD_REQUEST,
            "Assign the task to me, an operator or a queue.",
        ))
    }
}

/// POST /console/tasks: adds a task; 201 with the task.
pub(super) async fn add(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    bytes: Bytes,
) -> Response {
    let b: AddBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let me = who(&s);
    let due_at_ms = match parse_local(state.settings.time_zone, &b.due) {
        Ok(ms) => ms,
        Err(m) => return refusal(StatusCode::BAD_REQUEST, m),
    };
    let assignee = match parse_assignee(&state, &me, b.assignee.as_deref()).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let params: Vec<TaskParam> = b
        .params
        .into_iter()
        .map(|p| TaskParam {
            key: p.key,
            value: p.value,
        })
        .collect();
    let now = unix_ms();
    let new = NewTask {
        title: &b.title,
        number: b.number.as_deref(),
        due_at_ms,
        note: b.note.as_deref(),
        params: &params,
        assignee,
        call_id: b.call_id.as_deref(),
        callback_entry_id: b.callback_entry_id,
        created_by: &me,
        now_ms: now,
    };
    match state.store.add_task(&new).await {
        Ok(t) => {
            tracing::info!(task = t.id, operator = %me, "task added");
            (StatusCode::CREATED, Json(task_json(&state, &t, &me, now))).into_response()
        }
        Err(e) => task_refusal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CompleteBody {
    #[serde(default)]
    note: Option<String>,
}

/// POST /console/tasks/{id}/complete: done (refused while someone else is calling).
pub(super) async fn complete(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let b: CompleteBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let me = who(&s);
    if let Err(r) = visible_task(&state, &s, id).await {
        return r;
    }
    let now = unix_ms();
    match state
        .store
        .complete_task(id, &me, b.note.as_deref(), now)
        .await
    {
        Ok(t) => Json(task_json(&state, &t, &me, now)).into_response(),
        Err(e) => task_refusal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RescheduleBody {
    due: String,
    #[serde(default)]
    note: Option<String>,
}

/// POST /console/tasks/{id}/reschedule: a new due time in the future, and maybe a note.
pub(super) async fn reschedule(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let b: RescheduleBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let due_at_ms = match parse_local(state.settings.time_zone, &b.due) {
        Ok(ms) => ms,
        Err(m) => return refusal(StatusCode::BAD_REQUEST, m),
    };
    let me = who(&s);
    if let Err(r) = visible_task(&state, &s, id).await {
        return r;
    }
    let now = unix_ms();
    match state
        .store
        .reschedule_task(id, &me, due_at_ms, b.note.as_deref(), now)
        .await
    {
        Ok(t) => Json(task_json(&state, &t, &me, now)).into_response(),
        Err(e) => task_refusal(e),
    }
}

/// POST /console/tasks/{id}/call: claims the task and starts a click-to-call to its
/// customer; when the call can't start, the claim is given back and the answer says why.
pub(super) async fn call(
    State(state): State<Arc<WebState>>,
    Csrf(OperatorPage(s)): Csrf<OperatorPage>,
    Path(id): Path<i64>,
) -> Response {
    let me = who(&s);
    if let Err(r) = visible_task(&state, &s, id).await {
        return r;
    }
    let task = match state
        .store
        .claim_task_call(id, &me, CLAIM_MS, unix_ms())
        .await
    {
        Ok(t) => t,
        Err(e) => return task_refusal(e),
    };
    // A claimed task has a number: the claim requires one.
    let Some(number) = task.number.clone() else {
        return task_refusal(TaskError::NoNumber);
    };
    match state.telephony.call_customer(&me, &number, None).await {
        Ok(call_id) => {
            tracing::info!(task = id, operator = %me, %call_id, "calling a task's customer");
            Json(json!({
                "id": id,
                "number": number,
                "call_id": call_id,
                "message": format!("Your phone rings first, then Hotline calls {number}."),
            }))
            .into_response()
        }
        Err(reason) => {
            if let Err(e) = state
                .store
                .release_task_call(id, &me, Some(&reason), unix_ms())
                .await
            {
                // The claim then lapses by itself after CLAIM_MS.
                tracing::error!(task = id, "giving back a task's call claim: {e}");
            }
            refusal(
                StatusCode::BAD_GATEWAY,
                format!("The call could not start: {reason}."),
            )
        }
    }
}

/// GET /console/tasks/{id}/events: the task's history, oldest first.
pub(super) async fn events(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = visible_task(&state, &s, id).await {
        return r;
    }
    match state.store.task_events(id).await {
        Ok(events) => Json(json!({
            "events": events
                .iter()
                .map(|e| json!({
                    "kind": e.kind.as_str(),
                    "operator": e.operator,
                    "at": state.local_time(e.at_ms),
                    "due": e.due_at_ms.map(|ms| state.local_time(ms)),
                    "note": e.note,
                }))
                .collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => store_failed(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use hotline_core::users::Role;

    use super::*;
    use crate::testing::{self, Call, FakePhones, Login, send_json};

    const HOUR: i64 = 3600 * 1000;

    struct Setup {
        app: Router,
        state: Arc<WebState>,
        phones: Arc<FakePhones>,
        anna: Login,
        bela: Login,
    }

    /// Operators anna and bela; the telephony side names the support and sales queues
    /// in its figures and answers calls with `outcome`.
    async fn setup(outcome: Result<String, String>) -> Setup {
        let store = testing::store().await;
        let anna = testing::login(&store, "anna", Role::Operator).await;
        let bela = testing::login(&store, "bela", Role::Operator).await;
        let phones = Arc::new(FakePhones {
            figures: Some(json!([{ "queue": "support" }, { "queue": "sales" }])),
            call_outcome: outcome,
            ..Default::default()
        });
        let state = testing::state(&store).phones(phones.clone()).build();
        Setup {
            app: crate::app(state.clone()),
            state,
            phones,
            anna,
            bela,
        }
    }

    /// The calls the task list asked for: `(operator, number)`, never for a callback entry.
    fn calls(s: &Setup) -> Vec<(String, String)> {
        s.phones
            .calls()
            .into_iter()
            .map(
                |Call {
                     operator,
                     number,
                     callback,
                 }| {
                    assert_eq!(callback, None);
                    (operator, number)
                },
            )
            .collect()
    }

    fn due_in(s: &Setup, ms: i64) -> String {
        local_input(&s.state, unix_ms() + ms)
    }

    async fn add_task(s: &Setup, who: &Login, body: Value) -> Value {
        let (status, task) = send_json(&s.app, who, "POST", "/console/tasks", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        task
    }

    async fn listed(s: &Setup, who: &Login) -> Vec<Value> {
        let (status, list) = send_json(&s.app, who, "GET", "/console/tasks", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["tasks"].as_array().unwrap().clone()
    }

    #[tokio::test]
    async fn add_list_reschedule_complete() {
        let s = setup(Ok("c2c-1".into())).await;
        let later = add_task(
            &s,
            &s.anna,
            json!({
                "title": "Call back about the contract",
                "number": "+36 30 123 4567",
                "due": due_in(&s, 2 * HOUR),
                "note": "mornings",
                "assignee": "queue:sales",
                "params": [{ "key": "contract", "value": "HU-1" }, { "key": "plan", "value": "gold" }],
            }),
        )
        .await;
        assert_eq!(later["number"], "+36301234567");
        assert_eq!(later["assignee"]["label"], "queue sales");
        assert_eq!(
            later["params"][1],
            json!({ "key": "plan", "value": "gold" })
        );
        assert_eq!(later["overdue"], false);
        // Due an hour ago: overdue, and first.
        let late = add_task(
            &s,
            &s.anna,
            json!({ "title": "Missed promise", "number": "+3611234567", "due": due_in(&s, -HOUR), "assignee": "me" }),
        )
        .await;
        assert_eq!(late["overdue"], true);
        assert_eq!(late["assignee"]["label"], "me");
        let mine = listed(&s, &s.anna).await;
        let ids: Vec<&Value> = mine.iter().map(|t| &t["id"]).collect();
        assert_eq!(ids, vec![&late["id"], &later["id"]]);
        // bela sees the queue's task, not anna's own.
        let his = listed(&s, &s.bela).await;
        assert_eq!(his.len(), 1);
        assert_eq!(his[0]["id"], later["id"]);
        let (status, answer) = send_json(
            &s.app,
            &s.bela,
            "POST",
            &format!("/console/tasks/{}/complete", late["id"]),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

        // Reschedule: not into the past; then to tomorrow.
        let uri = format!("/console/tasks/{}/reschedule", late["id"]);
        let (status, answer) = send_json(
            &s.app,
            &s.anna,
            "POST",
            &uri,
            Some(json!({ "due": due_in(&s, -2 * HOUR) })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"], "Choose a new due time in the future.");
        let (status, moved) = send_json(
            &s.app,
            &s.anna,
            "POST",
            &uri,
            Some(json!({ "due": due_in(&s, 24 * HOUR), "note": "after lunch" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{moved}");
        assert_eq!(
            (&moved["overdue"], &moved["note"]),
            (&json!(false), &json!("after lunch"))
        );
        let ids: Vec<Value> = listed(&s, &s.anna)
            .await
            .iter()
            .map(|t| t["id"].clone())
            .collect();
        assert_eq!(ids, vec![later["id"].clone(), late["id"].clone()]);

        // Complete: off the open list, still on the list with done ones.
        let uri = format!("/console/tasks/{}/complete", later["id"]);
        let (status, done) = send_json(&s.app, &s.bela, "POST", &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(
            (&done["state"], &done["done_by"]),
            (&json!("done"), &json!("bela"))
        );
        assert_eq!(listed(&s, &s.anna).await.len(), 1);
        let (_, all) = send_json(&s.app, &s.anna, "GET", "/console/tasks?done=1", None).await;
        assert_eq!(all["tasks"].as_array().unwrap().len(), 2);
        let (status, answer) = send_json(&s.app, &s.anna, "POST", &uri, Some(json!({}))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(answer["error"], "This task is already done.");

        let (status, history) = send_json(
            &s.app,
            &s.anna,
            "GET",
            &format!("/console/tasks/{}/events", later["id"]),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let kinds: Vec<&Value> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["kind"])
            .collect();
        assert_eq!(kinds, vec!["created", "completed"]);
    }

    #[tokio::test]
    async fn bad_requests_are_refused_with_a_message() {
        let s = setup(Ok("c2c-1".into())).await;
        let due = due_in(&s, HOUR);
        for (body, message) in [
            (
                json!({ "title": "t", "due": "tomorrow" }),
                "Give the due time as a date and a time.",
            ),
            (
                json!({ "title": "", "due": due }),
                "The title needs 1–200 characters on one line.",
            ),
            (
                json!({ "title": "t", "due": due, "number": "call me" }),
                "\"call me\" is not a phone number: digits with an optional leading +, 3–20 of them.",
            ),
            (
                json!({ "title": "t", "due": due, "assignee": "operator:zoe" }),
                "There is no operator named \"zoe\".",
            ),
            (
                json!({ "title": "t", "due": due, "assignee": "queue:nope" }),
                "There is no queue named \"nope\".",
            ),
            (
                json!({ "title": "t", "due": due, "assignee": "boss" }),
                "Assign the task to me, an operator or a queue.",
            ),
            (
                json!({ "title": "t", "due": due, "params": [{ "key": "a", "value": "1" }, { "key": "a", "value": "2" }] }),
                "The parameter \"a\" is given twice.",
            ),
            // 02:30 on the last Sunday of March 2026 doesn't exist in Budapest.
            (
                json!({ "title": "t", "due": "2026-03-29T02:30" }),
                "2026-03-29T02:30 doesn't exist in Europe/Budapest: the clocks go forward then.",
            ),
        ] {
            let (status, answer) = send_json(
                &s.app,
                &s.anna,
                "POST",
                "/console/tasks",
                Some(body.clone()),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert_eq!(answer["error"], message, "{body}");
        }
        let (status, answer) = send_json(&s.app, &s.anna, "POST", "/console/tasks", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"].as_str().unwrap().starts_with("Bad request"),
            "{answer}"
        );
        assert!(listed(&s, &s.anna).await.is_empty());

        // Without the CSRF token nothing happens.
        let req = Request::post("/console/tasks")
            .header("cookie", &s.anna.cookie)
            .header("content-type", "application/json")
            .body(Body::from(json!({ "title": "t", "due": due }).to_string()))
            .unwrap();
        assert_eq!(
            testing::send(&s.app, req).await.status,
            StatusCode::FORBIDDEN
        );
        assert!(listed(&s, &s.anna).await.is_empty());
        // No such task.
        let (status, answer) =
            send_json(&s.app, &s.anna, "POST", "/console/tasks/999/call", None).await;
        assert_eq!(
            (status, &answer["error"]),
            (StatusCode::NOT_FOUND, &json!("No such task."))
        );
    }

    #[tokio::test]
    async fn two_operators_call_together_one_wins() {
        let s = setup(Ok("c2c-1".into())).await;
        let task = add_task(
            &s,
            &s.anna,
            json!({ "title": "Call back", "number": "+36301234567", "due": due_in(&s, HOUR) }),
        )
        .await;
        let uri = format!("/console/tasks/{}/call", task["id"]);
        let (a, b) = tokio::join!(
            send_json(&s.app, &s.anna, "POST", &uri, None),
            send_json(&s.app, &s.bela, "POST", &uri, None)
        );
        let (winner, loser, loser_answer) = match (a.0, b.0) {
            (StatusCode::OK, StatusCode::CONFLICT) => ("anna", "bela", b.1),
            (StatusCode::CONFLICT, StatusCode::OK) => ("bela", "anna", a.1),
            other => panic!("expected one winner: {other:?} {} {}", a.1, b.1),
        };
        assert_eq!(
            loser_answer["error"],
            format!("{winner} is already calling this customer.")
        );
        // Only the winner's phone was rung.
        assert_eq!(
            calls(&s),
            vec![(winner.to_string(), "+36301234567".to_string())]
        );
        let list = listed(&s, &s.anna).await;
        assert_eq!(list[0]["calling"], winner);
        // The winner clicking again at once doesn't ring anyone twice.
        let winner_login = if winner == "anna" { &s.anna } else { &s.bela };
        let (status, answer) = send_json(&s.app, winner_login, "POST", &uri, None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(answer["error"], "You are already calling this customer.");
        assert_eq!(calls(&s).len(), 1);
        // The loser can't complete it while the winner is calling; the winner can.
        let done = format!("/console/tasks/{}/complete", task["id"]);
        let loser_login = if loser == "anna" { &s.anna } else { &s.bela };
        let (status, answer) = send_json(&s.app, loser_login, "POST", &done, None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            answer["error"],
            format!(
                "{winner} is calling this customer right now; try again when they have finished."
            )
        );
        let (status, _) = send_json(&s.app, winner_login, "POST", &done, None).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_call_that_cannot_start_gives_the_claim_back() {
        let reason = "no trunk is configured (trunk.address), so Hotline cannot call out";
        let s = setup(Err(reason.into())).await;
        let task = add_task(
            &s,
            &s.anna,
            json!({ "title": "Call back", "number": "+36301234567", "due": due_in(&s, HOUR) }),
        )
        .await;
        let uri = format!("/console/tasks/{}/call", task["id"]);
        let (status, answer) = send_json(&s.app, &s.anna, "POST", &uri, None).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            answer["error"],
            format!("The call could not start: {reason}.")
        );
        // Released at once: bela is not told anna is calling, he gets the same reason.
        assert_eq!(listed(&s, &s.anna).await[0]["calling"], Value::Null);
        let (status, answer) = send_json(&s.app, &s.bela, "POST", &uri, None).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
        let number = "+36301234567".to_string();
        assert_eq!(
            calls(&s),
            vec![("anna".into(), number.clone()), ("bela".into(), number)]
        );
        let (_, history) = send_json(
            &s.app,
            &s.anna,
            "GET",
            &format!("/console/tasks/{}/events", task["id"]),
            None,
        )
        .await;
        let events: Vec<(&Value, &Value)> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (&e["kind"], &e["operator"]))
            .collect();
        assert_eq!(
            events,
            vec![
                (&json!("created"), &json!("anna")),
                (&json!("claimed"), &json!("anna")),
                (&json!("released"), &json!("anna")),
                (&json!("claimed"), &json!("bela")),
                (&json!("released"), &json!("bela")),
            ]
        );
        assert_eq!(history["events"][2]["note"], reason);
        // A task without a number has nothing to call.
        let todo = add_task(
            &s,
            &s.anna,
            json!({ "title": "Send the brochure", "due": due_in(&s, HOUR) }),
        )
        .await;
        let (status, answer) = send_json(
            &s.app,
            &s.anna,
            "POST",
            &format!("/console/tasks/{}/call", todo["id"]),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(answer["error"], "This task has no customer number to call.");
    }

    #[test]
    fn local_times() {
        let tz = chrono_tz::Europe::Budapest;
        let ms = |rfc3339: &str| {
            chrono::DateTime::parse_from_rfc3339(rfc3339)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(
            parse_local(tz, "2026-07-01T14:30"),
            Ok(ms("2026-07-01T14:30:00+02:00"))
        );
        assert_eq!(
            parse_local(tz, " 2026-01-01T08:00:15 "),
            Ok(ms("2026-01-01T08:00:15+01:00"))
        );
        // 02:30 happens twice when the clocks go back: the first one.
        assert_eq!(
            parse_local(tz, "2026-10-25T02:30"),
            Ok(ms("2026-10-25T02:30:00+02:00"))
        );
        assert!(parse_local(tz, "2026-03-29T02:30").is_err());
        for bad in ["", "2026-07-01", "14:30", "2026-13-01T10:00", "tomorrow"] {
            assert!(parse_local(tz, bad).is_err(), "{bad:?}");
        }
    }
}
