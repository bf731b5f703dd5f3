//! Who gets credit for a postback: lifetime player binding first, then the click ID and the
//! visitor's journey under the campaign's model, or for a chargeback, the original's credits.
//! This module loads the facts; `clickledger_domain::attribution::decision` decides. Whatever
//! cannot be attributed comes back with a reason instead of an error: nothing is dropped.

use chrono::{DateTime, Utc};
use clickledger_domain::attribution::{
    AttributionModel, ClickFacts, JourneyTouch, UnattributedReason, credit_from_click, journey_cutoff,
};
use clickledger_domain::click_id::{ClickId, ClickSecret};
use clickledger_domain::conversion::EventKind;
use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, TenantId};
use clickledger_domain::postback::{Postback, Subject};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::Credit;
use crate::entities::{conversion_credits, conversions, players};
use crate::tracking::ClickKeys;

pub use clickledger_domain::attribution::TrainedModel;

/// What attribution needs about the tenant besides the database: its click-ID keys and, for
/// DATA_DRIVEN campaigns, its latest trained model.
#[derive(Clone)]
pub struct AttributionSetup {
    pub keys: ClickKeys,
    pub data_driven: Option<std::sync::Arc<TrainedModel>>,
}

use crate::{Error, Result};

/// One click of a conversion's journey, as stored with the conversion.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Touch {
    pub click_id: String,
    pub affiliate_id: String,
    pub at: DateTime<Utc>,
}

impl From<JourneyTouch> for Touch {
    fn from(touch: JourneyTouch) -> Touch {
        Touch { click_id: touch.click_id, affiliate_id: touch.affiliate.to_string(), at: touch.at }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Resolution {
    pub campaign_id: Option<CampaignId>,
    pub credits: Vec<Credit>,
    pub journey: Vec<Touch>,
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub unattributed_reason: Option<UnattributedReason>,
    pub original_conversion_id: Option<ConversionId>,
    /// Bind the postback's player to this conversion for life.
    pub bind_player: bool,
    /// The stored row of the click the postback names, read with its journey (for the fraud
    /// rules and the rollups); `None` when it names none or its row was not written yet.
    pub(crate) click: Option<super::journey::ClickRow>,
}

impl Resolution {
    fn unattributed(reason: UnattributedReason) -> Self {
        Resolution { unattributed_reason: Some(reason), ..Default::default() }
    }
}

pub async fn resolve<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    setup: &AttributionSetup,
    postback: &Postback,
    occurred_at: DateTime<Utc>,
) -> Result<Resolution> {
    if postback.event == EventKind::Chargeback {
        return original_of_chargeback(conn, tenant, postback).await;
    }
    if let Some(player) = postback.subject.player_id()
        && let Some(bound) = players::Entity::find()
            .filter(players::Column::TenantId.eq(tenant.uuid()))
            .filter(players::Column::PlayerId.eq(player))
            .one(conn)
            .await?
    {
        return copy_credits(conn, tenant, ConversionId::from_uuid(bound.conversion_id), "LIFETIME").await;
    }
    let Subject::Click { click_id, player_id } = &postback.subject else {
        return Ok(Resolution::unattributed(UnattributedReason::UnknownPlayer));
    };
    let mut resolution = from_click(conn, tenant, setup, click_id, occurred_at).await?;
    resolution.bind_player = player_id.is_some() && resolution.unattributed_reason.is_none();
    Ok(resolution)
}

async fn from_click<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    setup: &AttributionSetup,
    raw: &str,
    occurred_at: DateTime<Utc>,
) -> Result<Resolution> {
    // A click ID that is not ours may be another tracker's, imported with the program.
    let unverified = match ClickId::peek(raw) {
        Ok(unverified) => unverified,
        Err(err) => return not_ours(conn, tenant, setup, raw, occurred_at, (&err).into()).await,
    };
    let keys = &setup.keys;
    if unverified.tenant_tag() != keys.click_tag {
        // Minted for another tenant (or forged): either way not ours to credit.
        return not_ours(conn, tenant, setup, raw, occurred_at, UnattributedReason::ForgedClickId).await;
    }
    let Ok(secret) = ClickSecret::from_bytes(&keys.click_secret) else {
        return Err(Error::Corrupt("the tenant's click secret".into()));
    };
    let click = match unverified.verify(&secret) {
        Ok(click) => click,
        Err(err) => return not_ours(conn, tenant, setup, raw, occurred_at, (&err).into()).await,
    };
    let Some(found) = super::journey::link_and_journey(
        conn,
        tenant,
        i64::try_from(click.link_tag).unwrap_or(-1),
        raw,
        journey_cutoff(occurred_at),
    )
    .await?
    else {
        return Ok(Resolution::unattributed(UnattributedReason::UnknownLink));
    };
    let model = campaign_model(found.campaign, &found.model)?;
    let facts = ClickFacts {
        click: JourneyTouch {
            click_id: raw.to_owned(),
            affiliate: AffiliateId::from_uuid(found.link_affiliate),
            at: click.clicked_at,
        },
        lookback_days: found.lookback_days,
        model,
        stored_journey: found
            .touches
            .into_iter()
            .map(|t| JourneyTouch {
                click_id: t.click_id,
                affiliate: AffiliateId::from_uuid(t.affiliate),
                at: t.at,
            })
            .collect(),
    };
    Ok(credited(facts, found.campaign, found.click, occurred_at, setup))
}

