//! Create / read / update / status changes and cursor pagination of affiliates, campaigns,
//! tracking links and API keys, as the tenant's owner.

use std::collections::HashSet;

use clickledger_e2e::{
    AFFILIATE_FIELDS, API_KEY_FIELDS, CAMPAIGN_FIELDS, LINK_FIELDS, PASSWORD, TestApp, error_code,
    error_field, spawn_app,
};
use serde_json::{Value, json};

async fn owner(app: &TestApp) -> String {
    app.sign_up("acme").await.0
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

#[tokio::test]
async fn affiliates_create_get_update_suspend_activate_list() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let parent = app.create_affiliate(&token, "Top Partner", "top@partners.test", None, None).await;
    let child =
        app.create_affiliate(&token, "  Sub Partner ", "Sub@Partners.TEST", None, Some(&id(&parent))).await;
    assert_eq!(child["name"], "Sub Partner", "names are trimmed");
    assert_eq!(child["email"], "sub@partners.test", "e-mails are lower-cased");
    assert_eq!(child["parentId"], parent["id"]);
    assert_eq!(child["status"], "ACTIVE");
    assert!(id(&child).starts_with("aff_"));

    let get = format!("query($id: ID!) {{ affiliate(id: $id) {{ {AFFILIATE_FIELDS} }} }}");
    let read = app.ok(Some(&token), &get, json!({ "id": child["id"] })).await;
    assert_eq!(read["affiliate"], child);

    let update = format!(
        "mutation($id: ID!, $input: UpdateAffiliateInput!) {{ updateAffiliate(id: $id, input: $input) {{ {AFFILIATE_FIELDS} }} }}"
    );
    // Omitted fields are left alone.
    let renamed =
        app.ok(Some(&token), &update, json!({ "id": child["id"], "input": { "name": "Renamed" } })).await;
    let renamed = &renamed["updateAffiliate"];
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["email"], "sub@partners.test");
    assert_eq!(renamed["parentId"], parent["id"]);
    assert_eq!(renamed["createdAt"], child["createdAt"]);
    // `parentId: null` detaches.
    let detached = app
        .ok(
            Some(&token),
            &update,
            json!({ "id": child["id"], "input": { "parentId": null, "email": "NEW@partners.test" } }),
        )
        .await;
    assert!(detached["updateAffiliate"]["parentId"].is_null(), "{detached}");
    assert_eq!(detached["updateAffiliate"]["email"], "new@partners.test");
    assert_eq!(detached["updateAffiliate"]["name"], "Renamed");
    let read = app.ok(Some(&token), &get, json!({ "id": child["id"] })).await;
    assert_eq!(read["affiliate"], detached["updateAffiliate"], "the update is stored");

    let suspend = format!("mutation($id: ID!) {{ suspendAffiliate(id: $id) {{ {AFFILIATE_FIELDS} }} }}");
    let activate = format!("mutation($id: ID!) {{ activateAffiliate(id: $id) {{ {AFFILIATE_FIELDS} }} }}");
    let suspended = app.ok(Some(&token), &suspend, json!({ "id": parent["id"] })).await;
    assert_eq!(suspended["suspendAffiliate"]["status"], "SUSPENDED");
    assert_eq!(
        app.ok(Some(&token), &get, json!({ "id": parent["id"] })).await["affiliate"]["status"],
        "SUSPENDED"
    );
    let activated = app.ok(Some(&token), &activate, json!({ "id": parent["id"] })).await;
    assert_eq!(activated["activateAffiliate"]["status"], "ACTIVE");

    let list = app.ok(Some(&token), "{ affiliates { nodes { id name status } } }", json!({})).await;
    assert_eq!(
        list["affiliates"]["nodes"],
        json!([
            { "id": parent["id"], "name": "Top Partner", "status": "ACTIVE" },
            { "id": child["id"], "name": "Renamed", "status": "ACTIVE" },
        ])
    );

    // Unknown or mistyped IDs.
    let missing =
        app.graphql(Some(&token), &get, json!({ "id": "aff_0192f0c0a0a07000800000000000beef" })).await;
    assert_eq!(error_code(&missing), Some("NOT_FOUND"), "{missing}");
    let mistyped =
        app.graphql(Some(&token), &get, json!({ "id": "cmp_0192f0c0a0a07000800000000000beef" })).await;
    assert_eq!(error_code(&mistyped), Some("BAD_USER_INPUT"), "{mistyped}");
    assert_eq!(error_field(&mistyped), Some("id"));
    for mutation in [&suspend, &activate] {
        let answer = app
            .graphql(Some(&token), mutation, json!({ "id": "aff_0192f0c0a0a07000800000000000beef" }))
            .await;
        assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
    }
}

