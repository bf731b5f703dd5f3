//! What the engine produces: earnings for a conversion, and ledger entry drafts per affiliate.

use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::ids::AffiliateId;
use crate::money::{FxRate, Money};

/// The kind of a ledger entry, stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    Cpa,
    Cpl,
    Revshare,
    Lot,
    Kpi,
    Override,
    Reversal,
    Adjustment,
    /// An open balance brought over from another tracker by an import; the entry's reason
    /// names the source. (An imported revshare carryover is not an entry: it opens the
    /// first month's netting.)
    Migration,
}

impl EntryKind {
    /// Statement order.
    pub const ALL: [EntryKind; 9] = [
        EntryKind::Cpa,
        EntryKind::Cpl,
        EntryKind::Revshare,
        EntryKind::Lot,
        EntryKind::Kpi,
        EntryKind::Override,
        EntryKind::Reversal,
        EntryKind::Adjustment,
        EntryKind::Migration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Cpa => "cpa",
            EntryKind::Cpl => "cpl",
            EntryKind::Revshare => "revshare",
            EntryKind::Lot => "lot",
            EntryKind::Kpi => "kpi",
            EntryKind::Override => "override",
            EntryKind::Reversal => "reversal",
            EntryKind::Adjustment => "adjustment",
            EntryKind::Migration => "migration",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::invalid("kind", format!("unknown entry kind `{s}`")))
    }
}

/// The event's own amount and the operator-supplied rate that turned it into the plan's
/// currency, kept on the entry so that the conversion can be checked by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FxSource {
    /// As reported, in the event's currency.
    pub amount: Money,
    pub rate: FxRate,
}

/// What a conversion earns as a whole, before it is shared among credited affiliates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Earning {
    pub kind: EntryKind,
    /// Rounded to the minor unit, in the plan's currency.
    pub amount: Money,
    /// What a percentage was taken of (net revenue for revshare), in the plan's currency.
    pub basis: Option<Money>,
    pub fx: Option<FxSource>,
}

/// One ledger row to append. Amounts are rounded to the minor unit; a draft is never edited
/// once booked, only reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryDraft {
    pub beneficiary: AffiliateId,
    /// 0 for a credited affiliate; n for its n-th ancestor's override.
    pub tier: u8,
    pub kind: EntryKind,
    pub amount: Money,
    /// What a percentage was taken of: net revenue for revshare, the sub-affiliate's
    /// commission for an override. Split and negated along with `amount`.
    pub basis: Option<Money>,
    pub fx: Option<FxSource>,
    /// For a reversal, the kind of the entry it cancels.
    pub reverses: Option<EntryKind>,
}

impl EntryDraft {
    /// The kind this entry counts as once reversals are folded in: a reversal of a revshare
    /// entry counts against revshare.
    pub fn effective_kind(&self) -> EntryKind {
        match (self.kind, self.reverses) {
            (EntryKind::Reversal, Some(original)) => original,
            (kind, _) => kind,
        }
    }
}
