//! `statsLive` over a real WebSocket: a first snapshot, then only the rows that changed within
//! a second of a postback, coalesced under a burst, scoped to an affiliate's own rows, a
//! rolling period (`TODAY`) resolved in the request's time zone, and bad input refused with
//! `BAD_USER_INPUT` naming the field. (The rollover of a rolling period is decided by the
//! domain, `stats_window` and `stats_changes::live_step`, and tested there.)

use std::time::Duration;

use chrono::Utc;
use clickledger_e2e::spawn_app;
use clickledger_e2e::tenant::{Link, Tenant};
use clickledger_e2e::ws::{GqlWs, WsProtocol};
use serde_json::{Value, json};
use tokio::time::Instant;

const STATS_LIVE: &str = "subscription($input: StatsInput!) { statsLive(input: $input) {
    snapshot totalRows timeZone from to
    totals { clicks registrations deposits depositAmount }
    rows { affiliateId metrics { clicks registrations deposits depositAmount } }
    removedRows { affiliateId }
} }";

/// A postback's effect must reach a subscriber within this.
const LIVE: Duration = Duration::from_secs(1);
/// Generous bound for "eventually" on a loaded machine; latency is asserted separately.
const PATIENCE: Duration = Duration::from_secs(10);

fn by_affiliate() -> Value {
    let now = Utc::now();
    json!({ "input": {
        "from": (now - chrono::Duration::hours(2)).to_rfc3339(),
        "to": (now + chrono::Duration::hours(2)).to_rfc3339(),
        "groupBy": ["AFFILIATE"],
    } })
}

struct World<'a> {
    tenant: Tenant<'a>,
    alpha: String,
    beta: String,
    alpha_link: Link,
    beta_link: Link,
}

async fn world<'a>(app: &'a clickledger_e2e::TestApp, slug: &str) -> World<'a> {
    let tenant = Tenant::create(app, slug).await;
    let alpha = tenant.create_affiliate("alpha", true).await;
    let beta = tenant.create_affiliate("beta", true).await;
    let campaign = tenant.create_campaign("Casino", json!({})).await;
    let alpha_link = tenant.create_link(&alpha, &campaign).await;
    let beta_link = tenant.create_link(&beta, &campaign).await;
    World { tenant, alpha, beta, alpha_link, beta_link }
}

impl World<'_> {
    /// A click through `link`, written before this returns; its click ID.
    async fn click(&self, link: &Link, clicks_so_far: f64) -> String {
        let click_id = self.tenant.app.click(&link.code, "", None).await.click_id();
        self.tenant.app.wait_for_recorded_clicks(clicks_so_far + 1.0).await;
        click_id
    }

    async fn register(&self, click_id: &str, player: &str) {
        self.tenant
            .postback_ok(&[("click_id", click_id), ("event", "registration"), ("player_id", player)])
            .await;
    }
}

fn row_of<'v>(update: &'v Value, affiliate: &str) -> Option<&'v Value> {
    update["rows"].as_array()?.iter().find(|row| row["affiliateId"] == affiliate)
}

fn affiliates_in(update: &Value) -> Vec<String> {
    let rows = update["rows"].as_array().into_iter().flatten();
    let removed = update["removedRows"].as_array().into_iter().flatten();
    rows.chain(removed).map(|row| row["affiliateId"].as_str().unwrap_or("null").to_owned()).collect()
}

async fn next_update(ws: &mut GqlWs, sub: &str, within: Duration) -> Value {
    ws.expect_data(sub, within).await["statsLive"].clone()
}

