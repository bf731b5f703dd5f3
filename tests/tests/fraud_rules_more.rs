//! The fraud rules of issue 10's second half through the real binary: promo abuse and
//! self-referral by device on `/postback`, the per-affiliate fraud report with its CTIT
//! buckets and click spamming (also on review items), the new settings, and the live
//! `fraudAlerts` subscription over a real WebSocket.

use std::time::Duration;

use chrono::Datelike;

use clickledger_e2e::tenant::{Link, Tenant, run_as};
use clickledger_e2e::ws::{GqlWs, WsProtocol};
use clickledger_e2e::{PASSWORD, TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

/// A tenant with click injection off (its registrations follow their clicks at once), one
/// affiliate who can log in, a campaign and a link to it.
async fn program<'a>(app: &'a TestApp, slug: &str) -> (Tenant<'a>, String, Link) {
    let t = Tenant::create(app, slug).await;
    let affiliate = t.create_affiliate("Partner", true).await;
    let campaign = t.create_campaign("Casino", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    (t, affiliate, link)
}

async fn update_settings(t: &Tenant<'_>, input: Value) -> Value {
    t.app
        .graphql(
            Some(&t.token),
            "mutation($i: UpdateFraudSettingsInput!) { updateFraudSettings(input: $i) {
                promoAbuse { enabled score action } promoClaimsLimit promoWindowHours
                clickSpamming { enabled thresholdPercent minConversions } } }",
            json!({ "i": input }),
        )
        .await
}

/// A click through `link`, then a postback naming it with `params`; returns the answer.
async fn convert(t: &Tenant<'_>, link: &Link, params: &[(&str, &str)]) -> Value {
    let click_id = t.app.click(&link.code, "", None).await.click_id();
    let mut all = vec![("click_id", click_id.as_str())];
    all.extend_from_slice(params);
    t.postback_ok(&all).await
}

