//! The conversation: events numbered per chat, deduplicated by client id, and read back
//! through [`Audience`].

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{
    Audience, ChatError, ChatEvent, ChatState, EventKind, MAX_CHOICE_CHARS, MAX_CHOICES,
    MAX_CLIENT_ID_CHARS, MAX_FILES_PER_MESSAGE, MAX_MESSAGE_CHARS, MIN_CHOICES, NewEvent, Sender,
    SenderKind, check_text, conflict, decode_err, flag, invalid, user_in,
};
use crate::store::Store;

const EVENT_COLUMNS: &str = "id, chat_id, seq, kind, sender, sender_user_id, sender_name, \
     private, body, data, client_id, created_at";

fn event_from(r: &AnyRow) -> Result<ChatEvent, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let sender: String = r.try_get("sender")?;
    let data: String = r.try_get("data")?;
    Ok(ChatEvent {
        id: r.try_get("id")?,
        chat_id: r.try_get("chat_id")?,
        seq: r.try_get("seq")?,
        kind: EventKind::parse(&kind).ok_or_else(|| decode_err("event kind", &kind))?,
        from: SenderKind::parse(&sender).ok_or_else(|| decode_err("event sender", &sender))?,
        user_id: r.try_get("sender_user_id")?,
        name: r.try_get("sender_name")?,
        private: flag(r, "private")?,
        body: r.try_get("body")?,
        data: serde_json::from_str(&data)
            .map_err(|e| sqlx::Error::Decode(format!("chat event data: {e}").into()))?,
        client_id: r.try_get("client_id")?,
        created_at_ms: r.try_get("created_at")?,
    })
}

/// An event as the store writes it (also the ones it makes itself: join, leave, end…).
pub(super) struct Draft<'a> {
    pub kind: EventKind,
    pub from: SenderKind,
    pub user_id: Option<i64>,
    pub name: &'a str,
    pub private: bool,
    pub body: &'a str,
    pub data: Value,
    pub client_id: Option<&'a str>,
}

impl<'a> Draft<'a> {
    /// A public event by an operator.
    pub fn operator(kind: EventKind, user_id: i64, name: &'a str, data: Value) -> Draft<'a> {
        Draft {
            kind,
            from: SenderKind::Operator,
            user_id: Some(user_id),
            name,
            private: false,
            body: "",
            data,
            client_id: None,
        }
    }
}

/// Locks the chat's row (PostgreSQL: until the transaction ends) and returns its state.
/// Every change to a chat takes this lock first, so they happen one after the other.
pub(super) async fn lock_chat(
    conn: &mut AnyConnection,
    chat_id: i64,
) -> Result<ChatState, ChatError> {
    let row = sqlx::query("UPDATE chats SET last_seq = last_seq WHERE id = $1 RETURNING state")
        .bind(chat_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Err(ChatError::NotFound);
    };
    let state: String = row.try_get(0)?;
    Ok(ChatState::parse(&state).ok_or_else(|| decode_err("state", &state))?)
}

/// What `add_chat_event` learns in its first statement, which also locks the chat's row.
struct Locked {
    state: ChatState,
    /// The chat's next sequence number, taken (a rollback gives it back).
    seq: i64,
    visitor_name: Option<String>,
}

/// Locks the chat's row for the transaction and takes its next sequence number, with the
/// chat's state and the visitor's name: one statement for what a message needs most.
async fn lock_chat_taking_seq(conn: &mut AnyConnection, chat_id: i64) -> Result<Locked, ChatError> {
    let row = sqlx::query(
        "UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 \
         RETURNING state, last_seq, \
         (SELECT v.name FROM chat_visitors v WHERE v.id = chats.visitor_id) AS visitor_name",
    )
    .bind(chat_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(ChatError::NotFound);
    };
    let state: String = row.try_get(0)?;
    Ok(Locked {
        state: ChatState::parse(&state).ok_or_else(|| decode_err("state", &state))?,
        seq: row.try_get(1)?,
        visitor_name: row.try_get(2)?,
    })
}

/// Stores an event with the chat's next sequence number. The caller holds the chat's
/// lock (see `lock_chat`).
pub(super) async fn insert_event(
    conn: &mut AnyConnection,
    chat_id: i64,
    d: &Draft<'_>,
    now_ms: i64,
) -> Result<ChatEvent, sqlx::Error> {
    let row =
        sqlx::query("UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
            .bind(chat_id)
            .fetch_one(&mut *conn)
            .await?;
    insert_event_numbered(conn, chat_id, row.try_get(0)?, d, now_ms).await
}

/// Stores an event under a sequence number already taken from the chat's row.
async fn insert_event_numbered(
    conn: &mut AnyConnection,
    chat_id: i64,
    seq: i64,
    d: &Draft<'_>,
    now_ms: i64,
) -> Result<ChatEvent, sqlx::Error> {
    let data = if d.data.is_null() {
        json!({})
    } else {
        d.data.clone()
    };
    let row = sqlx::query(
        "INSERT INTO chat_events (chat_id, seq, kind, sender, sender_user_id, sender_name, \
         private, body, data, client_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(chat_id)
    .bind(seq)
    .bind(d.kind.as_str())
    .bind(d.from.as_str())
    .bind(d.user_id)
    .bind(d.name)
    .bind(i64::from(d.private))
    .bind(d.body)
    .bind(data.to_string())
    .bind(d.client_id)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    Ok(ChatEvent {
        id: row.try_get(0)?,
        chat_id,
        seq,
        kind: d.kind,
        from: d.from,
        user_id: d.user_id,
        name: d.name.to_string(),
        private: d.private,
        body: d.body.to_string(),
        data,
        client_id: d.client_id.map(str::to_string),
        created_at_ms: now_ms,
    })
}

async fn event_by_client_id(
    conn: &mut AnyConnection,
    chat_id: i64,
    client_id: &str,
) -> Result<Option<ChatEvent>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM chat_events WHERE chat_id = $1 AND client_id = $2"
    )))
    .bind(chat_id)
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(event_from).transpose()
}

