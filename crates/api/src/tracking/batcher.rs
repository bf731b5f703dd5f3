//! Write-behind for clicks: the redirect hands its click to a bounded queue and answers; a
//! single task commits queued clicks in batches (one transaction, one fsync, for up to
//! `MAX_BATCH` clicks). A full queue makes redirects wait (back-pressure) rather than grow
//! memory, and shutdown drains the queue before exiting.
//!
//! A postback can arrive before the clicks of its journey are written (a visitor who
//! converts within milliseconds of a click); it waits for them with
//! [`ClickBatcher::written_up_to_now`], so attribution sees the whole journey.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clickledger_persistence::Db;

use super::GeoIp;
use crate::live::TenantSignals;
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
    /// Clicks handed to the queue so far.
    queued: AtomicU64,
    /// Clicks the writer has finished with (stored, or given up on) so far, in queue order.
    written: watch::Receiver<u64>,
    /// Notified with each tenant of a committed batch, for live reports.
    signals: Arc<TenantSignals>,
}

impl ClickBatcher {
    /// With `geoip`, each click's country is looked up from its address before it is written.
    pub fn start(db: Db, geoip: Option<Arc<GeoIp>>) -> (ClickBatcher, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stopped) = watch::channel(false);
        let (written_tx, written) = watch::channel(0);
        let signals = Arc::new(TenantSignals::default());
        let task = tokio::spawn(run(db, rx, stopped, Arc::new(written_tx), signals.clone(), geoip));
        (ClickBatcher { tx, stop, queued: AtomicU64::new(0), written, signals }, task)
    }

    /// The signals this writer wakes after each committed batch, once per tenant in it.
    pub fn tenant_signals(&self) -> Arc<TenantSignals> {
        self.signals.clone()
    }

    /// Queues a click; waits when the queue is full.
    pub async fn record(&self, click: NewClick) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(click).await.is_err() {
            tracing::error!("click writer has stopped; click lost");
        }
    }

    /// Waits until as many clicks as were queued before this call have been written, for at
    /// most `patience`; false if it ran out. The queue is written in order, so these are the
    /// clicks queued before (under back-pressure, give or take the few still waiting to enter).
    pub async fn written_up_to_now(&self, patience: Duration) -> bool {
        let target = self.queued.load(Ordering::SeqCst);
        if *self.written.borrow() >= target {
            return true;
        }
        let mut written = self.written.clone();
        matches!(tokio::time::timeout(patience, written.wait_for(|w| *w >= target)).await, Ok(Ok(_)))
    }

    /// Asks the writer to flush what is queued and exit.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

async fn run(
    db: Db,
    mut rx: mpsc::Receiver<NewClick>,
    mut stopped: watch::Receiver<bool>,
    written: Arc<watch::Sender<u64>>,
    signals: Arc<TenantSignals>,
    geoip: Option<Arc<GeoIp>>,
) {
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
                flush(&db, &mut batch, &written, &signals, geoip.as_deref()).await;
            }
            _ = stopped.changed() => {
                rx.close();
                while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    flush(&db, &mut batch, &written, &signals, geoip.as_deref()).await;
                }
                break;
            }
        }
    }
    tracing::debug!("click writer stopped");
}

async fn flush(
    db: &Db,
    batch: &mut Vec<NewClick>,
    written: &watch::Sender<u64>,
    signals: &TenantSignals,
    geoip: Option<&GeoIp>,
) {
    let mut clicks = std::mem::take(batch);
    if let Some(geoip) = geoip {
        for click in &mut clicks {
            click.country = click.ip.as_deref().and_then(|ip| geoip.country(ip));
        }
    }
    store(db, &clicks).await;
    written.send_modify(|count| *count += clicks.len() as u64);
    let mut tenants: Vec<_> = clicks.iter().map(|click| click.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    for tenant in tenants {
        signals.notify(tenant);
    }
}

/// Stores `clicks`, retrying transient failures a few times: the clicks are already answered
/// and must not be lost to a restart of PostgreSQL or a full disk that is freed. A batch the
/// database refuses for its data is split in halves until the refused click stands alone, so
/// one bad click (of any tenant) never takes its batch with it.
async fn store(db: &Db, clicks: &[NewClick]) {
    let count = clicks.len();
    for attempt in 1..=5u32 {
        match insert_clicks(db, clicks).await {
            Ok(()) => {
                metrics::counter!("clicks_recorded_total").increment(count as u64);
                return;
            }
            Err(err) if err.is_refused_data() && count > 1 => {
                let (left, right) = clicks.split_at(count / 2);
                Box::pin(store(db, left)).await;
                Box::pin(store(db, right)).await;
                return;
            }
            Err(err) if err.is_refused_data() => {
                let click_id = clicks.first().map(|click| click.click_id.as_str()).unwrap_or_default();
                tracing::error!(error = %err, click_id, "click refused by the database; dropped");
                break;
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use clickledger_domain::ids::{AffiliateId, CampaignId, TenantId, TrackingLinkId, VisitorId};
    use clickledger_persistence::test_support::TestDatabase;
    use clickledger_persistence::tracking::click_count;

    use super::*;

    fn click(tenant: TenantId, sub1: &str) -> NewClick {
        NewClick {
            click_id: uuid::Uuid::new_v4().simple().to_string(),
            tenant_id: tenant,
            link_id: TrackingLinkId::new(),
            affiliate_id: AffiliateId::new(),
            campaign_id: CampaignId::new(),
            visitor_id: VisitorId::new(),
            new_visitor: true,
            clicked_at: Utc::now(),
            ip: None,
            user_agent: None,
            referrer: None,
            subs: [Some(sub1.to_owned()), None, None, None, None],
            source: None,
            creative: None,
            landing_page: None,
            accept_language: None,
            is_bot: false,
            velocity: false,
            country: None,
        }
    }

    /// A NUL is what PostgreSQL refuses in text (SQLite stores it, so there every click is
    /// kept for the plainer reason). The redirect strips control characters; this batch
    /// bypasses it to prove the writer's own guarantee.
    #[tokio::test]
    async fn a_refused_click_does_not_take_its_batch_with_it() {
        let database = TestDatabase::create("batcher").await;
        let db =
            Db::connect(&database.url, clickledger_persistence::sealed::KeyRing::ephemeral()).await.unwrap();
        db.migrate().await.unwrap();
        let tenant = TenantId::new();
        let mut batch: Vec<NewClick> = (0..10).map(|n| click(tenant, &format!("good {n}"))).collect();
        batch.insert(7, click(tenant, "bad \u{0}"));
        let refused_is_stored = db.backend() == clickledger_persistence::Backend::Sqlite;
        store(&db, &batch).await;
        let stored = click_count(&db, tenant).await.unwrap();
        assert_eq!(stored, if refused_is_stored { 11 } else { 10 });
        db.close().await;
    }
}
