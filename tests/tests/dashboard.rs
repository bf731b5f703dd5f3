//! The dashboard in a real browser: headless Chromium driven through chromedriver
//! (WebDriver). An owner signs in, a postback arrives, and the tiles and the live ticker show
//! it within 2 s; an affiliate signs in and sees its own numbers and links only. Without a
//! browser the test says it is skipped and why, except under CI (`CI` set), where a missing
//! browser is a failure (`.ci/run` installs Debian's `chromium` and `chromium-driver`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clickledger_e2e::spawn_app;
use clickledger_e2e::tenant::{PASSWORD, Tenant};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The flags Chromium needs here: no sandbox as root, no GPU, and nothing that talks to the
/// outside world on its own.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// How long a postback may take to show on the dashboard.
const LIVE_WITHIN: Duration = Duration::from_secs(2);

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::iter::once(PathBuf::from("/usr/bin")).chain(std::env::split_paths(&path)) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Chromium and chromedriver, or why not: under CI a missing browser fails the test.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find_program(&["chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        (chromium, driver) => {
            let missing = [("chromium", chromium.is_none()), ("chromedriver", driver.is_none())]
                .iter()
                .filter(|(_, missing)| *missing)
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(" and ");
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {missing} is missing: `apt-get install -y chromium chromium-driver`"
            );
            eprintln!(
                "SKIPPED: the dashboard browser test needs {missing} (Debian: `apt-get install -y chromium chromium-driver`)"
            );
            None
        }
    }
}

