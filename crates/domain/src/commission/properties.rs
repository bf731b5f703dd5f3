//! Properties that must hold for any plan, credits and tree: money is neither created nor lost.

use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::ids::AffiliateId;
use crate::money::{Currency, Money};

fn aff(n: u8) -> AffiliateId {
    AffiliateId::from_uuid(Uuid::from_u128(u128::from(n)))
}

fn cents() -> impl Strategy<Value = Money> {
    (-10_000_000_i64..10_000_000).prop_map(|c| Money::new(Decimal::new(c, 2), Currency::USD))
}

fn kind() -> impl Strategy<Value = EntryKind> {
    prop::sample::select(EntryKind::ALL.to_vec())
}

fn earnings() -> impl Strategy<Value = Vec<Earning>> {
    let earning = (kind(), cents(), prop::option::of(cents()))
        .prop_filter("earnings are commissions, not overrides or reversals", |(k, _, _)| {
            !matches!(k, EntryKind::Override | EntryKind::Reversal)
        })
        .prop_map(|(kind, amount, basis)| Earning { kind, amount, basis, fx: None });
    prop::collection::vec(earning, 0..6)
}

/// Shares from integer weights divided out, as an attribution model would produce them:
/// rounded to 28 digits, summing to 1 only within the tolerance.
fn credits() -> impl Strategy<Value = Vec<Credit>> {
    prop::collection::vec((0_u8..6, 1_u32..100), 1..6).prop_map(|raw| {
        let total: u32 = raw.iter().map(|(_, w)| w).sum();
        raw.into_iter()
            .map(|(who, w)| Credit { affiliate: aff(who), share: Decimal::from(w) / Decimal::from(total) })
            .collect()
    })
}

fn levels() -> impl Strategy<Value = Vec<Decimal>> {
    prop::collection::vec((0_i64..=2000).prop_map(|bp| Decimal::new(bp, 2)), 0..4)
}

/// A small affiliate tree: affiliate n's parent is `parents[n]`, if any; cycles allowed.
fn uplines_of(parents: &[Option<u8>]) -> impl Fn(AffiliateId) -> Vec<AffiliateId> + '_ {
    move |who| {
        let mut chain = Vec::new();
        let mut current = (0..6_u8).find(|n| aff(*n) == who);
        while let Some(parent) = current.and_then(|n| parents.get(usize::from(n)).copied().flatten()) {
            if chain.len() >= 8 {
                break;
            }
            chain.push(aff(parent));
            current = Some(parent);
        }
        chain
    }
}

fn total(entries: &[EntryDraft]) -> Money {
    entries.iter().try_fold(Money::zero(Currency::USD), |acc, e| acc.checked_add(e.amount)).unwrap()
}

