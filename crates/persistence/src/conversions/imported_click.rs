//! A click ID that is not one of ours but is in the tenant's click map (`clicks.csv` of an
//! import): the link it was made on, and when, as attribution reads a native click's.

use chrono::{DateTime, Utc};
use clickledger_domain::ids::TenantId;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::Result;
use crate::entities::{campaigns, imported_clicks, tracking_links};

pub(super) struct ImportedClick {
    pub link_affiliate: Uuid,
    pub campaign: Uuid,
    pub lookback_days: i32,
    pub model: String,
    pub clicked_at: DateTime<Utc>,
}

/// Asked only for click IDs that are not ours, so native postbacks never pay for it.
pub(super) async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    click_id: &str,
) -> Result<Option<ImportedClick>> {
    let Some(click) = imported_clicks::Entity::find()
        .filter(imported_clicks::Column::TenantId.eq(tenant.uuid()))
        .filter(imported_clicks::Column::ClickId.eq(click_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let Some(link) = tracking_links::Entity::find()
        .filter(tracking_links::Column::TenantId.eq(tenant.uuid()))
        .filter(tracking_links::Column::Id.eq(click.link_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let Some(campaign) = campaigns::Entity::find()
        .filter(campaigns::Column::TenantId.eq(tenant.uuid()))
        .filter(campaigns::Column::Id.eq(link.campaign_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ImportedClick {
        link_affiliate: link.affiliate_id,
        campaign: campaign.id,
        lookback_days: campaign.lookback_days,
        model: campaign.attribution_model,
        clicked_at: click.clicked_at,
    }))
}
