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
    fn disabled_rules_never_flag(ctit_ms in 0i64..100_000, shared in 0usize..3, listed in listed_ips()) {
        let mut settings = FraudSettings::default();
        settings.multi_accounting.enabled = false;
        settings.click_injection.enabled = false;
        settings.self_referral.enabled = false;
        settings.bot_traffic.enabled = false;
        settings.datacenter_ip.enabled = false;
        settings.vpn_ip.enabled = false;
        settings.blocklisted_ip.enabled = false;
        settings.velocity.enabled = false;
        settings.promo_abuse.enabled = false;
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
            affiliate_logins: &[AffiliateLogin { affiliate: AffiliateId::new(), last_seen_at: at(), user_agent: None }],
            bot_click: Some(&bot()),
            listed_ips: &listed,
            bursts: &[Burst { signal: "ip", others: 1_000 }],
            fast_click: Some("clk-fast"),
            user_agent: None,
            promo_code: Some("WELCOME"),
            promo_claims: &promo_claims(PromoLink::Ip, 50),
        };
        prop_assert_eq!(judge(&settings, &facts), Verdict::default());
    }

    #[test]
    fn the_new_rules_only_ever_add_flags_and_risk(listed in listed_ips(), is_bot in any::<bool>(), ctit_s in 0i64..60) {
        // Facts without the click-side evidence, then with it: nothing the older rules found
        // goes away, and neither risk nor action softens.
        let settings = FraudSettings::default();
        let bot = bot();
        let plain = Facts {
            event: EventKind::Registration,
            shared: &[],
            click_to_conversion: Some(TimeDelta::seconds(ctit_s)),
            occurred_at: at(),
            affiliate_logins: &[],
            bot_click: None,
            listed_ips: &[],
                bursts: &[],
                fast_click: None,
                user_agent: None,
                promo_code: None,
                promo_claims: &[],
        };
        let more = Facts { bot_click: is_bot.then_some(&bot), listed_ips: &listed, ..plain.clone() };
        let (before, after) = (judge(&settings, &plain), judge(&settings, &more));
        prop_assert!(after.risk >= before.risk);
        prop_assert!(after.action >= before.action);
        for flag in &before.flags {
            prop_assert!(after.flags.contains(flag));
        }
        prop_assert_eq!(after.flags.iter().any(|f| f.rule == Rule::BotTraffic), is_bot);
        for list in IpList::ALL {
            let listed_here = listed.iter().any(|l| l.list == list);
            prop_assert_eq!(after.flags.iter().any(|f| f.rule == FraudSettings::rule_of(list)), listed_here);
        }
    }

    #[test]
    fn merged_ranges_are_disjoint_and_hold_exactly_the_listed_addresses(
        nets in prop::collection::vec((any::<u32>(), 8u8..=32), 1..12),
        probes in prop::collection::vec(any::<u32>(), 1..20),
    ) {
        let nets: Vec<ipnet::IpNet> = nets
            .into_iter()
            .map(|(addr, prefix)| ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), prefix).unwrap().trunc().into())
            .collect();
        let merged = merge_ranges(nets.iter().copied().map(IpRange::of).collect());
        for pair in merged.windows(2) {
            prop_assert!(pair[0].end < pair[1].start);
        }
        let probes = probes.into_iter().map(|p| std::net::IpAddr::from(std::net::Ipv4Addr::from(p)))
            .chain(nets.iter().map(|n| n.network()))
            .chain(nets.iter().map(|n| n.broadcast()));
        let table = RangeTable::new(merged.clone());
        let unmerged = RangeTable::new(nets.iter().copied().map(IpRange::of).collect());
        for ip in probes {
            let listed = nets.iter().any(|net| net.contains(&ip));
            // What storage does: the range with the greatest start not above the address.
            let candidate = merged.iter().rev().find(|range| range.start <= ip_key(ip));
            prop_assert_eq!(candidate.is_some_and(|range| range.contains(ip)), listed, "{}", ip);
            // The table in memory finds the same range, from merged or raw ranges alike.
            let found = candidate.filter(|range| range.contains(ip)).copied();
            prop_assert_eq!(table.holding(ip), found, "{}", ip);
            prop_assert_eq!(unmerged.holding(ip), found, "{}", ip);
        }
    }
}

