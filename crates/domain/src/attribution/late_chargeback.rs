//! A chargeback that arrives before the transaction it reverses is stored at once, unattributed
//! with [`UnattributedReason::UnknownOriginalTransaction`], and waits. When the original
//! transaction is stored, the waiting chargeback is applied as if it had arrived after it: it
//! takes the original's credits and reverses what the original booked. This module decides
//! whether a stored chargeback is still waiting and what applying it means; storage finds the
//! waiting chargeback (by the original's transaction ID) and writes the result.

use super::UnattributedReason;
use crate::conversion::EventKind;
use crate::fraud::Action;

/// A stored chargeback for the transaction just stored, as storage found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredChargeback {
    pub unattributed_reason: Option<UnattributedReason>,
    /// It already points at an original conversion.
    pub linked: bool,
    /// The fraud rules' action on the chargeback when it was stored.
    pub fraud_action: Option<Action>,
}

/// The transaction just stored, which the chargeback names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivedOriginal {
    pub event: EventKind,
    pub attributed: bool,
    pub unattributed_reason: Option<UnattributedReason>,
}

/// What becomes of the stored chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateChargeback {
    /// It is not waiting for this transaction: leave it as it is.
    Leave,
    /// Link it to the original, as a chargeback arriving after it would have been stored.
    Apply {
        /// `None`: it is now attributed and takes the original's credits.
        unattributed_reason: Option<UnattributedReason>,
        /// Reverse what the original booked; the reversal is held when a fraud rule held the
        /// chargeback. `None`: nothing is booked.
        reversal: Option<Reversal>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reversal {
    pub hold: bool,
}

impl LateChargeback {
    /// Whether the chargeback takes the original's credits.
    pub fn copies_credits(self) -> bool {
        matches!(self, LateChargeback::Apply { unattributed_reason: None, .. })
    }
}

/// What the original's arrival does to a chargeback stored before it. Only a chargeback still
/// waiting (unattributed for an unknown original, linked to nothing) is applied, and only by a
/// transaction that is not itself a chargeback, so applying it twice is impossible. The
/// outcome is the one in-order arrival gives: the original's credits when it was attributed,
/// else the original's reason (or `origin_unattributed`); a reversal unless a fraud rule
/// rejected the chargeback (a rejected chargeback books nothing, in any order).
pub fn late_chargeback(chargeback: StoredChargeback, original: ArrivedOriginal) -> LateChargeback {
    let waiting = chargeback.unattributed_reason == Some(UnattributedReason::UnknownOriginalTransaction)
        && !chargeback.linked;
    if !waiting || original.event == EventKind::Chargeback {
        return LateChargeback::Leave;
    }
    if !original.attributed {
        return LateChargeback::Apply {
            unattributed_reason: Some(
                original.unattributed_reason.unwrap_or(UnattributedReason::OriginUnattributed),
            ),
            reversal: None,
        };
    }
    let reversal = match chargeback.fraud_action {
        Some(Action::Reject) => None,
        action => Some(Reversal { hold: action == Some(Action::Hold) }),
    };
    LateChargeback::Apply { unattributed_reason: None, reversal }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> StoredChargeback {
        StoredChargeback {
            unattributed_reason: Some(UnattributedReason::UnknownOriginalTransaction),
            linked: false,
            fraud_action: None,
        }
    }

    fn deposit(attributed: bool) -> ArrivedOriginal {
        ArrivedOriginal {
            event: EventKind::Deposit,
            attributed,
            unattributed_reason: (!attributed).then_some(UnattributedReason::ClickExpired),
        }
    }

    #[test]
    fn a_waiting_chargeback_takes_an_attributed_originals_credits_and_reverses_it() {
        let applied = late_chargeback(waiting(), deposit(true));
        assert_eq!(
            applied,
            LateChargeback::Apply { unattributed_reason: None, reversal: Some(Reversal { hold: false }) }
        );
        assert!(applied.copies_credits());
    }

    #[test]
    fn an_unattributed_original_passes_its_reason_on_and_books_nothing() {
        let applied = late_chargeback(waiting(), deposit(false));
        assert_eq!(
            applied,
            LateChargeback::Apply {
                unattributed_reason: Some(UnattributedReason::ClickExpired),
                reversal: None
            }
        );
        assert!(!applied.copies_credits());
        let without_reason = ArrivedOriginal { unattributed_reason: None, ..deposit(false) };
        assert_eq!(
            late_chargeback(waiting(), without_reason),
            LateChargeback::Apply {
                unattributed_reason: Some(UnattributedReason::OriginUnattributed),
                reversal: None
            }
        );
    }

    #[test]
    fn fraud_actions_on_the_chargeback_carry_over() {
        let held = StoredChargeback { fraud_action: Some(Action::Hold), ..waiting() };
        assert_eq!(
            late_chargeback(held, deposit(true)),
            LateChargeback::Apply { unattributed_reason: None, reversal: Some(Reversal { hold: true }) }
        );
        let rejected = StoredChargeback { fraud_action: Some(Action::Reject), ..waiting() };
        assert_eq!(
            late_chargeback(rejected, deposit(true)),
            LateChargeback::Apply { unattributed_reason: None, reversal: None }
        );
    }

    #[test]
    fn only_a_chargeback_still_waiting_is_applied_and_only_once() {
        let linked = StoredChargeback { linked: true, ..waiting() };
        assert_eq!(late_chargeback(linked, deposit(true)), LateChargeback::Leave);
        for reason in UnattributedReason::ALL
            .into_iter()
            .filter(|r| *r != UnattributedReason::UnknownOriginalTransaction)
            .map(Some)
            .chain([None])
        {
            let other = StoredChargeback { unattributed_reason: reason, ..waiting() };
            assert_eq!(late_chargeback(other, deposit(true)), LateChargeback::Leave, "{reason:?}");
        }
        let chargeback = ArrivedOriginal { event: EventKind::Chargeback, ..deposit(true) };
        assert_eq!(late_chargeback(waiting(), chargeback), LateChargeback::Leave);
    }
}