/// A click ID that is not this tenant's own: attributed through the click map of an import
/// when it is there (its link, its time, as a native click with no stored journey), else
/// unattributed for `reason`.
async fn not_ours<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    setup: &AttributionSetup,
    raw: &str,
    occurred_at: DateTime<Utc>,
    reason: UnattributedReason,
) -> Result<Resolution> {
    let Some(found) = super::imported_click::find(conn, tenant, raw).await? else {
        return Ok(Resolution::unattributed(reason));
    };
    let facts = ClickFacts {
        click: JourneyTouch {
            click_id: raw.to_owned(),
            affiliate: AffiliateId::from_uuid(found.link_affiliate),
            at: found.clicked_at,
        },
        lookback_days: found.lookback_days,
        model: campaign_model(found.campaign, &found.model)?,
        stored_journey: Vec::new(),
    };
    Ok(credited(facts, found.campaign, None, occurred_at, setup))
}

fn campaign_model(campaign: uuid::Uuid, model: &str) -> Result<AttributionModel> {
    AttributionModel::parse(model)
        .map_err(|_| Error::Corrupt(format!("campaign {campaign} has unknown model `{model}`")))
}

/// The resolution of a postback naming a known click of `campaign`, as its facts decide.
fn credited(
    facts: ClickFacts,
    campaign: uuid::Uuid,
    stored_click: Option<super::journey::ClickRow>,
    occurred_at: DateTime<Utc>,
    setup: &AttributionSetup,
) -> Resolution {
    let campaign_id = Some(CampaignId::from_uuid(campaign));
    match credit_from_click(facts, occurred_at, setup.data_driven.as_deref()) {
        Ok(credit) => Resolution {
            campaign_id,
            credits: credit
                .credits
                .into_iter()
                .map(|c| Credit { affiliate_id: c.key, share: c.share, commission: None })
                .collect(),
            journey: credit.journey.into_iter().map(Touch::from).collect(),
            model: Some(credit.model_used.as_str().to_owned()),
            model_version: Some(credit.model_version),
            click: stored_click,
            ..Default::default()
        },
        Err(reason) => Resolution { campaign_id, click: stored_click, ..Resolution::unattributed(reason) },
    }
}
/// The model a chargeback's credits name: copied from the transaction it reverses.
pub(super) const REVERSAL_MODEL: &str = "REVERSAL";

async fn original_of_chargeback<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    postback: &Postback,
) -> Result<Resolution> {
    let Some(txn) = &postback.txn_id else {
        return Ok(Resolution::unattributed(UnattributedReason::UnknownOriginalTransaction));
    };
    let original = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::DedupeKey.eq(format!("txn:{txn}")))
        .one(conn)
        .await?;
    match original {
        Some(original) => {
            let mut resolution =
                copy_credits(conn, tenant, ConversionId::from_uuid(original.id), REVERSAL_MODEL).await?;
            resolution.original_conversion_id = Some(ConversionId::from_uuid(original.id));
            Ok(resolution)
        }
        None => Ok(Resolution::unattributed(UnattributedReason::UnknownOriginalTransaction)),
    }
}

/// Reuses an earlier conversion's credits (lifetime binding, chargeback).
async fn copy_credits<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    source: ConversionId,
    model: &str,
) -> Result<Resolution> {
    let origin = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::Id.eq(source.uuid()))
        .one(conn)
        .await?
        .ok_or(Error::NotFound)?;
    if !origin.attributed {
        return Ok(Resolution {
            unattributed_reason: Some(match &origin.unattributed_reason {
                Some(reason) => reason.parse().map_err(|_| corrupt_reason(&origin))?,
                None => UnattributedReason::OriginUnattributed,
            }),
            ..Default::default()
        });
    }
    let credits = conversion_credits::Entity::find()
        .filter(conversion_credits::Column::TenantId.eq(tenant.uuid()))
        .filter(conversion_credits::Column::ConversionId.eq(source.uuid()))
        .order_by_asc(conversion_credits::Column::Position)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| Credit {
            affiliate_id: AffiliateId::from_uuid(c.affiliate_id),
            share: c.share.normalized(),
            commission: None,
        })
        .collect();
    Ok(Resolution {
        campaign_id: origin.campaign_id.map(CampaignId::from_uuid),
        credits,
        journey: Vec::new(),
        model: Some(model.to_owned()),
        model_version: Some(format!("from {source}")),
        ..Default::default()
    })
}

fn corrupt_reason(row: &conversions::Model) -> Error {
    Error::Corrupt(format!("conversion {} has an unknown unattributed reason", row.id))
}
