//! From a conversion's earnings to ledger drafts: shared by attribution credit, overridden up
//! the affiliate tree, and reversed on chargeback.

use rust_decimal::Decimal;

use super::entry::{Earning, EntryDraft, EntryKind};
use crate::Error;
use crate::ids::AffiliateId;
use crate::money::{Money, split};

/// Attribution models divide by the number of touchpoints, so shares like ⅓ arrive rounded
/// to 28 digits and sum to 0.999…; anything closer to 1 than this is taken as 1.
const SHARE_TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 9);

/// One affiliate's share of a conversion's credit, in (0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    pub affiliate: AffiliateId,
    pub share: Decimal,
}

/// Shares each earning among `credits` with [`split`], so every earning's parts sum exactly to
/// it. Credits naming the same affiliate twice (two touchpoints) are merged, keeping first
/// appearance order; parts that come to zero are left out.
pub fn split_by_credits(earnings: &[Earning], credits: &[Credit]) -> Result<Vec<EntryDraft>, Error> {
    let credits = merged(credits)?;
    let weights: Vec<Decimal> = credits.iter().map(|c| c.share).collect();
    let mut drafts = Vec::with_capacity(earnings.len() * credits.len());
    for earning in earnings {
        let amounts = split(earning.amount, &weights)?;
        let bases = earning.basis.map(|b| split(b, &weights)).transpose()?;
        for (i, (credit, amount)) in credits.iter().zip(amounts).enumerate() {
            let basis = bases.as_ref().map(|b| b[i]);
            if amount.is_zero() && basis.is_none_or(Money::is_zero) {
                continue;
            }
            drafts.push(EntryDraft {
                beneficiary: credit.affiliate,
                tier: 0,
                kind: earning.kind,
                amount,
                basis,
                fx: earning.fx,
                reverses: None,
            });
        }
    }
    Ok(drafts)
}

fn merged(credits: &[Credit]) -> Result<Vec<Credit>, Error> {
    let mut merged: Vec<Credit> = Vec::with_capacity(credits.len());
    let mut total = Decimal::ZERO;
    for credit in credits {
        if credit.share <= Decimal::ZERO || credit.share > Decimal::ONE {
            return Err(Error::invalid("credits", "each share must be in (0, 1]"));
        }
        total += credit.share;
        match merged.iter_mut().find(|c| c.affiliate == credit.affiliate) {
            Some(existing) => existing.share += credit.share,
            None => merged.push(*credit),
        }
    }
    if credits.is_empty() || (total - Decimal::ONE).abs() > SHARE_TOLERANCE {
        return Err(Error::invalid("credits", "shares must sum to 1"));
    }
    Ok(merged)
}

/// The overrides a tier-0 entry gives its uplines: `levels[n]` percent of the entry's amount
/// to `uplines[n]` (parent first), as far as both reach. Every level takes its percentage of
/// the credited affiliate's own commission, never of another override, so a level's cut does
/// not depend on the levels below it. Overrides, reversals and manual adjustments give none:
/// reversals are reversed tier by tier instead, and adjustments are a person's decision
/// (as are imported opening balances, which the old system already settled).
/// The chain stops at a repeated affiliate, so a cycle in the tree cannot pay anyone twice.
pub fn overrides(
    entry: &EntryDraft,
    uplines: &[AffiliateId],
    levels: &[Decimal],
) -> Result<Vec<EntryDraft>, Error> {
    if entry.tier != 0
        || matches!(
            entry.kind,
            EntryKind::Override | EntryKind::Reversal | EntryKind::Adjustment | EntryKind::Migration
        )
    {
        return Ok(Vec::new());
    }
    let mut seen = vec![entry.beneficiary];
    let mut drafts = Vec::new();
    for (level, (upline, percent)) in uplines.iter().zip(levels).enumerate() {
        if seen.contains(upline) {
            break;
        }
        seen.push(*upline);
        let amount = entry.amount.percent(*percent)?;
        if amount.is_zero() {
            continue;
        }
        drafts.push(EntryDraft {
            beneficiary: *upline,
            tier: u8::try_from(level + 1).unwrap_or(u8::MAX),
            kind: EntryKind::Override,
            amount,
            basis: Some(entry.amount),
            fx: None,
            reverses: None,
        });
    }
    Ok(drafts)
}

/// Reversal entries for exactly what `entries` earned: same beneficiary and tier, amounts and
/// bases negated. Pass every entry the charged-back transaction produced, overrides included,
/// and the ledger nets to zero for it.
pub fn reversal_of(entries: &[EntryDraft]) -> Vec<EntryDraft> {
    entries
        .iter()
        .map(|e| EntryDraft {
            kind: EntryKind::Reversal,
            amount: -e.amount,
            basis: e.basis.map(|b| -b),
            reverses: Some(e.kind),
            ..*e
        })
        .collect()
}

/// Splits the earnings by credit and adds every tier-0 draft's overrides, with `uplines_of`
/// giving an affiliate's ancestors, parent first.
pub fn book(
    earnings: &[Earning],
    credits: &[Credit],
    uplines_of: impl Fn(AffiliateId) -> Vec<AffiliateId>,
    levels: &[Decimal],
) -> Result<Vec<EntryDraft>, Error> {
    book_for(earnings, credits, |_| true, uplines_of, levels)
}

/// [`book`]'s entries for the credited affiliates `on_plan` selects (with their overrides):
/// when a conversion's affiliates are on different plans, each plan's earnings are booked for
/// its own affiliates only. The split is over all of the conversion's credits, so each
/// affiliate gets exactly its share, whatever the others are on.
pub fn book_for(
    earnings: &[Earning],
    all_credits: &[Credit],
    on_plan: impl Fn(AffiliateId) -> bool,
    uplines_of: impl Fn(AffiliateId) -> Vec<AffiliateId>,
    levels: &[Decimal],
) -> Result<Vec<EntryDraft>, Error> {
    let direct: Vec<EntryDraft> =
        split_by_credits(earnings, all_credits)?.into_iter().filter(|d| on_plan(d.beneficiary)).collect();
    let mut all = direct.clone();
    for draft in &direct {
        all.extend(overrides(draft, &uplines_of(draft.beneficiary), levels)?);
    }
    Ok(all)
}
