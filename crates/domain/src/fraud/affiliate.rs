//! Affiliate-level fraud: how long an affiliate's players took from click to conversion
//! (CTIT, in buckets), whether that looks like click spamming, and the rates of the
//! per-affiliate fraud report. Storage keeps the counts per affiliate and UTC day, added to in
//! each conversion's transaction; everything here works on those counts.

use chrono::TimeDelta;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a click-to-conversion time falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CtitBucket {
    /// Under 10 seconds.
    Under10s,
    /// 10 seconds to under a minute.
    Under1m,
    /// A minute to under an hour.
    Under1h,
    /// An hour to under a day.
    Under24h,
    /// A day or more: what click spamming leaves behind.
    Over24h,
}

impl CtitBucket {
    pub const ALL: [CtitBucket; 5] = [
        CtitBucket::Under10s,
        CtitBucket::Under1m,
        CtitBucket::Under1h,
        CtitBucket::Under24h,
        CtitBucket::Over24h,
    ];

    /// The bucket of a click-to-conversion time (a negative one, a conversion reported as
    /// happening before its click, counts as the fastest).
    pub fn of(ctit: TimeDelta) -> CtitBucket {
        if ctit < TimeDelta::seconds(10) {
            CtitBucket::Under10s
        } else if ctit < TimeDelta::minutes(1) {
            CtitBucket::Under1m
        } else if ctit < TimeDelta::hours(1) {
            CtitBucket::Under1h
        } else if ctit < TimeDelta::hours(24) {
            CtitBucket::Under24h
        } else {
            CtitBucket::Over24h
        }
    }

    /// The name its count is stored under.
    pub fn as_str(self) -> &'static str {
        match self {
            CtitBucket::Under10s => "ctit_under_10s",
            CtitBucket::Under1m => "ctit_under_1m",
            CtitBucket::Under1h => "ctit_under_1h",
            CtitBucket::Under24h => "ctit_under_24h",
            CtitBucket::Over24h => "ctit_over_24h",
        }
    }

    pub fn parse(name: &str) -> Option<CtitBucket> {
        CtitBucket::ALL.into_iter().find(|bucket| bucket.as_str() == name)
    }
}

/// Counts of an affiliate's conversions with a known CTIT, per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtitCounts(pub [u64; 5]);

impl CtitCounts {
    pub fn add(&mut self, bucket: CtitBucket, count: u64) {
        let slot = &mut self.0[bucket as usize];
        *slot = slot.saturating_add(count);
    }

    pub fn get(&self, bucket: CtitBucket) -> u64 {
        self.0[bucket as usize]
    }

    /// Conversions with a known CTIT.
    pub fn timed(&self) -> u64 {
        self.0.iter().fold(0u64, |sum, count| sum.saturating_add(*count))
    }
}

/// How many days back click spamming is judged, today included.
pub const CLICK_SPAMMING_DAYS: i64 = 7;

/// The click-spamming check: many clicks fired at players who convert anyway show up as a
/// large share of conversions long after their click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClickSpamming {
    pub enabled: bool,
    /// An affiliate is flagged when more than this percentage (0–100) of its conversions with
    /// a known CTIT came 24 hours or more after their click.
    pub threshold_percent: u8,
    /// Fewer conversions with a known CTIT than this over the window are not judged.
    pub min_conversions: u32,
}

impl Default for ClickSpamming {
    fn default() -> Self {
        ClickSpamming { enabled: true, threshold_percent: 30, min_conversions: 20 }
    }
}

/// The most conversions `minConversions` may ask for.
pub const MAX_CLICK_SPAMMING_MIN_CONVERSIONS: u32 = 1_000_000;

impl ClickSpamming {
    pub fn validate(&self) -> Result<(), Error> {
        if self.threshold_percent > 100 {
            return Err(Error::invalid("clickSpamming.thresholdPercent", "must be between 0 and 100"));
        }
        if !(1..=MAX_CLICK_SPAMMING_MIN_CONVERSIONS).contains(&self.min_conversions) {
            return Err(Error::invalid(
                "clickSpamming.minConversions",
                format!("must be between 1 and {MAX_CLICK_SPAMMING_MIN_CONVERSIONS}"),
            ));
        }
        Ok(())
    }

    /// Whether an affiliate with these CTIT counts over the window is click spamming.
    pub fn flags(&self, counts: &CtitCounts) -> bool {
        let timed = counts.timed();
        let late = counts.get(CtitBucket::Over24h);
        // late / timed > threshold / 100, in integers.
        self.enabled
            && timed >= u64::from(self.min_conversions)
            && u128::from(late) * 100 > u128::from(timed) * u128::from(self.threshold_percent)
    }
}

impl ClickSpamming {
    /// What the check saw, for staff.
    pub fn evidence(&self, counts: &CtitCounts) -> String {
        format!(
            "{} of {} conversions with a known click-to-conversion time over the last {CLICK_SPAMMING_DAYS} days came 24 hours or more after their click (threshold {} %, at least {} conversions)",
            counts.get(CtitBucket::Over24h),
            counts.timed(),
            self.threshold_percent,
            self.min_conversions
        )
    }
}

/// `part / whole` to four places (0 when there is no whole).
pub fn rate(part: u64, whole: u64) -> Decimal {
    if whole == 0 {
        return Decimal::ZERO;
    }
    (Decimal::from(part) / Decimal::from(whole)).round_dp(4)
}

/// At most one fraud-alert e-mail per (rule, affiliate) within this; the rest go in the daily
/// digest.
pub const ALERT_MAIL_INTERVAL: TimeDelta = TimeDelta::hours(1);

/// Whether an alert for a (rule, affiliate) last mailed at `last_mailed` may be mailed at
/// `now`, or waits for the digest.
pub fn alert_mail_due(
    last_mailed: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    last_mailed.is_none_or(|last| now - last >= ALERT_MAIL_INTERVAL)
}
