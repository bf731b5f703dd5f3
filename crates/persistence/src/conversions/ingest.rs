//! Postbacks are stored in group-committed transactions: dedupe on (tenant, transaction), attribute, store the
//! conversion with its credits and history, and append an event. The caller answers only after
//! the commit, so an acknowledged postback is durable.

use chrono::{DateTime, Utc};
use clickledger_domain::conversion::{ConversionStatus, StatusMove};
use clickledger_domain::ids::{ConversionId, TenantId};
use clickledger_domain::postback::Postback;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::attribution::{self, AttributionSetup, Resolution};
use super::read::load_conversion;
use super::{Conversion, ConversionEvent, EVENT_CREATED, EVENT_STATUS_CHANGED};
use crate::commission;
use crate::entities::{conversion_credits, conversion_history, conversions, events, players, tenants};
use crate::{Backend, Db, Error, Result};

#[derive(Debug)]
pub enum IngestOutcome {
    /// A new conversion, and the event announcing it.
    Created(ConversionEvent),
    /// A repeat of a known transaction with a forward status: the conversion was updated once.
    StatusChanged(ConversionEvent),
    /// An identical repeat: nothing changed.
    Duplicate(Conversion),
}

/// A postback with its attribution worked out. Attribution only reads append-only data
/// (clicks, links, earlier conversions), so it runs on the reader pool, concurrently, before
/// the postback joins the single writer's queue; the writer then does only the writes.
pub struct Prepared {
    tenant: TenantId,
    setup: AttributionSetup,
    postback: Postback,
    received_at: DateTime<Utc>,
    occurred_at: DateTime<Utc>,
    resolution: Resolution,
}

/// Reasons that may only mean "not committed yet" (a registration or the original deposit in
/// the same group commit): checked again inside the write transaction.
const RECHECK_IN_TRANSACTION: [&str; 2] = ["unknown_player", "unknown_original_transaction"];

pub async fn prepare(
    db: &Db,
    tenant: TenantId,
    setup: &AttributionSetup,
    postback: Postback,
    received_at: DateTime<Utc>,
) -> Result<Prepared> {
    let occurred_at = postback.occurred_at.unwrap_or(received_at);
    let resolution = attribution::resolve(db.reader(), tenant, setup, &postback, occurred_at).await?;
    Ok(Prepared { tenant, setup: setup.clone(), postback, received_at, occurred_at, resolution })
}

/// Group commit: one transaction (one fsync) for many postbacks, each isolated by its own
/// savepoint, so one failing postback does not fail its neighbours. The outer error is for
/// the commit itself: then none of them was stored.
pub async fn commit_batch(db: &Db, batch: Vec<Prepared>) -> Result<Vec<Result<IngestOutcome>>> {
    let outer = db.writer().begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = outer.begin().await?;
        let outcome = ingest_one(&savepoint, db.backend(), job).await;
        match &outcome {
            Ok(IngestOutcome::Created(_) | IngestOutcome::StatusChanged(_)) => savepoint.commit().await?,
            // Nothing to keep (a duplicate gives its sequence number back).
            Ok(IngestOutcome::Duplicate(_)) | Err(_) => savepoint.rollback().await?,
        }
        outcomes.push(outcome);
    }
    outer.commit().await?;
    Ok(outcomes)
}

/// One postback in its own transaction; for callers that do not batch.
pub async fn ingest(
    db: &Db,
    tenant: TenantId,
    setup: &AttributionSetup,
    postback: &Postback,
    received_at: DateTime<Utc>,
) -> Result<IngestOutcome> {
    let prepared = prepare(db, tenant, setup, postback.clone(), received_at).await?;
    commit_batch(db, vec![prepared]).await?.pop().unwrap_or(Err(Error::NotFound))
}

