//! An imported player whose CPA the old tracker already paid (`players.csv`, `cpa_paid`). Kept
//! on the player's binding rather than in `player_facts`, whose rows are per plan currency: the
//! import cannot know which currency a plan made later will pay in, and CPA is paid once per
//! player whatever the currency.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Players {
    Table,
    CpaPaidBeforeImport,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Players::Table)
                    .add_column(boolean(Players::CpaPaidBeforeImport).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Players::Table).drop_column(Players::CpaPaidBeforeImport).to_owned(),
            )
            .await
    }
}
