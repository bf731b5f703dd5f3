//! Write-behind for clicks: the redirect hands its click to a bounded queue and answers; a
//! single task commits queued clicks in batches (one transaction, one fsync, for up to
//! `MAX_BATCH` clicks). A full queue makes redirects wait (back-pressure) rather than grow
//! memory, and shutdown drains the queue before exiting.

use std::time::Duration;

use clickledger_persistence::Db;
use clickledger_persistence::tracking::{NewClick, insert_clicks};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

const QUEUE: usize = 50_000;
const MAX_BATCH: usize = 2_000;
/// How long the writer waits for more clicks once it has some: trades a few ms of latency
/// (nobody waits on it) for far fewer commits.
const LINGER: Duration = Duration::from_millis(5);

pub struct ClickBatcher {
    tx: mpsc::Sender<NewClick>,
    stop: watch::Sender<bool>,
}

impl ClickBatcher {
    pub fn start(db: Db) -> (ClickBatcher, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(db, rx, stopped));
        (ClickBatcher { tx, stop }, task)
    }

    /// Queues a click; waits when the queue is full.
    pub async fn record(&self, click: NewClick) {
        if self.tx.send(click).await.is_err() {
            tracing::error!("click writer has stopped; click lost");
        }
    }

    /// Asks the writer to flush what is queued and exit.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<NewClick>, mut stopped: watch::Receiver<bool>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            received = rx.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                if batch.len() < MAX_BATCH {
                    tokio::time::sleep(LINGER).await;
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(click) => batch.push(click),
                            Err(_) => break,
                        }
                    }
                }
                flush(&db, &mut batch).await;
            }
            _ = stopped.changed() => {
                rx.close();
                while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    flush(&db, &mut batch).await;
                }
                break;
            }
        }
    }
    tracing::debug!("click writer stopped");
}

async fn flush(db: &Db, batch: &mut Vec<NewClick>) {
    let clicks = std::mem::take(batch);
    let count = clicks.len();
    // A failed batch is retried a few times: the clicks are already answered and must not be
    // lost to a transient error (a restart of PostgreSQL, a full disk that is freed).
    for attempt in 1..=5u32 {
        match insert_clicks(db, &clicks).await {
            Ok(()) => {
                metrics::counter!("clicks_recorded_total").increment(count as u64);
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, attempt, count, "writing clicks failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt * attempt))).await;
            }
        }
    }
    tracing::error!(count, "clicks dropped after repeated write failures");
    metrics::counter!("clicks_dropped_total").increment(count as u64);
}
