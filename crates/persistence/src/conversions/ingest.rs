//! Postbacks are stored in group-committed transactions: dedupe on (tenant, transaction),
//! attribute, then either write a new conversion ([`super::write`]) or apply a repeat. The
//! caller answers only after the commit, so an acknowledged postback is durable.

use chrono::{DateTime, Utc};
use clickledger_domain::attribution::UnattributedReason;
use clickledger_domain::conversion::{ConversionStatus, StatusMove};
use clickledger_domain::ids::{ConversionId, TenantId};
use clickledger_domain::postback::Postback;
use std::collections::{BTreeMap, HashMap, HashSet};

use clickledger_domain::conversion::EventKind;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::attribution::{self, AttributionSetup, Resolution};
use super::read::load_conversion;
use super::rows::{Identity, Stored, event_row, history_row};
use super::write::{New, write_new};
use super::{Conversion, ConversionEvent, EVENT_STATUS_CHANGED};
use crate::commission;
use crate::entities::{conversion_history, conversions, events, tenants};
use crate::ip_lists::IpLists;
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

/// Group commit: one transaction (one fsync) for a batch of postbacks; a single postback is a
/// batch of one. New transactions that need nothing from their neighbours are written
/// together ([`super::write::write_new`]); the rest (repeats, chargebacks, postbacks that may
/// depend on a neighbour) then go one by one, each in a savepoint, in arrival order. If the
/// batch fails as a whole (say, a replica stored the same transaction meanwhile), it is stored
/// again one postback per savepoint, so one failing postback does not fail its neighbours.
/// The outer error is for the commit itself: then none of them was stored.
///
/// The caller publishes the events of the outcomes to this process's live feeds: other
/// replicas hear of them from PostgreSQL, this process's listener skips them.
pub async fn commit_batch(db: &Db, batch: Vec<Prepared>) -> Result<Vec<Result<IngestOutcome>>> {
    let txn = db.writer().begin().await?;
    let lists = crate::ip_lists::current(db.ip_lists(), &txn).await?;
    match commit_together(&txn, db.backend(), &lists, &batch).await {
        Ok(outcomes) => {
            txn.commit().await?;
            return Ok(outcomes);
        }
        // The database is out of reach: one by one would only wait for it again.
        Err(err @ Error::Unavailable(_)) => return Err(err),
        Err(err) => {
            tracing::debug!(error = %err, "batch failed as a whole; storing one by one");
            txn.rollback().await?;
        }
    }
    let txn = db.writer().begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in &batch {
        outcomes.push(in_savepoint(&txn, db.backend(), &lists, job).await?);
    }
    txn.commit().await?;
    Ok(outcomes)
}

async fn commit_together(
    txn: &DatabaseTransaction,
    backend: Backend,
    lists: &IpLists,
    batch: &[Prepared],
) -> Result<Vec<Result<IngestOutcome>>> {
    let identities = batch.iter().map(|job| Identity::of(&job.postback)).collect::<Result<Vec<_>>>()?;
    let fresh = fresh_postbacks(txn, batch, &identities).await?;

    // Sequence numbers, tenant by tenant in a fixed order (on PostgreSQL this takes the
    // tenants' row locks, so replicas always take them in the same order).
    let mut per_tenant: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (job, _) in batch.iter().zip(&fresh).filter(|(_, fresh)| **fresh) {
        *per_tenant.entry(job.tenant.uuid()).or_default() += 1;
    }
    let mut next: HashMap<Uuid, (i64, chrono_tz::Tz)> = HashMap::new();
    for (&tenant, &count) in &per_tenant {
        let (last, zone) = advance_seq(txn, TenantId::from_uuid(tenant), count).await?;
        next.insert(tenant, (last - count + 1, zone));
    }
    let mut news = Vec::new();
    for ((job, identity), _) in batch.iter().zip(identities).zip(&fresh).filter(|(_, fresh)| **fresh) {
        let (seq, zone) = next.entry(job.tenant.uuid()).or_insert((0, chrono_tz::Tz::UTC));
        news.push(New { job, identity, seq: *seq, zone: *zone });
        *seq += 1;
    }
    let mut created = write_new(txn, backend, lists, news).await?.into_iter();

    let mut outcomes = Vec::with_capacity(batch.len());
    for (job, fresh) in batch.iter().zip(&fresh) {
        if *fresh {
            let event = created.next().ok_or(Error::NotFound)?;
            outcomes.push(Ok(IngestOutcome::Created(event)));
        } else {
            outcomes.push(in_savepoint(txn, backend, lists, job).await?);
        }
    }
    Ok(outcomes)
}

