//! The retry schedule, as specified: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
//! (about a day and a quarter of retrying), then the delivery is dead-lettered.

use std::time::Duration;

use rand::Rng;

/// Delay before each attempt; attempt `n` (1-based) waits `SCHEDULE[n - 1]` after the
/// previous one failed.
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long an endpoint may fail without a single success before it is disabled.
pub const DISABLE_AFTER_FAILING_FOR: Duration = Duration::from_secs(5 * 24 * 3600);

/// The longest `Retry-After` we honour; a larger one is clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// After `attempts_made` failed attempts, the (un-jittered) wait before the next one, or
/// `None` when the schedule is exhausted.
pub fn next_delay(attempts_made: u32) -> Option<Duration> {
    SCHEDULE.get(attempts_made as usize).copied()
}

/// ±10 % of jitter so that many deliveries failing together do not retry together.
pub fn jitter(delay: Duration) -> Duration {
    if delay.is_zero() {
        return delay;
    }
    let factor = rand::rng().random_range(0.9..=1.1);
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_then_dead_letter() {
        assert_eq!(next_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(next_delay(7), Some(Duration::from_secs(36_000)));
        assert_eq!(next_delay(8), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(90) && d <= Duration::from_secs(110), "{d:?}");
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
