//! The commission engine: pure functions from a plan and facts to ledger entry drafts. No I/O
//! and no clock: every instant, exchange rate and running total is passed in, so the same
//! inputs always give the same entries.
//!
//! For one conversion the pipeline is:
//! 1. [`commission_for_event`]: what the conversion earns as a whole under the plan
//!    ([`Earning`]s), plus the player's facts after the event, to be stored.
//! 2. [`split_by_credits`]: each earning shared among the credited affiliates with
//!    [`crate::money::split`], so the parts sum to the cent ([`EntryDraft`]s at tier 0).
//! 3. [`overrides`]: each ancestor's cut of a tier-0 entry, level by level.
//!
//! [`book`] runs steps 2 and 3 ([`book_for`] for the affiliates on one plan). A chargeback appends [`reversal_of`] whatever the transaction
//! earned, at every tier; nothing is updated in place. At month end [`close_period`] trues up
//! revshare (final tier, negative carryover) and pays KPI bonuses, as new entries.
//!
//! Plans are versioned ([`PlanHistory`]): a revision takes effect from an instant on and never
//! touches entries already booked, which keep the amounts they were computed with.

mod booking;
mod cpa;
mod entry;
mod event;
mod facts;
mod history;
mod lot;
mod plan;
mod revshare;
mod statement;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod worked_examples;

pub use booking::{Credit, book, book_for, overrides, reversal_of, split_by_credits};
pub use entry::{Earning, EntryDraft, EntryKind, FxSource};
pub use event::{EventOutcome, commission_for_event};
pub use facts::{EventContext, EventFacts, MonthToDate, PlayerFacts};
pub use history::{PlanHistory, PlanVersion};
pub use plan::{CpaRules, KpiBonus, KpiMetric, PerLotRules, Plan, RevShareRules, RevShareTier, TierBasis};
pub use revshare::{MonthRevShare, revshare_for_month};
pub use statement::{PeriodClose, PeriodMetrics, Statement, StatementLine, close_period};
