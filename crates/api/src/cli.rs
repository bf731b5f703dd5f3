use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, LogFormat, ServeArgs};

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
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
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

async fn migrate(args: DatabaseArgs) -> anyhow_like::Result {
    let db = clickledger_persistence::Db::connect(&args.database_url).await?;
    db.migrate().await?;
    tracing::info!("migrations applied");
    db.close().await;
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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests that call into the library twice) is harmless; ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Start-up errors only need to be printed; a boxed error keeps `main` simple.
pub(crate) mod anyhow_like {
    pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
