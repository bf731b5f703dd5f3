//! Training data for the data-driven (Markov) model: each visitor's journey of affiliate
//! touches, and whether it led to a conversion.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use clickledger_domain::ids::{AffiliateId, TenantId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entities::{campaigns, clicks, conversions};
use crate::{Db, Result};

/// Most clicks read for one training run; beyond this the oldest are left out.
pub const MAX_TRAINING_CLICKS: u64 = 500_000;

/// Journeys (affiliates in click order) since `since`, with whether each converted. A
/// converting journey ends at its first attributed conversion.
pub async fn training_journeys(
    db: &Db,
    tenant: TenantId,
    since: DateTime<Utc>,
) -> Result<Vec<(Vec<AffiliateId>, bool)>> {
    let rows = clicks::Entity::find()
        .filter(clicks::Column::TenantId.eq(tenant.uuid()))
        .filter(clicks::Column::ClickedAt.gte(since))
        .order_by_desc(clicks::Column::ClickedAt)
        .limit(MAX_TRAINING_CLICKS)
        .all(db.reader())
        .await?;
    let converting_clicks: HashSet<String> = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::ReceivedAt.gte(since))
        .filter(conversions::Column::Attributed.eq(true))
        .filter(conversions::Column::ClickId.is_not_null())
        .all(db.reader())
        .await?
        .into_iter()
        .filter_map(|c| c.click_id)
        .collect();

    let mut journeys: HashMap<uuid::Uuid, (Vec<AffiliateId>, bool)> = HashMap::new();
    for click in rows.into_iter().rev() {
        let journey = journeys.entry(click.visitor_id).or_default();
        if journey.1 {
            continue; // already converted: later clicks belong to a next journey we ignore
        }
        journey.0.push(AffiliateId::from_uuid(click.affiliate_id));
        if converting_clicks.contains(&click.click_id) {
            journey.1 = true;
        }
    }
    Ok(journeys.into_values().collect())
}

/// Tenants with at least one DATA_DRIVEN campaign: the ones worth retraining.
pub async fn tenants_with_data_driven_campaigns(db: &Db) -> Result<Vec<TenantId>> {
    let rows = campaigns::Entity::find()
        .filter(campaigns::Column::AttributionModel.eq("DATA_DRIVEN"))
        .all(db.reader())
        .await?;
    let mut tenants: Vec<TenantId> = rows.into_iter().map(|c| TenantId::from_uuid(c.tenant_id)).collect();
    tenants.sort();
    tenants.dedup();
    Ok(tenants)
}
