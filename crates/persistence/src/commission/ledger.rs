//! The ledger as viewers read it, manual adjustments, and the operator's exchange rates.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use clickledger_domain::audit::AuditAction;
use clickledger_domain::commission::{EntryDraft, EntryKind, FxSource};
use clickledger_domain::ids::{AffiliateId, ConversionId, LedgerEntryId, PlanId, TenantId, UserId};
use clickledger_domain::money::{Currency, FxRate, Money};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Select,
    TransactionTrait,
};

use super::{EntryStatus, FxRateRecord, LedgerEntry, Period, corrupted, currency, exact};
use crate::audit::{self, Actor, Change};
use crate::entities::{ExactDecimal, affiliates, fx_rates, ledger_entries};
use crate::page::{self, Page, PageRequest};
use crate::repo::require_staff;
use crate::{Db, Error, Result, Scope, Viewer};

/// An inverted rate keeps this many decimal places (what the column stores).
const INVERSE_RATE_PLACES: u32 = 12;

/// Most entries one `setCommissionStatus` call may move.
const MAX_STATUS_BATCH: usize = 100;

/// What a booked draft is booked under.
#[derive(Debug, Clone, Copy)]
pub(super) struct EntryMeta {
    /// (plan, version); `None` for manual adjustments.
    pub plan: Option<(PlanId, i32)>,
    pub reverses_entry: Option<uuid::Uuid>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn entry_model(
    tenant: TenantId,
    draft: &EntryDraft,
    meta: &EntryMeta,
    conversion: Option<ConversionId>,
    status: EntryStatus,
    period: Period,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ledger_entries::ActiveModel {
    ledger_entries::ActiveModel {
        id: Set(LedgerEntryId::new().uuid()),
        tenant_id: Set(tenant.uuid()),
        affiliate_id: Set(draft.beneficiary.uuid()),
        conversion_id: Set(conversion.map(ConversionId::uuid)),
        plan_id: Set(meta.plan.map(|(plan, _)| plan.uuid())),
        plan_version: Set(meta.plan.map(|(_, version)| version)),
        kind: Set(draft.kind.as_str().to_owned()),
        tier: Set(i32::from(draft.tier)),
        reverses: Set(draft.reverses.map(|kind| kind.as_str().to_owned())),
        reverses_entry_id: Set(meta.reverses_entry),
        amount: Set(draft.amount.amount.into()),
        currency: Set(draft.amount.currency.code().to_owned()),
        basis_amount: Set(draft.basis.map(|b| b.amount.into())),
        source_amount: Set(draft.fx.map(|fx| fx.amount.amount.into())),
        source_currency: Set(draft.fx.map(|fx| fx.amount.currency.code().to_owned())),
        fx_rate: Set(draft.fx.map(|fx| fx.rate.rate().into())),
        status: Set(status.as_str().to_owned()),
        period: Set(period.to_string()),
        reason: Set(None),
        created_by: Set(None),
        external_id: Set(None),
        occurred_at: Set(occurred_at),
        created_at: Set(now),
    }
}

pub(super) fn to_draft(row: &ledger_entries::Model) -> Result<EntryDraft> {
    let currency = currency(&row.currency)?;
    let fx = match (row.source_amount, row.source_currency.as_deref(), row.fx_rate) {
        (Some(amount), Some(source), Some(rate)) => {
            let source = super::currency(source)?;
            Some(FxSource {
                amount: Money::new(amount.normalized(), source),
                rate: FxRate::new(source, currency, rate.normalized())?,
            })
        }
        _ => None,
    };
    Ok(EntryDraft {
        beneficiary: AffiliateId::from_uuid(row.affiliate_id),
        tier: u8::try_from(row.tier).map_err(|_| corrupted("tier"))?,
        kind: row.kind.parse()?,
        amount: exact(row.amount.get(), currency)?,
        basis: row.basis_amount.map(|b| exact(b.get(), currency)).transpose()?,
        fx,
        reverses: row.reverses.as_deref().map(str::parse).transpose()?,
    })
}

fn to_entry(row: ledger_entries::Model) -> Result<LedgerEntry> {
    let draft = to_draft(&row)?;
    Ok(LedgerEntry {
        id: LedgerEntryId::from_uuid(row.id),
        affiliate_id: draft.beneficiary,
        conversion_id: row.conversion_id.map(ConversionId::from_uuid),
        plan_id: row.plan_id.map(PlanId::from_uuid),
        plan_version: row.plan_version.and_then(|v| u32::try_from(v).ok()),
        kind: draft.kind,
        tier: draft.tier,
        reverses: draft.reverses,
        reverses_entry_id: row.reverses_entry_id.map(LedgerEntryId::from_uuid),
        amount: draft.amount,
        basis: draft.basis,
        source_amount: row.source_amount.map(ExactDecimal::normalized),
        source_currency: row.source_currency,
        fx_rate: row.fx_rate.map(ExactDecimal::normalized),
        status: row.status.parse()?,
        period: Period::parse(&row.period, "period")?,
        reason: row.reason,
        created_by: row.created_by.map(UserId::from_uuid),
        occurred_at: row.occurred_at,
        created_at: row.created_at,
    })
}

/// The operator's rate from `from` to `to` for `day`: that day's, else the latest before it.
/// When only the opposite direction was set, its inverse is used (and recorded on the entry).
pub(super) async fn fx_rate_on<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    from: Currency,
    to: Currency,
    day: NaiveDate,
) -> Result<Option<FxRate>> {
    let latest = |from: Currency, to: Currency| {
        fx_rates::Entity::find()
            .filter(fx_rates::Column::TenantId.eq(tenant.uuid()))
            .filter(fx_rates::Column::FromCurrency.eq(from.code()))
            .filter(fx_rates::Column::ToCurrency.eq(to.code()))
            .filter(fx_rates::Column::Day.lte(day.to_string()))
            .order_by_desc(fx_rates::Column::Day)
            .one(conn)
    };
    if let Some(row) = latest(from, to).await? {
        return Ok(Some(FxRate::new(from, to, row.rate.normalized())?));
    }
    let Some(row) = latest(to, from).await? else { return Ok(None) };
    let inverse = Decimal::ONE
        .checked_div(row.rate.get())
        .map(|rate| rate.round_dp(INVERSE_RATE_PLACES))
        .ok_or_else(|| clickledger_domain::Error::invalid("fxRate", "cannot invert the stored rate"))?;
    Ok(Some(FxRate::new(from, to, inverse)?))
}

#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub affiliate: Option<AffiliateId>,
    pub period: Option<Period>,
    pub status: Option<EntryStatus>,
    pub kind: Option<EntryKind>,
    pub conversion: Option<ConversionId>,
}

