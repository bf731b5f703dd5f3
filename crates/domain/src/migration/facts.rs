//! What an export tells the commission engine about its players: the deposits of the history
//! (`conversions.csv`), so that CPA thresholds ("first deposit ≥ X", "total deposits ≥ X") see
//! what the player deposited before the cut-over, and whether the old system already paid CPA
//! for a player (`players.csv`, `cpa_paid`), so that it is never paid again here.
//!
//! The player's facts are running totals that live traffic keeps adding to, and a re-run of the
//! import cannot tell which part of a stored total an earlier run wrote. So the import only ever
//! raises them: a deposit total grows to the history's when that is higher, a first deposit
//! already known stays, and `cpa_paid` is never lowered. Re-running the same export changes
//! nothing; a deposit the parallel run already brought here live is not counted twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::history::CONVERSIONS;
use super::{HistoryConversion, ImportError};
use crate::commission::PlayerFacts;
use crate::conversion::{ConversionStatus, EventKind};
use crate::money::{Currency, MAX_AMOUNT};

/// One player's deposits in the history, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryDeposits {
    pub player_id: String,
    pub currency: Currency,
    /// The earliest deposit's amount (an `ftd`, `deposit` or `purchase` row, as a live postback
    /// of any of them is a first deposit to the engine).
    pub first_deposit: Decimal,
    pub total_deposits: Decimal,
    /// The line of the earliest deposit, to name in the import's list of changes.
    pub line: u64,
}

/// Whether a history row is a deposit of its player: `rejected` rows are reversed
/// transactions and count nothing, as they count nothing in `stats`; `pending` ones count, as a
/// pending live deposit counts towards the player's facts.
fn deposit_of(row: &HistoryConversion) -> Option<(&str, Currency, Decimal, DateTime<Utc>)> {
    let is_deposit = matches!(row.event, EventKind::Ftd | EventKind::Deposit | EventKind::Purchase);
    if !is_deposit || row.status == ConversionStatus::Rejected {
        return None;
    }
    let player = row.player_id.as_deref()?;
    let amount = row.amount?;
    Some((player, amount.currency, amount.amount, row.occurred_at))
}

