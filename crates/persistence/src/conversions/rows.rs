//! The rows a new conversion is stored as, worked out before any write, so that one postback
//! (in its own savepoint) and a whole group commit (one multi-row insert per table) store
//! exactly the same thing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clickledger_domain::attribution::UnattributedReason;
use clickledger_domain::conversion::ConversionStatus;
use clickledger_domain::fraud::Verdict;
use clickledger_domain::ids::{AffiliateId, ConversionId, TenantId};
use clickledger_domain::money::Money;
use clickledger_domain::postback::Postback;
use sea_orm::ActiveValue::Set;
use sha2::{Digest, Sha256};

use super::attribution::Resolution;
use super::ingest::Prepared;
use super::{Conversion, ConversionEvent, EVENT_CREATED};
use crate::commission;
use crate::entities::{ExactDecimal, conversion_credits, conversion_history, conversions, events, players};

/// What ingest still needs of a new conversion once its rows are handed to the database.
#[derive(Clone, Copy)]
pub(super) struct Stored {
    pub id: ConversionId,
    pub attributed: bool,
}

/// A new conversion: its row, its credits, the player it binds and its first history line.
pub(super) struct NewConversion {
    pub stored: Stored,
    pub row: conversions::ActiveModel,
    pub credits: Vec<conversion_credits::ActiveModel>,
    pub player: Option<players::ActiveModel>,
    pub history: conversion_history::ActiveModel,
}

/// What identifies a postback's transaction, and the payload a repeat must match.
pub(super) struct Identity {
    pub dedupe_key: String,
    pub payload: String,
}

impl Identity {
    pub fn of(postback: &Postback) -> crate::Result<Identity> {
        let payload = serde_json::to_string(&postback.identity_fields())
            .map_err(|err| crate::Error::Database(sea_orm::DbErr::Custom(err.to_string())))?;
        Ok(Identity { dedupe_key: postback.dedupe_key(), payload })
    }
}

impl NewConversion {
    /// The rows of conversion `id`, judged `verdict` by the fraud rules.
    pub fn new(id: ConversionId, job: &Prepared, identity: Identity, verdict: &Verdict) -> NewConversion {
        let Prepared { tenant, postback, resolution, occurred_at, received_at, .. } = job;
        let (tenant, occurred_at, received_at) = (*tenant, *occurred_at, *received_at);
        let status = verdict.status(postback.status);
        let attributed = resolution.unattributed_reason.is_none() && !resolution.credits.is_empty();
        let row = conversions::ActiveModel {
            id: Set(id.uuid()),
            tenant_id: Set(tenant.uuid()),
            dedupe_key: Set(identity.dedupe_key),
            txn_id: Set(postback.txn_id.clone()),
            event: Set(postback.event.as_str().to_owned()),
            status: Set(status.as_str().to_owned()),
            amount: Set(postback.amount.map(|money| ExactDecimal::from(money.amount))),
            currency: Set(postback.currency().map(|currency| currency.code().to_owned())),
            lots: Set(postback.lots.map(ExactDecimal::from)),
            instrument: Set(postback.instrument.clone()),
            click_id: Set(postback.subject.click_id().map(str::to_owned)),
            player_id: Set(postback.subject.player_id().map(str::to_owned)),
            campaign_id: Set(resolution.campaign_id.map(|c| c.uuid())),
            original_conversion_id: Set(resolution.original_conversion_id.map(|c| c.uuid())),
            attributed: Set(attributed),
            unattributed_reason: Set(
                unattributed_reason(resolution, attributed).map(|r| r.as_str().to_owned())
            ),
            model: Set(resolution.model.clone()),
            model_version: Set(resolution.model_version.clone()),
            journey: Set(serde_json::to_string(&resolution.journey).unwrap_or_else(|_| "[]".into())),
            payload_hash: Set(hex::encode(Sha256::digest(identity.payload.as_bytes()))),
            payload: Set(identity.payload),
            occurred_at: Set(occurred_at),
            received_at: Set(received_at),
            updated_at: Set(received_at),
            risk: Set(i16::from(verdict.risk)),
            fraud_flags: Set(serde_json::to_string(&verdict.flags).unwrap_or_else(|_| "[]".into())),
            fraud_action: Set(verdict.action.map(|action| action.as_str().to_owned())),
            rejection_reason: Set(verdict.rejection_reason()),
            review_state: Set(None),
            reviewed_by: Set(None),
            reviewed_at: Set(None),
            review_note: Set(None),
        };
        let credits = if attributed {
            resolution
                .credits
                .iter()
                .enumerate()
                .map(|(position, credit)| conversion_credits::ActiveModel {
                    conversion_id: Set(id.uuid()),
                    affiliate_id: Set(credit.affiliate_id.uuid()),
                    tenant_id: Set(tenant.uuid()),
                    share: Set(credit.share.into()),
                    position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                })
                .collect()
        } else {
            Vec::new()
        };
        let player = match (postback.subject.player_id(), resolution.bind_player) {
            (Some(player), true) => Some(players::ActiveModel {
                tenant_id: Set(tenant.uuid()),
                player_id: Set(player.to_owned()),
                conversion_id: Set(id.uuid()),
                created_at: Set(received_at),
                cpa_paid_before_import: Set(false),
            }),
            _ => None,
        };
        let history = history_row(tenant, id, None, status, received_at);
        NewConversion { stored: Stored { id, attributed }, row, credits, player, history }
    }
}