/// Which postbacks are new transactions that can be written together: not stored before,
/// the first of their key in this batch, and not waiting on a neighbour.
async fn fresh_postbacks(
    txn: &DatabaseTransaction,
    batch: &[Prepared],
    identities: &[Identity],
) -> Result<Vec<bool>> {
    let tenants: HashSet<Uuid> = batch.iter().map(|job| job.tenant.uuid()).collect();
    let keys: Vec<&str> = identities.iter().map(|identity| identity.dedupe_key.as_str()).collect();
    let known: HashSet<(Uuid, String)> = conversions::Entity::find()
        .select_only()
        .column(conversions::Column::TenantId)
        .column(conversions::Column::DedupeKey)
        .filter(conversions::Column::TenantId.is_in(tenants))
        .filter(conversions::Column::DedupeKey.is_in(keys))
        .into_tuple::<(Uuid, String)>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    Ok(batch
        .iter()
        .zip(identities)
        .map(|(job, identity)| {
            let key = (job.tenant.uuid(), identity.dedupe_key.clone());
            let waits_on_neighbour = job.postback.event == EventKind::Chargeback
                || job
                    .resolution
                    .unattributed_reason
                    .is_some_and(UnattributedReason::may_resolve_in_transaction);
            !waits_on_neighbour && !known.contains(&key) && seen.insert(key)
        })
        .collect())
}

/// One postback in a savepoint of `outer`: kept if it stored something, rolled back otherwise.
/// The outer error is for the savepoint itself, which leaves `outer` unusable.
async fn in_savepoint(
    outer: &DatabaseTransaction,
    backend: Backend,
    lists: &IpLists,
    job: &Prepared,
) -> Result<Result<IngestOutcome>> {
    let savepoint = outer.begin().await?;
    let outcome = ingest_one(&savepoint, backend, lists, job).await;
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

/// A postback that may depend on what was just stored: a repeat of a known transaction, or a
/// new one whose attribution is worked out again inside the transaction.
async fn ingest_one(
    txn: &DatabaseTransaction,
    backend: Backend,
    lists: &IpLists,
    job: &Prepared,
) -> Result<IngestOutcome> {
    // Taking the next sequence number first locks the tenant row (PostgreSQL) for the rest of
    // the transaction, so concurrent postbacks of one tenant are serialised: two identical
    // ones cannot both miss the dedupe check, and events commit in sequence order.
    let (seq, zone) = advance_seq(txn, job.tenant, 1).await?;
    let identity = Identity::of(&job.postback)?;
    let existing = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(job.tenant.uuid()))
        .filter(conversions::Column::DedupeKey.eq(identity.dedupe_key.as_str()))
        .one(txn)
        .await?;
    if let Some(existing) = existing {
        let payload = &identity.payload;
        return repeat(txn, backend, job.tenant, seq, existing, &job.postback, payload, job.received_at)
            .await;
    }
    let recheck =
        job.resolution.unattributed_reason.is_some_and(UnattributedReason::may_resolve_in_transaction);
    let resolved;
    let job = if recheck {
        let resolution =
            attribution::resolve(txn, job.tenant, &job.setup, &job.postback, job.occurred_at).await?;
        resolved = Prepared { resolution, ..job.clone() };
        &resolved
    } else {
        job
    };
    let mut created = write_new(txn, backend, lists, vec![New { job, identity, seq, zone }]).await?;
    created.pop().map(IngestOutcome::Created).ok_or(Error::NotFound)
}

pub(super) fn booking<'a>(
    stored: Stored,
    postback: &'a Postback,
    resolution: &'a Resolution,
    (occurred_at, received_at): (DateTime<Utc>, DateTime<Utc>),
    zone: chrono_tz::Tz,
    hold: bool,
) -> commission::Booking<'a> {
    commission::Booking {
        hold,
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
    // A transaction imported from the old tracker's history was stored from its export, not
    // from a postback: its payload never matches one byte for byte. A postback of it (the
    // operator replaying old transactions at the switch) is the same transaction, so only its
    // status is compared, as for any repeat.
    let imported = existing.model.as_deref() == Some(crate::import::IMPORTED_MODEL);
    if existing.payload != payload && !imported {
        return Err(Error::Mismatch { fields: differing_fields(&existing.payload, payload) });
    }
    let current: ConversionStatus = existing.status.parse()?;
    match current.move_to(postback.status) {
        StatusMove::Unchanged => Ok(IngestOutcome::Duplicate(load_conversion(txn, tenant, id).await?)),
        StatusMove::Backward => {
            Err(Error::StatusBackward { from: current.as_str(), to: postback.status.as_str() })
        }
        StatusMove::Forward => {
            let before = load_conversion(txn, tenant, id).await?;
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
            super::notify::notify(txn, backend, tenant, seq, super::notify::Publisher::Writer).await?;
            let conversion = load_conversion(txn, tenant, id).await?;
            crate::rollups::record_status_change(
                txn,
                backend,
                &before,
                &conversion,
                postback.country.as_deref(),
            )
            .await?;
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
