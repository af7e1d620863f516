//! Notification tests: the outbox table and the notifier, on SQLite and on PostgreSQL,
//! against an HTTP gateway (axum) and an SMTP sink on 127.0.0.1 started by each test.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hotline_core::notify::{
    Channel, EmailConfig, EmailTls, InviteContext, Message, MessageStatus, NewMessage, Notifier,
    NotifyConfig, NotifyError, NotifyMode, RetryConfig, SmsConfig, render_invite,
};
use hotline_core::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

// ---------------------------------------------------------------------------------------
// Helpers

fn now_ms() -> i64 {
    hotline_core::time::unix_ms()
}

/// Waits until message `id` reaches `status` (or fails the test after 20 s).
async fn wait_for(store: &Store, id: i64, status: MessageStatus) -> Message {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = store.message(id).await.unwrap().unwrap();
        if m.status == status {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "message {id} never became {status:?}: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sms<'a>(to: &'a str, body: &'a str, related: &'a str) -> NewMessage<'a> {
    NewMessage {
        channel: Channel::Sms,
        to,
        subject: "",
        body,
        related,
        now_ms: now_ms(),
    }
}

/// Send mode with tiny waits, so retries take milliseconds.
fn send_config(sms_url: &str) -> NotifyConfig {
    NotifyConfig {
        mode: NotifyMode::Send,
        timeout_secs: 5,
        poll_ms: 50,
        sms: SmsConfig {
            url: sms_url.to_string(),
            ..SmsConfig::default()
        },
        retry: RetryConfig {
            max_attempts: 5,
            first_backoff_ms: 40,
            max_backoff_ms: 200,
        },
        ..NotifyConfig::default()
    }
}

#[derive(Clone, Debug)]
struct Request {
    at: Instant,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
}

/// A test SMS gateway: records every request; fails the first `fail_first` ones.
#[derive(Clone)]
struct Gateway {
    requests: Arc<Mutex<Vec<Request>>>,
    fail_first: Arc<AtomicUsize>,
    fail_status: StatusCode,
    fail_body: String,
    delay: Duration,
}

impl Gateway {
    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn gateway(fail_first: usize, fail_status: u16, fail_body: &str) -> (String, Gateway) {
    gateway_with_delay(fail_first, fail_status, fail_body, Duration::ZERO).await
}

async fn gateway_with_delay(
    fail_first: usize,
    fail_status: u16,
    fail_body: &str,
    delay: Duration,
) -> (String, Gateway) {
    let gw = Gateway {
        requests: Arc::default(),
        fail_first: Arc::new(AtomicUsize::new(fail_first)),
        fail_status: StatusCode::from_u16(fail_status).unwrap(),
        fail_body: fail_body.to_string(),
        delay,
    };
    async fn handle(
        State(gw): State<Gateway>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, String) {
        gw.requests.lock().unwrap().push(Request {
            at: Instant::now(),
            method,
            uri,
            headers,
            body,
        });
        if !gw.delay.is_zero() {
            tokio::time::sleep(gw.delay).await;
        }
        let fail = gw
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            (gw.fail_status, gw.fail_body.clone())
        } else {
            (StatusCode::OK, r#"{"status":"accepted"}"#.to_string())
        }
    }
    let app = Router::new().fallback(handle).with_state(gw.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), gw)
}

/// One mail as the SMTP sink saw it.
#[derive(Clone, Debug, Default)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS).
/// Returns its address, the mails it accepted, and every command it was sent.
async fn smtp_sink() -> (SocketAddr, mpsc::UnboundedReceiver<Mail>, Commands) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let commands = Commands::default();
    let log = commands.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(smtp_session(socket, tx.clone(), log.clone()));
        }
    });
    (addr, rx, commands)
}

type Commands = Arc<Mutex<Vec<String>>>;

async fn smtp_session(socket: TcpStream, mails: mpsc::UnboundedSender<Mail>, commands: Commands) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP test\r\n").await.unwrap();
    let mut mail = Mail::default();
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if in_data {
            if line == "." {
                in_data = false;
                mails.send(std::mem::take(&mut mail)).unwrap();
                write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
            } else {
                let line = line.strip_prefix('.').unwrap_or(&line);
                mail.data.push_str(line);
                mail.data.push('\n');
            }
            continue;
        }
        commands.lock().unwrap().push(line.clone());
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 sink\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            b"250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            b"250 2.1.5 ok\r\n"
        } else if upper == "DATA" {
            in_data = true;
            b"354 end with <CRLF>.<CRLF>\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 ok\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await.unwrap();
            return;
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await.unwrap();
    }
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// Outbox mode

