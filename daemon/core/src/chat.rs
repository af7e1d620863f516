//! Web chat (seeds 002/004, PRODUCT H1–H5): the store behind the widget on customers'
//! sites and the operators' chat console.
//!
//! - A **visitor** is one row per (site, visitor key). Fields the site signed (HMAC-SHA256,
//!   see [`verify_signature`]) are *verified*: operators see a lock and can't edit them.
//! - A **chat** goes `waiting` → `offered` (to one operator, until a deadline) → `active` →
//!   `ended`. A rejected or expired offer puts it back to `waiting`, and that operator is
//!   never offered it again. Offering is exclusive across nodes: the operator's row is
//!   locked (`chat_lock = chat_lock + 1`) before their load is counted, and the chat is
//!   claimed by one conditional `UPDATE … WHERE state = 'waiting'`.
//! - An operator's **load** is the chats offered to them plus the chats they are in and
//!   have neither left nor wrapped up; it may not exceed `operators.chat_capacity`.
//! - Everything the conversation shows is an **event** numbered per chat when stored
//!   (taking the number locks the chat's row); a resend with the same client id is not
//!   stored twice. Private events are for operators only: [`Audience`] is the one place
//!   that decides who sees what, for events and for files.
//!
//! The web layer sends the structs here as JSON (serde). Like the rest of the core this
//! module reads no clock: every call takes the time from its caller.

use crate::tokens::sha256_hex;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::{Store, StoreError};

mod abuse;
mod access;
mod details;
mod events;
mod listing;
mod routing;
mod sign;

pub use abuse::AbandonedChat;
pub use listing::ChatFilter;
pub use sign::{
    MAX_SIGNATURE_CLOCK_SKEW_S, SignatureError, SignedVisitor, canonical_signed_fields,
    sign_visitor, verified_fields, verify_signature,
};

/// Histogram (seconds): from a chat's start to the first message an operator wrote the
/// visitor, recorded once per chat when that message is stored. The daemon describes it
/// and sets its buckets.
pub const FIRST_RESPONSE_METRIC: &str = "hotline_chat_first_response_seconds";

/// Longest message (and note, canned body, wrap-up note), in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
pub const MAX_FILES_PER_MESSAGE: usize = 5;
pub const MAX_FILE_BYTES: i64 = 20 * 1024 * 1024;
pub const MAX_CLIENT_ID_CHARS: usize = 64;
pub const MIN_CHOICES: usize = 2;
pub const MAX_CHOICES: usize = 10;
pub const MAX_CHOICE_CHARS: usize = 100;
pub const MAX_TAG_CHARS: usize = 40;
/// Queue, operator and wrap-up category names.
pub const MAX_NAME_CHARS: usize = 100;
/// A visitor's name and customer id.
pub const MAX_VISITOR_FIELD_CHARS: usize = 200;
pub use crate::address::MAX_EMAIL_CHARS;
pub const MAX_PHONE_CHARS: usize = 64;
pub const MAX_URL_CHARS: usize = 2000;
pub const MAX_PAGE_TITLE_CHARS: usize = 300;
pub const MAX_TOPIC_CHARS: usize = 200;
pub const MAX_CANNED_TITLE_CHARS: usize = 100;
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Site keys and visitor keys.
pub const MAX_KEY_CHARS: usize = 128;
const MAX_USER_AGENT_CHARS: usize = 500;
const MAX_BROWSER_CHARS: usize = 100;
/// Longer "tokens" from a URL aren't ours; don't bother hashing them.
const MAX_TOKEN_CHARS: usize = 128;

