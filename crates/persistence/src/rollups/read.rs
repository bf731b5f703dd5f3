//! The `stats` read: the rollups the domain's [`ReadPlan`] names, the viewer's own rows only,
//! summed in SQL down to the columns the request groups or filters by, then grouped, filtered
//! again, sorted and paged by the domain.

use chrono::{DateTime, TimeZone, Utc};
use clickledger_domain::ids::{AffiliateId, CampaignId, TrackingLinkId};
use clickledger_domain::reporting::{
    self, Counters, Dimension, HourlyRow, RowKey, StatsInput, StatsReport, StatsRequest,
};
use clickledger_domain::stats_sources::{HourlyGrain, instant_in_day};
use clickledger_migration::m20261207_000024_coarse_rollups::counter_sums;
use sea_orm::{ConnectionTrait, Statement, Value};
use uuid::Uuid;

use super::{db_backend, join, param};
use crate::entities::tenants;
use crate::{Db, Error, Result, Scope, Viewer};

pub struct Stats<'a> {
    db: &'a Db,
    scope: Scope,
}

/// One rollup table as read: its name, its time column, whether it keeps every dimension
/// (else only affiliate and campaign) and, for the daily one, the zone of its days.
struct Source {
    table: &'static str,
    time: &'static str,
    detailed: bool,
    days_of: Option<chrono_tz::Tz>,
}

impl Source {
    fn hourly(grain: HourlyGrain) -> Source {
        match grain {
            HourlyGrain::Detailed => {
                Source { table: "stats_hourly", time: "hour", detailed: true, days_of: None }
            }
            HourlyGrain::ByAffiliateAndCampaign => {
                Source { table: "stats_hourly_coarse", time: "hour", detailed: false, days_of: None }
            }
        }
    }

    fn daily(zone: chrono_tz::Tz) -> Source {
        Source { table: "stats_daily", time: "day", detailed: false, days_of: Some(zone) }
    }

    /// The instant a stored time value stands for: an hour's start, or an instant inside a
    /// local day.
    fn instant(&self, value: i64) -> Result<DateTime<Utc>> {
        match self.days_of {
            Some(zone) => Ok(instant_in_day(value, zone)),
            None => Utc
                .timestamp_opt(value, 0)
                .single()
                .ok_or_else(|| Error::Corrupt(format!("stats hour {value}"))),
        }
    }
}

impl<'a> Stats<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Stats { db, scope }
    }

    /// Validates the input (the tenant's time zone by default) and answers it.
    pub async fn report(&self, input: StatsInput) -> Result<StatsReport> {
        let tenant_zone = self.zone().await?;
        let request = StatsRequest::parse(input, tenant_zone)?;
        let plan = request.plan(tenant_zone);
        let mut reads: Vec<(Source, i64, i64)> = plan
            .hours
            .iter()
            .map(|(from, to)| (Source::hourly(plan.grain), from.timestamp(), to.timestamp()))
            .collect();
        if let Some((first, end)) = plan.days {
            reads.push((Source::daily(tenant_zone), first, end));
        }
        // The partial days and the whole ones are read side by side, on separate readers.
        let parts = futures_util::future::try_join_all(
            reads.iter().map(|(source, from, to)| self.rows(&request, source, *from, *to)),
        )
        .await?;
        Ok(reporting::aggregate(parts.into_iter().flatten(), &request))
    }

    async fn zone(&self) -> Result<chrono_tz::Tz> {
        use sea_orm::EntityTrait;
        let tenant = tenants::Entity::find_by_id(self.scope.tenant().uuid())
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)?;
        tenant.time_zone.parse().map_err(|_| Error::Corrupt(format!("time zone `{}`", tenant.time_zone)))
    }

    /// The source's rows with time values in `[from, to)`, summed per time value (when the
    /// request needs time) and per column the request groups or filters by. Filters on stored
    /// columns are applied here too (the domain applies every filter again, time ones included).
    async fn rows(
        &self,
        request: &StatsRequest,
        source: &Source,
        from: i64,
        to: i64,
    ) -> Result<Vec<HourlyRow>> {
        let backend = self.db.backend();
        let mut values: Vec<Value> = vec![self.scope.tenant().uuid().into(), from.into(), to.into()];
        let mut columns: Vec<&'static str> = Vec::new();
        for dimension in request.dimensions() {
            if let Some(column) = column_of(dimension)
                && !columns.contains(&column)
            {
                columns.push(column);
            }
        }
        if !source.detailed && columns.iter().any(|c| !["affiliate_id", "campaign_id"].contains(c)) {
            return Err(Error::Corrupt(format!("{} cannot answer by {columns:?}", source.table)));
        }
        // Without a time dimension every row of the range sums into one time value.
        let time =
            if request.needs_time() { source.time.to_owned() } else { format!("CAST({from} AS BIGINT)") };
        let mut group_by = vec!["tenant_id".to_owned()];
        if request.needs_time() {
            group_by.push(source.time.to_owned());
        }
        group_by.extend(columns.iter().map(|c| (*c).to_owned()));
        let selected: String = columns.iter().map(|c| format!(", {c}")).collect();
        let mut sql = format!(
            "SELECT {time}{selected}, {} FROM {} WHERE tenant_id = {} AND {t} >= {} AND {t} < {}",
            counter_sums(),
            source.table,
            param(backend, 1),
            param(backend, 2),
            param(backend, 3),
            t = source.time,
        );
        if let Viewer::Affiliate(affiliate) = self.scope.viewer() {
            values.push(affiliate.uuid().into());
            sql.push_str(&format!(" AND affiliate_id = {}", param(backend, values.len())));
        }
        for (dimension, wanted) in &request.filters {
            let Some((column, stored)) = stored_values(*dimension, wanted) else { continue };
            if stored.is_empty() {
                // Nothing stored can match (IDs of another kind, or malformed).
                return Ok(Vec::new());
            }
            let mut slots = Vec::with_capacity(stored.len());
            for value in stored {
                values.push(value);
                slots.push(param(backend, values.len()));
            }
            sql.push_str(&format!(" AND {column} IN ({})", slots.join(", ")));
        }
        sql.push_str(&format!(" GROUP BY {}", group_by.join(", ")));
        let statement = Statement::from_sql_and_values(db_backend(backend), sql, values);
        let rows = self.db.reader().query_all_raw(statement).await?;
        rows.iter().map(|row| summed_row(row, source, &columns)).collect()
    }
}