fn rules_of(answer: &Value) -> Vec<String> {
    answer["flags"]
        .as_array()
        .unwrap_or_else(|| panic!("no flags in {answer}"))
        .iter()
        .map(|flag| flag["rule"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn evidence_of<'v>(answer: &'v Value, rule: &str) -> &'v str {
    answer["flags"]
        .as_array()
        .and_then(|flags| flags.iter().find(|flag| flag["rule"] == rule))
        .and_then(|flag| flag["evidence"].as_str())
        .unwrap_or_else(|| panic!("no {rule} flag in {answer}"))
}

#[tokio::test]
async fn new_settings_have_their_defaults_and_bad_values_name_the_field() {
    let app = spawn_app!().await;
    let (t, _, _) = program(&app, "promoset").await;
    let defaults = run_as(
        &app,
        &t.token,
        "{ fraudSettings { promoAbuse { enabled score action } promoClaimsLimit promoWindowHours
            clickSpamming { enabled thresholdPercent minConversions } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        defaults["fraudSettings"],
        json!({
            "promoAbuse": {"enabled": true, "score": 60, "action": "FLAG"},
            "promoClaimsLimit": 3, "promoWindowHours": 720,
            "clickSpamming": {"enabled": true, "thresholdPercent": 30, "minConversions": 20},
        })
    );
    for (input, field) in [
        (json!({"promoClaimsLimit": 0}), "promoClaimsLimit"),
        (json!({"promoClaimsLimit": -1}), "promoClaimsLimit"),
        (json!({"promoWindowHours": 8761}), "promoWindowHours"),
        (json!({"promoAbuse": {"score": 101}}), "promoAbuse.score"),
        (json!({"clickSpamming": {"thresholdPercent": 101}}), "clickSpamming.thresholdPercent"),
        (json!({"clickSpamming": {"minConversions": 0}}), "clickSpamming.minConversions"),
    ] {
        let answer = update_settings(&t, input.clone()).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{input}: {answer}");
        assert_eq!(error_field(&answer), Some(field), "{input}: {answer}");
    }
    let unknown = update_settings(&t, json!({"promoLimit": 2})).await;
    assert!(unknown["errors"][0]["message"].as_str().is_some_and(|m| m.contains("promoLimit")), "{unknown}");
    let updated = update_settings(
        &t,
        json!({"promoAbuse": {"action": "HOLD"}, "promoClaimsLimit": 2, "clickSpamming": {"minConversions": 5}}),
    )
    .await;
    assert_eq!(
        updated["data"]["updateFraudSettings"],
        json!({
            "promoAbuse": {"enabled": true, "score": 60, "action": "HOLD"},
            "promoClaimsLimit": 2, "promoWindowHours": 720,
            "clickSpamming": {"enabled": true, "thresholdPercent": 30, "minConversions": 5},
        }),
        "{updated}"
    );
}

#[tokio::test]
async fn one_promo_code_claimed_by_too_many_players_of_one_ip_device_or_cluster_is_promo_abuse() {
    let app = spawn_app!().await;
    let (t, _, link) = program(&app, "promo").await;
    let off = json!({"clickInjection": {"enabled": false}});
    assert!(
        t.app
            .graphql(
                Some(&t.token),
                "mutation($i: UpdateFraudSettingsInput!) { updateFraudSettings(input: $i) { ftdFloorSecs } }",
                json!({"i": off})
            )
            .await["errors"]
            .is_null()
    );

    // Limit 3 (the default): three players of one IP claim WELCOME, the fourth is too many.
    let claim = |player: &'static str, ip: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let (t, link) = (&t, &link);
        async move {
            let mut params = vec![
                ("event", "registration"),
                ("player_id", player),
                ("ip", ip),
                ("promo_code", "WELCOME"),
                ("bonus_amount", "50"),
            ];
            params.extend(extra);
            convert(t, link, &params).await
        }
    };
    for player in ["p1", "p2", "p3"] {
        let answer = claim(player, "198.51.100.20", vec![]).await;
        assert_eq!(rules_of(&answer), Vec::<String>::new(), "{player}: {answer}");
    }
    let fourth = claim("p4", "198.51.100.20", vec![]).await;
    assert_eq!(rules_of(&fourth), ["promo_abuse"], "{fourth}");
    assert_eq!(fourth["risk"], 60);
    assert_eq!(
        evidence_of(&fourth, "promo_abuse"),
        "promo code `WELCOME` claimed by 4 players of one IP (limit 3); the others: p1, p2, p3"
    );
    // Another code from the same address is another matter; so is the same code elsewhere.
    let other_code = convert(
        &t,
        &link,
        &[("event", "registration"), ("player_id", "p5"), ("ip", "198.51.100.20"), ("promo_code", "SPRING")],
    )
    .await;
    assert_eq!(rules_of(&other_code), Vec::<String>::new(), "{other_code}");
    let elsewhere = claim("p6", "203.0.113.50", vec![]).await;
    assert_eq!(rules_of(&elsewhere), Vec::<String>::new(), "{elsewhere}");

    // One device, different addresses: the device links them (limit lowered to 1).
    let limit = update_settings(&t, json!({"promoClaimsLimit": 1})).await;
    assert!(limit["errors"].is_null(), "{limit}");
    let first = claim("d1", "192.0.2.1", vec![("device_id", "phone-7")]).await;
    assert_eq!(rules_of(&first), Vec::<String>::new(), "{first}");
    let second = claim("d2", "192.0.2.2", vec![("device_id", "phone-7")]).await;
    // The shared device is also multi-accounting, so d1 is in d2's cluster too.
    assert_eq!(rules_of(&second), ["multi_accounting", "promo_abuse"], "{second}");
    assert_eq!(
        evidence_of(&second, "promo_abuse"),
        "promo code `WELCOME` claimed by 2 players of one cluster (limit 1); the others: d1; \
         promo code `WELCOME` claimed by 2 players of one device (limit 1); the others: d1"
    );

    // A cluster: two players sharing an e-mail hash, nothing else, claim one code.
    let code = |player: &'static str, ip: &'static str| {
        let (t, link) = (&t, &link);
        async move {
            convert(
                t,
                link,
                &[
                    ("event", "registration"),
                    ("player_id", player),
                    ("ip", ip),
                    ("email_hash", "same-mail"),
                    ("promo_code", "VIP"),
                ],
            )
            .await
        }
    };
    assert_eq!(rules_of(&code("c1", "192.0.2.10").await), Vec::<String>::new());
    let linked = code("c2", "192.0.2.11").await;
    assert_eq!(rules_of(&linked), ["multi_accounting", "promo_abuse"], "{linked}");
    assert_eq!(
        evidence_of(&linked, "promo_abuse"),
        "promo code `VIP` claimed by 2 players of one cluster (limit 1); the others: c1"
    );

    // The rule's action applies: HOLD books the commission held (the conversion stays).
    let hold = update_settings(&t, json!({"promoAbuse": {"action": "HOLD"}})).await;
    assert!(hold["errors"].is_null(), "{hold}");
    let held = claim("d3", "192.0.2.3", vec![("device_id", "phone-7")]).await;
    assert_eq!(held["fraud_action"], "hold", "{held}");
    // Storage reads no more other players than the limit needs (here 1) to decide.
    assert!(evidence_of(&held, "promo_abuse").contains("2 players of one device (limit 1)"), "{held}");
}

