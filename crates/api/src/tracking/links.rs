use std::sync::Arc;
use std::time::Duration;

use clickledger_domain::click_id::ClickSecret;
use clickledger_persistence::Db;
use clickledger_persistence::tracking::{self, LinkTarget};
use moka::sync::Cache;

/// A link target with its tenant's secret decoded once, not per click.
pub struct CachedLink {
    pub target: LinkTarget,
    pub secret: ClickSecret,
    /// The `{affiliate_id}` and `{campaign_id}` macro values, formatted once.
    pub affiliate_id: String,
    pub campaign_id: String,
}

/// Link code → target, cached so that a redirect needs no database read. Entries live a few
/// seconds, so an edit (a paused campaign, a suspended link) reaches every replica quickly;
/// unknown codes are cached too, so random codes cannot hammer the database.
pub struct LinkCache {
    entries: Cache<String, Option<Arc<CachedLink>>>,
    /// Another tracker's `?a=AFFILIATE&c=CAMPAIGN` → the code of that pair's link.
    pairs: Cache<(String, String), Option<String>>,
}

const TTL: Duration = Duration::from_secs(5);
const CAPACITY: u64 = 200_000;

impl LinkCache {
    pub fn new() -> Self {
        LinkCache {
            entries: Cache::builder().max_capacity(CAPACITY).time_to_live(TTL).build(),
            pairs: Cache::builder().max_capacity(CAPACITY).time_to_live(TTL).build(),
        }
    }

    /// The code answering for an imported affiliate and campaign (external IDs), made on the
    /// pair's first click when the import brought no link for it; `None` for an unknown pair.
    pub async fn code_for_pair(
        &self,
        db: &Db,
        affiliate: &str,
        campaign: &str,
    ) -> Result<Option<String>, crate::Error> {
        let key = (affiliate.to_owned(), campaign.to_owned());
        if let Some(hit) = self.pairs.get(&key) {
            return Ok(hit);
        }
        let code = clickledger_persistence::legacy_links::code_for_pair(db, affiliate, campaign).await?;
        self.pairs.insert(key, code.clone());
        Ok(code)
    }

    pub async fn get(&self, db: &Db, code: &str) -> Result<Option<Arc<CachedLink>>, crate::Error> {
        if let Some(hit) = self.entries.get(code) {
            return Ok(hit);
        }
        let loaded = match tracking::link_target(db, code).await? {
            Some(target) => {
                let secret = ClickSecret::from_bytes(&target.click_secret)
                    .map_err(|_| crate::Error::Internal("corrupted click secret".into()))?;
                let (affiliate_id, campaign_id) =
                    (target.affiliate_id.to_string(), target.campaign_id.to_string());
                Some(Arc::new(CachedLink { target, secret, affiliate_id, campaign_id }))
            }
            None => None,
        };
        self.entries.insert(code.to_owned(), loaded.clone());
        Ok(loaded)
    }

    /// Forgets everything, after an edit made through this process.
    pub fn clear(&self) {
        self.entries.invalidate_all();
        self.pairs.invalidate_all();
    }
}

impl Default for LinkCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Clears the link cache when dropped, i.e. after the resolver holding it has written: hold
/// one in every mutation that changes where a link leads. Other replicas catch up within
/// the cache's time to live.
pub struct InvalidateOnDrop<'a>(pub &'a LinkCache);

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}
