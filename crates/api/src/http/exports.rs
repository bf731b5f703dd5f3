//! `GET /reports/conversions.csv?from=&to=` and `GET /reports/commissions.csv?period=`: a
//! period's conversions and ledger entries as CSV, for a bearer token, as that viewer may see
//! them (an affiliate: its own credits and entries, no player IDs). The body is streamed a
//! page of rows at a time, so an export of any size holds one page in memory; decimals are
//! written exactly as stored.

use chrono::{DateTime, SecondsFormat, Utc};
use clickledger_domain::ids::AffiliateId;
use clickledger_domain::period::Period;
use clickledger_persistence::commission::{Commissions, EntryFilter, LedgerEntry};
use clickledger_persistence::conversions::{Conversion, Conversions};
use clickledger_persistence::{Page, PageRequest};
use poem::error::ResponseError;
use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Body, IntoResponse, Request, Response, handler};
use uuid::Uuid;

use super::reports::{encode_csv, timestamp};
use crate::Error;
use crate::state::SharedState;

/// Rows read from the database, and encoded, per chunk of the body.
const ROWS_PER_PAGE: u64 = 500;

const CONVERSION_COLUMNS: [&str; 20] = [
    "conversion_id",
    "occurred_at",
    "received_at",
    "event",
    "status",
    "transaction_id",
    "player_id",
    "campaign_id",
    "affiliate_id",
    "share",
    "commission",
    "commission_currency",
    "amount",
    "currency",
    "lots",
    "instrument",
    "unattributed_reason",
    "risk",
    "fraud_action",
    "rejection_reason",
];

const COMMISSION_COLUMNS: [&str; 16] = [
    "entry_id",
    "period",
    "occurred_at",
    "affiliate_id",
    "conversion_id",
    "kind",
    "reverses",
    "tier",
    "status",
    "amount",
    "currency",
    "basis",
    "source_amount",
    "source_currency",
    "fx_rate",
    "reason",
];

#[handler]
pub async fn conversions_csv(req: &Request, state: Data<&SharedState>) -> Response {
    let answer = async {
        let scope = (*super::authenticate(&state, req).await.principal()?).scope();
        let params = Params::parse(req)?;
        let from = timestamp(params.get("from"), "from")?;
        let to = timestamp(params.get("to"), "to")?;
        clickledger_domain::reporting::check_range(from, to)?;
        params.only(&["from", "to"])?;
        let db = state.db.clone();
        let read = move |request| {
            let db = db.clone();
            async move { Conversions::scoped(&db, scope).list_occurred(from, to, request).await }
        };
        Ok(csv_response("conversions.csv", &CONVERSION_COLUMNS, read, |c| c.id.uuid(), conversion_rows))
    };
    answer.await.unwrap_or_else(|err: Error| err.as_response())
}

#[handler]
pub async fn commissions_csv(req: &Request, state: Data<&SharedState>) -> Response {
    let answer = async {
        let scope = (*super::authenticate(&state, req).await.principal()?).scope();
        let params = Params::parse(req)?;
        let period =
            params.get("period").ok_or_else(|| Error::bad_input("period", "is required (YYYY-MM)"))?;
        let period = Period::parse(&period, "period")?;
        let affiliate =
            params.get("affiliateId").map(|raw| AffiliateId::parse(&raw, "affiliateId")).transpose()?;
        params.only(&["period", "affiliateId"])?;
        let filter = EntryFilter { period: Some(period), affiliate, ..EntryFilter::default() };
        let db = state.db.clone();
        let read = move |request| {
            let (db, filter) = (db.clone(), filter.clone());
            async move { Commissions::scoped(&db, scope).list(&filter, request).await }
        };
        Ok(csv_response(
            "commissions.csv",
            &COMMISSION_COLUMNS,
            read,
            |e| e.id.uuid(),
            |e| vec![entry_row(e)],
        ))
    };
    answer.await.unwrap_or_else(|err: Error| err.as_response())
}

