//! Revenue share: tier selection, live entries, and the month's figure with carryover.

use rust_decimal::Decimal;

use super::plan::{RevShareRules, TierBasis};
use crate::Error;
use crate::money::Money;

/// The percent of the highest tier whose `from` the value has reached. A value below every
/// tier (a negative net revenue) gets the first tier.
pub(super) fn tier_percent(rules: &RevShareRules, value: Decimal) -> Decimal {
    rules
        .tiers
        .iter()
        .take_while(|tier| tier.from <= value)
        .last()
        .or(rules.tiers.first())
        .map_or(Decimal::ZERO, |tier| tier.percent)
}

/// The basis value for the tier, from the month's net revenue and FTD count.
pub(super) fn basis_value(rules: &RevShareRules, net_revenue: Decimal, ftds: Decimal) -> Decimal {
    match rules.tier_by {
        TierBasis::NetRevenue => net_revenue,
        TierBasis::Ftds => ftds,
    }
}

/// One month of revshare for one affiliate, as settled at period close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRevShare {
    /// The tier's percentage, applied to the whole month.
    pub percent: Decimal,
    /// `percent` of the month's net revenue, rounded; negative in a losing month.
    pub earned: Money,
    /// The deficit brought in and applied (≤ 0; zero when carryover is off).
    pub carry_in: Money,
    /// What the affiliate is owed for the month (≥ 0).
    pub payable: Money,
    /// The deficit left for next month (≤ 0; zero when carryover is off).
    pub carry_out: Money,
}

/// The month's revshare: the tier reached by the month's figures applies to all of its net
/// revenue; with carryover on, `opening_carryover` (≤ 0) absorbs positive revshare first and
/// any remaining deficit is carried on; with it off, a negative month simply pays nothing.
pub fn revshare_for_month(
    rules: &RevShareRules,
    net_revenue: Money,
    ftds: Decimal,
    opening_carryover: Money,
) -> Result<MonthRevShare, Error> {
    if opening_carryover.amount > Decimal::ZERO {
        return Err(Error::invalid("openingCarryover", "a carryover is a deficit and cannot be positive"));
    }
    let currency = net_revenue.currency;
    let percent = tier_percent(rules, basis_value(rules, net_revenue.amount, ftds));
    let earned = net_revenue.percent(percent)?;
    let zero = Money::zero(currency);
    let carry_in = if rules.negative_carryover { opening_carryover.rounded() } else { zero };
    let net = earned.checked_add(carry_in)?;
    let (payable, carry_out) = if net.amount >= Decimal::ZERO {
        (net, zero)
    } else if rules.negative_carryover {
        (zero, net)
    } else {
        (zero, zero)
    };
    Ok(MonthRevShare { percent, earned, carry_in, payable, carry_out })
}
