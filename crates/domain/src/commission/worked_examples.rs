//! Worked examples, one per plan type, with every expected amount worked out by hand.

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::ids::AffiliateId;
use crate::money::{Currency, FxRate, Money};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn usd(s: &str) -> Money {
    Money::new(d(s), Currency::USD)
}

fn march(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
}

fn aff(n: u128) -> AffiliateId {
    AffiliateId::from_uuid(Uuid::from_u128(n))
}

fn plan() -> Plan {
    Plan {
        currency: Currency::USD,
        cpa: None,
        cpl: None,
        revshare: None,
        per_lot: None,
        kpi: Vec::new(),
        overrides: Vec::new(),
    }
}

fn ctx(at: DateTime<Utc>) -> EventContext {
    EventContext { at, fx: None, month_to_date: MonthToDate::default() }
}

fn revshare(percent: &str, negative_carryover: bool) -> RevShareRules {
    RevShareRules {
        tier_by: TierBasis::NetRevenue,
        tiers: vec![RevShareTier { from: Decimal::ZERO, percent: d(percent) }],
        negative_carryover,
    }
}

/// (kind, amount) pairs of an event's earnings, for compact expectations.
fn earned(outcome: &EventOutcome) -> Vec<(EntryKind, Decimal)> {
    outcome.earnings.iter().map(|e| (e.kind, e.amount.amount)).collect()
}

fn only_affiliate(earnings: &[Earning], who: AffiliateId) -> Vec<EntryDraft> {
    split_by_credits(earnings, &[Credit { affiliate: who, share: Decimal::ONE }]).unwrap()
}

fn sum(entries: &[EntryDraft]) -> Decimal {
    entries.iter().map(|e| e.amount.amount).sum()
}

