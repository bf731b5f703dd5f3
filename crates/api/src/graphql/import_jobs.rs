//! `importProgram` and `importJob`: the CLI's `clickledger import` over GraphQL, for owners.
//! A client sends the export's CSV files as text (`{name, content}`, what any client can build
//! from files it read), gets a job ID at once, and polls `importJob` for the outcome. The job
//! runs in this process; its row (`persistence::import_jobs`) carries the outcome, so every
//! replica answers alike and a restart leaves it FAILED, not RUNNING.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use clickledger_domain::migration::ImportErrors;
use clickledger_persistence::import::ImportSummary;
use clickledger_persistence::import_jobs::{self as store, HEARTBEAT, ImportJobs, JobError, JobStatus};
use clickledger_persistence::{Db, Scope};

use super::context::{principal, state};
use super::guard::Allow;
use crate::error::GqlResultExt;

/// The source an import job's opening entries name when the input gives none.
const DEFAULT_SOURCE: &str = "another tracker";

/// One file of the export: its name (`affiliates.csv`, …, as `docs/MIGRATION.md` lists them)
/// and its whole text.
#[derive(InputObject)]
pub struct ImportFileInput {
    pub name: String,
    pub content: String,
}

#[derive(InputObject)]
pub struct ImportProgramInput {
    /// The export's files; an absent file imports nothing of its kind.
    pub files: Vec<ImportFileInput>,
    /// Do the whole import and roll it back: the job reports the tally and each change.
    #[graphql(default = false)]
    pub dry_run: bool,
    /// The old system's name, written into each opening entry's reason.
    pub source: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ImportJobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// What one kind of row did (`kind`: affiliates, campaigns, links, players, balances, plans,
/// assignments, conversions).
#[derive(SimpleObject)]
pub struct ImportTally {
    pub kind: String,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// One problem of the export: `file:line: message` as the CLI prints it. Line 1 is a
/// file's header; line 0 is about no line (an unknown file name, an interrupted job).
#[derive(SimpleObject)]
pub struct ImportJobError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

#[derive(SimpleObject)]
pub struct ImportJob {
    pub id: ID,
    pub status: ImportJobStatus,
    pub dry_run: bool,
    /// Per kind of row; empty until the job succeeded.
    pub tally: Vec<ImportTally>,
    /// Each row created or updated, e.g. "create affiliate `aff-100` (affiliates.csv:2)"; for
    /// dry runs.
    pub changes: Vec<String>,
    /// Why the job failed; nothing was written then.
    pub errors: Vec<ImportJobError>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn tallies(summary: &ImportSummary) -> Vec<ImportTally> {
    summary
        .tallies()
        .into_iter()
        .map(|(kind, tally)| ImportTally {
            kind: kind.to_owned(),
            created: tally.created,
            updated: tally.updated,
            unchanged: tally.unchanged,
        })
        .collect()
}

impl From<store::ImportJob> for ImportJob {
    fn from(job: store::ImportJob) -> Self {
        let status = match job.status {
            JobStatus::Pending => ImportJobStatus::Pending,
            JobStatus::Running => ImportJobStatus::Running,
            JobStatus::Succeeded => ImportJobStatus::Succeeded,
            JobStatus::Failed => ImportJobStatus::Failed,
        };
        ImportJob {
            id: ID(job.id.to_string()),
            status,
            dry_run: job.dry_run,
            tally: job.summary.as_ref().map(tallies).unwrap_or_default(),
            changes: job.summary.map(|s| s.changes).unwrap_or_default(),
            errors: job
                .errors
                .into_iter()
                .map(|e| ImportJobError { file: e.file, line: e.line, message: e.message })
                .collect(),
            created_at: job.created_at,
            finished_at: job.finished_at,
        }
    }
}

#[derive(Default)]
pub struct ImportJobQuery;

#[Object]
impl ImportJobQuery {
    /// An import job of this tenant (owners only).
    #[graphql(guard = "Allow::OWNER")]
    async fn import_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ImportJob> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        // Any other shape is no job of anyone's: not found, like another tenant's.
        let id = uuid::Uuid::parse_str(&id).map_err(|_| crate::Error::NotFound.into_gql())?;
        ImportJobs::scoped(&state.db, principal.scope()).get(id).await.gql().map(ImportJob::from)
    }
}

#[derive(Default)]
pub struct ImportJobMutation;

#[Object]
impl ImportJobMutation {
    /// Imports a program exported from another tracker (the files `docs/MIGRATION.md`
    /// documents), as `clickledger import` does, in one transaction. Returns the job at once
    /// (PENDING); poll `importJob(id)` for its tally, changes and errors. Owners only.
    #[graphql(guard = "Allow::OWNER")]
    async fn import_program(
        &self,
        ctx: &Context<'_>,
        input: ImportProgramInput,
    ) -> async_graphql::Result<ImportJob> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        if input.files.is_empty() {
            return Err(crate::Error::bad_input("files", "give at least one file").into_gql());
        }
        let source = match input.source.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_SOURCE.to_owned(),
            Some(source) => clickledger_domain::validate::name(source, "source").gql()?,
        };
        let scope = principal.scope();
        let job = ImportJobs::scoped(&state.db, scope).create(input.dry_run, principal.user).await.gql()?;
        let files = input.files.into_iter().map(|f| (f.name, f.content)).collect();
        tokio::spawn(run(state.db.clone(), scope, job.id, files, source, input.dry_run));
        Ok(ImportJob::from(job))
    }
}

/// Runs one job to its end, recording the outcome on its row.
async fn run(
    db: Db,
    scope: Scope,
    id: uuid::Uuid,
    files: Vec<(String, String)>,
    source: String,
    dry_run: bool,
) {
    // Polls here see the job running whatever its heartbeat says (on SQLite, see below).
    let _running = ImportJobs::scoped(&db, scope).run_here(id);
    // A separate task: on SQLite its write waits while the import holds the writer.
    let beat = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT);
            loop {
                every.tick().await;
                if let Err(err) = ImportJobs::scoped(&db, scope).heartbeat(id).await {
                    tracing::warn!(job = %id, error = %err, "an import job's heartbeat failed");
                }
            }
        })
    };
    let export = crate::import::export_of_files(&files);
    let outcome = crate::import::import_export(&db, scope.tenant(), export, &source, dry_run).await;
    beat.abort();
    let outcome = outcome.map_err(|err| match err {
        clickledger_persistence::Error::Import(ImportErrors(errors)) => errors
            .into_iter()
            .map(|e| JobError { file: e.file.to_owned(), line: e.line, message: e.message })
            .collect(),
        other => {
            tracing::error!(job = %id, error = %other, "an import job failed");
            vec![JobError {
                file: String::new(),
                line: 0,
                message: "the import failed; nothing was written".into(),
            }]
        }
    });
    if let Err(err) = ImportJobs::scoped(&db, scope).finish(id, outcome).await {
        tracing::error!(job = %id, error = %err, "an import job's outcome could not be recorded");
    }
}
