//! E-mail: templates, and the transport that sends the queued messages (SMTP through lettre,
//! or the log when no SMTP server is configured: messages are never silently dropped).

pub mod templates;

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    #[error("invalid sender address: {0}")]
    From(String),
}

/// Why a send failed, and whether trying again could help.
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        timeout: Duration,
    },
    /// No SMTP configured: each message is written to the log.
    Log,
}

impl Mailer {
    /// `smtp://[user:pass@]host[:port][?tls=required|opportunistic]` (STARTTLS) or
    /// `smtps://…` (TLS from the start); plain `smtp://` without `tls` is for loopback relays.
    pub fn smtp(url: &str, from: &str, timeout: Duration) -> Result<Mailer, MailError> {
        let from: Mailbox =
            from.parse().map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(4))
            .build();
        Ok(Mailer::Smtp { transport, from, timeout })
    }

    pub fn is_smtp(&self) -> bool {
        matches!(self, Mailer::Smtp { .. })
    }

    /// Sends one message, under its own timeout.
    pub async fn send(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<(), SendError> {
        match self {
            Mailer::Log => {
                tracing::info!(%to, %subject, body = %text, "e-mail (no SMTP server configured, so logged instead)");
                Ok(())
            }
            Mailer::Smtp { transport, from, timeout } => {
                let to: Mailbox = to.parse().map_err(|e: lettre::address::AddressError| SendError {
                    message: format!("invalid recipient: {e}"),
                    permanent: true,
                })?;
                let message = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(subject)
                    .multipart(MultiPart::alternative_plain_html(text.to_owned(), html.to_owned()))
                    .map_err(|e| SendError { message: e.to_string(), permanent: true })?;
                match tokio::time::timeout(*timeout, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(SendError { message: e.to_string(), permanent: e.is_permanent() }),
                    Err(_) => Err(SendError { message: "timed out".to_owned(), permanent: false }),
                }
            }
        }
    }
}