/// Each player's history deposits by currency: a deposit counts towards plans in its own
/// currency (the facts of a plan's currency), as there is no exchange rate for the old days.
/// A total beyond the largest amount is an error on the row that pushes it over.
pub fn history_deposits(history: &[HistoryConversion]) -> Result<Vec<HistoryDeposits>, Vec<ImportError>> {
    let mut deposits: Vec<_> =
        history.iter().filter_map(|row| deposit_of(row).map(|d| (row.line, d))).collect();
    // Earliest first, so the first deposit is the one that happened first, whatever the order
    // of the file.
    deposits.sort_by_key(|(line, (_, _, _, at))| (*at, *line));
    let mut by_player: BTreeMap<(String, Currency), HistoryDeposits> = BTreeMap::new();
    let mut errors = Vec::new();
    for (line, (player, currency, amount, _)) in deposits {
        let key = (player.to_owned(), currency);
        match by_player.get_mut(&key) {
            None => {
                by_player.insert(
                    key,
                    HistoryDeposits {
                        player_id: player.to_owned(),
                        currency,
                        first_deposit: amount,
                        total_deposits: amount,
                        line,
                    },
                );
            }
            Some(known) => match known.total_deposits.checked_add(amount).filter(|sum| *sum <= MAX_AMOUNT) {
                Some(sum) => known.total_deposits = sum,
                None => errors.push(ImportError::new(
                    CONVERSIONS,
                    line,
                    format!("the deposits of player `{player}` in {currency} add up to more than the largest amount"),
                )),
            },
        }
    }
    if errors.is_empty() {
        Ok(by_player.into_values().collect())
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// The player's facts once the history's deposits are in: `None` when `stored` already has
/// them (nothing to write). Only raises: a known first deposit stays, the total becomes the
/// higher of the two, and everything else (CPA paid, turnover, …) is kept as it is.
pub fn with_history_deposits(
    stored: Option<&PlayerFacts>,
    deposits: &HistoryDeposits,
) -> Option<PlayerFacts> {
    let before = stored.cloned().unwrap_or_else(|| PlayerFacts::new(deposits.currency));
    let mut after = before.clone();
    after.first_deposit.get_or_insert(deposits.first_deposit);
    after.total_deposits = after.total_deposits.max(deposits.total_deposits);
    (stored.is_none() || after != before).then_some(after)
}

/// Whether CPA counts as paid for an imported player: the old system's word only ever raises
/// what is known here, so a later export that leaves the column empty never reopens CPA.
pub fn cpa_paid_after_import(stored: bool, imported: bool) -> bool {
    stored || imported
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::money::Money;

    fn eur() -> Currency {
        Currency::parse("EUR", "currency").unwrap()
    }

    fn usd() -> Currency {
        Currency::parse("USD", "currency").unwrap()
    }

    fn row(
        line: u64,
        event: EventKind,
        status: ConversionStatus,
        player: &str,
        cents: i64,
        currency: Currency,
        at: &str,
    ) -> HistoryConversion {
        HistoryConversion {
            line,
            txn_id: format!("t{line}"),
            event,
            status,
            occurred_at: DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc),
            player_id: (!player.is_empty()).then(|| player.to_owned()),
            affiliate: None,
            campaign: None,
            amount: Some(Money::new(Decimal::new(cents, 2), currency)),
        }
    }

    use ConversionStatus::{Approved, Pending, Rejected};
    use EventKind::{Deposit, Ftd, Purchase, Registration, Revenue};

    #[test]
    fn deposits_add_up_per_player_and_currency_earliest_first() {
        let history = [
            row(2, Deposit, Approved, "p1", 12000, eur(), "2026-01-20T18:05:00Z"),
            row(3, Ftd, Approved, "p1", 5000, eur(), "2026-01-05T10:30:00Z"),
            row(4, Purchase, Pending, "p1", 1000, eur(), "2026-02-01T00:00:00Z"),
            row(5, Deposit, Rejected, "p1", 99900, eur(), "2026-02-02T00:00:00Z"),
            row(6, Revenue, Approved, "p1", 70000, eur(), "2026-02-03T00:00:00Z"),
            row(7, Registration, Approved, "p1", 100, eur(), "2026-01-01T00:00:00Z"),
            row(8, Deposit, Approved, "", 4000, eur(), "2026-01-01T00:00:00Z"),
            row(9, Deposit, Approved, "p1", 700, usd(), "2026-03-01T00:00:00Z"),
        ];
        let deposits = history_deposits(&history).unwrap();
        assert_eq!(
            deposits,
            [
                HistoryDeposits {
                    player_id: "p1".into(),
                    currency: eur(),
                    first_deposit: Decimal::new(5000, 2),
                    total_deposits: Decimal::new(18000, 2),
                    line: 3,
                },
                HistoryDeposits {
                    player_id: "p1".into(),
                    currency: usd(),
                    first_deposit: Decimal::new(700, 2),
                    total_deposits: Decimal::new(700, 2),
                    line: 9,
                },
            ]
        );
    }

    #[test]
    fn a_total_beyond_the_largest_amount_is_named() {
        // A cent below the largest amount: each row is valid, two of them are not.
        let huge = 99_999_999_999_999_999;
        assert!(Decimal::new(huge, 2) < MAX_AMOUNT);
        let history = [
            row(2, Deposit, Approved, "p1", huge, eur(), "2026-01-01T00:00:00Z"),
            row(3, Deposit, Approved, "p1", huge, eur(), "2026-01-02T00:00:00Z"),
        ];
        let errors = history_deposits(&history).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].message.contains("player `p1`"), "{}", errors[0]);
    }

    #[test]
    fn history_fills_new_facts_and_only_raises_stored_ones() {
        let deposits = HistoryDeposits {
            player_id: "p1".into(),
            currency: eur(),
            first_deposit: Decimal::new(50, 0),
            total_deposits: Decimal::new(170, 0),
            line: 2,
        };
        let fresh = with_history_deposits(None, &deposits).unwrap();
        assert_eq!(
            (fresh.first_deposit, fresh.total_deposits, fresh.cpa_paid),
            (Some(Decimal::new(50, 0)), Decimal::new(170, 0), false)
        );
        assert_eq!(with_history_deposits(Some(&fresh), &deposits), None, "a re-run changes nothing");

        // Live traffic here since: a higher total and a CPA paid stay as they are.
        let live = PlayerFacts { total_deposits: Decimal::new(300, 0), cpa_paid: true, ..fresh.clone() };
        assert_eq!(with_history_deposits(Some(&live), &deposits), None);
        // A player first seen live: its first deposit stays, the total rises to the history's.
        let seen = PlayerFacts {
            first_deposit: Some(Decimal::new(10, 0)),
            total_deposits: Decimal::new(10, 0),
            ..PlayerFacts::new(eur())
        };
        let raised = with_history_deposits(Some(&seen), &deposits).unwrap();
        assert_eq!(
            (raised.first_deposit, raised.total_deposits),
            (Some(Decimal::new(10, 0)), Decimal::new(170, 0))
        );
    }

    #[test]
    fn cpa_paid_is_only_ever_raised() {
        assert!(!cpa_paid_after_import(false, false));
        assert!(cpa_paid_after_import(false, true));
        assert!(cpa_paid_after_import(true, false));
        assert!(cpa_paid_after_import(true, true));
    }

    proptest! {
        /// Whatever is stored, merging the history never lowers a total, never replaces a known
        /// first deposit, never touches CPA or the other totals, and a second merge is a no-op.
        #[test]
        fn merging_history_only_raises_and_is_idempotent(
            stored_total in 0i64..1_000_000, stored_first in proptest::option::of(1i64..1_000_000),
            cpa_paid in any::<bool>(), turnover in 0i64..1_000_000, exists in any::<bool>(),
            first in 1i64..1_000_000, extra in 0i64..1_000_000,
        ) {
            let stored = exists.then(|| PlayerFacts {
                first_deposit: stored_first.map(|c| Decimal::new(c, 2)),
                total_deposits: Decimal::new(stored_total, 2),
                turnover: Decimal::new(turnover, 2),
                cpa_paid,
                ..PlayerFacts::new(eur())
            });
            let deposits = HistoryDeposits {
                player_id: "p".into(),
                currency: eur(),
                first_deposit: Decimal::new(first, 2),
                total_deposits: Decimal::new(first + extra, 2),
                line: 2,
            };
            let merged = with_history_deposits(stored.as_ref(), &deposits);
            let after = merged.clone().or_else(|| stored.clone()).unwrap();
            prop_assert!(after.total_deposits >= deposits.total_deposits);
            prop_assert!(after.first_deposit.is_some());
            if let Some(stored) = &stored {
                prop_assert!(after.total_deposits >= stored.total_deposits);
                prop_assert_eq!(after.cpa_paid, stored.cpa_paid);
                prop_assert_eq!(after.turnover, stored.turnover);
                if stored.first_deposit.is_some() {
                    prop_assert_eq!(after.first_deposit, stored.first_deposit);
                }
            }
            prop_assert_eq!(with_history_deposits(Some(&after), &deposits), None);
        }
    }
}
