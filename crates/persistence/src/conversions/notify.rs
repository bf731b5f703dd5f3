//! Cross-replica wake-ups. With PostgreSQL, the ingest transaction issues `pg_notify`, which
//! is delivered only if and when it commits; every replica listens and then reads the new
//! events from the table by sequence. The notification carries no data, only where to look.

use clickledger_domain::ids::TenantId;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlx::postgres::PgListener;

use crate::{Backend, Db, Result};

pub const CHANNEL: &str = "clickledger_events";

pub(super) async fn notify<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
    tenant: TenantId,
    seq: i64,
) -> Result<()> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), format!("{}:{seq}", tenant.uuid().simple()).into()],
    ))
    .await?;
    Ok(())
}

pub struct EventListener {
    listener: PgListener,
}

impl EventListener {
    /// `None` on SQLite, where one process is the whole system.
    pub async fn connect(db: &Db) -> Result<Option<EventListener>> {
        Ok(crate::db::listen(db, CHANNEL).await?.map(|listener| EventListener { listener }))
    }

    /// The next (tenant, sequence) committed anywhere. After a lost connection sqlx
    /// reconnects and this yields `Ok(None)`: the caller should then re-read by sequence,
    /// since notifications sent meanwhile are gone.
    pub async fn next(&mut self) -> Result<Option<(TenantId, i64)>> {
        let notification = self.listener.try_recv().await.map_err(crate::db::sqlx_error)?;
        Ok(notification.and_then(|n| {
            let (tenant, seq) = n.payload().split_once(':')?;
            let tenant = uuid::Uuid::try_parse(tenant).ok()?;
            Some((TenantId::from_uuid(tenant), seq.parse().ok()?))
        }))
    }
}
