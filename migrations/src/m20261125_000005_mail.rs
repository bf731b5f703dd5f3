//! E-mail: messages queued durably (sent by the notifier with the same retry schedule as
//! postbacks), single-use tokens for invitations and password resets, stored hashed, and
//! marks of the daily digests already queued.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum OutboundEmails {
    Table,
    Id,
    TenantId,
    Kind,
    ToAddress,
    Subject,
    TextBody,
    HtmlBody,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    SentAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserTokens {
    Table,
    Id,
    TenantId,
    UserId,
    Purpose,
    TokenHash,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

/// One row per (tenant, day) whose daily digest was queued: queued once across restarts and
/// replicas.
#[derive(DeriveIden, Clone, Copy)]
enum DigestMarks {
    Table,
    TenantId,
    Day,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OutboundEmails::Table)
                    .col(uuid(OutboundEmails::Id).primary_key())
                    .col(uuid(OutboundEmails::TenantId))
                    .col(string(OutboundEmails::Kind))
                    .col(string(OutboundEmails::ToAddress))
                    .col(string(OutboundEmails::Subject))
                    .col(text(OutboundEmails::TextBody))
                    .col(text(OutboundEmails::HtmlBody))
                    .col(string(OutboundEmails::State))
                    .col(integer(OutboundEmails::Attempts))
                    .col(timestamp_with_time_zone_null(OutboundEmails::NextAttemptAt))
                    .col(text_null(OutboundEmails::LastError))
                    .col(timestamp_with_time_zone_null(OutboundEmails::SentAt))
                    .col(timestamp_with_time_zone(OutboundEmails::CreatedAt))
                    .col(timestamp_with_time_zone(OutboundEmails::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_outbound_emails_tenant_state_due",
            OutboundEmails::Table,
            &[OutboundEmails::TenantId, OutboundEmails::State, OutboundEmails::NextAttemptAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserTokens::Table)
                    .col(uuid(UserTokens::Id).primary_key())
                    .col(uuid(UserTokens::TenantId))
                    .col(uuid(UserTokens::UserId))
                    .col(string(UserTokens::Purpose))
                    .col(string(UserTokens::TokenHash))
                    .col(timestamp_with_time_zone(UserTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(UserTokens::UsedAt))
                    .col(timestamp_with_time_zone(UserTokens::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Tokens are looked up by hash before the tenant is known (the link carries only the
        // token), so this unique index leads with the hash.
        index(manager, "ux_user_tokens_hash", UserTokens::Table, &[UserTokens::TokenHash], true).await?;
        index(
            manager,
            "ix_user_tokens_tenant_user",
            UserTokens::Table,
            &[UserTokens::TenantId, UserTokens::UserId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DigestMarks::Table)
                    .col(uuid(DigestMarks::TenantId))
                    .col(string(DigestMarks::Day))
                    .col(timestamp_with_time_zone(DigestMarks::CreatedAt))
                    .primary_key(Index::create().col(DigestMarks::TenantId).col(DigestMarks::Day))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
