//! How far this process has read each tenant's event log for fraud alerts, beyond the cursor
//! stored in `fraud_alert_cursors`.
//!
//! Most events carry no alert. Storing the cursor after every pass was a write transaction
//! (and an fsync) per postback batch on the single SQLite writer, competing with the
//! postbacks themselves. So the stored cursor moves only with alerts to mail (in the same
//! transaction as they are queued) or once the read has run [`SAVE_EVERY`] events ahead of
//! it; in between, what was read without finding an alert is remembered here. A restart reads
//! that stretch again and again finds nothing in it, so nothing is mailed twice.

use std::collections::HashMap;
use std::sync::Mutex;

use clickledger_domain::ids::TenantId;

/// Events read past the stored cursor, without an alert, before the cursor is stored anyway:
/// what a restart reads again at most.
pub const SAVE_EVERY: i64 = 5_000;

#[derive(Default)]
pub struct ScanCursors {
    /// Per tenant: the stored cursor this process last saw, and how far it has read past it.
    read: Mutex<HashMap<TenantId, (i64, i64)>>,
}

impl ScanCursors {
    /// Where to go on reading, given the cursor stored now. Another replica (or this process
    /// before a restart) may have moved the stored cursor: then what was remembered no longer
    /// applies, and the read resumes from the stored one.
    pub fn resume(&self, tenant: TenantId, stored: i64) -> i64 {
        match self.lock().get(&tenant) {
            Some(&(seen, read)) if seen == stored => read.max(stored),
            _ => stored,
        }
    }

    /// Remembers that events up to `read` were read, the stored cursor being `stored`.
    pub fn remember(&self, tenant: TenantId, stored: i64, read: i64) {
        self.lock().insert(tenant, (stored, read));
    }

    /// Forgets the tenant: the next pass starts from its stored cursor.
    pub fn forget(&self, tenant: TenantId) {
        self.lock().remove(&tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, (i64, i64)>> {
        self.read.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a pass that read up to `read`, finding no alert, should store its cursor anyway.
pub fn worth_saving(stored: i64, read: i64) -> bool {
    read - stored >= SAVE_EVERY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_resumes_where_it_stopped_while_the_stored_cursor_stays() {
        let cursors = ScanCursors::default();
        let tenant = TenantId::new();
        assert_eq!(cursors.resume(tenant, 7), 7, "nothing remembered: from the stored cursor");
        cursors.remember(tenant, 7, 40);
        assert_eq!(cursors.resume(tenant, 7), 40);
        assert_eq!(cursors.resume(tenant, 12), 12, "someone else stored a cursor: from theirs");
        assert_eq!(cursors.resume(TenantId::new(), 7), 7, "tenants apart");
        cursors.forget(tenant);
        assert_eq!(cursors.resume(tenant, 7), 7);
    }

    #[test]
    fn the_cursor_is_stored_once_the_read_is_far_enough_ahead() {
        assert!(!worth_saving(10, 10 + SAVE_EVERY - 1));
        assert!(worth_saving(10, 10 + SAVE_EVERY));
    }
}
