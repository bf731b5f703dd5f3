//! `--geoip-db`: a click's country comes from its address (MaxMind's own test database, see
//! `tests/fixtures/GeoIP2-Country-Test.md`), `stats` counts clicks under it, and a conversion
//! without the postback's `country` takes its click's. A file that is not a database stops the
//! start-up with an error naming the flag.

use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use clickledger_e2e::tenant::Tenant;
use clickledger_e2e::{JWT_SECRET, TestApp, spawn_app};
use clickledger_persistence::test_support::TestDatabase;
use serde_json::{Value, json};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/GeoIP2-Country-Test.mmdb");

const BY_COUNTRY: &str = "query($input: StatsInput!) { stats(input: $input) {
    rows { country metrics { clicks registrations } } } }";

/// A click from `address` (the test server believes `X-Forwarded-For` from loopback).
async fn click_from(app: &TestApp, code: &str, address: Option<&str>) -> String {
    let mut request = app.client.get(app.url(&format!("/c/{code}")));
    if let Some(address) = address {
        request = request.header("X-Forwarded-For", address);
    }
    let response = request.send().await.expect("click");
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    location.split("cid=").nth(1).unwrap().split('&').next().unwrap().to_owned()
}

/// (country, clicks, registrations) of every row, sorted.
async fn by_country(tenant: &Tenant<'_>) -> Vec<(Option<String>, i64, i64)> {
    let now = Utc::now();
    let input = json!({ "input": {
        "from": (now - chrono::Duration::hours(2)).to_rfc3339(),
        "to": (now + chrono::Duration::hours(2)).to_rfc3339(),
        "groupBy": ["COUNTRY"],
    } });
    let answer = tenant.run(BY_COUNTRY, input).await;
    let rows = answer["stats"]["rows"].as_array().unwrap_or_else(|| panic!("no rows: {answer}"));
    let mut rows: Vec<_> = rows
        .iter()
        .map(|row: &Value| {
            (
                row["country"].as_str().map(str::to_owned),
                row["metrics"]["clicks"].as_i64().unwrap(),
                row["metrics"]["registrations"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn clicks_and_their_conversions_count_under_the_country_of_the_address() {
    let app = spawn_app!("--geoip-db", FIXTURE, "--trusted-proxies", "127.0.0.1/32").await;
    let tenant = Tenant::create(&app, "geoip").await;
    let affiliate = tenant.create_affiliate("globe", false).await;
    let campaign = tenant.create_campaign("World", json!({})).await;
    let link = tenant.create_link(&affiliate, &campaign).await;

    let british = click_from(&app, &link.code, Some("81.2.69.160")).await;
    let swedish = click_from(&app, &link.code, Some("89.160.20.112")).await;
    click_from(&app, &link.code, Some("2001:218::1")).await;
    // Loopback is in no database: no country.
    click_from(&app, &link.code, None).await;
    app.wait_for_recorded_clicks(4.0).await;
    // Without `country` the registration takes its click's; with one, the postback's wins.
    tenant.postback_ok(&[("click_id", &british), ("event", "registration"), ("player_id", "gb")]).await;
    tenant
        .postback_ok(&[
            ("click_id", &swedish),
            ("event", "registration"),
            ("player_id", "de"),
            ("country", "DE"),
        ])
        .await;

    let expected = vec![
        (None, 1, 0),
        (Some("DE".to_owned()), 0, 1),
        (Some("GB".to_owned()), 1, 1),
        (Some("JP".to_owned()), 1, 0),
        (Some("SE".to_owned()), 1, 0),
    ];
    assert_eq!(by_country(&tenant).await, expected);
}

#[tokio::test]
async fn without_the_flag_clicks_have_no_country() {
    let app = spawn_app!("--trusted-proxies", "127.0.0.1/32").await;
    let tenant = Tenant::create(&app, "no-geoip").await;
    let affiliate = tenant.create_affiliate("globe", false).await;
    let campaign = tenant.create_campaign("World", json!({})).await;
    let link = tenant.create_link(&affiliate, &campaign).await;
    click_from(&app, &link.code, Some("81.2.69.160")).await;
    app.wait_for_recorded_clicks(1.0).await;
    assert_eq!(by_country(&tenant).await, vec![(None, 1, 0)]);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_stops_the_start_naming_the_flag() {
    let database = TestDatabase::create("geoip-bad").await;
    for path in ["/nonexistent/GeoLite2-Country.mmdb", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickledger-under-test"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &database.url])
            .args(["--jwt-secret", JWT_SECRET, "--geoip-db", path])
            .env("CLICKLEDGER_SECRET_KEY", clickledger_e2e::SECRET_KEY)
            .env("CLICKLEDGER_NO_DEMO", "true")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output =
            tokio::time::timeout(Duration::from_secs(60), output).await.expect("exits").expect("runs");
        assert!(!output.status.success(), "started with --geoip-db {path}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--geoip-db") && stderr.contains(path), "{stderr}");
    }
}
