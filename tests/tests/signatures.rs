//! Signed inbound postbacks (`v2`): HMAC-SHA256 under the key's own signing secret over every
//! parameter the postback uses, query and body together, dated by a signed `timestamp`. The
//! signatures here are made with `ring`, independently of the server's `hmac` code, and the
//! README's shell example is run as written.

use clickledger_e2e::signing::sign;
use clickledger_e2e::tenant::Tenant;
use clickledger_e2e::{TestApp, error_code, spawn_app};
use serde_json::{Value, json};

const KEY_FIELDS: &str = "id signatureRequired signingSecretCreatedAt postbacksPerMinute";

/// A key of its own: (key, signing secret, id).
async fn create_key(t: &Tenant<'_>, signature_required: bool) -> (String, String, String) {
    let data = t
        .run(
            &format!(
                "mutation($i: CreateApiKeyInput!) {{ createApiKey(input: $i) {{ key signingSecret apiKey {{ {KEY_FIELDS} }} }} }}"
            ),
            json!({ "i": { "name": "signed", "signatureRequired": signature_required } }),
        )
        .await;
    let created = &data["createApiKey"];
    assert_eq!(created["apiKey"]["signatureRequired"], signature_required);
    assert!(created["apiKey"]["signingSecretCreatedAt"].is_string());
    let secret = created["signingSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("clsig_") && secret.len() == 6 + 64, "{secret}");
    (
        created["key"].as_str().unwrap().to_owned(),
        secret,
        created["apiKey"]["id"].as_str().unwrap().to_owned(),
    )
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON ({status}): {text}")))
}

async fn get(app: &TestApp, params: &[(&str, &str)]) -> (u16, Value) {
    answer(app.client.get(app.url("/postback")).query(params).send().await.unwrap()).await
}

/// `POST /postback?query` with a form body and, optionally, the signature header.
async fn post(
    app: &TestApp,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
    header: Option<&str>,
) -> (u16, Value) {
    let mut request = app.client.post(app.url("/postback")).query(query).form(form);
    if let Some(header) = header {
        request = request.header("X-Clickledger-Signature", header);
    }
    answer(request.send().await.unwrap()).await
}

fn refused_for_signature((status, body): &(u16, Value)) -> bool {
    *status == 401 && body["error"]["code"] == "BAD_SIGNATURE"
}

#[tokio::test]
async fn signed_get_and_post_are_accepted_and_a_changed_query_parameter_is_refused() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "signed").await;
    let (key, secret, _) = create_key(&t, true).await;
    let ts = now();

    // GET: every parameter signed, the signature as a parameter.
    let params = [("key", key.as_str()), ("player_id", "p 1"), ("event", "registration"), ("timestamp", &ts)];
    let signature = sign(&secret, &params);
    let mut sent = params.to_vec();
    sent.push(("signature", &signature));
    let (status, body) = get(&app, &sent).await;
    assert_eq!(status, 200, "{body}");

    // POST: the key and the status in the query, the rest in the body, all signed together;
    // the signature in the header this time.
    let query = [("key", key.as_str()), ("status", "pending")];
    let form = [
        ("player_id", "p 1"),
        ("event", "ftd"),
        ("txn_id", "t-1"),
        ("amount", "50.25"),
        ("currency", "EUR"),
        ("timestamp", ts.as_str()),
    ];
    let signature = sign(&secret, &[&query[..], &form[..]].concat());
    let header = format!("v2={signature}");
    let (status, body) = post(&app, &query, &form, Some(&header)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending");

    // The same body and signature with a query parameter changed, or one added: refused.
    let changed = [("key", key.as_str()), ("status", "rejected")];
    assert!(refused_for_signature(&post(&app, &changed, &form, Some(&header)).await));
    let added = [("key", key.as_str()), ("status", "pending"), ("country", "DE")];
    assert!(refused_for_signature(&post(&app, &added, &form, Some(&header)).await));
    // A parameter named twice (query and body) cannot be signed unambiguously.
    let twice = [("key", key.as_str()), ("status", "pending"), ("event", "ftd")];
    let signature = sign(&secret, &[&twice[..], &form[..]].concat());
    assert!(refused_for_signature(&post(&app, &twice, &form, Some(&format!("v2={signature}"))).await));

    // JSON with the key as a bearer token (so not a parameter): values are signed as the
    // server reads them, a number in its shortest form (100.50 → 100.5).
    let body = json!({ "player_id": "p 1", "event": "deposit", "txn_id": "t-2", "amount": 100.50,
        "currency": "EUR", "timestamp": ts.parse::<i64>().unwrap(), "promo_code": null });
    let signature = sign(
        &secret,
        &[
            ("player_id", "p 1"),
            ("event", "deposit"),
            ("txn_id", "t-2"),
            ("amount", "100.5"),
            ("currency", "EUR"),
            ("timestamp", &ts),
        ],
    );
    let response = app
        .client
        .post(app.url("/postback"))
        .bearer_auth(&key)
        .header("X-Clickledger-Signature", format!("v2={signature}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, 200, "{body}");

    let conversions = t.conversions().await;
    assert_eq!(conversions.len(), 3, "{conversions:?}");
}

#[tokio::test]
async fn unsigned_or_stale_postbacks_are_refused_where_signatures_are_required() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "required").await;
    let (key, secret, _) = create_key(&t, true).await;
    let registration = |player: &'static str| {
        [("key", key.clone()), ("player_id", player.into()), ("event", "registration".into())]
    };

    // Unsigned: refused, saying why.
    let plain = registration("p1");
    let plain: Vec<(&str, &str)> = plain.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = get(&app, &plain).await;
    assert!(refused_for_signature(&refused), "{refused:?}");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("requires signed postbacks"));

    // Signed, but more than five minutes old (or ahead): refused.
    for skew in [-301i64, 301] {
        let ts = (chrono::Utc::now().timestamp() + skew).to_string();
        let mut params = plain.clone();
        params.push(("timestamp", &ts));
        let signature = sign(&secret, &params);
        params.push(("signature", &signature));
        let stale = get(&app, &params).await;
        assert!(refused_for_signature(&stale), "skew {skew}: {stale:?}");
        assert!(stale.1["error"]["message"].as_str().unwrap().contains("too old or in the future"));
    }

    // The tenant's first key does not require signatures: unsigned still works there.
    assert_eq!(t.postback(&[("player_id", "p2"), ("event", "registration")]).await.0, 200);
    assert!(t.conversions().await.len() == 1, "only the unsigned key's postback was stored");
}