on_both_databases!(
    outbox_mode_keeps_everything_and_sends_nothing,
    |store: Store| async move {
        let (url, gw) = gateway(0, 500, "").await;
        // A gateway and a server are configured, but the mode is the default: outbox.
        let config = NotifyConfig {
            sms: SmsConfig {
                url: format!("{url}/sms"),
                ..SmsConfig::default()
            },
            email: EmailConfig {
                host: "127.0.0.1".into(),
                port: closed_port().await,
                tls: EmailTls::None,
                from: "hotline@example.org".into(),
                ..EmailConfig::default()
            },
            poll_ms: 50,
            ..NotifyConfig::default()
        };
        assert_eq!(config.mode, NotifyMode::Outbox);

        // Queued before the notifier starts, and after.
        let first = store
            .enqueue_message(&sms("+36301234567", "first", "visual:1"))
            .await
            .unwrap();
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let second = notifier
            .enqueue(&NewMessage {
                channel: Channel::Email,
                to: "customer@example.com",
                subject: "Your link",
                body: "second",
                related: "visual:2",
                now_ms: now_ms(),
            })
            .await
            .unwrap();
        wait_for(&store, first, MessageStatus::Outbox).await;
        let kept = wait_for(&store, second, MessageStatus::Outbox).await;
        assert_eq!(kept.attempts, 0);
        assert_eq!(kept.sent_at_ms, None);
        assert_eq!(kept.last_error, None);
        assert_eq!(kept.subject, "Your link");
        assert_eq!(kept.to, "customer@example.com");

        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(gw.requests().is_empty(), "outbox mode sent a request");

        let page = store.outbox_messages(10).await.unwrap();
        let ids: Vec<i64> = page.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![second, first], "newest first");
        assert_eq!(page[1].channel, Channel::Sms);
        assert_eq!(page[1].body, "first");
        assert_eq!(store.outbox_messages(1).await.unwrap().len(), 1);

        // An admin's "send again" queues it, and outbox mode keeps it again.
        assert!(store.requeue_message(first, now_ms()).await.unwrap());
        notifier.wake();
        wait_for(&store, first, MessageStatus::Outbox).await;
        assert!(!store.requeue_message(999_999, now_ms()).await.unwrap());
        notifier.stop().await;
        assert!(gw.requests().is_empty());
    }
);

// ---------------------------------------------------------------------------------------
// SMS gateway

on_both_databases!(
    sms_gateway_gets_the_templated_request,
    |store: Store| async move {
        let (url, gw) = gateway(0, 500, "").await;
        let mut config = send_config(&format!("{url}/api/sms"));
        config
            .sms
            .headers
            .insert("Authorization".into(), "Bearer s3cret".into());
        config
            .sms
            .headers
            .insert("X-Tenant".into(), "hotline".into());

        // Quotes, a slash and accents must survive the JSON body.
        let invite = render_invite(
            &config,
            Channel::Sms,
            &InviteContext {
                link: "https://hotline.example/v/Zx81?a=1&b=2".into(),
                case_number: "K-2024/\"7\"".into(),
                operator: "Kovács Éva".into(),
            },
        )
        .unwrap();
        assert!(invite.body.contains("K-2024/\"7\""));
        assert!(
            invite
                .body
                .contains("https://hotline.example/v/Zx81?a=1&b=2")
        );

        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&NewMessage::from_rendered(
                &invite,
                "+36301234567",
                "visual:42",
                now_ms(),
            ))
            .await
            .unwrap();
        let sent = wait_for(&store, id, MessageStatus::Sent).await;
        assert_eq!(sent.attempts, 1);
        assert_eq!(sent.last_error, None);
        assert!(sent.sent_at_ms.unwrap() >= sent.created_at_ms);

        let requests = gw.requests();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.uri.path(), "/api/sms");
        assert_eq!(r.headers["authorization"], "Bearer s3cret");
        assert_eq!(r.headers["x-tenant"], "hotline");
        assert_eq!(r.headers["content-type"], "application/json");
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(json["to"], "+36301234567");
        assert_eq!(json["text"], invite.body.as_str());

        // The waiting screen finds it by what it belongs to.
        let related = store.messages_related("visual:42").await.unwrap();
        assert_eq!(related.len(), 1);
        assert_eq!(related[0].status, MessageStatus::Sent);
        assert!(
            store
                .messages_related("visual:43")
                .await
                .unwrap()
                .is_empty()
        );
        notifier.stop().await;
    }
);

