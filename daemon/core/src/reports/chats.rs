//! Chat reports (PRODUCT S3): the chats that started in a period, per queue.
//!
//! - **Offered**: chats the visitors started (in the queue, in the period).
//! - **Accepted**: an operator took them.
//! - **First response**: from the visitor's start to the first public message, file or
//!   option menu an operator sent; averaged over the chats that got one.
//! - **Handling**: from the acceptance to the end, over the accepted chats that ended.
//! - **Wrap-up categories**: how often each was chosen (one per operator who wrapped up).

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::per;
use crate::store::{Store, StoreError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatFigures {
    pub offered: u64,
    pub accepted: u64,
    /// Chats with an operator's reply, and their first-response times summed (ms).
    pub responded: u64,
    pub first_response_ms: i64,
    /// Accepted chats that ended, and their handling times summed (ms).
    pub handled: u64,
    pub handling_ms: i64,
    pub categories: BTreeMap<String, u64>,
}

impl ChatFigures {
    pub fn average_first_response_secs(&self) -> Option<f64> {
        per(self.first_response_ms, self.responded)
    }

    pub fn average_handling_secs(&self) -> Option<f64> {
        per(self.handling_ms, self.handled)
    }

    /// The categories as people read them: "Complaint 2, Order 1", most used first.
    pub fn categories_text(&self) -> String {
        let mut used: Vec<_> = self.categories.iter().collect();
        used.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        used.iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn merge(&mut self, other: &ChatFigures) {
        self.offered += other.offered;
        self.accepted += other.accepted;
        self.responded += other.responded;
        self.first_response_ms += other.first_response_ms;
        self.handled += other.handled;
        self.handling_ms += other.handling_ms;
        for (c, n) in &other.categories {
            *self.categories.entry(c.clone()).or_default() += n;
        }
    }
}

/// All queues' chats together.
pub fn chat_total(queues: &BTreeMap<String, ChatFigures>) -> ChatFigures {
    queues.values().fold(ChatFigures::default(), |mut sum, f| {
        sum.merge(f);
        sum
    })
}

impl Store {
    /// The chats that started in `[since_ms, until_ms)`, per queue.
    pub async fn chat_report(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<BTreeMap<String, ChatFigures>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.queue, c.created_at, c.accepted_at, c.ended_at, \
               (SELECT MIN(e.created_at) FROM chat_events e WHERE e.chat_id = c.id \
                  AND e.sender = 'operator' AND e.private = 0 \
                  AND e.kind IN ('message', 'attachment', 'options')) \
             FROM chats c WHERE c.created_at >= $1 AND c.created_at < $2",
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(self.reader())
        .await?;
        let mut out: BTreeMap<String, ChatFigures> = BTreeMap::new();
        for r in &rows {
            let queue: String = r.try_get(0)?;
            let created: i64 = r.try_get(1)?;
            let accepted: Option<i64> = r.try_get(2)?;
            let ended: Option<i64> = r.try_get(3)?;
            let first_reply: Option<i64> = r.try_get(4)?;
            let f = out.entry(queue).or_default();
            f.offered += 1;
            if let Some(accepted) = accepted {
                f.accepted += 1;
                if let Some(ended) = ended {
                    f.handled += 1;
                    f.handling_ms += (ended - accepted).max(0);
                }
            }
            if let Some(reply) = first_reply {
                f.responded += 1;
                f.first_response_ms += (reply - created).max(0);
            }
        }
        let rows = sqlx::query(
            "SELECT c.queue, p.wrap_up_category, COUNT(*) FROM chat_participants p \
             JOIN chats c ON c.id = p.chat_id \
             WHERE c.created_at >= $1 AND c.created_at < $2 \
               AND p.wrap_up_category IS NOT NULL AND p.wrap_up_category <> '' \
             GROUP BY c.queue, p.wrap_up_category",
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(self.reader())
        .await?;
        for r in &rows {
            let queue: String = r.try_get(0)?;
            let category: String = r.try_get(1)?;
            let n: i64 = r.try_get(2)?;
            *out.entry(queue)
                .or_default()
                .categories
                .entry(category)
                .or_default() += u64::try_from(n).unwrap_or(0);
        }
        Ok(out)
    }
}