/// `as_str`/`parse` for an enum stored as text.
macro_rules! text_enum {
    ($ty:ident { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$v),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$v => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<$ty> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatState {
    Waiting,
    Offered,
    Active,
    Ended,
}
text_enum!(ChatState { Waiting => "waiting", Offered => "offered", Active => "active", Ended => "ended" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Text, with files in `data.files` when it carries some.
    Message,
    Join,
    Leave,
    /// An operator's option menu: `data {prompt, choices[]}`.
    Options,
    /// The visitor's choice: `data {menu_seq, choice}`.
    Answer,
    /// Files without (or with) text: `data {files[{id, name, type, size}]}`.
    Attachment,
    /// Private: `data {to: {operator|queue}, note}`.
    Transfer,
    /// Private: an invitation sent or answered.
    Invite,
    /// `data {by}`.
    End,
    Greeting,
}
impl EventKind {
    /// Said in the conversation; every other kind changes who is in the chat or its state.
    pub fn is_conversation(self) -> bool {
        matches!(
            self,
            EventKind::Message
                | EventKind::Answer
                | EventKind::Options
                | EventKind::Attachment
                | EventKind::Greeting
        )
    }
}

text_enum!(EventKind {
    Message => "message",
    Join => "join",
    Leave => "leave",
    Options => "options",
    Answer => "answer",
    Attachment => "attachment",
    Transfer => "transfer",
    Invite => "invite",
    End => "end",
    Greeting => "greeting",
});

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    Visitor,
    Operator,
    System,
}
text_enum!(SenderKind { Visitor => "visitor", Operator => "operator", System => "system" });

/// Who sends an event (or uploads a file, or ends a chat). As JSON:
/// `{"from":"operator","user_id":3,"name":"Anna"}`, `{"from":"visitor"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "lowercase")]
pub enum Sender {
    Visitor,
    /// A web user (`users.id`) and the name to show; a blank name is filled in from the
    /// user's display name.
    Operator {
        user_id: i64,
        name: String,
    },
    System,
}

impl Sender {
    pub fn kind(&self) -> SenderKind {
        match self {
            Sender::Visitor => SenderKind::Visitor,
            Sender::Operator { .. } => SenderKind::Operator,
            Sender::System => SenderKind::System,
        }
    }

    fn user_id(&self) -> Option<i64> {
        match self {
            Sender::Operator { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }
}

/// Who is looking. Visibility is decided here and nowhere else: the visitor (their page,
/// their transcript, the transcript e-mail) never gets private events or files; operators
/// get everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Visitor,
    Operators,
}

impl Audience {
    pub fn sees(self, private: bool) -> bool {
        match self {
            Audience::Visitor => !private,
            Audience::Operators => true,
        }
    }

    /// Appended to a `WHERE` on `chat_events`.
    fn event_filter(self) -> &'static str {
        match self {
            Audience::Visitor => " AND private = 0",
            Audience::Operators => "",
        }
    }

    /// Appended to a `WHERE` on `chat_files`: the visitor gets the files of events they
    /// see and their own uploads, not operators' files that weren't sent (yet).
    fn file_filter(self) -> &'static str {
        match self {
            Audience::Visitor => {
                " AND private = 0 AND (event_seq IS NOT NULL OR sender = 'visitor')"
            }
            Audience::Operators => "",
        }
    }
}

/// Whom an invitation or a transfer goes to. As JSON `{"operator":"anna"}` or
/// `{"queue":"sales"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Operator(String),
    Queue(String),
}

impl Target {
    fn validated(&self) -> Result<Target, ChatError> {
        Ok(match self {
            Target::Operator(o) => Target::Operator(check_name("operator", o)?),
            Target::Queue(q) => Target::Queue(check_name("queue", q)?),
        })
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Target::Operator(o) => serde_json::json!({ "operator": o }),
            Target::Queue(q) => serde_json::json!({ "queue": q }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InviteState {
    Pending,
    Accepted,
    Declined,
    Cancelled,
}
text_enum!(InviteState {
    Pending => "pending",
    Accepted => "accepted",
    Declined => "declined",
    Cancelled => "cancelled",
});

/// The visitor fields operators see (and may edit unless verified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitorField {
    Name,
    Email,
    Phone,
    CustomerId,
}
text_enum!(VisitorField { Name => "name", Email => "email", Phone => "phone", CustomerId => "customer_id" });

impl VisitorField {
    /// The column of the value (a fixed name, never from input).
    fn column(self) -> &'static str {
        self.as_str()
    }

    /// The column of the verified flag; the phone can't be signed.
    fn verified_column(self) -> Option<&'static str> {
        match self {
            VisitorField::Name => Some("verified_name"),
            VisitorField::Email => Some("verified_email"),
            VisitorField::CustomerId => Some("verified_customer_id"),
            VisitorField::Phone => None,
        }
    }

    /// Checks a value as typed; blank means "none".
    fn clean(self, v: Option<&str>) -> Result<Option<String>, ChatError> {
        let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let max = match self {
            VisitorField::Name | VisitorField::CustomerId => MAX_VISITOR_FIELD_CHARS,
            VisitorField::Email => MAX_EMAIL_CHARS,
            VisitorField::Phone => MAX_PHONE_CHARS,
        };
        let what = self.as_str().replace('_', " ");
        if v.chars().count() > max {
            return Err(ChatError::Invalid(format!(
                "the {what} is longer than {max} characters"
            )));
        }
        if v.chars().any(char::is_control) {
            return Err(ChatError::Invalid(format!(
                "the {what} can't contain line breaks or tabs"
            )));
        }
        if self == VisitorField::Email {
            return crate::address::validate_email(v)
                .map(Some)
                .map_err(|e| ChatError::Invalid(e.to_string()));
        }
        Ok(Some(v.to_string()))
    }
}

