//! `GET /reports/stats.csv`: the `stats` query as CSV, for a bearer token, with the same
//! parameters in the query string:
//! `from`, `to` (RFC 3339) or `period` (TODAY, LAST_24_HOURS, THIS_MONTH), `timeZone`, `groupBy` (comma-separated or repeated),
//! `filter.<DIMENSION>=value` (repeatable), `sortBy`, `descending`, `offset`, `limit`
//! (1 to 1000; 1000 by default here). The header row names the grouped dimensions, then the
//! metrics; decimals are written exactly as `stats` answers them.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use clickledger_domain::reporting::{Counters, Derived, MAX_PAGE, StatsReport};
use clickledger_domain::stats_window::RollingPeriod;
use futures_util::stream;
use poem::error::ResponseError;
use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Body, IntoResponse, Request, Response, handler};
use rust_decimal::Decimal;

use crate::Error;
use crate::graphql::reporting::{StatsFilter, StatsInput, StatsPeriod, run};
use crate::state::SharedState;

/// Rows encoded per chunk of the streamed body.
const ROWS_PER_CHUNK: usize = 256;

const METRIC_COLUMNS: [&str; 15] = [
    "clicks",
    "unique_clicks",
    "registrations",
    "ftds",
    "ftd_amount",
    "deposits",
    "deposit_amount",
    "net_revenue",
    "lots",
    "chargebacks",
    "commission",
    "click_to_registration",
    "registration_to_ftd",
    "epc",
    "arpu",
];

#[handler]
pub async fn stats_csv(req: &Request, state: Data<&SharedState>) -> Response {
    match answer(req, &state).await {
        Ok(response) => response,
        Err(err) => err.as_response(),
    }
}

async fn answer(req: &Request, state: &SharedState) -> Result<Response, Error> {
    let principal = *super::authenticate(state, req).await.principal()?;
    let input = parse_query(req.uri().query().unwrap_or_default())?;
    let report = run(&state.db, principal.scope(), input).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, "attachment; filename=\"stats.csv\"")
        .body(Body::from_bytes_stream(csv_chunks(report)))
        .into_response())
}

pub(super) fn timestamp(raw: Option<String>, field: &'static str) -> Result<DateTime<Utc>, Error> {
    let raw = raw.ok_or_else(|| Error::bad_input(field, "is required (RFC 3339)"))?;
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| Error::bad_input(field, "must be an RFC 3339 timestamp"))
}

fn number(raw: Option<String>, field: &'static str) -> Result<Option<i64>, Error> {
    raw.map(|raw| raw.trim().parse::<i64>().map_err(|_| Error::bad_input(field, "must be an integer")))
        .transpose()
}

fn parse_query(query: &str) -> Result<StatsInput, Error> {
    let (mut from, mut to, mut period, mut zone, mut sort_by, mut descending, mut offset, mut limit) =
        (None, None, None, None, None, None, None, None);
    let mut group_by = Vec::new();
    let mut filters: Vec<StatsFilter> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "from" => from = Some(value),
            "to" => to = Some(value),
            "period" => period = Some(value),
            "timeZone" => zone = Some(value),
            "groupBy" => {
                group_by.extend(value.split(',').filter(|s| !s.trim().is_empty()).map(str::to_owned))
            }
            "sortBy" => sort_by = Some(value),
            "descending" => descending = Some(value),
            "offset" => offset = Some(value),
            "limit" => limit = Some(value),
            other => {
                let Some(dimension) = other.strip_prefix("filter.") else {
                    return Err(Error::bad_input(
                        other.chars().take(40).collect::<String>(),
                        "unknown parameter",
                    ));
                };
                match filters.iter_mut().find(|f| f.dimension == dimension) {
                    Some(filter) => filter.values.push(value),
                    None => {
                        filters.push(StatsFilter { dimension: dimension.to_owned(), values: vec![value] })
                    }
                }
            }
        }
    }
    let descending = match descending.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(Error::bad_input("descending", "must be true or false")),
    };
    Ok(StatsInput {
        from: from.map(|raw| timestamp(Some(raw), "from")).transpose()?,
        to: to.map(|raw| timestamp(Some(raw), "to")).transpose()?,
        period: period.map(|raw| RollingPeriod::parse(&raw, "period").map(StatsPeriod::from)).transpose()?,
        time_zone: zone,
        group_by,
        filters,
        sort_by,
        descending,
        offset: number(offset, "offset")?,
        limit: Some(number(limit, "limit")?.unwrap_or(MAX_PAGE as i64)),
    })
}

fn metric_cells(c: &Counters, d: &Derived) -> Vec<String> {
    let opt = |value: Option<Decimal>| value.map(|v| v.to_string()).unwrap_or_default();
    vec![
        c.clicks.to_string(),
        c.unique_clicks.to_string(),
        c.registrations.to_string(),
        c.ftds.to_string(),
        c.ftd_amount.to_string(),
        c.deposits.to_string(),
        c.deposit_amount.to_string(),
        c.net_revenue.to_string(),
        c.lots.to_string(),
        c.chargebacks.to_string(),
        c.commission.to_string(),
        opt(d.click_to_registration),
        opt(d.registration_to_ftd),
        opt(d.epc),
        opt(d.arpu),
    ]
}

/// The header, then the rows, each chunk encoded by the `csv` crate as the body is sent.
fn csv_chunks(report: StatsReport) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    let dimensions: Vec<String> = report.group_by.iter().map(|d| d.as_str().to_ascii_lowercase()).collect();
    let header: Vec<String> =
        dimensions.into_iter().chain(METRIC_COLUMNS.iter().map(|c| (*c).to_owned())).collect();
    let mut rows: Vec<Vec<String>> = vec![header];
    rows.extend(report.rows.iter().map(|row| {
        row.key
            .iter()
            .map(|(_, value)| value.clone().unwrap_or_default())
            .chain(metric_cells(&row.counters, &row.derived))
            .collect()
    }));
    let chunks: Vec<Vec<Vec<String>>> = rows.chunks(ROWS_PER_CHUNK).map(<[_]>::to_vec).collect();
    stream::iter(chunks.into_iter().map(|chunk| encode_csv(&chunk)))
}

/// Rows as CSV, quoted as needed by the `csv` crate.
pub(super) fn encode_csv(rows: &[Vec<String>]) -> std::io::Result<Bytes> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for record in rows {
        writer.write_record(record).map_err(std::io::Error::other)?;
    }
    writer.into_inner().map(Bytes::from).map_err(|err| std::io::Error::other(err.to_string()))
}