#[test]
fn cpa_qualifies_on_the_third_deposit_once_and_by_country() {
    let mut p = plan();
    p.cpa = Some(CpaRules {
        amount: d("100"),
        by_country: [("DE".to_owned(), d("150"))].into(),
        min_first_deposit: Some(d("20")),
        min_total_deposits: Some(d("100")),
        within_days: Some(30),
        ..CpaRules::default()
    });
    p.validate().unwrap();
    let deposit = |s: &str| EventFacts::Deposit { amount: usd(s) };
    // (country, events with their day, CPA expected after each event)
    type Step = (EventFacts, u32, &'static str);
    let cases: &[(&str, &[Step])] = &[
        (
            "de",
            &[
                (EventFacts::Registration, 1, "0"),
                (EventFacts::FirstDeposit { amount: usd("30") }, 2, "0"),
                (deposit("40"), 3, "0"),   // total 70 < 100
                (deposit("50"), 5, "150"), // total 120: qualifies, German amount
                (deposit("10"), 6, "0"),   // already paid
                (deposit("500"), 7, "0"),
            ],
        ),
        (
            "FR",
            &[
                (EventFacts::Registration, 1, "0"),
                (EventFacts::FirstDeposit { amount: usd("30") }, 2, "0"),
                (deposit("40"), 3, "0"),
                (deposit("50"), 9, "100"), // default amount
            ],
        ),
        (
            "DE",
            &[
                (EventFacts::Registration, 1, "0"),
                (EventFacts::FirstDeposit { amount: usd("10") }, 2, "0"), // below the minimum FTD
                (deposit("200"), 3, "0"),                                 // ... so never qualifies
            ],
        ),
    ];
    for (country, events) in cases {
        let mut player = PlayerFacts::new(Currency::USD);
        player.country = Some((*country).to_owned());
        for (event, day, expected) in *events {
            let outcome = commission_for_event(&p, &player, event, &ctx(march(*day))).unwrap();
            let cpa: Decimal =
                outcome.earnings.iter().filter(|e| e.kind == EntryKind::Cpa).map(|e| e.amount.amount).sum();
            assert_eq!(cpa, d(expected), "{country} day {day} {event:?}");
            player = outcome.player;
        }
    }
}

#[test]
fn cpa_outside_the_window_is_not_paid() {
    let mut p = plan();
    p.cpa = Some(CpaRules { amount: d("100"), within_days: Some(7), ..CpaRules::default() });
    let mut player = PlayerFacts::new(Currency::USD);
    player.registered_at = Some(march(1));
    // 1 March 12:00 + 7 days = 8 March 12:00, inclusive.
    for (day, expected) in [(8, "100"), (9, "0")] {
        let outcome = commission_for_event(
            &p,
            &player,
            &EventFacts::FirstDeposit { amount: usd("50") },
            &ctx(march(day)),
        )
        .unwrap();
        assert_eq!(
            outcome.earnings.iter().map(|e| e.amount.amount).sum::<Decimal>(),
            d(expected),
            "day {day}"
        );
    }
}

#[test]
fn forex_cpa_needs_trades_and_lots() {
    let mut p = plan();
    p.cpa = Some(CpaRules {
        amount: d("400"),
        min_first_deposit: Some(d("250")),
        min_trades: Some(3),
        min_lots: Some(d("1")),
        ..CpaRules::default()
    });
    let trade = |lots: &str| EventFacts::Trade { lots: d(lots), instrument: "EURUSD".into() };
    let steps = [
        (EventFacts::FirstDeposit { amount: usd("300") }, "0"),
        (trade("0.5"), "0"),
        (trade("0.2"), "0"), // 2 trades, 0.7 lots
        (trade("0.2"), "0"), // 3 trades, 0.9 lots
        (trade("0.1"), "400"),
        (trade("5"), "0"),
    ];
    let mut player = PlayerFacts::new(Currency::USD);
    for (i, (event, expected)) in steps.iter().enumerate() {
        let outcome = commission_for_event(&p, &player, event, &ctx(march(2))).unwrap();
        assert_eq!(
            outcome.earnings.iter().map(|e| e.amount.amount).sum::<Decimal>(),
            d(expected),
            "step {i}"
        );
        player = outcome.player;
    }
}

#[test]
fn cpl_pays_per_registration_only_once() {
    let mut p = plan();
    p.cpl = Some(d("2.50"));
    let first =
        commission_for_event(&p, &PlayerFacts::new(Currency::USD), &EventFacts::Registration, &ctx(march(1)))
            .unwrap();
    assert_eq!(earned(&first), [(EntryKind::Cpl, d("2.50"))]);
    let again = commission_for_event(&p, &first.player, &EventFacts::Registration, &ctx(march(2))).unwrap();
    assert_eq!(earned(&again), []);
}

/// One revenue event per month, then the close; carryover on and off.
#[test]
fn revshare_negative_month_with_and_without_carryover() {
    // (carryover, month net revenue, live entry, closing true-up, balance, carry out)
    type Month = (&'static str, &'static str, &'static str, &'static str, &'static str);
    let cases: &[(bool, &[Month])] = &[
        (
            true,
            &[
                ("-1000", "-300", "300", "0", "-300"),
                ("2500", "750", "-300", "450", "0"),
                ("500", "150", "0", "150", "0"),
            ],
        ),
        (
            false,
            &[
                ("-1000", "-300", "300", "0", "0"),
                ("2500", "750", "0", "750", "0"),
                ("500", "150", "0", "150", "0"),
            ],
        ),
    ];
    let a = aff(1);
    for (carryover, months) in cases {
        let mut p = plan();
        p.revshare = Some(revshare("30", *carryover));
        let mut carry = usd("0");
        for (month, (ngr, live, true_up, balance, carry_out)) in months.iter().enumerate() {
            let event = EventFacts::Revenue { net: usd(ngr), turnover: None };
            let outcome =
                commission_for_event(&p, &PlayerFacts::new(Currency::USD), &event, &ctx(march(15))).unwrap();
            assert_eq!(earned(&outcome), [(EntryKind::Revshare, d(live))]);
            let entries = only_affiliate(&outcome.earnings, a);
            let metrics = PeriodMetrics { net_revenue: d(ngr), ..PeriodMetrics::default() };
            let close =
                PeriodClose { plan: &p, affiliate: a, opening_carryover: carry, metrics, entries: &entries };
            let statement = close_period(&close).unwrap();
            let label = format!("carryover {carryover}, month {month}");
            assert_eq!(sum(&statement.closing_entries), d(true_up), "{label}");
            assert_eq!(statement.balance, usd(balance), "{label}");
            assert_eq!(statement.closing_carryover, usd(carry_out), "{label}");
            carry = statement.closing_carryover;
        }
    }
}

#[test]
fn revshare_tier_crossing_mid_month_is_trued_up_to_the_final_tier() {
    let tiers = |a: &str, b: &str| {
        vec![
            RevShareTier { from: Decimal::ZERO, percent: d("25") },
            RevShareTier { from: d(a), percent: d("30") },
            RevShareTier { from: d(b), percent: d("35") },
        ]
    };
    // (basis, tiers, [(NGR, MTD NGR before, MTD FTDs before, live entry)], month FTDs, true-up)
    type Event = (&'static str, &'static str, &'static str, &'static str);
    type Case = (TierBasis, Vec<RevShareTier>, &'static [Event], &'static str, &'static str);
    let cases: &[Case] = &[
        // FTD tiers 0/10/20: 1000 at 25 % = 250, then the 12th FTD moves to 30 %: 2000 → 600.
        // Month: 14 FTDs, 30 % of 3000 = 900; booked 850, so +50.
        (
            TierBasis::Ftds,
            tiers("10", "20"),
            &[("1000", "0", "8", "250"), ("2000", "1000", "12", "600")],
            "14",
            "50",
        ),
        // NGR tiers 0/5000/20000: 4000 → 25 % = 1000; 4000 + 2000 = 6000 reaches 30 %: 600.
        // Month: 6000 at 30 % = 1800; booked 1600, so +200.
        (
            TierBasis::NetRevenue,
            tiers("5000", "20000"),
            &[("4000", "0", "0", "1000"), ("2000", "4000", "0", "600")],
            "0",
            "200",
        ),
    ];
    let a = aff(1);
    for (basis, tiers, events, month_ftds, true_up) in cases {
        let mut p = plan();
        p.revshare = Some(RevShareRules { tier_by: *basis, tiers: tiers.clone(), negative_carryover: true });
        p.validate().unwrap();
        let mut entries = Vec::new();
        let mut net = Decimal::ZERO;
        for (ngr, mtd_net, mtd_ftds, live) in *events {
            let context = EventContext {
                at: march(20),
                fx: None,
                month_to_date: MonthToDate { net_revenue: d(mtd_net), ftds: d(mtd_ftds) },
            };
            let event = EventFacts::Revenue { net: usd(ngr), turnover: None };
            let outcome =
                commission_for_event(&p, &PlayerFacts::new(Currency::USD), &event, &context).unwrap();
            assert_eq!(earned(&outcome), [(EntryKind::Revshare, d(live))], "{basis:?}");
            entries.extend(only_affiliate(&outcome.earnings, a));
            net += d(ngr);
        }
        let metrics = PeriodMetrics { net_revenue: net, ftds: d(month_ftds), ..PeriodMetrics::default() };
        let close =
            PeriodClose { plan: &p, affiliate: a, opening_carryover: usd("0"), metrics, entries: &entries };
        let statement = close_period(&close).unwrap();
        assert_eq!(sum(&statement.closing_entries), d(true_up), "{basis:?}");
    }
}

#[test]
fn per_lot_across_instrument_groups() {
    let mut p = plan();
    p.per_lot = Some(PerLotRules {
        default_rate: d("2"),
        group_rates: [("FX_MAJORS", "5"), ("METALS", "8"), ("INDICES", "3"), ("CRYPTO", "10")]
            .into_iter()
            .map(|(g, r)| (g.to_owned(), d(r)))
            .collect(),
        instrument_groups: [
            ("EURUSD", "FX_MAJORS"),
            ("GBPUSD", "FX_MAJORS"),
            ("XAUUSD", "METALS"),
            ("US30", "INDICES"),
            ("BTCUSD", "CRYPTO"),
        ]
        .into_iter()
        .map(|(i, g)| (i.to_owned(), g.to_owned()))
        .collect(),
    });
    p.validate().unwrap();
    let cases = [
        ("EURUSD", "1.5", "7.50"),
        ("xauusd", "0.25", "2.00"), // matched case-insensitively
        ("US30", "2", "6.00"),
        ("BTCUSD", "0.1", "1.00"),
        ("USDTRY", "3", "6.00"),     // no group: default rate
        ("GBPUSD", "0.333", "1.66"), // 1.665 rounds to even
        ("EURUSD", "0.01", "0.05"),
    ];
    for (instrument, lots, expected) in cases {
        let event = EventFacts::Trade { lots: d(lots), instrument: instrument.to_owned() };
        let outcome =
            commission_for_event(&p, &PlayerFacts::new(Currency::USD), &event, &ctx(march(3))).unwrap();
        assert_eq!(earned(&outcome), [(EntryKind::Lot, d(expected))], "{instrument} {lots}");
    }
}

#[test]
fn three_level_override() {
    let (a, b, c, dd, e) = (aff(1), aff(2), aff(3), aff(4), aff(5));
    let levels = [d("10"), d("5"), d("2.5")];
    let uplines = |who: AffiliateId| if who == a { vec![b, c, dd, e] } else { Vec::new() };
    // (earning, [(beneficiary, tier, amount)])
    type Share = (AffiliateId, u8, &'static str);
    let cases: &[(EntryKind, &str, &[Share])] = &[
        (EntryKind::Cpa, "200", &[(a, 0, "200"), (b, 1, "20"), (c, 2, "10"), (dd, 3, "5")]),
        // 3.333 → 3.33; 1.6665 → 1.67; 0.83325 → 0.83 (each taken of A's 33.33)
        (EntryKind::Revshare, "33.33", &[(a, 0, "33.33"), (b, 1, "3.33"), (c, 2, "1.67"), (dd, 3, "0.83")]),
    ];
    for (kind, amount, expected) in cases {
        let earning = Earning { kind: *kind, amount: usd(amount), basis: None, fx: None };
        let entries =
            book(&[earning], &[Credit { affiliate: a, share: Decimal::ONE }], uplines, &levels).unwrap();
        let got: Vec<(AffiliateId, u8, Decimal)> =
            entries.iter().map(|e| (e.beneficiary, e.tier, e.amount.amount)).collect();
        let want: Vec<(AffiliateId, u8, Decimal)> = expected.iter().map(|(w, t, s)| (*w, *t, d(s))).collect();
        assert_eq!(got, want, "{kind}");
        assert!(entries[1..].iter().all(|e| e.kind == EntryKind::Override && e.basis == Some(usd(amount))));
    }
}

#[test]
fn split_follows_attribution_credits_to_the_cent() {
    let (a, b, c) = (aff(1), aff(2), aff(3));
    let third = Decimal::ONE / Decimal::from(3);
    let cases: &[(&str, Vec<Credit>, &[&str])] = &[
        (
            "100",
            vec![
                Credit { affiliate: a, share: d("0.5") },
                Credit { affiliate: b, share: d("0.3") },
                Credit { affiliate: c, share: d("0.2") },
            ],
            &["50", "30", "20"],
        ),
        (
            "100",
            vec![
                Credit { affiliate: a, share: third },
                Credit { affiliate: b, share: third },
                Credit { affiliate: c, share: third },
            ],
            &["33.34", "33.33", "33.33"],
        ),
        // Two touchpoints of A merge into one two-thirds share.
        (
            "0.10",
            vec![
                Credit { affiliate: a, share: third },
                Credit { affiliate: b, share: third },
                Credit { affiliate: a, share: third },
            ],
            &["0.07", "0.03"],
        ),
    ];
    for (amount, credits, expected) in cases {
        let earning = Earning { kind: EntryKind::Cpa, amount: usd(amount), basis: None, fx: None };
        let parts: Vec<Decimal> =
            split_by_credits(&[earning], credits).unwrap().iter().map(|e| e.amount.amount).collect();
        let want: Vec<Decimal> = expected.iter().map(|s| d(s)).collect();
        assert_eq!(parts, want, "{amount}");
    }
    let bad = [Credit { affiliate: a, share: d("0.5") }, Credit { affiliate: b, share: d("0.4") }];
    assert_eq!(split_by_credits(&[], &bad).unwrap_err().field(), "credits");
}

#[test]
fn chargeback_after_payout_nets_to_zero_at_every_tier() {
    let (a, b, c) = (aff(1), aff(2), aff(3));
    let mut p = plan();
    p.cpa = Some(CpaRules { amount: d("200"), ..CpaRules::default() });
    p.overrides = vec![d("10"), d("5")];
    let uplines = |who: AffiliateId| if who == a { vec![b, c] } else { vec![c] };

    // March: the deposit qualifies; A's statement pays 200 and is settled.
    let deposit = EventFacts::FirstDeposit { amount: usd("100") };
    let outcome =
        commission_for_event(&p, &PlayerFacts::new(Currency::USD), &deposit, &ctx(march(5))).unwrap();
    let credits = [Credit { affiliate: a, share: Decimal::ONE }];
    let booked = book(&outcome.earnings, &credits, uplines, &p.overrides).unwrap();
    let march_a: Vec<EntryDraft> = booked.iter().filter(|e| e.beneficiary == a).copied().collect();
    let close = |entries: &[EntryDraft]| {
        let input = PeriodClose {
            plan: &p,
            affiliate: a,
            opening_carryover: usd("0"),
            metrics: PeriodMetrics::default(),
            entries,
        };
        close_period(&input).unwrap()
    };
    assert_eq!(close(&march_a).balance, usd("200"));

    // April: the deposit is charged back; every tier gets its exact negation.
    let reversals = reversal_of(&booked);
    let expected = [
        (a, 0, "-200", EntryKind::Cpa),
        (b, 1, "-20", EntryKind::Override),
        (c, 2, "-10", EntryKind::Override),
    ];
    let got: Vec<_> =
        reversals.iter().map(|e| (e.beneficiary, e.tier, e.amount.amount, e.reverses)).collect();
    let want: Vec<_> = expected.iter().map(|(w, t, s, k)| (*w, *t, d(s), Some(*k))).collect();
    assert_eq!(got, want);
    for who in [a, b, c] {
        let net: Decimal =
            booked.iter().chain(&reversals).filter(|e| e.beneficiary == who).map(|e| e.amount.amount).sum();
        assert_eq!(net, Decimal::ZERO);
    }
    let april_a: Vec<EntryDraft> = reversals.iter().filter(|e| e.beneficiary == a).copied().collect();
    let april = close(&april_a);
    assert_eq!(april.lines, [StatementLine { kind: EntryKind::Reversal, amount: usd("-200") }]);
    assert_eq!(april.balance, usd("-200"));
}

#[test]
fn multi_currency_month_converts_each_event_at_its_own_rate() {
    let a = aff(1);
    let mut p = plan();
    p.revshare = Some(revshare("25", true));
    let jpy = Currency::parse("JPY", "currency").unwrap();
    let rate = |from: Currency, r: &str| FxRate::new(from, Currency::USD, d(r)).unwrap();
    // (NGR as reported, rate, NGR in USD, live revshare)
    let cases = [
        (Money::new(d("1000"), Currency::EUR), Some(rate(Currency::EUR, "1.0850")), "1085.00", "271.25"),
        (Money::new(d("500"), Currency::GBP), Some(rate(Currency::GBP, "1.27")), "635.00", "158.75"),
        (Money::new(d("-20000"), jpy), Some(rate(jpy, "0.0067")), "-134.00", "-33.50"),
        (usd("200"), None, "200", "50.00"),
    ];
    let mut entries = Vec::new();
    for (reported, fx, in_usd, live) in cases {
        let context = EventContext { at: march(10), fx, month_to_date: MonthToDate::default() };
        let event = EventFacts::Revenue { net: reported, turnover: None };
        let outcome = commission_for_event(&p, &PlayerFacts::new(Currency::USD), &event, &context).unwrap();
        let drafts = only_affiliate(&outcome.earnings, a);
        assert_eq!(drafts.len(), 1);
        assert_eq!((drafts[0].amount, drafts[0].basis), (usd(live), Some(usd(in_usd))), "{reported}");
        assert_eq!(drafts[0].fx, fx.map(|rate| FxSource { amount: reported, rate }));
        entries.extend(drafts);
    }
    // 1085 + 635 − 134 + 200 = 1786; 25 % = 446.50, exactly what was booked live.
    let net: Decimal = entries.iter().filter_map(|e| e.basis).map(|b| b.amount).sum();
    assert_eq!(net, d("1786"));
    let metrics = PeriodMetrics { net_revenue: net, ..PeriodMetrics::default() };
    let close =
        PeriodClose { plan: &p, affiliate: a, opening_carryover: usd("0"), metrics, entries: &entries };
    let statement = close_period(&close).unwrap();
    assert_eq!((statement.closing_entries.len(), statement.balance), (0, usd("446.50")));

    let no_rate = EventFacts::Revenue { net: Money::new(d("10"), Currency::EUR), turnover: None };
    let err =
        commission_for_event(&p, &PlayerFacts::new(Currency::USD), &no_rate, &ctx(march(10))).unwrap_err();
    assert_eq!(err.field(), "currency");
}

#[test]
fn hybrid_pays_cpa_and_revshare_each_by_its_rules() {
    let mut p = plan();
    p.cpa = Some(CpaRules { amount: d("50"), min_turnover: Some(d("1000")), ..CpaRules::default() });
    p.revshare = Some(revshare("20", false));
    let rate = FxRate::new(Currency::EUR, Currency::USD, d("1.10")).unwrap();
    let eur = |s: &str| Money::new(d(s), Currency::EUR);
    let steps = [
        (EventFacts::FirstDeposit { amount: eur("100") }, vec![]),
        // Turnover 800 EUR = 880 USD: not yet; NGR 40 EUR = 44 USD at 20 % = 8.80.
        (
            EventFacts::Revenue { net: eur("40"), turnover: Some(eur("800")) },
            vec![(EntryKind::Revshare, "8.80")],
        ),
        // Turnover reaches 1100 USD: CPA completes on this revenue report, beside its revshare.
        (
            EventFacts::Revenue { net: eur("-10"), turnover: Some(eur("200")) },
            vec![(EntryKind::Cpa, "50"), (EntryKind::Revshare, "-2.20")],
        ),
    ];
    let mut player = PlayerFacts::new(Currency::USD);
    for (event, expected) in steps {
        let context = EventContext { at: march(4), fx: Some(rate), month_to_date: MonthToDate::default() };
        let outcome = commission_for_event(&p, &player, &event, &context).unwrap();
        let want: Vec<(EntryKind, Decimal)> = expected.iter().map(|(k, s)| (*k, d(s))).collect();
        assert_eq!(earned(&outcome), want, "{event:?}");
        player = outcome.player;
    }
}

#[test]
fn kpi_bonus_at_period_close_is_idempotent() {
    let a = aff(1);
    let mut p = plan();
    p.kpi = vec![
        KpiBonus { metric: KpiMetric::Ftds, target: d("20"), amount: d("500") },
        KpiBonus { metric: KpiMetric::NetRevenue, target: d("10000"), amount: d("1000") },
    ];
    let cases = [("19", "9000", "0"), ("20", "9000", "500"), ("25", "12000", "1500"), ("3", "10000", "1000")];
    for (ftds, ngr, bonus) in cases {
        let metrics = PeriodMetrics { ftds: d(ftds), net_revenue: d(ngr), ..PeriodMetrics::default() };
        let first =
            PeriodClose { plan: &p, affiliate: a, opening_carryover: usd("0"), metrics, entries: &[] };
        let statement = close_period(&first).unwrap();
        assert_eq!((statement.kpi_due, statement.balance), (usd(bonus), usd(bonus)), "{ftds} FTDs, {ngr}");
        let again = PeriodClose { entries: &statement.closing_entries, ..first };
        let second = close_period(&again).unwrap();
        assert!(second.closing_entries.is_empty());
        assert_eq!(second.balance, statement.balance);
    }
}

#[test]
fn plan_validation_names_the_field() {
    let base = || {
        let mut p = plan();
        p.cpl = Some(d("1"));
        p
    };
    let mut cases: Vec<(Plan, &str)> = Vec::new();
    cases.push((plan(), "plan"));
    let mut p = base();
    p.cpl = Some(d("1.005"));
    cases.push((p, "cpl"));
    let mut p = base();
    p.cpa = Some(CpaRules { amount: d("-1"), ..CpaRules::default() });
    cases.push((p, "cpa.amount"));
    let mut p = base();
    p.cpa =
        Some(CpaRules { amount: d("1"), by_country: [("de".into(), d("2"))].into(), ..CpaRules::default() });
    cases.push((p, "cpa.byCountry"));
    let mut p = base();
    p.cpa = Some(CpaRules { amount: d("1"), within_days: Some(0), ..CpaRules::default() });
    cases.push((p, "cpa.withinDays"));
    let mut p = base();
    p.revshare = Some(RevShareRules { tier_by: TierBasis::Ftds, tiers: vec![], negative_carryover: false });
    cases.push((p, "revshare.tiers"));
    let mut p = base();
    p.revshare = Some(revshare("101", false));
    cases.push((p, "revshare.tiers"));
    let mut p = base();
    p.per_lot = Some(PerLotRules {
        default_rate: d("1"),
        instrument_groups: [("EURUSD".into(), "FX".into())].into(),
        ..PerLotRules::default()
    });
    cases.push((p, "perLot.instrumentGroups"));
    let mut p = base();
    p.overrides = vec![d("60"), d("50")];
    cases.push((p, "overrides"));
    let mut p = base();
    p.kpi = vec![KpiBonus { metric: KpiMetric::Ftds, target: d("0"), amount: d("1") }];
    cases.push((p, "kpi.target"));
    for (plan, field) in cases {
        assert_eq!(plan.validate().unwrap_err().field(), field);
    }
    base().validate().unwrap();
}

#[test]
fn plan_revisions_apply_forward_only() {
    let v1 = {
        let mut p = plan();
        p.cpl = Some(d("1"));
        p
    };
    let v2 = {
        let mut p = plan();
        p.cpl = Some(d("2"));
        p
    };
    let mut history = PlanHistory::new(v1.clone(), march(1)).unwrap();
    assert_eq!(history.revise(v2.clone(), march(5), march(10)).unwrap_err().field(), "effectiveFrom");
    assert_eq!(history.revise(v2.clone(), march(15), march(10)).unwrap().version, 2);
    assert_eq!(history.in_force_at(march(14)).map(|v| v.version), Some(1));
    assert_eq!(history.in_force_at(march(15)).map(|v| &v.plan), Some(&v2));
    assert!(history.in_force_at(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()).is_none());
    let reloaded = PlanHistory::from_versions(history.versions().to_vec()).unwrap();
    assert_eq!(reloaded, history);
}
