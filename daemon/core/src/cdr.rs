//! Call detail records: one row per call, written when the call starts and completed when
//! it ends. Calls hand their records to `CdrLog`, which writes them off the call path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::{Store, StoreError};
use sqlx::{Any, AnyConnection, Executor, Row};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

/// Why a call ended, as stored in `calls.end_reason` and counted in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
}

impl EndReason {
    pub const ALL: [EndReason; 10] = [
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
        }
    }
}

/// What is known when the INVITE arrives.
#[derive(Clone, Debug)]
pub struct CallStart {
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub started_at_ms: i64,
    pub flow: Option<String>,
    pub flow_version: Option<String>,
}

/// What is known when the call is over.
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// The recording's file name (issue 12).
    pub recording: Option<String>,
}

/// The first 14 columns are the original ones (scripts read them by position); then the
/// times as ISO 8601 and `duration`/`billsec` in seconds as Asterisk's Master.csv has them
/// (billsec: from the answer), the queue, wait and hold, the legs (`; `-separated), the
/// wrap-up and the recording.
pub const CSV_HEADER: &str = "id,call_id,caller,called,started_at_ms,answered_at_ms,ended_at_ms,end_reason,digits,flow,flow_version,path,variables,operator,start,answer,end,duration,billsec,queue,wait_ms,hold_ms,transfers,legs,wrapup_category,wrapup_note,recording";

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
        ]
        .join(",")
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

