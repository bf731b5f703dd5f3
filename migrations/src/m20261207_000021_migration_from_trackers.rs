//! Migrating from another tracker: the click map (`clicks.csv` of an import), another
//! tracker's click IDs each with the old link it was made on and when, so that a postback
//! carrying one is attributed through that link. And a CUSTOM postback dialect: the API
//! key's own parameter and status mapping, as JSON (`domain::dialect::Mapping`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ImportedClicks {
    Table,
    TenantId,
    ClickId,
    LinkId,
    ClickedAt,
    Sub1,
    Sub2,
    Sub3,
    Sub4,
    Sub5,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    CustomDialect,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ImportedClicks::Table)
                    .col(uuid(ImportedClicks::TenantId))
                    .col(string(ImportedClicks::ClickId))
                    .col(uuid(ImportedClicks::LinkId))
                    .col(timestamp_with_time_zone(ImportedClicks::ClickedAt))
                    .col(string_null(ImportedClicks::Sub1))
                    .col(string_null(ImportedClicks::Sub2))
                    .col(string_null(ImportedClicks::Sub3))
                    .col(string_null(ImportedClicks::Sub4))
                    .col(string_null(ImportedClicks::Sub5))
                    .col(timestamp_with_time_zone(ImportedClicks::CreatedAt))
                    .primary_key(Index::create().col(ImportedClicks::TenantId).col(ImportedClicks::ClickId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(ApiKeys::Table).add_column(text_null(ApiKeys::CustomDialect)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(ApiKeys::Table).drop_column(ApiKeys::CustomDialect).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(ImportedClicks::Table).to_owned()).await
    }
}
