//! Reporting rollups: hourly counters per dimension key (`stats_hourly`), the same summed per
//! hour and per local day by affiliate and campaign ([`coarse`]), and the visitors seen per
//! link and UTC day (`stats_visitor_days`, for unique clicks), written in the very
//! transactions that write clicks ([`crate::click_rows`]) and conversions
//! ([`crate::conversions`]); and the tenant-scoped read behind `stats` ([`read`]).
//!
//! What counts is decided in `clickledger_domain::reporting`; this module only turns its
//! counters into rows. Each amount is stored as two exact integers, whole units and millionths,
//! so the upsert can add them in SQL on both databases over the whole range a postback may
//! carry (see the migration `m20261206_000009_stats_rollups`).

mod coarse;
mod raw;
mod read;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use clickledger_domain::ids::{AffiliateId, CampaignId, TenantId, TrackingLinkId};
use clickledger_domain::reporting::{self, Counters, Device, RowKey};
use clickledger_migration::m20261207_000024_coarse_rollups::COUNTERS;
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};
use uuid::Uuid;

use self::coarse::Coarse;
pub(crate) use self::coarse::Zones;
pub(crate) use self::coarse::rebuild_daily;
pub(crate) use self::raw::ClickWriterConn;
pub use self::read::Stats;
use crate::conversions::{ClickRow, Conversion, ConversionEvent};
use crate::tracking::NewClick;
use crate::{Backend, Result};

/// Millionths per unit: amounts are kept at six places.
const MICROS: i64 = 1_000_000;
/// Rows per multi-row upsert (33 parameters each).
const HOURLY_ROWS_PER_STATEMENT: usize = 64;
/// Rows per visitor-day insert (4 parameters each).
const VISITOR_ROWS_PER_STATEMENT: usize = 256;

const KEY_COLUMNS: [&str; 17] = [
    "tenant_id",
    "hour",
    "affiliate_id",
    "campaign_id",
    "link_id",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "country",
    "device_type",
    "os",
    "browser",
    "source",
    "creative",
    "landing_page",
];

/// A value bound to a rollup statement, on whichever connection runs it.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Uuid(Uuid),
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
}

impl From<Param> for Value {
    fn from(param: Param) -> Value {
        match param {
            Param::Uuid(id) => id.into(),
            Param::Int(n) => n.into(),
            Param::Text(text) => text.into(),
            Param::Time(at) => at.into(),
        }
    }
}

/// One statement with its parameters, `?` or `$n` as the backend wants.
pub(crate) struct Sql {
    text: String,
    params: Vec<Param>,
}

fn placeholders(backend: Backend, rows: usize, per_row: usize) -> String {
    let mut n = 0;
    let row = |n: &mut usize| {
        let cells: Vec<String> = (0..per_row)
            .map(|_| {
                *n += 1;
                match backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${n}"),
                }
            })
            .collect();
        format!("({})", cells.join(","))
    };
    (0..rows).map(|_| row(&mut n)).collect::<Vec<_>>().join(",")
}

/// An amount as whole units and millionths (the rest, same sign), rounded half away from
/// zero to six places as the exact columns round.
fn split(amount: Decimal) -> Result<[i64; 2]> {
    let rounded = amount.round_dp_with_strategy(6, RoundingStrategy::MidpointAwayFromZero);
    let units = rounded.trunc();
    let micros = (rounded - units).checked_mul(MICROS.into()).and_then(|m| i64::try_from(m).ok());
    match (i64::try_from(units).ok(), micros) {
        (Some(units), Some(micros)) => Ok([units, micros]),
        _ => Err(clickledger_domain::Error::invalid("amount", "too large for the reports").into()),
    }
}

fn join(units: i64, micros: i64) -> Decimal {
    (Decimal::from(units) + Decimal::new(micros, 6)).normalize()
}

fn counter_params(c: &Counters) -> Result<Vec<i64>> {
    let mut params = vec![c.clicks, c.unique_clicks, c.registrations, c.ftds, c.deposits, c.chargebacks];
    for amount in [c.ftd_amount, c.deposit_amount, c.net_revenue, c.lots, c.commission] {
        params.extend(split(amount)?);
    }
    Ok(params)
}

