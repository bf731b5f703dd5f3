//! One benchmark run: the server binary, a fresh database, the server, a tenant, the chosen
//! scenarios, the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{AUTHORIZATION, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode};

use crate::load::{MakeRequest, Outcome, closed_loop};
use crate::report::{self, BaselineTurn, Clicks, Drain, PostbackKind, PostbackLoad, Postbacks, RulesOff};
use crate::server::{Database, Process, SERVER_READY_PREFIX, server_args};
use crate::{BenchArgs, Result, Scenario, baseline, cpu, latency, pgbench, setup, stats};

/// How long to wait for the write-behind to persist the clicks after the click load.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(args: BenchArgs) -> Result {
    let root = workspace_root();
    let (server_bin, server_profile) = server_binary(&args, &root)?;
    let bench_exe = std::env::current_exe()?;
    let machine = report::machine();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let load_before = report::loadavg();
    if load_before.split_whitespace().next().and_then(|l| l.parse::<f64>().ok()).is_some_and(|l| l > 1.5) {
        eprintln!("note: load average is {load_before}: the machine is busy; figures will be lower");
    }

    let dir = match &args.data_dir {
        Some(parent) => tempfile::Builder::new().prefix("clickledger-bench-").tempdir_in(parent)?,
        None => tempfile::Builder::new().prefix("clickledger-bench-").tempdir()?,
    };
    let database = Database::create(&args.database, dir.path()).await?;
    eprintln!("database: {}", database.describe());
    let outcome = tokio::select! {
        outcome = scenarios(&args, &server_bin, &bench_exe, &database, dir.path()) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    database.drop_database().await;
    let results = outcome?;

    let run = report::Run {
        date,
        backend: if database.is_postgres() { "PostgreSQL".into() } else { "SQLite".into() },
        command: command_line(),
        commit: git_commit(&root),
        database: database.describe(),
        server_bin: display_path(&server_bin, &root),
        server_profile,
        loadgen_profile: if cfg!(debug_assertions) { "debug (unoptimised!)" } else { "release" },
        loadgen_threads: args.threads.unwrap_or(machine.cores),
        warmup: args.warmup(),
        duration: args.duration(),
        load_before,
        load_after: report::loadavg(),
        server_log_lines: results.log_lines,
        server_log_tail: results.log_tail,
        server_clean_exit: results.clean_exit,
        clicks: results.clicks,
        postbacks: results.postbacks,
        latency: results.latency,
        stats: results.stats,
    };
    let markdown = run.markdown(&machine);
    println!("\n{markdown}");
    if !args.no_record {
        let path = args.output.clone().unwrap_or_else(|| root.join("BENCHMARKS.md"));
        report::record(&path, &markdown).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        eprintln!("appended to {}", path.display());
    }
    Ok(())
}

struct Results {
    clicks: Option<Clicks>,
    postbacks: Option<Postbacks>,
    latency: Option<latency::LatencyOutcome>,
    stats: Option<stats::StatsOutcome>,
    log_lines: usize,
    log_tail: String,
    clean_exit: bool,
}

