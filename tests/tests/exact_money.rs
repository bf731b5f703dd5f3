//! Money is exact from the postback to GraphQL on both databases: amounts with 12-digit integer
//! parts and 6 decimal places, 12-place exchange rates, attribution shares, and the ledger's
//! sums (commission on credits, period statements) come back digit for digit. On SQLite the
//! decimal columns were floats, which kept about 16 significant digits.

use std::str::FromStr;

use clickledger_e2e::spawn_app;
use clickledger_e2e::tenant::{Tenant, sum_decimals};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

const RATE: &str = "1.234567890123";
const FTD_AMOUNT: &str = "987654321098.123456";
const NGR_AMOUNT: &str = "12345678901.234567";
const CPA: &str = "98765432109876.54";

fn d(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}"))).unwrap()
}

fn cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// Σ of `field` over `entries`, exactly.
fn total(entries: &[&Value], field: &str) -> Decimal {
    entries.iter().map(|e| d(&e[field])).sum()
}

const ENTRIES: &str = "query($conversionId: ID, $affiliateId: ID, $period: String) {
  commissions(conversionId: $conversionId, affiliateId: $affiliateId, period: $period, first: 50) {
    edges { node { affiliateId kind tier amount basis sourceAmount sourceCurrency fxRate period } }
  }
}";

