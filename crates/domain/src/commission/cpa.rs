//! CPA qualification: a fixed amount once per player, on the event that completes it.

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::facts::PlayerFacts;
use super::plan::CpaRules;

/// Whether `after` (the player's facts including the current event) meets every rule at `at`.
/// A first deposit is always required: CPA pays for depositing players, not sign-ups.
pub(super) fn qualifies(rules: &CpaRules, after: &PlayerFacts, at: DateTime<Utc>) -> bool {
    let Some(first_deposit) = after.first_deposit else { return false };
    let at_least = |value: Decimal, min: Option<Decimal>| min.is_none_or(|m| value >= m);
    first_deposit > Decimal::ZERO
        && at_least(first_deposit, rules.min_first_deposit)
        && at_least(after.total_deposits, rules.min_total_deposits)
        && at_least(after.turnover, rules.min_turnover)
        && at_least(after.lots, rules.min_lots)
        && rules.min_trades.is_none_or(|m| after.trades >= m)
        && within_window(rules.within_days, after.registered_at, at)
}

/// Without a known registration time a window cannot be checked, so it is not met: paying
/// would risk rewarding players who registered long ago.
fn within_window(days: Option<u32>, registered_at: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    let Some(days) = days else { return true };
    let deadline =
        registered_at.zip(TimeDelta::try_days(i64::from(days))).and_then(|(r, d)| r.checked_add_signed(d));
    deadline.is_some_and(|deadline| at <= deadline)
}

/// The amount for the player's country, else the default.
pub(super) fn amount_for(rules: &CpaRules, country: Option<&str>) -> Decimal {
    country
        .map(|c| c.trim().to_ascii_uppercase())
        .and_then(|c| rules.by_country.get(&c).copied())
        .unwrap_or(rules.amount)
}
