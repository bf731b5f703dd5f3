//! Who gets credit for a postback: lifetime player binding first, then the click ID and the
//! visitor's journey under the campaign's model, or for a chargeback, the original's credits.
//! Whatever cannot be attributed comes back with a reason instead of an error: nothing is
//! dropped.

use chrono::{DateTime, Duration, Utc};
use clickledger_domain::attribution::{
    AttributionModel, AttributionParams, MarkovModel, Touchpoint, attribute,
};
use clickledger_domain::click_id::{ClickId, ClickSecret};
use clickledger_domain::conversion::EventKind;
use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, TenantId};
use clickledger_domain::postback::Postback;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::Credit;
use crate::entities::{conversion_credits, conversions, players};
use crate::tracking::ClickKeys;

/// What attribution needs about the tenant besides the database: its click-ID keys and, for
/// DATA_DRIVEN campaigns, its latest trained model.
#[derive(Clone)]
pub struct AttributionSetup {
    pub keys: ClickKeys,
    pub data_driven: Option<std::sync::Arc<TrainedModel>>,
}

/// A tenant's Markov model with the version recorded on the conversions it attributes.
pub struct TrainedModel {
    pub model: MarkovModel<AffiliateId>,
    pub version: String,
}
use crate::{Error, Result};

/// A click may appear to be slightly after the conversion because clocks differ.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// One click of a conversion's journey, as stored with the conversion.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Touch {
    pub click_id: String,
    pub affiliate_id: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone)]
pub struct Resolution {
    pub campaign_id: Option<CampaignId>,
    pub credits: Vec<Credit>,
    pub journey: Vec<Touch>,
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub unattributed_reason: Option<String>,
    pub original_conversion_id: Option<ConversionId>,
    /// Bind `player_id` to this conversion for life.
    pub bind_player: bool,
}

