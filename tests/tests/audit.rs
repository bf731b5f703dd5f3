//! The audit log: staff actions are logged in order with who did them, owners read the log
//! page by page, no one else reads it, and tenants never see each other's entries (the
//! schema-wide isolation probe in `isolation.rs` covers `auditLog` too).

use clickledger_e2e::{PASSWORD, TestApp, error_code, spawn_app};
use serde_json::{Value, json};

const LOG: &str = "query($first: Int, $after: String) { auditLog(first: $first, after: $after) { \
    pageInfo { hasNextPage endCursor } \
    nodes { id at actor { userId email } action subjectType subjectId details } } }";

async fn log_page(app: &TestApp, token: &str, first: i64, after: Option<&str>) -> Value {
    app.ok(Some(token), LOG, json!({ "first": first, "after": after })).await["auditLog"].clone()
}

/// Every entry, walking pages of `size`.
async fn whole_log(app: &TestApp, token: &str, size: i64) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = log_page(app, token, size, after.as_deref()).await;
        let nodes = page["nodes"].as_array().unwrap();
        assert!(nodes.len() as i64 <= size, "{page}");
        entries.extend(nodes.iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            return entries;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
}

fn id_of(data: &Value, field: &str) -> String {
    data[field]["id"].as_str().unwrap_or_else(|| panic!("no {field}.id in {data}")).to_owned()
}

