//! E-mail: templates, and the transport that sends the queued messages: SMTP through lettre,
//! or, when no SMTP server is configured, an outbox directory that receives each message as an
//! `.eml` file (a log line can be filtered away; a file stays until someone reads it).

pub mod templates;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    #[error("invalid sender address: {0}")]
    From(String),
    #[error("cannot create the mail outbox {path}: {reason}")]
    Outbox { path: String, reason: String },
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
    /// No SMTP configured: each message becomes `<dir>/<id>.eml`.
    Outbox {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
        from: Mailbox,
    },
}

/// Where an e-mail went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Smtp,
    /// Written to the outbox, at this path.
    Outbox(PathBuf),
}

fn sender(from: &str) -> Result<Mailbox, MailError> {
    from.parse().map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))
}

impl Mailer {
    /// `smtp://[user:pass@]host[:port][?tls=required|opportunistic]` (STARTTLS) or
    /// `smtps://…` (TLS from the start); plain `smtp://` without `tls` is for loopback relays.
    pub fn smtp(url: &str, from: &str, timeout: Duration) -> Result<Mailer, MailError> {
        let from = sender(from)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(4))
            .build();
        Ok(Mailer::Smtp { transport, from, timeout })
    }

    /// Writes every message to `dir` (created now if missing, so a bad path stops start-up).
    pub fn outbox(dir: &Path, from: &str) -> Result<Mailer, MailError> {
        let from = sender(from)?;
        std::fs::create_dir_all(dir)
            .map_err(|err| MailError::Outbox { path: dir.display().to_string(), reason: err.to_string() })?;
        Ok(Mailer::Outbox { transport: AsyncFileTransport::new(dir), dir: dir.to_owned(), from })
    }

    /// An outbox in the system's temporary directory, for configurations built in code (tests);
    /// the server always passes its `--mail-outbox`.
    pub fn temporary_outbox() -> Mailer {
        let dir = std::env::temp_dir().join("clickledger-mail-outbox");
        // A constant, known-good address: no parsing that could fail.
        let address = lettre::Address::new_dangerous("no-reply", "clickledger.invalid");
        Mailer::Outbox {
            transport: AsyncFileTransport::new(&dir),
            dir,
            from: Mailbox::new(Some("Clickledger".to_owned()), address),
        }
    }

    /// Sends one message, under its own timeout; `Ok` only once it is handed over (SMTP) or its
    /// file is written (outbox).
    pub async fn send(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<Sent, SendError> {
        match self {
            Mailer::Outbox { transport, dir, from } => {
                let message = compose(from, to, subject, text, html)?;
                // Recreated if someone removed it since start-up.
                let _ = tokio::fs::create_dir_all(dir).await;
                let id = transport.send(message).await.map_err(|e| SendError {
                    message: format!("cannot write to the mail outbox {}: {e}", dir.display()),
                    permanent: false,
                })?;
                let path = dir.join(format!("{id}.eml"));
                tracing::warn!(
                    %to, %subject, path = %path.display(),
                    "e-mail written to the mail outbox (no SMTP server configured)"
                );
                Ok(Sent::Outbox(path))
            }
            Mailer::Smtp { transport, from, timeout } => {
                let message = compose(from, to, subject, text, html)?;
                match tokio::time::timeout(*timeout, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(Sent::Smtp),
                    Ok(Err(e)) => Err(SendError { message: e.to_string(), permanent: e.is_permanent() }),
                    Err(_) => Err(SendError { message: "timed out".to_owned(), permanent: false }),
                }
            }
        }
    }
}

fn compose(
    from: &Mailbox,
    to: &str,
    subject: &str,
    text: &str,
    html: &str,
) -> Result<lettre::Message, SendError> {
    let to: Mailbox = to.parse().map_err(|e: lettre::address::AddressError| SendError {
        message: format!("invalid recipient: {e}"),
        permanent: true,
    })?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text.to_owned(), html.to_owned()))
        .map_err(|e| SendError { message: e.to_string(), permanent: true })
}
