//! API keys in use: a revoked key is refused at once, on every replica (PostgreSQL), though
//! lookups are cached; and a key's last use is written (coalesced, not per postback).

use std::time::Duration;

use clickledger_e2e::spawn_app;
use clickledger_e2e::tenant::Tenant;
use serde_json::{Value, json};

async fn keys(t: &Tenant<'_>) -> Vec<Value> {
    t.run("{ apiKeys { nodes { id lastUsedAt revokedAt } } }", json!({})).await["apiKeys"]["nodes"]
        .as_array()
        .expect("key nodes")
        .clone()
}

async fn registration(t: &Tenant<'_>, player: &str) -> u16 {
    t.postback(&[("player_id", player), ("event", "registration")]).await.0
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_its_last_use_is_kept() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "keys").await;
    let key_id = keys(&t).await[0]["id"].clone();
    assert!(keys(&t).await[0]["lastUsedAt"].is_null());

    // Used (and so cached): its use is written within a few seconds.
    assert_eq!(registration(&t, "p1").await, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while keys(&t).await[0]["lastUsedAt"].is_null() {
        assert!(tokio::time::Instant::now() < deadline, "lastUsedAt was never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A second replica has the key cached too (PostgreSQL only: SQLite is one process).
    let replica = if app.is_postgres() { Some(app.spawn_replica().await) } else { None };
    if let Some(replica) = &replica {
        assert_eq!(registration(&t.on(replica), "p2").await, 200);
    }
    t.run("mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }", json!({ "id": key_id })).await;
    assert_eq!(registration(&t, "p3").await, 401, "refused at once where it was revoked");
    if let Some(replica) = &replica {
        // The notification crosses in milliseconds; well under the cache's 5 s.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        loop {
            let status = registration(&t.on(replica), "p4").await;
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(tokio::time::Instant::now() < deadline, "the other replica still takes the revoked key");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
