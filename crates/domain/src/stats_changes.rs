//! What a live report (`statsLive`) sends after the first snapshot: the rows of the new answer
//! that are new or whose numbers moved, and the rows that left it (a row can leave the page
//! when another overtakes it in the sort order). Applying both to the previous answer gives
//! the new one, so a client never has to re-read the whole report. When a rolling period
//! (`TODAY`, …) moves on, the new period's answer is sent whole instead, as a new snapshot.

use std::collections::HashMap;

use crate::reporting::{Dimension, StatsReport, StatsRow};

/// The difference between two answers of the same report.
#[derive(Debug, Default, PartialEq)]
pub struct StatsChanges<'a> {
    /// Rows of the new answer that were not in the old one, or were with other numbers; in
    /// the new answer's order.
    pub changed: Vec<&'a StatsRow>,
    /// Rows of the old answer whose key is not in the new one, as they were.
    pub removed: Vec<&'a StatsRow>,
}

impl StatsChanges<'_> {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }
}

type Key<'a> = &'a [(Dimension, Option<String>)];

/// The rows that differ between `before` and `after` (rows are identified by their grouped
/// values).
pub fn stats_changes<'a>(before: &'a [StatsRow], after: &'a [StatsRow]) -> StatsChanges<'a> {
    let old: HashMap<Key<'a>, &StatsRow> = before.iter().map(|row| (row.key.as_slice(), row)).collect();
    let new: HashMap<Key<'a>, &StatsRow> = after.iter().map(|row| (row.key.as_slice(), row)).collect();
    StatsChanges {
        changed: after
            .iter()
            .filter(|row| old.get(row.key.as_slice()).is_none_or(|was| was.counters != row.counters))
            .collect(),
        removed: before.iter().filter(|row| !new.contains_key(row.key.as_slice())).collect(),
    }
}

/// Whether a live subscriber must hear about `after`: some row or a total changed.
pub fn report_changed(before: &StatsReport, after: &StatsReport) -> bool {
    before.totals != after.totals
        || before.total_rows != after.total_rows
        || !stats_changes(&before.rows, &after.rows).is_empty()
}

/// What a live subscriber is sent after a new read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStep {
    /// Nothing it can see changed: nothing.
    Nothing,
    /// The rows that changed and left ([`stats_changes`]), with the new totals.
    Changes,
    /// The period moved on (a rolling period rolled over): the whole new answer.
    Snapshot,
}

/// What to send a subscriber who last got `before`, now that `after` was read.
pub fn live_step(before: &StatsReport, after: &StatsReport) -> LiveStep {
    if (before.from, before.to) != (after.from, after.to) {
        LiveStep::Snapshot
    } else if report_changed(before, after) {
        LiveStep::Changes
    } else {
        LiveStep::Nothing
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::reporting::{Counters, Derived};

    fn row(affiliate: u8, clicks: i64) -> StatsRow {
        let counters = Counters { clicks, ..Counters::default() };
        StatsRow {
            key: vec![(Dimension::Affiliate, Some(format!("aff_{affiliate}")))],
            derived: Derived::of(&counters),
            counters,
        }
    }

    #[test]
    fn only_moved_new_and_gone_rows_are_named() {
        let before = vec![row(1, 5), row(2, 3), row(3, 1)];
        let after = vec![row(1, 5), row(2, 4), row(4, 2)];
        let changes = stats_changes(&before, &after);
        assert_eq!(changes.changed, vec![&after[1], &after[2]]);
        assert_eq!(changes.removed, vec![&before[2]]);
        assert!(stats_changes(&after, &after).is_empty());
    }

    #[test]
    fn a_new_period_is_a_new_snapshot_even_when_nothing_else_moved() {
        use chrono::{Duration, TimeZone, Utc};
        let from = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
        let report = |from: chrono::DateTime<Utc>, rows: Vec<StatsRow>| StatsReport {
            from,
            to: from + Duration::days(1),
            zone: chrono_tz::Tz::UTC,
            group_by: vec![Dimension::Affiliate],
            total_rows: rows.len(),
            rows,
            totals: Counters::default(),
            totals_derived: Derived::default(),
        };
        let today = report(from, vec![row(1, 5)]);
        assert_eq!(live_step(&today, &today.clone()), LiveStep::Nothing);
        assert_eq!(live_step(&today, &report(from, vec![row(1, 6)])), LiveStep::Changes);
        let tomorrow = from + Duration::days(1);
        assert_eq!(live_step(&today, &report(tomorrow, vec![row(1, 5)])), LiveStep::Snapshot);
        assert_eq!(live_step(&report(from, vec![]), &report(tomorrow, vec![])), LiveStep::Snapshot);
    }

    proptest! {
        /// Applying the changes to the old rows gives exactly the new rows.
        #[test]
        fn changes_turn_the_old_answer_into_the_new(
            before in proptest::collection::btree_map(0u8..20, 0i64..4, 0..12),
            after in proptest::collection::btree_map(0u8..20, 0i64..4, 0..12),
        ) {
            let before: Vec<StatsRow> = before.into_iter().map(|(a, c)| row(a, c)).collect();
            let after: Vec<StatsRow> = after.into_iter().map(|(a, c)| row(a, c)).collect();
            let changes = stats_changes(&before, &after);
            let mut applied: HashMap<Vec<(Dimension, Option<String>)>, Counters> =
                before.iter().map(|r| (r.key.clone(), r.counters)).collect();
            for gone in &changes.removed {
                applied.remove(&gone.key);
            }
            for moved in &changes.changed {
                applied.insert(moved.key.clone(), moved.counters);
            }
            let expected: HashMap<_, _> = after.iter().map(|r| (r.key.clone(), r.counters)).collect();
            prop_assert_eq!(applied, expected);
            // Nothing is named that did not change.
            for moved in &changes.changed {
                prop_assert!(!before.contains(moved));
            }
        }
    }
}
