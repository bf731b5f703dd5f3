//! The fast path of a group commit. Under load most postbacks of a batch are new
//! transactions that need nothing from their neighbours; those are stored with one multi-row
//! insert per table and one sequence reservation per tenant, instead of a dozen statements
//! each. Everything else (repeats, chargebacks, postbacks that depend on a neighbour) then
//! goes through the one-postback path in its own savepoint, in the same transaction.
//!
//! Any error here rolls the whole transaction back and the caller stores the batch one by
//! one, so this path only has to be right, not forgiving.

use std::collections::{BTreeMap, HashMap, HashSet};

use clickledger_domain::conversion::EventKind;
use clickledger_domain::ids::TenantId;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, TransactionTrait};
use uuid::Uuid;

use super::EVENT_CREATED;
use super::ingest::{
    IngestOutcome, Prepared, RECHECK_IN_TRANSACTION, advance_seq, bind_once, booking, in_savepoint,
};
use super::rows::{Identity, NewConversion, created_event, event_row};
use crate::commission;
use crate::entities::{conversion_credits, conversion_history, conversions, events, players};
use crate::{Db, Result};

/// Rows per multi-row insert: well under both databases' bound-parameter limits.
const ROWS_PER_INSERT: usize = 256;

pub(super) async fn commit(db: &Db, batch: &[Prepared]) -> Result<Vec<Result<IngestOutcome>>> {
    let txn = db.writer().begin().await?;
    let identities = batch.iter().map(|job| Identity::of(&job.postback)).collect::<Result<Vec<_>>>()?;
    let fresh = fresh_postbacks(&txn, batch, &identities).await?;

    // Sequence numbers, tenant by tenant in a fixed order (on PostgreSQL this takes the
    // tenants' row locks, so replicas always take them in the same order).
    let mut per_tenant: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (job, _) in batch.iter().zip(&fresh).filter(|(_, fresh)| **fresh) {
        *per_tenant.entry(job.tenant.uuid()).or_default() += 1;
    }
    let mut next_seq: HashMap<Uuid, i64> = HashMap::new();
    let mut zones: HashMap<Uuid, chrono_tz::Tz> = HashMap::new();
    for (&tenant, &count) in &per_tenant {
        let (last, zone) = advance_seq(&txn, TenantId::from_uuid(tenant), count).await?;
        next_seq.insert(tenant, last - count + 1);
        zones.insert(tenant, zone);
    }

    let mut stored = Vec::new();
    let mut news = Vec::new();
    for ((job, identity), _) in batch.iter().zip(identities).zip(&fresh).filter(|(_, fresh)| **fresh) {
        let new = NewConversion::new(
            job.tenant,
            &job.postback,
            &job.resolution,
            identity,
            job.occurred_at,
            job.received_at,
        );
        let seq = next_seq.entry(job.tenant.uuid()).or_default();
        stored.push((job, *seq, new.stored));
        news.push(new);
        *seq += 1;
    }
    insert_rows(&txn, news).await?;

    // Commission reads what earlier conversions of the same player booked, so it is worked
    // out conversion by conversion, in order; where no plan can apply there is nothing to book.
    let campaigns = stored.iter().filter_map(|(job, _, _)| job.resolution.campaign_id.map(|c| c.uuid()));
    let with_plans = if stored.is_empty() {
        HashSet::new()
    } else {
        commission::campaigns_with_plans(&txn, per_tenant.keys().copied(), campaigns).await?
    };
    let mut events = Vec::with_capacity(stored.len());
    for &(job, seq, conversion) in &stored {
        let commission = match job.resolution.campaign_id {
            Some(campaign) if with_plans.contains(&campaign.uuid()) => {
                let zone = zones.get(&job.tenant.uuid()).copied().unwrap_or(chrono_tz::Tz::UTC);
                let booked = booking(
                    conversion,
                    &job.postback,
                    &job.resolution,
                    (job.occurred_at, job.received_at),
                    zone,
                );
                commission::book_conversion(&txn, job.tenant, booked).await?
            }
            _ => HashMap::new(),
        };
        events.push(created_event(
            job.tenant,
            seq,
            conversion,
            job.postback.clone(),
            job.resolution.clone(),
            &commission,
            job.occurred_at,
            job.received_at,
        ));
    }
    let event_rows: Vec<_> = events
        .iter()
        .map(|e| {
            event_row(e.tenant_id, e.seq, e.conversion.id, EVENT_CREATED, e.conversion.status, e.created_at)
        })
        .collect();
    for chunk in in_chunks(event_rows) {
        events::Entity::insert_many(chunk).exec_without_returning(&txn).await?;
    }
    for (&tenant, &count) in &per_tenant {
        let first = next_seq.get(&tenant).copied().unwrap_or_default() - count;
        super::notify::notify(&txn, db.backend(), TenantId::from_uuid(tenant), first).await?;
    }

    // The rest, in arrival order, each in its own savepoint: they may depend on what was just
    // stored (a repeat of it, a deposit by the player it bound).
    let mut events = events.into_iter();
    let mut outcomes = Vec::with_capacity(batch.len());
    for (job, fresh) in batch.iter().zip(&fresh) {
        if *fresh {
            let event = events.next().ok_or(crate::Error::NotFound)?;
            outcomes.push(Ok(IngestOutcome::Created(event)));
        } else {
            outcomes.push(in_savepoint(&txn, db.backend(), job.clone()).await?);
        }
    }
    txn.commit().await?;
    Ok(outcomes)
}

/// Which postbacks are new transactions the fast path can store on their own: not stored
/// before, the first of their key in this batch, and not waiting on a neighbour.
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
                    .as_deref()
                    .is_some_and(|reason| RECHECK_IN_TRANSACTION.contains(&reason));
            !waits_on_neighbour && !known.contains(&key) && seen.insert(key)
        })
        .collect())
}

async fn insert_rows(txn: &DatabaseTransaction, news: Vec<NewConversion>) -> Result<()> {
    let (mut rows, mut credits, mut players, mut history) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for new in news {
        rows.push(new.row);
        credits.extend(new.credits);
        players.extend(new.player);
        history.push(new.history);
    }
    for chunk in in_chunks(rows) {
        conversions::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }
    for chunk in in_chunks(credits) {
        conversion_credits::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }
    for chunk in in_chunks(players) {
        players::Entity::insert_many(chunk).on_conflict(bind_once()).exec_without_returning(txn).await?;
    }
    for chunk in in_chunks(history) {
        conversion_history::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// `rows` in chunks of at most `ROWS_PER_INSERT`, moved rather than copied.
fn in_chunks<T>(rows: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.into_iter().peekable();
    std::iter::from_fn(move || rows.peek().is_some().then(|| rows.by_ref().take(ROWS_PER_INSERT).collect()))
}
