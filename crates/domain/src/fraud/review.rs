//! The review of a flagged conversion: a person approves it (its held commission becomes
//! payable; a conversion that was rejected counts again) or rejects it (its commission is
//! voided; what was already paid is taken back in the open period). Deciding again is
//! allowed: the last decision is what the ledger reflects.
//!
//! [`plan`] says what a decision does, as [`Step`]s that persistence carries out on the
//! stored ledger in order; [`apply`] is the same steps on a model of the ledger, which the
//! property tests check ("approve then reject" comes to what "reject" alone does).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::Error;
use crate::conversion::ConversionStatus;

/// Where a flagged conversion is in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewState {
    /// Not decided yet.
    Open,
    Approved,
    Rejected,
}

impl ReviewState {
    pub const ALL: [ReviewState; 3] = [ReviewState::Open, ReviewState::Approved, ReviewState::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Open => "open",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ReviewState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReviewState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ReviewState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| Error::invalid("reviewState", format!("unknown review state `{s}`")))
    }
}

/// A person's decision on a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn state(self) -> ReviewState {
        match self {
            Decision::Approve => ReviewState::Approved,
            Decision::Reject => ReviewState::Rejected,
        }
    }
}

/// Whether `decision` with `note` repeats the decision in force (`state`, `current_note`):
/// the same decision with no new note. A repeat changes nothing and is not audited again (a
/// double click on "approve" is one decision).
pub fn repeats(
    decision: Decision,
    note: Option<&str>,
    state: ReviewState,
    current_note: Option<&str>,
) -> bool {
    decision.state() == state && note.is_none_or(|note| Some(note) == current_note)
}

/// The longest note or reason kept with a decision.
pub const MAX_NOTE_LEN: usize = 1000;

/// A decision's note (approve: optional) or reason (reject: required), trimmed; `field` is
/// the argument's name, for the error.
pub fn note(raw: Option<&str>, required: bool, field: &'static str) -> Result<Option<String>, Error> {
    let trimmed = raw.map(str::trim).filter(|s| !s.is_empty());
    match trimmed {
        None if required => Err(Error::invalid(field, "is required")),
        None => Ok(None),
        Some(text) if text.chars().count() > MAX_NOTE_LEN => {
            Err(Error::invalid(field, format!("at most {MAX_NOTE_LEN} characters")))
        }
        Some(text) if text.chars().any(|c| c.is_control() && c != '\n') => {
            Err(Error::invalid(field, "must not contain control characters"))
        }
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// One thing a decision does to the conversion's ledger entries, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Held entries become payable: pending for a pending conversion, approved otherwise.
    Release { to: LineStatus },
    /// The conversion is rejected: every unpaid entry of it (and every unpaid reversal of
    /// those) is rejected; each paid entry not already taken back gets a reversal in the open
    /// period.
    Void,
    /// A rejected conversion that had booked commission counts again: its own rejected
    /// entries become approved; its unpaid reversals are rejected; each paid reversal not
    /// already taken back gets a reversal of its own.
    Restore,
    /// A rejected conversion that booked nothing (a fraud rule rejected it) books its
    /// commission now, approved.
    Book,
}

/// What a decision does: the conversion's new status and the steps on its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub status: ConversionStatus,
    pub steps: Vec<Step>,
}

/// The plan for `decision` on a conversion in `status`; `booked` says whether it has any
/// ledger entry at all (a conversion a fraud rule rejected has none).
pub fn plan(decision: Decision, status: ConversionStatus, booked: bool) -> Plan {
    match (decision, status) {
        (Decision::Reject, _) => Plan { status: ConversionStatus::Rejected, steps: vec![Step::Void] },
        (Decision::Approve, ConversionStatus::Rejected) => Plan {
            status: ConversionStatus::Approved,
            steps: vec![if booked { Step::Restore } else { Step::Book }],
        },
        (Decision::Approve, ConversionStatus::Pending) => {
            Plan { status, steps: vec![Step::Release { to: LineStatus::Pending }] }
        }
        (Decision::Approve, ConversionStatus::Approved) => {
            Plan { status, steps: vec![Step::Release { to: LineStatus::Approved }] }
        }
    }
}

/// An entry's status, as the model of the ledger knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineStatus {
    Pending,
    Approved,
    Held,
    Rejected,
    Paid,
}

impl LineStatus {
    pub fn unpaid(self) -> bool {
        matches!(self, LineStatus::Pending | LineStatus::Approved | LineStatus::Held)
    }
}

