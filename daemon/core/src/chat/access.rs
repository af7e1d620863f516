//! Who may read and touch which chat (issue 15). Supervisors and admins see every chat's
//! history; an operator sees the chats they took part in and those of their queues. Only
//! an operator in a chat now (joined, not left, not wrapped up) tags it, notes on it,
//! edits its visitor's fields or types in it. Queue membership lives in the flows, so
//! the caller passes the operator's queues.

use sqlx::Row;

use super::details::{MAX_LIST, SUMMARY_SELECT, summaries};
use super::events::participation;
use super::{ChatError, ChatSummary, placeholders};
use crate::store::Store;

/// `c.queue IN (…)` for the queues from `first` on, or nothing for none.
fn queue_filter(first: usize, queues: &[String]) -> String {
    if queues.is_empty() {
        String::new()
    } else {
        format!(" OR c.queue IN ({})", placeholders(first, queues.len()))
    }
}

impl Store {
    /// The newest chats with the tag that the operator (web user `user_id`, a member of
    /// `queues`) may see: the ones they took part in and the ones of their queues.
    pub async fn chats_with_tag_for(
        &self,
        tag: &str,
        limit: i64,
        user_id: i64,
        queues: &[String],
    ) -> Result<Vec<ChatSummary>, ChatError> {
        let mut conn = self.pool().acquire().await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SUMMARY_SELECT} WHERE c.id IN (SELECT chat_id FROM chat_tags WHERE tag = $1) \
             AND (c.id IN (SELECT chat_id FROM chat_participants WHERE user_id = $2){}) \
             ORDER BY c.created_at DESC, c.id DESC LIMIT $3",
            queue_filter(4, queues)
        )))
        .bind(tag.trim())
        .bind(user_id)
        .bind(limit.clamp(0, MAX_LIST));
        for queue in queues {
            q = q.bind(queue);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        Ok(summaries(&mut conn, &rows).await?)
    }

    /// Whether the operator (web user `user_id`, a member of `queues`) may read the
    /// chat's history: they took part in it, or it is one of their queues'. False for a
    /// chat that doesn't exist.
    pub async fn chat_visible_to(
        &self,
        chat_id: i64,
        user_id: i64,
        queues: &[String],
    ) -> Result<bool, ChatError> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.id FROM chats c WHERE c.id = $1 AND (c.id IN \
             (SELECT chat_id FROM chat_participants WHERE user_id = $2){})",
            queue_filter(3, queues)
        )))
        .bind(chat_id)
        .bind(user_id);
        for queue in queues {
            q = q.bind(queue);
        }
        let row = q.fetch_optional(self.reader()).await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.is_some())
    }

    /// The queue an invitation is to; `None` for one to an operator by name, or none.
    pub async fn invite_queue(&self, invite_id: i64) -> Result<Option<String>, ChatError> {
        let row = sqlx::query("SELECT to_queue FROM chat_invites WHERE id = $1")
            .bind(invite_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()?
            .flatten())
    }

    /// Whether the user is in the chat now: joined and neither left nor wrapped up (an
    /// ended chat's operators are in it until their wrap-up).
    pub async fn is_in_chat(&self, chat_id: i64, user_id: i64) -> Result<bool, ChatError> {
        let mut conn = self.reader().acquire().await?;
        Ok(matches!(
            participation(&mut conn, chat_id, user_id).await?,
            Some((false, false))
        ))
    }
}
