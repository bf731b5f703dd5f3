//! Reports: `stats`, read from the hourly rollups. The CSV route (`http::reports`) answers the
//! same input with the same rows.

use std::time::Duration;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use clickledger_domain::reporting::{self, Counters, Derived, Dimension, StatsReport};
use clickledger_domain::stats_changes::{LiveStep, live_step, stats_changes};
use clickledger_domain::stats_window::{RollingPeriod, StatsWindow};
use clickledger_domain::validate;
use clickledger_persistence::rollups::Stats;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use rust_decimal::Decimal;

use super::context::{principal, state};
use super::guard::Allow;
use crate::error::GqlResultExt;

/// A live report is re-read at most once per window, however many clicks and conversions
/// woke it: a subscriber gets at most two updates a second, each within about a window of
/// the write.
const LIVE_WINDOW: Duration = Duration::from_millis(500);
/// Without a wake-up, a live report is re-read this often anyway: clicks written by another
/// replica wake nobody here (conversions do, through PostgreSQL).
const LIVE_REFRESH: Duration = Duration::from_secs(5);

/// A period that moves with the clock, in the request's time zone.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "RollingPeriod")]
pub enum StatsPeriod {
    /// From local midnight today to local midnight tomorrow.
    Today,
    /// The 24 whole UTC hours ending with the current one.
    #[graphql(name = "LAST_24_HOURS")]
    Last24Hours,
    /// The calendar month containing now.
    ThisMonth,
}

