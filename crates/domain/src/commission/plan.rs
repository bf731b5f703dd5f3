//! Commission plans and their validation. A plan is plain data (stored as JSON); amounts are in
//! the plan's currency, percentages are 0–100.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::money::{Currency, MAX_AMOUNT};

/// Deep upline chains are a pyramid-scheme smell and make one chargeback fan out widely.
const MAX_OVERRIDE_LEVELS: usize = 10;
/// Qualification windows past ten years are typos.
const MAX_WINDOW_DAYS: u32 = 3650;

/// What an affiliate earns under a campaign. Any combination of parts may be set: CPA with
/// revshare is the usual "hybrid" deal, and each part follows its own rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub currency: Currency,
    pub cpa: Option<CpaRules>,
    /// Paid per registration (lead).
    pub cpl: Option<Decimal>,
    pub revshare: Option<RevShareRules>,
    pub per_lot: Option<PerLotRules>,
    #[serde(default)]
    pub kpi: Vec<KpiBonus>,
    /// Override percent per upline level: `[5, 2]` gives the parent 5 % and the grandparent
    /// 2 % of the credited affiliate's commission. The length is the depth.
    #[serde(default)]
    pub overrides: Vec<Decimal>,
}

/// A fixed amount per qualified player, paid once, on the event that completes qualification.
/// Every rule that is set must hold (AND); thresholds are in the plan's currency.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpaRules {
    /// The amount where the player's country has no entry in `by_country`.
    pub amount: Decimal,
    /// ISO 3166-1 alpha-2 country code (upper case) → amount.
    #[serde(default)]
    pub by_country: BTreeMap<String, Decimal>,
    /// A first deposit is always required; this sets its minimum.
    pub min_first_deposit: Option<Decimal>,
    pub min_total_deposits: Option<Decimal>,
    pub min_turnover: Option<Decimal>,
    pub min_trades: Option<u32>,
    pub min_lots: Option<Decimal>,
    /// Qualification must complete within this many days of registration.
    pub within_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TierBasis {
    /// The affiliate's net revenue for the month.
    NetRevenue,
    /// The affiliate's new depositing players (FTDs) in the month.
    Ftds,
}

/// A percentage of net revenue. The tier reached by the month's end applies to the whole
/// month; live entries use the tier reached so far and are trued up at period close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevShareRules {
    pub tier_by: TierBasis,
    /// Ascending by `from`; the first starts at 0.
    pub tiers: Vec<RevShareTier>,
    /// On: a negative month's deficit is carried and absorbed by later positive months.
    /// Off: each month starts at zero and a negative month pays nothing.
    pub negative_carryover: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevShareTier {
    /// The tier applies from this value of the basis on (inclusive).
    pub from: Decimal,
    pub percent: Decimal,
}

/// An amount per lot traded, by instrument group (Forex/CFD).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerLotRules {
    /// For instruments in no group, or in a group without a rate.
    pub default_rate: Decimal,
    /// Group name (e.g. `FX_MAJORS`, `METALS`) → amount per lot.
    #[serde(default)]
    pub group_rates: BTreeMap<String, Decimal>,
    /// Instrument (upper case, e.g. `EURUSD`) → group name.
    #[serde(default)]
    pub instrument_groups: BTreeMap<String, String>,
}

/// An extra amount when a period target is met, computed at period close. Bonuses are
/// cumulative: every one whose target is met pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KpiBonus {
    pub metric: KpiMetric,
    /// Met when the period's figure is at least this.
    pub target: Decimal,
    pub amount: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KpiMetric {
    Ftds,
    Registrations,
    QualifiedPlayers,
    NetRevenue,
    Deposits,
    Lots,
}

