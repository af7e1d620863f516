//! Call recordings (PRODUCT S2): a row for each WAV file the daemon writes under the
//! state directory (the file itself is the daemon's), the marks in it (who answered,
//! hold, transfer), and the audit log of who started, stopped, played, downloaded,
//! repaired or purged which recording. The daemon files all three here.

use std::collections::HashMap;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Row};

use crate::store::{Store, StoreError, text_column};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// The file is being written (or a crash left it so until the next start).
    Recording,
    Complete,
    /// Finalized at the next start after a crash left it `Recording`.
    Repaired,
    /// Retention deleted the file; the row stays.
    Purged,
}

text_column!(RecordingStatus, "recording status");

impl RecordingStatus {
    /// The name it is stored and sent under.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Recording => "recording",
            RecordingStatus::Complete => "complete",
            RecordingStatus::Repaired => "repaired",
            RecordingStatus::Purged => "purged",
        }
    }

    pub fn parse(s: &str) -> Option<RecordingStatus> {
        [
            RecordingStatus::Recording,
            RecordingStatus::Complete,
            RecordingStatus::Repaired,
            RecordingStatus::Purged,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A recording as it starts.
#[derive(Clone, Debug)]
pub struct NewRecording<'a> {
    /// The SIP Call-ID, as in the call records.
    pub call_id: &'a str,
    pub caller: &'a str,
    pub operator: Option<&'a str>,
    pub queue: Option<&'a str>,
    /// The file, relative to the recordings directory.
    pub path: &'a str,
    /// `mono` or `stereo`.
    pub layout: &'a str,
    /// The console user who started an on-demand recording; `None` when the queue
    /// records every call.
    pub started_by: Option<&'a str>,
    pub started_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Recording {
    pub id: i64,
    pub call_id: String,
    pub caller: String,
    /// The first operator recorded.
    pub operator: Option<String>,
    pub queue: Option<String>,
    /// The file, relative to the recordings directory.
    pub path: String,
    /// `mono` or `stereo`.
    pub layout: String,
    pub started_by: Option<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub bytes: Option<i64>,
    pub status: RecordingStatus,
    pub purged_at_ms: Option<i64>,
    /// By offset.
    pub marks: Vec<RecordingMark>,
}

/// A labelled position in a recording ("anna answered", "on hold").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordingMark {
    pub offset_ms: i64,
    pub label: String,
}

/// One entry of the recordings' audit log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordingAccess {
    pub at_ms: i64,
    /// The console user; `None` for the daemon itself.
    pub user: Option<String>,
    pub recording_id: i64,
    pub call_id: String,
    /// `start`, `stop`, `play`, `download`, `repair`, `purge` or `refused`.
    pub action: String,
    pub detail: Option<String>,
}

const RECORDING_COLUMNS: &str = "id, call_id, caller, operator, queue, path, layout, \
     started_by, started_at_ms, ended_at_ms, duration_ms, bytes, status, purged_at_ms";

type AnyQuery = sqlx::query::Query<'static, Any, AnyArguments>;