on_both_databases!(
    sms_gateway_with_get_and_templated_url,
    |store: Store| async move {
        let (url, gw) = gateway(0, 500, "").await;
        let mut config = send_config(&format!(
            "{url}/send?user=hl&to={{{{ to|urlencode }}}}&msg={{{{ text|urlencode }}}}"
        ));
        config.sms.method = "GET".into();
        config.sms.body = String::new();
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&sms("+36 30 123 4567", "Hi & bye: ő", "visual:7"))
            .await
            .unwrap();
        wait_for(&store, id, MessageStatus::Sent).await;
        let requests = gw.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, Method::GET);
        assert_eq!(requests[0].body, "");
        assert!(requests[0].headers.get("content-type").is_none());
        assert_eq!(
            requests[0].uri.query().unwrap(),
            "user=hl&to=%2B36%2030%20123%204567&msg=Hi%20%26%20bye%3A%20%C5%91"
        );
        notifier.stop().await;
    }
);

on_both_databases!(
    gateway_fails_twice_then_the_message_is_sent,
    |store: Store| async move {
        let (url, gw) = gateway(2, 500, "busy").await;
        let notifier = Notifier::start(store.clone(), send_config(&format!("{url}/sms"))).unwrap();
        let id = notifier
            .enqueue(&sms("+36301234567", "hello", "visual:3"))
            .await
            .unwrap();
        let sent = wait_for(&store, id, MessageStatus::Sent).await;
        assert_eq!(sent.attempts, 3);
        assert_eq!(sent.last_error, None, "a sent message shows no error");
        let requests = gw.requests();
        assert_eq!(requests.len(), 3);
        // Backoff: 40 ms after the first failure, 80 ms after the second. Retry times are
        // kept in whole milliseconds, so a retry may come up to 1 ms early by the clock.
        let gap1 = requests[1].at - requests[0].at;
        let gap2 = requests[2].at - requests[1].at;
        assert!(
            gap1 >= Duration::from_millis(39),
            "first retry after {gap1:?}"
        );
        assert!(
            gap2 >= Duration::from_millis(79),
            "second retry after {gap2:?}"
        );
        assert!(requests.iter().all(|r| r.body == requests[0].body));
        notifier.stop().await;
    }
);

on_both_databases!(
    gives_up_after_max_attempts_with_the_reason,
    |store: Store| async move {
        let answer = format!("overloaded: {}", "x".repeat(400));
        let (url, gw) = gateway(usize::MAX, 503, &answer).await;
        let mut config = send_config(&format!("{url}/sms"));
        config.retry.max_attempts = 3;
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&sms("+36301234567", "hello", "visual:4"))
            .await
            .unwrap();
        let failed = wait_for(&store, id, MessageStatus::Failed).await;
        assert_eq!(failed.attempts, 3);
        assert_eq!(failed.sent_at_ms, None);
        let error = failed.last_error.unwrap();
        let prefix = "the gateway answered 503: ";
        assert!(error.starts_with(prefix), "{error}");
        assert!(error.contains("overloaded: xxx"), "{error}");
        assert_eq!(
            error.len(),
            prefix.len() + 200,
            "the first 200 bytes: {error}"
        );
        // Nothing more is tried.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(gw.requests().len(), 3);
        assert_eq!(
            store.message(id).await.unwrap().unwrap().status,
            MessageStatus::Failed
        );
        notifier.stop().await;
    }
);

on_both_databases!(
    unreachable_gateway_fails_with_the_reason,
    |store: Store| async move {
        let port = closed_port().await;
        let mut config = send_config(&format!("http://127.0.0.1:{port}/sms?key=secret-key"));
        config.retry.max_attempts = 2;
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&sms("+36301234567", "hello", "visual:5"))
            .await
            .unwrap();
        let failed = wait_for(&store, id, MessageStatus::Failed).await;
        assert_eq!(failed.attempts, 2);
        let error = failed.last_error.unwrap().to_lowercase();
        assert!(error.contains("connect"), "{error}");
        assert!(
            !error.contains("secret-key"),
            "the URL's key leaked: {error}"
        );
        notifier.stop().await;
    }
);

// ---------------------------------------------------------------------------------------
// E-mail

