//! Period close: per affiliate and currency, settle revshare at the month's final tier with
//! carryover and pay KPI bonuses (the domain's [`close_period`], booked as new entries), then
//! sum the month into a statement. Closing again books nothing new and yields the same
//! statements; a paid statement is never recomputed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use clickledger_domain::audit::AuditAction;
use clickledger_domain::commission::{
    EntryDraft, EntryKind, PeriodClose, PeriodMetrics, Plan, close_period, overrides,
};
use clickledger_domain::conversion::EventKind;
use clickledger_domain::ids::{AffiliateId, PlanId, StatementId, TenantId};
use clickledger_domain::money::{Currency, Money};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::booking::uplines_of;
use super::ledger::{EntryMeta, entry_model, to_draft};
use super::plans::load_history;
use super::{EntryStatus, Period, StatementRecord, StatementStatus, corrupted, currency, exact};
use crate::audit::{self, Actor, Change};
use crate::entities::{
    affiliates, conversion_credits, conversions, ledger_entries, opening_carryovers, statements, tenants,
};
use crate::repo::require_staff;
use crate::{Db, Error, Result, Scope, Viewer};

#[derive(Serialize, Deserialize)]
struct StoredLine {
    kind: String,
    amount: Decimal,
}

/// Statements as a viewer may see them: staff every affiliate's, an affiliate only its own.
pub struct Statements<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Statements<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Statements { db, scope }
    }

    /// The affiliate's statements for the period, one per currency it earned in.
    pub async fn get(&self, affiliate: AffiliateId, period: Period) -> Result<Vec<StatementRecord>> {
        if let Viewer::Affiliate(me) = self.scope.viewer()
            && me != affiliate
        {
            return Err(Error::NotFound);
        }
        statements::Entity::find()
            .filter(statements::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(statements::Column::AffiliateId.eq(affiliate.uuid()))
            .filter(statements::Column::Period.eq(period.to_string()))
            .all(self.db.reader())
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// Every statement of the period this viewer may see (an affiliate: its own), by
    /// affiliate and currency.
    pub async fn for_period(&self, period: Period) -> Result<Vec<StatementRecord>> {
        let mut query = statements::Entity::find()
            .filter(statements::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(statements::Column::Period.eq(period.to_string()));
        if let Viewer::Affiliate(me) = self.scope.viewer() {
            query = query.filter(statements::Column::AffiliateId.eq(me.uuid()));
        }
        let mut records =
            query.all(self.db.reader()).await?.into_iter().map(to_record).collect::<Result<Vec<_>>>()?;
        records.sort_by_key(|s| (s.affiliate_id, s.currency));
        Ok(records)
    }

    /// Marks a statement paid, with every entry it sums; refused (CONFLICT on `status`) while
    /// one of them is held, and (CONFLICT on `balance`, naming the difference) when its entries
    /// changed status since the close. Paying twice changes nothing.
    pub async fn mark_paid(
        &self,
        id: StatementId,
        now: DateTime<Utc>,
        actor: Actor,
    ) -> Result<StatementRecord> {
        require_staff(&self.scope)?;
        let tenant = self.scope.tenant().uuid();
        let txn = self.db.writer().begin().await?;
        let row = statements::Entity::find()
            .filter(statements::Column::TenantId.eq(tenant))
            .filter(statements::Column::Id.eq(id.uuid()))
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        if row.status != StatementStatus::Paid.as_str() {
            let held = ledger_entries::Entity::find()
                .filter(ledger_entries::Column::TenantId.eq(tenant))
                .filter(ledger_entries::Column::AffiliateId.eq(row.affiliate_id))
                .filter(ledger_entries::Column::Period.eq(row.period.as_str()))
                .filter(ledger_entries::Column::Currency.eq(row.currency.as_str()))
                .filter(ledger_entries::Column::Status.eq(EntryStatus::Held.as_str()))
                .one(&txn)
                .await?;
            // A held entry blocks the payout until it is released or rejected (and the
            // period closed again).
            if held.is_some() {
                return Err(Error::Conflict { field: "status" });
            }
            refuse_stale(&txn, &row).await?;
            ledger_entries::Entity::update_many()
                .col_expr(ledger_entries::Column::Status, Expr::value(EntryStatus::Paid.as_str()))
                .filter(ledger_entries::Column::TenantId.eq(tenant))
                .filter(ledger_entries::Column::AffiliateId.eq(row.affiliate_id))
                .filter(ledger_entries::Column::Period.eq(row.period.as_str()))
                .filter(ledger_entries::Column::Currency.eq(row.currency.as_str()))
                .filter(
                    ledger_entries::Column::Status
                        .is_in([EntryStatus::Pending.as_str(), EntryStatus::Approved.as_str()]),
                )
                .exec(&txn)
                .await?;
            statements::ActiveModel {
                id: Set(row.id),
                status: Set(StatementStatus::Paid.as_str().to_owned()),
                paid_at: Set(Some(now)),
                ..Default::default()
            }
            .update(&txn)
            .await?;
            let mut details = audit::status_change(&row.status, StatementStatus::Paid.as_str());
            details["affiliateId"] = serde_json::json!(AffiliateId::from_uuid(row.affiliate_id).to_string());
            details["period"] = serde_json::json!(row.period);
            details["currency"] = serde_json::json!(row.currency);
            let change = Change::new(AuditAction::StatementPaid, id, details);
            audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        }
        let row = statements::Entity::find_by_id(id.uuid()).one(&txn).await?.ok_or(Error::NotFound)?;
        txn.commit().await?;
        to_record(row)
    }

    /// Closes `period` (which must have ended) for every affiliate with entries in it or a
    /// deficit carried into it (from the month before, or imported). Sub-affiliates close
    /// before their parents, so the overrides of their closing entries are in the parents'
    /// months before those close.
    pub async fn close(&self, period: Period, now: DateTime<Utc>) -> Result<Vec<StatementRecord>> {
        require_staff(&self.scope)?;
        let zone = super::tenant_zone(self.db.reader(), self.scope.tenant()).await?;
        if period.end(zone) > now {
            return Err(clickledger_domain::Error::invalid("period", "has not ended yet").into());
        }
        let tenant = self.scope.tenant();
        let txn = self.db.writer().begin().await?;
        // Touching the tenant row takes the lock every postback of the tenant takes first
        // (PostgreSQL), so no entry can slip into the month while it closes.
        tenants::Entity::update_many()
            .col_expr(tenants::Column::EventSeq, Expr::col(tenants::Column::EventSeq).add(0))
            .filter(tenants::Column::Id.eq(tenant.uuid()))
            .exec(&txn)
            .await?;

        let depth = depths(&txn, tenant).await?;
        let depth_of = |affiliate: uuid::Uuid| depth.get(&affiliate).copied().unwrap_or(0);
        let mut pending: BTreeSet<(Reverse<usize>, uuid::Uuid, String)> = BTreeSet::new();
        let active = ledger_entries::Entity::find()
            .select_only()
            .column(ledger_entries::Column::AffiliateId)
            .column(ledger_entries::Column::Currency)
            .filter(ledger_entries::Column::TenantId.eq(tenant.uuid()))
            .filter(ledger_entries::Column::Period.eq(period.to_string()))
            .distinct()
            .into_tuple::<(uuid::Uuid, String)>()
            .all(&txn)
            .await?;
        let carried = statements::Entity::find()
            .filter(statements::Column::TenantId.eq(tenant.uuid()))
            .filter(statements::Column::Period.eq(period.previous().to_string()))
            .all(&txn)
            .await?;
        let mut opening: HashMap<(uuid::Uuid, String), Decimal> = HashMap::new();
        for row in carried {
            if !row.closing_carryover.get().is_zero() {
                pending.insert((Reverse(depth_of(row.affiliate_id)), row.affiliate_id, row.currency.clone()));
                opening.insert((row.affiliate_id, row.currency), row.closing_carryover.get());
            }
        }
        // A carryover imported from another tracker opens its first month's netting here, on
        // top of whatever the month before carries (nothing, unless it was closed here too).
        let imported = opening_carryovers::Entity::find()
            .filter(opening_carryovers::Column::TenantId.eq(tenant.uuid()))
            .filter(opening_carryovers::Column::Period.eq(period.to_string()))
            .all(&txn)
            .await?;
        for row in imported {
            pending.insert((Reverse(depth_of(row.affiliate_id)), row.affiliate_id, row.currency.clone()));
            *opening.entry((row.affiliate_id, row.currency)).or_default() += row.amount.get();
        }
        for (affiliate, currency) in active {
            pending.insert((Reverse(depth_of(affiliate)), affiliate, currency));
        }

        let mut out = Vec::new();
        while let Some(next) = pending.pop_first() {
            let (_, affiliate, code) = next;
            let cur = currency(&code)?;
            let open = exact(opening.get(&(affiliate, code.clone())).copied().unwrap_or_default(), cur)?;
            let (record, uplines) =
                close_one(&txn, tenant, AffiliateId::from_uuid(affiliate), cur, (period, zone), open, now)
                    .await?;
            for upline in uplines {
                pending.insert((Reverse(depth_of(upline.uuid())), upline.uuid(), code.clone()));
            }
            out.push(record);
        }
        // Bonus-only players of the month are judged as it closes (see `conversions::bonus_only`).
        let settings = crate::fraud::stored_settings(&txn, tenant).await?;
        crate::conversions::flag_bonus_only(&txn, tenant, &settings, (period.start(zone), period.end(zone)))
            .await?;
        txn.commit().await?;
        out.sort_by_key(|s| (s.affiliate_id, s.currency));
        Ok(out)
    }
}

/// Closes one affiliate's month in one currency; returns its statement and the uplines that
/// received overrides of its closing entries (they must be closed after it).
async fn close_one<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    affiliate: AffiliateId,
    cur: Currency,
    (period, zone): (Period, Tz),
    opening: Money,
    now: DateTime<Utc>,
) -> Result<(StatementRecord, Vec<AffiliateId>)> {
    let existing = statements::Entity::find()
        .filter(statements::Column::TenantId.eq(tenant.uuid()))
        .filter(statements::Column::AffiliateId.eq(affiliate.uuid()))
        .filter(statements::Column::Period.eq(period.to_string()))
        .filter(statements::Column::Currency.eq(cur.code()))
        .one(conn)
        .await?;
    if let Some(paid) = existing.as_ref().filter(|s| s.status == StatementStatus::Paid.as_str()) {
        return Ok((to_record(paid.clone())?, Vec::new()));
    }
    let rows = month_entries(conn, tenant, affiliate, cur, period).await?;
    let mut plan_ids: Vec<uuid::Uuid> = rows.iter().filter_map(|r| r.plan_id).collect();
    plan_ids.sort();
    plan_ids.dedup();
    let at_end = period.end(zone) - Duration::milliseconds(1);
    let mut plans: Vec<(PlanId, i32, Plan)> = Vec::new();
    for id in plan_ids {
        let history = load_history(conn, tenant.uuid(), id).await?;
        if let Some(version) = history.in_force_at(at_end).or(history.versions().first())
            && version.plan.currency == cur
        {
            plans.push((
                PlanId::from_uuid(id),
                i32::try_from(version.version).unwrap_or(i32::MAX),
                version.plan.clone(),
            ));
        }
    }
    // The carried deficit is revshare's: it goes to the (first) plan with revshare.
    plans.sort_by_key(|(id, _, plan)| (plan.revshare.is_none(), *id));

    let mut closing_carryover = opening;
    let mut opening_left = Some(opening);
    let mut to_book: Vec<(EntryDraft, EntryMeta)> = Vec::new();
    let mut uplines_paid = Vec::new();
    for (plan_id, version, plan) in &plans {
        let mine: Vec<EntryDraft> =
            rows.iter().filter(|r| r.plan_id == Some(plan_id.uuid())).map(to_draft).collect::<Result<_>>()?;
        let open = match (&plan.revshare, opening_left) {
            (Some(_), Some(open)) => {
                opening_left = None;
                open
            }
            _ => Money::zero(cur),
        };
        let metrics = metrics(conn, tenant, affiliate, (period, zone), cur, &mine).await?;
        let statement =
            close_period(&PeriodClose { plan, affiliate, opening_carryover: open, metrics, entries: &mine })?;
        if plan.revshare.is_some() {
            closing_carryover = statement.closing_carryover;
        }
        let meta = EntryMeta { plan: Some((*plan_id, *version)), reverses_entry: None };
        let chain = uplines_of(conn, tenant, affiliate, plan.overrides.len()).await?;
        for draft in statement.closing_entries {
            for cut in overrides(&draft, &chain, &plan.overrides)? {
                uplines_paid.push(cut.beneficiary);
                to_book.push((cut, meta));
            }
            to_book.push((draft, meta));
        }
    }
    if !to_book.is_empty() {
        let occurred_at = period.end(zone) - Duration::milliseconds(1);
        let models: Vec<_> = to_book
            .iter()
            .map(|(draft, meta)| {
                entry_model(tenant, draft, meta, None, EntryStatus::Approved, period, occurred_at, now)
            })
            .collect();
        ledger_entries::Entity::insert_many(models).exec_without_returning(conn).await?;
    }

    // The statement sums everything in the month, adjustments and closing entries included.
    let rows = month_entries(conn, tenant, affiliate, cur, period).await?;
    let mut by_kind: BTreeMap<EntryKind, Money> = BTreeMap::new();
    for row in &rows {
        let draft = to_draft(row)?;
        let sum = by_kind.get(&draft.kind).copied().unwrap_or(Money::zero(cur)).checked_add(draft.amount)?;
        by_kind.insert(draft.kind, sum);
    }
    let lines: Vec<(EntryKind, Money)> =
        EntryKind::ALL.into_iter().filter_map(|kind| by_kind.get(&kind).map(|m| (kind, *m))).collect();
    let balance = lines.iter().try_fold(Money::zero(cur), |acc, (_, m)| acc.checked_add(*m))?;
    let stored_lines: Vec<StoredLine> = lines
        .iter()
        .map(|(kind, m)| StoredLine { kind: kind.as_str().to_owned(), amount: m.amount })
        .collect();
    let lines_json = serde_json::to_string(&stored_lines).map_err(|_| corrupted("lines"))?;

    let id = match &existing {
        Some(row) => {
            statements::ActiveModel {
                id: Set(row.id),
                opening_carryover: Set(opening.amount.into()),
                closing_carryover: Set(closing_carryover.amount.into()),
                balance: Set(balance.amount.into()),
                lines: Set(lines_json),
                ..Default::default()
            }
            .update(conn)
            .await?;
            row.id
        }
        None => {
            let id = StatementId::new().uuid();
            statements::ActiveModel {
                id: Set(id),
                tenant_id: Set(tenant.uuid()),
                affiliate_id: Set(affiliate.uuid()),
                period: Set(period.to_string()),
                currency: Set(cur.code().to_owned()),
                opening_carryover: Set(opening.amount.into()),
                closing_carryover: Set(closing_carryover.amount.into()),
                balance: Set(balance.amount.into()),
                lines: Set(lines_json),
                status: Set(StatementStatus::Closed.as_str().to_owned()),
                closed_at: Set(now),
                paid_at: Set(None),
            }
            .insert(conn)
            .await?;
            id
        }
    };
    let row = statements::Entity::find_by_id(id).one(conn).await?.ok_or(Error::NotFound)?;
    Ok((to_record(row)?, uplines_paid))
}

/// Refuses to pay a statement whose entries no longer come to its balance (one was rejected,
/// say, after the close): the payout must match the ledger it marks paid.
async fn refuse_stale<C: ConnectionTrait>(conn: &C, row: &statements::Model) -> Result<()> {
    let cur = currency(&row.currency)?;
    let period = Period::parse(&row.period, "period")?;
    let tenant = TenantId::from_uuid(row.tenant_id);
    let affiliate = AffiliateId::from_uuid(row.affiliate_id);
    let mut current = Money::zero(cur);
    for entry in month_entries(conn, tenant, affiliate, cur, period).await? {
        current = current.checked_add(exact(entry.amount.get(), cur)?)?;
    }
    let balance = exact(row.balance.get(), cur)?;
    if current != balance {
        let difference = current.checked_sub(balance)?;
        return Err(Error::StaleStatement(Box::new(crate::error::StaleBalance {
            balance,
            current,
            difference,
        })));
    }
    Ok(())
}

/// Every entry of the affiliate's month in one currency that counts (rejected ones do not).
async fn month_entries<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    affiliate: AffiliateId,
    cur: Currency,
    period: Period,
) -> Result<Vec<ledger_entries::Model>> {
    Ok(ledger_entries::Entity::find()
        .filter(ledger_entries::Column::TenantId.eq(tenant.uuid()))
        .filter(ledger_entries::Column::AffiliateId.eq(affiliate.uuid()))
        .filter(ledger_entries::Column::Period.eq(period.to_string()))
        .filter(ledger_entries::Column::Currency.eq(cur.code()))
        .filter(ledger_entries::Column::Status.ne(EntryStatus::Rejected.as_str()))
        .all(conn)
        .await?)
}

