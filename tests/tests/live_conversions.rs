//! The live conversion feed over real WebSockets (`graphql-transport-ws` and the legacy
//! `graphql-ws`): latency, status changes, affiliate scoping, resuming from a cursor, and
//! fan-out across two replicas on one PostgreSQL database.

use std::collections::HashSet;
use std::time::Duration;

use clickledger_e2e::tenant::{Link, Tenant, conversions_as, run_as};
use clickledger_e2e::ws::{GqlWs, WsProtocol};
use clickledger_e2e::{TestApp, error_code, spawn_app};
use serde_json::{Value, json};
use tokio::time::Instant;

const SUBSCRIPTION: &str = "subscription($since: String) { conversions(since: $since) { \
    cursor kind id event status amount currency receivedAt attributed unattributedReason \
    credits { affiliateId share commission } conversion { playerId txnId } } }";

/// A postback's event must reach a subscriber within this.
const LIVE: Duration = Duration::from_secs(1);
/// Generous bound for "eventually" (a loaded CI machine); latency is asserted separately.
const PATIENCE: Duration = Duration::from_secs(10);

struct Live<'a> {
    tenant: Tenant<'a>,
    alice: String,
    bob: String,
    alice_link: Link,
    bob_link: Link,
}

async fn live_setup<'a>(app: &'a TestApp, slug: &str) -> Live<'a> {
    let tenant = Tenant::create(app, slug).await;
    let alice = tenant.create_affiliate("alice", true).await;
    let bob = tenant.create_affiliate("bob", false).await;
    let campaign = tenant.create_campaign("Sportsbook", json!({})).await;
    let alice_link = tenant.create_link(&alice, &campaign).await;
    let bob_link = tenant.create_link(&bob, &campaign).await;
    Live { tenant, alice, bob, alice_link, bob_link }
}

impl Live<'_> {
    /// A click through `link`, then a postback with its click ID; returns the answer.
    async fn convert(&self, link: &Link, params: &[(&str, &str)]) -> Value {
        let click_id = self.tenant.app.click(&link.code, "", None).await.click_id();
        let mut all = vec![("click_id", click_id.as_str())];
        all.extend_from_slice(params);
        self.tenant.postback_ok(&all).await
    }
}

impl Live<'_> {
    /// A registration through alice's link.
    async fn register(&self, player: &str) -> Value {
        self.convert(&self.alice_link, &[("event", "registration"), ("player_id", player)]).await
    }
}

fn id_of(answer: &Value) -> String {
    answer["conversion_id"].as_str().unwrap_or_else(|| panic!("no conversion_id in {answer}")).to_owned()
}

fn cursor_seq(event: &Value) -> i64 {
    let cursor = event["cursor"].as_str().unwrap_or_else(|| panic!("no cursor in {event}"));
    cursor.strip_prefix('c').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("odd cursor {cursor}"))
}

/// The next event of subscription `sub`.
async fn next_event(ws: &mut GqlWs, sub: &str) -> Value {
    ws.expect_data(sub, PATIENCE).await["conversions"].clone()
}

/// A subscription without `since` starts "from now", which the server fixes when it starts
/// the stream; the protocol does not say when that is. So: post unattributed probe
/// conversions until one arrives, then drain the probes still in flight. From then on
/// every new event reaches the subscriber. Asserts that nothing but probes arrives.
async fn until_live(ws: &mut GqlWs, sub: &str, tenant: &Tenant<'_>) {
    let deadline = Instant::now() + PATIENCE;
    let mut probes = HashSet::new();
    let mut last;
    let first = loop {
        assert!(Instant::now() < deadline, "the subscription did not go live within {PATIENCE:?}");
        let answer = tenant
            .postback_ok(&[("event", "registration"), ("player_id", &format!("probe-{}", probes.len()))])
            .await;
        last = id_of(&answer);
        probes.insert(last.clone());
        if let Some(message) = ws.next_for(sub, Duration::from_millis(200)).await {
            break message.unwrap_or_else(|err| panic!("subscription failed: {err}"))["conversions"].clone();
        }
    };
    let mut seen = first;
    loop {
        let id = seen["id"].as_str().unwrap_or_default().to_owned();
        assert!(probes.contains(&id), "a conversion from before the subscription was delivered: {seen}");
        if id == last {
            return;
        }
        seen = next_event(ws, sub).await;
    }
}