/// A manual correction: a person's decision, with its reason and author kept on the entry.
pub struct Adjustment {
    pub affiliate: AffiliateId,
    pub amount: Money,
    pub reason: String,
    pub conversion: Option<ConversionId>,
    pub author: UserId,
}

/// Ledger entries as a viewer may see them: staff every entry of the tenant, an affiliate
/// only its own (its commission and the overrides it earns).
pub struct Commissions<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Commissions<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Commissions { db, scope }
    }

    fn visible(&self) -> Select<ledger_entries::Entity> {
        let query = ledger_entries::Entity::find()
            .filter(ledger_entries::Column::TenantId.eq(self.scope.tenant().uuid()));
        match self.scope.viewer() {
            Viewer::Staff => query,
            Viewer::Affiliate(me) => query.filter(ledger_entries::Column::AffiliateId.eq(me.uuid())),
        }
    }

    /// Oldest first, keyset-paginated.
    pub async fn list(&self, filter: &EntryFilter, request: PageRequest) -> Result<Page<LedgerEntry>> {
        let mut query = self.visible();
        if let Some(affiliate) = filter.affiliate {
            query = query.filter(ledger_entries::Column::AffiliateId.eq(affiliate.uuid()));
        }
        if let Some(period) = filter.period {
            query = query.filter(ledger_entries::Column::Period.eq(period.to_string()));
        }
        if let Some(status) = filter.status {
            query = query.filter(ledger_entries::Column::Status.eq(status.as_str()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(ledger_entries::Column::Kind.eq(kind.as_str()));
        }
        if let Some(conversion) = filter.conversion {
            query = query.filter(ledger_entries::Column::ConversionId.eq(conversion.uuid()));
        }
        let page = page::fetch(query, ledger_entries::Column::Id, request, self.db.reader()).await?;
        let items = page.items.into_iter().map(to_entry).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, has_next: page.has_next })
    }

    /// Moves entries through the workflow (hold for review, release, reject). Amounts never
    /// change; paid entries are final, and entries are paid only with their statement.
    /// Each entry whose status this changes gets its own audit entry.
    pub async fn set_status(
        &self,
        ids: &[LedgerEntryId],
        status: EntryStatus,
        actor: Actor,
    ) -> Result<Vec<LedgerEntry>> {
        require_staff(&self.scope)?;
        if status == EntryStatus::Paid {
            return Err(clickledger_domain::Error::invalid(
                "status",
                "entries are paid with their statement (markStatementPaid)",
            )
            .into());
        }
        let mut ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.uuid()).collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() || ids.len() > MAX_STATUS_BATCH {
            return Err(clickledger_domain::Error::invalid(
                "ids",
                format!("between 1 and {MAX_STATUS_BATCH} entries at a time"),
            )
            .into());
        }
        let tenant = self.scope.tenant().uuid();
        let txn = self.db.writer().begin().await?;
        let rows = ledger_entries::Entity::find()
            .filter(ledger_entries::Column::TenantId.eq(tenant))
            .filter(ledger_entries::Column::Id.is_in(ids.iter().copied()))
            .all(&txn)
            .await?;
        if rows.len() != ids.len() {
            return Err(Error::NotFound);
        }
        if rows.iter().any(|row| row.status == EntryStatus::Paid.as_str()) {
            return Err(Error::Conflict { field: "status" });
        }
        let action = match status {
            EntryStatus::Approved => AuditAction::CommissionApproved,
            EntryStatus::Rejected => AuditAction::CommissionRejected,
            EntryStatus::Held => AuditAction::CommissionHeld,
            // `Paid` was refused above.
            EntryStatus::Pending | EntryStatus::Paid => AuditAction::CommissionPending,
        };
        let changes = rows
            .iter()
            .filter(|row| row.status != status.as_str())
            .map(|row| {
                let mut details = audit::status_change(&row.status, status.as_str());
                details["affiliateId"] =
                    serde_json::json!(AffiliateId::from_uuid(row.affiliate_id).to_string());
                Change::new(action, LedgerEntryId::from_uuid(row.id), details)
            })
            .collect();
        audit::record(&txn, self.scope.tenant(), actor, changes).await?;
        ledger_entries::Entity::update_many()
            .col_expr(ledger_entries::Column::Status, Expr::value(status.as_str()))
            .filter(ledger_entries::Column::TenantId.eq(tenant))
            .filter(ledger_entries::Column::Id.is_in(ids.iter().copied()))
            .exec(&txn)
            .await?;
        let rows = ledger_entries::Entity::find()
            .filter(ledger_entries::Column::TenantId.eq(tenant))
            .filter(ledger_entries::Column::Id.is_in(ids))
            .order_by_asc(ledger_entries::Column::Id)
            .all(&txn)
            .await?;
        txn.commit().await?;
        rows.into_iter().map(to_entry).collect()
    }

    /// Appends an adjustment (positive or negative) to the affiliate's current month.
    pub async fn adjust(&self, adjustment: Adjustment) -> Result<LedgerEntry> {
        require_staff(&self.scope)?;
        let tenant = self.scope.tenant();
        let reason = adjustment.reason.trim().to_owned();
        if reason.is_empty() {
            return Err(clickledger_domain::Error::invalid("reason", "is required").into());
        }
        if adjustment.amount.is_zero() || !adjustment.amount.is_rounded() {
            return Err(clickledger_domain::Error::invalid(
                "amount",
                format!(
                    "must be non-zero with at most {} decimal places",
                    adjustment.amount.currency.exponent()
                ),
            )
            .into());
        }
        let exists = affiliates::Entity::find()
            .filter(affiliates::Column::TenantId.eq(tenant.uuid()))
            .filter(affiliates::Column::Id.eq(adjustment.affiliate.uuid()))
            .one(self.db.reader())
            .await?
            .is_some();
        if !exists {
            return Err(crate::Error::NotFound);
        }
        // An adjustment may cite a conversion only if it is this tenant's and credits this
        // affiliate; anything else is not found (and must never be stored: it would leak).
        if let Some(conversion) = adjustment.conversion {
            let credited = crate::entities::conversion_credits::Entity::find()
                .filter(crate::entities::conversion_credits::Column::TenantId.eq(tenant.uuid()))
                .filter(crate::entities::conversion_credits::Column::ConversionId.eq(conversion.uuid()))
                .filter(
                    crate::entities::conversion_credits::Column::AffiliateId.eq(adjustment.affiliate.uuid()),
                )
                .one(self.db.reader())
                .await?
                .is_some();
            if !credited {
                return Err(crate::Error::NotFound);
            }
        }
        let now = Utc::now();
        let draft = EntryDraft {
            beneficiary: adjustment.affiliate,
            tier: 0,
            kind: EntryKind::Adjustment,
            amount: adjustment.amount,
            basis: None,
            fx: None,
            reverses: None,
        };
        let meta = EntryMeta { plan: None, reverses_entry: None };
        let mut model = entry_model(
            tenant,
            &draft,
            &meta,
            adjustment.conversion,
            EntryStatus::Approved,
            Period::of(now, super::tenant_zone(self.db.reader(), tenant).await?),
            now,
            now,
        );
        let details = serde_json::json!({
            "affiliateId": adjustment.affiliate.to_string(),
            "amount": adjustment.amount.amount.to_string(),
            "currency": adjustment.amount.currency.code(),
            "reason": reason,
            "conversionId": adjustment.conversion.map(|c| c.to_string()),
        });
        model.reason = Set(Some(reason));
        model.created_by = Set(Some(adjustment.author.uuid()));
        let id = LedgerEntryId::new().uuid();
        model.id = Set(id);
        let txn = self.db.writer().begin().await?;
        ledger_entries::Entity::insert(model).exec_without_returning(&txn).await?;
        let change = Change::new(AuditAction::CommissionAdjusted, LedgerEntryId::from_uuid(id), details);
        audit::record(&txn, tenant, Actor::User(adjustment.author), vec![change]).await?;
        txn.commit().await?;
        tracing::info!(
            entry = %LedgerEntryId::from_uuid(id),
            affiliate = %adjustment.affiliate,
            amount = %adjustment.amount,
            author = %adjustment.author,
            "manual commission adjustment"
        );
        let row =
            ledger_entries::Entity::find_by_id(id).one(self.db.writer()).await?.ok_or(Error::NotFound)?;
        to_entry(row)
    }
}

