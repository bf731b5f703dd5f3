//! Reporting policy: what a click and a conversion add to the hourly rollups, what the derived
//! metrics are, and how a `stats` request groups, filters, sorts and pages rollup rows.
//! Persistence only writes and reads rows; every rule lives here.
//!
//! - A **click** adds one click; the first click of a visitor on a link in a UTC day is also a
//!   **unique click**.
//! - A conversion that is not rejected adds, by its event: a **registration**; an **FTD**
//!   (also a deposit: FTD amount and deposit amount); a **deposit**; **net revenue** (its
//!   amount, may be negative); **lots** (a trade); a **chargeback**. Purchases count only
//!   through their commission. **Commission** is what the conversion's credits earned.
//! - Derived: click→registration rate = registrations / clicks, registration→FTD rate =
//!   FTDs / registrations, EPC = commission / clicks, ARPU = net revenue / FTDs (revenue per
//!   depositing player); `None` when the denominator is zero, rounded to [`DERIVED_PLACES`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::Error;
use crate::conversion::{ConversionStatus, EventKind};
use crate::ids::{AffiliateId, CampaignId, TrackingLinkId};
use crate::stats_window::StatsWindow;

/// Places of the derived metrics (rates and per-click/per-player amounts), half to even.
pub const DERIVED_PLACES: u32 = 6;
/// Longest `stats` range.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Most dimensions one `stats` request may group by.
pub const MAX_GROUP_BY: usize = 4;
/// Most values one `stats` filter may list.
pub const MAX_FILTER_VALUES: usize = 100;
/// Largest page of `stats` rows.
pub const MAX_PAGE: usize = 1_000;

/// The additive counters of one rollup row (or of any sum of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub clicks: i64,
    pub unique_clicks: i64,
    pub registrations: i64,
    pub ftds: i64,
    pub ftd_amount: Decimal,
    pub deposits: i64,
    pub deposit_amount: Decimal,
    pub net_revenue: Decimal,
    pub lots: Decimal,
    pub chargebacks: i64,
    pub commission: Decimal,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.clicks += other.clicks;
        self.unique_clicks += other.unique_clicks;
        self.registrations += other.registrations;
        self.ftds += other.ftds;
        self.ftd_amount += other.ftd_amount;
        self.deposits += other.deposits;
        self.deposit_amount += other.deposit_amount;
        self.net_revenue += other.net_revenue;
        self.lots += other.lots;
        self.chargebacks += other.chargebacks;
        self.commission += other.commission;
    }

    /// What one click adds; `unique` when it is the visitor's first on its link that day.
    pub fn click(unique: bool) -> Counters {
        Counters { clicks: 1, unique_clicks: i64::from(unique), ..Counters::default() }
    }

    /// What a new conversion adds (its commission apart: see [`Counters::commission`]).
    pub fn conversion(
        event: EventKind,
        status: ConversionStatus,
        amount: Option<Decimal>,
        lots: Option<Decimal>,
    ) -> Counters {
        let mut c = Counters::default();
        if status == ConversionStatus::Rejected {
            return c;
        }
        let amount = amount.unwrap_or_default();
        match event {
            EventKind::Registration => c.registrations = 1,
            EventKind::Ftd => {
                c.ftds = 1;
                c.ftd_amount = amount;
                c.deposits = 1;
                c.deposit_amount = amount;
            }
            EventKind::Deposit => {
                c.deposits = 1;
                c.deposit_amount = amount;
            }
            EventKind::Revenue => c.net_revenue = amount,
            EventKind::Trade => c.lots = lots.unwrap_or_default(),
            EventKind::Chargeback => c.chargebacks = 1,
            EventKind::Purchase => {}
        }
        c
    }

    /// Commission earned, as a counter.
    pub fn commission(amount: Decimal) -> Counters {
        Counters { commission: amount, ..Counters::default() }
    }

    /// The same counters with every sign flipped: what undoing them adds.
    pub fn negated(&self) -> Counters {
        Counters {
            clicks: -self.clicks,
            unique_clicks: -self.unique_clicks,
            registrations: -self.registrations,
            ftds: -self.ftds,
            ftd_amount: -self.ftd_amount,
            deposits: -self.deposits,
            deposit_amount: -self.deposit_amount,
            net_revenue: -self.net_revenue,
            lots: -self.lots,
            chargebacks: -self.chargebacks,
            commission: -self.commission,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

/// The rates and ratios derived from counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Derived {
    pub click_to_registration: Option<Decimal>,
    pub registration_to_ftd: Option<Decimal>,
    pub epc: Option<Decimal>,
    pub arpu: Option<Decimal>,
}

impl Derived {
    pub fn of(c: &Counters) -> Derived {
        Derived {
            click_to_registration: ratio(Decimal::from(c.registrations), c.clicks),
            registration_to_ftd: ratio(Decimal::from(c.ftds), c.registrations),
            epc: ratio(c.commission, c.clicks),
            arpu: ratio(c.net_revenue, c.ftds),
        }
    }
}

fn ratio(numerator: Decimal, denominator: i64) -> Option<Decimal> {
    if denominator == 0 {
        return None;
    }
    numerator
        .checked_div(Decimal::from(denominator))
        .map(|q| q.round_dp_with_strategy(DERIVED_PLACES, RoundingStrategy::MidpointNearestEven).normalize())
}

/// Device type, operating system and browser of a user agent, through a maintained parser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Device {
    /// `desktop`, `smartphone`, `mobilephone`, `appliance`, `crawler`, `misc`, or empty.
    pub device_type: String,
    pub os: String,
    pub browser: String,
}

