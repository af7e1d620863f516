//! Notifications: messages to customers (visual-session invites) by SMS through an HTTP
//! gateway or by e-mail over SMTP.
//!
//! Sending is durable. A message is stored in the `outbox` table before anything is sent;
//! the `Notifier` task claims due messages with one conditional `UPDATE … RETURNING` (so
//! when several nodes share a PostgreSQL database, one of them sends each message), sends
//! them, and records the outcome: sent, a retry after an exponential backoff, or failed
//! with the reason once the attempts are used up. A claim expires, so a message whose node
//! died mid-send is sent by another (or by the same one after its restart).
//!
//! In the default `outbox` mode nothing leaves the machine: every message is kept with
//! status `outbox` for the admin outbox page, so the default run works offline.

mod email;
mod sms;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, info, warn};

use crate::store::{Backend, Store, StoreError, fetch_by_id, text_column};
use crate::time::{millis, unix_ms};

// ---------------------------------------------------------------------------------------
// Errors

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A bad setting; `setting` is its name in the config file, e.g. `notify.sms.url`.
    #[error("{setting}: {message}")]
    Config { setting: String, message: String },
    /// A template that doesn't compile or doesn't render.
    #[error("{setting}: {source}")]
    Template {
        setting: String,
        source: minijinja::Error,
    },
    #[error("setting up the SMS gateway client: {0}")]
    HttpClient(String),
    #[error("notify.email: setting up the SMTP transport: {0}")]
    SmtpTransport(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn config_error(setting: impl Into<String>, message: impl Into<String>) -> NotifyError {
    NotifyError::Config {
        setting: setting.into(),
        message: message.into(),
    }
}

/// Why one send failed; its text is stored as the message's `last_error`.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("not sent: {0} is not set")]
    NotConfigured(&'static str),
    #[error("the gateway answered {status}: {body}")]
    Gateway { status: u16, body: String },
    #[error("the gateway answered {status} with an error (notify.sms.error_body_regex): {body}")]
    GatewayErrorBody { status: u16, body: String },
    #[error("HTTP: {0}")]
    Http(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("invalid address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("{setting}: {source}")]
    Template {
        setting: &'static str,
        source: minijinja::Error,
    },
    #[error("{0}")]
    Build(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// A webhook receiver's 410: it wants no more of this delivery.
    #[error("the receiver answered 410 Gone: {body}")]
    Gone { body: String },
    /// SMS and e-mail in `outbox` mode, beside webhooks that are sent.
    #[error("kept: notify.mode is \"outbox\"")]
    OutboxMode,
}

impl SendError {
    /// Trying again can't help: the message or the configuration is wrong.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            SendError::Address { .. }
                | SendError::Template { .. }
                | SendError::Build(_)
                | SendError::Gone { .. }
        )
    }
}

/// An error with its sources, "a: b: c", so the stored reason says what really happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------------------------------
// Configuration (`[notify]`)

/// `[notify]`. Every field has a default, so an empty (or missing) table works: outbox mode.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `outbox` (default): keep every message for the admin outbox page, send nothing.
    /// `send`: send through the SMS gateway and the SMTP server.
    pub mode: NotifyMode,
    /// Seconds one send (an HTTP request, an SMTP session) may take before it fails.
    pub timeout_secs: u64,
    /// Milliseconds between looks for messages queued by other nodes or due for a retry.
    pub poll_ms: u64,
    /// Days a sent message is kept; then it is deleted with the link it carries. Failed
    /// and kept (outbox) messages stay until an admin sends them again. 0: kept for ever.
    pub retention_days: u32,
    pub sms: SmsConfig,
    pub email: EmailConfig,
    pub templates: TemplatesConfig,
    pub retry: RetryConfig,
    /// `[[webhooks]]` (a top-level table of hotline.toml, set here by the daemon): sent
    /// whatever `mode` says.
    #[serde(skip)]
    pub webhooks: Vec<webhook::WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            mode: NotifyMode::Outbox,
            timeout_secs: 30,
            poll_ms: 1000,
            retention_days: 30,
            sms: SmsConfig::default(),
            email: EmailConfig::default(),
            templates: TemplatesConfig::default(),
            retry: RetryConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyMode {
    #[default]
    Outbox,
    Send,
}

impl NotifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyMode::Outbox => "outbox",
            NotifyMode::Send => "send",
        }
    }
}