#[tokio::test]
async fn staff_actions_are_logged_in_order_with_their_actor() {
    let app = spawn_app!("--no-demo", "--outbound-allow", "127.0.0.1/32").await;
    let (owner, _) = app.sign_up("acme").await;
    let owner_id =
        app.ok(Some(&owner), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].clone();

    // The owner adds a manager; the manager runs the program.
    let manager_id = id_of(
        &app.ok(
            Some(&owner),
            "mutation { createUser(input: {email: \"mia@acme.test\", password: \"mia password 1\", role: MANAGER}) { id } }",
            json!({}),
        )
        .await,
        "createUser",
    );
    let manager = app.login_token("acme", "mia@acme.test", "mia password 1").await;
    let plan = id_of(
        &app.ok(
            Some(&manager),
            "mutation { createCommissionPlan(input: {name: \"CPA\", rules: {currency: \"USD\", cpa: {amount: \"50\"}}}) { id } }",
            json!({}),
        )
        .await,
        "createCommissionPlan",
    );
    app.ok(
        Some(&manager),
        "mutation($id: ID!) { updateCommissionPlan(id: $id, input: {name: \"CPA 60\", rules: {currency: \"USD\", cpa: {amount: \"60\"}}}) { id } }",
        json!({ "id": plan }),
    )
    .await;
    let campaign = app.create_campaign(&manager, "Spring", "https://land.test/?c={click_id}").await;
    app.ok(
        Some(&manager),
        "mutation($i: AssignCommissionPlanInput!) { assignCommissionPlan(input: $i) { id } }",
        json!({ "i": { "planId": plan, "campaignId": campaign["id"] } }),
    )
    .await;
    let ann = app.create_affiliate(&manager, "Ann", "ann@partners.test", Some(PASSWORD), None).await;
    for mutation in ["suspendAffiliate", "activateAffiliate"] {
        app.ok(
            Some(&manager),
            &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}"),
            json!({ "id": ann["id"] }),
        )
        .await;
    }
    let entry = id_of(
        &app.ok(
            Some(&manager),
            "mutation($a: ID!) { adjustCommission(input: {affiliateId: $a, amount: \"-12.50\", currency: \"USD\", reason: \"duplicate player\"}) { id } }",
            json!({ "a": ann["id"] }),
        )
        .await,
        "adjustCommission",
    );
    for status in ["HELD", "APPROVED"] {
        app.ok(
            Some(&manager),
            "mutation($ids: [ID!]!, $s: CommissionStatus!) { setCommissionStatus(ids: $ids, status: $s) { id } }",
            json!({ "ids": [entry], "s": status }),
        )
        .await;
    }
    let endpoint = app
        .ok(
            Some(&manager),
            "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { endpoint { id } secret } }",
            json!({ "i": { "affiliateId": ann["id"], "urlTemplate": "http://127.0.0.1:9/hook?c={click_id}" } }),
        )
        .await;
    let endpoint_id = endpoint["createPostbackEndpoint"]["endpoint"]["id"].as_str().unwrap().to_owned();
    let endpoint_secret = endpoint["createPostbackEndpoint"]["secret"].as_str().unwrap().to_owned();
    app.ok(
        Some(&manager),
        "mutation($id: ID!) { updatePostbackEndpoint(id: $id, input: {method: POST, enabled: true}) { id } }",
        json!({ "id": endpoint_id }),
    )
    .await;

    // The owner: keys, fraud settings, staff.
    let key = app.create_api_key(&owner, "Backend").await;
    let key_id = key["apiKey"]["id"].as_str().unwrap().to_owned();
    app.ok(Some(&owner), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": key_id }))
        .await;
    app.ok(
        Some(&owner),
        "mutation { updateFraudSettings(input: {ftdFloorSecs: 45}) { ftdFloorSecs } }",
        json!({}),
    )
    .await;
    for mutation in ["suspendUser", "activateUser"] {
        app.ok(
            Some(&owner),
            &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}"),
            json!({ "id": manager_id }),
        )
        .await;
    }
    // Refused or empty changes leave no entry: suspending oneself, activating the active.
    let refused = app
        .graphql(
            Some(&owner),
            "mutation($id: ID!) { suspendUser(id: $id) { id } }",
            json!({ "id": owner_id }),
        )
        .await;
    assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
    app.ok(Some(&owner), "mutation($id: ID!) { activateUser(id: $id) { id } }", json!({ "id": manager_id }))
        .await;

    let log = whole_log(&app, &owner, 100).await;
    let (owner_mail, manager_mail) = ("owner@acme.test", "mia@acme.test");
    let tenant =
        app.ok(Some(&owner), "{ me { tenant { id } } }", json!({})).await["me"]["tenant"]["id"].clone();
    let expected: Vec<(&str, &str, &str, Value)> = vec![
        ("USER_CREATED", owner_mail, "USER", json!(manager_id)),
        ("PLAN_CREATED", manager_mail, "COMMISSION_PLAN", json!(plan)),
        ("PLAN_REVISED", manager_mail, "COMMISSION_PLAN", json!(plan)),
        ("PLAN_ASSIGNED", manager_mail, "COMMISSION_PLAN", json!(plan)),
        ("AFFILIATE_SUSPENDED", manager_mail, "AFFILIATE", ann["id"].clone()),
        ("AFFILIATE_ACTIVATED", manager_mail, "AFFILIATE", ann["id"].clone()),
        ("COMMISSION_ADJUSTED", manager_mail, "COMMISSION_ENTRY", json!(entry)),
        ("COMMISSION_HELD", manager_mail, "COMMISSION_ENTRY", json!(entry)),
        ("COMMISSION_APPROVED", manager_mail, "COMMISSION_ENTRY", json!(entry)),
        ("POSTBACK_ENDPOINT_CREATED", manager_mail, "POSTBACK_ENDPOINT", json!(endpoint_id)),
        ("POSTBACK_ENDPOINT_UPDATED", manager_mail, "POSTBACK_ENDPOINT", json!(endpoint_id)),
        ("API_KEY_CREATED", owner_mail, "API_KEY", json!(key_id)),
        ("API_KEY_REVOKED", owner_mail, "API_KEY", json!(key_id)),
        ("FRAUD_SETTINGS_UPDATED", owner_mail, "TENANT", tenant),
        ("USER_SUSPENDED", owner_mail, "USER", json!(manager_id)),
        ("USER_ACTIVATED", owner_mail, "USER", json!(manager_id)),
    ];
    let seen: Vec<(String, String, String, Value)> = log
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"]["email"].as_str().unwrap_or("<host>").to_owned(),
                e["subjectType"].as_str().unwrap().to_owned(),
                e["subjectId"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, Value)> =
        expected.into_iter().map(|(a, m, t, s)| (a.to_owned(), m.to_owned(), t.to_owned(), s)).collect();
    assert_eq!(seen, expected, "the whole log: {log:#?}");
    assert!(
        log.iter().all(|e| e["actor"]["userId"] == owner_id || e["actor"]["userId"] == manager_id.as_str())
    );
    let times: Vec<&str> = log.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| chrono_le(w[0], w[1])), "oldest first: {times:?}");

    // What changed, never a secret.
    let details = |action: &str| log.iter().find(|e| e["action"] == action).unwrap()["details"].clone();
    assert_eq!(details("COMMISSION_ADJUSTED")["reason"], "duplicate player");
    assert_eq!(details("COMMISSION_ADJUSTED")["amount"], "-12.50");
    assert_eq!(
        details("COMMISSION_HELD"),
        json!({ "from": "APPROVED", "to": "HELD", "affiliateId": ann["id"] })
    );
    assert_eq!(details("PLAN_REVISED")["name"], "CPA 60");
    assert_eq!(details("PLAN_REVISED")["previousName"], "CPA");
    assert_eq!(details("PLAN_REVISED")["version"], 2);
    assert_eq!(details("POSTBACK_ENDPOINT_UPDATED"), json!({ "method": { "from": "GET", "to": "POST" } }));
    assert_eq!(details("FRAUD_SETTINGS_UPDATED"), json!({ "ftdFloorSecs": { "from": 30, "to": 45 } }));
    assert_eq!(details("API_KEY_CREATED")["name"], "Backend");
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(key["key"].as_str().unwrap()), "the API key is in the log");
    assert!(!text.contains(&endpoint_secret), "the endpoint's secret is in the log");

    // Pages: any size walks the same log; a first page says there is more.
    let first = log_page(&app, &owner, 4, None).await;
    assert_eq!(first["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    assert_eq!(first["pageInfo"]["endCursor"], log[3]["id"]);
    let next = log_page(&app, &owner, 4, first["pageInfo"]["endCursor"].as_str()).await;
    assert_eq!(next["nodes"][0]["id"], log[4]["id"]);
    for size in [1, 3, 7] {
        assert_eq!(whole_log(&app, &owner, size).await, log, "pages of {size}");
    }
    let bad = app.graphql(Some(&owner), LOG, json!({ "first": 3, "after": entry })).await;
    assert_eq!(error_code(&bad), Some("BAD_USER_INPUT"), "a cursor of another list: {bad}");

    // Owners only: managers and affiliates are refused.
    // (The manager signs in again: the suspension ended its earlier session.)
    let manager = app.login_token("acme", "mia@acme.test", "mia password 1").await;
    let affiliate = app.login_token("acme", "ann@partners.test", PASSWORD).await;
    for token in [&manager, &affiliate] {
        let answer = app.graphql(Some(token), LOG, json!({ "first": 5 })).await;
        assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
        assert!(answer["data"].is_null(), "{answer}");
    }
    let answer = app.graphql(None, LOG, json!({ "first": 5 })).await;
    assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");

    // Another tenant sees only its own entries, even from this tenant's cursor.
    let (other, _) = app.sign_up("bravo").await;
    app.create_api_key(&other, "Bravo key").await;
    let theirs = whole_log(&app, &other, 100).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["action"], "API_KEY_CREATED");
    assert_eq!(theirs[0]["actor"]["email"], "owner@bravo.test");
    let from_ours = log_page(&app, &other, 100, log[0]["id"].as_str()).await;
    assert_eq!(from_ours["nodes"], json!(theirs), "{from_ours}");
}

/// `a <= b` for RFC 3339 instants.
fn chrono_le(a: &str, b: &str) -> bool {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    parse(a) <= parse(b)
}
