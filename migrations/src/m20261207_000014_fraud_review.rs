//! Fraud review: each conversion's review state (`NULL` until a person decides: open when it
//! has fraud flags), who decided, when, and the note or reason they gave.
//!
//! One column per `ALTER TABLE`: SQLite takes a single change per statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Conversions {
    Table,
    ReviewState,
    ReviewedBy,
    ReviewedAt,
    ReviewNote,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            string_null(Conversions::ReviewState),
            uuid_null(Conversions::ReviewedBy),
            timestamp_with_time_zone_null(Conversions::ReviewedAt),
            text_null(Conversions::ReviewNote),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(Conversions::Table).add_column(&mut column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Conversions::ReviewNote,
            Conversions::ReviewedAt,
            Conversions::ReviewedBy,
            Conversions::ReviewState,
        ] {
            manager
                .alter_table(Table::alter().table(Conversions::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
