//! E-mail end to end against a real SMTP server on loopback: the invitation arrives with a
//! link whose token sets the password; a password reset works once only.

use std::time::Duration;

use clickledger_e2e::smtp::SmtpSink;
use clickledger_e2e::{TestApp, error_code, spawn_app};
use serde_json::json;

async fn sink() -> Option<SmtpSink> {
    match SmtpSink::start().await {
        Some(sink) => Some(sink),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("python3-aiosmtpd is required in CI (.ci/run installs it)")
        }
        None => {
            eprintln!("SKIPPED: no python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
            None
        }
    }
}

fn token_in(text: &str) -> String {
    let start =
        text.find("/set-password?token=").expect("a set-password link") + "/set-password?token=".len();
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

async fn login(app: &TestApp, slug: &str, email: &str, password: &str) -> serde_json::Value {
    app.graphql(
        None,
        "mutation($i: LoginInput!) { login(input: $i) { token } }",
        json!({"i": {"tenantSlug": slug, "email": email, "password": password}}),
    )
    .await
}

async fn set_password(app: &TestApp, token: &str, password: &str) -> serde_json::Value {
    app.graphql(
        None,
        "mutation($t: String!, $p: String!) { setPassword(token: $t, password: $p) }",
        json!({"t": token, "p": password}),
    )
    .await
}

#[tokio::test]
async fn invitation_arrives_with_a_working_link_and_a_reset_works_once() {
    let Some(sink) = sink().await else { return };
    let url = sink.url();
    let app = spawn_app!("--smtp-url", &url, "--mail-from", "Clickledger <noreply@clickledger.test>").await;
    let (owner, _) = app.sign_up("mailco").await;

    let created = app
        .graphql(
            Some(&owner),
            "mutation { createAffiliate(input: {name: \"Ann\", email: \"ann@partner.test\"}) { id } }",
            json!({}),
        )
        .await;
    let affiliate = created["data"]["createAffiliate"]["id"].as_str().unwrap().to_owned();
    let invited = app
        .graphql(
            Some(&owner),
            "mutation($id: ID!) { inviteAffiliate(id: $id) { id } }",
            json!({"id": affiliate}),
        )
        .await;
    assert!(invited["errors"].is_null(), "{invited}");

    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    let invitation = &mails[0];
    assert_eq!(invitation.to, "ann@partner.test");
    assert!(invitation.subject.contains("Tenant mailco"), "{invitation:?}");
    assert!(invitation.has_html);
    // The link is built on --public-url (here the default, from --listen).
    assert!(invitation.text.contains("/set-password?token="), "{}", invitation.text);
    let token = token_in(&invitation.text);

    // The link opens a page with a form; a too-short password is refused there.
    let page = app.client.get(app.url(&format!("/set-password?token={token}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("name=\"password\""));
    let short = app
        .client
        .post(app.url("/set-password"))
        .form(&[("token", token.as_str()), ("password", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 400);

    assert_eq!(login(&app, "mailco", "ann@partner.test", "ann's new password").await["data"], json!(null));
    assert_eq!(set_password(&app, &token, "ann's new password").await["data"]["setPassword"], true);
    let ann = login(&app, "mailco", "ann@partner.test", "ann's new password").await;
    assert!(ann["data"]["login"]["token"].is_string(), "{ann}");
    let again = set_password(&app, &token, "another password").await;
    assert_eq!(error_code(&again), Some("NOT_FOUND"), "an invitation link works once");

    // Password reset: unknown accounts get the same answer and no e-mail.
    let unknown = app
        .graphql(
            None,
            "mutation { requestPasswordReset(tenantSlug: \"mailco\", email: \"nobody@mailco.test\") }",
            json!({}),
        )
        .await;
    assert_eq!(unknown["data"]["requestPasswordReset"], true);
    let reset = app
        .graphql(
            None,
            "mutation { requestPasswordReset(tenantSlug: \"mailco\", email: \"owner@mailco.test\") }",
            json!({}),
        )
        .await;
    assert_eq!(reset["data"]["requestPasswordReset"], true, "{reset}");
    let mails = sink.wait_for(2, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 2, "no e-mail for an unknown account");
    let reset_mail = &mails[1];
    assert_eq!(reset_mail.to, "owner@mailco.test");
    let token = token_in(&reset_mail.text);
    // This time through the page the link opens, as a browser would.
    let submitted = app
        .client
        .post(app.url("/set-password"))
        .form(&[("token", token.as_str()), ("password", "a brand new secret")])
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 200);
    let again = app
        .client
        .post(app.url("/set-password"))
        .form(&[("token", token.as_str()), ("password", "a brand new secret")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "the page refuses a used link too");
    assert!(
        login(&app, "mailco", "owner@mailco.test", "a brand new secret").await["data"]["login"]["token"]
            .is_string()
    );
    assert_eq!(
        error_code(&login(&app, "mailco", "owner@mailco.test", "correct horse battery").await),
        Some("UNAUTHENTICATED"),
        "the old password is gone"
    );
    let reused = set_password(&app, &token, "yet another secret").await;
    assert_eq!(error_code(&reused), Some("NOT_FOUND"), "a reset link works once");
    assert_eq!(error_code(&set_password(&app, "forged-token", "whatever123").await), Some("NOT_FOUND"));
}