/// `[notify.sms]`: the HTTP gateway. `url` and `body` are templates with `to` and `text`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Empty: no SMS gateway (SMS messages stay in the outbox even in `send` mode).
    pub url: String,
    pub method: String,
    /// Extra request headers, e.g. `Authorization`.
    pub headers: BTreeMap<String, String>,
    /// The request body; empty sends none (e.g. for a GET gateway with a templated URL).
    pub body: String,
    pub content_type: String,
    /// For gateways that answer an error with 200 OK: a regular expression that, found in
    /// a 2xx answer's body, makes the send a failure (retried like any other). Empty: any
    /// 2xx is success.
    pub error_body_regex: String,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: String::new(),
            method: "POST".to_string(),
            headers: BTreeMap::new(),
            body: DEFAULT_SMS_BODY.to_string(),
            content_type: "application/json".to_string(),
            error_body_regex: String::new(),
        }
    }
}

pub const DEFAULT_SMS_BODY: &str = r#"{"to": {{ to|tojson }}, "text": {{ text|tojson }}}"#;

impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are often credentials.
        let headers: BTreeMap<&str, &str> =
            self.headers.keys().map(|k| (k.as_str(), "***")).collect();
        f.debug_struct("SmsConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("content_type", &self.content_type)
            .field("error_body_regex", &self.error_body_regex)
            .finish()
    }
}

/// `[notify.email]`: the SMTP server mail is submitted to.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Empty: no SMTP server (e-mails stay in the outbox even in `send` mode).
    pub host: String,
    /// 0: the usual port for `tls` (587 for starttls, 465 for tls, 25 for none).
    pub port: u16,
    pub tls: EmailTls,
    /// Empty: no authentication.
    pub username: String,
    pub password: String,
    /// The sender, `hotline@example.org` or `Hotline <hotline@example.org>`.
    pub from: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            host: String::new(),
            port: 0,
            tls: EmailTls::Starttls,
            username: String::new(),
            password: String::new(),
            from: String::new(),
        }
    }
}

impl EmailConfig {
    /// The configured port, or the usual one for the TLS mode.
    pub fn effective_port(&self) -> u16 {
        match (self.port, self.tls) {
            (0, EmailTls::Starttls) => 587,
            (0, EmailTls::Tls) => 465,
            (0, EmailTls::None) => 25,
            (port, _) => port,
        }
    }
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS; refused if the server can't.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption: only for a relay on this machine or a test sink.
    None,
}

/// `[notify.templates]`: minijinja templates with `link`, `case_number` and `operator`.
/// Plain text: nothing is escaped.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    pub sms_invite: String,
    pub email_invite_subject: String,
    pub email_invite_body: String,
}

pub const DEFAULT_SMS_INVITE: &str = "Hotline, case {{ case_number }}: please open this link on your phone to start the video session: {{ link }}";
pub const DEFAULT_EMAIL_INVITE_SUBJECT: &str = "Your video session link (case {{ case_number }})";
pub const DEFAULT_EMAIL_INVITE_BODY: &str = "Hello,

{{ operator or \"Our operator\" }} invites you to a video session about case {{ case_number }}.

Please open this link on your smartphone, in Chrome, Safari or Firefox:

{{ link }}

The link is for you only and works for a limited time.

Hotline
";

impl Default for TemplatesConfig {
    fn default() -> Self {
        TemplatesConfig {
            sms_invite: DEFAULT_SMS_INVITE.to_string(),
            email_invite_subject: DEFAULT_EMAIL_INVITE_SUBJECT.to_string(),
            email_invite_body: DEFAULT_EMAIL_INVITE_BODY.to_string(),
        }
    }
}

/// `[notify.retry]`: a failed send is tried again after `first_backoff_ms`, doubling each
/// time up to `max_backoff_ms`; after `max_attempts` attempts the message has failed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub first_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 8,
            first_backoff_ms: 5_000,
            max_backoff_ms: 300_000,
        }
    }
}