fn bot() -> BotClick {
    BotClick { click_id: "clk-1".into(), user_agent: "Googlebot/2.1".into() }
}

fn listed_ips() -> impl Strategy<Value = Vec<ListedIp>> {
    let list = prop::sample::select(IpList::ALL.to_vec());
    let source = prop::sample::select(vec![IpSource::Postback, IpSource::Click]);
    prop::collection::vec((list, source, any::<u32>()), 0..4).prop_map(|found| {
        found
            .into_iter()
            .map(|(list, source, addr)| {
                let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(addr));
                ListedIp { list, ip, source, range: IpRange { start: ip_key(ip), end: ip_key(ip) } }
            })
            .collect()
    })
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
                bot_click: None,
                listed_ips: &[],
                bursts: &[],
                fast_click: None,
                user_agent: None,
                promo_code: None,
                promo_claims: &[],
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
    let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_ref()).collect();
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
            user_agent: None,
        }];
        judge(
            &settings,
            &Facts {
                event: EventKind::Deposit,
                shared: &[],
                click_to_conversion: None,
                occurred_at: at(),
                affiliate_logins: &logins,
                bot_click: None,
                listed_ips: &[],
                bursts: &[],
                fast_click: None,
                user_agent: None,
                promo_code: None,
                promo_claims: &[],
            },
        )
    };
    let recent = judge_login(30);
    assert_eq!(recent.flags.len(), 1);
    assert_eq!(recent.flags[0].rule, Rule::SelfReferral);
    assert_eq!(recent.risk, 80);
    assert!(judge_login(31).flags.is_empty());
}

#[test]
fn ranges_files_are_read_with_comments_both_families_and_bad_lines_named() {
    let text = "# data centres\n203.0.113.0/24\n\n198.51.100.7 # one host\n2001:db8::/32\n203.0.113.128/25\n";
    let (ranges, lines) = parse_ranges(text).unwrap();
    assert_eq!(lines, 4);
    assert_eq!(ranges.len(), 3, "the /25 inside the /24 merges into it: {ranges:?}");
    let inside = |ip: &str| ranges.iter().any(|r| r.contains(ip.parse().unwrap()));
    assert!(inside("203.0.113.200") && inside("198.51.100.7") && inside("2001:db8:ffff::1"));
    assert!(inside("::ffff:203.0.113.9"), "an IPv4-mapped address is its IPv4 address");
    assert!(!inside("198.51.100.8") && !inside("2001:db9::1") && !inside("203.0.114.0"));
    assert_eq!(ranges[0].to_string(), "198.51.100.7");

    let errors = parse_ranges("10.0.0.0/8\n10.0.0.0/33\n# fine\nnot-an-ip\n").unwrap_err();
    assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 4]);
    assert!(errors[1].message.contains("not-an-ip"), "{errors:?}");
    assert_eq!(parse_ranges("# nothing\n\n").unwrap(), (Vec::new(), 0));
}

