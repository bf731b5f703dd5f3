//! Scenario `stats`: the `stats` report over a big tenant, through GraphQL to the real server.
//!
//! The tenant is created through GraphQL (affiliates, campaigns, tracking links); its history
//! is then written straight into the database with a few bulk statements (a recursive CTE on
//! SQLite, `generate_series` on PostgreSQL), because writing 10 million clicks through the
//! product's own write path (redirects, the write-behind, postbacks) would take hours here.
//! The bulk statements write what the product keeps for that traffic:
//!
//! - `clicks`: `--stats-clicks` clicks (10 million by default) spread evenly over the last
//!   90 days, click `n` on link `n % links`, with one of the 8 browser user agents of
//!   scenario 1, one of [`COUNTRIES`] and one of [`SUB_IDS`] `sub1` values; every click is a
//!   new visitor's (no cookie), so every click is unique and no visitor-day is stored;
//! - `conversions` (and their `conversion_credits`, 100 % to the click's affiliate): every
//!   [`CLICKS_PER_CONVERSION`]th click converts 10 minutes later, one in four as an `ftd` of
//!   [`FTD_AMOUNT`] EUR, the others as `registration`s; approved, no commission plan;
//! - `stats_hourly`: the rollup rows the product's writers would have upserted for those
//!   clicks and conversions (`persistence::rollups`: one row per UTC hour and dimension key,
//!   the device parsed from the user agent by the product's own parser), and the coarse
//!   rollups summed from them as the writers sum them (`stats_hourly_coarse` per hour,
//!   affiliate and campaign; `stats_daily` per day of the tenant's zone, UTC here).
//!
//! Then the report is checked (its totals over the whole history must equal what was seeded,
//! or the scenario fails) and timed: `stats` grouped by AFFILIATE × DAY over the last 30 days,
//! one query at a time, for `--duration` seconds (at least [`MIN_QUERIES`] queries).

use std::time::{Duration, Instant};

use chrono::Utc;
use clickledger_domain::reporting::Device;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use sqlx::Connection as _;

use clickledger_migration::m20261207_000024_coarse_rollups::{COUNTERS, counter_sums, local_day_sql};

use crate::server::Database;
use crate::{Result, setup};

pub const P99_TARGET_MS: f64 = 50.0;
/// Days of history seeded.
const HISTORY_DAYS: i64 = 90;
/// Days the timed report covers.
const REPORT_DAYS: i64 = 30;
pub const AFFILIATES: usize = 50;
pub const CAMPAIGNS: usize = 5;
pub const LINKS_PER_AFFILIATE: usize = 4;
pub const SUB_IDS: usize = 20;
pub const COUNTRIES: [&str; 8] = ["DE", "GB", "FR", "ES", "IT", "NL", "SE", "MT"];
pub const CLICKS_PER_CONVERSION: i64 = 50;
pub const FTD_AMOUNT: i64 = 50;
/// A conversion happens this long after its click.
const CONVERSION_DELAY_SECS: i64 = 600;
const MIN_QUERIES: usize = 20;

pub struct StatsOutcome {
    pub clicks: i64,
    pub conversions: i64,
    pub rollup_rows: i64,
    pub rollup_rows_in_window: i64,
    /// Coarse rows (hourly and daily) the timed report reads.
    pub coarse_rows_in_window: i64,
    pub seed_time: Duration,
    pub latency: Histogram<u64>,
    /// The same report answering one page of 10 rows.
    pub small_page_latency: Histogram<u64>,
    pub queries: usize,
    pub rows_per_answer: i64,
    pub plan: String,
}

/// What was seeded, as the report must total it.
struct Expected {
    clicks: i64,
    registrations: i64,
    ftds: i64,
}

impl Expected {
    fn of(clicks: i64) -> Expected {
        let conversions = (clicks + CLICKS_PER_CONVERSION - 1) / CLICKS_PER_CONVERSION;
        // Conversion k (of click k × CLICKS_PER_CONVERSION) is an FTD when k % 4 == 0.
        let ftds = (conversions + 3) / 4;
        Expected { clicks, registrations: conversions - ftds, ftds }
    }
}

