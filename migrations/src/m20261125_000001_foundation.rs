//! Tenants, users, affiliates, campaigns, tracking links and API keys. Every tenant-owned
//! table has `tenant_id`, and every index that serves a tenant query starts with it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum InstanceSettings {
    Table,
    Key,
    Value,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
    Name,
    Slug,
    ClickTag,
    ClickSecret,
    Status,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    Name,
    PasswordHash,
    Role,
    AffiliateId,
    Status,
    CreatedAt,
    LastLoginAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Affiliates {
    Table,
    Id,
    TenantId,
    Name,
    Email,
    ParentId,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Campaigns {
    Table,
    Id,
    TenantId,
    Name,
    LandingUrl,
    FallbackUrl,
    AttributionModel,
    LookbackDays,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TrackingLinks {
    Table,
    Id,
    TenantId,
    AffiliateId,
    CampaignId,
    Code,
    LinkTag,
    Status,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Name,
    KeyPrefix,
    KeyHash,
    CreatedAt,
    RevokedAt,
    LastUsedAt,
}

fn tenant_fk<T: IntoIden + 'static>(table: T, name: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from_tbl(table)
        .from_col(Alias::new("tenant_id"))
        .to_tbl(Tenants::Table)
        .to_col(Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InstanceSettings::Table)
                    .col(string(InstanceSettings::Key).primary_key())
                    .col(text(InstanceSettings::Value))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid(Tenants::Id).primary_key())
                    .col(string(Tenants::Name))
                    .col(string_uniq(Tenants::Slug))
                    .col(big_integer_uniq(Tenants::ClickTag))
                    .col(string(Tenants::ClickSecret))
                    .col(string(Tenants::Status))
                    .col(timestamp_with_time_zone(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Affiliates::Table)
                    .col(uuid(Affiliates::Id).primary_key())
                    .col(uuid(Affiliates::TenantId))
                    .col(string(Affiliates::Name))
                    .col(string(Affiliates::Email))
                    .col(uuid_null(Affiliates::ParentId))
                    .col(string(Affiliates::Status))
                    .col(timestamp_with_time_zone(Affiliates::CreatedAt))
                    .col(timestamp_with_time_zone(Affiliates::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Affiliates::Table, "fk_affiliates_tenant"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_affiliates_parent")
                            .from(Affiliates::Table, Affiliates::ParentId)
                            .to(Affiliates::Table, Affiliates::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_affiliates_tenant_email",
            Affiliates::Table,
            &[Affiliates::TenantId, Affiliates::Email],
            true,
        )
        .await?;
        index(
            manager,
            "ix_affiliates_tenant_id",
            Affiliates::Table,
            &[Affiliates::TenantId, Affiliates::Id],
            false,
        )
        .await?;
        index(
            manager,
            "ix_affiliates_tenant_parent",
            Affiliates::Table,
            &[Affiliates::TenantId, Affiliates::ParentId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid(Users::Id).primary_key())
                    .col(uuid(Users::TenantId))
                    .col(string(Users::Email))
                    .col(string(Users::Name))
                    .col(string(Users::PasswordHash))
                    .col(string(Users::Role))
                    .col(uuid_null(Users::AffiliateId))
                    .col(string(Users::Status))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone_null(Users::LastLoginAt))
                    .foreign_key(&mut tenant_fk(Users::Table, "fk_users_tenant"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_affiliate")
                            .from(Users::Table, Users::AffiliateId)
                            .to(Affiliates::Table, Affiliates::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(manager, "ux_users_tenant_email", Users::Table, &[Users::TenantId, Users::Email], true).await?;
        index(
            manager,
            "ix_users_tenant_affiliate",
            Users::Table,
            &[Users::TenantId, Users::AffiliateId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Campaigns::Table)
                    .col(uuid(Campaigns::Id).primary_key())
                    .col(uuid(Campaigns::TenantId))
                    .col(string(Campaigns::Name))
                    .col(text(Campaigns::LandingUrl))
                    .col(text_null(Campaigns::FallbackUrl))
                    .col(string(Campaigns::AttributionModel))
                    .col(integer(Campaigns::LookbackDays))
                    .col(string(Campaigns::Status))
                    .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                    .col(timestamp_with_time_zone(Campaigns::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Campaigns::Table, "fk_campaigns_tenant"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_campaigns_tenant_id",
            Campaigns::Table,
            &[Campaigns::TenantId, Campaigns::Id],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TrackingLinks::Table)
                    .col(uuid(TrackingLinks::Id).primary_key())
                    .col(uuid(TrackingLinks::TenantId))
                    .col(uuid(TrackingLinks::AffiliateId))
                    .col(uuid(TrackingLinks::CampaignId))
                    .col(string_uniq(TrackingLinks::Code))
                    .col(big_integer(TrackingLinks::LinkTag))
                    .col(string(TrackingLinks::Status))
                    .col(timestamp_with_time_zone(TrackingLinks::CreatedAt))
                    .foreign_key(&mut tenant_fk(TrackingLinks::Table, "fk_tracking_links_tenant"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tracking_links_affiliate")
                            .from(TrackingLinks::Table, TrackingLinks::AffiliateId)
                            .to(Affiliates::Table, Affiliates::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tracking_links_campaign")
                            .from(TrackingLinks::Table, TrackingLinks::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_tracking_links_tenant_tag",
            TrackingLinks::Table,
            &[TrackingLinks::TenantId, TrackingLinks::LinkTag],
            true,
        )
        .await?;
        index(
            manager,
            "ix_tracking_links_tenant_id",
            TrackingLinks::Table,
            &[TrackingLinks::TenantId, TrackingLinks::Id],
            false,
        )
        .await?;
        index(
            manager,
            "ix_tracking_links_tenant_affiliate",
            TrackingLinks::Table,
            &[TrackingLinks::TenantId, TrackingLinks::AffiliateId],
            false,
        )
        .await?;
        index(
            manager,
            "ix_tracking_links_tenant_campaign",
            TrackingLinks::Table,
            &[TrackingLinks::TenantId, TrackingLinks::CampaignId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(uuid(ApiKeys::Id).primary_key())
                    .col(uuid(ApiKeys::TenantId))
                    .col(string(ApiKeys::Name))
                    .col(string(ApiKeys::KeyPrefix))
                    .col(string_uniq(ApiKeys::KeyHash))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .foreign_key(&mut tenant_fk(ApiKeys::Table, "fk_api_keys_tenant"))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_api_keys_tenant_id", ApiKeys::Table, &[ApiKeys::TenantId, ApiKeys::Id], false)
            .await?;
        Ok(())
    }
}
