//! Visual sessions (seed 000, PRODUCT W3/W4): an operator invites a customer by SMS or
//! e-mail to a page that shares the customer's camera, with chat, photos and snapshots.
//!
//! - Licenses hold a credit balance; a session costs 1 credit, charged by one conditional
//!   `UPDATE`, so two sessions racing for the last credit can't both get it. Every top-up
//!   and charge is kept in the license's history.
//! - One open session per operator (a partial UNIQUE index backs the check). A session the
//!   operator leaves without closing stays open for `SESSION_IDLE_MS` after the operator's
//!   last activity, then ends by itself (reason `expired`). Expiry is applied lazily by
//!   every call that reads or changes a session, on the clock the caller passes in.
//! - The customer's link carries a random token (192 bits from the OS generator), handed
//!   out once; only its SHA-256 is stored.
//! - Chat messages get a per-session sequence number when stored; a resent message with
//!   the same client id is not stored twice.
//!
//! Sending the SMS or e-mail is the notifications' job; this module only records.

use rand::TryRngCore;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, FromRow, Row};

use crate::address::{PhoneError, parse_hu_mobile};
use crate::store::{Backend, Store, StoreError, fetch_by_id, text_column};
use crate::tokens::{base64url, hex, sha256_hex};

/// How long an open session outlives the operator's last activity (seed 000: 1 hour).
pub const SESSION_IDLE_MS: i64 = 3_600_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

pub const MAX_CASE_NUMBER_CHARS: usize = 64;
pub use crate::address::MAX_EMAIL_CHARS;
pub const MAX_LICENSE_NAME_CHARS: usize = 100;
pub const MAX_MESSAGE_CHARS: usize = 4000;
pub const MAX_CLIENT_ID_CHARS: usize = 100;
/// A license can't be given more than this at once (a typo guard).
pub const MAX_TOP_UP: i64 = 1_000_000;

/// Case numbers we generate: no 0/O/1/I, which read alike on a phone call.
const CASE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CASE_NUMBER_LEN: usize = 8;
/// Random bytes in a link token (192 bits; 32 URL-safe characters).
const TOKEN_BYTES: usize = 24;
/// Longer "tokens" from a URL aren't ours; don't bother hashing them.
const MAX_TOKEN_CHARS: usize = 128;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InviteChannel {
    #[default]
    Sms,
    Email,
}