#[tokio::test]
async fn a_rotated_signing_secret_refuses_the_old_one_at_once() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "rotated").await;
    let (key, old_secret, id) = create_key(&t, false).await;
    let send = |secret: String, player: &'static str| signed_registration(&app, key.clone(), secret, player);
    // Used (and so cached) with the old secret, here and on a second replica (PostgreSQL).
    assert_eq!(send(old_secret.clone(), "p1").await.0, 200);
    let replica = if app.is_postgres() { Some(app.spawn_replica().await) } else { None };
    if let Some(replica) = &replica {
        assert_eq!(signed_registration(replica, key.clone(), old_secret.clone(), "r1").await.0, 200);
    }

    let data = t
        .run(
            &format!(
                "mutation($id: ID!) {{ rotateApiKeySigningSecret(id: $id) {{ signingSecret apiKey {{ {KEY_FIELDS} }} }} }}"
            ),
            json!({ "id": id }),
        )
        .await;
    let new_secret = data["rotateApiKeySigningSecret"]["signingSecret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);

    let old = send(old_secret.clone(), "p2").await;
    assert!(refused_for_signature(&old), "the old secret still verifies: {old:?}");
    if let Some(replica) = &replica {
        // The notification crosses in milliseconds; well under the key cache's 5 s.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
        loop {
            let answer = signed_registration(replica, key.clone(), old_secret.clone(), "r2").await;
            if refused_for_signature(&answer) {
                break;
            }
            assert_eq!(answer.0, 200, "{answer:?}");
            assert!(tokio::time::Instant::now() < deadline, "the other replica still takes the old secret");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(send(new_secret.clone(), "p3").await.0, 200);

    // Required from now on: unsigned refused, signed accepted; a revoked key cannot change.
    let data = t
        .run(
            "mutation($id: ID!) { updateApiKey(id: $id, input: { signatureRequired: true }) { signatureRequired } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["updateApiKey"]["signatureRequired"], true);
    assert!(refused_for_signature(
        &get(&app, &[("key", &key), ("player_id", "p4"), ("event", "registration")]).await
    ));
    assert_eq!(send(new_secret, "p5").await.0, 200);
    t.run("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": id })).await;
    let answer = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { rotateApiKeySigningSecret(id: $id) { signingSecret } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
}

/// A registration of `player` signed with `secret`.
async fn signed_registration(app: &TestApp, key: String, secret: String, player: &str) -> (u16, Value) {
    let ts = now();
    let mut params =
        vec![("key", key.as_str()), ("player_id", player), ("event", "registration"), ("timestamp", &ts)];
    let signature = sign(&secret, &params);
    params.push(("signature", &signature));
    get(app, &params).await
}

/// README's *Postbacks* example, run as written (with `BASE`, `KEY` and `SECRET` set), is
/// accepted: the documented scheme is the one the server checks.
#[tokio::test]
async fn the_readme_shell_example_produces_an_accepted_signature() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "readme").await;
    let (key, secret, _) = create_key(&t, true).await;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let marker = "# Sign and send a postback";
    let start = readme.find(marker).expect("README has the signing example");
    let block = &readme[start..];
    let block = &block[..block.find("```").expect("the example's code block ends")];

    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(block)
        .env("BASE", &app.base)
        .env("KEY", &key)
        .env("SECRET", &secret)
        .output()
        .expect("run sh (with openssl and curl)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not the postback's answer: {stdout}"));
    assert_eq!(answer["event"], "ftd", "{answer}");
    assert_eq!(answer["duplicate"], false, "{answer}");
    assert_eq!(t.conversions().await.len(), 1);
}