/// The period is either `from` and `to`, or `period`: exactly one of the two forms.
#[derive(InputObject, Clone, Default)]
pub struct StatsInput {
    /// Start of the period; the rollups are read by whole UTC hours, from the hour containing it.
    pub from: Option<DateTime<Utc>>,
    /// End of the period (exclusive, rounded up to a whole hour); at most 400 days after `from`.
    pub to: Option<DateTime<Utc>>,
    /// Instead of `from` and `to`: a period resolved at each read, in `timeZone` (for
    /// `statsLive`, one that moves on when it ends).
    pub period: Option<StatsPeriod>,
    /// IANA name for HOUR, DAY, MONTH and `period`; the tenant's time zone by default.
    pub time_zone: Option<String>,
    /// Up to 4 of AFFILIATE, CAMPAIGN, LINK, SUB1…SUB5, SOURCE, CREATIVE, LANDING_PAGE,
    /// COUNTRY, DEVICE_TYPE, OS, BROWSER, HOUR, DAY, MONTH. None: one row of totals.
    #[graphql(default)]
    pub group_by: Vec<String>,
    /// Rows must match one of the values of every filter.
    #[graphql(default)]
    pub filters: Vec<StatsFilter>,
    /// A metric (CLICKS, UNIQUE_CLICKS, REGISTRATIONS, FTDS, FTD_AMOUNT, DEPOSITS,
    /// DEPOSIT_AMOUNT, NET_REVENUE, LOTS, CHARGEBACKS, COMMISSION, CLICK_TO_REGISTRATION,
    /// REGISTRATION_TO_FTD, EPC, ARPU) or a grouped dimension; CLICKS by default.
    pub sort_by: Option<String>,
    /// Largest first unless false.
    pub descending: Option<bool>,
    /// Rows to skip (default 0).
    pub offset: Option<i64>,
    /// Rows to return, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// A dimension and the values a row may have there: prefixed IDs (`aff_…`), sub-IDs,
/// `YYYY-MM-DD` days, `YYYY-MM` months, hours as in `StatsRow.hour`; `""` matches no value.
#[derive(InputObject, Clone)]
pub struct StatsFilter {
    pub dimension: String,
    pub values: Vec<String>,
}

/// Counters and derived metrics. Amounts are exact decimals as reported by the postbacks
/// (commission in the plan's currency).
#[derive(SimpleObject, Clone)]
pub struct StatsMetrics {
    pub clicks: i64,
    /// Clicks that were a visitor's first on their link that UTC day.
    pub unique_clicks: i64,
    pub registrations: i64,
    pub ftds: i64,
    pub ftd_amount: Decimal,
    /// Deposits, first-time deposits included.
    pub deposits: i64,
    pub deposit_amount: Decimal,
    pub net_revenue: Decimal,
    pub lots: Decimal,
    pub chargebacks: i64,
    pub commission: Decimal,
    /// registrations / clicks; null without clicks.
    pub click_to_registration: Option<Decimal>,
    /// ftds / registrations; null without registrations.
    pub registration_to_ftd: Option<Decimal>,
    /// Earnings per click: commission / clicks.
    pub epc: Option<Decimal>,
    /// Average revenue per depositing player: net revenue / FTDs.
    pub arpu: Option<Decimal>,
}

impl StatsMetrics {
    pub fn new(c: &Counters, d: &Derived) -> Self {
        StatsMetrics {
            clicks: c.clicks,
            unique_clicks: c.unique_clicks,
            registrations: c.registrations,
            ftds: c.ftds,
            ftd_amount: c.ftd_amount,
            deposits: c.deposits,
            deposit_amount: c.deposit_amount,
            net_revenue: c.net_revenue,
            lots: c.lots,
            chargebacks: c.chargebacks,
            commission: c.commission,
            click_to_registration: d.click_to_registration,
            registration_to_ftd: d.registration_to_ftd,
            epc: d.epc,
            arpu: d.arpu,
        }
    }
}

/// One group: the grouped dimensions' values (others null) and its metrics.
#[derive(SimpleObject, Clone)]
pub struct StatsRow {
    pub affiliate_id: Option<ID>,
    pub campaign_id: Option<ID>,
    pub link_id: Option<ID>,
    pub sub1: Option<String>,
    pub sub2: Option<String>,
    pub sub3: Option<String>,
    pub sub4: Option<String>,
    pub sub5: Option<String>,
    /// ISO 3166-1 alpha-2: the postback's `country`, else its click's (from `--geoip-db`).
    pub country: Option<String>,
    /// desktop, smartphone, mobilephone, appliance, crawler or misc.
    pub device_type: Option<String>,
    pub os: Option<String>,
    pub browser: Option<String>,
    /// The click's `source` parameter.
    pub source: Option<String>,
    /// The click's `creative` parameter.
    pub creative: Option<String>,
    /// The click's `lp` parameter.
    pub landing_page: Option<String>,
    /// Start of the hour in the request's time zone, e.g. `2026-12-06T21:00+01:00`.
    pub hour: Option<String>,
    /// `YYYY-MM-DD` in the request's time zone.
    pub day: Option<String>,
    /// `YYYY-MM` in the request's time zone.
    pub month: Option<String>,
    pub metrics: StatsMetrics,
}

#[derive(SimpleObject)]
pub struct StatsResult {
    /// The period read (for `period`, as resolved now); the rollups are read by whole UTC
    /// hours covering it.
    pub from: DateTime<Utc>,
    /// End of the period read (exclusive).
    pub to: DateTime<Utc>,
    /// The requested page of groups.
    pub rows: Vec<StatsRow>,
    /// Groups before paging.
    pub total_rows: i64,
    /// Over every matching row, whatever the page.
    pub totals: StatsMetrics,
    /// The time zone HOUR, DAY and MONTH were computed in.
    pub time_zone: String,
}

pub fn row_of(row: &reporting::StatsRow) -> StatsRow {
    let mut out = StatsRow {
        affiliate_id: None,
        campaign_id: None,
        link_id: None,
        sub1: None,
        sub2: None,
        sub3: None,
        sub4: None,
        sub5: None,
        country: None,
        device_type: None,
        os: None,
        browser: None,
        source: None,
        creative: None,
        landing_page: None,
        hour: None,
        day: None,
        month: None,
        metrics: StatsMetrics::new(&row.counters, &row.derived),
    };
    for (dimension, value) in &row.key {
        let value = value.clone();
        match dimension {
            Dimension::Affiliate => out.affiliate_id = value.map(ID),
            Dimension::Campaign => out.campaign_id = value.map(ID),
            Dimension::Link => out.link_id = value.map(ID),
            Dimension::Sub1 => out.sub1 = value,
            Dimension::Sub2 => out.sub2 = value,
            Dimension::Sub3 => out.sub3 = value,
            Dimension::Sub4 => out.sub4 = value,
            Dimension::Sub5 => out.sub5 = value,
            Dimension::Country => out.country = value,
            Dimension::DeviceType => out.device_type = value,
            Dimension::Os => out.os = value,
            Dimension::Browser => out.browser = value,
            Dimension::Source => out.source = value,
            Dimension::Creative => out.creative = value,
            Dimension::LandingPage => out.landing_page = value,
            Dimension::Hour => out.hour = value,
            Dimension::Day => out.day = value,
            Dimension::Month => out.month = value,
        }
    }
    out
}

/// The domain's input from the GraphQL (or CSV) input, a rolling period as of `now`; the
/// time zone is checked here.
pub fn domain_input(input: StatsInput, now: DateTime<Utc>) -> Result<reporting::StatsInput, crate::Error> {
    let window = StatsWindow::of_input(input.from, input.to, input.period.map(RollingPeriod::from), now)?;
    let zone = input.time_zone.map(|z| validate::time_zone(&z, "timeZone")).transpose()?;
    Ok(reporting::StatsInput {
        window,
        zone,
        group_by: input.group_by,
        filters: input.filters.into_iter().map(|f| (f.dimension, f.values)).collect(),
        sort_by: input.sort_by,
        descending: input.descending,
        offset: input.offset,
        limit: input.limit,
    })
}

/// Answers a `stats` input for a scope: what both the query and the CSV route run.
pub async fn run(
    db: &clickledger_persistence::Db,
    scope: clickledger_persistence::Scope,
    input: StatsInput,
) -> Result<StatsReport, crate::Error> {
    Ok(Stats::scoped(db, scope).report(domain_input(input, Utc::now())?).await?)
}

#[derive(Default)]
pub struct ReportingQuery;

#[Object]
impl ReportingQuery {
    /// Clicks, conversions and commission grouped by up to four dimensions, from the hourly
    /// rollups (live: kept in the transactions that write clicks and conversions). Affiliates
    /// see only their own rows.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn stats(&self, ctx: &Context<'_>, input: StatsInput) -> async_graphql::Result<StatsResult> {
        let scope = principal(ctx)?.scope();
        let report = run(&state(ctx).db, scope, input).await.gql()?;
        Ok(StatsResult {
            from: report.from,
            to: report.to,
            rows: report.rows.iter().map(row_of).collect(),
            total_rows: i64::try_from(report.total_rows).unwrap_or(i64::MAX),
            totals: StatsMetrics::new(&report.totals, &report.totals_derived),
            time_zone: report.zone.name().to_owned(),
        })
    }
}

