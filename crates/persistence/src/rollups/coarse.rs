//! The coarse rollups (`stats_hourly_coarse`, `stats_daily`, see the migration
//! `m20261207_000024_coarse_rollups`): the detailed changes of a write, summed per hour (and
//! per local day of the tenant's zone), affiliate and campaign, upserted next to them.
//!
//! The daily key depends on the tenant's time zone, so a writer reads the zone in its own
//! transaction and a zone change rebuilds the tenant's daily rows in its. On PostgreSQL the two
//! meet on an advisory lock per tenant (writers share it, the rebuild holds it alone): a writer
//! that read the old zone commits before the rebuild reads the hourly rows (whose daily rows
//! the rebuild then replaces), and one that asks for the lock during the rebuild waits, then
//! reads the new zone. A postback's transaction needs neither the lock nor a second read: it
//! reserves its event numbers on the tenant row first, reading the zone there, and the zone
//! change updates that row before it takes the lock, so the two run one after the other and
//! never wait for each other in a cycle. SQLite has one writer at a time.

use std::collections::{BTreeMap, HashMap};

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use clickledger_domain::ids::TenantId;
use clickledger_domain::reporting::{Counters, RowKey};
use clickledger_domain::stats_sources::{local_day, offsets_by_hour};
use clickledger_migration::m20261207_000024_coarse_rollups::{COUNTERS, counter_sums, local_day_sql};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement, Value};
use uuid::Uuid;

use super::{ClickWriterConn, Param, Sql, db_backend, param, upserts};
use crate::{Backend, Error, Result};

/// The arguments of the per-tenant advisory lock (see the module's note); `$1` is the
/// tenant's UUID as text.
const DAILY_LOCK: &str = "hashtext('stats_daily'), hashtext($1)";

/// The time zones of the tenants a write touches.
pub(crate) type Zones = HashMap<TenantId, Tz>;

/// A coarse row's key: tenant, hour or local day, affiliate, campaign (the nil UUID for none).
type CoarseKey = (Uuid, i64, Uuid, Uuid);

const KEY_COLUMNS_HOURLY: [&str; 4] = ["tenant_id", "hour", "affiliate_id", "campaign_id"];
const KEY_COLUMNS_DAILY: [&str; 4] = ["tenant_id", "day", "affiliate_id", "campaign_id"];

/// The coarse changes of one write, in key order (so concurrent writers lock rows in one
/// order, as the detailed upserts do).
#[derive(Default)]
pub(super) struct Coarse {
    hourly: BTreeMap<CoarseKey, Counters>,
    daily: BTreeMap<CoarseKey, Counters>,
}

impl Coarse {
    pub(super) fn add(
        &mut self,
        tenant: TenantId,
        hour: i64,
        key: &RowKey,
        counters: &Counters,
        zones: &Zones,
    ) -> Result<()> {
        // A tenant without a row has no report to read; its clicks are still kept (UTC days).
        let zone = zones.get(&tenant).unwrap_or(&chrono_tz::UTC);
        let at = Utc
            .timestamp_opt(hour, 0)
            .single()
            .ok_or_else(|| Error::Corrupt(format!("stats hour {hour}")))?;
        let affiliate = key.affiliate.map_or(Uuid::nil(), |id| id.uuid());
        let campaign = key.campaign.map_or(Uuid::nil(), |id| id.uuid());
        self.hourly.entry((tenant.uuid(), hour, affiliate, campaign)).or_default().add(counters);
        self.daily
            .entry((tenant.uuid(), local_day(at, *zone), affiliate, campaign))
            .or_default()
            .add(counters);
        Ok(())
    }

