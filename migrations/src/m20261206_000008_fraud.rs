//! Fraud: each conversion's verdict (risk, flags, action), the cluster signals players were
//! seen with (looked up by tenant, signal and value: one index probe per signal), the
//! addresses affiliates log in from (for self-referral), and each tenant's rule settings.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversions {
    Table,
    Risk,
    FraudFlags,
    FraudAction,
    RejectionReason,
}

#[derive(DeriveIden)]
enum PlayerSignals {
    Table,
    TenantId,
    Signal,
    Value,
    PlayerId,
    ConversionId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AffiliateLogins {
    Table,
    TenantId,
    AffiliateId,
    Ip,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum FraudSettings {
    Table,
    TenantId,
    Settings,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            small_integer(Conversions::Risk).default(0).to_owned(),
            text(Conversions::FraudFlags).default("[]").to_owned(),
            string_null(Conversions::FraudAction).to_owned(),
            string_null(Conversions::RejectionReason).to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(Table::alter().table(Conversions::Table).add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(PlayerSignals::Table)
                    .col(uuid(PlayerSignals::TenantId))
                    .col(string(PlayerSignals::Signal))
                    .col(string(PlayerSignals::Value))
                    .col(string(PlayerSignals::PlayerId))
                    .col(uuid(PlayerSignals::ConversionId))
                    .col(timestamp_with_time_zone(PlayerSignals::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(PlayerSignals::TenantId)
                            .col(PlayerSignals::Signal)
                            .col(PlayerSignals::Value)
                            .col(PlayerSignals::PlayerId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AffiliateLogins::Table)
                    .col(uuid(AffiliateLogins::TenantId))
                    .col(uuid(AffiliateLogins::AffiliateId))
                    .col(string(AffiliateLogins::Ip))
                    .col(timestamp_with_time_zone(AffiliateLogins::LastSeenAt))
                    .primary_key(
                        Index::create()
                            .col(AffiliateLogins::TenantId)
                            .col(AffiliateLogins::AffiliateId)
                            .col(AffiliateLogins::Ip),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FraudSettings::Table)
                    .col(uuid(FraudSettings::TenantId).primary_key())
                    .col(text(FraudSettings::Settings))
                    .col(timestamp_with_time_zone(FraudSettings::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(FraudSettings::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(AffiliateLogins::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PlayerSignals::Table).to_owned()).await?;
        for column in [
            Conversions::RejectionReason,
            Conversions::FraudAction,
            Conversions::FraudFlags,
            Conversions::Risk,
        ] {
            manager
                .alter_table(Table::alter().table(Conversions::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
