//! Chats by time, queue and state, newest first, a page at a time: GET /api/v1/chats.

use super::{CHAT_SELECT, Chat, ChatError, ChatState, chat_from};
use crate::store::Store;

/// Which chats [`Store::chats_matching`] gives.
#[derive(Clone, Debug, Default)]
pub struct ChatFilter {
    /// Created at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Created before (unix ms).
    pub until_ms: Option<i64>,
    pub queue: Option<String>,
    pub state: Option<ChatState>,
    /// Only chats with a smaller id: the paging cursor.
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// The newest chats first that match `filter`.
    pub async fn chats_matching(&self, filter: &ChatFilter) -> Result<Vec<Chat>, ChatError> {
        // An empty string stands for "any": it binds alike on SQLite and PostgreSQL.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{CHAT_SELECT} WHERE c.created_at >= $1 AND c.created_at < $2 AND c.id < $3 \
             AND ($4 = '' OR c.queue = $4) AND ($5 = '' OR c.state = $5) \
             ORDER BY c.id DESC LIMIT $6"
        )))
        .bind(filter.since_ms.unwrap_or(i64::MIN))
        .bind(filter.until_ms.unwrap_or(i64::MAX))
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(filter.queue.clone().unwrap_or_default())
        .bind(filter.state.map(ChatState::as_str).unwrap_or_default())
        .bind(filter.limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(chat_from).collect::<Result<_, _>>()?)
    }
}
