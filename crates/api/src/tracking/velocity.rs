//! Click velocity: how many clicks one address made on one link in the current minute, per
//! replica, in memory (the redirect reads no database for it). A click beyond the limit is
//! recorded marked, and the rule `VELOCITY` flags the conversions that name it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clickledger_domain::ids::TrackingLinkId;
use moka::sync::Cache;

/// Pairs of (link, address) remembered at once: a flood of distinct addresses evicts the
/// quietest, never grows memory.
const CAPACITY: u64 = 200_000;

pub struct ClickVelocity {
    /// Clicks allowed a minute from one address on one link; 0: no limit.
    per_minute: u32,
    /// Per (link, address): the minute (since the epoch) and the clicks counted in it, packed
    /// into one word so both change together.
    counts: Cache<(TrackingLinkId, IpAddr), Arc<AtomicU64>>,
}

impl ClickVelocity {
    pub fn new(per_minute: u32) -> ClickVelocity {
        let counts = Cache::builder().max_capacity(CAPACITY).time_to_idle(Duration::from_secs(120)).build();
        ClickVelocity { per_minute, counts }
    }

    /// Counts a click at `unix_secs` and tells whether it is beyond the limit.
    pub fn over(&self, link: TrackingLinkId, ip: Option<IpAddr>, unix_secs: i64) -> bool {
        let Some(ip) = ip.filter(|_| self.per_minute > 0) else { return false };
        let minute = u64::try_from(unix_secs / 60).unwrap_or_default() & 0xFFFF_FFFF;
        let counter = self.counts.get_with((link, ip), || Arc::new(AtomicU64::new(0)));
        let (Ok(packed) | Err(packed)) = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            let count = if word >> 32 == minute { word & 0xFFFF_FFFF } else { 0 };
            Some((minute << 32) | (count + 1).min(0xFFFF_FFFF))
        });
        let before = if packed >> 32 == minute { packed & 0xFFFF_FFFF } else { 0 };
        before + 1 > u64::from(self.per_minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_beyond_the_limit_in_one_minute_are_over_and_a_new_minute_starts_afresh() {
        let velocity = ClickVelocity::new(3);
        let (link, other_link) = (TrackingLinkId::new(), TrackingLinkId::new());
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        // The start of a minute: 30,000,000 minutes since the epoch.
        let at = 1_800_000_000;
        let seen: Vec<bool> = (0..5).map(|n| velocity.over(link, Some(ip), at + n)).collect();
        assert_eq!(seen, vec![false, false, false, true, true]);
        assert!(!velocity.over(other_link, Some(ip), at), "another link counts apart");
        assert!(!velocity.over(link, Some("203.0.113.6".parse().unwrap()), at), "so does another address");
        assert!(!velocity.over(link, Some(ip), at + 60), "the next minute starts again");
        assert!(!velocity.over(link, None, at), "no address, nothing to count");
        let off = ClickVelocity::new(0);
        assert!((0..100).all(|_| !off.over(link, Some(ip), at)));
    }
}
