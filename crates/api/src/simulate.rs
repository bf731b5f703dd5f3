//! `clickledger simulate`: believable traffic against a running server, so the dashboard
//! moves. Clicks on the tenant's active links (`GET /c/{code}`, with varied user agents,
//! languages, sub-IDs, sources, creatives and landing pages), and, for some of them, the
//! operator's postbacks: registrations (with a country), first deposits, deposits, revenue,
//! Forex trades with lots, and now and then a chargeback. Everything goes over HTTP, as a
//! browser and an operator's backend would send it; the database is only read, for the
//! links to click and, without `--api-key`, the demo's API key.

use std::time::Duration;

use clickledger_domain::status::ActiveStatus;
use clickledger_persistence::directory::Directory;
use clickledger_persistence::repo::{Campaigns, LinkFilter, TrackingLinks};
use clickledger_persistence::{Db, PageRequest, Scope, settings};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::anyhow_like;
use crate::config::DatabaseArgs;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Clicks a second (conversions follow some of them).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key for the postbacks; the demo's (kept, sealed, in the database) when absent.
    #[arg(long, env = "CLICKLEDGER_SIMULATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Stop after this many seconds; without it, run until Ctrl-C.
    #[arg(long)]
    pub duration: Option<f64>,
    /// The tenant whose active links are clicked.
    #[arg(long, default_value = crate::demo::DEMO_SLUG)]
    pub tenant: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
];
/// Countries with the language their visitors' browsers ask for; earlier ones more often.
const COUNTRIES: &[(&str, &str)] = &[
    ("DE", "de-DE,de;q=0.9,en;q=0.6"),
    ("GB", "en-GB,en;q=0.9"),
    ("CA", "en-CA,en;q=0.9,fr;q=0.5"),
    ("BR", "pt-BR,pt;q=0.9"),
    ("IN", "en-IN,hi;q=0.8"),
    ("AU", "en-AU,en;q=0.9"),
    ("FR", "fr-FR,fr;q=0.9"),
    ("ES", "es-ES,es;q=0.9"),
    ("MX", "es-MX,es;q=0.9"),
    ("JP", "ja-JP,ja;q=0.9"),
];
const SUB1: &[&str] =
    &["fb-lookalike", "google-brand", "tiktok-ugc", "seo-review", "telegram-vip", "email-weekly"];
const SOURCES: &[&str] = &["facebook", "google", "tiktok", "seo", "telegram", "email"];
const CREATIVES: &[&str] = &["banner-300x250", "banner-728x90", "video-15s", "native-story", "push-bonus"];
const LANDING_PAGES: &[&str] = &["lp-bonus", "lp-slots", "lp-quiz", "lp-academy"];
const INSTRUMENTS: &[&str] = &["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500", "BTCUSD"];

/// A link to click, and whether its campaign trades (Forex/CFD) rather than plays.
struct Target {
    code: String,
    trading: bool,
}

/// A simulated player, after its registration.
#[derive(Clone)]
struct Player {
    id: String,
    trading: bool,
    country: &'static str,
    ip: String,
    user_agent: &'static str,
}

enum Step {
    Register { click_id: String, trading: bool, country: &'static str, ip: String, user_agent: &'static str },
    FirstDeposit(Player),
    Deposit(Player),
    Revenue(Player),
    Trade(Player),
    Chargeback(Player, String),
}

#[derive(Default)]
struct Counts {
    clicks: u64,
    registrations: u64,
    ftds: u64,
    deposits: u64,
    revenue: u64,
    trades: u64,
    chargebacks: u64,
    refused: u64,
    failed: u64,
    last_failure: Option<String>,
}

impl Counts {
    fn posted(&mut self, kind: &str, accepted: bool) {
        let count = match (kind, accepted) {
            (_, false) => &mut self.refused,
            ("registration", _) => &mut self.registrations,
            ("ftd", _) => &mut self.ftds,
            ("deposit", _) => &mut self.deposits,
            ("revenue", _) => &mut self.revenue,
            ("trade", _) => &mut self.trades,
            _ => &mut self.chargebacks,
        };
        *count += 1;
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} clicks, {} registrations, {} FTDs, {} deposits, {} revenue, {} trades, {} chargebacks",
            self.clicks,
            self.registrations,
            self.ftds,
            self.deposits,
            self.revenue,
            self.trades,
            self.chargebacks
        )?;
        if self.refused > 0 {
            write!(f, ", {} refused", self.refused)?;
        }
        if let Some(failure) = &self.last_failure {
            write!(f, ", {} failed (last: {failure})", self.failed)?;
        }
        Ok(())
    }
}

