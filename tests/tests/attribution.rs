//! Attribution end to end: tracking-link clicks, inbound postbacks (idempotency, validation,
//! authentication), unattributed conversions, lifetime binding, chargebacks and multi-touch
//! credit, all against the real binary over HTTP.

use std::time::Duration;

use clickledger_e2e::tenant::{Link, Tenant, conversions_as, flip_char, run_as, sum_decimals};
use clickledger_e2e::{TestApp, error_code, spawn_app};
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::time::Instant;

/// A tenant with one affiliate, one last-click campaign and a link.
struct Setup<'a> {
    tenant: Tenant<'a>,
    affiliate: String,
    campaign: String,
    link: Link,
}

async fn setup<'a>(app: &'a TestApp, slug: &str) -> Setup<'a> {
    let tenant = Tenant::create(app, slug).await;
    let affiliate = tenant.create_affiliate("alice", false).await;
    let campaign = tenant.create_campaign("Casino", json!({})).await;
    let link = tenant.create_link(&affiliate, &campaign).await;
    Setup { tenant, affiliate, campaign, link }
}

impl Setup<'_> {
    async fn click_id(&self) -> String {
        self.tenant.app.click(&self.link.code, "", None).await.click_id()
    }
}

/// A postback's parameters.
type Params<'p> = &'p [(&'p str, &'p str)];

fn credits(answer: &Value) -> Vec<(String, String)> {
    answer["credits"]
        .as_array()
        .unwrap_or_else(|| panic!("no credits in {answer}"))
        .iter()
        .map(|c| {
            let affiliate = c["affiliate_id"].as_str().or(c["affiliateId"].as_str()).expect("affiliate id");
            (affiliate.to_owned(), c["share"].as_str().expect("share is a string").to_owned())
        })
        .collect()
}

fn find<'v>(conversions: &'v [Value], id: &str) -> &'v Value {
    conversions.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("conversion {id} not listed"))
}

