//! A player's own signals, by player: the review queue reads them for each conversion it
//! shows (the player's cluster), which scanned every signal of the tenant without this.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum PlayerSignals {
    Table,
    TenantId,
    PlayerId,
}

const SIGNALS_BY_PLAYER: &str = "ix_player_signals_tenant_player";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(SIGNALS_BY_PLAYER)
                    .table(PlayerSignals::Table)
                    .col(PlayerSignals::TenantId)
                    .col(PlayerSignals::PlayerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(SIGNALS_BY_PLAYER).table(PlayerSignals::Table).to_owned()).await
    }
}
