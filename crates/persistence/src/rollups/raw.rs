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

/// `sql` with its parameters bound, in order.
fn query<'q, DB>(sql: &'q Sql) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    chrono::DateTime<chrono::Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::query::<DB>(audited(&sql.text));
    for param in &sql.params {
        query = match param {
            Param::Uuid(id) => query.bind(*id),
            Param::Int(n) => query.bind(*n),
            Param::Text(text) => query.bind(text.as_str()),
            Param::Time(at) => query.bind(*at),
        };
    }
    query
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

/// The connection's one implementation, for each database: only the types differ.
macro_rules! click_writer_conn {
    ($conn:ty, $database:ty, $backend:expr) => {
        impl ClickWriterConn for $conn {
            const BACKEND: Backend = $backend;

            async fn execute(&mut self, sql: &Sql) -> Result<()> {
                query::<$database>(sql).execute(&mut *self).await.map_err(sqlx_error)?;
                Ok(())
            }

            async fn fetch_days(&mut self, sql: &Sql) -> Result<Vec<VisitorDay>> {
                let rows = query::<$database>(sql).fetch_all(&mut *self).await.map_err(sqlx_error)?;
                rows.iter().map(|row| day_of(row).map_err(sqlx_error)).collect()
            }

            async fn fetch_zones(&mut self, sql: &Sql) -> Result<Vec<(Uuid, String)>> {
                let rows = query::<$database>(sql).fetch_all(&mut *self).await.map_err(sqlx_error)?;
                rows.iter().map(|row| zone_of(row).map_err(sqlx_error)).collect()
            }
        }
    };
}

click_writer_conn!(SqliteConnection, Sqlite, Backend::Sqlite);
click_writer_conn!(PgConnection, Postgres, Backend::Postgres);