async fn scenarios(
    args: &BenchArgs,
    server_bin: &Path,
    bench_exe: &Path,
    database: &Database,
    dir: &Path,
) -> Result<Results> {
    let server = Process::spawn(
        "clickledger",
        server_bin,
        &server_args(database.url()),
        dir.join("server.log"),
        SERVER_READY_PREFIX,
    )
    .await?;
    eprintln!("server: {} (pid {})", server.base, server.pid);
    let client = setup::client()?;
    let tenant = setup::create(&client, &server.base, args.links).await?;
    let click_ids = setup::click_ids(&client, &server.base, &tenant.codes).await?;
    let minted = Instant::now();
    setup::check_postback(&client, &server.base, &tenant.api_key, &click_ids[0]).await?;
    eprintln!("tenant ready: {} links, API key, owner token", tenant.codes.len());

    let mut results = Results {
        clicks: None,
        postbacks: None,
        latency: None,
        stats: None,
        log_lines: 0,
        log_tail: String::new(),
        clean_exit: true,
    };
    let outcome = async {
        if args.scenario.includes(Scenario::Clicks) {
            results.clicks = Some(clicks(args, &server, &client, &tenant.codes, bench_exe, dir).await?);
        }
        if args.scenario.includes(Scenario::Postbacks) {
            let key = &tenant.api_key;
            let half = args.duration() / 2;
            let baseline = postbacks_baseline(args, bench_exe, dir, &tenant.codes).await?;
            // One unmeasured turn of each kind, then fresh planner statistics: a fresh
            // PostgreSQL database's tables are planned as if empty until autovacuum analyzes
            // them (a minute or more after the first writes), longer than the measured turns.
            for kind in [PostbackKind::Deposits, PostbackKind::Registrations] {
                postbacks(args, half, &server, key, &click_ids, kind).await;
            }
            database.analyze().await?;
            // Conversions within the click-injection floors of their click are all flagged,
            // and "rules on" would pay for flagging every one. Honest traffic is mostly clean,
            // so the loads start once the clicks are older than both floors.
            tokio::time::sleep_until((minted + click_injection_floor()).into()).await;
            // The same loads with every fraud rule on and off, to show what the rules cost. The
            // two take turns (on, off, off, on; each half the window), so that what drifts over
            // the run (the database growing, background load) weighs on both alike: measured
            // one after the other, "off" ran on a bigger database and looked dearer than "on".
            let (mut on, mut off): (Vec<[PostbackLoad; 2]>, Vec<[PostbackLoad; 2]>) =
                (Vec::new(), Vec::new());
            for rules_on in [true, false, false, true] {
                setup::fraud_rules(&client, &server.base, &tenant.token, rules_on).await?;
                let turn = [
                    postbacks(args, half, &server, key, &click_ids, PostbackKind::Deposits).await,
                    postbacks(args, half, &server, key, &click_ids, PostbackKind::Registrations).await,
                ];
                if rules_on { on.push(turn) } else { off.push(turn) }
            }
            let [deposits, registrations] = combined(on);
            let [off_deposits, off_registrations] = combined(off);
            let rules_off = RulesOff { deposits: off_deposits, registrations: off_registrations };
            let pgbench = match database {
                Database::Postgres { url, .. } => Some(pgbench::inserts_per_second(url, args, dir).await),
                Database::Sqlite { .. } => None,
            };
            results.postbacks = Some(Postbacks { deposits, registrations, rules_off, baseline, pgbench });
        }
        if args.scenario.includes(Scenario::Latency) {
            eprintln!(
                "scenario 3: {} postbacks/s for {:?} without subscribers, then with {} subscribers",
                args.rate,
                args.duration(),
                args.subscribers
            );
            let outcome = latency::run(latency::Params {
                base: server.base.clone(),
                token: tenant.token.clone(),
                api_key: tenant.api_key.clone(),
                click_ids: click_ids.clone(),
                subscribers: args.subscribers,
                rate: args.rate,
                duration: args.duration(),
                server_pid: server.pid,
            })
            .await?;
            results.latency = Some(outcome);
        }
        if args.scenario.includes(Scenario::Stats) {
            let outcome =
                stats::run(&client, &server.base, database, args.stats_clicks, args.duration()).await?;
            results.stats = Some(outcome);
        }
        Ok::<_, crate::Error>(())
    }
    .await;
    results.log_lines = server.log_lines();
    results.log_tail = server.log_tail(10);
    results.clean_exit = server.stop().await;
    outcome?;
    Ok(results)
}

/// GET requests with `Host` (and optionally a bearer token) for the hyper connections.
fn get(addr: std::net::SocketAddr, path: String, bearer: Option<&str>) -> Request<Empty<Bytes>> {
    let mut request = Request::get(path).header(HOST, addr.to_string());
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Empty::new()).expect("a valid request")
}

/// The user agents clicks come with, in turn: common browsers, so the server's bot check and
/// device parsing run as they do for real traffic (real traffic repeats a few thousand).
pub const BROWSERS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S928B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
];

fn click_requests(addr: std::net::SocketAddr, codes: &[String]) -> MakeRequest {
    let paths: Vec<String> = codes.iter().map(|code| format!("/c/{code}")).collect();
    Arc::new(move |worker, seq| {
        let turn = worker + seq as usize;
        let mut request = get(addr, paths[turn % paths.len()].clone(), None);
        request.headers_mut().insert(USER_AGENT, HeaderValue::from_static(BROWSERS[turn % BROWSERS.len()]));
        request
    })
}

