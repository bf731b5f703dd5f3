//! Commission storage: versioned plans and their assignments, the append-only ledger, the
//! operator's exchange rates, and period statements. The arithmetic is the domain engine's
//! (`clickledger_domain::commission`); this module finds its inputs and stores its outputs.
//!
//! Booking happens inside the postback's own transaction (see [`booking`]), so a conversion
//! and its commission commit together or not at all, and a retried postback (deduplicated
//! before it gets here) never pays twice.
//!
//! **Periods** are calendar months (`YYYY-MM`) in the tenant's time zone. An entry belongs to
//! the month its event occurred in, unless that month's statement for the affiliate is already closed: then
//! it lands in the month it was booked in, so a closed statement never changes.

mod booking;
mod close;
mod ledger;
mod plans;
mod rejection;
mod review;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use clickledger_domain::commission::{EntryKind, PlanVersion};
use clickledger_domain::ids::{
    AffiliateId, CampaignId, ConversionId, LedgerEntryId, PlanAssignmentId, PlanId, StatementId, TenantId,
    UserId,
};
use clickledger_domain::money::{Currency, Money};
use rust_decimal::Decimal;

pub(crate) use booking::{
    Booking, LateReversal, book_conversion, book_late_reversal, load_stored_facts, on_status_change,
    open_period, store_facts,
};
pub use clickledger_domain::period::Period;
pub use close::Statements;
pub(crate) use ledger::own_commission;
pub use ledger::{Adjustment, Commissions, EntryFilter, FxRates};
pub use plans::{NewAssignment, Plans};
pub(crate) use plans::{campaigns_with_plans, insert_version, load_history};
pub(crate) use review::{apply_review, has_entries};

/// Where an entry is in the payout workflow. Amounts never change; only this does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryStatus {
    /// The conversion is not confirmed yet.
    Pending,
    Approved,
    /// Held back by the operator (e.g. under review).
    Held,
    /// The conversion was rejected; the entry counts for nothing.
    Rejected,
    /// Paid with its statement.
    Paid,
}

impl EntryStatus {
    pub const ALL: [EntryStatus; 5] = [
        EntryStatus::Pending,
        EntryStatus::Approved,
        EntryStatus::Held,
        EntryStatus::Rejected,
        EntryStatus::Paid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Pending => "pending",
            EntryStatus::Approved => "approved",
            EntryStatus::Held => "held",
            EntryStatus::Rejected => "rejected",
            EntryStatus::Paid => "paid",
        }
    }
}

impl fmt::Display for EntryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryStatus {
    type Err = clickledger_domain::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| {
            clickledger_domain::Error::invalid("status", format!("unknown entry status `{s}`"))
        })
    }
}

/// A plan with every version, oldest first.
#[derive(Debug, Clone)]
pub struct PlanRecord {
    pub id: PlanId,
    pub name: String,
    pub currency: Currency,
    pub versions: Vec<PlanVersion>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Assignment {
    pub id: PlanAssignmentId,
    pub plan_id: PlanId,
    pub campaign_id: CampaignId,
    /// `None`: the campaign's default plan, for affiliates without their own.
    pub affiliate_id: Option<AffiliateId>,
    pub effective_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// One ledger row as it leaves storage.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub id: LedgerEntryId,
    pub affiliate_id: AffiliateId,
    pub conversion_id: Option<ConversionId>,
    pub plan_id: Option<PlanId>,
    pub plan_version: Option<u32>,
    pub kind: EntryKind,
    /// 0 for the credited affiliate, n for its n-th upline's override.
    pub tier: u8,
    /// For a reversal: the kind and the entry it cancels.
    pub reverses: Option<EntryKind>,
    pub reverses_entry_id: Option<LedgerEntryId>,
    /// In the plan's currency, rounded to its minor unit.
    pub amount: Money,
    pub basis: Option<Money>,
    /// The event's own amount and currency and the operator's rate into the plan's currency,
    /// when a conversion was needed.
    pub source_amount: Option<Decimal>,
    pub source_currency: Option<String>,
    pub fx_rate: Option<Decimal>,
    pub status: EntryStatus,
    pub period: Period,
    /// Why a manual adjustment was made, and by whom.
    pub reason: Option<String>,
    pub created_by: Option<UserId>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct FxRateRecord {
    pub day: NaiveDate,
    pub from: Currency,
    pub to: Currency,
    pub rate: Decimal,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementStatus {
    Closed,
    Paid,
}

impl StatementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StatementStatus::Closed => "closed",
            StatementStatus::Paid => "paid",
        }
    }

