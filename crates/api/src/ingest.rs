//! Group commit for postbacks. Handlers prepare their postback (attribution, on the reader
//! pool) and queue it; a writer task takes everything queued, stores it in one transaction
//! (one fsync), then answers each handler. Under load batches grow by themselves; when idle a
//! batch is one postback, so nobody waits for a timer.
//!
//! The writer also publishes what it committed, in sequence order, before it answers: were
//! each handler to publish its own event, they would reach subscribers out of order, and a
//! subscriber that sees a gap has to read the database to fill it.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use clickledger_domain::ids::TenantId;
use clickledger_domain::postback::Postback;
use clickledger_persistence::conversions::{self, AttributionSetup, IngestOutcome, Prepared, commit_batch};
use clickledger_persistence::{Backend, Db, Error};
use tokio::sync::{mpsc, oneshot};

use crate::live::Live;
use crate::state::AppState;

/// The one way in for a tenant's parsed postback, whoever received it: attribution on the
/// reader pool, then the group commit. Returns once the outcome is committed and its event
/// (if any) published. `received` starts the receive → publish latency.
pub async fn ingest(
    state: &AppState,
    tenant: TenantId,
    postback: Postback,
    received_at: DateTime<Utc>,
    received: Instant,
) -> Result<IngestOutcome, crate::Error> {
    // A visitor may convert within milliseconds of a click still queued for writing: wait
    // for the clicks queued before this postback, so its journey is whole.
    if !state.clicks.written_up_to_now(CLICK_PATIENCE).await {
        metrics::counter!("postback_click_wait_timeouts_total").increment(1);
        tracing::warn!("clicks queued before a postback were not written within {CLICK_PATIENCE:?}");
    }
    let setup =
        AttributionSetup { keys: state.click_keys(tenant).await?, data_driven: state.models.get(tenant) };
    let prepared = conversions::prepare(&state.db, tenant, &setup, postback, received_at).await?;
    Ok(state.ingestor.submit(tenant, prepared, received).await?)
}

const QUEUE: usize = 16_384;
/// How long a postback waits for the clicks queued before it to be written.
const CLICK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);
const MAX_BATCH: usize = 512;
/// PostgreSQL takes several writers; each tenant always goes to the same one, so a tenant's
/// row lock (which orders its events) is never contended across writers.
const POSTGRES_WRITERS: usize = 4;

struct Job {
    prepared: Prepared,
    /// When the postback was received, for the receive → publish latency.
    received: Instant,
    reply: oneshot::Sender<Result<IngestOutcome, Error>>,
}

pub struct Ingestor {
    writers: Vec<mpsc::Sender<Job>>,
}

impl Ingestor {
    pub fn start(db: Db, live: Arc<Live>) -> Ingestor {
        let count = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_WRITERS,
        };
        let writers = (0..count)
            .map(|n| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let writer = write(db.clone(), live.clone(), rx);
                // A thread of its own: on the shared runtime every statement's completion
                // waited for a worker busy with hundreds of HTTP tasks, and the batch's
                // statements run one after another.
                let spawned = std::thread::Builder::new().name(format!("ingest-{n}")).spawn(move || {
                    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime.block_on(writer),
                        Err(err) => tracing::error!(error = %err, "cannot start the postback writer"),
                    }
                });
                if let Err(err) = spawned {
                    tracing::error!(error = %err, "cannot start the postback writer thread");
                }
                tx
            })
            .collect();
        Ingestor { writers }
    }

    /// Stores the postback; returns once its transaction has committed and its event (if
    /// any) has been published.
    pub async fn submit(
        &self,
        tenant: TenantId,
        prepared: Prepared,
        received: Instant,
    ) -> Result<IngestOutcome, Error> {
        let shard = (tenant.uuid().as_u128() % self.writers.len() as u128) as usize;
        let (reply, answer) = oneshot::channel();
        self.writers[shard].send(Job { prepared, received, reply }).await.map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }
}

fn unavailable() -> Error {
    Error::Database(sea_orm_error("the postback writer has stopped"))
}

fn sea_orm_error(message: &str) -> clickledger_persistence::DbErr {
    clickledger_persistence::DbErr::Custom(message.to_owned())
}

async fn write(db: Db, live: Arc<Live>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let mut prepared = Vec::with_capacity(jobs.len());
        let mut waiting = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            prepared.push(job.prepared);
            waiting.push((job.received, job.reply));
        }
        metrics::histogram!("postback_batch_size").record(prepared.len() as f64);
        match commit_batch(&db, prepared).await {
            Ok(outcomes) => {
                publish_in_order(&live, &outcomes, &waiting);
                for ((_, reply), outcome) in waiting.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "group commit failed; the batch's postbacks were not stored");
                for (_, reply) in waiting {
                    // Each handler answers as the batch failed: unavailable stays unavailable.
                    let copy = match &err {
                        Error::Unavailable(detail) => Error::Unavailable(detail.clone()),
                        other => Error::Database(sea_orm_error(&other.to_string())),
                    };
                    let _ = reply.send(Err(copy));
                }
            }
        }
    }
}

type Waiting = (Instant, oneshot::Sender<Result<IngestOutcome, Error>>);

fn publish_in_order(live: &Live, outcomes: &[Result<IngestOutcome, Error>], waiting: &[Waiting]) {
    let mut events: Vec<_> = outcomes
        .iter()
        .zip(waiting)
        .filter_map(|(outcome, (received, _))| match outcome {
            Ok(IngestOutcome::Created(event) | IngestOutcome::StatusChanged(event)) => {
                Some((event, *received))
            }
            _ => None,
        })
        .collect();
    events.sort_by_key(|(event, _)| (event.tenant_id.uuid(), event.seq));
    for (event, received) in events {
        live.published_locally(event.clone(), received);
    }
}