#[tokio::test]
async fn affiliate_input_is_validated() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    app.create_affiliate(&token, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    let create = "mutation($input: CreateAffiliateInput!) { createAffiliate(input: $input) { id } }";
    let cases = [
        (json!({ "name": "X", "email": "nope" }), "BAD_USER_INPUT", "email"),
        (json!({ "name": " ", "email": "x@partners.test" }), "BAD_USER_INPUT", "name"),
        (
            json!({ "name": "X", "email": "x@partners.test", "password": "short" }),
            "BAD_USER_INPUT",
            "password",
        ),
        (
            json!({ "name": "X", "email": "x@partners.test", "parentId": "cmp_0192f0c0a0a07000800000000000beef" }),
            "BAD_USER_INPUT",
            "parentId",
        ),
        (json!({ "name": "X", "email": "ANN@partners.test" }), "CONFLICT", "email"),
    ];
    for (input, code, field) in cases {
        let answer = app.graphql(Some(&token), create, json!({ "input": input })).await;
        assert_eq!(error_code(&answer), Some(code), "{input}: {answer}");
        assert_eq!(error_field(&answer), Some(field), "{input}: {answer}");
    }
    let answer = app
        .graphql(
            Some(&token),
            create,
            json!({ "input": { "name": "X", "email": "x@partners.test", "parentId": "aff_0192f0c0a0a07000800000000000beef" } }),
        )
        .await;
    assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
    // Nothing was created by the refused requests.
    let list = app.ok(Some(&token), "{ affiliates { nodes { email } } }", json!({})).await;
    assert_eq!(list["affiliates"]["nodes"], json!([{ "email": "ann@partners.test" }]));
}

#[tokio::test]
async fn an_affiliates_new_email_is_its_login() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let ann = app.create_affiliate(&token, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    app.ok(
        Some(&token),
        "mutation($id: ID!, $input: UpdateAffiliateInput!) { updateAffiliate(id: $id, input: $input) { id } }",
        json!({ "id": ann["id"], "input": { "email": "ann@new-domain.test", "name": "Ann Renamed" } }),
    )
    .await;
    let login = app.login("acme", "ann@new-domain.test", "ann password 1").await;
    assert_eq!(login["data"]["login"]["user"]["affiliateId"], ann["id"], "{login}");
    assert_eq!(login["data"]["login"]["user"]["email"], "ann@new-domain.test", "{login}");
    let token_ann = login["data"]["login"]["token"].as_str().unwrap();
    let me = app.ok(Some(token_ann), "{ me { user { email name } affiliate { email } } }", json!({})).await;
    assert_eq!(me["me"]["user"], json!({ "email": "ann@new-domain.test", "name": "Ann Renamed" }));
    // The old address is free again, for logins and for new affiliates.
    let old = app.login("acme", "ann@partners.test", "ann password 1").await;
    assert_eq!(error_code(&old), Some("UNAUTHENTICATED"), "{old}");
    app.create_affiliate(&token, "Other Ann", "ann@partners.test", Some("other password"), None).await;
    // An e-mail another login of the tenant uses is a conflict, and changes nothing.
    let answer = app
        .graphql(
            Some(&token),
            "mutation($id: ID!) { updateAffiliate(id: $id, input: { email: \"owner@acme.test\" }) { id } }",
            json!({ "id": ann["id"] }),
        )
        .await;
    assert_eq!(error_code(&answer), Some("CONFLICT"), "{answer}");
    assert_eq!(error_field(&answer), Some("email"));
    assert!(app.login("acme", "ann@new-domain.test", "ann password 1").await["data"]["login"].is_object());
    assert!(app.login("acme", "owner@acme.test", PASSWORD).await["data"]["login"].is_object());
}

