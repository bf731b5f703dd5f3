//! The Markdown report: printed, and appended to BENCHMARKS.md.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::cpu::CpuUse;
use crate::latency::LatencyOutcome;
use crate::load::{Errors, Outcome};
use crate::pgbench::Pgbench;

pub const CLICK_RATIO_TARGET: f64 = 0.60;
pub const LATENCY_P99_TARGET_MS: f64 = 20.0;
/// Postbacks/s on SQLite, each kind.
pub const SQLITE_POSTBACKS_TARGET: f64 = 10_000.0;
/// Postbacks/s ÷ `pgbench` single-row inserts/s on PostgreSQL, each kind.
pub const PGBENCH_RATIO_TARGET: f64 = 0.5;
pub const FRAME_CPU_TARGET_MICROS: f64 = 3.0;
/// Postbacks/s with every fraud rule on ÷ the same with every rule off (issue 10).
pub const RULES_ON_OFF_TARGET: f64 = 0.90;
/// The bare 302's rate on the slower machine of this kind (2026-12-01), on which every target
/// must hold: a run's baseline well above it measured a faster machine.
pub const SLOWER_MACHINE_BASELINE: u64 = 69_000;

/// How the click write-behind kept up: every answered click persisted, and when.
#[derive(Debug, Clone)]
pub struct Drain {
    pub clicks: u64,
    pub recorded: u64,
    /// From the end of the click load until everything was persisted (or the wait gave up).
    pub after: Duration,
}

pub struct Clicks {
    pub connections: usize,
    pub rounds: u32,
    pub server: Outcome,
    pub baseline: Outcome,
    pub server_cpu: CpuUse,
    pub baseline_cpu: CpuUse,
    pub drain: Option<Drain>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostbackKind {
    /// A `deposit` with a unique `txn_id` on a real click ID.
    Deposits,
    /// A `registration` with a unique `player_id` on a real click ID: each binds a new player.
    Registrations,
}

impl PostbackKind {
    pub fn describe(self) -> &'static str {
        match self {
            PostbackKind::Deposits => "deposits, unique `txn_id`, real click ID",
            PostbackKind::Registrations => "registrations of new players, unique `player_id`, real click ID",
        }
    }
}

pub struct PostbackLoad {
    pub kind: PostbackKind,
    pub concurrency: usize,
    pub outcome: Outcome,
    pub cpu: CpuUse,
}

/// The postback loads again with every fraud rule off.
pub struct RulesOff {
    pub deposits: PostbackLoad,
    pub registrations: PostbackLoad,
}

/// The bare poem 302 under the click load, measured in the same run as what it is read
/// against.
pub struct BaselineTurn {
    pub connections: usize,
    pub outcome: Outcome,
    pub cpu: CpuUse,
}

pub struct Postbacks {
    pub deposits: PostbackLoad,
    pub registrations: PostbackLoad,
    pub rules_off: RulesOff,
    /// This machine's speed, measured just before the postback loads.
    pub baseline: BaselineTurn,
    /// PostgreSQL only: the same run's `pgbench` baseline.
    pub pgbench: Option<Pgbench>,
}

pub struct Run {
    pub date: String,
    pub backend: String,
    pub command: String,
    pub commit: Option<String>,
    pub database: String,
    pub server_bin: String,
    pub server_profile: String,
    pub loadgen_profile: &'static str,
    pub loadgen_threads: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub load_before: String,
    pub load_after: String,
    pub server_log_lines: usize,
    pub server_log_tail: String,
    pub server_clean_exit: bool,
    pub clicks: Option<Clicks>,
    pub postbacks: Option<Postbacks>,
    pub latency: Option<LatencyOutcome>,
    pub stats: Option<crate::stats::StatsOutcome>,
}

pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown memory".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_else(|_| "unknown kernel".to_owned());
    Machine {
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model,
        memory,
        kernel,
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(micros: u64) -> String {
    let ms = micros as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// "p50 / p99 / max" in ms.
pub fn percentiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "– (no samples)".to_owned();
    }
    format!("{} / {} / {} ms", ms(h.value_at_quantile(0.50)), ms(h.value_at_quantile(0.99)), ms(h.max()))
}

/// Server CPU time per answered postback: the figure that does not depend on headroom.
fn cpu_per_postback(load: &PostbackLoad) -> String {
    match load.cpu.server.filter(|_| load.outcome.ok > 0) {
        Some(cores) => {
            let micros = cores * load.outcome.window.as_secs_f64() * 1e6 / load.outcome.ok as f64;
            format!("{} µs", thousands(micros.round() as u64))
        }
        None => "?".to_owned(),
    }
}

