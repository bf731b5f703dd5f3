//! Outbound affiliate postbacks end to end: the real binary, a real inbound postback, and a
//! real HTTP receiver on loopback (allowed with `--outbound-allow`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clickledger_e2e::receiver::{Received, Receiver};
use clickledger_e2e::tenant::{Link, Tenant};
use clickledger_e2e::{TestApp, error_code, spawn_app};
use serde_json::{Value, json};

struct Setup {
    owner: String,
    api_key: String,
    affiliate_id: String,
    campaign_id: String,
    link_code: String,
}

async fn setup(app: &TestApp, slug: &str) -> Setup {
    let (owner, _) = app.sign_up(slug).await;
    let gql = |query: &'static str, variables: Value| {
        let owner = owner.clone();
        async move {
            let answer = app.graphql(Some(&owner), query, variables).await;
            assert!(answer["errors"].is_null(), "{answer}");
            answer["data"].clone()
        }
    };
    let api_key = gql("mutation { createApiKey(input: {name: \"s2s\"}) { key } }", json!({})).await["createApiKey"]
        ["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let affiliate_id = gql(
        "mutation($i: CreateAffiliateInput!) { createAffiliate(input: $i) { id } }",
        json!({"i": {"name": "Partner", "email": format!("partner@{slug}.test")}}),
    )
    .await["createAffiliate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let campaign_id = gql(
        "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }",
        json!({"i": {"name": "Casino", "landingUrl": "https://shop.test/?cid={click_id}"}}),
    )
    .await["createCampaign"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link_code = gql(
        "mutation($i: CreateTrackingLinkInput!) { createTrackingLink(input: $i) { code } }",
        json!({"i": {"affiliateId": affiliate_id, "campaignId": campaign_id}}),
    )
    .await["createTrackingLink"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    Setup { owner, api_key, affiliate_id, campaign_id, link_code }
}

async fn click(app: &TestApp, code: &str) -> String {
    let response = app.client.get(app.url(&format!("/c/{code}?sub1=spring%20promo"))).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    location.split("cid=").nth(1).unwrap().to_owned()
}

async fn inbound_postback(app: &TestApp, s: &Setup, click_id: &str, txn: &str) {
    let response = app
        .client
        .get(app.url("/postback"))
        .query(&[
            ("key", s.api_key.as_str()),
            ("click_id", click_id),
            ("event", "ftd"),
            ("txn_id", txn),
            ("amount", "100"),
            ("currency", "EUR"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn create_endpoint(app: &TestApp, s: &Setup, url_template: &str) -> (String, String) {
    let answer = app
        .graphql(
            Some(&s.owner),
            "mutation($i: CreatePostbackEndpointInput!) {
                createPostbackEndpoint(input: $i) { secret endpoint { id enabled method } }
            }",
            json!({"i": {
                "affiliateId": s.affiliate_id,
                "campaignId": s.campaign_id,
                "urlTemplate": url_template,
                "method": "GET",
                "events": ["ftd"],
            }}),
        )
        .await;
    let payload = &answer["data"]["createPostbackEndpoint"];
    assert!(payload.is_object(), "{answer}");
    (payload["endpoint"]["id"].as_str().unwrap().to_owned(), payload["secret"].as_str().unwrap().to_owned())
}

async fn wait_for(receiver: &Receiver, count: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while receiver.count() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.count(), count, "requests received: {:?}", receiver.all());
}

fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed =
        format!("{}.{}.", received.header("webhook-id"), received.header("webhook-timestamp")).into_bytes();
    signed.extend_from_slice(&received.body);
    received.header("webhook-signature").split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else { return false };
        let Ok(signature) = STANDARD.decode(encoded) else { return false };
        ring::hmac::verify(&key, &signed, &signature).is_ok()
    })
}

const DELIVERIES: &str = "query($e: ID!) { postbackDeliveries(endpointId: $e) { edges { node {
    id state attemptCount lastStatus url attempts { attempt responseStatus responseBody latencyMs request }
} } } }";