fn unattributed_reason(resolution: &Resolution, attributed: bool) -> Option<UnattributedReason> {
    match (resolution.unattributed_reason, attributed) {
        (Some(reason), _) => Some(reason),
        (None, false) => Some(UnattributedReason::NoTouchpoints),
        (None, true) => None,
    }
}

pub(super) fn history_row(
    tenant: TenantId,
    id: ConversionId,
    from: Option<ConversionStatus>,
    to: ConversionStatus,
    at: DateTime<Utc>,
) -> conversion_history::ActiveModel {
    conversion_history::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(tenant.uuid()),
        conversion_id: Set(id.uuid()),
        from_status: Set(from.map(|s| s.as_str().to_owned())),
        to_status: Set(to.as_str().to_owned()),
        at: Set(at),
    }
}

pub(super) fn event_row(
    tenant: TenantId,
    seq: i64,
    id: ConversionId,
    kind: &str,
    status: ConversionStatus,
    at: DateTime<Utc>,
) -> events::ActiveModel {
    events::ActiveModel {
        tenant_id: Set(tenant.uuid()),
        seq: Set(seq),
        conversion_id: Set(id.uuid()),
        kind: Set(kind.to_owned()),
        status: Set(status.as_str().to_owned()),
        created_at: Set(at),
        flagged: Set(false),
    }
}

/// The `conversion.created` event of conversion `event`; flagged when a fraud rule flagged it.
pub(super) fn created_event_row(event: &ConversionEvent) -> events::ActiveModel {
    let conversion = &event.conversion;
    events::ActiveModel {
        flagged: Set(!conversion.fraud.flags.is_empty()),
        ..event_row(
            event.tenant_id,
            event.seq,
            conversion.id,
            EVENT_CREATED,
            conversion.status,
            event.created_at,
        )
    }
}

/// The `conversion.created` event for a conversion just stored.
#[allow(clippy::too_many_arguments)]
pub(super) fn created_event(
    tenant: TenantId,
    seq: i64,
    Stored { id, attributed }: Stored,
    postback: Postback,
    resolution: Resolution,
    commission: &HashMap<AffiliateId, Money>,
    (occurred_at, received_at): (DateTime<Utc>, DateTime<Utc>),
    fraud: Verdict,
) -> ConversionEvent {
    let (click_id, player_id) = (postback.subject.click_id(), postback.subject.player_id());
    let currency = postback.currency().map(|currency| currency.code().to_owned());
    let conversion = Conversion {
        id,
        tenant_id: tenant,
        event: postback.event,
        status: fraud.status(postback.status),
        txn_id: postback.txn_id,
        click_id: click_id.map(str::to_owned),
        player_id: player_id.map(str::to_owned),
        campaign_id: resolution.campaign_id,
        amount: postback.amount.map(|money| money.amount),
        currency,
        lots: postback.lots,
        instrument: postback.instrument,
        attributed,
        unattributed_reason: unattributed_reason(&resolution, attributed),
        model: resolution.model,
        model_version: resolution.model_version,
        occurred_at,
        received_at,
        credits: if attributed {
            commission::with_commission(resolution.credits, commission)
        } else {
            Vec::new()
        },
        journey: resolution.journey,
        fraud,
    };
    ConversionEvent {
        tenant_id: tenant,
        seq,
        kind: EVENT_CREATED.to_owned(),
        created_at: received_at,
        conversion,
    }
}
