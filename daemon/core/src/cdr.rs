//! Call detail records: one row per call, written when the call starts and completed when
//! it ends. Calls hand their records to `CdrLog`, which writes them off the call path.
//!
//! Nothing is lost on the way (issue 15): every write is keyed by the record's own key and
//! idempotent, so it may be written again safely. When the database fails or is too slow,
//! the writes go to a journal file in the state directory (JSON lines, fsync'd) and are
//! replayed when it works again (a chunk at a time, beside new writes, which go to a fresh
//! journal meanwhile), and at the next start. A call is answered only once its start row
//! is durable (in the database or in the journal); at start-up, or once the database is
//! back if it was down then, the rows of this node's earlier calls that never got their
//! end (the daemon was killed) end as `daemon_lost`.

use std::future::Future;
use std::io::{BufRead, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Executor, Row};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Why a call ended, as stored in `calls.end_reason` and counted in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The caller sent BYE.
    CallerHangup,
    /// The flow reached a hangup step and the daemon sent BYE.
    FlowHangup,
    /// The operator hung up a bridged call.
    OperatorHangup,
    /// The caller cancelled before the call was answered.
    Cancelled,
    /// The caller never acknowledged the 200 OK (timer H).
    NoAck,
    /// No RTP from the caller for the configured time.
    RtpTimeout,
    /// Refused before answer (no flow, no codec, no media port, draining).
    Rejected,
    /// Ended by the daemon shutting down after the drain time.
    Shutdown,
    /// The transport failed (e.g. the TCP connection closed).
    TransportError,
    /// An operator's consultation call whose other party an attended transfer joined
    /// with the transferred caller (RFC 3891 Replaces).
    Replaced,
    /// The daemon died (killed, crashed) before the call's end was written; the next
    /// start closed the record.
    DaemonLost,
}

impl EndReason {
    pub const ALL: [EndReason; 11] = [
        EndReason::CallerHangup,
        EndReason::FlowHangup,
        EndReason::OperatorHangup,
        EndReason::Cancelled,
        EndReason::NoAck,
        EndReason::RtpTimeout,
        EndReason::Rejected,
        EndReason::Shutdown,
        EndReason::TransportError,
        EndReason::Replaced,
        EndReason::DaemonLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::FlowHangup => "flow_hangup",
            EndReason::OperatorHangup => "operator_hangup",
            EndReason::Cancelled => "cancelled",
            EndReason::NoAck => "no_ack",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::Rejected => "rejected",
            EndReason::Shutdown => "shutdown",
            EndReason::TransportError => "transport_error",
            EndReason::Replaced => "replaced",
            EndReason::DaemonLost => "daemon_lost",
        }
    }
}

/// What is known when the INVITE arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStart {
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub started_at_ms: i64,
    pub flow: Option<String>,
    pub flow_version: Option<String>,
}

/// What is known when the call is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEnd {
    pub ended_at_ms: i64,
    pub reason: EndReason,
    pub digits: String,
    /// Steps of the flow visited, in order.
    pub path: Vec<String>,
    /// Variables and tags the flow set, as a JSON object.
    pub variables: String,
    /// The operator who took the call.
    pub operator: Option<String>,
    /// What happened after the IVR: queue, wait, hold, the operators' legs.
    pub service: Service,
}

/// A call's time in queues and with operators, for reporting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The queue the caller last waited in.
    pub queue: Option<String>,
    /// From entering the queue to an operator's answer (or to leaving unanswered).
    pub wait_ms: Option<i64>,
    /// Time the caller spent on hold (the operator's hold, with music).
    pub hold_ms: i64,
    /// Everyone the call was offered to, in order.
    pub legs: Vec<CallLeg>,
}

/// One operator's phone (or outside number) the call was offered to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLeg {
    pub operator: Option<String>,
    /// An outside number the call went to (a transfer out through the trunk).
    pub number: Option<String>,
    pub rang_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    pub outcome: LegOutcome,
    pub hold_ms: i64,
    /// Where this leg's operator transferred the caller (an operator, queue or number).
    pub transferred_to: Option<String>,
}

/// How a leg ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegOutcome {
    /// Answered: the two talked.
    Answered,
    NoAnswer,
    Busy,
    Rejected,
    Unreachable,
    /// The ring was stopped (the caller left, the ring timeout, another operator).
    Cancelled,
}

impl LegOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LegOutcome::Answered => "answered",
            LegOutcome::NoAnswer => "no_answer",
            LegOutcome::Busy => "busy",
            LegOutcome::Rejected => "rejected",
            LegOutcome::Unreachable => "unreachable",
            LegOutcome::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> LegOutcome {
        [
            LegOutcome::Answered,
            LegOutcome::NoAnswer,
            LegOutcome::Busy,
            LegOutcome::Rejected,
            LegOutcome::Unreachable,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .unwrap_or(LegOutcome::Cancelled)
    }
}

