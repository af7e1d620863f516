//! The tasks widget (seed 001, PRODUCT C4): operators' own to-dos, mostly callbacks, added
//! to a failed or answered call or freely from the home page.
//!
//! - A task has a title, an optional customer number, a due time, a note, up to
//!   [`MAX_PARAMS`] parameters (key/value, in the order given) and an assignee: an
//!   operator, a queue, or nobody. It may name the call it was made from and the
//!   callback-list entry it works off.
//! - Who sees a task (see [`Task::visible_to`]): the operator it is assigned to, the
//!   members of its queue, everyone when it is unassigned, and whoever created it (so a task
//!   handed to a colleague doesn't vanish from its author's list).
//! - Calling a task's customer claims it exactly like a callback-list entry: one
//!   conditional `UPDATE`, so of two operators at once exactly one wins and the other is
//!   told who is calling. A claim lapses after `claim_ms` (passed in), so a task whose
//!   operator vanished can be called again; the claimer may release it early (the call
//!   could not start), or claim again to call again — but not within [`REPEAT_CLAIM_MS`]
//!   of their last claim, so a double click doesn't dial the customer twice.
//! - Tasks are completed or rescheduled, never deleted. Every change (created,
//!   rescheduled, claimed, released, completed) is kept in the task's history.
//!
//! Times are unix ms on the clock the caller passes in; claims expire lazily.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::store::{Store, StoreError, text_column};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_NOTE_CHARS: usize = 2000;
/// Operator and queue names.
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_CALL_ID_CHARS: usize = 256;
pub const MAX_PARAMS: usize = 20;
pub const MAX_PARAM_KEY_CHARS: usize = 40;
pub const MAX_PARAM_VALUE_CHARS: usize = 500;
/// A new task may be due this far back (a callback promised earlier and noted late);
/// further back is a typo in the date.
pub const MAX_DUE_PAST_MS: i64 = 30 * DAY_MS;
/// How far ahead a task may be due.
pub const MAX_DUE_AHEAD_MS: i64 = 2 * 366 * DAY_MS;
/// The most tasks one list returns.
pub const MAX_LIST: i64 = 500;
/// The claimer may claim again (to call the customer again; it extends the claim) only
/// this long after their last claim, so a double click or a second tab doesn't dial twice.
pub const REPEAT_CLAIM_MS: i64 = 10_000;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Who should do the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignee {
    Operator(String),
    /// Any member of the queue.
    Queue(String),
}

