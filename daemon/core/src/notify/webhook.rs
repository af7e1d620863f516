//! Webhooks: "call ended", "chat ended" and "callback done" posted as JSON to the URLs of
//! `[[webhooks]]`. A delivery is an outbox message (channel `webhook`, recipient the URL,
//! subject the event, body the JSON), so it is stored before it is sent, retried with the
//! outbox's backoff and survives a restart. It is signed when it is sent, as Stripe's are:
//! `Hotline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, so a
//! receiver can refuse old replays. 2xx is success; 410 Gone stops that delivery; anything
//! else (or no answer in time) is retried.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Channel, NotifyError, SendError, config_error, error_chain};
use crate::callbacks::{AttemptOutcome, CallbackEntry, EntryState};
use crate::cdr::CallRecord;
use crate::chat::{Chat, ChatError, Participant, Visitor};
use crate::store::{Store, StoreError};

/// The events a webhook may ask for.
pub const EVENTS: [&str; 3] = [CALL_ENDED, CHAT_ENDED, CALLBACK_DONE];
pub const CALL_ENDED: &str = "call.ended";
pub const CHAT_ENDED: &str = "chat.ended";
pub const CALLBACK_DONE: &str = "callback.done";

/// Headers of a delivery.
pub const SIGNATURE_HEADER: &str = "Hotline-Signature";
pub const EVENT_HEADER: &str = "Hotline-Event";
pub const DELIVERY_HEADER: &str = "Hotline-Delivery";

/// The shortest secret: an HMAC key an attacker cannot guess.
const MIN_SECRET: usize = 16;
/// How much of a failed answer is kept as the reason.
const REASON_BYTES: usize = 200;

/// One `[[webhooks]]` table.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Which events are posted; every one when left out.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// The HMAC-SHA256 key of `Hotline-Signature` (a secret setting: may come from a file,
    /// so an admin command may go without it; the daemon checks it is there).
    #[serde(default)]
    pub secret: String,
}

fn all_events() -> Vec<String> {
    EVENTS.iter().map(|e| e.to_string()).collect()
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"***")
            .finish()
    }
}

impl WebhookConfig {
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

/// Checks every `[[webhooks]]` table; the error names the one at fault (`webhooks.0.url`).
pub fn validate(hooks: &[WebhookConfig]) -> Result<(), NotifyError> {
    for (i, h) in hooks.iter().enumerate() {
        let url = reqwest::Url::parse(h.url.trim())
            .map_err(|e| config_error(format!("webhooks.{i}.url"), format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config_error(
                format!("webhooks.{i}.url"),
                "is not http: or https:",
            ));
        }
        if h.events.is_empty() {
            return Err(config_error(
                format!("webhooks.{i}.events"),
                format!("name at least one of {}", EVENTS.join(", ")),
            ));
        }
        if let Some(e) = h.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(config_error(
                format!("webhooks.{i}.events"),
                format!("{e:?} is not one of {}", EVENTS.join(", ")),
            ));
        }
        if h.secret.len() < MIN_SECRET {
            return Err(config_error(
                format!("webhooks.{i}.secret"),
                format!("must be at least {MIN_SECRET} characters"),
            ));
        }
    }
    Ok(())
}

/// What is posted.
#[derive(Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub event: String,
    /// Unique per delivery (and URL): receivers drop repeats by it.
    pub id: String,
    /// RFC 3339, UTC, milliseconds.
    pub occurred_at: String,
    pub data: serde_json::Value,
}

