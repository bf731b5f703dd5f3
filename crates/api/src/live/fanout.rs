use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickledger_domain::ids::TenantId;
use clickledger_persistence::Db;
use clickledger_persistence::conversions::{ConversionEvent, EventListener, NewEvents, events_after};
use tokio::sync::broadcast;

/// Events buffered for slow subscribers before they are told they lagged (and then catch up
/// from the database). Bounded: a slow subscriber never holds back ingest or the others.
const BROADCAST_CAPACITY: usize = 4_096;
const CATCH_UP_BATCH: u64 = 500;
/// Events the listener read from the database to publish: other replicas' (and the few
/// events written outside the ingest writer).
static EVENTS_READ_BACK: std::sync::LazyLock<metrics::Counter> =
    std::sync::LazyLock::new(|| metrics::counter!("live_events_read_back_total"));

pub struct Live {
    tx: broadcast::Sender<Arc<ConversionEvent>>,
    /// Highest sequence published per tenant by this process, so a notification for events
    /// already published locally costs nothing.
    published: Mutex<HashMap<TenantId, i64>>,
}

impl Live {
    pub fn new() -> Arc<Live> {
        Live::with_capacity(BROADCAST_CAPACITY)
    }

    /// A broadcast that holds `capacity` events for the slowest subscriber before it lags.
    pub fn with_capacity(capacity: usize) -> Arc<Live> {
        let (tx, _) = broadcast::channel(capacity);
        Arc::new(Live { tx, published: Mutex::new(HashMap::new()) })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ConversionEvent>> {
        self.tx.subscribe()
    }

    /// Publishes an event committed by this process.
    pub fn published_locally(&self, event: ConversionEvent, received: Instant) {
        self.publish(event);
        metrics::histogram!("postback_to_publish_seconds").record(received.elapsed().as_secs_f64());
    }

    pub(crate) fn publish(&self, event: ConversionEvent) {
        if let Ok(mut published) = self.published.lock() {
            let last = published.entry(event.tenant_id).or_insert(0);
            *last = (*last).max(event.seq);
        }
        // No receivers is fine: nobody is subscribed right now.
        let _ = self.tx.send(Arc::new(event));
    }

    fn last_published(&self, tenant: TenantId) -> Option<i64> {
        self.published.lock().ok().and_then(|p| p.get(&tenant).copied())
    }

    /// With PostgreSQL: follows commits from every replica until the process ends.
    pub fn spawn_listener(self: &Arc<Self>, db: Db) -> Option<tokio::task::JoinHandle<()>> {
        if db.backend() != clickledger_persistence::Backend::Postgres {
            return None;
        }
        let live = self.clone();
        Some(tokio::spawn(async move {
            loop {
                if let Err(err) = live.listen(&db).await {
                    tracing::warn!(error = %err, "event listener failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }))
    }

    async fn listen(&self, db: &Db) -> Result<(), clickledger_persistence::Error> {
        let Some(mut listener) = EventListener::connect(db).await? else { return Ok(()) };
        loop {
            let Some(NewEvents { tenant, seq, published_here }) = listener.next().await? else {
                // Reconnected: notifications may have been lost; subscribers detect gaps and
                // read the table, so nothing more to do here.
                continue;
            };
            if published_here {
                continue;
            }
            let after = match self.last_published(tenant) {
                Some(last) if last >= seq => continue,
                Some(last) => last,
                None => seq - 1,
            };
            let (events, _) = events_after(db, tenant, after, CATCH_UP_BATCH).await?;
            EVENTS_READ_BACK.increment(events.len() as u64);
            for event in events {
                let lag = (chrono::Utc::now() - event.created_at).to_std().unwrap_or_default();
                metrics::histogram!("postback_to_publish_seconds").record(lag.as_secs_f64());
                self.publish(event);
            }
        }
    }
}