#[test]
fn blocklisted_addresses_reject_by_default_and_data_centres_only_flag() {
    let settings = FraudSettings::default();
    let listed = |list, source| {
        let ip: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        let range = parse_ranges("203.0.113.0/24").unwrap().0[0];
        ListedIp { list, ip, source, range }
    };
    let judge_listed = |found: &[ListedIp]| {
        judge(
            &settings,
            &Facts {
                event: EventKind::Registration,
                shared: &[],
                click_to_conversion: None,
                occurred_at: at(),
                affiliate_logins: &[],
                bot_click: None,
                listed_ips: found,
                bursts: &[],
                fast_click: None,
                user_agent: None,
                promo_code: None,
                promo_claims: &[],
            },
        )
    };
    let datacenter = judge_listed(&[listed(IpList::Datacenter, IpSource::Postback)]);
    assert_eq!(datacenter.flags.len(), 1);
    assert_eq!(
        (datacenter.flags[0].rule, datacenter.action, datacenter.risk),
        (Rule::DatacenterIp, Some(Action::Flag), 40)
    );
    assert!(datacenter.flags[0].evidence.contains("postback's ip 203.0.113.9"), "{datacenter:?}");
    assert!(datacenter.flags[0].evidence.contains("203.0.113.0–203.0.113.255"), "{datacenter:?}");
    let blocked =
        judge_listed(&[listed(IpList::Vpn, IpSource::Click), listed(IpList::Blocklist, IpSource::Click)]);
    assert_eq!(blocked.rejection_reason().as_deref(), Some("fraud:blocklisted_ip"));
    assert_eq!(blocked.flags.len(), 2);
}

#[test]
fn a_bot_click_is_flagged_with_its_user_agent() {
    let bot = bot();
    let verdict = judge(
        &FraudSettings::default(),
        &Facts {
            event: EventKind::Registration,
            shared: &[],
            click_to_conversion: None,
            occurred_at: at(),
            affiliate_logins: &[],
            bot_click: Some(&bot),
            listed_ips: &[],
            bursts: &[],
            fast_click: None,
            user_agent: None,
            promo_code: None,
            promo_claims: &[],
        },
    );
    assert_eq!(verdict.flags.len(), 1);
    assert_eq!((verdict.flags[0].rule, verdict.risk), (Rule::BotTraffic, 70));
    assert!(
        verdict.flags[0].evidence.contains("Googlebot/2.1") && verdict.flags[0].evidence.contains("clk-1")
    );
}

#[test]
fn new_rule_settings_out_of_range_name_the_field_and_old_rows_take_the_defaults() {
    let mut settings = FraudSettings::default();
    settings.blocklisted_ip.score = 101;
    assert_eq!(settings.validate().unwrap_err().field(), "blocklistedIp.score");
    let stored = r#"{"self_referral": {"enabled": false, "score": 1, "action": "flag"}}"#;
    let settings: FraudSettings = serde_json::from_str(stored).unwrap();
    assert_eq!(settings.bot_traffic, FraudSettings::default().bot_traffic);
    assert_eq!(settings.blocklisted_ip.action, Action::Reject);
    assert!(!settings.self_referral.enabled);
}

#[test]
fn velocity_counts_this_registration_with_the_others_of_the_hour() {
    let settings = FraudSettings::default();
    let judge_burst = |event, others| {
        let bursts = [Burst { signal: "device_id", others }, Burst { signal: "ip", others: 0 }];
        judge(
            &settings,
            &Facts {
                event,
                shared: &[],
                click_to_conversion: None,
                occurred_at: at(),
                affiliate_logins: &[],
                bot_click: None,
                listed_ips: &[],
                bursts: &bursts,
                fast_click: None,
                user_agent: None,
                promo_code: None,
                promo_claims: &[],
            },
        )
    };
    // The limit is 5: the fifth registration is allowed, the sixth is not.
    assert!(judge_burst(EventKind::Registration, 4).flags.is_empty());
    let over = judge_burst(EventKind::Registration, 5);
    assert_eq!((over.flags.len(), over.flags[0].rule, over.risk), (1, Rule::Velocity, 50));
    assert!(
        over.flags[0].evidence.contains("6 registrations") && over.flags[0].evidence.contains("device_id")
    );
    assert!(judge_burst(EventKind::Deposit, 50).flags.is_empty(), "only registrations count");
    let fast = judge(
        &settings,
        &Facts {
            event: EventKind::Ftd,
            shared: &[],
            click_to_conversion: None,
            occurred_at: at(),
            affiliate_logins: &[],
            bot_click: None,
            listed_ips: &[],
            bursts: &[],
            fast_click: Some("clk-fast"),
            user_agent: None,
            promo_code: None,
            promo_claims: &[],
        },
    );
    assert_eq!(fast.flags.len(), 1, "a conversion naming a click beyond the limit: {fast:?}");
    assert!(fast.flags[0].evidence.contains("clk-fast"));
    let bad = FraudSettings { registrations_per_hour: 0, ..FraudSettings::default() };
    assert_eq!(bad.validate().unwrap_err().field(), "registrationsPerHour");
}