impl Assignee {
    pub fn kind(&self) -> &'static str {
        match self {
            Assignee::Operator(_) => "operator",
            Assignee::Queue(_) => "queue",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Assignee::Operator(n) | Assignee::Queue(n) => n,
        }
    }

    fn from_columns(kind: Option<String>, name: Option<String>) -> Result<Option<Self>, String> {
        match (kind.as_deref(), name) {
            (None, None) => Ok(None),
            (Some("operator"), Some(n)) => Ok(Some(Assignee::Operator(n))),
            (Some("queue"), Some(n)) => Ok(Some(Assignee::Queue(n))),
            (k, n) => Err(format!("assignee {k:?}/{n:?}")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Open,
    /// Completed; kept for the record.
    Done,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        [TaskState::Open, TaskState::Done]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskParam {
    pub key: String,
    pub value: String,
}

/// A task to add. Text is checked and trimmed by [`Store::add_task`].
#[derive(Clone, Debug)]
pub struct NewTask<'a> {
    pub title: &'a str,
    /// Digits with an optional leading +; spaces and hyphens between them are dropped.
    pub number: Option<&'a str>,
    pub due_at_ms: i64,
    pub note: Option<&'a str>,
    pub params: &'a [TaskParam],
    pub assignee: Option<Assignee>,
    /// The call the task was made from.
    pub call_id: Option<&'a str>,
    /// The callback-list entry the task works off.
    pub callback_entry_id: Option<i64>,
    pub created_by: &'a str,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub number: Option<String>,
    pub note: Option<String>,
    pub due_at_ms: i64,
    /// None: anyone may take it.
    pub assignee: Option<Assignee>,
    pub state: TaskState,
    pub call_id: Option<String>,
    pub callback_entry_id: Option<i64>,
    pub created_by: String,
    pub created_at_ms: i64,
    /// The operator of the newest claim; it is in force until `claim_expires_at_ms`.
    pub claimed_by: Option<String>,
    pub claimed_at_ms: Option<i64>,
    pub claim_expires_at_ms: Option<i64>,
    pub done_by: Option<String>,
    pub done_at_ms: Option<i64>,
    pub params: Vec<TaskParam>,
}

impl Task {
    /// Open and past its due time.
    pub fn is_overdue_at(&self, now_ms: i64) -> bool {
        self.state == TaskState::Open && self.due_at_ms < now_ms
    }

    /// The operator whose claim is in force at `now_ms`.
    pub fn claimed_at(&self, now_ms: i64) -> Option<&str> {
        match (&self.claimed_by, self.claim_expires_at_ms) {
            (Some(by), Some(until)) if now_ms < until => Some(by),
            _ => None,
        }
    }

    /// Whether `operator`, a member of `queues`, sees the task: the same rule as
    /// [`Store::tasks_for`].
    pub fn visible_to(&self, operator: &str, queues: Queues<'_>) -> bool {
        self.created_by == operator
            || match &self.assignee {
                None => true,
                Some(Assignee::Operator(o)) => o == operator,
                Some(Assignee::Queue(q)) => match queues {
                    Queues::Any => true,
                    Queues::Only(qs) => qs.contains(&q.as_str()),
                },
            }
    }
}

/// The queues whose tasks an operator sees.
#[derive(Clone, Copy, Debug)]
pub enum Queues<'a> {
    /// Every queue's: for callers that don't know the operator's memberships (the web
    /// console: memberships live in the daemon's flow set, not the store).
    Any,
    /// Only these queues'.
    Only(&'a [&'a str]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskEventKind {
    Created,
    Rescheduled,
    /// An operator took the task to call the customer.
    Claimed,
    /// The claimer gave the claim back (the call could not start).
    Released,
    Completed,
}

text_column!(TaskEventKind, "task event");

impl TaskEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskEventKind::Created => "created",
            TaskEventKind::Rescheduled => "rescheduled",
            TaskEventKind::Claimed => "claimed",
            TaskEventKind::Released => "released",
            TaskEventKind::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<TaskEventKind> {
        [
            TaskEventKind::Created,
            TaskEventKind::Rescheduled,
            TaskEventKind::Claimed,
            TaskEventKind::Released,
            TaskEventKind::Completed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One change in a task's history.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TaskEvent {
    pub id: i64,
    pub task_id: i64,
    pub kind: TaskEventKind,
    pub operator: String,
    #[sqlx(rename = "at")]
    pub at_ms: i64,
    /// The due time a `Created` or `Rescheduled` event set.
    #[sqlx(rename = "due_at")]
    pub due_at_ms: Option<i64>,
    pub note: Option<String>,
}

/// Messages are sentences written for the operator's page and can be shown as they are.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    Invalid(String),
    #[error("No such task.")]
    NotFound,
    #[error("{by} is already calling this customer.")]
    AlreadyClaimed { by: String },
    /// The claimer clicked again within `REPEAT_CLAIM_MS`.
    #[error("You are already calling this customer.")]
    AlreadyCalling,
    #[error("{by} is calling this customer right now; try again when they have finished.")]
    CallInProgress { by: String },
    #[error("This task is already done.")]
    Done,
    #[error("This task has no customer number to call.")]
    NoNumber,
    #[error("Only the operator calling this customer can give the call back.")]
    NotClaimer,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TaskError {
    fn from(e: sqlx::Error) -> Self {
        TaskError::Store(e.into())
    }
}

fn invalid(message: String) -> TaskError {
    TaskError::Invalid(message)
}

/// One line of 1–`max` characters, no control characters; returns it trimmed.
fn one_line<'a>(what: &str, v: &'a str, max: usize) -> Result<&'a str, TaskError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(invalid(format!(
            "The {what} needs 1–{max} characters on one line."
        )));
    }
    Ok(v)
}

/// An optional note: blank is none; several lines are fine, other control characters not.
fn note_text(v: Option<&str>) -> Result<Option<&str>, TaskError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_NOTE_CHARS {
        return Err(invalid(format!(
            "The note is longer than {MAX_NOTE_CHARS} characters."
        )));
    }
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid("The note contains control characters.".into()));
    }
    Ok(Some(v))
}

