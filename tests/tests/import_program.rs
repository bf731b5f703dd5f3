//! Plans, assignments and conversion history of another tracker's export
//! (`tests/fixtures/migration/history`, on top of `program`), by `clickledger import` and by
//! the `importProgram` GraphQL job: imported plans pay for live deposits of imported players,
//! history shows and counts but books nothing, re-runs duplicate nothing, broken lines are
//! named, and jobs are the owner's of their own tenant only.

use std::process::Output;
use std::time::{Duration, Instant};

use clickledger_e2e::tenant::Tenant;
use clickledger_e2e::{TestApp, error_code, spawn_app};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/migration");
const KINDS: [&str; 8] =
    ["affiliates", "campaigns", "links", "players", "balances", "plans", "assignments", "conversions"];

fn dir(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// Runs `clickledger import` against the app's database.
async fn import(app: &TestApp, slug: &str, dir: &str, extra: &[&str]) -> Output {
    let mut args = vec!["import", "--tenant", slug, "--dir", dir, "--source", "OldTracker"];
    args.extend_from_slice(extra);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    app.host_command(&args).await
}

async fn import_ok(app: &TestApp, slug: &str, dir: &str, extra: &[&str]) -> String {
    let out = import(app, slug, dir, extra).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The tally line of `what` in an import's output, e.g. `3 created, 0 updated, 0 unchanged`.
fn tally(stdout: &str, what: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(what).filter(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no `{what}` line in {stdout}"))
        .trim()
        .to_owned()
}

fn decimal(value: &Value) -> Decimal {
    let text = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
    text.parse().unwrap_or_else(|_| panic!("not a decimal: {value}"))
}

/// The non-`MIGRATION` ledger entries of the tenant: what conversions booked.
async fn booked(tenant: &Tenant<'_>) -> Vec<Value> {
    let data = tenant.run("{ commissions(first: 100) { edges { node { kind amount } } } }", json!({})).await;
    data["commissions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .filter(|n| n["kind"] != "MIGRATION")
        .collect()
}

const CONVERSIONS: &str = "{ conversions(first: 100) { nodes { id event status txnId playerId amount currency \
    model imported attributed credits { affiliateId commission } } } }";

async fn conversions(tenant: &Tenant<'_>) -> Vec<Value> {
    tenant.run(CONVERSIONS, json!({})).await["conversions"]["nodes"].as_array().expect("nodes").clone()
}

async fn plan_count(tenant: &Tenant<'_>) -> usize {
    let data = tenant.run("{ commissionPlans(first: 50) { nodes { id } } }", json!({})).await;
    data["commissionPlans"]["nodes"].as_array().expect("plans").len()
}

/// The commission a live postback's conversion earned its (only) affiliate.
async fn commission_of(tenant: &Tenant<'_>, answer: &Value) -> Decimal {
    let listed = conversions(tenant).await;
    let conversion = listed
        .iter()
        .find(|c| c["id"] == answer["conversion_id"])
        .unwrap_or_else(|| panic!("{answer} not listed in {listed:?}"));
    decimal(&conversion["credits"][0]["commission"])
}

#[tokio::test]
async fn imported_plans_pay_live_deposits_and_history_shows_but_books_nothing() {
    let app = spawn_app!("--no-demo").await;
    let tenant = Tenant::create(&app, "histshop").await;
    import_ok(&app, "histshop", &dir("program"), &[]).await;

    // A dry run of the history writes nothing.
    let dry = import_ok(&app, "histshop", &dir("history"), &["--dry-run"]).await;
    assert_eq!(tally(&dry, "plans"), "2 created, 0 updated, 0 unchanged");
    assert!(dry.contains("create plan `plan-hybrid` (plans.csv:2)"), "{dry}");
    assert!(dry.contains("create conversion `old-ftd-1` (conversions.csv:2)"), "{dry}");
    assert_eq!(plan_count(&tenant).await, 0);
    assert_eq!(conversions(&tenant).await.len(), 10, "only the players' bindings");

    let first = import_ok(&app, "histshop", &dir("history"), &[]).await;
    assert_eq!(tally(&first, "plans"), "2 created, 0 updated, 0 unchanged");
    assert_eq!(tally(&first, "assignments"), "3 created, 0 updated, 0 unchanged");
    assert_eq!(tally(&first, "conversions"), "5 created, 0 updated, 0 unchanged");
    let again = import_ok(&app, "histshop", &dir("history"), &[]).await;
    for (what, count) in [("plans", 2), ("assignments", 3), ("conversions", 5)] {
        assert_eq!(tally(&again, what), format!("0 created, 0 updated, {count} unchanged"), "{what}");
    }
    assert_eq!(plan_count(&tenant).await, 2);

    // History is listed, marked imported, credited, and earned nothing.
    let listed = conversions(&tenant).await;
    assert_eq!(listed.len(), 15, "{listed:?}");
    let old_ftd = listed.iter().find(|c| c["txnId"] == "old-ftd-1").expect("old-ftd-1 listed");
    assert_eq!(old_ftd["imported"], true);
    assert_eq!(old_ftd["model"], "IMPORTED");
    assert_eq!(old_ftd["event"], "ftd");
    assert_eq!(decimal(&old_ftd["amount"]), Decimal::new(50, 0));
    assert_eq!(old_ftd["credits"][0]["commission"], Value::Null, "{old_ftd}");
    let rejected = listed.iter().find(|c| c["txnId"] == "old-dep-9").expect("old-dep-9 listed");
    assert_eq!(rejected["status"], "rejected");
    let orphan = listed.iter().find(|c| c["txnId"] == "old-reg-x").expect("old-reg-x listed");
    assert_eq!(orphan["attributed"], false);
    assert!(listed.iter().all(|c| c["imported"] == true), "{listed:?}");
    assert!(booked(&tenant).await.is_empty(), "history booked commission");

    // ... and counts in the reports of its hours (the rejected deposit counts nothing).
    let stats = tenant
        .run(
            "query($input: StatsInput!) { stats(input: $input) { totals { ftds ftdAmount deposits } } }",
            json!({ "input": { "from": "2026-01-01T00:00:00Z", "to": "2026-08-01T00:00:00Z", "groupBy": [] } }),
        )
        .await;
    let totals = &stats["stats"]["totals"];
    assert_eq!(totals["ftds"], 2, "{stats}");
    assert_eq!(decimal(&totals["ftdAmount"]), Decimal::new(80, 0), "{stats}");

    // A live first deposit of an imported player earns under the imported plan: the
    // campaign's default for aff-100's player, aff-101's own plan for its player.
    let p002 = tenant
        .postback_ok(&[
            ("player_id", "p-002"),
            ("event", "ftd"),
            ("txn_id", "L-1"),
            ("amount", "40"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(commission_of(&tenant, &p002).await, Decimal::new(100, 0));
    let p005 = tenant
        .postback_ok(&[
            ("player_id", "p-005"),
            ("event", "ftd"),
            ("txn_id", "L-2"),
            ("amount", "40"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(commission_of(&tenant, &p005).await, Decimal::new(60, 0));
    assert_eq!(booked(&tenant).await.len(), 2);

    // A replayed postback of an old transaction is a duplicate of its history row: answered
    // as one (200, `duplicate`), never a second conversion, no commission.
    let (status, replay) = tenant
        .postback(&[
            ("player_id", "p-001"),
            ("event", "ftd"),
            ("txn_id", "old-ftd-1"),
            ("amount", "50"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["duplicate"], true, "{replay}");
    let listed = conversions(&tenant).await;
    assert_eq!(listed.iter().filter(|c| c["txnId"] == "old-ftd-1").count(), 1, "{listed:?}");
    assert_eq!(booked(&tenant).await.len(), 2);

    // A later export changes a plan and a history row: updated in place, nothing duplicated.
    let later = tempfile::tempdir().expect("a temporary directory");
    let copy = |file: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(format!("{}/{file}", dir("history"))).expect("fixture");
        std::fs::write(later.path().join(file), text.replace(from, to)).expect("write");
    };
    copy("plans.csv", "plan-sub,Sub Team CPA,EUR,cpa,60", "plan-sub,Sub Team CPA,EUR,cpa,70");
    copy("assignments.csv", "", "");
    copy("conversions.csv", "p-900,,,,,pending", "p-900,,,,,approved");
    let changed = import_ok(&app, "histshop", later.path().to_str().expect("UTF-8"), &[]).await;
    assert_eq!(tally(&changed, "plans"), "0 created, 1 updated, 1 unchanged");
    assert_eq!(tally(&changed, "assignments"), "0 created, 0 updated, 3 unchanged");
    assert_eq!(tally(&changed, "conversions"), "0 created, 1 updated, 4 unchanged");
    assert_eq!(plan_count(&tenant).await, 2);
    let listed = conversions(&tenant).await;
    assert_eq!(listed.len(), 17, "15 imported and 2 live");
    let orphan = listed.iter().find(|c| c["txnId"] == "old-reg-x").expect("old-reg-x listed");
    assert_eq!(orphan["status"], "approved");
}

#[tokio::test]
async fn broken_plans_assignments_and_history_are_named_by_line_and_nothing_is_written() {
    let app = spawn_app!("--no-demo").await;
    let tenant = Tenant::create(&app, "brokenhist").await;
    import_ok(&app, "brokenhist", &dir("program"), &[]).await;
    let failed = import(&app, "brokenhist", &dir("broken_history"), &[]).await;
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    for expected in [
        "plans.csv:3: unknown rule `bonus` (cpa, cpl or revshare)",
        "plans.csv:4: unknown currency `XYZ`",
        "plans.csv:5: plan `plan-c`: ",
        "assignments.csv:3: unknown plan_external_id `plan-zzz`",
        "assignments.csv:4: a second plan for campaign `cmp-casino` from",
        "assignments.csv:5: unknown campaign_external_id `cmp-nope`",
        "assignments.csv:5: unknown affiliate_external_id `aff-999`",
        "conversions.csv:3: duplicate txn_id `t-1` (first on line 2)",
        "conversions.csv:4: unknown currency `XYZ`",
        "conversions.csv:5: event `chargeback` is not imported",
        "conversions.csv:6: occurred_at `yesterday` is not an RFC 3339 time",
        "conversions.csv:6: unknown affiliate_external_id `aff-404`",
        "nothing was written",
    ] {
        assert!(stderr.contains(expected), "`{expected}` not in {stderr}");
    }
    assert_eq!(plan_count(&tenant).await, 0);
    assert_eq!(conversions(&tenant).await.len(), 10, "only the players' bindings");
}

// ---- importProgram ------------------------------------------------------------------------

const IMPORT_PROGRAM: &str =
    "mutation($input: ImportProgramInput!) { importProgram(input: $input) { id status dryRun } }";
const IMPORT_JOB: &str = "query($id: ID!) { importJob(id: $id) { id status dryRun tally { kind created updated unchanged } \
    changes errors { file line message } finishedAt } }";

/// The files of a fixture directory as `importProgram` takes them.
fn files_of(name: &str) -> Vec<Value> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir(name)).expect("fixture dir") {
        let path = entry.expect("entry").path();
        let file = path.file_name().expect("name").to_string_lossy().into_owned();
        files.push(json!({ "name": file, "content": std::fs::read_to_string(&path).expect("read") }));
    }
    files
}

/// Starts a job and waits until it ends; returns the job.
async fn run_job(app: &TestApp, token: &str, files: Vec<Value>, dry_run: bool) -> Value {
    let started = app
        .graphql(
            Some(token),
            IMPORT_PROGRAM,
            json!({ "input": { "files": files, "dryRun": dry_run, "source": "OldTracker" } }),
        )
        .await;
    let job = &started["data"]["importProgram"];
    assert!(job.is_object(), "{started}");
    assert_eq!(job["dryRun"], dry_run);
    let id = job["id"].as_str().expect("job id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = app.graphql(Some(token), IMPORT_JOB, json!({ "id": id })).await;
        let job = answer["data"]["importJob"].clone();
        assert!(job.is_object(), "{answer}");
        if job["status"] == "SUCCEEDED" || job["status"] == "FAILED" {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} still {} after 60 s", job["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A job's tally of `kind` in the CLI's words.
fn job_tally(job: &Value, kind: &str) -> String {
    let tally = job["tally"].as_array().expect("tally").iter().find(|t| t["kind"] == kind).expect("kind");
    format!("{} created, {} updated, {} unchanged", tally["created"], tally["updated"], tally["unchanged"])
}

#[tokio::test]
async fn import_program_runs_as_an_owners_job_with_the_clis_tally() {
    let app = spawn_app!("--no-demo").await;
    let tenant = Tenant::create(&app, "jobshop").await;
    let other = Tenant::create(&app, "othershop").await;
    // Old codes are unique across tenants: the CLI's twin import runs on a server of its own.
    let cli_app = spawn_app!("--no-demo").await;
    let by_cli = Tenant::create(&cli_app, "clishop").await;

    // A dry run succeeds, lists its changes and writes nothing.
    let dry = run_job(&app, &tenant.token, files_of("program"), true).await;
    assert_eq!(dry["status"], "SUCCEEDED", "{dry}");
    assert_eq!(job_tally(&dry, "affiliates"), "3 created, 0 updated, 0 unchanged");
    let changes: Vec<&str> =
        dry["changes"].as_array().expect("changes").iter().filter_map(Value::as_str).collect();
    assert!(changes.contains(&"create affiliate `aff-101` (affiliates.csv:3)"), "{changes:?}");
    let listed = tenant.run("{ affiliates(first: 10) { nodes { id } } }", json!({})).await;
    assert_eq!(listed["affiliates"]["nodes"], json!([]));

    // The same files as the CLI, the same tally.
    for fixture in ["program", "history"] {
        let cli = import_ok(&cli_app, "clishop", &dir(fixture), &[]).await;
        let job = run_job(&app, &tenant.token, files_of(fixture), false).await;
        assert_eq!(job["status"], "SUCCEEDED", "{job}");
        assert_eq!(job["errors"], json!([]));
        assert!(job["finishedAt"].is_string(), "{job}");
        for kind in KINDS {
            assert_eq!(job_tally(&job, kind), tally(&cli, kind), "{fixture}: {kind}");
        }
    }
    assert_eq!(plan_count(&tenant).await, 2);
    assert_eq!(conversions(&tenant).await.len(), conversions(&by_cli).await.len());

    // Broken files: FAILED, each error with its file and line, nothing written.
    let broken = vec![
        json!({ "name": "conversions.csv", "content": "txn_id,event,when\nx,ftd,now\n" }),
        json!({ "name": "assignments.csv", "content": "plan_external_id,campaign_external_id\nplan-zzz,cmp-casino\n" }),
        json!({ "name": "plans.csv", "content": "plan_external_id,name,currency,rule,amount\nplan-new,New,EUR,cpa,10\n" }),
        json!({ "name": "notes.txt", "content": "hello" }),
    ];
    let failed = run_job(&app, &tenant.token, broken, false).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let errors: Vec<String> = failed["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}:{}: {}",
                e["file"].as_str().unwrap_or_default(),
                e["line"],
                e["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    for expected in [
        "conversions.csv:1: missing column `occurred_at`",
        "conversions.csv:1: unknown column `when`",
        "assignments.csv:2: unknown plan_external_id `plan-zzz`",
    ] {
        assert!(errors.iter().any(|e| e == expected), "`{expected}` not in {errors:?}");
    }
    assert!(errors.iter().any(|e| e.starts_with("files:0: unknown file `notes.txt`")), "{errors:?}");
    assert_eq!(plan_count(&tenant).await, 2, "plan-new was not written");

    // Owners only: an affiliate and a manager are refused.
    tenant.create_affiliate("jobpartner", true).await;
    let affiliate = tenant.login_affiliate("jobpartner").await;
    let manager = app
        .ok(
            Some(&tenant.token),
            "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }",
            json!({ "input": { "email": "manager@jobshop.test", "password": "manager pass 1", "role": "MANAGER" } }),
        )
        .await;
    assert!(manager["createUser"]["id"].is_string());
    let manager = app.login_token("jobshop", "manager@jobshop.test", "manager pass 1").await;
    let job_id = failed["id"].as_str().expect("job id");
    for token in [&affiliate, &manager] {
        let start = app
            .graphql(Some(token), IMPORT_PROGRAM, json!({ "input": { "files": files_of("program") } }))
            .await;
        assert_eq!(error_code(&start), Some("FORBIDDEN"), "{start}");
        let read = app.graphql(Some(token), IMPORT_JOB, json!({ "id": job_id })).await;
        assert_eq!(error_code(&read), Some("FORBIDDEN"), "{read}");
    }

    // Another tenant's owner cannot read the job: it does not exist for them.
    let foreign = app.graphql(Some(&other.token), IMPORT_JOB, json!({ "id": job_id })).await;
    assert_eq!(error_code(&foreign), Some("NOT_FOUND"), "{foreign}");
    assert_eq!(foreign["data"], Value::Null, "{foreign}");
}

/// The commission a live postback's conversion earned its (only) affiliate; `None` when it
/// booked nothing.
async fn commission_if_any(tenant: &Tenant<'_>, answer: &Value) -> Option<Decimal> {
    let listed = conversions(tenant).await;
    let conversion = listed
        .iter()
        .find(|c| c["id"] == answer["conversion_id"])
        .unwrap_or_else(|| panic!("{answer} not listed in {listed:?}"));
    let commission = &conversion["credits"][0]["commission"];
    (!commission.is_null()).then(|| decimal(commission))
}

#[tokio::test]
async fn players_the_old_system_paid_cpa_for_earn_none_and_history_deposits_count_towards_it() {
    let app = spawn_app!("--no-demo").await;
    let tenant = Tenant::create(&app, "cpashop").await;
    // `players.csv` marks p-003 and p-008 `cpa_paid`; the history has p-001's deposits.
    import_ok(&app, "cpashop", &dir("program"), &[]).await;
    let dry = import_ok(&app, "cpashop", &dir("history"), &["--dry-run"]).await;
    assert!(dry.contains("create deposits of player `p-001` in EUR (conversions.csv:2)"), "{dry}");
    import_ok(&app, "cpashop", &dir("history"), &[]).await;
    let again = import_ok(&app, "cpashop", &dir("history"), &[]).await;
    assert!(!again.contains("deposits of player"), "a re-run changes no facts: {again}");

    let ftd = |player: &'static str, txn: &'static str| {
        let tenant = &tenant;
        async move {
            tenant
                .postback_ok(&[
                    ("player_id", player),
                    ("event", "ftd"),
                    ("txn_id", txn),
                    ("amount", "40"),
                    ("currency", "EUR"),
                ])
                .await
        }
    };
    // Under the imported CPA plan (100 EUR from a first deposit of 20): a player the old
    // system paid CPA for earns none on its first deposit here; one it did not, does.
    let paid_before = ftd("p-003", "C-1").await;
    assert_eq!(commission_if_any(&tenant, &paid_before).await, None);
    let not_paid = ftd("p-002", "C-2").await;
    assert_eq!(commission_if_any(&tenant, &not_paid).await, Some(Decimal::new(100, 0)));
    // Revshare still pays for a player whose CPA was paid: 25 % of its net revenue.
    let revenue = tenant
        .postback_ok(&[
            ("player_id", "p-008"),
            ("event", "revenue"),
            ("txn_id", "C-3"),
            ("amount", "200"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(commission_if_any(&tenant, &revenue).await, Some(Decimal::new(50, 0)));
    let p008 = ftd("p-008", "C-4").await;
    assert_eq!(commission_if_any(&tenant, &p008).await, None);

    // A later export marks p-005 too: the player is updated, and its CPA (aff-101's plan,
    // 60 EUR) is not paid; leaving p-003 empty again does not reopen CPA.
    let later = tempfile::tempdir().expect("a temporary directory");
    for file in ["affiliates.csv", "campaigns.csv", "links.csv"] {
        std::fs::copy(format!("{}/{file}", dir("program")), later.path().join(file)).expect("copy");
    }
    let players = std::fs::read_to_string(format!("{}/players.csv", dir("program"))).expect("players");
    let players = players
        .replace("NS-casino_01,\np-006", "NS-casino_01,true\np-006")
        .replace("NL-sports_01,true", "NL-sports_01,");
    std::fs::write(later.path().join("players.csv"), players).expect("write players");
    let changed = import_ok(&app, "cpashop", later.path().to_str().expect("UTF-8"), &[]).await;
    assert_eq!(tally(&changed, "players"), "0 created, 1 updated, 9 unchanged");
    let p005 = ftd("p-005", "C-5").await;
    assert_eq!(commission_if_any(&tenant, &p005).await, None);
    let p003 = tenant
        .postback_ok(&[
            ("player_id", "p-003"),
            ("event", "deposit"),
            ("txn_id", "C-6"),
            ("amount", "500"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(commission_if_any(&tenant, &p003).await, None);

    // p-001's first deposit (50 EUR) is in the history: a live deposit of 10 is not taken for
    // its first, so the plan's "first deposit of 20" sees the 50 and the player qualifies.
    let p001 = tenant
        .postback_ok(&[
            ("player_id", "p-001"),
            ("event", "deposit"),
            ("txn_id", "C-7"),
            ("amount", "10"),
            ("currency", "EUR"),
        ])
        .await;
    assert_eq!(commission_if_any(&tenant, &p001).await, Some(Decimal::new(100, 0)));
}