fn cores(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.2}")).unwrap_or_else(|| "?".to_owned())
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

fn errors_cell(errors: &Errors) -> String {
    if errors.count == 0 { "0".to_owned() } else { format!("**{}**", thousands(errors.count)) }
}

impl Run {
    pub fn markdown(&self, machine: &Machine) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## {} · {}\n", self.date, self.backend);
        let _ = writeln!(md, "- Command: `{}`", self.command);
        if let Some(commit) = &self.commit {
            let _ = writeln!(md, "- Commit: {commit}");
        }
        let _ = writeln!(
            md,
            "- Machine: {} cores (`nproc`), {}, {}, {}",
            machine.cores, machine.cpu_model, machine.memory, machine.kernel
        );
        let _ = writeln!(
            md,
            "- Load average (1/5/15 min): {} before, {} after{}",
            self.load_before,
            self.load_after,
            match self.load_before.split_whitespace().next().and_then(|l| l.parse::<f64>().ok()) {
                Some(load) if load > 1.5 => " — **the machine was busy when the run started**",
                _ => "",
            }
        );
        let _ = writeln!(
            md,
            "- Server: `{}`, {} build, `RUST_LOG=warn`; {}",
            self.server_bin, self.server_profile, self.database
        );
        let _ = writeln!(
            md,
            "- Load generator: `clickledger-bench` ({} build, {} runtime threads) on the **same {} cores** \
             as the server, over loopback; figures include its cost",
            self.loadgen_profile, self.loadgen_threads, machine.cores
        );
        let _ = writeln!(
            md,
            "- Windows: {} s measured per scenario{}; {} s of unmeasured warm-up before each window of scenarios 1 and 2\n",
            trim_float(self.duration.as_secs_f64()),
            match &self.clicks {
                Some(c) => format!(" (scenario 1: per target, in {} alternating turns each)", c.rounds),
                None => String::new(),
            },
            trim_float(self.warmup.as_secs_f64())
        );