impl CallLeg {
    /// "bela answered ring 0.8s talk 35.0s hold 4.0s to cili", for the CSV.
    pub fn summary(&self) -> String {
        let secs = |ms: i64| format!("{:.1}s", ms as f64 / 1000.0);
        let who = self
            .operator
            .as_deref()
            .or(self.number.as_deref())
            .unwrap_or("?");
        let rang_until = self.answered_at_ms.unwrap_or(self.ended_at_ms);
        let mut s = format!(
            "{who} {} ring {}",
            self.outcome.as_str(),
            secs(rang_until - self.rang_at_ms)
        );
        if let Some(a) = self.answered_at_ms {
            s.push_str(&format!(
                " talk {}",
                secs(self.ended_at_ms - a - self.hold_ms)
            ));
        }
        if self.hold_ms > 0 {
            s.push_str(&format!(" hold {}", secs(self.hold_ms)));
        }
        if let Some(to) = &self.transferred_to {
            s.push_str(&format!(" to {to}"));
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub id: i64,
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub end_reason: Option<String>,
    pub digits: String,
    pub flow: Option<String>,
    pub flow_version: Option<String>,
    /// Steps visited, space separated.
    pub path: String,
    /// Variables and tags the flow set, as a JSON object.
    pub variables: String,
    pub operator: Option<String>,
    pub service: Service,
    pub wrapup_category: Option<String>,
    pub wrapup_note: Option<String>,
    /// The operator's tags, comma-separated.
    pub wrapup_tags: Option<String>,
    /// The recording's file name (issue 12).
    pub recording: Option<String>,
}

/// Which calls [`Store::calls_matching`] gives.
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    /// Started at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Started before (unix ms).
    pub until_ms: Option<i64>,
    /// The queue the caller last waited in.
    pub queue: Option<String>,
    /// The operator who took the call.
    pub operator: Option<String>,
    /// Only records with a smaller id: the paging cursor.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// The first 14 columns are the original ones (scripts read them by position); then the
/// times as ISO 8601 and `duration`/`billsec` in seconds as Asterisk's Master.csv has them
/// (billsec: from the answer), the queue, wait and hold, the legs (`; `-separated), the
/// wrap-up and the recording.
pub const CSV_HEADER: &str = "id,call_id,caller,called,started_at_ms,answered_at_ms,ended_at_ms,end_reason,digits,flow,flow_version,path,variables,operator,start,answer,end,duration,billsec,queue,wait_ms,hold_ms,transfers,legs,wrapup_category,wrapup_note,recording,wrapup_tags";

impl CallRecord {
    /// One CSV line (RFC 4180 quoting), columns as in `CSV_HEADER`.
    pub fn to_csv(&self) -> String {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        [
            self.id.to_string(),
            csv_field(&self.call_id),
            csv_field(&self.caller),
            csv_field(&self.called),
            self.started_at_ms.to_string(),
            opt(self.answered_at_ms),
            opt(self.ended_at_ms),
            csv_field(self.end_reason.as_deref().unwrap_or("")),
            csv_field(&self.digits),
            csv_field(self.flow.as_deref().unwrap_or("")),
            csv_field(self.flow_version.as_deref().unwrap_or("")),
            csv_field(&self.path),
            csv_field(&self.variables),
            csv_field(self.operator.as_deref().unwrap_or("")),
            iso(Some(self.started_at_ms)),
            iso(self.answered_at_ms),
            iso(self.ended_at_ms),
            opt(self
                .ended_at_ms
                .map(|e| (e - self.started_at_ms).max(0) / 1000)),
            opt(self
                .ended_at_ms
                .zip(self.answered_at_ms)
                .map(|(e, a)| (e - a).max(0) / 1000)),
            csv_field(self.service.queue.as_deref().unwrap_or("")),
            opt(self.service.wait_ms),
            self.service.hold_ms.to_string(),
            self.transfers().to_string(),
            csv_field(
                &self
                    .service
                    .legs
                    .iter()
                    .map(CallLeg::summary)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            csv_field(self.wrapup_category.as_deref().unwrap_or("")),
            csv_field(self.wrapup_note.as_deref().unwrap_or("")),
            csv_field(self.recording.as_deref().unwrap_or("")),
            csv_field(self.wrapup_tags.as_deref().unwrap_or("")),
        ]
        .join(",")
    }

    /// The record as JSON, with the fields (and names) of the CSV.
    pub fn to_json(&self) -> serde_json::Value {
        let variables = serde_json::from_str::<serde_json::Value>(&self.variables)
            .unwrap_or_else(|_| serde_json::Value::String(self.variables.clone()));
        let iso = |ms: Option<i64>| ms.map(|ms| iso(Some(ms)));
        serde_json::json!({
            "id": self.id,
            "call_id": self.call_id,
            "caller": self.caller,
            "called": self.called,
            "started_at_ms": self.started_at_ms,
            "answered_at_ms": self.answered_at_ms,
            "ended_at_ms": self.ended_at_ms,
            "end_reason": self.end_reason,
            "digits": self.digits,
            "flow": self.flow,
            "flow_version": self.flow_version,
            "path": self.path,
            "variables": variables,
            "operator": self.operator,
            "start": iso(Some(self.started_at_ms)),
            "answer": iso(self.answered_at_ms),
            "end": iso(self.ended_at_ms),
            "duration": self.ended_at_ms.map(|e| (e - self.started_at_ms).max(0) / 1000),
            "billsec": self.ended_at_ms.zip(self.answered_at_ms).map(|(e, a)| (e - a).max(0) / 1000),
            "queue": self.service.queue,
            "wait_ms": self.service.wait_ms,
            "hold_ms": self.service.hold_ms,
            "transfers": self.transfers(),
            "legs": self.service.legs,
            "wrapup_category": self.wrapup_category,
            "wrapup_note": self.wrapup_note,
            "recording": self.recording,
            "wrapup_tags": self.wrapup_tags,
        })
    }

    /// How many times an operator passed the caller on.
    pub fn transfers(&self) -> usize {
        self.service
            .legs
            .iter()
            .filter(|l| l.transferred_to.is_some())
            .count()
    }
}

/// Unix ms as ISO 8601 in UTC with milliseconds; empty for none.
fn iso(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Quotes a field when it holds a comma, quote or line break; caller IDs come from the
/// network and may hold anything. A leading `=+-@` is prefixed with `'` so a spreadsheet
/// never runs it as a formula.
pub fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) && !v[1..].chars().all(|c| c.is_ascii_digit()) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// How old an open record without a node (written by a version before nodes were
/// recorded) must be before any node closes it as `daemon_lost`: a day, longer than any
/// call, so a rolling upgrade never closes a call still going on a node not yet upgraded.
pub const LEGACY_OPEN_CALL_MS: i64 = 24 * 3600 * 1000;

/// The columns of `CallRecord`, as a literal so queries built on it stay literals.
macro_rules! select_call {
    () => {
        "SELECT id, call_id, caller, called, started_at, answered_at, ended_at, \
         end_reason, digits, flow, flow_version, path, variables, operator, queue, wait_ms, \
         hold_ms, wrapup_category, wrapup_note, recording, wrapup_tags FROM calls"
    };
}

impl Store {
    /// Records a new call and returns its id.
    pub async fn insert_call(&self, call: &CallStart) -> Result<i64, StoreError> {
        Ok(insert_call(self.pool(), call).await?)
    }

    pub async fn set_call_answered(&self, id: i64, answered_at_ms: i64) -> Result<(), StoreError> {
        Ok(set_call_answered(self.pool(), id, answered_at_ms).await?)
    }

    /// Completes the record; a call already finished keeps its first end.
    pub async fn finish_call(&self, id: i64, end: &CallEnd) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        finish_call(&mut tx, id, end).await?;
        Ok(tx.commit().await?)
    }

    /// Closes the records this node left open when it died (killed, crashed): they end
    /// at `now_ms` as `daemon_lost`. Call it at start-up, before any call of this run and
    /// after the journal was replayed (see [`Store::close_lost_calls_of_earlier_runs`]
    /// for later). Only rows of this node are closed: other nodes' calls sharing the
    /// database are theirs to close. Rows without a node come from a version before
    /// nodes were recorded, maybe a node still running it during a rolling upgrade, so
    /// they are closed only once they started more than [`LEGACY_OPEN_CALL_MS`] ago: no
    /// live call lasts that long.
    pub async fn close_lost_calls(&self, node: &str, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET ended_at = $1, end_reason = 'daemon_lost' \
             WHERE ended_at IS NULL AND (node = $2 OR (node IS NULL AND started_at < $3))",
        )
        .bind(now_ms)
        .bind(node)
        .bind(now_ms.saturating_sub(LEGACY_OPEN_CALL_MS))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// [`Store::close_lost_calls`] once calls of this run (`this_run`, the first part of
    /// their record keys) may have begun: those are left alone.
    pub async fn close_lost_calls_of_earlier_runs(
        &self,
        node: &str,
        this_run: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET ended_at = $1, end_reason = 'daemon_lost' \
             WHERE ended_at IS NULL AND ((node = $2 AND record_key NOT LIKE $4) \
             OR (node IS NULL AND started_at < $3))",
        )
        .bind(now_ms)
        .bind(node)
        .bind(now_ms.saturating_sub(LEGACY_OPEN_CALL_MS))
        // Run ids are hex: nothing in them is special to LIKE.
        .bind(format!("{this_run}-%"))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn call_by_call_id(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        let row = sqlx::query(concat!(
            select_call!(),
            " WHERE call_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(call_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => Ok(Some(self.with_legs(record(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// The newest calls first.
    pub async fn recent_calls(&self, limit: i64) -> Result<Vec<CallRecord>, StoreError> {
        self.calls_between(None, None, limit).await
    }

    /// The newest calls first that started in `[since, until)` (unix ms; open ends).
    pub async fn calls_between(
        &self,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: i64,
    ) -> Result<Vec<CallRecord>, StoreError> {
        self.calls_matching(&CallFilter {
            since_ms,
            until_ms,
            limit,
            ..CallFilter::default()
        })
        .await
    }

    /// The newest calls first that match `filter`: `hotline calls` and GET /api/v1/calls.
    pub async fn calls_matching(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        // An empty string stands for "any": it binds alike on SQLite and PostgreSQL.
        let rows = sqlx::query(concat!(
            select_call!(),
            " WHERE started_at >= $1 AND started_at < $2 AND id < $3 \
             AND ($4 = '' OR queue = $4) AND ($5 = '' OR operator = $5) \
             ORDER BY id DESC LIMIT $6"
        ))
        .bind(filter.since_ms.unwrap_or(i64::MIN))
        .bind(filter.until_ms.unwrap_or(i64::MAX))
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(filter.queue.clone().unwrap_or_default())
        .bind(filter.operator.clone().unwrap_or_default())
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?;
        let mut calls = Vec::with_capacity(rows.len());
        for r in &rows {
            calls.push(self.with_legs(record(r)?).await?);
        }
        Ok(calls)
    }

    /// The newest calls from `caller` first (as the call delivered the number), at most
    /// `limit`, without their legs: the console's screen pop lists them.
    pub async fn calls_from_number(
        &self,
        caller: &str,
        limit: i64,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            select_call!(),
            " WHERE caller = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(caller)
        .bind(limit.clamp(0, 100))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }

    /// The operator's wrap-up of a voice call: a category and a note.
    pub async fn set_call_wrapup(
        &self,
        call_id: &str,
        category: Option<&str>,
        note: Option<&str>,
        tags: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET wrapup_category = $2, wrapup_note = $3, wrapup_tags = $4 \
             WHERE id = (SELECT max(id) FROM calls WHERE call_id = $1)",
        )
        .bind(call_id)
        .bind(category)
        .bind(note)
        .bind(tags)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn with_legs(&self, mut call: CallRecord) -> Result<CallRecord, StoreError> {
        let rows = sqlx::query(
            "SELECT operator, number, rang_at, answered_at, ended_at, outcome, hold_ms, \
             transferred_to FROM call_legs WHERE call = $1 ORDER BY seq",
        )
        .bind(call.id)
        .fetch_all(self.pool())
        .await?;
        call.service.legs = rows
            .iter()
            .map(|r| {
                Ok(CallLeg {
                    operator: r.try_get("operator")?,
                    number: r.try_get("number")?,
                    rang_at_ms: r.try_get("rang_at")?,
                    answered_at_ms: r.try_get("answered_at")?,
                    ended_at_ms: r.try_get("ended_at")?,
                    outcome: LegOutcome::parse(&r.try_get::<String, _>("outcome")?),
                    hold_ms: r.try_get("hold_ms")?,
                    transferred_to: r.try_get("transferred_to")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(call)
    }
}

async fn insert_call<'e>(
    ex: impl Executor<'e, Database = Any>,
    call: &CallStart,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO calls (call_id, caller, called, started_at, flow, flow_version) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&call.call_id)
    .bind(&call.caller)
    .bind(&call.called)
    .bind(call.started_at_ms)
    .bind(&call.flow)
    .bind(&call.flow_version)
    .fetch_one(ex)
    .await?;
    row.try_get::<i64, _>(0)
}

async fn set_call_answered<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: i64,
    answered_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calls SET answered_at = $1 WHERE id = $2")
        .bind(answered_at_ms)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

async fn finish_call(ex: &mut AnyConnection, id: i64, end: &CallEnd) -> Result<(), sqlx::Error> {
    let finished = bind_end(
        sqlx::query(
            "UPDATE calls SET ended_at = $1, end_reason = $2, digits = $3, path = $4, \
             variables = $5, operator = $6, queue = $7, wait_ms = $8, hold_ms = $9 \
             WHERE id = $10 AND ended_at IS NULL",
        ),
        end,
    )
    .bind(id)
    .execute(&mut *ex)
    .await?;
    // A second end (a late BYE) adds no legs either.
    if finished.rows_affected() == 0 {
        return Ok(());
    }
    insert_legs(ex, id, &end.service.legs).await
}

fn bind_end<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    end: &'q CallEnd,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    q.bind(end.ended_at_ms)
        .bind(end.reason.as_str())
        .bind(&end.digits)
        .bind(end.path.join(" "))
        .bind(&end.variables)
        .bind(&end.operator)
        .bind(&end.service.queue)
        .bind(end.service.wait_ms)
        .bind(end.service.hold_ms)
}

async fn insert_legs(ex: &mut AnyConnection, id: i64, legs: &[CallLeg]) -> Result<(), sqlx::Error> {
    for (seq, leg) in legs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO call_legs (call, seq, operator, number, rang_at, answered_at, \
             ended_at, outcome, hold_ms, transferred_to) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(i32::try_from(seq).unwrap_or(i32::MAX))
        .bind(&leg.operator)
        .bind(&leg.number)
        .bind(leg.rang_at_ms)
        .bind(leg.answered_at_ms)
        .bind(leg.ended_at_ms)
        .bind(leg.outcome.as_str())
        .bind(leg.hold_ms)
        .bind(&leg.transferred_to)
        .execute(&mut *ex)
        .await?;
    }
    Ok(())
}

/// Carries out one queued write. Each is idempotent, so a write whose commit may or may
/// not have happened (a timeout) is safely written again from the journal: a start
/// already there is left alone, and an end lands only on a record without one (or one
/// closed as `daemon_lost` at a restart, which the real end replaces). An answer or end
/// whose call has no record at all (its start was refused) fails for itself, so it goes
/// to the rejected file beside its start rather than vanishing.
async fn apply(ex: &mut AnyConnection, write: &CdrWrite) -> Result<(), SinkError> {
    match write {
        CdrWrite::Start { key, node, call } => {
            sqlx::query(
                "INSERT INTO calls (call_id, caller, called, started_at, flow, flow_version, \
                 record_key, node) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (record_key) DO NOTHING",
            )
            .bind(&call.call_id)
            .bind(&call.caller)
            .bind(&call.called)
            .bind(call.started_at_ms)
            .bind(&call.flow)
            .bind(&call.flow_version)
            .bind(key)
            .bind(node)
            .execute(&mut *ex)
            .await?;
        }
        CdrWrite::Answered { key, at_ms } => {
            let done = sqlx::query("UPDATE calls SET answered_at = $1 WHERE record_key = $2")
                .bind(at_ms)
                .bind(key)
                .execute(&mut *ex)
                .await?;
            if done.rows_affected() == 0 {
                return Err(no_record());
            }
        }
        CdrWrite::End { key, end } => {
            let row = bind_end(
                sqlx::query(
                    "UPDATE calls SET ended_at = $1, end_reason = $2, digits = $3, path = $4, \
                     variables = $5, operator = $6, queue = $7, wait_ms = $8, hold_ms = $9 \
                     WHERE record_key = $10 \
                     AND (ended_at IS NULL OR end_reason = 'daemon_lost') RETURNING id",
                ),
                end,
            )
            .bind(key)
            .fetch_optional(&mut *ex)
            .await?;
            if let Some(row) = row {
                let id: i64 = row.try_get(0)?;
                // A daemon_lost record has no legs, but clear them anyway so a
                // replayed end can never double them.
                sqlx::query("DELETE FROM call_legs WHERE call = $1")
                    .bind(id)
                    .execute(&mut *ex)
                    .await?;
                insert_legs(ex, id, &end.service.legs).await?;
            } else {
                // Ended already (a late BYE, an end replayed after an unknown outcome):
                // nothing to do. No record at all: its start never made it.
                let known = sqlx::query("SELECT 1 FROM calls WHERE record_key = $1")
                    .bind(key)
                    .fetch_optional(&mut *ex)
                    .await?;
                if known.is_none() {
                    return Err(no_record());
                }
            }
        }
    }
    Ok(())
}

fn no_record() -> SinkError {
    SinkError {
        transient: false,
        message: "the call has no record: its start was refused (see it in this file) or lost"
            .into(),
    }
}

/// One change to a call's record, as queued, journaled and replayed; the record's key
/// (unique per call, made by [`CdrLog`]) names the row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CdrWrite {
    Start {
        key: String,
        /// The node whose calls this is ([`node_id`]), for closing lost calls.
        node: String,
        call: CallStart,
    },
    Answered {
        key: String,
        at_ms: i64,
    },
    End {
        key: String,
        end: CallEnd,
    },
}

impl CdrWrite {
    fn describe(&self) -> String {
        match self {
            CdrWrite::Start { key, call, .. } => format!(
                "start of {} ({key}) from {} to {}",
                call.call_id, call.caller, call.called
            ),
            CdrWrite::Answered { key, at_ms } => format!("answer of {key} at {at_ms}"),
            CdrWrite::End { key, end } => {
                format!(
                    "end of {key} at {} ({})",
                    end.ended_at_ms,
                    end.reason.as_str()
                )
            }
        }
    }
}

/// Why the sink did not take a batch.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// The database may take it later (down, restarting, busy, a lost connection); if
    /// not, the write itself is wrong and is set aside on its own.
    pub transient: bool,
    pub message: String,
}

impl From<sqlx::Error> for SinkError {
    fn from(e: sqlx::Error) -> Self {
        SinkError {
            transient: is_transient(&e),
            message: e.to_string(),
        }
    }
}

/// Errors that say nothing about the write: the database was unreachable, busy or going
/// away. Anything else (a constraint, a value it refuses) would fail again.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            if code.len() == 5 {
                // PostgreSQL's SQLSTATE: connection (08), resources (53), shutdown or
                // cancel (57), serialization and deadlock (40), system (58).
                ["08", "53", "57", "40", "58"]
                    .iter()
                    .any(|p| code.starts_with(p))
            } else {
                // SQLite's (extended) result code: BUSY, LOCKED, IOERR, FULL, CANTOPEN.
                code.parse::<i64>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Where call records go: the store, or a test's stand-in.
pub trait CdrSink: Send + Sync + 'static {
    /// Writes all of `writes` in one transaction, or none of them.
    fn write_all(&self, writes: &[CdrWrite]) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Closes this node's records that runs before `this_run` left open, as
    /// `daemon_lost` (see [`Store::close_lost_calls_of_earlier_runs`]); how many. A sink
    /// that keeps no records has none.
    fn close_lost_of_earlier_runs(
        &self,
        node: &str,
        this_run: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<u64, SinkError>> + Send {
        let _ = (node, this_run, now_ms);
        async { Ok(0) }
    }
}

impl CdrSink for Store {
    async fn write_all(&self, writes: &[CdrWrite]) -> Result<(), SinkError> {
        let mut tx = self.pool().begin().await?;
        for w in writes {
            apply(&mut tx, w).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn close_lost_of_earlier_runs(
        &self,
        node: &str,
        this_run: &str,
        now_ms: i64,
    ) -> Result<u64, SinkError> {
        // Tried again until it works, whatever the error.
        self.close_lost_calls_of_earlier_runs(node, this_run, now_ms)
            .await
            .map_err(|e| SinkError {
                transient: true,
                message: e.to_string(),
            })
    }
}

/// This node's name in call records, kept in the state directory (`node-id`) so that a
/// restarted daemon knows its own unfinished calls from other nodes' sharing the
/// database. Made (random) on first use.
pub fn node_id(state_dir: &Path) -> std::io::Result<String> {
    let path = state_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(state_dir)?;
    let id = format!("{:016x}", rand::random::<u64>());
    let mut f = std::fs::File::create(&path)?;
    f.write_all(format!("{id}\n").as_bytes())?;
    f.sync_all()?;
    Ok(id)
}

/// How call records are kept.
#[derive(Clone, Debug)]
pub struct CdrOptions {
    /// The journal (`cdr-journal.jsonl`) and the writes the database refused
    /// (`cdr-rejected.jsonl`) are kept here: the daemon's state directory.
    pub dir: PathBuf,
    /// See [`node_id`].
    pub node: String,
    /// Writes waiting for the writer at most; a call handing over one more waits.
    pub queue: usize,
    /// A batch not written within this counts as failed and goes to the journal.
    pub write_timeout: Duration,
    /// How soon the journal is tried against the database once it holds writes; the
    /// wait doubles while the database stays away, up to 12 times this.
    pub retry_every: Duration,
}

impl CdrOptions {
    pub fn new(dir: impl Into<PathBuf>, node: impl Into<String>) -> CdrOptions {
        CdrOptions {
            dir: dir.into(),
            node: node.into(),
            queue: 8192,
            write_timeout: Duration::from_secs(5),
            retry_every: Duration::from_secs(5),
        }
    }

    fn journal(&self) -> Journal {
        Journal {
            path: self.dir.join(JOURNAL_FILE),
            replaying: self.dir.join(REPLAYING_FILE),
            rejected: self.dir.join(REJECTED_FILE),
            lock: std::sync::Mutex::new(()),
        }
    }
}

pub const JOURNAL_FILE: &str = "cdr-journal.jsonl";
/// The journal while it is replayed into the database; new writes go to a fresh
/// `JOURNAL_FILE` meanwhile, so they are durable at once however long the replay takes.
pub const REPLAYING_FILE: &str = "cdr-journal.jsonl.replaying";
pub const REJECTED_FILE: &str = "cdr-rejected.jsonl";

/// Writes waiting for the database, in order, one JSON object per line: first those in
/// the replaying file, then those in the journal.
struct Journal {
    path: PathBuf,
    replaying: PathBuf,
    /// Writes the database refused for themselves (not for being down): kept for a human.
    rejected: PathBuf,
    /// One appender at a time (the writer, or a call after the writer stopped).
    lock: std::sync::Mutex<()>,
}

impl Journal {
    /// Appends the writes and syncs them to disk.
    fn append(&self, writes: &[CdrWrite]) -> std::io::Result<()> {
        let mut text = String::new();
        for w in writes {
            let line = serde_json::to_string(w).map_err(std::io::Error::other)?;
            text.push_str(&line);
            text.push('\n');
        }
        self.append_text(&self.path, &text)
    }

    fn append_text(&self, path: &Path, text: &str) -> std::io::Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        // A line torn by a crash mid-write must not swallow the next one.
        let mut last = [0u8; 1];
        if f.metadata()?.len() > 0 {
            f.seek(std::io::SeekFrom::End(-1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                f.write_all(b"\n")?;
            }
        }
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }

    /// Up to `max` writes of the file at `path` from byte `offset` on, where they end,
    /// and whether the file ended there. A line that does not parse (a write torn by a
    /// crash in the middle of it) is set aside in the rejected file as it is met, so it
    /// is kept there once.
    fn read_chunk(
        &self,
        path: &Path,
        offset: u64,
        max: usize,
    ) -> std::io::Result<(Vec<CdrWrite>, u64, bool)> {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), offset, true));
            }
            Err(e) => return Err(e),
        };
        f.seek(std::io::SeekFrom::Start(offset))?;
        let mut reader = std::io::BufReader::new(f);
        let mut writes = Vec::new();
        let mut end = offset;
        let mut line = Vec::new();
        while writes.len() < max {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            end += n as u64;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<CdrWrite>(&line) {
                Ok(w) => writes.push(w),
                Err(_) => self.reject(
                    String::from_utf8_lossy(&line).trim_end(),
                    "an unreadable line in the journal",
                ),
            }
        }
        let eof = reader.fill_buf()?.is_empty();
        Ok((writes, end, eof))
    }