pub async fn run(
    client: &reqwest::Client,
    base: &str,
    database: &Database,
    clicks: i64,
    duration: Duration,
) -> Result<StatsOutcome> {
    eprintln!(
        "scenario stats: a tenant with {AFFILIATES} affiliates, {CAMPAIGNS} campaigns, {} links",
        AFFILIATES * LINKS_PER_AFFILIATE
    );
    let tenant = setup::stats_tenant(client, base, AFFILIATES, CAMPAIGNS, LINKS_PER_AFFILIATE).await?;
    let now = Utc::now().timestamp();
    let start = now - HISTORY_DAYS * 86_400;
    eprintln!("seeding {clicks} clicks over {HISTORY_DAYS} days …");
    let seeding = Instant::now();
    let seed = Seed { slug: tenant.slug.clone(), clicks, start, span: now - start };
    let mut conn = Conn::open(database).await?;
    let (rollup_rows, rollup_rows_in_window, coarse_rows_in_window, plan) =
        seed.write(&mut conn, now).await?;
    let seed_time = seeding.elapsed();
    eprintln!(
        "seeded in {seed_time:?}: {rollup_rows} rollup rows, {rollup_rows_in_window} in the last {REPORT_DAYS} days \
         ({coarse_rows_in_window} coarse rows read)"
    );

    // Consistency: the report over the whole history totals what was seeded.
    let expected = Expected::of(clicks);
    let whole = stats_input(start - 3_600, now + 3_600, vec![], 1_000);
    let totals = stats(client, base, &tenant.token, &whole).await?["totals"].clone();
    let ftd_amount = (expected.ftds * FTD_AMOUNT).to_string();
    let seen = (
        totals["clicks"].as_i64(),
        totals["uniqueClicks"].as_i64(),
        totals["registrations"].as_i64(),
        totals["ftds"].as_i64(),
        totals["ftdAmount"].as_str(),
    );
    let wanted = (
        Some(expected.clicks),
        Some(expected.clicks),
        Some(expected.registrations),
        Some(expected.ftds),
        Some(ftd_amount.as_str()),
    );
    if seen != wanted {
        return Err(format!("the stats totals {totals} are not what was seeded: {wanted:?}").into());
    }

    let timed = stats_input(now - REPORT_DAYS * 86_400, now, vec!["AFFILIATE", "DAY"], 1_000);
    let (latency, queries, rows_per_answer) =
        timed_queries(client, base, &tenant.token, &timed, duration).await?;
    // The same read answering one page of 10 rows: what the rest costs (GraphQL and JSON of
    // 1,000 rows) is the difference.
    let small_page = stats_input(now - REPORT_DAYS * 86_400, now, vec!["AFFILIATE", "DAY"], 10);
    let (small_page_latency, ..) =
        timed_queries(client, base, &tenant.token, &small_page, duration / 2).await?;
    Ok(StatsOutcome {
        clicks,
        conversions: expected.registrations + expected.ftds,
        rollup_rows,
        rollup_rows_in_window,
        coarse_rows_in_window,
        seed_time,
        latency,
        small_page_latency,
        queries,
        rows_per_answer,
        plan,
    })
}

/// `stats` with `input`, one query at a time, for `duration` (at least [`MIN_QUERIES`]): the
/// latencies, the number of queries and the rows each answer had before paging.
async fn timed_queries(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    input: &Value,
    duration: Duration,
) -> Result<(Histogram<u64>, usize, i64)> {
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut rows_per_answer = 0;
    let began = Instant::now();
    let mut queries = 0;
    while queries < MIN_QUERIES || began.elapsed() < duration {
        let sent = Instant::now();
        let answer = stats(client, base, token, input).await?;
        latency.record(sent.elapsed().as_micros().max(1) as u64)?;
        rows_per_answer = answer["totalRows"].as_i64().unwrap_or(0);
        queries += 1;
    }
    Ok((latency, queries, rows_per_answer))
}

fn stats_input(from: i64, to: i64, group_by: Vec<&str>, limit: usize) -> Value {
    let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339();
    json!({ "input": { "from": at(from), "to": at(to), "groupBy": group_by, "limit": limit } })
}

async fn stats(client: &reqwest::Client, base: &str, token: &str, variables: &Value) -> Result<Value> {
    const QUERY: &str = "query($input: StatsInput!) { stats(input: $input) { totalRows
        totals { clicks uniqueClicks registrations ftds ftdAmount }
        rows { affiliateId day metrics { clicks registrations ftds ftdAmount epc } } } }";
    let data = setup::graphql(client, base, Some(token), QUERY, variables.clone()).await?;
    Ok(data["stats"].clone())
}