/// chromedriver on a free loopback port, and a WebDriver session with a fresh profile.
struct Browser {
    client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(chromium: &Path, driver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|flag| flag.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium.to_string_lossy(), "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("no WebDriver session within 30 s: {err}"),
            }
        };
        Browser { client, _driver: driver, _profile: profile }
    }

    /// `textContent` of the first element matching `css`, or `None`.
    async fn text(&self, css: &str) -> Option<String> {
        let value = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )
            .await
            .expect("run a script in the page");
        value.as_str().map(str::to_owned)
    }

    /// Waits until the text of `css` satisfies `ok`; returns it, or panics after `within`.
    async fn wait_for(&self, css: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text(css).await;
            if let Some(text) = &text
                && ok(text)
            {
                return text.clone();
            }
            assert!(Instant::now() < deadline, "`{css}` is {text:?} after {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn tile(&self, metric: &str) -> String {
        self.text(&format!("#tile-{metric} [data-metric]")).await.unwrap_or_default()
    }

    async fn wait_tile(&self, metric: &str, expected: &str, within: Duration) {
        self.wait_for(&format!("#tile-{metric} [data-metric]"), within, |text| text == expected).await;
    }

    async fn sign_in(&self, base: &str, tenant: &str, email: &str, password: &str) {
        self.client.goto(&format!("{base}/dashboard")).await.expect("open the dashboard");
        for (id, value) in [("tenant", tenant), ("email", email), ("password", password)] {
            let input = self.client.find(Locator::Id(id)).await.expect("a sign-in field");
            input.clear().await.unwrap();
            input.send_keys(value).await.unwrap();
        }
        self.client
            .find(Locator::Css("#login-form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_for("#live-state", Duration::from_secs(10), |state| state == "live").await;
    }

    async fn page_text(&self) -> String {
        let value = self.client.execute("return document.body.textContent;", vec![]).await.unwrap();
        value.as_str().unwrap_or_default().to_owned()
    }
}

/// A click on `code`; returns its click ID.
async fn click(tenant: &Tenant<'_>, code: &str, query: &str) -> String {
    tenant.app.click(code, query, None).await.click_id()
}

#[tokio::test]
async fn owners_see_postbacks_within_two_seconds_and_affiliates_only_their_own() {
    let Some((chromium, driver)) = browser() else { return };
    let app = spawn_app!("--no-demo").await;
    let tenant = Tenant::create(&app, "dash").await;
    // A name with markup: the page must show it as text.
    let ann = tenant.create_affiliate("ann", true).await;
    let bob = tenant.create_affiliate("bob", true).await;
    tenant
        .run(
            "mutation($id: ID!, $input: UpdateAffiliateInput!) { updateAffiliate(id: $id, input: $input) { id } }",
            json!({ "id": bob, "input": { "name": "Bob <b>Media</b>" } }),
        )
        .await;
    let campaign = tenant.create_campaign("Casino", json!({})).await;
    tenant.create_default_plan(&campaign, "CPL", json!({ "currency": "USD", "cpl": "3" })).await;
    let ann_link = tenant.create_link(&ann, &campaign).await;
    let bob_link = tenant.create_link(&bob, &campaign).await;

    // Bob's player, before anyone looks.
    let bob_click = click(&tenant, &bob_link.code, "sub1=bob-sub").await;
    tenant.postback_ok(&[("event", "registration"), ("click_id", &bob_click), ("player_id", "p-bob")]).await;
    tenant
        .postback_ok(&[
            ("event", "ftd"),
            ("player_id", "p-bob"),
            ("txn_id", "t-bob-1"),
            ("amount", "777.77"),
            ("currency", "USD"),
        ])
        .await;

    // The page itself: no data, no inline script, a strict policy.
    let page = app.client.get(app.url("/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>") && html.contains("src=\"/dashboard/assets/dashboard.js\""), "{html}");
    let script = app.client.get(app.url("/dashboard/assets/dashboard.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(!script.text().await.unwrap().contains("innerHTML"), "data is shown with textContent only");
    let missing = app.client.get(app.url("/dashboard/assets/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let browser = Browser::start(&chromium, &driver).await;

    // The owner.
    browser.sign_in(&app.base, "dash", "owner@dash.test", PASSWORD).await;
    browser.wait_tile("registrations", "1", Duration::from_secs(5)).await;
    assert_eq!(browser.tile("depositAmount").await, "777.77");
    assert_eq!(browser.tile("commission").await, "3.00");
    browser
        .wait_for("#top-affiliates", Duration::from_secs(5), |text| text.contains("Bob <b>Media</b>"))
        .await;
    assert!(browser.text("#top-subs").await.unwrap_or_default().contains("bob-sub"));
    assert!(browser.text("#hourly svg").await.is_some(), "the hourly chart is drawn");

    let ann_click = click(&tenant, &ann_link.code, "sub1=ann-sub&creative=banner-1&lp=lp-a").await;
    tenant.postback_ok(&[("event", "registration"), ("click_id", &ann_click), ("player_id", "p-ann")]).await;
    let sent = Instant::now();
    browser.wait_tile("registrations", "2", LIVE_WITHIN).await;
    browser
        .wait_for("#ticker", LIVE_WITHIN.saturating_sub(sent.elapsed()), |t| t.contains("registration"))
        .await;
    assert!(sent.elapsed() <= LIVE_WITHIN, "the tiles and the ticker took {:?}", sent.elapsed());

    tenant
        .postback_ok(&[
            ("event", "ftd"),
            ("player_id", "p-ann"),
            ("txn_id", "t-ann-1"),
            ("amount", "100.00"),
            ("currency", "USD"),
        ])
        .await;
    let sent = Instant::now();
    browser.wait_tile("depositAmount", "877.77", LIVE_WITHIN).await;
    browser
        .wait_for("#ticker li", Duration::from_millis(100), |t| t.contains("ftd") && t.contains("100.00"))
        .await;
    assert_eq!(browser.tile("ftds").await, "2");
    assert!(sent.elapsed() <= LIVE_WITHIN, "the deposit took {:?}", sent.elapsed());

    // Signing out forgets everything.
    browser.client.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
    browser.wait_for("#tiles", Duration::from_secs(2), str::is_empty).await;

    // Ann: her own numbers, links, creatives and landing pages; nothing of Bob's.
    browser.sign_in(&app.base, "dash", &tenant.affiliate_email("ann"), PASSWORD).await;
    browser.wait_tile("depositAmount", "100.00", Duration::from_secs(5)).await;
    assert_eq!(browser.tile("registrations").await, "1");
    assert_eq!(browser.tile("commission").await, "3.00");
    browser.wait_for("#links", Duration::from_secs(5), |text| text.contains(&ann_link.code)).await;
    browser.wait_for("#creatives", Duration::from_secs(5), |text| text.contains("banner-1")).await;
    assert!(browser.text("#landing-pages").await.unwrap_or_default().contains("lp-a"));
    let text = browser.page_text().await;
    for foreign in ["777.77", bob_link.code.as_str(), "Bob", "bob-sub"] {
        assert!(!text.contains(foreign), "Ann's dashboard shows Bob's `{foreign}`: {text}");
    }

    // Live: Bob's deposit never reaches Ann's ticker; hers does, within 2 s.
    tenant
        .postback_ok(&[
            ("event", "deposit"),
            ("player_id", "p-bob"),
            ("txn_id", "t-bob-2"),
            ("amount", "333.33"),
            ("currency", "USD"),
        ])
        .await;
    tenant
        .postback_ok(&[
            ("event", "deposit"),
            ("player_id", "p-ann"),
            ("txn_id", "t-ann-2"),
            ("amount", "50.00"),
            ("currency", "USD"),
        ])
        .await;
    let sent = Instant::now();
    browser.wait_tile("depositAmount", "150.00", LIVE_WITHIN).await;
    browser.wait_for("#ticker", LIVE_WITHIN, |t| t.contains("50.00")).await;
    assert!(sent.elapsed() <= LIVE_WITHIN, "Ann's deposit took {:?}", sent.elapsed());
    let ticker = browser.text("#ticker").await.unwrap_or_default();
    assert!(!ticker.contains("333.33"), "Bob's deposit on Ann's ticker: {ticker}");

    let operator_only: Value = browser
        .client
        .execute("return document.getElementById('operator-only').hidden;", vec![])
        .await
        .unwrap();
    assert_eq!(operator_only, json!(true), "the operator's panels are hidden from affiliates");
    browser.client.close().await.unwrap();
}