    /// Makes the journal the replaying file; the next append starts a fresh journal.
    fn rotate(&self) -> std::io::Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::rename(&self.path, &self.replaying)
    }

    fn remove(&self, path: &Path) -> std::io::Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Keeps a write the database refused, with why, where an admin finds it.
    fn reject(&self, what: &str, why: &str) {
        let line = serde_json::json!({ "write": what, "error": why }).to_string();
        match self.append_text(&self.rejected, &format!("{line}\n")) {
            Ok(()) => error!(
                file = %self.rejected.display(),
                "the database refused a call record write ({why}); it is kept in the file"
            ),
            Err(e) => error!(
                "the database refused a call record write ({why}) and it could not be kept \
                 in {}: {e}: {what}",
                self.rejected.display()
            ),
        }
    }
}

fn holds_writes(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// What start-up recovery did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Writes replayed from the journal.
    pub replayed: usize,
    /// Records closed as `daemon_lost`.
    pub lost: u64,
}

/// Before any call: replays what an earlier run left in the journal, then closes this
/// node's records that never got their end as `daemon_lost`. When the journal can't be
/// replayed now, it is left and nothing is closed (the ends may be in it). The daemon
/// uses [`CdrLog::start_recovered`], whose writer finishes both later.
pub async fn recover(
    store: &Store,
    options: &CdrOptions,
    now_ms: i64,
) -> Result<Recovered, SinkError> {
    let lost = LostCalls {
        node: options.node.clone(),
        run: new_run_id(),
        at_ms: now_ms,
    };
    let journal = Arc::new(options.journal());
    let mut writer = Writer::new(store.clone(), journal, options, Some(lost));
    writer.recover().await
}