/// Logs the affiliate in with a `User-Agent`, as its browser would.
async fn login_with_agent(t: &Tenant<'_>, agent: &str) {
    let response = t
        .app
        .client
        .post(t.app.url("/graphql"))
        .header("User-Agent", agent)
        .json(&json!({
            "query": "mutation($i: LoginInput!) { login(input: $i) { token } }",
            "variables": { "i": { "tenantSlug": t.slug, "email": t.affiliate_email("Partner"), "password": PASSWORD } },
        }))
        .send()
        .await
        .expect("login request");
    let answer: Value = response.json().await.expect("login answer");
    assert!(answer["data"]["login"]["token"].is_string(), "{answer}");
}

#[tokio::test]
async fn a_player_on_the_device_its_affiliate_logs_in_from_is_self_referral_naming_the_device() {
    let app = spawn_app!().await;
    let (t, _, link) = program(&app, "selfdev").await;
    // The affiliate logs in from loopback with its phone's browser.
    login_with_agent(&t, "PartnerPhone/1.0 (Android 14)").await;
    let later = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let same_device = convert(
        &t,
        &link,
        &[
            ("event", "registration"),
            ("player_id", "cousin"),
            ("ip", "127.0.0.1"),
            ("user_agent", "PartnerPhone/1.0 (Android 14)"),
            ("occurred_at", &later),
        ],
    )
    .await;
    assert_eq!(rules_of(&same_device), ["self_referral"], "{same_device}");
    let evidence = evidence_of(&same_device, "self_referral");
    assert!(
        evidence.contains(
            "logged in from the player's device (its IP and user agent `PartnerPhone/1.0 (Android 14)`)"
        ),
        "{evidence}"
    );
    // The same address with another browser is the address only.
    let same_ip = convert(
        &t,
        &link,
        &[
            ("event", "registration"),
            ("player_id", "neighbour"),
            ("ip", "127.0.0.1"),
            ("user_agent", "Desktop/2.0"),
            ("occurred_at", &later),
        ],
    )
    .await;
    let evidence = evidence_of(&same_ip, "self_referral");
    assert!(evidence.contains("logged in from the player's IP on"), "{evidence}");
    assert!(!evidence.contains("device"), "{evidence}");
}

