//! Period close: settles revshare at the month's final tier with carryover, pays KPI bonuses,
//! and sums the period into a statement. Pure and idempotent: the closing entries are the
//! difference between what is due and what is already booked, so closing again with them
//! included yields no new entries and the same statement.

use rust_decimal::Decimal;

use super::entry::{EntryDraft, EntryKind};
use super::plan::{KpiMetric, Plan};
use super::revshare::{MonthRevShare, revshare_for_month};
use crate::Error;
use crate::ids::AffiliateId;
use crate::money::Money;

/// The affiliate's credited figures for the period (its share of each conversion), money in
/// the plan's currency. `net_revenue` should be the sum of the `basis` of the period's tier-0
/// revshare entries, so that the settlement agrees with what was shown live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodMetrics {
    pub ftds: Decimal,
    pub registrations: Decimal,
    pub qualified_players: Decimal,
    pub net_revenue: Decimal,
    pub deposits: Decimal,
    pub lots: Decimal,
}

impl PeriodMetrics {
    fn value(&self, metric: KpiMetric) -> Decimal {
        match metric {
            KpiMetric::Ftds => self.ftds,
            KpiMetric::Registrations => self.registrations,
            KpiMetric::QualifiedPlayers => self.qualified_players,
            KpiMetric::NetRevenue => self.net_revenue,
            KpiMetric::Deposits => self.deposits,
            KpiMetric::Lots => self.lots,
        }
    }
}

/// Everything a close needs. Close sub-affiliates before their parents, so that overrides of
/// the subs' closing entries land in the parents' periods before those close.
#[derive(Debug, Clone, Copy)]
pub struct PeriodClose<'a> {
    /// The version in force at the period's end.
    pub plan: &'a Plan,
    pub affiliate: AffiliateId,
    /// The previous statement's `closing_carryover` (≤ 0).
    pub opening_carryover: Money,
    pub metrics: PeriodMetrics,
    /// Every entry booked to this affiliate in the period under this plan, at any tier.
    pub entries: &'a [EntryDraft],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLine {
    pub kind: EntryKind,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub affiliate: AffiliateId,
    pub opening_carryover: Money,
    /// The month's settlement, when the plan has revshare.
    pub revshare: Option<MonthRevShare>,
    pub kpi_due: Money,
    /// To append to the ledger (tier 0); their overrides are booked like any other entry's.
    pub closing_entries: Vec<EntryDraft>,
    /// Per kind, booked entries plus closing entries, in [`EntryKind::ALL`] order.
    pub lines: Vec<StatementLine>,
    /// The sum of `lines`.
    pub balance: Money,
    pub closing_carryover: Money,
}

pub fn close_period(input: &PeriodClose<'_>) -> Result<Statement, Error> {
    let currency = input.plan.currency;
    let zero = Money::zero(currency);
    check_entries(input)?;
    if input.opening_carryover.currency != currency || input.opening_carryover.amount > Decimal::ZERO {
        return Err(Error::invalid("openingCarryover", "must be a deficit (≤ 0) in the plan's currency"));
    }

    let mut closing_entries = Vec::new();
    let mut closing_carryover = input.opening_carryover;
    let revshare = match &input.plan.revshare {
        Some(rules) => {
            let net = Money::new(input.metrics.net_revenue, currency);
            let month = revshare_for_month(rules, net, input.metrics.ftds, input.opening_carryover)?;
            closing_carryover = month.carry_out;
            push_true_up(&mut closing_entries, input, EntryKind::Revshare, month.payable)?;
            Some(month)
        }
        None => None,
    };
    let kpi_due = input
        .plan
        .kpi
        .iter()
        .filter(|bonus| input.metrics.value(bonus.metric) >= bonus.target)
        .try_fold(zero, |acc, bonus| acc.checked_add(Money::new(bonus.amount, currency)))?;
    push_true_up(&mut closing_entries, input, EntryKind::Kpi, kpi_due)?;

    let lines = lines(input.entries.iter().chain(&closing_entries), zero)?;
    let balance = lines.iter().try_fold(zero, |acc, line| acc.checked_add(line.amount))?;
    Ok(Statement {
        affiliate: input.affiliate,
        opening_carryover: input.opening_carryover,
        revshare,
        kpi_due,
        closing_entries,
        lines,
        balance,
        closing_carryover,
    })
}

fn check_entries(input: &PeriodClose<'_>) -> Result<(), Error> {
    let foreign = input
        .entries
        .iter()
        .any(|e| e.beneficiary != input.affiliate || e.amount.currency != input.plan.currency);
    if foreign {
        return Err(Error::invalid(
            "entries",
            "every entry must belong to the affiliate and be in the plan's currency",
        ));
    }
    Ok(())
}

/// Appends an entry of `kind` for the difference between `due` and what tier-0 entries of that
/// kind (net of their reversals) already booked.
fn push_true_up(
    out: &mut Vec<EntryDraft>,
    input: &PeriodClose<'_>,
    kind: EntryKind,
    due: Money,
) -> Result<(), Error> {
    let booked = input
        .entries
        .iter()
        .filter(|e| e.tier == 0 && e.effective_kind() == kind)
        .try_fold(Money::zero(due.currency), |acc, e| acc.checked_add(e.amount))?;
    let difference = due.rounded().checked_sub(booked)?;
    if !difference.is_zero() {
        out.push(EntryDraft {
            beneficiary: input.affiliate,
            tier: 0,
            kind,
            amount: difference,
            basis: None,
            fx: None,
            reverses: None,
        });
    }
    Ok(())
}

fn lines<'a>(
    entries: impl Iterator<Item = &'a EntryDraft> + Clone,
    zero: Money,
) -> Result<Vec<StatementLine>, Error> {
    let mut lines = Vec::new();
    for kind in EntryKind::ALL {
        let mut of_kind = entries.clone().filter(|e| e.kind == kind).peekable();
        if of_kind.peek().is_none() {
            continue;
        }
        let amount = of_kind.try_fold(zero, |acc, e| acc.checked_add(e.amount))?;
        lines.push(StatementLine { kind, amount });
    }
    Ok(lines)
}
