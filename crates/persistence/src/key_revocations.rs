//! API keys are cached for a few seconds by every replica (postbacks arrive in bursts). A
//! revocation, or any change of a key's settings (rate limit, signing secret, signature
//! switch), must still take effect at once everywhere: with PostgreSQL the revoking
//! replica announces it with `pg_notify`, and every replica drops its cached keys. The
//! notification carries no data; a replica that lost its connection drops its cache too,
//! since announcements sent meanwhile are gone.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlx::postgres::PgListener;

use crate::{Backend, Db, Result};

const CHANNEL: &str = "clickledger_api_key_revoked";

/// Tells every replica a key was revoked or changed (nothing to tell on SQLite: one process).
pub(crate) async fn announce(db: &Db) -> Result<()> {
    if db.backend() != Backend::Postgres {
        return Ok(());
    }
    db.writer()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, '')",
            [CHANNEL.into()],
        ))
        .await?;
    Ok(())
}

pub struct RevocationListener {
    listener: PgListener,
}

impl RevocationListener {
    /// `None` on SQLite.
    pub async fn connect(db: &Db) -> Result<Option<RevocationListener>> {
        Ok(crate::db::listen(db, CHANNEL).await?.map(|listener| RevocationListener { listener }))
    }

    /// Returns when a key was revoked anywhere, or when the connection was lost and
    /// re-established (announcements may have been missed): either way, drop cached keys.
    pub async fn next(&mut self) -> Result<()> {
        self.listener.try_recv().await.map_err(crate::db::sqlx_error)?;
        Ok(())
    }
}