async fn ingest_one(txn: &DatabaseTransaction, backend: Backend, job: Prepared) -> Result<IngestOutcome> {
    let Prepared { tenant, setup, postback, received_at, occurred_at, mut resolution } = job;
    // Taking the next sequence number first locks the tenant row (PostgreSQL) for the rest of
    // the transaction, so concurrent postbacks of one tenant are serialised: two identical
    // ones cannot both miss the dedupe check, and events commit in sequence order.
    let seq = next_seq(txn, tenant).await?;
    let dedupe_key = postback.dedupe_key();
    let payload = serde_json::to_string(&postback.identity_fields())
        .map_err(|err| Error::Database(sea_orm::DbErr::Custom(err.to_string())))?;

    let existing = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::DedupeKey.eq(dedupe_key.as_str()))
        .one(txn)
        .await?;
    if let Some(existing) = existing {
        return repeat(txn, backend, tenant, seq, existing, &postback, &payload, received_at).await;
    }
    if resolution.unattributed_reason.as_deref().is_some_and(|r| RECHECK_IN_TRANSACTION.contains(&r)) {
        resolution = attribution::resolve(txn, tenant, &setup, &postback, occurred_at).await?;
    }

    let id = ConversionId::new();
    let attributed = store_conversion(
        txn,
        tenant,
        id,
        &postback,
        &resolution,
        dedupe_key,
        payload,
        occurred_at,
        received_at,
    )
    .await?;
    if resolution.bind_player
        && let Some(player) = &postback.player_id
    {
        players::Entity::insert(players::ActiveModel {
            tenant_id: Set(tenant.uuid()),
            player_id: Set(player.clone()),
            conversion_id: Set(id.uuid()),
            created_at: Set(received_at),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([players::Column::TenantId, players::Column::PlayerId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    }
    let booking = commission::Booking {
        conversion: id,
        postback: &postback,
        campaign: resolution.campaign_id,
        credits: if attributed { &resolution.credits } else { &[] },
        original: resolution.original_conversion_id,
        occurred_at,
        now: received_at,
    };
    let commission = commission::book_conversion(txn, tenant, booking).await?;
    record_history(txn, tenant, id, None, postback.status, received_at).await?;
    append_event(txn, tenant, seq, id, EVENT_CREATED, postback.status, received_at).await?;
    super::notify::notify(txn, backend, tenant, seq).await?;
    let conversion = Conversion {
        id,
        tenant_id: tenant,
        event: postback.event,
        status: postback.status,
        txn_id: postback.txn_id,
        click_id: postback.click_id,
        player_id: postback.player_id,
        campaign_id: resolution.campaign_id,
        amount: postback.amount,
        currency: postback.currency,
        lots: postback.lots,
        instrument: postback.instrument,
        attributed,
        unattributed_reason: if attributed {
            None
        } else {
            resolution.unattributed_reason.or(Some("no_touchpoints".into()))
        },
        model: resolution.model,
        model_version: resolution.model_version,
        occurred_at,
        received_at,
        credits: if attributed {
            commission::with_commission(resolution.credits, &commission)
        } else {
            Vec::new()
        },
        journey: resolution.journey,
    };
    Ok(IngestOutcome::Created(ConversionEvent {
        tenant_id: tenant,
        seq,
        kind: EVENT_CREATED.to_owned(),
        created_at: received_at,
        conversion,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn repeat(
    txn: &DatabaseTransaction,
    backend: Backend,
    tenant: TenantId,
    seq: i64,
    existing: conversions::Model,
    postback: &Postback,
    payload: &str,
    received_at: DateTime<Utc>,
) -> Result<IngestOutcome> {
    let id = ConversionId::from_uuid(existing.id);
    if existing.payload != payload {
        return Err(Error::Mismatch { fields: differing_fields(&existing.payload, payload) });
    }
    let current: ConversionStatus = existing.status.parse()?;
    match current.move_to(postback.status) {
        StatusMove::Unchanged => Ok(IngestOutcome::Duplicate(load_conversion(txn, tenant, id).await?)),
        StatusMove::Backward => {
            Err(Error::StatusBackward { from: current.as_str(), to: postback.status.as_str() })
        }
        StatusMove::Forward => {
            conversions::Entity::update_many()
                .col_expr(conversions::Column::Status, Expr::value(postback.status.as_str()))
                .col_expr(conversions::Column::UpdatedAt, Expr::value(received_at))
                .filter(conversions::Column::TenantId.eq(tenant.uuid()))
                .filter(conversions::Column::Id.eq(id.uuid()))
                .exec(txn)
                .await?;
            commission::on_status_change(txn, tenant, id, postback.status).await?;
            record_history(txn, tenant, id, Some(current), postback.status, received_at).await?;
            append_event(txn, tenant, seq, id, EVENT_STATUS_CHANGED, postback.status, received_at).await?;
            super::notify::notify(txn, backend, tenant, seq).await?;
            let conversion = load_conversion(txn, tenant, id).await?;
            Ok(IngestOutcome::StatusChanged(ConversionEvent {
                tenant_id: tenant,
                seq,
                kind: EVENT_STATUS_CHANGED.to_owned(),
                created_at: received_at,
                conversion,
            }))
        }
    }
}

fn differing_fields(stored: &str, presented: &str) -> Vec<String> {
    let parse = |raw: &str| {
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(raw).unwrap_or_default()
    };
    let (stored, presented) = (parse(stored), parse(presented));
    let mut names: Vec<String> = stored
        .keys()
        .chain(presented.keys())
        .filter(|k| stored.get(*k) != presented.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn next_seq<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<i64> {
    let updated = tenants::Entity::update_many()
        .col_expr(tenants::Column::EventSeq, Expr::col(tenants::Column::EventSeq).add(1))
        .filter(tenants::Column::Id.eq(tenant.uuid()))
        .exec_with_returning(conn)
        .await?;
    updated.first().map(|t| t.event_seq).ok_or(Error::NotFound)
}

#[allow(clippy::too_many_arguments)]
async fn store_conversion(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: ConversionId,
    postback: &Postback,
    resolution: &Resolution,
    dedupe_key: String,
    payload: String,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> Result<bool> {
    let attributed = resolution.unattributed_reason.is_none() && !resolution.credits.is_empty();
    // Inserts skip RETURNING: nothing is read back, and on SQLite without it sea-orm would
    // follow each insert with a SELECT.
    let conversion = conversions::ActiveModel {
        id: Set(id.uuid()),
        tenant_id: Set(tenant.uuid()),
        dedupe_key: Set(dedupe_key),
        txn_id: Set(postback.txn_id.clone()),
        event: Set(postback.event.as_str().to_owned()),
        status: Set(postback.status.as_str().to_owned()),
        amount: Set(postback.amount),
        currency: Set(postback.currency.clone()),
        lots: Set(postback.lots),
        instrument: Set(postback.instrument.clone()),
        click_id: Set(postback.click_id.clone()),
        player_id: Set(postback.player_id.clone()),
        campaign_id: Set(resolution.campaign_id.map(|c| c.uuid())),
        original_conversion_id: Set(resolution.original_conversion_id.map(|c| c.uuid())),
        attributed: Set(attributed),
        unattributed_reason: Set(match (&resolution.unattributed_reason, attributed) {
            (Some(reason), _) => Some(reason.clone()),
            (None, false) => Some("no_touchpoints".to_owned()),
            (None, true) => None,
        }),
        model: Set(resolution.model.clone()),
        model_version: Set(resolution.model_version.clone()),
        journey: Set(serde_json::to_string(&resolution.journey).unwrap_or_else(|_| "[]".into())),
        payload_hash: Set(hex::encode(Sha256::digest(payload.as_bytes()))),
        payload: Set(payload),
        occurred_at: Set(occurred_at),
        received_at: Set(received_at),
        updated_at: Set(received_at),
    };
    conversions::Entity::insert(conversion)
        .exec_without_returning(txn)
        .await
        .map_err(Error::from)
        .map_err(Error::conflict_on("txn_id"))?;
    if attributed {
        let rows =
            resolution.credits.iter().enumerate().map(|(position, credit)| conversion_credits::ActiveModel {
                conversion_id: Set(id.uuid()),
                affiliate_id: Set(credit.affiliate_id.uuid()),
                tenant_id: Set(tenant.uuid()),
                share: Set(credit.share),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            });
        conversion_credits::Entity::insert_many(rows).exec_without_returning(txn).await?;
    }
    Ok(attributed)
}

async fn record_history<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    id: ConversionId,
    from: Option<ConversionStatus>,
    to: ConversionStatus,
    at: DateTime<Utc>,
) -> Result<()> {
    let row = conversion_history::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(tenant.uuid()),
        conversion_id: Set(id.uuid()),
        from_status: Set(from.map(|s| s.as_str().to_owned())),
        to_status: Set(to.as_str().to_owned()),
        at: Set(at),
    };
    conversion_history::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

async fn append_event<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    seq: i64,
    id: ConversionId,
    kind: &str,
    status: ConversionStatus,
    at: DateTime<Utc>,
) -> Result<()> {
    let row = events::ActiveModel {
        tenant_id: Set(tenant.uuid()),
        seq: Set(seq),
        conversion_id: Set(id.uuid()),
        kind: Set(kind.to_owned()),
        status: Set(status.as_str().to_owned()),
        created_at: Set(at),
    };
    events::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}
