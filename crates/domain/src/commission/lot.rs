//! Per-lot commission (Forex/CFD): instrument → group → rate per lot.

use rust_decimal::Decimal;

use super::plan::PerLotRules;

/// Instruments are matched case-insensitively because brokers' feeds disagree on case.
pub(super) fn rate_for(rules: &PerLotRules, instrument: &str) -> Decimal {
    rules
        .instrument_groups
        .get(&instrument.trim().to_ascii_uppercase())
        .and_then(|group| rules.group_rates.get(group))
        .copied()
        .unwrap_or(rules.default_rate)
}