impl RetryConfig {
    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u64
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u64::MAX);
        Duration::from_millis(
            self.first_backoff_ms
                .saturating_mul(factor)
                .min(self.max_backoff_ms),
        )
    }
}

impl NotifyConfig {
    /// Checks every setting; the error names the one at fault ("notify.sms.url: …").
    /// Templates are compiled and rendered with sample values, so a typo in a variable
    /// name is caught at start-up, not when the first invite goes out.
    pub fn validate(&self) -> Result<(), NotifyError> {
        if self.timeout_secs == 0 {
            return Err(config_error("notify.timeout_secs", "must be at least 1"));
        }
        if self.poll_ms < 10 {
            return Err(config_error("notify.poll_ms", "must be at least 10"));
        }
        let r = &self.retry;
        if r.max_attempts == 0 {
            return Err(config_error(
                "notify.retry.max_attempts",
                "must be at least 1",
            ));
        }
        if r.first_backoff_ms == 0 {
            return Err(config_error(
                "notify.retry.first_backoff_ms",
                "must be at least 1",
            ));
        }
        if r.max_backoff_ms < r.first_backoff_ms {
            return Err(config_error(
                "notify.retry.max_backoff_ms",
                "must not be less than notify.retry.first_backoff_ms",
            ));
        }

        let sample = InviteContext {
            link: "https://hotline.example/v/abcdef".to_string(),
            case_number: "CASE-1".to_string(),
            operator: "Operator".to_string(),
        };
        for channel in [Channel::Sms, Channel::Email] {
            render_invite(self, channel, &sample)?;
        }

        sms::validate(&self.sms)?;
        email::validate(&self.email)?;
        webhook::validate(&self.webhooks)?;

        if self.mode == NotifyMode::Send
            && self.sms.url.trim().is_empty()
            && self.email.host.trim().is_empty()
        {
            return Err(config_error(
                "notify.mode",
                "\"send\" needs notify.sms.url or notify.email.host (or use \"outbox\")",
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Templates

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Email,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "sms" => Some(Channel::Sms),
            "email" => Some(Channel::Email),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

/// What an invite template may use: `{{ link }}`, `{{ case_number }}`, `{{ operator }}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InviteContext {
    pub link: String,
    pub case_number: String,
    /// The operator's display name.
    pub operator: String,
}

/// A rendered message, ready for `NewMessage`. SMS messages have an empty subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMessage {
    pub channel: Channel,
    pub subject: String,
    pub body: String,
}

/// The template environment: plain text (no auto-escaping), and an unknown variable is
/// an error rather than silently empty.
fn template_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn render(
    env: &Environment<'_>,
    setting: &str,
    template: &str,
    ctx: impl Serialize,
) -> Result<String, NotifyError> {
    env.render_str(template, ctx)
        .map_err(|source| NotifyError::Template {
            setting: setting.to_string(),
            source,
        })
}

/// Renders the invite for `channel` from the configured templates.
pub fn render_invite(
    config: &NotifyConfig,
    channel: Channel,
    ctx: &InviteContext,
) -> Result<RenderedMessage, NotifyError> {
    let env = template_env();
    let t = &config.templates;
    match channel {
        Channel::Sms => Ok(RenderedMessage {
            channel,
            subject: String::new(),
            body: render(&env, "notify.templates.sms_invite", &t.sms_invite, ctx)?
                .trim()
                .to_string(),
        }),
        Channel::Webhook => Err(config_error(
            "notify.templates",
            "webhooks carry JSON, not an invite",
        )),
        Channel::Email => {
            let subject = render(
                &env,
                "notify.templates.email_invite_subject",
                &t.email_invite_subject,
                ctx,
            )?;
            // A subject is one line, whatever the template or the data hold.
            let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
            if subject.is_empty() {
                return Err(config_error(
                    "notify.templates.email_invite_subject",
                    "renders to an empty subject",
                ));
            }
            let body = render(
                &env,
                "notify.templates.email_invite_body",
                &t.email_invite_body,
                ctx,
            )?;
            Ok(RenderedMessage {
                channel,
                subject,
                body,
            })
        }
    }
}

// ---------------------------------------------------------------------------------------
// The store: the `outbox` table

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Waiting to be sent (first time, or for its next retry at `next_attempt_at`).
    Queued,
    /// Claimed by a notifier that is sending it now.
    Sending,
    Sent,
    /// Given up: `last_error` says why.
    Failed,
    /// Kept and not sent (outbox mode, or its channel isn't configured).
    Outbox,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
            MessageStatus::Outbox => "outbox",
        }
    }