fn promo_claims(link: PromoLink, others: usize) -> Vec<PromoClaim> {
    (0..others).map(|i| PromoClaim { link, other_player: format!("p{i}") }).collect()
}

fn promo_facts<'a>(claims: &'a [PromoClaim]) -> Facts<'a> {
    Facts {
        event: EventKind::Ftd,
        shared: &[],
        click_to_conversion: None,
        occurred_at: at(),
        affiliate_logins: &[],
        bot_click: None,
        listed_ips: &[],
        bursts: &[],
        fast_click: None,
        user_agent: None,
        promo_code: Some("WELCOME100"),
        promo_claims: claims,
    }
}

#[test]
fn promo_abuse_counts_this_player_with_the_others_of_one_link() {
    let settings = FraudSettings::default();
    assert_eq!(settings.promo_claims_limit, 3);
    // Two others on one IP: three players, the limit, allowed.
    assert!(judge(&settings, &promo_facts(&promo_claims(PromoLink::Ip, 2))).flags.is_empty());
    // Three others: four players of one IP.
    let over = judge(&settings, &promo_facts(&promo_claims(PromoLink::Ip, 3)));
    assert_eq!((over.flags.len(), over.flags[0].rule, over.risk), (1, Rule::PromoAbuse, 60));
    assert_eq!(
        over.flags[0].evidence,
        "promo code `WELCOME100` claimed by 4 players of one IP (limit 3); the others: p0, p1, p2"
    );
    // Two on an IP and two on a device are not one link: no flag.
    let mut split = promo_claims(PromoLink::Ip, 2);
    split.extend(promo_claims(PromoLink::Device, 2));
    assert!(judge(&settings, &promo_facts(&split)).flags.is_empty());
    // One player found twice on one link counts once.
    let twice = [
        PromoClaim { link: PromoLink::Cluster, other_player: "a".into() },
        PromoClaim { link: PromoLink::Cluster, other_player: "a".into() },
        PromoClaim { link: PromoLink::Cluster, other_player: "b".into() },
    ];
    assert!(judge(&settings, &promo_facts(&twice)).flags.is_empty());
    // Without a promo code the claims say nothing.
    let claims = promo_claims(PromoLink::Device, 9);
    assert!(judge(&settings, &Facts { promo_code: None, ..promo_facts(&claims) }).flags.is_empty());
    let cluster = judge(&settings, &promo_facts(&promo_claims(PromoLink::Cluster, 3)));
    assert!(cluster.flags[0].evidence.contains("of one cluster"), "{cluster:?}");
}

