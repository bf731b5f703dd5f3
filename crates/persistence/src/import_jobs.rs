//! Import jobs (`importProgram`): a row per job, so its status survives a restart and every
//! replica answers `importJob` alike. A running job touches its heartbeat every few seconds;
//! one whose heartbeat stopped (its process ended mid-import, and with it the transaction)
//! is reported `failed`, and marked so by the next start of any replica. A job this process
//! runs is alive whatever its heartbeat says: on SQLite the import holds the only writer, so
//! no heartbeat can be written until it ends.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use clickledger_domain::ids::UserId;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};

use crate::entities::import_jobs;
use crate::import::ImportSummary;
use crate::repo::require_staff;
use crate::{Db, Error, Result, Scope};

/// How often a running job says it is alive.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);
/// A job silent this long is no longer running anywhere.
const STALE_AFTER_SECONDS: i64 = 15;
/// The statuses of a job that has not ended.
const UNFINISHED: [JobStatus; 2] = [JobStatus::Pending, JobStatus::Running];
/// The error of a job whose process ended before it did.
pub const INTERRUPTED: &str = "the import was interrupted (the server restarted); nothing was written";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "pending" => Ok(JobStatus::Pending),
            "running" => Ok(JobStatus::Running),
            "succeeded" => Ok(JobStatus::Succeeded),
            "failed" => Ok(JobStatus::Failed),
            _ => Err(Error::Corrupt("import job status".to_owned())),
        }
    }
}

/// One problem of a job: the file and line (0 when it is about no line), as the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ImportJob {
    pub id: uuid::Uuid,
    pub status: JobStatus,
    pub dry_run: bool,
    /// Set when the job succeeded.
    pub summary: Option<ImportSummary>,
    pub errors: Vec<JobError>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A tenant's import jobs; staff only (the API allows owners alone).
pub struct ImportJobs<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> ImportJobs<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        ImportJobs { db, scope }
    }

    pub async fn create(&self, dry_run: bool, by: UserId) -> Result<ImportJob> {
        require_staff(&self.scope)?;
        let now = Utc::now();
        let row = import_jobs::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            tenant_id: Set(self.scope.tenant().uuid()),
            status: Set(JobStatus::Pending.as_str().to_owned()),
            dry_run: Set(dry_run),
            summary: Set(None),
            errors: Set("[]".to_owned()),
            created_by: Set(Some(by.uuid())),
            created_at: Set(now),
            heartbeat_at: Set(now),
            finished_at: Set(None),
        }
        .insert(self.db.writer())
        .await?;
        job(row, now, false)
    }

    /// The job, if it is this tenant's. From the readers, which see every commit (SQLite's
    /// share the writer's file; PostgreSQL's are the writer's pool), and never wait for the
    /// writer the import itself may be holding.
    pub async fn get(&self, id: uuid::Uuid) -> Result<ImportJob> {
        require_staff(&self.scope)?;
        let row = import_jobs::Entity::find()
            .filter(import_jobs::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(import_jobs::Column::Id.eq(id))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)?;
        let here = self.db.jobs_running_here().contains(row.id);
        job(row, Utc::now(), here)
    }

    /// Says, until the guard is dropped, that this process is running the job.
    pub fn run_here(&self, id: uuid::Uuid) -> RunningGuard {
        self.db.jobs_running_here().insert(id)
    }

    /// Marks the job running, or says it is still alive. Never after it ended: a beat that
    /// lands after `finish` must not make a finished job look running again.
    pub async fn heartbeat(&self, id: uuid::Uuid) -> Result<()> {
        require_staff(&self.scope)?;
        import_jobs::Entity::update_many()
            .set(import_jobs::ActiveModel {
                status: Set(JobStatus::Running.as_str().to_owned()),
                heartbeat_at: Set(Utc::now()),
                ..Default::default()
            })
            .filter(import_jobs::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(import_jobs::Column::Id.eq(id))
            .filter(import_jobs::Column::Status.is_in(UNFINISHED.map(JobStatus::as_str)))
            .exec(self.db.writer())
            .await?;
        Ok(())
    }

    /// Records how the job ended.
    pub async fn finish(
        &self,
        id: uuid::Uuid,
        outcome: std::result::Result<ImportSummary, Vec<JobError>>,
    ) -> Result<()> {
        let (status, summary, errors) = match outcome {
            Ok(summary) => (JobStatus::Succeeded, Some(summary), Vec::new()),
            Err(errors) => (JobStatus::Failed, None, errors),
        };
        let summary = summary
            .map(|s| serde_json::to_string(&s))
            .transpose()
            .map_err(|_| Error::Corrupt("import summary".to_owned()))?;
        let errors =
            serde_json::to_string(&errors).map_err(|_| Error::Corrupt("import errors".to_owned()))?;
        require_staff(&self.scope)?;
        let now = Utc::now();
        import_jobs::Entity::update_many()
            .set(import_jobs::ActiveModel {
                status: Set(status.as_str().to_owned()),
                summary: Set(summary),
                errors: Set(errors),
                heartbeat_at: Set(now),
                finished_at: Set(Some(now)),
                ..Default::default()
            })
            .filter(import_jobs::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(import_jobs::Column::Id.eq(id))
            .exec(self.db.writer())
            .await?;
        Ok(())
    }
}

/// At startup: jobs left pending or running by a process that ended are failed, not stuck.
pub async fn fail_interrupted(db: &Db) -> Result<u64> {
    let stale = Utc::now() - Duration::seconds(STALE_AFTER_SECONDS);
    let errors =
        serde_json::to_string(&[interrupted()]).map_err(|_| Error::Corrupt("import errors".to_owned()))?;
    let done = import_jobs::Entity::update_many()
        .set(import_jobs::ActiveModel {
            status: Set(JobStatus::Failed.as_str().to_owned()),
            errors: Set(errors),
            finished_at: Set(Some(Utc::now())),
            ..Default::default()
        })
        .filter(import_jobs::Column::Status.is_in(UNFINISHED.map(JobStatus::as_str)))
        .filter(import_jobs::Column::HeartbeatAt.lt(stale))
        .exec(db.writer())
        .await?;
    Ok(done.rows_affected)
}

fn interrupted() -> JobError {
    JobError { file: String::new(), line: 0, message: INTERRUPTED.to_owned() }
}

/// The import jobs running in this process.
#[derive(Debug, Clone, Default)]
pub struct RunningHere(Arc<Mutex<HashSet<uuid::Uuid>>>);

impl RunningHere {
    fn insert(&self, id: uuid::Uuid) -> RunningGuard {
        // A panic elsewhere cannot leave the set half-changed: take it as it is.
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id);
        RunningGuard { jobs: self.clone(), id }
    }

    fn contains(&self, id: uuid::Uuid) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).contains(&id)
    }
}