#[tokio::test]
async fn an_attributed_conversion_reaches_the_affiliates_tracker_signed() {
    let app = spawn_app!("--outbound-allow", "127.0.0.1/32").await;
    let s = setup(&app, "outbound").await;
    let (receiver, port) = Receiver::start().await;
    // A EUR plan paying 25 per first deposit, so {payout} has something to say.
    let plan = app
        .graphql(
            Some(&s.owner),
            "mutation($i: CreateCommissionPlanInput!) { createCommissionPlan(input: $i) { id } }",
            json!({"i": {"name": "Outbound", "effectiveFrom": "2000-01-01T00:00:00Z",
                         "rules": {"currency": "EUR", "cpa": {"amount": "25"}}}}),
        )
        .await;
    let plan = plan["data"]["createCommissionPlan"]["id"].as_str().expect("plan created").to_owned();
    let assigned = app
        .graphql(
            Some(&s.owner),
            "mutation($i: AssignCommissionPlanInput!) { assignCommissionPlan(input: $i) { id } }",
            json!({"i": {"planId": plan, "campaignId": s.campaign_id, "effectiveFrom": "2000-01-01T00:00:00Z"}}),
        )
        .await;
    assert!(assigned["data"]["assignCommissionPlan"].is_object(), "{assigned}");
    let (endpoint, secret) = create_endpoint(
        &app,
        &s,
        &format!(
            "http://127.0.0.1:{port}/pb?cid={{click_id}}&tx={{txn_id}}&s1={{sub1}}&amt={{amount}}&st={{status}}&p={{payout}}"
        ),
    )
    .await;

    let click_id = click(&app, &s.link_code).await;
    // Clicks are written behind; give the batcher a moment so {sub1} is known.
    tokio::time::sleep(Duration::from_millis(500)).await;
    inbound_postback(&app, &s, &click_id, "TX-1").await;
    wait_for(&receiver, 1, Duration::from_secs(10)).await;

    let got = &receiver.all()[0];
    assert_eq!(got.method, "GET");
    assert_eq!(got.target, format!("/pb?cid={click_id}&tx=TX-1&s1=spring%20promo&amt=100&st=approved&p=25"));
    assert!(verify(&secret, got), "the signature verifies with an independent HMAC");

    let log = app.graphql(Some(&s.owner), DELIVERIES, json!({"e": endpoint})).await;
    let node = &log["data"]["postbackDeliveries"]["edges"][0]["node"];
    assert_eq!(node["state"], "SUCCEEDED", "{log}");
    assert_eq!(node["id"].as_str().unwrap(), got.header("webhook-id"));
    assert_eq!(node["attempts"][0]["responseStatus"], 200);
    assert_eq!(node["attempts"][0]["responseBody"], "ok");

    // A test message goes out on demand, signed the same way.
    let test = app
        .graphql(
            Some(&s.owner),
            "mutation($e: ID!) { sendTestPostback(endpointId: $e) { id event state } }",
            json!({"e": endpoint}),
        )
        .await;
    assert_eq!(test["data"]["sendTestPostback"]["event"], "test", "{test}");
    wait_for(&receiver, 2, Duration::from_secs(10)).await;
    assert!(verify(&secret, &receiver.all()[1]));

    // Redeliver sends the first delivery again, with the same webhook-id.
    let first_id = node["id"].as_str().unwrap();
    let again = app
        .graphql(
            Some(&s.owner),
            "mutation($d: ID!) { redeliver(deliveryId: $d) { state } }",
            json!({"d": first_id}),
        )
        .await;
    assert_eq!(again["data"]["redeliver"]["state"], "PENDING", "{again}");
    wait_for(&receiver, 3, Duration::from_secs(10)).await;
    assert_eq!(receiver.all()[2].header("webhook-id"), first_id);
}

