//! Missed calls: callers who hung up in a queue, or called outside hours. The callbacks
//! issue builds the shared missed-calls widget (one entry per number) on this record.

use sqlx::Row;

use crate::store::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissedReason {
    /// Hung up while waiting (or while an operator's phone rang).
    Abandoned,
    /// Waited the flow's maximum time without an operator.
    MaxWait,
    /// Called outside hours and the flow records it.
    OutsideHours,
}

impl MissedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MissedReason::Abandoned => "abandoned",
            MissedReason::MaxWait => "max_wait",
            MissedReason::OutsideHours => "outside_hours",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct MissedCall {
    pub id: i64,
    pub number: String,
    pub call_id: String,
    pub queue: Option<String>,
    pub reason: String,
    pub waited_ms: i64,
    pub path: String,
    #[sqlx(rename = "missed_at")]
    pub missed_at_ms: i64,
}

pub const CSV_HEADER: &str = "id,number,call_id,queue,reason,waited_ms,path,missed_at_ms";

impl MissedCall {
    /// One CSV line, columns as in `CSV_HEADER`.
    pub fn to_csv(&self) -> String {
        use crate::cdr::csv_field;
        [
            self.id.to_string(),
            csv_field(&self.number),
            csv_field(&self.call_id),
            csv_field(self.queue.as_deref().unwrap_or("")),
            csv_field(&self.reason),
            self.waited_ms.to_string(),
            csv_field(&self.path),
            self.missed_at_ms.to_string(),
        ]
        .join(",")
    }
}

pub struct NewMissedCall<'a> {
    pub number: &'a str,
    pub call_id: &'a str,
    pub queue: Option<&'a str>,
    pub reason: MissedReason,
    pub waited_ms: i64,
    pub path: &'a str,
    pub missed_at_ms: i64,
}

impl Store {
    pub async fn insert_missed_call(&self, m: &NewMissedCall<'_>) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO missed_calls (number, call_id, queue, reason, waited_ms, path, missed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(m.number)
        .bind(m.call_id)
        .bind(m.queue)
        .bind(m.reason.as_str())
        .bind(m.waited_ms)
        .bind(m.path)
        .bind(m.missed_at_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Newest first.
    pub async fn recent_missed_calls(&self, limit: i64) -> Result<Vec<MissedCall>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, number, call_id, queue, reason, waited_ms, path, missed_at \
             FROM missed_calls ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
