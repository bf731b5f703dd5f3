//! Start-up and shutdown: check the configuration, bind, connect and migrate, build the
//! routes, serve, seed the demo on first start, and on Ctrl-C / SIGTERM let in-flight
//! requests finish.

use std::sync::Arc;
use std::time::Duration;

use clickledger_notifier::mail::Mailer;
use clickledger_persistence::{Db, settings};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::middleware::CatchPanic;
use poem::{EndpointExt, Route, Server, get, post};
use rand::Rng;
use secrecy::ExposeSecret;

use crate::auth::{JwtKeys, LoginLimiter, PostbackLimiter, RequestLimiter};
use crate::cli::{anyhow_like, init_logging};
use crate::config::ServeArgs;
use crate::state::{AppState, SharedState};
use crate::tracking::ClickBatcher;
use crate::{banner, demo, graphql, http, metrics, tracking};

/// Login attempts allowed per account, and per client address, per minute.
const LOGINS_PER_ACCOUNT_PER_MINUTE: u32 = 10;
const LOGINS_PER_ADDRESS_PER_MINUTE: u32 = 60;

/// Starts the server. Everything that can be checked without the database is checked first
/// and the port is bound before the database is touched: a start that cannot serve must
/// leave the database as it found it (a demo seeded then would show its one-time password
/// to nobody). The demo is seeded, and the banner printed, only once the server is serving.
pub async fn run(args: ServeArgs) -> anyhow_like::Result {
    init_logging(args.log_format);
    let mailer = mailer(&args)?;
    let policy = clickledger_notifier::ssrf::AddressPolicy::allowing(args.outbound_allow.clone());
    let prometheus = metrics::install()?;
    let address = args.listen.address;
    let acceptor = TcpListener::bind(address)
        .into_acceptor()
        .await
        .map_err(|err| format!("cannot listen on {address}: {err}"))?;
    let local = acceptor.local_addr().into_iter().find_map(|addr| addr.as_socket_addr().copied());
    let listen = local.map(|addr| addr.to_string()).unwrap_or_else(|| address.to_string());
    // Without --public-url, links point at the address actually bound (port 0 picks one).
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{listen}"));

    // Before the database is touched: a start that cannot serve changes nothing.
    let geoip = match &args.geoip_db {
        Some(path) => Some(Arc::new(tracking::GeoIp::open(path)?)),
        None => None,
    };
    let db = crate::cli::open_migrated(&args.database).await?;
    // An import job whose process ended mid-run is failed, not left RUNNING for ever.
    let interrupted = clickledger_persistence::import_jobs::fail_interrupted(&db).await?;
    if interrupted > 0 {
        tracing::warn!(jobs = interrupted, "import jobs interrupted by a restart are marked failed");
    }
    let jwt_secret = jwt_secret(&args, &db).await?;

    let (clicks, click_writer) = ClickBatcher::start(db.clone(), geoip);
    let (notifier, outbound) = crate::outbound::build(db.clone(), policy, mailer)?;
    let mut app_state = AppState::new(
        db.clone(),
        JwtKeys::new(&jwt_secret, args.token_ttl_minutes),
        LoginLimiter::new(LOGINS_PER_ACCOUNT_PER_MINUTE, LOGINS_PER_ADDRESS_PER_MINUTE),
        public_url,
        !args.disable_signup,
        clicks,
        outbound,
    );
    app_state.max_replay_events = i64::from(args.max_replay_events);
    app_state.postback_limits = PostbackLimiter::new(args.postbacks_per_minute_per_key);
    app_state.graphql_limits = RequestLimiter::new(args.graphql_requests_per_minute);
    app_state.click_velocity = tracking::ClickVelocity::new(args.clicks_per_minute_per_address);
    let state: SharedState = Arc::new(app_state);
    let notifier = crate::outbound::start(&notifier, &state.live);
    let listener = state.live.spawn_listener(db.clone());
    let key_revocations = state.api_keys.spawn_revocation_listener(db.clone());
    let session_revocations = state.sessions.spawn_listener(db.clone());
    let key_uses = state.api_keys.spawn_use_writer(db.clone());
    let retraining = state.models.spawn_retraining(db.clone());
    let schema = graphql::build_schema(state.clone());

    let mut routes = Route::new();
    if let Some(path) = &args.legacy_link_path {
        routes = routes.at(path, get(tracking::legacy_click).head(tracking::legacy_click));
    }
    let app = routes
        .at("/graphql", get(http::graphql::get).post(http::graphql::post))
        .at("/graphql/assets/:name", get(http::graphiql::asset))
        .at("/graphql/ws", get(http::graphql::websocket))
        .at("/dashboard", get(http::dashboard::page))
        .at("/dashboard/assets/:name", get(http::dashboard::asset))
        .at("/c/:code", get(tracking::click).head(tracking::click))
        .at("/postback", get(http::postback::receive).post(http::postback::receive))
        .at("/reports/stats.csv", get(http::reports::stats_csv))
        .at("/reports/conversions.csv", get(http::exports::conversions_csv))
        .at("/reports/commissions.csv", get(http::exports::commissions_csv))
        .at("/reports/reconcile.csv", post(http::reconcile::reconcile_csv))
        .at("/set-password", get(http::set_password::show).post(http::set_password::submit))
        .at("/healthz", get(http::ops::healthz))
        .at("/readyz", get(http::ops::readyz))
        .at("/metrics", get(http::ops::metrics))
        .data(state.clone())
        .data(schema)
        .data(prometheus)
        .around({
            let proxies = http::client_address::TrustedProxies::new(args.trusted_proxies.clone());
            move |next, req| proxies.clone().resolve(next, req)
        })
        .around(metrics::track)
        .with(CatchPanic::new());

    let limiter_state = state.clone();
    let janitor = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limiter_state.login_limiter.retain_recent();
            limiter_state.test_sends.retain_recent();
            limiter_state.graphql_limits.retain_recent();
        }
    });

    let going_away = state.shutdown.clone();
    let server = tokio::spawn(Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
        app,
        async move {
            shutdown_signal().await;
            // Live subscriptions are told to reconnect elsewhere before the grace period.
            going_away.send_replace(true);
        },
        Some(Duration::from_secs(args.shutdown_grace_seconds)),
    ));

    // Serving: now the demo's one-time credentials cannot be lost to a failed start.
    let demo = if args.no_demo { None } else { demo::seed_once(&db).await? };
    banner::announce(args.log_format, &listen, &state.public_url, demo.as_ref(), args.no_demo);

    let served = server.await;
    janitor.abort();
    retraining.abort();
    if let Some(listener) = listener {
        listener.abort();
    }
    if let Some(key_revocations) = key_revocations {
        key_revocations.abort();
    }
    if let Some(session_revocations) = session_revocations {
        session_revocations.abort();
    }
    key_uses.abort();
    state.api_keys.flush_uses(&db).await;
    // Deliveries under way get a moment; any cut short are retried at the next start.
    notifier.stop().await;
    // Clicks already answered are in the queue: write them before exiting.
    state.clicks.stop();
    let _ = click_writer.await;
    tracing::info!("shut down");
    db.close().await;
    served.map_err(|err| format!("server task failed: {err}"))??;
    Ok(())
}