impl InviteChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            InviteChannel::Sms => "sms",
            InviteChannel::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<InviteChannel> {
        [InviteChannel::Sms, InviteChannel::Email]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// The invitation is out; the customer hasn't opened the link yet.
    Invited,
    Joined,
    Ended,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Invited => "invited",
            SessionState::Joined => "joined",
            SessionState::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<SessionState> {
        [
            SessionState::Invited,
            SessionState::Joined,
            SessionState::Ended,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    OperatorClosed,
    /// The operator left it open and was inactive for `SESSION_IDLE_MS`.
    Expired,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::OperatorClosed => "operator_closed",
            EndReason::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<EndReason> {
        [EndReason::OperatorClosed, EndReason::Expired]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    Operator,
    Customer,
}

text_column!(InviteChannel, "visual session channel");
text_column!(SessionState, "visual session state");
text_column!(EndReason, "visual session end reason");
text_column!(LicenseEntryKind, "license entry kind");
text_column!(Party, "visual message sender");

impl Party {
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Operator => "operator",
            Party::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Party> {
        [Party::Operator, Party::Customer]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Sent by the customer from the phone.
    Photo,
    /// Taken by the operator from the customer's video.
    Snapshot,
}

text_column!(FileKind, "visual file kind");

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Photo => "photo",
            FileKind::Snapshot => "snapshot",
        }
    }

    pub fn parse(s: &str) -> Option<FileKind> {
        [FileKind::Photo, FileKind::Snapshot]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenseEntryKind {
    TopUp,
    Charge,
}

impl LicenseEntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseEntryKind::TopUp => "top_up",
            LicenseEntryKind::Charge => "charge",
        }
    }

    pub fn parse(s: &str) -> Option<LicenseEntryKind> {
        [LicenseEntryKind::TopUp, LicenseEntryKind::Charge]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct License {
    pub id: i64,
    pub name: String,
    pub credits: i64,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

/// One change of a license's balance.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LicenseEntry {
    pub id: i64,
    pub license_id: i64,
    pub kind: LicenseEntryKind,
    /// Positive for a top-up, -1 for a session's charge.
    pub amount: i64,
    pub balance_after: i64,
    /// Who topped up, or whose session was charged (None: the license's opening credits).
    pub user_id: Option<i64>,
    pub user_name: Option<String>,
    pub session_id: Option<i64>,
    pub case_number: Option<String>,
    #[sqlx(rename = "created_at")]
    pub at_ms: i64,
}

/// Limits on invitations by SMS. Windows are rolling (the last 60 minutes, the last 24
/// hours): the core knows no time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsLimits {
    pub per_operator_per_hour: u32,
    pub per_number_per_day: u32,
}

impl Default for SmsLimits {
    fn default() -> Self {
        SmsLimits {
            per_operator_per_hour: 30,
            per_number_per_day: 5,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsLimitScope {
    PerOperatorPerHour,
    PerNumberPerDay,
}

/// What the invitation form sends. The channel decides which of `phone` and `email` is
/// used; the other is ignored.
#[derive(Clone, Debug, Default)]
pub struct NewVisualSession {
    /// The web user (`users.id`) who invites.
    pub operator_user_id: i64,
    pub license_id: i64,
    pub channel: InviteChannel,
    /// The operator's own case or claim number; None or blank: a random one is made.
    pub case_number: Option<String>,
    /// As typed; parsed with `parse_hu_mobile` and stored in E.164.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub sms_limits: SmsLimits,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct VisualSession {
    pub id: i64,
    pub operator_user_id: i64,
    pub license_id: i64,
    pub license_name: String,
    pub case_number: String,
    pub channel: InviteChannel,
    /// E.164, for SMS invitations.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub state: SessionState,
    pub end_reason: Option<EndReason>,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
    #[sqlx(rename = "joined_at")]
    pub joined_at_ms: Option<i64>,
    #[sqlx(rename = "ended_at")]
    pub ended_at_ms: Option<i64>,
    #[sqlx(rename = "last_activity_at")]
    pub last_activity_at_ms: i64,
}

impl VisualSession {
    /// The customer's phone number or e-mail address.
    pub fn customer(&self) -> &str {
        self.phone
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or("")
    }

    /// When an open session ends by itself unless the operator shows activity.
    pub fn expires_at_ms(&self) -> Option<i64> {
        (self.state != SessionState::Ended).then_some(self.last_activity_at_ms + SESSION_IDLE_MS)
    }

    pub fn is_open_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms().is_some_and(|at| now_ms < at)
    }
}

/// A new session and its link token. The token is shown only now: the store keeps its
/// hash, so it can't be read back.
#[derive(Clone, Debug)]
pub struct CreatedSession {
    pub session: VisualSession,
    pub token: String,
}

/// A line of the operator's "last sessions" table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: i64,
    pub case_number: String,
    pub created_at_ms: i64,
    /// From the customer joining to the end; None if they never joined or it is open.
    pub duration_ms: Option<i64>,
    pub channel: InviteChannel,
    /// Phone number (E.164) or e-mail address.
    pub customer: String,
    pub license_name: String,
    pub state: SessionState,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct VisualMessage {
    pub id: i64,
    pub session_id: i64,
    /// 1, 2, 3… within the session, in the order stored.
    pub seq: i64,
    #[sqlx(rename = "sender")]
    pub from: Party,
    #[sqlx(rename = "body")]
    pub text: String,
    pub client_id: Option<String>,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct VisualFile {
    /// 128 random bits in hex; also the file's name on disk.
    pub id: String,
    pub session_id: i64,
    pub kind: FileKind,
    pub content_type: String,
    pub size: i64,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

/// Messages are written for the operator's page and can be shown as they are.
#[derive(Debug, thiserror::Error)]
pub enum VisualError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Phone(#[from] PhoneError),
    #[error("you already have an active session (no. {id}): close it before starting a new one")]
    ActiveSession { id: i64 },
    #[error("the license “{license}” has no credits left: ask an administrator to top it up")]
    NoCredits { license: String },
    #[error("you may not use this license: pick another one or ask an administrator")]
    LicenseNotAllowed,
    #[error("no such license")]
    LicenseNotFound,
    #[error("a license named “{0}” already exists")]
    LicenseExists(String),
    #[error("no such user")]
    UserNotFound,
    #[error("{}", sms_limit_message(*scope, *max))]
    SmsLimit { scope: SmsLimitScope, max: u32 },
    #[error("no such session")]
    NotFound,
    #[error("this session has ended")]
    Ended,
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for VisualError {
    fn from(e: sqlx::Error) -> Self {
        VisualError::Store(e.into())
    }
}

fn sms_limit_message(scope: SmsLimitScope, max: u32) -> String {
    match scope {
        SmsLimitScope::PerOperatorPerHour => format!(
            "SMS limit reached: an operator may send at most {max} SMS invitations an hour; \
             wait a little or invite by e-mail"
        ),
        SmsLimitScope::PerNumberPerDay => format!(
            "SMS limit reached: one number may get at most {max} SMS invitations a day; \
             invite by e-mail or try again later"
        ),
    }
}

fn validate_case_number(v: &str) -> Result<String, VisualError> {
    if v.chars().count() > MAX_CASE_NUMBER_CHARS {
        return Err(VisualError::Invalid(format!(
            "the case number is longer than {MAX_CASE_NUMBER_CHARS} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(VisualError::Invalid(
            "the case number can't contain line breaks or tabs".into(),
        ));
    }
    Ok(v.to_string())
}

fn validate_license_name(v: &str) -> Result<String, VisualError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > MAX_LICENSE_NAME_CHARS || v.chars().any(char::is_control)
    {
        return Err(VisualError::Invalid(format!(
            "a license name needs 1–{MAX_LICENSE_NAME_CHARS} characters on one line"
        )));
    }
    Ok(v.to_string())
}

fn validate_credits(credits: i64, min: i64) -> Result<(), VisualError> {
    if (min..=MAX_TOP_UP).contains(&credits) {
        Ok(())
    } else {
        Err(VisualError::Invalid(format!(
            "credits {credits}: give a whole number from {min} to {MAX_TOP_UP}"
        )))
    }
}

/// A readable random case number: 8 of `A–Z` and `2–9` without O and I.
pub fn generate_case_number() -> String {
    // Not a secret, so the thread generator does.
    let bytes: [u8; CASE_NUMBER_LEN] = rand::random();
    bytes
        .iter()
        .map(|b| char::from(CASE_ALPHABET[usize::from(b % 32)]))
        .collect()
}

fn os_random<const N: usize>() -> Result<[u8; N], VisualError> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| VisualError::Random(e.to_string()))?;
    Ok(bytes)
}

fn decode_err(what: &str, v: &str) -> sqlx::Error {
    crate::store::decode_error(&format!("visual session {what}"), v)
}

const SESSION_SELECT: &str = "SELECT s.id, s.operator_user_id, s.license_id, \
     l.name AS license_name, s.case_number, s.channel, s.phone, s.email, s.state, \
     s.end_reason, s.created_at, s.joined_at, s.ended_at, s.last_activity_at \
     FROM visual_sessions s JOIN licenses l ON l.id = s.license_id";

const MESSAGE_COLUMNS: &str = "id, session_id, seq, sender, body, client_id, created_at";

const FILE_COLUMNS: &str = "id, session_id, kind, content_type, size, created_at";

/// Which open sessions an expiry pass looks at.
#[derive(Clone, Copy)]
enum Scope {
    All,
    Operator(i64),
    Session(i64),
}

/// Ends the open sessions in `scope` whose operator has been inactive for
/// `SESSION_IDLE_MS`. They end when the hour ran out, not when someone noticed.
async fn expire(conn: &mut AnyConnection, scope: Scope, now_ms: i64) -> Result<u64, sqlx::Error> {
    let base = "UPDATE visual_sessions SET state = 'ended', end_reason = 'expired', \
         ended_at = last_activity_at + $1 WHERE state <> 'ended' AND last_activity_at <= $2";
    let cutoff = now_ms - SESSION_IDLE_MS;
    let result = match scope {
        Scope::All => {
            sqlx::query(base)
                .bind(SESSION_IDLE_MS)
                .bind(cutoff)
                .execute(&mut *conn)
                .await?
        }
        Scope::Operator(id) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{base} AND operator_user_id = $3"
            )))
            .bind(SESSION_IDLE_MS)
            .bind(cutoff)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        Scope::Session(id) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("{base} AND id = $3")))
                .bind(SESSION_IDLE_MS)
                .bind(cutoff)
                .bind(id)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(result.rows_affected())
}

