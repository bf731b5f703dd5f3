//! Postback dialects: a key speaking another tracker's parameter names (Keitaro, HasOffers)
//! is understood and answered as that tracker's callers expect, while a native key on the same
//! tenant is unaffected; the dialect is listed, changed, and the change is audited.

use clickledger_e2e::signing::sign;
use clickledger_e2e::spawn_app;
use clickledger_e2e::tenant::Tenant;
use serde_json::{Value, json};

/// Creates a key with `dialect`; returns (key, key's ID).
async fn key_with(t: &Tenant<'_>, name: &str, dialect: &str) -> (String, String) {
    let data = t
        .run(
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id dialect } } }",
            json!({ "input": { "name": name, "dialect": dialect } }),
        )
        .await;
    assert_eq!(data["createApiKey"]["apiKey"]["dialect"], dialect);
    (
        data["createApiKey"]["key"].as_str().unwrap().to_owned(),
        data["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_owned(),
    )
}

/// `GET /postback` with `key` first; returns (status, content type, raw body).
async fn raw_postback(t: &Tenant<'_>, key: &str, params: &[(&str, &str)]) -> (u16, String, String) {
    let mut all = vec![("key", key)];
    all.extend_from_slice(params);
    let response = t.app.client.get(t.app.url("/postback")).query(&all).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, content_type, response.text().await.unwrap())
}

