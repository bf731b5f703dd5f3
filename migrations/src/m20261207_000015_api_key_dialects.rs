//! Postback dialects: which tracker's parameter names an API key's postbacks use
//! (`clickledger`, `keitaro`, `voluum`, `everflow`, `hasoffers`, `binom`). Existing keys keep
//! Clickledger's own.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Dialect,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(string_len(ApiKeys::Dialect, 16).default("clickledger").to_owned())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(ApiKeys::Table).drop_column(ApiKeys::Dialect).to_owned())
            .await
    }
}