#[tokio::test]
async fn parent_cycles_and_runaway_chains_are_refused() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let a = app.create_affiliate(&token, "A", "a@partners.test", None, None).await;
    let b = app.create_affiliate(&token, "B", "b@partners.test", None, Some(&id(&a))).await;
    let c = app.create_affiliate(&token, "C", "c@partners.test", None, Some(&id(&b))).await;
    let set_parent = "mutation($id: ID!, $parent: ID) { updateAffiliate(id: $id, input: { parentId: $parent }) { id parentId } }";
    for (child, parent, what) in [(&a, &a, "itself"), (&a, &b, "its child"), (&a, &c, "its grandchild")] {
        let answer =
            app.graphql(Some(&token), set_parent, json!({ "id": child["id"], "parent": parent["id"] })).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "parent = {what}: {answer}");
        assert_eq!(error_field(&answer), Some("parentId"), "{answer}");
    }
    let read = app
        .ok(Some(&token), "query($id: ID!) { affiliate(id: $id) { parentId } }", json!({ "id": a["id"] }))
        .await;
    assert!(read["affiliate"]["parentId"].is_null(), "a refused update changed nothing: {read}");
    // A legitimate move is accepted: C directly under A.
    let moved = app.ok(Some(&token), set_parent, json!({ "id": c["id"], "parent": a["id"] })).await;
    assert_eq!(moved["updateAffiliate"]["parentId"], a["id"]);

    // Chains are limited to 10 levels above an affiliate.
    let mut chain = vec![id(&a)];
    for level in 1..10 {
        let next = app
            .create_affiliate(
                &token,
                &format!("L{level}"),
                &format!("l{level}@chain.test"),
                None,
                chain.last().map(String::as_str),
            )
            .await;
        chain.push(id(&next));
    }
    let deepest = chain.last().unwrap();
    app.create_affiliate(&token, "L10", "l10@chain.test", None, Some(deepest)).await;
    let leaf = app.ok(Some(&token), "{ affiliates(first: 100) { nodes { id email } } }", json!({})).await;
    let l10 = leaf["affiliates"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["email"] == "l10@chain.test")
        .unwrap()
        .clone();
    let answer = app
        .graphql(
            Some(&token),
            "mutation($input: CreateAffiliateInput!) { createAffiliate(input: $input) { id } }",
            json!({ "input": { "name": "L11", "email": "l11@chain.test", "parentId": l10["id"] } }),
        )
        .await;
    assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
    assert_eq!(error_field(&answer), Some("parentId"));
}

