//! The click writer's own connection (sqlx, not sea-orm, see [`crate::click_rows`]) on either
//! database: the statements the rollups run there, bound and decoded as each database wants.
//! The steps themselves are written once, generic over [`ClickWriterConn`].

use sqlx::{PgConnection, Postgres, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::{Param, Sql, VisitorDay};
use crate::db::sqlx_error;
use crate::{Backend, Result};

pub(crate) trait ClickWriterConn: Send {
    const BACKEND: Backend;
    async fn execute(&mut self, sql: &Sql) -> Result<()>;
    /// Rows of `(tenant_id, day, link_id, visitor_id)`.
    async fn fetch_days(&mut self, sql: &Sql) -> Result<Vec<VisitorDay>>;
    /// Rows of `(id, time_zone)`.
    async fn fetch_zones(&mut self, sql: &Sql) -> Result<Vec<(Uuid, String)>>;
}

/// Our own statement texts: fixed column names and placeholders, never input.
fn audited(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.to_owned())
}

/// Binds `params` in order, on whichever database `query` is for.
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Uuid(id) => query.bind(id),
                Param::Int(n) => query.bind(n),
                Param::Text(text) => query.bind(text.as_str()),
                Param::Time(at) => query.bind(at),
            };
        }
        query
    }};
}

fn day_of<R: Row>(row: &R) -> std::result::Result<VisitorDay, sqlx::Error>
where
    for<'r> Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?))
}

fn zone_of<R: Row>(row: &R) -> std::result::Result<(Uuid, String), sqlx::Error>
where
    for<'r> Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok((row.try_get(0)?, row.try_get(1)?))
}

impl ClickWriterConn for SqliteConnection {
    const BACKEND: Backend = Backend::Sqlite;

    async fn execute(&mut self, sql: &Sql) -> Result<()> {
        bind_all!(sqlx::query::<Sqlite>(audited(&sql.text)), &sql.params)
            .execute(&mut *self)
            .await
            .map_err(sqlx_error)?;
        Ok(())
    }

    async fn fetch_days(&mut self, sql: &Sql) -> Result<Vec<VisitorDay>> {
        let rows = bind_all!(sqlx::query::<Sqlite>(audited(&sql.text)), &sql.params)
            .fetch_all(&mut *self)
            .await
            .map_err(sqlx_error)?;
        rows.iter().map(|row| day_of(row).map_err(sqlx_error)).collect()
    }

    async fn fetch_zones(&mut self, sql: &Sql) -> Result<Vec<(Uuid, String)>> {
        let rows = bind_all!(sqlx::query::<Sqlite>(audited(&sql.text)), &sql.params)
            .fetch_all(&mut *self)
            .await
            .map_err(sqlx_error)?;
        rows.iter().map(|row| zone_of(row).map_err(sqlx_error)).collect()
    }
}

impl ClickWriterConn for PgConnection {
    const BACKEND: Backend = Backend::Postgres;

    async fn execute(&mut self, sql: &Sql) -> Result<()> {
        bind_all!(sqlx::query::<Postgres>(audited(&sql.text)), &sql.params)
            .execute(&mut *self)
            .await
            .map_err(sqlx_error)?;
        Ok(())
    }

    async fn fetch_days(&mut self, sql: &Sql) -> Result<Vec<VisitorDay>> {
        let rows = bind_all!(sqlx::query::<Postgres>(audited(&sql.text)), &sql.params)
            .fetch_all(&mut *self)
            .await
            .map_err(sqlx_error)?;
        rows.iter().map(|row| day_of(row).map_err(sqlx_error)).collect()
    }

    async fn fetch_zones(&mut self, sql: &Sql) -> Result<Vec<(Uuid, String)>> {
        let rows = bind_all!(sqlx::query::<Postgres>(audited(&sql.text)), &sql.params)
            .fetch_all(&mut *self)
            .await
            .map_err(sqlx_error)?;
        rows.iter().map(|row| zone_of(row).map_err(sqlx_error)).collect()
    }
}