fn id_or_nil(id: Option<Uuid>) -> Param {
    Param::Uuid(id.unwrap_or(Uuid::nil()))
}

/// Changes to the hourly rows, summed per key before they are written (the upsert of one
/// statement may not touch a row twice).
#[derive(Default)]
struct Deltas(HashMap<(TenantId, i64, RowKey), Counters>);

impl Deltas {
    fn add(&mut self, tenant: TenantId, at: DateTime<Utc>, key: RowKey, counters: &Counters) {
        if counters.is_zero() {
            return;
        }
        let hour = reporting::hour_of(at).timestamp();
        self.0.entry((tenant, hour, key)).or_default().add(counters);
    }

    /// The tenants whose rows change, each once.
    fn tenants(&self) -> Vec<TenantId> {
        let mut tenants: Vec<TenantId> = self.0.keys().map(|(tenant, _, _)| *tenant).collect();
        tenants.sort_by_key(|t| t.uuid());
        tenants.dedup();
        tenants
    }

    async fn write(self, txn: &DatabaseTransaction, backend: Backend) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let zones = coarse::zones_in(txn, backend, &self.tenants()).await?;
        self.write_in(txn, backend, &zones).await
    }

    /// As [`Self::write`], in `zones` the caller read while it held the tenants' rows, which
    /// a zone change updates first (see [`coarse`]'s note), so they are current.
    async fn write_in(self, txn: &DatabaseTransaction, backend: Backend, zones: &Zones) -> Result<()> {
        for sql in self.statements(backend, zones)? {
            let values: Vec<Value> = sql.params.into_iter().map(Value::from).collect();
            txn.execute_raw(Statement::from_sql_and_values(db_backend(backend), sql.text, values)).await?;
        }
        Ok(())
    }

    /// The upserts of the detailed rows, then of the coarse ones.
    fn statements(self, backend: Backend, zones: &Zones) -> Result<Vec<Sql>> {
        let mut coarse = Coarse::default();
        for ((tenant, hour, key), counters) in &self.0 {
            coarse.add(*tenant, *hour, key, counters, zones)?;
        }
        let mut rows: Vec<_> = self.0.into_iter().collect();
        // Every writer (click batches, postback batches, other replicas) touches rows in one
        // order, so concurrent upserts on PostgreSQL wait for each other instead of deadlocking.
        rows.sort_by(|((t1, h1, k1), _), ((t2, h2, k2), _)| {
            (t1.uuid(), h1, sort_key(k1)).cmp(&(t2.uuid(), h2, sort_key(k2)))
        });
        let rows = rows
            .into_iter()
            .map(|((tenant, hour, key), counters)| {
                let mut params = vec![
                    Param::Uuid(tenant.uuid()),
                    Param::Int(hour),
                    id_or_nil(key.affiliate.map(|id| id.uuid())),
                    id_or_nil(key.campaign.map(|id| id.uuid())),
                    id_or_nil(key.link.map(|id| id.uuid())),
                ];
                params.extend(key.subs.into_iter().map(Param::Text));
                params.extend(
                    [
                        key.country,
                        key.device.device_type,
                        key.device.os,
                        key.device.browser,
                        key.source,
                        key.creative,
                        key.landing_page,
                    ]
                    .into_iter()
                    .map(Param::Text),
                );
                (params, counters)
            })
            .collect();
        let mut statements = upserts(backend, "stats_hourly", &KEY_COLUMNS, rows)?;
        statements.extend(coarse.statements(backend)?);
        Ok(statements)
    }
}

/// Multi-row upserts into a rollup table: each row's key parameters (in `key_columns` order)
/// and the counters it adds.
fn upserts(
    backend: Backend,
    table: &str,
    key_columns: &[&str],
    rows: Vec<(Vec<Param>, Counters)>,
) -> Result<Vec<Sql>> {
    let columns: Vec<&str> = key_columns.iter().chain(COUNTERS.iter()).copied().collect();
    let updates: Vec<String> = COUNTERS.iter().map(|c| format!("{c} = {table}.{c} + excluded.{c}")).collect();
    let mut statements = Vec::new();
    for chunk in rows.chunks(HOURLY_ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * columns.len());
        for (key, counters) in chunk {
            params.extend(key.iter().cloned());
            params.extend(counter_params(counters)?.into_iter().map(Param::Int));
        }
        let text = format!(
            "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
            columns.join(", "),
            placeholders(backend, chunk.len(), columns.len()),
            key_columns.join(", "),
            updates.join(", ")
        );
        statements.push(Sql { text, params });
    }
    Ok(statements)
}

