//! Outbound delivery: affiliate postback endpoints, the deliveries owed to them (each stored
//! before it is tried, so a crash loses nothing), every attempt made, and a per-tenant cursor
//! into the event log so a restart resumes where the notifier stopped.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum PostbackEndpoints {
    Table,
    Id,
    TenantId,
    AffiliateId,
    CampaignId,
    UrlTemplate,
    Method,
    Events,
    Statuses,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    MaxConcurrency,
    TimeoutMs,
    Status,
    DisabledReason,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PostbackDeliveries {
    Table,
    Id,
    TenantId,
    EndpointId,
    EventSeq,
    ConversionId,
    Event,
    State,
    Attempts,
    NextAttemptAt,
    Method,
    Url,
    Body,
    LastStatus,
    LastError,
    LastAttemptAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PostbackAttempts {
    Table,
    Id,
    TenantId,
    DeliveryId,
    EndpointId,
    Attempt,
    StartedAt,
    Request,
    ResponseStatus,
    ResponseBody,
    Error,
    LatencyMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum NotifierCursors {
    Table,
    TenantId,
    LastSeq,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PostbackEndpoints::Table)
                    .col(uuid(PostbackEndpoints::Id).primary_key())
                    .col(uuid(PostbackEndpoints::TenantId))
                    .col(uuid(PostbackEndpoints::AffiliateId))
                    .col(uuid_null(PostbackEndpoints::CampaignId))
                    .col(text(PostbackEndpoints::UrlTemplate))
                    .col(string(PostbackEndpoints::Method))
                    .col(string(PostbackEndpoints::Events))
                    .col(string(PostbackEndpoints::Statuses))
                    .col(string(PostbackEndpoints::Secret))
                    .col(string_null(PostbackEndpoints::PreviousSecret))
                    .col(timestamp_with_time_zone_null(PostbackEndpoints::PreviousSecretUntil))
                    .col(integer(PostbackEndpoints::MaxConcurrency))
                    .col(integer(PostbackEndpoints::TimeoutMs))
                    .col(string(PostbackEndpoints::Status))
                    .col(string_null(PostbackEndpoints::DisabledReason))
                    .col(timestamp_with_time_zone_null(PostbackEndpoints::FailingSince))
                    .col(timestamp_with_time_zone(PostbackEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(PostbackEndpoints::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_postback_endpoints_tenant_affiliate",
            PostbackEndpoints::Table,
            &[PostbackEndpoints::TenantId, PostbackEndpoints::AffiliateId, PostbackEndpoints::Id],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PostbackDeliveries::Table)
                    .col(uuid(PostbackDeliveries::Id).primary_key())
                    .col(uuid(PostbackDeliveries::TenantId))
                    .col(uuid(PostbackDeliveries::EndpointId))
                    .col(big_integer_null(PostbackDeliveries::EventSeq))
                    .col(uuid_null(PostbackDeliveries::ConversionId))
                    .col(string(PostbackDeliveries::Event))
                    .col(string(PostbackDeliveries::State))
                    .col(integer(PostbackDeliveries::Attempts))
                    .col(timestamp_with_time_zone_null(PostbackDeliveries::NextAttemptAt))
                    .col(string(PostbackDeliveries::Method))
                    .col(text(PostbackDeliveries::Url))
                    .col(text(PostbackDeliveries::Body))
                    .col(integer_null(PostbackDeliveries::LastStatus))
                    .col(text_null(PostbackDeliveries::LastError))
                    .col(timestamp_with_time_zone_null(PostbackDeliveries::LastAttemptAt))
                    .col(timestamp_with_time_zone(PostbackDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(PostbackDeliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // One delivery per (endpoint, event): enqueueing twice after a crash is a no-op.
        index(
            manager,
            "ux_postback_deliveries_tenant_endpoint_seq",
            PostbackDeliveries::Table,
            &[PostbackDeliveries::TenantId, PostbackDeliveries::EndpointId, PostbackDeliveries::EventSeq],
            true,
        )
        .await?;
        index(
            manager,
            "ix_postback_deliveries_tenant_endpoint_id",
            PostbackDeliveries::Table,
            &[PostbackDeliveries::TenantId, PostbackDeliveries::EndpointId, PostbackDeliveries::Id],
            false,
        )
        .await?;
        index(
            manager,
            "ix_postback_deliveries_tenant_state_due",
            PostbackDeliveries::Table,
            &[PostbackDeliveries::TenantId, PostbackDeliveries::State, PostbackDeliveries::NextAttemptAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PostbackAttempts::Table)
                    .col(uuid(PostbackAttempts::Id).primary_key())
                    .col(uuid(PostbackAttempts::TenantId))
                    .col(uuid(PostbackAttempts::DeliveryId))
                    .col(uuid(PostbackAttempts::EndpointId))
                    .col(integer(PostbackAttempts::Attempt))
                    .col(timestamp_with_time_zone(PostbackAttempts::StartedAt))
                    .col(text(PostbackAttempts::Request))
                    .col(integer_null(PostbackAttempts::ResponseStatus))
                    .col(text_null(PostbackAttempts::ResponseBody))
                    .col(text_null(PostbackAttempts::Error))
                    .col(integer(PostbackAttempts::LatencyMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_postback_attempts_tenant_delivery",
            PostbackAttempts::Table,
            &[PostbackAttempts::TenantId, PostbackAttempts::DeliveryId, PostbackAttempts::Attempt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(NotifierCursors::Table)
                    .col(uuid(NotifierCursors::TenantId).primary_key())
                    .col(big_integer(NotifierCursors::LastSeq))
                    .col(timestamp_with_time_zone(NotifierCursors::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
