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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;
    use crate::migration::{Export, ImportErrors, Known, validate};

    fn row(line: u64, txn: &str, event: &str, at: &str, cells: [&str; 6]) -> Lined<ConversionRow> {
        let [player_id, affiliate_external_id, campaign_external_id, amount, currency, status] =
            cells.map(String::from);
        Lined {
            line,
            row: ConversionRow {
                txn_id: txn.into(),
                event: event.into(),
                occurred_at: at.into(),
                player_id,
                affiliate_external_id,
                campaign_external_id,
                amount,
                currency,
                status,
            },
        }
    }

    fn known() -> Known {
        Known {
            affiliates: ["aff".to_owned()].into(),
            campaigns: ["cmp".to_owned()].into(),
            ..Known::default()
        }
    }

    const AT: &str = "2026-01-05T10:30:00+01:00";

    #[test]
    fn history_rows_are_read_exactly() {
        let export = Export {
            history: vec![
                row(2, "t1", "first_deposit", AT, ["p1", "aff", "cmp", "50.10", "eur", ""]),
                row(3, "t2", "registration", AT, ["p1", "", "", "", "", "pending"]),
                row(4, "t3", "revenue", AT, ["", "aff", "", "-12.5", "USD", "rejected"]),
            ],
            ..Export::default()
        };
        let history = validate(&export, &known()).unwrap().history;
        assert_eq!(history.len(), 3);
        assert_eq!(history[0].event, EventKind::Ftd);
        assert_eq!(history[0].status, ConversionStatus::Approved);
        assert_eq!(history[0].occurred_at.to_rfc3339(), "2026-01-05T09:30:00+00:00");
        assert_eq!(
            history[0].amount,
            Some(Money::new(Decimal::new(5010, 2), Currency::parse("EUR", "c").unwrap()))
        );
        assert_eq!((history[1].affiliate.as_deref(), history[1].amount), (None, None));
        assert_eq!(history[2].amount.map(|m| m.amount), Some(Decimal::new(-125, 1)));
    }

    #[test]
    fn bad_history_rows_are_named() {
        let export = Export {
            history: vec![
                row(2, "t1", "ftd", AT, ["", "aff", "", "10", "EUR", ""]),
                row(3, "t1", "ftd", AT, ["", "aff", "", "10", "EUR", ""]),
                row(4, "t2", "deposit", AT, ["", "", "", "10", "XYZ", ""]),
                row(5, "t3", "chargeback", AT, ["", "", "", "10", "EUR", ""]),
                row(6, "t4", "deposit", "yesterday", ["", "ghost", "nope", "", "", "maybe"]),
                row(7, "t5", "deposit", AT, ["", "", "", "10.001", "EUR", ""]),
                row(8, "t6", "deposit", AT, ["", "", "", "-1", "EUR", ""]),
                row(9, "", "registration", AT, ["", "", "", "10", "", ""]),
            ],
            ..Export::default()
        };
        let found = match validate(&export, &known()) {
            Ok(_) => Vec::new(),
            Err(ImportErrors(errors)) => errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        for line in [
            "conversions.csv:3: duplicate txn_id `t1` (first on line 2)",
            "conversions.csv:4: unknown currency `XYZ`",
            "conversions.csv:6: occurred_at `yesterday` is not an RFC 3339 time",
            "conversions.csv:6: unknown affiliate_external_id `ghost`",
            "conversions.csv:6: unknown campaign_external_id `nope`",
            "conversions.csv:6: amount is required for `deposit`",
            "conversions.csv:7: amount: `10.001` has more than 2 decimal places",
            "conversions.csv:8: amount of `deposit` must not be negative",
            "conversions.csv:9: amount needs a currency",
            "conversions.csv:9: txn_id must be 1–200 bytes without control characters",
        ] {
            assert!(found.iter().any(|f| f == line), "`{line}` not in {found:?}");
        }
        assert!(
            found.iter().any(|f| f.starts_with("conversions.csv:5: event `chargeback` is not imported")),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.starts_with("conversions.csv:6: status")), "{found:?}");
    }

    proptest! {
        #[test]
        fn arbitrary_history_rows_never_panic(txn in ".{0,30}", event in "(ftd|deposit|registration|.{0,8})", at in ".{0,30}", cells in proptest::array::uniform6(".{0,12}")) {
            let export = Export { history: vec![row(2, &txn, &event, &at, cells.each_ref().map(String::as_str))], ..Export::default() };
            let _ = validate(&export, &known());
        }

        /// Any valid amount in a currency's minor units is read back exactly.
        #[test]
        fn valid_amounts_are_exact(cents in 0i64..1_000_000_000_000) {
            let amount = Decimal::new(cents, 2);
            let export = Export { history: vec![row(2, "t", "deposit", AT, ["", "aff", "", &amount.to_string(), "EUR", ""])], ..Export::default() };
            let history = validate(&export, &known()).unwrap().history;
            prop_assert_eq!(history[0].amount.map(|m| m.amount), Some(amount));
        }
    }
}