fn new_run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A call's record in the `CdrLog`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CdrRef(u64);

enum Queued {
    /// A write, and who waits until it is durable (in the database or the journal).
    Write(Box<CdrWrite>, Option<oneshot::Sender<()>>),
    Flush(oneshot::Sender<()>),
}

/// Writes call records off the call path, through a bounded queue to one writer task,
/// which writes whatever has queued up in one transaction: under load one commit for
/// hundreds of writes instead of three per call. When the database fails or is slower
/// than `write_timeout`, the writes go to the journal. Once the database takes writes
/// again the journal is replayed a chunk at a time beside new writes, which go to a fresh
/// journal until the replay has caught up: a call never waits for the replay. A write
/// the database refuses for itself is kept in `cdr-rejected.jsonl`; no write is ever
/// dropped with only a log line.
#[derive(Clone)]
pub struct CdrLog {
    tx: mpsc::Sender<Queued>,
    /// This process start: the first part of every record key.
    run: Arc<str>,
    node: Arc<str>,
    next: Arc<AtomicU64>,
    /// For writes handed over after the writer stopped.
    journal: Arc<Journal>,
}

/// Writes per transaction at most, so one commit never grows without bound.
const MAX_BATCH: usize = 512;

impl CdrLog {
    /// Starts the writer task on the current tokio runtime. It replays what an earlier
    /// run left in the journal, then closes this node's calls of earlier runs left open
    /// as `daemon_lost`, both beside new writes.
    pub fn start<S: CdrSink>(sink: S, options: CdrOptions) -> CdrLog {
        let (log, writer, rx) = CdrLog::parts(sink, options);
        tokio::spawn(writer.run(rx));
        log
    }

    /// [`CdrLog::start`], after replaying the journal of an earlier run and closing its
    /// lost calls here, so that both are done before the first call when the database
    /// takes them. When it does not, the error says why and the writer does both as soon
    /// as it does.
    pub async fn start_recovered<S: CdrSink>(
        sink: S,
        options: CdrOptions,
    ) -> (CdrLog, Result<Recovered, SinkError>) {
        let (log, mut writer, rx) = CdrLog::parts(sink, options);
        let recovered = writer.recover().await;
        tokio::spawn(writer.run(rx));
        (log, recovered)
    }

