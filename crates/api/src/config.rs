//! Configuration: clap flags, each with an environment-variable fallback. The README's table
//! is the user-facing copy of this file; keep them in step.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};
use clickledger_notifier::ssrf::Cidr;
use secrecy::{ExposeSecret, SecretString};

/// Shortest accepted `--jwt-secret`: HS256 wants at least the hash's 32 bytes of key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database to use: `sqlite://path` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://clickledger.db")]
    pub database_url: String,

    /// Key that seals the secrets stored in the database (tenants' click-ID secrets, webhook
    /// signing secrets, the generated JWT secret): 64 hex digits (`openssl rand -hex 32`).
    /// Without it, the key in `--secret-key-file` is used (generated there on first start).
    #[arg(long, env = "CLICKLEDGER_SECRET_KEY", hide_env_values = true, value_parser = parse_secret_key)]
    pub secret_key: Option<SecretKey>,

    /// Earlier secret keys, comma-separated: they still open what they sealed, and each start
    /// re-seals everything under the current key (see the README on rotating the key).
    #[arg(
        long,
        env = "CLICKLEDGER_PREVIOUS_SECRET_KEYS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = parse_secret_key
    )]
    pub previous_secret_keys: Vec<SecretKey>,

    /// File holding the secret key when no `--secret-key` is given; created (mode 0600) with a
    /// random key if missing. Fine for one machine; replicas must share one `--secret-key`.
    #[arg(long, env = "CLICKLEDGER_SECRET_KEY_FILE", default_value = "clickledger.key")]
    pub secret_key_file: PathBuf,
}

