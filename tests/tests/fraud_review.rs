//! The fraud review queue and a person's decisions through the real binary: flagged and held
//! conversions with their evidence and cluster, approving (held commission becomes payable; a
//! conversion a rule rejected books what it was denied), rejecting (unpaid commission voided,
//! paid commission reversed in the open period), deciding again, the audit trail, and who may.

use chrono::{Datelike, Utc};
use clickledger_e2e::tenant::{Tenant, run_as};
use clickledger_e2e::{TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

const QUEUE: &str = "query($filter: FraudReviewFilter, $first: Int, $after: String) {
  fraudReview(filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { reviewState reviewedBy reviewedAt reviewNote cluster
            conversion { id playerId status fraudAction fraudFlags { rule action evidence } } } } }";

const APPROVE: &str = "mutation($id: ID!, $note: String) { approveConversion(id: $id, note: $note) {
  reviewState reviewedBy reviewNote conversion { id status } } }";

const REJECT: &str = "mutation($id: ID!, $reason: String!) { rejectConversion(id: $id, reason: $reason) {
  reviewState reviewedBy reviewNote conversion { id status } } }";

const ENTRIES: &str = "query($c: ID) { commissions(conversionId: $c, first: 50) {
  edges { node { id status amount period reversesEntryId } } } }";

async fn queue(t: &Tenant<'_>, filter: Value) -> Vec<Value> {
    t.run(QUEUE, json!({ "filter": filter })).await["fraudReview"]["nodes"]
        .as_array()
        .expect("review nodes")
        .clone()
}

