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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use super::*;

    fn postgres_url() -> String {
        std::env::var("HOTLINE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
    }

    /// A migrated store in a fresh SQLite file (WAL, a writer and readers, as the daemon
    /// has it), and the directory to remove afterwards.
    async fn sqlite_store() -> (Store, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("hotline-recordings-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/hotline.db?mode=rwc", dir.display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    /// A migrated PostgreSQL store in a schema of its own, and the schema to drop. An
    /// unreachable PostgreSQL fails the test: it never passes silently.
    async fn postgres_store() -> (Store, String) {
        let schema = format!("hl_test_{:016x}", rand::random::<u64>());
        let admin = Store::connect(&postgres_url())
            .await
            .expect("PostgreSQL must be reachable for the store tests (tests/run.sh starts it)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(admin.pool())
            .await
            .unwrap();
        admin.close().await;
        let sep = if postgres_url().contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}options=-c%20search_path%3D{schema}", postgres_url());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        (store, schema)
    }

    async fn drop_schema(schema: &str) {
        let admin = Store::connect(&postgres_url()).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(admin.pool())
            .await
            .unwrap();
        admin.close().await;
    }

    /// Runs `body` on a migrated SQLite store and a migrated PostgreSQL store, as
    /// `tests/common`'s macro of the same name does.
    macro_rules! on_both_databases {
        ($name:ident, $body:expr) => {
            mod $name {
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    let (store, dir) = sqlite_store().await;
                    ($body)(store.clone()).await;
                    store.close().await;
                    let _ = std::fs::remove_dir_all(&dir);
                }

                #[tokio::test]
                async fn postgres() {
                    let (store, schema) = postgres_store().await;
                    ($body)(store.clone()).await;
                    store.close().await;
                    drop_schema(&schema).await;
                }
            }
        };
    }

    /// Anna's recording of call `call_id`, started at `started_at_ms`, in support.
    fn new(call_id: &str, started_at_ms: i64) -> NewRecording<'_> {
        NewRecording {
            call_id,
            caller: "+36301234567",
            operator: None,
            queue: Some("support"),
            path: "2026/12/07/c-1.wav",
            layout: "stereo",
            started_by: None,
            started_at_ms,
        }
    }

    /// The row `new(call_id, started_at_ms)` makes, with `id`, before it is finished.
    fn started(id: i64, call_id: &str, started_at_ms: i64) -> Recording {
        Recording {
            id,
            call_id: call_id.into(),
            caller: "+36301234567".into(),
            operator: None,
            queue: Some("support".into()),
            path: "2026/12/07/c-1.wav".into(),
            layout: "stereo".into(),
            started_by: None,
            started_at_ms,
            ended_at_ms: None,
            duration_ms: None,
            bytes: None,
            status: RecordingStatus::Recording,
            purged_at_ms: None,
            marks: Vec::new(),
        }
    }

    fn ids(recordings: &[Recording]) -> Vec<i64> {
        recordings.iter().map(|r| r.id).collect()
    }

    #[test]
    fn statuses_have_one_name_each() {
        for status in [
            RecordingStatus::Recording,
            RecordingStatus::Complete,
            RecordingStatus::Repaired,
            RecordingStatus::Purged,
        ] {
            assert_eq!(RecordingStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(RecordingStatus::parse("Complete"), None);
        assert_eq!(RecordingStatus::parse(""), None);
    }

    on_both_databases!(a_recording_round_trips, |store: Store| async move {
        let id = store
            .insert_recording(&NewRecording {
                started_by: Some("sara"),
                layout: "mono",
                ..new("c-1", 1_000)
            })
            .await
            .unwrap();
        store
            .add_recording_mark(id, 9_500, "on hold")
            .await
            .unwrap();
        store
            .add_recording_mark(id, 1_200, "anna answered")
            .await
            .unwrap();
        store.set_recording_operator(id, "anna").await.unwrap();
        store.set_recording_operator(id, "ben").await.unwrap();
        assert_eq!(
            store.recording(id).await.unwrap().unwrap().status,
            RecordingStatus::Recording
        );
        store
            .finish_recording(id, 61_000, 60_000, 1_920_044, RecordingStatus::Complete)
            .await
            .unwrap();
        let expected = Recording {
            operator: Some("anna".into()),
            layout: "mono".into(),
            started_by: Some("sara".into()),
            ended_at_ms: Some(61_000),
            duration_ms: Some(60_000),
            bytes: Some(1_920_044),
            status: RecordingStatus::Complete,
            marks: vec![
                RecordingMark {
                    offset_ms: 1_200,
                    label: "anna answered".into(),
                },
                RecordingMark {
                    offset_ms: 9_500,
                    label: "on hold".into(),
                },
            ],
            ..started(id, "c-1", 1_000)
        };
        assert_eq!(store.recording(id).await.unwrap(), Some(expected.clone()));
        assert_eq!(store.recording(id + 1).await.unwrap(), None);

        // A second recording of the same call (stopped and started again), another call's.
        let again = store.insert_recording(&new("c-1", 70_000)).await.unwrap();
        store.insert_recording(&new("c-2", 2_000)).await.unwrap();
        store
            .add_recording_mark(again, 0, "restarted")
            .await
            .unwrap();
        let of_call = store.recordings_of_call("c-1").await.unwrap();
        assert_eq!(
            of_call,
            [
                expected,
                Recording {
                    marks: vec![RecordingMark {
                        offset_ms: 0,
                        label: "restarted".into(),
                    }],
                    ..started(again, "c-1", 70_000)
                }
            ]
        );
        assert_eq!(store.recordings_of_call("c-3").await.unwrap(), []);
    });

    on_both_databases!(
        unfinished_are_the_rows_still_recording,
        |store: Store| async move {
            let late = store.insert_recording(&new("c-1", 3_000)).await.unwrap();
            let done = store.insert_recording(&new("c-2", 1_000)).await.unwrap();
            let early = store.insert_recording(&new("c-3", 2_000)).await.unwrap();
            store
                .finish_recording(done, 5_000, 4_000, 128_044, RecordingStatus::Complete)
                .await
                .unwrap();
            store
                .add_recording_mark(early, 100, "anna answered")
                .await
                .unwrap();
            let unfinished = store.unfinished_recordings().await.unwrap();
            assert_eq!(
                unfinished,
                [
                    Recording {
                        marks: vec![RecordingMark {
                            offset_ms: 100,
                            label: "anna answered".into(),
                        }],
                        ..started(early, "c-3", 2_000)
                    },
                    started(late, "c-1", 3_000),
                ]
            );

            // Repaired at the next start: no longer unfinished.
            store
                .finish_recording(early, 9_000, 7_000, 224_044, RecordingStatus::Repaired)
                .await
                .unwrap();
            assert_eq!(ids(&store.unfinished_recordings().await.unwrap()), [late]);
            let repaired = store.recording(early).await.unwrap().unwrap();
            assert_eq!(repaired.status, RecordingStatus::Repaired);
            assert_eq!(
                (repaired.ended_at_ms, repaired.duration_ms, repaired.bytes),
                (Some(9_000), Some(7_000), Some(224_044))
            );
        }
    );

    on_both_databases!(
        purging_respects_cutoff_status_and_limit,
        |store: Store| async move {
            let mut made = Vec::new();
            for (n, status) in [
                RecordingStatus::Complete,
                RecordingStatus::Repaired,
                RecordingStatus::Recording,
                RecordingStatus::Complete,
                RecordingStatus::Complete,
            ]
            .into_iter()
            .enumerate()
            {
                let at = 1_000 * (n as i64 + 1);
                let id = store
                    .insert_recording(&new(&format!("c-{n}"), at))
                    .await
                    .unwrap();
                if status != RecordingStatus::Recording {
                    store
                        .finish_recording(id, at + 500, 500, 16_044, status)
                        .await
                        .unwrap();
                }
                made.push(id);
            }
            // Started at 1000, 2000, 3000 (still recording), 4000, 5000; the cutoff is exclusive.
            assert_eq!(
                ids(&store.recordings_to_purge(5_000, 10).await.unwrap()),
                [made[0], made[1], made[3]]
            );
            assert_eq!(
                ids(&store.recordings_to_purge(5_001, 2).await.unwrap()),
                [made[0], made[1]]
            );
            assert_eq!(store.recordings_to_purge(1_000, 10).await.unwrap(), []);

            store.mark_recording_purged(made[0], 90_000).await.unwrap();
            // Purged twice (a retention run that stopped before its log): the first time stays.
            store.mark_recording_purged(made[0], 95_000).await.unwrap();
            let purged = store.recording(made[0]).await.unwrap().unwrap();
            assert_eq!(
                (purged.status, purged.purged_at_ms, purged.bytes),
                (RecordingStatus::Purged, Some(90_000), Some(16_044))
            );
            assert_eq!(
                ids(&store.recordings_to_purge(5_001, 2).await.unwrap()),
                [made[1], made[3]]
            );
        }
    );

    on_both_databases!(
        between_is_newest_first_within_bounds,
        |store: Store| async move {
            let a = store.insert_recording(&new("c-a", 1_000)).await.unwrap();
            let b = store.insert_recording(&new("c-b", 2_000)).await.unwrap();
            let b2 = store.insert_recording(&new("c-b2", 2_000)).await.unwrap();
            let c = store.insert_recording(&new("c-c", 3_000)).await.unwrap();
            store.insert_recording(&new("c-d", 4_000)).await.unwrap();
            store
                .add_recording_mark(b, 50, "anna answered")
                .await
                .unwrap();
            store.add_recording_mark(c, 70, "on hold").await.unwrap();
            store
                .add_recording_mark(c, 20, "anna answered")
                .await
                .unwrap();

            // [1000, 4000): 4000 is out; ties by the newer row first.
            let between = store.recordings_between(1_000, 4_000, 10).await.unwrap();
            assert_eq!(ids(&between), [c, b2, b, a]);
            let marks = |labels: &[(i64, &str)]| -> Vec<RecordingMark> {
                labels
                    .iter()
                    .map(|&(offset_ms, label)| RecordingMark {
                        offset_ms,
                        label: label.into(),
                    })
                    .collect()
            };
            assert_eq!(
                between.iter().map(|r| r.marks.clone()).collect::<Vec<_>>(),
                [
                    marks(&[(20, "anna answered"), (70, "on hold")]),
                    marks(&[]),
                    marks(&[(50, "anna answered")]),
                    marks(&[]),
                ]
            );
            assert_eq!(between[1], started(b2, "c-b2", 2_000));

            // The limit keeps the newest, and their marks only.
            let newest = store.recordings_between(1_000, 4_000, 2).await.unwrap();
            assert_eq!(ids(&newest), [c, b2]);
            assert_eq!(newest[0].marks.len(), 2);
            assert_eq!(
                ids(&store.recordings_between(1_001, 3_000, 10).await.unwrap()),
                [b2, b]
            );
            assert_eq!(
                store.recordings_between(5_000, 9_000, 10).await.unwrap(),
                []
            );
        }
    );

    on_both_databases!(
        access_log_comes_back_newest_first,
        |store: Store| async move {
            let entry = |at_ms: i64, user: Option<&str>, action: &str, detail: Option<&str>| {
                RecordingAccess {
                    at_ms,
                    user: user.map(str::to_string),
                    recording_id: 7,
                    call_id: "c-1".into(),
                    action: action.into(),
                    detail: detail.map(str::to_string),
                }
            };
            let written = [
                entry(1, Some("sara"), "start", None),
                entry(2, None, "stop", Some("call ended")),
                entry(2, Some("ben"), "refused", Some("not a supervisor")),
                entry(3, Some("sara"), "play", None),
            ];
            for e in &written {
                store.log_recording_access(e).await.unwrap();
            }
            assert_eq!(
                store.recording_log(3).await.unwrap(),
                [written[3].clone(), written[2].clone(), written[1].clone()]
            );
            assert_eq!(store.recording_log(10).await.unwrap().len(), 4);
        }
    );

    on_both_databases!(an_unknown_status_is_an_error, |store: Store| async move {
        let id = store.insert_recording(&new("c-1", 1_000)).await.unwrap();
        sqlx::query("UPDATE recordings SET status = 'lost' WHERE id = $1")
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        let err = store.recording(id).await.unwrap_err();
        assert!(matches!(err, StoreError::Query(_)), "{err}");
        assert!(
            err.to_string()
                .contains("unknown recording status \"lost\" in the database"),
            "{err}"
        );
    });
}