#[tokio::test]
async fn a_killed_process_resumes_pending_retries_without_repeating_acknowledged_ones() {
    let mut app = spawn_app!("--outbound-allow", "127.0.0.1/32").await;
    let s = setup(&app, "killed").await;
    let (receiver, port) = Receiver::start().await;
    let (endpoint, _) = create_endpoint(&app, &s, &format!("http://127.0.0.1:{port}/pb?tx={{txn_id}}")).await;

    // The first conversion is acknowledged at once.
    let click_id = click(&app, &s.link_code).await;
    inbound_postback(&app, &s, &click_id, "ACK").await;
    wait_for(&receiver, 1, Duration::from_secs(10)).await;
    // The second fails its first attempt; its retry is 5 s out when the process dies.
    receiver.answer(500);
    inbound_postback(&app, &s, &click_id, "RETRY").await;
    wait_for(&receiver, 2, Duration::from_secs(10)).await;
    // Killed only once the failure is recorded: killed mid-send instead, the attempt stays
    // leased for its timeout plus a minute, which is another test's subject.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = app.graphql(Some(&s.owner), DELIVERIES, json!({"e": endpoint})).await;
        let recorded = log["data"]["postbackDeliveries"]["edges"]
            .as_array()
            .is_some_and(|edges| edges.iter().any(|e| e["node"]["lastStatus"] == json!(500)));
        if recorded {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the failed attempt was never recorded: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.kill().await;

    app.start().await;
    wait_for(&receiver, 3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let targets: Vec<String> = receiver.all().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        vec!["/pb?tx=ACK", "/pb?tx=RETRY", "/pb?tx=RETRY"],
        "nothing acknowledged was sent twice"
    );
    let log = app.graphql(Some(&s.owner), DELIVERIES, json!({"e": endpoint})).await;
    let states: Vec<(Value, Value)> = log["data"]["postbackDeliveries"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["state"].clone(), e["node"]["attemptCount"].clone()))
        .collect();
    assert_eq!(states, vec![(json!("SUCCEEDED"), json!(1)), (json!("SUCCEEDED"), json!(2))], "{log}");
}

#[tokio::test]
async fn endpoints_are_guarded_and_scoped() {
    // No allow-list: internal addresses are refused when saved.
    let app = spawn_app!().await;
    let s = setup(&app, "guarded").await;
    for url in [
        "http://127.0.0.1/pb",
        "http://10.0.0.8/pb",
        "http://169.254.169.254/latest",
        "http://[::1]/pb",
        "http://localhost:9/pb",
    ] {
        let answer = app
            .graphql(
                Some(&s.owner),
                "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { secret } }",
                json!({"i": {"affiliateId": s.affiliate_id, "urlTemplate": url}}),
            )
            .await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{url}: {answer}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], "urlTemplate");
    }
    let answer = app
        .graphql(
            Some(&s.owner),
            "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { secret } }",
            json!({"i": {"affiliateId": s.affiliate_id, "urlTemplate": "https://{sub1}.example/pb"}}),
        )
        .await;
    assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");

    let (endpoint, secret) = create_endpoint(&app, &s, "https://tracker.example/pb?cid={click_id}").await;
    assert!(secret.starts_with("whsec_"));
    let rotated = app
        .graphql(
            Some(&s.owner),
            "mutation($e: ID!) { rotatePostbackSecret(id: $e, overlapHours: 2) { secret endpoint { previousSecretValidUntil } } }",
            json!({"e": endpoint}),
        )
        .await;
    let payload = &rotated["data"]["rotatePostbackSecret"];
    assert!(payload["secret"].as_str().unwrap().starts_with("whsec_") && payload["secret"] != json!(secret));
    assert!(payload["endpoint"]["previousSecretValidUntil"].is_string(), "{rotated}");

    let updated = app
        .graphql(
            Some(&s.owner),
            "mutation($e: ID!) { updatePostbackEndpoint(id: $e, input: {enabled: false, timeoutMs: 2000}) { enabled timeoutMs disabledReason } }",
            json!({"e": endpoint}),
        )
        .await;
    assert_eq!(updated["data"]["updatePostbackEndpoint"]["enabled"], false, "{updated}");
    assert_eq!(updated["data"]["updatePostbackEndpoint"]["timeoutMs"], 2000);

    // Another tenant does not see it.
    let (other, _) = app.sign_up("elsewhere").await;
    let foreign = app
        .graphql(Some(&other), "query($e: ID!) { postbackEndpoint(id: $e) { id } }", json!({"e": endpoint}))
        .await;
    assert_eq!(error_code(&foreign), Some("NOT_FOUND"));
    let list = app.graphql(Some(&other), "{ postbackEndpoints { edges { node { id } } } }", json!({})).await;
    assert_eq!(list["data"]["postbackEndpoints"]["edges"], json!([]));
}