/// A row key as a tuple that orders.
fn sort_key(key: &RowKey) -> impl Ord + '_ {
    (
        key.affiliate.map(|id| id.uuid()),
        key.campaign.map(|id| id.uuid()),
        key.link.map(|id| id.uuid()),
        &key.subs,
        &key.country,
        (&key.device.device_type, &key.device.os, &key.device.browser),
    )
}

/// A visitor's day on a link: the click that adds it is a unique click.
pub(crate) type VisitorDay = (Uuid, i64, Uuid, Uuid);

fn visitor_day(click: &NewClick) -> VisitorDay {
    (
        click.tenant_id.uuid(),
        reporting::day_of(click.clicked_at),
        click.link_id.uuid(),
        click.visitor_id.uuid(),
    )
}

/// Parameters per visitor-day row: its key, the start of its day and its first click's time.
const VISITOR_DAY_PARAMS: usize = 6;

/// Stores the visitor-days of returning visitors' clicks that are their first on the link
/// that day, returning those it stored: a day already stored, or with an earlier click on the
/// link (a first click is stored without its day, below), is not unique.
fn visitor_day_inserts(backend: Backend, days: &[(VisitorDay, DateTime<Utc>)]) -> Vec<Sql> {
    days.chunks(VISITOR_ROWS_PER_STATEMENT)
        .map(|chunk| Sql {
            text: format!(
                "WITH v (tenant_id, day, link_id, visitor_id, day_start, first_at) AS (VALUES {}) \
                 INSERT INTO stats_visitor_days (tenant_id, day, link_id, visitor_id) \
                 SELECT tenant_id, day, link_id, visitor_id FROM v WHERE NOT EXISTS (\
                   SELECT 1 FROM clicks k WHERE k.tenant_id = v.tenant_id AND k.visitor_id = v.visitor_id \
                   AND k.clicked_at >= v.day_start AND k.clicked_at < v.first_at AND k.link_id = v.link_id) \
                 ON CONFLICT DO NOTHING RETURNING tenant_id, day, link_id, visitor_id",
                placeholders(backend, chunk.len(), VISITOR_DAY_PARAMS)
            ),
            params: chunk
                .iter()
                .flat_map(|&((tenant, day, link, visitor), first_at)| {
                    let day_start = DateTime::from_timestamp(day * 86_400, 0).unwrap_or_default();
                    [
                        Param::Uuid(tenant),
                        Param::Int(day),
                        Param::Uuid(link),
                        Param::Uuid(visitor),
                        Param::Time(day_start),
                        Param::Time(first_at),
                    ]
                })
                .collect(),
        })
        .collect()
}

/// The hourly changes of newly stored clicks, given which returning visitors' days were new.
fn click_deltas(clicks: &[&NewClick], mut new_days: HashSet<VisitorDay>) -> Deltas {
    let mut deltas = Deltas::default();
    for click in clicks {
        // A new visitor's click is its first anywhere; a returning visitor's, the first of the
        // batch on a new visitor-day.
        let unique = click.new_visitor || new_days.remove(&visitor_day(click));
        let key = RowKey {
            affiliate: Some(click.affiliate_id),
            campaign: Some(click.campaign_id),
            link: Some(click.link_id),
            subs: click.subs.clone().map(Option::unwrap_or_default),
            country: click.country.clone().unwrap_or_default(),
            device: Device::of(click.user_agent.as_deref()),
            source: click.source.clone().unwrap_or_default(),
            creative: click.creative.clone().unwrap_or_default(),
            landing_page: click.landing_page.clone().unwrap_or_default(),
        };
        deltas.add(click.tenant_id, click.clicked_at, key, &Counters::click(unique));
    }
    deltas
}

