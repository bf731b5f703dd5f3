//! Abuse and availability: per-address budgets that hold over every transport, keyed on the
//! real client address (behind trusted proxies too), and costly work only for live tokens.

use std::time::Duration;

use clickledger_e2e::tenant::Tenant;
use clickledger_e2e::ws::{GqlWs, WsProtocol};
use clickledger_e2e::{TestApp, error_code, spawn_app};
use serde_json::{Value, json};

/// The per-address budget shared by login, sign-up, password resets and `setPassword`.
const ADDRESS_BUDGET: usize = 60;
const SET_PASSWORD: &str = "mutation($t: String!, $p: String!) { setPassword(token: $t, password: $p) }";

/// `setPassword` with a token nobody issued, optionally as forwarded for `forwarded_for`.
async fn forged_set_password(app: &TestApp, attempt: usize, forwarded_for: Option<&str>) -> Value {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({
        "query": SET_PASSWORD,
        "variables": { "t": format!("forged-token-{attempt}"), "p": "a long enough password" },
    }));
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", address);
    }
    request.send().await.expect("POST /graphql").json().await.expect("GraphQL answers JSON")
}

/// Spends the per-address budget with forged tokens (each one different, so only the address
/// budget counts) until it is refused; the first `ADDRESS_BUDGET - already_spent` attempts are
/// honest `NOT_FOUND`s. The budget refills one attempt a second, so "refused" is looked for
/// rather than counted to.
async fn spend_address_budget(app: &TestApp, forwarded_for: Option<&str>, already_spent: usize) {
    for attempt in already_spent..ADDRESS_BUDGET * 3 {
        let answer = forged_set_password(app, attempt, forwarded_for).await;
        match error_code(&answer) {
            Some("NOT_FOUND") => {}
            Some("RATE_LIMITED") if attempt >= ADDRESS_BUDGET => return,
            _ => panic!("attempt {attempt}: {answer}"),
        }
    }
    panic!("never rate limited");
}

