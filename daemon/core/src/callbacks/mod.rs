//! The shared callback list (seed 001, PRODUCT C1/C2): customers to call back, the same
//! list for every operator.
//!
//! - One open entry per customer number. A new missed call or callback request from a
//!   number already on the list updates its entry (count, last time, promise, queue). The
//!   insert-or-update is one `INSERT … ON CONFLICT … DO UPDATE` against a partial UNIQUE
//!   index on the number among open entries, so concurrent notes can't make two entries.
//!   Anonymous callers are never entries.
//! - An operator claims an entry before dialling: one conditional `UPDATE`, so of two
//!   operators at once exactly one wins. A claimed entry is hidden from the list until the
//!   claim expires (`claim_ms`, passed in), so an entry whose operator vanished comes back.
//! - The claimer reports the outcome: success closes the entry for good (state `done`);
//!   any failure puts it back on the list after `hide_ms`. Every attempt is kept.
//! - There is no delete: an entry leaves the list only through a successful callback.
//!
//! Times are unix ms on the clock the caller passes in; claims and hiding expire lazily.

use sqlx::{AnyConnection, FromRow, Row};

pub mod missed;
pub mod requests;

use crate::store::{Store, StoreError, fetch_by_id, text_column};

pub const MAX_NUMBER_CHARS: usize = 64;
pub const MAX_QUEUE_CHARS: usize = 100;
pub const MAX_OPERATOR_CHARS: usize = 100;
pub const MAX_NOTE_CHARS: usize = 2000;
pub const MAX_CALL_ID_CHARS: usize = 256;

/// Where a note came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackSource {
    /// A `callback` step in a flow, or the callback offer while waiting.
    Ivr,
    /// An abandoned call, or one outside hours.
    Missed,
    /// An operator added it on the web.
    Operator,
}