/// The affiliate's credited figures for the month (its share of each conversion, over all
/// campaigns). Net revenue and qualified players come from its own entries, so that the
/// settlement agrees with what was booked live.
async fn metrics<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    affiliate: AffiliateId,
    (period, zone): (Period, Tz),
    cur: Currency,
    entries: &[EntryDraft],
) -> Result<PeriodMetrics> {
    let mut metrics = PeriodMetrics::default();
    for entry in entries.iter().filter(|e| e.tier == 0) {
        match (entry.kind, entry.effective_kind()) {
            (_, EntryKind::Revshare) => {
                metrics.net_revenue += entry.basis.map(|b| b.amount).unwrap_or_default();
            }
            (EntryKind::Cpa, _) => metrics.qualified_players += Decimal::ONE,
            (EntryKind::Reversal, EntryKind::Cpa) => metrics.qualified_players -= Decimal::ONE,
            _ => {}
        }
    }
    let shares: HashMap<uuid::Uuid, Decimal> = conversion_credits::Entity::find()
        .filter(conversion_credits::Column::TenantId.eq(tenant.uuid()))
        .filter(conversion_credits::Column::AffiliateId.eq(affiliate.uuid()))
        .filter(
            conversion_credits::Column::ConversionId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(conversions::Column::Id)
                    .from(conversions::Entity)
                    .and_where(conversions::Column::TenantId.eq(tenant.uuid()))
                    .and_where(conversions::Column::OccurredAt.gte(period.start(zone)))
                    .and_where(conversions::Column::OccurredAt.lt(period.end(zone)))
                    .to_owned(),
            ),
        )
        .all(conn)
        .await?
        .into_iter()
        .map(|c| (c.conversion_id, c.share.get()))
        .collect();
    if shares.is_empty() {
        return Ok(metrics);
    }
    let rows = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::Id.is_in(shares.keys().copied()))
        .filter(conversions::Column::Status.ne("rejected"))
        .all(conn)
        .await?;
    for row in rows {
        let share = shares.get(&row.id).copied().unwrap_or_default();
        let same_currency = row.currency.as_deref() == Some(cur.code());
        match row.event.parse::<EventKind>()? {
            EventKind::Registration => metrics.registrations += share,
            EventKind::Ftd => {
                metrics.ftds += share;
                if same_currency {
                    metrics.deposits += share * row.amount.unwrap_or_default().get();
                }
            }
            EventKind::Deposit | EventKind::Purchase if same_currency => {
                metrics.deposits += share * row.amount.unwrap_or_default().get();
            }
            EventKind::Trade => metrics.lots += share * row.lots.unwrap_or_default().get(),
            _ => {}
        }
    }
    Ok(metrics)
}

