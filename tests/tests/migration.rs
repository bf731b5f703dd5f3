//! Migrating from another tracker end to end: `clickledger import` of the small program in
//! `tests/fixtures/migration/program` (three affiliates, one a sub-affiliate, two campaigns,
//! four old links, ten players, opening balances with negative carryovers) into a tenant of a
//! running server; then old links redirect and record, a bound player's deposit credits its old
//! affiliate, and the opening balances are in the ledger.

use std::process::Output;

use clickledger_e2e::tenant::{Tenant, run_as};
use clickledger_e2e::{TestApp, spawn_app};
use serde_json::{Value, json};

const PROGRAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/migration/program");
const BROKEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/migration/broken");
/// The old system's conversions of the worked example, for the reconciliation.
const RECONCILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/migration/reconcile");

/// Runs `clickledger import` against the app's database.
async fn import(app: &TestApp, slug: &str, dir: &str, extra: &[&str]) -> Output {
    let mut args = vec!["import", "--tenant", slug, "--dir", dir, "--source", "OldTracker"];
    args.extend_from_slice(extra);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    app.host_command(&args).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tally line of `what` in an import's output, e.g. `3 created, 0 updated, 0 unchanged`.
fn tally(out: &Output, what: &str) -> String {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(what))
        .unwrap_or_else(|| panic!("no `{what}` line in {stdout}"))
        .trim()
        .to_owned()
}

async fn affiliates(tenant: &Tenant<'_>) -> Vec<Value> {
    let data =
        tenant.run("{ affiliates(first: 100) { nodes { id name email parentId status } } }", json!({})).await;
    data["affiliates"]["nodes"].as_array().expect("affiliates").clone()
}

