//! E-mail over SMTP (lettre, rustls): one plain-text UTF-8 message per send, through the
//! `[notify.email]` server with STARTTLS, TLS or (only for a local relay) no encryption.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{EmailConfig, EmailTls, NotifyError, SendError, config_error, error_chain};

pub(super) struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

/// Checks `[notify.email]` (only when a host is set).
pub(super) fn validate(c: &EmailConfig) -> Result<(), NotifyError> {
    if c.host.trim().is_empty() {
        return Ok(());
    }
    if c.host.trim() != c.host || c.host.contains(['/', ' ']) {
        return Err(config_error(
            "notify.email.host",
            "a host name or address, no URL",
        ));
    }
    if c.from.trim().is_empty() {
        return Err(config_error(
            "notify.email.from",
            "the sender address is needed when notify.email.host is set",
        ));
    }
    parse_from(&c.from)?;
    if c.username.is_empty() && !c.password.is_empty() {
        return Err(config_error(
            "notify.email.username",
            "a password is set but no user name",
        ));
    }
    if c.tls == EmailTls::None && !c.username.is_empty() && !is_local(&c.host) {
        return Err(config_error(
            "notify.email.tls",
            "\"none\" would send the password unencrypted; use \"starttls\" or \"tls\"",
        ));
    }
    Ok(())
}

fn parse_from(from: &str) -> Result<Mailbox, NotifyError> {
    from.trim()
        .parse::<Mailbox>()
        .map_err(|e| config_error("notify.email.from", format!("{from:?}: {e}")))
}

impl EmailSender {
    pub(super) fn new(c: &EmailConfig, timeout: Duration) -> Result<EmailSender, NotifyError> {
        let transport_error =
            |e: lettre::transport::smtp::Error| NotifyError::SmtpTransport(error_chain(&e));
        let builder = match c.tls {
            EmailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
                .map_err(transport_error)?,
            EmailTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host).map_err(transport_error)?
            }
            EmailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
        };
        let mut builder = builder.port(c.effective_port()).timeout(Some(timeout));
        if !c.username.is_empty() {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.clone()));
        }
        Ok(EmailSender {
            transport: builder.build(),
            from: parse_from(&c.from)?,
        })
    }

    pub(super) async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let address = |reason: String| SendError::Address {
            address: to.to_string(),
            reason,
        };
        let to: Mailbox = to.trim().parse().map_err(|e| address(format!("{e}")))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| SendError::Build(format!("building the e-mail: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| SendError::Smtp(error_chain(&e)))?;
        Ok(())
    }
}