/// The bulk statements of one seeding.
struct Seed {
    slug: String,
    clicks: i64,
    /// Epoch seconds of the first click, and the span the clicks are spread over.
    start: i64,
    span: i64,
}

impl Seed {
    /// The devices of the user agents, as the product's parser sees them.
    fn devices() -> Vec<(usize, &'static str, Device)> {
        crate::run::BROWSERS.iter().enumerate().map(|(i, ua)| (i, *ua, Device::of(Some(ua)))).collect()
    }

    /// The click time (epoch seconds) of click `i`, in SQL.
    fn clicked_at(&self) -> String {
        format!("({} + i * {} / {})", self.start, self.span, self.clicks)
    }

    /// The columns a click's rollup row and its click share, computed from `i` in SQL:
    /// link index, user-agent index, country index, sub1.
    fn key_parts() -> String {
        format!(
            "i % {links} AS li, (i / 3) % {agents} AS ui, (i / 11) % {countries} AS ci, 's' || ((i / 13) % {subs}) AS sub1",
            links = AFFILIATES * LINKS_PER_AFFILIATE,
            agents = crate::run::BROWSERS.len(),
            countries = COUNTRIES.len(),
            subs = SUB_IDS,
        )
    }

    /// The rollup rows: clicks (each one unique) and conversions, summed per hour and key as
    /// the product's upserts sum them; `numbers` lists `0..clicks`.
    fn rollup_insert(&self, numbers: &str, tenant: &str) -> String {
        let t = self.clicked_at();
        format!(
            "{numbers}, e AS (SELECT i, {t} AS t, {parts} FROM n), r AS (\
               SELECT (t / 3600) * 3600 AS hour, li, ui, ci, sub1, 1 AS clicks, 0 AS regs, 0 AS ftds FROM e \
               UNION ALL \
               SELECT ((t + {delay}) / 3600) * 3600, li, ui, ci, sub1, 0, \
                 CASE WHEN (i / {per}) % 4 = 0 THEN 0 ELSE 1 END, CASE WHEN (i / {per}) % 4 = 0 THEN 1 ELSE 0 END \
               FROM e WHERE i % {per} = 0) \
             INSERT INTO stats_hourly (tenant_id, hour, affiliate_id, campaign_id, link_id, sub1, sub2, sub3, sub4, \
               sub5, country, device_type, os, browser, source, creative, landing_page, clicks, unique_clicks, \
               registrations, ftds, deposits, chargebacks, ftd_amount_units, ftd_amount_micros, \
               deposit_amount_units, deposit_amount_micros, net_revenue_units, net_revenue_micros, lots_units, \
               lots_micros, commission_units, commission_micros) \
             SELECT {tenant}, r.hour, l.affiliate_id, l.campaign_id, l.link_id, r.sub1, '', '', '', '', c.code, \
               u.device_type, u.os, u.browser, '', '', '', SUM(r.clicks), SUM(r.clicks), SUM(r.regs), SUM(r.ftds), \
               SUM(r.ftds), 0, SUM(r.ftds) * {amount}, 0, SUM(r.ftds) * {amount}, 0, 0, 0, 0, 0, 0, 0 \
             FROM r JOIN seed_links l ON l.idx = r.li JOIN seed_agents u ON u.idx = r.ui \
               JOIN seed_countries c ON c.idx = r.ci \
             GROUP BY r.hour, l.affiliate_id, l.campaign_id, l.link_id, r.sub1, c.code, u.device_type, u.os, u.browser",
            parts = Self::key_parts(),
            delay = CONVERSION_DELAY_SECS,
            per = CLICKS_PER_CONVERSION,
            amount = FTD_AMOUNT,
        )
    }