/// The visitor-days of returning visitors' clicks, each with its first click in the batch.
/// A new visitor (no cookie: its ID was minted for the click) needs no row: nothing earlier
/// can share its day, and its later clicks find this one in `clicks`.
fn returning_days(clicks: &[&NewClick]) -> Vec<(VisitorDay, DateTime<Utc>)> {
    // Sorted, like the hourly rows, so concurrent writers take row locks in one order.
    let mut days: std::collections::BTreeMap<VisitorDay, DateTime<Utc>> = std::collections::BTreeMap::new();
    for click in clicks.iter().filter(|click| !click.new_visitor) {
        let first = days.entry(visitor_day(click)).or_insert(click.clicked_at);
        *first = (*first).min(click.clicked_at);
    }
    days.into_iter().collect()
}

/// Rollups of clicks just inserted, in the click writer's transaction.
pub(crate) async fn record_clicks<C: ClickWriterConn>(conn: &mut C, clicks: &[&NewClick]) -> Result<()> {
    if clicks.is_empty() {
        return Ok(());
    }
    let mut new_days = HashSet::new();
    for sql in visitor_day_inserts(C::BACKEND, &returning_days(clicks)) {
        new_days.extend(conn.fetch_days(&sql).await?);
    }
    let deltas = click_deltas(clicks, new_days);
    let zones = coarse::zones_on(conn, &deltas.tenants()).await?;
    for sql in deltas.statements(C::BACKEND, &zones)? {
        conn.execute(&sql).await?;
    }
    Ok(())
}

fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

fn db_backend(backend: Backend) -> DbBackend {
    match backend {
        Backend::Sqlite => DbBackend::Sqlite,
        Backend::Postgres => DbBackend::Postgres,
    }
}

/// Where a stored click came from, as the rollups key it.
fn origin_of_click(row: &ClickRow) -> RowKey {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    RowKey {
        affiliate: Some(AffiliateId::from_uuid(row.affiliate)),
        campaign: Some(CampaignId::from_uuid(row.campaign)),
        link: Some(TrackingLinkId::from_uuid(row.link)),
        subs: row.subs.clone().map(Option::unwrap_or_default),
        country: text(&row.country),
        device: Device::of(row.user_agent.as_deref()),
        source: text(&row.source),
        creative: text(&row.creative),
        landing_page: text(&row.landing_page),
    }
}

/// What a conversion's click says about where it came from.
async fn converting_click(
    txn: &DatabaseTransaction,
    backend: Backend,
    tenant: TenantId,
    click_id: &str,
) -> Result<Option<RowKey>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT affiliate_id, campaign_id, link_id, sub1, sub2, sub3, sub4, sub5, user_agent, source, creative, \
             landing_page, country FROM clicks WHERE tenant_id = ? AND click_id = ?"
        }
        Backend::Postgres => {
            "SELECT affiliate_id, campaign_id, link_id, sub1, sub2, sub3, sub4, sub5, user_agent, source, creative, \
             landing_page, country FROM clicks WHERE tenant_id = $1 AND click_id = $2"
        }
    };
    let statement =
        Statement::from_sql_and_values(db_backend(backend), sql, [tenant.uuid().into(), click_id.into()]);
    let Some(row) = txn.query_one_raw(statement).await? else { return Ok(None) };
    let text =
        |i: usize| -> Result<String> { Ok(row.try_get_by_index::<Option<String>>(i)?.unwrap_or_default()) };
    let user_agent: Option<String> = row.try_get_by_index(8)?;
    Ok(Some(RowKey {
        affiliate: Some(AffiliateId::from_uuid(row.try_get_by_index(0)?)),
        campaign: Some(CampaignId::from_uuid(row.try_get_by_index(1)?)),
        link: Some(TrackingLinkId::from_uuid(row.try_get_by_index(2)?)),
        subs: [text(3)?, text(4)?, text(5)?, text(6)?, text(7)?],
        country: text(12)?,
        device: Device::of(user_agent.as_deref()),
        source: text(9)?,
        creative: text(10)?,
        landing_page: text(11)?,
    }))
}

/// The click of the conversion a player is bound to, if it had one.
async fn bound_click(
    txn: &DatabaseTransaction,
    backend: Backend,
    tenant: TenantId,
    player: &str,
) -> Result<Option<String>> {
    let sql = format!(
        "SELECT c.click_id FROM players p JOIN conversions c ON c.tenant_id = p.tenant_id AND c.id = p.conversion_id \
         WHERE p.tenant_id = {} AND p.player_id = {}",
        param(backend, 1),
        param(backend, 2)
    );
    let statement =
        Statement::from_sql_and_values(db_backend(backend), sql, [tenant.uuid().into(), player.into()]);
    match txn.query_one_raw(statement).await? {
        Some(row) => Ok(row.try_get_by_index::<Option<String>>(0)?),
        None => Ok(None),
    }
}

