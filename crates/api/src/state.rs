use std::sync::Arc;

use clickledger_domain::ids::TenantId;
use clickledger_persistence::Db;
use clickledger_persistence::tracking::{self, ClickKeys};
use moka::sync::Cache;

use crate::api_keys::KeyCache;
use crate::auth::{JwtKeys, LoginLimiter, PostbackLimiter, RequestLimiter, TestSendLimiter};
use crate::ingest::Ingestor;
use crate::live::{Feeds, Live, TenantSignals};
use crate::models::ModelStore;
use crate::outbound::Outbound;
use crate::sessions::Sessions;
use crate::tracking::{ClickBatcher, LinkCache};

/// Everything a request handler may need, shared by every request.
pub struct AppState {
    pub db: Db,
    pub jwt: JwtKeys,
    pub login_limiter: LoginLimiter,
    pub test_sends: TestSendLimiter,
    /// Postbacks per API key (per replica).
    pub postback_limits: PostbackLimiter,
    /// Clicks a minute per address and link (per replica).
    pub click_velocity: crate::tracking::ClickVelocity,
    /// GraphQL requests per signed-in user (per replica).
    pub graphql_limits: RequestLimiter,
    /// Base URL of the tracking domain, without a trailing slash.
    pub public_url: String,
    pub signup_enabled: bool,
    pub links: LinkCache,
    pub clicks: ClickBatcher,
    pub live: Arc<Live>,
    /// Subscriptions sharing their frames, by (document, viewer).
    pub feeds: Feeds,
    /// Wakes live reports (`statsLive`) of a tenant when its clicks or conversions were written.
    pub stats_signals: Arc<TenantSignals>,
    pub ingestor: Ingestor,
    pub models: Arc<ModelStore>,
    pub outbound: Outbound,
    /// Presented API keys, cached briefly and dropped at once on revocation.
    pub api_keys: Arc<KeyCache>,
    /// Whose sessions were ended, for the open connections to re-check theirs.
    pub sessions: Arc<Sessions>,
    /// How far back a subscription's `since` may reach (events); older cursors are refused.
    pub max_replay_events: i64,
    click_keys: Cache<TenantId, ClickKeys>,
    /// Turns `true` when shutdown begins: live subscriptions close with 1001 "going away".
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

/// The default of `--max-replay-events`.
pub const DEFAULT_MAX_REPLAY_EVENTS: i64 = 10_000;
/// The default of `--postbacks-per-minute-per-key`: 1,000 a second sustained.
pub const DEFAULT_POSTBACKS_PER_MINUTE_PER_KEY: u32 = 60_000;
/// Clicks a minute one address may make on one link before the rest are marked.
pub const DEFAULT_CLICKS_PER_MINUTE_PER_ADDRESS: u32 = 30;
/// The default of `--graphql-requests-per-minute`.
pub const DEFAULT_GRAPHQL_REQUESTS_PER_MINUTE: u32 = 600;

impl AppState {
    pub fn new(
        db: Db,
        jwt: JwtKeys,
        login_limiter: LoginLimiter,
        public_url: String,
        signup_enabled: bool,
        clicks: ClickBatcher,
        outbound: Outbound,
    ) -> Self {
        let live = Live::new();
        let stats_signals = clicks.tenant_signals();
        forward_conversion_events(&live, stats_signals.clone());
        AppState {
            db: db.clone(),
            jwt,
            login_limiter,
            test_sends: TestSendLimiter::new(),
            postback_limits: PostbackLimiter::new(DEFAULT_POSTBACKS_PER_MINUTE_PER_KEY),
            click_velocity: crate::tracking::ClickVelocity::new(DEFAULT_CLICKS_PER_MINUTE_PER_ADDRESS),
            graphql_limits: RequestLimiter::new(DEFAULT_GRAPHQL_REQUESTS_PER_MINUTE),
            public_url,
            signup_enabled,
            links: LinkCache::new(),
            clicks,
            ingestor: Ingestor::start(db.clone(), live.clone()),
            feeds: Feeds::new(live.clone(), db.clone()),
            stats_signals,
            live,
            models: Arc::new(ModelStore::default()),
            outbound,
            api_keys: Arc::new(KeyCache::default()),
            sessions: Arc::new(Sessions::default()),
            click_keys: Cache::builder().max_capacity(10_000).build(),
            shutdown: tokio::sync::watch::Sender::new(false),
            max_replay_events: DEFAULT_MAX_REPLAY_EVENTS,
        }
    }

    /// A tenant's click-ID keys; they never change, so they are cached for good.
    pub async fn click_keys(&self, tenant: TenantId) -> Result<ClickKeys, crate::Error> {
        if let Some(keys) = self.click_keys.get(&tenant) {
            return Ok(keys);
        }
        let keys = tracking::click_keys(&self.db, tenant).await?;
        self.click_keys.insert(tenant, keys.clone());
        Ok(keys)
    }
}

pub type SharedState = Arc<AppState>;

/// Every conversion event (committed here, or on another replica and heard through
/// PostgreSQL) wakes its tenant's live reports.
fn forward_conversion_events(live: &Live, signals: Arc<TenantSignals>) {
    let mut events = live.subscribe();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(event) => signals.notify(event.tenant_id),
                // Some events were not seen: any tenant may have had one.
                Err(RecvError::Lagged(_)) => signals.notify_all(),
                Err(RecvError::Closed) => return,
            }
        }
    });
}
