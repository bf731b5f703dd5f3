//! The one place a new conversion's effects are written: its row, credits and player binding,
//! its commission, its first history line, its event and the wake-up for other replicas, in
//! this order, for one conversion or a whole batch (one multi-row insert per table). The fraud
//! rules judge each conversion first, so its status and commission follow their verdict.
//! The reporting rollups follow the commission; then any chargeback stored before its
//! transaction is applied ([`super::late_chargeback`]). Whatever else must happen "in the conversion's
//! own transaction" goes here, so that no postback can be stored without it.

use std::collections::{BTreeMap, HashMap, HashSet};

use clickledger_domain::fraud::{Action, Verdict};
use clickledger_domain::ids::{ConversionId, TenantId};
use sea_orm::{DatabaseTransaction, EntityTrait};
use uuid::Uuid;

use super::ConversionEvent;
use super::affiliate_days::DayCounts;
use super::fraud;
use super::fraud_facts::StoredFacts;
use super::ingest::Prepared;
use super::late_chargeback;
use super::rows::{Identity, NewConversion, created_event, created_event_row};
use crate::commission;
use crate::entities::{conversion_credits, conversion_history, conversions, events, players};
use crate::ip_lists::IpLists;
use crate::{Backend, Result};

/// Rows per multi-row insert: well under both databases' bound-parameter limits.
const ROWS_PER_INSERT: usize = 256;

/// A new conversion to write: its postback and attribution, the transaction identity it is
/// stored under, its event's sequence number and the tenant's time zone (for commission).
pub(super) struct New<'a> {
    pub job: &'a Prepared,
    pub identity: Identity,
    pub seq: i64,
    pub zone: chrono_tz::Tz,
}

/// Writes the new conversions and returns the event announcing each, in the given order.
/// The caller reserved the sequence numbers; each tenant's must be consecutive, in order.
pub(super) async fn write_new(
    txn: &DatabaseTransaction,
    backend: Backend,
    lists: &IpLists,
    news: Vec<New<'_>>,
) -> Result<Vec<ConversionEvent>> {
    let mut stored = Vec::with_capacity(news.len());
    let mut rows = Vec::with_capacity(news.len());
    let tenants: Vec<TenantId> = news.iter().map(|new| new.job.tenant).collect();
    let settings = fraud::settings_of(txn, tenants).await?;
    let mut day_counts = DayCounts::default();
    let mut signals = fraud::BatchSignals::default();
    let jobs: Vec<&Prepared> = news.iter().map(|new| new.job).collect();
    let facts = StoredFacts::read(txn, &settings, &jobs).await?;
    for New { job, identity, seq, zone } in news {
        let id = ConversionId::new();
        // In batch order: a player's signals recorded here are seen by the next in the batch.
        let verdict = match settings.get(&job.tenant) {
            Some(settings) => fraud::judge_new(txn, settings, lists, &facts, &mut signals, id, job).await?,
            None => Verdict::default(),
        };
        day_counts.add(job, &verdict, fraud::click_to_conversion(job));
        let new = NewConversion::new(id, job, identity, &verdict);
        stored.push((job, seq, zone, new.stored, verdict));
        rows.push(new);
    }
    insert_rows(txn, rows).await?;
    signals.write(txn).await?;
    day_counts.write(txn).await?;

    // Commission reads what earlier conversions of the same player booked, so it is worked
    // out conversion by conversion, in order; where no plan can apply there is nothing to book.
    let tenants: HashSet<Uuid> = stored.iter().map(|(job, ..)| job.tenant.uuid()).collect();
    let campaigns: Vec<Uuid> =
        stored.iter().filter_map(|(job, ..)| job.resolution.campaign_id.map(|c| c.uuid())).collect();
    let with_plans = if campaigns.is_empty() {
        HashSet::new()
    } else {
        commission::campaigns_with_plans(txn, tenants, campaigns).await?
    };
    let mut created = Vec::with_capacity(stored.len());
    for &(job, seq, zone, conversion, ref verdict) in &stored {
        let rejected = verdict.action == Some(Action::Reject);
        let commission = match job.resolution.campaign_id {
            // A conversion a fraud rule rejected books nothing.
            Some(campaign) if with_plans.contains(&campaign.uuid()) && !rejected => {
                let booked = super::ingest::booking(
                    conversion,
                    &job.postback,
                    &job.resolution,
                    (job.occurred_at, job.received_at),
                    zone,
                    verdict.holds(),
                );
                commission::book_conversion(txn, job.tenant, booked).await?
            }
            _ => HashMap::new(),
        };
        created.push(created_event(
            job.tenant,
            seq,
            conversion,
            job.postback.clone(),
            job.resolution.clone(),
            &commission,
            (job.occurred_at, job.received_at),
            verdict.clone(),
        ));
    }

    let zones: crate::rollups::Zones = stored.iter().map(|(job, _, zone, ..)| (job.tenant, *zone)).collect();
    crate::rollups::record_conversion(txn, backend, &zones, &with_countries(&created, &stored)).await?;

    // A chargeback that arrived before its transaction applies now, after the transaction's
    // own commission is booked (it reverses that).
    let arrived = created
        .iter()
        .zip(&stored)
        .filter_map(|(event, (job, _, zone, ..))| {
            job.postback.chargeback_key().map(|chargeback_key| late_chargeback::Arrived {
                event,
                chargeback_key,
                received_at: job.received_at,
                zone: *zone,
            })
        })
        .collect();
    late_chargeback::apply_waiting(txn, backend, arrived).await?;

    let event_rows: Vec<_> = created.iter().map(created_event_row).collect();
    for chunk in in_chunks(event_rows) {
        events::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }
    // One wake-up per tenant, naming its first new event: listeners read everything after.
    let mut first_seq: BTreeMap<Uuid, i64> = BTreeMap::new();
    for event in &created {
        first_seq.entry(event.tenant_id.uuid()).or_insert(event.seq);
    }
    for (tenant, seq) in first_seq {
        super::notify::notify(
            txn,
            backend,
            TenantId::from_uuid(tenant),
            seq,
            super::notify::Publisher::Writer,
        )
        .await?;
    }
    Ok(created)
}

