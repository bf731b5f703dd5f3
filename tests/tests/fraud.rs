//! Fraud rules through the real binary: signals on `/postback`, verdicts in the answer and on
//! the conversion, per-tenant settings, and what each action does to status and commission.

use clickledger_e2e::tenant::{Tenant, run_as};
use clickledger_e2e::{TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

const FRAUD_FIELDS: &str = "{ conversions(first: 100) { nodes { txnId playerId status risk fraudAction rejectionReason \
    fraudFlags { rule score action evidence } } } }";

async fn fraud_view(app: &TestApp, token: &str) -> Vec<Value> {
    run_as(app, token, FRAUD_FIELDS, json!({})).await["conversions"]["nodes"]
        .as_array()
        .expect("conversion nodes")
        .clone()
}

async fn update_settings(t: &Tenant<'_>, input: Value) -> Value {
    t.app
        .graphql(
            Some(&t.token),
            "mutation($i: UpdateFraudSettingsInput!) { updateFraudSettings(input: $i) {
                multiAccounting { enabled score action } clickInjection { enabled score action }
                registrationFloorSecs ftdFloorSecs } }",
            json!({ "i": input }),
        )
        .await
}

/// A tenant with one affiliate (who can log in), a campaign and a link to it.
async fn program<'a>(app: &'a TestApp, slug: &str) -> (Tenant<'a>, String, String) {
    let t = Tenant::create(app, slug).await;
    let affiliate = t.create_affiliate("Partner", true).await;
    let campaign = t.create_campaign("Casino", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    (t, campaign, link.code)
}

#[tokio::test]
async fn players_sharing_a_device_are_linked_with_evidence_that_affiliates_never_see() {
    let app = spawn_app!().await;
    let (t, _, code) = program(&app, "multi").await;
    let defaults = run_as(
        &app,
        &t.token,
        "{ fraudSettings { multiAccounting { enabled score action } clickInjection { enabled } registrationFloorSecs ftdFloorSecs } }",
        json!({}),
    )
    .await;
    assert_eq!(
        defaults["fraudSettings"],
        json!({"multiAccounting": {"enabled": true, "score": 60, "action": "FLAG"},
               "clickInjection": {"enabled": true}, "registrationFloorSecs": 10, "ftdFloorSecs": 30})
    );
    // Registrations here follow their clicks at once: only multi-accounting is under test.
    let updated = update_settings(&t, json!({ "clickInjection": { "enabled": false } })).await;
    assert_eq!(updated["data"]["updateFraudSettings"]["clickInjection"]["enabled"], false, "{updated}");

    let register = |player: &'static str, signals: Vec<(&'static str, &'static str)>| {
        let t = &t;
        let app = &app;
        let code = code.clone();
        async move {
            let click_id = app.click(&code, "", None).await.click_id();
            let mut params =
                vec![("click_id", click_id.as_str()), ("player_id", player), ("event", "registration")];
            params.extend(signals);
            t.postback_ok(&params).await
        }
    };
    let first =
        register("p1", vec![("device_id", "dev-1"), ("email_hash", "e-1"), ("ip", "203.0.113.7")]).await;
    assert_eq!((first["risk"].clone(), first["flags"].clone()), (json!(0), json!([])), "{first}");
    // A second player on the same device, with a different e-mail: one flag, naming p1.
    let second = register("p2", vec![("device_id", "dev-1"), ("email_hash", "e-2")]).await;
    assert_eq!(second["risk"], 60, "{second}");
    assert_eq!(second["fraud_action"], "flag");
    assert_eq!(second["status"], "approved", "a flag changes nothing but the record");
    let flags = second["flags"].as_array().expect("flags");
    assert_eq!(flags.len(), 1, "{second}");
    assert_eq!(flags[0]["rule"], "multi_accounting");
    let evidence = flags[0]["evidence"].as_str().expect("evidence");
    assert!(evidence.contains("device_id") && evidence.contains("p1"), "{evidence}");
    assert!(!evidence.contains("e-1"), "only the shared signal is named: {evidence}");
    // A cluster links both ways: p1's next conversion on that device names p2.
    let again = t
        .postback_ok(&[
            ("player_id", "p1"),
            ("event", "deposit"),
            ("txn_id", "d1"),
            ("amount", "10"),
            ("currency", "EUR"),
            ("device_id", "dev-1"),
        ])
        .await;
    assert!(again["flags"][0]["evidence"].as_str().is_some_and(|e| e.contains("p2")), "{again}");
    // A player alone on its device: its own earlier signals are no evidence.
    let third = register("p3", vec![("device_id", "dev-3")]).await;
    assert_eq!(third["risk"], 0, "{third}");
    let third_again = t
        .postback_ok(&[
            ("player_id", "p3"),
            ("event", "deposit"),
            ("txn_id", "d3"),
            ("amount", "10"),
            ("currency", "EUR"),
            ("device_id", "dev-3"),
        ])
        .await;
    assert_eq!(third_again["risk"], 0, "{third_again}");

    // Another tenant's player on the same device is no evidence here, nor this one there.
    let (other, _, other_code) = program(&app, "multi-other").await;
    let click_id = app.click(&other_code, "", None).await.click_id();
    let elsewhere = other
        .postback_ok(&[
            ("click_id", &click_id),
            ("player_id", "p9"),
            ("event", "deposit"),
            ("txn_id", "x"),
            ("amount", "5"),
            ("currency", "EUR"),
            ("device_id", "dev-1"),
        ])
        .await;
    assert_eq!(elsewhere["risk"], 0, "signals never link players across tenants: {elsewhere}");

    // Staff see the verdict on the conversion; the affiliate sees its conversions, no evidence.
    let staff = fraud_view(&app, &t.token).await;
    let p2 = staff.iter().find(|c| c["playerId"] == "p2").expect("p2's registration");
    assert_eq!(p2["risk"], 60);
    assert_eq!(p2["fraudAction"], "FLAG");
    assert_eq!(p2["fraudFlags"][0]["rule"], "MULTI_ACCOUNTING");
    assert_eq!(p2["fraudFlags"][0]["action"], "FLAG");
    let partner = t.login_affiliate("Partner").await;
    let seen = fraud_view(&app, &partner).await;
    assert_eq!(seen.len(), 5, "the affiliate's registrations and deposits: {seen:?}");
    for conversion in &seen {
        assert_eq!((conversion["risk"].clone(), conversion["fraudFlags"].clone()), (json!(0), json!([])));
        assert!(conversion["playerId"].is_null());
    }
}