/// A secret key as configured; never printed.
#[derive(Clone, Copy)]
pub struct SecretKey(pub [u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

fn parse_secret_key(value: &str) -> Result<SecretKey, String> {
    clickledger_persistence::sealed::KeyRing::parse_key(value).map(SecretKey)
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub listen: ListenArgs,

    /// Secret that signs session tokens (JWT, HS256); at least 32 bytes. Without it a random
    /// secret is generated and stored in the database, which is only fit for a demo.
    #[arg(long, env = "CLICKLEDGER_JWT_SECRET", hide_env_values = true, value_parser = parse_jwt_secret)]
    pub jwt_secret: Option<SecretString>,

    /// Base URL the outside world uses to reach this server (an absolute http(s) URL without
    /// path, query or fragment); tracking links are built on it. Defaults to `http://<listen>`.
    #[arg(long, env = "CLICKLEDGER_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// Refuse `signUp`: only existing tenants can log in (`clickledger tenant create` makes
    /// new ones from the host).
    #[arg(long, env = "CLICKLEDGER_DISABLE_SIGNUP", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub disable_signup: bool,

    /// Do not create the demo tenant on first start.
    #[arg(long, env = "CLICKLEDGER_NO_DEMO", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
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

    /// Proxies (load balancers) whose `X-Forwarded-For` is believed, as comma-separated
    /// address ranges (`10.0.0.0/8,192.168.1.10`). Requests from anyone else are keyed on the
    /// socket's peer address, whatever header they send.
    #[arg(long, env = "CLICKLEDGER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// A MaxMind-format country database (GeoLite2-Country or GeoLite2-City `.mmdb`): each
    /// click's country is looked up from its address (by the click writer) and reports count
    /// clicks under it; a conversion without a postback `country` takes its click's. A missing
    /// or unreadable file stops the start-up.
    #[arg(long, env = "CLICKLEDGER_GEOIP_DB")]
    pub geoip_db: Option<PathBuf>,

    /// How many missed events a subscription may replay with `since`; an older cursor is
    /// refused (the client reads what it missed with the `conversions` query instead).
    #[arg(long, env = "CLICKLEDGER_MAX_REPLAY_EVENTS", default_value_t = 10_000)]
    pub max_replay_events: u32,

    /// SMTP server for e-mail: `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (TLS), or plain `smtp://127.0.0.1:25` for a local relay.
    /// Without it, e-mails are written as `.eml` files to `--mail-outbox` instead of being sent.
    #[arg(long, env = "CLICKLEDGER_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,

    /// Directory that receives each e-mail as an `.eml` file when no `--smtp-url` is given
    /// (created if missing).
    #[arg(long, env = "CLICKLEDGER_MAIL_OUTBOX", default_value = "./mail-outbox")]
    pub mail_outbox: PathBuf,

    /// Sender of every e-mail.
    #[arg(long, env = "CLICKLEDGER_MAIL_FROM", default_value = "Clickledger <no-reply@clickledger.invalid>")]
    pub mail_from: String,

    /// Time limit of one e-mail send, in seconds.
    #[arg(long, env = "CLICKLEDGER_SMTP_TIMEOUT_SECONDS", default_value_t = 10)]
    pub smtp_timeout_seconds: u64,

    /// Postbacks a minute each API key may send, in bursts of as many, unless the key has a
    /// limit of its own (`postbacksPerMinute`); 0: no limit. Counted per replica.
    #[arg(long, env = "CLICKLEDGER_POSTBACKS_PER_MINUTE_PER_KEY", default_value_t = crate::state::DEFAULT_POSTBACKS_PER_MINUTE_PER_KEY)]
    pub postbacks_per_minute_per_key: u32,

    /// GraphQL requests a minute per signed-in user (all of the user's tokens together; each
    /// operation of a batch counts), in bursts of as many; 0: no limit. Counted per replica.
    #[arg(long, env = "CLICKLEDGER_GRAPHQL_REQUESTS_PER_MINUTE", default_value_t = crate::state::DEFAULT_GRAPHQL_REQUESTS_PER_MINUTE)]
    pub graphql_requests_per_minute: u32,

    /// Clicks a minute one address may make on one link; the clicks beyond are recorded
    /// marked, and the fraud rule VELOCITY flags conversions that name them. 0: no limit.
    /// Counted per replica.
    #[arg(long, env = "CLICKLEDGER_CLICKS_PER_MINUTE_PER_ADDRESS", default_value_t = crate::state::DEFAULT_CLICKS_PER_MINUTE_PER_ADDRESS)]
    pub clicks_per_minute_per_address: u32,

    /// A path where another tracker's links keep working after a migration:
    /// `PATH?btag=CODE` answers as `/c/CODE` (e.g. `/tracking.php`).
    #[arg(long, env = "CLICKLEDGER_LEGACY_LINK_PATH", value_parser = parse_legacy_link_path)]
    pub legacy_link_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the server listens; `healthcheck` reads the same setting to find it.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Address to listen on.
    #[arg(long = "listen", env = "CLICKLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub address: SocketAddr,
}

fn parse_jwt_secret(value: &str) -> Result<SecretString, String> {
    let secret = SecretString::from(value.to_owned());
    if secret.expose_secret().len() < MIN_JWT_SECRET_BYTES {
        return Err(format!("must be at least {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"));
    }
    Ok(secret)
}

/// A path of its own for legacy links: starts with `/`, has only `A-Z a-z 0-9 - _ . /`, and
/// is none of the server's own routes.
pub fn parse_legacy_link_path(value: &str) -> Result<String, String> {
    const OWN: [&str; 9] = [
        "/c",
        "/graphql",
        "/postback",
        "/reports",
        "/dashboard",
        "/set-password",
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    let path = value.trim();
    let valid = path.len() > 1
        && path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !valid {
        return Err("must be a path such as /tracking.php (A-Z a-z 0-9 - _ . /)".to_owned());
    }
    if OWN.iter().any(|own| path == *own || path.starts_with(&format!("{own}/"))) {
        return Err(format!("`{path}` is one of the server's own routes"));
    }
    Ok(path.to_owned())
}

/// An absolute `http`/`https` URL of a host (and port), returned without a trailing slash:
/// tracking links and e-mailed links are built by appending paths to it.
pub fn parse_public_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value)
        .map_err(|err| format!("must be an absolute URL such as https://track.example.com ({err})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must use http or https, not `{}`", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a path, query or fragment (tracking links add their own)".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::{parse_legacy_link_path, parse_public_url};

    #[test]
    fn legacy_link_paths_are_plain_paths_of_their_own() {
        assert_eq!(parse_legacy_link_path("/tracking.php").as_deref(), Ok("/tracking.php"));
        assert_eq!(parse_legacy_link_path("/go/aff_link-1").as_deref(), Ok("/go/aff_link-1"));
        for bad in [
            "",
            "/",
            "tracking.php",
            "/a//b",
            "/trailing/",
            "/a?b",
            "/a b",
            "/c",
            "/c/x",
            "/graphql",
            "/metrics",
            "/dashboard",
            "/dashboard/assets/x.js",
            "/reports/stats.csv",
        ] {
            assert!(parse_legacy_link_path(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn public_urls_are_absolute_http_origins() {
        assert_eq!(
            parse_public_url("https://track.example.com/").as_deref(),
            Ok("https://track.example.com")
        );
        assert_eq!(parse_public_url("http://127.0.0.1:8080").as_deref(), Ok("http://127.0.0.1:8080"));
        for bad in [
            "track.example.com",
            "ftp://x",
            "https://track.example.com/c",
            "https://track.example.com/?a=1",
            "https://track.example.com/#top",
            "https://user:pw@track.example.com",
            "mailto:a@b.c",
            "",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad} accepted");
        }
    }
}