async fn json_postback(t: &Tenant<'_>, key: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let (status, content_type, body) = raw_postback(t, key, params).await;
    assert!(content_type.starts_with("application/json"), "{content_type}: {body}");
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn a_keitaro_key_is_understood_in_keitaros_words() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "keitaro").await;
    let affiliate = t.create_affiliate("kaff", false).await;
    let campaign = t.create_campaign("casino", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    let click_id = app.click(&link.code, "", None).await.click_id();
    let (key, _) = key_with(&t, "old tracker", "KEITARO").await;

    let (status, lead) = json_postback(&t, &key, &[("subid", &click_id), ("status", "lead")]).await;
    assert_eq!(status, 200, "{lead}");
    assert_eq!((lead["event"].as_str(), lead["status"].as_str()), (Some("registration"), Some("approved")));
    assert_eq!(lead["attributed"], true, "{lead}");
    assert_eq!(lead["credits"][0]["affiliate_id"], affiliate.as_str(), "{lead}");

    let sale = [
        ("subid", click_id.as_str()),
        ("status", "sale"),
        ("tid", "k-1"),
        ("payout", "40.5"),
        ("currency", "EUR"),
    ];
    let (status, ftd) = json_postback(&t, &key, &sale).await;
    assert_eq!(status, 200, "{ftd}");
    assert_eq!((ftd["event"].as_str(), ftd["status"].as_str()), (Some("ftd"), Some("approved")));
    assert_eq!(ftd["credits"][0]["affiliate_id"], affiliate.as_str(), "{ftd}");
    let (_, again) = json_postback(&t, &key, &sale).await;
    assert_eq!(again["duplicate"], true, "a repeat is a repeat in any dialect: {again}");

    // Keitaro's `rejected` rejects the sale with that tid.
    let (status, rejected) = json_postback(
        &t,
        &key,
        &[
            ("subid", &click_id),
            ("status", "rejected"),
            ("tid", "k-1"),
            ("payout", "40.5"),
            ("currency", "EUR"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(
        (rejected["conversion_id"].clone(), rejected["status"].as_str()),
        (ftd["conversion_id"].clone(), Some("rejected"))
    );

    // Errors name the fields as Keitaro does.
    let (status, bad) =
        json_postback(&t, &key, &[("status", "sale"), ("payout", "lots"), ("currency", "EUR")]).await;
    assert_eq!(status, 400, "{bad}");
    let fields: Vec<&str> =
        bad["error"]["fields"].as_array().unwrap().iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, vec!["payout", "subid", "tid"], "{bad}");
    let (status, bad) = json_postback(&t, &key, &[("subid", &click_id), ("status", "hold")]).await;
    assert_eq!((status, bad["error"]["fields"][0]["field"].as_str()), (400, Some("status")), "{bad}");

    // The tenant's native key is unaffected: Keitaro's names mean nothing to it.
    let (status, native) = t.postback(&[("subid", &click_id), ("status", "lead")]).await;
    assert_eq!(status, 400, "{native}");
    let fields: Vec<&str> =
        native["error"]["fields"].as_array().unwrap().iter().filter_map(|f| f["field"].as_str()).collect();
    assert!(fields.contains(&"click_id") && !fields.contains(&"subid"), "{native}");
    let native = t
        .postback_ok(&[
            ("click_id", &click_id),
            ("event", "deposit"),
            ("txn_id", "n-1"),
            ("amount", "5"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(native["credits"][0]["affiliate_id"], affiliate.as_str(), "{native}");
}

#[tokio::test]
async fn a_hasoffers_key_is_answered_in_hasoffers_plain_text() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "hasoffers").await;
    let affiliate = t.create_affiliate("haff", false).await;
    let campaign = t.create_campaign("broker", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    let click_id = app.click(&link.code, "", None).await.click_id();
    let (key, _) = key_with(&t, "tune", "HASOFFERS").await;

    let conversion =
        [("transaction_id", click_id.as_str()), ("adv_sub", "h-1"), ("amount", "12.00"), ("currency", "USD")];
    let (status, content_type, body) = raw_postback(&t, &key, &conversion).await;
    assert_eq!((status, body.as_str()), (200, "success=true;"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let stored = t.conversions().await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (stored[0]["event"].as_str(), stored[0]["txnId"].as_str()),
        (Some("ftd"), Some("h-1")),
        "{stored:?}"
    );

    let (status, content_type, body) =
        raw_postback(&t, &key, &[("transaction_id", &click_id), ("amount", "12.00"), ("currency", "USD")])
            .await;
    assert_eq!(status, 400, "{body}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(body.starts_with("success=false; err_msg="), "{body}");
    assert!(body.contains("adv_sub"), "names the field as HasOffers does: {body}");
    assert!(!body["success=false;".len()..].contains(';'), "one separator only: {body}");

    // A key the server does not know has no dialect yet: the native answer.
    let (status, content_type, _) = raw_postback(&t, "clk_unknown", &conversion).await;
    assert_eq!(status, 401);
    assert!(content_type.starts_with("application/json"), "{content_type}");
}

#[tokio::test]
async fn the_dialect_is_listed_changed_and_audited() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "dialects").await;
    let listed = t.run("{ apiKeys { nodes { id dialect } } }", json!({})).await;
    assert_eq!(listed["apiKeys"]["nodes"][0]["dialect"], "CLICKLEDGER", "the default: {listed}");
    let id = listed["apiKeys"]["nodes"][0]["id"].clone();

    let updated = t
        .run(
            "mutation($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) { dialect } }",
            json!({ "id": id, "input": { "dialect": "BINOM" } }),
        )
        .await;
    assert_eq!(updated["updateApiKey"]["dialect"], "BINOM");
    // In force at once: the cached key was dropped.
    let (status, answer) = t.postback(&[("cnv_id", "not-a-click"), ("cnv_status", "lead")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["event"].as_str(), answer["attributed"].as_bool()),
        (Some("registration"), Some(false))
    );

    let log = t.run("{ auditLog(first: 10) { nodes { action details } } }", json!({})).await;
    let entries = log["auditLog"]["nodes"].as_array().unwrap();
    let change = entries.iter().find(|e| e["action"] == "API_KEY_UPDATED").expect("the change is audited");
    assert_eq!(change["details"]["dialect"], json!({ "from": "clickledger", "to": "binom" }), "{change}");
}

#[tokio::test]
async fn a_dialects_postback_is_signed_as_received() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "signed-keitaro").await;
    let data = t
        .run(
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key signingSecret } }",
            json!({ "input": { "name": "signed", "dialect": "KEITARO", "signatureRequired": true } }),
        )
        .await;
    let key = data["createApiKey"]["key"].as_str().unwrap();
    let secret = data["createApiKey"]["signingSecret"].as_str().unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();

    let received = [("key", key), ("subid", "k-click"), ("status", "lead"), ("timestamp", ts.as_str())];
    let signature = sign(secret, &received);
    let mut sent = received.to_vec();
    sent.push(("signature", &signature));
    let (status, answer) = json_postback(&t, key, &sent[1..]).await;
    assert_eq!(status, 200, "signed over the names as sent: {answer}");
    assert_eq!(answer["event"], "registration");

    // A signature over the translated names does not verify the names that were sent.
    let translated = [
        ("key", key),
        ("click_id", "k-click"),
        ("event", "registration"),
        ("status", "approved"),
        ("timestamp", ts.as_str()),
    ];
    let signature = sign(secret, &translated);
    let mut sent = received.to_vec();
    sent.push(("signature", &signature));
    let (status, answer) = json_postback(&t, key, &sent[1..]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("BAD_SIGNATURE")), "{answer}");
}