/// Where a conversion counts: the row of the click it converted through (the postback's,
/// else the last of its journey, else, for a bound player's later conversions, the click of the
/// conversion that bound the player), with the postback's country, else its click's.
async fn origin_of(
    txn: &DatabaseTransaction,
    backend: Backend,
    c: &Conversion,
    has_credits: bool,
    country: Option<&str>,
    read: Option<&ClickRow>,
) -> Result<RowKey> {
    let mut click = c.click_id.clone().or_else(|| c.journey.last().map(|t| t.click_id.clone()));
    if click.is_none()
        && has_credits
        && let Some(player) = &c.player_id
    {
        click = bound_click(txn, backend, c.tenant_id, player).await?;
    }
    let origin = match click {
        // Attribution read the click the postback names already; others are read here.
        Some(click) if has_credits => match read.filter(|row| row.click_id == click) {
            Some(row) => Some(origin_of_click(row)),
            None => converting_click(txn, backend, c.tenant_id, &click).await?,
        },
        _ => None,
    };
    let origin = origin.unwrap_or_else(|| RowKey { campaign: c.campaign_id, ..RowKey::default() });
    let country = match country.filter(|named| !named.is_empty()) {
        Some(named) => named.to_owned(),
        None => origin.country.clone(),
    };
    Ok(RowKey { country, ..origin })
}

/// The rollup rows a conversion adds, as it stands.
fn rows_of(c: &Conversion, origin: RowKey) -> Vec<(RowKey, Counters)> {
    let credits: Vec<(AffiliateId, Option<Decimal>)> =
        c.credits.iter().map(|credit| (credit.affiliate_id, credit.commission.map(|m| m.amount))).collect();
    reporting::conversion_rows(origin, &credits, Counters::conversion(c.event, c.status, c.amount, c.lots))
}

/// Adds newly written conversions to the rollups, in their own transaction. Each comes with
/// the country its postback named, if any, and the row of the click it named, if attribution
/// read it. `zones` are their tenants' time zones as the transaction read them when it
/// reserved their event numbers, which holds the tenant rows (a zone change waits for it).
pub(crate) async fn record_conversion(
    txn: &DatabaseTransaction,
    backend: Backend,
    zones: &Zones,
    conversions: &[(&ConversionEvent, Option<&str>, Option<&ClickRow>)],
) -> Result<()> {
    let mut deltas = Deltas::default();
    for &(event, country, click) in conversions {
        let c = &event.conversion;
        let origin = origin_of(txn, backend, c, !c.credits.is_empty(), country, click).await?;
        for (key, counters) in rows_of(c, origin) {
            deltas.add(c.tenant_id, c.occurred_at, key, &counters);
        }
    }
    deltas.write_in(txn, backend, zones).await
}

/// A conversion written outside ingestion (imported history) counts in the hour it occurred.
pub(crate) async fn record_added(txn: &DatabaseTransaction, backend: Backend, c: &Conversion) -> Result<()> {
    let origin = origin_of(txn, backend, c, !c.credits.is_empty(), None, None).await?;
    let mut deltas = Deltas::default();
    for (key, counters) in rows_of(c, origin) {
        deltas.add(c.tenant_id, c.occurred_at, key, &counters);
    }
    deltas.write(txn, backend).await
}

/// The changes that take back what `before` counted at `from` and add what `after` counts
/// at `to`.
fn replaced(before: &Conversion, from: RowKey, after: &Conversion, to: RowKey) -> Deltas {
    let mut deltas = Deltas::default();
    for (key, counters) in rows_of(before, from) {
        deltas.add(before.tenant_id, before.occurred_at, key, &counters.negated());
    }
    for (key, counters) in rows_of(after, to) {
        deltas.add(after.tenant_id, after.occurred_at, key, &counters);
    }
    deltas
}

