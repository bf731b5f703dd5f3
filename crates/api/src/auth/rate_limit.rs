//! Login throttling, per account and per client address, so that neither a slow spray over
//! many accounts nor a fast guess at one gets far.

use std::net::IpAddr;
use std::num::NonZeroU32;

use clickledger_domain::ids::AffiliateId;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimiter {
    pub fn new(account_per_minute: u32, address_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        LoginLimiter {
            per_account: RateLimiter::keyed(quota(account_per_minute)),
            per_address: RateLimiter::keyed(quota(address_per_minute)),
        }
    }

    /// Counts one attempt; `false` when either budget is spent.
    pub fn check(&self, account: &str, address: Option<IpAddr>) -> bool {
        let account_ok = self.per_account.check_key(&account.to_owned()).is_ok();
        let address_ok = address.is_none_or(|ip| self.per_address.check_key(&ip).is_ok());
        account_ok && address_ok
    }

    /// Forgets idle keys so the maps do not grow without bound.
    pub fn retain_recent(&self) {
        self.per_account.retain_recent();
        self.per_address.retain_recent();
    }
}

/// Test messages (`sendTestPostback`) per affiliate: each one is a real outbound request, so
/// an affiliate cannot turn the server into a request cannon against its own endpoint.
pub struct TestSendLimiter(DefaultKeyedRateLimiter<AffiliateId>);

/// A burst of this many test sends, then one more every minute.
pub const TEST_SENDS_BURST: u32 = 10;

impl TestSendLimiter {
    pub fn new() -> Self {
        let burst = NonZeroU32::new(TEST_SENDS_BURST).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(std::time::Duration::from_secs(60))
            .map(|quota| quota.allow_burst(burst))
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN));
        TestSendLimiter(RateLimiter::keyed(quota))
    }

    pub fn allow(&self, affiliate: AffiliateId) -> bool {
        self.0.check_key(&affiliate).is_ok()
    }

    pub fn retain_recent(&self) {
        self.0.retain_recent();
    }
}

impl Default for TestSendLimiter {
    fn default() -> Self {
        TestSendLimiter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_budget() {
        let limiter = LoginLimiter::new(3, 100);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        assert!((0..3).all(|_| limiter.check("acme/ann@x.io", ip)));
        assert!(!limiter.check("acme/ann@x.io", ip));
        assert!(limiter.check("acme/bob@x.io", ip));
    }
}