const CUSTOM: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id dialect \
    customDialect { parameters { from to } statusParameter statuses { word event status } defaultEvent } } } }";

#[tokio::test]
async fn a_custom_key_is_understood_in_its_own_words() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "custom").await;
    let affiliate = t.create_affiliate("caff", false).await;
    let campaign = t.create_campaign("casino", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    let click_id = app.click(&link.code, "", None).await.click_id();
    let mapping = json!({
        "parameters": [
            { "from": "visit", "to": "click_id" },
            { "from": "order", "to": "txn_id" },
            { "from": "sum", "to": "amount" },
            { "from": "cur", "to": "currency" }
        ],
        "statusParameter": "state",
        "statuses": [
            { "word": "Approved", "event": "ftd", "status": "approved" },
            { "word": "declined", "event": "ftd", "status": "rejected" }
        ]
    });
    let data = t
        .run(CUSTOM, json!({ "input": { "name": "own", "dialect": "CUSTOM", "customDialect": mapping } }))
        .await;
    let created = &data["createApiKey"];
    assert_eq!(created["apiKey"]["dialect"], "CUSTOM");
    assert_eq!(
        created["apiKey"]["customDialect"]["parameters"][0],
        json!({ "from": "visit", "to": "click_id" })
    );
    assert_eq!(created["apiKey"]["customDialect"]["statuses"][0]["word"], "approved", "{created}");
    let key = created["key"].as_str().unwrap();

    let sale = [
        ("visit", click_id.as_str()),
        ("state", "approved"),
        ("order", "o-1"),
        ("sum", "30"),
        ("cur", "EUR"),
    ];
    let (status, ftd) = json_postback(&t, key, &sale).await;
    assert_eq!(status, 200, "{ftd}");
    assert_eq!((ftd["event"].as_str(), ftd["status"].as_str()), (Some("ftd"), Some("approved")), "{ftd}");
    assert_eq!(ftd["credits"][0]["affiliate_id"], affiliate.as_str(), "credited: {ftd}");
    let stored = t.conversions().await;
    assert_eq!(
        (stored[0]["txnId"].as_str(), stored[0]["amount"].as_str()),
        (Some("o-1"), Some("30")),
        "{stored:?}"
    );

    // A 400 names the field as the sender does.
    let (status, bad) =
        json_postback(&t, key, &[("visit", &click_id), ("state", "approved"), ("sum", "x")]).await;
    assert_eq!(status, 400, "{bad}");
    let fields: Vec<&str> =
        bad["error"]["fields"].as_array().unwrap().iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, vec!["sum", "order"], "{bad}");
}