async fn session_in(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<VisualSession>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!("{SESSION_SELECT} WHERE s.id = $1"));
    fetch_by_id(conn, sql, id).await
}

async fn open_session_id(
    conn: &mut AnyConnection,
    user_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id FROM visual_sessions WHERE operator_user_id = $1 AND state <> 'ended'",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.try_get::<i64, _>(0)).transpose()
}

/// Why a change to session `id` touched no row: it doesn't exist, or it has ended.
async fn not_open(conn: &mut AnyConnection, id: i64) -> VisualError {
    match session_in(conn, id).await {
        Ok(None) => VisualError::NotFound,
        Ok(Some(_)) => VisualError::Ended,
        Err(e) => e.into(),
    }
}

/// Marks activity on an open session (the operator's when `by_operator`) after applying
/// the expiry; the session row stays locked until the transaction ends on PostgreSQL.
/// Returns the session's newest message sequence number, incremented when `next_seq`.
async fn lock_open_session(
    conn: &mut AnyConnection,
    id: i64,
    now_ms: i64,
    by_operator: bool,
    next_seq: bool,
) -> Result<i64, VisualError> {
    expire(conn, Scope::Session(id), now_ms).await?;
    let row = sqlx::query(
        "UPDATE visual_sessions SET \
         last_seq = last_seq + $2, \
         last_activity_at = CASE WHEN $3 = 1 AND last_activity_at < $4 THEN $4 \
                            ELSE last_activity_at END \
         WHERE id = $1 AND state <> 'ended' RETURNING last_seq",
    )
    .bind(id)
    .bind(i64::from(next_seq))
    .bind(i64::from(by_operator))
    .bind(now_ms)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => Ok(r.try_get::<i64, _>(0)?),
        None => Err(not_open(conn, id).await),
    }
}