/// A conversion's status moved forward: its rows lose what it counted before and gain what it
/// counts now (a rejected conversion counts nothing; its commission is what its entries say).
pub(crate) async fn record_status_change(
    txn: &DatabaseTransaction,
    backend: Backend,
    before: &Conversion,
    after: &Conversion,
    country: Option<&str>,
) -> Result<()> {
    let has_credits = !before.credits.is_empty();
    let origin = origin_of(txn, backend, before, has_credits, country, None).await?;
    replaced(before, origin.clone(), after, origin).write(txn, backend).await
}

/// A conversion gained an origin after it was stored (a chargeback applied when its original
/// arrived): its rows as it was stored lose what it counted, and the rows of its click, now
/// that it has credits, gain what it counts now.
pub(crate) async fn record_relinked(
    txn: &DatabaseTransaction,
    backend: Backend,
    before: &Conversion,
    after: &Conversion,
    country: Option<&str>,
) -> Result<()> {
    let from = origin_of(txn, backend, before, !before.credits.is_empty(), country, None).await?;
    let to = origin_of(txn, backend, after, !after.credits.is_empty(), country, None).await?;
    replaced(before, from, after, to).write(txn, backend).await
}

#[cfg(test)]
pub(crate) mod tests {
    use clickledger_domain::reporting::StatsInput;
    use clickledger_domain::stats_window::StatsWindow;

    use super::*;
    use crate::{Scope, Viewer};

    #[test]
    fn amounts_split_and_join_exactly_across_the_whole_postback_range() {
        for text in
            ["0", "19.99", "-0.000001", "98765432109876.54", "-987654321098.123456", "1000000000000000"]
        {
            let amount: Decimal = text.parse().unwrap();
            let [units, micros] = split(amount).unwrap();
            assert_eq!(join(units, micros), amount.normalize(), "{text}");
        }
        assert_eq!(
            join(
                split("0.0000005".parse().unwrap()).unwrap()[0],
                split("0.0000005".parse().unwrap()).unwrap()[1]
            )
            .to_string(),
            "0.000001"
        );
        // Sums of parts, as the upsert adds them, still join exactly.
        let (a, b) = (split("0.75".parse().unwrap()).unwrap(), split("1.5".parse().unwrap()).unwrap());
        assert_eq!(join(a[0] + b[0], a[1] + b[1]).to_string(), "2.25");
        assert!(split(Decimal::MAX).is_err());
    }

    /// A returning visitor's click on `link` with nothing else known of it.
    pub(crate) fn plain_click(
        click_id: String,
        tenant: TenantId,
        (link, affiliate, campaign): (TrackingLinkId, AffiliateId, CampaignId),
        visitor: clickledger_domain::ids::VisitorId,
        at: DateTime<Utc>,
    ) -> NewClick {
        NewClick {
            click_id,
            tenant_id: tenant,
            link_id: link,
            affiliate_id: affiliate,
            campaign_id: campaign,
            visitor_id: visitor,
            new_visitor: false,
            clicked_at: at,
            ip: None,
            user_agent: None,
            referrer: None,
            subs: [None, None, None, None, None],
            source: None,
            creative: None,
            landing_page: None,
            accept_language: None,
            is_bot: false,
            velocity: false,
            country: None,
        }
    }

    #[tokio::test]
    async fn clicks_count_once_even_when_a_batch_is_retried_and_a_visitor_once_a_day_per_link() {
        use chrono::Duration;
        use clickledger_domain::ids::{AffiliateId, CampaignId, TrackingLinkId, VisitorId};

        let test = crate::test_support::fresh_db("rollups").await;
        let db = &test.db;
        let tenant = crate::test_support::tenant(db, "rollups").await.id;
        let (link, other_link) = (TrackingLinkId::new(), TrackingLinkId::new());
        let (affiliate, campaign) = (AffiliateId::new(), CampaignId::new());
        let (returning, once) = (VisitorId::new(), VisitorId::new());
        let now = Utc::now();
        let click = |n: usize, link: TrackingLinkId, visitor: VisitorId, at: DateTime<Utc>| NewClick {
            user_agent: Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36".into(),
            ),
            subs: [Some("s".into()), None, None, None, None],
            ..plain_click(format!("rollup-{n}"), tenant, (link, affiliate, campaign), visitor, at)
        };
        // The returning visitor clicks three times on one link and once on another; the other
        // visitor once. Unique: 3 (a visitor per link and day).
        let batch = vec![
            click(0, link, returning, now),
            click(1, link, returning, now),
            click(2, other_link, returning, now),
            click(3, link, once, now),
        ];
        crate::tracking::insert_clicks(db, &batch).await.unwrap();
        crate::tracking::insert_clicks(db, &batch).await.unwrap();
        crate::tracking::insert_clicks(db, &[click(4, link, returning, now)]).await.unwrap();