/// What a finished request reports back to the loop.
enum Outcome {
    Clicked { click_id: Option<String>, target: usize, country: usize, ip: String, user_agent: &'static str },
    Posted { kind: &'static str, accepted: bool },
    KeyRefused(String),
    Unreachable(String),
}

pub async fn run(args: SimulateArgs) -> anyhow_like::Result {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 10_000.0) {
        return Err("--rate must be more than 0 and at most 10000 clicks a second".into());
    }
    let base = args.url.trim_end_matches('/').to_owned();
    let (targets, api_key) = read_setup(&args).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| format!("no server answers at {base}: {err}"))?;
    println!(
        "simulating {} clicks/s on {} links of tenant `{}` at {base}{}",
        args.rate,
        targets.len(),
        args.tenant,
        match args.duration {
            Some(secs) => format!(" for {secs} s"),
            None => "; Ctrl-C stops".to_owned(),
        }
    );

    let mut rng = StdRng::from_os_rng();
    let (done_tx, mut done) = mpsc::unbounded_channel::<Outcome>();
    let mut tasks = JoinSet::new();
    let mut pending: Vec<(Instant, Step)> = Vec::new();
    let mut counts = Counts::default();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report = tokio::time::interval(Duration::from_secs(10));
    report.tick().await;
    let deadline = args.duration.map(|secs| Instant::now() + Duration::from_secs_f64(secs.max(0.0)));
    let stop = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    let post = Poster { client: client.clone(), base: base.clone(), key: api_key, done: done_tx.clone() };

    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = ticks.tick() => {
                // A click now, and whatever postbacks have come due.
                let target = rng.random_range(0..targets.len());
                let country = weighted_country(&mut rng);
                let ip = public_ip(&mut rng);
                let user_agent = *USER_AGENTS.choose(&mut rng).unwrap_or(&USER_AGENTS[0]);
                let query = [
                    ("sub1", pick(&mut rng, SUB1)),
                    ("sub2", format!("adset-{:02}", rng.random_range(1..=12))),
                    ("source", pick(&mut rng, SOURCES)),
                    ("creative", pick(&mut rng, CREATIVES)),
                    ("lp", pick(&mut rng, LANDING_PAGES)),
                ];
                let url = format!("{base}/c/{}", targets[target].code);
                let (client, done) = (client.clone(), done_tx.clone());
                tasks.spawn(async move {
                    let answer = client
                        .get(&url)
                        .query(&query)
                        .header("User-Agent", user_agent)
                        .header("Accept-Language", COUNTRIES[country].1)
                        // Believed only with --trusted-proxies; it spreads the clicks' addresses.
                        .header("X-Forwarded-For", &ip)
                        .send()
                        .await;
                    let _ = done.send(match answer {
                        Ok(response) => Outcome::Clicked {
                            click_id: click_id_of(&response),
                            target,
                            country,
                            ip,
                            user_agent,
                        },
                        Err(err) => Outcome::Unreachable(err.to_string()),
                    });
                });
                let now = Instant::now();
                let mut due = Vec::new();
                let mut index = 0;
                while index < pending.len() {
                    if pending[index].0 <= now {
                        due.push(pending.swap_remove(index).1);
                    } else {
                        index += 1;
                    }
                }
                for step in due {
                    post.send(step, &mut rng, &mut tasks, &mut pending);
                }
            }
            Some(outcome) = done.recv() => match outcome {
                Outcome::Clicked { click_id, target, country, ip, user_agent } => {
                    counts.clicks += 1;
                    // About one visitor in four registers, a few seconds later.
                    if let Some(click_id) = click_id && rng.random_bool(0.25) {
                        let step = Step::Register {
                            click_id,
                            trading: targets[target].trading,
                            country: COUNTRIES[country].0,
                            ip,
                            user_agent,
                        };
                        pending.push((later(&mut rng, 0.5, 4.0), step));
                    }
                }
                Outcome::Posted { kind, accepted } => counts.posted(kind, accepted),
                Outcome::KeyRefused(answer) => {
                    return Err(format!("the server refused the API key: {answer}").into());
                }
                // A server restarting is waited out; the report line says so.
                Outcome::Unreachable(err) => {
                    counts.failed += 1;
                    counts.last_failure = Some(err);
                }
            },
            _ = report.tick() => println!("simulate: {counts}"),
        }
        // Finished requests are reaped as they come, so a long run holds only those in flight.
        while tasks.try_join_next().is_some() {}
    }
    // Requests already sent get a moment to finish, so the counts are what the server has.
    let _ =
        tokio::time::timeout(Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} })
            .await;
    drop(done_tx);
    drop(post);
    while let Ok(outcome) = done.try_recv() {
        match outcome {
            Outcome::Clicked { .. } => counts.clicks += 1,
            Outcome::Posted { kind, accepted } => counts.posted(kind, accepted),
            Outcome::KeyRefused(_) => counts.refused += 1,
            Outcome::Unreachable(err) => {
                counts.failed += 1;
                counts.last_failure = Some(err);
            }
        }
    }
    println!("simulate finished: {counts}");
    Ok(())
}