impl Resolution {
    fn unattributed(reason: &str) -> Self {
        Resolution { unattributed_reason: Some(reason.to_owned()), ..Default::default() }
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
    if let Some(player) = &postback.player_id
        && let Some(bound) = players::Entity::find()
            .filter(players::Column::TenantId.eq(tenant.uuid()))
            .filter(players::Column::PlayerId.eq(player.as_str()))
            .one(conn)
            .await?
    {
        return copy_credits(conn, tenant, ConversionId::from_uuid(bound.conversion_id), "LIFETIME").await;
    }
    let Some(raw_click) = &postback.click_id else {
        return Ok(Resolution::unattributed("unknown_player"));
    };
    let mut resolution = from_click(conn, tenant, setup, raw_click, occurred_at).await?;
    resolution.bind_player = postback.player_id.is_some() && resolution.unattributed_reason.is_none();
    Ok(resolution)
}

async fn from_click<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    setup: &AttributionSetup,
    raw: &str,
    occurred_at: DateTime<Utc>,
) -> Result<Resolution> {
    let unverified = match ClickId::peek(raw) {
        Ok(unverified) => unverified,
        Err(err) => return Ok(Resolution::unattributed(err.reason())),
    };
    let keys = &setup.keys;
    if unverified.tenant_tag() != keys.click_tag {
        // Minted for another tenant (or forged): either way not ours to credit.
        return Ok(Resolution::unattributed("forged_click_id"));
    }
    let Ok(secret) = ClickSecret::from_bytes(&keys.click_secret) else {
        return Err(clickledger_domain::Error::invalid("click_secret", "corrupted").into());
    };
    let click = match unverified.verify(&secret) {
        Ok(click) => click,
        Err(err) => return Ok(Resolution::unattributed(err.reason())),
    };
    let Some(found) = super::journey::link_and_journey(
        conn,
        tenant,
        i64::try_from(click.link_tag).unwrap_or(-1),
        raw,
        occurred_at + CLOCK_SKEW,
    )
    .await?
    else {
        return Ok(Resolution::unattributed("unknown_link"));
    };
    let (link_affiliate, campaign_uuid, lookback_days) =
        (found.link_affiliate, found.campaign, found.lookback_days);
    let lookback = Duration::days(i64::from(lookback_days));
    let campaign_id = CampaignId::from_uuid(campaign_uuid);
    if occurred_at - click.clicked_at > lookback {
        return Ok(Resolution {
            campaign_id: Some(campaign_id),
            ..Resolution::unattributed("click_expired")
        });
    }
    if click.clicked_at - occurred_at > CLOCK_SKEW {
        return Ok(Resolution {
            campaign_id: Some(campaign_id),
            ..Resolution::unattributed("click_after_conversion")
        });
    }

    let this_touch = Touch {
        click_id: raw.to_owned(),
        affiliate_id: AffiliateId::from_uuid(link_affiliate).to_string(),
        at: click.clicked_at,
    };
    let mut touches = Vec::new();
    let mut keys_by_touch = Vec::new();
    // The visitor's clicks on this campaign, newest first, found through this click's row.
    // The row may not be flushed yet (write-behind); then the journey is this click, which
    // the click ID itself fully describes. Only clicks within the lookback count; the newest
    // `journey::MAX_TOUCHES` up to the conversion were read, so those are exactly the ones that do.
    let earliest = occurred_at - lookback;
    for touch in found.touches.into_iter().rev().filter(|touch| touch.at >= earliest) {
        keys_by_touch.push(Touchpoint { key: AffiliateId::from_uuid(touch.affiliate), at: touch.at });
        touches.push(Touch {
            click_id: touch.click_id,
            affiliate_id: AffiliateId::from_uuid(touch.affiliate).to_string(),
            at: touch.at,
        });
    }
    if !touches.iter().any(|t| t.click_id == this_touch.click_id) {
        keys_by_touch.push(Touchpoint { key: AffiliateId::from_uuid(link_affiliate), at: this_touch.at });
        touches.push(this_touch);
    }

    let model = AttributionModel::parse(&found.model).unwrap_or_default();
    let outcome = attribute(
        model,
        &keys_by_touch,
        occurred_at.max(click.clicked_at),
        &AttributionParams::default(),
        setup.data_driven.as_deref().map(|trained| &trained.model),
    );
    let credits = outcome
        .credits
        .into_iter()
        .map(|c| Credit { affiliate_id: c.key, share: c.share, commission: None })
        .collect();
    // Rule-based models are fixed ("v1"); the data-driven one is versioned by its training.
    let model_version = match (outcome.fallback_reason, outcome.model_used, &setup.data_driven) {
        (Some(reason), _, _) => format!("v1 (fallback: {reason})"),
        (None, AttributionModel::DataDriven, Some(trained)) => trained.version.clone(),
        (None, _, _) => "v1".to_owned(),
    };
    Ok(Resolution {
        campaign_id: Some(campaign_id),
        credits,
        journey: touches,
        model: Some(outcome.model_used.as_str().to_owned()),
        model_version: Some(model_version),
        ..Default::default()
    })
}

async fn original_of_chargeback<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    postback: &Postback,
) -> Result<Resolution> {
    let Some(txn) = &postback.txn_id else {
        return Ok(Resolution::unattributed("unknown_original_transaction"));
    };
    let original = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::DedupeKey.eq(format!("txn:{txn}")))
        .one(conn)
        .await?;
    match original {
        Some(original) => {
            let mut resolution =
                copy_credits(conn, tenant, ConversionId::from_uuid(original.id), "REVERSAL").await?;
            resolution.original_conversion_id = Some(ConversionId::from_uuid(original.id));
            Ok(resolution)
        }
        None => Ok(Resolution::unattributed("unknown_original_transaction")),
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
            unattributed_reason: origin.unattributed_reason.clone().or(Some("origin_unattributed".into())),
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
            share: c.share.normalize(),
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