async fn entries(t: &Tenant<'_>, conversion: &Value) -> Vec<Value> {
    t.run(ENTRIES, json!({ "c": conversion })).await["commissions"]["edges"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

fn statuses(entries: &[Value]) -> Vec<String> {
    let mut out: Vec<String> =
        entries.iter().map(|e| e["status"].as_str().unwrap_or_default().to_owned()).collect();
    out.sort();
    out
}

/// What the entries come to for the affiliate: everything not rejected.
fn standing(entries: &[Value]) -> f64 {
    entries
        .iter()
        .filter(|e| e["status"] != "REJECTED")
        .map(|e| e["amount"].as_str().and_then(|a| a.parse::<f64>().ok()).unwrap_or(f64::NAN))
        .sum()
}

/// A tenant with one affiliate, a campaign with a CPA 50 EUR plan in force since 2000, a
/// link; click injection off (postbacks here follow their clicks at once) and
/// multi-accounting set to `action`.
async fn program<'a>(app: &'a TestApp, slug: &str, action: &str) -> (Tenant<'a>, String, String) {
    let t = Tenant::create(app, slug).await;
    let affiliate = t.create_affiliate("Partner", true).await;
    let campaign = t.create_campaign("Casino", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    let since = "2000-01-01T00:00:00Z";
    let plan = t
        .run(
            "mutation($input: CreateCommissionPlanInput!) { createCommissionPlan(input: $input) { id } }",
            json!({ "input": { "name": "CPA", "effectiveFrom": since,
                               "rules": { "currency": "EUR", "cpa": { "amount": "50" } } } }),
        )
        .await["createCommissionPlan"]["id"]
        .clone();
    t.run(
        "mutation($input: AssignCommissionPlanInput!) { assignCommissionPlan(input: $input) { id } }",
        json!({ "input": { "planId": plan, "campaignId": campaign, "effectiveFrom": since } }),
    )
    .await;
    let settings = t
        .app
        .graphql(
            Some(&t.token),
            "mutation($i: UpdateFraudSettingsInput!) { updateFraudSettings(input: $i) { ftdFloorSecs } }",
            json!({ "i": { "clickInjection": { "enabled": false }, "multiAccounting": { "action": action } } }),
        )
        .await;
    assert!(settings["errors"].is_null(), "{settings}");
    (t, affiliate, link.code)
}

/// Registers `player` through a click, then reports its first deposit (100 EUR) with the
/// payment `card`, at `occurred_at` if given; returns the FTD's answer.
async fn depositor(t: &Tenant<'_>, code: &str, player: &str, card: &str, occurred_at: Option<&str>) -> Value {
    let click_id = t.app.click(code, "", None).await.click_id();
    t.postback_ok(&[("click_id", &click_id), ("player_id", player), ("event", "registration")]).await;
    let txn = format!("ftd-{player}");
    let mut params = vec![
        ("player_id", player),
        ("event", "ftd"),
        ("txn_id", txn.as_str()),
        ("amount", "100"),
        ("currency", "EUR"),
        ("payment_hash", card),
    ];
    if let Some(at) = occurred_at {
        params.push(("occurred_at", at));
    }
    t.postback_ok(&params).await
}

#[tokio::test]
async fn a_held_conversion_is_queued_with_its_evidence_and_approving_releases_it() {
    let app = spawn_app!().await;
    let (t, affiliate, code) = program(&app, "review-hold", "HOLD").await;
    let honest = depositor(&t, &code, "a", "card-1", None).await;
    assert_eq!(honest["risk"], 0, "{honest}");
    let held = depositor(&t, &code, "b", "card-1", None).await;
    assert_eq!(held["fraud_action"], "hold", "{held}");
    let id = held["conversion_id"].clone();
    assert_eq!(statuses(&entries(&t, &id).await), vec!["HELD"]);

    // The queue: open by default, with the evidence and the cluster (the other player).
    let open = queue(&t, json!(null)).await;
    let item = open.iter().find(|n| n["conversion"]["id"] == id).expect("the held FTD is queued");
    assert_eq!(item["reviewState"], "OPEN");
    assert_eq!(item["conversion"]["fraudAction"], "HOLD");
    assert_eq!(item["conversion"]["fraudFlags"][0]["rule"], "MULTI_ACCOUNTING");
    assert!(item["conversion"]["fraudFlags"][0]["evidence"].as_str().is_some_and(|e| e.contains('a')));
    assert_eq!(item["cluster"], json!(["a"]), "{item}");
    assert!(!open.iter().any(|n| n["conversion"]["id"] == honest["conversion_id"]), "unflagged: not queued");
    // Filters: action, rule, affiliate, state.
    assert_eq!(queue(&t, json!({ "action": "HOLD" })).await.len(), open.len());
    assert!(queue(&t, json!({ "action": "REJECT" })).await.is_empty());
    assert!(!queue(&t, json!({ "rule": "MULTI_ACCOUNTING" })).await.is_empty());
    assert!(queue(&t, json!({ "rule": "CLICK_INJECTION" })).await.is_empty());
    assert_eq!(queue(&t, json!({ "affiliateId": affiliate })).await.len(), open.len());
    assert!(queue(&t, json!({ "state": "APPROVED" })).await.is_empty());
    // Cursor pagination: one at a time, then the rest.
    let first = t.run(QUEUE, json!({ "first": 1 })).await["fraudReview"].clone();
    assert_eq!(first["nodes"].as_array().map(Vec::len), Some(1));
    let rest = t.run(QUEUE, json!({ "first": 10, "after": first["pageInfo"]["endCursor"] })).await;
    assert_eq!(rest["fraudReview"]["nodes"].as_array().map(Vec::len), Some(open.len() - 1), "{rest}");

    // Approving releases the held entries: payable now.
    let approved = t.run(APPROVE, json!({ "id": id, "note": "same household, legitimate" })).await;
    assert_eq!(approved["approveConversion"]["reviewState"], "APPROVED", "{approved}");
    assert_eq!(approved["approveConversion"]["reviewNote"], "same household, legitimate");
    assert!(approved["approveConversion"]["reviewedBy"].as_str().is_some_and(|u| u.starts_with("usr_")));
    assert_eq!(statuses(&entries(&t, &id).await), vec!["APPROVED"]);
    assert!(!queue(&t, json!(null)).await.iter().any(|n| n["conversion"]["id"] == id), "no longer open");
    let decided = queue(&t, json!({ "state": "APPROVED" })).await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["reviewNote"], "same household, legitimate");

    // Then rejected after all: the unpaid entry is voided; approving again restores it.
    let rejected = t.run(REJECT, json!({ "id": id, "reason": "card confirmed stolen" })).await;
    assert_eq!(rejected["rejectConversion"]["conversion"]["status"], "rejected", "{rejected}");
    assert_eq!(statuses(&entries(&t, &id).await), vec!["REJECTED"]);
    t.run(APPROVE, json!({ "id": id })).await;
    let after = entries(&t, &id).await;
    assert_eq!(standing(&after), 50.0, "{after:?}");
    // Approving again (a double click) is the same decision: nothing changes, nothing is
    // audited twice.
    let again = t.run(APPROVE, json!({ "id": id })).await;
    assert_eq!(again["approveConversion"]["reviewState"], "APPROVED", "{again}");
    assert_eq!(entries(&t, &id).await, after);

    // Each decision is in the audit log, with its actor and note.
    let log = t
        .run(
            "{ auditLog(first: 50) { nodes { actor { email } action subjectType subjectId details } } }",
            json!({}),
        )
        .await;
    let decisions: Vec<&Value> = log["auditLog"]["nodes"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|n| n["subjectType"] == "CONVERSION")
        .collect();
    assert_eq!(decisions.len(), 3, "{log}");
    let rejection = decisions.iter().find(|n| n["action"] == "CONVERSION_REJECTED").expect("rejection");
    assert_eq!(rejection["subjectId"], id);
    assert!(rejection["actor"]["email"].is_string(), "{rejection}");
    let details: Value = match &rejection["details"] {
        Value::String(raw) => serde_json::from_str(raw).expect("details"),
        other => other.clone(),
    };
    assert_eq!(details["note"], "card confirmed stolen", "{details}");
    assert!(decisions.iter().any(|n| n["action"] == "CONVERSION_APPROVED"));
}

#[tokio::test]
async fn a_conversion_a_rule_rejected_books_its_commission_when_approved() {
    let app = spawn_app!().await;
    let (t, _, code) = program(&app, "review-reject", "REJECT").await;
    depositor(&t, &code, "a", "card-1", None).await;
    let rejected = depositor(&t, &code, "b", "card-1", None).await;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    let id = rejected["conversion_id"].clone();
    assert!(entries(&t, &id).await.is_empty(), "nothing booked");
    assert_eq!(queue(&t, json!({ "action": "REJECT" })).await.len(), 1);

    let approved = t.run(APPROVE, json!({ "id": id })).await;
    assert_eq!(approved["approveConversion"]["conversion"]["status"], "approved", "{approved}");
    let booked = entries(&t, &id).await;
    assert_eq!(statuses(&booked), vec!["APPROVED"], "{booked:?}");
    assert_eq!(standing(&booked), 50.0);
    // Rejecting again and approving again leaves what one approval does.
    t.run(REJECT, json!({ "id": id, "reason": "second look" })).await;
    assert_eq!(standing(&entries(&t, &id).await), 0.0);
    t.run(APPROVE, json!({ "id": id })).await;
    assert_eq!(standing(&entries(&t, &id).await), 50.0);
}

#[tokio::test]
async fn rejecting_a_paid_conversion_books_a_reversal_in_the_open_period() {
    let app = spawn_app!().await;
    let (t, affiliate, code) = program(&app, "review-paid", "FLAG").await;
    let now = Utc::now();
    let (year, month) = if now.month() == 1 { (now.year() - 1, 12) } else { (now.year(), now.month() - 1) };
    let last_month = format!("{year:04}-{month:02}");
    let this_month = format!("{:04}-{:02}", now.year(), now.month());
    let occurred = format!("{last_month}-15T12:00:00Z");
    depositor(&t, &code, "a", "card-1", Some(&occurred)).await;
    let flagged = depositor(&t, &code, "b", "card-1", Some(&occurred)).await;
    assert_eq!(flagged["fraud_action"], "flag", "{flagged}");
    let id = flagged["conversion_id"].clone();

    // Last month is closed and paid.
    t.run("mutation($p: String!) { closePeriod(period: $p) { id } }", json!({ "p": last_month })).await;
    let statement = t
        .run(
            "query($a: ID!, $p: String!) { statement(affiliateId: $a, period: $p) { id } }",
            json!({ "a": affiliate, "p": last_month }),
        )
        .await;
    t.run(
        "mutation($id: ID!) { markStatementPaid(id: $id) { status } }",
        json!({ "id": statement["statement"]["id"] }),
    )
    .await;
    assert_eq!(statuses(&entries(&t, &id).await), vec!["PAID"]);

    let rejected = t.run(REJECT, json!({ "id": id, "reason": "chargeback fraud" })).await;
    assert_eq!(rejected["rejectConversion"]["reviewState"], "REJECTED", "{rejected}");
    let after = entries(&t, &id).await;
    assert_eq!(statuses(&after), vec!["APPROVED", "PAID"], "{after:?}");
    let reversal = after.iter().find(|e| e["status"] == "APPROVED").expect("the reversal");
    assert_eq!(reversal["period"], this_month.as_str(), "into the open period: {reversal}");
    assert!(reversal["reversesEntryId"].is_string());
    assert_eq!(standing(&after), 0.0);
    // Rejecting twice takes nothing more; approving brings it back to what it earned.
    t.run(REJECT, json!({ "id": id, "reason": "again" })).await;
    assert_eq!(standing(&entries(&t, &id).await), 0.0);
    t.run(APPROVE, json!({ "id": id })).await;
    assert_eq!(standing(&entries(&t, &id).await), 50.0);
    t.run(REJECT, json!({ "id": id, "reason": "final" })).await;
    assert_eq!(standing(&entries(&t, &id).await), 0.0);
}

#[tokio::test]
async fn a_chargebacks_reversal_comes_back_when_a_rejected_conversion_is_approved_again() {
    let app = spawn_app!().await;
    let (t, _, code) = program(&app, "review-chargeback", "FLAG").await;
    depositor(&t, &code, "a", "card-1", None).await;
    let flagged = depositor(&t, &code, "b", "card-1", None).await;
    assert_eq!(flagged["fraud_action"], "flag", "{flagged}");
    let id = flagged["conversion_id"].clone();
    let chargeback = t.postback_ok(&[("player_id", "b"), ("event", "chargeback"), ("txn_id", "ftd-b")]).await;
    let chargeback = chargeback["conversion_id"].clone();
    assert_eq!(standing(&entries(&t, &id).await), 50.0);
    assert_eq!(standing(&entries(&t, &chargeback).await), -50.0, "the chargeback takes it back");

    // Rejected: the void takes the chargeback's unpaid reversal along (no double loss).
    t.run(REJECT, json!({ "id": id, "reason": "stolen card" })).await;
    let (own, theirs) = (entries(&t, &id).await, entries(&t, &chargeback).await);
    assert_eq!((standing(&own), standing(&theirs)), (0.0, 0.0), "{own:?} {theirs:?}");

    // Approved again: the entry counts again, and so does the chargeback that took it back.
    t.run(APPROVE, json!({ "id": id })).await;
    let (own, theirs) = (entries(&t, &id).await, entries(&t, &chargeback).await);
    assert_eq!(standing(&own), 50.0, "{own:?}");
    assert_eq!(standing(&theirs), -50.0, "the chargeback stands: {theirs:?}");
}

#[tokio::test]
async fn only_staff_decide_bad_ids_are_not_found_and_a_reason_is_required() {
    let app = spawn_app!().await;
    let (t, _, code) = program(&app, "review-guard", "HOLD").await;
    depositor(&t, &code, "a", "card-1", None).await;
    let held = depositor(&t, &code, "b", "card-1", None).await;
    let id = held["conversion_id"].clone();

    let partner = t.login_affiliate("Partner").await;
    for (query, variables) in
        [(QUEUE, json!({})), (APPROVE, json!({ "id": id })), (REJECT, json!({ "id": id, "reason": "mine" }))]
    {
        let answer = app.graphql(Some(&partner), query, variables).await;
        assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
    }

    let unknown =
        app.graphql(Some(&t.token), APPROVE, json!({ "id": format!("cnv_{}", "0".repeat(32)) })).await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
    let malformed = app.graphql(Some(&t.token), REJECT, json!({ "id": "nonsense", "reason": "x" })).await;
    assert_eq!(error_code(&malformed), Some("BAD_USER_INPUT"), "{malformed}");
    assert_eq!(error_field(&malformed), Some("id"), "{malformed}");
    // Another tenant's conversion is not there to decide.
    let other = Tenant::create(&app, "review-guard-other").await;
    let elsewhere = app.graphql(Some(&other.token), APPROVE, json!({ "id": id })).await;
    assert_eq!(error_code(&elsewhere), Some("NOT_FOUND"), "{elsewhere}");

    for reason in ["", "   ", &"x".repeat(1001)] {
        let answer = app.graphql(Some(&t.token), REJECT, json!({ "id": id, "reason": reason })).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"), "{answer}");
        assert_eq!(error_field(&answer), Some("reason"), "{answer}");
    }
    let long_note = app.graphql(Some(&t.token), APPROVE, json!({ "id": id, "note": "n".repeat(1001) })).await;
    assert_eq!(error_field(&long_note), Some("note"), "{long_note}");
    // Nothing was decided by the refusals.
    let open = run_as(&app, &t.token, QUEUE, json!({})).await;
    assert_eq!(open["fraudReview"]["nodes"].as_array().map(Vec::len), Some(1), "{open}");
}
