//! Sign-up, login, tokens and their revocation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clickledger_e2e::{JWT_SECRET, PASSWORD, TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

const SIGN_UP: &str = "mutation($input: SignUpInput!) { signUp(input: $input) { token tenant { id slug } user { id email role } } }";
const ME: &str = "{ me { role user { id email role affiliateId } tenant { id slug } affiliate { id } } }";

fn sign_up_input(slug: &str, email: &str, password: &str) -> Value {
    json!({ "input": { "tenantName": "Acme Gaming", "tenantSlug": slug, "email": email, "password": password } })
}

/// The demo tenant's owner credentials, as printed on the first start.
fn demo_owner(app: &TestApp) -> (String, String) {
    let line = app
        .stdout
        .iter()
        .find(|line| line.trim_start().starts_with("owner "))
        .unwrap_or_else(|| panic!("no demo owner line in stdout: {:?}", app.stdout));
    let (email, password) = line.trim().trim_start_matches("owner").trim().split_once(" / ").unwrap();
    (email.trim().to_owned(), password.trim().to_owned())
}

#[tokio::test]
async fn sign_up_returns_a_token_and_the_owner_can_log_in() {
    let app = spawn_app!().await;
    let answer = app.graphql(None, SIGN_UP, sign_up_input("acme", "Owner@Acme.test", PASSWORD)).await;
    let payload = &answer["data"]["signUp"];
    assert_eq!(payload["tenant"]["slug"], "acme", "{answer}");
    assert_eq!(payload["user"]["role"], "OWNER");
    assert_eq!(payload["user"]["email"], "owner@acme.test", "e-mail is normalised");
    let token = payload["token"].as_str().unwrap();
    let me = app.ok(Some(token), ME, json!({})).await;
    assert_eq!(me["me"]["role"], "OWNER");
    assert_eq!(me["me"]["tenant"]["id"], payload["tenant"]["id"]);
    assert!(me["me"]["affiliate"].is_null());

    // Login normalises the slug and e-mail the way sign-up stored them.
    let login = app.login(" ACME ", " OWNER@acme.TEST ", PASSWORD).await;
    assert_eq!(login["data"]["login"]["user"]["role"], "OWNER", "{login}");
    assert_eq!(login["data"]["login"]["user"]["id"], payload["user"]["id"]);
    let fresh = login["data"]["login"]["token"].as_str().unwrap();
    let me = app.ok(Some(fresh), ME, json!({})).await;
    assert_eq!(me["me"]["user"]["id"], payload["user"]["id"]);
}