#[tokio::test]
async fn campaigns_create_get_update_status_list() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let campaign =
        app.create_campaign(&token, "Welcome Bonus", "https://casino.test/land?cid={click_id}").await;
    assert!(id(&campaign).starts_with("cmp_"));
    assert_eq!(campaign["attributionModel"], "LAST_CLICK", "default model");
    assert_eq!(campaign["lookbackDays"], 30, "default lookback");
    assert_eq!(campaign["status"], "ACTIVE");
    assert!(campaign["fallbackUrl"].is_null());

    let create = format!(
        "mutation($input: CreateCampaignInput!) {{ createCampaign(input: $input) {{ {CAMPAIGN_FIELDS} }} }}"
    );
    let explicit = app
        .ok(
            Some(&token),
            &create,
            json!({ "input": { "name": "Forex", "landingUrl": "http://broker.test/", "fallbackUrl": "https://broker.test/paused",
                               "attributionModel": "TIME_DECAY", "lookbackDays": 365 } }),
        )
        .await;
    let explicit = &explicit["createCampaign"];
    assert_eq!(explicit["attributionModel"], "TIME_DECAY");
    assert_eq!(explicit["lookbackDays"], 365);
    assert_eq!(explicit["fallbackUrl"], "https://broker.test/paused");

    let get = format!("query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN_FIELDS} }} }}");
    assert_eq!(app.ok(Some(&token), &get, json!({ "id": campaign["id"] })).await["campaign"], campaign);

    let update = format!(
        "mutation($id: ID!, $input: UpdateCampaignInput!) {{ updateCampaign(id: $id, input: $input) {{ {CAMPAIGN_FIELDS} }} }}"
    );
    let updated = app
        .ok(
            Some(&token),
            &update,
            json!({ "id": campaign["id"], "input": { "name": "Welcome Bonus II", "fallbackUrl": "https://casino.test/paused",
                                                     "attributionModel": "LINEAR", "lookbackDays": 1 } }),
        )
        .await;
    let updated = &updated["updateCampaign"];
    assert_eq!(updated["name"], "Welcome Bonus II");
    assert_eq!(updated["landingUrl"], campaign["landingUrl"], "omitted fields are left alone");
    assert_eq!(updated["fallbackUrl"], "https://casino.test/paused");
    assert_eq!(updated["attributionModel"], "LINEAR");
    assert_eq!(updated["lookbackDays"], 1);
    let cleared = app
        .ok(Some(&token), &update, json!({ "id": campaign["id"], "input": { "fallbackUrl": null } }))
        .await;
    assert!(cleared["updateCampaign"]["fallbackUrl"].is_null(), "null removes the fallback: {cleared}");
    assert_eq!(
        app.ok(Some(&token), &get, json!({ "id": campaign["id"] })).await["campaign"],
        cleared["updateCampaign"]
    );

    let set_status = "mutation($id: ID!, $status: CampaignStatus!) { setCampaignStatus(id: $id, status: $status) { id status } }";
    for status in ["PAUSED", "ARCHIVED", "ACTIVE", "PAUSED"] {
        let answer =
            app.ok(Some(&token), set_status, json!({ "id": campaign["id"], "status": status })).await;
        assert_eq!(answer["setCampaignStatus"]["status"], status);
        assert_eq!(
            app.ok(Some(&token), &get, json!({ "id": campaign["id"] })).await["campaign"]["status"],
            status
        );
    }
    let answer = app
        .graphql(
            Some(&token),
            set_status,
            json!({ "id": "cmp_0192f0c0a0a07000800000000000beef", "status": "PAUSED" }),
        )
        .await;
    assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");

    let list = app.ok(Some(&token), "{ campaigns { nodes { id status } } }", json!({})).await;
    assert_eq!(
        list["campaigns"]["nodes"],
        json!([{ "id": campaign["id"], "status": "PAUSED" }, { "id": explicit["id"], "status": "ACTIVE" }])
    );
}