/// The newest participation of the user in the chat: (left, wrapped up).
pub(super) async fn participation(
    conn: &mut AnyConnection,
    chat_id: i64,
    user_id: i64,
) -> Result<Option<(bool, bool)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT left_at, wrapped_up_at FROM chat_participants \
         WHERE chat_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(chat_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let left: Option<i64> = r.try_get("left_at")?;
        let wrapped: Option<i64> = r.try_get("wrapped_up_at")?;
        Ok((left.is_some(), wrapped.is_some()))
    })
    .transpose()
}

/// The name to show for a sender: the operator's as given (else their display name), the
/// visitor's from their details, none for the system.
pub(super) async fn sender_name(
    conn: &mut AnyConnection,
    chat_id: i64,
    sender: &Sender,
) -> Result<String, sqlx::Error> {
    match sender {
        Sender::Operator { name, .. } if !name.trim().is_empty() => Ok(name.trim().to_string()),
        Sender::Operator { user_id, .. } => Ok(user_in(conn, *user_id)
            .await?
            .map(|(name, _)| name)
            .unwrap_or_default()),
        Sender::Visitor => {
            let row = sqlx::query(
                "SELECT v.name FROM chats c JOIN chat_visitors v ON v.id = c.visitor_id \
                 WHERE c.id = $1",
            )
            .bind(chat_id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten()
                .unwrap_or_default())
        }
        Sender::System => Ok(String::new()),
    }
}

/// How long the chat has waited for an operator's first public word, when no operator has
/// said one yet (an operator's event is about to be stored). The caller holds the chat's
/// lock, so two first messages can't both count.
async fn waited_for_first_response(
    conn: &mut AnyConnection,
    chat_id: i64,
    now_ms: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT created_at FROM chats WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM chat_events WHERE chat_id = $2 AND sender = 'operator' \
          AND private = 0 AND kind IN ('message', 'options', 'attachment'))",
    )
    .bind(chat_id)
    .bind(chat_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let started: i64 = r.try_get(0)?;
        Ok(now_ms.saturating_sub(started).max(0))
    })
    .transpose()
}

/// The files an event names in `data.files`: ids, or objects with an `id`.
fn file_ids(data: &Value) -> Result<Vec<String>, ChatError> {
    let Some(files) = data.get("files") else {
        return Ok(Vec::new());
    };
    let Some(files) = files.as_array() else {
        return invalid("files must be a list");
    };
    if files.len() > MAX_FILES_PER_MESSAGE {
        return invalid(format!(
            "a message can carry at most {MAX_FILES_PER_MESSAGE} files"
        ));
    }
    let mut ids = Vec::with_capacity(files.len());
    for f in files {
        let id = f.as_str().or_else(|| f.get("id").and_then(Value::as_str));
        match id {
            Some(id) if super::is_file_id(id) => {
                if ids.iter().any(|seen| seen == id) {
                    return invalid("the same file is attached twice");
                }
                ids.push(id.to_string());
            }
            _ => return invalid("a file in the message has no valid id"),
        }
    }
    Ok(ids)
}