#[tokio::test]
async fn a_snapshot_then_only_the_changed_row_within_a_second() {
    let app = spawn_app!().await;
    let world = world(&app, "statslive-owner").await;
    let alpha_click = world.click(&world.alpha_link, 0.0).await;

    let mut ws = GqlWs::connect(&app, Some(&world.tenant.token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(STATS_LIVE, by_affiliate()).await;
    let snapshot = next_update(&mut ws, &sub, PATIENCE).await;
    assert_eq!(snapshot["snapshot"], true, "{snapshot}");
    assert_eq!(snapshot["totals"]["clicks"], 1, "{snapshot}");
    assert_eq!(row_of(&snapshot, &world.alpha).expect("alpha's row")["metrics"]["clicks"], 1);

    // A click of beta's: its row appears, alpha's (unchanged) is not sent again.
    let beta_click = world.click(&world.beta_link, 1.0).await;
    let update = next_update(&mut ws, &sub, PATIENCE).await;
    assert_eq!(update["snapshot"], false, "{update}");
    assert_eq!(affiliates_in(&update), vec![world.beta.clone()], "{update}");
    assert_eq!(update["totals"]["clicks"], 2, "{update}");

    // A postback: pushed within a second, only beta's row, with the new totals.
    let posted = Instant::now();
    world.register(&beta_click, "p-beta").await;
    let update = next_update(&mut ws, &sub, LIVE).await;
    assert!(posted.elapsed() <= LIVE, "pushed after {:?}", posted.elapsed());
    assert_eq!(affiliates_in(&update), vec![world.beta.clone()], "{update}");
    assert_eq!(row_of(&update, &world.beta).unwrap()["metrics"]["registrations"], 1, "{update}");
    assert_eq!(update["totals"]["registrations"], 1, "{update}");

    // Legacy protocol too, and the same numbers as the snapshot there.
    let mut legacy = GqlWs::connect(&app, Some(&world.tenant.token), WsProtocol::Legacy).await;
    let legacy_sub = legacy.subscribe(STATS_LIVE, by_affiliate()).await;
    let snapshot = next_update(&mut legacy, &legacy_sub, PATIENCE).await;
    assert_eq!(snapshot["totalRows"], 2, "{snapshot}");
    assert_eq!(snapshot["totals"]["registrations"], 1, "{snapshot}");
    world.register(&alpha_click, "p-alpha").await;
    let update = next_update(&mut legacy, &legacy_sub, LIVE).await;
    assert_eq!(affiliates_in(&update), vec![world.alpha.clone()], "{update}");
}

#[tokio::test]
async fn a_burst_of_postbacks_is_coalesced() {
    let app = spawn_app!().await;
    let world = world(&app, "statslive-burst").await;
    let click_id = world.click(&world.alpha_link, 0.0).await;
    let mut ws = GqlWs::connect(&app, Some(&world.tenant.token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(STATS_LIVE, by_affiliate()).await;
    next_update(&mut ws, &sub, PATIENCE).await;

    const BURST: usize = 30;
    let started = Instant::now();
    let post = async {
        for n in 0..BURST {
            let txn = format!("D{n}");
            world
                .tenant
                .postback_ok(&[
                    ("click_id", &click_id),
                    ("event", "deposit"),
                    ("txn_id", &txn),
                    ("amount", "1.5"),
                    ("currency", "EUR"),
                ])
                .await;
        }
        started.elapsed()
    };
    // Read while posting, so each push is timed as it arrives: every push until the last
    // deposit shows.
    let receive = async {
        let mut pushes = Vec::new();
        loop {
            let update = next_update(&mut ws, &sub, PATIENCE).await;
            pushes.push(Instant::now());
            assert_eq!(affiliates_in(&update), vec![world.alpha.clone()], "{update}");
            if update["totals"]["deposits"] == BURST {
                assert_eq!(update["totals"]["depositAmount"], "45", "{update}");
                return pushes;
            }
        }
    };
    let (posted_in, pushes) = tokio::join!(post, receive);
    assert!(ws.next_for(&sub, Duration::from_millis(1500)).await.is_none(), "nothing changed, nothing sent");
    // At most one push a window of 500 ms (a little slack for the network's jitter).
    let bound = (posted_in.as_millis() / 500) as usize + 2;
    assert!(pushes.len() <= bound, "{} pushes for {BURST} postbacks in {posted_in:?}", pushes.len());
    assert!(pushes.len() < BURST, "coalesced");
    for pair in pushes.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(350), "two pushes {gap:?} apart");
    }
}

#[tokio::test]
async fn an_affiliate_sees_only_its_own_rows() {
    let app = spawn_app!().await;
    let world = world(&app, "statslive-scope").await;
    let beta_click = world.click(&world.beta_link, 0.0).await;
    let alpha_token = world.tenant.login_affiliate("alpha").await;

    let mut ws = GqlWs::connect(&app, Some(&alpha_token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(STATS_LIVE, by_affiliate()).await;
    let snapshot = next_update(&mut ws, &sub, PATIENCE).await;
    assert_eq!(snapshot["totals"]["clicks"], 0, "beta's click is not alpha's: {snapshot}");
    assert!(affiliates_in(&snapshot).iter().all(|a| *a == world.alpha), "{snapshot}");

    // Beta's conversion changes nothing alpha may see: no push.
    world.register(&beta_click, "p-beta").await;
    assert!(ws.next_for(&sub, Duration::from_millis(1500)).await.is_none(), "beta's conversion leaked");

    // Alpha's own click and conversion do come, and only alpha's row.
    let alpha_click = world.click(&world.alpha_link, 1.0).await;
    world.register(&alpha_click, "p-alpha").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let update = next_update(&mut ws, &sub, deadline - Instant::now()).await;
        assert_eq!(affiliates_in(&update), vec![world.alpha.clone()], "{update}");
        if update["totals"]["registrations"] == 1 {
            assert_eq!(update["totals"]["clicks"], 1, "{update}");
            break;
        }
    }
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let app = spawn_app!().await;
    let world = world(&app, "statslive-bad").await;
    let mut ws = GqlWs::connect(&app, Some(&world.tenant.token), WsProtocol::TransportWs).await;
    let now = Utc::now();
    let cases = [
        ("groupBy", json!({ "from": now.to_rfc3339(), "to": now.to_rfc3339(), "groupBy": ["NOPE"] })),
        ("from", json!({ "from": now.to_rfc3339(), "to": (now - chrono::Duration::hours(1)).to_rfc3339() })),
        ("timeZone", json!({ "from": now.to_rfc3339(), "to": now.to_rfc3339(), "timeZone": "Mars/Base" })),
        // Exactly one of the two forms of the period.
        ("period", json!({ "from": now.to_rfc3339(), "to": now.to_rfc3339(), "period": "TODAY" })),
        ("from", json!({ "groupBy": ["AFFILIATE"] })),
        ("to", json!({ "from": now.to_rfc3339() })),
    ];
    for (field, input) in cases {
        let sub = ws.subscribe(STATS_LIVE, json!({ "input": input })).await;
        let refused = ws.next_for(&sub, PATIENCE).await.expect("an answer").expect_err("bad input");
        let error = &refused["payload"];
        let error = if error.is_array() { &error[0] } else { &error["errors"][0] };
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
        assert_eq!(error["extensions"]["field"], field, "{refused}");
    }
    // Without a token: refused as any operation.
    let mut anonymous = GqlWs::connect(&app, None, WsProtocol::TransportWs).await;
    let sub = anonymous.subscribe(STATS_LIVE, by_affiliate()).await;
    let refused = anonymous.next_for(&sub, PATIENCE).await.expect("an answer").expect_err("anonymous");
    assert!(refused.to_string().contains("UNAUTHENTICATED"), "{refused}");
}

/// A `TODAY` report covers the local day of its time zone (UTC+14 here, so it is not the UTC
/// day) and a postback's change reaches it like any live report's.
#[tokio::test]
async fn a_today_subscription_covers_the_local_day_and_receives_a_postbacks_change() {
    let app = spawn_app!().await;
    let world = world(&app, "statslive-today").await;
    let click_id = world.click(&world.alpha_link, 0.0).await;

    let mut ws = GqlWs::connect(&app, Some(&world.tenant.token), WsProtocol::TransportWs).await;
    let today = json!({ "input": { "period": "TODAY", "timeZone": "Etc/GMT-14", "groupBy": ["AFFILIATE"] } });
    let sub = ws.subscribe(STATS_LIVE, today).await;
    let snapshot = next_update(&mut ws, &sub, PATIENCE).await;
    let plus_14 = chrono::FixedOffset::east_opt(14 * 3600).unwrap();
    let local_day = Utc::now().with_timezone(&plus_14).date_naive();
    let midnight = local_day.and_hms_opt(0, 0, 0).unwrap().and_local_timezone(plus_14).single().unwrap();
    let at = |field: &str| chrono::DateTime::parse_from_rfc3339(snapshot[field].as_str().unwrap()).unwrap();
    assert_eq!(at("from"), midnight, "{snapshot}");
    assert_eq!(at("to"), midnight + chrono::Duration::days(1), "{snapshot}");
    assert_eq!(snapshot["snapshot"], true, "{snapshot}");
    assert_eq!(snapshot["timeZone"], "Etc/GMT-14", "{snapshot}");
    assert_eq!(row_of(&snapshot, &world.alpha).expect("alpha's row")["metrics"]["clicks"], 1, "{snapshot}");

    let posted = Instant::now();
    world.register(&click_id, "p-today").await;
    let update = next_update(&mut ws, &sub, LIVE).await;
    assert!(posted.elapsed() <= LIVE, "pushed after {:?}", posted.elapsed());
    assert_eq!(update["snapshot"], false, "{update}");
    assert_eq!(affiliates_in(&update), vec![world.alpha.clone()], "{update}");
    assert_eq!(row_of(&update, &world.alpha).unwrap()["metrics"]["registrations"], 1, "{update}");
    assert_eq!(update["totals"]["registrations"], 1, "{update}");
    assert_eq!(update["from"], snapshot["from"], "the same day: {update}");
}

/// A live report ends with its session like any subscription: 4401 when the token expires,
/// 4403 when the login is suspended.
#[tokio::test]
async fn a_live_report_closes_when_its_session_ends() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let app = spawn_app!().await;
    let world = world(&app, "statslive-session").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // The owner's token, re-signed to expire in 3 s.
    let payload = world.tenant.token.split('.').nth(1).unwrap();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["exp"] = json!(now + 3);
    let short = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(clickledger_e2e::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let mut ws = GqlWs::connect(&app, Some(&short), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(STATS_LIVE, by_affiliate()).await;
    assert_eq!(next_update(&mut ws, &sub, PATIENCE).await["snapshot"], true);
    let (code, reason) = ws.expect_close(Duration::from_secs(15)).await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("expired"), "{reason}");

    // A manager's live report, then the owner suspends the manager.
    let created = world
        .tenant
        .run(
            "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }",
            json!({ "input": { "email": "manager@statslive.test", "password": clickledger_e2e::PASSWORD, "role": "MANAGER" } }),
        )
        .await;
    let manager_id = created["createUser"]["id"].as_str().unwrap().to_owned();
    let manager =
        app.login_token(&world.tenant.slug, "manager@statslive.test", clickledger_e2e::PASSWORD).await;
    let mut ws = GqlWs::connect(&app, Some(&manager), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(STATS_LIVE, by_affiliate()).await;
    assert_eq!(next_update(&mut ws, &sub, PATIENCE).await["snapshot"], true);
    world
        .tenant
        .run("mutation($id: ID!) { suspendUser(id: $id) { status } }", json!({ "id": manager_id }))
        .await;
    let (code, reason) = ws.expect_close(Duration::from_secs(10)).await;
    assert_eq!(code, 4403, "{reason}");
}

/// With PostgreSQL, a conversion written by another replica wakes the live report here within
/// a second (and brings the replica's click, which alone would wait for the 5 s refresh).
#[tokio::test]
async fn a_conversion_on_another_replica_is_pushed_within_a_second() {
    let app = spawn_app!().await;
    if !app.is_postgres() {
        eprintln!("skipped: two replicas need PostgreSQL (set TEST_DATABASE_URL)");
        return;
    }
    let replica = app.spawn_replica().await;
    let world = world(&app, "statslive-replicas").await;
    let mut ws = GqlWs::connect(&app, Some(&world.tenant.token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(STATS_LIVE, by_affiliate()).await;
    assert_eq!(next_update(&mut ws, &sub, PATIENCE).await["totals"]["clicks"], 0);

    let click_id = replica.click(&world.alpha_link.code, "", None).await.click_id();
    replica.wait_for_recorded_clicks(1.0).await;
    let posted = Instant::now();
    let on_replica = world.tenant.on(&replica);
    on_replica
        .postback_ok(&[("click_id", &click_id), ("event", "registration"), ("player_id", "p-replica")])
        .await;
    loop {
        let left = LIVE.saturating_sub(posted.elapsed());
        let update = next_update(&mut ws, &sub, left).await;
        if update["totals"]["registrations"] == 1 {
            assert_eq!(update["totals"]["clicks"], 1, "{update}");
            assert_eq!(affiliates_in(&update), vec![world.alpha.clone()], "{update}");
            break;
        }
    }
}