on_both_databases!(email_goes_out_over_smtp, |store: Store| async move {
    let (addr, mut mails, _) = smtp_sink().await;
    let config = NotifyConfig {
        mode: NotifyMode::Send,
        poll_ms: 50,
        timeout_secs: 5,
        email: EmailConfig {
            host: addr.ip().to_string(),
            port: addr.port(),
            tls: EmailTls::None,
            from: "Hotline <hotline@example.org>".into(),
            ..EmailConfig::default()
        },
        ..NotifyConfig::default()
    };
    let invite = render_invite(
        &config,
        Channel::Email,
        &InviteContext {
            link: "https://hotline.example/v/Qm7".into(),
            case_number: "CASE-7".into(),
            operator: "Anna Nagy".into(),
        },
    )
    .unwrap();
    assert_eq!(invite.subject, "Your video session link (case CASE-7)");

    let notifier = Notifier::start(store.clone(), config).unwrap();
    let id = notifier
        .enqueue(&NewMessage::from_rendered(
            &invite,
            "customer@example.com",
            "visual:9",
            now_ms(),
        ))
        .await
        .unwrap();
    let sent = wait_for(&store, id, MessageStatus::Sent).await;
    assert_eq!(sent.attempts, 1);

    let mail = tokio::time::timeout(Duration::from_secs(5), mails.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(mail.from.contains("<hotline@example.org>"), "{mail:?}");
    assert_eq!(mail.to.len(), 1);
    assert!(mail.to[0].contains("<customer@example.com>"), "{mail:?}");
    let data = mail.data.replace("\r\n", "\n");
    assert!(
        data.contains("Subject: Your video session link (case CASE-7)\n"),
        "{data}"
    );
    assert!(data.contains("To: customer@example.com"), "{data}");
    assert!(
        data.contains("From: Hotline <hotline@example.org>"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    assert!(
        data.contains("Anna Nagy invites you to a video session about case CASE-7."),
        "{data}"
    );
    assert!(data.contains("https://hotline.example/v/Qm7"), "{data}");

    // A bad address fails at once: retrying can't fix it.
    let bad = notifier
        .enqueue(&NewMessage {
            channel: Channel::Email,
            to: "not an address",
            subject: "s",
            body: "b",
            related: "visual:10",
            now_ms: now_ms(),
        })
        .await
        .unwrap();
    let failed = wait_for(&store, bad, MessageStatus::Failed).await;
    assert_eq!(failed.attempts, 1);
    assert!(
        failed.last_error.unwrap().starts_with("invalid address"),
        "reason"
    );

    // SMS isn't configured here: an SMS is kept in the outbox, with the reason.
    let kept = notifier
        .enqueue(&sms("+36301234567", "hello", "visual:11"))
        .await
        .unwrap();
    let kept = wait_for(&store, kept, MessageStatus::Outbox).await;
    assert_eq!(
        kept.last_error.as_deref(),
        Some("not sent: notify.sms.url is not set")
    );
    notifier.stop().await;
});

on_both_databases!(
    smtp_server_down_is_retried_then_fails,
    |store: Store| async move {
        let config = NotifyConfig {
            mode: NotifyMode::Send,
            poll_ms: 50,
            timeout_secs: 5,
            email: EmailConfig {
                host: "127.0.0.1".into(),
                port: closed_port().await,
                tls: EmailTls::None,
                from: "hotline@example.org".into(),
                ..EmailConfig::default()
            },
            retry: RetryConfig {
                max_attempts: 2,
                first_backoff_ms: 20,
                max_backoff_ms: 20,
            },
            ..NotifyConfig::default()
        };
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&NewMessage {
                channel: Channel::Email,
                to: "customer@example.com",
                subject: "s",
                body: "b",
                related: "",
                now_ms: now_ms(),
            })
            .await
            .unwrap();
        let failed = wait_for(&store, id, MessageStatus::Failed).await;
        assert_eq!(failed.attempts, 2);
        assert!(failed.last_error.unwrap().starts_with("SMTP: "));
        notifier.stop().await;
    }
);

on_both_databases!(
    starttls_is_required_before_credentials,
    |store: Store| async move {
        // The sink doesn't offer STARTTLS: nothing may be sent, least of all the password.
        let (addr, _mails, commands) = smtp_sink().await;
        let config = NotifyConfig {
            mode: NotifyMode::Send,
            poll_ms: 50,
            timeout_secs: 5,
            email: EmailConfig {
                host: addr.ip().to_string(),
                port: addr.port(),
                tls: EmailTls::Starttls,
                username: "hotline".into(),
                password: "hunter2".into(),
                from: "hotline@example.org".into(),
            },
            retry: RetryConfig {
                max_attempts: 1,
                ..RetryConfig::default()
            },
            ..NotifyConfig::default()
        };
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&NewMessage {
                channel: Channel::Email,
                to: "customer@example.com",
                subject: "s",
                body: "b",
                related: "",
                now_ms: now_ms(),
            })
            .await
            .unwrap();
        let failed = wait_for(&store, id, MessageStatus::Failed).await;
        assert!(failed.last_error.unwrap().starts_with("SMTP: "));
        let commands = commands.lock().unwrap().clone();
        assert!(
            commands
                .iter()
                .all(|c| !c.to_ascii_uppercase().starts_with("AUTH") && !c.starts_with("MAIL")),
            "{commands:?}"
        );
        notifier.stop().await;
    }
);

#[tokio::test]
async fn tls_transports_build_for_every_mode() {
    // Building the rustls clients (platform verifier, aws-lc-rs) touches no network.
    for tls in [EmailTls::Starttls, EmailTls::Tls, EmailTls::None] {
        let config = NotifyConfig {
            mode: NotifyMode::Send,
            sms: SmsConfig {
                url: "https://gateway.example/sms".into(),
                ..SmsConfig::default()
            },
            email: EmailConfig {
                host: "smtp.example.org".into(),
                tls,
                from: "hotline@example.org".into(),
                ..EmailConfig::default()
            },
            ..NotifyConfig::default()
        };
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let notifier = Notifier::start(store, config).unwrap();
        notifier.stop().await;
        notifier.stop().await; // twice is harmless
    }
}

// ---------------------------------------------------------------------------------------
// Durability

on_both_databases!(
    messages_queued_while_no_notifier_runs_are_sent_later,
    |store: Store| async move {
        let (url, gw) = gateway(0, 500, "").await;
        let config = send_config(&format!("{url}/sms"));

        // Stored while nothing runs (before a restart).
        let early = store
            .enqueue_message(&sms("+36301111111", "early", "visual:20"))
            .await
            .unwrap();
        // A node claimed this one and died mid-send: its claim has expired.
        let stranded = store
            .enqueue_message(&sms("+36302222222", "stranded", "visual:21"))
            .await
            .unwrap();
        sqlx::query(
            "UPDATE outbox SET status = 'sending', claim = 'dead-node-1', claim_until = $1, \
         attempts = 1 WHERE id = $2",
        )
        .bind(now_ms() - 1)
        .bind(stranded)
        .execute(store.pool())
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            store.message(early).await.unwrap().unwrap().status,
            MessageStatus::Queued
        );
        assert!(gw.requests().is_empty());

        let notifier = Notifier::start(store.clone(), config.clone()).unwrap();
        assert_eq!(
            wait_for(&store, early, MessageStatus::Sent).await.attempts,
            1
        );
        assert_eq!(
            wait_for(&store, stranded, MessageStatus::Sent)
                .await
                .attempts,
            2
        );
        notifier.stop().await;

        // Stopped: a new message waits, and the next start sends it.
        let later = store
            .enqueue_message(&sms("+36303333333", "later", "visual:22"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            store.message(later).await.unwrap().unwrap().status,
            MessageStatus::Queued
        );
        let restarted = Notifier::start(store.clone(), config).unwrap();
        wait_for(&store, later, MessageStatus::Sent).await;
        restarted.stop().await;

        let bodies: Vec<String> = gw.requests().iter().map(|r| r.body.clone()).collect();
        assert_eq!(bodies.len(), 3, "{bodies:?}");
        for text in ["early", "stranded", "later"] {
            assert_eq!(
                bodies.iter().filter(|b| b.contains(text)).count(),
                1,
                "{text} in {bodies:?}"
            );
        }
    }
);

/// Two notifiers (two nodes) on one database: every message goes out exactly once.
async fn each_message_sent_once(store_a: Store, store_b: Store) {
    let (url, gw) = gateway_with_delay(0, 500, "", Duration::from_millis(5)).await;
    let config = send_config(&format!("{url}/sms"));
    let a = Notifier::start(store_a.clone(), config.clone()).unwrap();
    let b = Notifier::start(store_b.clone(), config).unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let text = format!("message {i}");
        let store = if i % 2 == 0 { &store_a } else { &store_b };
        ids.push(
            store
                .enqueue_message(&sms("+36301234567", &text, "load"))
                .await
                .unwrap(),
        );
        if i % 8 == 7 {
            a.wake();
            b.wake();
        }
    }
    for id in &ids {
        wait_for(&store_a, *id, MessageStatus::Sent).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in gw.requests() {
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        *seen
            .entry(json["text"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|n| *n == 1), "sent twice: {seen:?}");
    for m in store_a.messages_related("load").await.unwrap() {
        assert_eq!(m.attempts, 1);
    }
    a.stop().await;
    b.stop().await;
}

on_both_databases!(
    two_notifiers_on_one_store_send_each_message_once,
    |store: Store| async move {
        each_message_sent_once(store.clone(), store).await;
    }
);

#[tokio::test]
async fn two_nodes_on_one_postgres_send_each_message_once() {
    let (store_a, schema) = common::postgres_store().await;
    store_a.migrate().await.unwrap();
    // A second pool on the same schema: another node.
    let base = common::postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store_b = Store::connect(&url).await.unwrap();
    each_message_sent_once(store_a.clone(), store_b.clone()).await;
    store_b.close().await;
    store_a.close().await;
    common::drop_schema(&schema).await;
}

// ---------------------------------------------------------------------------------------
// Templates and settings

fn invite_ctx() -> InviteContext {
    InviteContext {
        link: "https://hotline.example/v/abc".into(),
        case_number: "CASE-1".into(),
        operator: "Anna <b>&\"Nagy\"".into(),
    }
}

#[test]
fn default_invites_render_plain_text() {
    let config = NotifyConfig::default();
    let sms = render_invite(&config, Channel::Sms, &invite_ctx()).unwrap();
    assert_eq!(sms.channel, Channel::Sms);
    assert_eq!(sms.subject, "");
    assert!(sms.body.contains("case CASE-1"));
    assert!(sms.body.ends_with("https://hotline.example/v/abc"));

    let email = render_invite(&config, Channel::Email, &invite_ctx()).unwrap();
    assert_eq!(email.subject, "Your video session link (case CASE-1)");
    // Plain text: nothing is escaped.
    assert!(
        email.body.contains("Anna <b>&\"Nagy\" invites you"),
        "{}",
        email.body
    );
    assert!(email.body.contains("\nhttps://hotline.example/v/abc\n"));

    // Without an operator name the e-mail still reads well.
    let anonymous = InviteContext {
        operator: String::new(),
        ..invite_ctx()
    };
    let email = render_invite(&config, Channel::Email, &anonymous).unwrap();
    assert!(email.body.contains("Our operator invites you"));
}

#[tokio::test]
async fn template_errors_are_reported_with_the_setting() {
    let mut config = NotifyConfig::default();
    config.templates.sms_invite = "Case {{ case_number ".into();
    let e = render_invite(&config, Channel::Sms, &invite_ctx()).unwrap_err();
    assert!(
        matches!(&e, NotifyError::Template { setting, .. } if setting == "notify.templates.sms_invite"),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("notify.templates.sms_invite: "),
        "{e}"
    );
    assert!(config.validate().is_err());
    // The notifier refuses to start with it.
    let store = Store::connect("sqlite::memory:").await.unwrap();
    assert!(Notifier::start(store, config.clone()).is_err());

    // A misspelt variable is an error, not an empty string.
    let mut config = NotifyConfig::default();
    config.templates.email_invite_body = "Open {{ lnk }}".into();
    let e = render_invite(&config, Channel::Email, &invite_ctx()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("notify.templates.email_invite_body: "),
        "{e}"
    );
    // The SMS doesn't use that template.
    assert!(render_invite(&config, Channel::Sms, &invite_ctx()).is_ok());
    let e = config.validate().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("notify.templates.email_invite_body: "),
        "{e}"
    );

    let mut config = NotifyConfig::default();
    config.templates.email_invite_subject = "{{ '' }}".into();
    let e = render_invite(&config, Channel::Email, &invite_ctx()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("notify.templates.email_invite_subject: ")
    );
}

#[test]
fn settings_are_checked_and_named() {
    let setting_of = |config: &NotifyConfig| match config.validate() {
        Err(NotifyError::Config { setting, .. }) => setting,
        Err(NotifyError::Template { setting, .. }) => setting,
        other => panic!("expected a config error, got {other:?}"),
    };
    assert!(NotifyConfig::default().validate().is_ok());

    let mut c = send_config("ftp://gateway.example/sms");
    assert_eq!(setting_of(&c), "notify.sms.url");
    c.sms.url = "not a url".into();
    assert_eq!(setting_of(&c), "notify.sms.url");
    c.sms.url = "https://gateway.example/sms?to={{ to|urlencode }}".into();
    assert!(c.validate().is_ok());
    c.sms.url = "https://gateway.example/sms?to={{ number }}".into();
    assert_eq!(setting_of(&c), "notify.sms.url");

    let mut c = send_config("https://gateway.example/sms");
    c.sms.method = "FETCH".into();
    assert_eq!(setting_of(&c), "notify.sms.method");
    let mut c = send_config("https://gateway.example/sms");
    c.sms.headers.insert("Bad Header".into(), "x".into());
    assert_eq!(setting_of(&c), "notify.sms.headers.Bad Header");
    let mut c = send_config("https://gateway.example/sms");
    c.sms.headers.insert("X-Key".into(), "line\nbreak".into());
    assert_eq!(setting_of(&c), "notify.sms.headers.X-Key");
    let mut c = send_config("https://gateway.example/sms");
    c.sms.body = "{{ to|tojson }".into();
    assert_eq!(setting_of(&c), "notify.sms.body");

    let mut c = send_config("");
    assert_eq!(setting_of(&c), "notify.mode");
    c.email.host = "smtp.example.org".into();
    assert_eq!(setting_of(&c), "notify.email.from");
    c.email.from = "not an address".into();
    assert_eq!(setting_of(&c), "notify.email.from");
    c.email.from = "Hotline <hotline@example.org>".into();
    assert!(c.validate().is_ok());
    c.email.password = "pw".into();
    assert_eq!(setting_of(&c), "notify.email.username");
    c.email.username = "hotline".into();
    c.email.tls = EmailTls::None;
    assert_eq!(setting_of(&c), "notify.email.tls");
    c.email.tls = EmailTls::Tls;
    assert!(c.validate().is_ok());

    let mut c = NotifyConfig::default();
    c.retry.max_attempts = 0;
    assert_eq!(setting_of(&c), "notify.retry.max_attempts");
    let mut c = NotifyConfig::default();
    c.retry.max_backoff_ms = 1;
    assert_eq!(setting_of(&c), "notify.retry.max_backoff_ms");
    let c = NotifyConfig {
        timeout_secs: 0,
        ..NotifyConfig::default()
    };
    assert_eq!(setting_of(&c), "notify.timeout_secs");

    // The error text names the setting first.
    let e = send_config("ftp://x").validate().unwrap_err().to_string();
    assert!(e.starts_with("notify.sms.url: "), "{e}");
}

#[test]
fn passwords_stay_out_of_debug_output() {
    let mut c = NotifyConfig::default();
    c.email.password = "hunter2".into();
    c.sms
        .headers
        .insert("Authorization".into(), "Bearer t0ken".into());
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("t0ken"), "{debug}");
}

