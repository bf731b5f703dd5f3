//! The hardened GraphQL endpoint: depth, complexity, directive, batch and body limits, no
//! mutations over GET, malformed requests. After each refusal the server still serves.

use clickledger_e2e::{TestApp, error_code, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_DEPTH: usize = 12;
const MAX_COMPLEXITY: usize = 2_000;
const MAX_BODY: usize = 256 * 1024;

/// A normal request still works (and the server is alive).
async fn still_serves(app: &TestApp, token: &str) {
    let me = app.ok(Some(token), "{ me { role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "OWNER");
}

fn message(answer: &Value) -> &str {
    answer["errors"][0]["message"].as_str().unwrap_or_default()
}

/// A query whose deepest field is at `depth` (the root field counts 1).
fn nested(depth: usize) -> String {
    assert!(depth >= 5);
    let mut query = String::from("{ __schema { queryType { fields { type { ");
    query += &"ofType { ".repeat(depth - 5);
    query += "name";
    query += &" }".repeat(depth - 5 + 5);
    query
}

async fn post_raw(
    app: &TestApp,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, String) {
    let mut request =
        app.client.post(app.url("/graphql")).header("Content-Type", "application/json").body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /graphql");
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn queries_deeper_than_the_limit_are_refused() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    let at_limit = app.graphql(Some(&token), &nested(MAX_DEPTH), json!({})).await;
    assert!(at_limit["data"]["__schema"].is_object(), "depth {MAX_DEPTH} is allowed: {at_limit}");
    for depth in [MAX_DEPTH + 1, 20] {
        let answer = app.graphql(Some(&token), &nested(depth), json!({})).await;
        assert!(answer["data"].is_null(), "{answer}");
        assert!(message(&answer).contains("nested too deep"), "depth {depth}: {answer}");
        still_serves(&app, &token).await;
    }
}

#[tokio::test]
async fn queries_more_complex_than_the_limit_are_refused() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    // `me { role }` costs 2: the limit allows exactly MAX_COMPLEXITY / 2 aliases.
    let aliases = |n: usize| {
        format!("{{ {} }}", (0..n).map(|i| format!("a{i}: me {{ role }}")).collect::<Vec<_>>().join(" "))
    };
    let at_limit = app.graphql(Some(&token), &aliases(MAX_COMPLEXITY / 2), json!({})).await;
    assert!(at_limit.get("errors").is_none(), "complexity {MAX_COMPLEXITY} is allowed: {at_limit}");
    assert_eq!(at_limit["data"]["a999"]["role"], "OWNER");
    let over = app.graphql(Some(&token), &aliases(MAX_COMPLEXITY / 2 + 1), json!({})).await;
    assert!(over["data"].is_null(), "{over}");
    assert!(message(&over).contains("too complex"), "{over}");
    still_serves(&app, &token).await;

    // Lists count by the page size asked for, so a few large pages add up too.
    let pages = |first: u32| {
        format!(
            "{{ {} }}",
            (0..3)
                .map(|i| format!("p{i}: affiliates(first: {first}) {{ nodes {{ id name email parentId status createdAt updatedAt }} }}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let small = app.graphql(Some(&token), &pages(20), json!({})).await;
    assert!(small.get("errors").is_none(), "{small}");
    let large = app.graphql(Some(&token), &pages(100), json!({})).await;
    assert!(message(&large).contains("too complex"), "{large}");
    still_serves(&app, &token).await;
}

#[tokio::test]
async fn too_many_directives_on_a_field_are_refused() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    let query = format!("{{ me {} {{ role }} }}", "@include(if: true) ".repeat(9));
    let answer = app.graphql(Some(&token), &query, json!({})).await;
    assert!(answer["data"].is_null(), "{answer}");
    assert!(message(&answer).contains("number of directives"), "refused for the count: {answer}");
    let many = format!("{{ me {} {{ role }} }}", "@skip(if: false) ".repeat(5_000));
    let answer = app.graphql(Some(&token), &many, json!({})).await;
    assert!(message(&answer).contains("number of directives"), "{answer}");
    // Control: directives as such work.
    let answer = app.ok(Some(&token), "{ me @include(if: true) { role @skip(if: false) } }", json!({})).await;
    assert_eq!(answer["me"]["role"], "OWNER");
    still_serves(&app, &token).await;
}

#[tokio::test]
async fn batches_are_capped_at_ten_operations() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    let batch = |n: usize| Value::Array((0..n).map(|_| json!({ "query": "{ me { role } }" })).collect());

    for n in [2, 10] {
        let (status, body) = post_raw(&app, Some(&token), batch(n).to_string()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answers: Value = serde_json::from_str(&body).unwrap();
        let answers = answers.as_array().unwrap_or_else(|| panic!("a batch answers an array: {body}"));
        assert_eq!(answers.len(), n);
        assert!(
            answers.iter().all(|a| a["data"]["me"]["role"] == "OWNER"),
            "each runs as the caller: {body}"
        );
    }
    for n in [11, 500] {
        let (status, body) = post_raw(&app, Some(&token), batch(n).to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error_code(&answer), Some("BATCH_TOO_LARGE"), "{body}");
        still_serves(&app, &token).await;
    }
    // None of a refused batch runs: eleven mutations create nothing.
    let create = json!({ "query": "mutation { createCampaign(input: { name: \"Batch\", landingUrl: \"https://b.test\" }) { id } }" });
    let (status, _) = post_raw(&app, Some(&token), Value::Array(vec![create; 11]).to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let campaigns = app.ok(Some(&token), "{ campaigns { nodes { id } } }", json!({})).await;
    assert_eq!(campaigns["campaigns"]["nodes"], json!([]));
}

#[tokio::test]
async fn mutations_over_get_are_refused_queries_work() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    let get = |params: Vec<(&'static str, String)>| {
        let mut url = reqwest::Url::parse(&app.url("/graphql")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        app.client.get(url).bearer_auth(&token).send()
    };
    let create =
        "mutation { createCampaign(input: { name: \"Via GET\", landingUrl: \"https://get.test\" }) { id } }";
    let attempts = vec![
        vec![("query", create.to_owned())],
        vec![("query", format!("# a comment first\n  {create}"))],
        // Two operations, the mutation chosen by name.
        vec![("query", format!("query Q {{ me {{ role }} }} mutation M {}", &create["mutation ".len()..])), ("operationName", "M".into())],
        vec![("query", format!("query Q {{ me {{ role }} }} mutation M {}", &create["mutation ".len()..])), ("operation_name", "M".into())],
        // Two operations, none chosen: refused as well (it could be the mutation).
        vec![("query", format!("query Q {{ me {{ role }} }} mutation M {}", &create["mutation ".len()..]))],
        // The same with variables.
        vec![
            ("query", "mutation($n: String!) { createCampaign(input: { name: $n, landingUrl: \"https://get.test\" }) { id } }".into()),
            ("variables", json!({ "n": "Via GET" }).to_string()),
        ],
    ];
    for params in attempts {
        let response = get(params.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{params:?}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), Some("METHOD_NOT_ALLOWED"), "{answer}");
    }
    let campaigns = app.ok(Some(&token), "{ campaigns { nodes { id } } }", json!({})).await;
    assert_eq!(campaigns["campaigns"]["nodes"], json!([]), "no GET created anything");

    // Queries work over GET, as the caller, with variables; and the named query of a
    // document that also holds a mutation.
    let response = get(vec![("query", "{ me { role tenant { slug } } }".into())]).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["data"]["me"]["tenant"]["slug"], "acme", "{answer}");
    let response = get(vec![
        ("query", "query($first: Int) { campaigns(first: $first) { nodes { id } } }".into()),
        ("variables", json!({ "first": 5 }).to_string()),
    ])
    .await
    .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["data"]["campaigns"]["nodes"], json!([]), "{answer}");
    for name in ["operationName", "operation_name"] {
        let response = get(vec![
            ("query", format!("query Q {{ me {{ role }} }} mutation M {}", &create["mutation ".len()..])),
            (name, "Q".into()),
        ])
        .await
        .unwrap();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["data"]["me"]["role"], "OWNER", "{name}: {answer}");
        let response = get(vec![
            ("query", "query A { me { role } } query B { me { tenant { slug } } }".into()),
            (name, "B".into()),
        ])
        .await
        .unwrap();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["data"], json!({ "me": { "tenant": { "slug": "acme" } } }), "{name}: {answer}");
    }
    let campaigns = app.ok(Some(&token), "{ campaigns { nodes { id } } }", json!({})).await;
    assert_eq!(campaigns["campaigns"]["nodes"], json!([]), "the mutation of that document did not run");
    still_serves(&app, &token).await;
}

