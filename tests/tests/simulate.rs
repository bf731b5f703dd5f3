//! `clickledger simulate` against a running server: clicks and conversions arrive, and the
//! demo's commission plan pays for them.

use std::process::{Output, Stdio};
use std::time::Duration;

use clickledger_e2e::spawn_app;
use serde_json::json;
use tokio::process::Command;

/// Runs `simulate` against `app`'s server and database, with the harness's secret key.
async fn simulate(app: &clickledger_e2e::TestApp, extra: &[&str]) -> Output {
    let mut command = Command::new(app.binary());
    command
        .args(["simulate", "--url", &app.base, "--database-url", &app.database_url])
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("CLICKLEDGER_SECRET_KEY", clickledger_e2e::SECRET_KEY)
        .env_remove("CLICKLEDGER_SIMULATE_API_KEY")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("simulate finishes")
        .expect("the binary runs")
}

/// The value after `label` on the first banner line that starts with it.
fn banner_value(app: &clickledger_e2e::TestApp, label: &str) -> String {
    app.stdout
        .iter()
        .map(|line| line.trim())
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` in {:?}", app.stdout))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn simulate_sends_clicks_and_conversions_with_the_demos_key() {
    let app = spawn_app!().await;
    // Registrations come 0.5–4 s after a quarter of the clicks: over 5 s some surely come due,
    // even on a busy machine (2 s once left none, with 100 clicks).
    let out = simulate(&app, &["--duration", "5", "--rate", "50"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "simulate failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("simulate finished:"), "{stdout}");

    let owner = banner_value(&app, "owner ");
    let (email, password) = owner.split_once(" / ").expect("e-mail / password");
    let token = app.login_token("demo", email.trim(), password.trim()).await;
    let data = app
        .ok(
            Some(&token),
            "query($input: StatsInput!) { stats(input: $input) { rows { affiliateId } totals { clicks registrations commission } } }",
            json!({ "input": {
                "from": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
                "to": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
                "groupBy": ["AFFILIATE"],
            }}),
        )
        .await;
    let totals = &data["stats"]["totals"];
    assert!(totals["clicks"].as_i64().unwrap() >= 50, "about 250 clicks in 5 s at 50/s: {data}");
    assert!(totals["registrations"].as_i64().unwrap() >= 1, "{data}");
    let commission: f64 = totals["commission"].as_str().unwrap().parse().unwrap();
    assert!(commission > 0.0, "the demo's plan pays: {data}");
    assert_eq!(
        data["stats"]["rows"].as_array().unwrap().len(),
        2,
        "both demo affiliates get traffic: {data}"
    );
}

#[tokio::test]
async fn simulate_stops_at_once_on_a_refused_key() {
    let app = spawn_app!().await;
    let out = simulate(
        &app,
        &["--duration", "20", "--rate", "100", "--api-key", "clk_NotAKeyNotAKeyNotAKeyNotAKeyNotAKey123"],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the API key"), "{stderr}");

    // Without a tenant to click for, it says so.
    let out = simulate(&app, &["--duration", "1", "--tenant", "nobody"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant `nobody`"));
}