        let _ = writeln!(md, "| # | scenario | figure | result | target |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        if let Some(c) = &self.clicks {
            let ratio = c.server.rate() / c.baseline.rate().max(f64::MIN_POSITIVE);
            let scenario = format!(
                "click redirects, {} keep-alive connections, {} alternating rounds",
                c.connections, c.rounds
            );
            let _ = writeln!(
                md,
                "| 1 | {scenario} | Clickledger `GET /c/{{code}}` → 302 | **{} /s**; latency p50 / p99 / max {}; errors {} | |",
                thousands(c.server.rate().round() as u64),
                percentiles(&c.server.latency),
                errors_cell(&c.server.errors)
            );
            let _ = writeln!(
                md,
                "| 1 | | bare poem handler, fixed 302 (baseline process) | **{} /s**; latency p50 / p99 / max {}; errors {} | |",
                thousands(c.baseline.rate().round() as u64),
                percentiles(&c.baseline.latency),
                errors_cell(&c.baseline.errors)
            );
            let _ = writeln!(
                md,
                "| 1 | | Clickledger ÷ baseline | **{:.0} %** | ≥ {:.0} %: {} |",
                ratio * 100.0,
                CLICK_RATIO_TARGET * 100.0,
                verdict(ratio >= CLICK_RATIO_TARGET)
            );
            if let Some(drain) = &c.drain {
                let persisted = if drain.recorded >= drain.clicks {
                    format!(
                        "all {} clicks, at most {:.2} s after the load stopped",
                        thousands(drain.clicks),
                        drain.after.as_secs_f64()
                    )
                } else {
                    format!(
                        "**{} of {}** after waiting {:.0} s",
                        thousands(drain.recorded),
                        thousands(drain.clicks),
                        drain.after.as_secs_f64()
                    )
                };
                let _ = writeln!(md, "| 1 | | clicks persisted by the write-behind | {persisted} | all |");
            }
            let _ = writeln!(
                md,
                "| 1 | | CPU cores used: server, load generator (baseline process, load generator) | {}, {} ({}, {}) | |",
                cores(c.server_cpu.server),
                cores(c.server_cpu.loadgen),
                cores(c.baseline_cpu.server),
                cores(c.baseline_cpu.loadgen)
            );
        }
        if let Some(p) = &self.postbacks {
            let _ = writeln!(
                md,
                "| 2 | same-run baseline: bare poem 302, {} connections | 302 answers; CPU cores used: baseline | **{} /s**; {} | the slower machine: {} /s |",
                p.baseline.connections,
                thousands(p.baseline.outcome.rate().round() as u64),
                cores(p.baseline.cpu.server),
                thousands(SLOWER_MACHINE_BASELINE),
            );
            for load in [&p.deposits, &p.registrations] {
                let rate = load.outcome.rate();
                let target = match &p.pgbench {
                    Some(_) => String::new(),
                    None => format!(
                        "≥ {} /s: {}",
                        thousands(SQLITE_POSTBACKS_TARGET as u64),
                        verdict(rate >= SQLITE_POSTBACKS_TARGET && load.outcome.errors.count == 0)
                    ),
                };
                let scenario = format!("postbacks: {}, {} in flight", load.kind.describe(), load.concurrency);
                let _ = writeln!(
                    md,
                    "| 2 | {scenario} | 200 answers | **{} /s** | {target} |",
                    thousands(rate.round() as u64)
                );
                let _ = writeln!(
                    md,
                    "| 2 | | latency p50 / p99 / max | {} | |",
                    percentiles(&load.outcome.latency)
                );
                let _ = writeln!(
                    md,
                    "| 2 | | non-200 answers and failures | {} | 0 |",
                    errors_cell(&load.outcome.errors)
                );
                let _ = writeln!(
                    md,
                    "| 2 | | CPU cores used: server, load generator; server CPU per postback | {}, {}; {} | |",
                    cores(load.cpu.server),
                    cores(load.cpu.loadgen),
                    cpu_per_postback(load),
                );
            }
            for (on, off) in
                [(&p.deposits, &p.rules_off.deposits), (&p.registrations, &p.rules_off.registrations)]
            {
                let ratio = on.outcome.rate() / off.outcome.rate().max(f64::MIN_POSITIVE);
                let _ = writeln!(
                    md,
                    "| 2 | the same {}, every fraud rule off | 200 answers; CPU cores used: server; rules on ÷ off | **{} /s**; {}; **{:.0} %** | on ÷ off ≥ {:.0} %: {} |",
                    on.kind.describe().split(',').next().unwrap_or_default(),
                    thousands(off.outcome.rate().round() as u64),
                    cores(off.cpu.server),
                    ratio * 100.0,
                    RULES_ON_OFF_TARGET * 100.0,
                    verdict(ratio >= RULES_ON_OFF_TARGET && off.outcome.errors.count == 0)
                );
            }
            if let Some(pgbench) = &p.pgbench {
                let scenario = format!(
                    "`pgbench`, one single-row INSERT per transaction, {} clients, {} s, the bench's database",
                    pgbench.clients, pgbench.seconds
                );
                match &pgbench.inserts_per_second {
                    Ok(inserts) => {
                        let _ = writeln!(
                            md,
                            "| 2 | {scenario} | inserts (transactions) | **{} /s** | |",
                            thousands(inserts.round() as u64)
                        );
                        let deposits = p.deposits.outcome.rate() / inserts.max(f64::MIN_POSITIVE);
                        let registrations = p.registrations.outcome.rate() / inserts.max(f64::MIN_POSITIVE);
                        let _ = writeln!(
                            md,
                            "| 2 | | postbacks/s ÷ pgbench inserts/s: deposits, registrations | **{deposits:.2}, {registrations:.2}** | ≥ {PGBENCH_RATIO_TARGET}: {} |",
                            verdict(deposits.min(registrations) >= PGBENCH_RATIO_TARGET)
                        );
                    }
                    Err(err) => {
                        let _ = writeln!(
                            md,
                            "| 2 | {scenario} | inserts | **failed**: {} | |",
                            err.replace('|', "\\|")
                        );
                    }
                }
            }
        }
        if let Some(l) = &self.latency {
            let scenario = format!(
                "postback → subscriber, {} subscribers, {} postbacks/s open loop for {} s",
                l.subscribers,
                thousands(l.rate.round() as u64),
                trim_float(l.duration.as_secs_f64())
            );
            let p99 = if l.latency.is_empty() {
                f64::INFINITY
            } else {
                l.latency.value_at_quantile(0.99) as f64 / 1000.0
            };
            let _ = writeln!(
                md,
                "| 3 | {scenario} | latency p50 / p99 / max, all (postback, subscriber) pairs | **{}** | p99 ≤ {:.0} ms: {} |",
                percentiles(&l.latency),
                LATENCY_P99_TARGET_MS,
                verdict(p99 <= LATENCY_P99_TARGET_MS && l.missing() == 0)
            );
            let _ = writeln!(
                md,
                "| 3 | | events received / expected (missing, duplicates) | {} / {} ({}, {}) | 0 missing |",
                thousands(l.received),
                thousands(l.expected),
                if l.missing() == 0 { "0".to_owned() } else { format!("**{}**", thousands(l.missing())) },
                thousands(l.duplicates)
            );
            let achieved = l.sent.saturating_sub(1) as f64 / l.send_span.as_secs_f64().max(1e-9);
            let _ = writeln!(
                md,
                "| 3 | | postbacks sent / answered 200; achieved rate; pacer lateness p99 / max | {} / {}; {} /s; {} ms / {} ms | |",
                thousands(l.sent),
                thousands(l.accepted),
                thousands(achieved.round() as u64),
                ms(l.pacer_lag.value_at_quantile(0.99)),
                ms(l.pacer_lag.max())
            );
            let _ = writeln!(
                md,
                "| 3 | | postback HTTP latency p50 / p99 / max | {} | |",
                percentiles(&l.postback_latency)
            );
            let _ = writeln!(
                md,
                "| 3 | | fan-out alone: the postback's 200 → subscriber has the frame, p50 / p99 / max ({} % of frames came first) | {} | |",
                (l.before_answer * 100).checked_div(l.received).unwrap_or(0),
                percentiles(&l.after_answer)
            );
            let _ = writeln!(
                md,
                "| 3 | | CPU cores used while sending: server, load generator | {}, {} | |",
                cores(l.cpu.server),
                cores(l.cpu.loadgen)
            );
            let f = &l.frame_cpu;
            let per_frame = match (f.micros_per_frame(), f.with_subscribers, f.without_subscribers) {
                (Some(micros), Some(with), Some(without)) => format!(
                    "**{micros:.2} µs** ({with:.2} s − {without:.2} s over {} frames)",
                    thousands(f.frames)
                ),
                _ => "? (no /proc figures or no frames)".to_owned(),
            };
            let _ = writeln!(
                md,
                "| 3 | | server CPU per delivered frame: (server CPU s, first postback → last frame) − (same postbacks, same rate, no subscribers, just before) ÷ frames | {per_frame} | ≤ {FRAME_CPU_TARGET_MICROS:.0} µs: {} |",
                verdict(f.micros_per_frame().is_some_and(|m| m <= FRAME_CPU_TARGET_MICROS))
            );
        }