/// Ends a refused change. When the refusal is that the session has ended, the expiry
/// noticed on the way is kept (dropping `tx` would roll it back).
async fn refuse<T>(
    tx: sqlx::Transaction<'static, sqlx::Any>,
    e: VisualError,
) -> Result<T, VisualError> {
    if matches!(e, VisualError::Ended) {
        tx.commit().await?;
    }
    Err(e)
}

/// How many SMS invitations matched `filter` (binding $1) since `since_ms`.
async fn sms_count(
    conn: &mut AnyConnection,
    filter: &str,
    key: impl for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    since_ms: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM visual_sessions WHERE {filter} AND channel = 'sms' \
         AND created_at > $2"
    )))
    .bind(key)
    .bind(since_ms)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get::<i64, _>(0)
}

/// A PostgreSQL advisory lock key for SMS limits on one number, so two invitations to
/// the same number from different operators are counted one after the other.
fn sms_lock_key(phone: &str) -> i64 {
    let digest = Sha256::digest(format!("hotline.visual.sms:{phone}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

impl Store {
    // ---- licenses ----

    /// A new license with its opening credits (recorded as the first top-up).
    pub async fn add_license(
        &self,
        name: &str,
        credits: i64,
        now_ms: i64,
    ) -> Result<i64, VisualError> {
        let name = validate_license_name(name)?;
        validate_credits(credits, 0)?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "INSERT INTO licenses (name, credits, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&name)
        .bind(credits)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                VisualError::LicenseExists(name.clone())
            }
            _ => e.into(),
        })?;
        let id: i64 = row.try_get(0)?;
        if credits > 0 {
            sqlx::query(
                "INSERT INTO license_entries (license_id, kind, amount, balance_after, created_at) \
                 VALUES ($1, $2, $3, $3, $4)",
            )
            .bind(id)
            .bind(LicenseEntryKind::TopUp.as_str())
            .bind(credits)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn licenses(&self) -> Result<Vec<License>, StoreError> {
        let rows = sqlx::query("SELECT id, name, credits, created_at FROM licenses ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(License::from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn license(&self, id: i64) -> Result<Option<License>, StoreError> {
        Ok(fetch_by_id(
            self.pool(),
            "SELECT id, name, credits, created_at FROM licenses WHERE id = $1",
            id,
        )
        .await?)
    }

    /// Adds credits; returns the new balance.
    pub async fn top_up_license(
        &self,
        license_id: i64,
        credits: i64,
        by_user_id: i64,
        now_ms: i64,
    ) -> Result<i64, VisualError> {
        validate_credits(credits, 1)?;
        let mut tx = self.pool().begin().await?;
        let user = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind(by_user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Err(VisualError::UserNotFound);
        }
        // One statement, so concurrent top-ups and charges all count.
        let row = sqlx::query(
            "UPDATE licenses SET credits = credits + $1 WHERE id = $2 RETURNING credits",
        )
        .bind(credits)
        .bind(license_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(VisualError::LicenseNotFound);
        };
        let balance: i64 = row.try_get(0)?;
        sqlx::query(
            "INSERT INTO license_entries (license_id, kind, amount, balance_after, user_id, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(license_id)
        .bind(LicenseEntryKind::TopUp.as_str())
        .bind(credits)
        .bind(balance)
        .bind(by_user_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// Top-ups and charges, newest first.
    pub async fn license_history(&self, license_id: i64) -> Result<Vec<LicenseEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.license_id, e.kind, e.amount, e.balance_after, e.user_id, \
             u.name AS user_name, e.session_id, s.case_number, e.created_at \
             FROM license_entries e \
             LEFT JOIN users u ON u.id = e.user_id \
             LEFT JOIN visual_sessions s ON s.id = e.session_id \
             WHERE e.license_id = $1 ORDER BY e.id DESC",
        )
        .bind(license_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(LicenseEntry::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Lets a user charge a license (granting twice is fine).
    pub async fn grant_license(&self, user_id: i64, license_id: i64) -> Result<(), VisualError> {
        let user = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        if user.is_none() {
            return Err(VisualError::UserNotFound);
        }
        if self.license(license_id).await?.is_none() {
            return Err(VisualError::LicenseNotFound);
        }
        sqlx::query(
            "INSERT INTO license_users (user_id, license_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(license_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Returns whether the user had the license. Open sessions keep running.
    pub async fn revoke_license(&self, user_id: i64, license_id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM license_users WHERE user_id = $1 AND license_id = $2")
            .bind(user_id)
            .bind(license_id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The licenses a user may charge, with their balance (the invitation's drop-down).
    pub async fn licenses_for_user(&self, user_id: i64) -> Result<Vec<License>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.id, l.name, l.credits, l.created_at FROM licenses l \
             JOIN license_users g ON g.license_id = l.id WHERE g.user_id = $1 ORDER BY l.name",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(License::from_row)
            .collect::<Result<_, _>>()?)
    }

    // ---- sessions ----

    /// Checks the form, charges the license 1 credit and records the session, all in one
    /// transaction: a refusal writes nothing. The token in the answer goes into the link.
    /// Links the operator's session `id` to the call it was invited from (the call
    /// panel's "Send visual session invite"); `false`: not their session.
    pub async fn link_visual_session_to_call(
        &self,
        id: i64,
        operator_user_id: i64,
        call_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE visual_sessions SET call_id = $1 WHERE id = $2 AND operator_user_id = $3",
        )
        .bind(call_id)
        .bind(id)
        .bind(operator_user_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The visual sessions invited from call `call_id`: id, case number and state, oldest
    /// first.
    pub async fn visual_sessions_of_call(
        &self,
        call_id: &str,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, case_number, state FROM visual_sessions WHERE call_id = $1 ORDER BY id",
        )
        .bind(call_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    pub async fn create_visual_session(
        &self,
        new: &NewVisualSession,
    ) -> Result<CreatedSession, VisualError> {
        let now_ms = new.now_ms;
        let user_id = new.operator_user_id;
        let (phone, email) = match new.channel {
            InviteChannel::Sms => {
                let raw = new.phone.as_deref().unwrap_or("");
                (Some(parse_hu_mobile(raw)?), None)
            }
            InviteChannel::Email => {
                let raw = new.email.as_deref().unwrap_or("");
                (
                    None,
                    Some(
                        crate::address::validate_email(raw)
                            .map_err(|e| VisualError::Invalid(e.to_string()))?,
                    ),
                )
            }
        };
        let case_number = match new.case_number.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() => validate_case_number(c)?,
            _ => generate_case_number(),
        };
        let token = base64url(&os_random::<TOKEN_BYTES>()?);

        let mut tx = self.pool().begin().await?;
        expire(&mut tx, Scope::Operator(user_id), now_ms).await?;
        if let Some(id) = open_session_id(&mut tx, user_id).await? {
            return Err(VisualError::ActiveSession { id });
        }
        let license = sqlx::query("SELECT name FROM licenses WHERE id = $1")
            .bind(new.license_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(license) = license else {
            return Err(VisualError::LicenseNotFound);
        };
        let license_name: String = license.try_get(0)?;
        let granted =
            sqlx::query("SELECT user_id FROM license_users WHERE user_id = $1 AND license_id = $2")
                .bind(user_id)
                .bind(new.license_id)
                .fetch_optional(&mut *tx)
                .await?;
        if granted.is_none() {
            return Err(VisualError::LicenseNotAllowed);
        }
        if let Some(phone) = &phone {
            if self.backend() == Backend::Postgres {
                // Held to the end of the transaction; see `sms_lock_key`. (An operator's
                // own invitations are serialised by the one-open-session index.)
                sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(sms_lock_key(phone))
                    .execute(&mut *tx)
                    .await?;
            }
            let limits = new.sms_limits;
            let by_operator =
                sms_count(&mut tx, "operator_user_id = $1", user_id, now_ms - HOUR_MS).await?;
            if by_operator >= i64::from(limits.per_operator_per_hour) {
                return Err(VisualError::SmsLimit {
                    scope: SmsLimitScope::PerOperatorPerHour,
                    max: limits.per_operator_per_hour,
                });
            }
            let to_number =
                sms_count(&mut tx, "phone = $1", phone.clone(), now_ms - DAY_MS).await?;
            if to_number >= i64::from(limits.per_number_per_day) {
                return Err(VisualError::SmsLimit {
                    scope: SmsLimitScope::PerNumberPerDay,
                    max: limits.per_number_per_day,
                });
            }
        }
        // The charge: one conditional statement, so the last credit goes to one session
        // only (PostgreSQL's row lock makes a concurrent one re-check `credits > 0`).
        let charged = sqlx::query(
            "UPDATE licenses SET credits = credits - 1 WHERE id = $1 AND credits > 0 \
             RETURNING credits",
        )
        .bind(new.license_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(charged) = charged else {
            return Err(VisualError::NoCredits {
                license: license_name,
            });
        };
        let balance: i64 = charged.try_get(0)?;
        let inserted = sqlx::query(
            "INSERT INTO visual_sessions (operator_user_id, license_id, case_number, channel, \
             phone, email, token_hash, state, created_at, last_activity_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(user_id)
        .bind(new.license_id)
        .bind(&case_number)
        .bind(new.channel.as_str())
        .bind(phone.as_deref())
        .bind(email.as_deref())
        .bind(sha256_hex(&token))
        .bind(SessionState::Invited.as_str())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            // The same operator's concurrent invitation won the one-open-session index.
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                drop(tx);
                let mut conn = self.pool().acquire().await?;
                return Err(match open_session_id(&mut conn, user_id).await? {
                    Some(id) => VisualError::ActiveSession { id },
                    None => VisualError::Store(sqlx::Error::Database(d).into()),
                });
            }
            Err(e) => return Err(e.into()),
        };
        sqlx::query(
            "INSERT INTO license_entries (license_id, kind, amount, balance_after, user_id, \
             session_id, created_at) VALUES ($1, $2, -1, $3, $4, $5, $6)",
        )
        .bind(new.license_id)
        .bind(LicenseEntryKind::Charge.as_str())
        .bind(balance)
        .bind(user_id)
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CreatedSession {
            session: VisualSession {
                id,
                operator_user_id: user_id,
                license_id: new.license_id,
                license_name,
                case_number,
                channel: new.channel,
                phone,
                email,
                state: SessionState::Invited,
                end_reason: None,
                created_at_ms: now_ms,
                joined_at_ms: None,
                ended_at_ms: None,
                last_activity_at_ms: now_ms,
            },
            token,
        })
    }

    /// The operator's open session, after ending it if it has expired (the home page's
    /// "back to the session" box).
    pub async fn active_visual_session(
        &self,
        user_id: i64,
        now_ms: i64,
    ) -> Result<Option<VisualSession>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        expire(&mut conn, Scope::Operator(user_id), now_ms).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SESSION_SELECT} WHERE s.operator_user_id = $1 AND s.state <> 'ended'"
        )))
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.as_ref().map(VisualSession::from_row).transpose()?)
    }

    /// The session as stored (no expiry applied: see `VisualSession::is_open_at`).
    pub async fn visual_session(&self, id: i64) -> Result<Option<VisualSession>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        Ok(session_in(&mut conn, id).await?)
    }

    /// The open session a customer's link token opens. Unknown, ended and expired tokens
    /// all give None: the customer sees one "this link is no longer valid" page.
    pub async fn visual_session_by_token(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<VisualSession>, StoreError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SESSION_SELECT} WHERE s.token_hash = $1"
        )))
        .bind(sha256_hex(token))
        .fetch_optional(self.pool())
        .await?;
        let Some(session) = row.as_ref().map(VisualSession::from_row).transpose()? else {
            return Ok(None);
        };
        if session.state == SessionState::Ended {
            return Ok(None);
        }
        if !session.is_open_at(now_ms) {
            let mut conn = self.pool().acquire().await?;
            expire(&mut conn, Scope::Session(session.id), now_ms).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// The operator's page is open: the hour of grace starts again from `now_ms`.
    pub async fn touch_visual_session(
        &self,
        id: i64,
        now_ms: i64,
    ) -> Result<VisualSession, VisualError> {
        let mut tx = self.pool().begin().await?;
        if let Err(e) = lock_open_session(&mut tx, id, now_ms, true, false).await {
            return refuse(tx, e).await;
        }
        let session = session_in(&mut tx, id)
            .await?
            .ok_or(VisualError::NotFound)?;
        tx.commit().await?;
        Ok(session)
    }

    /// The customer opened the link. Joining again (a reload) keeps the first time.
    pub async fn mark_visual_session_joined(
        &self,
        id: i64,
        now_ms: i64,
    ) -> Result<VisualSession, VisualError> {
        let mut tx = self.pool().begin().await?;
        expire(&mut tx, Scope::Session(id), now_ms).await?;
        sqlx::query(
            "UPDATE visual_sessions SET state = 'joined', joined_at = $2 \
             WHERE id = $1 AND state = 'invited'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let session = session_in(&mut tx, id)
            .await?
            .ok_or(VisualError::NotFound)?;
        if session.state == SessionState::Ended {
            return refuse(tx, VisualError::Ended).await;
        }
        tx.commit().await?;
        Ok(session)
    }

    /// The operator closes the session. Closing an ended one changes nothing and returns
    /// it as it ended (also when it had expired first).
    pub async fn end_visual_session(
        &self,
        id: i64,
        now_ms: i64,
    ) -> Result<VisualSession, VisualError> {
        let mut tx = self.pool().begin().await?;
        expire(&mut tx, Scope::Session(id), now_ms).await?;
        sqlx::query(
            "UPDATE visual_sessions SET state = 'ended', end_reason = $2, ended_at = $3 \
             WHERE id = $1 AND state <> 'ended'",
        )
        .bind(id)
        .bind(EndReason::OperatorClosed.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let session = session_in(&mut tx, id)
            .await?
            .ok_or(VisualError::NotFound)?;
        tx.commit().await?;
        Ok(session)
    }

    /// Ends every expired session; returns how many. For a periodic sweep: the calls
    /// above also expire what they touch.
    pub async fn expire_visual_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.pool().acquire().await?;
        Ok(expire(&mut conn, Scope::All, now_ms).await?)
    }

    /// The operator's latest sessions, newest first; `day` is `[start, end)` in unix ms.
    pub async fn recent_visual_sessions(
        &self,
        user_id: i64,
        day: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let (from, to) = day.unwrap_or((i64::MIN, i64::MAX));
        let rows = sqlx::query(
            "SELECT s.id, s.case_number, s.channel, s.phone, s.email, s.state, s.created_at, \
             s.joined_at, s.ended_at, l.name AS license_name \
             FROM visual_sessions s JOIN licenses l ON l.id = s.license_id \
             WHERE s.operator_user_id = $1 AND s.created_at >= $2 AND s.created_at < $3 \
             ORDER BY s.created_at DESC, s.id DESC LIMIT $4",
        )
        .bind(user_id)
        .bind(from)
        .bind(to)
        .bind(limit.clamp(0, 1000))
        .fetch_all(self.pool())
        .await?;
        let summaries = rows
            .iter()
            .map(|r| {
                let channel: String = r.try_get("channel")?;
                let state: String = r.try_get("state")?;
                let phone: Option<String> = r.try_get("phone")?;
                let email: Option<String> = r.try_get("email")?;
                let joined: Option<i64> = r.try_get("joined_at")?;
                let ended: Option<i64> = r.try_get("ended_at")?;
                Ok(SessionSummary {
                    id: r.try_get("id")?,
                    case_number: r.try_get("case_number")?,
                    created_at_ms: r.try_get("created_at")?,
                    duration_ms: joined.zip(ended).map(|(j, e)| (e - j).max(0)),
                    channel: InviteChannel::parse(&channel)
                        .ok_or_else(|| decode_err("channel", &channel))?,
                    customer: phone.or(email).unwrap_or_default(),
                    license_name: r.try_get("license_name")?,
                    state: SessionState::parse(&state)
                        .ok_or_else(|| decode_err("state", &state))?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(summaries)
    }

    // ---- chat and files ----

    /// Stores a chat message with the session's next sequence number. A resend with the
    /// same `client_id` returns the message stored the first time. An operator's message
    /// counts as the operator's activity.
    pub async fn add_visual_message(
        &self,
        session_id: i64,
        from: Party,
        text: &str,
        client_id: Option<String>,
        now_ms: i64,
    ) -> Result<VisualMessage, VisualError> {
        if text.trim().is_empty() {
            return Err(VisualError::Invalid("the message is empty".into()));
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(VisualError::Invalid(format!(
                "the message is longer than {MAX_MESSAGE_CHARS} characters"
            )));
        }
        if let Some(c) = &client_id
            && (c.is_empty() || c.chars().count() > MAX_CLIENT_ID_CHARS)
        {
            return Err(VisualError::Invalid(format!(
                "a message's client id needs 1–{MAX_CLIENT_ID_CHARS} characters"
            )));
        }
        // A resend usually finds its message here, even after the session ended.
        if let Some(c) = &client_id
            && let Some(m) = self.visual_message_by_client_id(session_id, c).await?
        {
            return Ok(m);
        }
        let mut tx = self.pool().begin().await?;
        // Locks the session row first, so a concurrent resend waits and then sees ours.
        let seq =
            match lock_open_session(&mut tx, session_id, now_ms, from == Party::Operator, true)
                .await
            {
                Ok(seq) => seq,
                Err(e) => return refuse(tx, e).await,
            };
        if let Some(c) = &client_id {
            let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM visual_messages \
                 WHERE session_id = $1 AND client_id = $2"
            )))
            .bind(session_id)
            .bind(c.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                // Rolled back: the sequence number is not spent.
                return Ok(row);
            }
        }
        let row = sqlx::query(
            "INSERT INTO visual_messages (session_id, seq, sender, body, client_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(session_id)
        .bind(seq)
        .bind(from.as_str())
        .bind(text)
        .bind(client_id.as_deref())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        tx.commit().await?;
        Ok(VisualMessage {
            id,
            session_id,
            seq,
            from,
            text: text.to_string(),
            client_id,
            created_at_ms: now_ms,
        })
    }

    async fn visual_message_by_client_id(
        &self,
        session_id: i64,
        client_id: &str,
    ) -> Result<Option<VisualMessage>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM visual_messages \
             WHERE session_id = $1 AND client_id = $2"
        )))
        .bind(session_id)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Messages after sequence number `after_seq` (0: all), in order.
    pub async fn visual_messages(
        &self,
        session_id: i64,
        after_seq: i64,
    ) -> Result<Vec<VisualMessage>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM visual_messages \
             WHERE session_id = $1 AND seq > $2 ORDER BY seq"
        )))
        .bind(session_id)
        .bind(after_seq)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records a photo or snapshot of an open session and gives it a random id; the web
    /// layer writes the bytes under that id. A snapshot counts as the operator's activity.
    pub async fn add_visual_file(
        &self,
        session_id: i64,
        kind: FileKind,
        content_type: &str,
        size: i64,
        now_ms: i64,
    ) -> Result<VisualFile, VisualError> {
        let ok_type = !content_type.is_empty()
            && content_type.len() <= 100
            && content_type.contains('/')
            && content_type.chars().all(|c| c.is_ascii_graphic());
        if !ok_type {
            return Err(VisualError::Invalid(format!(
                "content type {content_type:?}: expected a media type like image/jpeg"
            )));
        }
        if size < 0 {
            return Err(VisualError::Invalid(format!("file size {size}: negative")));
        }
        let id = hex(&os_random::<16>()?);
        let mut tx = self.pool().begin().await?;
        let by_operator = kind == FileKind::Snapshot;
        if let Err(e) = lock_open_session(&mut tx, session_id, now_ms, by_operator, false).await {
            return refuse(tx, e).await;
        }
        sqlx::query(
            "INSERT INTO visual_files (id, session_id, kind, content_type, size, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(session_id)
        .bind(kind.as_str())
        .bind(content_type)
        .bind(size)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(VisualFile {
            id,
            session_id,
            kind,
            content_type: content_type.to_string(),
            size,
            created_at_ms: now_ms,
        })
    }

    /// A session's photos and snapshots, oldest first.
    pub async fn visual_files(&self, session_id: i64) -> Result<Vec<VisualFile>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM visual_files WHERE session_id = $1 \
             ORDER BY created_at, id"
        )))
        .bind(session_id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn visual_file(&self, id: &str) -> Result<Option<VisualFile>, StoreError> {
        Ok(fetch_by_id(
            self.pool(),
            sqlx::AssertSqlSafe(format!(
                "SELECT {FILE_COLUMNS} FROM visual_files WHERE id = $1"
            )),
            id,
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_url_safe() {
        let a = base64url(&os_random::<TOKEN_BYTES>().ok().unwrap_or_default());
        let b = base64url(&os_random::<TOKEN_BYTES>().ok().unwrap_or_default());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn case_numbers_are_readable() {
        for _ in 0..200 {
            let c = generate_case_number();
            assert_eq!(c.len(), 8);
            assert!(
                c.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit()),
                "{c}"
            );
            assert!(!c.contains(['0', 'O', '1', 'I']), "{c}");
        }
    }

    #[test]
    fn sms_lock_keys_differ_per_number() {
        assert_ne!(sms_lock_key("+36301234567"), sms_lock_key("+36301234568"));
        assert_eq!(sms_lock_key("+36301234567"), sms_lock_key("+36301234567"));
    }
}