/// One ledger entry of the conversion, in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub amount: Decimal,
    pub status: LineStatus,
    /// For a reversal: the index of the line it takes back.
    pub reverses: Option<usize>,
    /// A live reversal booked for another conversion (a chargeback) already takes it back.
    pub settled_elsewhere: bool,
}

/// Applies `steps` to the model ledger `lines`; `withheld` is what booking the conversion
/// would book (for [`Step::Book`]). New lines (reversals, bookings) are appended; the
/// caller stores them and every line whose status changed.
pub fn apply(lines: &mut Vec<Line>, steps: &[Step], withheld: &[Decimal]) {
    for step in steps {
        match *step {
            Step::Release { to } => {
                for line in lines.iter_mut().filter(|line| line.status == LineStatus::Held) {
                    line.status = to;
                }
            }
            Step::Void => {
                for line in lines.iter_mut().filter(|line| line.status.unpaid()) {
                    line.status = LineStatus::Rejected;
                }
                reverse_paid(lines, true);
            }
            Step::Restore => {
                for i in 0..lines.len() {
                    let counts_for = counts_for(lines, i);
                    let line = &mut lines[i];
                    if counts_for && line.status == LineStatus::Rejected {
                        line.status = LineStatus::Approved;
                    } else if !counts_for && line.status.unpaid() {
                        line.status = LineStatus::Rejected;
                    }
                }
                reverse_paid(lines, false);
            }
            Step::Book => lines.extend(withheld.iter().map(|&amount| Line {
                amount,
                status: LineStatus::Approved,
                reverses: None,
                settled_elsewhere: false,
            })),
        }
    }
}

/// Whether line `i` counts for the conversion (an entry it booked, or the reversal of a
/// reversal) rather than against it (a reversal).
pub fn counts_for(lines: &[Line], i: usize) -> bool {
    let (mut depth, mut at) = (0usize, i);
    while let Some(reversed) = lines.get(at).and_then(|line| line.reverses) {
        depth += 1;
        if depth > lines.len() {
            break;
        }
        at = reversed;
    }
    depth % 2 == 0
}

/// Reverses each paid line that counts `for` the conversion (or against it) and is not
/// already taken back.
fn reverse_paid(lines: &mut Vec<Line>, counting_for: bool) {
    let paid: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            lines[i].status == LineStatus::Paid
                && counts_for(lines, i) == counting_for
                && !taken_back(lines, i)
        })
        .collect();
    for i in paid {
        let amount = -lines[i].amount;
        lines.push(Line {
            amount,
            status: LineStatus::Approved,
            reverses: Some(i),
            settled_elsewhere: false,
        });
    }
}

/// Whether a live (not rejected) reversal already takes line `i` back.
fn taken_back(lines: &[Line], i: usize) -> bool {
    lines[i].settled_elsewhere
        || lines.iter().any(|line| line.reverses == Some(i) && line.status != LineStatus::Rejected)
}

