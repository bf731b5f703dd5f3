//! Shared live feeds: serialize once, send many.
//!
//! Subscribers whose frames would be byte for byte the same (the same subscription document
//! and variables, the same viewer) share one [`Feed`]. The feed follows the in-process
//! broadcast, filters each event for its viewer, has it resolved into a frame payload once,
//! and broadcasts that payload to its subscribers. A subscriber's own work per event is
//! comparing sequence numbers and copying bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use clickledger_domain::role::Role;
use clickledger_persistence::conversions::{ConversionEvent, Conversions};
use clickledger_persistence::{Db, Scope, Viewer};
use futures_util::future::BoxFuture;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::Live;

/// Frames buffered for a slow subscriber before it is told it lagged (and then catches up
/// from the database itself).
const FRAME_CAPACITY: usize = 4_096;
const CATCH_UP_BATCH: u64 = 500;

/// A frame's payload: the serialized GraphQL response for one event, shared by every
/// subscriber of the feed.
pub type Payload = Arc<str>;

/// Turns one event, already filtered for the feed's viewer, into a frame payload.
pub trait ResolveFrame: Send + Sync + 'static {
    fn resolve(&self, event: ConversionEvent) -> BoxFuture<'static, Payload>;
}

/// Which of the tenant's events a feed follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Topic {
    /// Every conversion event (`conversions`).
    #[default]
    Conversions,
    /// New conversions with fraud flags (`fraudAlerts`, staff only).
    FraudAlerts,
}

impl Topic {
    /// Whether an event belongs to the topic (before the viewer's own filter).
    pub fn admits(self, event: &ConversionEvent) -> bool {
        match self {
            Topic::Conversions => true,
            Topic::FraudAlerts => {
                event.kind == clickledger_persistence::conversions::EVENT_CREATED
                    && !event.conversion.fraud.flags.is_empty()
            }
        }
    }
}

/// What makes two subscribers' frames identical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedKey {
    pub document: String,
    pub operation_name: Option<String>,
    /// Canonical JSON of the variables, without one that only sets where replay starts.
    pub variables: String,
    pub scope: Scope,
    /// Staff roles share a scope; kept apart anyway so that a role-guarded field can never
    /// leak from one role's frames to another's.
    pub role: Role,
    pub topic: Topic,
}

/// One event visible to the feed's viewer, resolved. Between `after` and `seq` the tenant had
/// no other event this viewer may see: a subscriber whose cursor is at least `after` may take
/// the frame and move its cursor to `seq`; one further behind missed something and reads it
/// from the database.
#[derive(Debug)]
pub struct Frame {
    pub after: i64,
    pub seq: i64,
    pub payload: Payload,
}

pub struct Feed {
    frames: broadcast::Sender<Arc<Frame>>,
    /// True once the feed knows where it starts: from then on it emits every later event.
    started: tokio::sync::watch::Receiver<bool>,
    resolver: Arc<dyn ResolveFrame>,
    scope: Scope,
    topic: Topic,
    task: tokio::task::AbortHandle,
}

impl Feed {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.frames.subscribe()
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// Waits until the feed knows where it starts. A subscriber reads the database only after
    /// this: its replay then reaches at least the feed's start, and every later event comes as
    /// a frame. Read earlier, an event committed while the feed was starting would be in
    /// neither until the next one.
    pub async fn started(&self) {
        let mut started = self.started.clone();
        // An error means the task ended (the feed is being dropped): nothing to wait for.
        let _ = started.wait_for(|started| *started).await;
    }

