//! Postbacks are stored in group-committed transactions: dedupe on (tenant, transaction), attribute, store the
//! conversion with its credits and history, and append an event. The caller answers only after
//! the commit, so an acknowledged postback is durable.

use chrono::{DateTime, Utc};
use clickledger_domain::conversion::{ConversionStatus, StatusMove};
use clickledger_domain::ids::{ConversionId, TenantId};
use clickledger_domain::postback::Postback;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
};

use super::attribution::{self, AttributionSetup, Resolution};
use super::read::load_conversion;
use super::rows::{Identity, NewConversion, Stored, created_event, event_row, history_row};
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
#[derive(Clone)]
pub struct Prepared {
    pub(super) tenant: TenantId,
    pub(super) setup: AttributionSetup,
    pub(super) postback: Postback,
    pub(super) received_at: DateTime<Utc>,
    pub(super) occurred_at: DateTime<Utc>,
    pub(super) resolution: Resolution,
}

/// Reasons that may only mean "not committed yet" (a registration or the original deposit in
/// the same group commit): checked again inside the write transaction.
pub(super) const RECHECK_IN_TRANSACTION: [&str; 2] = ["unknown_player", "unknown_original_transaction"];

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

/// Group commit: one transaction (one fsync) for many postbacks. New transactions are stored
/// with one multi-row insert per table (`grouped`); if that fails for any reason the batch is
/// stored again one postback per savepoint, so one failing postback does not fail its
/// neighbours. The outer error is for the commit itself: then none of them was stored.
pub async fn commit_batch(db: &Db, batch: Vec<Prepared>) -> Result<Vec<Result<IngestOutcome>>> {
    if batch.len() > 1 {
        match super::grouped::commit(db, &batch).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(err) => tracing::debug!(error = %err, "grouped commit failed; storing one by one"),
        }
    }
    commit_one_by_one(db, batch).await
}

async fn commit_one_by_one(db: &Db, batch: Vec<Prepared>) -> Result<Vec<Result<IngestOutcome>>> {
    let outer = db.writer().begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        outcomes.push(in_savepoint(&outer, db.backend(), job).await?);
    }
    outer.commit().await?;
    Ok(outcomes)
}

/// One postback in a savepoint of `outer`: kept if it stored something, rolled back otherwise.
/// The outer error is for the savepoint itself, which leaves `outer` unusable.
pub(super) async fn in_savepoint(
    outer: &DatabaseTransaction,
    backend: Backend,
    job: Prepared,
) -> Result<Result<IngestOutcome>> {
    let savepoint = outer.begin().await?;
    let outcome = ingest_one(&savepoint, backend, job).await;
    match &outcome {
        Ok(IngestOutcome::Created(_) | IngestOutcome::StatusChanged(_)) => savepoint.commit().await?,
        // Nothing to keep (a duplicate gives its sequence number back).
        Ok(IngestOutcome::Duplicate(_)) | Err(_) => savepoint.rollback().await?,
    }
    Ok(outcome)
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
    let (seq, zone) = advance_seq(txn, tenant, 1).await?;
    let identity = Identity::of(&postback)?;

    let existing = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::DedupeKey.eq(identity.dedupe_key.as_str()))
        .one(txn)
        .await?;
    if let Some(existing) = existing {
        return repeat(txn, backend, tenant, seq, existing, &postback, &identity.payload, received_at).await;
    }
    if resolution.unattributed_reason.as_deref().is_some_and(|r| RECHECK_IN_TRANSACTION.contains(&r)) {
        resolution = attribution::resolve(txn, tenant, &setup, &postback, occurred_at).await?;
    }

    let NewConversion { stored, row, credits, player, history } =
        NewConversion::new(tenant, &postback, &resolution, identity, occurred_at, received_at);
    // Inserts skip RETURNING: nothing is read back, and on SQLite without it sea-orm would
    // follow each insert with a SELECT.
    conversions::Entity::insert(row)
        .exec_without_returning(txn)
        .await
        .map_err(Error::from)
        .map_err(Error::conflict_on("txn_id"))?;
    if !credits.is_empty() {
        conversion_credits::Entity::insert_many(credits).exec_without_returning(txn).await?;
    }
    if let Some(player) = player {
        players::Entity::insert(player).on_conflict(bind_once()).exec_without_returning(txn).await?;
    }
    let commission = commission::book_conversion(
        txn,
        tenant,
        booking(stored, &postback, &resolution, (occurred_at, received_at), zone),
    )
    .await?;
    conversion_history::Entity::insert(history).exec_without_returning(txn).await?;
    events::Entity::insert(event_row(tenant, seq, stored.id, EVENT_CREATED, postback.status, received_at))
        .exec_without_returning(txn)
        .await?;
    super::notify::notify(txn, backend, tenant, seq).await?;
    Ok(IngestOutcome::Created(created_event(
        tenant,
        seq,
        stored,
        postback,
        resolution,
        &commission,
        occurred_at,
        received_at,
    )))
}

/// A player is bound by the first conversion that binds it; later ones leave it alone.
pub(super) fn bind_once() -> OnConflict {
    OnConflict::columns([players::Column::TenantId, players::Column::PlayerId]).do_nothing().to_owned()
}

pub(super) fn booking<'a>(
    stored: Stored,
    postback: &'a Postback,
    resolution: &'a Resolution,
    (occurred_at, received_at): (DateTime<Utc>, DateTime<Utc>),
    zone: chrono_tz::Tz,
) -> commission::Booking<'a> {
    commission::Booking {
        conversion: stored.id,
        postback,
        campaign: resolution.campaign_id,
        credits: if stored.attributed { &resolution.credits } else { &[] },
        original: resolution.original_conversion_id,
        occurred_at,
        now: received_at,
        zone,
    }
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
            conversion_history::Entity::insert(history_row(
                tenant,
                id,
                Some(current),
                postback.status,
                received_at,
            ))
            .exec_without_returning(txn)
            .await?;
            events::Entity::insert(event_row(
                tenant,
                seq,
                id,
                EVENT_STATUS_CHANGED,
                postback.status,
                received_at,
            ))
            .exec_without_returning(txn)
            .await?;
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

/// Reserves `count` sequence numbers for the tenant's next events and returns the last one;
/// on PostgreSQL this also locks the tenant row until the transaction ends.
/// The tenant's time zone comes back with it, for booking commission.
pub(super) async fn advance_seq<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    count: i64,
) -> Result<(i64, chrono_tz::Tz)> {
    let updated = tenants::Entity::update_many()
        .col_expr(tenants::Column::EventSeq, Expr::col(tenants::Column::EventSeq).add(count))
        .filter(tenants::Column::Id.eq(tenant.uuid()))
        .exec_with_returning(conn)
        .await?;
    let tenant = updated.first().ok_or(Error::NotFound)?;
    Ok((tenant.event_seq, clickledger_domain::validate::time_zone(&tenant.time_zone, "time_zone")?))
}