#[tokio::test]
async fn affiliates_manage_their_own_endpoints_only() {
    let app = spawn_app!().await;
    let s = setup(&app, "selfserve").await;
    let create_affiliate = |email: &'static str| {
        let owner = s.owner.clone();
        let app = &app;
        async move {
            let answer = app
                .graphql(
                    Some(&owner),
                    "mutation($i: CreateAffiliateInput!) { createAffiliate(input: $i) { id } }",
                    json!({"i": {"name": email, "email": email, "password": "affiliate password"}}),
                )
                .await;
            answer["data"]["createAffiliate"]["id"].as_str().unwrap().to_owned()
        }
    };
    let ann = create_affiliate("ann@partners.test").await;
    let bob = create_affiliate("bob@partners.test").await;
    let login = app
        .graphql(
            None,
            "mutation($i: LoginInput!) { login(input: $i) { token } }",
            json!({"i": {"tenantSlug": "selfserve", "email": "ann@partners.test", "password": "affiliate password"}}),
        )
        .await;
    let ann_token = login["data"]["login"]["token"].as_str().unwrap().to_owned();

    let create = "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { endpoint { id affiliateId } } }";
    let own = app
        .graphql(
            Some(&ann_token),
            create,
            json!({"i": {"urlTemplate": "https://ann-tracker.example/pb?c={click_id}"}}),
        )
        .await;
    assert_eq!(own["data"]["createPostbackEndpoint"]["endpoint"]["affiliateId"], json!(ann), "{own}");
    let for_bob = app
        .graphql(
            Some(&ann_token),
            create,
            json!({"i": {"affiliateId": bob, "urlTemplate": "https://x.example/pb"}}),
        )
        .await;
    assert_eq!(error_code(&for_bob), Some("NOT_FOUND"), "{for_bob}");

    // Staff sets one up for Bob; Ann cannot see it, its deliveries, or send to it.
    let bobs = app
        .graphql(
            Some(&s.owner),
            create,
            json!({"i": {"affiliateId": bob, "urlTemplate": "https://bob-tracker.example/pb"}}),
        )
        .await;
    let bobs = bobs["data"]["createPostbackEndpoint"]["endpoint"]["id"].as_str().unwrap().to_owned();
    let listed =
        app.graphql(Some(&ann_token), "{ postbackEndpoints { edges { node { id } } } }", json!({})).await;
    assert_eq!(listed["data"]["postbackEndpoints"]["edges"].as_array().unwrap().len(), 1, "{listed}");
    let deliveries = app.graphql(Some(&ann_token), DELIVERIES, json!({"e": bobs})).await;
    assert_eq!(error_code(&deliveries), Some("NOT_FOUND"));
    let test = app
        .graphql(
            Some(&ann_token),
            "mutation($e: ID!) { sendTestPostback(endpointId: $e) { id } }",
            json!({"e": bobs}),
        )
        .await;
    assert_eq!(error_code(&test), Some("NOT_FOUND"));
    // Staff see both.
    let all = app.graphql(Some(&s.owner), "{ postbackEndpoints { edges { node { id } } } }", json!({})).await;
    assert_eq!(all["data"]["postbackEndpoints"]["edges"].as_array().unwrap().len(), 2);
}

/// A linear campaign credits two affiliates; each has an endpoint on one receiver.
async fn two_affiliate_endpoints(tenant: &Tenant<'_>, port: u16) -> (String, String, Link, Link) {
    let first = tenant.create_affiliate("first", false).await;
    let second = tenant.create_affiliate("second", false).await;
    let campaign = tenant.create_campaign("Shared", json!({ "attributionModel": "LINEAR" })).await;
    for affiliate in [&first, &second] {
        tenant
            .run(
                "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { secret } }",
                json!({"i": {
                    "affiliateId": affiliate,
                    "urlTemplate": format!(
                        "http://127.0.0.1:{port}/pb?aff={{affiliate_id}}&cid={{click_id}}&s1={{sub1}}&st={{status}}"
                    ),
                }}),
            )
            .await;
    }
    let first_link = tenant.create_link(&first, &campaign).await;
    let second_link = tenant.create_link(&second, &campaign).await;
    (first, second, first_link, second_link)
}

