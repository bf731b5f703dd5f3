//! Another tracker's `?a=AFFILIATE&c=CAMPAIGN` link shape: the link of an imported affiliate
//! and campaign, named by their external IDs rather than by a code. Like the click path it
//! establishes the tenant from the link itself: the pair must name an affiliate and a
//! campaign of one tenant.

use chrono::Utc;
use clickledger_domain::ids::TrackingLinkId;
use clickledger_domain::status::ActiveStatus;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::{affiliates, campaigns, tracking_links};
use crate::repo::tracking_links::random_code;
use crate::{Db, Error, Result};

/// The code of the link of the affiliate and campaign with these external IDs, creating the
/// link on first use. `None` when no tenant has both, or more than one does (the pair is then
/// ambiguous on the shared tracking domain). Of several links of the pair the oldest active
/// one answers (or, with none active, the oldest, which answers as suspended).
pub async fn code_for_pair(db: &Db, affiliate: &str, campaign: &str) -> Result<Option<String>> {
    let affiliates: Vec<(uuid::Uuid, uuid::Uuid)> = affiliates::Entity::find()
        .select_only()
        .columns([affiliates::Column::TenantId, affiliates::Column::Id])
        .filter(affiliates::Column::ExternalId.eq(affiliate))
        .into_tuple()
        .all(db.reader())
        .await?;
    if affiliates.is_empty() {
        return Ok(None);
    }
    let campaigns: Vec<(uuid::Uuid, uuid::Uuid)> = campaigns::Entity::find()
        .select_only()
        .columns([campaigns::Column::TenantId, campaigns::Column::Id])
        .filter(campaigns::Column::ExternalId.eq(campaign))
        .filter(campaigns::Column::TenantId.is_in(affiliates.iter().map(|(tenant, _)| *tenant)))
        .into_tuple()
        .all(db.reader())
        .await?;
    let pairs: Vec<(uuid::Uuid, uuid::Uuid, uuid::Uuid)> = campaigns
        .iter()
        .filter_map(|(tenant, campaign)| {
            affiliates
                .iter()
                .find(|(t, _)| t == tenant)
                .map(|(_, affiliate)| (*tenant, *affiliate, *campaign))
        })
        .collect();
    let [(tenant, affiliate, campaign)] = pairs[..] else { return Ok(None) };
    let links = tracking_links::Entity::find()
        .filter(tracking_links::Column::TenantId.eq(tenant))
        .filter(tracking_links::Column::AffiliateId.eq(affiliate))
        .filter(tracking_links::Column::CampaignId.eq(campaign))
        .order_by_asc(tracking_links::Column::CreatedAt)
        .order_by_asc(tracking_links::Column::Id)
        .all(db.reader())
        .await?;
    let active = ActiveStatus::Active.as_str();
    if let Some(link) = links.iter().find(|l| l.status == active).or(links.first()) {
        return Ok(Some(link.code.clone()));
    }
    // Two first clicks at once may each create one; both are links of the pair, and the
    // oldest answers from then on.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let model = tracking_links::ActiveModel {
            id: Set(TrackingLinkId::new().uuid()),
            tenant_id: Set(tenant),
            affiliate_id: Set(affiliate),
            campaign_id: Set(campaign),
            code: Set(random_code()),
            // 48 bits: the width the click ID reserves for the link.
            link_tag: Set(rand::rng().random_range(0..(1i64 << 48))),
            status: Set(active.to_owned()),
            created_at: Set(Utc::now()),
        };
        match model.insert(db.writer()).await.map_err(Error::from) {
            Ok(link) => return Ok(Some(link.code)),
            Err(Error::Conflict { .. }) if attempts < 5 => continue,
            Err(err) => return Err(err),
        }
    }
}