    pub fn parse(s: &str) -> Option<MessageStatus> {
        match s {
            "queued" => Some(MessageStatus::Queued),
            "sending" => Some(MessageStatus::Sending),
            "sent" => Some(MessageStatus::Sent),
            "failed" => Some(MessageStatus::Failed),
            "outbox" => Some(MessageStatus::Outbox),
            _ => None,
        }
    }

    /// Nothing more will happen to it by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Sent | MessageStatus::Failed | MessageStatus::Outbox
        )
    }
}

/// A message to store (and then send).
#[derive(Clone, Copy, Debug)]
pub struct NewMessage<'a> {
    pub channel: Channel,
    /// A phone number (SMS) or an e-mail address.
    pub to: &'a str,
    /// E-mail only; empty for SMS.
    pub subject: &'a str,
    pub body: &'a str,
    /// What it belongs to, e.g. "visual:42"; the waiting screen looks messages up by it.
    pub related: &'a str,
    pub now_ms: i64,
}

impl<'a> NewMessage<'a> {
    pub fn from_rendered(
        rendered: &'a RenderedMessage,
        to: &'a str,
        related: &'a str,
        now_ms: i64,
    ) -> NewMessage<'a> {
        NewMessage {
            channel: rendered.channel,
            to,
            subject: &rendered.subject,
            body: &rendered.body,
            related,
            now_ms,
        }
    }
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub channel: Channel,
    #[sqlx(rename = "recipient")]
    pub to: String,
    pub subject: String,
    pub body: String,
    pub related: String,
    pub status: MessageStatus,
    /// Attempts started so far.
    pub attempts: i64,
    /// Why the last attempt failed (or why the message was kept unsent); cleared when sent.
    pub last_error: Option<String>,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
    #[sqlx(rename = "updated_at")]
    pub updated_at_ms: i64,
    /// When the next attempt is due (meaningful while queued).
    #[sqlx(rename = "next_attempt_at")]
    pub next_attempt_at_ms: i64,
    #[sqlx(rename = "sent_at")]
    pub sent_at_ms: Option<i64>,
}

macro_rules! select_message {
    () => {
        "SELECT id, channel, recipient, subject, body, related, status, attempts, last_error, \
         created_at, updated_at, next_attempt_at, sent_at FROM outbox"
    };
}

fn decode_error(what: &str, value: &str) -> StoreError {
    StoreError::Query(sqlx::Error::Decode(
        format!("outbox: unknown {what} {value:?}").into(),
    ))
}

text_column!(Channel, "outbox channel");
text_column!(MessageStatus, "outbox status");