#[test]
fn promo_settings_out_of_range_name_the_field() {
    for (settings, field) in [
        (FraudSettings { promo_claims_limit: 0, ..FraudSettings::default() }, "promoClaimsLimit"),
        (FraudSettings { promo_window_hours: 0, ..FraudSettings::default() }, "promoWindowHours"),
        (FraudSettings { promo_window_hours: 8_761, ..FraudSettings::default() }, "promoWindowHours"),
        (
            FraudSettings {
                click_spamming: ClickSpamming { threshold_percent: 101, ..ClickSpamming::default() },
                ..FraudSettings::default()
            },
            "clickSpamming.thresholdPercent",
        ),
        (
            FraudSettings {
                click_spamming: ClickSpamming { min_conversions: 0, ..ClickSpamming::default() },
                ..FraudSettings::default()
            },
            "clickSpamming.minConversions",
        ),
    ] {
        assert_eq!(settings.validate().unwrap_err().field(), field);
    }
    let mut promo = FraudSettings::default();
    promo.promo_abuse.score = 101;
    assert_eq!(promo.validate().unwrap_err().field(), "promoAbuse.score");
    // Settings stored before these rules existed take their defaults.
    let old: FraudSettings = serde_json::from_str(r#"{"registrations_per_hour":7}"#).unwrap();
    assert_eq!((old.promo_claims_limit, old.promo_window_hours), (3, 720));
    assert_eq!(old.click_spamming, ClickSpamming::default());
}

#[test]
fn self_referral_names_the_device_when_the_login_had_the_players_user_agent() {
    let settings = FraudSettings::default();
    let affiliate = AffiliateId::new();
    let logins = [AffiliateLogin { affiliate, last_seen_at: at(), user_agent: Some("Agent/1".into()) }];
    let facts = |user_agent| Facts {
        event: EventKind::Registration,
        shared: &[],
        click_to_conversion: None,
        occurred_at: at(),
        affiliate_logins: &logins,
        bot_click: None,
        listed_ips: &[],
        bursts: &[],
        fast_click: None,
        user_agent,
        promo_code: None,
        promo_claims: &[],
    };
    let same = judge(&settings, &facts(Some("Agent/1")));
    assert_eq!(same.flags[0].rule, Rule::SelfReferral);
    assert!(same.flags[0].evidence.contains("the player's device (its IP and user agent `Agent/1`)"));
    let other = judge(&settings, &facts(Some("Agent/2")));
    assert!(other.flags[0].evidence.contains("from the player's IP on"), "{other:?}");
    assert!(judge(&settings, &facts(None)).flags[0].evidence.contains("from the player's IP on"));
}

#[test]
fn ctit_buckets_have_their_edges_where_named() {
    let secs = TimeDelta::seconds;
    assert_eq!(CtitBucket::of(secs(-5)), CtitBucket::Under10s);
    assert_eq!(CtitBucket::of(TimeDelta::milliseconds(9_999)), CtitBucket::Under10s);
    assert_eq!(CtitBucket::of(secs(10)), CtitBucket::Under1m);
    assert_eq!(CtitBucket::of(secs(60)), CtitBucket::Under1h);
    assert_eq!(CtitBucket::of(secs(3_600)), CtitBucket::Under24h);
    assert_eq!(CtitBucket::of(secs(86_399)), CtitBucket::Under24h);
    assert_eq!(CtitBucket::of(secs(86_400)), CtitBucket::Over24h);
    for bucket in CtitBucket::ALL {
        assert_eq!(CtitBucket::parse(bucket.as_str()), Some(bucket));
    }
}

#[test]
fn click_spamming_needs_enough_conversions_and_more_than_the_share() {
    let check = ClickSpamming::default();
    let counts = |fast: u64, late: u64| {
        let mut counts = CtitCounts::default();
        counts.add(CtitBucket::Under1h, fast);
        counts.add(CtitBucket::Over24h, late);
        counts
    };
    assert!(!check.flags(&counts(7, 3)), "10 conversions: too few to judge");
    assert!(!check.flags(&counts(14, 6)), "exactly 30 % is not over 30 %");
    assert!(check.flags(&counts(13, 7)), "35 % of 20");
    assert!(!ClickSpamming { enabled: false, ..check }.flags(&counts(0, 100)));
    assert_eq!(rate(7, 20), rust_decimal::Decimal::new(35, 2));
    assert_eq!(rate(1, 3), rust_decimal::Decimal::new(3333, 4));
    assert_eq!(rate(5, 0), rust_decimal::Decimal::ZERO);
}

#[test]
fn bonus_only_needs_a_bonus_and_deposits_under_the_floor() {
    let d = |v: i64| rust_decimal::Decimal::from(v);
    let floor = FraudSettings::default().bonus_only_deposit_floor;
    assert_eq!(floor, d(10));
    assert_eq!(
        bonus_only(floor, "WELCOME", d(50), d(5)).as_deref(),
        Some(
            "bonus-only: claimed promo code `WELCOME` with a bonus of 50, deposited 5 by the period's close (floor 10)"
        )
    );
    assert!(bonus_only(floor, "WELCOME", d(50), d(10)).is_none(), "the floor itself is enough");
    assert!(bonus_only(floor, "WELCOME", d(0), d(0)).is_none(), "no bonus, no bonus-only");
    let negative = FraudSettings { bonus_only_deposit_floor: d(-1), ..FraudSettings::default() };
    assert_eq!(negative.validate().unwrap_err().field(), "bonusOnlyDepositFloor");
}

#[test]
fn an_alert_mail_waits_an_hour_after_the_last_one_of_its_rule_and_affiliate() {
    assert!(alert_mail_due(None, at()));
    assert!(!alert_mail_due(Some(at() - TimeDelta::minutes(59)), at()));
    assert!(alert_mail_due(Some(at() - TimeDelta::hours(1)), at()));
}

proptest! {
    #[test]
    fn ctit_buckets_never_go_down_as_time_goes_up(a in -100_000i64..200_000, b in -100_000i64..200_000) {
        let (low, high) = (a.min(b), a.max(b));
        prop_assert!(CtitBucket::of(TimeDelta::seconds(low)) <= CtitBucket::of(TimeDelta::seconds(high)));
    }

    #[test]
    fn click_spamming_matches_the_share_and_only_grows_with_late_conversions(
        fast in 0u64..200, late in 0u64..200, percent in 0u8..=100, min in 1u32..100,
    ) {
        let check = ClickSpamming { enabled: true, threshold_percent: percent, min_conversions: min };
        let mut counts = CtitCounts::default();
        counts.add(CtitBucket::Under10s, fast);
        counts.add(CtitBucket::Over24h, late);
        let timed = fast + late;
        let expected = timed >= u64::from(min) && (late as f64) / (timed as f64) * 100.0 > f64::from(percent) + 1e-9;
        prop_assert_eq!(check.flags(&counts), expected);
        let mut more = counts;
        more.add(CtitBucket::Over24h, 1);
        prop_assert!(!check.flags(&counts) || check.flags(&more));
    }

    #[test]
    fn promo_abuse_flags_exactly_when_one_link_has_more_players_than_the_limit(
        ip in 0usize..8, device in 0usize..8, cluster in 0usize..8, limit in 1u32..8,
    ) {
        let settings = FraudSettings { promo_claims_limit: limit, ..FraudSettings::default() };
        let mut claims = promo_claims(PromoLink::Ip, ip);
        claims.extend(promo_claims(PromoLink::Device, device));
        claims.extend(promo_claims(PromoLink::Cluster, cluster));
        let flagged = judge(&settings, &promo_facts(&claims)).flags.iter().any(|f| f.rule == Rule::PromoAbuse);
        let worst = ip.max(device).max(cluster) as u64 + 1;
        prop_assert_eq!(flagged, worst > u64::from(limit));
    }
}

#[test]
fn a_rule_switched_off_needs_none_of_its_lookups() {
    let mut settings = FraudSettings::default();
    assert!(settings.checks_clusters() && settings.checks_logins());
    settings.multi_accounting.enabled = false;
    assert!(settings.checks_clusters(), "promo abuse still counts claims by cluster");
    settings.promo_abuse.enabled = false;
    assert!(!settings.checks_clusters());
    settings.self_referral.enabled = false;
    assert!(!settings.checks_logins());
}
