//! Operations: health, readiness, metrics, GraphiQL, the demo tenant across restarts, and
//! graceful shutdown.

use std::time::Duration;

use clickledger_e2e::{TestApp, error_code, spawn_app};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The value of the first Prometheus sample line starting with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn metrics(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app!().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap(), json!({ "status": "ok" }));
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    let missing = app.client.get(app.url("/no-such-route")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn metrics_count_and_time_requests_in_prometheus_text() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    app.ok(Some(&token), "{ me { role } }", json!({})).await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    app.client.get(app.url("/secret-path-7f3a/abc")).send().await.unwrap();

    let text = metrics(&app).await;
    assert!(text.contains("# TYPE http_requests_total counter"), "{text}");
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"), "{text}");
    let graphql = r#"http_requests_total{method="POST",route="/graphql",status="200"}"#;
    assert!(sample(&text, graphql).is_some_and(|n| n >= 2.0), "sign-up and me counted: {text}");
    assert!(
        text.contains(
            r#"http_request_duration_seconds_bucket{method="POST",route="/graphql",status="200",le="0.005"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}"#),
        "{text}"
    );
    // Unknown paths share one label: no unbounded cardinality, no path echoed.
    assert!(text.contains(r#"http_requests_total{method="GET",route="other",status="404"}"#), "{text}");
    assert!(!text.contains("secret-path-7f3a"), "{text}");

    // Counters move by exactly the requests made.
    let healthz = r#"http_requests_total{method="GET",route="/healthz",status="200"}"#;
    let before = sample(&text, healthz).unwrap();
    for _ in 0..3 {
        app.client.get(app.url("/healthz")).send().await.unwrap();
    }
    let after = sample(&metrics(&app).await, healthz).unwrap();
    assert_eq!(after - before, 3.0);
}

#[tokio::test]
async fn get_graphql_without_a_query_serves_graphiql() {
    let app = spawn_app!().await;
    let response = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("graphiql"), "{html}");
    assert!(html.contains("/graphql/ws"), "subscriptions endpoint configured: {html}");
}

/// The credentials the first start prints: (owner e-mail, owner password, affiliate e-mail,
/// affiliate password, API key, link URL).
fn printed_demo(stdout: &[String]) -> (String, String, String, String, String, String) {
    let line = |label: &str| {
        stdout
            .iter()
            .map(|line| line.trim())
            .find_map(|line| line.strip_prefix(label))
            .unwrap_or_else(|| panic!("no `{label}` line in stdout: {stdout:?}"))
            .trim()
            .to_owned()
    };
    let pair = |label: &str| {
        let value = line(label);
        let (a, b) = value.split_once(" / ").unwrap_or_else(|| panic!("`{value}`"));
        (a.trim().to_owned(), b.trim().to_owned())
    };
    let (owner, owner_password) = pair("owner ");
    let (affiliate, affiliate_password) = pair("affiliate ");
    (owner, owner_password, affiliate, affiliate_password, line("API key "), line("link "))
}

#[tokio::test]
async fn the_demo_tenant_is_seeded_once_and_survives_restarts() {
    let mut app = spawn_app!().await;
    let (owner_email, owner_password, affiliate_email, affiliate_password, api_key, link_url) =
        printed_demo(&app.stdout);
    assert_eq!(owner_email, "owner@demo.clickledger.dev");
    assert!(owner_password.len() >= 12, "{owner_password}");
    assert!(api_key.starts_with("clk_"), "{api_key}");

    let owner = app.login_token("demo", &owner_email, &owner_password).await;
    let affiliate = app.login_token("demo", &affiliate_email, &affiliate_password).await;
    let demo = "{ me { role tenant { id slug } } affiliates { nodes { id email } } campaigns { nodes { id landingUrl } } trackingLinks { nodes { id code } } apiKeys { nodes { id prefix } } commissionPlans { nodes { id name } } }";
    let seeded = app.ok(Some(&owner), demo, json!({})).await;
    assert_eq!(seeded["me"]["role"], "OWNER");
    // Two affiliates (the one that signs in first), a casino and a Forex campaign, a link for
    // each pair (the printed one first), and one plan so commission shows.
    assert_eq!(seeded["affiliates"]["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(seeded["affiliates"]["nodes"][0]["email"], affiliate_email.as_str());
    assert_eq!(seeded["campaigns"]["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(seeded["trackingLinks"]["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(seeded["commissionPlans"]["nodes"].as_array().unwrap().len(), 1);
    let code = seeded["trackingLinks"]["nodes"][0]["code"].as_str().unwrap();
    assert!(link_url.ends_with(&format!("/c/{code}")), "{link_url} vs {code}");
    assert_eq!(seeded["apiKeys"]["nodes"][0]["prefix"], &api_key[..12], "the printed key is the stored one");
    let me = app.ok(Some(&affiliate), "{ me { role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "AFFILIATE");
    // Something of our own, to see it survive.
    let (acme, _) = app.sign_up("acme").await;
    app.create_campaign(&acme, "Kept", "https://kept.test/").await;

    assert!(app.stop().await, "SIGTERM ends the server with exit code 0");
    let refused = app.client.get(app.url("/healthz")).send().await;
    assert!(refused.is_err(), "nothing listens after shutdown");
    app.start().await;

    let text = app.stdout.join("\n");
    assert!(!text.contains(&owner_password), "the password is shown only on the first start: {text}");
    assert!(!text.contains(&api_key), "{text}");
    assert!(text.contains("password shown at first start"), "{text}");
    // Tokens issued before the restart still work; nothing was seeded twice.
    let again = app.ok(Some(&owner), demo, json!({})).await;
    assert_eq!(again, seeded, "the demo tenant is unchanged");
    assert_eq!(app.ok(Some(&affiliate), "{ me { role } }", json!({})).await["me"]["role"], "AFFILIATE");
    let kept = app.ok(Some(&acme), "{ campaigns { nodes { name } } }", json!({})).await;
    assert_eq!(kept["campaigns"]["nodes"], json!([{ "name": "Kept" }]));
    app.login_token("demo", &owner_email, &owner_password).await;
    assert_eq!(error_code(&app.login("demo", &owner_email, "wrong password").await), Some("UNAUTHENTICATED"));

    // Twice more: still seeded once.
    assert!(app.stop().await);
    app.start().await;
    assert!(!app.stdout.join("\n").contains(&owner_password));
    assert_eq!(app.ok(Some(&owner), demo, json!({})).await, seeded);
}

#[tokio::test]
async fn no_demo_means_no_demo_tenant() {
    let app = spawn_app!("--no-demo").await;
    assert!(!app.stdout.iter().any(|line| line.contains("demo")), "{:?}", app.stdout);
    // The slug is free.
    let (token, _) = app.sign_up("demo").await;
    assert_eq!(
        app.ok(Some(&token), "{ me { tenant { slug } } }", json!({})).await["me"]["tenant"]["slug"],
        "demo"
    );
}

#[tokio::test]
async fn a_start_without_no_demo_survives_a_taken_demo_slug() {
    let mut app = spawn_app!("--no-demo").await;
    let (token, _) = app.sign_up("demo").await;
    assert!(app.stop().await);
    app.set_extra_args(&[]);
    app.start().await; // panics today: the server exits before listening
    let me = app.ok(Some(&token), "{ me { tenant { slug } } }", json!({})).await;
    assert_eq!(me["me"]["tenant"]["slug"], "demo");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let mut app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    // A request whose body is still arriving when SIGTERM lands. A first request on the same
    // keep-alive connection proves the server has accepted it before the signal.
    let body = json!({ "query": "{ me { role } }" }).to_string();
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = |connection: &str| {
        format!(
            "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        )
    };
    stream.write_all(format!("{}{body}", head("keep-alive")).as_bytes()).await.unwrap();
    let first = read_response(&mut stream).await;
    assert!(first.starts_with("HTTP/1.1 200") && first.contains("OWNER"), "{first}");
    stream.write_all(head("close").as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let finish = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(&body.as_bytes()[5..]).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    let (clean, response) = tokio::join!(app.stop(), finish);
    assert!(response.starts_with("HTTP/1.1 200"), "the in-flight request was answered: {response}");
    assert!(response.contains("OWNER"), "{response}");
    assert!(clean, "exit code 0 after SIGTERM");
    let gone = app.client.get(app.url("/healthz")).send().await;
    assert!(gone.is_err(), "nothing listens after shutdown");
}

/// Reads one HTTP/1.1 response with a Content-Length body, leaving the connection open.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "connection closed early: {data:?}");
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}
