//! What operators see and add around a conversation: visitor details and pages, past
//! chats, tags, notes, canned messages and files.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::events::{lock_chat, participation, sender_name};
use super::{
    Audience, Canned, ChatError, ChatFile, ChatNote, ChatState, ChatSummary,
    MAX_CANNED_TITLE_CHARS, MAX_FILE_BYTES, MAX_FILE_NAME_CHARS, MAX_MESSAGE_CHARS,
    MAX_PAGE_TITLE_CHARS, MAX_TAG_CHARS, NewChatFile, PageView, Sender, SenderKind, Visitor,
    VisitorField, check_line, check_name, check_text, check_url, conflict, decode_err, flag,
    invalid, is_file_id, placeholders, shown_name, visitor_in,
};
use crate::store::{Store, fetch_by_id};

/// Lists are capped so one call can't read a whole table.
pub(super) const MAX_LIST: i64 = 1000;
const VISITOR_CHATS: i64 = 100;

fn check_tag(tag: &str) -> Result<String, ChatError> {
    check_line("a tag", tag, MAX_TAG_CHARS)
}

/// Page titles come from any page: control characters become spaces and long ones are
/// cut, rather than losing the page view.
fn clean_title(title: &str) -> String {
    let t: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    t.trim().chars().take(MAX_PAGE_TITLE_CHARS).collect()
}

const NOTE_SELECT: &str = "SELECT n.id, n.chat_id, n.user_id, u.name, u.display_name, n.body, \
     n.transfer, n.created_at FROM chat_notes n LEFT JOIN users u ON u.id = n.user_id";

fn note_from(r: &AnyRow) -> Result<ChatNote, sqlx::Error> {
    let name: Option<String> = r.try_get("name")?;
    let display: Option<String> = r.try_get("display_name")?;
    Ok(ChatNote {
        id: r.try_get("id")?,
        chat_id: r.try_get("chat_id")?,
        user_id: r.try_get("user_id")?,
        author: shown_name(name.unwrap_or_default(), display.unwrap_or_default()),
        text: r.try_get("body")?,
        transfer: flag(r, "transfer")?,
        created_at_ms: r.try_get("created_at")?,
    })
}

const FILE_COLUMNS: &str = "id, chat_id, name, content_type, size, private, sender, \
     sender_user_id, sender_name, event_seq, created_at";

fn file_from(r: &AnyRow) -> Result<ChatFile, sqlx::Error> {
    let sender: String = r.try_get("sender")?;
    let user_id: Option<i64> = r.try_get("sender_user_id")?;
    let uploaded_by = match (SenderKind::parse(&sender), user_id) {
        (Some(SenderKind::Visitor), _) => Sender::Visitor,
        (Some(SenderKind::Operator), Some(user_id)) => Sender::Operator {
            user_id,
            name: r.try_get("sender_name")?,
        },
        _ => return Err(decode_err("file sender", &sender)),
    };
    Ok(ChatFile {
        id: r.try_get("id")?,
        chat_id: r.try_get("chat_id")?,
        name: r.try_get("name")?,
        content_type: r.try_get("content_type")?,
        size: r.try_get("size")?,
        private: flag(r, "private")?,
        uploaded_by,
        event_seq: r.try_get("event_seq")?,
        created_at_ms: r.try_get("created_at")?,
    })
}

fn canned_from(r: &AnyRow) -> Result<Canned, sqlx::Error> {
    Ok(Canned {
        id: r.try_get("id")?,
        queue: r.try_get("queue")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        favourite: flag(r, "favourite")?,
    })
}

/// Favourites first, then by title (the same order on both databases).
fn sort_canned(list: &mut [Canned]) {
    list.sort_by_cached_key(|c| (!c.favourite, c.title.to_lowercase(), c.id));
}

fn check_canned(
    queue: Option<String>,
    title: &str,
    body: &str,
) -> Result<(Option<String>, String, String), ChatError> {
    let queue = match queue.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(q) => Some(check_name("queue", q)?),
    };
    let title = check_line("the title", title, MAX_CANNED_TITLE_CHARS)?;
    check_text("canned message", body, MAX_MESSAGE_CHARS, false)?;
    Ok((queue, title, body.trim().to_string()))
}

