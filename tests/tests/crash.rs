//! A crash (SIGKILL) in the middle of a postback burst, on whichever database the suite runs
//! on: every postback answered `200` is stored exactly once after the restart, and a retry of
//! any of them is a duplicate of the same conversion.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use clickledger_e2e::spawn_app;
use clickledger_e2e::tenant::Tenant;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Postbacks acknowledged before the kill (txn → conversion ID).
type Acknowledged = Arc<Mutex<HashMap<String, String>>>;

const SENDERS: usize = 8;
/// Acknowledgements to wait for before pulling the plug, so the kill lands mid-burst.
const KILL_AFTER: usize = 40;

#[tokio::test]
async fn a_kill_mid_burst_keeps_every_acknowledged_postback_exactly_once() {
    let mut app = spawn_app!().await;
    let (base, api_key, click_id, token) = {
        let tenant = Tenant::create(&app, "crash").await;
        let affiliate = tenant.create_affiliate("alice", false).await;
        let campaign = tenant.create_campaign("Casino", json!({})).await;
        let link = tenant.create_link(&affiliate, &campaign).await;
        let click_id = app.click(&link.code, "", None).await.click_id();
        (app.base.clone(), tenant.api_key.clone(), click_id, tenant.token.clone())
    };

    // Senders post distinct deposits back to back until the server stops answering.
    let acknowledged: Acknowledged = Arc::default();
    let enough = Arc::new(Notify::new());
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (client, base, api_key, click_id) =
            (app.client.clone(), base.clone(), api_key.clone(), click_id.clone());
        let (acknowledged, enough) = (acknowledged.clone(), enough.clone());
        senders.push(tokio::spawn(async move {
            for n in 0.. {
                let txn = format!("S{sender}-{n}");
                let response = client
                    .get(format!("{base}/postback"))
                    .query(&deposit(&api_key, &click_id, &txn))
                    .send()
                    .await;
                let Ok(response) = response else { return };
                if response.status() != 200 {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else { return };
                let id = body["conversion_id"].as_str().expect("conversion_id").to_owned();
                let count = {
                    let mut acknowledged = acknowledged.lock().unwrap();
                    acknowledged.insert(txn, id);
                    acknowledged.len()
                };
                if count >= KILL_AFTER {
                    enough.notify_one();
                }
            }
        }));
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), enough.notified())
        .await
        .expect("the senders stopped before enough postbacks were acknowledged");
    app.kill().await;
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= KILL_AFTER);

    app.start().await;
    // Stored exactly once: each acknowledged transaction is listed once, with its ID.
    let stored = all_conversions(&app, &token).await;
    let mut by_txn: HashMap<String, Vec<String>> = HashMap::new();
    for conversion in &stored {
        let txn = conversion["txnId"].as_str().expect("txnId").to_owned();
        by_txn.entry(txn).or_default().push(conversion["id"].as_str().unwrap().to_owned());
    }
    for (txn, id) in &acknowledged {
        assert_eq!(by_txn.get(txn), Some(&vec![id.clone()]), "acknowledged {txn} must be stored once");
    }
    assert!(by_txn.values().all(|ids| ids.len() == 1), "no transaction is stored twice");
    // A retry of an acknowledged postback is a duplicate of the very same conversion.
    for (txn, id) in acknowledged.iter().take(5) {
        let (status, body) = app.postback_get(&deposit(&api_key, &click_id, txn)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["duplicate"].clone(), body["conversion_id"].clone()), (json!(true), json!(id)));
    }
}

fn deposit<'a>(api_key: &'a str, click_id: &'a str, txn: &'a str) -> [(&'static str, &'a str); 6] {
    [
        ("key", api_key),
        ("click_id", click_id),
        ("event", "deposit"),
        ("txn_id", txn),
        ("amount", "10"),
        ("currency", "EUR"),
    ]
}

/// Every conversion of the tenant, page by page.
async fn all_conversions(app: &clickledger_e2e::TestApp, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .ok(
                Some(token),
                "query($after: String) { conversions(first: 100, after: $after) {
                    nodes { id txnId } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        let page = &data["conversions"];
        all.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            return all;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}
