//! Callback requests as the IVR records them. The callbacks issue builds the shared
//! missed-calls list (one entry per number, claims, attempts) on top of this record.

use sqlx::Row;

use crate::store::{Store, StoreError};

/// Where a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestSource {
    /// A `callback` step in a flow.
    Ivr,
}

impl RequestSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestSource::Ivr => "ivr",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackRequest {
    pub id: i64,
    pub number: String,
    pub queue: Option<String>,
    /// What the caller was told about when to expect the call (the promise prompt).
    pub promise: Option<String>,
    pub source: String,
    pub call_id: Option<String>,
    #[sqlx(rename = "requested_at")]
    pub requested_at_ms: i64,
}

pub const CSV_HEADER: &str = "id,number,queue,promise,source,call_id,requested_at_ms";

impl CallbackRequest {
    /// One CSV line, columns as in `CSV_HEADER`.
    pub fn to_csv(&self) -> String {
        let field = |v: Option<&str>| crate::cdr::csv_field(v.unwrap_or(""));
        [
            self.id.to_string(),
            field(Some(&self.number)),
            field(self.queue.as_deref()),
            field(self.promise.as_deref()),
            field(Some(&self.source)),
            field(self.call_id.as_deref()),
            self.requested_at_ms.to_string(),
        ]
        .join(",")
    }
}

pub struct NewCallbackRequest<'a> {
    pub number: &'a str,
    pub queue: Option<&'a str>,
    pub promise: Option<&'a str>,
    pub source: RequestSource,
    pub call_id: Option<&'a str>,
    pub requested_at_ms: i64,
}

impl Store {
    pub async fn insert_callback_request(
        &self,
        r: &NewCallbackRequest<'_>,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO callback_requests (number, queue, promise, source, call_id, requested_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(r.number)
        .bind(r.queue)
        .bind(r.promise)
        .bind(r.source.as_str())
        .bind(r.call_id)
        .bind(r.requested_at_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Newest first.
    pub async fn recent_callback_requests(
        &self,
        limit: i64,
    ) -> Result<Vec<CallbackRequest>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, number, queue, promise, source, call_id, requested_at \
             FROM callback_requests ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
