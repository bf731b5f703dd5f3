//! Reconciling a parallel run: the old system's conversions (its CSV, documented in
//! `docs/MIGRATION.md`) against ours, by transaction ID, over one period. Each transaction
//! lands in exactly one bucket: matched, different (amount, currency or commission), only in
//! theirs, only in ours. Reading the file is the edge's job, loading ours storage's; here the
//! rows are checked and compared.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::migration::{Columns, ImportError, Lined};
use crate::money::Currency;

/// The name problems in the old system's file are reported under.
pub const THEIRS: &str = "conversions.csv";

pub const THEIR_COLUMNS: Columns = Columns {
    required: &["txn_id", "event", "amount", "currency", "commission", "occurred_at"],
    optional: &["affiliate_external_id"],
};

const MAX_TXN_ID: usize = crate::postback::MAX_ID_LEN;

/// A row of the old system's file, as read.
#[derive(Debug, Clone, Deserialize)]
pub struct TheirRow {
    pub txn_id: String,
    pub event: String,
    pub amount: String,
    pub currency: String,
    pub commission: String,
    pub occurred_at: String,
    #[serde(default)]
    pub affiliate_external_id: String,
}

/// One side's view of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub event: String,
    pub amount: Option<Decimal>,
    pub currency: Option<Currency>,
    /// The affiliate's commission on it (ours: the direct affiliates' ledger entries).
    pub commission: Decimal,
    pub occurred_at: DateTime<Utc>,
    pub affiliate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub txn_id: String,
    pub side: Side,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Matched,
    Different,
    OnlyTheirs,
    OnlyOurs,
}

impl Bucket {
    pub const ALL: [Bucket; 4] = [Bucket::Matched, Bucket::Different, Bucket::OnlyTheirs, Bucket::OnlyOurs];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Matched => "matched",
            Bucket::Different => "different",
            Bucket::OnlyTheirs => "only_theirs",
            Bucket::OnlyOurs => "only_ours",
        }
    }
}

/// One transaction of the report. Differences are ours minus theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub txn_id: String,
    pub bucket: Bucket,
    pub theirs: Option<Side>,
    pub ours: Option<Side>,
    /// Set when both sides have one and they differ (in amount or currency).
    pub amount_difference: Option<Decimal>,
    pub currency_differs: bool,
    pub commission_difference: Option<Decimal>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<Line>,
    /// Rows of their file outside the period: not compared.
    pub outside_period: u64,
}

impl Report {
    pub fn count(&self, bucket: Bucket) -> u64 {
        self.lines.iter().filter(|l| l.bucket == bucket).count() as u64
    }
}

fn decimal(raw: &str, column: &str) -> Result<Option<Decimal>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| format!("{column}: `{raw}` is not a decimal number"))
}

