use clickledger_e2e::{error_code, spawn_app};
use serde_json::json;

#[tokio::test]
async fn health_ready_and_sign_up() {
    let app = spawn_app!().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let (token, tenant_id) = app.sign_up("acme").await;
    assert!(tenant_id.starts_with("ten_"));
    let me = app.graphql(Some(&token), "{ me { role tenant { slug } user { email } } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "OWNER");
    assert_eq!(me["data"]["me"]["tenant"]["slug"], "acme");

    let anonymous = app.graphql(None, "{ me { role } }", json!({})).await;
    assert_eq!(error_code(&anonymous), Some("UNAUTHENTICATED"));
}