/// Whether any of a few more attempts (made well within a second of the budget running out)
/// is refused.
async fn any_refused<F: std::future::Future<Output = bool>>(mut attempt: impl FnMut(usize) -> F) -> bool {
    for n in 0..5 {
        if attempt(n).await {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn set_password_with_forged_tokens_is_throttled_per_client_address() {
    let app = spawn_app!().await;
    spend_address_budget(&app, None, 0).await;

    // The browser form is the same door with the same budget.
    let form_refused = any_refused(|n| {
        let request = app.client.post(app.url("/set-password")).form(&[
            ("token", format!("another-forged-token-{n}")),
            ("password", "a long enough password".into()),
        ]);
        async move { request.send().await.unwrap().status() == 429 }
    })
    .await;
    assert!(form_refused, "the form ignores the address's budget");
}

#[tokio::test]
async fn a_login_over_websocket_spends_the_budget_of_the_sockets_address() {
    let app = spawn_app!().await;
    app.sign_up("wsco").await;
    // Signing up spent one attempt of the address's budget.
    spend_address_budget(&app, None, 1).await;

    let mut ws = GqlWs::connect(&app, None, WsProtocol::TransportWs).await;
    let mut answers = Vec::new();
    for n in 0..5 {
        // A different account each time: only the address budget can refuse these.
        let id = ws
            .subscribe(
                "mutation($i: LoginInput!) { login(input: $i) { token } }",
                json!({ "i": { "tenantSlug": "wsco", "email": format!("guess{n}@wsco.test"), "password": "a wrong guess" } }),
            )
            .await;
        let answer = match ws.next_for(&id, Duration::from_secs(10)).await {
            Some(Err(message)) => message["payload"].clone(),
            other => panic!("expected a refused login, got {other:?}"),
        };
        answers.push(answer);
    }
    assert!(answers.iter().any(|a| error_code(a) == Some("RATE_LIMITED")), "{answers:?}");
}

#[tokio::test]
async fn forwarded_for_is_believed_from_trusted_proxies_only() {
    // Behind a trusted proxy each forwarded client has its own budget...
    let behind_proxy = spawn_app!("--trusted-proxies", "10.0.0.0/8,127.0.0.1/32").await;
    for n in 0..ADDRESS_BUDGET * 2 {
        let answer = forged_set_password(&behind_proxy, n, Some(&format!("198.51.100.{n}"))).await;
        assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
    }
    // ...and cannot escape it by prepending addresses of its choosing: the proxy appends the
    // address it saw, and that is the one read.
    for n in 0..ADDRESS_BUDGET * 3 {
        let forwarded = format!("203.0.113.{}, 192.0.2.1", n % 250);
        let answer = forged_set_password(&behind_proxy, n, Some(&forwarded)).await;
        match error_code(&answer) {
            Some("NOT_FOUND") => {}
            Some("RATE_LIMITED") if n >= ADDRESS_BUDGET => break,
            _ => panic!("attempt {n}: {answer}"),
        }
        assert!(n + 1 < ADDRESS_BUDGET * 3, "never rate limited");
    }

    // Without the flag the header is ignored: everyone on this socket address shares a budget.
    let direct = spawn_app!().await;
    for n in 0..ADDRESS_BUDGET * 3 {
        let answer = forged_set_password(&direct, n, Some(&format!("198.51.100.{n}"))).await;
        match error_code(&answer) {
            Some("NOT_FOUND") => {}
            Some("RATE_LIMITED") if n >= ADDRESS_BUDGET => return,
            _ => panic!("attempt {n}: {answer}"),
        }
    }
    panic!("the forwarded header bought a fresh budget");
}

#[tokio::test]
async fn control_characters_in_click_fields_are_stripped_and_lose_no_click() {
    let app = spawn_app!().await;
    let tenant = Tenant::create(&app, "ctrlco").await;
    let affiliate = tenant.create_affiliate("ann", false).await;
    let campaign = tenant.create_campaign("Spring", json!({})).await;
    let link = tenant.create_link(&affiliate, &campaign).await;

    // A NUL (which PostgreSQL refuses in text) and other control characters, next to a
    // plain click that must not go down with them.
    let nul = app.click(&link.code, "sub1=%00&sub2=a%01b&source=x%0Ay", None).await;
    assert_eq!(nul.status, 302);
    assert_eq!(nul.location_param("s"), Some(""), "{nul:?}");
    let tab = app.click(&link.code, "sub1=a%09b", None).await;
    assert_eq!(tab.location_param("s"), Some("ab"), "{tab:?}");
    assert_eq!(app.click(&link.code, "sub1=plain", None).await.status, 302);

    app.wait_for_recorded_clicks(3.0).await;
    assert_eq!(app.metric("clicks_dropped_total").await, 0.0);
}

#[tokio::test]
async fn endpoints_and_test_sends_per_affiliate_are_capped() {
    let app = spawn_app!("--outbound-allow", "127.0.0.1/32").await;
    let tenant = Tenant::create(&app, "capco").await;
    let affiliate = tenant.create_affiliate("ann", false).await;
    let create = |n: usize| {
        app.graphql(
            Some(&tenant.token),
            "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { endpoint { id } } }",
            json!({"i": {"affiliateId": affiliate, "urlTemplate": format!("http://127.0.0.1:9/pb/{n}?c={{click_id}}"), "method": "GET"}}),
        )
    };
    let mut first = None;
    for n in 0..20 {
        let answer = create(n).await;
        let id = answer["data"]["createPostbackEndpoint"]["endpoint"]["id"].as_str();
        assert!(id.is_some(), "endpoint {n}: {answer}");
        first = first.or(id.map(str::to_owned));
    }
    let refused = create(20).await;
    assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "affiliateId", "{refused}");

    let endpoint = first.expect("an endpoint");
    let mut answers = Vec::new();
    for _ in 0..11 {
        let answer = app
            .graphql(
                Some(&tenant.token),
                "mutation($e: ID!) { sendTestPostback(endpointId: $e) { id } }",
                json!({"e": endpoint}),
            )
            .await;
        answers.push(error_code(&answer).map(str::to_owned));
    }
    assert!(answers[..10].iter().all(Option::is_none), "{answers:?}");
    assert_eq!(answers[10].as_deref(), Some("RATE_LIMITED"), "{answers:?}");
}
