//! Group commit for postbacks. Handlers prepare their postback (attribution, on the reader
//! pool) and queue it; a writer task takes everything queued, stores it in one transaction
//! (one fsync), then answers each handler. Under load batches grow by themselves; when idle a
//! batch is one postback, so nobody waits for a timer.

use clickledger_domain::ids::TenantId;
use clickledger_persistence::conversions::{IngestOutcome, Prepared, commit_batch};
use clickledger_persistence::{Backend, Db, Error};
use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 16_384;
const MAX_BATCH: usize = 512;
/// PostgreSQL takes several writers; each tenant always goes to the same one, so a tenant's
/// row lock (which orders its events) is never contended across writers.
const POSTGRES_WRITERS: usize = 4;

struct Job {
    prepared: Prepared,
    reply: oneshot::Sender<Result<IngestOutcome, Error>>,
}

pub struct Ingestor {
    writers: Vec<mpsc::Sender<Job>>,
}

impl Ingestor {
    pub fn start(db: Db) -> Ingestor {
        let count = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_WRITERS,
        };
        let writers = (0..count)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(write(db.clone(), rx));
                tx
            })
            .collect();
        Ingestor { writers }
    }

    /// Stores the postback; returns once its transaction has committed.
    pub async fn submit(&self, tenant: TenantId, prepared: Prepared) -> Result<IngestOutcome, Error> {
        let shard = (tenant.uuid().as_u128() % self.writers.len() as u128) as usize;
        let (reply, answer) = oneshot::channel();
        self.writers[shard].send(Job { prepared, reply }).await.map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }
}

fn unavailable() -> Error {
    Error::Database(sea_orm_error("the postback writer has stopped"))
}

fn sea_orm_error(message: &str) -> clickledger_persistence::DbErr {
    clickledger_persistence::DbErr::Custom(message.to_owned())
}

async fn write(db: Db, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (prepared, replies): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|job| (job.prepared, job.reply)).unzip();
        metrics::histogram!("postback_batch_size").record(prepared.len() as f64);
        match commit_batch(&db, prepared).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "group commit failed; the batch's postbacks were not stored");
                let message = err.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Database(sea_orm_error(&message))));
                }
            }
        }
    }
}
