//! Connections. SQLite gets one writer connection and a pool of read-only readers: SQLite
//! allows one writer at a time, and a deferred transaction that upgrades to a write fails with
//! SQLITE_BUSY at once whatever busy_timeout says, so funnelling every write through a single
//! connection is what keeps "database is locked" away. PostgreSQL uses one pool for both.

use std::str::FromStr;
use std::time::Duration;

use clickledger_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::Result;
use crate::sealed::KeyRing;

/// Key of the PostgreSQL advisory lock that serialises migrations ("clkledgr" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x636c_6b6c_6564_6772;

/// How long a request waits for a PostgreSQL connection. Short, so that while the database is
/// away every request fails fast (as [`crate::Error::Unavailable`]: `503` with `Retry-After`)
/// instead of piling up; a healthy pool hands out a connection in microseconds. A postback
/// waits at most twice this in the group commit (the batch before its own, then its own),
/// which keeps its answer under 5 s. Each acquire also opens a new connection when the pool
/// has none, so the server reconnects by itself when the database is back.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    writer: DatabaseConnection,
    reader: DatabaseConnection,
    backend: Backend,
    /// Seals the secrets this database stores (see [`crate::sealed`]).
    secrets: std::sync::Arc<KeyRing>,
    /// The address lists the fraud rules look up, shared by this database's writers.
    ip_lists: std::sync::Arc<crate::ip_lists::IpListCache>,
    /// The import jobs this process is running (see [`crate::import_jobs`]).
    jobs_running_here: crate::import_jobs::RunningHere,
}

impl Db {
    /// Opens `url` (`sqlite://path`, `sqlite::memory:` is not supported, or `postgres://…`),
    /// creating the SQLite file when it does not exist. `secrets` seals and opens the secrets
    /// stored in it.
    pub async fn connect(url: &str, secrets: KeyRing) -> Result<Self> {
        let secrets = std::sync::Arc::new(secrets);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(invalid_url)?;
            let port = options.get_port();
            let pool = PgPoolOptions::new()
                .max_connections(32)
                .after_connect(move |_, _| {
                    Box::pin(async move {
                        crate::tcp_nodelay::set_on_sockets_to(port);
                        Ok(())
                    })
                })
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(connect_failed)?;
            let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
            return Ok(Db {
                writer: conn.clone(),
                reader: conn,
                backend: Backend::Postgres,
                secrets,
                ip_lists: Default::default(),
                jobs_running_here: Default::default(),
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(clickledger_domain::Error::invalid(
                "database-url",
                "must start with sqlite:// or postgres://",
            )
            .into());
        }
        let base = SqliteConnectOptions::from_str(url)
            .map_err(invalid_url)?
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we answer; group commit keeps this affordable.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(connect_failed)?;
        let reader_pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.read_only(true))
            .await
            .map_err(connect_failed)?;
        Ok(Db {
            writer: SqlxSqliteConnector::from_sqlx_sqlite_pool(writer_pool),
            reader: SqlxSqliteConnector::from_sqlx_sqlite_pool(reader_pool),
            backend: Backend::Sqlite,
            secrets,
            ip_lists: Default::default(),
            jobs_running_here: Default::default(),
        })
    }

    /// Applies pending migrations. On PostgreSQL, replicas starting together on a new
    /// database would race to create the same tables ("already exists" for the loser), so
    /// the migrations run under an advisory lock: the others wait, then find nothing to do.
    pub async fn migrate(&self) -> Result<()> {
        if self.backend != Backend::Postgres {
            Migrator::up(&self.writer, None).await?;
            return Ok(());
        }
        // A session-level lock, held on one connection taken out of the pool for the purpose;
        // closing that connection (even by a crash) releases it.
        let mut lock = self.writer.get_postgres_connection_pool().acquire().await.map_err(connect_failed)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *lock)
            .await
            .map_err(connect_failed)?;
        let migrated = Migrator::up(&self.writer, None).await;
        let unlocked =
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK_KEY).execute(&mut *lock).await;
        if unlocked.is_err() {
            // The lock would otherwise stay with a pooled session: drop that session instead.
            lock.close_on_drop();
        }
        migrated?;
        Ok(())
    }

    /// Whether the database answers; `/readyz` reports this.
    pub async fn ping(&self) -> Result<()> {
        self.reader.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn ip_lists(&self) -> &crate::ip_lists::IpListCache {
        &self.ip_lists
    }

    pub(crate) fn jobs_running_here(&self) -> &crate::import_jobs::RunningHere {
        &self.jobs_running_here
    }

    pub(crate) fn secrets(&self) -> &KeyRing {
        &self.secrets
    }

    pub(crate) fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }

    pub(crate) fn reader(&self) -> &DatabaseConnection {
        &self.reader
    }

    pub async fn close(self) {
        let _ = self.writer.close().await;
        if self.backend == Backend::Sqlite {
            let _ = self.reader.close().await;
        }
    }
}

fn invalid_url(err: sqlx::Error) -> crate::Error {
    clickledger_domain::Error::invalid("database-url", err.to_string()).into()
}

/// A connection listening for PostgreSQL notifications on `channel`: how replicas hear of
/// each other. `None` on SQLite, where one process is the whole system.
pub(crate) async fn listen(db: &Db, channel: &str) -> Result<Option<sqlx::postgres::PgListener>> {
    if db.backend() != Backend::Postgres {
        return Ok(None);
    }
    let pool = db.writer().get_postgres_connection_pool();
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await.map_err(sqlx_error)?;
    listener.listen(channel).await.map_err(sqlx_error)?;
    Ok(Some(listener))
}

pub(crate) fn sqlx_error(err: sqlx::Error) -> crate::Error {
    connect_failed(err)
}

fn connect_failed(err: sqlx::Error) -> crate::Error {
    sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(err))).into()
}