async fn insert_rows(txn: &DatabaseTransaction, news: Vec<NewConversion>) -> Result<()> {
    let (mut rows, mut credits, mut players, mut history) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for new in news {
        rows.push(new.row);
        credits.extend(new.credits);
        players.extend(new.player);
        history.push(new.history);
    }
    // Inserts skip RETURNING: nothing is read back, and on SQLite without it sea-orm would
    // follow each insert with a SELECT.
    for chunk in in_chunks(rows) {
        conversions::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await
            .map_err(crate::Error::from)
            .map_err(crate::Error::conflict_on("txn_id"))?;
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

/// A player is bound by the first conversion that binds it; later ones leave it alone.
fn bind_once() -> sea_orm::sea_query::OnConflict {
    sea_orm::sea_query::OnConflict::columns([players::Column::TenantId, players::Column::PlayerId])
        .do_nothing()
        .to_owned()
}

/// `rows` in chunks of at most `ROWS_PER_INSERT`, moved rather than copied.
fn in_chunks<T>(rows: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.into_iter().peekable();
    std::iter::from_fn(move || rows.peek().is_some().then(|| rows.by_ref().take(ROWS_PER_INSERT).collect()))
}

/// Each new conversion with the country its postback named and the click row attribution
/// read, for the reporting rollups.
fn with_countries<'a>(
    created: &'a [ConversionEvent],
    stored: &[(&'a Prepared, i64, chrono_tz::Tz, super::rows::Stored, Verdict)],
) -> Vec<(&'a ConversionEvent, Option<&'a str>, Option<&'a super::journey::ClickRow>)> {
    created
        .iter()
        .zip(stored)
        .map(|(event, (job, ..))| (event, job.postback.country.as_deref(), job.resolution.click.as_ref()))
        .collect()
}
