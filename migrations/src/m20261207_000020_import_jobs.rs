//! Importing plans and running imports over GraphQL: a commission plan remembers the old
//! system's ID (so a re-run of an import finds it; unique per tenant, NULL for plans made
//! here), and `import_jobs` holds each `importProgram` job, so its status survives a restart
//! and every replica answers `importJob` alike.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum CommissionPlans {
    Table,
    TenantId,
    ExternalId,
}

#[derive(DeriveIden, Clone, Copy)]
enum ImportJobs {
    Table,
    Id,
    TenantId,
    Status,
    DryRun,
    /// The tally and the change list, as JSON; null until the job ends.
    Summary,
    /// `[{file, line, message}]` as JSON.
    Errors,
    CreatedBy,
    CreatedAt,
    /// Touched while the job runs: a RUNNING job whose heartbeat stopped was interrupted.
    HeartbeatAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CommissionPlans::Table)
                    .add_column(string_null(CommissionPlans::ExternalId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_commission_plans_tenant_external",
            CommissionPlans::Table,
            &[CommissionPlans::TenantId, CommissionPlans::ExternalId],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportJobs::Table)
                    .col(uuid(ImportJobs::Id).primary_key())
                    .col(uuid(ImportJobs::TenantId))
                    .col(string(ImportJobs::Status))
                    .col(boolean(ImportJobs::DryRun))
                    .col(text_null(ImportJobs::Summary))
                    .col(text(ImportJobs::Errors))
                    .col(uuid_null(ImportJobs::CreatedBy))
                    .col(timestamp_with_time_zone(ImportJobs::CreatedAt))
                    .col(timestamp_with_time_zone(ImportJobs::HeartbeatAt))
                    .col(timestamp_with_time_zone_null(ImportJobs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_import_jobs_tenant",
            ImportJobs::Table,
            &[ImportJobs::TenantId, ImportJobs::Id],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ImportJobs::Table).to_owned()).await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ux_commission_plans_tenant_external")
                    .table(CommissionPlans::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CommissionPlans::Table)
                    .drop_column(CommissionPlans::ExternalId)
                    .to_owned(),
            )
            .await
    }
}
