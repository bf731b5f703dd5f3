//! What rejecting a conversion does to money already counted, beyond voiding its unpaid
//! entries ([`super::on_status_change`]):
//!
//! - an entry voided this way takes its unpaid reversals (a chargeback's) with it, or the
//!   affiliate would lose the amount twice (once by the void, once by the reversal);
//! - an entry already paid cannot be voided: it is reversed into the open period, as a
//!   chargeback is, unless a reversal already takes it back.

use chrono::{DateTime, Utc};
use clickledger_domain::commission::reversal_of;
use clickledger_domain::conversion::ConversionStatus;
use clickledger_domain::ids::{AffiliateId, ConversionId, PlanId, TenantId};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::booking::open_period;
use super::ledger::{EntryMeta, entry_model, to_draft};
use super::{EntryStatus, tenant_zone};
use crate::Result;
use crate::entities::conversions;
use crate::entities::ledger_entries::{self, Column};

const UNPAID: [EntryStatus; 3] = [EntryStatus::Pending, EntryStatus::Approved, EntryStatus::Held];

/// Runs after the conversion's unpaid entries were rejected, in the same transaction.
pub(super) async fn settle_rejection<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: ConversionId,
    now: DateTime<Utc>,
) -> Result<()> {
    reject_reversals_of_rejected(conn, tenant, conversion).await?;
    reverse_paid(conn, tenant, conversion, now).await
}

/// The conversion's own entries (not reversals of another's) in `status`.
fn own_entries(
    tenant: TenantId,
    conversion: ConversionId,
    status: EntryStatus,
) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Column::Id)
        .from(ledger_entries::Entity)
        .and_where(Column::TenantId.eq(tenant.uuid()))
        .and_where(Column::ConversionId.eq(conversion.uuid()))
        .and_where(Column::Status.eq(status.as_str()))
        .to_owned()
}

async fn reject_reversals_of_rejected<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: ConversionId,
) -> Result<()> {
    ledger_entries::Entity::update_many()
        .col_expr(Column::Status, Expr::value(EntryStatus::Rejected.as_str()))
        .filter(Column::TenantId.eq(tenant.uuid()))
        .filter(Column::ReversesEntryId.in_subquery(own_entries(tenant, conversion, EntryStatus::Rejected)))
        .filter(Column::Status.is_in(UNPAID.iter().map(|s| s.as_str())))
        .exec(conn)
        .await?;
    Ok(())
}

async fn reverse_paid<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: ConversionId,
    now: DateTime<Utc>,
) -> Result<()> {
    let paid = ledger_entries::Entity::find()
        .filter(Column::TenantId.eq(tenant.uuid()))
        .filter(Column::ConversionId.eq(conversion.uuid()))
        .filter(Column::Status.eq(EntryStatus::Paid.as_str()))
        .filter(Column::ReversesEntryId.is_null())
        .filter(Column::Id.not_in_subquery(reversed_entries(tenant)))
        .all(conn)
        .await?;
    if paid.is_empty() {
        return Ok(());
    }
    let zone = tenant_zone(conn, tenant).await?;
    let mut models = Vec::with_capacity(paid.len());
    for entry in &paid {
        models.extend(
            reversals_in_open_period(conn, tenant, zone, conversion, entry, EntryStatus::Approved, now)
                .await?,
        );
    }
    ledger_entries::Entity::insert_many(models).exec_without_returning(conn).await?;
    Ok(())
}

/// The reversal of the booked `entry`, in `status`, each part booked into its affiliate's
/// open period: how paid money is clawed back.
pub(super) async fn reversals_in_open_period<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    zone: chrono_tz::Tz,
    conversion: ConversionId,
    entry: &ledger_entries::Model,
    status: EntryStatus,
    now: DateTime<Utc>,
) -> Result<Vec<ledger_entries::ActiveModel>> {
    let mut models = Vec::new();
    for reversal in reversal_of(&[to_draft(entry)?]) {
        let affiliate = AffiliateId::from_uuid(entry.affiliate_id);
        let period = open_period(conn, tenant, affiliate, reversal.amount.currency, now, now, zone).await?;
        let meta = EntryMeta {
            plan: entry.plan_id.map(PlanId::from_uuid).zip(entry.plan_version),
            reverses_entry: Some(entry.id),
        };
        models.push(entry_model(tenant, &reversal, &meta, Some(conversion), status, period, now, now));
    }
    Ok(models)
}

/// Another conversion's unpaid reversals of the entries `voided` (just rejected by a review)
/// are rejected with them, as [`settle_rejection`] does for a rejected status.
pub(super) async fn reject_reversals_of<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    voided: Vec<uuid::Uuid>,
) -> Result<()> {
    ledger_entries::Entity::update_many()
        .col_expr(Column::Status, Expr::value(EntryStatus::Rejected.as_str()))
        .filter(Column::TenantId.eq(tenant.uuid()))
        .filter(Column::ReversesEntryId.is_in(voided))
        .filter(Column::Status.is_in(UNPAID.iter().map(|s| s.as_str())))
        .exec(conn)
        .await?;
    Ok(())
}

/// Another conversion's reversals of the entries `restored` (counting again because a
/// rejection was undone) come back with them while that conversion stands: the rejection
/// took them along ([`reject_reversals_of`]), and without them the affiliate would be paid an
/// amount a chargeback took back. Each comes back in its own conversion's status.
pub(super) async fn revive_reversals_of<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    restored: Vec<uuid::Uuid>,
) -> Result<()> {
    for standing in [ConversionStatus::Pending, ConversionStatus::Approved] {
        let of_conversions_in = Query::select()
            .column(conversions::Column::Id)
            .from(conversions::Entity)
            .and_where(conversions::Column::TenantId.eq(tenant.uuid()))
            .and_where(conversions::Column::Status.eq(standing.as_str()))
            .to_owned();
        ledger_entries::Entity::update_many()
            .col_expr(Column::Status, Expr::value(super::booking::entry_status(standing, false).as_str()))
            .filter(Column::TenantId.eq(tenant.uuid()))
            .filter(Column::ReversesEntryId.is_in(restored.iter().copied()))
            .filter(Column::Status.eq(EntryStatus::Rejected.as_str()))
            .filter(Column::ConversionId.in_subquery(of_conversions_in))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Entries that a live (not rejected) reversal already takes back: reversing them again
/// would take the money twice.
pub(super) fn reversed_entries(tenant: TenantId) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Column::ReversesEntryId)
        .from(ledger_entries::Entity)
        .and_where(Column::TenantId.eq(tenant.uuid()))
        .and_where(Column::ReversesEntryId.is_not_null())
        .and_where(Column::Status.ne(EntryStatus::Rejected.as_str()))
        .to_owned()
}