/// Checks the old system's rows; every problem is reported with its line.
pub fn validate(rows: &[Lined<TheirRow>]) -> Result<Vec<Transaction>, Vec<ImportError>> {
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for Lined { line, row } in rows {
        let mut problems = Vec::new();
        let txn_id = row.txn_id.trim();
        if txn_id.is_empty() || txn_id.len() > MAX_TXN_ID || txn_id.chars().any(char::is_control) {
            problems.push(format!("txn_id must be 1–{MAX_TXN_ID} bytes without control characters"));
        } else if let Some(first) = seen.insert(txn_id, *line) {
            problems.push(format!("duplicate txn_id `{txn_id}` (first on line {first})"));
        }
        let event = row.event.trim().to_lowercase();
        if event.is_empty() {
            problems.push("event must not be empty".to_owned());
        }
        let amount = decimal(&row.amount, "amount").map_err(|e| problems.push(e)).ok().flatten();
        let commission = decimal(&row.commission, "commission").map_err(|e| problems.push(e)).ok().flatten();
        let currency = match row.currency.trim() {
            "" if amount.is_some() => {
                problems.push("currency is required with an amount".to_owned());
                None
            }
            "" => None,
            code => Currency::parse(code, "currency")
                .map_err(|_| problems.push(format!("unknown currency `{code}`")))
                .ok(),
        };
        let occurred_at = DateTime::parse_from_rfc3339(row.occurred_at.trim())
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| {
                problems.push(format!("occurred_at `{}` is not an RFC 3339 time", row.occurred_at.trim()))
            })
            .ok();
        match occurred_at {
            Some(occurred_at) if problems.is_empty() => out.push(Transaction {
                txn_id: txn_id.to_owned(),
                side: Side {
                    event,
                    amount,
                    currency,
                    commission: commission.unwrap_or_default(),
                    occurred_at,
                    affiliate: Some(row.affiliate_external_id.trim().to_owned()).filter(|a| !a.is_empty()),
                },
            }),
            _ => errors.extend(problems.into_iter().map(|p| ImportError::new(THEIRS, *line, p))),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Compares their transactions in `[from, to)` with ours (already of that period), by
/// transaction ID; lines come in transaction-ID order.
pub fn reconcile(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    theirs: Vec<Transaction>,
    ours: Vec<Transaction>,
) -> Report {
    let mut report = Report::default();
    let mut ours_by_id: BTreeMap<String, Side> = BTreeMap::new();
    let mut extra_ours = Vec::new();
    for ours in ours {
        // Storage keeps one conversion per transaction ID; were there two, the second is
        // still reported rather than lost.
        match ours_by_id.entry(ours.txn_id) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(ours.side);
            }
            std::collections::btree_map::Entry::Occupied(slot) => {
                extra_ours.push(Transaction { txn_id: slot.key().clone(), side: ours.side })
            }
        }
    }
    for theirs in theirs {
        if theirs.side.occurred_at < from || theirs.side.occurred_at >= to {
            report.outside_period += 1;
            continue;
        }
        let line = match ours_by_id.remove(&theirs.txn_id) {
            None => Line {
                txn_id: theirs.txn_id,
                bucket: Bucket::OnlyTheirs,
                theirs: Some(theirs.side),
                ours: None,
                amount_difference: None,
                currency_differs: false,
                commission_difference: None,
            },
            Some(ours) => compare(theirs.txn_id, theirs.side, ours),
        };
        report.lines.push(line);
    }
    let only_ours =
        ours_by_id.into_iter().map(|(txn_id, side)| Transaction { txn_id, side }).chain(extra_ours);
    for ours in only_ours {
        report.lines.push(Line {
            txn_id: ours.txn_id,
            bucket: Bucket::OnlyOurs,
            theirs: None,
            ours: Some(ours.side),
            amount_difference: None,
            currency_differs: false,
            commission_difference: None,
        });
    }
    report.lines.sort_by(|a, b| a.txn_id.cmp(&b.txn_id));
    report
}

fn compare(txn_id: String, theirs: Side, ours: Side) -> Line {
    let currency_differs =
        theirs.amount.is_some() && ours.amount.is_some() && theirs.currency != ours.currency;
    let amount_difference = match (theirs.amount, ours.amount) {
        (Some(t), Some(o)) if t != o || currency_differs => Some(o - t),
        (None, Some(o)) => Some(o),
        (Some(t), None) => Some(-t),
        _ => None,
    };
    let commission_difference = Some(ours.commission - theirs.commission).filter(|d| !d.is_zero());
    let bucket = if amount_difference.is_none() && !currency_differs && commission_difference.is_none() {
        Bucket::Matched
    } else {
        Bucket::Different
    };
    Line {
        txn_id,
        bucket,
        theirs: Some(theirs),
        ours: Some(ours),
        amount_difference,
        currency_differs,
        commission_difference,
    }
}