    /// Resolves an event a subscriber read from the database itself (its replay, or its
    /// catch-up after lagging): per subscriber, so counted apart from the shared resolutions.
    pub async fn resolve_replayed(&self, event: ConversionEvent) -> Payload {
        metrics::counter!("live_frame_resolutions_total", "source" => "replay").increment(1);
        self.resolver.resolve(event).await
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The feeds of this process, by key. A feed lives while it has subscribers.
pub struct Feeds {
    live: Arc<Live>,
    db: Db,
    feeds: Mutex<HashMap<FeedKey, Weak<Feed>>>,
    capacity: usize,
}

impl Feeds {
    pub fn new(live: Arc<Live>, db: Db) -> Feeds {
        Feeds::with_capacity(live, db, FRAME_CAPACITY)
    }

    /// Feeds whose broadcasts hold `capacity` frames for the slowest subscriber.
    pub fn with_capacity(live: Arc<Live>, db: Db, capacity: usize) -> Feeds {
        Feeds { live, db, feeds: Mutex::new(HashMap::new()), capacity }
    }

    /// The feed for `key`, started with `resolver` if there is none yet.
    pub fn join(&self, key: FeedKey, resolver: impl FnOnce() -> Arc<dyn ResolveFrame>) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(feed) = feeds.get(&key).and_then(Weak::upgrade) {
            return feed;
        }
        feeds.retain(|_, feed| feed.strong_count() > 0);
        let resolver = resolver();
        let (frames, _) = broadcast::channel(self.capacity);
        let (started_tx, started) = tokio::sync::watch::channel(false);
        // Subscribed here, before any subscriber reads the database, so nothing committed in
        // between is missed.
        let follower = Follower {
            events: self.live.subscribe(),
            frames: frames.clone(),
            repo_db: self.db.clone(),
            scope: key.scope,
            topic: key.topic,
            resolver: resolver.clone(),
            cursor: None,
            emitted: 0,
            started: started_tx,
        };
        let task = tokio::spawn(follower.run()).abort_handle();
        let feed = Arc::new(Feed { frames, started, resolver, scope: key.scope, topic: key.topic, task });
        feeds.insert(key, Arc::downgrade(&feed));
        feed
    }
}

/// The feed's task: tenant events in, frames out.
struct Follower {
    events: broadcast::Receiver<Arc<ConversionEvent>>,
    frames: broadcast::Sender<Arc<Frame>>,
    repo_db: Db,
    scope: Scope,
    topic: Topic,
    resolver: Arc<dyn ResolveFrame>,
    /// Every event of the tenant up to here has been seen (None: not known yet).
    cursor: Option<i64>,
    /// `seq` of the last frame sent (or where the feed started knowing).
    emitted: i64,
    started: tokio::sync::watch::Sender<bool>,
}

impl Follower {
    async fn run(mut self) {
        let start = Conversions::scoped(&self.repo_db, self.scope).latest_seq().await.ok();
        self.cursor = start;
        self.emitted = start.unwrap_or_default();
        self.started.send_replace(true);
        // Counted once it knows where it starts: from then on it resolves every event.
        let _running = RunningFeed::count();
        loop {
            match self.events.recv().await {
                Ok(event) if event.tenant_id == self.scope.tenant() => self.follow(&event).await,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    if let Some(cursor) = self.cursor
                        && self.catch_up(cursor).await.is_err()
                    {
                        // Subscribers will see the gap and read the database themselves.
                        self.cursor = None;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn follow(&mut self, event: &ConversionEvent) {
        let cursor = match self.cursor {
            Some(cursor) => cursor,
            None => self.restart_at(event.seq - 1),
        };
        if event.seq <= cursor {
            return;
        }
        if event.seq > cursor + 1 {
            // Published out of order, or missed: the database has everything up to here.
            let caught_up = self.catch_up(cursor).await.unwrap_or(cursor);
            if event.seq <= caught_up {
                return;
            }
            if event.seq > caught_up + 1 {
                self.restart_at(event.seq - 1);
            }
        }
        self.cursor = Some(event.seq);
        if let Some(visible) = visible_to(event, self.scope, self.topic) {
            self.emit(visible).await;
        }
    }

    /// Forgets what came before `seq`: frames from here on tell subscribers that anything
    /// earlier must come from the database.
    fn restart_at(&mut self, seq: i64) -> i64 {
        self.cursor = Some(seq);
        self.emitted = seq;
        seq
    }

    /// Emits the viewer's events after `cursor` from the database; returns the new cursor.
    async fn catch_up(&mut self, mut cursor: i64) -> Result<i64, clickledger_persistence::Error> {
        let db = self.repo_db.clone();
        let repo = Conversions::scoped(&db, self.scope);
        loop {
            let result = repo.events_after(cursor, CATCH_UP_BATCH).await;
            let (events, last) = result.inspect_err(|err| {
                tracing::warn!(error = %err, "live feed could not catch up from the database");
            })?;
            let topic = self.topic;
            for event in events.into_iter().filter(|event| topic.admits(event)) {
                self.emit(event).await;
            }
            let full_page = last - cursor >= CATCH_UP_BATCH as i64;
            cursor = last;
            self.cursor = Some(cursor);
            if !full_page {
                return Ok(cursor);
            }
        }
    }

    async fn emit(&mut self, event: ConversionEvent) {
        let seq = event.seq;
        metrics::counter!("live_frame_resolutions_total", "source" => "feed").increment(1);
        let payload = self.resolver.resolve(event).await;
        // No receivers is fine: the last subscriber just left and the feed is ending.
        let _ = self.frames.send(Arc::new(Frame { after: self.emitted, seq, payload }));
        self.emitted = seq;
    }
}

/// `live_feeds`: feeds following events, for as long as their task runs.
struct RunningFeed;

impl RunningFeed {
    fn count() -> RunningFeed {
        metrics::gauge!("live_feeds").increment(1.0);
        RunningFeed
    }
}

impl Drop for RunningFeed {
    fn drop(&mut self) {
        metrics::gauge!("live_feeds").decrement(1.0);
    }
}

/// The event as `scope`'s viewer may see it on `topic`: affiliates only conversions crediting
/// them, with only their own credit and no player ID.
fn visible_to(event: &ConversionEvent, scope: Scope, topic: Topic) -> Option<ConversionEvent> {
    if !topic.admits(event) {
        return None;
    }
    match scope.viewer() {
        Viewer::Staff => Some(event.clone()),
        Viewer::Affiliate(me) => {
            let conversion = event.conversion.clone().for_affiliate(me)?;
            Some(ConversionEvent { conversion, ..event.clone() })
        }
    }
}