/// Builds list lines for the chats in `rows` (which carry the chat and visitor columns),
/// with their operators and tags, keeping the rows' order.
pub(super) async fn summaries(
    conn: &mut AnyConnection,
    rows: &[AnyRow],
) -> Result<Vec<ChatSummary>, sqlx::Error> {
    let mut list = Vec::with_capacity(rows.len());
    for r in rows {
        let state: String = r.try_get("state")?;
        list.push(ChatSummary {
            id: r.try_get("id")?,
            site: r.try_get("site")?,
            queue: r.try_get("queue")?,
            topic: r.try_get("topic")?,
            state: ChatState::parse(&state).ok_or_else(|| decode_err("state", &state))?,
            visitor_id: r.try_get("visitor_id")?,
            visitor_name: r.try_get("visitor_name")?,
            operators: Vec::new(),
            tags: Vec::new(),
            created_at_ms: r.try_get("created_at")?,
            ended_at_ms: r.try_get("ended_at")?,
        });
    }
    if list.is_empty() {
        return Ok(list);
    }
    let ids: Vec<i64> = list.iter().map(|s| s.id).collect();
    let at: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let marks = placeholders(1, ids.len());

    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT p.chat_id, u.name, u.display_name FROM chat_participants p \
         JOIN users u ON u.id = p.user_id WHERE p.chat_id IN ({marks}) ORDER BY p.id"
    )));
    for id in &ids {
        q = q.bind(*id);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let chat: i64 = r.try_get("chat_id")?;
        let name = shown_name(r.try_get("name")?, r.try_get("display_name")?);
        if let Some(s) = at.get(&chat).and_then(|i| list.get_mut(*i))
            && !s.operators.contains(&name)
        {
            s.operators.push(name);
        }
    }

    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT chat_id, tag FROM chat_tags WHERE chat_id IN ({marks}) ORDER BY tag"
    )));
    for id in &ids {
        q = q.bind(*id);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let chat: i64 = r.try_get("chat_id")?;
        if let Some(s) = at.get(&chat).and_then(|i| list.get_mut(*i)) {
            s.tags.push(r.try_get("tag")?);
        }
    }
    Ok(list)
}

pub(super) const SUMMARY_SELECT: &str = "SELECT c.id, c.site, c.queue, c.topic, c.state, c.visitor_id, \
     v.name AS visitor_name, c.created_at, c.ended_at \
     FROM chats c JOIN chat_visitors v ON v.id = c.visitor_id";

async fn chat_exists(conn: &mut AnyConnection, chat_id: i64) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> =
        fetch_by_id(&mut *conn, "SELECT id FROM chats WHERE id = $1", chat_id).await?;
    Ok(row.is_some())
}

async fn user_exists(conn: &mut AnyConnection, user_id: i64) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> =
        fetch_by_id(&mut *conn, "SELECT id FROM users WHERE id = $1", user_id).await?;
    Ok(row.is_some())
}

impl Store {
    // ---- visitor details ----