    pub(super) fn statements(self, backend: Backend) -> Result<Vec<Sql>> {
        let rows = |rows: BTreeMap<CoarseKey, Counters>| {
            rows.into_iter()
                .filter(|(_, counters)| !counters.is_zero())
                .map(|((tenant, time, affiliate, campaign), counters)| {
                    (
                        vec![
                            Param::Uuid(tenant),
                            Param::Int(time),
                            Param::Uuid(affiliate),
                            Param::Uuid(campaign),
                        ],
                        counters,
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut statements = upserts(backend, "stats_hourly_coarse", &KEY_COLUMNS_HOURLY, rows(self.hourly))?;
        statements.extend(upserts(backend, "stats_daily", &KEY_COLUMNS_DAILY, rows(self.daily))?);
        Ok(statements)
    }
}

/// The statements that read the tenants' zones: on PostgreSQL, first the shared lock of each
/// (see the module's note); last, the select of `(id, time_zone)`.
fn zone_reads(backend: Backend, tenants: &[TenantId]) -> Vec<Sql> {
    let mut statements = Vec::new();
    if backend == Backend::Postgres {
        for tenant in tenants {
            statements.push(Sql {
                text: format!("SELECT pg_advisory_xact_lock_shared({DAILY_LOCK})"),
                params: vec![Param::Text(tenant.uuid().to_string())],
            });
        }
    }
    let slots: Vec<String> = (1..=tenants.len()).map(|n| param(backend, n)).collect();
    statements.push(Sql {
        text: format!("SELECT id, time_zone FROM tenants WHERE id IN ({})", slots.join(", ")),
        params: tenants.iter().map(|t| Param::Uuid(t.uuid())).collect(),
    });
    statements
}

fn zones_of(rows: impl IntoIterator<Item = (Uuid, String)>) -> Result<Zones> {
    rows.into_iter()
        .map(|(id, name)| {
            let zone = name.parse().map_err(|_| Error::Corrupt(format!("time zone `{name}`")))?;
            Ok((TenantId::from_uuid(id), zone))
        })
        .collect()
}

pub(super) async fn zones_in(
    txn: &DatabaseTransaction,
    backend: Backend,
    tenants: &[TenantId],
) -> Result<Zones> {
    if tenants.is_empty() {
        return Ok(Zones::new());
    }
    let statement = |sql: &Sql| {
        let values: Vec<Value> = sql.params.iter().cloned().map(Value::from).collect();
        Statement::from_sql_and_values(db_backend(backend), sql.text.clone(), values)
    };
    let statements = zone_reads(backend, tenants);
    let Some((select, locks)) = statements.split_last() else { return Ok(Zones::new()) };
    for lock in locks {
        txn.execute_raw(statement(lock)).await?;
    }
    let rows = txn.query_all_raw(statement(select)).await?;
    let found = rows
        .iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect::<Result<Vec<_>>>()?;
    zones_of(found)
}

/// The zones on the click writer's connection.
pub(super) async fn zones_on<C: ClickWriterConn>(conn: &mut C, tenants: &[TenantId]) -> Result<Zones> {
    let statements = zone_reads(C::BACKEND, tenants);
    let Some((select, locks)) = statements.split_last().filter(|_| !tenants.is_empty()) else {
        return Ok(Zones::new());
    };
    for lock in locks {
        conn.execute(lock).await?;
    }
    zones_of(conn.fetch_zones(select).await?)
}

/// Rebuilds a tenant's daily rows in `zone` from its coarse hourly rows, in the transaction
/// that moves it to that zone.
pub(crate) async fn rebuild_daily(
    txn: &DatabaseTransaction,
    backend: Backend,
    tenant: TenantId,
    zone: Tz,
) -> Result<()> {
    let run =
        |text: String, values: Vec<Value>| Statement::from_sql_and_values(db_backend(backend), text, values);
    if backend == Backend::Postgres {
        txn.execute_raw(run(
            format!("SELECT pg_advisory_xact_lock({DAILY_LOCK})"),
            vec![tenant.uuid().to_string().into()],
        ))
        .await?;
    }
    let id: Value = tenant.uuid().into();
    let p = param(backend, 1);
    txn.execute_raw(run(format!("DELETE FROM stats_daily WHERE tenant_id = {p}"), vec![id.clone()])).await?;
    let span = txn
        .query_one_raw(run(
            format!("SELECT MIN(hour), MAX(hour) FROM stats_hourly_coarse WHERE tenant_id = {p}"),
            vec![id.clone()],
        ))
        .await?;
    let Some(span) = span else { return Ok(()) };
    let (Some(first), Some(last)) =
        (span.try_get_by_index::<Option<i64>>(0)?, span.try_get_by_index::<Option<i64>>(1)?)
    else {
        return Ok(());
    };
    let at = |secs: i64| {
        Utc.timestamp_opt(secs, 0).single().ok_or_else(|| Error::Corrupt(format!("stats hour {secs}")))
    };
    let day = local_day_sql("hour", &offsets_by_hour(zone, at(first)?, at(last + 3_600)?));
    txn.execute_raw(run(
        format!(
            "INSERT INTO stats_daily (tenant_id, day, affiliate_id, campaign_id, {}) \
             SELECT tenant_id, {day}, affiliate_id, campaign_id, {} FROM stats_hourly_coarse WHERE tenant_id = {p} \
             GROUP BY tenant_id, {day}, affiliate_id, campaign_id",
            COUNTERS.join(", "),
            counter_sums()
        ),
        vec![id],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, DurationRound};
    use clickledger_domain::ids::{AffiliateId, CampaignId, TrackingLinkId, VisitorId};
    use clickledger_domain::reporting::{StatsInput, StatsReport};
    use clickledger_domain::stats_window::StatsWindow;

    use super::*;
    use crate::rollups::Stats;
    use crate::tracking::NewClick;
    use crate::{Db, Scope};

    fn click(
        n: usize,
        tenant: TenantId,
        affiliate: AffiliateId,
        campaign: CampaignId,
        at: DateTime<Utc>,
    ) -> NewClick {
        NewClick {
            new_visitor: true,
            country: Some(["DE", "MT", "GB"][n % 3].to_owned()),
            ..crate::rollups::tests::plain_click(
                format!("coarse-{n}"),
                tenant,
                (TrackingLinkId::new(), affiliate, campaign),
                VisitorId::new(),
                at,
            )
        }
    }

    async fn report(
        db: &Db,
        tenant: TenantId,
        window: (DateTime<Utc>, DateTime<Utc>),
        zone: Option<Tz>,
        group_by: &[&str],
        every_country: bool,
    ) -> StatsReport {
        // Filtering on every country changes no number but needs the detailed rollup.
        let filters = if every_country {
            vec![("COUNTRY".to_owned(), ["DE", "MT", "GB"].map(String::from).to_vec())]
        } else {
            vec![]
        };
        Stats::scoped(db, Scope::staff(tenant))
            .report(StatsInput {
                window: StatsWindow::Fixed { from: window.0, to: window.1 },
                zone,
                group_by: group_by.iter().map(|d| d.to_string()).collect(),
                filters,
                limit: Some(1_000),
                ..StatsInput::default()
            })
            .await
            .unwrap()
    }

    /// The coarse rollups answer exactly what the detailed one does, over whole days, partial
    /// days and another zone, before and after the tenant moves to another zone.
    #[tokio::test]
    async fn coarse_rollups_answer_as_the_detailed_one_and_follow_the_tenants_zone() {
        let test = crate::test_support::fresh_db("coarse").await;
        let db = &test.db;
        let tenant = crate::test_support::tenant(db, "coarse").await.id;
        let (affiliates, campaign) = ([AffiliateId::new(), AffiliateId::new()], CampaignId::new());
        let start = (Utc::now() - Duration::days(5)).duration_trunc(Duration::days(1)).unwrap();
        // One click at half past every hour for three days, the affiliates taking turns.
        let clicks: Vec<NewClick> = (0..72)
            .map(|n| {
                click(n, tenant, affiliates[n % 2], campaign, start + Duration::minutes(60 * n as i64 + 30))
            })
            .collect();
        crate::tracking::insert_clicks(db, &clicks).await.unwrap();

        let berlin = chrono_tz::Europe::Berlin;
        let same = |coarse: &StatsReport, detailed: &StatsReport, what: &str| {
            assert_eq!(coarse.rows, detailed.rows, "{what}");
            assert_eq!(coarse.totals, detailed.totals, "{what}");
        };
        let partial = (start + Duration::hours(5), start + Duration::hours(70));
        let whole = (start - Duration::days(1), start + Duration::days(4));
        for (window, zone, group_by) in [
            (partial, None, &["AFFILIATE", "DAY"][..]),
            (whole, None, &["DAY"][..]),
            (partial, Some(berlin), &["AFFILIATE", "DAY"][..]),
            (partial, None, &["CAMPAIGN", "HOUR"][..]),
            (partial, None, &["AFFILIATE"][..]),
        ] {
            let coarse = report(db, tenant, window, zone, group_by, false).await;
            let detailed = report(db, tenant, window, zone, group_by, true).await;
            same(&coarse, &detailed, &format!("{group_by:?} in {zone:?}"));
        }
        let utc_days = report(db, tenant, whole, None, &["DAY"], false).await;
        assert_eq!(utc_days.rows.len(), 3);
        assert_eq!(utc_days.totals.clicks, 72);

        // The tenant moves to Berlin: its days (read from the daily rows) are Berlin's now.
        crate::directory::Directory::new(db)
            .update_tenant(Scope::staff(tenant), None, Some(berlin))
            .await
            .unwrap();
        // And a click written after the move (00:30 in Berlin) lands on the new days too.
        crate::tracking::insert_clicks(
            db,
            &[click(72, tenant, affiliates[0], campaign, start + Duration::days(3) - Duration::minutes(90))],
        )
        .await
        .unwrap();
        let coarse = report(db, tenant, whole, None, &["AFFILIATE", "DAY"], false).await;
        let detailed = report(db, tenant, whole, None, &["AFFILIATE", "DAY"], true).await;
        same(&coarse, &detailed, "after the move");
        let berlin_days = report(db, tenant, whole, None, &["DAY"], false).await;
        assert_eq!(berlin_days.rows.len(), 4, "the last hours of each UTC day are the next Berlin day");
        assert_eq!(berlin_days.totals.clicks, 73);
    }

    /// A database that had rollups before the coarse ones existed gets them summed from its
    /// detailed rows, its tenants' days in their zones.
    #[tokio::test]
    async fn the_migration_sums_existing_rows_into_the_coarse_rollups() {
        use clickledger_migration::{Migrator, MigratorTrait};

        let test = crate::test_support::fresh_db("coarsemig").await;
        let db = &test.db;
        let tenant = crate::test_support::tenant(db, "coarsemig").await.id;
        let kolkata = chrono_tz::Asia::Kolkata;
        crate::directory::Directory::new(db)
            .update_tenant(Scope::staff(tenant), None, Some(kolkata))
            .await
            .unwrap();
        let (affiliate, campaign) = (AffiliateId::new(), CampaignId::new());
        let start = (Utc::now() - Duration::days(5)).duration_trunc(Duration::days(1)).unwrap();
        // Back to before the coarse rollups, however many migrations came after them.
        let since = Migrator::migrations()
            .iter()
            .rev()
            .position(|m| m.name() == "m20261207_000024_coarse_rollups")
            .expect("the coarse rollups' migration");
        Migrator::down(db.writer(), Some(since as u32 + 1)).await.unwrap();
        // Written by the detailed writer alone, as before the migration: this test module's
        // writer also writes coarse rows, so they are written straight into the table here.
        for n in 0..48i64 {
            crate::test_support::execute_raw(
                db,
                &format!(
                    "INSERT INTO stats_hourly (tenant_id, hour, affiliate_id, campaign_id, link_id, country, clicks, \
                     unique_clicks) VALUES ({t}, {h}, {a}, {c}, {l}, '{country}', 2, 1)",
                    t = literal(db, tenant.uuid()),
                    h = (start + Duration::hours(n)).timestamp(),
                    a = literal(db, affiliate.uuid()),
                    c = literal(db, campaign.uuid()),
                    l = literal(db, Uuid::new_v4()),
                    country = ["DE", "MT", "GB"][n as usize % 3],
                ),
            )
            .await;
        }
        Migrator::up(db.writer(), None).await.unwrap();
        let window = (start - Duration::days(1), start + Duration::days(3));
        let coarse = report(db, tenant, window, None, &["AFFILIATE", "DAY"], false).await;
        let detailed = report(db, tenant, window, None, &["AFFILIATE", "DAY"], true).await;
        assert_eq!(coarse.rows, detailed.rows);
        assert_eq!((coarse.totals.clicks, coarse.rows.len()), (96, 3), "48 hours over 3 days in Kolkata");
    }

    /// A UUID as a literal of the test's database.
    fn literal(db: &Db, id: Uuid) -> String {
        match db.backend() {
            Backend::Postgres => format!("'{id}'"),
            Backend::Sqlite => format!("X'{}'", id.simple()),
        }
    }
}