/// One message of `statsLive`.
#[derive(SimpleObject)]
pub struct StatsUpdate {
    /// True on the first message, whose `rows` are the whole page; later messages carry only
    /// what changed.
    pub snapshot: bool,
    /// Rows that are new on the page or whose metrics changed since the last message.
    pub rows: Vec<StatsRow>,
    /// Rows that left the page since the last message (as they were last sent).
    pub removed_rows: Vec<StatsRow>,
    /// The period of this message (for `period`, as resolved at this read): when a rolling
    /// period moves on, the message is a new snapshot of the new period.
    pub from: DateTime<Utc>,
    /// End of the period of this message (exclusive).
    pub to: DateTime<Utc>,
    /// Groups before paging.
    pub total_rows: i64,
    /// Over every matching row, whatever the page.
    pub totals: StatsMetrics,
    /// The time zone HOUR, DAY and MONTH were computed in.
    pub time_zone: String,
}

impl StatsUpdate {
    fn first(report: &StatsReport) -> Self {
        StatsUpdate {
            snapshot: true,
            rows: report.rows.iter().map(row_of).collect(),
            ..Self::changes(report, Vec::new(), Vec::new())
        }
    }

    fn between(before: &StatsReport, after: &StatsReport) -> Self {
        let changes = stats_changes(&before.rows, &after.rows);
        let rows = changes.changed.into_iter().map(row_of).collect();
        let removed = changes.removed.into_iter().map(row_of).collect();
        Self::changes(after, rows, removed)
    }