    /// An operator corrects or fills in a visitor's field (`name`, `email`, `phone`,
    /// `customer_id`; blank clears it). Invalid for a field the site verified: one
    /// conditional `UPDATE`, so a signature arriving meanwhile still wins.
    pub async fn update_visitor_field(
        &self,
        visitor_id: i64,
        field: &str,
        value: &str,
    ) -> Result<Visitor, ChatError> {
        let Some(f) = VisitorField::parse(field) else {
            return invalid(format!("{field:?} is not a visitor field"));
        };
        let value = f.clean(Some(value))?;
        let guard = f
            .verified_column()
            .map(|c| format!(" AND {c} = 0"))
            .unwrap_or_default();
        let mut conn = self.pool().acquire().await?;
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE chat_visitors SET {} = $2 WHERE id = $1{guard}",
            f.column()
        )))
        .bind(visitor_id)
        .bind(value)
        .execute(&mut *conn)
        .await?;
        let visitor = visitor_in(&mut conn, visitor_id).await?;
        match visitor {
            None => Err(ChatError::NotFound),
            Some(_) if r.rows_affected() == 0 => invalid(format!(
                "the {} was verified by the site and can't be changed",
                f.as_str().replace('_', " ")
            )),
            Some(v) => Ok(v),
        }
    }

    /// A page the visitor opened (from the widget), with the chat open then, if any.
    pub async fn add_page_view(
        &self,
        visitor_id: i64,
        chat_id: Option<i64>,
        url: &str,
        title: &str,
        now_ms: i64,
    ) -> Result<PageView, ChatError> {
        let url = check_url("page address", url, false)?;
        let title = clean_title(title);
        let mut tx = self.pool().begin().await?;
        if visitor_in(&mut tx, visitor_id).await?.is_none() {
            return Err(ChatError::NotFound);
        }
        if let Some(chat_id) = chat_id {
            let row = sqlx::query("SELECT visitor_id FROM chats WHERE id = $1")
                .bind(chat_id)
                .fetch_optional(&mut *tx)
                .await?;
            match row.map(|r| r.try_get::<i64, _>(0)).transpose()? {
                Some(v) if v == visitor_id => {}
                Some(_) => return invalid("the chat belongs to another visitor"),
                None => return Err(ChatError::NotFound),
            }
        }
        let row = sqlx::query(
            "INSERT INTO chat_page_views (visitor_id, chat_id, url, title, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(visitor_id)
        .bind(chat_id)
        .bind(&url)
        .bind(&title)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        tx.commit().await?;
        Ok(PageView {
            id,
            visitor_id,
            chat_id,
            url,
            title,
            at_ms: now_ms,
        })
    }

    /// The visitor's latest pages, newest first.
    pub async fn page_views(
        &self,
        visitor_id: i64,
        limit: i64,
    ) -> Result<Vec<PageView>, ChatError> {
        let rows = sqlx::query(
            "SELECT id, visitor_id, chat_id, url, title, created_at FROM chat_page_views \
             WHERE visitor_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(visitor_id)
        .bind(limit.clamp(0, MAX_LIST))
        .fetch_all(self.pool())
        .await?;
        let views = rows
            .iter()
            .map(|r| {
                Ok(PageView {
                    id: r.try_get("id")?,
                    visitor_id: r.try_get("visitor_id")?,
                    chat_id: r.try_get("chat_id")?,
                    url: r.try_get("url")?,
                    title: r.try_get("title")?,
                    at_ms: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(views)
    }

    /// The visitor's chats (this one too), newest first, at most 100.
    pub async fn visitor_chats(&self, visitor_id: i64) -> Result<Vec<ChatSummary>, ChatError> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SUMMARY_SELECT} WHERE c.visitor_id = $1 ORDER BY c.created_at DESC, c.id DESC \
             LIMIT $2"
        )))
        .bind(visitor_id)
        .bind(VISITOR_CHATS)
        .fetch_all(&mut *conn)
        .await?;
        Ok(summaries(&mut conn, &rows).await?)
    }

    /// Past chats of visitors who gave the phone `number` (as the call delivered it, or
    /// its canonical form; spaces and hyphens the visitor typed don't matter), or the
    /// e-mail of such a visitor; newest first, at most `limit`. The console's screen pop
    /// shows them for a caller. A number typed in another national form (06… for +36…)
    /// is not found: the column keeps what the visitor typed.
    pub async fn chats_for_phone(
        &self,
        number: &str,
        limit: i64,
    ) -> Result<Vec<ChatSummary>, ChatError> {
        let number = number.trim();
        if number.is_empty() {
            return Ok(Vec::new());
        }
        let canonical = crate::address::phone_number(number).unwrap_or_else(|_| number.to_string());
        // The visitor's phone without the separators people type (both databases have
        // REPLACE).
        const PHONE: &str = "REPLACE(REPLACE(phone, ' ', ''), '-', '')";
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SUMMARY_SELECT} WHERE c.visitor_id IN (SELECT id FROM chat_visitors \
             WHERE {PHONE} IN ($1, $2) OR email IN (SELECT email FROM chat_visitors \
             WHERE {PHONE} IN ($1, $2) AND email IS NOT NULL)) \
             ORDER BY c.created_at DESC, c.id DESC LIMIT $3"
        )))
        .bind(number)
        .bind(canonical)
        .bind(limit.clamp(0, VISITOR_CHATS))
        .fetch_all(&mut *conn)
        .await?;
        Ok(summaries(&mut conn, &rows).await?)
    }

    // ---- tags ----

    /// Tags a chat (tagging twice is fine).
    pub async fn add_chat_tag(&self, chat_id: i64, tag: &str) -> Result<(), ChatError> {
        let tag = check_tag(tag)?;
        let mut conn = self.pool().acquire().await?;
        if !chat_exists(&mut conn, chat_id).await? {
            return Err(ChatError::NotFound);
        }
        sqlx::query("INSERT INTO chat_tags (chat_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(chat_id)
            .bind(&tag)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Returns whether the chat had the tag.
    pub async fn remove_chat_tag(&self, chat_id: i64, tag: &str) -> Result<bool, ChatError> {
        let r = sqlx::query("DELETE FROM chat_tags WHERE chat_id = $1 AND tag = $2")
            .bind(chat_id)
            .bind(tag.trim())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn chat_tags(&self, chat_id: i64) -> Result<Vec<String>, ChatError> {
        let rows = sqlx::query("SELECT tag FROM chat_tags WHERE chat_id = $1 ORDER BY tag")
            .bind(chat_id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?)
    }

    /// The newest chats with the tag.
    pub async fn chats_with_tag(
        &self,
        tag: &str,
        limit: i64,
    ) -> Result<Vec<ChatSummary>, ChatError> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SUMMARY_SELECT} WHERE c.id IN (SELECT chat_id FROM chat_tags WHERE tag = $1) \
             ORDER BY c.created_at DESC, c.id DESC LIMIT $2"
        )))
        .bind(tag.trim())
        .bind(limit.clamp(0, MAX_LIST))
        .fetch_all(&mut *conn)
        .await?;
        Ok(summaries(&mut conn, &rows).await?)
    }

    // ---- notes ----

    /// An operator's note on the chat (operators only; shown in the visitor's later
    /// chats too).
    pub async fn add_chat_note(
        &self,
        chat_id: i64,
        user_id: i64,
        text: &str,
        now_ms: i64,
    ) -> Result<ChatNote, ChatError> {
        check_text("note", text, MAX_MESSAGE_CHARS, false)?;
        let mut tx = self.pool().begin().await?;
        if !user_exists(&mut tx, user_id).await? {
            return invalid(format!("no user with id {user_id}"));
        }
        let row = sqlx::query(
            "INSERT INTO chat_notes (chat_id, visitor_id, user_id, body, transfer, created_at) \
             SELECT id, visitor_id, $2, $3, 0, $4 FROM chats WHERE id = $1 RETURNING id",
        )
        .bind(chat_id)
        .bind(user_id)
        .bind(text.trim())
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(ChatError::NotFound);
        };
        let id: i64 = row.try_get(0)?;
        let note = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{NOTE_SELECT} WHERE n.id = $1"
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let note = note_from(&note)?;
        tx.commit().await?;
        Ok(note)
    }

    /// The chat's notes (with a transfer's note), oldest first.
    pub async fn chat_notes(&self, chat_id: i64) -> Result<Vec<ChatNote>, ChatError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{NOTE_SELECT} WHERE n.chat_id = $1 ORDER BY n.id"
        )))
        .bind(chat_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(note_from).collect::<Result<_, _>>()?)
    }

    /// Notes from all of the visitor's chats, oldest first.
    pub async fn visitor_notes(&self, visitor_id: i64) -> Result<Vec<ChatNote>, ChatError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{NOTE_SELECT} WHERE n.visitor_id = $1 ORDER BY n.id"
        )))
        .bind(visitor_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(note_from).collect::<Result<_, _>>()?)
    }

    // ---- canned messages ----

    /// A canned message for one queue (None: every queue), by a supervisor.
    pub async fn add_canned(
        &self,
        queue: Option<String>,
        title: &str,
        body: &str,
        user_id: i64,
    ) -> Result<Canned, ChatError> {
        let (queue, title, body) = check_canned(queue, title, body)?;
        let mut conn = self.pool().acquire().await?;
        if !user_exists(&mut conn, user_id).await? {
            return invalid(format!("no user with id {user_id}"));
        }
        let row = sqlx::query(
            "INSERT INTO chat_canned (queue, title, body, created_by) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(queue.as_deref())
        .bind(&title)
        .bind(&body)
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
        Ok(Canned {
            id: row.try_get(0)?,
            queue,
            title,
            body,
            favourite: false,
        })
    }

    pub async fn update_canned(
        &self,
        id: i64,
        queue: Option<String>,
        title: &str,
        body: &str,
    ) -> Result<Canned, ChatError> {
        let (queue, title, body) = check_canned(queue, title, body)?;
        let r =
            sqlx::query("UPDATE chat_canned SET queue = $2, title = $3, body = $4 WHERE id = $1")
                .bind(id)
                .bind(queue.as_deref())
                .bind(&title)
                .bind(&body)
                .execute(self.pool())
                .await?;
        if r.rows_affected() == 0 {
            return Err(ChatError::NotFound);
        }
        Ok(Canned {
            id,
            queue,
            title,
            body,
            favourite: false,
        })
    }

    /// Deletes a canned message and everyone's star on it.
    pub async fn delete_canned(&self, id: i64) -> Result<(), ChatError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM chat_canned_favourites WHERE canned_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM chat_canned WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(ChatError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every canned message (the admin page), by queue and title.
    pub async fn all_canned(&self) -> Result<Vec<Canned>, ChatError> {
        let rows = sqlx::query(
            "SELECT id, queue, title, body, CAST(0 AS BIGINT) AS favourite FROM chat_canned",
        )
        .fetch_all(self.pool())
        .await?;
        let mut list = rows
            .iter()
            .map(canned_from)
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by_cached_key(|c| (c.queue.clone(), c.title.to_lowercase(), c.id));
        Ok(list)
    }

    /// The canned messages for the user's queues (and those for every queue) whose title
    /// or text contains `query` (any case; blank: all), the user's favourites first, then
    /// by title.
    pub async fn canned_for(
        &self,
        user_id: i64,
        queues: &[String],
        query: &str,
    ) -> Result<Vec<Canned>, ChatError> {
        let queue_filter = if queues.is_empty() {
            String::new()
        } else {
            format!(" OR c.queue IN ({})", placeholders(2, queues.len()))
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.id, c.queue, c.title, c.body, \
             CAST(CASE WHEN f.user_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS favourite \
             FROM chat_canned c LEFT JOIN chat_canned_favourites f \
             ON f.canned_id = c.id AND f.user_id = $1 \
             WHERE c.queue IS NULL{queue_filter}"
        )))
        .bind(user_id);
        for queue in queues {
            q = q.bind(queue);
        }
        let rows = q.fetch_all(self.pool()).await?;
        // Filtered here: SQL's case folding differs between the databases (and SQLite's
        // knows only ASCII).
        let needle = query.trim().to_lowercase();
        let mut list = Vec::with_capacity(rows.len());
        for r in &rows {
            let c = canned_from(r)?;
            if needle.is_empty()
                || c.title.to_lowercase().contains(&needle)
                || c.body.to_lowercase().contains(&needle)
            {
                list.push(c);
            }
        }
        sort_canned(&mut list);
        Ok(list)
    }

    /// Stars (or unstars) a canned message for the user; doing it twice is fine.
    pub async fn set_canned_favourite(
        &self,
        user_id: i64,
        canned_id: i64,
        on: bool,
    ) -> Result<(), ChatError> {
        let mut conn = self.pool().acquire().await?;
        let row: Option<(i64,)> = fetch_by_id(
            &mut *conn,
            "SELECT id FROM chat_canned WHERE id = $1",
            canned_id,
        )
        .await?;
        if row.is_none() {
            return Err(ChatError::NotFound);
        }
        if !user_exists(&mut conn, user_id).await? {
            return invalid(format!("no user with id {user_id}"));
        }
        let sql = if on {
            "INSERT INTO chat_canned_favourites (user_id, canned_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM chat_canned_favourites WHERE user_id = $1 AND canned_id = $2"
        };
        sqlx::query(sql)
            .bind(user_id)
            .bind(canned_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    // ---- files ----

    /// Records an uploaded file; the web layer writes its bytes under `id`. The visitor's
    /// uploads can't be private; an operator must be in the chat. After the end only an
    /// operator's private file is taken.
    pub async fn add_chat_file(&self, f: &NewChatFile) -> Result<ChatFile, ChatError> {
        self.add_chat_file_within(f, i64::MAX).await
    }

    /// As [`Store::add_chat_file`], refused with `OverQuota` when the chat's files would
    /// then have more than `quota_bytes` (counted under the chat's lock, so parallel
    /// uploads can't pass it together).
    pub async fn add_chat_file_within(
        &self,
        f: &NewChatFile,
        quota_bytes: i64,
    ) -> Result<ChatFile, ChatError> {
        if !is_file_id(&f.id) {
            return invalid("a file id is 32 lower-case hex digits");
        }
        let name = f.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_FILE_NAME_CHARS
            || name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return invalid(format!(
                "a file name needs 1–{MAX_FILE_NAME_CHARS} characters without slashes"
            ));
        }
        let ok_type = !f.content_type.is_empty()
            && f.content_type.len() <= 100
            && f.content_type.contains('/')
            && f.content_type.chars().all(|c| c.is_ascii_graphic());
        if !ok_type {
            return invalid(format!(
                "content type {:?}: expected a media type like image/png",
                f.content_type
            ));
        }
        if !(0..=MAX_FILE_BYTES).contains(&f.size) {
            return invalid(format!(
                "a file may have at most {} MB",
                MAX_FILE_BYTES / 1024 / 1024
            ));
        }
        let from = f.uploaded_by.kind();
        match from {
            SenderKind::Visitor if f.private => {
                return invalid("a visitor's file can't be private");
            }
            SenderKind::System => {
                return invalid("files are uploaded by the visitor or an operator");
            }
            _ => {}
        }
        let mut tx = self.pool().begin().await?;
        let state = lock_chat(&mut tx, f.chat_id).await?;
        if state == ChatState::Ended && !(f.private && from == SenderKind::Operator) {
            return conflict("the chat has ended");
        }
        if let Sender::Operator { user_id, .. } = &f.uploaded_by {
            match participation(&mut tx, f.chat_id, *user_id).await? {
                Some((false, _)) => {}
                _ => return conflict("you are not in this chat"),
            }
        }
        let used: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM chat_files WHERE chat_id = $1",
        )
        .bind(f.chat_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if used.saturating_add(f.size) > quota_bytes {
            return Err(ChatError::OverQuota(format!(
                "this chat's files may have at most {} MB together",
                quota_bytes / 1024 / 1024
            )));
        }
        let sender_name = sender_name(&mut tx, f.chat_id, &f.uploaded_by).await?;
        let user_id = match &f.uploaded_by {
            Sender::Operator { user_id, .. } => Some(*user_id),
            _ => None,
        };
        let r = sqlx::query(
            "INSERT INTO chat_files (id, chat_id, name, content_type, size, private, sender, \
             sender_user_id, sender_name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&f.id)
        .bind(f.chat_id)
        .bind(name)
        .bind(&f.content_type)
        .bind(f.size)
        .bind(i64::from(f.private))
        .bind(from.as_str())
        .bind(user_id)
        .bind(&sender_name)
        .bind(f.now_ms)
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return conflict("a file with this id exists already");
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        let uploaded_by = match &f.uploaded_by {
            Sender::Operator { user_id, .. } => Sender::Operator {
                user_id: *user_id,
                name: sender_name,
            },
            other => other.clone(),
        };
        Ok(ChatFile {
            id: f.id.clone(),
            chat_id: f.chat_id,
            name: name.to_string(),
            content_type: f.content_type.clone(),
            size: f.size,
            private: f.private,
            uploaded_by,
            event_seq: None,
            created_at_ms: f.now_ms,
        })
    }

    /// A file as stored, whoever may see it (check with [`Store::chat_file_for`] before
    /// handing it to a visitor).
    pub async fn chat_file(&self, id: &str) -> Result<Option<ChatFile>, ChatError> {
        if !is_file_id(id) {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM chat_files WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(file_from).transpose()?)
    }

    /// The file if it belongs to the chat and `audience` may see it: the visitor gets
    /// files of events they see and their own uploads.
    pub async fn chat_file_for(
        &self,
        id: &str,
        chat_id: i64,
        audience: Audience,
    ) -> Result<Option<ChatFile>, ChatError> {
        if !is_file_id(id) {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM chat_files WHERE id = $1 AND chat_id = $2{}",
            audience.file_filter()
        )))
        .bind(id)
        .bind(chat_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(file_from).transpose()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_titles_are_cleaned() {
        assert_eq!(clean_title("  Shop\n– Cart\t"), "Shop – Cart");
        assert_eq!(
            clean_title(&"x".repeat(400)).chars().count(),
            MAX_PAGE_TITLE_CHARS
        );
    }

    #[test]
    fn favourites_sort_first() {
        let c = |id, title: &str, favourite| Canned {
            id,
            queue: None,
            title: title.into(),
            body: String::new(),
            favourite,
        };
        let mut list = vec![
            c(1, "b", false),
            c(2, "Z", true),
            c(3, "a", false),
            c(4, "C", true),
        ];
        sort_canned(&mut list);
        let ids: Vec<i64> = list.iter().map(|c| c.id).collect();
        assert_eq!(ids, [4, 2, 3, 1]);
    }
}