/// The columns of `CallRecord`, as a literal so queries built on it stay literals.
macro_rules! select_call {
    () => {
        "SELECT id, call_id, caller, called, started_at, answered_at, ended_at, \
         end_reason, digits, flow, flow_version, path, variables, operator, queue, wait_ms, \
         hold_ms, wrapup_category, wrapup_note, recording FROM calls"
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

    /// Closes records left open by a crash, so none stays "in progress" forever.
    pub async fn close_abandoned_calls(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET ended_at = $1, end_reason = 'shutdown' WHERE ended_at IS NULL",
        )
        .bind(now_ms)
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
        let rows = sqlx::query(concat!(
            select_call!(),
            " WHERE started_at >= $1 AND started_at < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(since_ms.unwrap_or(i64::MIN))
        .bind(until_ms.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut calls = Vec::with_capacity(rows.len());
        for r in &rows {
            calls.push(self.with_legs(record(r)?).await?);
        }
        Ok(calls)
    }

    /// The operator's wrap-up of a voice call: a category and a note.
    pub async fn set_call_wrapup(
        &self,
        call_id: &str,
        category: Option<&str>,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET wrapup_category = $2, wrapup_note = $3 WHERE id = \
             (SELECT max(id) FROM calls WHERE call_id = $1)",
        )
        .bind(call_id)
        .bind(category)
        .bind(note)
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
    let finished = sqlx::query(
        "UPDATE calls SET ended_at = $1, end_reason = $2, digits = $3, path = $4, \
         variables = $5, operator = $6, queue = $7, wait_ms = $8, hold_ms = $9 \
         WHERE id = $10 AND ended_at IS NULL",
    )
    .bind(end.ended_at_ms)
    .bind(end.reason.as_str())
    .bind(&end.digits)
    .bind(end.path.join(" "))
    .bind(&end.variables)
    .bind(&end.operator)
    .bind(&end.service.queue)
    .bind(end.service.wait_ms)
    .bind(end.service.hold_ms)
    .bind(id)
    .execute(&mut *ex)
    .await?;
    // A second end (a late BYE) adds no legs either.
    if finished.rows_affected() == 0 {
        return Ok(());
    }
    for (seq, leg) in end.service.legs.iter().enumerate() {
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

/// A call's record in the `CdrLog`, before the database has given it an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CdrRef(u64);

enum CdrWrite {
    Start(CdrRef, CallStart),
    Answered(CdrRef, i64),
    End(CdrRef, CallEnd),
    Flushed(oneshot::Sender<()>),
}

/// Writes call records off the call path. A call never waits for the database: it hands
/// its start, answer and end to one writer task, which writes whatever has queued up in
/// one transaction. Under load that is one commit for hundreds of writes instead of three
/// per call, each waiting its turn for SQLite's single writer.
#[derive(Clone)]
pub struct CdrLog {
    tx: mpsc::UnboundedSender<CdrWrite>,
    next: Arc<AtomicU64>,
}

/// Writes per transaction at most, so one commit never grows without bound.
const MAX_BATCH: usize = 512;

impl CdrLog {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store) -> CdrLog {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_records(store, rx));
        CdrLog {
            tx,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Opens the record of a call; answer and end refer to it by the returned reference.
    pub fn start_call(&self, call: CallStart) -> CdrRef {
        let r = CdrRef(self.next.fetch_add(1, Ordering::Relaxed));
        self.send(CdrWrite::Start(r, call));
        r
    }

    pub fn answered(&self, call: CdrRef, answered_at_ms: i64) {
        self.send(CdrWrite::Answered(call, answered_at_ms));
    }

    pub fn end_call(&self, call: CdrRef, end: CallEnd) {
        self.send(CdrWrite::End(call, end));
    }

    /// Waits until everything handed over so far is written (or reported lost).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        self.send(CdrWrite::Flushed(done));
        let _ = wait.await;
    }

    fn send(&self, write: CdrWrite) {
        if self.tx.send(write).is_err() {
            error!("call record lost: the CDR writer has stopped");
        }
    }
}

async fn write_records(store: Store, mut rx: mpsc::UnboundedReceiver<CdrWrite>) {
    // Database ids of the calls still open.
    let mut ids: HashMap<CdrRef, i64> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut flushed = Vec::new();
        let writes: Vec<CdrWrite> = batch
            .drain(..)
            .filter_map(|w| match w {
                CdrWrite::Flushed(done) => {
                    flushed.push(done);
                    None
                }
                w => Some(w),
            })
            .collect();
        write_batch(&store, &mut ids, &writes).await;
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// Writes in one transaction; when that fails (database restarting, one bad row), retries
/// once after a pause, then write by write so one bad record costs only itself.
async fn write_batch(store: &Store, ids: &mut HashMap<CdrRef, i64>, writes: &[CdrWrite]) {
    if writes.is_empty() {
        return;
    }
    for attempt in 0..2 {
        let mut new_ids = ids.clone();
        match write_in_transaction(store, &mut new_ids, writes).await {
            Ok(()) => {
                *ids = new_ids;
                return;
            }
            Err(e) => {
                warn!(attempt, writes = writes.len(), "writing call records: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    for w in writes {
        let written = match store.pool().acquire().await {
            Ok(mut conn) => write_one(&mut conn, ids, w).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            error!("call record lost: {e}: {}", describe(w));
        }
    }
}

async fn write_in_transaction(
    store: &Store,
    ids: &mut HashMap<CdrRef, i64>,
    writes: &[CdrWrite],
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for w in writes {
        write_one(&mut tx, ids, w).await?;
    }
    tx.commit().await
}

async fn write_one(
    conn: &mut AnyConnection,
    ids: &mut HashMap<CdrRef, i64>,
    write: &CdrWrite,
) -> Result<(), sqlx::Error> {
    match write {
        CdrWrite::Start(r, call) => {
            ids.insert(*r, insert_call(conn, call).await?);
        }
        CdrWrite::Answered(r, at) => match ids.get(r) {
            Some(id) => set_call_answered(conn, *id, *at).await?,
            None => warn!("call answered whose record was never written"),
        },
        CdrWrite::End(r, end) => match ids.remove(r) {
            Some(id) => finish_call(conn, id, end).await?,
            None => warn!(
                reason = end.reason.as_str(),
                "call ended whose record was never written"
            ),
        },
        CdrWrite::Flushed(_) => {}
    }
    Ok(())
}

fn describe(write: &CdrWrite) -> String {
    match write {
        CdrWrite::Start(_, c) => {
            format!("start of {} from {} to {}", c.call_id, c.caller, c.called)
        }
        CdrWrite::Answered(_, at) => format!("answer at {at}"),
        CdrWrite::End(_, e) => format!("end at {} ({})", e.ended_at_ms, e.reason.as_str()),
        CdrWrite::Flushed(_) => "flush".to_string(),
    }
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
    })
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("+36301234567"), "+36301234567");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("x\ny"), "\"x\ny\"");
    }
}