        let report = Stats::scoped(db, Scope::staff(tenant))
            .report(StatsInput {
                window: StatsWindow::Fixed { from: now - Duration::hours(1), to: now + Duration::hours(1) },
                group_by: vec!["LINK".into(), "BROWSER".into()],
                ..StatsInput::default()
            })
            .await
            .unwrap();
        assert_eq!((report.totals.clicks, report.totals.unique_clicks), (5, 3), "the retry counted nothing");
        let on_link = report.rows.iter().find(|r| r.key[0].1 == Some(link.to_string())).unwrap();
        assert_eq!((on_link.counters.clicks, on_link.counters.unique_clicks), (4, 2));
        assert_eq!(on_link.key[1].1.as_deref(), Some("Chrome"));

        // Another affiliate sees none of it.
        let outsider = Scope::new(tenant, Viewer::Affiliate(AffiliateId::new()));
        let report = Stats::scoped(db, outsider)
            .report(StatsInput {
                window: StatsWindow::Fixed { from: now - Duration::hours(1), to: now + Duration::hours(1) },
                ..StatsInput::default()
            })
            .await
            .unwrap();
        assert_eq!(report.totals, Counters::default());
    }

    #[tokio::test]
    async fn a_new_visitors_first_click_is_unique_and_its_later_clicks_find_it() {
        use chrono::{Duration, DurationRound};
        use clickledger_domain::ids::{AffiliateId, CampaignId, TrackingLinkId, VisitorId};

        let test = crate::test_support::fresh_db("newvisitor").await;
        let db = &test.db;
        let tenant = crate::test_support::tenant(db, "newvisitor").await.id;
        let (link, other_link) = (TrackingLinkId::new(), TrackingLinkId::new());
        let (affiliate, campaign, newcomer) = (AffiliateId::new(), CampaignId::new(), VisitorId::new());
        // Noon yesterday: every click below falls in one UTC day.
        let noon =
            (Utc::now() - Duration::days(1)).duration_trunc(Duration::days(1)).unwrap() + Duration::hours(12);
        let click = |n: usize, link: TrackingLinkId, new_visitor: bool, seconds: i64| NewClick {
            new_visitor,
            ..plain_click(
                format!("newcomer-{n}"),
                tenant,
                (link, affiliate, campaign),
                newcomer,
                noon + Duration::seconds(seconds),
            )
        };
        // Without our cookie: unique, and no visitor-day is stored for it.
        crate::tracking::insert_clicks(db, &[click(0, link, true, 0)]).await.unwrap();
        // Back with the cookie: on the same link it finds that click; on another link it is new.
        crate::tracking::insert_clicks(db, &[click(1, link, false, 1), click(2, other_link, false, 1)])
            .await
            .unwrap();
        // And once more on each: both days are known now.
        crate::tracking::insert_clicks(db, &[click(3, link, false, 2), click(4, other_link, false, 2)])
            .await
            .unwrap();

        let report = Stats::scoped(db, Scope::staff(tenant))
            .report(StatsInput {
                window: StatsWindow::Fixed { from: noon - Duration::hours(1), to: noon + Duration::hours(1) },
                group_by: vec!["LINK".into()],
                ..StatsInput::default()
            })
            .await
            .unwrap();
        assert_eq!((report.totals.clicks, report.totals.unique_clicks), (5, 2));
        let on = |link: TrackingLinkId| {
            let row = report.rows.iter().find(|r| r.key[0].1 == Some(link.to_string())).unwrap();
            (row.counters.clicks, row.counters.unique_clicks)
        };
        assert_eq!(on(link), (3, 1), "the first click counted; the later ones found it");
        assert_eq!(on(other_link), (2, 1));
    }
}