#[tokio::test]
async fn campaign_input_is_validated() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let create = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { id } }";
    let ok_url = "https://casino.test/land";
    let cases = [
        (json!({ "name": "X", "landingUrl": "javascript:alert(1)" }), "landingUrl"),
        (json!({ "name": "X", "landingUrl": "not a url" }), "landingUrl"),
        (json!({ "name": "X", "landingUrl": "/relative/path" }), "landingUrl"),
        (json!({ "name": "X", "landingUrl": "ftp://casino.test/file" }), "landingUrl"),
        (
            json!({ "name": "X", "landingUrl": format!("https://casino.test/{}", "a".repeat(2100)) }),
            "landingUrl",
        ),
        (json!({ "name": "X", "landingUrl": ok_url, "fallbackUrl": "data:text/html,hi" }), "fallbackUrl"),
        // Macros may not choose where a visitor goes: `?sub1=.evil.test` would be an open redirect.
        (json!({ "name": "X", "landingUrl": "https://casino.test{sub1}/?c={click_id}" }), "landingUrl"),
        (json!({ "name": "X", "landingUrl": "https://{sub2}/" }), "landingUrl"),
        (json!({ "name": "X", "landingUrl": "https://casino.test:{sub3}/" }), "landingUrl"),
        (
            json!({ "name": "X", "landingUrl": ok_url, "fallbackUrl": "https://casino.test{sub1}" }),
            "fallbackUrl",
        ),
        (json!({ "name": "X", "landingUrl": ok_url, "lookbackDays": 0 }), "lookbackDays"),
        (json!({ "name": "X", "landingUrl": ok_url, "lookbackDays": 366 }), "lookbackDays"),
        (json!({ "name": "X", "landingUrl": ok_url, "lookbackDays": -5 }), "lookbackDays"),
        (json!({ "name": "", "landingUrl": ok_url }), "name"),
    ];
    for (input, field) in &cases {
        let answer = app.graphql(Some(&token), create, json!({ "input": input })).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{input}: {answer}");
        assert_eq!(error_field(&answer), Some(*field), "{input}: {answer}");
    }
    let list = app.ok(Some(&token), "{ campaigns { nodes { id } } }", json!({})).await;
    assert_eq!(list["campaigns"]["nodes"], json!([]), "nothing was created");

    // The same rules on update, which leaves the campaign unchanged when it refuses.
    let campaign = app.create_campaign(&token, "Welcome", ok_url).await;
    let update =
        "mutation($id: ID!, $input: UpdateCampaignInput!) { updateCampaign(id: $id, input: $input) { id } }";
    for (input, field) in [
        (json!({ "landingUrl": "javascript:alert(1)" }), "landingUrl"),
        (json!({ "fallbackUrl": "mailto:x@y.test" }), "fallbackUrl"),
        (json!({ "landingUrl": "https://{affiliate_id}.casino.test/" }), "landingUrl"),
        (json!({ "lookbackDays": 0 }), "lookbackDays"),
        (json!({ "lookbackDays": 400 }), "lookbackDays"),
        (json!({ "name": "   " }), "name"),
    ] {
        let answer = app.graphql(Some(&token), update, json!({ "id": campaign["id"], "input": input })).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{input}: {answer}");
        assert_eq!(error_field(&answer), Some(field), "{input}: {answer}");
    }
    let get = format!("query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN_FIELDS} }} }}");
    assert_eq!(app.ok(Some(&token), &get, json!({ "id": campaign["id"] })).await["campaign"], campaign);
}