    /// Seeds everything in one transaction, then reads what the timed query will scan.
    async fn write(&self, conn: &mut Conn, now: i64) -> Result<(i64, i64, i64, String)> {
        let dialect = conn.dialect();
        let tenant = conn.tenant(&self.slug).await?;
        conn.execute("BEGIN").await?;
        self.seed_tables(conn, &tenant).await?;
        let t = self.clicked_at();
        let parts = Self::key_parts();
        let every_click = (dialect.numbers)(self.clicks, 1);
        let every_converting_click = (dialect.numbers)(self.clicks, CLICKS_PER_CONVERSION);
        let (new_uuid, yes) = (dialect.new_uuid, dialect.yes);
        let clicks = format!(
            "{every_click}, e AS (SELECT i, {t} AS t, {parts} FROM n) \
             INSERT INTO clicks (click_id, tenant_id, link_id, affiliate_id, campaign_id, visitor_id, clicked_at, \
               user_agent, sub1, country) \
             SELECT 'seed' || e.i, {tenant}, l.link_id, l.affiliate_id, l.campaign_id, {new_uuid}, {clicked}, u.ua, \
               e.sub1, c.code \
             FROM e JOIN seed_links l ON l.idx = e.li JOIN seed_agents u ON u.idx = e.ui \
               JOIN seed_countries c ON c.idx = e.ci",
            clicked = (dialect.time)("e.t"),
        );
        let started = Instant::now();
        conn.execute(&clicks).await?;
        eprintln!("  clicks in {:?}", started.elapsed());
        let ftd = format!("(e.i / {CLICKS_PER_CONVERSION}) % 4 = 0");
        let conversions = format!(
            "{every_converting_click}, e AS (SELECT i, {t} AS t, {parts} FROM n) \
             INSERT INTO conversions (id, tenant_id, dedupe_key, txn_id, event, status, amount, currency, click_id, \
               player_id, campaign_id, attributed, model, journey, payload_hash, payload, occurred_at, received_at, \
               updated_at) \
             SELECT {new_uuid}, {tenant}, 'seed' || e.i, CASE WHEN {ftd} THEN 'seed' || e.i END, \
               CASE WHEN {ftd} THEN 'ftd' ELSE 'registration' END, 'approved', \
               CASE WHEN {ftd} THEN {amount} END, CASE WHEN {ftd} THEN 'EUR' END, 'seed' || e.i, 'player' || e.i, \
               l.campaign_id, {yes}, 'last_click', '[]', '', '{{}}', {at}, {at}, {at} \
             FROM e JOIN seed_links l ON l.idx = e.li",
            amount = (dialect.decimal)(FTD_AMOUNT),
            at = (dialect.time)(&format!("e.t + {CONVERSION_DELAY_SECS}")),
        );
        let started = Instant::now();
        conn.execute(&conversions).await?;
        conn.execute(&format!(
            "INSERT INTO conversion_credits (conversion_id, tenant_id, affiliate_id, share, position) \
             SELECT v.id, v.tenant_id, k.affiliate_id, {one}, 0 FROM conversions v \
             JOIN clicks k ON k.click_id = v.click_id WHERE v.tenant_id = {tenant}",
            one = (dialect.decimal)(1),
        ))
        .await?;
        eprintln!("  conversions and credits in {:?}", started.elapsed());
        let started = Instant::now();
        conn.execute(&self.rollup_insert(&every_click, &tenant)).await?;
        let counters = COUNTERS.join(", ");
        conn.execute(&format!(
            "INSERT INTO stats_hourly_coarse (tenant_id, hour, affiliate_id, campaign_id, {counters}) \
             SELECT tenant_id, hour, affiliate_id, campaign_id, {sums} FROM stats_hourly WHERE tenant_id = {tenant} \
             GROUP BY tenant_id, hour, affiliate_id, campaign_id",
            sums = counter_sums(),
        ))
        .await?;
        // The tenant's zone is UTC: a day is `hour / 86400`.
        let day = local_day_sql("hour", &[]);
        conn.execute(&format!(
            "INSERT INTO stats_daily (tenant_id, day, affiliate_id, campaign_id, {counters}) \
             SELECT tenant_id, {day}, affiliate_id, campaign_id, {sums} FROM stats_hourly_coarse \
             WHERE tenant_id = {tenant} GROUP BY tenant_id, {day}, affiliate_id, campaign_id",
            sums = counter_sums(),
        ))
        .await?;
        eprintln!("  rollup rows in {:?}", started.elapsed());
        conn.execute("COMMIT").await?;
        conn.execute("ANALYZE").await?;
        let from = now - REPORT_DAYS * 86_400;
        let window = format!("tenant_id = {tenant} AND hour >= {from} AND hour < {now}");
        let total =
            conn.count(&format!("SELECT COUNT(*) FROM stats_hourly WHERE tenant_id = {tenant}")).await?;
        let in_window = conn.count(&format!("SELECT COUNT(*) FROM stats_hourly WHERE {window}")).await?;
        // What the timed report reads: whole days from the daily rows, the partial first and
        // last days from the coarse hourly ones.
        let (first_day, end_day) = (from.div_euclid(86_400) + 1, now.div_euclid(86_400));
        let days = format!("tenant_id = {tenant} AND day >= {first_day} AND day < {end_day}");
        let edges = format!(
            "tenant_id = {tenant} AND ((hour >= {from} AND hour < {}) OR (hour >= {} AND hour < {now}))",
            first_day * 86_400,
            end_day * 86_400
        );
        let coarse = conn.count(&format!("SELECT COUNT(*) FROM stats_daily WHERE {days}")).await?
            + conn.count(&format!("SELECT COUNT(*) FROM stats_hourly_coarse WHERE {edges}")).await?;
        let plan = conn.plan(&format!("SELECT * FROM stats_daily WHERE {days}")).await?;
        Ok((total, in_window, coarse, plan))
    }

