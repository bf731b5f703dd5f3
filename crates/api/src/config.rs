//! Configuration: clap flags, each with an environment-variable fallback. The README's table
//! is the user-facing copy of this file; keep them in step.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use clickledger_notifier::ssrf::Cidr;
use secrecy::SecretString;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database to use: `sqlite://path` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://clickledger.db")]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address to listen on.
    #[arg(long, env = "CLICKLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Secret that signs session tokens (JWT, HS256); at least 32 bytes. Without it a random
    /// secret is generated and stored in the database, which is only fit for a demo.
    #[arg(long, env = "CLICKLEDGER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// Base URL the outside world uses to reach this server; tracking links are built on it.
    /// Defaults to `http://<listen>`.
    #[arg(long, env = "CLICKLEDGER_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Refuse `signUp`: only existing tenants can log in.
    #[arg(long, env = "CLICKLEDGER_DISABLE_SIGNUP")]
    pub disable_signup: bool,

    /// Do not create the demo tenant on first start.
    #[arg(long, env = "CLICKLEDGER_NO_DEMO")]
    pub no_demo: bool,

    /// Lifetime of a session token, in minutes.
    #[arg(long, env = "CLICKLEDGER_TOKEN_TTL_MINUTES", default_value_t = 720)]
    pub token_ttl_minutes: u32,

    /// Log format.
    #[arg(long, env = "CLICKLEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds in-flight requests get to finish on shutdown (Ctrl-C / SIGTERM).
    #[arg(long, env = "CLICKLEDGER_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    /// Non-public address ranges outbound postbacks may nevertheless reach, comma-separated
    /// (`127.0.0.1/32,10.0.0.0/8`). For development and tests only: by default loopback,
    /// private, link-local and other non-public addresses are refused.
    #[arg(long, env = "CLICKLEDGER_OUTBOUND_ALLOW", value_delimiter = ',')]
    pub outbound_allow: Vec<Cidr>,

    /// SMTP server for e-mail: `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (TLS), or plain `smtp://127.0.0.1:25` for a local relay.
    /// Without it, e-mails are written to the log instead of being sent.
    #[arg(long, env = "CLICKLEDGER_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,

    /// Sender of every e-mail.
    #[arg(long, env = "CLICKLEDGER_MAIL_FROM", default_value = "Clickledger <no-reply@clickledger.invalid>")]
    pub mail_from: String,

    /// Time limit of one e-mail send, in seconds.
    #[arg(long, env = "CLICKLEDGER_SMTP_TIMEOUT_SECONDS", default_value_t = 10)]
    pub smtp_timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