async fn clicks(
    args: &BenchArgs,
    server: &Process,
    client: &reqwest::Client,
    codes: &[String],
    bench_exe: &Path,
    dir: &Path,
) -> Result<Clicks> {
    let baseline = spawn_baseline(bench_exe, dir).await?;
    // The two targets take turns, so that a change in what else the machine is doing hits
    // both alike. The baseline goes first in each round, while the server is idle; after each
    // server turn the write-behind has to finish persisting its clicks before the next turn.
    let rounds = args.click_rounds;
    let segment = args.duration().div_f64(rounds as f64);
    eprintln!(
        "scenario 1: {} connections; {rounds} rounds of baseline {} then Clickledger {}, {segment:?} each \
         after {:?} warm-up",
        args.click_connections,
        baseline.base,
        server.base,
        args.warmup()
    );
    let (mut baseline_total, mut server_total) = (Outcome::empty(), Outcome::empty());
    let (mut baseline_cpu, mut server_cpu) = (Vec::new(), Vec::new());
    let mut drain: Option<Drain> = None;
    for _ in 0..rounds {
        let (outcome, cpu) = click_turn(args, &baseline, codes, segment).await;
        baseline_total.absorb(outcome);
        baseline_cpu.push(cpu);
        let (outcome, cpu) = click_turn(args, server, codes, segment).await;
        server_total.absorb(outcome);
        server_cpu.push(cpu);
        let drained = wait_for_clicks(client, &server.base).await;
        drain = match (drain, drained) {
            (Some(before), Some(now)) => Some(Drain { after: before.after.max(now.after), ..now }),
            (before, now) => now.or(before),
        };
    }
    baseline.stop().await;
    Ok(Clicks {
        connections: args.click_connections,
        rounds,
        server: server_total,
        baseline: baseline_total,
        server_cpu: cpu::mean(&server_cpu),
        baseline_cpu: cpu::mean(&baseline_cpu),
        drain,
    })
}

/// The longer of the default click-injection floors (registration, FTD), and a second.
fn click_injection_floor() -> Duration {
    let defaults = clickledger_domain::fraud::FraudSettings::default();
    Duration::from_secs(u64::from(defaults.registration_floor_secs.max(defaults.ftd_floor_secs)) + 1)
}

/// The bench's bare poem 302 server (`clickledger-bench baseline`): how fast this machine is.
async fn spawn_baseline(bench_exe: &Path, dir: &Path) -> Result<Process> {
    Process::spawn(
        "baseline",
        bench_exe,
        &["baseline".to_owned(), "--listen".to_owned(), "127.0.0.1:0".to_owned()],
        dir.join("baseline.log"),
        baseline::READY_PREFIX,
    )
    .await
}

/// The postbacks scenario's baseline: the bare 302 under the click load, for half a window,
/// so that its figures can be read against the machine they were measured on.
async fn postbacks_baseline(
    args: &BenchArgs,
    bench_exe: &Path,
    dir: &Path,
    codes: &[String],
) -> Result<BaselineTurn> {
    let baseline = spawn_baseline(bench_exe, dir).await?;
    let (outcome, cpu) = click_turn(args, &baseline, codes, args.duration() / 2).await;
    baseline.stop().await;
    Ok(BaselineTurn { connections: args.click_connections, outcome, cpu })
}

/// One warm-up and measured window of click load on one target.
async fn click_turn(
    args: &BenchArgs,
    target: &Process,
    codes: &[String],
    segment: Duration,
) -> (Outcome, cpu::CpuUse) {
    let start = Instant::now() + args.warmup();
    let end = start + segment;
    let cpu = cpu::sample_window(target.pid, start, end);
    let requests = click_requests(target.addr, codes);
    let outcome =
        closed_loop(target.addr, args.click_connections, start, end, StatusCode::FOUND, requests).await;
    (outcome, cpu.await.unwrap_or_default())
}

/// Each kind's turns as one load: their windows added up, their CPU use averaged (the
/// windows are equally long).
fn combined(turns: Vec<[PostbackLoad; 2]>) -> [PostbackLoad; 2] {
    let mut kinds = [Vec::new(), Vec::new()];
    for [deposits, registrations] in turns {
        kinds[0].push(deposits);
        kinds[1].push(registrations);
    }
    kinds.map(|loads| {
        let cpu = cpu::mean(&loads.iter().map(|load| load.cpu).collect::<Vec<_>>());
        let mut loads = loads.into_iter();
        let mut first = loads.next().expect("every kind has at least one turn");
        for load in loads {
            first.outcome.absorb(load.outcome);
        }
        PostbackLoad { cpu, ..first }
    })
}

async fn postbacks(
    args: &BenchArgs,
    duration: Duration,
    server: &Process,
    api_key: &str,
    click_ids: &[String],
    kind: PostbackKind,
) -> PostbackLoad {
    eprintln!(
        "scenario 2 ({}): {} postbacks in flight for {:?} + {:?} warm-up",
        kind.describe(),
        args.postback_concurrency,
        duration,
        args.warmup()
    );
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let addr = server.addr;
    let (key, ids) = (api_key.to_owned(), click_ids.to_vec());
    let make: MakeRequest = Arc::new(move |worker, seq| {
        let click_id = &ids[(worker + seq as usize) % ids.len()];
        let unique = format!("pb-{run}-{worker}-{seq}");
        let path = match kind {
            PostbackKind::Deposits => setup::postback_path(click_id, &unique),
            PostbackKind::Registrations => setup::registration_path(click_id, &unique),
        } + &setup::fraud_signals(&unique);
        get(addr, path, Some(&key))
    });
    let start = Instant::now() + args.warmup();
    let end = start + duration;
    let cpu = cpu::sample_window(server.pid, start, end);
    let outcome = closed_loop(addr, args.postback_concurrency, start, end, StatusCode::OK, make).await;
    let cpu = cpu.await.unwrap_or_default();
    PostbackLoad { kind, concurrency: args.postback_concurrency, outcome, cpu }
}