async fn owner_sees_conversions_live(protocol: WsProtocol, slug: &str) {
    let app = spawn_app!().await;
    let live = live_setup(&app, slug).await;
    // Committed before the subscription: not part of a feed that starts "from now".
    live.convert(&live.alice_link, &[("event", "registration"), ("player_id", "early")]).await;

    let mut ws = GqlWs::connect(&app, Some(&live.tenant.token), protocol).await;
    let sub = ws.subscribe(SUBSCRIPTION, json!({})).await;
    until_live(&mut ws, &sub, &live.tenant).await;

    let answer = live
        .convert(
            &live.alice_link,
            &[
                ("event", "ftd"),
                ("player_id", "player-live"),
                ("txn_id", "LIVE-1"),
                ("amount", "100.50"),
                ("currency", "EUR"),
            ],
        )
        .await;
    let answered = Instant::now();
    let event = next_event(&mut ws, &sub).await;
    let latency = answered.elapsed();
    assert!(latency < LIVE, "the event took {latency:?} after the postback's answer");

    assert_eq!(event["id"], answer["conversion_id"], "{event}");
    assert_eq!(event["kind"], "conversion.created");
    assert_eq!(event["event"], "ftd");
    assert_eq!(event["status"], "approved");
    assert_eq!(event["attributed"], true);
    assert_eq!(event["unattributedReason"], Value::Null);
    assert_eq!(event["amount"], "100.5");
    assert_eq!(event["currency"], "EUR");
    let received_at = event["receivedAt"].as_str().expect("receivedAt");
    assert!(received_at.len() >= 20 && received_at.contains('T'), "receivedAt {received_at}");
    assert_eq!(event["credits"], json!([{ "affiliateId": live.alice, "share": "1", "commission": null }]));
    assert_eq!(event["conversion"], json!({ "playerId": "player-live", "txnId": "LIVE-1" }));
    assert!(cursor_seq(&event) > 0);

    // A second one, for the other affiliate, follows in order.
    let answer = live.convert(&live.bob_link, &[("event", "registration"), ("player_id", "p-bob")]).await;
    let next = next_event(&mut ws, &sub).await;
    assert_eq!(next["id"], answer["conversion_id"]);
    assert_eq!(next["credits"], json!([{ "affiliateId": live.bob, "share": "1", "commission": null }]));
    assert_eq!(cursor_seq(&next), cursor_seq(&event) + 1);
    ws.close().await;
}

#[tokio::test]
async fn owner_sees_conversions_live_over_graphql_transport_ws() {
    owner_sees_conversions_live(WsProtocol::TransportWs, "live-tws").await;
}

#[tokio::test]
async fn owner_sees_conversions_live_over_legacy_graphql_ws() {
    owner_sees_conversions_live(WsProtocol::Legacy, "live-legacy").await;
}

#[tokio::test]
async fn status_change_is_pushed_as_a_new_event() {
    let app = spawn_app!().await;
    let live = live_setup(&app, "live-status").await;
    let mut ws = GqlWs::connect(&app, Some(&live.tenant.token), WsProtocol::TransportWs).await;
    // A fresh tenant: everything since the beginning, no race with the first postback.
    let sub = ws.subscribe(SUBSCRIPTION, json!({ "since": "c0" })).await;

    let click_id = app.click(&live.alice_link.code, "", None).await.click_id();
    let post = |status: &'static str| {
        let (tenant, click_id) = (&live.tenant, click_id.clone());
        async move {
            tenant
                .postback(&[
                    ("click_id", &click_id),
                    ("event", "deposit"),
                    ("txn_id", "ST-1"),
                    ("amount", "40"),
                    ("currency", "USD"),
                    ("status", status),
                ])
                .await
        }
    };

    let (status, pending) = post("pending").await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!((&pending["status"], &pending["duplicate"]), (&json!("pending"), &json!(false)));
    let created = next_event(&mut ws, &sub).await;
    assert_eq!(created["id"], pending["conversion_id"]);
    assert_eq!((&created["kind"], &created["status"]), (&json!("conversion.created"), &json!("pending")));

    let (status, approved) = post("approved").await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["conversion_id"], pending["conversion_id"], "the same conversion");
    assert_eq!((&approved["status"], &approved["duplicate"]), (&json!("approved"), &json!(false)));
    let changed = next_event(&mut ws, &sub).await;
    assert_eq!(changed["id"], pending["conversion_id"]);
    assert_eq!(
        (&changed["kind"], &changed["status"]),
        (&json!("conversion.status_changed"), &json!("approved")),
        "{changed}"
    );
    assert_eq!(changed["credits"], created["credits"]);
    assert_eq!(cursor_seq(&changed), cursor_seq(&created) + 1);

    // Approved again: a duplicate; back to pending: refused. Neither is an event.
    let (status, again) = post("approved").await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)), "{again}");
    let (status, backward) = post("pending").await;
    assert_eq!(status, 409, "{backward}");
    assert_eq!(backward["error"]["code"], "CONFLICT");
    let marker = live.convert(&live.bob_link, &[("event", "registration"), ("player_id", "marker")]).await;
    let next = next_event(&mut ws, &sub).await;
    assert_eq!(next["id"], marker["conversion_id"], "no event for a duplicate or a refused move: {next}");
    assert_eq!(cursor_seq(&next), cursor_seq(&changed) + 1);

    let listed = live.tenant.conversions().await;
    let stored = listed.iter().find(|c| c["id"] == pending["conversion_id"]).expect("listed");
    assert_eq!(stored["status"], "approved");
    assert_eq!(listed.len(), 2);
    ws.close().await;
}