static UA_PARSER: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

impl Device {
    /// The device of a user agent, as [`crate::user_agent::classify`] keeps it.
    pub fn of(user_agent: Option<&str>) -> Device {
        match user_agent.filter(|ua| !ua.is_empty()) {
            Some(user_agent) => crate::user_agent::classify(user_agent).device.clone(),
            None => Device::default(),
        }
    }

    /// Parses `user_agent` (microseconds: callers go through the cache of
    /// [`crate::user_agent::classify`]).
    pub(crate) fn parse(user_agent: &str) -> Device {
        let Some(parsed) = UA_PARSER.parse(user_agent) else {
            return Device::default();
        };
        let known = |value: &str| {
            if value == woothee::woothee::VALUE_UNKNOWN { String::new() } else { value.to_owned() }
        };
        let device_type = match parsed.category {
            "pc" => "desktop".to_owned(),
            other => known(other),
        };
        Device { device_type, os: known(parsed.os), browser: known(parsed.name) }
    }
}

/// What `stats` can group and filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Affiliate,
    Campaign,
    Link,
    Sub1,
    Sub2,
    Sub3,
    Sub4,
    Sub5,
    Country,
    DeviceType,
    Os,
    Browser,
    Source,
    Creative,
    LandingPage,
    Hour,
    Day,
    Month,
}

impl Dimension {
    pub const ALL: [Dimension; 18] = [
        Dimension::Affiliate,
        Dimension::Campaign,
        Dimension::Link,
        Dimension::Sub1,
        Dimension::Sub2,
        Dimension::Sub3,
        Dimension::Sub4,
        Dimension::Sub5,
        Dimension::Country,
        Dimension::DeviceType,
        Dimension::Os,
        Dimension::Browser,
        Dimension::Source,
        Dimension::Creative,
        Dimension::LandingPage,
        Dimension::Hour,
        Dimension::Day,
        Dimension::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Affiliate => "AFFILIATE",
            Dimension::Campaign => "CAMPAIGN",
            Dimension::Link => "LINK",
            Dimension::Sub1 => "SUB1",
            Dimension::Sub2 => "SUB2",
            Dimension::Sub3 => "SUB3",
            Dimension::Sub4 => "SUB4",
            Dimension::Sub5 => "SUB5",
            Dimension::Country => "COUNTRY",
            Dimension::DeviceType => "DEVICE_TYPE",
            Dimension::Os => "OS",
            Dimension::Browser => "BROWSER",
            Dimension::Source => "SOURCE",
            Dimension::Creative => "CREATIVE",
            Dimension::LandingPage => "LANDING_PAGE",
            Dimension::Hour => "HOUR",
            Dimension::Day => "DAY",
            Dimension::Month => "MONTH",
        }
    }

    /// Case-insensitive; `field` names the input on error.
    pub fn parse(raw: &str, field: &'static str) -> Result<Dimension, Error> {
        let upper = raw.trim().to_ascii_uppercase();
        Dimension::ALL.into_iter().find(|d| d.as_str() == upper).ok_or_else(|| {
            Error::invalid(field, format!("unknown dimension `{}`", raw.chars().take(40).collect::<String>()))
        })
    }
}