/// The e-mail transport: SMTP when configured (its URL is checked here, at start-up), else
/// the mail outbox directory.
fn mailer(args: &ServeArgs) -> anyhow_like::Result<Mailer> {
    let timeout = Duration::from_secs(args.smtp_timeout_seconds);
    Ok(match &args.smtp_url {
        Some(url) => Mailer::smtp(url.expose_secret(), &args.mail_from, timeout)?,
        None => {
            let mailer = Mailer::outbox(&args.mail_outbox, &args.mail_from)?;
            tracing::warn!(
                outbox = %args.mail_outbox.display(),
                "no --smtp-url / CLICKLEDGER_SMTP_URL: e-mails are written as .eml files to the mail outbox, not sent"
            );
            mailer
        }
    })
}

/// The configured secret (its length was checked when parsed), or for the demo a random one
/// persisted in the database, so tokens survive a restart.
async fn jwt_secret(args: &ServeArgs, db: &Db) -> anyhow_like::Result<Vec<u8>> {
    if let Some(secret) = &args.jwt_secret {
        return Ok(secret.expose_secret().as_bytes().to_vec());
    }
    tracing::warn!(
        "no --jwt-secret / CLICKLEDGER_JWT_SECRET given: using a generated secret stored in the database; \
         fine for a demo, not for production"
    );
    let (secret, _) = settings::get_or_init_secret(db, "generated_jwt_secret", || {
        let bytes: [u8; 32] = rand::rng().random();
        hex_string(&bytes)
    })
    .await?;
    Ok(secret.into_bytes())
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
