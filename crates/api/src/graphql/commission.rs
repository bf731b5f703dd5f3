//! Commission: plans (versioned) and their assignment, the ledger, exchange rates, manual
//! adjustments, period close and statements. Staff configure and close; an affiliate reads
//! only its own entries and statements.

use std::collections::BTreeMap;

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use clickledger_domain::commission::{
    CpaRules, EntryKind, KpiBonus, KpiMetric as DomainKpiMetric, PerLotRules, Plan, RevShareRules,
    RevShareTier, TierBasis as DomainTierBasis,
};
use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, LedgerEntryId, PlanId, StatementId};
use clickledger_domain::money::{Currency, FxRate as DomainFxRate, Money};
use clickledger_domain::validate;
use clickledger_persistence::Viewer;
use clickledger_persistence::commission::{
    Adjustment, Assignment, Commissions, EntryFilter, EntryStatus, FxRateRecord, FxRates, LedgerEntry,
    NewAssignment, Period, PlanRecord, Plans, StatementRecord, StatementStatus as StoredStatementStatus,
    Statements,
};
use rust_decimal::Decimal;

use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use crate::Error;
use crate::error::GqlResultExt;

// ---- enums -------------------------------------------------------------------------------

/// The kind of a ledger entry.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CommissionKind {
    Cpa,
    Cpl,
    Revshare,
    Lot,
    Kpi,
    /// An upline's cut of a sub-affiliate's commission.
    Override,
    /// Cancels an earlier entry (chargeback); the amount is its negation.
    Reversal,
    /// A manual correction, with its reason.
    Adjustment,
    /// An open balance imported from another tracker (or its correction); the reason names
    /// the source. An imported revshare carryover is the first statement's opening
    /// carryover instead.
    Migration,
}

impl From<EntryKind> for CommissionKind {
    fn from(kind: EntryKind) -> Self {
        match kind {
            EntryKind::Cpa => CommissionKind::Cpa,
            EntryKind::Cpl => CommissionKind::Cpl,
            EntryKind::Revshare => CommissionKind::Revshare,
            EntryKind::Lot => CommissionKind::Lot,
            EntryKind::Kpi => CommissionKind::Kpi,
            EntryKind::Override => CommissionKind::Override,
            EntryKind::Reversal => CommissionKind::Reversal,
            EntryKind::Adjustment => CommissionKind::Adjustment,
            EntryKind::Migration => CommissionKind::Migration,
        }
    }
}

impl From<CommissionKind> for EntryKind {
    fn from(kind: CommissionKind) -> Self {
        match kind {
            CommissionKind::Cpa => EntryKind::Cpa,
            CommissionKind::Cpl => EntryKind::Cpl,
            CommissionKind::Revshare => EntryKind::Revshare,
            CommissionKind::Lot => EntryKind::Lot,
            CommissionKind::Kpi => EntryKind::Kpi,
            CommissionKind::Override => EntryKind::Override,
            CommissionKind::Reversal => EntryKind::Reversal,
            CommissionKind::Adjustment => EntryKind::Adjustment,
            CommissionKind::Migration => EntryKind::Migration,
        }
    }
}

/// Where an entry is in the payout workflow.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CommissionStatus {
    Pending,
    Approved,
    Held,
    Rejected,
    Paid,
}

impl From<EntryStatus> for CommissionStatus {
    fn from(status: EntryStatus) -> Self {
        match status {
            EntryStatus::Pending => CommissionStatus::Pending,
            EntryStatus::Approved => CommissionStatus::Approved,
            EntryStatus::Held => CommissionStatus::Held,
            EntryStatus::Rejected => CommissionStatus::Rejected,
            EntryStatus::Paid => CommissionStatus::Paid,
        }
    }
}