/// What `stats` can sort by besides a grouped dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Clicks,
    UniqueClicks,
    Registrations,
    Ftds,
    FtdAmount,
    Deposits,
    DepositAmount,
    NetRevenue,
    Lots,
    Chargebacks,
    Commission,
    ClickToRegistration,
    RegistrationToFtd,
    Epc,
    Arpu,
}

impl Metric {
    pub const ALL: [Metric; 15] = [
        Metric::Clicks,
        Metric::UniqueClicks,
        Metric::Registrations,
        Metric::Ftds,
        Metric::FtdAmount,
        Metric::Deposits,
        Metric::DepositAmount,
        Metric::NetRevenue,
        Metric::Lots,
        Metric::Chargebacks,
        Metric::Commission,
        Metric::ClickToRegistration,
        Metric::RegistrationToFtd,
        Metric::Epc,
        Metric::Arpu,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Clicks => "CLICKS",
            Metric::UniqueClicks => "UNIQUE_CLICKS",
            Metric::Registrations => "REGISTRATIONS",
            Metric::Ftds => "FTDS",
            Metric::FtdAmount => "FTD_AMOUNT",
            Metric::Deposits => "DEPOSITS",
            Metric::DepositAmount => "DEPOSIT_AMOUNT",
            Metric::NetRevenue => "NET_REVENUE",
            Metric::Lots => "LOTS",
            Metric::Chargebacks => "CHARGEBACKS",
            Metric::Commission => "COMMISSION",
            Metric::ClickToRegistration => "CLICK_TO_REGISTRATION",
            Metric::RegistrationToFtd => "REGISTRATION_TO_FTD",
            Metric::Epc => "EPC",
            Metric::Arpu => "ARPU",
        }
    }

    fn value(self, c: &Counters, d: &Derived) -> Option<Decimal> {
        Some(match self {
            Metric::Clicks => c.clicks.into(),
            Metric::UniqueClicks => c.unique_clicks.into(),
            Metric::Registrations => c.registrations.into(),
            Metric::Ftds => c.ftds.into(),
            Metric::FtdAmount => c.ftd_amount,
            Metric::Deposits => c.deposits.into(),
            Metric::DepositAmount => c.deposit_amount,
            Metric::NetRevenue => c.net_revenue,
            Metric::Lots => c.lots,
            Metric::Chargebacks => c.chargebacks.into(),
            Metric::Commission => c.commission,
            Metric::ClickToRegistration => return d.click_to_registration,
            Metric::RegistrationToFtd => return d.registration_to_ftd,
            Metric::Epc => return d.epc,
            Metric::Arpu => return d.arpu,
        })
    }
}

/// Sort key of a `stats` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Metric(Metric),
    Dimension(Dimension),
}

impl SortKey {
    pub fn parse(raw: &str, field: &'static str) -> Result<SortKey, Error> {
        let upper = raw.trim().to_ascii_uppercase();
        if let Some(metric) = Metric::ALL.into_iter().find(|m| m.as_str() == upper) {
            return Ok(SortKey::Metric(metric));
        }
        Dimension::parse(raw, field)
            .map(SortKey::Dimension)
            .map_err(|_| Error::invalid(field, "unknown metric or dimension"))
    }
}

/// A validated `stats` request. Built only by [`StatsRequest::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub zone: Tz,
    pub group_by: Vec<Dimension>,
    /// Rows must have one of the values for each dimension named.
    pub filters: Vec<(Dimension, Vec<String>)>,
    pub sort: SortKey,
    pub descending: bool,
    pub offset: usize,
    pub limit: usize,
}

/// The raw input of a `stats` request, as GraphQL or a query string carries it.
#[derive(Debug, Clone, Default)]
pub struct StatsInput {
    pub window: StatsWindow,
    pub zone: Option<Tz>,
    pub group_by: Vec<String>,
    pub filters: Vec<(String, Vec<String>)>,
    pub sort_by: Option<String>,
    pub descending: Option<bool>,
    pub offset: Option<i64>,
    pub limit: Option<i64>,
}

impl StatsInput {
    /// The same request read at `now` (a rolling period moves on; a fixed window does not).
    pub fn at(self, now: DateTime<Utc>) -> StatsInput {
        StatsInput { window: self.window.at(now), ..self }
    }
}