/// The tenant's active links and the API key, from the database.
async fn read_setup(args: &SimulateArgs) -> anyhow_like::Result<(Vec<Target>, String)> {
    let db = Db::connect(&args.database.database_url, crate::secret_key::key_ring(&args.database)?).await?;
    let read = async {
        let tenant = Directory::new(&db).tenant_by_slug(&args.tenant).await.map_err(|err| match err {
            clickledger_persistence::Error::NotFound => format!(
                "no tenant `{}` in {} (start the server there first)",
                args.tenant, args.database.database_url
            ),
            other => other.to_string(),
        })?;
        let scope = Scope::staff(tenant.id);
        let first = PageRequest { after: None, first: Some(100) };
        let campaigns = Campaigns::scoped(&db, scope).list(first).await?.items;
        let links = TrackingLinks::scoped(&db, scope).list(LinkFilter::default(), first).await?.items;
        let targets: Vec<Target> = links
            .into_iter()
            .filter(|link| link.status == ActiveStatus::Active)
            .map(|link| {
                let name = campaigns
                    .iter()
                    .find(|campaign| campaign.id == link.campaign_id)
                    .map(|campaign| campaign.name.to_lowercase())
                    .unwrap_or_default();
                let trading = ["forex", "cfd", "trading"].iter().any(|word| name.contains(word));
                Target { code: link.code, trading }
            })
            .collect();
        if targets.is_empty() {
            return Err(format!("tenant `{}` has no active tracking links", args.tenant).into());
        }
        let key = match &args.api_key {
            Some(key) => key.clone(),
            None => settings::get_secret(&db, crate::demo::DEMO_API_KEY_SETTING).await?.ok_or(
                "no demo API key is kept in this database (seeded by an older version, or with --no-demo): \
                 pass --api-key",
            )?,
        };
        anyhow_like::Result::Ok((targets, key))
    };
    let read = read.await;
    db.close().await;
    read
}

/// Sends postbacks, and schedules each player's next steps.
struct Poster {
    client: reqwest::Client,
    base: String,
    key: String,
    done: mpsc::UnboundedSender<Outcome>,
}

impl Poster {
    /// Sends one step's postback now, and schedules what the player does next.
    fn send(
        &self,
        step: Step,
        rng: &mut StdRng,
        tasks: &mut JoinSet<()>,
        pending: &mut Vec<(Instant, Step)>,
    ) {
        let mut params: Vec<(&'static str, String)> = Vec::new();
        let kind: &'static str;
        match step {
            Step::Register { click_id, trading, country, ip, user_agent } => {
                kind = "registration";
                let player = Player {
                    id: format!("sim-{}", uuid::Uuid::new_v4().simple()),
                    trading,
                    country,
                    ip,
                    user_agent,
                };
                params.push(("click_id", click_id));
                params.push(("player_id", player.id.clone()));
                params.push(("country", player.country.to_owned()));
                params.push(("ip", player.ip.clone()));
                params.push(("user_agent", player.user_agent.to_owned()));
                // Somewhat under half of the players deposit.
                if rng.random_bool(0.45) {
                    pending.push((later(rng, 1.0, 8.0), Step::FirstDeposit(player)));
                }
            }
            Step::FirstDeposit(player) => {
                kind = "ftd";
                let txn = self.money(&mut params, rng, &player, 20, 500);
                follow_ups(rng, &player, &txn, pending);
            }
            Step::Deposit(player) => {
                kind = "deposit";
                let txn = self.money(&mut params, rng, &player, 10, 1_000);
                if rng.random_bool(0.03) {
                    pending.push((later(rng, 5.0, 60.0), Step::Chargeback(player, txn)));
                }
            }
            Step::Revenue(player) => {
                kind = "revenue";
                // The operator's net revenue from the player: mostly won, sometimes lost.
                let cents = if rng.random_bool(0.7) {
                    rng.random_range(500..40_000)
                } else {
                    -rng.random_range(500..25_000)
                };
                params.push(("player_id", player.id.clone()));
                params.push(("txn_id", txn_id(rng)));
                params.push(("amount", Decimal::new(cents, 2).to_string()));
                params.push(("currency", "USD".to_owned()));
            }
            Step::Trade(player) => {
                kind = "trade";
                params.push(("player_id", player.id.clone()));
                params.push(("txn_id", txn_id(rng)));
                params.push(("lots", Decimal::new(rng.random_range(1..500), 2).to_string()));
                params.push(("instrument", pick(rng, INSTRUMENTS)));
            }
            Step::Chargeback(player, original) => {
                kind = "chargeback";
                params.push(("player_id", player.id.clone()));
                params.push(("txn_id", original));
            }
        }
        params.push(("event", kind.to_owned()));
        params.push(("key", self.key.clone()));
        let (client, url, done) = (self.client.clone(), format!("{}/postback", self.base), self.done.clone());
        tasks.spawn(async move {
            let outcome = match client.get(&url).query(&params).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::UNAUTHORIZED => {
                    Outcome::KeyRefused(response.text().await.unwrap_or_default())
                }
                Ok(response) => Outcome::Posted { kind, accepted: response.status().is_success() },
                Err(err) => Outcome::Unreachable(err.to_string()),
            };
            let _ = done.send(outcome);
        });
    }

