use chrono::TimeDelta;
use proptest::prelude::*;

use super::*;
use crate::conversion::{ConversionStatus, EventKind};
use crate::ids::{AffiliateId, ConversionId};

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}
use crate::postback::parse;

fn flag(score: u8, action: Action) -> Flag {
    Flag { rule: Rule::MultiAccounting, score, action, evidence: String::new() }
}

fn action() -> impl Strategy<Value = Action> {
    prop::sample::select(Action::ALL.to_vec())
}

fn flags() -> impl Strategy<Value = Vec<Flag>> {
    prop::collection::vec((0u8..=100, action()).prop_map(|(score, action)| flag(score, action)), 0..8)
}

proptest! {
    #[test]
    fn risk_is_at_least_every_flags_score_and_at_most_100(flags in flags()) {
        let verdict = Verdict::of(flags.clone());
        prop_assert!(verdict.risk <= 100);
        for flag in &flags {
            prop_assert!(verdict.risk >= flag.score);
        }
        prop_assert_eq!(verdict.action, flags.iter().map(|f| f.action).max());
    }

    #[test]
    fn the_order_of_flags_changes_nothing(mut flags in flags()) {
        let before = Verdict::of(flags.clone());
        flags.reverse();
        let after = Verdict::of(flags);
        prop_assert_eq!((before.risk, before.action), (after.risk, after.action));
    }

    #[test]
    fn another_flag_never_lowers_risk_or_softens_the_action(flags in flags(), score in 0u8..=100, extra in action()) {
        let before = Verdict::of(flags.clone());
        let mut more = flags;
        more.push(flag(score, extra));
        let after = Verdict::of(more);
        prop_assert!(after.risk >= before.risk);
        prop_assert!(after.action >= before.action);
    }

    #[test]
    fn disabled_rules_never_flag(ctit_ms in 0i64..100_000, shared in 0usize..3) {
        let mut settings = FraudSettings::default();
        settings.multi_accounting.enabled = false;
        settings.click_injection.enabled = false;
        settings.self_referral.enabled = false;
        let shared: Vec<SharedSignal> = (0..shared)
            .map(|i| SharedSignal {
                signal: ClusterSignal::DeviceId,
                other_player: format!("p{i}"),
                other_conversion: ConversionId::new(),
            })
            .collect();
        let facts = Facts {
            event: EventKind::Registration,
            shared: &shared,
            click_to_conversion: Some(TimeDelta::milliseconds(ctit_ms)),
            occurred_at: at(),
            affiliate_logins: &[AffiliateLogin { affiliate: AffiliateId::new(), last_seen_at: at() }],
        };
        prop_assert_eq!(judge(&settings, &facts), Verdict::default());
    }
}

#[test]
fn no_flags_no_risk() {
    let verdict = Verdict::of(Vec::new());
    assert_eq!((verdict.risk, verdict.action), (0, None));
    assert_eq!(verdict.status(ConversionStatus::Approved), ConversionStatus::Approved);
}

#[test]
fn two_independent_flags_combine() {
    // 1 - 0.4 × 0.5 = 0.8
    let verdict = Verdict::of(vec![flag(60, Action::Flag), flag(50, Action::Hold)]);
    assert_eq!(verdict.risk, 80);
    assert_eq!(verdict.action, Some(Action::Hold));
    assert!(verdict.holds());
    assert_eq!(verdict.status(ConversionStatus::Pending), ConversionStatus::Pending);
}

#[test]
fn a_rejecting_rule_rejects_and_says_which() {
    let mut rejecting = flag(60, Action::Reject);
    rejecting.rule = Rule::ClickInjection;
    let verdict = Verdict::of(vec![flag(10, Action::Flag), rejecting]);
    assert_eq!(verdict.status(ConversionStatus::Approved), ConversionStatus::Rejected);
    assert_eq!(verdict.rejection_reason().as_deref(), Some("fraud:click_injection"));
}

#[test]
fn click_injection_is_judged_against_the_events_floor() {
    let settings = FraudSettings::default();
    let judge_at = |event, secs| {
        judge(
            &settings,
            &Facts {
                event,
                shared: &[],
                click_to_conversion: Some(TimeDelta::seconds(secs)),
                occurred_at: at(),
                affiliate_logins: &[],
            },
        )
    };
    assert_eq!(judge_at(EventKind::Registration, 9).flags.len(), 1);
    assert!(judge_at(EventKind::Registration, 10).flags.is_empty());
    assert_eq!(judge_at(EventKind::Ftd, 29).flags[0].rule, Rule::ClickInjection);
    assert!(judge_at(EventKind::Ftd, 30).flags.is_empty());
    assert!(judge_at(EventKind::Deposit, 1).flags.is_empty());
}

#[test]
fn settings_out_of_range_name_the_field() {
    let mut settings = FraudSettings::default();
    settings.click_injection.score = 101;
    assert_eq!(settings.validate().unwrap_err().field(), "clickInjection.score");
    let settings = FraudSettings { ftd_floor_secs: 86_401, ..FraudSettings::default() };
    assert_eq!(settings.validate().unwrap_err().field(), "ftdFloorSecs");
}

#[test]
fn settings_missing_from_storage_take_their_defaults() {
    let stored = r#"{"registration_floor_secs": 5}"#;
    let settings: FraudSettings = serde_json::from_str(stored).unwrap();
    assert_eq!(settings.registration_floor_secs, 5);
    assert_eq!(settings.multi_accounting, FraudSettings::default().multi_accounting);
}

#[test]
fn signals_are_parsed_and_bad_ones_named() {
    let received = chrono::Utc::now();
    let postback = parse(
        [
            ("player_id", "p1"),
            ("event", "registration"),
            ("ip", "2001:db8::1"),
            ("device_id", "d-1"),
            ("email_hash", "ab12"),
            ("bonus_amount", "10.5"),
        ],
        received,
    )
    .unwrap();
    assert_eq!(postback.signals.ip, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(
        postback.signals.cluster_values(),
        vec![(ClusterSignal::DeviceId, "d-1"), (ClusterSignal::EmailHash, "ab12")]
    );
    let long = "x".repeat(129);
    let errors = parse(
        [
            ("player_id", "p1"),
            ("event", "registration"),
            ("ip", "300.1.1.1"),
            ("payment_hash", long.as_str()),
            ("fingerprint", "a\u{7}b"),
            ("bonus_amount", "-1"),
        ],
        received,
    )
    .unwrap_err();
    let mut fields: Vec<_> = errors.iter().map(|e| e.field).collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["bonus_amount", "fingerprint", "ip", "payment_hash"]);
}

#[test]
fn self_referral_counts_logins_of_the_last_30_days() {
    let settings = FraudSettings::default();
    let judge_login = |days_before: i64| {
        let logins = [AffiliateLogin {
            affiliate: AffiliateId::new(),
            last_seen_at: at() - TimeDelta::days(days_before),
        }];
        judge(
            &settings,
            &Facts {
                event: EventKind::Deposit,
                shared: &[],
                click_to_conversion: None,
                occurred_at: at(),
                affiliate_logins: &logins,
            },
        )
    };
    let recent = judge_login(30);
    assert_eq!(recent.flags.len(), 1);
    assert_eq!(recent.flags[0].rule, Rule::SelfReferral);
    assert_eq!(recent.risk, 80);
    assert!(judge_login(31).flags.is_empty());
}