        if let Some(s) = &self.stats {
            s.markdown(&mut md);
        }
        let mut notes = Vec::new();
        if let Some(c) = &self.clicks {
            note_errors(&mut notes, "Scenario 1, Clickledger", &c.server.errors);
            note_errors(&mut notes, "Scenario 1, baseline", &c.baseline.errors);
        }
        if let Some(p) = &self.postbacks {
            note_errors(&mut notes, "Scenario 2, deposits", &p.deposits.outcome.errors);
            note_errors(&mut notes, "Scenario 2, registrations", &p.registrations.outcome.errors);
            note_errors(&mut notes, "Scenario 2, deposits, rules off", &p.rules_off.deposits.outcome.errors);
            note_errors(
                &mut notes,
                "Scenario 2, registrations, rules off",
                &p.rules_off.registrations.outcome.errors,
            );
        }
        if let Some(l) = &self.latency {
            note_errors(&mut notes, "Scenario 3, postbacks", &l.postback_errors);
            note_errors(&mut notes, "Scenario 3, subscribers", &l.subscriber_errors);
        }
        if self.server_log_lines > 0 {
            notes.push(format!(
                "The server wrote {} lines to standard error (`RUST_LOG=warn`); the last ones:\n\n```text\n{}\n```",
                self.server_log_lines, self.server_log_tail
            ));
        }
        if !self.server_clean_exit {
            notes.push("The server did not exit cleanly on SIGTERM.".to_owned());
        }
        if !notes.is_empty() {
            let _ = writeln!(md);
            for note in notes {
                let _ = writeln!(md, "- {note}");
            }
        }
        md
    }
}

fn note_errors(notes: &mut Vec<String>, what: &str, errors: &Errors) {
    if errors.count > 0 {
        notes.push(format!(
            "{what}: {} errors: {}",
            thousands(errors.count),
            errors.summary().replace('|', "\\|")
        ));
    }
}

fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value}") }
}

const HEADER: &str = "# Benchmarks

