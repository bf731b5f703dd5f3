//! Per-tenant "something was written" signals for live reports (`statsLive`). A signal carries
//! no data: a woken subscriber re-reads the rollups, so many wake-ups between two reads cost
//! one read. Fed by the click writer after each committed batch and by conversion events
//! (which, with PostgreSQL, include those committed on other replicas).

use std::collections::HashMap;
use std::sync::Mutex;

use clickledger_domain::ids::TenantId;
use tokio::sync::watch;

#[derive(Default)]
pub struct TenantSignals {
    senders: Mutex<HashMap<TenantId, watch::Sender<()>>>,
}

impl TenantSignals {
    /// A receiver that turns changed whenever `tenant` is notified from now on.
    pub fn subscribe(&self, tenant: TenantId) -> watch::Receiver<()> {
        let mut senders = self.senders.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Tenants nobody listens to any more are forgotten here, so the map stays as small
        // as the set of tenants with live reports.
        senders.retain(|_, sender| sender.receiver_count() > 0);
        senders.entry(tenant).or_insert_with(|| watch::channel(()).0).subscribe()
    }

    /// Wakes `tenant`'s listeners, if it has any.
    pub fn notify(&self, tenant: TenantId) {
        let senders = self.senders.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = senders.get(&tenant) {
            sender.send_replace(());
        }
    }

    /// Wakes every listener: for when a source of events may have dropped some.
    pub fn notify_all(&self) {
        let senders = self.senders.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for sender in senders.values() {
            sender.send_replace(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_notified_tenant_wakes_and_wake_ups_coalesce() {
        let signals = TenantSignals::default();
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut rx_a = signals.subscribe(a);
        let rx_b = signals.subscribe(b);
        signals.notify(a);
        signals.notify(a);
        assert!(rx_a.has_changed().unwrap());
        assert!(!rx_b.has_changed().unwrap());
        rx_a.borrow_and_update();
        assert!(!rx_a.has_changed().unwrap(), "two notifications, one wake-up");
        signals.notify_all();
        assert!(rx_b.has_changed().unwrap());
        drop(rx_a);
        let _rx_b2 = signals.subscribe(b);
        assert_eq!(signals.senders.lock().unwrap().len(), 1, "a tenant without listeners is forgotten");
    }
}