    fn parts<S: CdrSink>(
        sink: S,
        options: CdrOptions,
    ) -> (CdrLog, Writer<S>, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let journal = Arc::new(options.journal());
        let run = new_run_id();
        let lost = LostCalls {
            node: options.node.clone(),
            run: run.clone(),
            at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let writer = Writer::new(sink, journal.clone(), &options, Some(lost));
        let log = CdrLog {
            tx,
            run: run.into(),
            node: options.node.into(),
            next: Arc::new(AtomicU64::new(1)),
            journal,
        };
        (log, writer, rx)
    }

    fn key(&self, r: CdrRef) -> String {
        format!("{}-{}", self.run, r.0)
    }

    /// Opens the record of a call and returns once its row is durable (written, or in
    /// the journal), so a call that was answered always has a record after a crash.
    /// Answer and end refer to it by the returned reference.
    pub async fn start_call(&self, call: CallStart) -> CdrRef {
        let r = CdrRef(self.next.fetch_add(1, Ordering::Relaxed));
        let (done, durable) = oneshot::channel();
        let write = CdrWrite::Start {
            key: self.key(r),
            node: self.node.to_string(),
            call,
        };
        if self.send(Queued::Write(Box::new(write), Some(done))).await {
            let _ = durable.await;
        }
        r
    }

    pub async fn answered(&self, call: CdrRef, answered_at_ms: i64) {
        let write = CdrWrite::Answered {
            key: self.key(call),
            at_ms: answered_at_ms,
        };
        self.send(Queued::Write(Box::new(write), None)).await;
    }

    pub async fn end_call(&self, call: CdrRef, end: CallEnd) {
        let write = CdrWrite::End {
            key: self.key(call),
            end,
        };
        self.send(Queued::Write(Box::new(write), None)).await;
    }

    /// Waits until everything handed over so far is written or journaled.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Queued::Flush(done)).await {
            let _ = wait.await;
        }
    }

    /// Queues; false when the writer is gone, in which case the write is journaled here
    /// (the next start replays it).
    async fn send(&self, q: Queued) -> bool {
        match self.tx.send(q).await {
            Ok(()) => true,
            Err(mpsc::error::SendError(Queued::Write(w, _))) => {
                let journal = self.journal.clone();
                let what = w.describe();
                let appended = tokio::task::spawn_blocking(move || journal.append(&[*w])).await;
                match appended {
                    Ok(Ok(())) => warn!("the CDR writer has stopped; journaled the {what}"),
                    Ok(Err(e)) => error!(
                        "call record lost: the CDR writer has stopped and the journal failed ({e}): {what}"
                    ),
                    Err(e) => error!(
                        "call record lost: the CDR writer has stopped and the journal failed ({e}): {what}"
                    ),
                }
                false
            }
            Err(_) => false,
        }
    }
}

/// What the writer and its replay tasks share: the database side.
struct Db<S> {
    sink: S,
    journal: Arc<Journal>,
    write_timeout: Duration,
}

impl<S: CdrSink> Db<S> {
    /// Writes in one transaction within the timeout. When the database refuses the batch
    /// for what is in it, write by write, setting aside the ones it refuses. Returns what
    /// is left unwritten (in order, without the ones set aside) when the database fails.
    async fn write(&self, writes: Vec<CdrWrite>) -> Result<(), Vec<CdrWrite>> {
        if writes.is_empty() {
            return Ok(());
        }
        match self.write_within(&writes).await {
            Ok(()) => return Ok(()),
            Err(e) if e.transient => {
                warn!(
                    writes = writes.len(),
                    "writing call records failed, journaling them: {e}"
                );
                return Err(writes);
            }
            Err(e) => warn!(
                writes = writes.len(),
                "writing call records: {e}; writing them one by one"
            ),
        }
        for (i, w) in writes.iter().enumerate() {
            match self.write_within(std::slice::from_ref(w)).await {
                Ok(()) => {}
                Err(e) if !e.transient => self.journal.reject(&w.describe(), &e.message),
                Err(e) => {
                    warn!("writing call records failed, journaling them: {e}");
                    return Err(writes[i..].to_vec());
                }
            }
        }
        Ok(())
    }

    async fn write_within(&self, writes: &[CdrWrite]) -> Result<(), SinkError> {
        let write = self.sink.write_all(writes);
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(done) => done,
            Err(_) => Err(self.too_slow()),
        }
    }

    async fn close_lost(&self, lost: &LostCalls) -> Result<u64, SinkError> {
        let close = self
            .sink
            .close_lost_of_earlier_runs(&lost.node, &lost.run, lost.at_ms);
        match tokio::time::timeout(self.write_timeout, close).await {
            Ok(done) => done,
            Err(_) => Err(self.too_slow()),
        }
    }

    fn too_slow(&self) -> SinkError {
        SinkError {
            transient: true,
            message: format!(
                "the database took longer than {} ms",
                self.write_timeout.as_millis()
            ),
        }
    }
}

/// This node's calls of earlier runs to close as `daemon_lost`.
#[derive(Clone, Debug)]
struct LostCalls {
    node: String,
    /// This run, whose calls are left alone.
    run: String,
    at_ms: i64,
}

/// Writes read from a journal file and not yet in the database.
struct Chunk {
    writes: Vec<CdrWrite>,
    from: Source,
    /// Where the chunk ends in its file.
    end: u64,
    /// Nothing followed it in the file when it was read.
    eof: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The replaying file, which nothing is appended to.
    Replaying,
    /// The journal, read in place while the database had not yet taken any of it; with
    /// the count of appends to it when the chunk was read.
    Journal { appends: u64 },
}

/// A database job the writer runs in a task of its own beside taking new writes.
enum Done {
    Written(Result<(), Vec<CdrWrite>>),
    Closed(Result<u64, SinkError>),
    /// The task panicked.
    Failed(String),
}

/// The writer task's state. The backlog, in order: the replaying file (its chunk read
/// and not yet written first), the journal, and what neither the database nor the disk
/// took (held in memory).
struct Writer<S> {
    db: Arc<Db<S>>,
    journal: Arc<Journal>,
    retry_every: Duration,
    /// The wait before the next try while the database stays away.
    retry_wait: Duration,
    /// When the backlog is tried against the database next.
    next_retry: Instant,
    /// The replaying file exists; the writes before this byte offset are written.
    replaying: Option<u64>,
    /// The next writes of the backlog, read from a file and not yet written.
    pending: Option<Chunk>,
    /// The journal holds writes.
    journaled: bool,
    /// Where the unwritten part of the journal starts (0 unless it could not be renamed).
    journal_offset: u64,
    /// Appends to the journal: tells whether it grew after a chunk was read from it.
    appends: u64,
    /// Writes that neither the database nor the journal took (the disk failed too),
    /// after the journal's and before anything new.
    held: Vec<CdrWrite>,
    /// This node's calls of earlier runs, to close once the backlog (which may hold
    /// their ends) is written; `None` once done.
    lost: Option<LostCalls>,
    /// Writes replayed since the backlog began, for the log.
    replayed: usize,
}

impl<S: CdrSink> Writer<S> {
    fn new(
        sink: S,
        journal: Arc<Journal>,
        options: &CdrOptions,
        lost: Option<LostCalls>,
    ) -> Writer<S> {
        Writer {
            db: Arc::new(Db {
                sink,
                journal: journal.clone(),
                write_timeout: options.write_timeout,
            }),
            // A replay cut short by a crash goes on from its start: writes are idempotent.
            replaying: journal.replaying.exists().then_some(0),
            journaled: holds_writes(&journal.path),
            journal,
            retry_every: options.retry_every,
            retry_wait: options.retry_every,
            next_retry: Instant::now(),
            pending: None,
            journal_offset: 0,
            appends: 0,
            held: Vec::new(),
            lost,
            replayed: 0,
        }
    }

    fn backlog(&self) -> bool {
        self.replaying.is_some()
            || self.pending.is_some()
            || self.journaled
            || !self.held.is_empty()
    }

    fn has_work(&self) -> bool {
        self.backlog() || self.lost.is_some()
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // One database job at a time (a chunk of the backlog, closing lost calls) runs
        // beside taking new writes, so a long replay never holds a call up.
        let mut job: Option<tokio::task::JoinHandle<Done>> = None;
        loop {
            if job.is_none() && self.has_work() && Instant::now() >= self.next_retry {
                job = self.next_job().await;
            }
            let retry = job.is_none() && self.has_work();
            let retry_at = self.next_retry;
            tokio::select! {
                got = rx.recv_many(&mut batch, MAX_BATCH) => {
                    if got == 0 {
                        break;
                    }
                    self.serve(&mut batch).await;
                }
                done = finished(&mut job) => {
                    job = None;
                    self.job_done(done).await;
                }
                _ = tokio::time::sleep_until(retry_at), if retry => {}
            }
        }
        // A job still running finishes by itself; what it writes is in a file anyway.
        self.stop().await;
    }

    /// Takes a batch off the queue and answers who waits for it.
    async fn serve(&mut self, batch: &mut Vec<Queued>) {
        let mut writes = Vec::with_capacity(batch.len());
        let mut waiting = Vec::new();
        for q in batch.drain(..) {
            match q {
                Queued::Write(w, done) => {
                    writes.push(*w);
                    waiting.extend(done);
                }
                Queued::Flush(done) => waiting.push(done),
            }
        }
        self.take(writes).await;
        for done in waiting {
            let _ = done.send(());
        }
    }