/// The JSON body of a delivery.
pub fn body(event: &str, id: &str, occurred_at_ms: i64, data: serde_json::Value) -> String {
    let occurred_at = chrono::DateTime::from_timestamp_millis(occurred_at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let delivery = Delivery {
        event: event.to_string(),
        id: id.to_string(),
        occurred_at,
        data,
    };
    serde_json::to_string(&delivery).unwrap_or_default()
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// A call record's fields, named as `hotline calls` heads its columns.
pub fn call_ended(c: &CallRecord) -> serde_json::Value {
    let variables: serde_json::Value =
        serde_json::from_str(&c.variables).unwrap_or_else(|_| serde_json::json!({}));
    serde_json::json!({
        "id": c.id,
        "call_id": c.call_id,
        "caller": c.caller,
        "called": c.called,
        "started_at_ms": c.started_at_ms,
        "answered_at_ms": c.answered_at_ms,
        "ended_at_ms": c.ended_at_ms,
        "end_reason": c.end_reason,
        "digits": c.digits,
        "flow": c.flow,
        "flow_version": c.flow_version,
        "path": c.path,
        "variables": variables,
        "operator": c.operator,
        "queue": c.service.queue,
        "wait_ms": c.service.wait_ms,
        "hold_ms": c.service.hold_ms,
        "transfers": c.transfers(),
        "legs": c.service.legs,
        "wrapup_category": c.wrapup_category,
        "wrapup_note": c.wrapup_note,
        "wrapup_tags": c.wrapup_tags,
        "recording": c.recording,
    })
}

/// What `chat.ended` tells of a chat, read once it has ended ([`Store::ended_chat`]).
#[derive(Clone, Debug)]
pub struct EndedChat {
    pub chat: Chat,
    pub visitor: Option<Visitor>,
    /// In the order they joined.
    pub participants: Vec<Participant>,
    /// The conversation's public lines by the visitor and the operators (private notes,
    /// greetings and joins don't count).
    pub messages: i64,
}

/// A chat that ended. `operator` is the one who joined last (who had it at the end);
/// `operators` everyone who took part. An abandoned chat has no operator and
/// `ended_by` "system".
pub fn chat_ended(c: &EndedChat) -> serde_json::Value {
    let mut operators: Vec<&str> = Vec::new();
    for p in &c.participants {
        if !operators.contains(&p.operator.as_str()) {
            operators.push(&p.operator);
        }
    }
    let chat = &c.chat;
    serde_json::json!({
        "id": chat.id,
        "site": chat.site,
        "queue": chat.queue,
        "topic": chat.topic,
        "operator": c.participants.last().map(|p| p.operator.as_str()),
        "operators": operators,
        "visitor_name": c.visitor.as_ref().and_then(|v| v.name.as_deref()),
        "visitor_email": c.visitor.as_ref().and_then(|v| v.email.as_deref()),
        "started_at_ms": chat.created_at_ms,
        "accepted_at_ms": chat.accepted_at_ms,
        "ended_at_ms": chat.ended_at_ms,
        "ended_by": chat.ended_by.map(|b| b.as_str()),
        "messages": c.messages,
    })
}

/// The outcome of a callback attempt, just stored; `e` is its entry as it is now.
/// `operator` is the operator's name, or "auto" for the automatic callback; `corrected`:
/// the operator corrected their attempt's outcome afterwards (no new attempt).
pub fn callback_done(
    e: &CallbackEntry,
    outcome: AttemptOutcome,
    operator: &str,
    corrected: bool,
) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "number": e.number,
        "queue": e.queue,
        "outcome": outcome.as_str(),
        "operator": operator,
        "corrected": corrected,
        "attempts": e.attempts,
        "auto_attempts": e.auto_attempts,
        "done": e.state == EntryState::Done,
        "promised_at_ms": e.promised_at_ms,
        "done_at_ms": e.done_at_ms,
    })
}

impl Store {
    /// The chat with what `chat.ended` tells of it; `None` when there is no such chat.
    pub async fn ended_chat(&self, chat_id: i64) -> Result<Option<EndedChat>, ChatError> {
        let Some(chat) = self.chat(chat_id).await? else {
            return Ok(None);
        };
        let visitor = self.visitor(chat.visitor_id).await?;
        let participants = self.chat_participants(chat_id).await?;
        let messages: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM chat_events WHERE chat_id = $1 AND private = 0 \
             AND sender IN ('visitor', 'operator') \
             AND kind IN ('message', 'attachment', 'options', 'answer')",
        )
        .bind(chat_id)
        .fetch_one(self.reader())
        .await?;
        Ok(Some(EndedChat {
            chat,
            visitor,
            participants,
            messages,
        }))
    }

    /// Stores one delivery of `event` for each webhook that asked for it (nothing when
    /// none did); the notifier sends them. Returns how many were stored.
    pub async fn enqueue_webhooks(
        &self,
        hooks: &[WebhookConfig],
        event: &str,
        data: &serde_json::Value,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut stored = 0;
        for hook in hooks.iter().filter(|h| h.wants(event)) {
            let id = format!("{:032x}", rand::random::<u128>());
            let body = body(event, &id, now_ms, data.clone());
            let related = format!("webhook:{id}");
            self.enqueue_message(&super::NewMessage {
                channel: Channel::Webhook,
                to: hook.url.trim(),
                subject: event,
                body: &body,
                related: &related,
                now_ms,
            })
            .await?;
            stored += 1;
        }
        Ok(stored)
    }
}

pub(super) struct WebhookSender {
    client: reqwest::Client,
    hooks: Vec<WebhookConfig>,
}