fn id_of(affiliates: &[Value], email: &str) -> String {
    affiliates
        .iter()
        .find(|a| a["email"] == email)
        .unwrap_or_else(|| panic!("no affiliate {email} in {affiliates:?}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn migration_entries(tenant: &Tenant<'_>) -> Vec<(String, String, String, String)> {
    let data = tenant
        .run(
            "{ commissions(kind: MIGRATION, first: 50) { edges { node { affiliateId amount currency reason kind status } } } }",
            json!({}),
        )
        .await;
    let mut rows: Vec<_> = data["commissions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            assert_eq!(n["kind"], "MIGRATION");
            let s = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
            (s("affiliateId"), s("currency"), s("amount"), s("reason"))
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn an_imported_program_keeps_its_links_players_and_balances() {
    let app = spawn_app!("--no-demo", "--legacy-link-path", "/tracking.php").await;
    let tenant = Tenant::create(&app, "oldshop").await;

    // A dry run says what it would do and writes nothing.
    let dry = import(&app, "oldshop", PROGRAM, &["--dry-run"]).await;
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains("Dry run"), "{}", text(&dry.stdout));
    assert_eq!(tally(&dry, "affiliates"), "3 created, 0 updated, 0 unchanged");
    let listed = text(&dry.stdout);
    for change in [
        "create affiliate `aff-101` (affiliates.csv:3)",
        "create link `NL-casino_01` (links.csv:2)",
        "create player `p-010` (players.csv:11)",
        "create revshare carryover of `aff-200`: -310.75 EUR (balances.csv:4)",
    ] {
        assert!(listed.contains(change), "`{change}` not in {listed}");
    }
    assert!(affiliates(&tenant).await.is_empty());
    assert!(migration_entries(&tenant).await.is_empty());

    let first = import(&app, "oldshop", PROGRAM, &[]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(tally(&first, "affiliates"), "3 created, 0 updated, 0 unchanged");
    assert_eq!(tally(&first, "campaigns"), "2 created, 0 updated, 0 unchanged");
    assert_eq!(tally(&first, "links"), "4 created, 0 updated, 0 unchanged");
    assert_eq!(tally(&first, "players"), "10 created, 0 updated, 0 unchanged");
    assert_eq!(tally(&first, "balances"), "5 created, 0 updated, 0 unchanged");

    // A re-run finds everything and duplicates nothing.
    let again = import(&app, "oldshop", PROGRAM, &[]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    for (what, count) in [("affiliates", 3), ("campaigns", 2), ("links", 4), ("players", 10), ("balances", 5)]
    {
        assert_eq!(tally(&again, what), format!("0 created, 0 updated, {count} unchanged"), "{what}");
    }
    let listed = affiliates(&tenant).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let northern = id_of(&listed, "northern@partners.test");
    let sub = id_of(&listed, "sub@partners.test");
    let guide = id_of(&listed, "guide@partners.test");
    let sub_row = listed.iter().find(|a| a["id"] == sub.as_str()).expect("sub-affiliate");
    assert_eq!(sub_row["parentId"], northern.as_str());

    // The open balances are ledger entries, exact, with the source named. The carryovers are
    // not (nothing is payable on them): they open the first month's revshare netting, which
    // `the_worked_migration_checks_out_end_to_end` checks on the statements.
    let entries = migration_entries(&tenant).await;
    let mut expected = vec![
        (northern.clone(), "EUR", "1250.40", "open balance imported from OldTracker"),
        (sub.clone(), "EUR", "99.99", "open balance imported from OldTracker"),
        (guide.clone(), "USD", "42.00", "open balance imported from OldTracker"),
    ]
    .into_iter()
    .map(|(a, c, m, r)| (a, c.to_owned(), m.to_owned(), r.to_owned()))
    .collect::<Vec<_>>();
    expected.sort();
    let normalized: Vec<_> = entries
        .iter()
        .map(|(a, c, m, r)| {
            let m = if m.contains('.') { m.clone() } else { format!("{m}.00") };
            (
                a.clone(),
                c.clone(),
                format!("{:.2}", m.parse::<rust_decimal::Decimal>().expect("decimal")),
                r.clone(),
            )
        })
        .collect();
    assert_eq!(normalized, expected);

    // An old link, with its `-` and `_`, redirects to the campaign and records the click.
    let recorded_before = app.metric("clicks_recorded_total").await;
    let old = app.click("NL-casino_01", "sub1=spring", None).await;
    assert_eq!(old.status, 302, "{old:?}");
    let location = old.location.clone().expect("Location");
    assert!(location.starts_with("https://casino.example/welcome?cid="), "{location}");
    assert!(location.ends_with("&s=spring"), "{location}");
    let click_id = old.click_id();
    // The legacy shape answers the same way.
    let legacy =
        app.client.get(app.url("/tracking.php?btag=CG-casino_01")).send().await.expect("legacy link");
    assert_eq!(legacy.status(), 302);
    let legacy_location = legacy.headers()["location"].to_str().expect("Location").to_owned();
    assert!(legacy_location.starts_with("https://casino.example/welcome?cid="), "{legacy_location}");
    let unknown = app.client.get(app.url("/tracking.php?btag=nope")).send().await.expect("legacy link");
    assert_eq!(unknown.status(), 404);
    app.wait_for_recorded_clicks(recorded_before + 2.0).await;

    // A conversion on the old link's click credits that link's affiliate.
    let ftd = tenant
        .postback_ok(&[
            ("click_id", &click_id),
            ("event", "ftd"),
            ("txn_id", "M-1"),
            ("amount", "50"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(ftd["attributed"], true, "{ftd}");
    assert_eq!(ftd["credits"][0]["affiliate_id"], northern.as_str(), "{ftd}");

    // A player bound in the old system deposits: credited for life to its old affiliate.
    let deposit = tenant
        .postback_ok(&[
            ("player_id", "p-004"),
            ("event", "deposit"),
            ("txn_id", "M-2"),
            ("amount", "75.50"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(deposit["attributed"], true, "{deposit}");
    assert_eq!(deposit["credits"][0]["affiliate_id"], sub.as_str(), "{deposit}");
    let conversions = tenant.conversions().await;
    let bound = conversions
        .iter()
        .find(|c| c["id"] == deposit["conversion_id"])
        .unwrap_or_else(|| panic!("deposit not listed: {conversions:?}"));
    assert_eq!(bound["model"], "LIFETIME");
    // The bindings themselves are listed as imported registrations.
    let imported = conversions.iter().filter(|c| c["model"] == "IMPORTED").count();
    assert_eq!(imported, 10);

    // A third run after live traffic still changes nothing.
    let third = import(&app, "oldshop", PROGRAM, &[]).await;
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert_eq!(tally(&third, "players"), "0 created, 0 updated, 10 unchanged");
    assert_eq!(migration_entries(&tenant).await.len(), 3);

    // A balance that changed in a later export is corrected by a new entry for the
    // difference: booked entries never change amount.
    let later = tempfile::tempdir().expect("a temporary directory");
    for file in ["affiliates.csv", "campaigns.csv", "links.csv", "players.csv"] {
        std::fs::copy(format!("{PROGRAM}/{file}"), later.path().join(file)).expect("copy the fixture");
    }
    let balances = std::fs::read_to_string(format!("{PROGRAM}/balances.csv")).expect("balances fixture");
    std::fs::write(
        later.path().join("balances.csv"),
        balances.replace("aff-100,EUR,1250.40,0", "aff-100,EUR,1300,0"),
    )
    .expect("write balances");
    let corrected = import(&app, "oldshop", later.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(corrected.status.success(), "{}", text(&corrected.stderr));
    assert_eq!(tally(&corrected, "balances"), "0 created, 1 updated, 4 unchanged");
    let northern_entries: Vec<_> =
        migration_entries(&tenant).await.into_iter().filter(|(a, ..)| *a == northern).collect();
    let amounts: Vec<rust_decimal::Decimal> =
        northern_entries.iter().map(|(_, _, m, _)| m.parse().expect("decimal")).collect();
    assert_eq!(amounts.iter().sum::<rust_decimal::Decimal>(), rust_decimal::Decimal::new(130000, 2));
    assert!(
        northern_entries.iter().any(|(.., r)| r == "correction of the open balance imported from OldTracker"),
        "{northern_entries:?}"
    );
}

#[tokio::test]
async fn a_broken_export_names_every_error_and_writes_nothing() {
    let app = spawn_app!("--no-demo").await;
    let tenant = Tenant::create(&app, "brokenshop").await;
    let failed = import(&app, "brokenshop", BROKEN, &[]).await;
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    for expected in [
        "affiliates.csv:3: duplicate external_id `aff-100` (first on line 2)",
        "affiliates.csv:4: unknown parent_external_id `aff-999`",
        "players.csv:1: missing column `bound_at`",
        "players.csv:1: unknown column `bound_on`",
        "balances.csv:3: unknown currency `XYZ`",
    ] {
        assert!(stderr.contains(expected), "`{expected}` not in {stderr}");
    }
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(affiliates(&tenant).await.is_empty());
    let ledger =
        run_as(&app, &tenant.token, "{ commissions(first: 5) { edges { node { id } } } }", json!({})).await;
    assert_eq!(ledger["commissions"]["edges"], json!([]));

    // A cycle through affiliates of an earlier import is found too, and rolled back.
    let first = import(&app, "brokenshop", PROGRAM, &[]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let cyclic = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        cyclic.path().join("affiliates.csv"),
        "external_id,name,email,parent_external_id\naff-100,Northern Lights Media,northern@partners.test,aff-101\n",
    )
    .expect("write affiliates");
    let looped = import(&app, "brokenshop", cyclic.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(!looped.status.success());
    let stderr = text(&looped.stderr);
    assert!(stderr.contains("affiliates.csv:2: the affiliate hierarchy would have a cycle"), "{stderr}");
    let listed = affiliates(&tenant).await;
    let northern = listed.iter().find(|a| a["email"] == "northern@partners.test").expect("northern");
    assert_eq!(northern["parentId"], Value::Null, "{listed:?}");

    let unknown = import(&app, "no-such-shop", PROGRAM, &[]).await;
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("no tenant `no-such-shop`"), "{}", text(&unknown.stderr));
}

/// `GET` of the legacy path with `query`: (status, Location).
async fn legacy(app: &TestApp, query: &str) -> (u16, Option<String>) {
    let response =
        app.client.get(app.url(&format!("/tracking.php?{query}"))).send().await.expect("legacy link");
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (response.status().as_u16(), location)
}

/// The click ID a landing URL of the fixture (`?cid={click_id}`) was given.
fn cid(location: &str) -> String {
    let (_, query) = location.split_once('?').expect("a query in the Location");
    query.split('&').find_map(|pair| pair.strip_prefix("cid=")).expect("cid").to_owned()
}

async fn links_of(tenant: &Tenant<'_>, affiliate: &str) -> Vec<Value> {
    let data = tenant
        .run(
            "query($a: ID) { trackingLinks(affiliateId: $a, first: 50) { nodes { code campaignId } } }",
            json!({ "a": affiliate }),
        )
        .await;
    data["trackingLinks"]["nodes"].as_array().expect("links").clone()
}

#[tokio::test]
async fn old_affiliate_and_campaign_links_answer_as_that_pairs_link() {
    let app = spawn_app!("--no-demo", "--legacy-link-path", "/tracking.php").await;
    let tenant = Tenant::create(&app, "pairshop").await;
    let imported = import(&app, "pairshop", PROGRAM, &[]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let listed = affiliates(&tenant).await;
    let northern = id_of(&listed, "northern@partners.test");
    let sub = id_of(&listed, "sub@partners.test");
    let recorded_before = app.metric("clicks_recorded_total").await;

    // A pair with an imported link answers as that link, the old `s1` as `sub1`.
    let (status, location) = legacy(&app, "a=aff-100&c=cmp-casino&s1=spring").await;
    assert_eq!(status, 302);
    let location = location.expect("Location");
    assert!(location.starts_with("https://casino.example/welcome?cid="), "{location}");
    assert!(location.ends_with("&s=spring"), "{location}");
    assert_eq!(links_of(&tenant, &northern).await.len(), 2, "no link is created for an imported pair");

    // A pair the import brought no link for gets one on its first click, and keeps it.
    assert_eq!(links_of(&tenant, &sub).await.len(), 1);
    let (status, first) = legacy(&app, "a=aff-101&c=cmp-sports").await;
    assert_eq!(status, 302);
    let first = first.expect("Location");
    assert!(first.starts_with("https://sports.example/?cid="), "{first}");
    let (status, _) = legacy(&app, "a=aff-101&c=cmp-sports").await;
    assert_eq!(status, 302);
    let sub_links = links_of(&tenant, &sub).await;
    assert_eq!(sub_links.len(), 2, "{sub_links:?}");

    // Unknown pairs answer as unknown codes do.
    for query in ["a=aff-999&c=cmp-casino", "a=aff-100&c=nope", "a=aff-100", "c=cmp-casino", "btag=nope"] {
        let (status, location) = legacy(&app, query).await;
        assert_eq!((status, location), (404, None), "{query}");
    }
    app.wait_for_recorded_clicks(recorded_before + 3.0).await;

    // The clicks attribute as the pair's own.
    let ftd = tenant
        .postback_ok(&[
            ("click_id", &cid(&first)),
            ("event", "ftd"),
            ("txn_id", "P-1"),
            ("amount", "10"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(ftd["attributed"], true, "{ftd}");
    assert_eq!(ftd["credits"][0]["affiliate_id"], sub.as_str(), "{ftd}");
    let casino = tenant
        .postback_ok(&[("click_id", &cid(&location)), ("event", "registration"), ("txn_id", "P-2")])
        .await;
    assert_eq!(casino["credits"][0]["affiliate_id"], northern.as_str(), "{casino}");

    // A pair two tenants both have is ambiguous on the shared domain: no answer.
    let other = Tenant::create(&app, "othershop").await;
    let twin = tempfile::tempdir().expect("a temporary directory");
    for file in ["affiliates.csv", "campaigns.csv"] {
        std::fs::copy(format!("{PROGRAM}/{file}"), twin.path().join(file)).expect("copy the fixture");
    }
    let twin_import = import(&app, "othershop", twin.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(twin_import.status.success(), "{}", text(&twin_import.stderr));
    let (status, _) = legacy(&app, "a=aff-200&c=cmp-sports").await;
    assert_eq!(status, 404);
    assert!(links_of(&other, &id_of(&affiliates(&other).await, "guide@partners.test")).await.is_empty());
}

/// A copy of the program with `clicks.csv` (times relative to now, so the clicks stay within
/// their campaigns' lookback whenever the test runs).
fn program_with_clicks(clicks: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for file in ["affiliates.csv", "campaigns.csv", "links.csv", "players.csv", "balances.csv"] {
        std::fs::copy(format!("{PROGRAM}/{file}"), dir.path().join(file)).expect("copy the fixture");
    }
    std::fs::write(dir.path().join("clicks.csv"), clicks).expect("write clicks.csv");
    dir
}

fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn another_trackers_click_ids_attribute_through_their_old_links() {
    let app = spawn_app!("--no-demo").await;
    let tenant = Tenant::create(&app, "mapshop").await;

    // A broken click map names each problem and writes nothing: first what the file shows,
    // then (the file being sound) what only the database can tell.
    let broken = program_with_clicks(
        "click_id,tracking_code,clicked_at,sub1\nkt-1,NL-casino_01,2026-01-01T00:00:00Z,\nkt-1,NL-casino_01,2026-01-01T00:00:00Z,\nkt-2,NL-casino_01,yesterday,\n",
    );
    let failed = import(&app, "mapshop", broken.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    for expected in [
        "clicks.csv:3: duplicate click_id `kt-1` (first on line 2)",
        "clicks.csv:4: clicked_at `yesterday` is not an RFC 3339 time",
    ] {
        assert!(stderr.contains(expected), "`{expected}` not in {stderr}");
    }
    let unknown_code =
        program_with_clicks("click_id,tracking_code,clicked_at\nkt-1,NO-such_code,2026-01-01T00:00:00Z\n");
    let failed = import(&app, "mapshop", unknown_code.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    assert!(stderr.contains("clicks.csv:2: unknown tracking_code `NO-such_code`"), "{stderr}");
    assert!(affiliates(&tenant).await.is_empty());
    let header = program_with_clicks("click_id,code,clicked_at\n");
    let failed = import(&app, "mapshop", header.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(
        text(&failed.stderr).contains("clicks.csv:1: missing column `tracking_code`"),
        "{}",
        text(&failed.stderr)
    );

    let clicks = format!(
        "click_id,tracking_code,clicked_at,sub1\nkt-7f3a91,NS-casino_01,{},spring\nkt-old,CG-casino_01,{},\n",
        days_ago(2),
        days_ago(40)
    );
    let dir = program_with_clicks(&clicks);
    let path = dir.path().to_str().expect("UTF-8 path");
    let first = import(&app, "mapshop", path, &[]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(tally(&first, "clicks"), "2 created, 0 updated, 0 unchanged");
    let again = import(&app, "mapshop", path, &[]).await;
    assert_eq!(tally(&again, "clicks"), "0 created, 0 updated, 2 unchanged");
    let listed = affiliates(&tenant).await;
    let sub = id_of(&listed, "sub@partners.test");

    // The old tracker's click ID credits the old link's affiliate, as a click of ours would.
    let ftd = tenant
        .postback_ok(&[
            ("click_id", "kt-7f3a91"),
            ("event", "ftd"),
            ("txn_id", "F-1"),
            ("amount", "20"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(ftd["attributed"], true, "{ftd}");
    assert_eq!(ftd["credits"][0]["affiliate_id"], sub.as_str(), "{ftd}");
    // In a dialect too: Keitaro's `subid`.
    let keitaro = api_key(&tenant, "from Keitaro", "KEITARO").await;
    let (status, lead) =
        app.postback_get(&[("key", &keitaro), ("subid", "kt-7f3a91"), ("status", "lead")]).await;
    assert_eq!(status, 200, "{lead}");
    assert_eq!(lead["credits"][0]["affiliate_id"], sub.as_str(), "{lead}");

    // Its click time counts: a click older than the campaign's 30-day lookback has expired.
    let expired = tenant.postback_ok(&[("click_id", "kt-old"), ("event", "registration")]).await;
    assert_eq!(expired["attributed"], false, "{expired}");
    let unknown = tenant.postback_ok(&[("click_id", "kt-unknown"), ("event", "registration")]).await;
    assert_eq!(unknown["attributed"], false, "{unknown}");
    let conversions = tenant.conversions().await;
    let reason = |id: &Value| {
        conversions
            .iter()
            .find(|c| c["id"] == *id)
            .map(|c| c["unattributedReason"].clone())
            .unwrap_or_default()
    };
    assert_eq!(reason(&expired["conversion_id"]), "click_expired");
    assert_ne!(reason(&unknown["conversion_id"]), "click_expired");

    // Another tenant's postback with the same click ID is not credited through this map.
    let other = Tenant::create(&app, "othermap").await;
    let theirs = other.postback_ok(&[("click_id", "kt-7f3a91"), ("event", "registration")]).await;
    assert_eq!(theirs["attributed"], false, "{theirs}");
}

/// The old system's conversions of the worked example, dated today (the fixture's day is a
/// placeholder, so the comparison always covers the day the test's own conversions happen),
/// but for its last row, which lies outside any recent period.
fn their_conversions() -> String {
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    std::fs::read_to_string(format!("{RECONCILE}/conversions.csv"))
        .expect("the old system's conversions")
        .replace("2026-12-01", &today)
}

#[tokio::test]
async fn the_worked_migration_checks_out_end_to_end() {
    let app = spawn_app!("--no-demo", "--legacy-link-path", "/tracking.php").await;
    let tenant = Tenant::create(&app, "worked").await;
    let clicks = format!("click_id,tracking_code,clicked_at\nkt-7f3a91,NS-casino_01,{}\n", days_ago(1));
    let dir = program_with_clicks(&clicks);
    let imported = import(&app, "worked", dir.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let listed = affiliates(&tenant).await;
    let (northern, sub, guide) = (
        id_of(&listed, "northern@partners.test"),
        id_of(&listed, "sub@partners.test"),
        id_of(&listed, "guide@partners.test"),
    );

    // An old link redirects and records, in both old shapes.
    let recorded_before = app.metric("clicks_recorded_total").await;
    assert_eq!(legacy(&app, "btag=NL-casino_01").await.0, 302);
    assert_eq!(legacy(&app, "a=aff-200&c=cmp-casino").await.0, 302);
    app.wait_for_recorded_clicks(recorded_before + 2.0).await;

    // A CPA plan on the casino campaign, made and assigned here.
    let campaigns = tenant.run("{ campaigns(first: 10) { nodes { id name } } }", json!({})).await;
    let casino = campaigns["campaigns"]["nodes"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "Casino Welcome"))
        .and_then(|c| c["id"].as_str())
        .expect("the casino campaign")
        .to_owned();
    tenant
        .create_default_plan(&casino, "CPA 25", json!({ "currency": "EUR", "cpa": { "amount": "25" } }))
        .await;

    // Bound players' first deposits: LIFETIME to their old affiliates, with commission.
    for (txn, player, amount, affiliate) in
        [("W-1", "p-004", "100", &sub), ("W-2", "p-001", "200", &northern), ("W-3", "p-007", "50", &guide)]
    {
        let ftd = tenant
            .postback_ok(&[
                ("player_id", player),
                ("event", "ftd"),
                ("txn_id", txn),
                ("amount", amount),
                ("currency", "EUR"),
            ])
            .await;
        assert_eq!(ftd["credits"][0]["affiliate_id"], affiliate.as_str(), "{ftd}");
    }
    let conversions = tenant.conversions().await;
    let w1 = conversions.iter().find(|c| c["txnId"] == "W-1").expect("W-1 listed");
    assert_eq!(w1["model"], "LIFETIME");
    let commission: rust_decimal::Decimal =
        w1["credits"][0]["commission"].as_str().expect("a commission").parse().expect("decimal");
    assert_eq!(commission, rust_decimal::Decimal::new(25, 0), "{w1}");

    // A Keitaro postback with the old tracker's click ID, answered in JSON.
    let keitaro = api_key(&tenant, "from Keitaro", "KEITARO").await;
    let (status, sale) = app
        .postback_get(&[
            ("key", &keitaro),
            ("subid", "kt-7f3a91"),
            ("status", "sale"),
            ("tid", "W-4"),
            ("payout", "80"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(status, 200, "{sale}");
    assert_eq!(
        (sale["event"].as_str(), sale["credits"][0]["affiliate_id"].as_str()),
        (Some("ftd"), Some(sub.as_str()))
    );
    // A HasOffers postback for a bound player, answered in HasOffers' plain text.
    let hasoffers = api_key(&tenant, "from HasOffers", "HASOFFERS").await;
    let response = app
        .client
        .get(app.url("/postback"))
        .query(&[
            ("key", hasoffers.as_str()),
            ("player_id", "p-010"),
            ("event", "ftd"),
            ("adv_sub", "W-5"),
            ("amount", "30"),
            ("currency", "EUR"),
        ])
        .send()
        .await
        .expect("HasOffers postback");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "success=true;");

    // The opening balances are on the first statements here, those of the month the export
    // names (`period`): open balances as `MIGRATION` lines, payable; revshare carryovers as the
    // opening carryover, carried on until revshare earns them back.
    let close = "mutation { closePeriod(period: \"2026-11\") { id affiliateId currency openingCarryover lines { kind amount } balance closingCarryover } }";
    let closed = tenant.run(close, json!({})).await["closePeriod"].clone();
    let decimal = |v: &Value| v.as_str().map(|s| s.parse::<rust_decimal::Decimal>().expect("decimal"));
    let mut statements: Vec<_> = closed
        .as_array()
        .expect("statements")
        .iter()
        .map(|s| {
            let lines: Vec<_> = s["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| (l["kind"].as_str().unwrap_or_default().to_owned(), decimal(&l["amount"])))
                .collect();
            (
                s["affiliateId"].as_str().unwrap_or_default().to_owned(),
                s["currency"].as_str().unwrap_or_default().to_owned(),
                decimal(&s["openingCarryover"]),
                lines,
                decimal(&s["balance"]),
                decimal(&s["closingCarryover"]),
            )
        })
        .collect();
    statements.sort();
    let money = |cents: i64| Some(rust_decimal::Decimal::new(cents, 2));
    let migration = |cents: i64| vec![("MIGRATION".to_owned(), money(cents))];
    let mut expected = vec![
        (northern.clone(), "EUR".to_owned(), money(0), migration(125040), money(125040), money(0)),
        (sub.clone(), "EUR".to_owned(), money(0), migration(9999), money(9999), money(0)),
        (guide.clone(), "EUR".to_owned(), money(-31075), vec![], money(0), money(-31075)),
        (guide.clone(), "USD".to_owned(), money(-1250), migration(4200), money(4200), money(-1250)),
    ];
    expected.sort();
    assert_eq!(statements, expected, "{closed}");

    // Once the first statement is paid, an open balance that changes is corrected on the
    // current month's statement; the carryover it opened can no longer change.
    let guide_usd = closed
        .as_array()
        .and_then(|all| all.iter().find(|s| s["affiliateId"] == guide.as_str() && s["currency"] == "USD"))
        .and_then(|s| s["id"].as_str())
        .expect("guide's USD statement")
        .to_owned();
    tenant
        .run("mutation($id: ID!) { markStatementPaid(id: $id) { status } }", json!({ "id": guide_usd }))
        .await;
    let rewrite = |row: &str| {
        let balances = std::fs::read_to_string(format!("{PROGRAM}/balances.csv")).expect("balances fixture");
        std::fs::write(
            dir.path().join("balances.csv"),
            balances.replace("aff-200,USD,42.00,-12.50,2026-11", row),
        )
        .expect("write balances");
    };
    rewrite("aff-200,USD,42.00,-20,2026-11");
    let refused = import(&app, "worked", dir.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(
            "balances.csv:5: the statement of 2026-11 is paid: the revshare carryover it opened can no longer change"
        ),
        "{stderr}"
    );
    rewrite("aff-200,USD,50.00,-12.50,2026-11");
    let corrected = import(&app, "worked", dir.path().to_str().expect("UTF-8 path"), &[]).await;
    assert!(corrected.status.success(), "{}", text(&corrected.stderr));
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let this_month = tenant
        .run(
            "query($p: String) { commissions(kind: MIGRATION, period: $p, first: 50) { edges { node { affiliateId amount currency } } } }",
            json!({ "p": month }),
        )
        .await;
    let corrections: Vec<_> = this_month["commissions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (e["node"]["affiliateId"].clone(), e["node"]["currency"].clone(), decimal(&e["node"]["amount"]))
        })
        .collect();
    assert_eq!(corrections, [(json!(guide), json!("USD"), money(800))], "{this_month}");

    // The reconciliation shows exactly the seeded differences.
    let now = chrono::Utc::now();
    let (from, to) =
        ((now - chrono::Duration::days(1)).to_rfc3339(), (now + chrono::Duration::days(1)).to_rfc3339());
    let theirs = their_conversions();
    let report = tenant
        .run(
            "query($from: DateTime!, $to: DateTime!, $theirs: String!) { reconcile(from: $from, to: $to, theirs: $theirs) { matched different onlyTheirs onlyOurs outsidePeriod lines { txnId bucket amountDifference commissionDifference theirs { affiliate } ours { affiliate commission } } } }",
            json!({ "from": from, "to": to, "theirs": theirs }),
        )
        .await["reconcile"]
        .clone();
    let counts: Vec<i64> = ["matched", "different", "onlyTheirs", "onlyOurs", "outsidePeriod"]
        .iter()
        .map(|k| report[*k].as_i64().expect("a count"))
        .collect();
    assert_eq!(counts, [2, 2, 1, 1, 1], "{report}");
    let line = |txn: &str| {
        report["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["txnId"] == txn))
            .cloned()
            .unwrap_or_default()
    };
    let summary: Vec<(String, Option<rust_decimal::Decimal>, Option<rust_decimal::Decimal>)> =
        ["W-1", "W-2", "W-3", "W-4", "W-5", "W-9"]
            .iter()
            .map(|t| {
                let l = line(t);
                (
                    l["bucket"].as_str().unwrap_or_default().to_owned(),
                    decimal(&l["amountDifference"]),
                    decimal(&l["commissionDifference"]),
                )
            })
            .collect();
    let d = |v: i64| Some(rust_decimal::Decimal::new(v, 0));
    assert_eq!(
        summary,
        [
            ("MATCHED".to_owned(), None, None),
            ("DIFFERENT".to_owned(), d(-10), None),
            ("DIFFERENT".to_owned(), None, d(-5)),
            ("MATCHED".to_owned(), None, None),
            ("ONLY_OURS".to_owned(), None, None),
            ("ONLY_THEIRS".to_owned(), None, None),
        ],
        "{report}"
    );
    assert_eq!(line("W-1")["ours"]["affiliate"], "aff-101", "ours are named by the old IDs: {report}");

    // The same as CSV, for a bearer token, with the file as the body.
    let url = format!("/reports/reconcile.csv?from={}&to={}", urlencoding(&from), urlencoding(&to));
    let csv = app
        .client
        .post(app.url(&url))
        .bearer_auth(&tenant.token)
        .body(theirs.clone())
        .send()
        .await
        .expect("CSV");
    assert_eq!(csv.status(), 200);
    let body = csv.text().await.expect("CSV body");
    let mut rows = body.lines();
    assert!(
        rows.next()
            .expect("header")
            .starts_with("txn_id,result,amount_difference,currency_differs,commission_difference")
    );
    let w2 = body.lines().find(|l| l.starts_with("W-2,")).expect("W-2 row");
    assert!(w2.starts_with("W-2,different,-10"), "{w2}");
    assert_eq!(body.lines().count(), 7, "{body}");

    // Bad input names the field and each line.
    let broken =
        "txn_id,event,amount,currency,commission,occurred_at\nX-1,ftd,ten,EUR,1,2026-12-01T00:00:00Z\n";
    let answer = app
        .graphql(
            Some(&tenant.token),
            "query($from: DateTime!, $to: DateTime!, $theirs: String!) { reconcile(from: $from, to: $to, theirs: $theirs) { matched } }",
            json!({ "from": from, "to": to, "theirs": broken }),
        )
        .await;
    assert_eq!(clickledger_e2e::error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
    assert_eq!(clickledger_e2e::error_field(&answer), Some("theirs"), "{answer}");
    assert!(
        answer.to_string().contains("conversions.csv:2: amount: `ten` is not a decimal number"),
        "{answer}"
    );
    let bad =
        app.client.post(app.url(&url)).bearer_auth(&tenant.token).body(broken).send().await.expect("CSV");
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.expect("JSON error");
    assert!(bad.to_string().contains("\"body\""), "{bad}");
    let no_from = app
        .client
        .post(app.url("/reports/reconcile.csv"))
        .bearer_auth(&tenant.token)
        .body(theirs.clone())
        .send()
        .await
        .expect("CSV");
    assert_eq!(no_from.status(), 400);

    // Affiliates may not reconcile.
    tenant.create_affiliate("partner", true).await;
    let partner = tenant.login_affiliate("partner").await;
    let refused = app
        .graphql(
            Some(&partner),
            "query($from: DateTime!, $to: DateTime!, $theirs: String!) { reconcile(from: $from, to: $to, theirs: $theirs) { matched } }",
            json!({ "from": from, "to": to, "theirs": theirs }),
        )
        .await;
    assert_eq!(clickledger_e2e::error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let refused_csv =
        app.client.post(app.url(&url)).bearer_auth(&partner).body(theirs.clone()).send().await.expect("CSV");
    assert_eq!(refused_csv.status(), 403);

    // Another tenant sees none of these conversions: all of the file is only theirs.
    let other = Tenant::create(&app, "notworked").await;
    let elsewhere = other
        .run(
            "query($from: DateTime!, $to: DateTime!, $theirs: String!) { reconcile(from: $from, to: $to, theirs: $theirs) { matched onlyTheirs onlyOurs } }",
            json!({ "from": from, "to": to, "theirs": theirs }),
        )
        .await;
    assert_eq!(elsewhere["reconcile"], json!({ "matched": 0, "onlyTheirs": 5, "onlyOurs": 0 }));
    let elsewhere_csv = app
        .client
        .post(app.url(&url))
        .bearer_auth(&other.token)
        .body(theirs.clone())
        .send()
        .await
        .expect("CSV");
    let elsewhere_body = elsewhere_csv.text().await.expect("CSV body");
    assert!(!elsewhere_body.contains("only_ours"), "{elsewhere_body}");
}

async fn api_key(tenant: &Tenant<'_>, name: &str, dialect: &str) -> String {
    tenant
        .run(
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
            json!({ "input": { "name": name, "dialect": dialect } }),
        )
        .await["createApiKey"]["key"]
        .as_str()
        .expect("key")
        .to_owned()
}

fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