#[test]
fn backoff_doubles_up_to_the_maximum() {
    let r = RetryConfig::default();
    assert_eq!(r.backoff(1), Duration::from_secs(5));
    assert_eq!(r.backoff(2), Duration::from_secs(10));
    assert_eq!(r.backoff(3), Duration::from_secs(20));
    assert_eq!(r.backoff(7), Duration::from_secs(300));
    assert_eq!(r.backoff(200), Duration::from_secs(300));
}

/// The `[notify]` section as config/hotline.toml documents it: every setting, at its default.
const DOCUMENTED: &str = r#"
[notify]
# "outbox": nothing leaves the machine; every message is kept and shown on the admin
# outbox page. "send": SMS through the gateway below, e-mail through the SMTP server.
mode = "outbox"
# Seconds one send (an HTTP request, an SMTP session) may take before it counts as failed.
timeout_secs = 30
# Milliseconds between looks for messages due for a retry or queued by another node.
poll_ms = 1000

[notify.sms]
# The HTTP gateway's URL, a template with {{ to }} (the number) and {{ text }}; for a GET
# gateway e.g. "https://sms.example/send?to={{ to|urlencode }}&text={{ text|urlencode }}".
# Empty: no gateway, SMS messages stay in the outbox even in "send" mode.
url = ""
# GET, POST, PUT or PATCH.
method = "POST"
# The request body, a template with {{ to }} and {{ text }}; empty sends no body.
body = '{"to": {{ to|tojson }}, "text": {{ text|tojson }}}'
content_type = "application/json"