#[tokio::test]
async fn tracking_links_create_get_filter_suspend_activate() {
    let app = spawn_app!("--public-url", "https://track.example/").await;
    let token = owner(&app).await;
    let ann = app.create_affiliate(&token, "Ann", "ann@partners.test", None, None).await;
    let bob = app.create_affiliate(&token, "Bob", "bob@partners.test", None, None).await;
    let casino = app.create_campaign(&token, "Casino", "https://casino.test/").await;
    let sports = app.create_campaign(&token, "Sports", "https://sports.test/").await;
    let link = app.create_link(&token, &id(&ann), &id(&casino)).await;
    assert!(id(&link).starts_with("lnk_"));
    let code = link["code"].as_str().unwrap();
    assert_eq!(code.len(), 10, "{link}");
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{link}");
    assert_eq!(link["url"], format!("https://track.example/c/{code}"), "url = public URL + /c/{{code}}");
    assert_eq!(link["affiliateId"], ann["id"]);
    assert_eq!(link["campaignId"], casino["id"]);
    assert_eq!(link["status"], "ACTIVE");
    let ann_sports = app.create_link(&token, &id(&ann), &id(&sports)).await;
    let bob_casino = app.create_link(&token, &id(&bob), &id(&casino)).await;
    let second = app.create_link(&token, &id(&ann), &id(&casino)).await;
    assert_ne!(second["code"], link["code"], "every link has its own code");

    let get = format!("query($id: ID!) {{ trackingLink(id: $id) {{ {LINK_FIELDS} }} }}");
    assert_eq!(app.ok(Some(&token), &get, json!({ "id": link["id"] })).await["trackingLink"], link);

    let list = "query($a: ID, $c: ID) { trackingLinks(affiliateId: $a, campaignId: $c) { nodes { id } } }";
    let ids = |v: &Value| -> Vec<Value> {
        v["trackingLinks"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect()
    };
    let all = app.ok(Some(&token), list, json!({})).await;
    assert_eq!(
        ids(&all),
        vec![link["id"].clone(), ann_sports["id"].clone(), bob_casino["id"].clone(), second["id"].clone()]
    );
    let of_ann = app.ok(Some(&token), list, json!({ "a": ann["id"] })).await;
    assert_eq!(ids(&of_ann), vec![link["id"].clone(), ann_sports["id"].clone(), second["id"].clone()]);
    let of_casino = app.ok(Some(&token), list, json!({ "c": casino["id"] })).await;
    assert_eq!(ids(&of_casino), vec![link["id"].clone(), bob_casino["id"].clone(), second["id"].clone()]);
    let both = app.ok(Some(&token), list, json!({ "a": bob["id"], "c": sports["id"] })).await;
    assert!(ids(&both).is_empty());

    let suspended = app
        .ok(
            Some(&token),
            "mutation($id: ID!) { suspendTrackingLink(id: $id) { id status code } }",
            json!({ "id": link["id"] }),
        )
        .await;
    assert_eq!(suspended["suspendTrackingLink"]["status"], "SUSPENDED");
    assert_eq!(suspended["suspendTrackingLink"]["code"], link["code"]);
    assert_eq!(
        app.ok(Some(&token), &get, json!({ "id": link["id"] })).await["trackingLink"]["status"],
        "SUSPENDED"
    );
    let active = app
        .ok(
            Some(&token),
            "mutation($id: ID!) { activateTrackingLink(id: $id) { id status } }",
            json!({ "id": link["id"] }),
        )
        .await;
    assert_eq!(active["activateTrackingLink"]["status"], "ACTIVE");

    // Unknown affiliate or campaign: not found; an ID of the wrong kind: bad input on that field.
    let create = "mutation($input: CreateTrackingLinkInput!) { createTrackingLink(input: $input) { id } }";
    let missing = app
        .graphql(Some(&token), create, json!({ "input": { "affiliateId": "aff_0192f0c0a0a07000800000000000beef", "campaignId": casino["id"] } }))
        .await;
    assert_eq!(error_code(&missing), Some("NOT_FOUND"), "{missing}");
    let missing = app
        .graphql(Some(&token), create, json!({ "input": { "affiliateId": ann["id"], "campaignId": "cmp_0192f0c0a0a07000800000000000beef" } }))
        .await;
    assert_eq!(error_code(&missing), Some("NOT_FOUND"), "{missing}");
    let swapped = app
        .graphql(
            Some(&token),
            create,
            json!({ "input": { "affiliateId": casino["id"], "campaignId": ann["id"] } }),
        )
        .await;
    assert_eq!(error_code(&swapped), Some("BAD_USER_INPUT"), "{swapped}");
    assert_eq!(error_field(&swapped), Some("affiliateId"), "{swapped}");
    assert_eq!(ids(&app.ok(Some(&token), list, json!({})).await).len(), 4, "nothing was created");
}

#[tokio::test]
async fn without_public_url_links_use_the_address_the_server_listens_on() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let ann = app.create_affiliate(&token, "Ann", "ann@partners.test", None, None).await;
    let casino = app.create_campaign(&token, "Casino", "https://casino.test/").await;
    let link = app.create_link(&token, &id(&ann), &id(&casino)).await;
    let code = link["code"].as_str().unwrap();
    assert!(link["url"].as_str().unwrap().ends_with(&format!("/c/{code}")), "{link}");
    assert_eq!(link["url"], format!("{}/c/{code}", app.base), "a link must be reachable: {link}");
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_by_prefix_and_revocable() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let created = app.create_api_key(&token, "Casino backend").await;
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("clk_") && key.len() == 44, "{key}");
    let api_key = &created["apiKey"];
    assert!(id(api_key).starts_with("key_"));
    assert_eq!(api_key["name"], "Casino backend");
    assert_eq!(api_key["prefix"], &key[..12]);
    assert!(api_key["revokedAt"].is_null() && api_key["lastUsedAt"].is_null());
    let other = app.create_api_key(&token, "Sportsbook").await;
    assert_ne!(other["key"], created["key"]);

    let list = format!(
        "{{ apiKeys {{ edges {{ cursor node {{ {API_KEY_FIELDS} }} }} nodes {{ {API_KEY_FIELDS} }} }} }}"
    );
    let answer = app.graphql(Some(&token), &list, json!({})).await;
    let nodes = answer["data"]["apiKeys"]["nodes"].as_array().unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(nodes.len(), 2);
    assert_eq!(&nodes[0], api_key);
    let text = answer.to_string();
    for secret in [key, other["key"].as_str().unwrap()] {
        assert!(!text.contains(secret), "the key itself is never listed");
        assert!(!text.contains(&secret[12..]), "nor any part past the prefix");
    }

    let revoke = format!("mutation($id: ID!) {{ revokeApiKey(id: $id) {{ {API_KEY_FIELDS} }} }}");
    let revoked = app.ok(Some(&token), &revoke, json!({ "id": api_key["id"] })).await;
    let revoked_at = revoked["revokeApiKey"]["revokedAt"].clone();
    assert!(revoked_at.is_string(), "{revoked}");
    assert_eq!(revoked["revokeApiKey"]["prefix"], api_key["prefix"]);
    let again = app.ok(Some(&token), &revoke, json!({ "id": api_key["id"] })).await;
    assert_eq!(again["revokeApiKey"]["revokedAt"], revoked_at, "revoking twice keeps the first time");
    let listed = app.ok(Some(&token), "{ apiKeys { nodes { id revokedAt } } }", json!({})).await;
    assert_eq!(
        listed["apiKeys"]["nodes"],
        json!([{ "id": api_key["id"], "revokedAt": revoked_at }, { "id": other["apiKey"]["id"], "revokedAt": null }])
    );
    let missing =
        app.graphql(Some(&token), &revoke, json!({ "id": "key_0192f0c0a0a07000800000000000beef" })).await;
    assert_eq!(error_code(&missing), Some("NOT_FOUND"), "{missing}");
    let empty_name = app
        .graphql(Some(&token), "mutation { createApiKey(input: { name: \" \" }) { key } }", json!({}))
        .await;
    assert_eq!(error_field(&empty_name), Some("name"), "{empty_name}");
}