/// An option menu: `{prompt, choices}`; the prompt may also come as the body.
fn option_menu(body: &str, data: &Value) -> Result<(String, Value), ChatError> {
    let prompt = data
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or(body)
        .trim()
        .to_string();
    check_text(
        "question of the option menu",
        &prompt,
        MAX_MESSAGE_CHARS,
        false,
    )?;
    let Some(choices) = data.get("choices").and_then(Value::as_array) else {
        return invalid("an option menu needs a list of choices");
    };
    if !(MIN_CHOICES..=MAX_CHOICES).contains(&choices.len()) {
        return invalid(format!(
            "an option menu needs {MIN_CHOICES}–{MAX_CHOICES} choices"
        ));
    }
    let mut clean: Vec<String> = Vec::with_capacity(choices.len());
    for c in choices {
        let c = c.as_str().map(str::trim).unwrap_or("");
        if c.is_empty() || c.chars().count() > MAX_CHOICE_CHARS || c.chars().any(char::is_control) {
            return invalid(format!(
                "each choice needs 1–{MAX_CHOICE_CHARS} characters on one line"
            ));
        }
        if clean.iter().any(|seen| seen == c) {
            return invalid(format!("the choice {c:?} is there twice"));
        }
        clean.push(c.to_string());
    }
    Ok((
        prompt.clone(),
        json!({ "prompt": prompt, "choices": clean }),
    ))
}