/// Each credited affiliate's own (tier-0) commission on each of these conversions.
pub(crate) async fn own_commission<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversions: &[uuid::Uuid],
) -> Result<HashMap<(uuid::Uuid, AffiliateId), Money>> {
    let mut sums: HashMap<(uuid::Uuid, AffiliateId), Money> = HashMap::new();
    if conversions.is_empty() {
        return Ok(sums);
    }
    let rows = ledger_entries::Entity::find()
        .filter(ledger_entries::Column::TenantId.eq(tenant.uuid()))
        .filter(ledger_entries::Column::ConversionId.is_in(conversions.iter().copied()))
        .filter(ledger_entries::Column::Tier.eq(0))
        .all(conn)
        .await?;
    for row in rows {
        let Some(conversion) = row.conversion_id else { continue };
        let draft = to_draft(&row)?;
        let key = (conversion, draft.beneficiary);
        let sum = match sums.get(&key) {
            Some(sum) if sum.currency == draft.amount.currency => sum.checked_add(draft.amount)?,
            Some(sum) => *sum,
            None => draft.amount,
        };
        sums.insert(key, sum);
    }
    Ok(sums)
}

/// Exchange rates set by the operator, one per currency pair and day. Never fetched: the
/// operator's rate is the one its contracts refer to.
pub struct FxRates<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> FxRates<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        FxRates { db, scope }
    }

    /// Sets (or replaces) the rate for a day. Entries already booked keep the rate they were
    /// booked with; it is recorded on each.
    pub async fn set(&self, day: NaiveDate, rate: FxRate, author: UserId) -> Result<FxRateRecord> {
        require_staff(&self.scope)?;
        if rate.from() == rate.to() {
            return Err(clickledger_domain::Error::invalid("to", "must differ from `from`").into());
        }
        let now = Utc::now();
        use fx_rates::Column as F;
        fx_rates::Entity::insert(fx_rates::ActiveModel {
            tenant_id: Set(self.scope.tenant().uuid()),
            from_currency: Set(rate.from().code().to_owned()),
            to_currency: Set(rate.to().code().to_owned()),
            day: Set(day.to_string()),
            rate: Set(rate.rate().into()),
            set_by: Set(Some(author.uuid())),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([F::TenantId, F::FromCurrency, F::ToCurrency, F::Day])
                .update_columns([F::Rate, F::SetBy, F::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(self.db.writer())
        .await?;
        Ok(FxRateRecord { day, from: rate.from(), to: rate.to(), rate: rate.rate(), updated_at: now })
    }

    /// Every rate set, newest day first.
    pub async fn list(&self) -> Result<Vec<FxRateRecord>> {
        require_staff(&self.scope)?;
        fx_rates::Entity::find()
            .filter(fx_rates::Column::TenantId.eq(self.scope.tenant().uuid()))
            .order_by_desc(fx_rates::Column::Day)
            .order_by_asc(fx_rates::Column::FromCurrency)
            .order_by_asc(fx_rates::Column::ToCurrency)
            .all(self.db.reader())
            .await?
            .into_iter()
            .map(|row| {
                Ok(FxRateRecord {
                    day: row.day.parse().map_err(|_| corrupted("day"))?,
                    from: currency(&row.from_currency)?,
                    to: currency(&row.to_currency)?,
                    rate: row.rate.normalized(),
                    updated_at: row.updated_at,
                })
            })
            .collect()
    }
}