#[tokio::test]
async fn actions_reject_and_hold_what_the_rules_catch() {
    let app = spawn_app!().await;
    let (t, campaign, code) = program(&app, "actions").await;
    t.create_default_plan(&campaign, "CPA", json!({ "currency": "EUR", "cpa": { "amount": "50" } })).await;
    let updated = update_settings(
        &t,
        json!({ "clickInjection": { "action": "REJECT", "score": 90 }, "multiAccounting": { "action": "HOLD" } }),
    )
    .await;
    assert!(updated["errors"].is_null(), "{updated}");

    // Registered within a second of the click: click injection, rejected, nothing booked.
    let click_id = app.click(&code, "", None).await.click_id();
    let injected =
        t.postback_ok(&[("click_id", &click_id), ("player_id", "fast"), ("event", "registration")]).await;
    assert_eq!(injected["status"], "rejected", "{injected}");
    assert_eq!(injected["rejection_reason"], "fraud:click_injection");
    assert_eq!(injected["risk"], 90);

    // An FTD two minutes after its click, by a player paying with another player's card: held.
    let click_id = app.click(&code, "", None).await.click_id();
    let later = (chrono::Utc::now() + chrono::Duration::minutes(2)).to_rfc3339();
    let honest = t
        .postback_ok(&[
            ("click_id", &click_id),
            ("player_id", "a"),
            ("event", "ftd"),
            ("txn_id", "f-a"),
            ("amount", "100"),
            ("currency", "EUR"),
            ("payment_hash", "card-1"),
            ("occurred_at", &later),
        ])
        .await;
    assert_eq!((honest["risk"].clone(), honest["status"].clone()), (json!(0), json!("approved")), "{honest}");
    let click_id = app.click(&code, "", None).await.click_id();
    let held = t
        .postback_ok(&[
            ("click_id", &click_id),
            ("player_id", "b"),
            ("event", "ftd"),
            ("txn_id", "f-b"),
            ("amount", "100"),
            ("currency", "EUR"),
            ("payment_hash", "card-1"),
            ("occurred_at", &later),
        ])
        .await;
    assert_eq!(held["fraud_action"], "hold", "{held}");
    assert_eq!(held["status"], "approved", "a hold keeps the operator's status");

    let entries = t
        .run("{ commissions(first: 50) { edges { node { conversionId status amount } } } }", json!({}))
        .await;
    let status_of = |conversion: &Value| -> Vec<String> {
        entries["commissions"]["edges"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["node"]["conversionId"] == *conversion)
            .map(|e| e["node"]["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        status_of(&injected["conversion_id"]),
        Vec::<String>::new(),
        "a rejected conversion books nothing"
    );
    assert_eq!(status_of(&honest["conversion_id"]), vec!["APPROVED"], "{entries}");
    assert_eq!(status_of(&held["conversion_id"]), vec!["HELD"], "{entries}");
}

#[tokio::test]
async fn bad_signals_and_settings_are_refused_by_name() {
    let app = spawn_app!().await;
    let (t, _, _) = program(&app, "refused").await;
    let long = "h".repeat(129);
    for (field, value) in
        [("ip", "300.1.2.3"), ("email_hash", long.as_str()), ("device_id", "a\u{1}b"), ("bonus_amount", "-3")]
    {
        let (status, body) =
            t.postback(&[("player_id", "p"), ("event", "registration"), (field, value)]).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(body.to_string().contains(field), "{field} is named: {body}");
    }
    for (input, field) in [
        (json!({ "multiAccounting": { "score": 101 } }), "multiAccounting.score"),
        (json!({ "ftdFloorSecs": -1 }), "ftdFloorSecs"),
        (json!({ "registrationFloorSecs": 86_401 }), "registrationFloorSecs"),
    ] {
        let answer = update_settings(&t, input).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
        assert_eq!(error_field(&answer), Some(field), "{answer}");
    }
    // Only the owner changes the rules.
    let partner = {
        t.create_affiliate("Someone", true).await;
        t.login_affiliate("Someone").await
    };
    let answer = app.graphql(Some(&partner), "{ fraudSettings { ftdFloorSecs } }", json!({})).await;
    assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
}

#[tokio::test]
async fn a_player_on_the_address_its_affiliate_logs_in_from_is_self_referral() {
    let app = spawn_app!().await;
    let (t, _, code) = program(&app, "selfref").await;
    // The affiliate logs in from this test's address, loopback.
    t.login_affiliate("Partner").await;
    let click_id = app.click(&code, "", None).await.click_id();
    let later = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let own = t
        .postback_ok(&[
            ("click_id", &click_id),
            ("player_id", "cousin"),
            ("event", "registration"),
            ("ip", "127.0.0.1"),
            ("occurred_at", &later),
        ])
        .await;
    let flags = own["flags"].as_array().expect("flags");
    assert_eq!(flags.len(), 1, "{own}");
    assert_eq!(flags[0]["rule"], "self_referral");
    assert_eq!(own["risk"], 80);
    // Another address is no evidence.
    let click_id = app.click(&code, "", None).await.click_id();
    let stranger = t
        .postback_ok(&[
            ("click_id", &click_id),
            ("player_id", "stranger"),
            ("event", "registration"),
            ("ip", "198.51.100.4"),
            ("occurred_at", &later),
        ])
        .await;
    assert_eq!(stranger["risk"], 0, "{stranger}");
}
