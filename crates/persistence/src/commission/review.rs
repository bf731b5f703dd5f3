//! A person's review decision applied to the stored ledger. What it does is the domain's
//! (`clickledger_domain::fraud::review`): the conversion's entries are loaded as the model's
//! lines, [`apply`](clickledger_domain::fraud::review::apply) decides their new statuses and
//! the reversals to add, and this writes exactly that, in the decision's transaction.
//! Booking what a fraud rule withheld goes through [`super::book_conversion`], as for a new
//! conversion.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clickledger_domain::fraud::review::{self, Line, LineStatus, Step};
use clickledger_domain::ids::{ConversionId, TenantId};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use super::{Booking, EntryStatus, tenant_zone};
use crate::Result;
use crate::entities::ledger_entries::{self, Column};

/// Whether the conversion has any ledger entry of its own.
pub(crate) async fn has_entries<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: ConversionId,
) -> Result<bool> {
    let count = ledger_entries::Entity::find()
        .filter(Column::TenantId.eq(tenant.uuid()))
        .filter(Column::ConversionId.eq(conversion.uuid()))
        .count(conn)
        .await?;
    Ok(count > 0)
}

fn line_status(status: EntryStatus) -> LineStatus {
    match status {
        EntryStatus::Pending => LineStatus::Pending,
        EntryStatus::Approved => LineStatus::Approved,
        EntryStatus::Held => LineStatus::Held,
        EntryStatus::Rejected => LineStatus::Rejected,
        EntryStatus::Paid => LineStatus::Paid,
    }
}

fn entry_status(status: LineStatus) -> EntryStatus {
    match status {
        LineStatus::Pending => EntryStatus::Pending,
        LineStatus::Approved => EntryStatus::Approved,
        LineStatus::Held => EntryStatus::Held,
        LineStatus::Rejected => EntryStatus::Rejected,
        LineStatus::Paid => EntryStatus::Paid,
    }
}

/// Carries out `steps` on the conversion's entries; `booking` is how to book what a fraud
/// rule withheld ([`Step::Book`]).
pub(crate) async fn apply_review<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: ConversionId,
    steps: &[Step],
    booking: Option<Booking<'_>>,
    now: DateTime<Utc>,
) -> Result<()> {
    if steps.contains(&Step::Book) {
        if let Some(booking) = booking {
            super::book_conversion(conn, tenant, booking).await?;
        }
        return Ok(());
    }
    let rows = ledger_entries::Entity::find()
        .filter(Column::TenantId.eq(tenant.uuid()))
        .filter(Column::ConversionId.eq(conversion.uuid()))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let index: HashMap<uuid::Uuid, usize> = rows.iter().enumerate().map(|(i, row)| (row.id, i)).collect();
    // Live reversals booked for another conversion (a chargeback's) of these entries.
    let elsewhere: Vec<uuid::Uuid> = ledger_entries::Entity::find()
        .filter(Column::TenantId.eq(tenant.uuid()))
        .filter(Column::ConversionId.ne(conversion.uuid()))
        .filter(Column::ReversesEntryId.is_in(rows.iter().map(|row| row.id)))
        .filter(Column::Status.ne(EntryStatus::Rejected.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|row| row.reverses_entry_id)
        .collect();
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        lines.push(Line {
            amount: row.amount.get(),
            status: line_status(row.status.parse()?),
            reverses: row.reverses_entry_id.and_then(|id| index.get(&id).copied()),
            settled_elsewhere: elsewhere.contains(&row.id),
        });
    }
    let before = lines.clone();
    review::apply(&mut lines, steps, &[]);

    // Status changes, grouped by the new status.
    let mut moves: HashMap<&'static str, Vec<uuid::Uuid>> = HashMap::new();
    for (i, (old, new)) in before.iter().zip(&lines).enumerate() {
        if old.status != new.status {
            moves.entry(entry_status(new.status).as_str()).or_default().push(rows[i].id);
        }
    }
    // Entries counting again after a rejection was undone.
    let restored: Vec<uuid::Uuid> = before
        .iter()
        .zip(&lines)
        .enumerate()
        .filter(|(_, (old, new))| old.status == LineStatus::Rejected && new.status != LineStatus::Rejected)
        .map(|(i, _)| rows[i].id)
        .collect();
    let mut rejected = Vec::new();
    for (status, ids) in moves {
        if status == EntryStatus::Rejected.as_str() {
            rejected.extend(ids.iter().copied());
        }
        ledger_entries::Entity::update_many()
            .col_expr(Column::Status, Expr::value(status))
            .filter(Column::TenantId.eq(tenant.uuid()))
            .filter(Column::Id.is_in(ids))
            .exec(conn)
            .await?;
    }
    // An entry voided here takes another conversion's unpaid reversals of it along, or the
    // affiliate would lose the amount twice (as a rejection does).
    if !rejected.is_empty() {
        super::rejection::reject_reversals_of(conn, tenant, rejected).await?;
    }
    if !restored.is_empty() {
        super::rejection::revive_reversals_of(conn, tenant, restored).await?;
    }

    // The reversals the decision adds, each into the open period.
    let added = &lines[before.len()..];
    if added.is_empty() {
        return Ok(());
    }
    let zone = tenant_zone(conn, tenant).await?;
    let mut models = Vec::with_capacity(added.len());
    for line in added {
        let Some(entry) = line.reverses.and_then(|i| rows.get(i)) else { continue };
        let status = entry_status(line.status);
        models.extend(
            super::rejection::reversals_in_open_period(conn, tenant, zone, conversion, entry, status, now)
                .await?,
        );
    }
    if !models.is_empty() {
        ledger_entries::Entity::insert_many(models).exec_without_returning(conn).await?;
    }
    Ok(())
}