    /// A stored statement is paid, or else closed.
    fn of_stored(status: &str) -> StatementStatus {
        if status == StatementStatus::Paid.as_str() { StatementStatus::Paid } else { StatementStatus::Closed }
    }
}

/// The status of the affiliate's statement of `period` in `currency`, or `None` while that
/// month has no statement (it is open).
pub(crate) async fn statement_status<C: sea_orm::ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    affiliate: AffiliateId,
    currency: Currency,
    period: Period,
) -> crate::Result<Option<StatementStatus>> {
    use crate::entities::statements::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let status: Option<String> = Entity::find()
        .select_only()
        .column(Column::Status)
        .filter(Column::TenantId.eq(tenant.uuid()))
        .filter(Column::AffiliateId.eq(affiliate.uuid()))
        .filter(Column::Period.eq(period.to_string()))
        .filter(Column::Currency.eq(currency.code()))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(status.as_deref().map(StatementStatus::of_stored))
}

/// An affiliate's statement for one period and currency.
#[derive(Debug, Clone)]
pub struct StatementRecord {
    pub id: StatementId,
    pub affiliate_id: AffiliateId,
    pub period: Period,
    pub currency: Currency,
    /// The revshare deficit brought forward (≤ 0).
    pub opening_carryover: Money,
    /// Per kind, in statement order; sums to `balance`.
    pub lines: Vec<(EntryKind, Money)>,
    /// What the period's entries come to: the amount payable.
    pub balance: Money,
    /// The revshare deficit carried into the next period (≤ 0).
    pub closing_carryover: Money,
    pub status: StatementStatus,
    pub closed_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

fn corrupted(what: &'static str) -> crate::Error {
    clickledger_domain::Error::invalid(what, "stored value is corrupted").into()
}

/// A stored amount as booked money, written with exactly its currency's decimals (`50.00`,
/// not the column's `50.000000`). Booked amounts are rounded to the minor unit before they
/// are stored, so this drops only zeros; a stored amount with more is corrupted, never
/// silently rounded.
pub(crate) fn exact(amount: Decimal, currency: Currency) -> crate::Result<Money> {
    let mut booked = amount;
    booked.rescale(currency.exponent());
    if booked != amount {
        return Err(corrupted("amount"));
    }
    Ok(Money::new(booked, currency))
}

fn currency(raw: &str) -> crate::Result<Currency> {
    Currency::parse(raw, "currency").map_err(crate::Error::from)
}

/// The credits with each affiliate's commission filled in from a booking.
pub(crate) fn with_commission(
    credits: Vec<crate::conversions::Credit>,
    commission: &std::collections::HashMap<AffiliateId, Money>,
) -> Vec<crate::conversions::Credit> {
    credits
        .into_iter()
        .map(|mut credit| {
            credit.commission = commission.get(&credit.affiliate_id).copied();
            credit
        })
        .collect()
}

/// The tenant's time zone, on whose calendar its commission months run.
pub(crate) async fn tenant_zone<C: sea_orm::ConnectionTrait>(
    conn: &C,
    tenant: clickledger_domain::ids::TenantId,
) -> crate::Result<chrono_tz::Tz> {
    use sea_orm::{EntityTrait, QuerySelect};
    let name = crate::entities::tenants::Entity::find_by_id(tenant.uuid())
        .select_only()
        .column(crate::entities::tenants::Column::TimeZone)
        .into_tuple::<String>()
        .one(conn)
        .await?
        .ok_or(crate::Error::NotFound)?;
    Ok(clickledger_domain::validate::time_zone(&name, "time_zone")?)
}