impl WebhookSender {
    pub(super) fn new(
        hooks: &[WebhookConfig],
        timeout: Duration,
    ) -> Result<WebhookSender, NotifyError> {
        let client = super::http_client(timeout)?;
        Ok(WebhookSender {
            client,
            hooks: hooks.to_vec(),
        })
    }

    /// Posts one stored delivery, signed now with its webhook's current secret.
    pub(super) async fn send(&self, url: &str, event: &str, body: &str) -> Result<(), SendError> {
        let Some(hook) = self.hooks.iter().find(|h| h.url.trim() == url) else {
            return Err(SendError::Build(format!(
                "no [[webhooks]] entry has the URL {url} any more"
            )));
        };
        let id = serde_json::from_str::<Delivery>(body)
            .map(|d| d.id)
            .map_err(|e| SendError::Build(format!("not a webhook body: {e}")))?;
        let t = chrono::Utc::now().timestamp();
        let header = |v: String| {
            HeaderValue::from_str(&v).map_err(|_| SendError::Build(format!("bad header {v:?}")))
        };
        let answer = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(SIGNATURE_HEADER, header(signature(&hook.secret, t, body))?)
            .header(EVENT_HEADER, header(event.to_string())?)
            .header(DELIVERY_HEADER, header(id)?)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SendError::Http(error_chain(&e)))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let text = answer.text().await.unwrap_or_default();
        let body: String = text.chars().take(REASON_BYTES).collect();
        if status == reqwest::StatusCode::GONE {
            return Err(SendError::Gone { body });
        }
        Err(SendError::Gateway {
            status: status.as_u16(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_stripes_scheme() {
        let body = body(
            CALL_ENDED,
            "d-1",
            1_767_225_600_000,
            serde_json::json!({"call_id": "abc"}),
        );
        assert_eq!(
            body,
            r#"{"event":"call.ended","id":"d-1","occurred_at":"2026-01-01T00:00:00.000Z","data":{"call_id":"abc"}}"#
        );
        // Computed apart: python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_0123456789abcdef",
        //   b"1767225600." + BODY, hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("whsec_0123456789abcdef", 1_767_225_600, &body),
            "t=1767225600,v1=24f6232891df8f807c1552fbe15b6e112378cde2cb3c516f9d0ea39b15298a61"
        );
    }

    /// One request as the receiver saw it.
    struct Received {
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Received {
        fn header(&self, name: &str) -> &str {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or("", |(_, v)| v.as_str())
        }
    }

    /// A receiver on loopback answering each request with the next of `statuses`.
    async fn receiver(
        statuses: Vec<u16>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<Received>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/hotline", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for status in statuses {
                let (stream, _) = listener.accept().await.unwrap();
                let mut stream = BufReader::new(stream);
                let mut headers = Vec::new();
                let mut line = String::new();
                stream.read_line(&mut line).await.unwrap();
                loop {
                    line.clear();
                    stream.read_line(&mut line).await.unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let (n, v) = l.split_once(':').unwrap();
                    headers.push((n.trim().to_string(), v.trim().to_string()));
                }
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; len];
                stream.read_exact(&mut body).await.unwrap();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
                let body = String::from_utf8(body).unwrap();
                tx.send(Received { headers, body }).unwrap();
            }
        });
        (url, rx)
    }

    async fn store_with_call() -> (Store, CallRecord) {
        use crate::testing::{call_end, call_start, store_finished_call};
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let start = crate::cdr::CallStart {
            caller: "+4930123".into(),
            ..call_start("hook-call-1", 1_700_000_000_000)
        };
        let end = crate::cdr::CallEnd {
            digits: "1".into(),
            operator: Some("anna".into()),
            ..call_end(1_700_000_060_000)
        };
        store_finished_call(&store, &start, &end).await.unwrap();
        let record = store.call_by_call_id("hook-call-1").await.unwrap().unwrap();
        (store, record)
    }

    fn fast(hooks: Vec<WebhookConfig>) -> super::super::NotifyConfig {
        let mut config = super::super::NotifyConfig {
            poll_ms: 20,
            webhooks: hooks,
            ..Default::default()
        };
        config.retry.first_backoff_ms = 50;
        config.retry.max_backoff_ms = 100;
        config
    }

    async fn settled(store: &Store, id: i64) -> super::super::Message {
        for _ in 0..400 {
            let m = store.message(id).await.unwrap().unwrap();
            if m.status.is_final() {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("message {id} never settled");
    }

    #[tokio::test]
    async fn a_call_ended_is_retried_after_a_500_and_arrives_signed() {
        let (url, mut received) = receiver(vec![500, 200]).await;
        let secret = "whsec_test_0123456789";
        let hooks = vec![
            hook(&url, &[CALL_ENDED], secret),
            // Asked for other events only: gets nothing.
            hook("http://127.0.0.1:9/never", &[CHAT_ENDED], secret),
        ];
        let (store, record) = store_with_call().await;
        // `notify.mode` stays "outbox": webhooks are sent all the same.
        let notifier = super::super::Notifier::start(store.clone(), fast(hooks.clone())).unwrap();
        let stored = store
            .enqueue_webhooks(&hooks, CALL_ENDED, &call_ended(&record), 1_700_000_060_000)
            .await
            .unwrap();
        assert_eq!(stored, 1);
        notifier.wake();
        // What the event sites call: nobody asked for callback.done, so nothing is stored.
        let none = notifier
            .webhook(CALLBACK_DONE, &serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(none, 0);

        let first = received.recv().await.unwrap();
        let second = received.recv().await.unwrap();
        assert_eq!(first.body, second.body, "a retry posts the same delivery");
        assert_eq!(
            second.header(DELIVERY_HEADER),
            first.header(DELIVERY_HEADER)
        );
        assert_eq!(second.header(EVENT_HEADER), "call.ended");
        assert_eq!(second.header("content-type"), "application/json");

        // The receiver's check: recompute the HMAC over "<t>.<body>".
        let sig = second.header(SIGNATURE_HEADER);
        let t: i64 = sig
            .strip_prefix("t=")
            .and_then(|r| r.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!((chrono::Utc::now().timestamp() - t).abs() < 60, "{sig}");
        assert_eq!(sig, signature(secret, t, &second.body));
        assert_ne!(sig, signature("another secret 0000", t, &second.body));

        let delivery: Delivery = serde_json::from_str(&second.body).unwrap();
        assert_eq!(delivery.event, "call.ended");
        assert_eq!(delivery.id, second.header(DELIVERY_HEADER));
        assert_eq!(delivery.occurred_at, "2023-11-14T22:14:20.000Z");
        assert_eq!(delivery.data["call_id"], "hook-call-1");
        assert_eq!(delivery.data["caller"], "+4930123");
        assert_eq!(delivery.data["operator"], "anna");
        assert_eq!(delivery.data["end_reason"], "caller_hangup");

        let messages = store.outbox_messages(10).await.unwrap();
        assert_eq!(messages.len(), 1);
        let m = settled(&store, messages[0].id).await;
        assert_eq!(
            (m.status, m.attempts),
            (super::super::MessageStatus::Sent, 2)
        );
        notifier.stop().await;
    }

    #[tokio::test]
    async fn a_410_stops_the_delivery() {
        let (url, mut received) = receiver(vec![410]).await;
        let hooks = vec![hook(&url, &EVENTS, "whsec_test_0123456789")];
        let (store, record) = store_with_call().await;
        let notifier = super::super::Notifier::start(store.clone(), fast(hooks.clone())).unwrap();
        store
            .enqueue_webhooks(&hooks, CALL_ENDED, &call_ended(&record), 1_700_000_060_000)
            .await
            .unwrap();
        notifier.wake();
        received.recv().await.unwrap();
        let id = store.outbox_messages(1).await.unwrap()[0].id;
        let m = settled(&store, id).await;
        assert_eq!(
            (m.status, m.attempts),
            (super::super::MessageStatus::Failed, 1)
        );
        assert_eq!(
            m.last_error.as_deref(),
            Some("the receiver answered 410 Gone: no")
        );
        notifier.stop().await;
    }

    fn hook(url: &str, events: &[&str], secret: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            secret: secret.into(),
        }
    }

    #[test]
    fn settings_are_checked() {
        let ok = "0123456789abcdef";
        assert!(validate(&[hook("https://crm.example/h", &[CALL_ENDED], ok)]).is_ok());
        for (h, message) in [
            (
                hook("ftp://crm.example/h", &[CALL_ENDED], ok),
                "webhooks.0.url: is not http: or https:",
            ),
            (
                hook("https://crm.example/h", &["call.started"], ok),
                "webhooks.0.events: \"call.started\" is not one of call.ended, chat.ended, \
                 callback.done",
            ),
            (
                hook("https://crm.example/h", &[CALL_ENDED], "short"),
                "webhooks.0.secret: must be at least 16 characters",
            ),
        ] {
            assert_eq!(validate(&[h]).unwrap_err().to_string(), message);
        }
    }
}
