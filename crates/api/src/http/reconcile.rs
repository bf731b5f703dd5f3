//! `POST /reports/reconcile.csv?from=&to=`: the `reconcile` query as CSV, for a bearer token
//! (staff), with the old system's conversions file as the request body. One row per
//! transaction; differences are ours minus theirs; decimals exactly as compared.

use clickledger_domain::reconcile::{Line, Side};
use poem::error::ResponseError;
use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Body, IntoResponse, Request, Response, handler};

use super::reports::{encode_csv, timestamp};
use crate::Error;
use crate::state::SharedState;

/// Largest body accepted: a month of a big program's transactions.
const MAX_BODY: usize = 64 * 1024 * 1024;

const COLUMNS: [&str; 15] = [
    "txn_id",
    "result",
    "amount_difference",
    "currency_differs",
    "commission_difference",
    "their_event",
    "their_amount",
    "their_currency",
    "their_commission",
    "their_affiliate",
    "our_event",
    "our_amount",
    "our_currency",
    "our_commission",
    "our_affiliate",
];

#[handler]
pub async fn reconcile_csv(req: &Request, body: Body, state: Data<&SharedState>) -> Response {
    match answer(req, body, &state).await {
        Ok(response) => response,
        Err(err) => err.as_response(),
    }
}

async fn answer(req: &Request, body: Body, state: &SharedState) -> Result<Response, Error> {
    let principal = *super::authenticate(state, req).await.principal()?;
    let (mut from, mut to) = (None, None);
    for (key, value) in url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "from" => from = Some(value.into_owned()),
            "to" => to = Some(value.into_owned()),
            other => return Err(Error::bad_input(other.to_owned(), "is not a parameter of this report")),
        }
    }
    let (from, to) = (timestamp(from, "from")?, timestamp(to, "to")?);
    let bytes = body
        .into_bytes_limit(MAX_BODY)
        .await
        .map_err(|_| Error::bad_input("body", format!("must be at most {MAX_BODY} bytes")))?;
    let report = crate::reconcile::run(&state.db, principal.scope(), from, to, &bytes, "body").await?;
    let mut rows = vec![COLUMNS.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>()];
    rows.extend(report.lines.iter().map(row));
    let csv = encode_csv(&rows).map_err(|err| Error::Internal(err.to_string()))?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, "attachment; filename=\"reconcile.csv\"")
        .body(csv)
        .into_response())
}

fn row(line: &Line) -> Vec<String> {
    let text = |value: Option<String>| value.unwrap_or_default();
    let mut row = vec![
        line.txn_id.clone(),
        line.bucket.as_str().to_owned(),
        text(line.amount_difference.map(|d| d.to_string())),
        line.currency_differs.to_string(),
        text(line.commission_difference.map(|d| d.to_string())),
    ];
    for side in [&line.theirs, &line.ours] {
        row.extend(side_columns(side.as_ref()));
    }
    row
}

fn side_columns(side: Option<&Side>) -> [String; 5] {
    match side {
        None => Default::default(),
        Some(side) => [
            side.event.clone(),
            side.amount.map(|a| a.to_string()).unwrap_or_default(),
            side.currency.map(|c| c.code().to_owned()).unwrap_or_default(),
            side.commission.to_string(),
            side.affiliate.clone().unwrap_or_default(),
        ],
    }
}