impl Plan {
    /// Checks everything the engine relies on; errors name the GraphQL input field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.cpa.is_none()
            && self.cpl.is_none()
            && self.revshare.is_none()
            && self.per_lot.is_none()
            && self.kpi.is_empty()
        {
            return Err(Error::invalid(
                "plan",
                "must pay for something: set cpa, cpl, revshare, perLot or kpi",
            ));
        }
        if let Some(cpa) = &self.cpa {
            self.validate_cpa(cpa)?;
        }
        if let Some(cpl) = self.cpl {
            self.payable(cpl, "cpl")?;
        }
        if let Some(revshare) = &self.revshare {
            validate_revshare(revshare)?;
        }
        if let Some(per_lot) = &self.per_lot {
            validate_per_lot(per_lot)?;
        }
        for bonus in &self.kpi {
            if bonus.target <= Decimal::ZERO {
                return Err(Error::invalid("kpi.target", "must be positive"));
            }
            self.payable(bonus.amount, "kpi.amount")?;
        }
        validate_overrides(&self.overrides)
    }

    fn validate_cpa(&self, cpa: &CpaRules) -> Result<(), Error> {
        self.payable(cpa.amount, "cpa.amount")?;
        for (country, amount) in &cpa.by_country {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(Error::invalid(
                    "cpa.byCountry",
                    format!("`{country}` is not an upper-case ISO 3166 code"),
                ));
            }
            self.payable(*amount, "cpa.byCountry")?;
        }
        let thresholds = [
            (cpa.min_first_deposit, "cpa.minFirstDeposit"),
            (cpa.min_total_deposits, "cpa.minTotalDeposits"),
            (cpa.min_turnover, "cpa.minTurnover"),
            (cpa.min_lots, "cpa.minLots"),
        ];
        for (value, field) in thresholds {
            if let Some(v) = value {
                non_negative_bounded(v, field)?;
            }
        }
        match cpa.within_days {
            Some(days) if !(1..=MAX_WINDOW_DAYS).contains(&days) => {
                Err(Error::invalid("cpa.withinDays", format!("must be between 1 and {MAX_WINDOW_DAYS}")))
            }
            _ => Ok(()),
        }
    }

    /// A fixed amount: non-negative, bounded, and payable in whole minor units.
    fn payable(&self, amount: Decimal, field: &'static str) -> Result<(), Error> {
        non_negative_bounded(amount, field)?;
        if amount.round_dp(self.currency.exponent()) != amount {
            let places = self.currency.exponent();
            return Err(Error::invalid(
                field,
                format!("{} allows at most {places} decimal places", self.currency),
            ));
        }
        Ok(())
    }
}

fn validate_revshare(rules: &RevShareRules) -> Result<(), Error> {
    let field = "revshare.tiers";
    let first = rules.tiers.first().ok_or_else(|| Error::invalid(field, "at least one tier is required"))?;
    if !first.from.is_zero() {
        return Err(Error::invalid(field, "the first tier must start at 0"));
    }
    if rules.tiers.windows(2).any(|w| w[1].from <= w[0].from) {
        return Err(Error::invalid(field, "tiers must be in strictly ascending order of `from`"));
    }
    for tier in &rules.tiers {
        non_negative_bounded(tier.from, field)?;
        percent(tier.percent, field)?;
    }
    Ok(())
}

fn validate_per_lot(rules: &PerLotRules) -> Result<(), Error> {
    non_negative_bounded(rules.default_rate, "perLot.defaultRate")?;
    for (group, rate) in &rules.group_rates {
        if group.trim().is_empty() {
            return Err(Error::invalid("perLot.groupRates", "group names must not be empty"));
        }
        non_negative_bounded(*rate, "perLot.groupRates")?;
    }
    for (instrument, group) in &rules.instrument_groups {
        if instrument.is_empty() || *instrument != instrument.trim().to_ascii_uppercase() {
            return Err(Error::invalid(
                "perLot.instrumentGroups",
                format!("`{instrument}` must be upper case"),
            ));
        }
        if !rules.group_rates.contains_key(group) {
            return Err(Error::invalid("perLot.instrumentGroups", format!("group `{group}` has no rate")));
        }
    }
    Ok(())
}

fn validate_overrides(levels: &[Decimal]) -> Result<(), Error> {
    if levels.len() > MAX_OVERRIDE_LEVELS {
        return Err(Error::invalid("overrides", format!("at most {MAX_OVERRIDE_LEVELS} levels")));
    }
    for level in levels {
        percent(*level, "overrides")?;
    }
    if levels.iter().sum::<Decimal>() > Decimal::ONE_HUNDRED {
        return Err(Error::invalid("overrides", "levels must not add up to more than 100 percent"));
    }
    Ok(())
}

fn non_negative_bounded(value: Decimal, field: &'static str) -> Result<(), Error> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(Error::invalid(field, "must not be negative"));
    }
    if value > MAX_AMOUNT {
        return Err(Error::invalid(field, "is out of range"));
    }
    Ok(())
}

fn percent(value: Decimal, field: &'static str) -> Result<(), Error> {
    if value < Decimal::ZERO || value > Decimal::ONE_HUNDRED {
        return Err(Error::invalid(field, "must be a percentage between 0 and 100"));
    }
    Ok(())
}