/// Removes its job from [`RunningHere`] when dropped, however the job ends.
#[must_use = "the job counts as running here only while the guard lives"]
pub struct RunningGuard {
    jobs: RunningHere,
    id: uuid::Uuid,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.jobs.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// `running_here`: this process runs the job, so it is running whatever its row says.
fn job(row: import_jobs::Model, now: DateTime<Utc>, running_here: bool) -> Result<ImportJob> {
    let mut status = JobStatus::parse(&row.status)?;
    let mut errors: Vec<JobError> =
        serde_json::from_str(&row.errors).map_err(|_| Error::Corrupt("import errors".to_owned()))?;
    let summary = row
        .summary
        .as_deref()
        .map(serde_json::from_str::<ImportSummary>)
        .transpose()
        .map_err(|_| Error::Corrupt("import summary".to_owned()))?;
    if UNFINISHED.contains(&status) {
        if running_here {
            status = JobStatus::Running;
        } else if row.heartbeat_at < now - Duration::seconds(STALE_AFTER_SECONDS) {
            // Its process ended and no replica has started since: failed all the same.
            status = JobStatus::Failed;
            errors.push(interrupted());
        }
    }
    Ok(ImportJob {
        id: row.id,
        status,
        dry_run: row.dry_run,
        summary,
        errors,
        created_at: row.created_at,
        finished_at: row.finished_at,
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::TransactionTrait;

    use super::*;
    use crate::test_support::{fresh_db, tenant};

    /// On SQLite a long import holds the only writer: neither its heartbeat nor a poll that
    /// read from the writer could get through until it ended.
    #[tokio::test]
    async fn a_job_this_process_runs_is_running_and_is_read_while_the_writer_is_busy() {
        let test = fresh_db("import_jobs").await;
        let db = &test.db;
        let tenant = tenant(db, "jobs").await;
        let jobs = ImportJobs::scoped(db, Scope::staff(tenant.id));
        let long_ago = Utc::now() - Duration::seconds(STALE_AFTER_SECONDS * 4);
        let row = import_jobs::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            tenant_id: Set(tenant.id.uuid()),
            status: Set(JobStatus::Pending.as_str().to_owned()),
            dry_run: Set(false),
            summary: Set(None),
            errors: Set("[]".to_owned()),
            created_by: Set(None),
            created_at: Set(long_ago),
            heartbeat_at: Set(long_ago),
            finished_at: Set(None),
        }
        .insert(db.writer())
        .await
        .expect("a job row");
        // Silent for a minute and run by no one: its process ended.
        assert_eq!(jobs.get(row.id).await.expect("the job").status, JobStatus::Failed);

        let running = jobs.run_here(row.id);
        let busy = db.writer().begin().await.expect("the writer");
        tenants_touch(&busy, tenant.id).await;
        let polled = tokio::time::timeout(std::time::Duration::from_secs(5), jobs.get(row.id))
            .await
            .expect("a poll does not wait for the writer")
            .expect("the job");
        assert_eq!((polled.status, polled.errors.len()), (JobStatus::Running, 0));
        busy.rollback().await.expect("rollback");

        drop(running);
        assert_eq!(jobs.get(row.id).await.expect("the job").status, JobStatus::Failed);
    }

    /// A write in `txn`, so that it holds the writer's lock on either database.
    async fn tenants_touch(txn: &sea_orm::DatabaseTransaction, tenant: clickledger_domain::ids::TenantId) {
        use sea_orm::sea_query::{Expr, ExprTrait};
        crate::entities::tenants::Entity::update_many()
            .col_expr(
                crate::entities::tenants::Column::EventSeq,
                Expr::col(crate::entities::tenants::Column::EventSeq).add(0),
            )
            .filter(crate::entities::tenants::Column::Id.eq(tenant.uuid()))
            .exec(txn)
            .await
            .expect("a write");
    }
}
