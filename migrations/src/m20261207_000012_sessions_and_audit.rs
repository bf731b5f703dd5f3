//! Revocable sessions and the audit log.
//!
//! - `users.session_epoch`: every session token carries the epoch its user had when it was
//!   issued; a password change or a suspension adds one, so every older token stops working.
//!   Existing rows start at 0, which is also what a token issued before this column existed
//!   reads as: sessions survive the upgrade.
//! - `audit_log`: what staff did (plans, adjustments, status changes, keys, endpoints, fraud
//!   settings, logins), one row per change, written in the change's own transaction. Read by
//!   tenant, oldest first, keyed on the time-ordered ID.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    SessionEpoch,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Id,
    TenantId,
    At,
    ActorUserId,
    ActorEmail,
    Action,
    SubjectType,
    SubjectId,
    Details,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(big_integer(Users::SessionEpoch).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(uuid(AuditLog::Id).primary_key())
                    .col(uuid(AuditLog::TenantId))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    // Both null when the host did it (`clickledger` on the command line).
                    .col(uuid_null(AuditLog::ActorUserId))
                    .col(string_null(AuditLog::ActorEmail))
                    .col(string(AuditLog::Action))
                    .col(string(AuditLog::SubjectType))
                    .col(string(AuditLog::SubjectId))
                    .col(text(AuditLog::Details))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_audit_log_tenant_id", AuditLog::Table, &[AuditLog::TenantId, AuditLog::Id], false)
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditLog::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Users::Table).drop_column(Users::SessionEpoch).to_owned())
            .await
    }
}