/// Messages are written for the page that caused them and can be shown as they are.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Bad input (HTTP 400 with the message).
    #[error("{0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    /// The state changed under the caller (HTTP 409 with the message).
    #[error("{0}")]
    Conflict(String),
    /// The chat's files would pass its quota (HTTP 413 with the message).
    #[error("{0}")]
    OverQuota(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChatError {
    fn from(e: sqlx::Error) -> Self {
        ChatError::Store(e.into())
    }
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ChatError> {
    Err(ChatError::Invalid(msg.into()))
}

fn conflict<T>(msg: impl Into<String>) -> Result<T, ChatError> {
    Err(ChatError::Conflict(msg.into()))
}

// ---- what the store holds ----

/// What the widget's start form (and the site's signature) says about the visitor.
/// Blank fields leave what is stored; `verified` names the fields (`name`, `email`,
/// `customer_id`) whose values here the site signed — see [`verified_fields`].
#[derive(Clone, Debug, Default)]
pub struct NewVisitor {
    pub site: String,
    pub visitor_key: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub customer_id: Option<String>,
    pub verified: Vec<String>,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visitor {
    pub id: i64,
    pub site: String,
    /// The widget's own id for the browser: kept out of JSON.
    #[serde(skip)]
    pub visitor_key: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub customer_id: Option<String>,
    /// Field names (`name`, `email`, `customer_id`) the site signed.
    pub verified: Vec<String>,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
}

impl Visitor {
    pub fn is_verified(&self, field: VisitorField) -> bool {
        self.verified.iter().any(|f| f == field.as_str())
    }
}

#[derive(Clone, Debug, Default)]
pub struct NewChat {
    pub site: String,
    pub visitor_id: i64,
    pub queue: String,
    pub topic: String,
    pub page_url: String,
    pub browser: String,
    pub os: String,
    pub user_agent: String,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: i64,
    pub site: String,
    pub visitor_id: i64,
    pub queue: String,
    pub topic: String,
    pub page_url: String,
    pub browser: String,
    pub os: String,
    pub user_agent: String,
    pub state: ChatState,
    /// Transferred to a named operator: only they may be offered it while it waits.
    pub for_operator: Option<String>,
    pub offered_to: Option<String>,
    pub offered_at_ms: Option<i64>,
    pub offer_expires_at_ms: Option<i64>,
    pub created_at_ms: i64,
    /// The first acceptance.
    pub accepted_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub ended_by: Option<SenderKind>,
    /// The newest event's sequence number.
    pub last_seq: i64,
}

/// An event to store. `data` may be `null`; it is checked per kind and stored in a
/// canonical form (unknown keys are dropped).
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub sender: Sender,
    pub private: bool,
    pub body: String,
    pub data: serde_json::Value,
    pub client_id: Option<String>,
}

impl NewEvent {
    /// A public event without data or client id.
    pub fn new(kind: EventKind, sender: Sender, body: impl Into<String>) -> NewEvent {
        NewEvent {
            kind,
            sender,
            private: false,
            body: body.into(),
            data: serde_json::Value::Null,
            client_id: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    pub id: i64,
    pub chat_id: i64,
    /// 1, 2, 3… within the chat, in the order stored. The visitor sees gaps where
    /// private events are.
    pub seq: i64,
    pub kind: EventKind,
    pub from: SenderKind,
    /// The operator's web user id.
    pub user_id: Option<i64>,
    /// The operator's (or visitor's) name at the time.
    pub name: String,
    pub private: bool,
    pub body: String,
    pub data: serde_json::Value,
    pub client_id: Option<String>,
    pub created_at_ms: i64,
}

impl ChatEvent {
    pub fn sender(&self) -> Sender {
        match (self.from, self.user_id) {
            (SenderKind::Operator, Some(user_id)) => Sender::Operator {
                user_id,
                name: self.name.clone(),
            },
            (SenderKind::Visitor, _) => Sender::Visitor,
            _ => Sender::System,
        }
    }
}

/// An operator's time in a chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub chat_id: i64,
    pub user_id: i64,
    pub operator: String,
    pub name: String,
    pub joined_at_ms: i64,
    pub left_at_ms: Option<i64>,
    pub wrapped_up_at_ms: Option<i64>,
    pub wrap_up_category: Option<String>,
    pub wrap_up_note: Option<String>,
}

impl Participant {
    /// Still in the chat and counting towards the operator's load.
    pub fn is_open(&self) -> bool {
        self.left_at_ms.is_none() && self.wrapped_up_at_ms.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub id: i64,
    pub chat_id: i64,
    pub from_user_id: i64,
    pub from_name: String,
    /// `"operator": "anna"` or `"queue": "sales"`.
    #[serde(flatten)]
    pub target: Target,
    pub state: InviteState,
    pub answered_by: Option<String>,
    pub created_at_ms: i64,
    pub answered_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canned {
    pub id: i64,
    /// None: for every queue.
    pub queue: Option<String>,
    pub title: String,
    pub body: String,
    /// Starred by the user who asked.
    pub favourite: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatNote {
    pub id: i64,
    pub chat_id: i64,
    pub user_id: Option<i64>,
    pub author: String,
    pub text: String,
    /// Written with a transfer, for the next operator.
    pub transfer: bool,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageView {
    pub id: i64,
    pub visitor_id: i64,
    pub chat_id: Option<i64>,
    pub url: String,
    pub title: String,
    pub at_ms: i64,
}

/// A line of a list of chats (the visitor's past chats, chats with a tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSummary {
    pub id: i64,
    pub site: String,
    pub queue: String,
    pub topic: String,
    pub state: ChatState,
    pub visitor_id: i64,
    pub visitor_name: Option<String>,
    /// Names of the operators who took part, in the order they joined.
    pub operators: Vec<String>,
    pub tags: Vec<String>,
    pub created_at_ms: i64,
    pub ended_at_ms: Option<i64>,
}

/// A file being uploaded; the web layer writes the bytes under `id` (see
/// [`new_file_id`]). It is sent with a later event that names it in `data.files`.
#[derive(Clone, Debug)]
pub struct NewChatFile {
    /// 128 random bits in lower-case hex.
    pub id: String,
    pub chat_id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub private: bool,
    pub uploaded_by: Sender,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatFile {
    pub id: String,
    pub chat_id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub private: bool,
    pub uploaded_by: Sender,
    /// The event that sent it; None while it is only uploaded.
    pub event_seq: Option<i64>,
    pub created_at_ms: i64,
}

// ---- checks ----

/// One line of 1–`max` characters, trimmed.
fn check_line(what: &str, v: &str, max: usize) -> Result<String, ChatError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return invalid(format!("{what} needs 1–{max} characters on one line"));
    }
    Ok(v.to_string())
}

fn check_name(what: &str, v: &str) -> Result<String, ChatError> {
    check_line(&format!("a {what} name"), v, MAX_NAME_CHARS)
}

fn check_key(what: &str, v: &str) -> Result<String, ChatError> {
    let ok = !v.is_empty()
        && v.chars().count() <= MAX_KEY_CHARS
        && v.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(v.to_string())
    } else {
        invalid(format!(
            "the {what} needs 1–{MAX_KEY_CHARS} letters, digits or punctuation"
        ))
    }
}

/// An optional line: blank gives "", control characters are refused.
fn check_optional_line(what: &str, v: &str, max: usize) -> Result<String, ChatError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    check_line(what, v, max)
}

/// Text that may have several lines (messages, notes): at most `max` characters, no
/// control characters but line breaks and tabs. Blank is refused unless `may_be_blank`.
fn check_text(what: &str, v: &str, max: usize, may_be_blank: bool) -> Result<(), ChatError> {
    if !may_be_blank && v.trim().is_empty() {
        return invalid(format!("the {what} is empty"));
    }
    if v.chars().count() > max {
        return invalid(format!("the {what} is longer than {max} characters"));
    }
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return invalid(format!("the {what} contains control characters"));
    }
    Ok(())
}

/// An http(s) address (anything else, like `javascript:`, is never shown as a link).
fn check_url(what: &str, v: &str, may_be_blank: bool) -> Result<String, ChatError> {
    let v = v.trim();
    if v.is_empty() && may_be_blank {
        return Ok(String::new());
    }
    let lower = v.to_ascii_lowercase();
    let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
        && v.chars().count() <= MAX_URL_CHARS
        && !v.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(v.to_string())
    } else {
        invalid(format!(
            "the {what} must be an http(s) address of at most {MAX_URL_CHARS} characters"
        ))
    }
}

// ---- tokens and ids ----

/// 128 random bits in hex, from the thread's generator (a CSPRNG seeded by the OS).
fn random_hex() -> String {
    crate::tokens::random_hex::<16>()
}

/// A fresh id for [`NewChatFile::id`] (also the file's name on disk).
pub fn new_file_id() -> String {
    random_hex()
}

fn is_file_id(v: &str) -> bool {
    v.len() == 32
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

// ---- rows ----

fn decode_err(what: &str, v: &str) -> sqlx::Error {
    crate::store::decode_error(&format!("chat {what}"), v)
}

fn flag(r: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(r.try_get::<i64, _>(col)? != 0)
}

/// A user's name for others: the display name, else the login name.
fn shown_name(name: String, display_name: String) -> String {
    if display_name.trim().is_empty() {
        name
    } else {
        display_name
    }
}

const VISITOR_COLUMNS: &str = "id, site, visitor_key, name, email, phone, customer_id, \
     verified_name, verified_email, verified_customer_id, created_at, last_seen_at";

fn visitor_from(r: &AnyRow) -> Result<Visitor, sqlx::Error> {
    let mut verified = Vec::new();
    for (col, field) in [
        ("verified_name", VisitorField::Name),
        ("verified_email", VisitorField::Email),
        ("verified_customer_id", VisitorField::CustomerId),
    ] {
        if flag(r, col)? {
            verified.push(field.as_str().to_string());
        }
    }
    Ok(Visitor {
        id: r.try_get("id")?,
        site: r.try_get("site")?,
        visitor_key: r.try_get("visitor_key")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        customer_id: r.try_get("customer_id")?,
        verified,
        created_at_ms: r.try_get("created_at")?,
        last_seen_at_ms: r.try_get("last_seen_at")?,
    })
}

const CHAT_SELECT: &str = "SELECT c.id, c.site, c.visitor_id, c.queue, c.topic, c.page_url, \
     c.browser, c.os, c.user_agent, c.state, c.for_operator, c.offered_to, c.offered_at, \
     c.offer_expires_at, c.created_at, c.accepted_at, c.ended_at, c.ended_by, c.last_seq \
     FROM chats c";

fn chat_from(r: &AnyRow) -> Result<Chat, sqlx::Error> {
    let state: String = r.try_get("state")?;
    let ended_by: Option<String> = r.try_get("ended_by")?;
    Ok(Chat {
        id: r.try_get("id")?,
        site: r.try_get("site")?,
        visitor_id: r.try_get("visitor_id")?,
        queue: r.try_get("queue")?,
        topic: r.try_get("topic")?,
        page_url: r.try_get("page_url")?,
        browser: r.try_get("browser")?,
        os: r.try_get("os")?,
        user_agent: r.try_get("user_agent")?,
        state: ChatState::parse(&state).ok_or_else(|| decode_err("state", &state))?,
        for_operator: r.try_get("for_operator")?,
        offered_to: r.try_get("offered_to")?,
        offered_at_ms: r.try_get("offered_at")?,
        offer_expires_at_ms: r.try_get("offer_expires_at")?,
        created_at_ms: r.try_get("created_at")?,
        accepted_at_ms: r.try_get("accepted_at")?,
        ended_at_ms: r.try_get("ended_at")?,
        ended_by: ended_by
            .map(|v| SenderKind::parse(&v).ok_or_else(|| decode_err("ender", &v)))
            .transpose()?,
        last_seq: r.try_get("last_seq")?,
    })
}

async fn chat_in(conn: &mut AnyConnection, id: i64) -> Result<Option<Chat>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CHAT_SELECT} WHERE c.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(chat_from).transpose()
}

