//! What one conversion event earns under a plan, for the conversion as a whole.

use rust_decimal::Decimal;

use super::entry::{Earning, EntryKind, FxSource};
use super::facts::{EventContext, EventFacts, Normalized, PlayerFacts, normalize};
use super::plan::Plan;
use super::{cpa, lot, revshare};
use crate::Error;
use crate::money::Money;

/// The earnings of one event, and the player's facts after it (with `cpa_paid` set if this
/// event paid the CPA). Store the facts in the same transaction as the entries, or a retried
/// event could pay CPA twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOutcome {
    pub earnings: Vec<Earning>,
    pub player: PlayerFacts,
}

/// What `event` earns under `plan`, given the player's facts before it. Live revshare uses the
/// tier reached so far this month ([`EventContext::month_to_date`]) and is provisional: the
/// period close settles it. Zero amounts produce no earning.
pub fn commission_for_event(
    plan: &Plan,
    player: &PlayerFacts,
    event: &EventFacts,
    ctx: &EventContext,
) -> Result<EventOutcome, Error> {
    if player.currency != plan.currency {
        return Err(Error::invalid(
            "currency",
            format!("player totals are kept in {} but the plan pays in {}", player.currency, plan.currency),
        ));
    }
    let normalized = normalize(event, plan.currency, ctx.fx)?;
    let mut after = player.apply(&normalized, ctx.at)?;
    let mut earnings = Vec::new();
    // Rounding here too keeps entries in whole minor units even for a plan that skipped
    // validation.
    let mut earn = |kind, amount: Money, basis, fx| {
        let amount = amount.rounded();
        if !amount.is_zero() {
            earnings.push(Earning { kind, amount, basis, fx });
        }
    };

    if let (EventFacts::Registration, Some(cpl), None) = (event, plan.cpl, player.registered_at) {
        earn(EntryKind::Cpl, Money::new(cpl, plan.currency), None, None);
    }
    if let Some(rules) = plan.cpa.as_ref().filter(|_| !player.cpa_paid)
        && cpa::qualifies(rules, &after, ctx.at)
    {
        after.cpa_paid = true;
        let amount = cpa::amount_for(rules, after.country.as_deref());
        earn(EntryKind::Cpa, Money::new(amount, plan.currency), None, normalized.fx);
    }
    if let (EventFacts::Trade { lots, instrument }, Some(rules)) = (event, &plan.per_lot) {
        let rate = lot::rate_for(rules, instrument);
        earn(EntryKind::Lot, Money::new(rate, plan.currency).times(*lots)?.rounded(), None, None);
    }
    if let Some(live) = live_revshare(plan, &normalized, ctx)? {
        earn(EntryKind::Revshare, live.0, Some(live.1), live.2);
    }
    Ok(EventOutcome { earnings, player: after })
}

/// (commission, net revenue it was taken of, fx) for a revenue event under a revshare plan.
fn live_revshare(
    plan: &Plan,
    event: &Normalized<'_>,
    ctx: &EventContext,
) -> Result<Option<(Money, Money, Option<FxSource>)>, Error> {
    let (EventFacts::Revenue { .. }, Some(rules), Some(net)) = (event.event, &plan.revshare, event.amount)
    else {
        return Ok(None);
    };
    let mtd = ctx.month_to_date;
    let net_so_far = mtd.net_revenue.checked_add(net.amount).unwrap_or(Decimal::MAX);
    let percent = revshare::tier_percent(rules, revshare::basis_value(rules, net_so_far, mtd.ftds));
    Ok(Some((net.percent(percent)?, net, event.fx)))
}