/// A report's time range: `from` not after `to`, at most [`MAX_RANGE_DAYS`] long.
pub fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), Error> {
    if from > to {
        return Err(Error::invalid("from", "is after `to`"));
    }
    if to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(Error::invalid("to", format!("the range is longer than {MAX_RANGE_DAYS} days")));
    }
    Ok(())
}

impl StatsRequest {
    /// Validates the input; each error names its field (`from`, `to`, `groupBy`, `filters`,
    /// `sortBy`, `offset`, `limit`).
    pub fn parse(input: StatsInput, tenant_zone: Tz) -> Result<StatsRequest, Error> {
        let zone = input.zone.unwrap_or(tenant_zone);
        let (from, to) = input.window.bounds(zone);
        check_range(from, to)?;
        if input.group_by.len() > MAX_GROUP_BY {
            return Err(Error::invalid("groupBy", format!("at most {MAX_GROUP_BY} dimensions")));
        }
        let mut group_by = Vec::with_capacity(input.group_by.len());
        for raw in &input.group_by {
            let dimension = Dimension::parse(raw, "groupBy")?;
            if group_by.contains(&dimension) {
                return Err(Error::invalid("groupBy", format!("{} is named twice", dimension.as_str())));
            }
            group_by.push(dimension);
        }
        let filters = input
            .filters
            .into_iter()
            .map(|(raw, values)| {
                if values.len() > MAX_FILTER_VALUES {
                    return Err(Error::invalid(
                        "filters",
                        format!("at most {MAX_FILTER_VALUES} values per dimension"),
                    ));
                }
                Ok((Dimension::parse(&raw, "filters")?, values))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let sort = match input.sort_by {
            Some(raw) => SortKey::parse(&raw, "sortBy")?,
            None => SortKey::Metric(Metric::Clicks),
        };
        let offset = usize::try_from(input.offset.unwrap_or(0))
            .map_err(|_| Error::invalid("offset", "must not be negative"))?;
        let limit = match input.limit {
            None => 100,
            Some(n) if (1..=MAX_PAGE as i64).contains(&n) => n as usize,
            Some(_) => return Err(Error::invalid("limit", format!("must be between 1 and {MAX_PAGE}"))),
        };
        Ok(StatsRequest {
            from,
            to,
            zone,
            group_by,
            filters,
            sort,
            descending: input.descending.unwrap_or(true),
            offset,
            limit,
        })
    }

    /// The whole UTC hours the rollups are read for: from the hour containing `from` up to
    /// (not including) the hour containing `to`, or that hour itself when `to` is mid-hour.
    pub fn hours(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = hour_of(self.from);
        let end = hour_of(self.to);
        let end = if end == self.to { end } else { end + chrono::Duration::hours(1) };
        (start, end.max(start))
    }
}

/// The start of the UTC hour containing `at`.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp().div_euclid(3_600) * 3_600;
    Utc.timestamp_opt(secs, 0).single().unwrap_or(at)
}

/// The UTC day number (days since 1970-01-01) of `at`, for unique clicks.
pub fn day_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

/// The dimension values of one rollup row; empty text for "none".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub affiliate: Option<AffiliateId>,
    pub campaign: Option<CampaignId>,
    pub link: Option<TrackingLinkId>,
    pub subs: [String; 5],
    pub country: String,
    pub device: Device,
    /// The click's `source`, `creative` and `lp` parameters.
    pub source: String,
    pub creative: String,
    pub landing_page: String,
}

/// The rollup rows a conversion changes. Its counters go to the row of the click it converted
/// through (`origin`: that click's affiliate, campaign, link, sub-IDs and device). Each credit's
/// commission goes to its own affiliate's row, so an affiliate's rows show only what it earned:
/// the origin's row when the credit is the origin's affiliate, else the same campaign, country
/// and device without the link, sub-IDs, source, creative and landing page (those belong to
/// another affiliate's click). A conversion without credits counts in a row without any of
/// them.
pub fn conversion_rows(
    origin: RowKey,
    credits: &[(AffiliateId, Option<Decimal>)],
    counters: Counters,
) -> Vec<(RowKey, Counters)> {
    let origin = if credits.is_empty() {
        RowKey { affiliate: None, ..of_the_click_removed(origin) }
    } else if origin.affiliate.is_none() {
        // No click row to go by (not written, or a bound player without a journey): the
        // first credit holds the counters.
        RowKey { affiliate: Some(credits[0].0), ..origin }
    } else {
        origin
    };
    let mut rows = vec![(origin.clone(), counters)];
    for (affiliate, commission) in credits {
        let Some(commission) = commission else { continue };
        let key = if Some(*affiliate) == origin.affiliate {
            origin.clone()
        } else {
            RowKey { affiliate: Some(*affiliate), ..of_the_click_removed(origin.clone()) }
        };
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, counters)) => counters.add(&Counters::commission(*commission)),
            None => rows.push((key, Counters::commission(*commission))),
        }
    }
    rows
}