#[tokio::test]
async fn bodies_over_256_kib_are_refused_with_413() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    // A valid request padded with JSON whitespace to an exact size.
    let padded = |size: usize| {
        let mut body = json!({ "query": "{ me { role } }" }).to_string();
        body += &" ".repeat(size - body.len());
        body
    };
    let (status, body) = post_raw(&app, Some(&token), padded(MAX_BODY)).await;
    assert_eq!(status, StatusCode::OK, "exactly the limit is accepted: {body}");
    assert!(body.contains("OWNER"));
    for size in [MAX_BODY + 1, 4 * MAX_BODY] {
        let (status, body) = post_raw(&app, Some(&token), padded(size)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{size} bytes: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error_code(&answer), Some("PAYLOAD_TOO_LARGE"));
        still_serves(&app, &token).await;
    }

    // Without a Content-Length (chunked), the limit holds as well.
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = " ".repeat(64 * 1024);
    for _ in 0..6 {
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if stream.write_all(framed.as_bytes()).await.is_err() {
            break; // the server may refuse before reading everything
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "chunked oversized body: {response}");
    still_serves(&app, &token).await;
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    for body in ["{\"query\": \"{ me { role } }\"", "not json at all", "", "[1, 2]", "42", "{\"query\": 42}"]
    {
        let (status, text) = post_raw(&app, Some(&token), body.to_owned()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {text}");
        let answer: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON error body for {body:?}: {text}"));
        assert_eq!(error_code(&answer), Some("BAD_REQUEST"), "{body:?}: {text}");
        still_serves(&app, &token).await;
    }
    // Well-formed JSON without a query, and a GraphQL syntax error, are GraphQL errors.
    let (_, text) = post_raw(&app, Some(&token), "{\"querry\": \"{ me { role } }\"}".to_owned()).await;
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert!(answer["errors"].is_array() && answer["data"].is_null(), "{answer}");
    let answer = app.graphql(Some(&token), "{ me { role ", json!({})).await;
    assert!(answer["errors"].is_array() && answer["data"].is_null(), "{answer}");
    still_serves(&app, &token).await;
}
