//! The API keys postbacks present: looked up once and cached for a few seconds (postbacks
//! arrive in bursts) with their settings (rate limit, signing secret, signature switch),
//! dropped at once on revocation or any change (here, and on every replica through
//! PostgreSQL notifications), and their last use written in batches, not per postback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clickledger_domain::ids::ApiKeyId;
use clickledger_persistence::Db;
use clickledger_persistence::key_revocations::RevocationListener;
use clickledger_persistence::records::PresentedKey;
use moka::sync::Cache;

/// How long a lookup is trusted when nothing says otherwise (a revocation drops it at once).
const CACHE_TTL: Duration = Duration::from_secs(5);
/// How often last uses are written: at most one statement per key per interval.
const USE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

pub struct KeyCache {
    /// API-key hash → the key's tenant, ID and settings, or known-bad.
    lookups: Cache<String, Option<Arc<PresentedKey>>>,
    /// Keys used since the last flush, with their latest use.
    uses: Mutex<HashMap<ApiKeyId, DateTime<Utc>>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            lookups: Cache::builder().max_capacity(10_000).time_to_live(CACHE_TTL).build(),
            uses: Mutex::new(HashMap::new()),
        }
    }
}

impl KeyCache {
    pub fn get(&self, hash: &str) -> Option<Option<Arc<PresentedKey>>> {
        self.lookups.get(hash)
    }

    pub fn insert(&self, hash: String, found: Option<Arc<PresentedKey>>) {
        self.lookups.insert(hash, found);
    }

    /// A key was revoked or changed (here or on another replica): nothing cached is trusted
    /// any more.
    pub fn forget_all(&self) {
        self.lookups.invalidate_all();
    }

    pub fn note_use(&self, key: ApiKeyId, at: DateTime<Utc>) {
        if let Ok(mut uses) = self.uses.lock() {
            uses.insert(key, at);
        }
    }

    /// Writes the uses gathered since the last call.
    pub async fn flush_uses(&self, db: &Db) {
        let uses: Vec<_> = match self.uses.lock() {
            Ok(mut uses) => uses.drain().collect(),
            Err(_) => return,
        };
        if uses.is_empty() {
            return;
        }
        if let Err(err) = clickledger_persistence::repo::record_api_key_uses(db, &uses).await {
            tracing::warn!(error = %err, "could not record API key uses; the next ones will be");
        }
    }

    /// Flushes uses every second until aborted.
    pub fn spawn_use_writer(self: &Arc<Self>, db: Db) -> tokio::task::JoinHandle<()> {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(USE_FLUSH_INTERVAL);
            loop {
                every.tick().await;
                keys.flush_uses(&db).await;
            }
        })
    }

    /// With PostgreSQL: drops the cache whenever any replica revokes or changes a key, until
    /// aborted.
    pub fn spawn_revocation_listener(self: &Arc<Self>, db: Db) -> Option<tokio::task::JoinHandle<()>> {
        if db.backend() != clickledger_persistence::Backend::Postgres {
            return None;
        }
        let keys = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match RevocationListener::connect(&db).await {
                    Ok(Some(mut listener)) => {
                        // Revocations announced before the listener was up were missed.
                        keys.forget_all();
                        while listener.next().await.is_ok() {
                            keys.forget_all();
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "API key revocation listener failed; reconnecting")
                    }
                }
                keys.forget_all();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }))
    }
}