/// Polls /metrics until every answered click is persisted (`clicks_recorded_total` has
/// caught up with `clicks_total`).
async fn wait_for_clicks(client: &reqwest::Client, base: &str) -> Option<Drain> {
    let stopped = Instant::now();
    loop {
        let text = client.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
        let clicks = metric(&text, "clicks_total")?;
        let recorded = metric(&text, "clicks_recorded_total").unwrap_or(0);
        let after = stopped.elapsed();
        if recorded >= clicks || after > DRAIN_TIMEOUT {
            return Some(Drain { clicks, recorded, after });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sum of a counter's samples in Prometheus text format.
fn metric(text: &str, name: &str) -> Option<u64> {
    let mut found = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        *found.get_or_insert(0u64) += value as u64;
    }
    found
}

/// The repository root (this crate is `crates/bench`).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().and_then(Path::parent).unwrap_or(manifest);
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// The server binary and its build profile. By default the release binary next to this
/// one's target directory, brought up to date with `cargo build --release` first.
fn server_binary(args: &BenchArgs, root: &Path) -> Result<(PathBuf, String)> {
    if let Some(bin) = &args.server_bin {
        if !bin.is_file() {
            return Err(format!("--server-bin {} does not exist", bin.display()).into());
        }
        let profile = if bin.components().any(|c| c.as_os_str() == "release") {
            "release"
        } else if bin.components().any(|c| c.as_os_str() == "debug") {
            "debug"
        } else {
            "unknown (--server-bin)"
        };
        return Ok((bin.clone(), profile.to_owned()));
    }
    let exe = std::env::current_exe()?;
    let target_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot tell the target directory; pass --server-bin")?
        .to_path_buf();
    let bin = target_dir.join("release").join("clickledger");
    if !args.no_build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building the server: cargo build --release -p clickledger-api");
        let mut build = std::process::Command::new(cargo);
        build
            .args(["build", "--release", "-p", "clickledger-api", "--bin", "clickledger"])
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &target_dir);
        // `cargo run` describes this package in the environment; build scripts that watch
        // those variables (ring watches CARGO_MANIFEST_DIR) would otherwise rebuild.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&name.as_ref())
            {
                build.env_remove(name.as_ref());
            }
        }
        let status = build.status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) if bin.is_file() => {
                eprintln!("warning: cargo build failed ({status}); using {}", bin.display())
            }
            Err(err) if bin.is_file() => {
                eprintln!("warning: cannot run cargo ({err}); using {}", bin.display())
            }
            other => return Err(format!("cannot build the server ({other:?}); pass --server-bin").into()),
        }
    }
    if !bin.is_file() {
        return Err(format!("{} does not exist: run `cargo build --release` first", bin.display()).into());
    }
    Ok((bin, "release".to_owned()))
}

fn display_path(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// The command as typed, as near as can be told: through `cargo run` when cargo started us.
fn command_line() -> String {
    let quote = |arg: String| {
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$`\\|&;<>()*?".contains(c)) {
            format!("'{}'", arg.replace('\'', "'\\''"))
        } else {
            arg
        }
    };
    let args: Vec<String> = std::env::args().skip(1).map(quote).collect();
    let args = args.join(" ");
    let via_cargo = std::env::var_os("CARGO").is_some();
    let mut command = String::new();
    if let Ok(target) = std::env::var("CARGO_TARGET_DIR") {
        command.push_str(&format!("CARGO_TARGET_DIR={} ", quote(target)));
    }
    if via_cargo {
        let release = if cfg!(debug_assertions) { "" } else { "--release " };
        command.push_str(&format!("cargo run {release}-p clickledger-bench --"));
    } else {
        command.push_str("clickledger-bench");
    }
    if !args.is_empty() {
        command.push(' ');
        command.push_str(&args);
    }
    command
}

fn git_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{commit} (with uncommitted changes)") } else { commit })
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn reads_prometheus_counters() {
        let text = "# TYPE clicks_total counter\nclicks_total 1234\nclicks_recorded_total 1000\n\
                    http_requests_total{route=\"/c\"} 5\nhttp_requests_total{route=\"/p\"} 6\n";
        assert_eq!(metric(text, "clicks_total"), Some(1234));
        assert_eq!(metric(text, "clicks_recorded_total"), Some(1000));
        assert_eq!(metric(text, "http_requests_total"), Some(11));
        assert_eq!(metric(text, "nothing"), None);
    }
}