#[tokio::test]
async fn affiliate_sees_only_its_own_conversions_without_player_ids() {
    let app = spawn_app!().await;
    let live = live_setup(&app, "live-affiliate").await;
    let alice_token = live.tenant.login_affiliate("alice").await;

    let mut owner = GqlWs::connect(&app, Some(&live.tenant.token), WsProtocol::TransportWs).await;
    let owner_sub = owner.subscribe(SUBSCRIPTION, json!({ "since": "c0" })).await;
    let mut alice = GqlWs::connect(&app, Some(&alice_token), WsProtocol::TransportWs).await;
    let alice_sub = alice.subscribe(SUBSCRIPTION, json!({ "since": "c0" })).await;

    let for_bob = live.convert(&live.bob_link, &[("event", "registration"), ("player_id", "p-bob")]).await;
    let for_alice =
        live.convert(&live.alice_link, &[("event", "registration"), ("player_id", "p-alice")]).await;
    let nobodys = live
        .tenant
        .postback_ok(&[
            ("player_id", "p-unknown"),
            ("event", "deposit"),
            ("txn_id", "U-1"),
            ("amount", "3"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(nobodys["attributed"], false);
    // Bound to alice at registration: only the player ID.
    let alice_deposit = live
        .tenant
        .postback_ok(&[
            ("player_id", "p-alice"),
            ("event", "deposit"),
            ("txn_id", "A-1"),
            ("amount", "30"),
            ("currency", "EUR"),
        ])
        .await;

    // Alice: exactly her two, in order, with her credit only and no player ID.
    for expected in [&for_alice, &alice_deposit] {
        let event = next_event(&mut alice, &alice_sub).await;
        assert_eq!(event["id"], expected["conversion_id"], "alice got someone else's conversion: {event}");
        assert_eq!(
            event["credits"],
            json!([{ "affiliateId": live.alice, "share": "1", "commission": null }])
        );
        assert_eq!(event["conversion"]["playerId"], Value::Null, "player ID leaked: {event}");
    }
    // The owner: all four, with player IDs.
    for expected in [&for_bob, &for_alice, &nobodys, &alice_deposit] {
        let event = next_event(&mut owner, &owner_sub).await;
        assert_eq!(event["id"], expected["conversion_id"]);
        assert!(event["conversion"]["playerId"].is_string(), "{event}");
    }
    // One more for bob, then one for alice: alice's next event is hers.
    live.convert(&live.bob_link, &[("event", "registration"), ("player_id", "p-bob-2")]).await;
    let last = live.convert(&live.alice_link, &[("event", "registration"), ("player_id", "p-alice-2")]).await;
    let event = next_event(&mut alice, &alice_sub).await;
    assert_eq!(event["id"], last["conversion_id"], "{event}");

    // The same holds for queries.
    let visible = conversions_as(&app, &alice_token).await;
    let ids: Vec<&Value> = visible.iter().map(|c| &c["id"]).collect();
    assert_eq!(
        ids,
        vec![&for_alice["conversion_id"], &alice_deposit["conversion_id"], &last["conversion_id"]]
    );
    assert!(visible.iter().all(|c| c["playerId"].is_null()), "{visible:?}");
    let own = run_as(
        &app,
        &alice_token,
        "query($id: ID!) { conversion(id: $id) { playerId } }",
        json!({ "id": for_alice["conversion_id"] }),
    )
    .await;
    assert_eq!(own["conversion"]["playerId"], Value::Null);
    let foreign = app
        .graphql(
            Some(&alice_token),
            "query($id: ID!) { conversion(id: $id) { id } }",
            json!({ "id": for_bob["conversion_id"] }),
        )
        .await;
    assert_eq!(error_code(&foreign), Some("NOT_FOUND"), "{foreign}");
    owner.close().await;
    alice.close().await;
}

/// Waits until `/metrics` shows `count` live feeds running (each resolving every new event).
async fn until_feeds(app: &TestApp, count: f64) {
    let deadline = Instant::now() + PATIENCE;
    while app.metric("live_feeds").await != count {
        assert!(Instant::now() < deadline, "{count} live feeds did not start within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn subscribers_sharing_a_document_and_viewer_share_one_resolution_per_event() {
    let app = spawn_app!().await;
    let tenant = Tenant::create(&app, "live-shared").await;
    let alice = tenant.create_affiliate("alice", true).await;
    let bob = tenant.create_affiliate("bob", true).await;
    let campaign = tenant.create_campaign("Casino", json!({})).await;
    let alice_link = tenant.create_link(&alice, &campaign).await;
    let bob_link = tenant.create_link(&bob, &campaign).await;
    let (alice_token, bob_token) =
        (tenant.login_affiliate("alice").await, tenant.login_affiliate("bob").await);

    // Two owners (one per protocol) and two affiliates, all with the same document.
    let mut subscribers = Vec::new();
    for (who, token, protocol) in [
        ("owner", &tenant.token, WsProtocol::TransportWs),
        ("owner (legacy)", &tenant.token, WsProtocol::Legacy),
        ("alice", &alice_token, WsProtocol::TransportWs),
        ("bob", &bob_token, WsProtocol::Legacy),
    ] {
        let mut ws = GqlWs::connect(&app, Some(token), protocol).await;
        let sub = ws.subscribe(SUBSCRIPTION, json!({ "since": "c0" })).await;
        subscribers.push((who, ws, sub));
    }
    // One feed per viewer: the owners share theirs.
    until_feeds(&app, 3.0).await;

    let convert = |link: &Link, player: &str| {
        let (tenant, code, player) = (&tenant, link.code.clone(), player.to_owned());
        async move {
            let click_id = tenant.app.click(&code, "", None).await.click_id();
            id_of(
                &tenant
                    .postback_ok(&[
                        ("click_id", &click_id),
                        ("event", "registration"),
                        ("player_id", &player),
                    ])
                    .await,
            )
        }
    };
    let a1 = convert(&alice_link, "s-a1").await;
    let b1 = convert(&bob_link, "s-b1").await;
    let nobody = id_of(&tenant.postback_ok(&[("event", "registration"), ("player_id", "s-none")]).await);
    let a2 = convert(&alice_link, "s-a2").await;
    let everything = vec![a1.clone(), b1.clone(), nobody, a2.clone()];

    for (who, ws, sub) in &mut subscribers {
        let (expected, credited) = match *who {
            "alice" => (vec![a1.clone(), a2.clone()], Some(&alice)),
            "bob" => (vec![b1.clone()], Some(&bob)),
            _ => (everything.clone(), None),
        };
        for id in expected {
            let event = next_event(ws, sub).await;
            assert_eq!(event["id"], json!(id), "{who} got another conversion: {event}");
            match credited {
                Some(me) => {
                    assert_eq!(
                        event["credits"],
                        json!([{ "affiliateId": me, "share": "1", "commission": null }])
                    );
                    assert_eq!(
                        event["conversion"]["playerId"],
                        Value::Null,
                        "{who}: player ID leaked: {event}"
                    );
                }
                None => assert!(event["conversion"]["playerId"].is_string(), "{who}: {event}"),
            }
        }
    }
    // Nothing else was in between: each one's next frames are the next of its own. Every
    // frame is read before the counters are: a feed counts a frame before sending it, but the
    // owners' feed may still be on its way to them when bob has his.
    let (a3, b2) = (convert(&alice_link, "s-a3").await, convert(&bob_link, "s-b2").await);
    for (who, ws, sub) in &mut subscribers {
        let expected = match *who {
            "alice" => vec![&a3],
            "bob" => vec![&b2],
            _ => vec![&a3, &b2],
        };
        for id in expected {
            assert_eq!(next_event(ws, sub).await["id"], json!(id), "{who}");
        }
    }

    // One resolution per (document, viewer) per event it may see: owners 6, alice 3, bob 2;
    // not one per subscriber (which would make 6 + 6 + 3 + 2).
    assert_eq!(app.metric(r#"live_frame_resolutions_total{source="feed"}"#).await, 11.0);
    // Frames sent: every subscriber got its own, whether from the feed or its own replay.
    assert_eq!(app.metric("live_frames_total").await, 17.0);
    for (_, ws, _) in subscribers {
        ws.close().await;
    }
}

#[tokio::test]
async fn resubscribing_with_since_replays_exactly_what_was_missed() {
    for protocol in [WsProtocol::TransportWs, WsProtocol::Legacy] {
        let app = spawn_app!().await;
        let live = live_setup(&app, "live-resume").await;

        let mut ws = GqlWs::connect(&app, Some(&live.tenant.token), protocol).await;
        let sub = ws.subscribe(SUBSCRIPTION, json!({})).await;
        until_live(&mut ws, &sub, &live.tenant).await;
        let first = live.register("r-1").await;
        let event = next_event(&mut ws, &sub).await;
        assert_eq!(event["id"], first["conversion_id"]);
        let cursor = event["cursor"].as_str().expect("cursor").to_owned();
        ws.close().await;

        // Missed while disconnected.
        let second = live.register("r-2").await;
        let third = live.register("r-3").await;

        let mut ws = GqlWs::connect(&app, Some(&live.tenant.token), protocol).await;
        let sub = ws.subscribe(SUBSCRIPTION, json!({ "since": cursor })).await;
        let mut seqs = vec![cursor_seq(&event)];
        for expected in [&second, &third] {
            let replayed = next_event(&mut ws, &sub).await;
            assert_eq!(replayed["id"], expected["conversion_id"], "{protocol:?}: {replayed}");
            seqs.push(cursor_seq(&replayed));
        }
        // Then live again, with nothing in between.
        let fourth = live.register("r-4").await;
        let live_event = next_event(&mut ws, &sub).await;
        assert_eq!(live_event["id"], fourth["conversion_id"], "{protocol:?}: {live_event}");
        seqs.push(cursor_seq(&live_event));
        assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "{protocol:?}: cursors {seqs:?}");
        ws.close().await;
    }
}

#[tokio::test]
async fn a_cursor_older_than_the_replay_limit_is_refused_with_a_way_out() {
    let app = spawn_app!("--max-replay-events", "2").await;
    let live = live_setup(&app, "live-replay-cap").await;
    for player in ["p-1", "p-2", "p-3"] {
        live.register(player).await;
    }
    let mut ws = GqlWs::connect(&app, Some(&live.tenant.token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(SUBSCRIPTION, json!({ "since": "c0" })).await;
    let refused = ws.next_for(&sub, PATIENCE).await.expect("an answer").expect_err("c0 is too old");
    let error = &refused["payload"];
    let error = if error.is_array() { &error[0] } else { &error["errors"][0] };
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    assert_eq!(error["extensions"]["field"], "since", "{refused}");
    assert!(error["message"].as_str().unwrap_or_default().contains("`conversions` query"), "{refused}");

    // Within the limit the replay works as ever.
    let sub = ws.subscribe(SUBSCRIPTION, json!({ "since": "c1" })).await;
    let replayed = [next_event(&mut ws, &sub).await, next_event(&mut ws, &sub).await];
    assert_eq!(replayed.map(|event| cursor_seq(&event)), [2, 3]);
    ws.close().await;
}

#[tokio::test]
async fn subscriptions_need_a_valid_token_and_cursor() {
    let app = spawn_app!().await;
    let live = live_setup(&app, "live-auth").await;

    for protocol in [WsProtocol::TransportWs, WsProtocol::Legacy] {
        // A bad token is refused at connection_init.
        let mut ws = GqlWs::open(&app, protocol).await;
        ws.send(json!({ "type": "connection_init", "payload": { "token": "not-a-token" } })).await;
        ws.expect_refused(PATIENCE).await;

        // No token: the connection is fine, the subscription is not.
        let mut ws = GqlWs::connect(&app, None, protocol).await;
        let sub = ws.subscribe(SUBSCRIPTION, json!({})).await;
        let refused = ws.next_for(&sub, PATIENCE).await.expect("an answer");
        let error = refused.expect_err("anonymous subscription must fail");
        assert!(error.to_string().contains("UNAUTHENTICATED"), "{protocol:?}: {error}");

        // A malformed cursor is bad input.
        let mut ws = GqlWs::connect(&app, Some(&live.tenant.token), protocol).await;
        let sub = ws.subscribe(SUBSCRIPTION, json!({ "since": "yesterday" })).await;
        let error = ws.next_for(&sub, PATIENCE).await.expect("an answer").expect_err("bad cursor must fail");
        assert!(error.to_string().contains("BAD_USER_INPUT"), "{protocol:?}: {error}");
    }
}

#[tokio::test]
async fn replicas_on_one_postgres_database_fan_out_to_each_other() {
    let app = spawn_app!().await;
    if !app.is_postgres() {
        eprintln!("skipped: two replicas need PostgreSQL (set TEST_DATABASE_URL)");
        return;
    }
    let replica = app.spawn_replica().await;
    let live = live_setup(&app, "replicas").await;
    let on_replica = live.tenant.on(&replica);

    // Subscribed on replica 1, live (probes posted to replica 1 itself).
    let mut ws = GqlWs::connect(&app, Some(&live.tenant.token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(SUBSCRIPTION, json!({})).await;
    until_live(&mut ws, &sub, &live.tenant).await;

    // A postback to replica 2 reaches it through PostgreSQL.
    let click_id = replica.click(&live.alice_link.code, "", None).await.click_id();
    let answer = on_replica
        .postback_ok(&[
            ("click_id", &click_id),
            ("event", "ftd"),
            ("txn_id", "R-1"),
            ("amount", "75"),
            ("currency", "EUR"),
        ])
        .await;
    let answered = Instant::now();
    let event = next_event(&mut ws, &sub).await;
    let latency = answered.elapsed();
    assert_eq!(event["id"], answer["conversion_id"], "{event}");
    assert!(latency < Duration::from_secs(2), "cross-replica event took {latency:?}");
    assert_eq!(event["credits"], json!([{ "affiliateId": live.alice, "share": "1", "commission": null }]));

    // And the other way round, with interleaved postbacks on both replicas, in order.
    let mut ws2 = GqlWs::connect(&replica, Some(&live.tenant.token), WsProtocol::Legacy).await;
    let sub2 = ws2.subscribe(SUBSCRIPTION, json!({ "since": event["cursor"] })).await;
    let a = live.tenant.postback_ok(&[("event", "registration"), ("player_id", "via-1")]).await;
    let b = on_replica.postback_ok(&[("event", "registration"), ("player_id", "via-2")]).await;
    let c = live.tenant.postback_ok(&[("event", "registration"), ("player_id", "via-3")]).await;
    for expected in [&a, &b, &c] {
        assert_eq!(next_event(&mut ws, &sub).await["id"], expected["conversion_id"], "replica 1");
        assert_eq!(next_event(&mut ws2, &sub2).await["id"], expected["conversion_id"], "replica 2");
    }
    ws.close().await;
    ws2.close().await;
}

/// A replica publishes the postbacks it stores from what its writer committed; only the other
/// replicas read them back from the database. (It read its own back too whenever its listener
/// heard the `NOTIFY` before the writer had published: a fifth of PostgreSQL's statement time at
/// full postback load.)
#[tokio::test]
async fn a_replica_reads_back_only_the_events_of_other_replicas() {
    let app = spawn_app!().await;
    if !app.is_postgres() {
        eprintln!("skipped: two replicas need PostgreSQL (set TEST_DATABASE_URL)");
        return;
    }
    let replica = app.spawn_replica().await;
    let tenant = Tenant::create(&app, "read-back").await;
    const POSTBACKS: usize = 40;
    let answers = futures_util::future::join_all((0..POSTBACKS).map(|n| {
        let tenant = &tenant;
        async move {
            let player = format!("player-{n}");
            tenant.postback_ok(&[("event", "registration"), ("player_id", &player)]).await
        }
    }))
    .await;
    assert_eq!(answers.len(), POSTBACKS);

    let deadline = Instant::now() + PATIENCE;
    while replica.metric("live_events_read_back_total").await < POSTBACKS as f64 {
        assert!(Instant::now() < deadline, "the other replica did not read the {POSTBACKS} events");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.metric("live_events_read_back_total").await,
        0.0,
        "the writer's own replica read them back"
    );
}