/// (affiliate, click ID, sub1, status) of every request received, sorted.
fn heard(receiver: &Receiver) -> Vec<(String, String, String, String)> {
    let mut all: Vec<_> = receiver
        .all()
        .iter()
        .map(|r| {
            let url = url::Url::parse(&format!("http://x{}", r.target)).unwrap();
            let param = |name: &str| {
                url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
            };
            (param("aff"), param("cid"), param("s1"), param("st"))
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn each_credited_affiliate_hears_of_its_own_click_and_sub_ids_only() {
    let app = spawn_app!("--outbound-allow", "127.0.0.1/32").await;
    let tenant = Tenant::create(&app, "own-clicks").await;
    let (receiver, port) = Receiver::start().await;
    let (first, second, first_link, second_link) = two_affiliate_endpoints(&tenant, port).await;
    let recorded_before = app.metric("clicks_recorded_total").await;

    // One browser clicks the first affiliate's link, then the second's.
    let first_click = app.click(&first_link.code, "sub1=first-secret", None).await;
    let visitor = first_click.visitor().expect("visitor cookie").to_owned();
    let second_click = app.click(&second_link.code, "sub1=second-secret", Some(&visitor)).await;
    app.wait_for_recorded_clicks(recorded_before + 2.0).await;
    let answer = tenant
        .postback_ok(&[
            ("click_id", &second_click.click_id()),
            ("event", "ftd"),
            ("txn_id", "SHARED-1"),
            ("amount", "100"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(answer["credits"].as_array().map(Vec::len), Some(2), "{answer}");

    wait_for(&receiver, 2, Duration::from_secs(10)).await;
    let mut expected = vec![
        (first.clone(), first_click.click_id(), "first-secret".to_owned(), "approved".to_owned()),
        (second.clone(), second_click.click_id(), "second-secret".to_owned(), "approved".to_owned()),
    ];
    expected.sort();
    assert_eq!(heard(&receiver), expected);
}

#[tokio::test]
async fn a_suspended_affiliates_endpoints_receive_nothing() {
    let app = spawn_app!("--outbound-allow", "127.0.0.1/32").await;
    let tenant = Tenant::create(&app, "suspended-endpoints").await;
    let (receiver, port) = Receiver::start().await;
    let (first, second, first_link, second_link) = two_affiliate_endpoints(&tenant, port).await;
    let recorded_before = app.metric("clicks_recorded_total").await;
    let first_click = app.click(&first_link.code, "", None).await;
    let visitor = first_click.visitor().expect("visitor cookie").to_owned();
    let second_click = app.click(&second_link.code, "", Some(&visitor)).await.click_id();
    app.wait_for_recorded_clicks(recorded_before + 2.0).await;
    let post = |status: &'static str| {
        let click = second_click.clone();
        let tenant = &tenant;
        async move {
            tenant
                .postback_ok(&[
                    ("click_id", &click),
                    ("event", "ftd"),
                    ("txn_id", "SUSP-1"),
                    ("amount", "100"),
                    ("currency", "EUR"),
                    ("status", status),
                ])
                .await
        }
    };
    let answer = post("pending").await;
    assert_eq!(answer["credits"].as_array().map(Vec::len), Some(2), "{answer}");
    wait_for(&receiver, 2, Duration::from_secs(10)).await;

    // While the first affiliate is suspended, only the second hears of the approval.
    tenant.run("mutation($id: ID!) { suspendAffiliate(id: $id) { id } }", json!({ "id": first })).await;
    post("approved").await;
    wait_for(&receiver, 3, Duration::from_secs(10)).await;
    // Once active again, the first hears of what happens next (so its endpoint works).
    tenant.run("mutation($id: ID!) { activateAffiliate(id: $id) { id } }", json!({ "id": first })).await;
    post("rejected").await;
    wait_for(&receiver, 5, Duration::from_secs(10)).await;

    let statuses = |affiliate: &str| -> Vec<String> {
        let mut got: Vec<String> =
            heard(&receiver).into_iter().filter(|h| h.0 == affiliate).map(|h| h.3).collect();
        got.sort();
        got
    };
    assert_eq!(statuses(&second), vec!["approved", "pending", "rejected"]);
    assert_eq!(statuses(&first), vec!["pending", "rejected"]);
}