[notify.sms.headers]
# Extra request headers, e.g. the gateway's credentials:
# Authorization = "Bearer …"

[notify.email]
# The SMTP server. Empty: no e-mail, e-mails stay in the outbox even in "send" mode.
host = ""
# 0: 587 for starttls, 465 for tls, 25 for none.
port = 0
# "starttls", "tls" (SMTPS) or "none" (only for a relay on this machine).
tls = "starttls"
# Empty: no authentication.
username = ""
password = ""
# The sender, e.g. "Hotline <hotline@example.org>"; needed when host is set.
from = ""

[notify.templates]
# Invite texts (minijinja) with {{ link }}, {{ case_number }} and {{ operator }}. Plain
# text: nothing is escaped; an unknown variable is an error at start-up.
sms_invite = "Hotline, case {{ case_number }}: please open this link on your phone to start the video session: {{ link }}"
email_invite_subject = "Your video session link (case {{ case_number }})"
email_invite_body = '''
Hello,

{{ operator or "Our operator" }} invites you to a video session about case {{ case_number }}.

Please open this link on your smartphone, in Chrome, Safari or Firefox:

{{ link }}

The link is for you only and works for a limited time.

Hotline
'''

[notify.retry]
# A failed send is tried again after first_backoff_ms, doubling up to max_backoff_ms;
# after max_attempts attempts the message has failed (the reason is shown).
max_attempts = 8
first_backoff_ms = 5000
max_backoff_ms = 300000
"#;

