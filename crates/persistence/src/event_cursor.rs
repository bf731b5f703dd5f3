//! Where a notifier job stands in a tenant's event log: the cursor it stored, and the
//! tenant's last event. The webhook deliveries (`outbound::work`) and the fraud alerts
//! (`fraud_alert_mail`) each follow the log with a cursor table of their own.

use std::collections::HashMap;

use crate::entities::tenants;

/// A tenant whose event log has moved past a stored cursor.
#[derive(Debug, Clone, Copy)]
pub struct Behind<T> {
    pub tenant: T,
    /// The stored cursor (0 for a tenant without one: it starts from its first event).
    pub cursor: i64,
    /// The tenant's last event when this was read.
    pub through: i64,
}

/// Of `tenants`, those whose last event is past their cursor in `cursors`, each as `tenant`
/// makes it.
pub(crate) fn behind<T>(
    tenants: Vec<tenants::Model>,
    cursors: &HashMap<uuid::Uuid, i64>,
    tenant: impl Fn(tenants::Model) -> T,
) -> Vec<Behind<T>> {
    tenants
        .into_iter()
        .filter_map(|row| {
            let cursor = cursors.get(&row.id).copied().unwrap_or(0);
            let through = row.event_seq;
            (through > cursor).then(|| Behind { tenant: tenant(row), cursor, through })
        })
        .collect()
}
