//! Start-up and shutdown: connect and migrate, seed the demo on first start, build the routes,
//! serve until Ctrl-C / SIGTERM, then let in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use clickledger_persistence::{Db, settings};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::middleware::CatchPanic;
use poem::{EndpointExt, Route, Server, get};
use rand::Rng;
use secrecy::ExposeSecret;

use crate::auth::{JwtKeys, LoginLimiter};
use crate::cli::{anyhow_like, init_logging};
use crate::config::ServeArgs;
use crate::state::{AppState, SharedState};
use crate::tracking::ClickBatcher;
use crate::{demo, graphql, http, metrics, tracking};

/// Login attempts allowed per account, and per client address, per minute.
const LOGINS_PER_ACCOUNT_PER_MINUTE: u32 = 10;
const LOGINS_PER_ADDRESS_PER_MINUTE: u32 = 60;
const MIN_JWT_SECRET_BYTES: usize = 32;

pub async fn run(args: ServeArgs) -> anyhow_like::Result {
    init_logging(args.log_format);
    let db = Db::connect(&args.database.database_url).await?;
    db.migrate().await?;

    let jwt_secret = jwt_secret(&args, &db).await?;
    let demo = if args.no_demo { None } else { demo::seed_once(&db).await? };
    let prometheus = metrics::install()?;

    let acceptor = TcpListener::bind(args.listen).into_acceptor().await?;
    let local = acceptor.local_addr().into_iter().find_map(|addr| addr.as_socket_addr().copied());
    let listen = local.map(|addr| addr.to_string()).unwrap_or_else(|| args.listen.to_string());
    // Without --public-url, links point at the address actually bound (port 0 picks one).
    let public_url = args.public_url.as_deref().map(|url| url.trim_end_matches('/').to_owned());
    let public_url = public_url.unwrap_or_else(|| format!("http://{listen}"));

    let (clicks, click_writer) = ClickBatcher::start(db.clone());
    let policy = clickledger_notifier::ssrf::AddressPolicy::allowing(args.outbound_allow.clone());
    let mailer = match &args.smtp_url {
        Some(url) => clickledger_notifier::mail::Mailer::smtp(
            url.expose_secret(),
            &args.mail_from,
            Duration::from_secs(args.smtp_timeout_seconds),
        )?,
        None => {
            tracing::warn!("no --smtp-url / CLICKLEDGER_SMTP_URL: e-mails are written to the log, not sent");
            clickledger_notifier::mail::Mailer::Log
        }
    };
    let (notifier, outbound) = crate::outbound::build(db.clone(), policy, mailer)?;
    let state: SharedState = Arc::new(AppState::new(
        db.clone(),
        JwtKeys::new(&jwt_secret, args.token_ttl_minutes),
        LoginLimiter::new(LOGINS_PER_ACCOUNT_PER_MINUTE, LOGINS_PER_ADDRESS_PER_MINUTE),
        public_url,
        !args.disable_signup,
        clicks,
        outbound,
    ));
    let notifier = crate::outbound::start(&notifier, &state.live);
    let listener = state.live.spawn_listener(db.clone());
    let retraining = state.models.spawn_retraining(db.clone());
    let schema = graphql::build_schema(state.clone());

    let app = Route::new()
        .at("/graphql", get(http::graphql::get).post(http::graphql::post))
        .at("/graphql/ws", get(http::graphql::websocket))
        .at("/c/:code", get(tracking::click).head(tracking::click))
        .at("/postback", get(http::postback::receive).post(http::postback::receive))
        .at("/set-password", get(http::set_password::show).post(http::set_password::submit))
        .at("/healthz", get(http::ops::healthz))
        .at("/readyz", get(http::ops::readyz))
        .at("/metrics", get(http::ops::metrics))
        .data(state.clone())
        .data(schema)
        .data(prometheus)
        .around(metrics::track)
        .with(CatchPanic::new());

    announce(&listen, &state.public_url, demo.as_ref(), args.no_demo);

    let limiter_state = state.clone();
    let janitor = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limiter_state.login_limiter.retain_recent();
        }
    });

    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            shutdown_signal(),
            Some(Duration::from_secs(args.shutdown_grace_seconds)),
        )
        .await?;
    janitor.abort();
    retraining.abort();
    if let Some(listener) = listener {
        listener.abort();
    }
    // Deliveries under way get a moment; any cut short are retried at the next start.
    notifier.stop().await;
    // Clicks already answered are in the queue: write them before exiting.
    state.clicks.stop();
    let _ = click_writer.await;
    tracing::info!("shut down");
    db.close().await;
    Ok(())
}

/// The configured secret, or for the demo a random one persisted in the database, so tokens
/// survive a restart.
async fn jwt_secret(args: &ServeArgs, db: &Db) -> anyhow_like::Result<Vec<u8>> {
    if let Some(secret) = &args.jwt_secret {
        let bytes = secret.expose_secret().as_bytes().to_vec();
        if bytes.len() < MIN_JWT_SECRET_BYTES {
            return Err(format!("--jwt-secret must be at least {MIN_JWT_SECRET_BYTES} bytes").into());
        }
        return Ok(bytes);
    }
    tracing::warn!(
        "no --jwt-secret / CLICKLEDGER_JWT_SECRET given: using a generated secret stored in the database; \
         fine for a demo, not for production"
    );
    let (secret, _) = settings::get_or_init(db, "generated_jwt_secret", || {
        let bytes: [u8; 32] = rand::rng().random();
        hex_string(&bytes)
    })
    .await?;
    Ok(secret.into_bytes())
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a newcomer needs, on standard output (logs may be JSON or filtered).
fn announce(listen: &str, public_url: &str, demo: Option<&demo::DemoCredentials>, no_demo: bool) {
    println!("Clickledger listening on http://{listen}");
    println!("  GraphiQL:      http://{listen}/graphql");
    println!("  Tracking URL:  {public_url}/c/{{code}}");
    match demo {
        Some(creds) => {
            println!("  Demo tenant `{}` created. Save these, they are shown once:", demo::DEMO_SLUG);
            println!("    owner      {} / {}", demo::DEMO_EMAIL, creds.password);
            println!("    affiliate  affiliate@demo.clickledger.dev / {}", creds.affiliate_password);
            println!("    API key    {}", creds.api_key);
            println!("    link       {public_url}/c/{}", creds.link_code);
        }
        None if !no_demo => {
            println!(
                "  Demo tenant `{}`: owner {} (password shown at first start)",
                demo::DEMO_SLUG,
                demo::DEMO_EMAIL
            );
        }
        None => {}
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
