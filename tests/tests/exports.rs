//! `GET /reports/conversions.csv` and `/reports/commissions.csv`: a period's rows, exact,
//! streamed page after page, an affiliate's own only; bad input named, 401 without a token.

use chrono::{Duration, Utc};
use clickledger_e2e::tenant::Tenant;
use clickledger_e2e::{TestApp, spawn_app};
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str, token: Option<&str>, query: &[(&str, String)]) -> (u16, String) {
    let mut request = app.client.get(app.url(path)).query(query);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Rows as maps from the header's names.
fn records(csv: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    reader
        .records()
        .map(|record| header.iter().cloned().zip(record.unwrap().iter().map(str::to_owned)).collect())
        .collect()
}

fn today() -> Vec<(&'static str, String)> {
    vec![
        ("from", (Utc::now() - Duration::hours(1)).to_rfc3339()),
        ("to", (Utc::now() + Duration::hours(1)).to_rfc3339()),
    ]
}

#[tokio::test]
async fn a_periods_conversions_and_commissions_export_exactly_and_only_to_their_viewer() {
    let app = spawn_app!("--no-demo").await;
    let t = Tenant::create(&app, "exports").await;
    let campaign = t.create_campaign("Casino", json!({})).await;
    t.create_default_plan(
        &campaign,
        "CPA + share",
        json!({ "currency": "EUR", "cpl": "2.5", "cpa": { "amount": "25.5" } }),
    )
    .await;
    let (kite, hawk) = (t.create_affiliate("kite", true).await, t.create_affiliate("hawk", true).await);
    for (affiliate, player, amount) in
        [(&kite, "p-kite", "123456789012.123456"), (&hawk, "p-hawk", "0.000001")]
    {
        let link = t.create_link(affiliate, &campaign).await;
        let click = app.click(&link.code, "", None).await.click_id();
        t.postback_ok(&[("click_id", &click), ("player_id", player), ("event", "registration")]).await;
        t.postback_ok(&[
            ("player_id", player),
            ("event", "ftd"),
            ("txn_id", &format!("{player}-ftd")),
            ("amount", amount),
            ("currency", "EUR"),
        ])
        .await;
    }

    let (status, _) = get(&app, "/reports/conversions.csv", None, &today()).await;
    assert_eq!(status, 401);
    let (status, csv) = get(&app, "/reports/conversions.csv", Some(&t.token), &today()).await;
    assert_eq!(status, 200, "{csv}");
    let rows = records(&csv);
    assert_eq!(rows.len(), 4, "{csv}");
    let ftd = rows.iter().find(|r| r["player_id"] == "p-kite" && r["event"] == "ftd").expect("kite's FTD");
    assert_eq!(ftd["amount"], "123456789012.123456", "exact, as reported");
    assert_eq!(ftd["affiliate_id"], kite);
    assert_eq!(ftd["share"], "1");
    assert_eq!(ftd["commission_currency"], "EUR");
    assert!(!ftd["commission"].is_empty(), "{csv}");

    // The affiliate: its own conversions, no player IDs.
    let kite_token = t.login_affiliate("kite").await;
    let (_, mine) = get(&app, "/reports/conversions.csv", Some(&kite_token), &today()).await;
    let mine = records(&mine);
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|r| r["affiliate_id"] == kite && r["player_id"].is_empty()), "{mine:?}");

    // The ledger: each entry of the month, exact; the affiliate's own only.
    let month = vec![("period", Utc::now().format("%Y-%m").to_string())];
    let (status, ledger) = get(&app, "/reports/commissions.csv", Some(&t.token), &month).await;
    assert_eq!(status, 200, "{ledger}");
    let entries = records(&ledger);
    let graphql: Value = t
        .run("{ commissions(first: 100) { edges { node { id amount } } } }", json!({}))
        .await["commissions"]["edges"]
        .clone();
    let nodes = graphql.as_array().unwrap();
    assert_eq!(entries.len(), nodes.len(), "{ledger}");
    for node in nodes {
        let id = node["node"]["id"].as_str().unwrap();
        let row = entries.iter().find(|r| r["entry_id"] == id).expect("every entry exported");
        assert_eq!(row["amount"], node["node"]["amount"].as_str().unwrap(), "exact, as GraphQL answers");
    }
    let (_, mine) = get(&app, "/reports/commissions.csv", Some(&kite_token), &month).await;
    let mine = records(&mine);
    assert!(!mine.is_empty() && mine.iter().all(|r| r["affiliate_id"] == kite), "{mine:?}");
}

#[tokio::test]
async fn an_export_longer_than_a_page_streams_every_row_once() {
    let app = spawn_app!("--no-demo").await;
    let t = Tenant::create(&app, "long-export").await;
    let total = 1_234;
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for n in 0..total {
        let t = &t;
        pending.push(async move {
            let player = format!("p{n}");
            t.postback_ok(&[("player_id", &player), ("event", "registration")]).await;
        });
        if pending.len() >= 32 {
            futures_util::StreamExt::next(&mut pending).await;
        }
    }
    while futures_util::StreamExt::next(&mut pending).await.is_some() {}

    let (status, csv) = get(&app, "/reports/conversions.csv", Some(&t.token), &today()).await;
    assert_eq!(status, 200);
    let rows = records(&csv);
    assert_eq!(rows.len(), total, "every conversion, across pages of 500");
    let mut players: Vec<&str> = rows.iter().map(|r| r["player_id"].as_str()).collect();
    players.sort_unstable();
    players.dedup();
    assert_eq!(players.len(), total, "none twice");
}

#[tokio::test]
async fn bad_export_parameters_are_named() {
    let app = spawn_app!("--no-demo").await;
    let t = Tenant::create(&app, "bad-export").await;
    let field = |body: &str| {
        serde_json::from_str::<Value>(body).unwrap()["error"]["field"].as_str().unwrap().to_owned()
    };
    type Query = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Query, &str)> = vec![
        ("/reports/conversions.csv", vec![("to", Utc::now().to_rfc3339())], "from"),
        (
            "/reports/conversions.csv",
            vec![("from", "yesterday".into()), ("to", Utc::now().to_rfc3339())],
            "from",
        ),
        (
            "/reports/conversions.csv",
            vec![("from", Utc::now().to_rfc3339()), ("to", (Utc::now() - Duration::days(1)).to_rfc3339())],
            "from",
        ),
        (
            "/reports/conversions.csv",
            vec![("from", (Utc::now() - Duration::days(500)).to_rfc3339()), ("to", Utc::now().to_rfc3339())],
            "to",
        ),
        ("/reports/conversions.csv", [today(), vec![("stauts", "approved".into())]].concat(), "stauts"),
        ("/reports/commissions.csv", vec![], "period"),
        ("/reports/commissions.csv", vec![("period", "2026-13".into())], "period"),
        (
            "/reports/commissions.csv",
            vec![("period", "2026-11".into()), ("affiliateId", "x".into())],
            "affiliateId",
        ),
    ];
    for (path, query, named) in cases {
        let (status, body) = get(&app, path, Some(&t.token), &query).await;
        assert_eq!(status, 400, "{path} {query:?}: {body}");
        assert_eq!(field(&body), named, "{path} {query:?}: {body}");
    }
}