/// The key without what only the click knows about (link, sub-IDs, source, creative, landing
/// page).
fn of_the_click_removed(key: RowKey) -> RowKey {
    RowKey {
        link: None,
        subs: Default::default(),
        source: String::new(),
        creative: String::new(),
        landing_page: String::new(),
        ..key
    }
}

/// One hourly rollup row as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyRow {
    pub hour: DateTime<Utc>,
    pub key: RowKey,
    pub counters: Counters,
}

/// A row's value for a dimension, as shown and as filtered on: prefixed IDs, sub-IDs and
/// names as stored, hours as local RFC 3339, days `YYYY-MM-DD`, months `YYYY-MM`, in the
/// request's zone. `None` when the row has no value.
pub fn value_of(row: &HourlyRow, dimension: Dimension, zone: Tz) -> Option<String> {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let local = || row.hour.with_timezone(&zone);
    match dimension {
        Dimension::Affiliate => row.key.affiliate.map(|id| id.to_string()),
        Dimension::Campaign => row.key.campaign.map(|id| id.to_string()),
        Dimension::Link => row.key.link.map(|id| id.to_string()),
        Dimension::Sub1 => text(&row.key.subs[0]),
        Dimension::Sub2 => text(&row.key.subs[1]),
        Dimension::Sub3 => text(&row.key.subs[2]),
        Dimension::Sub4 => text(&row.key.subs[3]),
        Dimension::Sub5 => text(&row.key.subs[4]),
        Dimension::Country => text(&row.key.country),
        Dimension::DeviceType => text(&row.key.device.device_type),
        Dimension::Os => text(&row.key.device.os),
        Dimension::Browser => text(&row.key.device.browser),
        Dimension::Source => text(&row.key.source),
        Dimension::Creative => text(&row.key.creative),
        Dimension::LandingPage => text(&row.key.landing_page),
        Dimension::Hour => {
            let at = local();
            Some(format!("{}", at.with_minute(0).unwrap_or(at).format("%Y-%m-%dT%H:%M%:z")))
        }
        Dimension::Day => Some(local().format("%Y-%m-%d").to_string()),
        Dimension::Month => {
            let at = local();
            Some(format!("{:04}-{:02}", at.year(), at.month()))
        }
    }
}

/// One row of a `stats` answer: the grouped dimensions' values, in `group_by` order.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub key: Vec<(Dimension, Option<String>)>,
    pub counters: Counters,
    pub derived: Derived,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatsReport {
    /// The window read (a rolling period resolved at the read), as asked: the rollups are read
    /// by whole hours (see [`StatsRequest::hours`]).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The zone HOUR, DAY and MONTH were computed in.
    pub zone: Tz,
    /// The grouped dimensions, in order.
    pub group_by: Vec<Dimension>,
    /// The requested page.
    pub rows: Vec<StatsRow>,
    /// Rows before paging.
    pub total_rows: usize,
    /// Over every row that matched the filters.
    pub totals: Counters,
    pub totals_derived: Derived,
}

