//! Fraud: the rules that judge a new conversion, and the verdict they reach together. The
//! rules run inside the conversion's own transaction (persistence loads the facts, the
//! functions here decide), so the verdict exists the moment the conversion does.

mod affiliate;
mod ip_lists;
pub mod review;
mod rules;
mod signals;
mod verdict;

pub use affiliate::{
    ALERT_MAIL_INTERVAL, CLICK_SPAMMING_DAYS, ClickSpamming, CtitBucket, CtitCounts,
    MAX_CLICK_SPAMMING_MIN_CONVERSIONS, alert_mail_due, rate,
};
pub use ip_lists::{
    IpList, IpRange, LineError, RangeTable, ip_key, key_ip, merge as merge_ranges, parse_ranges,
};
pub use rules::{
    AffiliateLogin, BotClick, Burst, Facts, FraudSettings, IpSource, ListedIp, MAX_PROMO_CLAIMS_LIMIT,
    MAX_PROMO_WINDOW_HOURS, MAX_REGISTRATIONS_PER_HOUR, PromoClaim, PromoLink, RuleSetting,
    SELF_REFERRAL_WINDOW, SharedSignal, VELOCITY_WINDOW, bonus_only, judge,
};
pub(crate) use signals::parse as parse_signals;
pub use signals::{ClusterSignal, MAX_USER_AGENT_LEN, Signals};
pub use verdict::{Action, Flag, Rule, Verdict};

#[cfg(test)]
mod tests;