    /// Writes new writes to the database, or while there is a backlog into the journal
    /// after it: durable at once, and in the database after the backlog.
    async fn take(&mut self, writes: Vec<CdrWrite>) {
        if writes.is_empty() {
            return;
        }
        if self.backlog() {
            self.spill(writes).await;
            return;
        }
        if let Err(unwritten) = self.db.write(writes).await {
            self.spill(unwritten).await;
        }
    }

    /// Puts writes after the backlog: into the journal, or held in memory when the disk
    /// fails too.
    async fn spill(&mut self, writes: Vec<CdrWrite>) {
        if !self.backlog() {
            warn!(
                file = %self.journal.path.display(),
                "call records go to the journal until the database takes them"
            );
            self.retry_wait = self.retry_every;
            self.next_retry = Instant::now() + self.retry_wait;
        }
        self.held.extend(writes);
        let journal = self.journal.clone();
        let held = self.held.clone();
        let appended = tokio::task::spawn_blocking(move || journal.append(&held))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        match appended {
            Ok(()) => {
                self.held.clear();
                self.journaled = true;
                self.appends += 1;
            }
            Err(e) => error!(
                writes = self.held.len(),
                "neither the database nor the journal ({}) takes call records: {e}; \
                 they are kept in memory and tried again",
                self.journal.path.display()
            ),
        }
    }

    /// Starts the next database job, or does it here when nothing may pass it: the last
    /// chunk of the backlog (new writes then go straight to the database again), and the
    /// writes held in memory.
    async fn next_job(&mut self) -> Option<tokio::task::JoinHandle<Done>> {
        if !self.backlog() {
            let lost = self.lost.clone()?;
            let db = self.db.clone();
            return Some(tokio::spawn(async move {
                Done::Closed(db.close_lost(&lost).await)
            }));
        }
        if let Err(e) = self.load_chunk().await {
            warn!("reading the journal of call records: {e}; tried again later");
            self.back_off();
            return None;
        }
        let Some(chunk) = &self.pending else {
            // Only writes the disk did not take are left.
            let held = std::mem::take(&mut self.held);
            match self.db.write(held).await {
                Ok(()) => self.caught_up(),
                Err(unwritten) => {
                    self.held = unwritten;
                    self.back_off();
                }
            }
            return None;
        };
        let writes = chunk.writes.clone();
        let last = chunk.eof
            && match chunk.from {
                Source::Replaying => !self.journaled,
                Source::Journal { appends } => appends == self.appends,
            };
        if last || writes.is_empty() {
            let written = self.db.write(writes).await;
            self.chunk_written(written).await;
            return None;
        }
        let db = self.db.clone();
        Some(tokio::spawn(async move {
            Done::Written(db.write(writes).await)
        }))
    }

    /// Reads the next chunk of the backlog from its file, unless one waits.
    async fn load_chunk(&mut self) -> Result<(), String> {
        if self.pending.is_some() {
            return Ok(());
        }
        let (path, offset, from) = match self.replaying {
            Some(offset) => (self.journal.replaying.clone(), offset, Source::Replaying),
            None if self.journaled => (
                self.journal.path.clone(),
                self.journal_offset,
                Source::Journal {
                    appends: self.appends,
                },
            ),
            None => return Ok(()),
        };
        let journal = self.journal.clone();
        let read =
            tokio::task::spawn_blocking(move || journal.read_chunk(&path, offset, MAX_BATCH)).await;
        let (writes, end, eof) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(e) => return Err(e.to_string()),
        };
        self.pending = Some(Chunk {
            writes,
            from,
            end,
            eof,
        });
        Ok(())
    }

    /// Moves on after the pending chunk was written, or keeps what is left of it (not
    /// what was set aside as refused, so that is kept in the rejected file once). False
    /// when the backlog did not move on.
    async fn chunk_written(&mut self, written: Result<(), Vec<CdrWrite>>) -> bool {
        let Some(chunk) = self.pending.take() else {
            return true;
        };
        if let Err(unwritten) = written {
            self.pending = Some(Chunk {
                writes: unwritten,
                ..chunk
            });
            self.back_off();
            return false;
        }
        self.replayed += chunk.writes.len();
        let journal = self.journal.clone();
        let moved_on = match chunk.from {
            Source::Replaying if chunk.eof => {
                let done =
                    tokio::task::spawn_blocking(move || journal.remove(&journal.replaying)).await;
                self.replaying = Some(chunk.end);
                match flatten(done) {
                    Ok(()) => {
                        self.replaying = None;
                        true
                    }
                    Err(e) => {
                        warn!("removing the replayed journal: {e}");
                        false
                    }
                }
            }
            Source::Replaying => {
                self.replaying = Some(chunk.end);
                true
            }
            Source::Journal { appends } => {
                self.journal_offset = chunk.end;
                let whole = chunk.eof && appends == self.appends;
                let done = tokio::task::spawn_blocking(move || {
                    if whole {
                        journal.remove(&journal.path)
                    } else {
                        // The database takes writes again: the rest is replayed from the
                        // replaying file while new writes go to a fresh journal.
                        journal.rotate()
                    }
                })
                .await;
                match flatten(done) {
                    Ok(()) if whole => {
                        self.journaled = false;
                        self.journal_offset = 0;
                        true
                    }
                    Ok(()) => {
                        self.replaying = Some(chunk.end);
                        self.journaled = false;
                        self.journal_offset = 0;
                        true
                    }
                    Err(e) => {
                        // Read on in place from where it got to.
                        warn!("moving on in the journal of call records: {e}");
                        !whole
                    }
                }
            }
        };
        if !moved_on {
            self.back_off();
            return false;
        }
        self.retry_wait = self.retry_every;
        self.next_retry = Instant::now();
        if !self.backlog() {
            self.caught_up();
        }
        true
    }

    fn caught_up(&mut self) {
        info!(
            writes = self.replayed,
            "call records replayed from the journal; new ones go to the database again"
        );
        self.replayed = 0;
        self.retry_wait = self.retry_every;
        self.next_retry = Instant::now();
    }

    async fn job_done(&mut self, done: Done) {
        match done {
            Done::Written(written) => {
                self.chunk_written(written).await;
            }
            Done::Closed(Ok(closed)) => {
                self.lost = None;
                if closed > 0 {
                    warn!(
                        records = closed,
                        "closed the call records an earlier run left open as daemon_lost"
                    );
                }
            }
            Done::Closed(Err(e)) => {
                warn!("closing the call records an earlier run left open: {e}; tried again later");
                self.back_off();
            }
            Done::Failed(e) => {
                error!("a call record task failed: {e}; tried again later");
                self.back_off();
            }
        }
    }

    fn back_off(&mut self) {
        self.retry_wait = (self.retry_wait * 2).min(self.retry_every * 12);
        self.next_retry = Instant::now() + self.retry_wait;
    }

    /// Replays the whole backlog here, then closes this node's lost calls: the
    /// start-up recovery. Stops at the first failure, leaving the rest for [`Writer::run`].
    async fn recover(&mut self) -> Result<Recovered, SinkError> {
        let mut replayed = 0;
        while self.backlog() {
            self.load_chunk().await.map_err(|e| SinkError {
                transient: true,
                message: format!("reading the journal: {e}"),
            })?;
            let Some(chunk) = &self.pending else {
                break;
            };
            let writes = chunk.writes.clone();
            let n = writes.len();
            let written = self.db.write(writes).await;
            if !self.chunk_written(written).await {
                return Err(SinkError {
                    transient: true,
                    message: "the database does not take the journal yet".into(),
                });
            }
            replayed += n;
        }
        let mut lost = 0;
        if let Some(calls) = self.lost.clone() {
            lost = self.db.close_lost(&calls).await?;
            self.lost = None;
        }
        Ok(Recovered { replayed, lost })
    }

    /// What is held in memory goes to the journal for the next start.
    async fn stop(mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let what: Vec<String> = held.iter().map(CdrWrite::describe).collect();
        let journal = self.journal.clone();
        let appended = tokio::task::spawn_blocking(move || journal.append(&held)).await;
        if let Err(e) = flatten(appended) {
            error!(
                "call records lost: the writer stopped and the journal ({}) failed: {e}: {}",
                self.journal.path.display(),
                what.join("; ")
            );
        }
    }
}

async fn finished(job: &mut Option<tokio::task::JoinHandle<Done>>) -> Done {
    match job {
        Some(task) => task.await.unwrap_or_else(|e| Done::Failed(e.to_string())),
        None => std::future::pending().await,
    }
}

fn flatten(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), std::io::Error> {
    r.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
}

