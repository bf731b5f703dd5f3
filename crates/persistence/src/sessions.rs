//! Revocable sessions. A session token carries its user's session epoch; every request
//! compares it with the stored one (the same read that checks the user is active), so ending
//! a user's sessions is one increment, in the transaction of the change that ends them (a
//! password set or a suspension).
//!
//! Open WebSocket connections are not requests: with PostgreSQL the revoking transaction also
//! announces the user with `pg_notify` (delivered at commit, never for a rollback), and every
//! replica re-checks the connections of that user. A replica whose listener reconnects must
//! re-check all of them, since announcements sent meanwhile are gone.

use clickledger_domain::ids::{TenantId, UserId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
use sqlx::postgres::PgListener;

use crate::entities::users;
use crate::{Db, Result};

const CHANNEL: &str = "clickledger_session_revoked";

/// Ends every session of `users` (of `tenant`): their epochs move on, so tokens issued before
/// are refused from the commit on; with PostgreSQL, every replica hears of it at the commit.
pub(crate) async fn revoke<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    users: &[uuid::Uuid],
) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    users::Entity::update_many()
        .col_expr(users::Column::SessionEpoch, Expr::col(users::Column::SessionEpoch).add(1))
        .filter(users::Column::TenantId.eq(tenant.uuid()))
        .filter(users::Column::Id.is_in(users.iter().copied()))
        .exec(conn)
        .await?;
    if conn.get_database_backend() == DbBackend::Postgres {
        for user in users {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), UserId::from_uuid(*user).to_string().into()],
            ))
            .await?;
        }
    }
    Ok(())
}

/// What a [`SessionListener`] heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// This user's sessions were ended.
    User(UserId),
    /// Announcements may have been missed (the connection was re-established), or one could
    /// not be read: re-check every session.
    Anyone,
}

pub struct SessionListener {
    listener: PgListener,
}

impl SessionListener {
    /// `None` on SQLite (one process: the API tells its own connections directly).
    pub async fn connect(db: &Db) -> Result<Option<SessionListener>> {
        Ok(crate::db::listen(db, CHANNEL).await?.map(|listener| SessionListener { listener }))
    }

    /// The next revocation announced by any replica.
    pub async fn next(&mut self) -> Result<Revoked> {
        match self.listener.try_recv().await.map_err(crate::db::sqlx_error)? {
            Some(notification) => Ok(UserId::parse(notification.payload(), "payload")
                .map(Revoked::User)
                .unwrap_or(Revoked::Anyone)),
            None => Ok(Revoked::Anyone),
        }
    }
}
