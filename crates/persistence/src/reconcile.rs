//! Our side of a parallel run's reconciliation: the tenant's conversions with a transaction
//! ID in a period, each with its amount, its direct affiliate (by external ID, when imported)
//! and that affiliate's commission. Staff only; `clickledger_domain::reconcile` compares.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clickledger_domain::conversion::EventKind;
use clickledger_domain::money::Currency;
use clickledger_domain::reconcile::{Side, Transaction};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::commission::EntryStatus;
use crate::entities::{affiliates, conversion_credits, conversions, ledger_entries};
use crate::repo::require_staff;
use crate::{Db, Result, Scope};

/// IDs per `IN (…)` list: well under either database's parameter limit.
const CHUNK: usize = 500;

/// The period's conversions that carry a transaction ID (chargebacks reverse one, so they are
/// not transactions of their own), oldest first.
pub async fn our_transactions(
    db: &Db,
    scope: Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Transaction>> {
    require_staff(&scope)?;
    let tenant = scope.tenant().uuid();
    let rows = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant))
        .filter(conversions::Column::TxnId.is_not_null())
        .filter(conversions::Column::Event.ne(EventKind::Chargeback.as_str()))
        .filter(conversions::Column::OccurredAt.gte(from))
        .filter(conversions::Column::OccurredAt.lt(to))
        .order_by_asc(conversions::Column::OccurredAt)
        .all(db.reader())
        .await?;
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    let mut direct: HashMap<uuid::Uuid, uuid::Uuid> = HashMap::new();
    let mut commission: HashMap<uuid::Uuid, Decimal> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        for credit in conversion_credits::Entity::find()
            .filter(conversion_credits::Column::TenantId.eq(tenant))
            .filter(conversion_credits::Column::ConversionId.is_in(chunk.iter().copied()))
            .filter(conversion_credits::Column::Position.eq(0))
            .all(db.reader())
            .await?
        {
            direct.insert(credit.conversion_id, credit.affiliate_id);
        }
        for entry in ledger_entries::Entity::find()
            .filter(ledger_entries::Column::TenantId.eq(tenant))
            .filter(ledger_entries::Column::ConversionId.is_in(chunk.iter().copied()))
            .filter(ledger_entries::Column::Tier.eq(0))
            .filter(ledger_entries::Column::Status.ne(EntryStatus::Rejected.as_str()))
            .all(db.reader())
            .await?
        {
            if let Some(conversion) = entry.conversion_id {
                *commission.entry(conversion).or_default() += entry.amount.get();
            }
        }
    }
    let external: HashMap<uuid::Uuid, Option<String>> = affiliates::Entity::find()
        .filter(affiliates::Column::TenantId.eq(tenant))
        .all(db.reader())
        .await?
        .into_iter()
        .map(|a| (a.id, a.external_id))
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let txn_id = row.txn_id?;
            let affiliate = direct.get(&row.id).map(|a| match external.get(a) {
                Some(Some(external_id)) => external_id.clone(),
                _ => a.to_string(),
            });
            Some(Transaction {
                txn_id,
                side: Side {
                    event: row.event,
                    amount: row.amount.map(|a| a.get()),
                    currency: row.currency.and_then(|c| Currency::parse(&c, "currency").ok()),
                    commission: commission.get(&row.id).copied().unwrap_or_default(),
                    occurred_at: row.occurred_at,
                    affiliate,
                },
            })
        })
        .collect())
}
