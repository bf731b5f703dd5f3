//! Cross-replica wake-ups. With PostgreSQL, the ingest transaction issues `pg_notify`, which
//! is delivered only if and when it commits; every replica listens and then reads the new
//! events from the table by sequence. The notification carries no data, only where to look,
//! and whether the process that wrote the events publishes them itself.

use std::sync::LazyLock;

use clickledger_domain::ids::TenantId;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlx::postgres::PgListener;

use crate::{Backend, Db, Result};

pub const CHANNEL: &str = "clickledger_events";

/// This process among the replicas, in the notifications of events it publishes itself.
static THIS_PROCESS: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string());

/// Who puts a transaction's new events on this process's live feeds.
#[derive(Clone, Copy)]
pub(super) enum Publisher {
    /// The ingest writer, from the events the transaction returns: this process's listener
    /// skips them instead of reading back what it already has (on PostgreSQL that read-back
    /// was a fifth of the database's statement time at full postback load).
    Writer,
    /// Every replica's listener, this process's included.
    Listeners,
}

pub(super) async fn notify<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
    tenant: TenantId,
    seq: i64,
    publisher: Publisher,
) -> Result<()> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    let mut payload = format!("{}:{seq}", tenant.uuid().simple());
    if let Publisher::Writer = publisher {
        payload.push(':');
        payload.push_str(&THIS_PROCESS);
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), payload.into()],
    ))
    .await?;
    Ok(())
}

/// New events of a tenant, from its sequence number `seq` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvents {
    pub tenant: TenantId,
    pub seq: i64,
    /// This process wrote them and publishes them itself.
    pub published_here: bool,
}

impl NewEvents {
    fn parse(payload: &str) -> Option<NewEvents> {
        let mut parts = payload.split(':');
        let tenant = TenantId::from_uuid(uuid::Uuid::try_parse(parts.next()?).ok()?);
        let seq = parts.next()?.parse().ok()?;
        let published_here = parts.next() == Some(THIS_PROCESS.as_str());
        Some(NewEvents { tenant, seq, published_here })
    }
}

pub struct EventListener {
    listener: PgListener,
}

impl EventListener {
    /// `None` on SQLite, where one process is the whole system.
    pub async fn connect(db: &Db) -> Result<Option<EventListener>> {
        Ok(crate::db::listen(db, CHANNEL).await?.map(|listener| EventListener { listener }))
    }

    /// The next new events committed anywhere. After a lost connection sqlx reconnects and
    /// this yields `Ok(None)`: the caller should then re-read by sequence, since
    /// notifications sent meanwhile are gone.
    pub async fn next(&mut self) -> Result<Option<NewEvents>> {
        let notification = self.listener.try_recv().await.map_err(crate::db::sqlx_error)?;
        Ok(notification.and_then(|n| NewEvents::parse(n.payload())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_processs_writer_notifications_are_published_here() {
        let tenant = TenantId::new();
        let plain = format!("{}:7", tenant.uuid().simple());
        assert_eq!(NewEvents::parse(&plain), Some(NewEvents { tenant, seq: 7, published_here: false }));
        let ours = format!("{plain}:{}", *THIS_PROCESS);
        assert_eq!(NewEvents::parse(&ours), Some(NewEvents { tenant, seq: 7, published_here: true }));
        let another = format!("{plain}:{}", uuid::Uuid::new_v4().simple());
        assert_eq!(NewEvents::parse(&another).map(|e| e.published_here), Some(false));
        assert_eq!(NewEvents::parse("not-a-tenant:7"), None);
    }
}