Figures measured by `crates/bench` (`clickledger-bench`); each section below is one run of it,
appended by the run itself. How to reproduce, from the repository root:

```sh
cargo run --release -p clickledger-bench -- --database sqlite
cargo run --release -p clickledger-bench -- --database postgres://postgres@127.0.0.1:5432/test
```

The command builds the release server first (`cargo build --release -p clickledger-api`, a no-op when
it is up to date), starts it on 127.0.0.1 with a fresh database (a SQLite file in a temp dir, or a
fresh `bench_<random>` PostgreSQL database, dropped at the end), `--jwt-secret` and `--no-demo`, sets
up a tenant through GraphQL, then runs three scenarios (`--scenario clicks|postbacks|latency|all`,
`--duration`, `--warmup`; `--help` lists the rest):

1. **Click redirects/s.** 64 keep-alive connections (`--click-connections`), one request in flight
   each, `GET /c/{code}` over 16 links, each request with a browser `User-Agent` (8 common
   ones in turn) and no visitor cookie, counting 302s, and the same load against a bare poem
   handler answering a fixed 302 with the same headers. The baseline runs as a separate process
   (`clickledger-bench baseline`, a default multi-thread tokio runtime like the server's), so
   neither server shares a runtime with the load generator. The two take turns (`--click-rounds`,
   default 2 rounds of baseline then server, each getting half the duration after its own
   warm-up), so a change in background load hits both alike. Target: the server reaches ≥ 60 % of
   the baseline. After each server turn the bench waits until the write-behind has persisted every
   answered click (`clicks_total` = `clicks_recorded_total` in `/metrics`).
2. **Postbacks/s sustained.** 256 postbacks in flight (`--postback-concurrency`), any answer but
   200 an error, twice: `deposit`s with a unique `txn_id`, then `registration`s that each bind a
   new player (unique `player_id`), both on real click IDs taken from redirects' Locations, each
   carrying fraud signals (`ip`, `device_id`, `email_hash`, `user_agent`, distinct per postback,
   so every rule's lookup runs and finds nothing; the loads start once the click IDs, minted at
   setup, are older than the click-injection floors), with every fraud rule of the tenant on and
   off (`updateFraudSettings`) in turns: on, off, off, on, each turn half the window, so that
   the database growing over the run weighs on both alike; target: rules on ÷ rules off ≥ 90 %
   for each kind.
   Before the loads, the bare 302 of scenario 1 runs for half a window: the same run's measure of
   how fast the machine is (the targets must hold where it reaches 69,000/s). Then one unmeasured
   turn of each kind, and on PostgreSQL an `ANALYZE` (a fresh database's tables are planned as
   if empty until autovacuum analyzes them, a minute or more in). Each load's server
   CPU per answered postback is reported, which does not depend on the machine's headroom.
   Target on SQLite: ≥ 10,000/s each. On PostgreSQL the same run also measures `pgbench` (shipped
   with PostgreSQL) inserting single rows, one transaction each, from 16 clients into a scratch
   table of the bench's database; target: postbacks/s ÷ those inserts/s ≥ 0.5 for each kind.
3. **Postback → subscriber latency.** 100 WebSocket subscribers (`graphql-transport-ws`, owner
   token in `connection_init`) on `conversions { conversion { txnId } }`; postbacks at a steady
   1,000/s (`--rate`), paced open-loop from a 1 ms tick (a slow answer does not delay the next
   postback); for each (postback, subscriber) pair, the time from handing the postback to the HTTP
   client until that subscriber has the frame. Target: p99 ≤ 20 ms with nothing missing. Just
   before, the same number of postbacks goes out at the same rate with nobody subscribed; the
   server's CPU seconds (`/proc/<pid>/stat`) from the first postback to the last frame, minus
   those of the run without subscribers, divided by the frames delivered, is the **server CPU per
   delivered frame**. Target: ≤ 3 µs.

The load generator runs on the same machine and the same cores as the server (loopback only), so
every figure includes its cost; the CPU rows say how the cores were shared. The load average is
recorded because other work on the machine changes the figures.
";

/// Appends a section, creating the file with its header first if needed.
pub fn record(path: &Path, section: &str) -> std::io::Result<()> {
    let exists = path.exists();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    if !exists {
        writeln!(file, "{HEADER}")?;
    }
    writeln!(file, "{section}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ms(1_234), "1.23");
        assert_eq!(ms(12_345), "12.3");
        assert_eq!(ms(123_456), "123");
    }
}