    fn changes(report: &StatsReport, rows: Vec<StatsRow>, removed_rows: Vec<StatsRow>) -> Self {
        StatsUpdate {
            snapshot: false,
            rows,
            removed_rows,
            from: report.from,
            to: report.to,
            total_rows: i64::try_from(report.total_rows).unwrap_or(i64::MAX),
            totals: StatsMetrics::new(&report.totals, &report.totals_derived),
            time_zone: report.zone.name().to_owned(),
        }
    }
}

/// Resolves when the rolling period of `last` is over (never for a fixed window), so that a
/// live report moves on at, say, midnight even when nothing is written.
async fn period_end(request: &reporting::StatsInput, last: &StatsReport) {
    if !request.window.is_rolling() {
        return std::future::pending().await;
    }
    // A little after the end, so the read's clock is surely in the next period.
    let left = (last.to - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(10);
    tokio::time::sleep(left).await;
}

#[derive(Default)]
pub struct ReportingSubscription;

#[Subscription]
impl ReportingSubscription {
    /// The `stats` report, live: first the whole answer (`snapshot: true`), then, after
    /// clicks or conversions of the tenant, only the rows that changed (and those that left
    /// the page), with the new totals. Updates are coalesced: at most one every 500 ms, and
    /// only when something changed. With `period`, when the period ends (e.g. local midnight
    /// for TODAY) the next message is a new snapshot (`snapshot: true`) of the next period.
    /// Scoped and checked exactly as `stats`.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn stats_live(
        &self,
        ctx: &Context<'_>,
        input: StatsInput,
    ) -> async_graphql::Result<BoxStream<'static, StatsUpdate>> {
        let scope = principal(ctx)?.scope();
        let state = state(ctx).clone();
        let request = domain_input(input, Utc::now()).gql()?;
        // Listening before the first read: a write right after it still wakes us.
        let mut woken = state.stats_signals.subscribe(scope.tenant());
        // The first read checks the input, so a bad one is refused before any message.
        let stats = Stats::scoped(&state.db, scope);
        let first = stats.report(request.clone()).await.map_err(crate::Error::from).gql()?;
        Ok(async_stream::stream! {
            yield StatsUpdate::first(&first);
            let mut last = first;
            let mut last_read = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    changed = woken.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(LIVE_REFRESH) => {}
                    () = period_end(&request, &last) => {}
                }
                // Whatever else is written before the window is over is read with this.
                tokio::time::sleep_until(last_read + LIVE_WINDOW).await;
                woken.borrow_and_update();
                let stats = Stats::scoped(&state.db, scope);
                let read = stats.report(request.clone().at(Utc::now())).await;
                // The window counts from the end of a read, so two messages are a window
                // apart however long the reads take.
                last_read = tokio::time::Instant::now();
                match read {
                    Ok(report) => {
                        match live_step(&last, &report) {
                            LiveStep::Nothing => continue,
                            LiveStep::Changes => yield StatsUpdate::between(&last, &report),
                            LiveStep::Snapshot => yield StatsUpdate::first(&report),
                        }
                        last = report;
                    }
                    // Tried again at the next wake-up or refresh.
                    Err(err) => tracing::warn!(error = %err, "a live report could not be read"),
                }
            }
        }
        .boxed())
    }
}
