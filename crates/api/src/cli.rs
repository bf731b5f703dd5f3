use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use clickledger_domain::fraud::IpList;

use crate::config::{DatabaseArgs, ListenArgs, LogFormat, ServeArgs};

/// Clickledger: real-time affiliate attribution.
#[derive(Debug, Parser)]
#[command(name = "clickledger", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database, then serve HTTP and GraphQL (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the GraphQL schema (SDL), or write it to a file.
    ExportSchema {
        /// Where to write the schema; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Exit 0 when the server at the configured listen address answers `GET /healthz`, 1
    /// otherwise (for container health checks).
    Healthcheck(ListenArgs),
    /// Tenants, from the host (works with `--disable-signup`).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users, from the host.
    #[command(subcommand)]
    User(UserCommand),
    /// Fraud rules' data, from the host.
    #[command(subcommand)]
    Fraud(FraudCommand),
    /// Generate believable traffic (clicks, registrations, deposits, trades, chargebacks)
    /// against a running server, until Ctrl-C or for `--duration` seconds.
    Simulate(crate::simulate::SimulateArgs),
    /// Import a program exported from another tracker (CSV files; see docs/MIGRATION.md) into
    /// a tenant, in one transaction; a re-run updates what the last one wrote.
    Import {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The directory holding the export's CSV files.
        #[arg(long)]
        dir: PathBuf,
        /// The old system's name, recorded on the opening balances; the directory's name when
        /// absent.
        #[arg(long)]
        source: Option<String>,
        /// Print what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and its owner; prints the owner's generated password.
    Create {
        /// The tenant's slug (what `login` asks for).
        #[arg(long)]
        slug: String,
        /// The owner's e-mail address.
        #[arg(long)]
        owner_email: String,
        /// The tenant's display name; the slug when absent.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum FraudCommand {
    /// Load an address list for the whole instance from a file of CIDR ranges (one per line,
    /// IPv4 or IPv6, `#` comments); replaces what the list held. A bad line is reported with
    /// its file and line, and nothing is written.
    ImportIpRanges {
        /// The file of ranges.
        file: PathBuf,
        /// Which list the file replaces.
        #[arg(long, value_enum)]
        list: ListArg,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// The address lists, as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListArg {
    Datacenter,
    Vpn,
    Blocklist,
}

impl From<ListArg> for IpList {
    fn from(list: ListArg) -> IpList {
        match list {
            ListArg::Datacenter => IpList::Datacenter,
            ListArg::Vpn => IpList::Vpn,
            ListArg::Blocklist => IpList::Blocklist,
        }
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Set a new, generated password for a user and print it.
    ResetPassword {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => exit_naming_env_variable(err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            None => crate::server::run(cli.serve).await,
            Some(Command::Serve(args)) => crate::server::run(args).await,
            Some(Command::Migrate(args)) => {
                init_logging(LogFormat::Text);
                migrate(args).await
            }
            Some(Command::ExportSchema { out }) => export_schema(out),
            Some(Command::Healthcheck(listen)) => healthcheck(listen).await,
            Some(Command::Tenant(TenantCommand::Create { slug, owner_email, name, database })) => {
                init_logging(LogFormat::Text);
                let db = open_migrated(&database).await?;
                let created = crate::admin::create_tenant(
                    &db,
                    crate::admin::NewTenantArgs {
                        slug: &slug,
                        owner_email: &owner_email,
                        name: name.as_deref(),
                    },
                )
                .await;
                db.close().await;
                print!("{}", created?);
                Ok(())
            }
            Some(Command::User(UserCommand::ResetPassword { tenant, email, database })) => {
                init_logging(LogFormat::Text);
                let db = open_migrated(&database).await?;
                let reset = crate::admin::reset_password(&db, &tenant, &email).await;
                db.close().await;
                print!("{}", reset?);
                Ok(())
            }
            Some(Command::Fraud(FraudCommand::ImportIpRanges { file, list, database })) => {
                init_logging(LogFormat::Text);
                // The file is read and checked before the database is opened: a bad one
                // changes nothing anywhere.
                let (ranges, lines) = read_ranges(&file)?;
                let db = open_migrated(&database).await?;
                let list = IpList::from(list);
                let replaced = clickledger_persistence::ip_lists::replace(&db, list, &ranges).await;
                db.close().await;
                replaced?;
                println!(
                    "{list} list: {lines} ranges from {}, stored as {} disjoint ranges",
                    file.display(),
                    ranges.len()
                );
                Ok(())
            }
            Some(Command::Simulate(args)) => {
                init_logging(LogFormat::Text);
                crate::simulate::run(args).await
            }
            Some(Command::Import { tenant, dir, source, dry_run, database }) => {
                init_logging(LogFormat::Text);
                let db = open_migrated(&database).await?;
                let args = crate::import::ImportArgs {
                    tenant: &tenant,
                    dir: &dir,
                    source: source.as_deref(),
                    dry_run,
                };
                let imported = crate::import::run(&db, args).await;
                db.close().await;
                print!("{}", imported?);
                Ok(())
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a ranges file; every bad line is named by file and line.
fn read_ranges(
    file: &std::path::Path,
) -> anyhow_like::Result<(Vec<clickledger_domain::fraud::IpRange>, usize)> {
    let text =
        std::fs::read_to_string(file).map_err(|err| format!("cannot read {}: {err}", file.display()))?;
    clickledger_domain::fraud::parse_ranges(&text).map_err(|errors| {
        errors
            .iter()
            .map(|error| format!("{}:{}: {}", file.display(), error.line, error.message))
            .collect::<Vec<_>>()
            .join("\n")
            .into()
    })
}

async fn migrate(args: DatabaseArgs) -> anyhow_like::Result {
    let db = open_migrated(&args).await?;
    tracing::info!("migrations applied");
    db.close().await;
    Ok(())
}

/// Connects, migrates, and seals stored secrets under the current key; the last step also
/// proves the configured keys open every stored secret before anything new is written.
pub(crate) async fn open_migrated(args: &DatabaseArgs) -> anyhow_like::Result<clickledger_persistence::Db> {
    let db =
        clickledger_persistence::Db::connect(&args.database_url, crate::secret_key::key_ring(args)?).await?;
    db.migrate().await?;
    let resealed = clickledger_persistence::secrets::reseal_all(&db).await?;
    if resealed > 0 {
        tracing::info!(resealed, "stored secrets sealed under the current secret key");
    }
    Ok(db)
}

/// GETs `/healthz` on the listen address (a wildcard address is asked on loopback).
async fn healthcheck(listen: ListenArgs) -> anyhow_like::Result {
    let mut address = listen.address;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{address}/healthz");
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build()?;
    let response = client.get(&url).send().await.map_err(|err| format!("{url}: {err}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()).into());
    }
    println!("{url}: {}", response.status());
    Ok(())
}

fn export_schema(out: Option<PathBuf>) -> anyhow_like::Result {
    let sdl = crate::graphql::sdl();
    match out {
        Some(path) => {
            std::fs::write(&path, sdl).map_err(|err| format!("cannot write {}: {err}", path.display()))?
        }
        None => print!("{sdl}"),
    }
    Ok(())
}

pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    // Colours only for a person at a terminal: escape codes in a file or a log pipeline are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    // A second init (tests that call into the library twice) is harmless; ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Prints clap's error and exits, naming the environment variable when the bad value came
/// from one: clap names only the flag, and an operator who wrote `CLICKLEDGER_NO_DEMO=maybe`
/// into a manifest would look for a `--no-demo` that is nowhere.
fn exit_naming_env_variable(err: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(err.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation)
        && let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg)
    {
        // `--no-demo`, or `--listen <LISTEN>`.
        let long = arg.split_whitespace().next().unwrap_or_default().trim_start_matches("--");
        let on_command_line = std::env::args()
            .any(|given| given == format!("--{long}") || given.starts_with(&format!("--{long}=")));
        if let Some(variable) = env_variable_of(&Cli::command(), long)
            && !on_command_line
            && std::env::var_os(&variable).is_some()
        {
            let rendered = err.render().to_string();
            let named = format!("environment variable {variable} (flag --{long})");
            eprint!("{}", rendered.replacen(&format!("'{arg}'"), &named, 1));
            std::process::exit(2);
        }
    }
    err.exit()
}

/// The environment variable behind flag `--long`, in this command or any subcommand.
fn env_variable_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|variable| variable.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_variable_of(sub, long)))
}

/// Start-up errors only need to be printed; a boxed error keeps `main` simple.
pub(crate) mod anyhow_like {
    pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