async fn chats_where(
    conn: &mut AnyConnection,
    filter: &str,
    key: impl for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
) -> Result<Vec<Chat>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CHAT_SELECT} WHERE {filter} ORDER BY c.created_at, c.id"
    )))
    .bind(key)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(chat_from).collect()
}

async fn visitor_in(conn: &mut AnyConnection, id: i64) -> Result<Option<Visitor>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VISITOR_COLUMNS} FROM chat_visitors WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(visitor_from).transpose()
}

/// A web user's shown name and the operator account they work as.
async fn user_in(
    conn: &mut AnyConnection,
    user_id: i64,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    let row = sqlx::query("SELECT name, display_name, operator FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok((
            shown_name(r.try_get("name")?, r.try_get("display_name")?),
            r.try_get("operator")?,
        ))
    })
    .transpose()
}

/// The user's name, after checking they work as `operator`.
async fn user_as_operator(
    conn: &mut AnyConnection,
    user_id: i64,
    operator: &str,
) -> Result<String, ChatError> {
    match user_in(conn, user_id).await? {
        None => invalid(format!("no user with id {user_id}")),
        Some((name, Some(op))) if op == operator => Ok(name),
        Some((name, _)) => invalid(format!("{name} doesn't work as operator {operator:?}")),
    }
}