    /// A deposit's parameters (an amount between the bounds, in whole dollars); returns its transaction ID (for a later chargeback).
    fn money(
        &self,
        params: &mut Vec<(&'static str, String)>,
        rng: &mut StdRng,
        player: &Player,
        min_dollars: i64,
        max_dollars: i64,
    ) -> String {
        let txn = txn_id(rng);
        params.push(("player_id", player.id.clone()));
        params.push(("txn_id", txn.clone()));
        params.push((
            "amount",
            Decimal::new(rng.random_range(min_dollars * 100..max_dollars * 100), 2).to_string(),
        ));
        params.push(("currency", "USD".to_owned()));
        params.push(("ip", player.ip.clone()));
        txn
    }
}

/// After a first deposit: more deposits, revenue (a casino player) or trades (a trader),
/// spread over the next minute, and now and then a chargeback of the first deposit.
fn follow_ups(rng: &mut StdRng, player: &Player, first_txn: &str, pending: &mut Vec<(Instant, Step)>) {
    for _ in 0..rng.random_range(0..=2) {
        pending.push((later(rng, 3.0, 60.0), Step::Deposit(player.clone())));
    }
    for _ in 0..rng.random_range(1..=4) {
        let step = if player.trading { Step::Trade(player.clone()) } else { Step::Revenue(player.clone()) };
        pending.push((later(rng, 2.0, 45.0), step));
    }
    if player.trading {
        pending.push((later(rng, 5.0, 60.0), Step::Revenue(player.clone())));
    }
    if rng.random_bool(0.04) {
        pending.push((later(rng, 10.0, 90.0), Step::Chargeback(player.clone(), first_txn.to_owned())));
    }
}

fn later(rng: &mut StdRng, min_secs: f64, max_secs: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(rng.random_range(min_secs..max_secs))
}

fn pick(rng: &mut StdRng, values: &[&str]) -> String {
    values.choose(rng).copied().unwrap_or_default().to_owned()
}

fn txn_id(rng: &mut StdRng) -> String {
    format!("sim-t{:016x}", rng.random::<u64>())
}

/// Earlier countries more often: index i has weight (n - i).
fn weighted_country(rng: &mut StdRng) -> usize {
    let n = COUNTRIES.len();
    let total = n * (n + 1) / 2;
    let mut roll = rng.random_range(0..total);
    for index in 0..n {
        let weight = n - index;
        if roll < weight {
            return index;
        }
        roll -= weight;
    }
    0
}

/// A random address outside the private, loopback and documentation ranges.
fn public_ip(rng: &mut StdRng) -> String {
    const FIRST: &[u8] = &[31, 46, 62, 78, 82, 89, 91, 104, 151, 176, 185, 188, 212, 213];
    format!(
        "{}.{}.{}.{}",
        FIRST.choose(rng).copied().unwrap_or(82),
        rng.random_range(0..=255),
        rng.random_range(0..=255),
        rng.random_range(1..=254)
    )
}

/// The click ID the redirect carries to the landing page (`click_id=` in its query), as an
/// operator's site would read it.
fn click_id_of(response: &reqwest::Response) -> Option<String> {
    let location = response.headers().get(reqwest::header::LOCATION)?.to_str().ok()?;
    let url = url::Url::parse(location).ok()?;
    url.query_pairs().find(|(name, _)| name == "click_id").map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_weighted_towards_the_first() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = [0u32; COUNTRIES.len()];
        for _ in 0..10_000 {
            seen[weighted_country(&mut rng)] += 1;
        }
        assert!(seen.iter().all(|&count| count > 0), "{seen:?}");
        assert!(seen[0] > seen[COUNTRIES.len() - 1] * 5, "{seen:?}");
    }
}
