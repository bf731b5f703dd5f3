//! GraphQL object types. They are built from persistence records and never expose a column
//! that was not chosen for the API.

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use clickledger_domain::attribution::AttributionModel as DomainModel;
use clickledger_domain::dialect::{Mapping, Rename, StatusWord};
use clickledger_domain::role::Role as DomainRole;
use clickledger_domain::status::{ActiveStatus, CampaignStatus as DomainCampaignStatus};
use clickledger_persistence::records;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Role {
    Owner,
    Manager,
    Affiliate,
}

impl From<DomainRole> for Role {
    fn from(role: DomainRole) -> Self {
        match role {
            DomainRole::Owner => Role::Owner,
            DomainRole::Manager => Role::Manager,
            DomainRole::Affiliate => Role::Affiliate,
        }
    }
}

/// Affiliates, users and tracking links are active or suspended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Status {
    Active,
    Suspended,
}

impl From<ActiveStatus> for Status {
    fn from(status: ActiveStatus) -> Self {
        match status {
            ActiveStatus::Active => Status::Active,
            ActiveStatus::Suspended => Status::Suspended,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CampaignStatus {
    Active,
    /// Links answer with the campaign's fallback URL.
    Paused,
    /// Links answer 404.
    Archived,
}

impl From<DomainCampaignStatus> for CampaignStatus {
    fn from(status: DomainCampaignStatus) -> Self {
        match status {
            DomainCampaignStatus::Active => CampaignStatus::Active,
            DomainCampaignStatus::Paused => CampaignStatus::Paused,
            DomainCampaignStatus::Archived => CampaignStatus::Archived,
        }
    }
}

impl From<CampaignStatus> for DomainCampaignStatus {
    fn from(status: CampaignStatus) -> Self {
        match status {
            CampaignStatus::Active => DomainCampaignStatus::Active,
            CampaignStatus::Paused => DomainCampaignStatus::Paused,
            CampaignStatus::Archived => DomainCampaignStatus::Archived,
        }
    }
}

/// How a conversion's credit is shared among the clicks of its journey.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum AttributionModel {
    FirstClick,
    #[default]
    LastClick,
    Linear,
    /// Later clicks weigh more; the weight halves every 7 days before the conversion.
    TimeDecay,
    /// 40% first, 40% last, 20% shared by the middle.
    PositionBased,
    /// Markov-chain removal effect, trained on the tenant's journeys.
    DataDriven,
}

impl From<DomainModel> for AttributionModel {
    fn from(model: DomainModel) -> Self {
        match model {
            DomainModel::FirstClick => AttributionModel::FirstClick,
            DomainModel::LastClick => AttributionModel::LastClick,
            DomainModel::Linear => AttributionModel::Linear,
            DomainModel::TimeDecay => AttributionModel::TimeDecay,
            DomainModel::PositionBased => AttributionModel::PositionBased,
            DomainModel::DataDriven => AttributionModel::DataDriven,
        }
    }
}

impl From<AttributionModel> for DomainModel {
    fn from(model: AttributionModel) -> Self {
        match model {
            AttributionModel::FirstClick => DomainModel::FirstClick,
            AttributionModel::LastClick => DomainModel::LastClick,
            AttributionModel::Linear => DomainModel::Linear,
            AttributionModel::TimeDecay => DomainModel::TimeDecay,
            AttributionModel::PositionBased => DomainModel::PositionBased,
            AttributionModel::DataDriven => DomainModel::DataDriven,
        }
    }
}

impl AttributionModel {
    /// The stored name, e.g. `LAST_CLICK`.
    pub fn as_str(self) -> &'static str {
        DomainModel::from(self).as_str()
    }

    fn from_stored(raw: &str) -> Self {
        DomainModel::parse(raw).unwrap_or_default().into()
    }
}

#[derive(SimpleObject)]
pub struct Tenant {
    pub id: ID,
    pub name: String,
    pub slug: String,
    /// IANA time zone; commission periods are calendar months in it.
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

impl From<records::Tenant> for Tenant {
    fn from(t: records::Tenant) -> Self {
        Tenant {
            id: ID(t.id.to_string()),
            name: t.name,
            slug: t.slug,
            time_zone: t.time_zone,
            created_at: t.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The affiliate this login belongs to, for affiliate users.
    pub affiliate_id: Option<ID>,
    /// A suspended login cannot sign in, and its sessions have ended.
    pub status: Status,
}

impl From<records::User> for User {
    fn from(u: records::User) -> Self {
        User {
            id: ID(u.id.to_string()),
            email: u.email,
            name: u.name,
            role: u.role.into(),
            affiliate_id: u.affiliate_id.map(|id| ID(id.to_string())),
            status: u.status.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct Affiliate {
    pub id: ID,
    pub name: String,
    pub email: String,
    /// The affiliate that recruited this one (multi-tier).
    pub parent_id: Option<ID>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<records::Affiliate> for Affiliate {
    fn from(a: records::Affiliate) -> Self {
        Affiliate {
            id: ID(a.id.to_string()),
            name: a.name,
            email: a.email,
            parent_id: a.parent_id.map(|id| ID(id.to_string())),
            status: a.status.into(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct Campaign {
    pub id: ID,
    pub name: String,
    /// Where clicks are sent; may contain `{click_id}`, `{sub1}`…`{sub5}`, `{affiliate_id}`,
    /// `{campaign_id}`.
    pub landing_url: String,
    /// Where clicks go while the campaign is paused.
    pub fallback_url: Option<String>,
    pub attribution_model: AttributionModel,
    /// Clicks older than this many days before a conversion are not part of its journey.
    pub lookback_days: i32,
    pub status: CampaignStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<records::Campaign> for Campaign {
    fn from(c: records::Campaign) -> Self {
        Campaign {
            id: ID(c.id.to_string()),
            name: c.name,
            landing_url: c.landing_url,
            fallback_url: c.fallback_url,
            attribution_model: AttributionModel::from_stored(&c.attribution_model),
            lookback_days: i32::try_from(c.lookback_days).unwrap_or(i32::MAX),
            status: c.status.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct TrackingLink {
    pub id: ID,
    /// The short code in the link's URL.
    pub code: String,
    /// The URL to hand to the affiliate: `{public-url}/c/{code}`.
    pub url: String,
    pub affiliate_id: ID,
    pub campaign_id: ID,
    pub status: Status,
    pub created_at: DateTime<Utc>,
}

impl TrackingLink {
    pub fn new(link: records::TrackingLink, public_url: &str) -> Self {
        TrackingLink {
            id: ID(link.id.to_string()),
            url: format!("{public_url}/c/{}", link.code),
            code: link.code,
            affiliate_id: ID(link.affiliate_id.to_string()),
            campaign_id: ID(link.campaign_id.to_string()),
            status: link.status.into(),
            created_at: link.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The key's first characters, to tell keys apart; the key itself is never shown again.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last postback that presented this key (written about once a second, not per
    /// postback).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Postbacks a minute this key may send, per replica; null: the server's default
    /// (`--postbacks-per-minute-per-key`).
    pub postbacks_per_minute: Option<i32>,
    /// Whether postbacks without a valid `v2` signature are refused.
    pub signature_required: bool,
    /// When the current signing secret was made; null: the key has none yet (made before
    /// signing secrets existed; `rotateApiKeySigningSecret` makes one).
    pub signing_secret_created_at: Option<DateTime<Utc>>,
    /// Whose parameter names the key's postbacks use (README, *Postbacks*, dialects).
    pub dialect: PostbackDialect,
    /// The mapping of a `CUSTOM` dialect; null for the others.
    pub custom_dialect: Option<CustomDialect>,
}

/// An operator's own postback vocabulary (`CUSTOM`): the same table the built-in dialects
/// have.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "CustomDialectInput")]
pub struct CustomDialect {
    /// Sent names read as native ones (`cid` → `click_id`; an event parameter maps to
    /// `event`). At most 50; `to` is one of click_id, player_id, event, txn_id, amount,
    /// currency, lots, instrument, status, occurred_at, country, turnover.
    pub parameters: Vec<ParameterRename>,
    /// The parameter holding a status word of `statuses` (Keitaro's `status`).
    pub status_parameter: Option<String>,
    /// Status words and the event and status each means (`sale` → ftd, approved). At most 50.
    #[graphql(default)]
    pub statuses: Vec<StatusWordMapping>,
    /// The event of a postback that names none (the built-in dialects say `ftd`).
    pub default_event: Option<String>,
}

#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "ParameterRenameInput")]
pub struct ParameterRename {
    /// The name the sender uses (1–64 characters).
    pub from: String,
    /// Our postback parameter it stands for.
    pub to: String,
}

#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "StatusWordInput")]
pub struct StatusWordMapping {
    /// The word as sent (any case; 1–64 characters).
    pub word: String,
    /// Our event (`registration`, `ftd`, `deposit`, …).
    pub event: String,
    /// Our status (`pending`, `approved`, `rejected`).
    pub status: String,
}

impl From<CustomDialect> for Mapping {
    fn from(c: CustomDialect) -> Self {
        Mapping {
            parameters: c.parameters.into_iter().map(|r| Rename { from: r.from, to: r.to }).collect(),
            status_parameter: c.status_parameter,
            statuses: c
                .statuses
                .into_iter()
                .map(|s| StatusWord { word: s.word, event: s.event, status: s.status })
                .collect(),
            default_event: c.default_event,
        }
    }
}

impl From<Mapping> for CustomDialect {
    fn from(m: Mapping) -> Self {
        CustomDialect {
            parameters: m
                .parameters
                .into_iter()
                .map(|r| ParameterRename { from: r.from, to: r.to })
                .collect(),
            status_parameter: m.status_parameter,
            statuses: m
                .statuses
                .into_iter()
                .map(|s| StatusWordMapping { word: s.word, event: s.event, status: s.status })
                .collect(),
            default_event: m.default_event,
        }
    }
}

/// Another tracker's postback vocabulary, so an operator's backend can keep sending what it
/// sent before: parameters are translated into native ones (README, *Postbacks*, the dialects
/// table); native names keep working alongside.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
#[graphql(remote = "clickledger_domain::dialect::Dialect")]
pub enum PostbackDialect {
    /// Clickledger's own parameter names (the default).
    #[default]
    Clickledger,
    /// Keitaro: `subid`, `tid`, `payout`/`revenue`, `currency`, `status` (lead, sale, rejected,
    /// rebill).
    Keitaro,
    /// Voluum: `cid`, `txid`, `payout`, `et` (the event).
    Voluum,
    /// Everflow: `transaction_id`, `amount`, `adv1` (player), `adv2` (transaction),
    /// `event_id`.
    Everflow,
    /// HasOffers (TUNE): `transaction_id`, `adv_sub`, `amount`, `status`; answered in HasOffers'
    /// plain text (`success=true;`).
    #[graphql(name = "HASOFFERS")]
    HasOffers,
    /// Binom: `cnv_id`, `txid`, `payout`, `cnv_currency`, `cnv_status` (lead, sale, rejected,
    /// rebill).
    Binom,
    /// The key's own mapping (`customDialect`).
    Custom,
}

impl From<records::ApiKey> for ApiKey {
    fn from(k: records::ApiKey) -> Self {
        ApiKey {
            id: ID(k.id.to_string()),
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            postbacks_per_minute: k.postbacks_per_minute.and_then(|n| i32::try_from(n).ok()),
            signature_required: k.signature_required,
            signing_secret_created_at: k.signing_secret_created_at,
            dialect: k.dialect.into(),
            custom_dialect: k.custom_dialect.map(Into::into),
        }
    }
}