fn notify_section(text: &str) -> Result<NotifyConfig, toml::de::Error> {
    let table: toml::Table = toml::from_str(text)?;
    let section = table
        .get("notify")
        .cloned()
        .unwrap_or(toml::Value::Table(Default::default()));
    section.try_into()
}

#[test]
fn every_setting_has_a_default() {
    assert_eq!(notify_section("").unwrap(), NotifyConfig::default());
    assert_eq!(notify_section("[notify]").unwrap(), NotifyConfig::default());
    assert_eq!(notify_section(DOCUMENTED).unwrap(), NotifyConfig::default());
    let c = notify_section("[notify]\nmode = \"send\"\n[notify.sms]\nurl = \"https://gw.example/x\"\n[notify.sms.headers]\nAuthorization = \"Bearer x\"\n").unwrap();
    assert_eq!(c.mode, NotifyMode::Send);
    assert_eq!(c.sms.headers["Authorization"], "Bearer x");
    assert_eq!(c.sms.method, "POST");
    assert!(c.validate().is_ok());
    assert!(notify_section("[notify]\nmode = \"loud\"").is_err());
    assert!(notify_section("[notify]\nmodus = \"send\"").is_err());
    assert!(notify_section("[notify.email]\ntls = \"ssl\"").is_err());
}