/// Polls a click until `done` holds for its answer, for up to 10 s (the link cache lives 5 s).
async fn poll_click(
    app: &TestApp,
    code: &str,
    what: &str,
    done: impl Fn(&clickledger_e2e::tenant::ClickAnswer) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = app.click(code, "", None).await;
        if done(&answer) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {answer:?} after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn click_redirects_with_filled_macros_and_a_visitor_cookie() {
    let app = spawn_app!().await;
    let s = setup(&app, "clicks").await;

    let first = app.click(&s.link.code, "sub1=x%20y&sub2=ignored", None).await;
    assert_eq!(first.status, 302, "{first:?}");
    let location = first.location.clone().expect("Location");
    assert!(location.starts_with("https://land.example/p?cid="), "{location}");
    let click_id = first.click_id();
    assert!(!click_id.is_empty() && click_id.len() <= 40, "click ID {click_id:?}");
    assert!(
        click_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "click ID is not URL-safe: {click_id}"
    );
    assert_eq!(first.location_param("s"), Some("x%20y"), "sub1 must be URL-encoded: {location}");
    assert_eq!(first.location_param("a"), Some(s.affiliate.as_str()), "{location}");
    assert_eq!(location, format!("https://land.example/p?cid={click_id}&s=x%20y&a={}", s.affiliate));

    let cookie = first.set_cookie.clone().expect("Set-Cookie");
    assert!(cookie.starts_with("clv="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let visitor = first.visitor().expect("visitor").to_owned();
    assert!(!visitor.is_empty());

    // The same browser (sending its cookie) stays the same visitor; a fresh one does not.
    let again = app.click(&s.link.code, "", Some(&visitor)).await;
    assert_eq!(again.status, 302);
    assert_eq!(again.visitor(), Some(visitor.as_str()));
    assert_ne!(again.click_id(), click_id, "every click gets its own ID");
    let stranger = app.click(&s.link.code, "", None).await;
    assert_ne!(stranger.visitor(), Some(visitor.as_str()));
    // An empty macro value is filled with nothing, never left as `{sub1}`.
    assert_eq!(stranger.location_param("s"), Some(""));

    // HEAD gets the redirect but is not a click.
    let counted = app.metric("clicks_total").await;
    assert_eq!(counted, 3.0, "three GET clicks so far");
    let head = app.click_with(reqwest::Method::HEAD, &s.link.code, "", None).await;
    assert_eq!(head.status, 302);
    assert!(head.location.as_deref().is_some_and(|l| l.starts_with("https://land.example/p?cid=")));
    let _ = app.click(&s.link.code, "", None).await;
    assert_eq!(app.metric("clicks_total").await, 4.0, "HEAD must not count as a click");
    app.wait_for_recorded_clicks(4.0).await;
    assert_eq!(app.metric("clicks_recorded_total").await, 4.0, "HEAD must not be recorded");

    // The click ID attributes to the link's affiliate.
    let answer = s
        .tenant
        .postback_ok(&[("click_id", &click_id), ("event", "registration"), ("player_id", "p-1")])
        .await;
    assert_eq!(credits(&answer), vec![(s.affiliate.clone(), "1".to_owned())]);
}

#[tokio::test]
async fn unknown_suspended_and_paused_links() {
    let app = spawn_app!().await;
    let s = setup(&app, "links").await;
    let paused_campaign =
        s.tenant.create_campaign("Paused", json!({ "fallbackUrl": "https://fallback.example/offers" })).await;
    let paused_link = s.tenant.create_link(&s.affiliate, &paused_campaign).await;
    let archived_campaign = s.tenant.create_campaign("Archived", json!({})).await;
    let archived_link = s.tenant.create_link(&s.affiliate, &archived_campaign).await;
    let suspended_affiliate = s.tenant.create_affiliate("mallory", false).await;
    let suspended_affiliates_link = s.tenant.create_link(&suspended_affiliate, &s.campaign).await;

    for code in ["doesnotexist", "a-b", "x".repeat(33).as_str()] {
        let answer = app.click(code, "", None).await;
        assert_eq!(answer.status, 404, "code {code:?}: {answer:?}");
        assert!(answer.location.is_none() && answer.set_cookie.is_none());
    }

    // All links work (and are now cached). Then the link is suspended, a campaign paused,
    // another archived and an affiliate suspended: within the link cache's lifetime the
    // suspended and archived ones answer 404 and the paused one its fallback URL.
    for code in [&s.link.code, &archived_link.code, &suspended_affiliates_link.code] {
        assert_eq!(app.click(code, "", None).await.status, 302);
    }
    let before = app.click(&paused_link.code, "", None).await;
    assert!(before.location.as_deref().is_some_and(|l| l.starts_with("https://land.example/")), "{before:?}");

    let data = s
        .tenant
        .run("mutation($id: ID!) { suspendTrackingLink(id: $id) { status } }", json!({ "id": s.link.id }))
        .await;
    assert_eq!(data["suspendTrackingLink"]["status"], "SUSPENDED");
    let data = s
        .tenant
        .run(
            "mutation($id: ID!) { setCampaignStatus(id: $id, status: PAUSED) { status fallbackUrl } }",
            json!({ "id": paused_campaign }),
        )
        .await;
    assert_eq!(data["setCampaignStatus"]["status"], "PAUSED");
    let data = s
        .tenant
        .run(
            "mutation($id: ID!) { setCampaignStatus(id: $id, status: ARCHIVED) { status } }",
            json!({ "id": archived_campaign }),
        )
        .await;
    assert_eq!(data["setCampaignStatus"]["status"], "ARCHIVED");
    let data = s
        .tenant
        .run(
            "mutation($id: ID!) { suspendAffiliate(id: $id) { status } }",
            json!({ "id": suspended_affiliate }),
        )
        .await;
    assert_eq!(data["suspendAffiliate"]["status"], "SUSPENDED");

    poll_click(&app, &s.link.code, "suspended link", |a| a.status == 404).await;
    let suspended = app.click(&s.link.code, "", None).await;
    assert!(suspended.location.is_none(), "{suspended:?}");
    poll_click(&app, &archived_link.code, "archived campaign", |a| a.status == 404).await;
    poll_click(&app, &suspended_affiliates_link.code, "suspended affiliate", |a| a.status == 404).await;

    poll_click(&app, &paused_link.code, "paused campaign", |a| {
        a.location.as_deref() == Some("https://fallback.example/offers")
    })
    .await;
    let clicks_before = app.metric("clicks_total").await;
    let paused = app.click(&paused_link.code, "sub1=z", None).await;
    assert_eq!(paused.status, 302);
    assert_eq!(paused.location.as_deref(), Some("https://fallback.example/offers"));
    assert!(paused.set_cookie.is_none(), "a paused campaign records nothing: {paused:?}");
    assert_eq!(app.metric("clicks_total").await, clicks_before, "a paused campaign's click is not counted");

    // Reactivated, the link tracks again.
    s.tenant
        .run("mutation($id: ID!) { activateTrackingLink(id: $id) { status } }", json!({ "id": s.link.id }))
        .await;
    poll_click(&app, &s.link.code, "reactivated link", |a| a.status == 302).await;
}

#[tokio::test]
async fn postback_by_get_form_and_json_is_idempotent() {
    let app = spawn_app!().await;
    let s = setup(&app, "postbacks").await;
    let key = s.tenant.api_key.clone();
    let expected_credits = vec![(s.affiliate.clone(), "1".to_owned())];

    // GET with key=
    let click = s.click_id().await;
    let params = [
        ("click_id", click.as_str()),
        ("event", "ftd"),
        ("txn_id", "T-GET"),
        ("amount", "50"),
        ("currency", "EUR"),
    ];
    let first = s.tenant.postback_ok(&params).await;
    assert!(first["conversion_id"].as_str().is_some_and(|id| !id.is_empty()), "{first}");
    assert_eq!(first["status"], "approved");
    assert_eq!(first["event"], "ftd");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["attributed"], true);
    assert_eq!(credits(&first), expected_credits);
    let repeat = s.tenant.postback_ok(&params).await;
    assert_eq!(repeat["conversion_id"], first["conversion_id"]);
    assert_eq!(repeat["duplicate"], true);
    assert_eq!(credits(&repeat), expected_credits);
    // Same transaction with a different amount: a conflict naming the field.
    let (status, conflict) = s
        .tenant
        .postback(&[
            ("click_id", &click),
            ("event", "ftd"),
            ("txn_id", "T-GET"),
            ("amount", "60"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "CONFLICT");
    assert_eq!(conflict["error"]["differing_fields"], json!(["amount"]));
    assert!(conflict["error"]["message"].as_str().unwrap().contains("amount"), "{conflict}");
    // An equal amount written differently is the same transaction.
    let same = s
        .tenant
        .postback_ok(&[
            ("click_id", &click),
            ("event", "ftd"),
            ("txn_id", "T-GET"),
            ("amount", "50.00"),
            ("currency", "eur"),
        ])
        .await;
    assert_eq!((&same["conversion_id"], &same["duplicate"]), (&first["conversion_id"], &json!(true)));

    // POST form, key in the body.
    let click = s.click_id().await;
    let form = [
        ("key", key.as_str()),
        ("click_id", click.as_str()),
        ("event", "deposit"),
        ("txn_id", "T-FORM"),
        ("amount", "12.34"),
        ("currency", "USD"),
        ("status", "pending"),
    ];
    let (status, by_form) = app.postback_form(&form).await;
    assert_eq!(status, 200, "{by_form}");
    assert_eq!((&by_form["status"], &by_form["duplicate"]), (&json!("pending"), &json!(false)));
    assert_eq!(credits(&by_form), expected_credits);
    let (status, again) = app.postback_form(&form).await;
    assert_eq!(status, 200);
    assert_eq!((&again["conversion_id"], &again["duplicate"]), (&by_form["conversion_id"], &json!(true)));

    // POST JSON with a bearer key; numbers may be JSON numbers.
    let click = s.click_id().await;
    let body = json!({ "click_id": click, "event": "purchase", "txn_id": "T-JSON", "amount": 99.5, "currency": "GBP" });
    let (status, by_json) = app.postback_json(Some(&key), body.clone()).await;
    assert_eq!(status, 200, "{by_json}");
    assert_eq!((&by_json["event"], &by_json["duplicate"]), (&json!("purchase"), &json!(false)));
    assert_eq!(credits(&by_json), expected_credits);
    let (status, again) = app.postback_json(Some(&key), body).await;
    assert_eq!(status, 200);
    assert_eq!((&again["conversion_id"], &again["duplicate"]), (&by_json["conversion_id"], &json!(true)));

    // Exactly three conversions, as the operator sees them.
    let listed = s.tenant.conversions().await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let ftd = find(&listed, first["conversion_id"].as_str().unwrap());
    assert_eq!(ftd["txnId"], "T-GET");
    assert_eq!(ftd["currency"], "EUR");
    assert_eq!(ftd["campaignId"], s.campaign);
    assert_eq!(ftd["credits"][0]["affiliateId"], s.affiliate);
    assert_eq!(ftd["credits"][0]["share"], "1");
    assert_eq!(find(&listed, by_json["conversion_id"].as_str().unwrap())["currency"], "GBP");
    // Amounts read back the same on every backend, exactly as the decimal they are.
    let amounts: Vec<&Value> = listed.iter().map(|c| &c["amount"]).collect();
    assert_eq!(amounts, vec![&json!("50"), &json!("12.34"), &json!("99.5")]);
}

#[tokio::test]
async fn concurrent_identical_postbacks_create_one_conversion() {
    let app = spawn_app!().await;
    let s = setup(&app, "concurrent").await;
    let click = s.click_id().await;
    let params = [
        ("click_id", click.as_str()),
        ("event", "ftd"),
        ("txn_id", "RACE-1"),
        ("amount", "10"),
        ("currency", "EUR"),
    ];

    let answers = join_all((0..20).map(|_| s.tenant.postback(&params))).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let id = answers[0].1["conversion_id"].clone();
    assert!(answers.iter().all(|(_, body)| body["conversion_id"] == id), "{answers:?}");
    let fresh = answers.iter().filter(|(_, body)| body["duplicate"] == false).count();
    assert_eq!(fresh, 1, "exactly one answer creates the conversion: {answers:?}");

    let listed = s.tenant.conversions().await;
    assert_eq!(listed.iter().filter(|c| c["txnId"] == "RACE-1").count(), 1, "{listed:?}");
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn invalid_postbacks_name_each_bad_field_and_need_a_key() {
    let app = spawn_app!().await;
    let s = setup(&app, "invalid").await;
    let click = s.click_id().await;

    let fields = |body: &Value| -> Vec<String> {
        let mut names: Vec<String> = body["error"]["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("no error.fields in {body}"))
            .iter()
            .map(|f| {
                assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "{f}");
                f["field"].as_str().unwrap().to_owned()
            })
            .collect();
        names.sort();
        names
    };
    let cases: [(Params, &[&str]); 5] = [
        (&[("click_id", &click), ("txn_id", "T1")], &["event"]),
        (
            &[
                ("click_id", &click),
                ("event", "deposit"),
                ("txn_id", "T2"),
                ("amount", "12,5"),
                ("currency", "EUR"),
            ],
            &["amount"],
        ),
        (&[("click_id", &click), ("event", "deposit"), ("amount", "12.5"), ("currency", "EUR")], &["txn_id"]),
        (&[("event", "registration")], &["click_id"]),
        // Every bad field at once.
        (
            &[("event", "deposit"), ("amount", "ten"), ("occurred_at", "yesterday")],
            &["amount", "click_id", "occurred_at", "txn_id"],
        ),
    ];
    for (params, expected) in cases {
        let (status, body) = s.tenant.postback(params).await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST");
        assert_eq!(fields(&body), expected.iter().map(|f| f.to_string()).collect::<Vec<_>>(), "{params:?}");
    }
    // A JSON body that is not an object.
    let (status, body) = app.postback_json(Some(&s.tenant.api_key), json!(["event", "ftd"])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), vec!["body"]);

    // No key, or an unknown one: 401, whatever else is wrong.
    let valid = [("click_id", click.as_str()), ("event", "registration"), ("player_id", "p")];
    let (status, body) = app.postback_get(&valid).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
    let mut unknown = vec![("key", "clk_0000000000000000000000000000000000000000")];
    unknown.extend_from_slice(&valid);
    let (status, body) = app.postback_get(&unknown).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) =
        app.postback_json(Some("clk_nope"), json!({ "click_id": click, "event": "registration" })).await;
    assert_eq!(status, 401);

    // Nothing was stored by any of these.
    assert!(s.tenant.conversions().await.is_empty());
}

#[tokio::test]
async fn occurred_at_far_from_receipt_is_refused_naming_the_field() {
    let app = spawn_app!().await;
    let s = setup(&app, "far-dates").await;
    let click = s.click_id().await;
    // Epoch milliseconds chrono can hold but whose date arithmetic overflowed (a 500), a
    // far-future month that could never close, and a date decades back.
    for occurred_at in ["8210266876799999", "2999-01-01T00:00:00Z", "1990-01-01T00:00:00Z"] {
        let (status, body) = s
            .tenant
            .postback(&[
                ("click_id", &click),
                ("event", "ftd"),
                ("txn_id", occurred_at),
                ("amount", "10"),
                ("currency", "EUR"),
                ("occurred_at", occurred_at),
            ])
            .await;
        assert_eq!(status, 400, "{occurred_at}: {body}");
        assert_eq!(body["error"]["fields"][0]["field"], "occurred_at", "{body}");
    }
    assert!(s.tenant.conversions().await.is_empty());
    // A date within the year is accepted.
    let recent = (chrono::Utc::now() - chrono::TimeDelta::days(30)).to_rfc3339();
    s.tenant
        .postback_ok(&[
            ("click_id", &click),
            ("event", "ftd"),
            ("txn_id", "recent"),
            ("amount", "10"),
            ("currency", "EUR"),
            ("occurred_at", &recent),
        ])
        .await;
}

#[tokio::test]
async fn another_tenants_key_cannot_claim_this_tenants_click() {
    let app = spawn_app!().await;
    let a = setup(&app, "tenant-a").await;
    let b = Tenant::create(&app, "tenant-b").await;
    let click = a.click_id().await;

    let answer =
        b.postback_ok(&[("click_id", &click), ("event", "registration"), ("player_id", "p-b")]).await;
    assert_eq!(answer["attributed"], false, "{answer}");
    assert_eq!(answer["unattributed_reason"], "forged_click_id");
    assert_eq!(answer["credits"], json!([]));

    // Stored for tenant B (nothing is dropped), invisible to tenant A.
    let b_list = b.conversions().await;
    assert_eq!(b_list.len(), 1);
    assert_eq!(b_list[0]["unattributedReason"], "forged_click_id");
    assert_eq!(b_list[0]["credits"], json!([]));
    assert!(a.tenant.conversions().await.is_empty());

    // The same click, posted with its own tenant's key, still attributes.
    let own =
        a.tenant.postback_ok(&[("click_id", &click), ("event", "registration"), ("player_id", "p-a")]).await;
    assert_eq!(credits(&own), vec![(a.affiliate.clone(), "1".to_owned())]);
}

#[tokio::test]
async fn forged_or_malformed_click_ids_are_stored_unattributed() {
    let app = spawn_app!().await;
    let s = setup(&app, "forged").await;
    let click = s.click_id().await;
    assert_eq!(click.len(), 39);

    // One character of the MAC flipped.
    let forged = flip_char(&click, 30);
    assert_ne!(forged, click);
    let answer = s
        .tenant
        .postback_ok(&[
            ("click_id", &forged),
            ("event", "ftd"),
            ("txn_id", "F1"),
            ("amount", "5"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(answer["attributed"], false, "{answer}");
    assert_eq!(answer["unattributed_reason"], "forged_click_id");
    assert_eq!(answer["credits"], json!([]));
    assert_eq!(answer["duplicate"], false);

    // One character of the link tag flipped: the MAC no longer matches either.
    let relinked = flip_char(&click, 8);
    let answer = s.tenant.postback_ok(&[("click_id", &relinked), ("event", "registration")]).await;
    assert_eq!(answer["unattributed_reason"], "forged_click_id", "{answer}");

    // Truncated: malformed.
    let truncated = &click[..click.len() - 1];
    let answer = s.tenant.postback_ok(&[("click_id", truncated), ("event", "registration")]).await;
    assert_eq!(answer["attributed"], false);
    assert_eq!(answer["unattributed_reason"], "malformed_click_id");

    let listed = s.tenant.conversions().await;
    assert_eq!(listed.len(), 3, "nothing is dropped: {listed:?}");
    let reasons: Vec<&str> = listed.iter().map(|c| c["unattributedReason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["forged_click_id", "forged_click_id", "malformed_click_id"]);
    assert!(listed.iter().all(|c| c["attributed"] == false && c["credits"] == json!([])));
    assert_eq!(listed[0]["clickId"], forged.as_str());
    assert_eq!(listed[0]["amount"], "5");

    // The genuine click still attributes.
    let genuine = s.tenant.postback_ok(&[("click_id", &click), ("event", "registration")]).await;
    assert_eq!(genuine["attributed"], true);
}

#[tokio::test]
async fn registration_binds_the_player_for_life() {
    let app = spawn_app!().await;
    let s = setup(&app, "lifetime").await;
    let other = s.tenant.create_affiliate("bob", false).await;
    let other_link = s.tenant.create_link(&other, &s.campaign).await;
    let click = s.click_id().await;

    let registration = s
        .tenant
        .postback_ok(&[("click_id", &click), ("player_id", "player-42"), ("event", "registration")])
        .await;
    assert_eq!(credits(&registration), vec![(s.affiliate.clone(), "1".to_owned())]);

    // Later deposits carry only the player ID.
    let deposit = s
        .tenant
        .postback_ok(&[
            ("player_id", "player-42"),
            ("event", "deposit"),
            ("txn_id", "D-1"),
            ("amount", "100"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(deposit["attributed"], true, "{deposit}");
    assert_eq!(credits(&deposit), vec![(s.affiliate.clone(), "1".to_owned())]);
    assert_ne!(deposit["conversion_id"], registration["conversion_id"]);

    // Even with another affiliate's click, the bound player stays with its first affiliate.
    let later_click = app.click(&other_link.code, "", None).await.click_id();
    let deposit2 = s
        .tenant
        .postback_ok(&[
            ("player_id", "player-42"),
            ("click_id", &later_click),
            ("event", "deposit"),
            ("txn_id", "D-2"),
            ("amount", "20"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(credits(&deposit2), vec![(s.affiliate.clone(), "1".to_owned())]);

    let unknown = s
        .tenant
        .postback_ok(&[
            ("player_id", "nobody"),
            ("event", "deposit"),
            ("txn_id", "D-3"),
            ("amount", "5"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(unknown["attributed"], false, "{unknown}");
    assert_eq!(unknown["unattributed_reason"], "unknown_player");
    assert_eq!(unknown["credits"], json!([]));

    let listed = s.tenant.conversions().await;
    assert_eq!(listed.len(), 4);
    let bound = find(&listed, deposit["conversion_id"].as_str().unwrap());
    assert_eq!(bound["model"], "LIFETIME");
    assert_eq!(bound["playerId"], "player-42");
    assert_eq!(
        find(&listed, unknown["conversion_id"].as_str().unwrap())["unattributedReason"],
        "unknown_player"
    );
}

#[tokio::test]
async fn chargeback_credits_the_original_affiliate() {
    let app = spawn_app!().await;
    let s = setup(&app, "chargeback").await;
    let click = s.click_id().await;
    let deposit = s
        .tenant
        .postback_ok(&[
            ("click_id", &click),
            ("player_id", "player-7"),
            ("event", "ftd"),
            ("txn_id", "DEP-9"),
            ("amount", "250"),
            ("currency", "EUR"),
        ])
        .await;

    let chargeback = s
        .tenant
        .postback_ok(&[
            ("player_id", "player-7"),
            ("event", "chargeback"),
            ("txn_id", "DEP-9"),
            ("amount", "250"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(chargeback["event"], "chargeback", "{chargeback}");
    assert_eq!(chargeback["duplicate"], false);
    assert_ne!(chargeback["conversion_id"], deposit["conversion_id"]);
    assert_eq!(chargeback["attributed"], true);
    assert_eq!(credits(&chargeback), vec![(s.affiliate.clone(), "1".to_owned())]);
    // Repeated: the same chargeback.
    let again = s
        .tenant
        .postback_ok(&[
            ("player_id", "player-7"),
            ("event", "reversal"),
            ("txn_id", "DEP-9"),
            ("amount", "250"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!((&again["conversion_id"], &again["duplicate"]), (&chargeback["conversion_id"], &json!(true)));

    // A chargeback of an unknown transaction is kept, unattributed.
    let orphan =
        s.tenant.postback_ok(&[("player_id", "player-7"), ("event", "chargeback"), ("txn_id", "NOPE")]).await;
    assert_eq!(orphan["attributed"], false);
    assert_eq!(orphan["unattributed_reason"], "unknown_original_transaction");

    let listed = s.tenant.conversions().await;
    assert_eq!(listed.len(), 3);
    let stored = find(&listed, chargeback["conversion_id"].as_str().unwrap());
    assert_eq!(stored["event"], "chargeback");
    assert_eq!(stored["txnId"], "DEP-9");
    assert_eq!(stored["model"], "REVERSAL");
    assert_eq!(stored["credits"], json!([{ "affiliateId": s.affiliate, "share": "1", "commission": null }]));
}

#[tokio::test]
async fn linear_model_shares_credit_across_the_visitors_journey() {
    let app = spawn_app!().await;
    let tenant = Tenant::create(&app, "multitouch").await;
    let first_affiliate = tenant.create_affiliate("first", true).await;
    let last_affiliate = tenant.create_affiliate("last", false).await;
    let campaign = tenant.create_campaign("Broker", json!({ "attributionModel": "LINEAR" })).await;
    let first_link = tenant.create_link(&first_affiliate, &campaign).await;
    let last_link = tenant.create_link(&last_affiliate, &campaign).await;
    let recorded_before = app.metric("clicks_recorded_total").await;

    // One browser: a click through the first affiliate, a HEAD (not a click) and a click
    // through the second. Another browser clicks the first affiliate's link too.
    let first = app.click(&first_link.code, "", None).await;
    let visitor = first.visitor().expect("visitor cookie").to_owned();
    let head = app.click_with(reqwest::Method::HEAD, &last_link.code, "", Some(&visitor)).await;
    assert_eq!(head.status, 302);
    let last = app.click(&last_link.code, "", Some(&visitor)).await;
    assert_eq!(last.visitor(), Some(visitor.as_str()));
    let stranger = app.click(&first_link.code, "", None).await;
    assert_ne!(stranger.visitor(), Some(visitor.as_str()));
    // Clicks are written behind: wait until all three are in the database. (Were the HEAD
    // recorded, it would be in the journey too, since the batcher writes in order.)
    app.wait_for_recorded_clicks(recorded_before + 3.0).await;

    let answer = tenant
        .postback_ok(&[
            ("click_id", &last.click_id()),
            ("event", "ftd"),
            ("txn_id", "MT-1"),
            ("amount", "300"),
            ("currency", "USD"),
        ])
        .await;
    let shares = credits(&answer);
    assert_eq!(
        shares,
        vec![(first_affiliate.clone(), "0.5".to_owned()), (last_affiliate.clone(), "0.5".to_owned())],
        "{answer}"
    );
    assert_eq!(sum_decimals(shares.iter().map(|(_, share)| share.as_str())), "1");

    let listed = tenant.conversions().await;
    assert_eq!(listed[0]["model"], "LINEAR");
    assert_eq!(
        listed[0]["credits"],
        json!([
            { "affiliateId": first_affiliate, "share": "0.5", "commission": null },
            { "affiliateId": last_affiliate, "share": "0.5", "commission": null },
        ])
    );

    // An affiliate sees the conversion with only its own share.
    let affiliate_token = tenant.login_affiliate("first").await;
    let own = run_as(
        &app,
        &affiliate_token,
        "query($id: ID!) { conversion(id: $id) { playerId credits { affiliateId share } } }",
        json!({ "id": answer["conversion_id"] }),
    )
    .await;
    assert_eq!(own["conversion"]["credits"], json!([{ "affiliateId": first_affiliate, "share": "0.5" }]));
    assert_eq!(conversions_as(&app, &affiliate_token).await.len(), 1);

    // The stranger's click is a journey of its own: last click = first click = one affiliate.
    let single = tenant
        .postback_ok(&[("click_id", &stranger.click_id()), ("event", "registration"), ("player_id", "s-1")])
        .await;
    assert_eq!(credits(&single), vec![(first_affiliate.clone(), "1".to_owned())]);
    // A conversion crediting only the other affiliate does not exist for this one.
    let solo_click = app.click(&last_link.code, "", None).await.click_id();
    let solo = tenant
        .postback_ok(&[("click_id", &solo_click), ("event", "registration"), ("player_id", "s-3")])
        .await;
    assert_eq!(credits(&solo), vec![(last_affiliate.clone(), "1".to_owned())]);
    let hidden = app
        .graphql(
            Some(&affiliate_token),
            "query($id: ID!) { conversion(id: $id) { id } }",
            json!({ "id": solo["conversion_id"] }),
        )
        .await;
    assert_eq!(error_code(&hidden), Some("NOT_FOUND"), "{hidden}");
}

#[tokio::test]
async fn clicks_outside_the_attribution_window_are_not_credited() {
    let app = spawn_app!().await;
    let s = setup(&app, "window").await;
    let click = s.click_id().await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let day_ms = 24 * 3600 * 1000;
    let at = |offset_ms: i64| (now_ms + offset_ms).to_string();

    // The default lookback is 30 days.
    let within = at(29 * day_ms);
    let inside = s
        .tenant
        .postback_ok(&[("click_id", &click), ("event", "registration"), ("occurred_at", &within)])
        .await;
    assert_eq!(credits(&inside), vec![(s.affiliate.clone(), "1".to_owned())], "{inside}");
    let beyond = at(31 * day_ms);
    let expired = s
        .tenant
        .postback_ok(&[
            ("click_id", &click),
            ("event", "ftd"),
            ("txn_id", "W-1"),
            ("amount", "1"),
            ("currency", "EUR"),
            ("occurred_at", &beyond),
        ])
        .await;
    assert_eq!(
        (&expired["attributed"], &expired["unattributed_reason"]),
        (&json!(false), &json!("click_expired")),
        "{expired}"
    );
    // A conversion a day before the click cannot be the click's doing.
    let before = at(-day_ms);
    let earlier = s
        .tenant
        .postback_ok(&[
            ("click_id", &click),
            ("event", "ftd"),
            ("txn_id", "W-2"),
            ("amount", "1"),
            ("currency", "EUR"),
            ("occurred_at", &before),
        ])
        .await;
    assert_eq!(earlier["unattributed_reason"], "click_after_conversion", "{earlier}");

    let listed = s.tenant.conversions().await;
    let reasons: Vec<&Value> = listed.iter().map(|c| &c["unattributedReason"]).collect();
    assert_eq!(reasons, vec![&Value::Null, &json!("click_expired"), &json!("click_after_conversion")]);
    // Unattributed, but still tied to the campaign the click was for.
    assert!(listed.iter().all(|c| c["campaignId"] == s.campaign.as_str()), "{listed:?}");
}

#[tokio::test]
async fn a_postback_right_behind_its_clicks_sees_the_whole_journey() {
    let app = spawn_app!().await;
    let tenant = Tenant::create(&app, "rightbehind").await;
    let first_affiliate = tenant.create_affiliate("first", true).await;
    let last_affiliate = tenant.create_affiliate("last", false).await;
    let campaign = tenant.create_campaign("Casino", json!({ "attributionModel": "FIRST_CLICK" })).await;
    let first_link = tenant.create_link(&first_affiliate, &campaign).await;
    let last_link = tenant.create_link(&last_affiliate, &campaign).await;

    // Two clicks of one browser and, at once, the conversion: the clicks are still queued
    // for writing when the postback arrives (no waiting for them here, unlike other tests).
    for n in 0..5 {
        let first = app.click(&first_link.code, "", None).await;
        let visitor = first.visitor().expect("visitor cookie").to_owned();
        let last = app.click(&last_link.code, "", Some(&visitor)).await;
        let answer = tenant
            .postback_ok(&[
                ("click_id", &last.click_id()),
                ("event", "registration"),
                ("player_id", &format!("quick-{n}")),
            ])
            .await;
        assert_eq!(
            credits(&answer),
            vec![(first_affiliate.clone(), "1".to_owned())],
            "FIRST_CLICK credits the first click, written just before: {answer}"
        );
    }
}
