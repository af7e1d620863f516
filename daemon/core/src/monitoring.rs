//! The audit log of supervisors on calls (PRODUCT S1): every listen, whisper, barge,
//! take-over and end, with who, which call and when. The call session says what
//! happened ([`crate::call_session::MonitorState`]); the daemon files it here.

use sqlx::Row;

use crate::store::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MonitoringEntry {
    pub at_ms: i64,
    /// The supervisor's operator account (whose phone joined the call).
    pub supervisor: String,
    pub call_id: String,
    pub caller: String,
    /// The operator the call was with.
    pub operator: String,
    pub queue: Option<String>,
    /// `ringing`, `listen`, `whisper`, `barge`, `take_over` or `ended`.
    pub action: String,
    /// Why it ended, for `ended`.
    pub detail: Option<String>,
}

impl Store {
    pub async fn log_monitoring(&self, e: &MonitoringEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO monitoring_log \
             (at_ms, supervisor, call_id, caller, operator, queue, action, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(e.at_ms)
        .bind(&e.supervisor)
        .bind(&e.call_id)
        .bind(&e.caller)
        .bind(&e.operator)
        .bind(&e.queue)
        .bind(&e.action)
        .bind(&e.detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn monitoring_log(&self, limit: i64) -> Result<Vec<MonitoringEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, supervisor, call_id, caller, operator, queue, action, detail \
             FROM monitoring_log ORDER BY at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MonitoringEntry {
                    at_ms: r.try_get(0)?,
                    supervisor: r.try_get(1)?,
                    call_id: r.try_get(2)?,
                    caller: r.try_get(3)?,
                    operator: r.try_get(4)?,
                    queue: r.try_get(5)?,
                    action: r.try_get(6)?,
                    detail: r.try_get(7)?,
                })
            })
            .collect()
    }
}