#[tokio::test]
async fn an_affiliate_with_a_password_logs_in_as_affiliate() {
    let app = spawn_app!().await;
    let (owner, _) = app.sign_up("acme").await;
    let affiliate =
        app.create_affiliate(&owner, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    let silent = app.create_affiliate(&owner, "Bob", "bob@partners.test", None, None).await;

    let login = app.login("acme", "ann@partners.test", "ann password 1").await;
    let user = &login["data"]["login"]["user"];
    assert_eq!(user["role"], "AFFILIATE", "{login}");
    assert_eq!(user["affiliateId"], affiliate["id"]);
    let token = login["data"]["login"]["token"].as_str().unwrap();
    let me = app.ok(Some(token), ME, json!({})).await;
    assert_eq!(me["me"]["role"], "AFFILIATE");
    assert_eq!(me["me"]["affiliate"]["id"], affiliate["id"]);

    // No password, no login (the owner's password does not open it either).
    let login = app.login("acme", "bob@partners.test", PASSWORD).await;
    assert_eq!(error_code(&login), Some("UNAUTHENTICATED"), "{login}");
    assert!(silent["id"].is_string());
}

#[tokio::test]
async fn wrong_password_unknown_tenant_and_unknown_email_are_unauthenticated_alike() {
    let app = spawn_app!().await;
    app.sign_up("acme").await;
    app.sign_up("other").await;
    let attempts = [
        ("acme", "owner@acme.test", "wrong password"),
        ("nope", "owner@acme.test", PASSWORD),
        ("acme", "nobody@acme.test", PASSWORD),
        // Right e-mail and password, but of another tenant.
        ("acme", "owner@other.test", PASSWORD),
    ];
    let mut messages = Vec::new();
    for (slug, email, password) in attempts {
        let answer = app.login(slug, email, password).await;
        assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{slug}/{email}: {answer}");
        assert!(answer["data"].is_null(), "{answer}");
        messages.push(answer["errors"][0]["message"].clone());
    }
    assert!(
        messages.windows(2).all(|w| w[0] == w[1]),
        "messages must not tell the cases apart: {messages:?}"
    );
    assert!(app.login("acme", "owner@acme.test", PASSWORD).await["data"]["login"]["token"].is_string());
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict_on_tenant_slug() {
    let app = spawn_app!().await;
    app.sign_up("acme").await;
    for slug in ["acme", "ACME", "demo"] {
        let answer = app.graphql(None, SIGN_UP, sign_up_input(slug, "someone@else.test", PASSWORD)).await;
        assert_eq!(error_code(&answer), Some("CONFLICT"), "{slug}: {answer}");
        assert_eq!(error_field(&answer), Some("tenantSlug"), "{answer}");
    }
    // The first owner is untouched: the second owner's password does not open it.
    let login = app.login("acme", "someone@else.test", PASSWORD).await;
    assert_eq!(error_code(&login), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn sign_up_validation_names_the_field() {
    let app = spawn_app!().await;
    let cases = [
        (sign_up_input("acme", "not-an-email", PASSWORD), "email"),
        (sign_up_input("acme", "owner@nodot", PASSWORD), "email"),
        (sign_up_input("-acme-", "owner@acme.test", PASSWORD), "tenantSlug"),
        (sign_up_input("ab", "owner@acme.test", PASSWORD), "tenantSlug"),
        (sign_up_input("acme corp!", "owner@acme.test", PASSWORD), "tenantSlug"),
        (sign_up_input("acme", "owner@acme.test", "short"), "password"),
        (
            json!({ "input": { "tenantName": "  ", "tenantSlug": "acme", "email": "owner@acme.test", "password": PASSWORD } }),
            "tenantName",
        ),
    ];
    for (input, field) in cases {
        let answer = app.graphql(None, SIGN_UP, input.clone()).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{input}: {answer}");
        assert_eq!(error_field(&answer), Some(field), "{input}: {answer}");
    }
    // None of the refused attempts reserved the slug.
    let answer = app.graphql(None, SIGN_UP, sign_up_input("acme", "owner@acme.test", PASSWORD)).await;
    assert!(answer["data"]["signUp"]["token"].is_string(), "{answer}");
}

#[tokio::test]
async fn the_eleventh_login_attempt_within_a_minute_is_rate_limited_per_account() {
    let app = spawn_app!().await;
    let (owner, _) = app.sign_up("acme").await;
    app.create_affiliate(&owner, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    for attempt in 1..=10 {
        let answer = app.login("acme", "owner@acme.test", "wrong password").await;
        assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "attempt {attempt}: {answer}");
    }
    // The budget is spent: even the right password is refused now, whatever the spelling.
    for (slug, email) in [("acme", "owner@acme.test"), ("ACME", " Owner@Acme.Test")] {
        let answer = app.login(slug, email, PASSWORD).await;
        assert_eq!(error_code(&answer), Some("RATE_LIMITED"), "{answer}");
        assert!(answer["data"].is_null());
    }
    // Other accounts are not affected.
    let answer = app.login("acme", "ann@partners.test", "ann password 1").await;
    assert_eq!(answer["data"]["login"]["user"]["role"], "AFFILIATE", "{answer}");
    // Existing sessions of the throttled account keep working.
    assert_eq!(app.ok(Some(&owner), ME, json!({})).await["me"]["role"], "OWNER");
}

/// Re-signs `token`'s claims, changed by `edit`, with `secret`.
fn resign(token: &str, secret: &[u8], edit: impl FnOnce(&mut Value)) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    edit(&mut claims);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn tampered_forged_and_expired_tokens_are_unauthenticated() {
    let app = spawn_app!().await;
    let (owner, _) = app.sign_up("acme").await;
    app.create_affiliate(&owner, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    let affiliate = app.login_token("acme", "ann@partners.test", "ann password 1").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    // Control: re-signing the genuine claims with the server's secret yields a working token,
    // so each refusal below is due to the one thing changed.
    let resigned = resign(&owner, JWT_SECRET.as_bytes(), |_| {});
    assert_eq!(app.ok(Some(&resigned), ME, json!({})).await["me"]["role"], "OWNER");

    let mut bad_signature = owner.clone();
    let last = bad_signature.pop().unwrap();
    bad_signature.push(if last == 'A' { 'B' } else { 'A' });
    let parts: Vec<&str> = affiliate.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("owner");
    claims.as_object_mut().unwrap().remove("aff");
    let escalated_unsigned =
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    let cases = [
        ("signature altered", bad_signature),
        ("affiliate claims raised to owner, old signature", escalated_unsigned),
        ("signed with another secret", resign(&owner, b"another-secret-another-secret-0123456", |_| {})),
        (
            "expired an hour ago",
            resign(&owner, JWT_SECRET.as_bytes(), |c| {
                c["iat"] = json!(now - 7200);
                c["nbf"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            }),
        ),
        ("not valid yet", resign(&owner, JWT_SECRET.as_bytes(), |c| c["nbf"] = json!(now + 3600))),
        ("foreign audience", resign(&owner, JWT_SECRET.as_bytes(), |c| c["aud"] = json!("someone-else"))),
        ("garbage", "not.a.jwt".to_owned()),
        ("unsigned (alg none)", {
            let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
            format!("{header}.{}.", parts[1])
        }),
    ];
    for (what, token) in cases {
        let answer = app.graphql(Some(&token), ME, json!({})).await;
        assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{what}: {answer}");
        assert!(answer["data"].is_null(), "{what}: {answer}");
        // A bad token is not silently downgraded to anonymous for staff mutations either.
        let answer = app
            .graphql(
                Some(&token),
                "mutation { createCampaign(input: {name: \"x\", landingUrl: \"https://x.test\"}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{what}: {answer}");
    }
    // A non-Bearer Authorization header is refused, not ignored.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("Authorization", format!("Basic {owner}"))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");
    // The genuine tokens still work.
    assert_eq!(app.ok(Some(&affiliate), ME, json!({})).await["me"]["role"], "AFFILIATE");
}

#[tokio::test]
async fn disable_signup_refuses_sign_up_but_login_works() {
    let app = spawn_app!("--disable-signup").await;
    let answer = app.graphql(None, SIGN_UP, sign_up_input("acme", "owner@acme.test", PASSWORD)).await;
    assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
    assert!(answer["data"].is_null());
    let (email, password) = demo_owner(&app);
    let token = app.login_token("demo", &email, &password).await;
    assert_eq!(app.ok(Some(&token), ME, json!({})).await["me"]["role"], "OWNER");
    // Still refused: nothing was created by the first attempt.
    let answer = app.graphql(None, SIGN_UP, sign_up_input("acme", "owner@acme.test", PASSWORD)).await;
    assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
    assert_eq!(error_code(&app.login("acme", "owner@acme.test", PASSWORD).await), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn sign_up_is_enabled_by_default() {
    // The control for the test above: without the flag the same request succeeds.
    let app = spawn_app!().await;
    let answer = app.graphql(None, SIGN_UP, sign_up_input("acme", "owner@acme.test", PASSWORD)).await;
    assert!(answer["data"]["signUp"]["token"].is_string(), "{answer}");
}

#[tokio::test]
async fn a_suspended_affiliates_sessions_and_logins_stop_at_once() {
    let app = spawn_app!().await;
    let (owner, _) = app.sign_up("acme").await;
    let ann = app.create_affiliate(&owner, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    let bob = app.create_affiliate(&owner, "Bob", "bob@partners.test", Some("bob password 1"), None).await;
    let ann_token = app.login_token("acme", "ann@partners.test", "ann password 1").await;
    let bob_token = app.login_token("acme", "bob@partners.test", "bob password 1").await;
    assert_eq!(app.ok(Some(&ann_token), ME, json!({})).await["me"]["affiliate"]["id"], ann["id"]);

    let suspended = app
        .ok(
            Some(&owner),
            "mutation($id: ID!) { suspendAffiliate(id: $id) { id status } }",
            json!({ "id": ann["id"] }),
        )
        .await;
    assert_eq!(suspended["suspendAffiliate"]["status"], "SUSPENDED");
    let answer = app.graphql(Some(&ann_token), ME, json!({})).await;
    assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");
    let answer = app.graphql(Some(&ann_token), "{ trackingLinks { nodes { id } } }", json!({})).await;
    assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");
    let answer = app.login("acme", "ann@partners.test", "ann password 1").await;
    assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");
    // Only Ann is affected.
    assert_eq!(app.ok(Some(&bob_token), ME, json!({})).await["me"]["affiliate"]["id"], bob["id"]);

    app.ok(
        Some(&owner),
        "mutation($id: ID!) { activateAffiliate(id: $id) { id } }",
        json!({ "id": ann["id"] }),
    )
    .await;
    let token = app.login_token("acme", "ann@partners.test", "ann password 1").await;
    assert_eq!(app.ok(Some(&token), ME, json!({})).await["me"]["affiliate"]["id"], ann["id"]);
}