fn record(r: &sqlx::any::AnyRow) -> Result<CallRecord, StoreError> {
    Ok(CallRecord {
        id: r.try_get("id")?,
        call_id: r.try_get("call_id")?,
        caller: r.try_get("caller")?,
        called: r.try_get("called")?,
        started_at_ms: r.try_get("started_at")?,
        answered_at_ms: r.try_get("answered_at")?,
        ended_at_ms: r.try_get("ended_at")?,
        end_reason: r.try_get("end_reason")?,
        digits: r.try_get("digits")?,
        flow: r.try_get("flow")?,
        flow_version: r.try_get("flow_version")?,
        path: r.try_get("path")?,
        variables: r.try_get("variables")?,
        operator: r.try_get("operator")?,
        service: Service {
            queue: r.try_get("queue")?,
            wait_ms: r.try_get("wait_ms")?,
            hold_ms: r.try_get("hold_ms")?,
            legs: Vec::new(),
        },
        wrapup_category: r.try_get("wrapup_category")?,
        wrapup_note: r.try_get("wrapup_note")?,
        recording: r.try_get("recording")?,
        wrapup_tags: r.try_get("wrapup_tags")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use super::*;
    use std::sync::Mutex;

    /// A database that can be down, slow, or refuse one record for itself.
    #[derive(Clone, Default)]
    struct FakeSink(Arc<Mutex<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        down: bool,
        slow: bool,
        /// How long every write takes.
        delay: Duration,
        refuse_key: Option<String>,
        /// Fails (as a database going away) the first write holding this key.
        fail_once_key: Option<String>,
        written: Vec<CdrWrite>,
        /// Each close of lost calls: node, run, and how many writes were in by then.
        closed: Vec<(String, String, usize)>,
    }

    impl FakeSink {
        fn set(&self, f: impl FnOnce(&mut FakeState)) {
            f(&mut self.0.lock().unwrap());
        }
        fn written(&self) -> Vec<CdrWrite> {
            self.0.lock().unwrap().written.clone()
        }
    }

    impl CdrSink for FakeSink {
        async fn write_all(&self, writes: &[CdrWrite]) -> Result<(), SinkError> {
            let (slow, delay) = {
                let state = self.0.lock().unwrap();
                (state.slow, state.delay)
            };
            if slow {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            tokio::time::sleep(delay).await;
            let mut state = self.0.lock().unwrap();
            if state.down {
                return Err(SinkError {
                    transient: true,
                    message: "connection refused".into(),
                });
            }
            if let Some(k) = &state.refuse_key
                && writes.iter().any(|w| key_of(w) == k)
            {
                return Err(SinkError {
                    transient: false,
                    message: "value too long".into(),
                });
            }
            if let Some(k) = state.fail_once_key.clone()
                && writes.iter().any(|w| key_of(w) == k)
            {
                state.fail_once_key = None;
                return Err(SinkError {
                    transient: true,
                    message: "connection reset".into(),
                });
            }
            state.written.extend(writes.iter().cloned());
            Ok(())
        }

        async fn close_lost_of_earlier_runs(
            &self,
            node: &str,
            this_run: &str,
            _now_ms: i64,
        ) -> Result<u64, SinkError> {
            let mut state = self.0.lock().unwrap();
            if state.down {
                return Err(SinkError {
                    transient: true,
                    message: "connection refused".into(),
                });
            }
            let written = state.written.len();
            state
                .closed
                .push((node.to_string(), this_run.to_string(), written));
            Ok(0)
        }
    }

    fn key_of(w: &CdrWrite) -> &str {
        match w {
            CdrWrite::Start { key, .. }
            | CdrWrite::Answered { key, .. }
            | CdrWrite::End { key, .. } => key,
        }
    }

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("hotline-cdr-unit-{:016x}", rand::random::<u64>()))
    }

    fn options(dir: &Path) -> CdrOptions {
        CdrOptions {
            write_timeout: Duration::from_millis(200),
            retry_every: Duration::from_millis(50),
            ..CdrOptions::new(dir, "node-a")
        }
    }

    fn start(i: i64) -> CallStart {
        CallStart {
            call_id: format!("c{i}"),
            caller: format!("+3630000000{i}"),
            called: "100".into(),
            started_at_ms: 1000 + i,
            flow: None,
            flow_version: None,
        }
    }

    fn end(at: i64) -> CallEnd {
        CallEnd {
            ended_at_ms: at,
            reason: EndReason::CallerHangup,
            digits: String::new(),
            path: Vec::new(),
            variables: "{}".into(),
            operator: None,
            service: Service {
                legs: vec![CallLeg {
                    operator: Some("anna".into()),
                    number: None,
                    rang_at_ms: 1,
                    answered_at_ms: Some(2),
                    ended_at_ms: 3,
                    outcome: LegOutcome::Answered,
                    hold_ms: 0,
                    transferred_to: None,
                }],
                ..Default::default()
            },
        }
    }

    async fn eventually(what: &str, ok: impl FnMut() -> bool) {
        eventually_within(Duration::from_secs(2), what, ok).await;
    }

    async fn eventually_within(within: Duration, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never happened: {what}");
    }

    /// A journal as an earlier run (`0123`) left it: the starts of its calls 1..=n.
    fn earlier_journal(dir: &Path, n: i64) -> Vec<CdrWrite> {
        std::fs::create_dir_all(dir).unwrap();
        let writes: Vec<_> = (1..=n)
            .map(|i| CdrWrite::Start {
                key: format!("0123-{i}"),
                node: "node-a".into(),
                call: start(i),
            })
            .collect();
        let text: String = writes
            .iter()
            .map(|w| serde_json::to_string(w).unwrap() + "\n")
            .collect();
        std::fs::write(dir.join(JOURNAL_FILE), text).unwrap();
        writes
    }

    fn no_journal(dir: &Path) -> bool {
        !dir.join(JOURNAL_FILE).exists() && !dir.join(REPLAYING_FILE).exists()
    }

    fn journal_lines(dir: &Path) -> Vec<CdrWrite> {
        std::fs::read_to_string(dir.join(JOURNAL_FILE))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_database_that_is_down_gets_the_records_from_the_journal_when_back() {
        let dir = temp_dir();
        let sink = FakeSink::default();
        sink.set(|s| s.down = true);
        let log = CdrLog::start(sink.clone(), options(&dir));
        // The start returns although the database is down: it is in the journal.
        let a = log.start_call(start(1)).await;
        let b = log.start_call(start(2)).await;
        log.answered(a, 1500).await;
        log.end_call(a, end(2000)).await;
        log.flush().await;
        let journaled = journal_lines(&dir);
        assert_eq!(journaled.len(), 4, "{journaled:?}");
        assert!(
            matches!(&journaled[0], CdrWrite::Start { call, node, .. } if call.call_id == "c1" && node == "node-a")
        );
        assert!(matches!(&journaled[3], CdrWrite::End { end, .. } if end.service.legs.len() == 1));
        assert!(sink.written().is_empty());
        // Writes while the journal holds some go after them, in order.
        log.end_call(b, end(2500)).await;
        log.flush().await;
        assert_eq!(journal_lines(&dir).len(), 5);

        sink.set(|s| s.down = false);
        eventually("the journal replayed", || sink.written().len() == 5).await;
        let written = sink.written();
        assert_eq!(written[..4], journaled[..], "in the order handed over");
        assert!(
            matches!(&written[4], CdrWrite::End { key, end } if *key == log.key(b) && end.ended_at_ms == 2500)
        );
        eventually("the journal removed", || no_journal(&dir)).await;
        // And new writes go straight to the database again.
        let c = log.start_call(start(3)).await;
        log.end_call(c, end(3000)).await;
        log.flush().await;
        assert_eq!(sink.written().len(), 7);
        assert!(no_journal(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_slow_database_counts_as_failed() {
        let dir = temp_dir();
        let sink = FakeSink::default();
        sink.set(|s| s.slow = true);
        let log = CdrLog::start(sink.clone(), options(&dir));
        let began = std::time::Instant::now();
        let a = log.start_call(start(1)).await;
        log.end_call(a, end(2000)).await;
        log.flush().await;
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        assert_eq!(journal_lines(&dir).len(), 2);
        sink.set(|s| s.slow = false);
        eventually("the journal replayed", || sink.written().len() == 2).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_write_the_database_refuses_is_set_aside_and_the_others_written() {
        let dir = temp_dir();
        let sink = FakeSink::default();
        let log = CdrLog::start(sink.clone(), options(&dir));
        sink.set(|s| s.refuse_key = Some(format!("{}-2", log.run)));
        let _a = log.start_call(start(1)).await;
        let _b = log.start_call(start(2)).await;
        let _c = log.start_call(start(3)).await;
        log.flush().await;
        let ids: Vec<_> = sink
            .written()
            .iter()
            .map(|w| key_of(w).to_string())
            .collect();
        assert_eq!(ids, [format!("{}-1", log.run), format!("{}-3", log.run)]);
        let rejected = std::fs::read_to_string(dir.join(REJECTED_FILE)).unwrap();
        assert!(rejected.contains("start of c2"), "{rejected}");
        assert!(rejected.contains("value too long"), "{rejected}");
        assert!(!dir.join(JOURNAL_FILE).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_journal_left_by_an_earlier_run_is_replayed_and_a_torn_line_kept() {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let earlier = CdrWrite::End {
            key: "0123-7".into(),
            end: end(99),
        };
        let text = format!(
            "{}\n{{\"op\":\"start\",\"key\":\"01",
            serde_json::to_string(&earlier).unwrap()
        );
        std::fs::write(dir.join(JOURNAL_FILE), text).unwrap();
        let sink = FakeSink::default();
        sink.set(|s| s.down = true);
        let log = CdrLog::start(sink.clone(), options(&dir));
        // Journaled after the torn line: it must not be glued to it.
        let new = log.start_call(start(5)).await;
        log.flush().await;
        sink.set(|s| s.down = false);
        // No new write needed: the writer tries its backlog by itself.
        eventually("the old journal replayed", || sink.written().len() == 2).await;
        let written = sink.written();
        assert_eq!(written[0], earlier);
        assert!(matches!(&written[1], CdrWrite::Start { key, .. } if *key == log.key(new)));
        eventually("the journal removed", || !dir.join(JOURNAL_FILE).exists()).await;
        let rejected = std::fs::read_to_string(dir.join(REJECTED_FILE)).unwrap();
        assert!(rejected.contains("unreadable line"), "{rejected}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_long_replay_does_not_hold_up_new_calls() {
        let dir = temp_dir();
        let earlier = earlier_journal(&dir, 5000);
        let sink = FakeSink::default();
        // Ten chunks of 512 at 250 ms each: the replay takes 2.5 s at least.
        sink.set(|s| s.delay = Duration::from_millis(250));
        let log = CdrLog::start(
            sink.clone(),
            CdrOptions {
                write_timeout: Duration::from_secs(5),
                ..options(&dir)
            },
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut new = Vec::new();
        for i in 0..3 {
            let began = std::time::Instant::now();
            new.push(log.start_call(start(100 + i)).await);
            let took = began.elapsed();
            assert!(
                took < Duration::from_millis(1000),
                "a new call waited {took:?} for the replay"
            );
        }
        assert!(
            sink.written().len() < earlier.len(),
            "the replay was still going on"
        );
        eventually_within(Duration::from_secs(30), "everything written", || {
            sink.written().len() == earlier.len() + 3
        })
        .await;
        // The journal of the earlier run first, then the new writes, in order.
        let written = sink.written();
        assert_eq!(written[..earlier.len()], earlier[..]);
        for (w, r) in written[earlier.len()..].iter().zip(&new) {
            assert!(matches!(w, CdrWrite::Start { key, .. } if *key == log.key(*r)));
        }
        eventually("the journals removed", || no_journal(&dir)).await;
        // Caught up: new writes go straight to the database again.
        log.start_call(start(200)).await;
        assert_eq!(sink.written().len(), earlier.len() + 4);
        assert!(no_journal(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_new_write_is_journaled_behind_a_replay_and_written_after_it() {
        // The database comes back while the journal holds writes of calls going on: a
        // call's end journaled during the replay lands after its start.
        let dir = temp_dir();
        let sink = FakeSink::default();
        sink.set(|s| s.down = true);
        let log = CdrLog::start(sink.clone(), options(&dir));
        // More than a chunk, handed over at once as under load.
        let starting: Vec<_> = (0..700)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.start_call(start(i)).await })
            })
            .collect();
        let mut calls = Vec::new();
        for s in starting {
            calls.push(s.await.unwrap());
        }
        sink.set(|s| {
            s.down = false;
            s.delay = Duration::from_millis(100);
        });
        // Let the replay begin, then end every call while it goes on.
        eventually("the replay began", || !sink.written().is_empty()).await;
        for (i, c) in calls.iter().enumerate() {
            log.end_call(*c, end(5000 + i as i64)).await;
        }
        log.flush().await;
        eventually_within(Duration::from_secs(30), "everything written", || {
            sink.written().len() == 1400
        })
        .await;
        let written = sink.written();
        for (i, c) in calls.iter().enumerate() {
            let key = log.key(*c);
            let at = |start: bool| {
                written
                    .iter()
                    .position(|w| match w {
                        CdrWrite::Start { key: k, .. } => start && *k == key,
                        CdrWrite::End { key: k, .. } => !start && *k == key,
                        CdrWrite::Answered { .. } => false,
                    })
                    .unwrap()
            };
            assert!(
                at(true) < at(false),
                "call {i}: its end came before its start"
            );
        }
        eventually("the journals removed", || no_journal(&dir)).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn lost_calls_are_closed_once_the_database_is_back() {
        let dir = temp_dir();
        earlier_journal(&dir, 2);
        let sink = FakeSink::default();
        sink.set(|s| s.down = true);
        let (log, recovered) = CdrLog::start_recovered(sink.clone(), options(&dir)).await;
        assert!(recovered.is_err(), "the database is down at start");
        log.start_call(start(7)).await;
        log.flush().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(sink.0.lock().unwrap().closed.is_empty());
        sink.set(|s| s.down = false);
        eventually("the lost calls closed", || {
            !sink.0.lock().unwrap().closed.is_empty()
        })
        .await;
        // Once, for this node, sparing this run's calls, after the journal (which may
        // hold the ends of the earlier run's calls) was written.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let closed = sink.0.lock().unwrap().closed.clone();
        assert_eq!(closed, [("node-a".to_string(), log.run.to_string(), 3)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn lost_calls_are_closed_at_start_when_the_database_works() {
        let dir = temp_dir();
        earlier_journal(&dir, 2);
        let sink = FakeSink::default();
        let (log, recovered) = CdrLog::start_recovered(sink.clone(), options(&dir)).await;
        assert_eq!(recovered.unwrap().replayed, 2);
        let closed = sink.0.lock().unwrap().closed.clone();
        assert_eq!(closed, [("node-a".to_string(), log.run.to_string(), 2)]);
        assert!(no_journal(&dir));
        log.start_call(start(7)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(sink.0.lock().unwrap().closed.len(), 1, "closed once");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_replay_that_fails_part_way_sets_each_refused_write_aside_once() {
        let dir = temp_dir();
        let earlier = earlier_journal(&dir, 3);
        let sink = FakeSink::default();
        // The second is refused for itself; the database goes away once after it.
        sink.set(|s| {
            s.refuse_key = Some("0123-2".into());
            s.fail_once_key = Some("0123-3".into());
        });
        let _log = CdrLog::start(sink.clone(), options(&dir));
        eventually("the rest written", || sink.written().len() == 2).await;
        eventually("the journal removed", || no_journal(&dir)).await;
        assert_eq!(sink.written(), [earlier[0].clone(), earlier[2].clone()]);
        let rejected = std::fs::read_to_string(dir.join(REJECTED_FILE)).unwrap();
        assert_eq!(rejected.lines().count(), 1, "{rejected}");
        assert!(rejected.contains("0123-2"), "{rejected}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let dir = temp_dir();
        let sink = FakeSink::default();
        sink.set(|s| s.slow = true);
        let log = CdrLog::start(
            sink.clone(),
            CdrOptions {
                queue: 2,
                write_timeout: Duration::from_secs(60),
                ..options(&dir)
            },
        );
        let sent = Arc::new(AtomicU64::new(0));
        let sender = {
            let (log, sent) = (log.clone(), sent.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    log.answered(CdrRef(1), i).await;
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        // One batch (at most the queue's size) in the stuck database, two queued: the
        // rest wait their turn.
        let sent = sent.load(Ordering::SeqCst);
        assert!((3..=4).contains(&sent), "{sent} sent");
        sender.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_node_keeps_its_id() {
        let dir = temp_dir();
        let first = node_id(&dir).unwrap();
        assert_eq!(first.len(), 16);
        assert_eq!(node_id(&dir).unwrap(), first);
        assert_ne!(node_id(&temp_dir()).unwrap(), first);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn writes_are_json_lines_with_an_op() {
        let w = CdrWrite::Answered {
            key: "ab-1".into(),
            at_ms: 5,
        };
        let line = serde_json::to_string(&w).unwrap();
        assert_eq!(line, r#"{"op":"answered","key":"ab-1","at_ms":5}"#);
        let e = serde_json::to_value(CdrWrite::End {
            key: "ab-1".into(),
            end: end(9),
        })
        .unwrap();
        assert_eq!(e["end"]["reason"], "caller_hangup");
        assert_eq!(e["end"]["service"]["legs"][0]["outcome"], "answered");
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("+36301234567"), "+36301234567");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("x\ny"), "\"x\ny\"");
    }
}