// ---------------------------------------------------------------------------------------
// Gateways that answer errors with 200 OK, and the retention of old messages (issue 15)

on_both_databases!(
    a_200_whose_body_says_error_is_a_failure,
    |store: Store| async move {
        let error = r#"{"status":"error","message":"invalid API key"}"#;
        // The gateway answers its first request 200 with an error body, then accepts.
        let (url, gw) = gateway(1, 200, error).await;
        let mut config = send_config(&format!("{url}/sms"));
        config.sms.error_body_regex = r#""status"\s*:\s*"error""#.into();
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&sms("+36301234567", "hello", "visual:1"))
            .await
            .unwrap();
        let sent = wait_for(&store, id, MessageStatus::Sent).await;
        assert_eq!(
            sent.attempts, 2,
            "the 200 with the error body was a failure"
        );
        assert_eq!(gw.requests().len(), 2);
        notifier.stop().await;

        // Without the setting, a 200 is a success whatever it says (the default).
        let (url, gw) = gateway(1, 200, error).await;
        let notifier = Notifier::start(store.clone(), send_config(&format!("{url}/sms"))).unwrap();
        let id = notifier
            .enqueue(&sms("+36301234567", "hello", "visual:2"))
            .await
            .unwrap();
        let sent = wait_for(&store, id, MessageStatus::Sent).await;
        assert_eq!(sent.attempts, 1);
        assert_eq!(gw.requests().len(), 1);
        notifier.stop().await;
    }
);

on_both_databases!(
    a_200_error_is_recorded_with_the_body,
    |store: Store| async move {
        let (url, _gw) = gateway(100, 200, "ERR: 21 no credit").await;
        let mut config = send_config(&format!("{url}/sms"));
        config.sms.error_body_regex = "^ERR".into();
        config.retry.max_attempts = 2;
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let id = notifier
            .enqueue(&sms("+36301234567", "hello", "visual:3"))
            .await
            .unwrap();
        let failed = wait_for(&store, id, MessageStatus::Failed).await;
        let why = failed.last_error.unwrap();
        assert!(why.contains("ERR: 21 no credit"), "{why}");
        assert!(why.contains("error_body_regex"), "{why}");
        notifier.stop().await;
    }
);

on_both_databases!(old_messages_are_purged, |store: Store| async move {
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    let mut ids = Vec::new();
    for (status, age_days) in [
        ("sent", 40),
        ("failed", 40),
        ("outbox", 40),
        ("sent", 5),
        ("queued", 40),
    ] {
        let id = store
            .enqueue_message(&sms("+36301234567", "a link", "visual:9"))
            .await
            .unwrap();
        sqlx::query("UPDATE outbox SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now - age_days * day)
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        ids.push(id);
    }
    // The notifier purges when it starts (and every hour), by notify.retention_days.
    let config = NotifyConfig {
        retention_days: 30,
        poll_ms: 50,
        ..NotifyConfig::default()
    };
    let notifier = Notifier::start(store.clone(), config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.message(ids[0]).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "never purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    notifier.stop().await;
    let left: Vec<bool> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(store.message(*id).await.unwrap().is_some());
        }
        v
    };
    // An old sent message is gone. A recent one stays, and so do the failed and kept
    // (outbox) ones, which an admin may still send again, and one still waiting to be sent.
    assert_eq!(left, [false, true, true, true, true]);
    assert!(store.requeue_message(ids[1], now_ms()).await.unwrap());
    assert!(store.requeue_message(ids[2], now_ms()).await.unwrap());
    // However old, only sent messages are purged: the recent sent one.
    assert_eq!(store.purge_messages(now_ms() + 1).await.unwrap(), 1);
    assert_eq!(NotifyConfig::default().retention_days, 30);
});

#[test]
fn a_bad_error_body_regex_is_named() {
    let mut c = send_config("https://gateway.example/sms");
    c.sms.error_body_regex = "(unclosed".into();
    let e = c.validate().unwrap_err();
    assert!(
        e.to_string().starts_with("notify.sms.error_body_regex: "),
        "{e}"
    );
}
