//! Reports end to end: real clicks and postbacks through the real binary, then `stats` and
//! `GET /reports/stats.csv` must give exact numbers, only the viewer's own rows to an
//! affiliate, `BAD_USER_INPUT` naming the field for bad input, and 401 without a token.

use chrono::{Duration, Utc};
use clickledger_e2e::tenant::{Link, Tenant, run_as, sum_decimals};
use clickledger_e2e::{TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
    (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

const STATS: &str = "query($input: StatsInput!) { stats(input: $input) {
    totalRows timeZone
    totals { clicks uniqueClicks registrations ftds ftdAmount deposits depositAmount netRevenue lots
             chargebacks commission clickToRegistration registrationToFtd epc arpu }
    rows { affiliateId campaignId linkId sub1 deviceType os browser source creative landingPage day
           metrics { clicks uniqueClicks registrations ftds ftdAmount deposits depositAmount netRevenue
                     lots chargebacks commission clickToRegistration registrationToFtd epc arpu } }
} }";

/// A click with a user agent; returns the click ID and the visitor cookie.
async fn click(
    app: &TestApp,
    link: &Link,
    query: &str,
    visitor: Option<&str>,
    agent: &str,
) -> (String, String) {
    let mut request =
        app.client.get(app.url(&format!("/c/{}?{query}", link.code))).header("User-Agent", agent);
    if let Some(visitor) = visitor {
        request = request.header("Cookie", format!("clv={visitor}"));
    }
    let response = request.send().await.expect("click");
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let cid = location.split("cid=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let visitor = match visitor {
        Some(v) => v.to_owned(),
        None => {
            let cookie = response.headers()["set-cookie"].to_str().unwrap();
            cookie.split(';').next().unwrap().trim().strip_prefix("clv=").unwrap().to_owned()
        }
    };
    (cid, visitor)
}

fn period() -> (String, String) {
    let now = Utc::now();
    ((now - Duration::hours(2)).to_rfc3339(), (now + Duration::hours(2)).to_rfc3339())
}

fn input(group_by: &[&str]) -> Value {
    let (from, to) = period();
    json!({ "input": { "from": from, "to": to, "groupBy": group_by, "sortBy": "AFFILIATE", "descending": false } })
}

struct World<'a> {
    tenant: Tenant<'a>,
    alpha: String,
    beta: String,
    alpha_link: Link,
    beta_link: Link,
    campaign: String,
}

async fn world<'a>(app: &'a TestApp, slug: &str) -> World<'a> {
    let tenant = Tenant::create(app, slug).await;
    let alpha = tenant.create_affiliate("alpha", true).await;
    let beta = tenant.create_affiliate("beta", true).await;
    let campaign = tenant.create_campaign("Casino", json!({})).await;
    tenant.create_default_plan(&campaign, "Leads", json!({ "currency": "USD", "cpl": "2.5" })).await;
    let alpha_link = tenant.create_link(&alpha, &campaign).await;
    let beta_link = tenant.create_link(&beta, &campaign).await;
    World { tenant, alpha, beta, alpha_link, beta_link, campaign }
}

/// Alpha: 3 clicks from 2 visitors (one an iPhone), 2 registrations, an FTD, a deposit and
/// revenue. Beta: 1 click, 1 registration. Returns the commission each earned.
async fn traffic(app: &TestApp, w: &World<'_>) -> (String, String) {
    let desktop = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    let (first, visitor) = click(app, &w.alpha_link, "sub1=spring", None, desktop).await;
    click(app, &w.alpha_link, "sub1=spring", Some(&visitor), desktop).await;
    let (third, _) =
        click(app, &w.alpha_link, "sub1=summer&source=email&creative=banner-7&lp=promo", None, IPHONE).await;
    let (beta_click, _) = click(app, &w.beta_link, "", None, desktop).await;
    app.wait_for_recorded_clicks(4.0).await;

    let t = &w.tenant;
    t.postback_ok(&[("click_id", &first), ("player_id", "p1"), ("event", "registration"), ("country", "MT")])
        .await;
    t.postback_ok(&[
        ("player_id", "p1"),
        ("event", "ftd"),
        ("txn_id", "f1"),
        ("amount", "100.50"),
        ("currency", "EUR"),
        ("country", "MT"),
    ])
    .await;
    t.postback_ok(&[
        ("player_id", "p1"),
        ("event", "deposit"),
        ("txn_id", "d1"),
        ("amount", "20.25"),
        ("currency", "EUR"),
        ("country", "MT"),
    ])
    .await;
    t.postback_ok(&[
        ("player_id", "p1"),
        ("event", "revenue"),
        ("txn_id", "r1"),
        ("amount", "35.5"),
        ("currency", "EUR"),
        ("country", "MT"),
    ])
    .await;
    t.postback_ok(&[("click_id", &third), ("player_id", "p2"), ("event", "registration")]).await;
    t.postback_ok(&[("click_id", &beta_click), ("player_id", "p3"), ("event", "registration")]).await;

    // What each affiliate earned, as the conversions themselves say.
    let conversions = t.conversions().await;
    let earned = |affiliate: &str| {
        let amounts: Vec<&str> = conversions
            .iter()
            .flat_map(|c| c["credits"].as_array().unwrap().iter())
            .filter(|credit| credit["affiliateId"] == affiliate)
            .filter_map(|credit| credit["commission"].as_str())
            .collect();
        sum_decimals(amounts)
    };
    (earned(&w.alpha), earned(&w.beta))
}

