//! Who has the chat: offers, acceptance, the end and wrap-up, leaving, invitations and
//! transfers.
//!
//! Locks are always taken in one order: an operator's row (only `offer_chat`), then the
//! chat's row, then its participants and invitations. So two nodes never deadlock, and a
//! claim is decided by whoever gets the row first.

use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::events::{Draft, insert_event, lock_chat, participation, sender_name};
use super::{
    Chat, ChatError, ChatState, EventKind, Invite, InviteState, MAX_MESSAGE_CHARS, MAX_NAME_CHARS,
    Sender, Target, chat_in, check_optional_line, check_text, conflict, decode_err, invalid,
    load_in, shown_name, user_as_operator,
};
use crate::store::Store;

const INVITE_SELECT: &str = "SELECT i.id, i.chat_id, i.from_user_id, u.name AS from_login, \
     u.display_name AS from_display, i.to_operator, i.to_queue, i.state, i.answered_by, \
     i.created_at, i.answered_at FROM chat_invites i JOIN users u ON u.id = i.from_user_id";

fn invite_from(r: &AnyRow) -> Result<Invite, sqlx::Error> {
    let state: String = r.try_get("state")?;
    let to_operator: Option<String> = r.try_get("to_operator")?;
    let to_queue: Option<String> = r.try_get("to_queue")?;
    let target = match (to_operator, to_queue) {
        (Some(o), _) => Target::Operator(o),
        (None, Some(q)) => Target::Queue(q),
        (None, None) => return Err(decode_err("invitation target", "")),
    };
    Ok(Invite {
        id: r.try_get("id")?,
        chat_id: r.try_get("chat_id")?,
        from_user_id: r.try_get("from_user_id")?,
        from_name: shown_name(r.try_get("from_login")?, r.try_get("from_display")?),
        target,
        state: InviteState::parse(&state).ok_or_else(|| decode_err("invitation state", &state))?,
        answered_by: r.try_get("answered_by")?,
        created_at_ms: r.try_get("created_at")?,
        answered_at_ms: r.try_get("answered_at")?,
    })
}

async fn invite_in(conn: &mut AnyConnection, id: i64) -> Result<Option<Invite>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{INVITE_SELECT} WHERE i.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(invite_from).transpose()
}

/// Puts an offer back to `waiting` and records that the operator won't get the chat
/// again. With `expired_by`, only an offer whose time ran out by then. A chat transferred
/// to this operator goes back to its queue.
async fn withdraw_offer(
    conn: &mut AnyConnection,
    chat_id: i64,
    operator: &str,
    reason: &str,
    expired_by: Option<i64>,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE chats SET state = 'waiting', offered_to = NULL, offered_at = NULL, \
         offer_expires_at = NULL, \
         for_operator = CASE WHEN for_operator = $2 THEN NULL ELSE for_operator END \
         WHERE id = $1 AND state = 'offered' AND offered_to = $2 \
         AND ($3 = 0 OR offer_expires_at <= $4)",
    )
    .bind(chat_id)
    .bind(operator)
    .bind(i64::from(expired_by.is_some()))
    .bind(expired_by.unwrap_or(0))
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    decline(conn, chat_id, operator, reason, now_ms).await?;
    Ok(true)
}