    /// Temporary tables the bulk statements join on: the tenant's links (with their
    /// affiliate and campaign), the user agents with their devices, the countries.
    async fn seed_tables(&self, conn: &mut Conn, tenant: &str) -> Result {
        let uuid = conn.dialect().uuid_type;
        conn.execute(&format!(
            "CREATE TEMPORARY TABLE seed_links (idx BIGINT PRIMARY KEY, link_id {uuid}, affiliate_id {uuid}, campaign_id {uuid})"
        ))
        .await?;
        conn.execute("CREATE TEMPORARY TABLE seed_agents (idx BIGINT PRIMARY KEY, ua TEXT, device_type TEXT, os TEXT, browser TEXT)")
            .await?;
        conn.execute("CREATE TEMPORARY TABLE seed_countries (idx BIGINT PRIMARY KEY, code TEXT)").await?;
        conn.execute(&format!(
            "INSERT INTO seed_links SELECT ROW_NUMBER() OVER (ORDER BY id) - 1, id, affiliate_id, campaign_id \
             FROM tracking_links WHERE tenant_id = {tenant}"
        ))
        .await?;
        let links = conn.count("SELECT COUNT(*) FROM seed_links").await?;
        if links != (AFFILIATES * LINKS_PER_AFFILIATE) as i64 {
            return Err(format!(
                "the tenant has {links} tracking links, not {}",
                AFFILIATES * LINKS_PER_AFFILIATE
            )
            .into());
        }
        for (i, ua, device) in Self::devices() {
            conn.execute(&format!(
                "INSERT INTO seed_agents VALUES ({i}, {}, {}, {}, {})",
                quote(ua),
                quote(&device.device_type),
                quote(&device.os),
                quote(&device.browser)
            ))
            .await?;
        }
        for (i, code) in COUNTRIES.iter().enumerate() {
            conn.execute(&format!("INSERT INTO seed_countries VALUES ({i}, '{code}')")).await?;
        }
        Ok(())
    }
}

/// How the two databases spell what the bulk statements need.
struct Dialect {
    /// `WITH n(i) AS (…)`: `0..count` by `step`.
    numbers: fn(i64, i64) -> String,
    /// An epoch-seconds expression as a stored timestamp.
    time: fn(&str) -> String,
    /// An exact decimal as stored.
    decimal: fn(i64) -> String,
    new_uuid: &'static str,
    uuid_type: &'static str,
    yes: &'static str,
}

const SQLITE: Dialect = Dialect {
    numbers: |count, step| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + {step} FROM n WHERE i + {step} < {count})"
        )
    },
    // As sqlx writes a `DateTime<Utc>`.
    time: |t| format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', {t}, 'unixepoch')"),
    // Exact decimals are text on SQLite (`m20261202_000007_exact_decimals`).
    decimal: |n| format!("'{n}'"),
    new_uuid: "randomblob(16)",
    uuid_type: "BLOB",
    yes: "1",
};

const POSTGRES: Dialect = Dialect {
    numbers: |count, step| format!("WITH n(i) AS (SELECT generate_series(0::bigint, {count} - 1, {step}))"),
    time: |t| format!("to_timestamp({t})"),
    decimal: |n| n.to_string(),
    new_uuid: "gen_random_uuid()",
    uuid_type: "UUID",
    yes: "true",
};