#[tokio::test]
async fn a_bad_custom_mapping_is_refused_naming_its_field() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "custom-bad").await;
    let refused = |input: Value, field: &'static str| {
        let (app, token) = (&app, t.token.clone());
        async move {
            let answer = app.graphql(Some(&token), CUSTOM, json!({ "input": input })).await;
            assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
            assert_eq!(answer["errors"][0]["extensions"]["field"], field, "{answer}");
        }
    };
    let bad_to =
        json!({ "parameters": [{ "from": "cid", "to": "click_id" }, { "from": "x", "to": "clickid" }] });
    refused(
        json!({ "name": "k", "dialect": "CUSTOM", "customDialect": bad_to }),
        "customDialect.parameters[1].to",
    )
    .await;
    let bad_event = json!({ "parameters": [], "statusParameter": "s",
        "statuses": [{ "word": "ok", "event": "bought", "status": "approved" }] });
    refused(
        json!({ "name": "k", "dialect": "CUSTOM", "customDialect": bad_event }),
        "customDialect.statuses[0].event",
    )
    .await;
    refused(json!({ "name": "k", "dialect": "CUSTOM" }), "customDialect").await;
    let fine = json!({ "parameters": [{ "from": "cid", "to": "click_id" }] });
    refused(json!({ "name": "k", "dialect": "VOLUUM", "customDialect": fine }), "customDialect").await;
    let listed = t.run("{ apiKeys { nodes { id } } }", json!({})).await;
    assert_eq!(listed["apiKeys"]["nodes"].as_array().unwrap().len(), 1, "nothing was made: {listed}");
}

#[tokio::test]
async fn a_custom_mapping_change_is_in_force_and_audited() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "custom-audit").await;
    let listed = t.run("{ apiKeys { nodes { id } } }", json!({})).await;
    let id = listed["apiKeys"]["nodes"][0]["id"].clone();
    let update = "mutation($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) { dialect \
        customDialect { parameters { from to } defaultEvent } } }";
    let first = json!({ "parameters": [{ "from": "a", "to": "click_id" }], "defaultEvent": "registration" });
    let updated =
        t.run(update, json!({ "id": id, "input": { "dialect": "CUSTOM", "customDialect": first } })).await;
    assert_eq!(updated["updateApiKey"]["dialect"], "CUSTOM", "{updated}");
    let second = json!({ "parameters": [{ "from": "b", "to": "click_id" }], "defaultEvent": "registration" });
    let updated = t.run(update, json!({ "id": id, "input": { "customDialect": second } })).await;
    assert_eq!(updated["updateApiKey"]["customDialect"]["parameters"][0]["from"], "b", "{updated}");
    // In force at once: `b` is the click now, `a` means nothing.
    let (status, answer) = t.postback(&[("b", "not-a-click")]).await;
    assert_eq!((status, answer["event"].as_str()), (200, Some("registration")), "{answer}");
    let (status, answer) = t.postback(&[("a", "not-a-click")]).await;
    assert_eq!(status, 400, "{answer}");

    let log = t.run("{ auditLog(first: 10) { nodes { action details } } }", json!({})).await;
    let entries = log["auditLog"]["nodes"].as_array().unwrap();
    let change = entries
        .iter()
        .find(|e| {
            e["action"] == "API_KEY_UPDATED"
                && e["details"]["customDialect"]["to"]["parameters"][0]["from"] == "b"
        })
        .unwrap_or_else(|| panic!("the mapping change is audited: {log}"));
    assert_eq!(change["details"]["customDialect"]["from"]["parameters"][0]["from"], "a", "{change}");
    assert!(change["details"].get("dialect").is_none(), "the dialect stayed: {change}");

    // Switching away drops the mapping.
    let updated = t.run(update, json!({ "id": id, "input": { "dialect": "CLICKLEDGER" } })).await;
    assert_eq!(updated["updateApiKey"]["customDialect"], Value::Null, "{updated}");
}