impl CallbackSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackSource::Ivr => "ivr",
            CallbackSource::Missed => "missed",
            CallbackSource::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<CallbackSource> {
        [
            CallbackSource::Ivr,
            CallbackSource::Missed,
            CallbackSource::Operator,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// How a callback attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The customer was reached: the entry leaves the list for good.
    Success,
    NoAnswer,
    Busy,
    Rejected,
    Failed,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::NoAnswer => "no_answer",
            AttemptOutcome::Busy => "busy",
            AttemptOutcome::Rejected => "rejected",
            AttemptOutcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptOutcome> {
        [
            AttemptOutcome::Success,
            AttemptOutcome::NoAnswer,
            AttemptOutcome::Busy,
            AttemptOutcome::Rejected,
            AttemptOutcome::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// On the list (possibly claimed or hidden for a while).
    Open,
    /// Called back successfully; kept for the record, never on the list again.
    Done,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Open => "open",
            EntryState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<EntryState> {
        [EntryState::Open, EntryState::Done]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A missed call or callback request to put on the list.
#[derive(Clone, Debug)]
pub struct NewCallbackNote<'a> {
    /// The caller's number as the call delivered it; "anonymous" or empty is refused.
    pub number: &'a str,
    pub queue: Option<&'a str>,
    pub source: CallbackSource,
    /// When the caller was told to expect the call.
    pub promised_at_ms: Option<i64>,
    pub call_id: Option<&'a str>,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackEntry {
    pub id: i64,
    pub number: String,
    pub state: EntryState,
    /// The newest note's queue (an older one is kept if the newest has none).
    pub queue: Option<String>,
    /// The newest note's source.
    pub source: CallbackSource,
    /// The newest note's call id (an older one is kept if the newest has none).
    pub call_id: Option<String>,
    /// How many missed calls and requests the entry stands for.
    #[sqlx(rename = "call_count")]
    pub count: i64,
    #[sqlx(rename = "first_at")]
    pub first_at_ms: i64,
    #[sqlx(rename = "last_at")]
    pub last_at_ms: i64,
    /// The earliest promise made to the caller: keeping it keeps every later one.
    #[sqlx(rename = "promised_at")]
    pub promised_at_ms: Option<i64>,
    /// Finished attempts (a claim that lapsed without an outcome doesn't count).
    pub attempts: i64,
    pub last_outcome: Option<AttemptOutcome>,
    /// The operator of the newest claim; it is in force until `claim_expires_at_ms`.
    pub claimed_by: Option<String>,
    #[sqlx(rename = "claimed_at")]
    pub claimed_at_ms: Option<i64>,
    #[sqlx(rename = "claim_expires_at")]
    pub claim_expires_at_ms: Option<i64>,
    /// After a failed attempt the entry is off the list until then.
    #[sqlx(rename = "hidden_until")]
    pub hidden_until_ms: Option<i64>,
    #[sqlx(rename = "done_at")]
    pub done_at_ms: Option<i64>,
    /// Attempts the automatic callback made.
    pub auto_attempts: i64,
    /// The automatic callback doesn't try again before then.
    #[sqlx(rename = "next_auto_at")]
    pub next_auto_at_ms: Option<i64>,
    /// The operator whose direct-callback customer this is (their call came in on the
    /// operator's own number and was missed).
    pub for_operator: Option<String>,
    /// Why the dial plan refuses the number (T5): listed, never dialled automatically.
    pub undialable: Option<String>,
}

impl CallbackEntry {
    /// The time the list sorts by: the promise, else the first call.
    pub fn due_at_ms(&self) -> i64 {
        self.promised_at_ms.unwrap_or(self.first_at_ms)
    }

    /// The operator whose claim is in force at `now_ms`.
    pub fn claimed_at(&self, now_ms: i64) -> Option<&str> {
        match (&self.claimed_by, self.claim_expires_at_ms) {
            (Some(by), Some(until)) if now_ms < until => Some(by),
            _ => None,
        }
    }

    pub fn is_hidden_at(&self, now_ms: i64) -> bool {
        self.hidden_until_ms.is_some_and(|until| now_ms < until)
    }

    /// Whether the shared list shows it at `now_ms`.
    pub fn is_listed_at(&self, now_ms: i64) -> bool {
        self.state == EntryState::Open
            && self.claimed_at(now_ms).is_none()
            && !self.is_hidden_at(now_ms)
    }
}

/// One callback attempt, from the claim to the outcome.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackAttempt {
    pub id: i64,
    pub entry_id: i64,
    pub operator: String,
    /// None: in progress, or (with `ended_at_ms`) the claim lapsed and another operator
    /// took the entry over then.
    pub outcome: Option<AttemptOutcome>,
    pub note: Option<String>,
    #[sqlx(rename = "started_at")]
    pub started_at_ms: i64,
    #[sqlx(rename = "ended_at")]
    pub ended_at_ms: Option<i64>,
}

/// How promised callback times were kept (see [`Store::callback_promise_report`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromiseReport {
    /// Called back successfully by the promised time.
    pub kept: i64,
    /// Called back successfully, after the promised time.
    pub late: i64,
    /// Not called back yet, and the promised time has passed.
    pub overdue: i64,
    /// Not called back yet, the promised time still ahead.
    pub pending: i64,
    /// Entries without a promise.
    pub unpromised: i64,
}

fn truncate_note(n: &str) -> String {
    n.chars().take(MAX_NOTE_CHARS).collect()
}

/// Messages are written for the operator's page and can be shown as they are.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("anonymous callers can't be called back")]
    Anonymous,
    #[error("{0}")]
    Invalid(String),
    #[error("no such callback entry")]
    NotFound,
    #[error("{by} is already calling this number")]
    AlreadyClaimed { by: String },
    #[error("this number was tried recently; it comes back on the list later")]
    Hidden { until_ms: i64 },
    #[error("this customer has already been called back")]
    Done,
    #[error("the outcome of that attempt can no longer be changed")]
    TooLate,
    #[error("{}", not_claimer_message(by.as_deref()))]
    NotClaimer { by: Option<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CallbackError {
    fn from(e: sqlx::Error) -> Self {
        CallbackError::Store(e.into())
    }
}

fn not_claimer_message(by: Option<&str>) -> String {
    match by {
        Some(by) => format!("only {by}, who is calling this number, can record the outcome"),
        None => "take the entry first: only the operator calling it can record the outcome".into(),
    }
}

/// Whether the number is a caller we can't call back.
pub fn is_anonymous(number: &str) -> bool {
    let n = number.trim();
    n.is_empty() || n.eq_ignore_ascii_case("anonymous")
}

fn check_text(what: &str, v: &str, max: usize) -> Result<(), CallbackError> {
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(CallbackError::Invalid(format!(
            "the {what} needs 1–{max} characters on one line"
        )));
    }
    Ok(())
}

const ENTRY_COLUMNS: &str = "id, number, state, queue, source, call_id, call_count, first_at, \
     last_at, promised_at, attempts, last_outcome, claimed_by, claimed_at, claim_expires_at, \
     hidden_until, done_at, auto_attempts, next_auto_at, for_operator, undialable";

fn entry_by_id_sql() -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM callback_entries WHERE id = $1"
    ))
}

