//! Per-key settings for integrators: a postback rate limit (`NULL`: the server's default), a
//! signing secret of the key's own (`NULL` for keys made before this migration, until one is
//! rotated in), when that secret was made, and whether unsigned postbacks are refused.
//!
//! One column per `ALTER TABLE`: SQLite takes a single change per statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    PostbacksPerMinute,
    SigningSecret,
    SigningSecretCreatedAt,
    SignatureRequired,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            integer_null(ApiKeys::PostbacksPerMinute),
            string_null(ApiKeys::SigningSecret),
            timestamp_with_time_zone_null(ApiKeys::SigningSecretCreatedAt),
            boolean(ApiKeys::SignatureRequired).default(false).to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).add_column(&mut column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ApiKeys::SignatureRequired,
            ApiKeys::SigningSecretCreatedAt,
            ApiKeys::SigningSecret,
            ApiKeys::PostbacksPerMinute,
        ] {
            manager.alter_table(Table::alter().table(ApiKeys::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
