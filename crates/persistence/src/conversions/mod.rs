//! Conversions: ingesting postbacks (dedupe, attribution, event append, all in one
//! transaction) and reading them back, tenant- and viewer-scoped.

mod affiliate_days;
mod attribution;
mod bonus_only;
mod fraud;
mod fraud_facts;
mod imported_click;
mod ingest;
mod journey;
mod late_chargeback;
mod promo;
mod read;
mod review;
mod rows;
mod training;
mod write;

use chrono::{DateTime, Utc};
use clickledger_domain::attribution::UnattributedReason;
use clickledger_domain::conversion::{ConversionStatus, EventKind};
use clickledger_domain::fraud::Verdict;
use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, TenantId};
use clickledger_domain::money::Money;
use rust_decimal::Decimal;

pub(crate) use affiliate_days::{CONVERSIONS, FLAGGED, RULE_PREFIX};
pub use attribution::{AttributionSetup, Touch, TrainedModel};
pub(crate) use bonus_only::flag_in_period as flag_bonus_only;
pub use ingest::{IngestOutcome, Prepared, commit_batch, ingest, prepare};
pub(crate) use journey::ClickRow;
pub(crate) use read::load_conversion;
pub use read::{Conversions, events_after, flagged_created_after};
pub use review::{Review, ReviewFilter, ReviewRecord, Reviewed};
pub use training::{for_each_training_journey, tenants_with_data_driven_campaigns};

/// One affiliate's credit for a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub affiliate_id: AffiliateId,
    /// Share of the conversion, exact, in [0, 1]; a conversion's shares sum to exactly 1.
    pub share: Decimal,
    /// What this credit earned (tier 0, in the plan's currency); `None` when no plan paid.
    pub commission: Option<Money>,
}

#[derive(Debug, Clone)]
pub struct Conversion {
    pub id: ConversionId,
    pub tenant_id: TenantId,
    pub event: EventKind,
    pub status: ConversionStatus,
    pub txn_id: Option<String>,
    pub click_id: Option<String>,
    pub player_id: Option<String>,
    pub campaign_id: Option<CampaignId>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub lots: Option<Decimal>,
    pub instrument: Option<String>,
    pub attributed: bool,
    /// Why nothing was credited.
    pub unattributed_reason: Option<UnattributedReason>,
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub credits: Vec<Credit>,
    /// The clicks considered, oldest first (staff only: it names other affiliates).
    pub journey: Vec<Touch>,
    /// The fraud rules' verdict (staff only: its evidence is about players).
    pub fraud: Verdict,
}

impl Conversion {
    /// The same conversion as one affiliate may see it: only its own credit.
    pub fn for_affiliate(mut self, affiliate: AffiliateId) -> Option<Conversion> {
        self.credits.retain(|credit| credit.affiliate_id == affiliate);
        if self.credits.is_empty() {
            return None;
        }
        self.player_id = None;
        self.journey.clear();
        self.fraud = Verdict::default();
        Some(self)
    }
}

/// An entry of the tenant's event log: what happened to a conversion, in order.
#[derive(Debug, Clone)]
pub struct ConversionEvent {
    pub tenant_id: TenantId,
    /// Per-tenant, strictly increasing.
    pub seq: i64,
    /// `conversion.created` or `conversion.status_changed`.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// The conversion as of this event (its status is the event's status).
    pub conversion: Conversion,
}

pub const EVENT_CREATED: &str = "conversion.created";
pub const EVENT_STATUS_CHANGED: &str = "conversion.status_changed";

mod notify;
pub use notify::{EventListener, NewEvents};