fn dec(value: &Value) -> rust_decimal::Decimal {
    value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")).parse().unwrap()
}

fn d(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap()
}

#[tokio::test]
async fn clicks_and_postbacks_add_up_exactly_and_affiliates_see_only_their_own() {
    let app = spawn_app!().await;
    let w = world(&app, "stats").await;
    let (alpha_earned, beta_earned) = traffic(&app, &w).await;
    assert_eq!(d(&alpha_earned), d("5"), "two CPL registrations at 2.5");
    assert_eq!(d(&beta_earned), d("2.5"));

    let data = w.tenant.run(STATS, input(&["AFFILIATE"])).await;
    let stats = &data["stats"];
    assert_eq!(stats["totalRows"], 2, "{stats}");
    assert_eq!(stats["timeZone"], "UTC");
    let row = |affiliate: &str| {
        stats["rows"].as_array().unwrap().iter().find(|r| r["affiliateId"] == affiliate).unwrap()["metrics"]
            .clone()
    };
    let alpha = row(&w.alpha);
    assert_eq!(
        [
            &alpha["clicks"],
            &alpha["uniqueClicks"],
            &alpha["registrations"],
            &alpha["ftds"],
            &alpha["deposits"],
            &alpha["chargebacks"]
        ],
        [&json!(3), &json!(2), &json!(2), &json!(1), &json!(2), &json!(0)],
        "{alpha}"
    );
    assert_eq!(dec(&alpha["ftdAmount"]), d("100.50"));
    assert_eq!(dec(&alpha["depositAmount"]), d("120.75"));
    assert_eq!(dec(&alpha["netRevenue"]), d("35.5"));
    assert_eq!(dec(&alpha["lots"]), d("0"));
    assert_eq!(dec(&alpha["commission"]), d("5"));
    assert_eq!(dec(&alpha["clickToRegistration"]), d("0.666667"));
    assert_eq!(dec(&alpha["registrationToFtd"]), d("0.5"));
    assert_eq!(dec(&alpha["epc"]), d("1.666667"));
    assert_eq!(dec(&alpha["arpu"]), d("35.5"));
    let beta = row(&w.beta);
    assert_eq!([&beta["clicks"], &beta["registrations"]], [&json!(1), &json!(1)]);
    assert_eq!(dec(&beta["commission"]), d("2.5"));
    assert!(beta["arpu"].is_null(), "no FTD, no ARPU: {beta}");

    let totals = &stats["totals"];
    assert_eq!(
        [&totals["clicks"], &totals["uniqueClicks"], &totals["registrations"]],
        [&json!(4), &json!(3), &json!(3)]
    );
    assert_eq!(dec(&totals["commission"]), d("7.5"));
    assert_eq!(dec(&totals["clickToRegistration"]), d("0.75"));

    // Sub-IDs and devices come from the click.
    let data = w
        .tenant
        .run(STATS, json!({ "input": { "from": period().0, "to": period().1, "groupBy": ["SUB1", "DEVICE_TYPE"],
            "filters": [{ "dimension": "AFFILIATE", "values": [w.alpha] }], "sortBy": "SUB1", "descending": false } }))
        .await;
    let rows = data["stats"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0]["sub1"].as_str(), rows[0]["deviceType"].as_str()), (Some("spring"), Some("desktop")));
    assert_eq!(rows[0]["metrics"]["clicks"], 2);
    assert_eq!(rows[0]["metrics"]["registrations"], 1);
    assert_eq!(
        (rows[1]["sub1"].as_str(), rows[1]["deviceType"].as_str()),
        (Some("summer"), Some("smartphone"))
    );
    assert_eq!(rows[1]["metrics"]["clicks"], 1);

    // Countries come from the postbacks (clicks have none); filters on stored columns and on
    // computed days combine.
    let mut by_country = input(&["COUNTRY"]);
    by_country["input"]["filters"] = json!([
        { "dimension": "COUNTRY", "values": ["MT"] },
        { "dimension": "DAY", "values": [Utc::now().format("%Y-%m-%d").to_string(),
                                          (Utc::now() - Duration::hours(2)).format("%Y-%m-%d").to_string()] },
    ]);
    let data = w.tenant.run(STATS, by_country).await;
    let totals = &data["stats"]["totals"];
    assert_eq!(
        [&totals["clicks"], &totals["registrations"], &totals["ftds"]],
        [&json!(0), &json!(1), &json!(1)],
        "{data}"
    );
    assert_eq!(dec(&totals["netRevenue"]), d("35.5"));
    let mut malformed = input(&[]);
    malformed["input"]["filters"] = json!([{ "dimension": "LINK", "values": ["not-an-id", w.alpha] }]);
    assert_eq!(w.tenant.run(STATS, malformed).await["stats"]["totals"]["clicks"], 0);

    // Source, creative and landing page come from the click, for its clicks and conversions.
    let data = w
        .tenant
        .run(
            STATS,
            json!({ "input": { "from": period().0, "to": period().1,
        "groupBy": ["SOURCE", "CREATIVE", "LANDING_PAGE"],
        "filters": [{ "dimension": "SOURCE", "values": ["email"] }] } }),
        )
        .await;
    let rows = data["stats"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["source"].as_str(), rows[0]["creative"].as_str(), rows[0]["landingPage"].as_str()),
        (Some("email"), Some("banner-7"), Some("promo"))
    );
    assert_eq!([&rows[0]["metrics"]["clicks"], &rows[0]["metrics"]["registrations"]], [&json!(1), &json!(1)]);

    // An affiliate sees its own rows only, whatever it asks for.
    let token = w.tenant.login_affiliate("beta").await;
    let data = run_as(&app, &token, STATS, input(&["AFFILIATE", "LINK"])).await;
    let rows = data["stats"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["affiliateId"], w.beta);
    assert_eq!(rows[0]["linkId"], w.beta_link.id);
    assert_eq!(data["stats"]["totals"]["clicks"], 1);
    assert_eq!(dec(&data["stats"]["totals"]["commission"]), d("2.5"));
    let mut filtered = input(&["CAMPAIGN"]);
    filtered["input"]["filters"] = json!([{ "dimension": "AFFILIATE", "values": [w.alpha] }]);
    let data = run_as(&app, &token, STATS, filtered).await;
    assert_eq!(data["stats"]["totalRows"], 0, "another affiliate's rows stay invisible");
    assert_eq!(data["stats"]["totals"]["clicks"], 0);
    let _ = &w.campaign;
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let app = spawn_app!().await;
    let tenant = Tenant::create(&app, "stats-bad").await;
    let now = Utc::now();
    let at = |hours: i64| (now + Duration::hours(hours)).to_rfc3339();
    for (input, field) in [
        (json!({ "from": at(0), "to": at(1), "groupBy": ["NOPE"] }), "groupBy"),
        (json!({ "from": at(1), "to": at(0) }), "from"),
        (json!({ "from": at(-24 * 401), "to": at(0) }), "to"),
        (json!({ "from": at(0), "to": at(1), "groupBy": ["DAY", "OS", "SUB1", "SUB2", "SUB3"] }), "groupBy"),
        (
            json!({ "from": at(0), "to": at(1), "filters": [{ "dimension": "COLOUR", "values": ["x"] }] }),
            "filters",
        ),
        (json!({ "from": at(0), "to": at(1), "timeZone": "Mars/Olympus" }), "timeZone"),
        (json!({ "from": at(0), "to": at(1), "limit": 0 }), "limit"),
    ] {
        let answer = app.graphql(Some(&tenant.token), STATS, json!({ "input": input })).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{input}: {answer}");
        assert_eq!(error_field(&answer), Some(field), "{input}: {answer}");
    }
    let answer = app.graphql(None, STATS, json!({ "input": { "from": at(0), "to": at(1) } })).await;
    assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");
}

