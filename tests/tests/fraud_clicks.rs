//! Fraud rules on the click side through the real binary: what a click records (its
//! `Accept-Language`, whether its user agent is a bot's), BOT_TRAFFIC on the conversion that
//! names a bot's click, and the operator's address lists loaded with
//! `clickledger fraud import-ip-ranges` (DATACENTER_IP, VPN_IP, BLOCKLISTED_IP), and
//! VELOCITY on registrations.

use std::process::Output;
use std::time::Duration;

use clickledger_e2e::tenant::{ClickAnswer, Tenant};
use clickledger_e2e::{TestApp, error_code, error_field, spawn_app};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

/// A tenant with one affiliate, a campaign and a link to it; the link's code.
async fn program<'a>(app: &'a TestApp, slug: &str) -> (Tenant<'a>, String) {
    let t = Tenant::create(app, slug).await;
    let affiliate = t.create_affiliate("Partner", true).await;
    let campaign = t.create_campaign("Casino", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    (t, link.code)
}

/// `GET /c/{code}` with these request headers.
async fn click_with_headers(app: &TestApp, code: &str, headers: &[(&str, &str)]) -> ClickAnswer {
    let mut request = app.client.get(app.url(&format!("/c/{code}")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("click request");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ClickAnswer {
        status: response.status().as_u16(),
        location: header("location"),
        set_cookie: header("set-cookie"),
    }
}

/// A registration well after its click (no click injection), with extra parameters.
async fn register(t: &Tenant<'_>, click_id: Option<&str>, player: &str, extra: &[(&str, &str)]) -> Value {
    let later = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let mut params = vec![("player_id", player), ("event", "registration"), ("occurred_at", later.as_str())];
    if let Some(click_id) = click_id {
        params.push(("click_id", click_id));
    }
    params.extend_from_slice(extra);
    t.postback_ok(&params).await
}

fn rules(answer: &Value) -> Vec<String> {
    answer["flags"]
        .as_array()
        .unwrap_or_else(|| panic!("flags in {answer}"))
        .iter()
        .map(|flag| flag["rule"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs `clickledger fraud import-ip-ranges FILE --list LIST` against the app's database.
async fn import_ranges(app: &TestApp, file: &std::path::Path, list: &str) -> Output {
    let args =
        ["fraud".as_ref(), "import-ip-ranges".as_ref(), file.as_os_str(), "--list".as_ref(), list.as_ref()];
    app.host_command(&args).await
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the ranges file");
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_bots_click_is_marked_and_its_registration_flagged_bot_traffic() {
    let app = spawn_app!().await;
    let (t, code) = program(&app, "bots").await;
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let bot =
        click_with_headers(&app, &code, &[("User-Agent", googlebot), ("Accept-Language", "en-US")]).await;
    let browser = click_with_headers(
        &app,
        &code,
        &[
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            // A control character is stripped, as from every recorded field.
            ("Accept-Language", "de-CH,\tde;q=0.9"),
        ],
    )
    .await;
    let (bot_id, browser_id) = (bot.click_id(), browser.click_id());

    let flagged = register(&t, Some(&bot_id), "crawler", &[]).await;
    assert_eq!(rules(&flagged), vec!["bot_traffic"], "{flagged}");
    assert_eq!((flagged["risk"].clone(), flagged["status"].clone()), (json!(70), json!("approved")));
    let evidence = flagged["flags"][0]["evidence"].as_str().unwrap_or_default();
    assert!(evidence.contains("Googlebot") && evidence.contains(&bot_id), "{evidence}");
    let honest = register(&t, Some(&browser_id), "human", &[]).await;
    assert_eq!(honest["risk"], 0, "{honest}");

    // The click rows: the bot marked, the language kept without its control character.
    let db = Database::connect(&app.database_url).await.expect("connect to the test database");
    for (click_id, is_bot, language) in [(&bot_id, true, "en-US"), (&browser_id, false, "de-CH,de;q=0.9")] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT is_bot, accept_language FROM clicks WHERE click_id = '{click_id}'"),
            ))
            .await
            .expect("query the click")
            .expect("the click row");
        assert_eq!(row.try_get::<bool>("", "is_bot").unwrap(), is_bot, "{click_id}");
        assert_eq!(row.try_get::<Option<String>>("", "accept_language").unwrap().as_deref(), Some(language));
    }
    db.close().await.ok();

    // Switched off, the rule flags nothing.
    let off = t
        .run(
            "mutation { updateFraudSettings(input: { botTraffic: { enabled: false } }) { botTraffic { enabled } } }",
            json!({}),
        )
        .await;
    assert_eq!(off["updateFraudSettings"]["botTraffic"]["enabled"], false);
    let bot = click_with_headers(&app, &code, &[("User-Agent", googlebot)]).await;
    let unflagged = register(&t, Some(&bot.click_id()), "crawler-2", &[]).await;
    assert_eq!(unflagged["risk"], 0, "{unflagged}");
}

#[tokio::test]
async fn addresses_in_the_operators_lists_flag_or_reject_and_bad_files_change_nothing() {
    let app = spawn_app!().await;
    let (t, code) = program(&app, "lists").await;
    let files = tempfile::tempdir().expect("a temporary directory");

    let datacenters = write(
        &files,
        "datacenters.txt",
        "# cloud providers\n203.0.113.0/24\n\n2001:db8::/32   # v6 too\n203.0.113.128/25\n",
    );
    let loaded = import_ranges(&app, &datacenters, "datacenter").await;
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    assert!(text(&loaded.stdout).contains("3 ranges"), "{}", text(&loaded.stdout));

    let from_cloud = register(&t, None, "cloud", &[("ip", "203.0.113.77")]).await;
    assert_eq!(rules(&from_cloud), vec!["datacenter_ip"], "{from_cloud}");
    assert_eq!((from_cloud["risk"].clone(), from_cloud["status"].clone()), (json!(40), json!("approved")));
    let evidence = from_cloud["flags"][0]["evidence"].as_str().unwrap_or_default();
    assert!(evidence.contains("203.0.113.77") && evidence.contains("datacenter"), "{evidence}");
    let v6 = register(&t, None, "cloud-v6", &[("ip", "2001:db8:1::9")]).await;
    assert_eq!(rules(&v6), vec!["datacenter_ip"], "{v6}");
    let home = register(&t, None, "home", &[("ip", "198.51.100.4")]).await;
    assert_eq!(home["risk"], 0, "{home}");

    // A bad line: named with its file and line, and the list keeps what it held.
    let broken = write(&files, "broken.txt", "198.51.100.0/24\n# fine so far\n10.0.0.0/33\n");
    let refused = import_ranges(&app, &broken, "datacenter").await;
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("{}:3", broken.display())) && stderr.contains("10.0.0.0/33"),
        "{stderr}"
    );
    let still = register(&t, None, "cloud-2", &[("ip", "203.0.113.78")]).await;
    assert_eq!(rules(&still), vec!["datacenter_ip"], "nothing was written: {still}");
    let not_yet = register(&t, None, "home-2", &[("ip", "198.51.100.5")]).await;
    assert_eq!(not_yet["risk"], 0, "{not_yet}");

    // A re-import replaces the list.
    let moved = write(&files, "moved.txt", "198.51.100.0/24\n");
    assert!(import_ranges(&app, &moved, "datacenter").await.status.success());
    let now_listed = register(&t, None, "home-3", &[("ip", "198.51.100.6")]).await;
    assert_eq!(rules(&now_listed), vec!["datacenter_ip"], "{now_listed}");
    let no_longer = register(&t, None, "cloud-3", &[("ip", "203.0.113.79")]).await;
    assert_eq!(no_longer["risk"], 0, "{no_longer}");

    // The click's own address counts too: these tests click from loopback.
    let vpn = write(&files, "vpn.txt", "127.0.0.0/8\n::1/128\n");
    assert!(import_ranges(&app, &vpn, "vpn").await.status.success());
    let click_id = app.click(&code, "", None).await.click_id();
    let via_vpn = register(&t, Some(&click_id), "tunnel", &[]).await;
    assert_eq!(rules(&via_vpn), vec!["vpn_ip"], "{via_vpn}");
    assert!(via_vpn["flags"][0]["evidence"].as_str().unwrap_or_default().contains("click's ip"), "{via_vpn}");

    // The blocklist rejects by default, and books nothing.
    let blocked = write(&files, "blocklist.txt", "192.0.2.0/24\n");
    assert!(import_ranges(&app, &blocked, "blocklist").await.status.success());
    let refused = register(&t, None, "fraudster", &[("ip", "192.0.2.1")]).await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(refused["rejection_reason"], "fraud:blocklisted_ip");
    assert_eq!(refused["risk"], 100);

    // A tenant may switch a list's rule off or soften it; another tenant keeps its defaults.
    let softened = t
        .run(
            "mutation { updateFraudSettings(input: { blocklistedIp: { action: FLAG, score: 90 }, datacenterIp: { enabled: false } })
               { blocklistedIp { enabled score action } datacenterIp { enabled } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        softened["updateFraudSettings"],
        json!({"blocklistedIp": {"enabled": true, "score": 90, "action": "FLAG"}, "datacenterIp": {"enabled": false}})
    );
    let flagged_only = register(&t, None, "fraudster-2", &[("ip", "192.0.2.2")]).await;
    assert_eq!(
        (flagged_only["status"].clone(), flagged_only["risk"].clone()),
        (json!("approved"), json!(90))
    );
    let unlisted = register(&t, None, "home-4", &[("ip", "198.51.100.7")]).await;
    assert_eq!(unlisted["risk"], 0, "{unlisted}");
    let (other, _) = program(&app, "lists-other").await;
    let elsewhere = register(&other, None, "fraudster", &[("ip", "192.0.2.3")]).await;
    assert_eq!(elsewhere["status"], "rejected", "the other tenant's settings are its own: {elsewhere}");
}

#[tokio::test]
async fn the_new_rules_settings_have_defaults_and_bad_values_are_named() {
    let app = spawn_app!().await;
    let (t, _) = program(&app, "click-settings").await;
    let defaults = t
        .run(
            "{ fraudSettings { botTraffic { enabled score action } datacenterIp { enabled score action }
               vpnIp { enabled score action } blocklistedIp { enabled score action } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        defaults["fraudSettings"],
        json!({
            "botTraffic": {"enabled": true, "score": 70, "action": "FLAG"},
            "datacenterIp": {"enabled": true, "score": 40, "action": "FLAG"},
            "vpnIp": {"enabled": true, "score": 30, "action": "FLAG"},
            "blocklistedIp": {"enabled": true, "score": 100, "action": "REJECT"},
        })
    );
    for (input, field) in [
        (json!({ "botTraffic": { "score": 101 } }), "botTraffic.score"),
        (json!({ "datacenterIp": { "score": -1 } }), "datacenterIp.score"),
        (json!({ "vpnIp": { "score": 1000 } }), "vpnIp.score"),
        (json!({ "blocklistedIp": { "score": 101 } }), "blocklistedIp.score"),
        (json!({ "velocity": { "score": 101 } }), "velocity.score"),
        (json!({ "registrationsPerHour": 0 }), "registrationsPerHour"),
        (json!({ "registrationsPerHour": -1 }), "registrationsPerHour"),
        (json!({ "registrationsPerHour": 10_001 }), "registrationsPerHour"),
    ] {
        let answer = app
            .graphql(
                Some(&t.token),
                "mutation($i: UpdateFraudSettingsInput!) { updateFraudSettings(input: $i) { vpnIp { score } } }",
                json!({ "i": input }),
            )
            .await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
        assert_eq!(error_field(&answer), Some(field), "{answer}");
    }
}

#[tokio::test]
async fn too_many_registrations_an_hour_from_one_ip_or_device_are_velocity() {
    let app = spawn_app!().await;
    let (t, _) = program(&app, "velocity").await;
    let defaults = t
        .run("{ fraudSettings { velocity { enabled score action } registrationsPerHour } }", json!({}))
        .await;
    assert_eq!(
        defaults["fraudSettings"],
        json!({"velocity": {"enabled": true, "score": 50, "action": "FLAG"}, "registrationsPerHour": 5})
    );
    // Five registrations from one address are allowed; the sixth is one too many.
    for n in 0..5 {
        let answer = register(&t, None, &format!("farm-{n}"), &[("ip", "198.51.100.20")]).await;
        assert_eq!(answer["risk"], 0, "registration {n}: {answer}");
    }
    let sixth = register(&t, None, "farm-5", &[("ip", "198.51.100.20")]).await;
    assert_eq!(rules(&sixth), vec!["velocity"], "{sixth}");
    assert_eq!(sixth["risk"], 50);
    let evidence = sixth["flags"][0]["evidence"].as_str().unwrap_or_default();
    assert!(evidence.contains("6 registrations") && evidence.contains("ip"), "{evidence}");
    // Another address is its own count; so is another tenant.
    let elsewhere = register(&t, None, "lone", &[("ip", "198.51.100.21")]).await;
    assert_eq!(elsewhere["risk"], 0, "{elsewhere}");
    let (other, _) = program(&app, "velocity-other").await;
    let other_tenant = register(&other, None, "farm-9", &[("ip", "198.51.100.20")]).await;
    assert_eq!(other_tenant["risk"], 0, "counts are per tenant: {other_tenant}");

    // One device, the limit lowered to 2: the third player on it is flagged. A deposit is
    // never velocity.
    let lowered = t.run("mutation { updateFraudSettings(input: { registrationsPerHour: 2, multiAccounting: { enabled: false } }) { registrationsPerHour } }", json!({})).await;
    assert_eq!(lowered["updateFraudSettings"]["registrationsPerHour"], 2);
    for n in 0..2 {
        let answer = register(&t, None, &format!("phone-{n}"), &[("device_id", "dev-velocity")]).await;
        assert_eq!(answer["risk"], 0, "{answer}");
    }
    let third = register(&t, None, "phone-2", &[("device_id", "dev-velocity")]).await;
    assert_eq!(rules(&third), vec!["velocity"], "{third}");
    assert!(third["flags"][0]["evidence"].as_str().unwrap_or_default().contains("device_id"), "{third}");
    let deposit = t
        .postback_ok(&[
            ("player_id", "phone-2"),
            ("event", "deposit"),
            ("txn_id", "dep-1"),
            ("amount", "10"),
            ("currency", "EUR"),
            ("device_id", "dev-velocity"),
        ])
        .await;
    assert_eq!(deposit["risk"], 0, "{deposit}");
}

#[tokio::test]
async fn clicks_beyond_the_limit_a_minute_are_marked_and_their_conversions_flagged() {
    let app = spawn_app!("--clicks-per-minute-per-address", "3").await;
    let (t, code) = program(&app, "click-velocity").await;
    // Clear of a minute's turn, where the count starts again.
    let second = chrono::Utc::now().timestamp() % 60;
    if second > 55 {
        tokio::time::sleep(Duration::from_secs(u64::try_from(61 - second).unwrap_or(6))).await;
    }
    let mut clicks = Vec::new();
    for _ in 0..5 {
        clicks.push(app.click(&code, "", None).await.click_id());
    }
    app.wait_for_recorded_clicks(5.0).await;
    let db = Database::connect(&app.database_url).await.expect("connect to the test database");
    let mut marked = Vec::new();
    for click_id in &clicks {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT velocity FROM clicks WHERE click_id = '{click_id}'"),
            ))
            .await
            .expect("query the click")
            .expect("the click row");
        marked.push(row.try_get::<bool>("", "velocity").unwrap());
    }
    db.close().await.ok();
    assert_eq!(marked, vec![false, false, false, true, true], "the fourth click on and after");

    let within = register(&t, Some(&clicks[0]), "first", &[]).await;
    assert_eq!(within["risk"], 0, "{within}");
    let beyond = register(&t, Some(&clicks[4]), "fifth", &[]).await;
    assert_eq!(rules(&beyond), vec!["velocity"], "{beyond}");
    assert!(beyond["flags"][0]["evidence"].as_str().unwrap_or_default().contains(&clicks[4]), "{beyond}");
}
