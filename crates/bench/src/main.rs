//! `clickledger-bench`: the benchmark load generator.
//!
//! One command boots the release `clickledger` binary on loopback against a fresh database
//! (a SQLite file in a temp dir, or a fresh PostgreSQL database dropped at the end), sets up a
//! tenant through GraphQL, drives three scenarios, prints a Markdown table and appends it to
//! `BENCHMARKS.md`:
//!
//! 1. click redirects per second, against the bare-poem baseline in the same run;
//! 2. sustained postbacks per second with their latency: deposits, and registrations that
//!    each bind a new player; on PostgreSQL against `pgbench` single-row inserts, same run;
//! 3. postback → subscriber latency at a steady, open-loop rate, and the server CPU per
//!    delivered frame.
//!
//! and, only when asked for (`--scenario stats`, it seeds a big tenant first), the `stats`
//! report's latency over 10 million clicks and 200,000 conversions (see [`stats`]).
//!
//! Every scenario is bounded in time (and so in count) and stops by itself.

mod baseline;
mod cpu;
mod latency;
mod load;
mod pgbench;
mod report;
mod run;
mod server;
mod setup;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T = ()> = std::result::Result<T, Error>;

/// Benchmark the Clickledger server: click redirects, postbacks, postback → subscriber latency.
#[derive(Debug, Parser)]
#[command(name = "clickledger-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the baseline for scenario 1: a bare poem handler answering every `GET /c/{code}`
    /// with a fixed 302. The benchmark starts it itself, as a separate process.
    Baseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Clicks,
    Postbacks,
    Latency,
    /// The `stats` report over a seeded tenant (not part of `all`).
    Stats,
    /// Scenarios 1 to 3.
    All,
}

impl Scenario {
    pub fn includes(self, other: Scenario) -> bool {
        self == other || (self == Scenario::All && other != Scenario::Stats)
    }
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// `sqlite` (a fresh file in a temp dir), or a PostgreSQL URL whose user may create
    /// databases: a fresh `bench_<random>` database is created there and dropped at the end.
    #[arg(long, default_value = "sqlite")]
    pub database: String,

    /// Which scenario(s) to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,

    /// Measured seconds of each scenario (scenario 1 measures this long on each target, split
    /// into --click-rounds turns).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds of unmeasured load before each measured window of scenarios 1 (each turn) and 2.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,

    /// Scenario 1: keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub click_connections: usize,

    /// Scenario 1: the measured time is split into this many rounds of baseline then
    /// Clickledger, so that other activity on the machine hits both alike.
    #[arg(long, default_value_t = 2)]
    pub click_rounds: u32,

    /// Scenario 2: postbacks in flight (one per keep-alive connection).
    #[arg(long, default_value_t = 256)]
    pub postback_concurrency: usize,

    /// Scenario 3: WebSocket subscribers (graphql-transport-ws, owner token).
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,

    /// Scenario 3: postbacks per second, paced open-loop.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,

    /// Scenario stats: clicks to seed (one conversion per 50 clicks).
    #[arg(long, default_value_t = 10_000_000)]
    pub stats_clicks: i64,

    /// Tracking links to create; the click load rotates over them.
    #[arg(long, default_value_t = 16)]
    pub links: usize,

    /// The server binary. Default: `<target dir>/release/clickledger`, built first with
    /// `cargo build --release -p clickledger-api` (a no-op when it is up to date).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,

    /// Do not run `cargo build` for the default server binary; use it as it is.
    #[arg(long)]
    pub no_build: bool,

    /// Where to append the results. Default: BENCHMARKS.md at the repository root.
    #[arg(long)]
    pub output: Option<PathBuf>,

    /// Print the results only; append them nowhere.
    #[arg(long)]
    pub no_record: bool,

    /// Directory for the SQLite file and the server log (a fresh temp dir inside it).
    /// Default: the system temp dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Worker threads of the load generator's runtime. Default: one per core.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl BenchArgs {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }

    fn validate(&self) -> Result {
        if !(self.duration > 0.0 && self.duration <= 3600.0) {
            return Err("--duration must be in (0, 3600] seconds".into());
        }
        if !(0.0..=600.0).contains(&self.warmup) {
            return Err("--warmup must be in [0, 600] seconds".into());
        }
        if !(self.rate > 0.0 && self.rate <= 100_000.0) {
            return Err("--rate must be in (0, 100000] per second".into());
        }
        if !(1_000..=100_000_000).contains(&self.stats_clicks) {
            return Err("--stats-clicks must be between 1000 and 100000000".into());
        }
        if !(1..=100).contains(&self.click_rounds) {
            return Err("--click-rounds must be between 1 and 100".into());
        }
        for (name, value, max) in [
            ("--click-connections", self.click_connections, 10_000),
            ("--postback-concurrency", self.postback_concurrency, 10_000),
            ("--subscribers", self.subscribers, 10_000),
            ("--links", self.links, 1_000),
        ] {
            if value == 0 || value > max {
                return Err(format!("{name} must be between 1 and {max}").into());
            }
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Baseline { listen }) => baseline::serve(listen),
        None => {
            if let Err(err) = cli.bench.validate() {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = cli.bench.threads {
                builder.worker_threads(threads.max(1));
            }
            let runtime = match builder.enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("error: cannot start the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run::run(cli.bench)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