/// What the lines come to for the affiliate: every entry that is not rejected.
pub fn net(lines: &[Line]) -> Decimal {
    lines.iter().filter(|line| line.status != LineStatus::Rejected).map(|line| line.amount).sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_the_same_decision_without_a_new_note_repeats() {
        let approved = ReviewState::Approved;
        assert!(repeats(Decision::Approve, None, approved, Some("ok")));
        assert!(repeats(Decision::Approve, Some("ok"), approved, Some("ok")));
        assert!(!repeats(Decision::Approve, Some("other"), approved, Some("ok")));
        assert!(!repeats(Decision::Reject, Some("ok"), approved, Some("ok")));
        assert!(!repeats(Decision::Approve, None, ReviewState::Open, None));
        assert!(repeats(Decision::Reject, Some("stolen"), ReviewState::Rejected, Some("stolen")));
    }

    fn status() -> impl Strategy<Value = LineStatus> {
        prop_oneof![
            Just(LineStatus::Pending),
            Just(LineStatus::Approved),
            Just(LineStatus::Held),
            Just(LineStatus::Paid),
        ]
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        (-100_000i64..100_000).prop_map(|cents| Decimal::new(cents, 2))
    }

    /// A conversion as review finds it: booked (its status and entries, some perhaps
    /// already paid) or rejected by a fraud rule with nothing booked; and what booking it
    /// would book.
    fn conversion() -> impl Strategy<Value = (ConversionStatus, Vec<Line>, Vec<Decimal>)> {
        let booked = (
            prop_oneof![Just(ConversionStatus::Pending), Just(ConversionStatus::Approved)],
            prop::collection::vec((amount(), status()), 0..6),
        )
            .prop_map(|(status, lines)| {
                let withheld = lines.iter().map(|(amount, _)| *amount).collect();
                let lines = lines
                    .into_iter()
                    .map(|(amount, status)| Line { amount, status, reverses: None, settled_elsewhere: false })
                    .collect();
                (status, lines, withheld)
            });
        let rejected = prop::collection::vec(amount(), 0..6)
            .prop_map(|withheld| (ConversionStatus::Rejected, Vec::new(), withheld));
        prop_oneof![booked, rejected]
    }

    /// Decides in order, paying whatever is payable between decisions when `pay` says so
    /// (the operator's payouts run between a person's decisions).
    fn decide(
        (status, lines, withheld): &(ConversionStatus, Vec<Line>, Vec<Decimal>),
        decisions: &[(Decision, bool)],
    ) -> Vec<Line> {
        let (mut status, mut lines) = (*status, lines.clone());
        for &(decision, pay) in decisions {
            let booked = !lines.is_empty();
            let plan = plan(decision, status, booked);
            apply(&mut lines, &plan.steps, withheld);
            status = plan.status;
            if pay {
                for line in lines.iter_mut().filter(|line| line.status == LineStatus::Approved) {
                    line.status = LineStatus::Paid;
                }
            }
        }
        lines
    }

    proptest! {
        #[test]
        fn approve_then_reject_comes_to_what_reject_does(
            conversion in conversion(),
            pay in any::<bool>(),
        ) {
            let twice = decide(&conversion, &[(Decision::Approve, pay), (Decision::Reject, false)]);
            let once = decide(&conversion, &[(Decision::Reject, false)]);
            prop_assert_eq!(net(&twice), net(&once));
            prop_assert_eq!(net(&once), Decimal::ZERO);
        }

        #[test]
        fn reject_then_approve_comes_to_what_approve_does(
            conversion in conversion(),
            pay in any::<bool>(),
        ) {
            let twice = decide(&conversion, &[(Decision::Reject, pay), (Decision::Approve, false)]);
            let once = decide(&conversion, &[(Decision::Approve, false)]);
            prop_assert_eq!(net(&twice), net(&once));
            let withheld: Decimal = conversion.2.iter().copied().sum();
            prop_assert_eq!(net(&once), withheld);
        }

        #[test]
        fn any_sequence_of_decisions_comes_to_what_the_last_one_does(
            conversion in conversion(),
            decisions in prop::collection::vec(
                (prop_oneof![Just(Decision::Approve), Just(Decision::Reject)], any::<bool>()),
                1..6,
            ),
        ) {
            let lines = decide(&conversion, &decisions);
            let last = decisions.last().map(|d| d.0).unwrap_or(Decision::Approve);
            let expected = match last {
                Decision::Reject => Decimal::ZERO,
                Decision::Approve => conversion.2.iter().copied().sum(),
            };
            prop_assert_eq!(net(&lines), expected);
            if last == Decision::Approve {
                prop_assert!(lines.iter().all(|line| line.status != LineStatus::Held));
            }
        }
    }

    #[test]
    fn a_reason_is_required_to_reject_and_bounded() {
        assert!(note(Some("  "), true, "reason").is_err());
        assert_eq!(note(None, false, "note").unwrap(), None);
        assert_eq!(note(Some(" ok "), true, "reason").unwrap().as_deref(), Some("ok"));
        let long = "x".repeat(MAX_NOTE_LEN + 1);
        assert_eq!(note(Some(&long), true, "reason").unwrap_err().field(), "reason");
    }

    #[test]
    fn approving_releases_held_and_rebooks_only_what_was_rejected() {
        assert_eq!(
            plan(Decision::Approve, ConversionStatus::Pending, true).steps,
            vec![Step::Release { to: LineStatus::Pending }]
        );
        assert_eq!(plan(Decision::Approve, ConversionStatus::Rejected, false).steps, vec![Step::Book]);
        assert_eq!(plan(Decision::Approve, ConversionStatus::Rejected, true).steps, vec![Step::Restore]);
        assert_eq!(
            plan(Decision::Reject, ConversionStatus::Approved, true).status,
            ConversionStatus::Rejected
        );
    }
}
