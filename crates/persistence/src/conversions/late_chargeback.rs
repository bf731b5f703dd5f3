//! Chargebacks stored before their original transaction, applied when it arrives, in the
//! original's own transaction: the chargeback takes the original's credits and reverses what
//! it booked, as if the two had arrived in order. `clickledger_domain::attribution::
//! late_chargeback` decides what applies; this module finds the waiting chargebacks (one probe
//! of the `(tenant_id, dedupe_key)` unique index per batch, never a scan) and writes the result.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use clickledger_domain::attribution::{ArrivedOriginal, LateChargeback, StoredChargeback, late_chargeback};
use clickledger_domain::fraud::Action;
use clickledger_domain::ids::{ConversionId, TenantId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::ConversionEvent;
use super::attribution::REVERSAL_MODEL;
use super::read::load_conversion;
use crate::commission::{self, LateReversal};
use crate::entities::{conversion_credits, conversions};
use crate::{Backend, Result};

/// A conversion just written that a chargeback may be waiting for.
pub(super) struct Arrived<'a> {
    pub event: &'a ConversionEvent,
    /// The key a chargeback of its transaction is stored under.
    pub chargeback_key: String,
    pub received_at: DateTime<Utc>,
    pub zone: chrono_tz::Tz,
}

/// Applies every stored chargeback that waits for one of the conversions just written.
pub(super) async fn apply_waiting(
    txn: &DatabaseTransaction,
    backend: Backend,
    arrived: Vec<Arrived<'_>>,
) -> Result<()> {
    if arrived.is_empty() {
        return Ok(());
    }
    let tenants: HashSet<Uuid> = arrived.iter().map(|a| a.event.tenant_id.uuid()).collect();
    let keys: HashSet<&str> = arrived.iter().map(|a| a.chargeback_key.as_str()).collect();
    let by_key: HashMap<(Uuid, &str), &Arrived> =
        arrived.iter().map(|a| ((a.event.tenant_id.uuid(), a.chargeback_key.as_str()), a)).collect();
    let stored = conversions::Entity::find()
        .filter(conversions::Column::TenantId.is_in(tenants))
        .filter(conversions::Column::DedupeKey.is_in(keys))
        .all(txn)
        .await?;
    for row in stored {
        // The lists may pair one tenant's key with another's: only exact pairs count.
        let Some(&original) = by_key.get(&(row.tenant_id, row.dedupe_key.as_str())) else { continue };
        apply_one(txn, backend, row, original).await?;
    }
    Ok(())
}

async fn apply_one(
    txn: &DatabaseTransaction,
    backend: Backend,
    row: conversions::Model,
    arrived: &Arrived<'_>,
) -> Result<()> {
    let original = &arrived.event.conversion;
    let stored = StoredChargeback {
        unattributed_reason: row.unattributed_reason.as_deref().map(str::parse).transpose()?,
        linked: row.original_conversion_id.is_some(),
        fraud_action: row.fraud_action.as_deref().map(str::parse::<Action>).transpose()?,
    };
    let decision = late_chargeback(
        stored,
        ArrivedOriginal {
            event: original.event,
            attributed: original.attributed,
            unattributed_reason: original.unattributed_reason,
        },
    );
    let LateChargeback::Apply { unattributed_reason, reversal } = decision else { return Ok(()) };
    let tenant = TenantId::from_uuid(row.tenant_id);
    let chargeback = ConversionId::from_uuid(row.id);
    let before = load_conversion(txn, tenant, chargeback).await?;

    let copies = decision.copies_credits();
    let (campaign, model, model_version) = if copies {
        (
            original.campaign_id.map(|c| c.uuid()),
            Some(REVERSAL_MODEL.to_owned()),
            Some(format!("from {}", original.id)),
        )
    } else {
        (None, None, None)
    };
    conversions::Entity::update_many()
        .col_expr(conversions::Column::OriginalConversionId, Expr::value(Some(original.id.uuid())))
        .col_expr(conversions::Column::Attributed, Expr::value(copies))
        .col_expr(
            conversions::Column::UnattributedReason,
            Expr::value(unattributed_reason.map(|r| r.as_str().to_owned())),
        )
        .col_expr(conversions::Column::CampaignId, Expr::value(campaign))
        .col_expr(conversions::Column::Model, Expr::value(model))
        .col_expr(conversions::Column::ModelVersion, Expr::value(model_version))
        .col_expr(conversions::Column::UpdatedAt, Expr::value(arrived.received_at))
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::Id.eq(chargeback.uuid()))
        .exec(txn)
        .await?;
    if copies && !original.credits.is_empty() {
        let credits =
            original.credits.iter().enumerate().map(|(position, credit)| conversion_credits::ActiveModel {
                conversion_id: Set(chargeback.uuid()),
                affiliate_id: Set(credit.affiliate_id.uuid()),
                tenant_id: Set(tenant.uuid()),
                share: Set(credit.share.into()),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            });
        conversion_credits::Entity::insert_many(credits).exec_without_returning(txn).await?;
    }
    if let Some(reversal) = reversal {
        let late = LateReversal {
            chargeback,
            original: original.id,
            status: row.status.parse()?,
            hold: reversal.hold,
            occurred_at: row.occurred_at,
            now: arrived.received_at,
            zone: arrived.zone,
        };
        commission::book_late_reversal(txn, tenant, late).await?;
    }
    let after = load_conversion(txn, tenant, chargeback).await?;
    let country = country_of(&row.payload);
    crate::rollups::record_relinked(txn, backend, &before, &after, country.as_deref()).await?;
    tracing::info!(%chargeback, original = %original.id, "chargeback applied to its late original");
    Ok(())
}

/// The country the chargeback's postback named, from its stored identity fields.
fn country_of(payload: &str) -> Option<String> {
    serde_json::from_str::<BTreeMap<String, String>>(payload).ok()?.remove("country")
}
