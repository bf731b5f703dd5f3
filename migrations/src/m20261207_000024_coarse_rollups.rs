//! Coarse reporting rollups, so a report by affiliate, campaign and time over months reads
//! thousands of rows instead of one per click (the detailed `stats_hourly` keeps about one row
//! per click once links, sub-IDs, countries and devices vary):
//!
//! - `stats_hourly_coarse`: per tenant, UTC hour, affiliate and campaign;
//! - `stats_daily`: per tenant, local day of the tenant's time zone (days since 1970-01-01 in
//!   that zone, of each hour's first instant), affiliate and campaign.
//!
//! Same counters and the same two-integer amounts as `stats_hourly`, written by the same
//! upserts in the same transactions; a tenant's daily rows are rebuilt from its coarse hourly
//! rows when it changes time zone. On SQLite both are `WITHOUT ROWID`, so a range read walks
//! the primary key and finds the counters there. Existing rows are summed into both here.

use clickledger_domain::stats_sources::offsets_by_hour;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The counters every rollup table keeps, in one order.
pub const COUNTERS: [&str; 16] = [
    "clicks",
    "unique_clicks",
    "registrations",
    "ftds",
    "deposits",
    "chargebacks",
    "ftd_amount_units",
    "ftd_amount_micros",
    "deposit_amount_units",
    "deposit_amount_micros",
    "net_revenue_units",
    "net_revenue_micros",
    "lots_units",
    "lots_micros",
    "commission_units",
    "commission_micros",
];

/// SQL for the local day of `hour_column` (epoch seconds of a UTC hour) in a zone whose
/// offsets are `offsets` (from `offsets_by_hour` over every hour it is applied to).
pub fn local_day_sql(hour_column: &str, offsets: &[(i64, i64)]) -> String {
    let Some(((_, last), earlier)) = offsets.split_last() else { return format!("({hour_column} / 86400)") };
    let cases: String = earlier
        .iter()
        .map(|(until, offset)| format!(" WHEN {hour_column} < {until} THEN {offset}"))
        .collect();
    if cases.is_empty() {
        format!("(({hour_column} + {last}) / 86400)")
    } else {
        format!("(({hour_column} + CASE{cases} ELSE {last} END) / 86400)")
    }
}

/// `SUM`s of every counter, as `BIGINT` on both databases (PostgreSQL sums `BIGINT` to
/// `NUMERIC`).
pub fn counter_sums() -> String {
    COUNTERS.iter().map(|c| format!("CAST(SUM({c}) AS BIGINT)")).collect::<Vec<_>>().join(", ")
}

fn create(backend: DbBackend, table: &str, time: &str) -> String {
    let uuid = match backend {
        DbBackend::Postgres => "uuid",
        _ => "uuid_text",
    };
    let counters: String = COUNTERS.iter().map(|c| format!(", {c} BIGINT NOT NULL DEFAULT 0")).collect();
    let rowid = if backend == DbBackend::Sqlite { " WITHOUT ROWID" } else { "" };
    format!(
        "CREATE TABLE {table} (tenant_id {uuid} NOT NULL, {time} BIGINT NOT NULL, affiliate_id {uuid} NOT NULL, \
         campaign_id {uuid} NOT NULL{counters}, PRIMARY KEY (tenant_id, {time}, affiliate_id, campaign_id)){rowid}"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        db.execute_unprepared(&create(backend, "stats_hourly_coarse", "hour")).await?;
        db.execute_unprepared(&create(backend, "stats_daily", "day")).await?;
        let columns = COUNTERS.join(", ");
        db.execute_unprepared(&format!(
            "INSERT INTO stats_hourly_coarse (tenant_id, hour, affiliate_id, campaign_id, {columns}) \
             SELECT tenant_id, hour, affiliate_id, campaign_id, {} FROM stats_hourly \
             GROUP BY tenant_id, hour, affiliate_id, campaign_id",
            counter_sums()
        ))
        .await?;
        // The daily rows of the tenants of each zone, their hours' offsets computed here.
        let zones = db
            .query_all_raw(Statement::from_string(backend, "SELECT DISTINCT time_zone FROM tenants"))
            .await?;
        for row in zones {
            let name: String = row.try_get_by_index(0)?;
            let zone: chrono_tz::Tz = name
                .parse()
                .map_err(|_| DbErr::Custom(format!("a tenant's time zone `{name}` is unknown")))?;
            let span = Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT MIN(h.hour), MAX(h.hour) FROM stats_hourly_coarse h JOIN tenants t ON t.id = h.tenant_id \
                     WHERE t.time_zone = {}",
                    placeholder(backend)
                ),
                [name.clone().into()],
            );
            let Some(span) = db.query_one_raw(span).await? else { continue };
            let (Some(first), Some(last)) =
                (span.try_get_by_index::<Option<i64>>(0)?, span.try_get_by_index::<Option<i64>>(1)?)
            else {
                continue;
            };
            let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let day = local_day_sql("h.hour", &offsets_by_hour(zone, at(first), at(last + 3_600)));
            let insert = Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO stats_daily (tenant_id, day, affiliate_id, campaign_id, {columns}) \
                     SELECT h.tenant_id, {day}, h.affiliate_id, h.campaign_id, {} \
                     FROM stats_hourly_coarse h JOIN tenants t ON t.id = h.tenant_id WHERE t.time_zone = {} \
                     GROUP BY h.tenant_id, {day}, h.affiliate_id, h.campaign_id",
                    counter_sums(),
                    placeholder(backend)
                ),
                [name.into()],
            );
            db.execute_raw(insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE stats_daily").await?;
        db.execute_unprepared("DROP TABLE stats_hourly_coarse").await?;
        Ok(())
    }
}

fn placeholder(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    }
}
