//! What leaves the storage layer: typed, already-scoped records, never sea-orm models.

use chrono::{DateTime, Utc};
use clickledger_domain::dialect::{Dialect, Mapping};
use clickledger_domain::ids::{AffiliateId, ApiKeyId, CampaignId, TenantId, TrackingLinkId, UserId};
use clickledger_domain::role::Role;
use clickledger_domain::status::{ActiveStatus, CampaignStatus};

use crate::entities::{affiliates, api_keys, campaigns, tenants, tracking_links, users};

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    /// IANA name; commission months run on this calendar.
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub affiliate_id: Option<AffiliateId>,
    pub status: ActiveStatus,
    pub created_at: DateTime<Utc>,
    /// The epoch its sessions must carry to be honoured (see `sessions`).
    pub session_epoch: i64,
}

#[derive(Debug, Clone)]
pub struct Affiliate {
    pub id: AffiliateId,
    pub name: String,
    pub email: String,
    pub parent_id: Option<AffiliateId>,
    pub status: ActiveStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub landing_url: String,
    pub fallback_url: Option<String>,
    /// One of the attribution models' names, e.g. `LAST_CLICK`.
    pub attribution_model: String,
    pub lookback_days: u32,
    pub status: CampaignStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct TrackingLink {
    pub id: TrackingLinkId,
    pub affiliate_id: AffiliateId,
    pub campaign_id: CampaignId,
    pub code: String,
    pub status: ActiveStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// The first characters of the key, enough for a person to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Postbacks allowed per minute; `None`: the server's default.
    pub postbacks_per_minute: Option<u32>,
    /// When the current signing secret was made; `None`: the key has none.
    pub signing_secret_created_at: Option<DateTime<Utc>>,
    pub signature_required: bool,
    /// Whose parameter names the key's postbacks use.
    pub dialect: Dialect,
    /// The mapping of a CUSTOM dialect.
    pub custom_dialect: Option<Mapping>,
}

/// What the postback endpoint needs of a presented, unrevoked key: whose it is and its
/// settings, including the signing secret (which nothing else reads).
#[derive(Debug, Clone)]
pub struct PresentedKey {
    pub tenant: TenantId,
    pub id: ApiKeyId,
    pub postbacks_per_minute: Option<u32>,
    pub signing_secret: Option<String>,
    pub signature_required: bool,
    /// How the key's postbacks are translated into native names, and answered.
    pub dialect: Dialect,
    /// The mapping of a CUSTOM dialect, read with the key (never per postback).
    pub custom_dialect: Option<Mapping>,
}

impl PresentedKey {
    /// The mapping the key's postbacks are translated by.
    pub fn mapping(&self) -> &Mapping {
        self.dialect.mapping(self.custom_dialect.as_ref())
    }
}

// Stored enums were written by this crate; an unknown value means a corrupted row, which we
// surface as a validation error rather than a panic.
fn parse<T: std::str::FromStr<Err = clickledger_domain::Error>>(raw: &str) -> Result<T, crate::Error> {
    raw.parse::<T>().map_err(crate::Error::from)
}

impl From<tenants::Model> for Tenant {
    fn from(m: tenants::Model) -> Self {
        Tenant {
            id: TenantId::from_uuid(m.id),
            name: m.name,
            slug: m.slug,
            time_zone: m.time_zone,
            created_at: m.created_at,
        }
    }
}

impl TryFrom<users::Model> for User {
    type Error = crate::Error;
    fn try_from(m: users::Model) -> Result<Self, crate::Error> {
        Ok(User {
            id: UserId::from_uuid(m.id),
            tenant_id: TenantId::from_uuid(m.tenant_id),
            email: m.email,
            name: m.name,
            role: parse(&m.role)?,
            affiliate_id: m.affiliate_id.map(AffiliateId::from_uuid),
            status: parse(&m.status)?,
            created_at: m.created_at,
            session_epoch: m.session_epoch,
        })
    }
}

impl TryFrom<affiliates::Model> for Affiliate {
    type Error = crate::Error;
    fn try_from(m: affiliates::Model) -> Result<Self, crate::Error> {
        Ok(Affiliate {
            id: AffiliateId::from_uuid(m.id),
            name: m.name,
            email: m.email,
            parent_id: m.parent_id.map(AffiliateId::from_uuid),
            status: parse(&m.status)?,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl TryFrom<campaigns::Model> for Campaign {
    type Error = crate::Error;
    fn try_from(m: campaigns::Model) -> Result<Self, crate::Error> {
        Ok(Campaign {
            id: CampaignId::from_uuid(m.id),
            name: m.name,
            landing_url: m.landing_url,
            fallback_url: m.fallback_url,
            attribution_model: m.attribution_model,
            lookback_days: u32::try_from(m.lookback_days).unwrap_or(0),
            status: parse(&m.status)?,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl TryFrom<tracking_links::Model> for TrackingLink {
    type Error = crate::Error;
    fn try_from(m: tracking_links::Model) -> Result<Self, crate::Error> {
        Ok(TrackingLink {
            id: TrackingLinkId::from_uuid(m.id),
            affiliate_id: AffiliateId::from_uuid(m.affiliate_id),
            campaign_id: CampaignId::from_uuid(m.campaign_id),
            code: m.code,
            status: parse(&m.status)?,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<api_keys::Model> for ApiKey {
    type Error = crate::Error;
    fn try_from(m: api_keys::Model) -> Result<Self, crate::Error> {
        Ok(ApiKey {
            id: ApiKeyId::from_uuid(m.id),
            name: m.name,
            prefix: m.key_prefix,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
            last_used_at: m.last_used_at,
            postbacks_per_minute: m.postbacks_per_minute.and_then(|n| u32::try_from(n).ok()),
            signing_secret_created_at: m.signing_secret_created_at,
            signature_required: m.signature_required,
            dialect: parse(&m.dialect)?,
            custom_dialect: custom_dialect(m.custom_dialect.as_deref())?,
        })
    }
}

/// A stored CUSTOM mapping (written by this crate from a validated one).
fn custom_dialect(stored: Option<&str>) -> Result<Option<Mapping>, crate::Error> {
    stored
        .map(|json| {
            serde_json::from_str(json)
                .map_err(|err| crate::Error::Corrupt(format!("api_keys.custom_dialect: {err}")))
        })
        .transpose()
}

impl PresentedKey {
    /// The key a row describes, its signing secret opened.
    pub(crate) fn from_row(db: &crate::Db, m: api_keys::Model) -> Result<PresentedKey, crate::Error> {
        let owner = crate::secrets::api_key_signing_secret_owner(m.id);
        let signing_secret = m.signing_secret.map(|stored| db.secrets().open(&owner, &stored)).transpose()?;
        Ok(PresentedKey {
            tenant: TenantId::from_uuid(m.tenant_id),
            id: ApiKeyId::from_uuid(m.id),
            postbacks_per_minute: m.postbacks_per_minute.and_then(|n| u32::try_from(n).ok()),
            signing_secret,
            signature_required: m.signature_required,
            dialect: parse(&m.dialect)?,
            custom_dialect: custom_dialect(m.custom_dialect.as_deref())?,
        })
    }
}

pub(crate) fn try_page<M, T>(page: crate::Page<M>) -> Result<crate::Page<T>, crate::Error>
where
    T: TryFrom<M, Error = crate::Error>,
{
    let items = page.items.into_iter().map(T::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(crate::Page { items, has_next: page.has_next })
}