impl Store {
    /// Stores an event with the chat's next sequence number. A resend with the same
    /// client id returns the event stored the first time (also after the chat ended).
    ///
    /// Refused: visitors' private events; anything on an ended chat but operators'
    /// private messages; operators who aren't in the chat. Only conversation kinds come
    /// here (`message`, `options`, `answer`, `attachment`, `greeting`): joins, leaves,
    /// transfers, invitations and the end are written by the calls that make them happen.
    /// Files named in `data.files` must have been uploaded to this chat by the same side
    /// and not sent yet; they take the event's privacy.
    pub async fn add_chat_event(
        &self,
        chat_id: i64,
        ev: &NewEvent,
        now_ms: i64,
    ) -> Result<ChatEvent, ChatError> {
        let from = ev.sender.kind();
        let allowed: &[EventKind] = match from {
            SenderKind::Visitor => &[EventKind::Message, EventKind::Answer, EventKind::Attachment],
            SenderKind::Operator => &[
                EventKind::Message,
                EventKind::Options,
                EventKind::Attachment,
            ],
            SenderKind::System => &[EventKind::Message, EventKind::Greeting],
        };
        if !allowed.contains(&ev.kind) {
            return invalid(format!(
                "a {} can't add a {} event here",
                from.as_str(),
                ev.kind.as_str()
            ));
        }
        if ev.private && from == SenderKind::Visitor {
            return invalid("a visitor's message can't be private");
        }
        if ev.private && from != SenderKind::Operator {
            return invalid("only operators write private messages");
        }
        if ev.private && ev.kind == EventKind::Options {
            return invalid("an option menu is for the visitor and can't be private");
        }
        if let Some(c) = &ev.client_id
            && (c.is_empty()
                || c.chars().count() > MAX_CLIENT_ID_CHARS
                || c.chars().any(char::is_control))
        {
            return invalid(format!(
                "a message's client id needs 1–{MAX_CLIENT_ID_CHARS} characters"
            ));
        }
        // What is stored: the body and data in their canonical form.
        let mut body = ev.body.clone();
        let mut files = Vec::new();
        let mut answer = None;
        let mut data = json!({});
        match ev.kind {
            EventKind::Message | EventKind::Attachment => {
                files = file_ids(&ev.data)?;
                let need_text = ev.kind == EventKind::Message && files.is_empty();
                check_text("message", &body, MAX_MESSAGE_CHARS, !need_text)?;
                if ev.kind == EventKind::Attachment && files.is_empty() {
                    return invalid("an attachment needs at least one file");
                }
            }
            EventKind::Options => (body, data) = option_menu(&ev.body, &ev.data)?,
            EventKind::Answer => {
                let menu_seq = ev.data.get("menu_seq").and_then(Value::as_i64);
                let choice = ev.data.get("choice").and_then(Value::as_str).map(str::trim);
                let (Some(menu_seq), Some(choice)) = (menu_seq, choice) else {
                    return invalid("an answer needs the menu's number and a choice");
                };
                body = choice.to_string();
                data = json!({ "menu_seq": menu_seq, "choice": choice });
                answer = Some((menu_seq, choice.to_string()));
            }
            EventKind::Greeting => check_text("greeting", &body, MAX_MESSAGE_CHARS, false)?,
            _ => return invalid(format!("{} events aren't added here", ev.kind.as_str())),
        }

        let mut tx = self.pool().begin().await?;
        // The chat's row first, so a concurrent resend waits and then sees ours (and a
        // resend finds its event even after the chat ended). Every return before the
        // commit rolls back, giving the sequence number back.
        let locked = lock_chat_taking_seq(&mut tx, chat_id).await?;
        let state = locked.state;
        if let Some(c) = &ev.client_id
            && let Some(e) = event_by_client_id(&mut tx, chat_id, c).await?
        {
            return Ok(e);
        }
        if state == ChatState::Ended && !(ev.private && from == SenderKind::Operator) {
            return conflict("the chat has ended");
        }
        if let Some(user_id) = ev.sender.user_id() {
            match participation(&mut tx, chat_id, user_id).await? {
                Some((false, _)) => {}
                _ => return conflict("you are not in this chat"),
            }
        }
        // The visitor's wait for a first word from an operator ends here (a resend
        // returned above, so each chat counts once).
        let first_response_ms = if from == SenderKind::Operator && !ev.private {
            waited_for_first_response(&mut tx, chat_id, now_ms).await?
        } else {
            None
        };
        if let Some((menu_seq, choice)) = &answer {
            let row = sqlx::query(
                "SELECT data FROM chat_events WHERE chat_id = $1 AND seq = $2 \
                 AND kind = 'options' AND private = 0",
            )
            .bind(chat_id)
            .bind(menu_seq)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return invalid("there is no such option menu in this chat");
            };
            let menu: Value = serde_json::from_str(&row.try_get::<String, _>(0)?)
                .map_err(|e| sqlx::Error::Decode(format!("chat option menu: {e}").into()))?;
            let offered = menu
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c.as_str() == Some(choice.as_str())));
            if !offered {
                return invalid(format!("{choice:?} is not one of the menu's choices"));
            }
        }
        let mut listed = Vec::with_capacity(files.len());
        for id in &files {
            let row = sqlx::query(
                "SELECT name, content_type, size, sender, event_seq FROM chat_files \
                 WHERE id = $1 AND chat_id = $2",
            )
            .bind(id)
            .bind(chat_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return invalid("a file in the message was not uploaded to this chat");
            };
            let by: String = row.try_get("sender")?;
            let sent: Option<i64> = row.try_get("event_seq")?;
            if by != from.as_str() {
                return invalid("a file in the message was uploaded by the other side");
            }
            if sent.is_some() {
                return invalid("a file in the message was sent already");
            }
            listed.push(json!({
                "id": id,
                "name": row.try_get::<String, _>("name")?,
                "type": row.try_get::<String, _>("content_type")?,
                "size": row.try_get::<i64, _>("size")?,
            }));
        }
        if !listed.is_empty() {
            data = json!({ "files": listed });
        }
        let name = match &ev.sender {
            Sender::Visitor => locked.visitor_name.unwrap_or_default(),
            other => sender_name(&mut tx, chat_id, other).await?,
        };
        let event = insert_event_numbered(
            &mut tx,
            chat_id,
            locked.seq,
            &Draft {
                kind: ev.kind,
                from,
                user_id: ev.sender.user_id(),
                name: &name,
                private: ev.private,
                body: &body,
                data,
                client_id: ev.client_id.as_deref(),
            },
            now_ms,
        )
        .await?;
        for id in &files {
            sqlx::query(
                "UPDATE chat_files SET event_seq = $3, private = $4 \
                 WHERE id = $1 AND chat_id = $2 AND event_seq IS NULL",
            )
            .bind(id)
            .bind(chat_id)
            .bind(event.seq)
            .bind(i64::from(ev.private))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if let Some(ms) = first_response_ms {
            metrics::histogram!(super::FIRST_RESPONSE_METRIC).record(ms as f64 / 1000.0);
        }
        Ok(event)
    }

    /// Chats with events stored since `since_ms` (by any node), with their newest
    /// sequence number: each daemon's one query that finds what other nodes stored.
    pub async fn recent_chat_activity(&self, since_ms: i64) -> Result<Vec<(i64, i64)>, ChatError> {
        let rows = sqlx::query(
            "SELECT chat_id, MAX(seq) AS seq FROM chat_events WHERE created_at >= $1 \
             GROUP BY chat_id",
        )
        .bind(since_ms)
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.try_get::<i64, _>("chat_id")?, r.try_get::<i64, _>("seq")?));
        }
        Ok(out)
    }

    /// The chat's events after `after_seq` (0: all) that `audience` may see, in order.
    /// The visitor's page, their transcript and its e-mail all read through here.
    pub async fn chat_events(
        &self,
        chat_id: i64,
        after_seq: i64,
        audience: Audience,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM chat_events WHERE chat_id = $1 AND seq > $2{} \
             ORDER BY seq",
            audience.event_filter()
        )))
        .bind(chat_id)
        .bind(after_seq)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(event_from).collect::<Result<_, _>>()?)
    }
}