impl Store {
    /// Files a recording that starts now (status `recording`); returns its id.
    pub async fn insert_recording(&self, r: &NewRecording<'_>) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO recordings \
             (call_id, caller, operator, queue, path, layout, started_by, started_at_ms, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(r.call_id)
        .bind(r.caller)
        .bind(r.operator)
        .bind(r.queue)
        .bind(r.path)
        .bind(r.layout)
        .bind(r.started_by)
        .bind(r.started_at_ms)
        .bind(RecordingStatus::Recording.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn add_recording_mark(
        &self,
        id: i64,
        offset_ms: i64,
        label: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recording_marks (recording_id, offset_ms, label) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(offset_ms)
        .bind(label)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets operator when it is still NULL (the first operator who talked).
    pub async fn set_recording_operator(&self, id: i64, operator: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE recordings SET operator = $2 WHERE id = $1 AND operator IS NULL")
            .bind(id)
            .bind(operator)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The file is closed: its end, length and size, and `status` (`Complete`, or
    /// `Repaired` when finalized after a crash).
    pub async fn finish_recording(
        &self,
        id: i64,
        ended_at_ms: i64,
        duration_ms: i64,
        bytes: i64,
        status: RecordingStatus,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE recordings SET ended_at_ms = $2, duration_ms = $3, bytes = $4, status = $5 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(ended_at_ms)
        .bind(duration_ms)
        .bind(bytes)
        .bind(status.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Rows still 'recording' (a crash left them), oldest first.
    pub async fn unfinished_recordings(&self) -> Result<Vec<Recording>, StoreError> {
        self.recordings_where(
            "WHERE status = 'recording' ORDER BY started_at_ms, id",
            |q| q,
        )
        .await
    }

    /// Rows not yet purged that started before `cutoff_ms` and are not being written
    /// (status complete or repaired), oldest first, at most `limit`.
    pub async fn recordings_to_purge(
        &self,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<Vec<Recording>, StoreError> {
        self.recordings_where(
            "WHERE status IN ('complete', 'repaired') AND started_at_ms < $1 \
             ORDER BY started_at_ms, id LIMIT $2",
            |q| q.bind(cutoff_ms).bind(limit),
        )
        .await
    }

    /// Retention deleted the file at `at_ms`. A row already purged keeps its first time.
    pub async fn mark_recording_purged(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE recordings SET status = 'purged', purged_at_ms = $2 \
             WHERE id = $1 AND status <> 'purged'",
        )
        .bind(id)
        .bind(at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One recording with its marks.
    pub async fn recording(&self, id: i64) -> Result<Option<Recording>, StoreError> {
        let mut found = self
            .recordings_where("WHERE id = $1", |q| q.bind(id))
            .await?;
        Ok(found.pop())
    }

    /// A call's recordings (an on-demand one may be stopped and started again), oldest
    /// first.
    pub async fn recordings_of_call(&self, call_id: &str) -> Result<Vec<Recording>, StoreError> {
        self.recordings_where("WHERE call_id = $1 ORDER BY started_at_ms, id", |q| {
            q.bind(call_id)
        })
        .await
    }

    /// The recordings of these calls (a page of call records), oldest first.
    pub async fn recordings_of_calls(
        &self,
        call_ids: &[&str],
    ) -> Result<Vec<Recording>, StoreError> {
        if call_ids.is_empty() {
            return Ok(Vec::new());
        }
        let places: Vec<String> = (1..=call_ids.len()).map(|i| format!("${i}")).collect();
        let filter = format!(
            "WHERE call_id IN ({}) ORDER BY started_at_ms, id",
            places.join(", ")
        );
        self.recordings_where(&filter, |q| {
            call_ids.iter().fold(q, |q, id| q.bind(id.to_string()))
        })
        .await
    }

    /// The recordings that started in [`from_ms`, `to_ms`), newest first, at most
    /// `limit`: for the supervisors' recordings page.
    pub async fn recordings_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<Recording>, StoreError> {
        self.recordings_where(
            "WHERE started_at_ms >= $1 AND started_at_ms < $2 \
             ORDER BY started_at_ms DESC, id DESC LIMIT $3",
            |q| q.bind(from_ms).bind(to_ms).bind(limit),
        )
        .await
    }

    pub async fn log_recording_access(&self, e: &RecordingAccess) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recording_log \
             (at_ms, user_name, recording_id, call_id, action, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.at_ms)
        .bind(&e.user)
        .bind(e.recording_id)
        .bind(&e.call_id)
        .bind(&e.action)
        .bind(&e.detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn recording_log(&self, limit: i64) -> Result<Vec<RecordingAccess>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, user_name, recording_id, call_id, action, detail \
             FROM recording_log ORDER BY at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordingAccess {
                    at_ms: r.try_get(0)?,
                    user: r.try_get(1)?,
                    recording_id: r.try_get(2)?,
                    call_id: r.try_get(3)?,
                    action: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// The recordings `filter` chooses (what follows `FROM recordings`: `WHERE`, `ORDER
    /// BY`, `LIMIT`, its `$n` bound by `bind`), in its order, each with its marks. Two
    /// queries whatever the number of rows: the marks are chosen by the same filter in a
    /// subquery, so every `ORDER BY` before a `LIMIT` ends in `id` to choose the same rows.
    async fn recordings_where(
        &self,
        filter: &str,
        bind: impl Fn(AnyQuery) -> AnyQuery,
    ) -> Result<Vec<Recording>, StoreError> {
        let rows = bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings {filter}"
        ))))
        .fetch_all(self.reader())
        .await?;
        let mut recordings = rows
            .iter()
            .map(recording_from)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        if recordings.is_empty() {
            return Ok(recordings);
        }
        let rows = bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT recording_id, offset_ms, label FROM recording_marks \
             WHERE recording_id IN (SELECT id FROM recordings {filter}) \
             ORDER BY recording_id, offset_ms, id"
        ))))
        .fetch_all(self.reader())
        .await?;
        let mut marks: HashMap<i64, Vec<RecordingMark>> = HashMap::new();
        for r in &rows {
            marks
                .entry(r.try_get("recording_id")?)
                .or_default()
                .push(RecordingMark {
                    offset_ms: r.try_get("offset_ms")?,
                    label: r.try_get("label")?,
                });
        }
        for recording in &mut recordings {
            recording.marks = marks.remove(&recording.id).unwrap_or_default();
        }
        Ok(recordings)
    }
}

/// A row of `RECORDING_COLUMNS`, without its marks.
fn recording_from(r: &AnyRow) -> Result<Recording, sqlx::Error> {
    Ok(Recording {
        id: r.try_get("id")?,
        call_id: r.try_get("call_id")?,
        caller: r.try_get("caller")?,
        operator: r.try_get("operator")?,
        queue: r.try_get("queue")?,
        path: r.try_get("path")?,
        layout: r.try_get("layout")?,
        started_by: r.try_get("started_by")?,
        started_at_ms: r.try_get("started_at_ms")?,
        ended_at_ms: r.try_get("ended_at_ms")?,
        duration_ms: r.try_get("duration_ms")?,
        bytes: r.try_get("bytes")?,
        status: r.try_get("status")?,
        purged_at_ms: r.try_get("purged_at_ms")?,
        marks: Vec::new(),
    })
}