proptest! {
    #[test]
    fn booking_plan_by_plan_books_exactly_what_booking_at_once_does(
        earnings in earnings(),
        credits in credits(),
        parents in prop::collection::vec(prop::option::of(0_u8..6), 6),
        levels in levels(),
        plan_of in prop::collection::vec(0_u8..3, 6),
    ) {
        // Affiliates spread over three plans (with the same earnings): the union of what each
        // plan books for its own affiliates is what booking everyone at once gives.
        let plan_of = &plan_of;
        let on = |plan: u8| move |who: AffiliateId| (0..6_u8).any(|n| aff(n) == who && plan_of[usize::from(n)] == plan);
        let Ok(at_once) = book(&earnings, &credits, uplines_of(&parents), &levels) else { return Ok(()) };
        let mut by_plan = Vec::new();
        for plan in 0..3 {
            by_plan.extend(book_for(&earnings, &credits, on(plan), uplines_of(&parents), &levels).unwrap());
        }
        // The whole draft is the key: two overrides may differ only in their basis.
        let key = |d: &EntryDraft| (d.beneficiary, d.tier, d.kind, d.amount.amount, d.basis.map(|b| b.amount));
        let (mut a, mut b) = (at_once.clone(), by_plan);
        a.sort_by_key(key);
        b.sort_by_key(key);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn split_commission_sums_to_the_undivided_amount(earnings in earnings(), credits in credits()) {
        let drafts = split_by_credits(&earnings, &credits).unwrap();
        prop_assert_eq!(total(&drafts), earnings.iter().try_fold(Money::zero(Currency::USD), |acc, e| acc.checked_add(e.amount)).unwrap());
        for earning in &earnings {
            let of_it: Vec<EntryDraft> = drafts.iter().filter(|d| d.kind == earning.kind).copied().collect();
            let expected = earnings.iter().filter(|e| e.kind == earning.kind).try_fold(Money::zero(Currency::USD), |acc, e| acc.checked_add(e.amount)).unwrap();
            prop_assert_eq!(total(&of_it), expected);
        }
    }

    #[test]
    fn reversal_of_everything_nets_to_zero_for_everyone(
        earnings in earnings(),
        credits in credits(),
        parents in prop::collection::vec(prop::option::of(0_u8..6), 6),
        levels in levels(),
    ) {
        let booked = book(&earnings, &credits, uplines_of(&parents), &levels).unwrap();
        let reversals = reversal_of(&booked);
        prop_assert_eq!(reversals.len(), booked.len());
        for who in 0..6 {
            let mine: Vec<EntryDraft> = booked.iter().chain(&reversals).filter(|e| e.beneficiary == aff(who)).copied().collect();
            prop_assert!(total(&mine).is_zero());
        }
    }

    #[test]
    fn a_statements_lines_sum_to_its_balance_and_closing_is_idempotent(
        amounts in prop::collection::vec((kind(), cents(), 0_u8..3), 0..20),
        net_revenue in -1_000_000_i64..1_000_000,
        ftds in 0_i64..40,
        carry in 0_i64..100_000,
        negative_carryover in any::<bool>(),
    ) {
        let a = aff(0);
        let plan = Plan {
            currency: Currency::USD,
            cpa: None,
            cpl: Some(Decimal::ONE),
            revshare: Some(RevShareRules {
                tier_by: TierBasis::Ftds,
                tiers: vec![
                    RevShareTier { from: Decimal::ZERO, percent: Decimal::from(25) },
                    RevShareTier { from: Decimal::from(10), percent: Decimal::new(335, 1) },
                ],
                negative_carryover,
            }),
            per_lot: None,
            kpi: vec![KpiBonus { metric: KpiMetric::Ftds, target: Decimal::from(20), amount: Decimal::from(300) }],
            overrides: Vec::new(),
        };
        let entries: Vec<EntryDraft> = amounts
            .into_iter()
            .map(|(kind, amount, tier)| EntryDraft {
                beneficiary: a,
                tier,
                kind,
                amount,
                basis: None,
                fx: None,
                reverses: (kind == EntryKind::Reversal).then_some(EntryKind::Revshare),
            })
            .collect();
        let metrics = PeriodMetrics { net_revenue: Decimal::new(net_revenue, 2), ftds: Decimal::from(ftds), ..PeriodMetrics::default() };
        let opening_carryover = Money::new(Decimal::new(-carry, 2), Currency::USD);
        let first = PeriodClose { plan: &plan, affiliate: a, opening_carryover, metrics, entries: &entries };
        let statement = close_period(&first).unwrap();
        let line_sum = statement.lines.iter().try_fold(Money::zero(Currency::USD), |acc, l| acc.checked_add(l.amount)).unwrap();
        prop_assert_eq!(line_sum, statement.balance);
        prop_assert!(statement.closing_carryover.amount <= Decimal::ZERO);

        let mut all = entries.clone();
        all.extend(statement.closing_entries.iter().copied());
        let again = close_period(&PeriodClose { entries: &all, ..first }).unwrap();
        prop_assert!(again.closing_entries.is_empty());
        prop_assert_eq!(again.balance, statement.balance);
        prop_assert_eq!(again.closing_carryover, statement.closing_carryover);
    }
}