/// Chats offered to the operator plus chats they are in and haven't left or wrapped up.
async fn load_in(conn: &mut AnyConnection, operator: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM chats WHERE state = 'offered' AND offered_to = $1) \
         + (SELECT COUNT(*) FROM chat_participants WHERE operator = $1 \
            AND left_at IS NULL AND wrapped_up_at IS NULL) AS n",
    )
    .bind(operator)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get::<i64, _>(0)
}

/// `$first, $first+1, …` for an `IN (…)` of `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    // ---- visitors ----

    /// Records the visitor (or finds them again by site and key) and takes the fields
    /// given. A verified flag stays only while its value stays what the site signed.
    pub async fn upsert_visitor(&self, new: &NewVisitor) -> Result<Visitor, ChatError> {
        let site = check_key("site key", &new.site)?;
        let key = check_key("visitor key", &new.visitor_key)?;
        let name = VisitorField::Name.clean(new.name.as_deref())?;
        let email = VisitorField::Email.clean(new.email.as_deref())?;
        let phone = VisitorField::Phone.clean(new.phone.as_deref())?;
        let customer_id = VisitorField::CustomerId.clean(new.customer_id.as_deref())?;
        let mut signed = [false; 3]; // name, email, customer id
        for f in &new.verified {
            let (i, value) = match VisitorField::parse(f) {
                Some(VisitorField::Name) => (0, &name),
                Some(VisitorField::Email) => (1, &email),
                Some(VisitorField::CustomerId) => (2, &customer_id),
                _ => return invalid(format!("the field {f:?} can't be verified")),
            };
            if value.is_none() {
                return invalid(format!("the verified field {f:?} has no value"));
            }
            signed[i] = true;
        }

        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO chat_visitors (site, visitor_key, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (site, visitor_key) DO NOTHING",
        )
        .bind(&site)
        .bind(&key)
        .bind(new.now_ms)
        .execute(&mut *tx)
        .await?;
        // Locks the row (PostgreSQL) so concurrent starts merge one after the other.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE chat_visitors SET last_seen_at = CASE WHEN last_seen_at < $3 THEN $3 \
             ELSE last_seen_at END WHERE site = $1 AND visitor_key = $2 \
             RETURNING {VISITOR_COLUMNS}"
        )))
        .bind(&site)
        .bind(&key)
        .bind(new.now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let old = visitor_from(&row)?;
        // A new value drops the old signature unless this start signed it again.
        let merge = |new: &Option<String>, old: &Option<String>, was: bool, signed: bool| {
            let unchanged = new.is_none() || new == old;
            (
                new.clone().or_else(|| old.clone()),
                signed || (was && unchanged),
            )
        };
        let (name, v_name) = merge(
            &name,
            &old.name,
            old.is_verified(VisitorField::Name),
            signed[0],
        );
        let (email, v_email) = merge(
            &email,
            &old.email,
            old.is_verified(VisitorField::Email),
            signed[1],
        );
        let (customer_id, v_customer_id) = merge(
            &customer_id,
            &old.customer_id,
            old.is_verified(VisitorField::CustomerId),
            signed[2],
        );
        let phone = phone.or(old.phone);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE chat_visitors SET name = $2, email = $3, phone = $4, customer_id = $5, \
             verified_name = $6, verified_email = $7, verified_customer_id = $8 \
             WHERE id = $1 RETURNING {VISITOR_COLUMNS}"
        )))
        .bind(old.id)
        .bind(name)
        .bind(email)
        .bind(phone)
        .bind(customer_id)
        .bind(i64::from(v_name))
        .bind(i64::from(v_email))
        .bind(i64::from(v_customer_id))
        .fetch_one(&mut *tx)
        .await?;
        let visitor = visitor_from(&row)?;
        tx.commit().await?;
        Ok(visitor)
    }

    pub async fn visitor(&self, id: i64) -> Result<Option<Visitor>, ChatError> {
        let mut conn = self.pool().acquire().await?;
        Ok(visitor_in(&mut conn, id).await?)
    }

    // ---- chats ----

    /// A new waiting chat and the visitor's token for it. The token is shown only now:
    /// the store keeps its hash.
    pub async fn create_chat(&self, new: &NewChat) -> Result<(Chat, String), ChatError> {
        let site = check_key("site key", &new.site)?;
        let queue = check_name("queue", &new.queue)?;
        let topic = check_optional_line("the topic", &new.topic, MAX_TOPIC_CHARS)?;
        let page_url = check_url("page address", &new.page_url, true)?;
        let browser = check_optional_line("the browser", &new.browser, MAX_BROWSER_CHARS)?;
        let os = check_optional_line("the operating system", &new.os, MAX_BROWSER_CHARS)?;
        let user_agent =
            check_optional_line("the user agent", &new.user_agent, MAX_USER_AGENT_CHARS)?;
        let token = random_hex();

        let mut tx = self.pool().begin().await?;
        let Some(visitor) = visitor_in(&mut tx, new.visitor_id).await? else {
            return Err(ChatError::NotFound);
        };
        if visitor.site != site {
            return invalid("the visitor belongs to another site");
        }
        let row = sqlx::query(
            "INSERT INTO chats (site, visitor_id, queue, topic, page_url, browser, os, \
             user_agent, token_hash, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'waiting', $10) RETURNING id",
        )
        .bind(&site)
        .bind(visitor.id)
        .bind(&queue)
        .bind(&topic)
        .bind(&page_url)
        .bind(&browser)
        .bind(&os)
        .bind(&user_agent)
        .bind(sha256_hex(&token))
        .bind(new.now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        let chat = chat_in(&mut tx, id).await?.ok_or(ChatError::NotFound)?;
        tx.commit().await?;
        Ok((chat, token))
    }

    pub async fn chat(&self, id: i64) -> Result<Option<Chat>, ChatError> {
        let mut conn = self.reader().acquire().await?;
        Ok(chat_in(&mut conn, id).await?)
    }

    /// The chat a visitor's token opens, in any state (an ended chat still shows its
    /// transcript).
    pub async fn chat_by_token(&self, token: &str) -> Result<Option<Chat>, ChatError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Ok(None);
        }
        let mut conn = self.reader().acquire().await?;
        let mut chats = chats_where(&mut conn, "c.token_hash = $1", sha256_hex(token)).await?;
        Ok(chats.pop())
    }

    /// Chats waiting for an operator, oldest first (a chat keeps its place when an offer
    /// comes back or it is transferred). `_now_ms` is unused: offers that have run out are
    /// put back by [`Store::expire_offers`], which also says whom to tell.
    pub async fn waiting_chats(&self, _now_ms: i64) -> Result<Vec<Chat>, ChatError> {
        let mut conn = self.reader().acquire().await?;
        Ok(chats_where(
            &mut conn,
            "c.state = $1",
            ChatState::Waiting.as_str().to_string(),
        )
        .await?)
    }

    /// Chats not ended (waiting, offered, active), oldest first: `hotline show chats`.
    pub async fn open_chats(&self) -> Result<Vec<Chat>, ChatError> {
        let mut conn = self.reader().acquire().await?;
        Ok(chats_where(
            &mut conn,
            "c.state <> $1",
            ChatState::Ended.as_str().to_string(),
        )
        .await?)
    }

    /// The chat's place (1-based) among the waiting and offered chats of its queue; None
    /// once it is active or ended.
    pub async fn queue_position(&self, chat_id: i64) -> Result<Option<i64>, ChatError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM chats c, \
             (SELECT queue, created_at, id FROM chats WHERE id = $1 \
              AND state IN ('waiting', 'offered')) me \
             WHERE c.queue = me.queue AND c.state IN ('waiting', 'offered') \
             AND (c.created_at < me.created_at OR (c.created_at = me.created_at AND c.id <= me.id))",
        )
        .bind(chat_id)
        .fetch_one(self.reader())
        .await?;
        let n: i64 = row.try_get(0)?;
        Ok((n > 0).then_some(n))
    }

    /// Every waiting or offered chat with its state and its place in its queue (1-based,
    /// oldest first): one query for the visitors' "you are number N".
    pub async fn queue_positions(&self) -> Result<Vec<(i64, ChatState, i64)>, ChatError> {
        let rows = sqlx::query(
            "SELECT id, state, ROW_NUMBER() OVER (PARTITION BY queue ORDER BY created_at, id) \
             AS position FROM chats WHERE state IN ('waiting', 'offered')",
        )
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let state: String = r.try_get("state")?;
            let state = ChatState::parse(&state).ok_or_else(|| decode_err("state", &state))?;
            out.push((r.try_get("id")?, state, r.try_get("position")?));
        }
        Ok(out)
    }

    /// Open chats by queue and state (waiting, offered, active), for the `/metrics`
    /// gauges; pairs with none are left out.
    pub async fn chat_counts(&self) -> Result<Vec<(String, ChatState, i64)>, ChatError> {
        let rows = sqlx::query(
            "SELECT queue, state, COUNT(*) FROM chats \
             WHERE state IN ('waiting', 'offered', 'active') GROUP BY queue, state",
        )
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let state: String = r.try_get(1)?;
            let state = ChatState::parse(&state).ok_or_else(|| decode_err("state", &state))?;
            out.push((r.try_get(0)?, state, r.try_get(2)?));
        }
        Ok(out)
    }

    /// Chats offered to the operator plus chats they are in and haven't left or wrapped
    /// up.
    pub async fn chat_load(&self, operator: &str) -> Result<i64, ChatError> {
        let mut conn = self.pool().acquire().await?;
        Ok(load_in(&mut conn, operator).await?)
    }

    /// The operator's load (as `chat_load`) and their capacity (0 for no such operator):
    /// the offer loop skips operators without room before it reads the waiting chats.
    pub async fn chat_room(&self, operator: &str) -> Result<(i64, i64), ChatError> {
        let mut conn = self.reader().acquire().await?;
        let capacity = match sqlx::query("SELECT chat_capacity FROM operators WHERE name = $1")
            .bind(operator)
            .fetch_optional(&mut *conn)
            .await?
        {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        Ok((load_in(&mut conn, operator).await?, capacity))
    }

    /// Chats the user is in and hasn't left or wrapped up (their console's tabs).
    pub async fn operator_chats(&self, user_id: i64) -> Result<Vec<Chat>, ChatError> {
        let mut conn = self.pool().acquire().await?;
        Ok(chats_where(
            &mut conn,
            "c.id IN (SELECT chat_id FROM chat_participants WHERE user_id = $1 \
             AND left_at IS NULL AND wrapped_up_at IS NULL)",
            user_id,
        )
        .await?)
    }

    /// Chats offered to the operator now (a reconnecting console shows them again).
    pub async fn offered_chats(&self, operator: &str) -> Result<Vec<Chat>, ChatError> {
        let mut conn = self.pool().acquire().await?;
        Ok(chats_where(
            &mut conn,
            "c.state = 'offered' AND c.offered_to = $1",
            operator.to_string(),
        )
        .await?)
    }

    /// Everyone who has been in the chat, in the order they joined.
    pub async fn chat_participants(&self, chat_id: i64) -> Result<Vec<Participant>, ChatError> {
        let rows = sqlx::query(
            "SELECT p.chat_id, p.user_id, p.operator, u.name, u.display_name, p.joined_at, \
             p.left_at, p.wrapped_up_at, p.wrap_up_category, p.wrap_up_note \
             FROM chat_participants p JOIN users u ON u.id = p.user_id \
             WHERE p.chat_id = $1 ORDER BY p.id",
        )
        .bind(chat_id)
        .fetch_all(self.reader())
        .await?;
        let participants = rows
            .iter()
            .map(|r| {
                Ok(Participant {
                    chat_id: r.try_get("chat_id")?,
                    user_id: r.try_get("user_id")?,
                    operator: r.try_get("operator")?,
                    name: shown_name(r.try_get("name")?, r.try_get("display_name")?),
                    joined_at_ms: r.try_get("joined_at")?,
                    left_at_ms: r.try_get("left_at")?,
                    wrapped_up_at_ms: r.try_get("wrapped_up_at")?,
                    wrap_up_category: r.try_get("wrap_up_category")?,
                    wrap_up_note: r.try_get("wrap_up_note")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(participants)
    }

    /// The operators a chat's news goes to: those still in it and the one it is offered
    /// to (one query: this runs for every message).
    pub async fn chat_listeners(&self, chat_id: i64) -> Result<Vec<String>, ChatError> {
        let rows = sqlx::query(
            "SELECT operator FROM chat_participants \
             WHERE chat_id = $1 AND left_at IS NULL AND wrapped_up_at IS NULL \
             UNION SELECT offered_to FROM chats WHERE id = $1 AND offered_to IS NOT NULL",
        )
        .bind(chat_id)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Operators who won't be offered the chat again (rejected, let it expire, or
    /// transferred it away).
    pub async fn chat_declines(&self, chat_id: i64) -> Result<Vec<String>, ChatError> {
        let rows =
            sqlx::query("SELECT operator FROM chat_declines WHERE chat_id = $1 ORDER BY operator")
                .bind(chat_id)
                .fetch_all(self.reader())
                .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http() {
        assert!(check_url("page", "https://example.com/a?b=c", false).is_ok());
        assert!(check_url("page", "HTTP://example.com", false).is_ok());
        assert!(check_url("page", "", true).is_ok());
        for bad in [
            "",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://exa mple.com",
            "ftp://x",
        ] {
            assert!(check_url("page", bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_ids_are_128_bit_hex() {
        let id = new_file_id();
        assert!(is_file_id(&id), "{id}");
        assert_ne!(id, new_file_id());
        assert!(!is_file_id("../../etc/passwd"));
        assert!(!is_file_id(&id.to_uppercase()));
    }

    #[test]
    fn text_checks() {
        assert!(check_text("message", "hi\nthere\t!", 10, false).is_ok());
        assert!(check_text("message", "  ", 10, false).is_err());
        assert!(check_text("message", "a\0b", 10, false).is_err());
        assert!(check_text("message", &"é".repeat(11), 10, false).is_err());
        assert_eq!(check_line("tag", "  vip ", 40).ok().as_deref(), Some("vip"));
        assert!(check_line("tag", "a\nb", 40).is_err());
    }
}
