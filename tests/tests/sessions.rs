//! Revocable sessions: a new password or a suspension ends a user's sessions at once (its
//! tokens are refused and its open subscriptions closed), a suspended staff login cannot sign
//! in until it is activated again, and an open subscription closes when its token expires.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clickledger_e2e::ws::{GqlWs, WsProtocol};
use clickledger_e2e::{JWT_SECRET, PASSWORD, TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

const ME: &str = "{ me { role user { id email status } } }";
const LIVE: &str = "subscription { conversions { id } }";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Re-signs `token`'s claims, changed by `edit`, with the server's secret.
fn resign(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    edit(&mut claims);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A signed-in WebSocket with a live `conversions` subscription, known to be served: a query
/// on the same connection answered first.
async fn subscribed(app: &TestApp, token: &str, protocol: WsProtocol) -> GqlWs {
    let mut ws = GqlWs::connect(app, Some(token), protocol).await;
    let me = ws.subscribe("{ me { role } }", json!({})).await;
    let answer = ws.expect_data(&me, Duration::from_secs(10)).await;
    assert!(answer["me"]["role"].is_string(), "{answer}");
    ws.subscribe(LIVE, json!({})).await;
    ws
}

fn unauthenticated(answer: &Value) -> bool {
    error_code(answer) == Some("UNAUTHENTICATED") && answer["data"].is_null()
}

/// Creates a staff login with `role`; returns (its user ID, a token).
async fn staff(app: &TestApp, owner: &str, slug: &str, email: &str, role: &str) -> (String, String) {
    let created = app
        .ok(
            Some(owner),
            "mutation($input: CreateUserInput!) { createUser(input: $input) { id status } }",
            json!({ "input": { "email": email, "password": PASSWORD, "role": role } }),
        )
        .await;
    assert_eq!(created["createUser"]["status"], "ACTIVE");
    let id = created["createUser"]["id"].as_str().unwrap().to_owned();
    (id, app.login_token(slug, email, PASSWORD).await)
}

const SUSPEND: &str = "mutation($id: ID!) { suspendUser(id: $id) { id status } }";
const ACTIVATE: &str = "mutation($id: ID!) { activateUser(id: $id) { id status } }";

/// The plain text of an `.eml` file, decoded (python3's e-mail package, as mail tools read it).
fn plain_text_of(eml: &std::path::Path) -> String {
    let script = "import email, email.policy, sys\n\
                  m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
                  print(m.get_body(preferencelist=('plain',)).get_content())";
    let output =
        std::process::Command::new("python3").arg("-c").arg(script).arg(eml).output().expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Requests a password reset for `email` and returns the token its e-mail carries.
async fn reset_token(app: &TestApp, slug: &str, email: &str) -> String {
    let before = app.outbox().len();
    app.ok(
        None,
        "mutation($s: String!, $e: String!) { requestPasswordReset(tenantSlug: $s, email: $e) }",
        json!({ "s": slug, "e": email }),
    )
    .await;
    token_of_mail_after(app, before).await
}

/// The set-password token of the first e-mail after the first `before` in the outbox.
async fn token_of_mail_after(app: &TestApp, before: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mails = loop {
        let mails = app.outbox();
        if mails.len() > before {
            break mails;
        }
        assert!(Instant::now() < deadline, "no new e-mail in the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = plain_text_of(&mails[before].0);
    let start =
        text.find("/set-password?token=").expect("a set-password link") + "/set-password?token=".len();
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

const SET_PASSWORD: &str = "mutation($t: String!, $p: String!) { setPassword(token: $t, password: $p) }";

#[tokio::test]
async fn a_new_password_ends_older_sessions_and_closes_their_subscriptions() {
    let app = spawn_app!("--no-demo").await;
    let (old_token, _) = app.sign_up("acme").await;
    let mut ws = subscribed(&app, &old_token, WsProtocol::TransportWs).await;
    let mut legacy = subscribed(&app, &old_token, WsProtocol::Legacy).await;

    // Password reset by e-mail link.
    let token = reset_token(&app, "acme", "owner@acme.test").await;
    let set = app.ok(None, SET_PASSWORD, json!({ "t": token, "p": "a brand new password" })).await;
    assert_eq!(set["setPassword"], true);
    let answer = app.graphql(Some(&old_token), ME, json!({})).await;
    assert!(unauthenticated(&answer), "the token from before the reset still works: {answer}");
    for socket in [&mut ws, &mut legacy] {
        let (code, reason) = socket.expect_close(Duration::from_secs(10)).await;
        assert_eq!(code, 4401, "{reason}");
        assert!(reason.contains("unauthorized: session ended"), "{reason}");
    }
    // A new connection with the old token is refused too, as unauthorized (sign in again).
    let mut refused = GqlWs::open(&app, WsProtocol::TransportWs).await;
    refused.send(json!({ "type": "connection_init", "payload": { "token": old_token } })).await;
    assert_eq!(refused.expect_close(Duration::from_secs(10)).await.0, 4401);
    assert_eq!(error_code(&app.login("acme", "owner@acme.test", PASSWORD).await), Some("UNAUTHENTICATED"));
    let fresh = app.login_token("acme", "owner@acme.test", "a brand new password").await;
    assert_eq!(app.ok(Some(&fresh), ME, json!({})).await["me"]["role"], "OWNER");

    // Password reset from the host: the token of a moment ago stops working too.
    let output = tokio::process::Command::new(app.binary())
        .args(["user", "reset-password", "--tenant", "acme", "--email", "owner@acme.test"])
        .args(["--database-url", &app.database_url])
        .env("RUST_LOG", "warn")
        .env("CLICKLEDGER_SECRET_KEY", clickledger_e2e::SECRET_KEY)
        .output()
        .await
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer = app.graphql(Some(&fresh), ME, json!({})).await;
    assert!(unauthenticated(&answer), "the token from before the host's reset still works: {answer}");
}

#[tokio::test]
async fn a_suspended_staff_login_is_refused_everywhere_until_activated() {
    let app = spawn_app!("--no-demo").await;
    let (owner, _) = app.sign_up("acme").await;
    let owner_id = app.ok(Some(&owner), ME, json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned();
    let (manager_id, manager) = staff(&app, &owner, "acme", "manager@acme.test", "MANAGER").await;
    let (_, co_owner) = staff(&app, &owner, "acme", "second@acme.test", "OWNER").await;
    let mut ws = subscribed(&app, &manager, WsProtocol::TransportWs).await;

    // Owners only; no one suspends themselves; an affiliate's login goes with its affiliate.
    let answer = app.graphql(Some(&manager), SUSPEND, json!({ "id": owner_id })).await;
    assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
    let answer = app.graphql(Some(&owner), SUSPEND, json!({ "id": owner_id })).await;
    assert_eq!((error_code(&answer), error_field(&answer)), (Some("BAD_USER_INPUT"), Some("id")), "{answer}");
    app.create_affiliate(&owner, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    let ann = app.login("acme", "ann@partners.test", "ann password 1").await;
    let ann_user = ann["data"]["login"]["user"]["id"].clone();
    let answer = app.graphql(Some(&owner), SUSPEND, json!({ "id": ann_user })).await;
    assert_eq!((error_code(&answer), error_field(&answer)), (Some("BAD_USER_INPUT"), Some("id")), "{answer}");

    let suspended = app.ok(Some(&owner), SUSPEND, json!({ "id": manager_id })).await;
    assert_eq!(suspended["suspendUser"]["status"], "SUSPENDED");
    // Its open subscription closes as forbidden, its token is refused, and so is its login,
    // exactly as a wrong password is (as for a suspended affiliate).
    let (code, reason) = ws.expect_close(Duration::from_secs(10)).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("forbidden"), "{reason}");
    let answer = app.graphql(Some(&manager), ME, json!({})).await;
    assert!(unauthenticated(&answer), "{answer}");
    let refused = app.login("acme", "manager@acme.test", PASSWORD).await;
    let wrong = app.login("acme", "manager@acme.test", "not the password").await;
    assert_eq!(error_code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    assert_eq!(refused["errors"][0]["message"], wrong["errors"][0]["message"]);
    let mut again = GqlWs::open(&app, WsProtocol::TransportWs).await;
    again.send(json!({ "type": "connection_init", "payload": { "token": manager } })).await;
    assert_eq!(again.expect_close(Duration::from_secs(10)).await.0, 4403);
    // The other owner is untouched, and sees the status.
    let users = app.ok(Some(&co_owner), "{ users { nodes { id status } } }", json!({})).await;
    let listed = users["users"]["nodes"].as_array().unwrap();
    assert!(listed.iter().any(|u| u["id"] == manager_id.as_str() && u["status"] == "SUSPENDED"), "{users}");

    let activated = app.ok(Some(&co_owner), ACTIVATE, json!({ "id": manager_id })).await;
    assert_eq!(activated["activateUser"]["status"], "ACTIVE");
    // Signing in works again; the sessions the suspension ended stay ended.
    let answer = app.graphql(Some(&manager), ME, json!({})).await;
    assert!(unauthenticated(&answer), "{answer}");
    let fresh = app.login_token("acme", "manager@acme.test", PASSWORD).await;
    let me = app.ok(Some(&fresh), ME, json!({})).await;
    assert_eq!(me["me"]["user"]["status"], "ACTIVE");
    assert_eq!(me["me"]["role"], "MANAGER");
}

/// An invitation gives a suspended affiliate a login, but a suspended one, like the login a
/// suspended affiliate already has: it works once the affiliate is activated.
#[tokio::test]
async fn an_invited_suspended_affiliate_cannot_sign_in_until_activated() {
    let app = spawn_app!("--no-demo").await;
    let (owner, _) = app.sign_up("acme").await;
    let ann = app.create_affiliate(&owner, "Ann", "ann@partners.test", None, None).await;
    app.ok(
        Some(&owner),
        "mutation($id: ID!) { suspendAffiliate(id: $id) { id } }",
        json!({ "id": ann["id"] }),
    )
    .await;
    let before = app.outbox().len();
    app.ok(
        Some(&owner),
        "mutation($id: ID!) { inviteAffiliate(id: $id) { id } }",
        json!({ "id": ann["id"] }),
    )
    .await;
    let token = token_of_mail_after(&app, before).await;
    app.ok(None, SET_PASSWORD, json!({ "t": token, "p": "ann password 1" })).await;
    let refused = app.login("acme", "ann@partners.test", "ann password 1").await;
    assert_eq!(error_code(&refused), Some("UNAUTHENTICATED"), "a suspended affiliate signed in: {refused}");
    app.ok(
        Some(&owner),
        "mutation($id: ID!) { activateAffiliate(id: $id) { id } }",
        json!({ "id": ann["id"] }),
    )
    .await;
    let token = app.login_token("acme", "ann@partners.test", "ann password 1").await;
    assert_eq!(app.ok(Some(&token), ME, json!({})).await["me"]["role"], "AFFILIATE");
}

#[tokio::test]
async fn another_tenants_user_is_not_found() {
    let app = spawn_app!("--no-demo").await;
    let (a_owner, _) = app.sign_up("alpha").await;
    let (a_manager_id, a_manager) = staff(&app, &a_owner, "alpha", "manager@alpha.test", "MANAGER").await;
    let (b_owner, _) = app.sign_up("bravo").await;
    let missing = format!("usr_{}", uuid::Uuid::now_v7().simple());
    for mutation in [SUSPEND, ACTIVATE] {
        for id in [&a_manager_id, &missing] {
            let answer = app.graphql(Some(&b_owner), mutation, json!({ "id": id })).await;
            assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{mutation} {id}: {answer}");
            assert!(answer["data"].is_null(), "{answer}");
        }
    }
    assert_eq!(app.ok(Some(&a_manager), ME, json!({})).await["me"]["user"]["status"], "ACTIVE");
}

#[tokio::test]
async fn a_live_subscription_closes_when_its_token_expires() {
    let app = spawn_app!("--no-demo").await;
    let (owner, _) = app.sign_up("acme").await;
    for protocol in [WsProtocol::TransportWs, WsProtocol::Legacy] {
        let short = resign(&owner, |claims| claims["exp"] = json!(now() + 3));
        let opened = Instant::now();
        let mut ws = subscribed(&app, &short, protocol).await;
        let (code, reason) = ws.expect_close(Duration::from_secs(15)).await;
        assert_eq!(code, 4401, "{protocol:?}: {reason}");
        assert!(reason.contains("expired"), "{protocol:?}: {reason}");
        assert!(opened.elapsed() >= Duration::from_secs(1), "closed before the token expired");
    }
    // The same token with a long life keeps its subscription open past that point.
    let mut ws = subscribed(&app, &owner, WsProtocol::TransportWs).await;
    let me = ws.subscribe("{ me { role } }", json!({})).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(ws.expect_data(&me, Duration::from_secs(5)).await["me"]["role"], "OWNER");
}

/// With PostgreSQL, a suspension on one replica closes the user's subscriptions on another
/// (the revocation travels as a notification).
#[tokio::test]
async fn a_suspension_closes_subscriptions_on_every_replica() {
    let app = spawn_app!("--no-demo").await;
    if !app.is_postgres() {
        return;
    }
    let replica = app.spawn_replica().await;
    let (owner, _) = app.sign_up("acme").await;
    let (manager_id, manager) = staff(&app, &owner, "acme", "manager@acme.test", "MANAGER").await;
    let mut ws = subscribed(&replica, &manager, WsProtocol::TransportWs).await;
    app.ok(Some(&owner), SUSPEND, json!({ "id": manager_id })).await;
    let (code, reason) = ws.expect_close(Duration::from_secs(10)).await;
    assert_eq!(code, 4403, "{reason}");
    let answer = replica.graphql(Some(&manager), ME, json!({})).await;
    assert!(unauthenticated(&answer), "{answer}");
}