/// Groups, filters, sorts and pages rollup rows as the request says.
pub fn aggregate(rows: impl IntoIterator<Item = HourlyRow>, request: &StatsRequest) -> StatsReport {
    let zone = request.zone;
    let mut groups: HashMap<Vec<Option<String>>, Counters> = HashMap::new();
    let mut totals = Counters::default();
    for row in rows {
        let matches = request.filters.iter().all(|(dimension, values)| {
            let value = value_of(&row, *dimension, zone).unwrap_or_default();
            values.contains(&value)
        });
        if !matches {
            continue;
        }
        totals.add(&row.counters);
        let key: Vec<Option<String>> = request.group_by.iter().map(|d| value_of(&row, *d, zone)).collect();
        groups.entry(key).or_default().add(&row.counters);
    }
    let mut rows: Vec<StatsRow> = groups
        .into_iter()
        .map(|(key, counters)| StatsRow {
            key: request.group_by.iter().copied().zip(key).collect(),
            derived: Derived::of(&counters),
            counters,
        })
        .collect();
    rows.sort_by(|a, b| {
        let primary = match request.sort {
            SortKey::Metric(metric) => {
                metric.value(&a.counters, &a.derived).cmp(&metric.value(&b.counters, &b.derived))
            }
            SortKey::Dimension(dimension) => {
                let pick = |row: &StatsRow| {
                    row.key.iter().find(|(d, _)| *d == dimension).and_then(|(_, v)| v.clone())
                };
                pick(a).cmp(&pick(b))
            }
        };
        let primary = if request.descending { primary.reverse() } else { primary };
        // Ties in a stable, documented order: by the grouped values, ascending.
        primary.then_with(|| {
            a.key.iter().map(|(_, v)| v).cmp(b.key.iter().map(|(_, v)| v)).then(Ordering::Equal)
        })
    });
    let total_rows = rows.len();
    let rows = rows.into_iter().skip(request.offset).take(request.limit).collect();
    StatsReport {
        from: request.from,
        to: request.to,
        zone,
        group_by: request.group_by.clone(),
        rows,
        total_rows,
        totals_derived: Derived::of(&totals),
        totals,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn input(from: &str, to: &str, group_by: &[&str]) -> StatsInput {
        StatsInput {
            window: StatsWindow::Fixed { from: at(from), to: at(to) },
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            ..StatsInput::default()
        }
    }

    #[test]
    fn bad_requests_name_their_field() {
        let parse = |i| StatsRequest::parse(i, Tz::UTC).unwrap_err().field().to_owned();
        assert_eq!(parse(input("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z", &[])), "from");
        assert_eq!(parse(input("2025-01-01T00:00:00Z", "2026-12-01T00:00:00Z", &[])), "to");
        assert_eq!(parse(input("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", &["NOPE"])), "groupBy");
        assert_eq!(
            parse(input(
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                &["DAY", "OS", "SUB1", "SUB2", "SUB3"]
            )),
            "groupBy"
        );
        assert_eq!(parse(input("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", &["DAY", "day"])), "groupBy");
        let ok = StatsRequest::parse(
            input("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", &["day", "Affiliate"]),
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(ok.group_by, vec![Dimension::Day, Dimension::Affiliate]);
    }

    #[test]
    fn conversions_count_by_event_and_rejected_ones_not_at_all() {
        let ftd = Counters::conversion(EventKind::Ftd, ConversionStatus::Approved, Some(d("50.25")), None);
        assert_eq!(
            (ftd.ftds, ftd.deposits, ftd.ftd_amount, ftd.deposit_amount),
            (1, 1, d("50.25"), d("50.25"))
        );
        let rejected = Counters::conversion(EventKind::Registration, ConversionStatus::Rejected, None, None);
        assert!(rejected.is_zero());
        let trade = Counters::conversion(EventKind::Trade, ConversionStatus::Pending, None, Some(d("0.5")));
        assert_eq!(trade.lots, d("0.5"));
        let revenue =
            Counters::conversion(EventKind::Revenue, ConversionStatus::Approved, Some(d("-10")), None);
        assert_eq!(revenue.net_revenue, d("-10"));
    }

    #[test]
    fn derived_metrics_are_exact_and_absent_without_a_denominator() {
        let c = Counters {
            clicks: 3,
            registrations: 1,
            ftds: 1,
            commission: d("10"),
            net_revenue: d("7.5"),
            ..Default::default()
        };
        let derived = Derived::of(&c);
        assert_eq!(derived.click_to_registration, Some(d("0.333333")));
        assert_eq!(derived.registration_to_ftd, Some(d("1")));
        assert_eq!(derived.epc, Some(d("3.333333")));
        assert_eq!(derived.arpu, Some(d("7.5")));
        assert_eq!(Derived::of(&Counters::default()), Derived::default());
    }

    #[test]
    fn user_agents_are_classified_by_the_parser() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        let device = Device::of(Some(iphone));
        assert_eq!(device.device_type, "smartphone");
        assert_eq!(device.os, "iPhone");
        assert_eq!(device.browser, "Safari");
        let desktop = Device::of(Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        ));
        assert_eq!((desktop.device_type.as_str(), desktop.browser.as_str()), ("desktop", "Chrome"));
        assert_eq!(Device::of(None), Device::default());
        assert_eq!(Device::of(Some("")), Device::default());
    }

    #[test]
    fn days_and_months_follow_the_requested_zone() {
        let row = HourlyRow {
            hour: at("2026-12-01T23:00:00Z"),
            key: RowKey::default(),
            counters: Counters::click(true),
        };
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(value_of(&row, Dimension::Day, Tz::UTC).as_deref(), Some("2026-12-01"));
        assert_eq!(value_of(&row, Dimension::Day, berlin).as_deref(), Some("2026-12-02"));
        assert_eq!(value_of(&row, Dimension::Hour, berlin).as_deref(), Some("2026-12-02T00:00+01:00"));
        assert_eq!(value_of(&row, Dimension::Month, Tz::UTC).as_deref(), Some("2026-12"));
    }

    fn arb_row() -> impl Strategy<Value = HourlyRow> {
        (0i64..2_000, 0usize..3, 0i64..5, 0i64..3, -1_000_000i64..1_000_000).prop_map(
            |(hour, aff, clicks, regs, cents)| {
                let affiliates = [
                    None,
                    Some(AffiliateId::from_uuid(uuid::Uuid::from_u128(1))),
                    Some(AffiliateId::from_uuid(uuid::Uuid::from_u128(2))),
                ];
                HourlyRow {
                    hour: Utc.timestamp_opt(1_790_000_000 / 3_600 * 3_600 + hour * 3_600, 0).unwrap(),
                    key: RowKey { affiliate: affiliates[aff], ..RowKey::default() },
                    counters: Counters {
                        clicks,
                        registrations: regs,
                        commission: Decimal::new(cents, 2),
                        ..Counters::default()
                    },
                }
            },
        )
    }

    proptest! {
        #[test]
        fn totals_are_the_sum_of_the_rows_whatever_the_grouping(
            rows in proptest::collection::vec(arb_row(), 0..60),
            groups in proptest::sample::subsequence(vec!["AFFILIATE", "DAY", "MONTH", "HOUR"], 0..=4),
        ) {
            let request = StatsRequest::parse(
                StatsInput {
                    window: StatsWindow::Fixed { from: at("2026-01-01T00:00:00Z"), to: at("2026-02-01T00:00:00Z") },
                    group_by: groups.iter().map(|s| s.to_string()).collect(),
                    limit: Some(1_000),
                    ..StatsInput::default()
                },
                Tz::UTC,
            ).unwrap();
            let mut expected = Counters::default();
            for row in &rows { expected.add(&row.counters); }
            let report = aggregate(rows.clone(), &request);
            prop_assert_eq!(report.totals, expected);
            let mut summed = Counters::default();
            for row in &report.rows { summed.add(&row.counters); }
            prop_assert_eq!(summed, expected);
            prop_assert_eq!(report.rows.len(), report.total_rows);
            if groups.is_empty() && !rows.is_empty() { prop_assert_eq!(report.rows.len(), 1); }
        }

        #[test]
        fn derived_rates_stay_between_zero_and_one_when_counts_nest(clicks in 0i64..1_000_000, regs in 0i64..1_000_000) {
            let regs = regs.min(clicks);
            let derived = Derived::of(&Counters { clicks, registrations: regs, ..Counters::default() });
            if let Some(rate) = derived.click_to_registration {
                prop_assert!(rate >= Decimal::ZERO && rate <= Decimal::ONE);
            } else {
                prop_assert_eq!(clicks, 0);
            }
        }

        #[test]
        fn parsing_never_panics(raw in ".{0,30}", from in 0i64..4_000_000_000, span in -100_000_000i64..100_000_000) {
            let from = Utc.timestamp_opt(from, 0).unwrap();
            let to = from + chrono::Duration::seconds(span);
            let _ = StatsRequest::parse(StatsInput { window: StatsWindow::Fixed { from, to }, group_by: vec![raw.clone()], sort_by: Some(raw), ..StatsInput::default() }, Tz::UTC);
        }
    }
}
