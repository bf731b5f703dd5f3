//! Throttling, all with `governor` (GCRA) and all per replica: login attempts per account and
//! per client address, so that neither a slow spray over many accounts nor a fast guess at
//! one gets far; test sends per affiliate; GraphQL requests per signed-in user; postbacks per
//! API key.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use clickledger_domain::ids::{AffiliateId, ApiKeyId, UserId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use moka::sync::Cache;

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

/// `n` a minute, in bursts of up to `n` (`n` ≥ 1).
fn per_minute(n: NonZeroU32) -> Quota {
    Quota::per_minute(n)
}

/// How long until a refused request would be allowed, from now.
fn wait(refusal: &NotUntil<<DefaultClock as Clock>::Instant>, clock: &DefaultClock) -> Duration {
    refusal.wait_time_from(clock.now())
}

/// The `Retry-After` of a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// GraphQL requests per signed-in user (`--graphql-requests-per-minute`): every token of a
/// user shares one budget, so signing in again buys nothing. `None` when switched off (0).
pub struct RequestLimiter(Option<DefaultKeyedRateLimiter<UserId>>);

impl RequestLimiter {
    pub fn new(per_minute_limit: u32) -> Self {
        RequestLimiter(NonZeroU32::new(per_minute_limit).map(|n| RateLimiter::keyed(per_minute(n))))
    }

    /// Spends `operations` (a batch spends one per operation); `Err` with how long to wait
    /// when the budget does not hold them.
    pub fn check(&self, user: UserId, operations: usize) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        let n = NonZeroU32::new(u32::try_from(operations).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_key_n(&user, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refusal)) => Err(wait(&refusal, limiter.clock())),
            // More operations than a whole minute's budget: never, so a minute is as good as any.
            Err(_) => Err(Duration::from_secs(60)),
        }
    }

    pub fn retain_recent(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
        }
    }
}

/// Postbacks per API key. Each key may have a limit of its own (kept in the cached key
/// record, so checking costs no database read), else the server's default
/// (`--postbacks-per-minute-per-key`; 0: none). A key's bucket is made on its first postback
/// and replaced when its limit changes; buckets idle for ten minutes are forgotten.
pub struct PostbackLimiter {
    default_per_minute: u32,
    buckets: Cache<ApiKeyId, Arc<Bucket>>,
}

struct Bucket {
    per_minute: NonZeroU32,
    limiter: DefaultDirectRateLimiter,
}

impl PostbackLimiter {
    pub fn new(default_per_minute: u32) -> Self {
        PostbackLimiter {
            default_per_minute,
            buckets: Cache::builder().max_capacity(100_000).time_to_idle(Duration::from_secs(600)).build(),
        }
    }

    /// Counts one postback of `key`, whose own limit is `own` (`None`: the default); `Err`
    /// with how long to wait when its budget is spent.
    pub fn check(&self, key: ApiKeyId, own: Option<u32>) -> Result<(), Duration> {
        let Some(per_minute) = NonZeroU32::new(own.unwrap_or(self.default_per_minute)) else {
            return Ok(());
        };
        let bucket = match self.buckets.get(&key) {
            Some(bucket) if bucket.per_minute == per_minute => bucket,
            _ => {
                let bucket = Arc::new(Bucket {
                    per_minute,
                    limiter: RateLimiter::direct(self::per_minute(per_minute)),
                });
                self.buckets.insert(key, bucket.clone());
                bucket
            }
        };
        bucket.limiter.check().map_err(|refusal| wait(&refusal, bucket.limiter.clock()))
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

    #[test]
    fn each_key_spends_its_own_budget_and_a_new_limit_takes_over() {
        let limiter = PostbackLimiter::new(0);
        let (low, other) = (ApiKeyId::new(), ApiKeyId::new());
        assert!((0..3).all(|_| limiter.check(low, Some(3)).is_ok()));
        let wait = limiter.check(low, Some(3)).expect_err("the fourth is refused");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert!((0..100).all(|_| limiter.check(other, None).is_ok()), "no default: no limit");
        assert!(limiter.check(low, Some(5)).is_ok(), "a changed limit starts a new bucket");
    }

    #[test]
    fn requests_are_counted_per_user_and_per_operation() {
        let limiter = RequestLimiter::new(5);
        let (ann, bob) = (UserId::new(), UserId::new());
        assert!(limiter.check(ann, 4).is_ok());
        assert!(limiter.check(ann, 2).is_err(), "a batch of two does not fit the one left");
        assert!(limiter.check(ann, 1).is_ok());
        assert!(limiter.check(ann, 1).is_err());
        assert!(limiter.check(bob, 5).is_ok());
        assert!(RequestLimiter::new(0).check(ann, 1000).is_ok(), "0 switches it off");
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(12_001)), 13);
    }
}