#[tokio::test]
async fn the_csv_route_streams_the_same_rows_exactly_and_wants_a_token() {
    let app = spawn_app!().await;
    let w = world(&app, "stats-csv").await;
    traffic(&app, &w).await;
    let (from, to) = period();
    let query =
        [("from", from.as_str()), ("to", to.as_str()), ("groupBy", "AFFILIATE,SUB1"), ("sortBy", "CLICKS")];

    let response = app.client.get(app.url("/reports/stats.csv")).query(&query).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .get(app.url("/reports/stats.csv"))
        .query(&query)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = app
        .client
        .get(app.url("/reports/stats.csv"))
        .query(&query)
        .bearer_auth(&w.tenant.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        "affiliate,sub1,clicks,unique_clicks,registrations,ftds,ftd_amount,deposits,deposit_amount,net_revenue,\
         lots,chargebacks,commission,click_to_registration,registration_to_ftd,epc,arpu"
    );
    assert_eq!(lines.len(), 4, "{body}");
    assert_eq!(lines[1], format!("{},spring,2,1,1,1,100.5,2,120.75,35.5,0,0,2.5,0.5,1,1.25,35.5", w.alpha));
    assert!(
        lines.contains(&format!("{},summer,1,1,1,0,0,0,0,0,0,0,2.5,1,0,2.5,", w.alpha).as_str()),
        "{body}"
    );
    assert!(lines.contains(&format!("{},,1,1,1,0,0,0,0,0,0,0,2.5,1,0,2.5,", w.beta).as_str()), "{body}");

    // An affiliate's CSV has its own rows only.
    let token = w.tenant.login_affiliate("alpha").await;
    let body = app
        .client
        .get(app.url("/reports/stats.csv"))
        .query(&query)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().count(), 3, "{body}");
    assert!(!body.contains(&w.beta), "{body}");

    // Bad input is a 400 naming the field.
    let response = app
        .client
        .get(app.url("/reports/stats.csv"))
        .query(&[("from", to.as_str()), ("to", from.as_str())])
        .bearer_auth(&w.tenant.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "from", "{body}");
}