async fn decline(
    conn: &mut AnyConnection,
    chat_id: i64,
    operator: &str,
    reason: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_declines (chat_id, operator, reason, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(chat_id)
    .bind(operator)
    .bind(reason)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Operators in the chat now (not left, not wrapped up), other than `but_user`.
async fn others_in(
    conn: &mut AnyConnection,
    chat_id: i64,
    but_user: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM chat_participants WHERE chat_id = $1 AND user_id <> $2 \
         AND left_at IS NULL AND wrapped_up_at IS NULL",
    )
    .bind(chat_id)
    .bind(but_user)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get(0)
}

async fn operator_exists(conn: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM operators WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

async fn cancel_pending_invites(
    conn: &mut AnyConnection,
    chat_id: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE chat_invites SET state = 'cancelled', answered_at = $2 \
         WHERE chat_id = $1 AND state = 'pending'",
    )
    .bind(chat_id)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn add_participant(
    conn: &mut AnyConnection,
    chat_id: i64,
    user_id: i64,
    operator: &str,
    now_ms: i64,
) -> Result<(), ChatError> {
    let r = sqlx::query(
        "INSERT INTO chat_participants (chat_id, user_id, operator, joined_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(chat_id)
    .bind(user_id)
    .bind(operator)
    .bind(now_ms)
    .execute(&mut *conn)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            conflict("you are already in this chat")
        }
        Err(e) => Err(e.into()),
    }
}

/// The user must be in the chat (not left, not wrapped up).
async fn require_in(conn: &mut AnyConnection, chat_id: i64, user_id: i64) -> Result<(), ChatError> {
    match participation(conn, chat_id, user_id).await? {
        Some((false, false)) => Ok(()),
        _ => conflict("you are not in this chat"),
    }
}

impl Store {
    /// Offers a waiting chat to the operator until `expires_at_ms`. False: the chat isn't
    /// waiting any more (or doesn't exist), waits for another operator, the operator is at
    /// capacity, or declined it before. Exclusive across nodes: the operator's row is
    /// locked before the load is counted, and the chat is claimed by one conditional
    /// `UPDATE`.
    pub async fn offer_chat(
        &self,
        chat_id: i64,
        operator: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, ChatError> {
        if expires_at_ms <= now_ms {
            return invalid("an offer must expire after it is made");
        }
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "UPDATE operators SET chat_lock = chat_lock + 1 WHERE name = $1 \
             RETURNING chat_capacity",
        )
        .bind(operator)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(ChatError::NotFound);
        };
        let capacity: i64 = row.try_get(0)?;
        if load_in(&mut tx, operator).await? >= capacity {
            tx.rollback().await?;
            return Ok(false);
        }
        let r = sqlx::query(
            "UPDATE chats SET state = 'offered', offered_to = $2, offered_at = $3, \
             offer_expires_at = $4 \
             WHERE id = $1 AND state = 'waiting' \
             AND (for_operator IS NULL OR for_operator = $2) \
             AND NOT EXISTS (SELECT 1 FROM chat_declines d \
                             WHERE d.chat_id = $1 AND d.operator = $2) \
             AND NOT EXISTS (SELECT 1 FROM chat_participants p WHERE p.chat_id = $1 \
                             AND p.operator = $2 AND p.left_at IS NULL \
                             AND p.wrapped_up_at IS NULL)",
        )
        .bind(chat_id)
        .bind(operator)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The operator (as web user `user_id`) takes the chat offered to them: it becomes
    /// active with them in it and a `join` event. Conflict when the offer ran out or
    /// went to someone else.
    pub async fn accept_chat(
        &self,
        chat_id: i64,
        operator: &str,
        user_id: i64,
        now_ms: i64,
    ) -> Result<Chat, ChatError> {
        let mut tx = self.pool().begin().await?;
        let name = user_as_operator(&mut tx, user_id, operator).await?;
        let r = sqlx::query(
            "UPDATE chats SET state = 'active', offered_to = NULL, offered_at = NULL, \
             offer_expires_at = NULL, for_operator = NULL, \
             accepted_at = COALESCE(accepted_at, $3) \
             WHERE id = $1 AND state = 'offered' AND offered_to = $2 AND offer_expires_at > $3",
        )
        .bind(chat_id)
        .bind(operator)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            let Some(chat) = chat_in(&mut tx, chat_id).await? else {
                return Err(ChatError::NotFound);
            };
            if chat.state == ChatState::Offered && chat.offered_to.as_deref() == Some(operator) {
                // Ran out before the sweep noticed: put it back now.
                withdraw_offer(&mut tx, chat_id, operator, "expired", Some(now_ms), now_ms).await?;
                tx.commit().await?;
                return conflict("the offer has expired");
            }
            return conflict(match chat.state {
                ChatState::Waiting => "the offer has expired",
                ChatState::Offered => "the chat was offered to another operator",
                ChatState::Active | ChatState::Ended => "the chat was already taken",
            });
        }
        add_participant(&mut tx, chat_id, user_id, operator, now_ms).await?;
        insert_event(
            &mut tx,
            chat_id,
            &Draft::operator(EventKind::Join, user_id, &name, json!({})),
            now_ms,
        )
        .await?;
        let chat = chat_in(&mut tx, chat_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        tx.commit().await?;
        Ok(chat)
    }

    /// The operator says no: the chat waits again and is never offered to them again.
    /// False when it wasn't (or no longer) offered to them.
    pub async fn reject_chat(
        &self,
        chat_id: i64,
        operator: &str,
        now_ms: i64,
    ) -> Result<bool, ChatError> {
        let mut tx = self.pool().begin().await?;
        let withdrawn =
            withdraw_offer(&mut tx, chat_id, operator, "rejected", None, now_ms).await?;
        if !withdrawn && chat_in(&mut tx, chat_id).await?.is_none() {
            return Err(ChatError::NotFound);
        }
        tx.commit().await?;
        Ok(withdrawn)
    }

    /// Puts every offer that ran out by `now_ms` back to waiting; returns (chat,
    /// operator) pairs, to tell those operators the offer is gone.
    pub async fn expire_offers(&self, now_ms: i64) -> Result<Vec<(i64, String)>, ChatError> {
        let rows = sqlx::query(
            "SELECT id, offered_to FROM chats WHERE state = 'offered' \
             AND offer_expires_at <= $1 ORDER BY id",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        let mut expired = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let Some(operator) = r.try_get::<Option<String>, _>("offered_to")? else {
                continue;
            };
            let mut tx = self.pool().begin().await?;
            // Conditional: an accept or reject in between wins.
            if withdraw_offer(&mut tx, id, &operator, "expired", Some(now_ms), now_ms).await? {
                expired.push((id, operator));
            }
            tx.commit().await?;
        }
        Ok(expired)
    }

    /// Ends the chat with an `end` event (data `{by}`). Ending an ended chat changes
    /// nothing and returns it. An operator must be in the chat to end it. Pending
    /// invitations are cancelled; the operators in it still owe their wrap-up.
    pub async fn end_chat(&self, chat_id: i64, by: Sender, now_ms: i64) -> Result<Chat, ChatError> {
        Ok(self.end_chat_reporting(chat_id, by, now_ms).await?.0)
    }

    /// [`Store::end_chat`], and whether this call ended the chat (false: it had ended
    /// already), so that its end is announced once (the `chat.ended` webhook).
    pub async fn end_chat_reporting(
        &self,
        chat_id: i64,
        by: Sender,
        now_ms: i64,
    ) -> Result<(Chat, bool), ChatError> {
        let mut tx = self.pool().begin().await?;
        let state = lock_chat(&mut tx, chat_id).await?;
        let ending = state != ChatState::Ended;
        if ending {
            if let Sender::Operator { user_id, .. } = &by {
                match participation(&mut tx, chat_id, *user_id).await? {
                    Some((false, _)) => {}
                    _ => return conflict("you are not in this chat"),
                }
            }
            sqlx::query(
                "UPDATE chats SET state = 'ended', ended_at = $2, ended_by = $3, \
                 offered_to = NULL, offered_at = NULL, offer_expires_at = NULL \
                 WHERE id = $1",
            )
            .bind(chat_id)
            .bind(now_ms)
            .bind(by.kind().as_str())
            .execute(&mut *tx)
            .await?;
            cancel_pending_invites(&mut tx, chat_id, now_ms).await?;
            let name = sender_name(&mut tx, chat_id, &by).await?;
            insert_event(
                &mut tx,
                chat_id,
                &Draft {
                    kind: EventKind::End,
                    from: by.kind(),
                    user_id: by.user_id(),
                    name: &name,
                    private: false,
                    body: "",
                    data: json!({ "by": by.kind().as_str() }),
                    client_id: None,
                },
                now_ms,
            )
            .await?;
        }
        let chat = chat_in(&mut tx, chat_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        tx.commit().await?;
        Ok((chat, ending))
    }

    /// The operator's wrap-up of an ended chat (category from the configured list, may
    /// be blank; a note): it frees their place. A second wrap-up changes nothing.
    pub async fn wrap_up_chat(
        &self,
        chat_id: i64,
        user_id: i64,
        category: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<(), ChatError> {
        let category = check_optional_line("the wrap-up category", category, MAX_NAME_CHARS)?;
        check_text("wrap-up note", note, MAX_MESSAGE_CHARS, true)?;
        let note = note.trim();
        let mut tx = self.pool().begin().await?;
        if lock_chat(&mut tx, chat_id).await? != ChatState::Ended {
            return conflict("end the chat before the wrap-up");
        }
        let r = sqlx::query(
            "UPDATE chat_participants SET wrapped_up_at = $3, wrap_up_category = $4, \
             wrap_up_note = $5 \
             WHERE chat_id = $1 AND user_id = $2 AND left_at IS NULL AND wrapped_up_at IS NULL",
        )
        .bind(chat_id)
        .bind(user_id)
        .bind(now_ms)
        .bind((!category.is_empty()).then_some(category.as_str()))
        .bind((!note.is_empty()).then_some(note))
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return match participation(&mut tx, chat_id, user_id).await? {
                Some((false, true)) => Ok(()),
                _ => conflict("you are not in this chat"),
            };
        }
        tx.commit().await?;
        Ok(())
    }

    /// The operator leaves the chat (a `leave` event); their place is free without a
    /// wrap-up. The last operator of an active chat can't leave it: they end or transfer
    /// it. Leaving again changes nothing.
    pub async fn leave_chat(
        &self,
        chat_id: i64,
        user_id: i64,
        now_ms: i64,
    ) -> Result<(), ChatError> {
        let mut tx = self.pool().begin().await?;
        let state = lock_chat(&mut tx, chat_id).await?;
        match participation(&mut tx, chat_id, user_id).await? {
            None => return conflict("you are not in this chat"),
            Some((false, false)) => {}
            Some(_) => return Ok(()),
        }
        if state == ChatState::Active && others_in(&mut tx, chat_id, user_id).await? == 0 {
            return conflict("you are the last operator in this chat: end or transfer it");
        }
        sqlx::query(
            "UPDATE chat_participants SET left_at = $3 \
             WHERE chat_id = $1 AND user_id = $2 AND left_at IS NULL AND wrapped_up_at IS NULL",
        )
        .bind(chat_id)
        .bind(user_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let name = sender_name(&mut tx, chat_id, &operator_sender(user_id)).await?;
        insert_event(
            &mut tx,
            chat_id,
            &Draft::operator(EventKind::Leave, user_id, &name, json!({})),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- invitations ----

    /// Invites a named operator or anyone from a queue into an active chat (a private
    /// `invite` event). One invitation per chat may be pending: Conflict otherwise.
    pub async fn invite_to_chat(
        &self,
        chat_id: i64,
        from_user_id: i64,
        target: Target,
        now_ms: i64,
    ) -> Result<Invite, ChatError> {
        let target = target.validated()?;
        let mut tx = self.pool().begin().await?;
        if lock_chat(&mut tx, chat_id).await? != ChatState::Active {
            return conflict("only an active chat takes invitations");
        }
        require_in(&mut tx, chat_id, from_user_id).await?;
        if let Target::Operator(op) = &target {
            if !operator_exists(&mut tx, op).await? {
                return invalid(format!("there is no operator {op:?}"));
            }
            let row = sqlx::query(
                "SELECT id FROM chat_participants WHERE chat_id = $1 AND operator = $2 \
                 AND left_at IS NULL AND wrapped_up_at IS NULL",
            )
            .bind(chat_id)
            .bind(op)
            .fetch_optional(&mut *tx)
            .await?;
            if row.is_some() {
                return invalid(format!("{op} is already in this chat"));
            }
        }
        let pending = "an invitation is already waiting for an answer in this chat";
        let row =
            sqlx::query("SELECT id FROM chat_invites WHERE chat_id = $1 AND state = 'pending'")
                .bind(chat_id)
                .fetch_optional(&mut *tx)
                .await?;
        if row.is_some() {
            return conflict(pending);
        }
        let (to_operator, to_queue) = match &target {
            Target::Operator(o) => (Some(o.as_str()), None),
            Target::Queue(q) => (None, Some(q.as_str())),
        };
        let inserted = sqlx::query(
            "INSERT INTO chat_invites (chat_id, from_user_id, to_operator, to_queue, state, \
             created_at) VALUES ($1, $2, $3, $4, 'pending', $5) RETURNING id",
        )
        .bind(chat_id)
        .bind(from_user_id)
        .bind(to_operator)
        .bind(to_queue)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            // The one-pending index: a concurrent invitation won.
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return conflict(pending),
            Err(e) => return Err(e.into()),
        };
        let invite = invite_in(&mut tx, id).await?.ok_or(ChatError::NotFound)?;
        insert_event(
            &mut tx,
            chat_id,
            &Draft {
                private: true,
                ..Draft::operator(
                    EventKind::Invite,
                    from_user_id,
                    &invite.from_name,
                    json!({ "invite": id, "to": target.json(), "state": "pending" }),
                )
            },
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(invite)
    }

    /// Pending invitations the operator may answer: to them by name, or to one of
    /// `queues` (unless they declined it or are in the chat already), oldest first.
    pub async fn pending_invites_for(
        &self,
        operator: &str,
        queues: &[String],
    ) -> Result<Vec<Invite>, ChatError> {
        let queue_filter = if queues.is_empty() {
            String::new()
        } else {
            format!(
                " OR (i.to_queue IN ({}) AND NOT EXISTS (SELECT 1 FROM chat_invite_declines d \
                 WHERE d.invite_id = i.id AND d.operator = $1))",
                super::placeholders(2, queues.len())
            )
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{INVITE_SELECT} JOIN chats c ON c.id = i.chat_id \
             WHERE i.state = 'pending' AND c.state = 'active' \
             AND (i.to_operator = $1{queue_filter}) \
             AND NOT EXISTS (SELECT 1 FROM chat_participants p WHERE p.chat_id = i.chat_id \
                             AND p.operator = $1 AND p.left_at IS NULL \
                             AND p.wrapped_up_at IS NULL) \
             ORDER BY i.created_at, i.id"
        )))
        .bind(operator);
        for queue in queues {
            q = q.bind(queue);
        }
        let rows = q.fetch_all(self.pool()).await?;
        Ok(rows.iter().map(invite_from).collect::<Result<_, _>>()?)
    }

    /// The pending invitation of a chat, if any.
    pub async fn pending_invite(&self, chat_id: i64) -> Result<Option<Invite>, ChatError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{INVITE_SELECT} WHERE i.chat_id = $1 AND i.state = 'pending'"
        )))
        .bind(chat_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(invite_from).transpose()?)
    }

    /// The invited operator (as web user `user_id`) answers. Accepting joins them to the
    /// chat (a `join` event). Declining an invitation to them by name closes it; declining
    /// one to a queue only hides it from them, the others may still take it. (That the
    /// operator belongs to the queue is the caller's check.) An invitation is taken
    /// whatever the operator's load: they chose to help; the chat then counts towards it.
    pub async fn answer_invite(
        &self,
        invite_id: i64,
        operator: &str,
        user_id: i64,
        accept: bool,
        now_ms: i64,
    ) -> Result<Invite, ChatError> {
        let mut tx = self.pool().begin().await?;
        let name = user_as_operator(&mut tx, user_id, operator).await?;
        let Some(invite) = invite_in(&mut tx, invite_id).await? else {
            return Err(ChatError::NotFound);
        };
        let chat_id = invite.chat_id;
        let state = lock_chat(&mut tx, chat_id).await?;
        // Read again under the chat's lock.
        let invite = invite_in(&mut tx, invite_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        if let Target::Operator(o) = &invite.target
            && o != operator
        {
            return conflict("the invitation is for another operator");
        }
        match invite.state {
            InviteState::Pending => {}
            InviteState::Cancelled => return conflict("the invitation was withdrawn"),
            _ => return conflict("the invitation was already answered"),
        }
        if state != ChatState::Active {
            cancel_pending_invites(&mut tx, chat_id, now_ms).await?;
            tx.commit().await?;
            return conflict("the chat is no longer active");
        }
        let by_name = matches!(invite.target, Target::Operator(_));
        if accept {
            sqlx::query(
                "UPDATE chat_invites SET state = 'accepted', answered_by = $2, answered_at = $3 \
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(invite_id)
            .bind(operator)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            add_participant(&mut tx, chat_id, user_id, operator, now_ms).await?;
        } else if by_name {
            sqlx::query(
                "UPDATE chat_invites SET state = 'declined', answered_by = $2, answered_at = $3 \
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(invite_id)
            .bind(operator)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO chat_invite_declines (invite_id, operator) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(invite_id)
            .bind(operator)
            .execute(&mut *tx)
            .await?;
        }
        let answer = if accept { "accepted" } else { "declined" };
        insert_event(
            &mut tx,
            chat_id,
            &Draft {
                private: true,
                ..Draft::operator(
                    EventKind::Invite,
                    user_id,
                    &name,
                    json!({ "invite": invite_id, "to": invite.target.json(), "state": answer }),
                )
            },
            now_ms,
        )
        .await?;
        if accept {
            insert_event(
                &mut tx,
                chat_id,
                &Draft::operator(EventKind::Join, user_id, &name, json!({})),
                now_ms,
            )
            .await?;
        }
        let invite = invite_in(&mut tx, invite_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        tx.commit().await?;
        Ok(invite)
    }

    /// An operator in the chat withdraws its pending invitation (say nobody from the
    /// queue takes it), so another may be sent.
    pub async fn cancel_invite(
        &self,
        invite_id: i64,
        user_id: i64,
        now_ms: i64,
    ) -> Result<Invite, ChatError> {
        let mut tx = self.pool().begin().await?;
        let Some(invite) = invite_in(&mut tx, invite_id).await? else {
            return Err(ChatError::NotFound);
        };
        lock_chat(&mut tx, invite.chat_id).await?;
        require_in(&mut tx, invite.chat_id, user_id).await?;
        let r = sqlx::query(
            "UPDATE chat_invites SET state = 'cancelled', answered_at = $2 \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(invite_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return conflict("the invitation was already answered");
        }
        let invite = invite_in(&mut tx, invite_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        tx.commit().await?;
        Ok(invite)
    }

    // ---- transfer ----

    /// Hands an active chat on: it waits again, in the target queue or for the target
    /// operator only (if they reject it or let the offer run out, it goes back to its
    /// queue). The note is kept as a chat note for the next operator and in a private
    /// `transfer` event. The transferring operator leaves without a wrap-up (a `leave`
    /// event) and won't be offered the chat again. Other operators must leave first.
    pub async fn transfer_chat(
        &self,
        chat_id: i64,
        from_user_id: i64,
        target: Target,
        note: &str,
        now_ms: i64,
    ) -> Result<Chat, ChatError> {
        let target = target.validated()?;
        check_text("transfer note", note, MAX_MESSAGE_CHARS, true)?;
        let note = note.trim();
        let mut tx = self.pool().begin().await?;
        if lock_chat(&mut tx, chat_id).await? != ChatState::Active {
            return conflict("only an active chat can be transferred");
        }
        require_in(&mut tx, chat_id, from_user_id).await?;
        if others_in(&mut tx, chat_id, from_user_id).await? > 0 {
            return conflict("other operators are in this chat: they leave before a transfer");
        }
        let row = sqlx::query(
            "SELECT operator FROM chat_participants WHERE chat_id = $1 AND user_id = $2 \
             AND left_at IS NULL AND wrapped_up_at IS NULL",
        )
        .bind(chat_id)
        .bind(from_user_id)
        .fetch_one(&mut *tx)
        .await?;
        let from_operator: String = row.try_get(0)?;
        let (queue, for_operator) = match &target {
            Target::Operator(o) => {
                if *o == from_operator {
                    return invalid("you can't transfer a chat to yourself");
                }
                if !operator_exists(&mut tx, o).await? {
                    return invalid(format!("there is no operator {o:?}"));
                }
                (None, Some(o.as_str()))
            }
            Target::Queue(q) => (Some(q.as_str()), None),
        };
        sqlx::query(
            "UPDATE chats SET state = 'waiting', queue = COALESCE($2, queue), for_operator = $3, \
             offered_to = NULL, offered_at = NULL, offer_expires_at = NULL WHERE id = $1",
        )
        .bind(chat_id)
        .bind(queue)
        .bind(for_operator)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE chat_participants SET left_at = $3 \
             WHERE chat_id = $1 AND user_id = $2 AND left_at IS NULL AND wrapped_up_at IS NULL",
        )
        .bind(chat_id)
        .bind(from_user_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        decline(&mut tx, chat_id, &from_operator, "transferred", now_ms).await?;
        if let Some(o) = for_operator {
            // Asked for by name: an earlier "no" doesn't stand in the way.
            sqlx::query("DELETE FROM chat_declines WHERE chat_id = $1 AND operator = $2")
                .bind(chat_id)
                .bind(o)
                .execute(&mut *tx)
                .await?;
        }
        cancel_pending_invites(&mut tx, chat_id, now_ms).await?;
        if !note.is_empty() {
            sqlx::query(
                "INSERT INTO chat_notes (chat_id, visitor_id, user_id, body, transfer, created_at) \
                 SELECT id, visitor_id, $2, $3, 1, $4 FROM chats WHERE id = $1",
            )
            .bind(chat_id)
            .bind(from_user_id)
            .bind(note)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        let name = sender_name(&mut tx, chat_id, &operator_sender(from_user_id)).await?;
        insert_event(
            &mut tx,
            chat_id,
            &Draft {
                private: true,
                body: note,
                ..Draft::operator(
                    EventKind::Transfer,
                    from_user_id,
                    &name,
                    json!({ "to": target.json(), "note": note }),
                )
            },
            now_ms,
        )
        .await?;
        insert_event(
            &mut tx,
            chat_id,
            &Draft::operator(EventKind::Leave, from_user_id, &name, json!({})),
            now_ms,
        )
        .await?;
        let chat = chat_in(&mut tx, chat_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        tx.commit().await?;
        Ok(chat)
    }
}

/// An operator sender whose name comes from their user.
fn operator_sender(user_id: i64) -> Sender {
    Sender::Operator {
        user_id,
        name: String::new(),
    }
}
