//! The notifier, as the server runs it: started with the server, woken by every committed
//! event, stopped on shutdown.

use std::sync::Arc;

use clickledger_notifier::mail::Mailer;
use clickledger_notifier::ssrf::AddressPolicy;
use clickledger_notifier::{Notifier, NotifierConfig, NotifierHandle, SystemClock};
use clickledger_persistence::Db;
use tokio::sync::Notify;

use crate::live::Live;

/// What request handlers need of the notifier.
#[derive(Clone)]
pub struct Outbound {
    /// Where postbacks may go; endpoints are checked against it when saved.
    pub policy: AddressPolicy,
    /// Wakes the worker (a test postback was queued, a delivery redelivered).
    pub wake: Arc<Notify>,
}

pub struct Running {
    notifier: NotifierHandle,
    bridge: tokio::task::JoinHandle<()>,
}

pub fn build(
    db: Db,
    policy: AddressPolicy,
    mailer: Mailer,
) -> Result<(Arc<Notifier>, Outbound), clickledger_notifier::Error> {
    let config =
        NotifierConfig { policy: policy.clone(), mailer: Arc::new(mailer), ..NotifierConfig::default() };
    let notifier = Notifier::new(db, config, Arc::new(SystemClock))?;
    let outbound = Outbound { policy, wake: notifier.waker() };
    Ok((notifier, outbound))
}

/// Starts the worker, woken by every event the live fan-out sees (local commits and, with
/// PostgreSQL, other replicas' via NOTIFY); it also polls, so a missed wake-up only delays.
pub fn start(notifier: &Arc<Notifier>, live: &Arc<Live>) -> Running {
    let mut events = live.subscribe();
    let wake = notifier.waker();
    let bridge = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => wake.notify_one(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Running { notifier: notifier.spawn(), bridge }
}

impl Running {
    pub async fn stop(self) {
        self.bridge.abort();
        self.notifier.stop().await;
    }
}
