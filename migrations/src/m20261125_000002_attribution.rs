//! Clicks, players, conversions with their credits and history, and the per-tenant event log
//! that subscriptions and the notifier read by sequence.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    EventSeq,
}

#[derive(DeriveIden, Clone, Copy)]
enum Clicks {
    Table,
    ClickId,
    TenantId,
    LinkId,
    AffiliateId,
    CampaignId,
    VisitorId,
    ClickedAt,
    Ip,
    UserAgent,
    Referrer,
    Sub1,
    Sub2,
    Sub3,
    Sub4,
    Sub5,
    Source,
    Creative,
    LandingPage,
}

#[derive(DeriveIden, Clone, Copy)]
enum Players {
    Table,
    TenantId,
    PlayerId,
    ConversionId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversions {
    Table,
    Id,
    TenantId,
    DedupeKey,
    TxnId,
    Event,
    Status,
    Amount,
    Currency,
    Lots,
    Instrument,
    ClickId,
    PlayerId,
    CampaignId,
    OriginalConversionId,
    Attributed,
    UnattributedReason,
    Model,
    ModelVersion,
    Journey,
    PayloadHash,
    Payload,
    OccurredAt,
    ReceivedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConversionCredits {
    Table,
    ConversionId,
    TenantId,
    AffiliateId,
    Share,
    Position,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConversionHistory {
    Table,
    Id,
    TenantId,
    ConversionId,
    FromStatus,
    ToStatus,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    TenantId,
    Seq,
    ConversionId,
    Kind,
    Status,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The per-tenant event sequence lives on the tenant row: incrementing it takes that
        // row's lock, which orders concurrent writers of one tenant without a table lock.
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(big_integer(Tenants::EventSeq).default(0))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clicks::Table)
                    .col(string(Clicks::ClickId).primary_key())
                    .col(uuid(Clicks::TenantId))
                    .col(uuid(Clicks::LinkId))
                    .col(uuid(Clicks::AffiliateId))
                    .col(uuid(Clicks::CampaignId))
                    .col(uuid(Clicks::VisitorId))
                    .col(timestamp_with_time_zone(Clicks::ClickedAt))
                    .col(string_null(Clicks::Ip))
                    .col(text_null(Clicks::UserAgent))
                    .col(text_null(Clicks::Referrer))
                    .col(string_null(Clicks::Sub1))
                    .col(string_null(Clicks::Sub2))
                    .col(string_null(Clicks::Sub3))
                    .col(string_null(Clicks::Sub4))
                    .col(string_null(Clicks::Sub5))
                    .col(string_null(Clicks::Source))
                    .col(string_null(Clicks::Creative))
                    .col(string_null(Clicks::LandingPage))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_clicks_tenant_visitor_time",
            Clicks::Table,
            &[Clicks::TenantId, Clicks::VisitorId, Clicks::ClickedAt],
            false,
        )
        .await?;
        index(manager, "ix_clicks_tenant_time", Clicks::Table, &[Clicks::TenantId, Clicks::ClickedAt], false)
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Conversions::Table)
                    .col(uuid(Conversions::Id).primary_key())
                    .col(uuid(Conversions::TenantId))
                    .col(string(Conversions::DedupeKey))
                    .col(string_null(Conversions::TxnId))
                    .col(string(Conversions::Event))
                    .col(string(Conversions::Status))
                    .col(decimal_len_null(Conversions::Amount, 20, 6))
                    .col(string_null(Conversions::Currency))
                    .col(decimal_len_null(Conversions::Lots, 20, 6))
                    .col(string_null(Conversions::Instrument))
                    .col(string_null(Conversions::ClickId))
                    .col(string_null(Conversions::PlayerId))
                    .col(uuid_null(Conversions::CampaignId))
                    .col(uuid_null(Conversions::OriginalConversionId))
                    .col(boolean(Conversions::Attributed))
                    .col(string_null(Conversions::UnattributedReason))
                    .col(string_null(Conversions::Model))
                    .col(string_null(Conversions::ModelVersion))
                    .col(text(Conversions::Journey))
                    .col(string(Conversions::PayloadHash))
                    .col(text(Conversions::Payload))
                    .col(timestamp_with_time_zone(Conversions::OccurredAt))
                    .col(timestamp_with_time_zone(Conversions::ReceivedAt))
                    .col(timestamp_with_time_zone(Conversions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_conversions_tenant_dedupe",
            Conversions::Table,
            &[Conversions::TenantId, Conversions::DedupeKey],
            true,
        )
        .await?;
        index(
            manager,
            "ix_conversions_tenant_id",
            Conversions::Table,
            &[Conversions::TenantId, Conversions::Id],
            false,
        )
        .await?;
        index(
            manager,
            "ix_conversions_tenant_txn",
            Conversions::Table,
            &[Conversions::TenantId, Conversions::TxnId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConversionCredits::Table)
                    .col(uuid(ConversionCredits::ConversionId))
                    .col(uuid(ConversionCredits::TenantId))
                    .col(uuid(ConversionCredits::AffiliateId))
                    .col(decimal_len(ConversionCredits::Share, 12, 6))
                    .col(integer(ConversionCredits::Position))
                    .primary_key(
                        Index::create()
                            .col(ConversionCredits::ConversionId)
                            .col(ConversionCredits::AffiliateId),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_credits_tenant_affiliate",
            ConversionCredits::Table,
            &[ConversionCredits::TenantId, ConversionCredits::AffiliateId, ConversionCredits::ConversionId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Players::Table)
                    .col(uuid(Players::TenantId))
                    .col(string(Players::PlayerId))
                    .col(uuid(Players::ConversionId))
                    .col(timestamp_with_time_zone(Players::CreatedAt))
                    .primary_key(Index::create().col(Players::TenantId).col(Players::PlayerId))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConversionHistory::Table)
                    .col(uuid(ConversionHistory::Id).primary_key())
                    .col(uuid(ConversionHistory::TenantId))
                    .col(uuid(ConversionHistory::ConversionId))
                    .col(string_null(ConversionHistory::FromStatus))
                    .col(string(ConversionHistory::ToStatus))
                    .col(timestamp_with_time_zone(ConversionHistory::At))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_history_tenant_conversion",
            ConversionHistory::Table,
            &[ConversionHistory::TenantId, ConversionHistory::ConversionId, ConversionHistory::At],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(uuid(Events::TenantId))
                    .col(big_integer(Events::Seq))
                    .col(uuid(Events::ConversionId))
                    .col(string(Events::Kind))
                    .col(string(Events::Status))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .primary_key(Index::create().col(Events::TenantId).col(Events::Seq))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