impl Store {
    /// Stores a message, queued to be sent at once; returns its id. Nothing is sent here:
    /// a running `Notifier` picks it up (call `NotifierHandle::wake` for no delay).
    pub async fn enqueue_message(&self, m: &NewMessage<'_>) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO outbox (channel, recipient, subject, body, related, status, attempts, \
             created_at, updated_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8) RETURNING id",
        )
        .bind(m.channel.as_str())
        .bind(m.to)
        .bind(m.subject)
        .bind(m.body)
        .bind(m.related)
        .bind(m.now_ms)
        .bind(m.now_ms)
        .bind(m.now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    pub async fn message(&self, id: i64) -> Result<Option<Message>, StoreError> {
        Ok(fetch_by_id(
            self.pool(),
            concat!(select_message!(), " WHERE id = $1"),
            id,
        )
        .await?)
    }

    /// Every message, newest first (the admin outbox page).
    pub async fn outbox_messages(&self, limit: i64) -> Result<Vec<Message>, StoreError> {
        Ok(
            sqlx::query_as(concat!(select_message!(), " ORDER BY id DESC LIMIT $1"))
                .bind(limit)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The messages of one thing (e.g. "visual:42"), newest first (the waiting screen).
    pub async fn messages_related(&self, related: &str) -> Result<Vec<Message>, StoreError> {
        Ok(sqlx::query_as(concat!(
            select_message!(),
            " WHERE related = $1 ORDER BY id DESC"
        ))
        .bind(related)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes the sent messages last changed before `before_ms`: their links are
    /// secrets that outlive their use. Failed and kept (outbox) ones stay, for an admin
    /// may still send them again. Returns how many went.
    pub async fn purge_messages(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND updated_at < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Messages waiting to be sent (queued, or being sent now), by channel; channels with
    /// none are left out. For the `/metrics` gauge.
    pub async fn outbox_pending(&self) -> Result<Vec<(Channel, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, COUNT(*) FROM outbox WHERE status IN ('queued', 'sending') \
             GROUP BY channel",
        )
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let channel: String = r.try_get(0)?;
            let channel =
                Channel::parse(&channel).ok_or_else(|| decode_error("channel", &channel))?;
            out.push((channel, r.try_get::<i64, _>(1)?));
        }
        Ok(out)
    }

    /// Queues a failed or kept (outbox) message again with fresh attempts (an admin's
    /// "send again"). False if it is not in one of those states.
    pub async fn requeue_message(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'queued', attempts = 0, last_error = NULL, \
             next_attempt_at = $1, updated_at = $2 \
             WHERE id = $3 AND status IN ('failed', 'outbox')",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// A message claimed for sending.
#[derive(Clone, Debug)]
struct Claimed {
    id: i64,
    channel: String,
    to: String,
    subject: String,
    body: String,
    /// Attempts including this one.
    attempts: i64,
    claim: String,
    /// When it was stored: the send time is counted from here.
    created_at_ms: i64,
}

/// Claims up to `limit` due messages (queued and due, or claimed by a notifier whose claim
/// has expired) in one conditional UPDATE. The WHERE is repeated on the row being updated,
/// so when two nodes race for one row, the second finds it no longer due and skips it;
/// on PostgreSQL `SKIP LOCKED` also lets them take different rows instead of waiting.
async fn claim_due(
    store: &Store,
    claim: &str,
    now_ms: i64,
    claim_until_ms: i64,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    const SQLITE: &str = "UPDATE outbox SET status = 'sending', claim = $1, claim_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE id IN (SELECT id FROM outbox \
             WHERE (status = 'queued' AND next_attempt_at <= $4) \
                OR (status = 'sending' AND claim_until <= $5) \
             ORDER BY next_attempt_at, id LIMIT $6) \
         AND ((status = 'queued' AND next_attempt_at <= $7) \
              OR (status = 'sending' AND claim_until <= $8)) \
         RETURNING id, channel, recipient, subject, body, attempts, created_at";
    const POSTGRES: &str = "UPDATE outbox SET status = 'sending', claim = $1, claim_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE id IN (SELECT id FROM outbox \
             WHERE (status = 'queued' AND next_attempt_at <= $4) \
                OR (status = 'sending' AND claim_until <= $5) \
             ORDER BY next_attempt_at, id LIMIT $6 FOR UPDATE SKIP LOCKED) \
         AND ((status = 'queued' AND next_attempt_at <= $7) \
              OR (status = 'sending' AND claim_until <= $8)) \
         RETURNING id, channel, recipient, subject, body, attempts, created_at";
    let sql = match store.backend() {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let rows = sqlx::query(sql)
        .bind(claim)
        .bind(claim_until_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(limit)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_all(store.pool())
        .await?;
    let mut claimed = rows
        .iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get("id")?,
                channel: r.try_get("channel")?,
                to: r.try_get("recipient")?,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
                attempts: r.try_get("attempts")?,
                claim: claim.to_string(),
                created_at_ms: r.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Outbox mode: keeps every queued message (and any whose sender died) unsent.
async fn keep_all_in_outbox(store: &Store, now_ms: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'outbox', claim = NULL, claim_until = NULL, updated_at = $1 \
         WHERE status = 'queued' OR (status = 'sending' AND claim_until <= $2)",
    )
    .bind(now_ms)
    .bind(now_ms)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}

/// When the next queued message is due, or the next claim expires.
async fn next_due(store: &Store) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "SELECT MIN(CASE WHEN status = 'queued' THEN next_attempt_at ELSE claim_until END) \
         FROM outbox WHERE status IN ('queued', 'sending')",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?)
}

/// How a claimed message ends its attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Finish {
    Sent,
    Retry { at_ms: i64, error: String },
    Failed { error: String },
    Keep { error: String },
}

/// Records the outcome, if the claim is still ours (false if it expired and another
/// notifier took the message over).
async fn finish(
    store: &Store,
    c: &Claimed,
    outcome: &Finish,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let (status, next_at, error, sent_at): (&str, Option<i64>, Option<&str>, Option<i64>) =
        match outcome {
            Finish::Sent => ("sent", None, None, Some(now_ms)),
            Finish::Retry { at_ms, error } => ("queued", Some(*at_ms), Some(error), None),
            Finish::Failed { error } => ("failed", None, Some(error), None),
            Finish::Keep { error } => ("outbox", None, Some(error), None),
        };
    let done = sqlx::query(
        "UPDATE outbox SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
         last_error = $3, sent_at = $4, updated_at = $5, claim = NULL, claim_until = NULL \
         WHERE id = $6 AND status = 'sending' AND claim = $7",
    )
    .bind(status)
    .bind(next_at)
    .bind(error)
    .bind(sent_at)
    .bind(now_ms)
    .bind(c.id)
    .bind(&c.claim)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------
// The notifier task

/// Histogram (seconds, by `channel`): from a message being stored in the outbox to its
/// being sent, retries included. The daemon describes it and sets its buckets.
pub const SEND_SECONDS_METRIC: &str = "hotline_outbox_send_seconds";

/// A channel as a metric label: one of a few fixed values, whatever the row holds.
fn channel_label(channel: &str) -> &'static str {
    Channel::parse(channel).map_or("unknown", Channel::as_str)
}

/// Messages claimed in one go; they are sent concurrently.
const BATCH: i64 = 8;
/// How often old messages are purged (`retention_days`).
const PURGE_EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 24 * 3600 * 1000;
/// A pause after a database error, and the shortest wait between passes.
const MIN_WAIT: Duration = Duration::from_millis(5);

pub struct Notifier;

/// Controls the running notifier. Cheap to clone; every clone wakes and stops the same task.
#[derive(Clone)]
pub struct NotifierHandle {
    shared: Arc<Shared>,
    store: Store,
    /// `[[webhooks]]`: who is posted which event.
    webhooks: Arc<[webhook::WebhookConfig]>,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
}

struct Shared {
    wake: Notify,
    stopping: AtomicBool,
}

/// What one send needs, shared by the concurrent sends of a batch.
struct Senders {
    sms: Option<sms::SmsSender>,
    email: Option<email::EmailSender>,
    webhook: Option<webhook::WebhookSender>,
    /// `outbox` mode: SMS and e-mail are kept; only webhooks are sent.
    outbox_mode: bool,
    timeout: Duration,
}

impl Notifier {
    /// Validates `config` and starts the sending task on the current tokio runtime. Messages
    /// queued earlier (before a restart, or by another node) are sent too.
    pub fn start(store: Store, config: NotifyConfig) -> Result<NotifierHandle, NotifyError> {
        config.validate()?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let send = config.mode == NotifyMode::Send;
        let senders = if send || !config.webhooks.is_empty() {
            Some(Arc::new(Senders {
                sms: if !send || config.sms.url.trim().is_empty() {
                    None
                } else {
                    Some(sms::SmsSender::new(&config.sms, timeout)?)
                },
                email: if !send || config.email.host.trim().is_empty() {
                    None
                } else {
                    Some(email::EmailSender::new(&config.email, timeout)?)
                },
                webhook: if config.webhooks.is_empty() {
                    None
                } else {
                    Some(webhook::WebhookSender::new(&config.webhooks, timeout)?)
                },
                outbox_mode: !send,
                timeout,
            }))
        } else {
            None
        };
        let shared = Arc::new(Shared {
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
        });
        let node = format!("{:016x}", rand::random::<u64>());
        info!(mode = config.mode.as_str(), node, "notifier started");
        let webhooks: Arc<[webhook::WebhookConfig]> = config.webhooks.clone().into();
        let task = tokio::spawn(run(store.clone(), config, senders, shared.clone(), node));
        Ok(NotifierHandle {
            shared,
            store,
            webhooks,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
        })
    }
}

impl NotifierHandle {
    /// Looks for due messages now (call it after `enqueue_message`).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Stores the message and wakes the notifier; returns the message id.
    pub async fn enqueue(&self, m: &NewMessage<'_>) -> Result<i64, StoreError> {
        let id = self.store.enqueue_message(m).await?;
        self.wake();
        Ok(id)
    }

    /// Whether any webhook asked for `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.webhooks.iter().any(|h| h.wants(event))
    }

    /// Stores a delivery of `event` (`webhook::CALL_ENDED`, …) for every webhook that asked
    /// for it and wakes the notifier; returns how many were stored (0: nobody asked).
    pub async fn webhook(
        &self,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<usize, StoreError> {
        if !self.webhooks.iter().any(|h| h.wants(event)) {
            return Ok(0);
        }
        let n = self
            .store
            .enqueue_webhooks(&self.webhooks, event, data, unix_ms())
            .await?;
        self.wake();
        Ok(n)
    }

    /// Stops the task after the sends in progress are recorded. Messages still queued stay
    /// queued for the next start.
    pub async fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let Some(task) = self.task.lock().await.take() else {
            return; // stopped already, through another clone
        };
        if let Err(e) = task.await {
            error!("the notifier task ended badly: {e}");
        }
    }
}

/// The HTTP client of the SMS gateway and the webhooks (rustls).
fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect would turn a POST into a GET: report it instead of following it.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::HttpClient(error_chain(&e)))
}

async fn run(
    store: Store,
    config: NotifyConfig,
    senders: Option<Arc<Senders>>,
    shared: Arc<Shared>,
    node: String,
) {
    let poll = Duration::from_millis(config.poll_ms);
    let claims = AtomicU64::new(1);
    let config = Arc::new(config);
    let mut next_purge = tokio::time::Instant::now();
    while !shared.stopping.load(Ordering::SeqCst) {
        if config.retention_days > 0 && tokio::time::Instant::now() >= next_purge {
            next_purge = tokio::time::Instant::now() + PURGE_EVERY;
            let before = unix_ms().saturating_sub(i64::from(config.retention_days) * DAY_MS);
            match store.purge_messages(before).await {
                Ok(0) => {}
                Ok(n) => info!(
                    messages = n,
                    days = config.retention_days,
                    "old sent messages purged (notify.retention_days)"
                ),
                Err(e) => warn!("purging old messages: {e}"),
            }
        }
        let next = match &senders {
            None => match keep_all_in_outbox(&store, unix_ms()).await {
                Ok(n) => {
                    if n > 0 {
                        info!(
                            messages = n,
                            "kept in the outbox (notify.mode = \"outbox\")"
                        );
                    }
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            Some(senders) => send_due(&store, &config, senders, &shared, &node, &claims).await,
        };
        let wait = match next {
            Ok(Some(due)) => {
                let until_due = u64::try_from(due.saturating_sub(unix_ms())).unwrap_or(0);
                Duration::from_millis(until_due).clamp(MIN_WAIT, poll)
            }
            Ok(None) => poll,
            Err(e) => {
                warn!("notifier: {e}");
                poll
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    info!(node, "notifier stopped");
}

/// Sends everything due now, batch after batch; returns when the next message is due.
async fn send_due(
    store: &Store,
    config: &Arc<NotifyConfig>,
    senders: &Arc<Senders>,
    shared: &Shared,
    node: &str,
    claims: &AtomicU64,
) -> Result<Option<i64>, StoreError> {
    // A claim outlives any send (each is cut off at the timeout) with room to record it.
    let claim_for = (senders.timeout * 2).max(Duration::from_secs(60));
    loop {
        let claim = format!("{node}-{}", claims.fetch_add(1, Ordering::Relaxed));
        let now = unix_ms();
        let batch = claim_due(store, &claim, now, now + millis(claim_for), BATCH).await?;
        let full = batch.len() as i64 == BATCH;
        let mut sends = JoinSet::new();
        for c in batch {
            let (store, config, senders) = (store.clone(), config.clone(), senders.clone());
            sends.spawn(async move { attempt(&store, &config, &senders, c).await });
        }
        while let Some(done) = sends.join_next().await {
            if let Err(e) = done {
                // The message stays claimed until the claim expires, then it is retried.
                error!("a send task ended badly: {e}");
            }
        }
        if !full || shared.stopping.load(Ordering::SeqCst) {
            break;
        }
    }
    next_due(store).await
}

/// One attempt at one claimed message, and its outcome recorded.
async fn attempt(store: &Store, config: &NotifyConfig, senders: &Senders, c: Claimed) {
    let max = i64::from(config.retry.max_attempts);
    let outcome = if c.attempts > max {
        // Its last attempt was claimed by a notifier that stopped before recording it.
        Finish::Failed {
            error: "gave up: the node sending it stopped before it finished".to_string(),
        }
    } else {
        match senders.send(&c).await {
            Ok(()) => Finish::Sent,
            Err(e @ (SendError::NotConfigured(_) | SendError::OutboxMode)) => Finish::Keep {
                error: e.to_string(),
            },
            Err(e) if e.is_permanent() || c.attempts >= max => Finish::Failed {
                error: e.to_string(),
            },
            Err(e) => {
                let attempts = u32::try_from(c.attempts).unwrap_or(u32::MAX);
                Finish::Retry {
                    at_ms: unix_ms() + millis(config.retry.backoff(attempts)),
                    error: e.to_string(),
                }
            }
        }
    };
    match &outcome {
        Finish::Sent => debug!(id = c.id, attempts = c.attempts, "message sent"),
        Finish::Retry { error, .. } => {
            warn!(
                id = c.id,
                attempts = c.attempts,
                "sending failed, will retry: {error}"
            )
        }
        Finish::Failed { error } => {
            error!(
                id = c.id,
                attempts = c.attempts,
                "sending failed, gave up: {error}"
            )
        }
        Finish::Keep { error } => warn!(id = c.id, "kept in the outbox: {error}"),
    }
    // The database may be restarting: try a few times before leaving it to the claim's
    // expiry (after which the message is sent again).
    for attempt in 1..=3 {
        let now = unix_ms();
        match finish(store, &c, &outcome, now).await {
            Ok(true) => {
                if outcome == Finish::Sent {
                    let secs = now.saturating_sub(c.created_at_ms).max(0) as f64 / 1000.0;
                    metrics::histogram!(SEND_SECONDS_METRIC, "channel" => channel_label(&c.channel))
                        .record(secs);
                }
                return;
            }
            Ok(false) => {
                warn!(
                    id = c.id,
                    "the claim on the message expired before its outcome was recorded"
                );
                return;
            }
            Err(e) => {
                warn!(id = c.id, attempt, "recording the outcome of a send: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    error!(
        id = c.id,
        "could not record the outcome of a send; it will be retried when the claim expires"
    );
}

impl Senders {
    async fn send(&self, c: &Claimed) -> Result<(), SendError> {
        let secs = self.timeout.as_secs();
        match Channel::parse(&c.channel) {
            Some(Channel::Sms | Channel::Email) if self.outbox_mode => Err(SendError::OutboxMode),
            Some(Channel::Webhook) => {
                let Some(webhook) = &self.webhook else {
                    return Err(SendError::NotConfigured("[[webhooks]]"));
                };
                tokio::time::timeout(self.timeout, webhook.send(&c.to, &c.subject, &c.body))
                    .await
                    .map_err(|_| SendError::Timeout(secs))?
            }
            Some(Channel::Sms) => {
                let Some(sms) = &self.sms else {
                    return Err(SendError::NotConfigured("notify.sms.url"));
                };
                tokio::time::timeout(self.timeout, sms.send(&c.to, &c.body))
                    .await
                    .map_err(|_| SendError::Timeout(secs))?
            }
            Some(Channel::Email) => {
                let Some(email) = &self.email else {
                    return Err(SendError::NotConfigured("notify.email.host"));
                };
                tokio::time::timeout(self.timeout, email.send(&c.to, &c.subject, &c.body))
                    .await
                    .map_err(|_| SendError::Timeout(secs))?
            }
            None => Err(SendError::Build(format!("unknown channel {:?}", c.channel))),
        }
    }
}
