//! A player's running totals (deposits, turnover, lots) add up many postbacks, each of which
//! may be just under 10¹⁴: `NUMERIC(20, 6)` overflowed on PostgreSQL (answered 500) after a
//! few large deposits. They get 26 integer digits, still within what `rust_decimal` holds
//! exactly. SQLite stores these columns as text already: nothing to do there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const RUNNING_TOTALS: [&str; 3] = ["total_deposits", "turnover", "lots"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "NUMERIC(32, 6)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "NUMERIC(20, 6)").await
    }
}

async fn retype(manager: &SchemaManager<'_>, to: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for column in RUNNING_TOTALS {
        manager
            .get_connection()
            .execute_unprepared(&format!("ALTER TABLE player_facts ALTER COLUMN {column} TYPE {to}"))
            .await?;
    }
    Ok(())
}
