//! What keeps the public side of chat from being abused, where the store must decide it:
//! chats whose visitor went away end by themselves, the transcript e-mails of a chat are
//! counted by one conditional update, and files uploaded but never sent are found for
//! removal. (Rate limits per address and site are the web layer's, in memory.)

use serde_json::json;
use sqlx::Row;

use super::events::{Draft, insert_event, lock_chat};
use super::{ChatError, ChatState, EventKind, SenderKind, placeholders};
use crate::store::Store;

/// Chats refreshed by one statement (well under both databases' parameter limits).
const TOUCH_CHUNK: usize = 500;

/// A waiting chat that ended because its visitor had gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbandonedChat {
    pub chat_id: i64,
    /// The operator it was offered to then, to tell them the offer is gone.
    pub offered_to: Option<String>,
}

impl Store {
    /// Notes that the visitors of these chats have their socket open now (each node calls
    /// this for the chats connected to it, every few seconds). Ended chats are left alone.
    pub async fn touch_chat_visitors(
        &self,
        chat_ids: &[i64],
        now_ms: i64,
    ) -> Result<(), ChatError> {
        for chunk in chat_ids.chunks(TOUCH_CHUNK) {
            let sql = format!(
                "UPDATE chats SET visitor_seen_at = $1 WHERE state <> 'ended' AND id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Ends every waiting or offered chat whose visitor was last seen (or which was
    /// started, if its visitor never connected) before `seen_before_ms`, as the system,
    /// with an `end` event `{by: "system", reason: "abandoned"}`. Each is one transaction
    /// that checks again under the chat's lock, so a visitor who just came back or an
    /// operator who just accepted wins.
    pub async fn end_abandoned_chats(
        &self,
        seen_before_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<AbandonedChat>, ChatError> {
        let rows = sqlx::query(
            "SELECT id FROM chats WHERE state IN ('waiting', 'offered') \
             AND COALESCE(visitor_seen_at, created_at) < $1 ORDER BY id",
        )
        .bind(seen_before_ms)
        .fetch_all(self.pool())
        .await?;
        let mut ended = Vec::new();
        for r in rows {
            let chat_id: i64 = r.try_get(0)?;
            let mut tx = self.pool().begin().await?;
            let state = match lock_chat(&mut tx, chat_id).await {
                Ok(s) => s,
                Err(ChatError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            if !matches!(state, ChatState::Waiting | ChatState::Offered) {
                continue;
            }
            // Read under the lock: stable until the commit.
            let row = sqlx::query(
                "SELECT offered_to, COALESCE(visitor_seen_at, created_at) AS seen \
                 FROM chats WHERE id = $1",
            )
            .bind(chat_id)
            .fetch_one(&mut *tx)
            .await?;
            if row.try_get::<i64, _>("seen")? >= seen_before_ms {
                continue;
            }
            let offered_to: Option<String> = row.try_get("offered_to")?;
            sqlx::query(
                "UPDATE chats SET state = 'ended', ended_at = $2, ended_by = 'system', \
                 offered_to = NULL, offered_at = NULL, offer_expires_at = NULL WHERE id = $1",
            )
            .bind(chat_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE chat_invites SET state = 'cancelled', answered_at = $2 \
                 WHERE chat_id = $1 AND state = 'pending'",
            )
            .bind(chat_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            insert_event(
                &mut tx,
                chat_id,
                &Draft {
                    kind: EventKind::End,
                    from: SenderKind::System,
                    user_id: None,
                    name: "",
                    private: false,
                    body: "",
                    data: json!({ "by": "system", "reason": "abandoned" }),
                    client_id: None,
                },
                now_ms,
            )
            .await?;
            tx.commit().await?;
            ended.push(AbandonedChat {
                chat_id,
                offered_to,
            });
        }
        Ok(ended)
    }

    /// Counts one transcript e-mail for the chat. With `limit`, only while fewer than
    /// `limit` were counted: one conditional `UPDATE`, so parallel requests (on any node)
    /// can't pass it. Returns whether it was counted; `NotFound` for no such chat.
    pub async fn count_chat_transcript(
        &self,
        chat_id: i64,
        limit: Option<i64>,
    ) -> Result<bool, ChatError> {
        let r = sqlx::query(
            "UPDATE chats SET transcripts_sent = transcripts_sent + 1 \
             WHERE id = $1 AND ($2 = 0 OR transcripts_sent < $3)",
        )
        .bind(chat_id)
        .bind(i64::from(limit.is_some()))
        .bind(limit.unwrap_or(0))
        .execute(self.pool())
        .await?;
        if r.rows_affected() == 1 {
            return Ok(true);
        }
        let chat: Option<(i64,)> =
            crate::store::fetch_by_id(self.pool(), "SELECT id FROM chats WHERE id = $1", chat_id)
                .await?;
        match chat {
            Some(_) => Ok(false),
            None => Err(ChatError::NotFound),
        }
    }

    /// Gives back a transcript counted by [`Store::count_chat_transcript`] whose e-mail
    /// could not be queued.
    pub async fn uncount_chat_transcript(&self, chat_id: i64) -> Result<(), ChatError> {
        sqlx::query(
            "UPDATE chats SET transcripts_sent = transcripts_sent - 1 \
             WHERE id = $1 AND transcripts_sent > 0",
        )
        .bind(chat_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Transcript e-mails counted for the chat so far.
    pub async fn chat_transcripts_sent(&self, chat_id: i64) -> Result<i64, ChatError> {
        let row = sqlx::query("SELECT transcripts_sent FROM chats WHERE id = $1")
            .bind(chat_id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(ChatError::NotFound),
        }
    }

    /// The bytes of every file uploaded to the chat (sent or not), for its quota.
    pub async fn chat_files_bytes(&self, chat_id: i64) -> Result<i64, ChatError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM chat_files WHERE chat_id = $1",
        )
        .bind(chat_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Forgets files uploaded before `before_ms` and never sent in a message; returns
    /// their ids, for the caller to delete the bytes. One conditional `DELETE`: a file
    /// sent meanwhile stays.
    pub async fn remove_unsent_chat_files(&self, before_ms: i64) -> Result<Vec<String>, ChatError> {
        let rows = sqlx::query(
            "DELETE FROM chat_files WHERE event_seq IS NULL AND created_at < $1 RETURNING id",
        )
        .bind(before_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?)
    }
}