/// The entry as it is now, inside the transaction that changed it.
async fn entry_in(conn: &mut AnyConnection, id: i64) -> Result<CallbackEntry, sqlx::Error> {
    fetch_by_id(conn, entry_by_id_sql(), id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

text_column!(AttemptOutcome, "callback outcome");
text_column!(EntryState, "callback state");
text_column!(CallbackSource, "callback source");

impl Store {
    /// Puts a missed call or callback request on the list: a new entry for a number not on
    /// it, else its open entry is updated (count + 1, last time, the earliest promise, the
    /// newest queue, source and call id) and comes back from hiding after a failed attempt,
    /// since the customer is calling again. A claim in progress is left alone.
    pub async fn note_callback(
        &self,
        n: &NewCallbackNote<'_>,
    ) -> Result<CallbackEntry, CallbackError> {
        if is_anonymous(n.number) {
            return Err(CallbackError::Anonymous);
        }
        let number = n.number.trim();
        check_text("number", number, MAX_NUMBER_CHARS)?;
        if let Some(q) = n.queue {
            check_text("queue name", q, MAX_QUEUE_CHARS)?;
        }
        if let Some(c) = n.call_id {
            check_text("call id", c, MAX_CALL_ID_CHARS)?;
        }
        // Conflict target with the partial index's predicate: SQLite ≥ 3.24 and PostgreSQL
        // both infer the index from it; a done entry doesn't conflict, so the number gets a
        // new entry. Times are compared with CASE (no portable GREATEST/LEAST).
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO callback_entries (number, state, queue, source, call_id, call_count, \
             first_at, last_at, promised_at) VALUES ($1, 'open', $2, $3, $4, 1, $5, $5, $6) \
             ON CONFLICT (number) WHERE state <> 'done' DO UPDATE SET \
             call_count = callback_entries.call_count + 1, \
             queue = COALESCE(excluded.queue, callback_entries.queue), \
             source = excluded.source, \
             call_id = COALESCE(excluded.call_id, callback_entries.call_id), \
             first_at = CASE WHEN excluded.first_at < callback_entries.first_at \
                 THEN excluded.first_at ELSE callback_entries.first_at END, \
             last_at = CASE WHEN excluded.last_at > callback_entries.last_at \
                 THEN excluded.last_at ELSE callback_entries.last_at END, \
             promised_at = CASE WHEN callback_entries.promised_at IS NULL \
                 OR excluded.promised_at < callback_entries.promised_at \
                 THEN COALESCE(excluded.promised_at, callback_entries.promised_at) \
                 ELSE callback_entries.promised_at END, \
             hidden_until = NULL \
             RETURNING {ENTRY_COLUMNS}"
        )))
        .bind(number)
        .bind(n.queue)
        .bind(n.source.as_str())
        .bind(n.call_id)
        .bind(n.now_ms)
        .bind(n.promised_at_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(CallbackEntry::from_row(&row)?)
    }

    /// Marks the entry's number as one the dial plan refuses (`why`), or dialable again
    /// (`None`): automatic callbacks pass it by, the widget says so.
    pub async fn mark_undialable(&self, id: i64, why: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE callback_entries SET undialable = $2 WHERE id = $1")
            .bind(id)
            .bind(why)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn callback_entry(&self, id: i64) -> Result<Option<CallbackEntry>, StoreError> {
        Ok(fetch_by_id(self.pool(), entry_by_id_sql(), id).await?)
    }

    /// The list every operator sees: open entries neither claimed nor hidden at `now_ms`,
    /// the earliest promise (else the earliest first call) first.
    pub async fn callback_list(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<CallbackEntry>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM callback_entries WHERE state = 'open' \
             AND (claimed_by IS NULL OR claim_expires_at <= $1) \
             AND (hidden_until IS NULL OR hidden_until <= $1) \
             ORDER BY COALESCE(promised_at, first_at), id LIMIT $2"
        )))
        .bind(now_ms)
        .bind(limit.clamp(0, 1000))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(CallbackEntry::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The callback-list entries for `number` (as the calls delivered it), open ones
    /// first, then the newest; at most `limit`: the console's screen pop shows them.
    pub async fn callback_entries_for_number(
        &self,
        number: &str,
        limit: i64,
    ) -> Result<Vec<CallbackEntry>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM callback_entries WHERE number = $1 \
             ORDER BY CASE WHEN state = 'open' THEN 0 ELSE 1 END, last_at DESC, id DESC \
             LIMIT $2"
        )))
        .bind(number.trim())
        .bind(limit.clamp(0, 1000))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(CallbackEntry::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Takes an entry to call it: it leaves everyone's list until `now_ms + claim_ms`,
    /// unless the outcome comes first. Of concurrent claims exactly one wins (one
    /// conditional `UPDATE`); the others get `AlreadyClaimed`. The claimer may claim
    /// again to extend the claim (same attempt). Starts an attempt in the history.
    pub async fn claim_callback(
        &self,
        entry_id: i64,
        operator: &str,
        claim_ms: i64,
        now_ms: i64,
    ) -> Result<CallbackEntry, CallbackError> {
        self.claim(entry_id, operator, claim_ms, now_ms, true).await
    }

    /// Takes an entry to start a call on it, as [`Store::claim_callback`] but only when no
    /// claim holds, the claimer's own included: of a double click, two tabs or two nodes
    /// exactly one starts the call (one conditional `UPDATE`); the others get
    /// `AlreadyClaimed`.
    pub async fn claim_callback_once(
        &self,
        entry_id: i64,
        claimer: &str,
        claim_ms: i64,
        now_ms: i64,
    ) -> Result<CallbackEntry, CallbackError> {
        self.claim(entry_id, claimer, claim_ms, now_ms, false).await
    }

    async fn claim(
        &self,
        entry_id: i64,
        operator: &str,
        claim_ms: i64,
        now_ms: i64,
        extend_own: bool,
    ) -> Result<CallbackEntry, CallbackError> {
        check_text("operator name", operator, MAX_OPERATOR_CHARS)?;
        if claim_ms <= 0 {
            return Err(CallbackError::Invalid(format!(
                "claim time {claim_ms} ms: must be positive"
            )));
        }
        let expires = now_ms.saturating_add(claim_ms);
        // A few rounds only for the rare case where the entry became claimable between a
        // lost UPDATE and the read that explains it (its claimer finished with a failure
        // of hide 0, say).
        for _ in 0..3 {
            let mut tx = self.pool().begin().await?;
            let row = sqlx::query(
                "UPDATE callback_entries SET \
                 claim_attempt_id = CASE WHEN claimed_by = $2 THEN claim_attempt_id ELSE NULL END, \
                 claimed_at = CASE WHEN claimed_by = $2 THEN claimed_at ELSE $3 END, \
                 claimed_by = $2, claim_expires_at = $4 \
                 WHERE id = $1 AND state = 'open' \
                 AND (hidden_until IS NULL OR hidden_until <= $3) \
                 AND (claimed_by IS NULL OR claim_expires_at <= $3 \
                      OR (claimed_by = $2 AND $5 = 1)) \
                 RETURNING claim_attempt_id",
            )
            .bind(entry_id)
            .bind(operator)
            .bind(now_ms)
            .bind(expires)
            .bind(i64::from(extend_own))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                match self.callback_entry(entry_id).await? {
                    None => return Err(CallbackError::NotFound),
                    Some(e) if e.state == EntryState::Done => return Err(CallbackError::Done),
                    Some(e) => {
                        if let Some(by) = e.claimed_at(now_ms) {
                            return Err(CallbackError::AlreadyClaimed { by: by.to_string() });
                        }
                        if let Some(until_ms) = e.hidden_until_ms.filter(|u| now_ms < *u) {
                            return Err(CallbackError::Hidden { until_ms });
                        }
                        continue;
                    }
                }
            };
            let attempt: Option<i64> = row.try_get(0)?;
            if attempt.is_none() {
                // A lapsed claim taken over: its attempt ends now, without an outcome.
                sqlx::query(
                    "UPDATE callback_attempts SET ended_at = $2 \
                     WHERE entry_id = $1 AND ended_at IS NULL",
                )
                .bind(entry_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query(
                    "INSERT INTO callback_attempts (entry_id, operator, started_at) \
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(entry_id)
                .bind(operator)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
                let attempt_id: i64 = row.try_get(0)?;
                sqlx::query("UPDATE callback_entries SET claim_attempt_id = $1 WHERE id = $2")
                    .bind(attempt_id)
                    .bind(entry_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let entry = entry_in(&mut tx, entry_id).await?;
            tx.commit().await?;
            return Ok(entry);
        }
        Err(CallbackError::AlreadyClaimed {
            by: String::from("another operator"),
        })
    }

    /// Records the outcome of the claimer's attempt. Success: the entry is done and never
    /// on the list again (a later call from the number makes a new entry). Any other
    /// outcome: back on the list at `now_ms + hide_ms`, attempts + 1. Only the operator of
    /// the newest claim may finish, even after the claim lapsed, as long as nobody else
    /// has taken the entry since (a long call shouldn't lose its outcome).
    pub async fn finish_callback(
        &self,
        entry_id: i64,
        operator: &str,
        outcome: AttemptOutcome,
        note: Option<&str>,
        hide_ms: i64,
        now_ms: i64,
    ) -> Result<CallbackEntry, CallbackError> {
        self.finish(entry_id, operator, outcome, note, hide_ms, None, now_ms)
            .await
    }

    /// [`Store::finish_callback`] for an attempt of the automatic callback: it also counts
    /// the attempt and holds the next one off for `retry_ms`.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_auto_callback(
        &self,
        entry_id: i64,
        claimer: &str,
        outcome: AttemptOutcome,
        note: Option<&str>,
        hide_ms: i64,
        retry_ms: i64,
        now_ms: i64,
    ) -> Result<CallbackEntry, CallbackError> {
        self.finish(
            entry_id,
            claimer,
            outcome,
            note,
            hide_ms,
            Some(now_ms.saturating_add(retry_ms.max(0))),
            now_ms,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        entry_id: i64,
        operator: &str,
        outcome: AttemptOutcome,
        note: Option<&str>,
        hide_ms: i64,
        next_auto_at: Option<i64>,
        now_ms: i64,
    ) -> Result<CallbackEntry, CallbackError> {
        check_text("operator name", operator, MAX_OPERATOR_CHARS)?;
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if let Some(n) = note
            && n.chars().count() > MAX_NOTE_CHARS
        {
            return Err(CallbackError::Invalid(format!(
                "the note is longer than {MAX_NOTE_CHARS} characters"
            )));
        }
        if hide_ms < 0 {
            return Err(CallbackError::Invalid(format!(
                "hide time {hide_ms} ms: can't be negative"
            )));
        }
        let (state, done_at, hidden_until) = if outcome == AttemptOutcome::Success {
            (EntryState::Done, Some(now_ms), None)
        } else {
            (EntryState::Open, None, Some(now_ms.saturating_add(hide_ms)))
        };
        let mut tx = self.pool().begin().await?;
        // claim_attempt_id is left as is: RETURNING gives it to us, and it means nothing
        // once claimed_by is NULL (a new claim replaces it).
        let row = sqlx::query(
            "UPDATE callback_entries SET state = $3, done_at = $4, hidden_until = $5, \
             attempts = attempts + 1, last_outcome = $6, \
             auto_attempts = auto_attempts + $7, \
             next_auto_at = COALESCE($8, next_auto_at), \
             claimed_by = NULL, claimed_at = NULL, claim_expires_at = NULL \
             WHERE id = $1 AND state = 'open' AND claimed_by = $2 \
             RETURNING claim_attempt_id",
        )
        .bind(entry_id)
        .bind(operator)
        .bind(state.as_str())
        .bind(done_at)
        .bind(hidden_until)
        .bind(outcome.as_str())
        .bind(i64::from(next_auto_at.is_some()))
        .bind(next_auto_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(match self.callback_entry(entry_id).await? {
                None => CallbackError::NotFound,
                Some(e) if e.state == EntryState::Done => CallbackError::Done,
                Some(e) => CallbackError::NotClaimer { by: e.claimed_by },
            });
        };
        let attempt: Option<i64> = row.try_get(0)?;
        if let Some(attempt) = attempt {
            sqlx::query(
                "UPDATE callback_attempts SET outcome = $1, note = $2, ended_at = $3 \
                 WHERE id = $4",
            )
            .bind(outcome.as_str())
            .bind(note)
            .bind(now_ms)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        }
        let entry = entry_in(&mut tx, entry_id).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Gives a claim back without an attempt counted (the call could not start): the
    /// entry is on the list again at once; the history keeps the attempt with `note`.
    pub async fn release_callback(
        &self,
        entry_id: i64,
        claimer: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<(), CallbackError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "UPDATE callback_entries SET claimed_by = NULL, claimed_at = NULL, \
             claim_expires_at = NULL WHERE id = $1 AND state = 'open' AND claimed_by = $2 \
             RETURNING claim_attempt_id",
        )
        .bind(entry_id)
        .bind(claimer)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(CallbackError::NotClaimer { by: None });
        };
        let attempt: Option<i64> = row.try_get(0)?;
        if let Some(attempt) = attempt {
            sqlx::query("UPDATE callback_attempts SET note = $1, ended_at = $2 WHERE id = $3")
                .bind(truncate_note(note))
                .bind(now_ms)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The operator corrects the outcome of their own newest attempt on an entry, within
    /// `window_ms` of its end: a voicemail that answered was no success (the entry comes
    /// back after `hide_ms`), or a short call was one (the entry is done). When the number
    /// is on the list again already (the customer called meanwhile), a reopened entry
    /// stays closed: the new one stands for it.
    #[allow(clippy::too_many_arguments)]
    pub async fn correct_callback(
        &self,
        entry_id: i64,
        operator: &str,
        outcome: AttemptOutcome,
        note: Option<&str>,
        hide_ms: i64,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<CallbackEntry, CallbackError> {
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        let mut tx = self.pool().begin().await?;
        let newest = sqlx::query(
            "SELECT id, operator, outcome, ended_at FROM callback_attempts \
             WHERE entry_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(entry_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(newest) = newest else {
            tx.rollback().await?;
            return Err(match self.callback_entry(entry_id).await? {
                None => CallbackError::NotFound,
                Some(_) => CallbackError::NotClaimer { by: None },
            });
        };
        let attempt: i64 = newest.try_get("id")?;
        let by: String = newest.try_get("operator")?;
        let previous: Option<String> = newest.try_get("outcome")?;
        let ended: Option<i64> = newest.try_get("ended_at")?;
        if by != operator {
            tx.rollback().await?;
            return Err(CallbackError::NotClaimer { by: Some(by) });
        }
        let (Some(_), Some(ended)) = (previous, ended) else {
            tx.rollback().await?;
            return Err(CallbackError::Invalid(
                "this attempt has no outcome yet: finish the call first".into(),
            ));
        };
        if now_ms.saturating_sub(ended) > window_ms {
            tx.rollback().await?;
            return Err(CallbackError::TooLate);
        }
        sqlx::query(
            "UPDATE callback_attempts SET outcome = $1, note = COALESCE($2, note) WHERE id = $3",
        )
        .bind(outcome.as_str())
        .bind(note.map(truncate_note))
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        let entry = entry_in(&mut tx, entry_id).await?;
        if entry.claimed_at(now_ms).is_some() {
            tx.rollback().await?;
            return Err(CallbackError::AlreadyClaimed {
                by: entry.claimed_by.unwrap_or_default(),
            });
        }
        if outcome == AttemptOutcome::Success {
            sqlx::query(
                "UPDATE callback_entries SET state = 'done', done_at = $2, hidden_until = NULL, \
                 last_outcome = $3 WHERE id = $1",
            )
            .bind(entry_id)
            .bind(now_ms)
            .bind(outcome.as_str())
            .execute(&mut *tx)
            .await?;
        } else {
            let reopen = entry.state == EntryState::Done
                && sqlx::query(
                    "SELECT id FROM callback_entries WHERE number = $1 AND state <> 'done'",
                )
                .bind(&entry.number)
                .fetch_optional(&mut *tx)
                .await?
                .is_none();
            if entry.state == EntryState::Open || reopen {
                sqlx::query(
                    "UPDATE callback_entries SET state = 'open', done_at = NULL, \
                     hidden_until = $2, last_outcome = $3 WHERE id = $1",
                )
                .bind(entry_id)
                .bind(now_ms.saturating_add(hide_ms.max(0)))
                .bind(outcome.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        let entry = entry_in(&mut tx, entry_id).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// The operator's own attempts that ended after `since_ms`, newest first, with their
    /// entries' numbers: what the console offers to correct.
    pub async fn recent_callback_attempts(
        &self,
        operator: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<(CallbackAttempt, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, a.entry_id, a.operator, a.outcome, a.note, a.started_at, a.ended_at, \
             e.number FROM callback_attempts a JOIN callback_entries e ON e.id = a.entry_id \
             WHERE a.operator = $1 AND a.ended_at >= $2 AND a.outcome IS NOT NULL \
             ORDER BY a.id DESC LIMIT $3",
        )
        .bind(operator)
        .bind(since_ms)
        .bind(limit.clamp(0, 100))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((CallbackAttempt::from_row(r)?, r.try_get("number")?));
        }
        Ok(out)
    }

    /// Open entries of `queue` the automatic callback may dial at `now_ms`: not claimed,
    /// not hidden, under `max_attempts` automatic attempts and past their retry delay;
    /// the earliest promise (else the earliest call) first. Claim each before dialling:
    /// another node may take it first.
    pub async fn auto_callback_candidates(
        &self,
        queue: &str,
        max_attempts: i64,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<CallbackEntry>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM callback_entries WHERE state = 'open' AND queue = $1 \
             AND (claimed_by IS NULL OR claim_expires_at <= $2) \
             AND (hidden_until IS NULL OR hidden_until <= $2) \
             AND (next_auto_at IS NULL OR next_auto_at <= $2) AND auto_attempts < $3 \
             AND undialable IS NULL \
             ORDER BY COALESCE(promised_at, first_at), id LIMIT $4"
        )))
        .bind(queue)
        .bind(now_ms)
        .bind(max_attempts)
        .bind(limit.clamp(0, 1000))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(CallbackEntry::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Open entries of `queue` due before `due_ms` (the backlog a new promise waits
    /// behind).
    pub async fn callback_backlog(&self, queue: &str, due_ms: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM callback_entries WHERE state = 'open' AND queue = $1 \
             AND COALESCE(promised_at, first_at) <= $2",
        )
        .bind(queue)
        .bind(due_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// How the promises made to callers were kept, for entries first noted in
    /// `[from_ms, to_ms)`: called back in time, late, still open past the promise, and
    /// entries with no promise.
    pub async fn callback_promise_report(
        &self,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<PromiseReport, StoreError> {
        let row = sqlx::query(
            "SELECT \
             COALESCE(SUM(CASE WHEN promised_at IS NOT NULL AND state = 'done' \
                 AND done_at <= promised_at THEN 1 ELSE 0 END), 0) AS kept, \
             COALESCE(SUM(CASE WHEN promised_at IS NOT NULL AND state = 'done' \
                 AND done_at > promised_at THEN 1 ELSE 0 END), 0) AS late, \
             COALESCE(SUM(CASE WHEN promised_at IS NOT NULL AND state <> 'done' \
                 AND promised_at < $3 THEN 1 ELSE 0 END), 0) AS overdue, \
             COALESCE(SUM(CASE WHEN promised_at IS NOT NULL AND state <> 'done' \
                 AND promised_at >= $3 THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN promised_at IS NULL THEN 1 ELSE 0 END), 0) AS unpromised \
             FROM callback_entries WHERE first_at >= $1 AND first_at < $2",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(PromiseReport {
            kept: row.try_get("kept")?,
            late: row.try_get("late")?,
            overdue: row.try_get("overdue")?,
            pending: row.try_get("pending")?,
            unpromised: row.try_get("unpromised")?,
        })
    }

    /// Every attempt on an entry, oldest first.
    pub async fn callback_history(
        &self,
        entry_id: i64,
    ) -> Result<Vec<CallbackAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, entry_id, operator, outcome, note, started_at, ended_at \
             FROM callback_attempts WHERE entry_id = $1 ORDER BY id",
        )
        .bind(entry_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(CallbackAttempt::from_row)
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_numbers() {
        for n in ["", "  ", "anonymous", "Anonymous", " ANONYMOUS "] {
            assert!(is_anonymous(n), "{n:?}");
        }
        for n in ["+36301234567", "1234", "anonymous1"] {
            assert!(!is_anonymous(n), "{n:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for o in [
            AttemptOutcome::Success,
            AttemptOutcome::NoAnswer,
            AttemptOutcome::Busy,
            AttemptOutcome::Rejected,
            AttemptOutcome::Failed,
        ] {
            assert_eq!(AttemptOutcome::parse(o.as_str()), Some(o));
        }
        for s in [
            CallbackSource::Ivr,
            CallbackSource::Missed,
            CallbackSource::Operator,
        ] {
            assert_eq!(CallbackSource::parse(s.as_str()), Some(s));
        }
        assert_eq!(AttemptOutcome::parse("expired"), None);
    }
}