#[tokio::test]
async fn the_fraud_report_counts_flags_and_ctit_per_affiliate_and_flags_click_spamming() {
    let app = spawn_app!().await;
    let (t, spammer, spam_link) = program(&app, "report").await;
    let honest = t.create_affiliate("Honest", false).await;
    let campaign = t.create_campaign("Poker", json!({})).await;
    let honest_link = t.create_link(&honest, &campaign).await;
    let set =
        update_settings(&t, json!({"clickSpamming": {"minConversions": 4, "thresholdPercent": 30}})).await;
    assert!(set["errors"].is_null(), "{set}");

    let at = |offset: chrono::Duration| (chrono::Utc::now() + offset).to_rfc3339();
    // The spammer: one registration at once (click injection, under 10 s) and three deposits
    // a day and more after their clicks: 3 of 4 late, over 30 %.
    let injected = convert(&t, &spam_link, &[("event", "registration"), ("player_id", "s1")]).await;
    assert_eq!(rules_of(&injected), ["click_injection"], "{injected}");
    for (n, hours) in [(2, 25), (3, 30), (4, 48)] {
        let txn = format!("dep-{n}");
        let player = format!("s{n}");
        let occurred = at(chrono::Duration::hours(hours));
        let answer = convert(
            &t,
            &spam_link,
            &[
                ("event", "deposit"),
                ("player_id", &player),
                ("txn_id", &txn),
                ("amount", "10"),
                ("currency", "EUR"),
                ("occurred_at", &occurred),
            ],
        )
        .await;
        assert_eq!(rules_of(&answer), Vec::<String>::new(), "{answer}");
    }
    // The honest affiliate: one deposit half an hour after its click.
    let occurred = at(chrono::Duration::minutes(30));
    convert(
        &t,
        &honest_link,
        &[
            ("event", "deposit"),
            ("player_id", "h1"),
            ("txn_id", "dep-h"),
            ("amount", "5"),
            ("currency", "EUR"),
            ("occurred_at", &occurred),
        ],
    )
    .await;

    let today = chrono::Utc::now().date_naive().to_string();
    let report = run_as(
        &app,
        &t.token,
        "query($f: NaiveDate!, $t: NaiveDate!) { fraudReport(from: $f, to: $t) {
            affiliateId affiliateName conversions flagged flaggedRate rules { rule flagged rate }
            ctit { under10s under1m under1h under24h over24h } clickSpamming } }",
        json!({"f": today, "t": today}),
    )
    .await;
    let lines = report["fraudReport"].as_array().expect("report lines");
    let line = |id: &str| {
        lines.iter().find(|l| l["affiliateId"] == id).unwrap_or_else(|| panic!("{id} in {report}"))
    };
    assert_eq!(
        line(&spammer),
        &json!({
            "affiliateId": spammer, "affiliateName": "Partner", "conversions": 4, "flagged": 1,
            "flaggedRate": "0.25", "rules": [{"rule": "CLICK_INJECTION", "flagged": 1, "rate": "0.25"}],
            "ctit": {"under10s": 1, "under1m": 0, "under1h": 0, "under24h": 0, "over24h": 3},
            "clickSpamming": true,
        })
    );
    assert_eq!(
        line(&honest),
        &json!({
            "affiliateId": honest, "affiliateName": "Honest", "conversions": 1, "flagged": 0,
            "flaggedRate": "0", "rules": [],
            "ctit": {"under10s": 0, "under1m": 0, "under1h": 1, "under24h": 0, "over24h": 0},
            "clickSpamming": false,
        })
    );
    // A period without conversions has no lines.
    let empty = run_as(
        &app,
        &t.token,
        "{ fraudReport(from: \"2026-01-01\", to: \"2026-01-31\") { affiliateId } }",
        json!({}),
    )
    .await;
    assert_eq!(empty["fraudReport"], json!([]));

    // The review item of the injected registration carries the affiliate's flag.
    let review = run_as(
        &app,
        &t.token,
        "{ fraudReview { nodes { conversion { id } affiliateFlags { affiliateId flag evidence } } } }",
        json!({}),
    )
    .await;
    let nodes = review["fraudReview"]["nodes"].as_array().expect("review nodes");
    assert_eq!(nodes.len(), 1, "{review}");
    let flags = &nodes[0]["affiliateFlags"];
    assert_eq!(flags[0]["affiliateId"], spammer.as_str(), "{review}");
    assert_eq!(flags[0]["flag"], "CLICK_SPAMMING");
    assert!(flags[0]["evidence"].as_str().is_some_and(|e| e.starts_with("3 of 4 conversions")), "{review}");

    // Bad periods name the field; affiliates may not read it.
    let backwards = app
        .graphql(
            Some(&t.token),
            "{ fraudReport(from: \"2026-02-02\", to: \"2026-02-01\") { affiliateId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (error_code(&backwards), error_field(&backwards)),
        (Some("BAD_USER_INPUT"), Some("to")),
        "{backwards}"
    );
    let too_long = app
        .graphql(
            Some(&t.token),
            "{ fraudReport(from: \"2025-01-01\", to: \"2026-02-05\") { affiliateId } }",
            json!({}),
        )
        .await;
    assert_eq!(error_field(&too_long), Some("to"), "{too_long}");
    let partner = t.login_affiliate("Partner").await;
    let forbidden = app
        .graphql(
            Some(&partner),
            &format!("{{ fraudReport(from: \"{today}\", to: \"{today}\") {{ affiliateId }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&forbidden), Some("FORBIDDEN"), "{forbidden}");
}

const ALERTS: &str = "subscription { fraudAlerts { cursor conversionId risk action affiliateIds \
    flags { rule score action evidence } conversion { id playerId } } }";
const PATIENCE: Duration = Duration::from_secs(10);

/// A registration at once after its click: click injection, flagged.
async fn injected(t: &Tenant<'_>, link: &Link, player: &str) -> String {
    let answer = convert(t, link, &[("event", "registration"), ("player_id", player)]).await;
    assert_eq!(rules_of(&answer), ["click_injection"], "{answer}");
    answer["conversion_id"].as_str().expect("conversion id").to_owned()
}

#[tokio::test]
async fn staff_get_each_flagged_conversion_of_their_tenant_live_and_nothing_else() {
    let app = spawn_app!().await;
    let (t, partner_id, link) = program(&app, "alerts").await;
    let (other, _, other_link) = program(&app, "alerts-other").await;

    // Affiliates may not subscribe.
    let partner = t.login_affiliate("Partner").await;
    let mut refused = GqlWs::connect(&app, Some(&partner), WsProtocol::TransportWs).await;
    let sub = refused.subscribe(ALERTS, json!({})).await;
    let answer = refused.next_for(&sub, PATIENCE).await.expect("an answer");
    let message = answer.expect_err("refused");
    let error = &message["payload"];
    let error = if error.is_array() { &error[0] } else { &error["errors"][0] };
    assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{message}");

    let mut ws = GqlWs::connect(&app, Some(&t.token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(ALERTS, json!({})).await;
    // The stream starts "from now", at a moment the protocol does not tell: flagged probes
    // until one arrives, then the ones in flight drained.
    let mut probes = Vec::new();
    loop {
        probes.push(injected(&t, &link, &format!("probe-{}", probes.len())).await);
        if let Some(Ok(data)) = ws.next_for(&sub, Duration::from_millis(300)).await {
            assert!(probes.iter().any(|id| data["fraudAlerts"]["conversionId"] == id.as_str()), "{data}");
            break;
        }
        assert!(probes.len() < 30, "the subscription never went live");
    }
    while let Some(Ok(data)) = ws.next_for(&sub, Duration::from_millis(500)).await {
        assert!(probes.iter().any(|id| data["fraudAlerts"]["conversionId"] == id.as_str()), "{data}");
    }

    // A clean conversion, another tenant's flagged one, then ours: only ours arrives.
    let clean = convert(
        &t,
        &link,
        &[
            ("event", "deposit"),
            ("player_id", "clean"),
            ("txn_id", "c-1"),
            ("amount", "5"),
            ("currency", "EUR"),
        ],
    )
    .await;
    assert_eq!(rules_of(&clean), Vec::<String>::new(), "{clean}");
    injected(&other, &other_link, "elsewhere").await;
    let flagged = injected(&t, &link, "fast").await;
    let alert = ws.expect_data(&sub, PATIENCE).await["fraudAlerts"].clone();
    assert_eq!(alert["conversionId"], flagged.as_str(), "{alert}");
    assert_eq!(alert["conversion"], json!({"id": flagged, "playerId": "fast"}));
    assert_eq!(alert["action"], "FLAG");
    assert_eq!(alert["risk"], 50);
    assert_eq!(alert["affiliateIds"], json!([partner_id]));
    assert_eq!(alert["flags"][0]["rule"], "CLICK_INJECTION");
    assert_eq!(alert["flags"][0]["score"], 50);
    assert!(alert["cursor"].as_str().is_some_and(|c| c.starts_with('c')), "{alert}");
    assert!(ws.next_for(&sub, Duration::from_millis(500)).await.is_none(), "nothing else");
}

#[tokio::test]
async fn fraud_alerts_are_mailed_to_owners_at_most_once_an_hour_per_rule_and_affiliate() {
    let Some(sink) = clickledger_e2e::smtp::SmtpSink::start().await else {
        assert!(std::env::var("CI").is_err(), "python3-aiosmtpd is required in CI");
        eprintln!("SKIPPED: no python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        return;
    };
    let url = sink.url();
    let app = spawn_app!("--smtp-url", &url, "--mail-from", "Clickledger <noreply@clickledger.test>").await;
    let (t, _, link) = program(&app, "alertmail").await;
    let other = t.create_affiliate("Other", false).await;
    let campaign = t.create_campaign("Bingo", json!({})).await;
    let other_link = t.create_link(&other, &campaign).await;

    // Two click injections by Partner within the hour: one e-mail. One by Other: another.
    let first = injected(&t, &link, "m1").await;
    injected(&t, &link, "m2").await;
    injected(&t, &other_link, "m3").await;
    sink.wait_for(2, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mails: Vec<_> =
        sink.messages().into_iter().filter(|m| m.subject.starts_with("Fraud alert")).collect();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let partner =
        mails.iter().find(|m| m.subject == "Fraud alert: Partner (click_injection)").expect("Partner's");
    assert_eq!(partner.to, format!("owner@{}.test", t.slug));
    assert!(partner.text.contains(&first), "the first alert names its conversion: {}", partner.text);
    assert!(mails.iter().any(|m| m.subject == "Fraud alert: Other (click_injection)"), "{mails:?}");
}

/// `YYYY-MM` of last month (UTC).
fn last_month() -> String {
    let today = chrono::Utc::now().date_naive();
    let first = today.with_day(1).expect("day 1");
    (first - chrono::Duration::days(1)).format("%Y-%m").to_string()
}

#[tokio::test]
async fn closing_a_period_flags_the_players_who_took_a_bonus_and_deposited_under_the_floor() {
    let app = spawn_app!().await;
    let (t, _, link) = program(&app, "bonusonly").await;
    let campaign = t.run("{ campaigns { nodes { id } } }", json!({})).await["campaigns"]["nodes"][0]["id"]
        .as_str()
        .expect("campaign")
        .to_owned();
    // A plan in force long before, so last month's deposits are booked (the ledger's player
    // facts are what the check reads).
    let plan = t
        .run(
            "mutation($i: CreateCommissionPlanInput!) { createCommissionPlan(input: $i) { id } }",
            json!({"i": {"name": "CPA", "effectiveFrom": "2000-01-01T00:00:00Z",
                         "rules": {"currency": "EUR", "cpa": {"amount": "30"}}}}),
        )
        .await["createCommissionPlan"]["id"]
        .as_str()
        .expect("plan")
        .to_owned();
    t.run(
        "mutation($i: AssignCommissionPlanInput!) { assignCommissionPlan(input: $i) { id } }",
        json!({"i": {"planId": plan, "campaignId": campaign, "effectiveFrom": "2000-01-01T00:00:00Z"}}),
    )
    .await;
    let month = last_month();
    let occurred = format!("{month}-15T12:00:00Z");
    // Each player registers through the link now, then claims a bonus with a first deposit
    // reported for last month: b-low deposits 5 (under the floor of 10), b-high 100, and
    // b-none claims a code without a bonus.
    let mut claims = Vec::new();
    for (player, amount, bonus) in
        [("b-low", "5", Some("50")), ("b-high", "100", Some("50")), ("b-none", "1", None)]
    {
        convert(&t, &link, &[("event", "registration"), ("player_id", player)]).await;
        let txn = format!("ftd-{player}");
        let mut params = vec![
            ("player_id", player),
            ("event", "ftd"),
            ("txn_id", txn.as_str()),
            ("amount", amount),
            ("currency", "EUR"),
            ("occurred_at", occurred.as_str()),
            ("promo_code", "WELCOME"),
            ("ip", "192.0.2.77"),
        ];
        if let Some(bonus) = bonus {
            params.push(("bonus_amount", bonus));
        }
        let answer = t.postback_ok(&params).await;
        assert!(!rules_of(&answer).contains(&"promo_abuse".to_owned()), "{answer}");
        claims.push(answer["conversion_id"].as_str().expect("conversion id").to_owned());
    }
    // The rule's other settings do not matter here: only the floor.
    let limit = update_settings(&t, json!({"promoClaimsLimit": 100})).await;
    assert!(limit["errors"].is_null(), "{limit}");

    let close = "mutation($p: String!) { closePeriod(period: $p) { id } }";
    t.run(close, json!({"p": month})).await;
    t.run(close, json!({"p": month})).await;
    let flags_of = |id: &str| {
        let (app, token) = (&app, &t.token);
        let id = id.to_owned();
        async move {
            run_as(app, token, "query($id: ID!) { conversion(id: $id) { risk fraudAction fraudFlags { rule action evidence } } }", json!({"id": id}))
                .await["conversion"]
                .clone()
        }
    };
    let low = flags_of(&claims[0]).await;
    let flags = low["fraudFlags"].as_array().expect("flags");
    let bonus_only: Vec<_> = flags.iter().filter(|f| f["rule"] == "PROMO_ABUSE").collect();
    assert_eq!(bonus_only.len(), 1, "flagged once, closing twice: {low}");
    assert_eq!(bonus_only[0]["action"], "FLAG");
    assert_eq!(
        bonus_only[0]["evidence"],
        "bonus-only: claimed promo code `WELCOME` with a bonus of 50, deposited 5 by the period's close (floor 10)"
    );
    assert_eq!(low["fraudAction"], "FLAG");
    assert!(low["risk"].as_i64().is_some_and(|risk| risk >= 60), "{low}");
    for id in &claims[1..] {
        let other = flags_of(id).await;
        assert!(
            !other["fraudFlags"].as_array().expect("flags").iter().any(|f| f["rule"] == "PROMO_ABUSE"),
            "{other}"
        );
    }
    // It is in the review queue.
    let review = run_as(
        &app,
        &t.token,
        "{ fraudReview(filter: {rule: PROMO_ABUSE}) { nodes { conversion { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(review["fraudReview"]["nodes"], json!([{"conversion": {"id": claims[0]}}]), "{review}");
}
