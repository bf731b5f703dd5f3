//! `conversions.csv`: the old tracker's conversion history. It is shown in `conversions` and
//! counted in `stats`, marked imported, and books no commission (the old system paid it, and
//! the opening balances carry what it still owes).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Columns, ImportError, Lined, Program, amount, optional};
use crate::conversion::{ConversionStatus, EventKind};
use crate::money::{Currency, Money};

pub const CONVERSIONS: &str = "conversions.csv";

pub const CONVERSION_COLUMNS: Columns = Columns {
    required: &["txn_id", "event", "occurred_at"],
    optional: &["player_id", "affiliate_external_id", "campaign_external_id", "amount", "currency", "status"],
};

/// As long as a postback's `txn_id` may be.
const MAX_TXN_ID: usize = 200;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConversionRow {
    pub txn_id: String,
    pub event: String,
    pub occurred_at: String,
    #[serde(default)]
    pub player_id: String,
    #[serde(default)]
    pub affiliate_external_id: String,
    #[serde(default)]
    pub campaign_external_id: String,
    #[serde(default)]
    pub amount: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConversion {
    pub line: u64,
    pub txn_id: String,
    pub event: EventKind,
    pub status: ConversionStatus,
    pub occurred_at: DateTime<Utc>,
    pub player_id: Option<String>,
    /// Credited in full; `None`: the old tracker attributed it to no one.
    pub affiliate: Option<String>,
    pub campaign: Option<String>,
    pub amount: Option<Money>,
}

/// The events history may hold: a chargeback or a trade is not imported (a reversed
/// transaction is a `rejected` row).
const HISTORY_EVENTS: [EventKind; 5] =
    [EventKind::Registration, EventKind::Ftd, EventKind::Deposit, EventKind::Purchase, EventKind::Revenue];

fn text(raw: &str, column: &str) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() || value.len() > MAX_TXN_ID || value.chars().any(char::is_control) {
        return Err(format!("{column} must be 1–{MAX_TXN_ID} bytes without control characters"));
    }
    Ok(value.to_owned())
}

fn row_of(
    row: &ConversionRow,
    affiliate_known: &dyn Fn(&str) -> bool,
    campaign_known: &dyn Fn(&str) -> bool,
) -> Result<HistoryConversion, Vec<String>> {
    let mut problems = Vec::new();
    let event = match row.event.parse::<EventKind>() {
        Ok(event) if HISTORY_EVENTS.contains(&event) => Some(event),
        Ok(event) => {
            problems.push(format!(
                "event `{event}` is not imported (registration, ftd, deposit, purchase, revenue)"
            ));
            None
        }
        Err(err) => {
            problems.push(err.to_string());
            None
        }
    };
    let status = match optional(&row.status) {
        None => Some(ConversionStatus::Approved),
        Some(status) => status.parse::<ConversionStatus>().map_err(|e| problems.push(e.to_string())).ok(),
    };
    let occurred_at = DateTime::parse_from_rfc3339(row.occurred_at.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            problems.push(format!("occurred_at `{}` is not an RFC 3339 time", row.occurred_at.trim()))
        })
        .ok();
    let player_id = match optional(&row.player_id) {
        None => None,
        Some(player) => text(&player, "player_id").map_err(|e| problems.push(e)).ok(),
    };
    let affiliate = optional(&row.affiliate_external_id);
    if let Some(affiliate) = affiliate.as_deref().filter(|a| !affiliate_known(a)) {
        problems.push(format!("unknown affiliate_external_id `{affiliate}`"));
    }
    let campaign = optional(&row.campaign_external_id);
    if let Some(campaign) = campaign.as_deref().filter(|c| !campaign_known(c)) {
        problems.push(format!("unknown campaign_external_id `{campaign}`"));
    }
    let money = match (optional(&row.amount), optional(&row.currency)) {
        (None, None) => None,
        (Some(_), None) => {
            problems.push("amount needs a currency".to_owned());
            None
        }
        (_, Some(code)) => match Currency::parse(&code, "currency") {
            Err(_) => {
                problems.push(format!("unknown currency `{code}`"));
                None
            }
            Ok(currency) => match amount(&row.amount, "amount", currency) {
                Ok(money) => Some(money),
                Err(reason) => {
                    problems.push(reason);
                    None
                }
            },
        },
    };
    if let Some(event) = event {
        match money {
            None if event.needs_amount() => problems.push(format!("amount is required for `{event}`")),
            Some(money) if money.amount.is_sign_negative() && event != EventKind::Revenue => {
                problems.push(format!("amount of `{event}` must not be negative"));
            }
            _ => {}
        }
    }
    let txn_id = text(&row.txn_id, "txn_id").map_err(|e| problems.push(e)).ok();
    match (txn_id, event, status, occurred_at) {
        (Some(txn_id), Some(event), Some(status), Some(occurred_at)) if problems.is_empty() => {
            Ok(HistoryConversion {
                line: 0,
                txn_id,
                event,
                status,
                occurred_at,
                player_id,
                affiliate,
                campaign,
                // A registration's amount, if the export has one, is not a deposit: kept.
                amount: money,
            })
        }
        _ => Err(problems),
    }
}

/// Checks `conversions.csv`: every row valid on its own and each `txn_id` once.
pub(super) fn validate_history(
    rows: &[Lined<ConversionRow>],
    affiliate_known: &dyn Fn(&str) -> bool,
    campaign_known: &dyn Fn(&str) -> bool,
    program: &mut Program,
    errors: &mut Vec<ImportError>,
) {
    let mut txns: HashMap<String, u64> = HashMap::new();
    for Lined { line, row } in rows {
        let txn = row.txn_id.trim();
        if !txn.is_empty()
            && let Some(first) = txns.insert(txn.to_owned(), *line)
        {
            errors.push(ImportError::new(
                CONVERSIONS,
                *line,
                format!("duplicate txn_id `{txn}` (first on line {first})"),
            ));
            continue;
        }
        match row_of(row, affiliate_known, campaign_known) {
            Ok(conversion) => program.history.push(HistoryConversion { line: *line, ..conversion }),
            Err(problems) => {
                errors.extend(
                    problems.into_iter().map(|message| ImportError::new(CONVERSIONS, *line, message)),
                );
            }
        }
    }
}