impl From<CommissionStatus> for EntryStatus {
    fn from(status: CommissionStatus) -> Self {
        match status {
            CommissionStatus::Pending => EntryStatus::Pending,
            CommissionStatus::Approved => EntryStatus::Approved,
            CommissionStatus::Held => EntryStatus::Held,
            CommissionStatus::Rejected => EntryStatus::Rejected,
            CommissionStatus::Paid => EntryStatus::Paid,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum StatementStatus {
    Closed,
    Paid,
}

/// What picks the revshare tier.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum TierBasis {
    /// The affiliate's net revenue for the month.
    #[default]
    NetRevenue,
    /// The affiliate's first-time depositors in the month.
    Ftds,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum KpiMetric {
    Ftds,
    Registrations,
    QualifiedPlayers,
    NetRevenue,
    Deposits,
    Lots,
}

// ---- plan input --------------------------------------------------------------------------

#[derive(InputObject)]
pub struct CountryAmountInput {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub amount: Decimal,
}

/// A fixed amount per qualified player; every threshold that is set must be met.
#[derive(InputObject)]
pub struct CpaInput {
    pub amount: Decimal,
    pub by_country: Option<Vec<CountryAmountInput>>,
    pub min_first_deposit: Option<Decimal>,
    pub min_total_deposits: Option<Decimal>,
    pub min_turnover: Option<Decimal>,
    pub min_trades: Option<i32>,
    pub min_lots: Option<Decimal>,
    /// Qualification must complete within this many days of registration.
    pub within_days: Option<i32>,
}

#[derive(InputObject)]
pub struct RevShareTierInput {
    /// The tier applies from this value of the basis on.
    pub from: Decimal,
    pub percent: Decimal,
}

#[derive(InputObject)]
pub struct RevShareInput {
    /// Defaults to NET_REVENUE.
    pub tier_by: Option<TierBasis>,
    /// Ascending by `from`; the first starts at 0.
    pub tiers: Vec<RevShareTierInput>,
    /// Carry a losing month's deficit into later months. Defaults to true.
    pub negative_carryover: Option<bool>,
}

#[derive(InputObject)]
pub struct GroupRateInput {
    pub group: String,
    pub rate: Decimal,
}

#[derive(InputObject)]
pub struct InstrumentGroupInput {
    /// Upper case, e.g. EURUSD.
    pub instrument: String,
    pub group: String,
}

#[derive(InputObject)]
pub struct PerLotInput {
    pub default_rate: Decimal,
    pub group_rates: Option<Vec<GroupRateInput>>,
    pub instrument_groups: Option<Vec<InstrumentGroupInput>>,
}

#[derive(InputObject)]
pub struct KpiBonusInput {
    pub metric: KpiMetric,
    pub target: Decimal,
    pub amount: Decimal,
}

/// What a plan pays. Any combination may be set (CPA with revshare is a hybrid deal).
/// Amounts are in `currency`; percentages are 0–100.
#[derive(InputObject)]
pub struct CommissionRulesInput {
    /// ISO 4217, e.g. USD. A plan's currency never changes across versions.
    pub currency: String,
    pub cpa: Option<CpaInput>,
    /// Paid per registration (lead).
    pub cpl: Option<Decimal>,
    pub revshare: Option<RevShareInput>,
    pub per_lot: Option<PerLotInput>,
    pub kpi: Option<Vec<KpiBonusInput>>,
    /// Percent of the credited affiliate's commission per upline level, parent first.
    pub overrides: Option<Vec<Decimal>>,
}

#[derive(InputObject)]
pub struct CreateCommissionPlanInput {
    pub name: String,
    /// When version 1 takes effect; defaults to now and may lie in the past.
    pub effective_from: Option<DateTime<Utc>>,
    pub rules: CommissionRulesInput,
}

#[derive(InputObject)]
pub struct UpdateCommissionPlanInput {
    pub name: Option<String>,
    /// When the new version takes effect; defaults to now, never in the past.
    pub effective_from: Option<DateTime<Utc>>,
    pub rules: CommissionRulesInput,
}

#[derive(InputObject)]
pub struct AssignCommissionPlanInput {
    pub plan_id: ID,
    pub campaign_id: ID,
    /// Omit to make the plan the campaign's default.
    pub affiliate_id: Option<ID>,
    /// Defaults to now.
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct SetFxRateInput {
    /// The UTC day the rate applies to (and later days until another is set).
    pub day: NaiveDate,
    pub from: String,
    pub to: String,
    /// One unit of `from` is worth `rate` units of `to`.
    pub rate: Decimal,
}

#[derive(InputObject)]
pub struct AdjustCommissionInput {
    pub affiliate_id: ID,
    /// Positive or negative, in whole minor units of `currency`.
    pub amount: Decimal,
    pub currency: String,
    /// Required; kept on the entry with the author.
    pub reason: String,
    pub conversion_id: Option<ID>,
}

fn bad(field: &str, message: &str) -> async_graphql::Error {
    Error::bad_input(field, message).into_gql()
}

/// Domain validation names fields relative to the rules; prefix them so the client sees
/// the path it sent (`rules.cpa.amount`).
fn in_rules(err: clickledger_domain::Error) -> async_graphql::Error {
    match err {
        clickledger_domain::Error::Invalid { field, reason } => bad(&format!("rules.{field}"), &reason),
        clickledger_domain::Error::InvalidAt { field, reason } => bad(&format!("rules.{field}"), &reason),
    }
}

fn non_negative_count(value: Option<i32>, field: &str) -> async_graphql::Result<Option<u32>> {
    value.map(|v| u32::try_from(v).map_err(|_| bad(field, "must not be negative"))).transpose()
}

impl CommissionRulesInput {
    fn into_plan(self) -> async_graphql::Result<Plan> {
        let currency = Currency::parse(&self.currency, "currency").map_err(in_rules)?;
        let cpa = match self.cpa {
            Some(cpa) => Some(CpaRules {
                amount: cpa.amount,
                by_country: cpa
                    .by_country
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| (c.country.trim().to_owned(), c.amount))
                    .collect::<BTreeMap<_, _>>(),
                min_first_deposit: cpa.min_first_deposit,
                min_total_deposits: cpa.min_total_deposits,
                min_turnover: cpa.min_turnover,
                min_trades: non_negative_count(cpa.min_trades, "rules.cpa.minTrades")?,
                min_lots: cpa.min_lots,
                within_days: non_negative_count(cpa.within_days, "rules.cpa.withinDays")?,
            }),
            None => None,
        };
        let revshare = self.revshare.map(|r| RevShareRules {
            tier_by: match r.tier_by.unwrap_or_default() {
                TierBasis::NetRevenue => DomainTierBasis::NetRevenue,
                TierBasis::Ftds => DomainTierBasis::Ftds,
            },
            tiers: r.tiers.into_iter().map(|t| RevShareTier { from: t.from, percent: t.percent }).collect(),
            negative_carryover: r.negative_carryover.unwrap_or(true),
        });
        let per_lot = self.per_lot.map(|p| PerLotRules {
            default_rate: p.default_rate,
            group_rates: p.group_rates.unwrap_or_default().into_iter().map(|g| (g.group, g.rate)).collect(),
            instrument_groups: p
                .instrument_groups
                .unwrap_or_default()
                .into_iter()
                .map(|i| (i.instrument, i.group))
                .collect(),
        });
        let kpi = self
            .kpi
            .unwrap_or_default()
            .into_iter()
            .map(|k| KpiBonus {
                metric: match k.metric {
                    KpiMetric::Ftds => DomainKpiMetric::Ftds,
                    KpiMetric::Registrations => DomainKpiMetric::Registrations,
                    KpiMetric::QualifiedPlayers => DomainKpiMetric::QualifiedPlayers,
                    KpiMetric::NetRevenue => DomainKpiMetric::NetRevenue,
                    KpiMetric::Deposits => DomainKpiMetric::Deposits,
                    KpiMetric::Lots => DomainKpiMetric::Lots,
                },
                target: k.target,
                amount: k.amount,
            })
            .collect();
        let plan = Plan {
            currency,
            cpa,
            cpl: self.cpl,
            revshare,
            per_lot,
            kpi,
            overrides: self.overrides.unwrap_or_default(),
        };
        plan.validate().map_err(in_rules)?;
        Ok(plan)
    }
}

// ---- output ------------------------------------------------------------------------------

#[derive(SimpleObject)]
pub struct CommissionPlanVersion {
    /// 1, 2, 3, … in order of creation.
    pub version: i32,
    pub effective_from: DateTime<Utc>,
    /// The rules as JSON (amounts as decimal strings).
    pub rules: Json<Plan>,
}

#[derive(SimpleObject)]
pub struct CommissionPlan {
    pub id: ID,
    pub name: String,
    pub currency: String,
    /// The latest version's number.
    pub version: i32,
    /// The latest version's rules.
    pub rules: Json<Plan>,
    /// Every version, oldest first. Entries keep the version they were booked under.
    pub versions: Vec<CommissionPlanVersion>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PlanRecord> for CommissionPlan {
    fn from(p: PlanRecord) -> Self {
        let versions: Vec<CommissionPlanVersion> = p
            .versions
            .into_iter()
            .map(|v| CommissionPlanVersion {
                version: i32::try_from(v.version).unwrap_or(i32::MAX),
                effective_from: v.effective_from,
                rules: Json(v.plan),
            })
            .collect();
        let (version, rules) = versions
            .last()
            .map(|v| (v.version, Json(v.rules.0.clone())))
            .unwrap_or((0, Json(empty_plan(p.currency))));
        CommissionPlan {
            id: ID(p.id.to_string()),
            name: p.name,
            currency: p.currency.to_string(),
            version,
            rules,
            versions,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

fn empty_plan(currency: Currency) -> Plan {
    Plan {
        currency,
        cpa: None,
        cpl: None,
        revshare: None,
        per_lot: None,
        kpi: Vec::new(),
        overrides: Vec::new(),
    }
}

#[derive(SimpleObject)]
pub struct PlanAssignment {
    pub id: ID,
    pub plan_id: ID,
    pub campaign_id: ID,
    /// Null: the campaign's default plan.
    pub affiliate_id: Option<ID>,
    pub effective_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<Assignment> for PlanAssignment {
    fn from(a: Assignment) -> Self {
        PlanAssignment {
            id: ID(a.id.to_string()),
            plan_id: ID(a.plan_id.to_string()),
            campaign_id: ID(a.campaign_id.to_string()),
            affiliate_id: a.affiliate_id.map(|id| ID(id.to_string())),
            effective_from: a.effective_from,
            created_at: a.created_at,
        }
    }
}

/// One append-only ledger entry. Amounts are in the plan's currency, rounded to its minor
/// unit (banker's rounding); a chargeback appends a reversal instead of changing anything.
#[derive(SimpleObject)]
pub struct CommissionEntry {
    pub id: ID,
    pub affiliate_id: ID,
    pub conversion_id: Option<ID>,
    pub plan_id: Option<ID>,
    pub plan_version: Option<i32>,
    pub kind: CommissionKind,
    /// 0 for the credited affiliate; n for its n-th upline's override.
    pub tier: i32,
    /// For a reversal: the kind of the entry it cancels.
    pub reverses: Option<CommissionKind>,
    pub reverses_entry_id: Option<ID>,
    pub amount: Decimal,
    pub currency: String,
    /// What a percentage was taken of (net revenue, a sub-affiliate's commission).
    pub basis: Option<Decimal>,
    /// The event's own amount and currency, when it was converted.
    pub source_amount: Option<Decimal>,
    pub source_currency: Option<String>,
    /// The operator's rate used: one unit of the source currency in the plan's currency.
    pub fx_rate: Option<Decimal>,
    pub status: CommissionStatus,
    /// `YYYY-MM` (in the tenant's time zone) the entry counts in.
    pub period: String,
    /// For an adjustment: why it was made.
    pub reason: Option<String>,
    /// For an adjustment: who made it (staff only).
    pub created_by: Option<ID>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl CommissionEntry {
    fn from_entry(e: LedgerEntry, staff: bool) -> Self {
        CommissionEntry {
            id: ID(e.id.to_string()),
            affiliate_id: ID(e.affiliate_id.to_string()),
            conversion_id: e.conversion_id.map(|id| ID(id.to_string())),
            plan_id: e.plan_id.map(|id| ID(id.to_string())),
            plan_version: e.plan_version.map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
            kind: e.kind.into(),
            tier: i32::from(e.tier),
            reverses: e.reverses.map(CommissionKind::from),
            reverses_entry_id: e.reverses_entry_id.map(|id| ID(id.to_string())),
            amount: e.amount.amount,
            currency: e.amount.currency.to_string(),
            basis: e.basis.map(|b| b.amount),
            source_amount: e.source_amount,
            source_currency: e.source_currency,
            fx_rate: e.fx_rate,
            status: e.status.into(),
            period: e.period.to_string(),
            reason: e.reason,
            created_by: e.created_by.filter(|_| staff).map(|id| ID(id.to_string())),
            occurred_at: e.occurred_at,
            created_at: e.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct StatementLine {
    pub kind: CommissionKind,
    pub amount: Decimal,
}

/// An affiliate's month in one currency: opening carryover, lines by kind, closing balance.
#[derive(SimpleObject)]
pub struct Statement {
    pub id: ID,
    pub affiliate_id: ID,
    /// `YYYY-MM` (in the tenant's time zone).
    pub period: String,
    pub currency: String,
    /// The revshare deficit brought forward (≤ 0).
    pub opening_carryover: Decimal,
    /// Per kind; they sum to `balance`.
    pub lines: Vec<StatementLine>,
    /// What the month's entries come to: the amount payable.
    pub balance: Decimal,
    /// The revshare deficit carried into the next month (≤ 0).
    pub closing_carryover: Decimal,
    pub status: StatementStatus,
    pub closed_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

impl From<StatementRecord> for Statement {
    fn from(s: StatementRecord) -> Self {
        Statement {
            id: ID(s.id.to_string()),
            affiliate_id: ID(s.affiliate_id.to_string()),
            period: s.period.to_string(),
            currency: s.currency.to_string(),
            opening_carryover: s.opening_carryover.amount,
            lines: s
                .lines
                .into_iter()
                .map(|(kind, amount)| StatementLine { kind: kind.into(), amount: amount.amount })
                .collect(),
            balance: s.balance.amount,
            closing_carryover: s.closing_carryover.amount,
            status: match s.status {
                StoredStatementStatus::Closed => StatementStatus::Closed,
                StoredStatementStatus::Paid => StatementStatus::Paid,
            },
            closed_at: s.closed_at,
            paid_at: s.paid_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct FxRate {
    pub day: NaiveDate,
    #[graphql(name = "from")]
    pub from_currency: String,
    #[graphql(name = "to")]
    pub to_currency: String,
    pub rate: Decimal,
    pub updated_at: DateTime<Utc>,
}

impl From<FxRateRecord> for FxRate {
    fn from(r: FxRateRecord) -> Self {
        FxRate {
            day: r.day,
            from_currency: r.from.to_string(),
            to_currency: r.to.to_string(),
            rate: r.rate,
            updated_at: r.updated_at,
        }
    }
}

fn period(raw: &str) -> async_graphql::Result<Period> {
    Period::parse(raw, "period").gql()
}

// ---- resolvers ---------------------------------------------------------------------------

#[derive(Default)]
pub struct CommissionQuery;

#[Object]
impl CommissionQuery {
    /// Commission plans, oldest first, each with all its versions.
    #[graphql(
        guard = "Allow::STAFF",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn commission_plans(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, CommissionPlan>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, PlanId::parse, PlanId::uuid).gql()?;
        let page = Plans::scoped(&state.db, scope).list(request).await.gql()?;
        Ok(pagination::connection(page, request, |p| (pagination::cursor(p.id), CommissionPlan::from(p))))
    }

    #[graphql(guard = "Allow::STAFF")]
    async fn commission_plan(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<CommissionPlan> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let id = PlanId::parse(&id, "id").gql()?;
        Plans::scoped(&state.db, scope).get(id).await.gql().map(CommissionPlan::from)
    }

    /// A plan's assignments, oldest first.
    #[graphql(guard = "Allow::STAFF")]
    async fn plan_assignments(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
    ) -> async_graphql::Result<Vec<PlanAssignment>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let id = PlanId::parse(&plan_id, "planId").gql()?;
        let assignments = Plans::scoped(&state.db, scope).assignments(id).await.gql()?;
        Ok(assignments.into_iter().map(PlanAssignment::from).collect())
    }

    /// Ledger entries, oldest first. Staff see every affiliate's; an affiliate only its own.
    #[graphql(
        guard = "Allow::ANYONE_SIGNED_IN",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn commissions(
        &self,
        ctx: &Context<'_>,
        affiliate_id: Option<ID>,
        #[graphql(desc = "`YYYY-MM` (in the tenant's time zone)")] period: Option<String>,
        status: Option<CommissionStatus>,
        kind: Option<CommissionKind>,
        conversion_id: Option<ID>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, CommissionEntry>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let filter = EntryFilter {
            affiliate: affiliate_id.map(|id| AffiliateId::parse(&id, "affiliateId")).transpose().gql()?,
            period: period.as_deref().map(self::period).transpose()?,
            status: status.map(EntryStatus::from),
            kind: kind.map(EntryKind::from),
            conversion: conversion_id.map(|id| ConversionId::parse(&id, "conversionId")).transpose().gql()?,
        };
        let request = pagination::request(after, first, LedgerEntryId::parse, LedgerEntryId::uuid).gql()?;
        let page = Commissions::scoped(&state.db, scope).list(&filter, request).await.gql()?;
        let staff = scope.viewer() == Viewer::Staff;
        Ok(pagination::connection(page, request, |e| {
            (pagination::cursor(e.id), CommissionEntry::from_entry(e, staff))
        }))
    }

    /// An affiliate's statement for a closed month. With several currencies, pass `currency`.
    /// An affiliate may read only its own.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn statement(
        &self,
        ctx: &Context<'_>,
        affiliate_id: ID,
        #[graphql(desc = "`YYYY-MM` (in the tenant's time zone)")] period: String,
        currency: Option<String>,
    ) -> async_graphql::Result<Statement> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let affiliate = AffiliateId::parse(&affiliate_id, "affiliateId").gql()?;
        let wanted = currency.map(|c| Currency::parse(&c, "currency")).transpose().gql()?;
        let mut found =
            Statements::scoped(&state.db, scope).get(affiliate, self::period(&period)?).await.gql()?;
        if let Some(wanted) = wanted {
            found.retain(|s| s.currency == wanted);
        }
        match found.len() {
            0 => Err(Error::NotFound.into_gql()),
            1 => Ok(found.remove(0).into()),
            _ => Err(bad("currency", "the affiliate has statements in several currencies; pass one")),
        }
    }

    /// Every statement of a closed month, by affiliate; an affiliate sees only its own.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn statements(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "`YYYY-MM` (in the tenant's time zone)")] period: String,
    ) -> async_graphql::Result<Vec<Statement>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let found = Statements::scoped(&state.db, scope).for_period(self::period(&period)?).await.gql()?;
        Ok(found.into_iter().map(Statement::from).collect())
    }

    /// Exchange rates set with `setFxRate`, newest day first.
    #[graphql(guard = "Allow::STAFF")]
    async fn fx_rates(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FxRate>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        Ok(FxRates::scoped(&state.db, scope).list().await.gql()?.into_iter().map(FxRate::from).collect())
    }
}

#[derive(Default)]
pub struct CommissionMutation;

#[Object]
impl CommissionMutation {
    /// Creates a plan (version 1). Assign it to take effect.
    #[graphql(guard = "Allow::STAFF")]
    async fn create_commission_plan(
        &self,
        ctx: &Context<'_>,
        input: CreateCommissionPlanInput,
    ) -> async_graphql::Result<CommissionPlan> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let name = validate::name(&input.name, "name").gql()?;
        let plan = input.rules.into_plan()?;
        let effective_from = input.effective_from.unwrap_or_else(Utc::now);
        Plans::scoped(&state.db, principal.scope())
            .create(name, plan, effective_from, principal.actor())
            .await
            .gql()
            .map(CommissionPlan::from)
    }

    /// Appends a new version, effective from `effectiveFrom` (default now, never in the
    /// past). Commission already booked keeps the version it was computed with.
    #[graphql(guard = "Allow::STAFF")]
    async fn update_commission_plan(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCommissionPlanInput,
    ) -> async_graphql::Result<CommissionPlan> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let id = PlanId::parse(&id, "id").gql()?;
        let name = input.name.map(|n| validate::name(&n, "name")).transpose().gql()?;
        let plan = input.rules.into_plan()?;
        let now = Utc::now();
        let effective_from = input.effective_from.unwrap_or(now);
        Plans::scoped(&state.db, principal.scope())
            .revise(id, name, plan, effective_from, now, principal.actor())
            .await
            .map_err(|err| match err {
                clickledger_persistence::Error::Invalid(clickledger_domain::Error::Invalid {
                    field: "currency",
                    reason,
                }) => bad("rules.currency", &reason),
                other => Error::from(other).into_gql(),
            })
            .map(CommissionPlan::from)
    }

    /// Assigns a plan to a campaign (its default) or to one affiliate on it, from
    /// `effectiveFrom` on. Earlier events keep the plan that was in force for them.
    #[graphql(guard = "Allow::STAFF")]
    async fn assign_commission_plan(
        &self,
        ctx: &Context<'_>,
        input: AssignCommissionPlanInput,
    ) -> async_graphql::Result<PlanAssignment> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let new = NewAssignment {
            plan_id: PlanId::parse(&input.plan_id, "planId").gql()?,
            campaign_id: CampaignId::parse(&input.campaign_id, "campaignId").gql()?,
            affiliate_id: input
                .affiliate_id
                .map(|id| AffiliateId::parse(&id, "affiliateId"))
                .transpose()
                .gql()?,
            effective_from: input.effective_from.unwrap_or_else(Utc::now),
        };
        Plans::scoped(&state.db, principal.scope())
            .assign(new, principal.actor())
            .await
            .gql()
            .map(PlanAssignment::from)
    }

    /// Sets the operator's exchange rate for a day (replacing that day's). Never fetched
    /// from anywhere; entries keep the rate they were booked with.
    #[graphql(guard = "Allow::STAFF")]
    async fn set_fx_rate(&self, ctx: &Context<'_>, input: SetFxRateInput) -> async_graphql::Result<FxRate> {
        let principal = principal(ctx)?;
        let state = state(ctx);
        let from = Currency::parse(&input.from, "from").gql()?;
        let to = Currency::parse(&input.to, "to").gql()?;
        if from == to {
            return Err(bad("to", "must differ from `from`"));
        }
        let rate = DomainFxRate::new(from, to, input.rate).map_err(|err| match err {
            clickledger_domain::Error::Invalid { reason, .. }
            | clickledger_domain::Error::InvalidAt { reason, .. } => bad("rate", &reason),
        })?;
        FxRates::scoped(&state.db, principal.scope())
            .set(input.day, rate, principal.user)
            .await
            .gql()
            .map(FxRate::from)
    }

    /// Appends a manual adjustment (positive or negative) to the affiliate's current month.
    /// The reason and the author are kept on the entry.
    #[graphql(guard = "Allow::STAFF")]
    async fn adjust_commission(
        &self,
        ctx: &Context<'_>,
        input: AdjustCommissionInput,
    ) -> async_graphql::Result<CommissionEntry> {
        let principal = principal(ctx)?;
        let state = state(ctx);
        let currency = Currency::parse(&input.currency, "currency").gql()?;
        let amount = Money::from_input(input.amount, currency, "amount").gql()?;
        let adjustment = Adjustment {
            affiliate: AffiliateId::parse(&input.affiliate_id, "affiliateId").gql()?,
            amount,
            reason: input.reason,
            conversion: input
                .conversion_id
                .map(|id| ConversionId::parse(&id, "conversionId"))
                .transpose()
                .gql()?,
            author: principal.user,
        };
        let entry = Commissions::scoped(&state.db, principal.scope()).adjust(adjustment).await.gql()?;
        Ok(CommissionEntry::from_entry(entry, true))
    }

    /// Moves entries through the workflow: HELD (under review; blocks the statement's
    /// payout), APPROVED, PENDING or REJECTED (counts for nothing). Amounts never change and
    /// paid entries are final. Re-run `closePeriod` for a closed month to update its statement.
    #[graphql(guard = "Allow::STAFF")]
    async fn set_commission_status(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
        status: CommissionStatus,
    ) -> async_graphql::Result<Vec<CommissionEntry>> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let ids =
            ids.iter().map(|id| LedgerEntryId::parse(id, "ids")).collect::<Result<Vec<_>, _>>().gql()?;
        let moved = Commissions::scoped(&state.db, principal.scope())
            .set_status(&ids, status.into(), principal.actor())
            .await
            .gql()?;
        Ok(moved.into_iter().map(|e| CommissionEntry::from_entry(e, true)).collect())
    }

    /// Closes a month (in the tenant's time zone) that has ended: settles revshare at the month's tier with
    /// carryover, pays KPI bonuses, and writes one statement per affiliate and currency.
    /// Closing again books nothing new and returns the same statements.
    #[graphql(guard = "Allow::STAFF")]
    async fn close_period(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "`YYYY-MM` (in the tenant's time zone)")] period: String,
    ) -> async_graphql::Result<Vec<Statement>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let closed =
            Statements::scoped(&state.db, scope).close(self::period(&period)?, Utc::now()).await.gql()?;
        Ok(closed.into_iter().map(Statement::from).collect())
    }

    /// Marks a statement paid, with every entry it sums. Refused (CONFLICT on `status`)
    /// while one of its entries is held, and (CONFLICT on `balance`, naming the difference)
    /// when entries of its month changed status after the close: close the period again.
    #[graphql(guard = "Allow::STAFF")]
    async fn mark_statement_paid(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Statement> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let id = StatementId::parse(&id, "id").gql()?;
        Statements::scoped(&state.db, principal.scope())
            .mark_paid(id, Utc::now(), principal.actor())
            .await
            .gql()
            .map(Statement::from)
    }
}