/// A customer number as stored: the one canonical form (`hotline_ivr::number`, so a task
/// for `06 30 …` and a caller `+3630…` are one number): digits with an optional leading
/// +, 3–20 of them, separators people type between digit groups dropped.
pub fn normalize_number(v: &str) -> Result<String, TaskError> {
    crate::address::phone_number(v).map_err(|_| {
        invalid(format!(
            "{:?} is not a phone number: digits with an optional leading +, 3–20 of them.",
            v.trim()
        ))
    })
}

/// Parameters: at most `MAX_PARAMS`, keys 1–40 characters and distinct, values 1–500.
fn check_params(params: &[TaskParam]) -> Result<Vec<(&str, &str)>, TaskError> {
    if params.len() > MAX_PARAMS {
        return Err(invalid(format!(
            "A task can have at most {MAX_PARAMS} parameters."
        )));
    }
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(params.len());
    for p in params {
        let key = one_line("parameter name", &p.key, MAX_PARAM_KEY_CHARS)?;
        let value = one_line(
            &format!("value of parameter {key:?}"),
            &p.value,
            MAX_PARAM_VALUE_CHARS,
        )?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(invalid(format!("The parameter {key:?} is given twice.")));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn check_assignee(a: Option<&Assignee>) -> Result<Option<(&'static str, &str)>, TaskError> {
    a.map(|a| {
        let what = match a {
            Assignee::Operator(_) => "operator name",
            Assignee::Queue(_) => "queue name",
        };
        one_line(what, a.name(), MAX_NAME_CHARS).map(|n| (a.kind(), n))
    })
    .transpose()
}

fn check_claim_ms(claim_ms: i64) -> Result<(), TaskError> {
    if claim_ms <= 0 {
        return Err(invalid(format!(
            "The claim time ({claim_ms} ms) must be positive."
        )));
    }
    Ok(())
}

fn decode_err(what: &str, v: &str) -> sqlx::Error {
    crate::store::decode_error(&format!("task {what}"), v)
}

const TASK_COLUMNS: &str = "id, title, number, note, due_at, assignee_kind, assignee, state, \
     call_id, callback_entry_id, created_by, created_at, claimed_by, claimed_at, \
     claim_expires_at, done_by, done_at";

/// A task row; its parameters are filled in by the caller.
fn task_from(r: &AnyRow) -> Result<Task, sqlx::Error> {
    let state: String = r.try_get("state")?;
    let assignee = Assignee::from_columns(r.try_get("assignee_kind")?, r.try_get("assignee")?)
        .map_err(|a| decode_err("assignee", &a))?;
    Ok(Task {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        number: r.try_get("number")?,
        note: r.try_get("note")?,
        due_at_ms: r.try_get("due_at")?,
        assignee,
        state: TaskState::parse(&state).ok_or_else(|| decode_err("state", &state))?,
        call_id: r.try_get("call_id")?,
        callback_entry_id: r.try_get("callback_entry_id")?,
        created_by: r.try_get("created_by")?,
        created_at_ms: r.try_get("created_at")?,
        claimed_by: r.try_get("claimed_by")?,
        claimed_at_ms: r.try_get("claimed_at")?,
        claim_expires_at_ms: r.try_get("claim_expires_at")?,
        done_by: r.try_get("done_by")?,
        done_at_ms: r.try_get("done_at")?,
        params: Vec::new(),
    })
}

/// `$first, $first+1, …` for `n` values bound in order.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn add_event(
    tx: &mut Transaction<'static, Any>,
    task_id: i64,
    kind: TaskEventKind,
    operator: &str,
    now_ms: i64,
    due_at_ms: Option<i64>,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_events (task_id, kind, operator, at, due_at, note) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(task_id)
    .bind(kind.as_str())
    .bind(operator)
    .bind(now_ms)
    .bind(due_at_ms)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The task with its parameters, inside the transaction that changed it.
async fn task_in(tx: &mut Transaction<'static, Any>, id: i64) -> Result<Task, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let mut task = task_from(&row)?;
    let rows =
        sqlx::query("SELECT name, value FROM task_params WHERE task_id = $1 ORDER BY position")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    task.params = rows
        .iter()
        .map(|r| {
            Ok(TaskParam {
                key: r.try_get("name")?,
                value: r.try_get("value")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(task)
}

impl Store {
    /// Adds an open task and its `created` event. The due time may lie up to
    /// [`MAX_DUE_PAST_MS`] back (it is overdue at once) and up to [`MAX_DUE_AHEAD_MS`] ahead.
    pub async fn add_task(&self, t: &NewTask<'_>) -> Result<Task, TaskError> {
        let title = one_line("title", t.title, MAX_TITLE_CHARS)?;
        let number = t
            .number
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(normalize_number)
            .transpose()?;
        let note = note_text(t.note)?;
        let params = check_params(t.params)?;
        let assignee = check_assignee(t.assignee.as_ref())?;
        let call_id = t
            .call_id
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| one_line("call id", c, MAX_CALL_ID_CHARS))
            .transpose()?;
        let created_by = one_line("operator name", t.created_by, MAX_NAME_CHARS)?;
        if t.due_at_ms < t.now_ms.saturating_sub(MAX_DUE_PAST_MS) {
            return Err(invalid(
                "The due time is more than 30 days ago: check the date.".into(),
            ));
        }
        if t.due_at_ms > t.now_ms.saturating_add(MAX_DUE_AHEAD_MS) {
            return Err(invalid(
                "The due time is more than two years ahead: check the date.".into(),
            ));
        }

        let mut tx = self.pool().begin().await?;
        if let Some(entry) = t.callback_entry_id {
            let found: Option<(i64,)> = crate::store::fetch_by_id(
                &mut *tx,
                "SELECT id FROM callback_entries WHERE id = $1",
                entry,
            )
            .await?;
            if found.is_none() {
                return Err(invalid(format!("There is no callback-list entry {entry}.")));
            }
        }
        let row = sqlx::query(
            "INSERT INTO tasks (title, number, note, due_at, assignee_kind, assignee, state, \
             call_id, callback_entry_id, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10) RETURNING id",
        )
        .bind(title)
        .bind(number.as_deref())
        .bind(note)
        .bind(t.due_at_ms)
        .bind(assignee.map(|(kind, _)| kind))
        .bind(assignee.map(|(_, name)| name))
        .bind(call_id)
        .bind(t.callback_entry_id)
        .bind(created_by)
        .bind(t.now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        for (position, (key, value)) in (0_i64..).zip(&params) {
            sqlx::query(
                "INSERT INTO task_params (task_id, position, name, value) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(position)
            .bind(*key)
            .bind(*value)
            .execute(&mut *tx)
            .await?;
        }
        add_event(
            &mut tx,
            id,
            TaskEventKind::Created,
            created_by,
            t.now_ms,
            Some(t.due_at_ms),
            note,
        )
        .await?;
        let task = task_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// One task with its parameters.
    pub async fn task(&self, id: i64) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut tasks = vec![task_from(&row)?];
        self.fill_params(&mut tasks).await?;
        Ok(tasks.pop())
    }

    /// The tasks `operator` sees (assigned to them, to one of `queues`, to nobody, or
    /// created by them), open ones first by due time — so the overdue ones, due earliest,
    /// lead — then, with `include_done`, done ones, the newest first. At most `limit`.
    pub async fn tasks_for(
        &self,
        operator: &str,
        queues: Queues<'_>,
        include_done: bool,
        limit: i64,
    ) -> Result<Vec<Task>, StoreError> {
        // $1 operator, $2 done flag, $3 limit, then the queue names.
        let queue_rule = match queues {
            Queues::Any => "assignee_kind = 'queue'".to_string(),
            Queues::Only([]) => "1 = 0".to_string(),
            Queues::Only(qs) => format!(
                "(assignee_kind = 'queue' AND assignee IN ({}))",
                placeholders(4, qs.len())
            ),
        };
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE (state = 'open' OR $2 = 1) \
             AND (assignee_kind IS NULL OR created_by = $1 \
             OR (assignee_kind = 'operator' AND assignee = $1) OR {queue_rule}) \
             ORDER BY CASE WHEN state = 'open' THEN 0 ELSE 1 END, \
             CASE WHEN state = 'open' THEN due_at ELSE 0 - done_at END, id LIMIT $3"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(operator)
            .bind(i64::from(include_done))
            .bind(limit.clamp(0, MAX_LIST));
        if let Queues::Only(qs) = queues {
            for name in qs {
                q = q.bind(*name);
            }
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut tasks = rows.iter().map(task_from).collect::<Result<Vec<_>, _>>()?;
        self.fill_params(&mut tasks).await?;
        Ok(tasks)
    }

    /// Open tasks for the customer `number` (any written form), due earliest first, at
    /// most `limit`; the caller filters them with [`Task::visible_to`]. A caller without a
    /// usable number has none.
    pub async fn open_tasks_for_number(
        &self,
        number: &str,
        limit: i64,
    ) -> Result<Vec<Task>, StoreError> {
        let Ok(number) = normalize_number(number) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE state = 'open' AND number = $1 \
             ORDER BY due_at, id LIMIT $2"
        )))
        .bind(number)
        .bind(limit.clamp(0, MAX_LIST))
        .fetch_all(self.pool())
        .await?;
        let mut tasks = rows.iter().map(task_from).collect::<Result<Vec<_>, _>>()?;
        self.fill_params(&mut tasks).await?;
        Ok(tasks)
    }

    /// Loads the parameters of `tasks` in one query.
    async fn fill_params(&self, tasks: &mut [Task]) -> Result<(), StoreError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT task_id, name, value FROM task_params WHERE task_id IN ({}) \
             ORDER BY task_id, position",
            placeholders(1, tasks.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in tasks.iter() {
            q = q.bind(t.id);
        }
        for r in q.fetch_all(self.pool()).await? {
            let task_id: i64 = r.try_get("task_id")?;
            if let Some(t) = tasks.iter_mut().find(|t| t.id == task_id) {
                t.params.push(TaskParam {
                    key: r.try_get("name")?,
                    value: r.try_get("value")?,
                });
            }
        }
        Ok(())
    }

    /// Why a conditional update of an open task found no row.
    async fn refusal(
        &self,
        id: i64,
        operator: &str,
        now_ms: i64,
        claim: bool,
    ) -> Result<TaskError, StoreError> {
        Ok(match self.task(id).await? {
            None => TaskError::NotFound,
            Some(t) if t.state == TaskState::Done => TaskError::Done,
            Some(t) if claim && t.number.is_none() => TaskError::NoNumber,
            Some(t) => match t.claimed_at(now_ms) {
                Some(by) if claim && by == operator => TaskError::AlreadyCalling,
                Some(by) if claim => TaskError::AlreadyClaimed { by: by.to_string() },
                Some(by) => TaskError::CallInProgress { by: by.to_string() },
                // Released or lapsed between the update and this read: say so plainly.
                None => TaskError::CallInProgress {
                    by: "Another operator".to_string(),
                },
            },
        })
    }

    /// Marks the task done. Anyone may, except while another operator is calling the
    /// customer; the claimer's own claim ends with it.
    pub async fn complete_task(
        &self,
        id: i64,
        operator: &str,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<Task, TaskError> {
        let operator = one_line("operator name", operator, MAX_NAME_CHARS)?;
        let note = note_text(note)?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET state = 'done', done_by = $2, done_at = $3, \
             claimed_by = NULL, claimed_at = NULL, last_claimed_at = NULL, \
             claim_expires_at = NULL \
             WHERE id = $1 AND state = 'open' \
             AND (claimed_by IS NULL OR claim_expires_at <= $3 OR claimed_by = $2) \
             RETURNING id",
        )
        .bind(id)
        .bind(operator)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_none() {
            tx.rollback().await?;
            return Err(self.refusal(id, operator, now_ms, false).await?);
        }
        add_event(
            &mut tx,
            id,
            TaskEventKind::Completed,
            operator,
            now_ms,
            None,
            note,
        )
        .await?;
        let task = task_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// Moves the task to a new due time, which must be in the future; a note, when given,
    /// replaces the task's note (the old one stays in the history). Refused while another
    /// operator is calling the customer; the claimer's own claim ends with it (the call is
    /// over: the customer asked to be called later).
    pub async fn reschedule_task(
        &self,
        id: i64,
        operator: &str,
        due_at_ms: i64,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<Task, TaskError> {
        let operator = one_line("operator name", operator, MAX_NAME_CHARS)?;
        let note = note_text(note)?;
        if due_at_ms <= now_ms {
            return Err(invalid("Choose a new due time in the future.".into()));
        }
        if due_at_ms > now_ms.saturating_add(MAX_DUE_AHEAD_MS) {
            return Err(invalid(
                "The due time is more than two years ahead: check the date.".into(),
            ));
        }
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET due_at = $3, note = COALESCE($4, note), \
             claimed_by = NULL, claimed_at = NULL, last_claimed_at = NULL, \
             claim_expires_at = NULL \
             WHERE id = $1 AND state = 'open' \
             AND (claimed_by IS NULL OR claim_expires_at <= $5 OR claimed_by = $2) \
             RETURNING id",
        )
        .bind(id)
        .bind(operator)
        .bind(due_at_ms)
        .bind(note)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_none() {
            tx.rollback().await?;
            return Err(self.refusal(id, operator, now_ms, false).await?);
        }
        add_event(
            &mut tx,
            id,
            TaskEventKind::Rescheduled,
            operator,
            now_ms,
            Some(due_at_ms),
            note,
        )
        .await?;
        let task = task_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// Takes the task to call its customer, until `now_ms + claim_ms`. Of concurrent claims
    /// exactly one wins (one conditional `UPDATE`, as [`Store::claim_callback`]); the others
    /// get `AlreadyClaimed` with the winner's name. The claimer may claim again, to call
    /// again, from [`REPEAT_CLAIM_MS`] after their last claim (sooner: `AlreadyCalling`);
    /// it extends the claim. Each successful claim is a `claimed` event.
    pub async fn claim_task_call(
        &self,
        id: i64,
        operator: &str,
        claim_ms: i64,
        now_ms: i64,
    ) -> Result<Task, TaskError> {
        let operator = one_line("operator name", operator, MAX_NAME_CHARS)?;
        check_claim_ms(claim_ms)?;
        let expires = now_ms.saturating_add(claim_ms);
        // A few rounds only for the rare case where the task became claimable between a
        // lost UPDATE and the read that explains it (its claimer released it, say).
        for _ in 0..3 {
            let mut tx = self.pool().begin().await?;
            let row = sqlx::query(
                "UPDATE tasks SET \
                 claimed_at = CASE WHEN claimed_by = $2 AND claim_expires_at > $3 \
                     THEN claimed_at ELSE $3 END, \
                 claimed_by = $2, last_claimed_at = $3, claim_expires_at = $4 \
                 WHERE id = $1 AND state = 'open' AND number IS NOT NULL \
                 AND (claimed_by IS NULL OR claim_expires_at <= $3 \
                     OR (claimed_by = $2 AND last_claimed_at <= $5)) \
                 RETURNING id",
            )
            .bind(id)
            .bind(operator)
            .bind(now_ms)
            .bind(expires)
            .bind(now_ms.saturating_sub(REPEAT_CLAIM_MS))
            .fetch_optional(&mut *tx)
            .await?;
            if row.is_none() {
                tx.rollback().await?;
                match self.refusal(id, operator, now_ms, true).await? {
                    TaskError::CallInProgress { .. } => continue,
                    e => return Err(e),
                }
            }
            add_event(
                &mut tx,
                id,
                TaskEventKind::Claimed,
                operator,
                now_ms,
                None,
                None,
            )
            .await?;
            let task = task_in(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(task);
        }
        // Lost every round to claims that ended at once (calls that could not start).
        Err(TaskError::AlreadyClaimed {
            by: "Another operator".to_string(),
        })
    }

    /// Gives the claimer's claim back before it lapses (the call could not start), with
    /// the reason in the history. Only the operator of the claim may, and only while no one
    /// else has taken the task since.
    pub async fn release_task_call(
        &self,
        id: i64,
        operator: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<Task, TaskError> {
        let operator = one_line("operator name", operator, MAX_NAME_CHARS)?;
        let reason = note_text(reason)?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET claimed_by = NULL, claimed_at = NULL, last_claimed_at = NULL, \
             claim_expires_at = NULL \
             WHERE id = $1 AND state = 'open' AND claimed_by = $2 RETURNING id",
        )
        .bind(id)
        .bind(operator)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_none() {
            tx.rollback().await?;
            return Err(match self.task(id).await? {
                None => TaskError::NotFound,
                Some(t) if t.state == TaskState::Done => TaskError::Done,
                Some(_) => TaskError::NotClaimer,
            });
        }
        add_event(
            &mut tx,
            id,
            TaskEventKind::Released,
            operator,
            now_ms,
            None,
            reason,
        )
        .await?;
        let task = task_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// The task's history, oldest first.
    pub async fn task_events(&self, id: i64) -> Result<Vec<TaskEvent>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, task_id, kind, operator, at, due_at, note FROM task_events \
             WHERE task_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for (given, stored) in [
            ("+36301234567", "+36301234567"),
            ("+36 30 123-4567", "+36301234567"),
            ("112", "112"),
            // The one canonical form: the national prefix as +36 (hotline_ivr::number).
            ("06301234567", "+36301234567"),
        ] {
            assert_eq!(normalize_number(given).ok().as_deref(), Some(stored));
        }
        for bad in [
            "12",
            "+12",
            "++3630",
            "3630x1234",
            "",
            "+",
            "123456789012345678901",
        ] {
            assert!(normalize_number(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_number("12345678901234567890").is_ok());
        assert!(normalize_number("+12345678901234567890").is_ok());
    }

    #[test]
    fn params_are_checked() {
        let p = |k: &str, v: &str| TaskParam {
            key: k.into(),
            value: v.into(),
        };
        assert!(check_params(&[p("contract", "HU-123"), p(" plan ", " gold ")]).is_ok());
        assert_eq!(
            check_params(&[p(" plan ", " gold ")]).ok(),
            Some(vec![("plan", "gold")])
        );
        assert!(check_params(&[p("", "x")]).is_err());
        assert!(check_params(&[p("k", "")]).is_err());
        assert!(check_params(&[p(&"k".repeat(41), "x")]).is_err());
        assert!(check_params(&[p(&"k".repeat(40), "x")]).is_ok());
        assert!(check_params(&[p("a\u{7}", "x")]).is_err());
        assert!(check_params(&[p("a", "x"), p("a", "y")]).is_err());
        let many: Vec<_> = (0..21).map(|i| p(&format!("k{i}"), "v")).collect();
        assert!(check_params(&many).is_err());
        assert!(check_params(&many[..20]).is_ok());
    }

    #[test]
    fn visibility() {
        let task = |assignee: Option<Assignee>| Task {
            id: 1,
            title: "t".into(),
            number: None,
            note: None,
            due_at_ms: 0,
            assignee,
            state: TaskState::Open,
            call_id: None,
            callback_entry_id: None,
            created_by: "zoe".into(),
            created_at_ms: 0,
            claimed_by: None,
            claimed_at_ms: None,
            claim_expires_at_ms: None,
            done_by: None,
            done_at_ms: None,
            params: Vec::new(),
        };
        let sales = task(Some(Assignee::Queue("sales".into())));
        assert!(sales.visible_to("anna", Queues::Any));
        assert!(sales.visible_to("anna", Queues::Only(&["sales"])));
        assert!(!sales.visible_to("anna", Queues::Only(&["support"])));
        let bela = task(Some(Assignee::Operator("bela".into())));
        assert!(bela.visible_to("bela", Queues::Any));
        assert!(!bela.visible_to("anna", Queues::Any));
        assert!(
            bela.visible_to("zoe", Queues::Only(&[])),
            "the author sees it"
        );
        assert!(task(None).visible_to("anna", Queues::Only(&[])));
    }

    #[test]
    fn names_round_trip() {
        for k in [
            TaskEventKind::Created,
            TaskEventKind::Rescheduled,
            TaskEventKind::Claimed,
            TaskEventKind::Released,
            TaskEventKind::Completed,
        ] {
            assert_eq!(TaskEventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(TaskState::parse("done"), Some(TaskState::Done));
        assert_eq!(TaskState::parse("deleted"), None);
    }
}