/// Each affiliate's distance from the top of its tree (0 for a top-level affiliate).
async fn depths<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<HashMap<uuid::Uuid, usize>> {
    let parents: HashMap<uuid::Uuid, Option<uuid::Uuid>> = affiliates::Entity::find()
        .select_only()
        .column(affiliates::Column::Id)
        .column(affiliates::Column::ParentId)
        .filter(affiliates::Column::TenantId.eq(tenant.uuid()))
        .into_tuple::<(uuid::Uuid, Option<uuid::Uuid>)>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let mut depth = HashMap::with_capacity(parents.len());
    for id in parents.keys() {
        let mut d = 0;
        let mut current = *id;
        // Bounded walk: a cycle cannot loop forever.
        while let Some(Some(parent)) = parents.get(&current) {
            d += 1;
            current = *parent;
            if d > parents.len() {
                break;
            }
        }
        depth.insert(*id, d);
    }
    Ok(depth)
}

fn to_record(row: statements::Model) -> Result<StatementRecord> {
    let cur = currency(&row.currency)?;
    let stored: Vec<StoredLine> = serde_json::from_str(&row.lines).map_err(|_| corrupted("lines"))?;
    let lines = stored
        .into_iter()
        .map(|line| Ok((line.kind.parse::<EntryKind>()?, exact(line.amount, cur)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(StatementRecord {
        id: StatementId::from_uuid(row.id),
        affiliate_id: AffiliateId::from_uuid(row.affiliate_id),
        period: Period::parse(&row.period, "period")?,
        currency: cur,
        opening_carryover: exact(row.opening_carryover.get(), cur)?,
        lines,
        balance: exact(row.balance.get(), cur)?,
        closing_carryover: exact(row.closing_carryover.get(), cur)?,
        status: StatementStatus::of_stored(&row.status),
        closed_at: row.closed_at,
        paid_at: row.paid_at,
    })
}
