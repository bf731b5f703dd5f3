//! Commission end to end: plans through GraphQL, postbacks through the real binary, entries
//! in the ledger, commission on credits (query and live subscription), chargebacks, period
//! close and statements, and what an affiliate may see.

use std::time::Duration;

use clickledger_e2e::{TestApp, error_code, spawn_app};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "correct horse battery";

/// A tenant with a campaign, an API key, and affiliates with logins and links.
struct Setup {
    slug: String,
    owner: String,
    key: String,
    campaign: String,
}

struct Partner {
    id: String,
    email: String,
    code: String,
}

/// `token` empty: anonymous.
async fn gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.graphql(Some(token).filter(|t| !t.is_empty()), query, variables).await
}

/// The answer's `data`, failing the test with the whole answer on any error.
async fn ok(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let answer = gql(app, token, query, variables).await;
    assert!(answer["errors"].is_null(), "GraphQL errors: {answer}");
    answer["data"].clone()
}

fn num(value: &Value) -> f64 {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a decimal: {value}"))
}

async fn setup(app: &TestApp, slug: &str) -> Setup {
    let (owner, _) = app.sign_up(slug).await;
    let key = ok(app, &owner, "mutation { createApiKey(input: {name: \"s2s\"}) { key } }", json!({})).await
        ["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let campaign = ok(
        app,
        &owner,
        "mutation { createCampaign(input: {name: \"Casino\", landingUrl: \"https://casino.test/?cid={click_id}\"}) { id } }",
        json!({}),
    )
    .await["createCampaign"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Setup { slug: slug.to_owned(), owner, key, campaign }
}

async fn partner(app: &TestApp, s: &Setup, name: &str, parent: Option<&Partner>) -> Partner {
    let email = format!("{name}@partners.test");
    let id = ok(
        app,
        &s.owner,
        "mutation($input: CreateAffiliateInput!) { createAffiliate(input: $input) { id } }",
        json!({ "input": { "name": name, "email": email, "password": PASSWORD, "parentId": parent.map(|p| p.id.clone()) } }),
    )
    .await["createAffiliate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = ok(
        app,
        &s.owner,
        "mutation($input: CreateTrackingLinkInput!) { createTrackingLink(input: $input) { code } }",
        json!({ "input": { "affiliateId": id, "campaignId": s.campaign } }),
    )
    .await["createTrackingLink"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    Partner { id, email, code }
}

async fn login(app: &TestApp, s: &Setup, p: &Partner) -> String {
    ok(
        app,
        "",
        "mutation($input: LoginInput!) { login(input: $input) { token } }",
        json!({ "input": { "tenantSlug": s.slug, "email": p.email, "password": PASSWORD } }),
    )
    .await["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Clicks the partner's link; returns the click ID from the redirect.
async fn click(app: &TestApp, p: &Partner) -> String {
    let response = app.client.get(app.url(&format!("/c/{}", p.code))).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    location.split("cid=").nth(1).unwrap().split('&').next().unwrap().to_owned()
}

async fn postback(app: &TestApp, s: &Setup, params: &[(&str, &str)]) -> Value {
    let mut query: Vec<(&str, &str)> = vec![("key", s.key.as_str())];
    query.extend_from_slice(params);
    let response = app.client.get(app.url("/postback")).query(&query).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "postback failed: {body}");
    body
}

async fn create_plan(app: &TestApp, s: &Setup, rules: Value, effective_from: Option<&str>) -> String {
    ok(
        app,
        &s.owner,
        "mutation($input: CreateCommissionPlanInput!) { createCommissionPlan(input: $input) { id version } }",
        json!({ "input": { "name": "Standard", "effectiveFrom": effective_from, "rules": rules } }),
    )
    .await["createCommissionPlan"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn assign(app: &TestApp, s: &Setup, plan: &str, affiliate: Option<&str>, effective_from: Option<&str>) {
    ok(
        app,
        &s.owner,
        "mutation($input: AssignCommissionPlanInput!) { assignCommissionPlan(input: $input) { id } }",
        json!({ "input": { "planId": plan, "campaignId": s.campaign, "affiliateId": affiliate, "effectiveFrom": effective_from } }),
    )
    .await;
}

const ENTRIES: &str = "query($conversionId: ID, $affiliateId: ID, $period: String, $kind: CommissionKind, $status: CommissionStatus) {
  commissions(conversionId: $conversionId, affiliateId: $affiliateId, period: $period, kind: $kind, status: $status, first: 50) {
    edges { node { id affiliateId conversionId planId planVersion kind tier reverses reversesEntryId amount currency
                   basis sourceAmount sourceCurrency fxRate status period reason createdBy } }
  }
}";

async fn entries(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let data = ok(app, token, ENTRIES, filter).await;
    data["commissions"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

/// (affiliate, kind, tier, amount) of each entry, sorted, for compact expectations.
fn summary(entries: &[Value]) -> Vec<(String, String, i64, String)> {
    let mut rows: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["affiliateId"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
                e["tier"].as_i64().unwrap(),
                format!("{:.2}", num(&e["amount"])),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn sorted<T: Ord>(mut rows: Vec<T>) -> Vec<T> {
    rows.sort();
    rows
}

/// Subscribes over graphql-transport-ws from the start of the log and collects events until
/// `done` says enough.
async fn subscription_events(app: &TestApp, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let url = format!("{}/graphql/ws", app.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({ "type": "connection_init", "payload": { "token": token } }))).await.unwrap();
    ws.send(send(json!({ "id": "1", "type": "subscribe", "payload": { "query":
        "subscription { conversions(since: \"c0\") { kind event credits { affiliateId share commission commissionCurrency } conversion { txnId } } }" } })))
        .await
        .unwrap();
    let mut events = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !done(&events) {
            let Some(Ok(Message::Text(text))) = ws.next().await else { continue };
            let message: Value = serde_json::from_str(&text).unwrap();
            match message["type"].as_str() {
                Some("next") => events.push(message["payload"]["data"]["conversions"].clone()),
                Some("error") => panic!("subscription error: {message}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("subscription did not deliver in time; got {events:?}"));
    events
}

fn rules_cpl_cpa_override() -> Value {
    json!({ "currency": "USD", "cpl": "2", "cpa": { "amount": "50", "minFirstDeposit": "20" }, "overrides": ["10"] })
}

#[tokio::test]
async fn a_postback_books_commission_live_and_a_chargeback_reverses_it_at_every_tier() {
    let app = spawn_app!().await;
    let s = setup(&app, "ledger").await;
    let parent = partner(&app, &s, "parent", None).await;
    let child = partner(&app, &s, "child", Some(&parent)).await;
    let plan = create_plan(&app, &s, rules_cpl_cpa_override(), None).await;
    assign(&app, &s, &plan, None, None).await;

    let click_id = click(&app, &child).await;
    let registration =
        postback(&app, &s, &[("click_id", &click_id), ("player_id", "p1"), ("event", "registration")]).await;
    assert_eq!(registration["attributed"], true, "{registration}");
    let ftd = postback(
        &app,
        &s,
        &[("player_id", "p1"), ("event", "ftd"), ("txn_id", "T1"), ("amount", "100"), ("currency", "USD")],
    )
    .await;
    let ftd_id = ftd["conversion_id"].as_str().unwrap().to_owned();

    // The ledger: the child's CPA and the parent's 10 % override, under plan version 1.
    let booked = entries(&app, &s.owner, json!({ "conversionId": ftd_id })).await;
    assert_eq!(
        summary(&booked),
        sorted(vec![
            (child.id.clone(), "CPA".into(), 0, "50.00".into()),
            (parent.id.clone(), "OVERRIDE".into(), 1, "5.00".into()),
        ])
    );
    assert!(booked.iter().all(|e| e["planId"] == plan.as_str() && e["planVersion"] == 1));
    assert!(booked.iter().all(|e| e["status"] == "APPROVED" && e["currency"] == "USD"));

    // The conversion carries the credited affiliate's commission.
    let conversion = ok(
        &app,
        &s.owner,
        "query($id: ID!) { conversion(id: $id) { credits { affiliateId commission commissionCurrency } } }",
        json!({ "id": ftd_id }),
    )
    .await;
    let credit = &conversion["conversion"]["credits"][0];
    assert_eq!(credit["affiliateId"], child.id.as_str());
    assert_eq!(num(&credit["commission"]), 50.0);
    assert_eq!(credit["commissionCurrency"], "USD");

    // A retried postback is a duplicate and books nothing more.
    let retry = postback(
        &app,
        &s,
        &[("player_id", "p1"), ("event", "ftd"), ("txn_id", "T1"), ("amount", "100"), ("currency", "USD")],
    )
    .await;
    assert_eq!(retry["duplicate"], true);
    assert_eq!(entries(&app, &s.owner, json!({ "conversionId": ftd_id })).await.len(), 2);

    // Chargeback: a reversal for exactly what T1 earned, at both tiers; nothing updated.
    let chargeback =
        postback(&app, &s, &[("player_id", "p1"), ("event", "chargeback"), ("txn_id", "T1")]).await;
    let chargeback_id = chargeback["conversion_id"].as_str().unwrap().to_owned();
    let reversals = entries(&app, &s.owner, json!({ "conversionId": chargeback_id })).await;
    assert_eq!(
        summary(&reversals),
        sorted(vec![
            (child.id.clone(), "REVERSAL".into(), 0, "-50.00".into()),
            (parent.id.clone(), "REVERSAL".into(), 1, "-5.00".into()),
        ])
    );
    for reversal in &reversals {
        let original =
            booked.iter().find(|e| e["id"] == reversal["reversesEntryId"]).expect("points at original");
        assert_eq!(reversal["reverses"], original["kind"]);
    }
    assert_eq!(
        entries(&app, &s.owner, json!({ "conversionId": ftd_id })).await,
        booked,
        "originals unchanged"
    );

    // Totals to the cent: the child keeps its CPL (2.00), the parent its override of it.
    let total = |rows: &[Value]| rows.iter().map(|e| num(&e["amount"])).sum::<f64>();
    let child_total = total(&entries(&app, &s.owner, json!({ "affiliateId": child.id })).await);
    let parent_total = total(&entries(&app, &s.owner, json!({ "affiliateId": parent.id })).await);
    assert!((child_total - 2.0).abs() < 1e-9, "{child_total}");
    assert!((parent_total - 0.2).abs() < 1e-9, "{parent_total}");

    // Live: the subscription shows each credit's commission, for staff and for the affiliate.
    let has_chargeback = |events: &[Value]| events.iter().any(|e| e["event"] == "chargeback");
    for token in [s.owner.clone(), login(&app, &s, &child).await] {
        let events = subscription_events(&app, &token, has_chargeback).await;
        let commission_of = |event: &str| {
            let found = events.iter().find(|e| e["event"] == event).unwrap();
            num(&found["credits"][0]["commission"])
        };
        assert_eq!(commission_of("registration"), 2.0);
        assert_eq!(commission_of("ftd"), 50.0);
        assert_eq!(commission_of("chargeback"), -50.0);
    }
}

#[tokio::test]
async fn plans_validate_version_and_never_rewrite_booked_commission() {
    let app = spawn_app!().await;
    let s = setup(&app, "plans").await;
    let aff = partner(&app, &s, "solo", None).await;

    let create =
        "mutation($input: CreateCommissionPlanInput!) { createCommissionPlan(input: $input) { id } }";
    for (rules, field) in [
        (json!({ "currency": "USD", "cpa": { "amount": "-5" } }), "rules.cpa.amount"),
        (json!({ "currency": "XYZ", "cpl": "1" }), "rules.currency"),
        (json!({ "currency": "USD" }), "rules.plan"),
        (json!({ "currency": "USD", "cpl": "1.005" }), "rules.cpl"),
        (
            json!({ "currency": "USD", "revshare": { "tiers": [{ "from": "100", "percent": "25" }] } }),
            "rules.revshare.tiers",
        ),
        (json!({ "currency": "USD", "cpl": "1", "overrides": ["60", "50"] }), "rules.overrides"),
    ] {
        let answer = gql(&app, &s.owner, create, json!({ "input": { "name": "Bad", "rules": rules } })).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], field, "{answer}");
    }

    let plan = create_plan(&app, &s, json!({ "currency": "USD", "cpl": "2" }), None).await;
    assign(&app, &s, &plan, Some(&aff.id), None).await;
    let first = postback(
        &app,
        &s,
        &[("click_id", &click(&app, &aff).await), ("player_id", "a"), ("event", "registration")],
    )
    .await;

    let update = "mutation($id: ID!, $input: UpdateCommissionPlanInput!) { updateCommissionPlan(id: $id, input: $input) { version versions { version } } }";
    let past = gql(
        &app,
        &s.owner,
        update,
        json!({ "id": plan, "input": { "effectiveFrom": "2001-01-01T00:00:00Z", "rules": { "currency": "USD", "cpl": "5" } } }),
    )
    .await;
    assert_eq!(past["errors"][0]["extensions"]["field"], "effectiveFrom", "{past}");
    let other_currency = gql(
        &app,
        &s.owner,
        update,
        json!({ "id": plan, "input": { "rules": { "currency": "EUR", "cpl": "5" } } }),
    )
    .await;
    assert_eq!(other_currency["errors"][0]["extensions"]["field"], "rules.currency", "{other_currency}");
    let updated = ok(
        &app,
        &s.owner,
        update,
        json!({ "id": plan, "input": { "rules": { "currency": "USD", "cpl": "5" } } }),
    )
    .await;
    assert_eq!(updated["updateCommissionPlan"]["version"], 2);

    let second = postback(
        &app,
        &s,
        &[("click_id", &click(&app, &aff).await), ("player_id", "b"), ("event", "registration")],
    )
    .await;
    let one = entries(&app, &s.owner, json!({ "conversionId": first["conversion_id"] })).await;
    let two = entries(&app, &s.owner, json!({ "conversionId": second["conversion_id"] })).await;
    assert_eq!((one[0]["planVersion"].as_i64(), num(&one[0]["amount"])), (Some(1), 2.0));
    assert_eq!((two[0]["planVersion"].as_i64(), num(&two[0]["amount"])), (Some(2), 5.0));

    let listed = ok(
        &app,
        &s.owner,
        "{ commissionPlans { edges { node { id version versions { version } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(listed["commissionPlans"]["edges"][0]["node"]["versions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn foreign_currency_uses_the_operators_rate_and_adjustments_need_a_reason() {
    let app = spawn_app!().await;
    let s = setup(&app, "fxco").await;
    let aff = partner(&app, &s, "fxaff", None).await;
    let plan = create_plan(
        &app,
        &s,
        json!({ "currency": "USD", "cpa": { "amount": "40", "minFirstDeposit": "100" } }),
        None,
    )
    .await;
    assign(&app, &s, &plan, None, None).await;

    let day = utc_today();
    let bad_rate = gql(
        &app,
        &s.owner,
        "mutation($input: SetFxRateInput!) { setFxRate(input: $input) { rate } }",
        json!({ "input": { "day": day, "from": "EUR", "to": "USD", "rate": "0" } }),
    )
    .await;
    assert_eq!(bad_rate["errors"][0]["extensions"]["field"], "rate", "{bad_rate}");
    ok(
        &app,
        &s.owner,
        "mutation($input: SetFxRateInput!) { setFxRate(input: $input) { rate } }",
        json!({ "input": { "day": day, "from": "EUR", "to": "USD", "rate": "1.1" } }),
    )
    .await;

    let click_id = click(&app, &aff).await;
    let ftd = postback(
        &app,
        &s,
        &[("click_id", &click_id), ("event", "ftd"), ("txn_id", "E1"), ("amount", "95"), ("currency", "EUR")],
    )
    .await;
    // 95 EUR × 1.1 = 104.50 USD ≥ 100: qualifies; the entry records the source and the rate.
    let booked = entries(&app, &s.owner, json!({ "conversionId": ftd["conversion_id"] })).await;
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(num(&booked[0]["amount"]), 40.0);
    assert_eq!(booked[0]["currency"], "USD");
    assert_eq!(num(&booked[0]["sourceAmount"]), 95.0);
    assert_eq!(booked[0]["sourceCurrency"], "EUR");
    assert_eq!(num(&booked[0]["fxRate"]), 1.1);

    // Only USD→GBP is set; a GBP deposit uses its inverse (1 / 1.25 = 0.8): 150 GBP = 120 USD.
    ok(
        &app,
        &s.owner,
        "mutation($input: SetFxRateInput!) { setFxRate(input: $input) { rate } }",
        json!({ "input": { "day": day, "from": "USD", "to": "GBP", "rate": "1.25" } }),
    )
    .await;
    let gbp = postback(
        &app,
        &s,
        &[
            ("click_id", &click(&app, &aff).await),
            ("event", "ftd"),
            ("txn_id", "G1"),
            ("amount", "150"),
            ("currency", "GBP"),
        ],
    )
    .await;
    let booked = entries(&app, &s.owner, json!({ "conversionId": gbp["conversion_id"] })).await;
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!((booked[0]["sourceCurrency"].as_str(), num(&booked[0]["fxRate"])), (Some("GBP"), 0.8));

    // No JPY rate at all: the conversion is still stored and attributed, without commission.
    let jpy = postback(
        &app,
        &s,
        &[
            ("click_id", &click(&app, &aff).await),
            ("event", "ftd"),
            ("txn_id", "J1"),
            ("amount", "20000"),
            ("currency", "JPY"),
        ],
    )
    .await;
    assert_eq!(jpy["attributed"], true);
    assert!(entries(&app, &s.owner, json!({ "conversionId": jpy["conversion_id"] })).await.is_empty());

    let adjust = "mutation($input: AdjustCommissionInput!) { adjustCommission(input: $input) { kind amount reason createdBy status } }";
    let no_reason = gql(
        &app,
        &s.owner,
        adjust,
        json!({ "input": { "affiliateId": aff.id, "amount": "-3.50", "currency": "USD", "reason": "  " } }),
    )
    .await;
    assert_eq!(no_reason["errors"][0]["extensions"]["field"], "reason", "{no_reason}");
    let adjusted = ok(
        &app,
        &s.owner,
        adjust,
        json!({ "input": { "affiliateId": aff.id, "amount": "-3.50", "currency": "USD", "reason": "duplicate account" } }),
    )
    .await;
    assert_eq!(adjusted["adjustCommission"]["kind"], "ADJUSTMENT");
    assert_eq!(adjusted["adjustCommission"]["reason"], "duplicate account");
    assert!(adjusted["adjustCommission"]["createdBy"].as_str().unwrap().starts_with("usr_"));

    let token = login(&app, &s, &aff).await;
    let forbidden = gql(
        &app,
        &token,
        adjust,
        json!({ "input": { "affiliateId": aff.id, "amount": "100", "currency": "USD", "reason": "me" } }),
    )
    .await;
    assert_eq!(error_code(&forbidden), Some("FORBIDDEN"));
    let mine = entries(&app, &token, json!({ "kind": "ADJUSTMENT" })).await;
    assert_eq!(mine.len(), 1);
    assert!(mine[0]["createdBy"].is_null(), "affiliates do not see who adjusted");
}

#[tokio::test]
async fn period_close_is_idempotent_and_affiliates_see_only_their_own() {
    let app = spawn_app!().await;
    let s = setup(&app, "close").await;
    let a = partner(&app, &s, "alpha", None).await;
    let b = partner(&app, &s, "beta", None).await;
    let since = "2000-01-01T00:00:00Z";
    let rules = json!({
        "currency": "USD",
        "cpl": "1",
        "cpa": { "amount": "30" },
        "kpi": [{ "metric": "FTDS", "target": "1", "amount": "10" }, { "metric": "FTDS", "target": "5", "amount": "99" }],
    });
    let plan = create_plan(&app, &s, rules, Some(since)).await;
    assign(&app, &s, &plan, None, Some(since)).await;

    // Registrations now; first deposits reported for last month (lifetime-bound players).
    let (last_month, this_month) = months();
    let occurred = format!("{last_month}-15T12:00:00Z");
    for (p, player, amount) in [(&a, "pa", "50"), (&b, "pb", "70")] {
        postback(
            &app,
            &s,
            &[("click_id", &click(&app, p).await), ("player_id", player), ("event", "registration")],
        )
        .await;
        let txn = format!("ftd-{player}");
        postback(
            &app,
            &s,
            &[
                ("player_id", player),
                ("event", "ftd"),
                ("txn_id", &txn),
                ("amount", amount),
                ("currency", "USD"),
                ("occurred_at", &occurred),
            ],
        )
        .await;
    }

    let close = "mutation($period: String!) { closePeriod(period: $period) { id affiliateId period currency openingCarryover balance closingCarryover status lines { kind amount } } }";
    let not_over = gql(&app, &s.owner, close, json!({ "period": this_month })).await;
    assert_eq!(not_over["errors"][0]["extensions"]["field"], "period", "{not_over}");

    let first = ok(&app, &s.owner, close, json!({ "period": last_month })).await["closePeriod"].clone();
    let statements = first.as_array().unwrap();
    assert_eq!(statements.len(), 2, "{first}");
    // Each: CPA 30 for its depositor, and the KPI bonus for one FTD (the 5-FTD one is not met).
    for st in statements {
        assert_eq!(num(&st["balance"]), 40.0, "{st}");
        let lines: Vec<(&str, f64)> = st["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["kind"].as_str().unwrap(), num(&l["amount"])))
            .collect();
        assert_eq!(lines, vec![("CPA", 30.0), ("KPI", 10.0)]);
        assert_eq!(st["status"], "CLOSED");
    }
    let count = entries(&app, &s.owner, json!({ "period": last_month })).await.len();
    let again = ok(&app, &s.owner, close, json!({ "period": last_month })).await["closePeriod"].clone();
    assert_eq!(again, first, "closing again changes nothing");
    assert_eq!(entries(&app, &s.owner, json!({ "period": last_month })).await.len(), count);

    // An affiliate sees only its own entries and statement.
    let token_a = login(&app, &s, &a).await;
    let mine = entries(&app, &token_a, json!({})).await;
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["affiliateId"] == a.id.as_str()), "{mine:?}");
    assert!(entries(&app, &token_a, json!({ "affiliateId": b.id })).await.is_empty());
    let statement = "query($a: ID!, $p: String!) { statement(affiliateId: $a, period: $p) { id affiliateId balance status } }";
    let own = ok(&app, &token_a, statement, json!({ "a": a.id, "p": last_month })).await;
    assert_eq!(own["statement"]["affiliateId"], a.id.as_str());
    let other = gql(&app, &token_a, statement, json!({ "a": b.id, "p": last_month })).await;
    assert_eq!(error_code(&other), Some("NOT_FOUND"), "{other}");
    let listed = ok(
        &app,
        &token_a,
        "query($p: String!) { statements(period: $p) { affiliateId } }",
        json!({ "p": last_month }),
    )
    .await;
    assert_eq!(listed["statements"], json!([{ "affiliateId": a.id }]));
    let all = ok(
        &app,
        &s.owner,
        "query($p: String!) { statements(period: $p) { affiliateId } }",
        json!({ "p": last_month }),
    )
    .await;
    assert_eq!(all["statements"].as_array().unwrap().len(), 2);
    let forbidden = gql(&app, &token_a, close, json!({ "period": last_month })).await;
    assert_eq!(error_code(&forbidden), Some("FORBIDDEN"));

    // Paying a statement pays its entries; the other affiliate's stay approved.
    let id = own["statement"]["id"].as_str().unwrap();
    let paid = ok(
        &app,
        &s.owner,
        "mutation($id: ID!) { markStatementPaid(id: $id) { status paidAt } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(paid["markStatementPaid"]["status"], "PAID");
    let a_entries = entries(&app, &s.owner, json!({ "affiliateId": a.id, "period": last_month })).await;
    assert!(a_entries.iter().all(|e| e["status"] == "PAID"));
    let b_entries = entries(&app, &s.owner, json!({ "affiliateId": b.id, "period": last_month })).await;
    assert!(b_entries.iter().all(|e| e["status"] == "APPROVED"));

    // A held entry blocks its statement's payout until released; paid entries are final.
    let set_status = "mutation($ids: [ID!]!, $status: CommissionStatus!) { setCommissionStatus(ids: $ids, status: $status) { status amount } }";
    let b_id = b_entries[0]["id"].clone();
    let held = ok(&app, &s.owner, set_status, json!({ "ids": [b_id], "status": "HELD" })).await;
    assert_eq!(held["setCommissionStatus"][0]["status"], "HELD");
    let b_statement = ok(&app, &s.owner, statement, json!({ "a": b.id, "p": last_month })).await;
    let pay = "mutation($id: ID!) { markStatementPaid(id: $id) { status } }";
    let blocked = gql(&app, &s.owner, pay, json!({ "id": b_statement["statement"]["id"] })).await;
    assert_eq!(error_code(&blocked), Some("CONFLICT"), "{blocked}");
    ok(&app, &s.owner, set_status, json!({ "ids": [b_id], "status": "APPROVED" })).await;
    let paid_b = ok(&app, &s.owner, pay, json!({ "id": b_statement["statement"]["id"] })).await;
    assert_eq!(paid_b["markStatementPaid"]["status"], "PAID");
    let final_ = gql(&app, &s.owner, set_status, json!({ "ids": [b_id], "status": "REJECTED" })).await;
    assert_eq!(error_code(&final_), Some("CONFLICT"), "{final_}");
}

/// Today's UTC date, `YYYY-MM-DD`, from the system clock (no chrono in this crate).
fn utc_today() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// (last month, this month) in UTC as `YYYY-MM`.
fn months() -> (String, String) {
    let today = utc_today();
    let (y, m): (i32, u32) = (today[..4].parse().unwrap(), today[5..7].parse().unwrap());
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    (format!("{py:04}-{pm:02}"), format!("{y:04}-{m:02}"))
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (two months ago, last month) in UTC as `YYYY-MM`.
fn two_past_months() -> (String, String) {
    let (last, _) = months();
    let (y, m): (i32, u32) = (last[..4].parse().unwrap(), last[5..7].parse().unwrap());
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    (format!("{py:04}-{pm:02}"), last)
}

#[tokio::test]
async fn revshare_deficit_carries_into_the_next_close_and_status_moves_entries() {
    let app = spawn_app!().await;
    let s = setup(&app, "revshare").await;
    let aff = partner(&app, &s, "rs", None).await;
    let since = "2000-01-01T00:00:00Z";
    let plan = create_plan(
        &app,
        &s,
        json!({ "currency": "USD", "revshare": { "tiers": [{ "from": "0", "percent": "25" }], "negativeCarryover": true } }),
        Some(since),
    )
    .await;
    assign(&app, &s, &plan, Some(&aff.id), Some(since)).await;
    postback(
        &app,
        &s,
        &[("click_id", &click(&app, &aff).await), ("player_id", "whale"), ("event", "registration")],
    )
    .await;

    let (older, last) = two_past_months();
    let revenue = |txn: &'static str, amount: &'static str, month: &str| {
        let occurred = format!("{month}-10T08:00:00Z");
        let app = &app;
        let s = &s;
        async move {
            postback(
                app,
                s,
                &[
                    ("player_id", "whale"),
                    ("event", "revenue"),
                    ("txn_id", txn),
                    ("amount", amount),
                    ("currency", "USD"),
                    ("occurred_at", &occurred),
                ],
            )
            .await
        }
    };
    // A losing month: 25 % of -200 is booked live as -50.
    let loss = revenue("R1", "-200", &older).await;
    let live = entries(&app, &s.owner, json!({ "conversionId": loss["conversion_id"] })).await;
    assert_eq!(
        (live[0]["kind"].as_str(), num(&live[0]["amount"]), num(&live[0]["basis"])),
        (Some("REVSHARE"), -50.0, -200.0)
    );

    let close = "mutation($period: String!) { closePeriod(period: $period) { openingCarryover balance closingCarryover lines { kind amount } } }";
    let first = ok(&app, &s.owner, close, json!({ "period": older })).await["closePeriod"][0].clone();
    // Nothing is payable for a losing month; the deficit is carried.
    assert_eq!(num(&first["balance"]), 0.0, "{first}");
    assert_eq!(num(&first["closingCarryover"]), -50.0, "{first}");

    // A winning month: 25 % of 400 = 100 live, less the 50 carried in = 50 payable.
    revenue("R2", "400", &last).await;
    let second = ok(&app, &s.owner, close, json!({ "period": last })).await["closePeriod"][0].clone();
    assert_eq!(num(&second["openingCarryover"]), -50.0, "{second}");
    assert_eq!(num(&second["balance"]), 50.0, "{second}");
    assert_eq!(num(&second["closingCarryover"]), 0.0, "{second}");
    let lines: f64 = second["lines"].as_array().unwrap().iter().map(|l| num(&l["amount"])).sum();
    assert!((lines - 50.0).abs() < 1e-9, "lines sum to the balance: {second}");

    // A pending conversion's entries are pending; its approval moves them, amounts untouched.
    let pending = postback(
        &app,
        &s,
        &[
            ("player_id", "whale"),
            ("event", "revenue"),
            ("txn_id", "R3"),
            ("amount", "40"),
            ("currency", "USD"),
            ("status", "pending"),
        ],
    )
    .await;
    let filter = json!({ "conversionId": pending["conversion_id"] });
    let before = entries(&app, &s.owner, filter.clone()).await;
    assert_eq!(before[0]["status"], "PENDING");
    postback(
        &app,
        &s,
        &[
            ("player_id", "whale"),
            ("event", "revenue"),
            ("txn_id", "R3"),
            ("amount", "40"),
            ("currency", "USD"),
            ("status", "approved"),
        ],
    )
    .await;
    let after = entries(&app, &s.owner, filter).await;
    assert_eq!(after[0]["status"], "APPROVED");
    assert_eq!(after[0]["amount"], before[0]["amount"]);
}

#[tokio::test]
async fn trades_earn_per_lot_by_instrument_group() {
    let app = spawn_app!().await;
    let s = setup(&app, "forex").await;
    let ib = partner(&app, &s, "ib", None).await;
    let rules = json!({ "currency": "USD", "perLot": {
        "defaultRate": "5",
        "groupRates": [{ "group": "METALS", "rate": "12" }],
        "instrumentGroups": [{ "instrument": "XAUUSD", "group": "METALS" }],
    } });
    let plan = create_plan(&app, &s, rules, None).await;
    assign(&app, &s, &plan, None, None).await;
    postback(
        &app,
        &s,
        &[("click_id", &click(&app, &ib).await), ("player_id", "trader"), ("event", "registration")],
    )
    .await;
    let gold = postback(
        &app,
        &s,
        &[
            ("player_id", "trader"),
            ("event", "trade"),
            ("txn_id", "X1"),
            ("lots", "2.5"),
            ("instrument", "xauusd"),
        ],
    )
    .await;
    let fx = postback(
        &app,
        &s,
        &[
            ("player_id", "trader"),
            ("event", "trade"),
            ("txn_id", "X2"),
            ("lots", "0.37"),
            ("instrument", "EURUSD"),
        ],
    )
    .await;
    let amount = |rows: Vec<Value>| (rows[0]["kind"].as_str().map(str::to_owned), num(&rows[0]["amount"]));
    assert_eq!(
        amount(entries(&app, &s.owner, json!({ "conversionId": gold["conversion_id"] })).await),
        (Some("LOT".into()), 30.0)
    );
    // 0.37 × 5 = 1.85.
    assert_eq!(
        amount(entries(&app, &s.owner, json!({ "conversionId": fx["conversion_id"] })).await),
        (Some("LOT".into()), 1.85)
    );
}

#[tokio::test]
async fn cpa_pays_the_players_country_amount_once_turnover_qualifies() {
    let app = spawn_app!().await;
    let s = setup(&app, "country").await;
    let aff = partner(&app, &s, "de", None).await;
    let rules = json!({ "currency": "USD", "cpa": {
        "amount": "100",
        "byCountry": [{ "country": "DE", "amount": "150" }],
        "minTurnover": "500",
    } });
    let plan = create_plan(&app, &s, rules, None).await;
    assign(&app, &s, &plan, None, None).await;
    postback(
        &app,
        &s,
        &[
            ("click_id", &click(&app, &aff).await),
            ("player_id", "hans"),
            ("event", "registration"),
            ("country", "de"),
        ],
    )
    .await;
    let ftd = postback(
        &app,
        &s,
        &[("player_id", "hans"), ("event", "ftd"), ("txn_id", "D1"), ("amount", "50"), ("currency", "USD")],
    )
    .await;
    assert!(
        entries(&app, &s.owner, json!({ "conversionId": ftd["conversion_id"] })).await.is_empty(),
        "no turnover yet"
    );
    let revenue = postback(
        &app,
        &s,
        &[
            ("player_id", "hans"),
            ("event", "revenue"),
            ("txn_id", "NGR1"),
            ("amount", "20"),
            ("currency", "USD"),
            ("turnover", "600"),
        ],
    )
    .await;
    let paid = entries(&app, &s.owner, json!({ "conversionId": revenue["conversion_id"] })).await;
    assert_eq!(summary(&paid), vec![(aff.id.clone(), "CPA".into(), 0, "150.00".into())]);
}

/// Months are the operator's: a first deposit at 23:30 on 31 March in New York is March
/// commission there, though it is already April in UTC.
#[tokio::test]
async fn commission_months_follow_the_tenants_time_zone() {
    let app = spawn_app!().await;
    let s = setup(&app, "zoned").await;
    let a = partner(&app, &s, "alpha", None).await;
    let set_zone = "mutation($zone: String!) { updateTenant(input: {timeZone: $zone}) { timeZone } }";

    let bad = gql(&app, &s.owner, set_zone, json!({ "zone": "Mars/Olympus_Mons" })).await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "timeZone", "{bad}");
    let me = ok(&app, &s.owner, "{ me { tenant { timeZone } } }", json!({})).await;
    assert_eq!(me["me"]["tenant"]["timeZone"], "UTC", "a new tenant runs on UTC until told otherwise");

    let affiliate = login(&app, &s, &a).await;
    let refused = gql(&app, &affiliate, set_zone, json!({ "zone": "Europe/Malta" })).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    let set = ok(&app, &s.owner, set_zone, json!({ "zone": "America/New_York" })).await;
    assert_eq!(set["updateTenant"]["timeZone"], "America/New_York");

    let since = "2000-01-01T00:00:00Z";
    let plan =
        create_plan(&app, &s, json!({ "currency": "USD", "cpa": { "amount": "30" } }), Some(since)).await;
    assign(&app, &s, &plan, None, Some(since)).await;
    // Registered now (the click is today's); the first deposit is reported for March.
    let player = [("player_id", "late-night")];
    postback(&app, &s, &[("click_id", &click(&app, &a).await), player[0], ("event", "registration")]).await;
    postback(
        &app,
        &s,
        &[
            player[0],
            ("event", "ftd"),
            ("txn_id", "ftd-late-night"),
            ("amount", "100"),
            ("currency", "USD"),
            ("occurred_at", "2026-03-31T23:30:00-04:00"),
        ],
    )
    .await;

    let march = entries(&app, &s.owner, json!({ "period": "2026-03" })).await;
    assert_eq!(summary(&march), [(a.id.clone(), "CPA".to_owned(), 0, "30.00".to_owned())], "{march:?}");
    assert!(entries(&app, &s.owner, json!({ "period": "2026-04" })).await.is_empty());
}

/// What the affiliate's entries come to, rejected ones aside.
async fn standing(app: &TestApp, s: &Setup, affiliate: &str) -> f64 {
    entries(app, &s.owner, json!({ "affiliateId": affiliate }))
        .await
        .iter()
        .filter(|e| e["status"] != "REJECTED")
        .map(|e| num(&e["amount"]))
        .sum()
}

#[tokio::test]
async fn a_rejection_takes_back_what_was_counted_exactly_once() {
    let app = spawn_app!().await;
    let s = setup(&app, "rejections").await;
    let a = partner(&app, &s, "alpha", None).await;
    let b = partner(&app, &s, "beta", None).await;
    let since = "2000-01-01T00:00:00Z";
    let plan =
        create_plan(&app, &s, json!({ "currency": "USD", "cpa": { "amount": "50" } }), Some(since)).await;
    assign(&app, &s, &plan, None, Some(since)).await;
    let (last_month, this_month) = months();
    let last_month_day = format!("{last_month}-15T12:00:00Z");
    for (p, player) in [(&a, "p1"), (&a, "p2"), (&b, "p3")] {
        postback(
            &app,
            &s,
            &[("click_id", &click(&app, p).await), ("player_id", player), ("event", "registration")],
        )
        .await;
    }
    let ftd = |player: &'static str, txn: &'static str, occurred_at: Option<&str>, status: &'static str| {
        let occurred_at = occurred_at.unwrap_or("").to_owned();
        let (app, s) = (&app, &s);
        async move {
            let mut params = vec![
                ("player_id", player),
                ("event", "ftd"),
                ("txn_id", txn),
                ("amount", "100"),
                ("currency", "USD"),
                ("status", status),
            ];
            if !occurred_at.is_empty() {
                params.push(("occurred_at", occurred_at.as_str()));
            }
            postback(app, s, &params).await
        }
    };

    // A chargeback, then a rejection: the reversal is voided with its original, so the
    // affiliate loses the 50 once (by the void), not twice.
    ftd("p1", "T1", None, "approved").await;
    postback(&app, &s, &[("player_id", "p1"), ("event", "chargeback"), ("txn_id", "T1")]).await;
    assert_eq!(standing(&app, &s, &a.id).await, 0.0);
    ftd("p1", "T1", None, "rejected").await;
    assert_eq!(standing(&app, &s, &a.id).await, 0.0, "the rejection must not deduct a second time");

    // Paid, then rejected: the paid entry stays paid, and a reversal in the open month takes
    // the money back; a later chargeback of the same transaction takes nothing more.
    let t2 = ftd("p2", "T2", Some(&last_month_day), "approved").await;
    let t3 = ftd("p3", "T3", Some(&last_month_day), "approved").await;
    let close = "mutation($period: String!) { closePeriod(period: $period) { id affiliateId balance } }";
    let statements = ok(&app, &s.owner, close, json!({ "period": last_month })).await["closePeriod"].clone();
    let statement_of = |statements: &Value, affiliate: &str| -> (String, f64) {
        let found =
            statements.as_array().unwrap().iter().find(|st| st["affiliateId"] == affiliate).unwrap().clone();
        (found["id"].as_str().unwrap().to_owned(), num(&found["balance"]))
    };
    let (a_statement, a_balance) = statement_of(&statements, &a.id);
    assert_eq!(a_balance, 50.0);
    let pay = "mutation($id: ID!) { markStatementPaid(id: $id) { status balance } }";
    assert_eq!(
        ok(&app, &s.owner, pay, json!({ "id": a_statement })).await["markStatementPaid"]["status"],
        "PAID"
    );
    ftd("p2", "T2", Some(&last_month_day), "rejected").await;
    let t2_entries = entries(&app, &s.owner, json!({ "conversionId": t2["conversion_id"] })).await;
    let mut t2_summary: Vec<(String, String, String, String)> = t2_entries
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap().to_owned();
            (text(&e["kind"]), format!("{:.2}", num(&e["amount"])), text(&e["status"]), text(&e["period"]))
        })
        .collect();
    t2_summary.sort();
    assert_eq!(
        t2_summary,
        vec![
            ("CPA".into(), "50.00".into(), "PAID".into(), last_month.clone()),
            ("REVERSAL".into(), "-50.00".into(), "APPROVED".into(), this_month.clone()),
        ]
    );
    let reversal = t2_entries.iter().find(|e| e["kind"] == "REVERSAL").unwrap();
    let original = t2_entries.iter().find(|e| e["kind"] == "CPA").unwrap();
    assert_eq!(reversal["reversesEntryId"], original["id"]);
    let chargeback =
        postback(&app, &s, &[("player_id", "p2"), ("event", "chargeback"), ("txn_id", "T2")]).await;
    assert!(entries(&app, &s.owner, json!({ "conversionId": chargeback["conversion_id"] })).await.is_empty());
    // Of p2's 50: paid, then taken back once.
    assert_eq!(standing(&app, &s, &a.id).await, 0.0);

    // Rejected after its month closed: the statement's balance is stale, and paying it is
    // refused, naming the difference, until the month is closed again.
    let (b_statement, b_balance) = statement_of(&statements, &b.id);
    assert_eq!(b_balance, 50.0);
    ftd("p3", "T3", Some(&last_month_day), "rejected").await;
    let refused = gql(&app, &s.owner, pay, json!({ "id": b_statement })).await;
    assert_eq!(error_code(&refused), Some("CONFLICT"), "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "balance", "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("-50.00 USD"), "{message}");
    let t3_entries = entries(&app, &s.owner, json!({ "conversionId": t3["conversion_id"] })).await;
    assert!(t3_entries.iter().all(|e| e["status"] == "REJECTED"), "nothing was paid: {t3_entries:?}");
    let reclosed = ok(&app, &s.owner, close, json!({ "period": last_month })).await["closePeriod"].clone();
    let (same_statement, new_balance) = statement_of(&reclosed, &b.id);
    assert_eq!((same_statement.as_str(), new_balance), (b_statement.as_str(), 0.0));
    assert_eq!(
        ok(&app, &s.owner, pay, json!({ "id": b_statement })).await["markStatementPaid"]["status"],
        "PAID"
    );
}

#[tokio::test]
async fn a_chargeback_before_its_original_is_applied_when_the_original_arrives() {
    let app = spawn_app!().await;
    let s = setup(&app, "latecb").await;
    let parent = partner(&app, &s, "parent", None).await;
    let child = partner(&app, &s, "child", Some(&parent)).await;
    let plan = create_plan(&app, &s, rules_cpl_cpa_override(), None).await;
    assign(&app, &s, &plan, None, None).await;
    let click_id = click(&app, &child).await;
    postback(&app, &s, &[("click_id", &click_id), ("player_id", "p1"), ("event", "registration")]).await;

    // The chargeback first: stored, waiting, crediting nobody and booking nothing.
    let chargeback_params = [("player_id", "p1"), ("event", "chargeback"), ("txn_id", "T1")];
    let chargeback = postback(&app, &s, &chargeback_params).await;
    assert_eq!(chargeback["attributed"], false, "{chargeback}");
    assert_eq!(chargeback["unattributed_reason"], "unknown_original_transaction");
    let chargeback_id = chargeback["conversion_id"].as_str().unwrap().to_owned();
    assert!(entries(&app, &s.owner, json!({ "conversionId": chargeback_id })).await.is_empty());
    // Another transaction's chargeback, whose original never arrives.
    let orphan = postback(&app, &s, &[("player_id", "p1"), ("event", "chargeback"), ("txn_id", "T9")]).await;

    // Then the original: it books its CPA and override, and the waiting chargeback reverses
    // exactly that, at both tiers, each reversal pointing at the entry it cancels.
    let ftd_params =
        [("player_id", "p1"), ("event", "ftd"), ("txn_id", "T1"), ("amount", "100"), ("currency", "USD")];
    let ftd = postback(&app, &s, &ftd_params).await;
    let booked = entries(&app, &s.owner, json!({ "conversionId": ftd["conversion_id"] })).await;
    assert_eq!(
        summary(&booked),
        sorted(vec![
            (child.id.clone(), "CPA".into(), 0, "50.00".into()),
            (parent.id.clone(), "OVERRIDE".into(), 1, "5.00".into()),
        ])
    );
    let reversals = entries(&app, &s.owner, json!({ "conversionId": chargeback_id })).await;
    assert_eq!(
        summary(&reversals),
        sorted(vec![
            (child.id.clone(), "REVERSAL".into(), 0, "-50.00".into()),
            (parent.id.clone(), "REVERSAL".into(), 1, "-5.00".into()),
        ])
    );
    for reversal in &reversals {
        let original =
            booked.iter().find(|e| e["id"] == reversal["reversesEntryId"]).expect("points at original");
        assert_eq!(reversal["reverses"], original["kind"]);
        assert_eq!(reversal["status"], "APPROVED");
    }

    // The chargeback now reads as one that arrived after its original.
    let query = "query($id: ID!) { conversion(id: $id) { attributed unattributedReason
        credits { affiliateId share commission } } }";
    let applied = ok(&app, &s.owner, query, json!({ "id": chargeback_id })).await["conversion"].clone();
    assert_eq!(applied["attributed"], true, "{applied}");
    assert!(applied["unattributedReason"].is_null(), "{applied}");
    assert_eq!(applied["credits"][0]["affiliateId"], child.id.as_str());
    assert_eq!(num(&applied["credits"][0]["commission"]), -50.0);

    // The ledger nets as in order: the child keeps its CPL, the parent its override of it.
    let total = |rows: &[Value]| rows.iter().map(|e| num(&e["amount"])).sum::<f64>();
    let check_totals = |child_total: f64, parent_total: f64| {
        assert!((child_total - 2.0).abs() < 1e-9, "{child_total}");
        assert!((parent_total - 0.2).abs() < 1e-9, "{parent_total}");
    };
    check_totals(
        total(&entries(&app, &s.owner, json!({ "affiliateId": child.id })).await),
        total(&entries(&app, &s.owner, json!({ "affiliateId": parent.id })).await),
    );

    // Repeats of the original and of the chargeback change nothing.
    assert_eq!(postback(&app, &s, &ftd_params).await["duplicate"], true);
    assert_eq!(postback(&app, &s, &chargeback_params).await["duplicate"], true);
    assert_eq!(entries(&app, &s.owner, json!({ "conversionId": chargeback_id })).await, reversals);
    check_totals(
        total(&entries(&app, &s.owner, json!({ "affiliateId": child.id })).await),
        total(&entries(&app, &s.owner, json!({ "affiliateId": parent.id })).await),
    );

    // The reports count the chargeback on the child's row, with its reversal.
    let day = |offset: i64| (chrono::Utc::now() + chrono::Duration::days(offset)).to_rfc3339();
    let stats = ok(
        &app,
        &s.owner,
        "query($input: StatsInput!) { stats(input: $input) {
            rows { affiliateId metrics { chargebacks commission } } totals { chargebacks commission } } }",
        json!({ "input": { "from": day(-1), "to": day(1), "groupBy": ["AFFILIATE"] } }),
    )
    .await["stats"]
        .clone();
    assert_eq!(stats["totals"]["chargebacks"], 2, "{stats}");
    assert!((num(&stats["totals"]["commission"]) - 2.0).abs() < 1e-9, "{stats}");
    let child_row = stats["rows"].as_array().unwrap().iter().find(|r| r["affiliateId"] == child.id.as_str());
    let child_row = child_row.unwrap_or_else(|| panic!("no row for the child: {stats}"));
    assert_eq!(child_row["metrics"]["chargebacks"], 1, "{stats}");
    assert!((num(&child_row["metrics"]["commission"]) - 2.0).abs() < 1e-9, "{stats}");

    // A chargeback whose original never arrived stays unknown and books nothing.
    let orphan_id = orphan["conversion_id"].as_str().unwrap();
    let orphan = ok(&app, &s.owner, query, json!({ "id": orphan_id })).await["conversion"].clone();
    assert_eq!(orphan["attributed"], false, "{orphan}");
    assert_eq!(orphan["unattributedReason"], "unknown_original_transaction");
    assert!(entries(&app, &s.owner, json!({ "conversionId": orphan_id })).await.is_empty());
}