/// The stored column of a dimension; `None` for the time dimensions, which are computed.
fn column_of(dimension: Dimension) -> Option<&'static str> {
    Some(match dimension {
        Dimension::Affiliate => "affiliate_id",
        Dimension::Campaign => "campaign_id",
        Dimension::Link => "link_id",
        Dimension::Sub1 => "sub1",
        Dimension::Sub2 => "sub2",
        Dimension::Sub3 => "sub3",
        Dimension::Sub4 => "sub4",
        Dimension::Sub5 => "sub5",
        Dimension::Country => "country",
        Dimension::DeviceType => "device_type",
        Dimension::Os => "os",
        Dimension::Browser => "browser",
        Dimension::Source => "source",
        Dimension::Creative => "creative",
        Dimension::LandingPage => "landing_page",
        Dimension::Hour | Dimension::Day | Dimension::Month => return None,
    })
}

/// A filter on a stored column: the column and its values as stored (`""` and the nil UUID
/// for "no value"). `None` for the time dimensions.
fn stored_values(dimension: Dimension, wanted: &[String]) -> Option<(&'static str, Vec<Value>)> {
    fn ids<T: std::str::FromStr>(wanted: &[String], uuid: fn(T) -> Uuid) -> Vec<Value> {
        wanted
            .iter()
            .filter_map(
                |raw| if raw.is_empty() { Some(Uuid::nil()) } else { raw.parse::<T>().ok().map(uuid) },
            )
            .map(Value::from)
            .collect()
    }
    let column = column_of(dimension)?;
    let values = match dimension {
        Dimension::Affiliate => ids::<AffiliateId>(wanted, |id| id.uuid()),
        Dimension::Campaign => ids::<CampaignId>(wanted, |id| id.uuid()),
        Dimension::Link => ids::<TrackingLinkId>(wanted, |id| id.uuid()),
        _ => wanted.iter().map(|v| Value::from(v.clone())).collect(),
    };
    Some((column, values))
}

/// A summed row: its time value, the selected `columns` in order, then the counters.
fn summed_row(row: &sea_orm::QueryResult, source: &Source, columns: &[&str]) -> Result<HourlyRow> {
    let time: i64 = row.try_get_by_index(0)?;
    let mut key = RowKey::default();
    for (i, column) in columns.iter().enumerate() {
        let at = i + 1;
        let id = || -> Result<Option<Uuid>> {
            let id: Uuid = row.try_get_by_index(at)?;
            Ok((!id.is_nil()).then_some(id))
        };
        let text = || -> Result<String> { Ok(row.try_get_by_index(at)?) };
        match *column {
            "affiliate_id" => key.affiliate = id()?.map(AffiliateId::from_uuid),
            "campaign_id" => key.campaign = id()?.map(CampaignId::from_uuid),
            "link_id" => key.link = id()?.map(TrackingLinkId::from_uuid),
            "sub1" => key.subs[0] = text()?,
            "sub2" => key.subs[1] = text()?,
            "sub3" => key.subs[2] = text()?,
            "sub4" => key.subs[3] = text()?,
            "sub5" => key.subs[4] = text()?,
            "country" => key.country = text()?,
            "device_type" => key.device.device_type = text()?,
            "os" => key.device.os = text()?,
            "browser" => key.device.browser = text()?,
            "source" => key.source = text()?,
            "creative" => key.creative = text()?,
            "landing_page" => key.landing_page = text()?,
            other => return Err(Error::Corrupt(format!("stats column {other}"))),
        }
    }
    let first = columns.len() + 1;
    let int = |i: usize| -> Result<i64> { Ok(row.try_get_by_index(first + i)?) };
    Ok(HourlyRow {
        hour: source.instant(time)?,
        key,
        counters: Counters {
            clicks: int(0)?,
            unique_clicks: int(1)?,
            registrations: int(2)?,
            ftds: int(3)?,
            deposits: int(4)?,
            chargebacks: int(5)?,
            ftd_amount: join(int(6)?, int(7)?),
            deposit_amount: join(int(8)?, int(9)?),
            net_revenue: join(int(10)?, int(11)?),
            lots: join(int(12)?, int(13)?),
            commission: join(int(14)?, int(15)?),
        },
    })
}