#[tokio::test]
async fn a_rejected_conversion_stops_counting_and_huge_amounts_stay_exact() {
    let app = spawn_app!().await;
    let w = world(&app, "stats-status").await;
    let (first, _) = click(&app, &w.alpha_link, "sub1=x", None, IPHONE).await;
    let (second, _) = click(&app, &w.alpha_link, "sub1=x", None, IPHONE).await;
    app.wait_for_recorded_clicks(2.0).await;
    let t = &w.tenant;
    let registration =
        [("click_id", first.as_str()), ("player_id", "q1"), ("event", "registration"), ("txn_id", "reg-q1")];
    t.postback_ok(&[registration.as_slice(), &[("status", "pending")]].concat()).await;
    t.postback_ok(&[("click_id", &second), ("player_id", "q2"), ("event", "registration")]).await;
    // Amounts near the largest a postback may carry add up digit for digit (one player each).
    for (player, amount) in [("q1", "99999999999999.999999"), ("q2", "98765432109876.54")] {
        let txn = format!("big-{player}");
        t.postback_ok(&[
            ("player_id", player),
            ("event", "deposit"),
            ("txn_id", &txn),
            ("amount", amount),
            ("currency", "USD"),
        ])
        .await;
    }
    let totals = |data: Value| data["stats"]["totals"].clone();
    let before = totals(t.run(STATS, input(&[])).await);
    assert_eq!(before["registrations"], 2, "{before}");
    assert_eq!(dec(&before["commission"]), d("5"));
    assert_eq!(dec(&before["depositAmount"]), d("198765432109876.539999"));

    t.postback_ok(&[registration.as_slice(), &[("status", "rejected")]].concat()).await;
    let after = totals(t.run(STATS, input(&[])).await);
    assert_eq!(after["registrations"], 1, "{after}");
    assert_eq!(after["clicks"], 2);
    assert_eq!(
        dec(&after["depositAmount"]),
        d("198765432109876.539999"),
        "deposits are their own conversions"
    );
    let conversions = t.conversions().await;
    let earned: Vec<&str> = conversions
        .iter()
        .flat_map(|c| c["credits"].as_array().unwrap().iter())
        .filter_map(|credit| credit["commission"].as_str())
        .collect();
    assert_eq!(dec(&after["commission"]), d(&sum_decimals(earned)), "the rollups follow the ledger: {after}");
}
