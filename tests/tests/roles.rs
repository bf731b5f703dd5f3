//! What an affiliate's token may see and do, next to the owner's.

use clickledger_e2e::{AFFILIATE_FIELDS, CAMPAIGN_FIELDS, LINK_FIELDS, TestApp, error_code, spawn_app};
use serde_json::{Value, json};

struct Programme {
    owner: String,
    /// Ann: has a sub-affiliate (Sue) and links on the casino campaign.
    ann: Value,
    ann_token: String,
    sue: Value,
    /// Sue's own sub-affiliate: Ann's grandchild.
    sid: Value,
    /// Bob: Ann's sibling, with a link on the sports campaign.
    bob: Value,
    casino: Value,
    sports: Value,
    poker: Value,
    ann_link: Value,
    sue_link: Value,
    bob_link: Value,
}

async fn programme(app: &TestApp) -> Programme {
    let (owner, _) = app.sign_up("acme").await;
    let ann = app.create_affiliate(&owner, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let sue = app.create_affiliate(&owner, "Sue", "sue@partners.test", None, Some(&id(&ann))).await;
    let sid = app.create_affiliate(&owner, "Sid", "sid@partners.test", None, Some(&id(&sue))).await;
    let bob = app.create_affiliate(&owner, "Bob", "bob@partners.test", None, None).await;
    let casino = app.create_campaign(&owner, "Casino", "https://casino.test/").await;
    let sports = app.create_campaign(&owner, "Sports", "https://sports.test/").await;
    let poker = app.create_campaign(&owner, "Poker", "https://poker.test/").await;
    let ann_link = app.create_link(&owner, &id(&ann), &id(&casino)).await;
    let sue_link = app.create_link(&owner, &id(&sue), &id(&poker)).await;
    let bob_link = app.create_link(&owner, &id(&bob), &id(&sports)).await;
    let ann_token = app.login_token("acme", "ann@partners.test", "ann password 1").await;
    Programme { owner, ann, ann_token, sue, sid, bob, casino, sports, poker, ann_link, sue_link, bob_link }
}

fn ids(connection: &Value) -> Vec<Value> {
    connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes: {connection}"))
        .iter()
        .map(|n| n["id"].clone())
        .collect()
}

#[tokio::test]
async fn an_affiliate_sees_itself_and_its_sub_affiliates_only() {
    let app = spawn_app!().await;
    let p = programme(&app).await;
    let list = format!("{{ affiliates(first: 100) {{ nodes {{ {AFFILIATE_FIELDS} }} }} }}");
    let mine = app.ok(Some(&p.ann_token), &list, json!({})).await;
    assert_eq!(ids(&mine["affiliates"]), vec![p.ann["id"].clone(), p.sue["id"].clone()]);
    assert_eq!(mine["affiliates"]["nodes"][1], p.sue, "a sub-affiliate is seen in full");
    // Control: the owner sees all four.
    let all = app.ok(Some(&p.owner), &list, json!({})).await;
    assert_eq!(all["affiliates"]["nodes"].as_array().unwrap().len(), 4);

    let get = "query($id: ID!) { affiliate(id: $id) { id name } }";
    for visible in [&p.ann, &p.sue] {
        let answer = app.ok(Some(&p.ann_token), get, json!({ "id": visible["id"] })).await;
        assert_eq!(answer["affiliate"]["id"], visible["id"]);
    }
    for hidden in [&p.bob, &p.sid] {
        let answer = app.graphql(Some(&p.ann_token), get, json!({ "id": hidden["id"] })).await;
        assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
        assert!(!answer.to_string().contains(hidden["name"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn an_affiliate_sees_only_its_own_links_and_their_campaigns() {
    let app = spawn_app!().await;
    let p = programme(&app).await;
    let links = format!(
        "query($a: ID, $c: ID) {{ trackingLinks(affiliateId: $a, campaignId: $c) {{ nodes {{ {LINK_FIELDS} }} }} }}"
    );
    let mine = app.ok(Some(&p.ann_token), &links, json!({})).await;
    assert_eq!(mine["trackingLinks"]["nodes"], json!([p.ann_link]));
    // Filters cannot widen the view: not a sub-affiliate's links, not a sibling's.
    for (a, c) in
        [(&p.sue["id"], &Value::Null), (&p.bob["id"], &Value::Null), (&Value::Null, &p.sports["id"])]
    {
        let answer = app.ok(Some(&p.ann_token), &links, json!({ "a": a, "c": c })).await;
        assert_eq!(answer["trackingLinks"]["nodes"], json!([]), "affiliateId {a}, campaignId {c}");
    }
    let get = "query($id: ID!) { trackingLink(id: $id) { id code } }";
    assert_eq!(
        app.ok(Some(&p.ann_token), get, json!({ "id": p.ann_link["id"] })).await["trackingLink"]["code"],
        p.ann_link["code"]
    );
    for hidden in [&p.sue_link, &p.bob_link] {
        let answer = app.graphql(Some(&p.ann_token), get, json!({ "id": hidden["id"] })).await;
        assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
        assert!(!answer.to_string().contains(hidden["code"].as_str().unwrap()));
    }

    let campaigns = format!("{{ campaigns {{ nodes {{ {CAMPAIGN_FIELDS} }} }} }}");
    let mine = app.ok(Some(&p.ann_token), &campaigns, json!({})).await;
    assert_eq!(mine["campaigns"]["nodes"], json!([p.casino]));
    let all = app.ok(Some(&p.owner), &campaigns, json!({})).await;
    assert_eq!(
        ids(&all["campaigns"]),
        vec![p.casino["id"].clone(), p.sports["id"].clone(), p.poker["id"].clone()]
    );
    let get = "query($id: ID!) { campaign(id: $id) { id name } }";
    assert_eq!(
        app.ok(Some(&p.ann_token), get, json!({ "id": p.casino["id"] })).await["campaign"]["name"],
        "Casino"
    );
    for hidden in [&p.sports, &p.poker] {
        let answer = app.graphql(Some(&p.ann_token), get, json!({ "id": hidden["id"] })).await;
        assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
    }
    // A new link makes its campaign visible at once.
    app.create_link(&p.owner, p.ann["id"].as_str().unwrap(), p.sports["id"].as_str().unwrap()).await;
    let mine = app.ok(Some(&p.ann_token), &campaigns, json!({})).await;
    assert_eq!(ids(&mine["campaigns"]), vec![p.casino["id"].clone(), p.sports["id"].clone()]);
}

#[tokio::test]
async fn an_affiliate_cannot_list_api_keys_or_call_staff_mutations() {
    let app = spawn_app!().await;
    let p = programme(&app).await;
    app.create_api_key(&p.owner, "Backend").await;
    let answer = app.graphql(Some(&p.ann_token), "{ apiKeys { nodes { id prefix } } }", json!({})).await;
    assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
    assert!(answer["data"].is_null());

    let snapshot = "{ affiliates(first: 50) { nodes { id name email parentId status updatedAt } } campaigns(first: 50) { nodes { id name landingUrl fallbackUrl attributionModel lookbackDays status updatedAt } } trackingLinks(first: 50) { nodes { id status } } apiKeys(first: 50) { nodes { id name revokedAt } } }";
    let before = app.ok(Some(&p.owner), snapshot, json!({})).await;
    let key = app.ok(Some(&p.owner), "{ apiKeys { nodes { id } } }", json!({})).await["apiKeys"]["nodes"][0]
        ["id"]
        .clone();
    let (ann, sue, casino, link) = (&p.ann["id"], &p.sue["id"], &p.casino["id"], &p.ann_link["id"]);
    // Each staff mutation, aimed at the affiliate's own rows where it takes an ID.
    let mutations = [
        (
            "mutation { createAffiliate(input: { name: \"X\", email: \"x@partners.test\" }) { id } }",
            json!({}),
        ),
        (
            "mutation($p: ID) { createAffiliate(input: { name: \"Y\", email: \"y@partners.test\", parentId: $p }) { id } }",
            json!({ "p": ann }),
        ),
        (
            "mutation($id: ID!) { updateAffiliate(id: $id, input: { name: \"Mine\" }) { id } }",
            json!({ "id": ann }),
        ),
        (
            "mutation($id: ID!) { updateAffiliate(id: $id, input: { parentId: null }) { id } }",
            json!({ "id": sue }),
        ),
        ("mutation($id: ID!) { suspendAffiliate(id: $id) { id } }", json!({ "id": sue })),
        ("mutation($id: ID!) { activateAffiliate(id: $id) { id } }", json!({ "id": ann })),
        (
            "mutation { createCampaign(input: { name: \"X\", landingUrl: \"https://x.test\" }) { id } }",
            json!({}),
        ),
        (
            "mutation($id: ID!) { updateCampaign(id: $id, input: { landingUrl: \"https://evil.test\" }) { id } }",
            json!({ "id": casino }),
        ),
        (
            "mutation($id: ID!) { setCampaignStatus(id: $id, status: ARCHIVED) { id } }",
            json!({ "id": casino }),
        ),
        (
            "mutation($a: ID!, $c: ID!) { createTrackingLink(input: { affiliateId: $a, campaignId: $c }) { id } }",
            json!({ "a": ann, "c": casino }),
        ),
        ("mutation($id: ID!) { suspendTrackingLink(id: $id) { id } }", json!({ "id": link })),
        ("mutation($id: ID!) { activateTrackingLink(id: $id) { id } }", json!({ "id": link })),
        ("mutation { createApiKey(input: { name: \"Mine\" }) { key } }", json!({})),
        ("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": key })),
    ];
    for (mutation, variables) in &mutations {
        let answer = app.graphql(Some(&p.ann_token), mutation, variables.clone()).await;
        assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{mutation}: {answer}");
        assert!(answer["data"].is_null(), "{mutation}: {answer}");
    }
    let after = app.ok(Some(&p.owner), snapshot, json!({})).await;
    assert_eq!(before, after, "refused mutations changed nothing");
    assert_eq!(app.ok(Some(&p.ann_token), "{ me { role } }", json!({})).await["me"]["role"], "AFFILIATE");
}

#[tokio::test]
async fn a_manager_runs_the_programme_but_not_keys_or_staff() {
    let app = spawn_app!().await;
    let (owner, _) = app.sign_up("managed").await;
    let create_user = "mutation($input: CreateUserInput!) { createUser(input: $input) { id role email } }";
    let manager = app
        .ok(
            Some(&owner),
            create_user,
            json!({ "input": { "email": "Manager@Managed.test", "password": "manager pass 1", "role": "MANAGER" } }),
        )
        .await;
    assert_eq!(manager["createUser"]["role"], "MANAGER");
    assert_eq!(manager["createUser"]["email"], "manager@managed.test");
    let duplicate = app
        .graphql(
            Some(&owner),
            create_user,
            json!({ "input": { "email": "manager@managed.test", "password": "manager pass 2", "role": "MANAGER" } }),
        )
        .await;
    assert_eq!(error_code(&duplicate), Some("CONFLICT"), "{duplicate}");
    let affiliate_role = app
        .graphql(
            Some(&owner),
            create_user,
            json!({ "input": { "email": "x@managed.test", "password": "manager pass 3", "role": "AFFILIATE" } }),
        )
        .await;
    assert_eq!(error_code(&affiliate_role), Some("BAD_USER_INPUT"), "{affiliate_role}");
    assert_eq!(affiliate_role["errors"][0]["extensions"]["field"], "role");

    let login = app.login("managed", "manager@managed.test", "manager pass 1").await;
    let token = login["data"]["login"]["token"].as_str().expect("manager logs in").to_owned();
    assert_eq!(app.ok(Some(&token), "{ me { role } }", json!({})).await["me"]["role"], "MANAGER");
    let affiliate = app.create_affiliate(&token, "Managed Partner", "partner@managed.test", None, None).await;
    assert!(affiliate["id"].as_str().is_some_and(|id| id.starts_with("aff_")));

    for operation in [
        "mutation { createApiKey(input: { name: \"k\" }) { key } }",
        "{ apiKeys { nodes { id } } }",
        "{ users { nodes { id } } }",
        "mutation { createUser(input: { email: \"m2@managed.test\", password: \"manager pass 4\", role: OWNER }) { id } }",
    ] {
        let answer = app.graphql(Some(&token), operation, json!({})).await;
        assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{operation}: {answer}");
    }
    let staff = app.ok(Some(&owner), "{ users { nodes { email role } } }", json!({})).await;
    assert_eq!(
        staff["users"]["nodes"],
        json!([{ "email": "owner@managed.test", "role": "OWNER" }, { "email": "manager@managed.test", "role": "MANAGER" }])
    );
}