/// The query string's parameters; each may appear once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(req: &Request) -> Result<Params, Error> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        for (i, (key, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == key) {
                return Err(Error::bad_input(key.chars().take(40).collect::<String>(), "given twice"));
            }
        }
        Ok(Params(pairs))
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// Refuses any parameter not in `known`, so a misspelt filter is not silently ignored.
    fn only(&self, known: &[&str]) -> Result<(), Error> {
        match self.0.iter().find(|(key, _)| !known.contains(&key.as_str())) {
            Some((key, _)) => {
                Err(Error::bad_input(key.chars().take(40).collect::<String>(), "unknown parameter"))
            }
            None => Ok(()),
        }
    }
}

/// The header row, then one chunk per page of the list `read` pages through, each read
/// only as the body is sent. A page that cannot be read ends the body early (the client
/// sees a cut transfer, never a short file that looks whole) and is logged.
fn csv_response<T, F, Fut>(
    filename: &str,
    columns: &'static [&'static str],
    read: F,
    id_of: fn(&T) -> Uuid,
    rows_of: fn(&T) -> Vec<Vec<String>>,
) -> Response
where
    T: Send + 'static,
    F: FnMut(PageRequest) -> Fut + Send + 'static,
    Fut: Future<Output = clickledger_persistence::Result<Page<T>>> + Send,
{
    enum Cursor {
        Header,
        After(Option<Uuid>),
        Done,
    }
    let chunks = futures_util::stream::unfold((Cursor::Header, read), move |(cursor, mut read)| async move {
        match cursor {
            Cursor::Header => {
                let header = vec![columns.iter().map(|column| (*column).to_owned()).collect()];
                Some((encode_csv(&header), (Cursor::After(None), read)))
            }
            Cursor::After(after) => match read(PageRequest { after, first: Some(ROWS_PER_PAGE) }).await {
                Ok(page) => {
                    let next = match (page.has_next, page.items.last()) {
                        (true, Some(last)) => Cursor::After(Some(id_of(last))),
                        _ => Cursor::Done,
                    };
                    let rows: Vec<Vec<String>> = page.items.iter().flat_map(rows_of).collect();
                    Some((encode_csv(&rows), (next, read)))
                }
                Err(err) => {
                    tracing::error!(error = %err, "an export stopped: a page could not be read");
                    Some((Err(std::io::Error::other(err.to_string())), (Cursor::Done, read)))
                }
            },
            Cursor::Done => None,
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\""))
        .body(Body::from_bytes_stream(chunks))
        .into_response()
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn text(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// One row per credited affiliate (a multi-touch conversion has several); one row with no
/// affiliate for an unattributed conversion.
fn conversion_rows(c: &Conversion) -> Vec<Vec<String>> {
    let row = |credit: Option<&clickledger_persistence::conversions::Credit>| {
        vec![
            c.id.to_string(),
            time(c.occurred_at),
            time(c.received_at),
            c.event.as_str().to_owned(),
            c.status.as_str().to_owned(),
            text(c.txn_id.as_ref()),
            text(c.player_id.as_ref()),
            text(c.campaign_id),
            text(credit.map(|credit| credit.affiliate_id)),
            text(credit.map(|credit| credit.share)),
            text(credit.and_then(|credit| credit.commission).map(|money| money.amount)),
            text(credit.and_then(|credit| credit.commission).map(|money| money.currency)),
            text(c.amount),
            text(c.currency.as_ref()),
            text(c.lots),
            text(c.instrument.as_ref()),
            text(c.unattributed_reason.map(|reason| reason.as_str())),
            c.fraud.risk.to_string(),
            text(c.fraud.action.map(|action| action.as_str())),
            text(c.fraud.rejection_reason()),
        ]
    };
    if c.credits.is_empty() {
        return vec![row(None)];
    }
    c.credits.iter().map(|credit| row(Some(credit))).collect()
}

fn entry_row(e: &LedgerEntry) -> Vec<String> {
    vec![
        e.id.to_string(),
        e.period.to_string(),
        time(e.occurred_at),
        e.affiliate_id.to_string(),
        text(e.conversion_id),
        e.kind.as_str().to_owned(),
        text(e.reverses.map(|kind| kind.as_str())),
        e.tier.to_string(),
        e.status.as_str().to_owned(),
        e.amount.amount.to_string(),
        e.amount.currency.to_string(),
        text(e.basis.map(|basis| basis.amount)),
        text(e.source_amount),
        text(e.source_currency.as_ref()),
        text(e.fx_rate),
        text(e.reason.as_ref()),
    ]
}