/// A connection to either database, for the seeding's few statements.
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Conn {
    async fn open(database: &Database) -> Result<Conn> {
        Ok(match database {
            Database::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await?;
                // The server holds the database too; it is idle while we seed.
                sqlx::raw_sql("PRAGMA busy_timeout = 60000").execute(&mut conn).await?;
                Conn::Sqlite(conn)
            }
            Database::Postgres { url, .. } => Conn::Postgres(sqlx::PgConnection::connect(url).await?),
        })
    }

    fn dialect(&self) -> &'static Dialect {
        match self {
            Conn::Sqlite(_) => &SQLITE,
            Conn::Postgres(_) => &POSTGRES,
        }
    }

    async fn execute(&mut self, sql: &str) -> Result {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Conn::Sqlite(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop)?,
            Conn::Postgres(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop)?,
        }
        Ok(())
    }

    async fn count(&mut self, sql: &str) -> Result<i64> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        Ok(match self {
            Conn::Sqlite(conn) => sqlx::query_scalar(sql).fetch_one(conn).await?,
            Conn::Postgres(conn) => sqlx::query_scalar(sql).fetch_one(conn).await?,
        })
    }

    /// The tenant's ID as an SQL literal.
    async fn tenant(&mut self, slug: &str) -> Result<String> {
        Ok(match self {
            Conn::Sqlite(conn) => {
                let id: Vec<u8> = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = ?")
                    .bind(slug)
                    .fetch_one(conn)
                    .await?;
                format!("X'{}'", id.iter().map(|b| format!("{b:02x}")).collect::<String>())
            }
            Conn::Postgres(conn) => {
                let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
                    .bind(slug)
                    .fetch_one(conn)
                    .await?;
                format!("'{id}'::uuid")
            }
        })
    }

    /// The database's plan for `select`.
    async fn plan(&mut self, select: &str) -> Result<String> {
        Ok(match self {
            Conn::Sqlite(conn) => {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {select}")))
                        .fetch_all(conn)
                        .await?;
                rows.into_iter().map(|(_, _, _, detail)| detail).collect::<Vec<_>>().join("; ")
            }
            Conn::Postgres(conn) => {
                let rows: Vec<String> =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS) {select}")))
                        .fetch_all(conn)
                        .await?;
                rows.iter().map(|line| line.trim()).collect::<Vec<_>>().join("; ")
            }
        })
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl StatsOutcome {
    /// Rows of the run's table.
    pub fn markdown(&self, md: &mut String) {
        use std::fmt::Write as _;

        use crate::report::{percentiles, thousands, verdict};
        let p99 = self.latency.value_at_quantile(0.99) as f64 / 1000.0;
        let _ = writeln!(
            md,
            "| stats | seeded tenant: {} clicks, {} conversions over {HISTORY_DAYS} days; {AFFILIATES} affiliates, \
             {CAMPAIGNS} campaigns, {} links, {SUB_IDS} sub1 values, {} countries, {} user agents | bulk SQL seeding \
             (clicks, conversions, credits, rollups) | {:.1} s; {} detailed rollup rows, {} in the last {REPORT_DAYS} days; \
             the report reads {} coarse rows | |",
            thousands(self.clicks as u64),
            thousands(self.conversions as u64),
            AFFILIATES * LINKS_PER_AFFILIATE,
            COUNTRIES.len(),
            crate::run::BROWSERS.len(),
            self.seed_time.as_secs_f64(),
            thousands(self.rollup_rows as u64),
            thousands(self.rollup_rows_in_window as u64),
            thousands(self.coarse_rows_in_window as u64),
        );
        let _ = writeln!(
            md,
            "| stats | | `stats` AFFILIATE × DAY, last {REPORT_DAYS} days ({} groups, pages of 1,000 rows), one query at a time over GraphQL; \
             totals over the whole history checked against the seed | **{} queries**; latency p50 / p99 / max {} | \
             p99 ≤ {P99_TARGET_MS:.0} ms: {} |",
            self.rows_per_answer,
            self.queries,
            percentiles(&self.latency),
            verdict(p99 <= P99_TARGET_MS)
        );
        let _ = writeln!(
            md,
            "| stats | | the same, one page of 10 rows (the read and the grouping; not the GraphQL and JSON of 1,000 \
             rows) | latency p50 / p99 / max {} | |",
            percentiles(&self.small_page_latency),
        );
        let _ = writeln!(
            md,
            "| stats | | the read's plan (`stats_daily` rows of the whole days) | `{}` | |",
            self.plan.replace('|', "\\|").replace('`', "'")
        );
    }
}
