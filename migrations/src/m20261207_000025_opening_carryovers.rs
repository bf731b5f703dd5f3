//! Revshare carryovers imported from another tracker (`balances.csv`): the loss each
//! affiliate still has to earn back, per currency, and the month here whose revshare netting
//! it opens. The period close adds it to what the month before carries (see
//! `persistence::commission::close`). Not ledger entries: a carryover is never payable, it
//! only nets against revshare still to come.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum OpeningCarryovers {
    Table,
    TenantId,
    AffiliateId,
    Currency,
    Period,
    Amount,
    Source,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Decimals are text on SQLite, where `decimal_len` would make a float.
        let amount = match manager.get_database_backend() {
            DbBackend::Sqlite => text(OpeningCarryovers::Amount),
            _ => decimal_len(OpeningCarryovers::Amount, 20, 6),
        };
        manager
            .create_table(
                Table::create()
                    .table(OpeningCarryovers::Table)
                    .col(uuid(OpeningCarryovers::TenantId))
                    .col(uuid(OpeningCarryovers::AffiliateId))
                    .col(string(OpeningCarryovers::Currency))
                    .col(string(OpeningCarryovers::Period))
                    .col(amount)
                    .col(text(OpeningCarryovers::Source))
                    .col(timestamp_with_time_zone(OpeningCarryovers::CreatedAt))
                    .col(timestamp_with_time_zone(OpeningCarryovers::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(OpeningCarryovers::TenantId)
                            .col(OpeningCarryovers::AffiliateId)
                            .col(OpeningCarryovers::Currency),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "opening_carryovers_by_period",
            OpeningCarryovers::Table,
            &[OpeningCarryovers::TenantId, OpeningCarryovers::Period],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OpeningCarryovers::Table).to_owned()).await
    }
}