/// Walks a connection with `first: 2` and checks that it returns every row exactly once, in
/// the order of the unpaginated list, with consistent page info.
async fn walk(app: &TestApp, token: &str, field: &str, expected: &[String]) {
    let query = format!(
        "query($after: String) {{ {field}(first: 2, after: $after) {{ pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} edges {{ cursor node {{ id }} }} nodes {{ id }} }} }}"
    );
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let data = app.ok(Some(token), &query, json!({ "after": after })).await;
        let connection = &data[field];
        let edges = connection["edges"].as_array().unwrap();
        let nodes: Vec<&Value> = connection["nodes"].as_array().unwrap().iter().collect();
        assert!(edges.len() <= 2, "{field}: page larger than first: {connection}");
        assert_eq!(edges.iter().map(|e| &e["node"]).collect::<Vec<_>>(), nodes, "edges and nodes agree");
        let info = &connection["pageInfo"];
        assert_eq!(info["hasPreviousPage"], json!(after.is_some()), "{field}: {info}");
        if let (Some(first), Some(last)) = (edges.first(), edges.last()) {
            assert_eq!(info["startCursor"], first["cursor"]);
            assert_eq!(info["endCursor"], last["cursor"]);
        }
        seen.extend(nodes.iter().map(|n| n["id"].as_str().unwrap().to_owned()));
        pages += 1;
        assert!(pages <= expected.len() + 1, "{field}: pagination does not end");
        if info["hasNextPage"] == json!(false) {
            break;
        }
        assert_eq!(edges.len(), 2, "{field}: a page with a next page is full");
        after = Some(info["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, expected, "{field}: every row exactly once, oldest first");
    assert_eq!(pages, expected.len().div_ceil(2), "{field}: no empty trailing page");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
}

#[tokio::test]
async fn cursor_pagination_walks_every_list_exactly_once() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    let mut affiliates = Vec::new();
    let mut campaigns = Vec::new();
    let mut links = Vec::new();
    let mut keys = Vec::new();
    for n in 0..5 {
        affiliates.push(id(&app
            .create_affiliate(&token, &format!("A{n}"), &format!("a{n}@p.test"), None, None)
            .await));
        campaigns.push(id(&app.create_campaign(&token, &format!("C{n}"), "https://c.test/").await));
        keys.push(id(&app.create_api_key(&token, &format!("K{n}")).await["apiKey"]));
    }
    for n in 0..5 {
        links.push(id(&app.create_link(&token, &affiliates[n], &campaigns[4 - n]).await));
    }
    walk(&app, &token, "affiliates", &affiliates).await;
    walk(&app, &token, "campaigns", &campaigns).await;
    walk(&app, &token, "trackingLinks", &links).await;
    walk(&app, &token, "apiKeys", &keys).await;

    // The last page's cursor leads to an empty page.
    let data = app
        .ok(Some(&token), "query($after: String) { affiliates(first: 2, after: $after) { pageInfo { hasNextPage } nodes { id } } }", json!({ "after": affiliates[4] }))
        .await;
    assert_eq!(data["affiliates"]["nodes"], json!([]));
    assert_eq!(data["affiliates"]["pageInfo"]["hasNextPage"], false);
    // A cursor of another list, a garbage cursor and a negative page size are refused.
    for (after, first) in
        [(json!(campaigns[0]), json!(2)), (json!("garbage"), json!(2)), (json!(null), json!(-1))]
    {
        let answer = app
            .graphql(Some(&token), "query($after: String, $first: Int) { affiliates(first: $first, after: $after) { nodes { id } } }", json!({ "after": after, "first": first }))
            .await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "after {after}, first {first}: {answer}");
        let field = if first == json!(-1) { "first" } else { "after" };
        assert_eq!(error_field(&answer), Some(field), "{answer}");
    }
}

#[tokio::test]
async fn first_zero_returns_no_rows() {
    let app = spawn_app!().await;
    let token = owner(&app).await;
    app.create_campaign(&token, "C", "https://c.test/").await;
    let data = app
        .ok(Some(&token), "{ campaigns(first: 0) { pageInfo { hasNextPage } nodes { id } } }", json!({}))
        .await;
    assert_eq!(data["campaigns"]["nodes"], json!([]), "first: 0 asks for no rows: {data}");
    assert_eq!(data["campaigns"]["pageInfo"]["hasNextPage"], true, "{data}");
}