/// The transaction IDs of a report, for checking that none is lost or counted twice.
pub fn transaction_ids(report: &Report) -> HashSet<&str> {
    report.lines.iter().map(|l| l.txn_id.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).single().expect("a time")
    }

    fn txn(id: &str, amount: Option<i64>, commission: i64, day: u32) -> Transaction {
        Transaction {
            txn_id: id.into(),
            side: Side {
                event: "deposit".into(),
                amount: amount.map(|a| Decimal::new(a, 2)),
                currency: amount.map(|_| Currency::EUR),
                commission: Decimal::new(commission, 2),
                occurred_at: at(day),
                affiliate: None,
            },
        }
    }

    #[test]
    fn each_kind_of_difference_lands_in_its_bucket() {
        let theirs = vec![
            txn("a", Some(1000), 100, 2),
            txn("b", Some(1000), 100, 2),
            txn("c", Some(500), 0, 2),
            txn("d", None, 0, 2),
            txn("z", Some(1), 0, 28),
        ];
        let ours = vec![
            txn("a", Some(1000), 100, 2),
            txn("b", Some(1200), 150, 2),
            txn("c", Some(500), 0, 2),
            txn("e", Some(700), 70, 3),
        ];
        let report = reconcile(at(1), at(27), theirs, ours);
        let buckets: Vec<(&str, Bucket)> =
            report.lines.iter().map(|l| (l.txn_id.as_str(), l.bucket)).collect();
        assert_eq!(
            buckets,
            [
                ("a", Bucket::Matched),
                ("b", Bucket::Different),
                ("c", Bucket::Matched),
                ("d", Bucket::OnlyTheirs),
                ("e", Bucket::OnlyOurs)
            ]
        );
        assert_eq!(report.outside_period, 1);
        assert_eq!(report.lines[1].amount_difference, Some(Decimal::new(200, 2)));
        assert_eq!(report.lines[1].commission_difference, Some(Decimal::new(50, 2)));
        assert_eq!(report.lines[0].commission_difference, None);
    }

    #[test]
    fn bad_rows_name_their_line_and_column() {
        let row = |txn: &str, amount: &str, currency: &str, at: &str| TheirRow {
            txn_id: txn.into(),
            event: "deposit".into(),
            amount: amount.into(),
            currency: currency.into(),
            commission: String::new(),
            occurred_at: at.into(),
            affiliate_external_id: String::new(),
        };
        let rows = vec![
            Lined { line: 2, row: row("t1", "10.00", "EUR", "2026-11-02T00:00:00Z") },
            Lined { line: 3, row: row("t1", "ten", "XYZ", "later") },
            Lined { line: 4, row: row("t2", "5", "", "2026-11-02T00:00:00Z") },
        ];
        let errors: Vec<String> = validate(&rows).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "conversions.csv:3: duplicate txn_id `t1` (first on line 2)",
                "conversions.csv:3: amount: `ten` is not a decimal number",
                "conversions.csv:3: unknown currency `XYZ`",
                "conversions.csv:3: occurred_at `later` is not an RFC 3339 time",
                "conversions.csv:4: currency is required with an amount",
            ]
        );
    }

    fn side_strategy() -> impl Strategy<Value = (u8, Option<i64>, i64, u32)> {
        (0u8..12, proptest::option::of(0i64..3), 0i64..3, 1u32..29)
    }

    proptest! {
        /// Every transaction of either side in the period lands in exactly one line, and its
        /// bucket agrees with its differences.
        #[test]
        fn every_transaction_lands_in_exactly_one_bucket(theirs in proptest::collection::vec(side_strategy(), 0..15), ours in proptest::collection::vec(side_strategy(), 0..15)) {
            let unique = |rows: Vec<(u8, Option<i64>, i64, u32)>| {
                let mut seen = HashSet::new();
                rows.into_iter().filter(|(id, ..)| seen.insert(*id)).map(|(id, a, c, d)| txn(&format!("t{id}"), a, c, d)).collect::<Vec<_>>()
            };
            let (theirs, ours) = (unique(theirs), unique(ours));
            let (from, to) = (at(5), at(20));
            let in_period: Vec<&Transaction> = theirs.iter().filter(|t| t.side.occurred_at >= from && t.side.occurred_at < to).collect();
            let report = reconcile(from, to, theirs.clone(), ours.clone());
            prop_assert_eq!(report.outside_period as usize, theirs.len() - in_period.len());
            let expected: HashSet<&str> = in_period.iter().map(|t| t.txn_id.as_str()).chain(ours.iter().map(|t| t.txn_id.as_str())).collect();
            prop_assert_eq!(report.lines.len(), expected.len());
            prop_assert_eq!(transaction_ids(&report), expected);
            for line in &report.lines {
                let theirs_has = in_period.iter().any(|t| t.txn_id == line.txn_id);
                let ours_has = ours.iter().any(|t| t.txn_id == line.txn_id);
                match line.bucket {
                    Bucket::OnlyTheirs => prop_assert!(theirs_has && !ours_has),
                    Bucket::OnlyOurs => prop_assert!(!theirs_has && ours_has),
                    Bucket::Matched => prop_assert!(theirs_has && ours_has && line.amount_difference.is_none() && line.commission_difference.is_none() && !line.currency_differs),
                    Bucket::Different => prop_assert!(theirs_has && ours_has && (line.amount_difference.is_some() || line.commission_difference.is_some() || line.currency_differs)),
                }
            }
            prop_assert_eq!(Bucket::ALL.iter().map(|b| report.count(*b)).sum::<u64>() as usize, report.lines.len());
        }
    }
}
