//! The click path: resolving a public link code to what a redirect needs, and writing clicks
//! in batches. Both are entry points that establish the tenant from the link itself.

use chrono::{DateTime, Utc};
use clickledger_domain::ids::{AffiliateId, CampaignId, TenantId, TrackingLinkId, VisitorId};
use clickledger_domain::status::{ActiveStatus, CampaignStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::{affiliates, campaigns, clicks, tenants, tracking_links};
use crate::{Db, Error, Result};

/// Everything a redirect needs about a link, gathered once and cached by the caller.
#[derive(Debug, Clone)]
pub struct LinkTarget {
    pub tenant_id: TenantId,
    pub click_tag: u32,
    pub click_secret: Vec<u8>,
    pub link_id: TrackingLinkId,
    pub link_tag: u64,
    pub affiliate_id: AffiliateId,
    pub campaign_id: CampaignId,
    pub landing_url: String,
    pub fallback_url: Option<String>,
    pub campaign_status: CampaignStatus,
    /// The link and its affiliate are both active.
    pub tracking: bool,
}

/// A tenant's click-ID keys.
#[derive(Debug, Clone)]
pub struct ClickKeys {
    pub click_tag: u32,
    pub click_secret: Vec<u8>,
}

pub async fn link_target(db: &Db, code: &str) -> Result<Option<LinkTarget>> {
    let Some(link) =
        tracking_links::Entity::find().filter(tracking_links::Column::Code.eq(code)).one(db.reader()).await?
    else {
        return Ok(None);
    };
    let tenant =
        tenants::Entity::find_by_id(link.tenant_id).one(db.reader()).await?.ok_or(Error::NotFound)?;
    let campaign = campaigns::Entity::find()
        .filter(campaigns::Column::TenantId.eq(link.tenant_id))
        .filter(campaigns::Column::Id.eq(link.campaign_id))
        .one(db.reader())
        .await?
        .ok_or(Error::NotFound)?;
    let affiliate = affiliates::Entity::find()
        .filter(affiliates::Column::TenantId.eq(link.tenant_id))
        .filter(affiliates::Column::Id.eq(link.affiliate_id))
        .one(db.reader())
        .await?
        .ok_or(Error::NotFound)?;
    let active = ActiveStatus::Active.as_str();
    Ok(Some(LinkTarget {
        tenant_id: TenantId::from_uuid(tenant.id),
        click_tag: u32::try_from(tenant.click_tag).unwrap_or_default(),
        click_secret: open_click_secret(db, &tenant)?,
        link_id: TrackingLinkId::from_uuid(link.id),
        link_tag: u64::try_from(link.link_tag).unwrap_or_default(),
        affiliate_id: AffiliateId::from_uuid(link.affiliate_id),
        campaign_id: CampaignId::from_uuid(link.campaign_id),
        landing_url: campaign.landing_url,
        fallback_url: campaign.fallback_url,
        campaign_status: campaign.status.parse()?,
        tracking: link.status == active && affiliate.status == active,
    }))
}

pub async fn click_keys(db: &Db, tenant: TenantId) -> Result<ClickKeys> {
    let tenant = tenants::Entity::find_by_id(tenant.uuid()).one(db.reader()).await?.ok_or(Error::NotFound)?;
    Ok(ClickKeys {
        click_tag: u32::try_from(tenant.click_tag).unwrap_or_default(),
        click_secret: open_click_secret(db, &tenant)?,
    })
}

fn open_click_secret(db: &Db, tenant: &tenants::Model) -> Result<Vec<u8>> {
    let hex_secret =
        db.secrets().open(&crate::secrets::click_secret_owner(tenant.id), &tenant.click_secret)?;
    hex::decode(hex_secret).map_err(|_| Error::Corrupt("the tenant's click secret".into()))
}

/// One click, as recorded.
#[derive(Debug, Clone)]
pub struct NewClick {
    pub click_id: String,
    pub tenant_id: TenantId,
    pub link_id: TrackingLinkId,
    pub affiliate_id: AffiliateId,
    pub campaign_id: CampaignId,
    pub visitor_id: VisitorId,
    /// The visitor came without our cookie: its ID was minted for this click, its first.
    pub new_visitor: bool,
    pub clicked_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    pub subs: [Option<String>; 5],
    pub source: Option<String>,
    pub creative: Option<String>,
    pub landing_page: Option<String>,
    /// The browser's `Accept-Language`, as sent (control characters stripped, bounded).
    pub accept_language: Option<String>,
    /// The user agent is a known bot's.
    pub is_bot: bool,
    /// It came beyond the clicks a minute allowed from its address on its link.
    pub velocity: bool,
    /// ISO 3166-1 alpha-2 of the address, when a GeoIP database knows it (set by the click
    /// writer, not the redirect).
    pub country: Option<String>,
}

/// Writes a batch of clicks in one transaction: one commit (one fsync) for many clicks.
/// Idempotent: clicks already stored are skipped, so a failed batch can simply be retried.
pub async fn insert_clicks(db: &Db, batch: &[NewClick]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    crate::click_rows::insert(db, batch).await
}

/// Clicks recorded so far for a tenant; for tests and reports.
pub async fn click_count(db: &Db, tenant: TenantId) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(clicks::Entity::find().filter(clicks::Column::TenantId.eq(tenant.uuid())).count(db.reader()).await?)
}
