//! Budgets for integrators, per replica: postbacks per API key (a key's own limit, else the
//! server's default) and GraphQL requests per signed-in user. Over budget: `429` with
//! `Retry-After` and `RATE_LIMITED`.

use std::time::Duration;

use clickledger_e2e::tenant::Tenant;
use clickledger_e2e::ws::{GqlWs, WsProtocol};
use clickledger_e2e::{TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

async fn create_key(t: &Tenant<'_>, per_minute: Option<i32>) -> (String, String) {
    let data = t
        .run(
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id postbacksPerMinute } } }",
            json!({ "i": { "name": "limited", "postbacksPerMinute": per_minute } }),
        )
        .await;
    let created = &data["createApiKey"];
    assert_eq!(created["apiKey"]["postbacksPerMinute"], json!(per_minute));
    (created["key"].as_str().unwrap().to_owned(), created["apiKey"]["id"].as_str().unwrap().to_owned())
}

/// A registration with `key`: (status, Retry-After, body).
async fn registration(app: &TestApp, key: &str, player: &str) -> (u16, Option<u64>, Value) {
    let response = app
        .client
        .get(app.url("/postback"))
        .query(&[("key", key), ("player_id", player), ("event", "registration")])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().await.unwrap())
}

fn assert_throttled((status, retry_after, body): &(u16, Option<u64>, Value)) {
    assert_eq!(*status, 429, "{body}");
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    assert_eq!(body["error"]["retry_after"], retry_after, "{body}");
}

#[tokio::test]
async fn a_key_over_its_own_budget_gets_429_and_its_neighbour_does_not() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "budget").await;
    let (low, low_id) = create_key(&t, Some(3)).await;

    for n in 0..3 {
        assert_eq!(registration(&app, &low, &format!("p{n}")).await.0, 200);
    }
    assert_throttled(&registration(&app, &low, "p3").await);
    // The tenant's other key has a budget of its own (the server's default).
    for n in 4..10 {
        assert_eq!(registration(&app, &t.api_key, &format!("p{n}")).await.0, 200);
    }
    assert_throttled(&registration(&app, &low, "p10").await);

    // A new limit holds at once (a fresh budget of its size); null returns to the default.
    let raise = "mutation($id: ID!, $n: Int) { updateApiKey(id: $id, input: { postbacksPerMinute: $n }) { postbacksPerMinute } }";
    let data = t.run(raise, json!({ "id": low_id, "n": 100 })).await;
    assert_eq!(data["updateApiKey"]["postbacksPerMinute"], 100);
    assert_eq!(registration(&app, &low, "p11").await.0, 200);
    let data = t.run(raise, json!({ "id": low_id, "n": null })).await;
    assert!(data["updateApiKey"]["postbacksPerMinute"].is_null());
    assert_eq!(registration(&app, &low, "p12").await.0, 200);
}

#[tokio::test]
async fn the_server_default_applies_to_keys_without_a_limit_of_their_own() {
    let app = TestApp::spawn_with_env(
        env!("CARGO_BIN_EXE_clickledger-under-test"),
        &[("CLICKLEDGER_POSTBACKS_PER_MINUTE_PER_KEY", "2")],
        &[],
    )
    .await;
    let t = Tenant::create(&app, "defaults").await;
    let (own, _) = create_key(&t, Some(5)).await;
    assert_eq!(registration(&app, &t.api_key, "p1").await.0, 200);
    assert_eq!(registration(&app, &t.api_key, "p2").await.0, 200);
    assert_throttled(&registration(&app, &t.api_key, "p3").await);
    for n in 0..5 {
        assert_eq!(registration(&app, &own, &format!("own{n}")).await.0, 200, "its own limit wins");
    }
}

#[tokio::test]
async fn bad_limits_are_refused_naming_the_field() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "badlimits").await;
    let create = "mutation($n: Int) { createApiKey(input: { name: \"k\", postbacksPerMinute: $n }) { key } }";
    for bad in [json!(0), json!(-5), json!(1_000_001)] {
        let answer = app.graphql(Some(&t.token), create, json!({ "n": bad })).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{bad}: {answer}");
        assert_eq!(error_field(&answer), Some("postbacksPerMinute"), "{answer}");
    }
    let keys = t.run("{ apiKeys { nodes { id } } }", json!({})).await;
    let id = keys["apiKeys"]["nodes"][0]["id"].clone();
    let answer = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { updateApiKey(id: $id, input: { postbacksPerMinute: 0 }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
    assert_eq!(error_field(&answer), Some("postbacksPerMinute"), "{answer}");
}

#[tokio::test]
async fn graphql_requests_over_the_per_user_budget_get_429_rate_limited() {
    let app = TestApp::spawn_with_env(
        env!("CARGO_BIN_EXE_clickledger-under-test"),
        &[("CLICKLEDGER_GRAPHQL_REQUESTS_PER_MINUTE", "5")],
        &[],
    )
    .await;
    let (owner, _) = app.sign_up("chatty").await;
    let (other, _) = app.sign_up("quiet").await;
    let me = json!({ "query": "{ me { role } }" });
    let send =
        |token: &str, body: Value| app.client.post(app.url("/graphql")).bearer_auth(token).json(&body).send();
    // A batch of three spends three.
    let batch = json!([me.clone(), me.clone(), me.clone()]);
    assert_eq!(send(&owner, batch).await.unwrap().status(), 200);
    for _ in 0..2 {
        assert_eq!(send(&owner, me.clone()).await.unwrap().status(), 200);
    }
    let refused = send(&owner, me.clone()).await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], retry_after, "{body}");

    // Another user's budget is untouched; a fresh login of the same user buys nothing.
    assert_eq!(send(&other, me.clone()).await.unwrap().status(), 200);
    let again = app.login_token("chatty", "owner@chatty.test", clickledger_e2e::PASSWORD).await;
    assert_eq!(send(&again, me).await.unwrap().status(), 429);

    // Over the WebSocket the same budget holds: `quiet` has 4 left.
    let mut ws = GqlWs::connect(&app, Some(&other), WsProtocol::TransportWs).await;
    for _ in 0..4 {
        let id = ws.subscribe("{ me { role } }", json!({})).await;
        ws.expect_data(&id, Duration::from_secs(5)).await;
    }
    let id = ws.subscribe("{ me { role } }", json!({})).await;
    let refused = ws.next_for(&id, Duration::from_secs(5)).await.expect("an answer");
    let message = refused.expect_err("refused");
    assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{message}");
}