async fn entries(tenant: &Tenant<'_>, filter: Value) -> Vec<Value> {
    let data = tenant.run(ENTRIES, filter).await;
    data["commissions"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

#[tokio::test]
async fn amounts_rates_shares_and_ledger_sums_round_trip_exactly() {
    let app = spawn_app!().await;
    let tenant = Tenant::create(&app, "exact").await;
    let parent = tenant.create_affiliate("parent", false).await;
    let first = tenant
        .run(
            "mutation($input: CreateAffiliateInput!) { createAffiliate(input: $input) { id } }",
            json!({ "input": { "name": "first", "email": tenant.affiliate_email("first"), "parentId": parent } }),
        )
        .await["createAffiliate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = tenant.create_affiliate("second", false).await;
    let third = tenant.create_affiliate("third", false).await;
    let campaign = tenant.create_campaign("Whales", json!({ "attributionModel": "LINEAR" })).await;
    let since = "2000-01-01T00:00:00Z";
    let plan = tenant
        .run(
            "mutation($input: CreateCommissionPlanInput!) { createCommissionPlan(input: $input) { id } }",
            json!({ "input": { "name": "Whale", "effectiveFrom": since, "rules": {
                "currency": "USD", "cpa": { "amount": CPA },
                "revshare": { "tiers": [{ "from": "0", "percent": "25" }] }, "overrides": ["10"],
            } } }),
        )
        .await["createCommissionPlan"]["id"]
        .clone();
    tenant
        .run(
            "mutation($input: AssignCommissionPlanInput!) { assignCommissionPlan(input: $input) { id } }",
            json!({ "input": { "planId": plan, "campaignId": campaign, "effectiveFrom": since } }),
        )
        .await;
    let set = tenant
        .run(
            "mutation($input: SetFxRateInput!) { setFxRate(input: $input) { rate } }",
            json!({ "input": { "day": "2020-01-01", "from": "EUR", "to": "USD", "rate": RATE } }),
        )
        .await;
    assert_eq!(set["setFxRate"]["rate"], RATE);
    let rates = tenant.run("{ fxRates { rate } }", json!({})).await;
    assert_eq!(rates["fxRates"], json!([{ "rate": RATE }]));

    // One visitor through three affiliates' links: three touches, linear shares of ⅓.
    let recorded = app.metric("clicks_recorded_total").await;
    let mut visitor: Option<String> = None;
    let mut last_click = String::new();
    for affiliate in [&first, &second, &third] {
        let link = tenant.create_link(affiliate, &campaign).await;
        let click = app.click(&link.code, "", visitor.as_deref()).await;
        visitor = visitor.or(click.visitor().map(str::to_owned));
        last_click = click.click_id();
    }
    app.wait_for_recorded_clicks(recorded + 3.0).await;

    // The registration binds the player to the three touches; its deposit and revenue are
    // reported for forty days ago, a month that has ended, so that it can be closed below.
    tenant.postback_ok(&[("click_id", &last_click), ("player_id", "whale"), ("event", "registration")]).await;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let occurred = (now_ms - 40 * 86_400_000).to_string();
    let ftd = tenant
        .postback_ok(&[
            ("player_id", "whale"),
            ("event", "ftd"),
            ("txn_id", "FTD-1"),
            ("amount", FTD_AMOUNT),
            ("currency", "EUR"),
            ("occurred_at", &occurred),
        ])
        .await;
    let answered: Vec<Value> =
        ftd["credits"].as_array().unwrap().iter().map(|c| c["share"].clone()).collect();
    tenant
        .postback_ok(&[
            ("player_id", "whale"),
            ("event", "revenue"),
            ("txn_id", "NGR-1"),
            ("amount", NGR_AMOUNT),
            ("currency", "EUR"),
            ("occurred_at", &occurred),
        ])
        .await;

    let conversions = tenant.conversions().await;
    let stored = conversions.iter().find(|c| c["txnId"] == "FTD-1").expect("the FTD");
    assert_eq!(stored["amount"], FTD_AMOUNT);
    let revenue = conversions.iter().find(|c| c["txnId"] == "NGR-1").expect("the revenue");
    assert_eq!(revenue["amount"], NGR_AMOUNT);
    let credits = stored["credits"].as_array().unwrap();
    let shares: Vec<Value> = credits.iter().map(|c| c["share"].clone()).collect();
    assert_eq!(shares, answered, "the stored shares are the ones the postback answered");
    let mut sorted: Vec<&str> = shares.iter().map(|s| s.as_str().unwrap()).collect();
    sorted.sort();
    assert_eq!(sorted, ["0.333333", "0.333333", "0.333334"]);
    assert_eq!(sum_decimals(sorted), "1");

    let ftd_entries = entries(&tenant, json!({ "conversionId": ftd["conversion_id"] })).await;
    let cpa: Vec<&Value> = ftd_entries.iter().filter(|e| e["kind"] == "CPA").collect();
    assert_eq!(cpa.len(), 3, "{ftd_entries:?}");
    assert_eq!(total(&cpa, "amount"), Decimal::from_str(CPA).unwrap(), "the parts sum to the cent");
    for entry in &cpa {
        assert_eq!(
            (entry["sourceAmount"].as_str(), entry["sourceCurrency"].as_str()),
            (Some(FTD_AMOUNT), Some("EUR"))
        );
        assert_eq!(entry["fxRate"], RATE);
        assert_eq!(d(&entry["amount"]).scale(), 2, "{entry}");
        let credit = credits.iter().find(|c| c["affiliateId"] == entry["affiliateId"]).unwrap();
        assert_eq!(credit["commission"], entry["amount"], "a credit's commission is its ledger entry");
    }
    let first_cpa = cpa.iter().find(|e| e["affiliateId"] == first.as_str()).unwrap();
    let override_ = ftd_entries.iter().find(|e| e["kind"] == "OVERRIDE").expect("the parent's override");
    assert_eq!(override_["affiliateId"], parent.as_str());
    assert_eq!(d(&override_["amount"]), cents(d(&first_cpa["amount"]) * Decimal::new(10, 2)));
    assert_eq!(override_["basis"], first_cpa["amount"]);

    let period = ftd_entries[0]["period"].as_str().unwrap().to_owned();
    let month = entries(&tenant, json!({ "period": period })).await;
    let revshare: Vec<&Value> = month.iter().filter(|e| e["kind"] == "REVSHARE" && e["tier"] == 0).collect();
    assert_eq!(revshare.len(), 3, "{month:?}");
    let net_usd = cents(Decimal::from_str(NGR_AMOUNT).unwrap() * Decimal::from_str(RATE).unwrap());
    assert_eq!(total(&revshare, "basis"), net_usd, "net revenue converted at the 12-place rate");
    assert_eq!(total(&revshare, "amount"), cents(net_usd * Decimal::new(25, 2)));
    for entry in &revshare {
        assert_eq!(
            (entry["sourceAmount"].as_str(), entry["fxRate"].as_str()),
            (Some(NGR_AMOUNT), Some(RATE))
        );
    }

    // Closing the month sums each affiliate's entries into a statement, to the cent.
    let closed = tenant
        .run(
            "mutation($period: String!) { closePeriod(period: $period) { affiliateId currency balance lines { kind amount } } }",
            json!({ "period": period }),
        )
        .await;
    let statements = closed["closePeriod"].as_array().unwrap();
    assert_eq!(statements.len(), 4, "three credited affiliates and the parent: {statements:?}");
    for statement in statements {
        let affiliate = statement["affiliateId"].as_str().unwrap();
        let own = entries(&tenant, json!({ "period": period, "affiliateId": affiliate })).await;
        let own: Vec<&Value> = own.iter().collect();
        assert_eq!(d(&statement["balance"]), total(&own, "amount"), "{statement}");
        let lines: Vec<&Value> = statement["lines"].as_array().unwrap().iter().collect();
        assert_eq!(total(&lines, "amount"), d(&statement["balance"]));
        assert_eq!(d(&statement["balance"]).scale(), 2, "{statement}");
    }
}

/// A player's running totals (deposits, turnover, lots) outgrow any single postback: each
/// deposit may be just under 10¹⁴, and their sum must still be stored (it once overflowed
/// PostgreSQL's NUMERIC(20,6) and answered 500).
#[tokio::test]
async fn a_players_running_totals_outgrow_a_single_postbacks_range() {
    let app = spawn_app!().await;
    let t = Tenant::create(&app, "big-player").await;
    let affiliate = t.create_affiliate("Whale", false).await;
    let campaign = t.create_campaign("Casino", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    t.create_default_plan(
        &campaign,
        "CPA",
        json!({ "currency": "EUR", "cpa": { "amount": "50", "minFirstDeposit": "10" } }),
    )
    .await;
    let click_id = app.click(&link.code, "", None).await.click_id();
    let big = "99999999999999.99";
    t.postback_ok(&[
        ("click_id", &click_id),
        ("player_id", "whale"),
        ("event", "ftd"),
        ("txn_id", "w0"),
        ("amount", big),
        ("currency", "EUR"),
    ])
    .await;
    for n in 1..4 {
        let txn = format!("w{n}");
        let (status, body) = t
            .postback(&[
                ("player_id", "whale"),
                ("event", "deposit"),
                ("txn_id", &txn),
                ("amount", big),
                ("currency", "EUR"),
            ])
            .await;
        assert_eq!(status, 200, "deposit {n} brings the total near {n}×10¹⁴: {body}");
        assert_eq!(body["attributed"], true, "{body}");
    }
}
