//! External IDs for importing a program from another tracker (`clickledger import`): an
//! affiliate, a campaign and an opening ledger entry remember the old system's ID, so that a
//! re-run of the import finds and updates what an earlier run wrote instead of duplicating
//! it. Unique per tenant; rows created here have none (NULLs do not collide).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Affiliates {
    Table,
    TenantId,
    ExternalId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Campaigns {
    Table,
    TenantId,
    ExternalId,
}

#[derive(DeriveIden, Clone, Copy)]
enum LedgerEntries {
    Table,
    TenantId,
    ExternalId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Affiliates::Table)
                    .add_column(string_null(Affiliates::ExternalId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_affiliates_tenant_external",
            Affiliates::Table,
            &[Affiliates::TenantId, Affiliates::ExternalId],
            true,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Campaigns::Table)
                    .add_column(string_null(Campaigns::ExternalId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_campaigns_tenant_external",
            Campaigns::Table,
            &[Campaigns::TenantId, Campaigns::ExternalId],
            true,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(LedgerEntries::Table)
                    .add_column(string_null(LedgerEntries::ExternalId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_ledger_entries_tenant_external",
            LedgerEntries::Table,
            &[LedgerEntries::TenantId, LedgerEntries::ExternalId],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("ux_affiliates_tenant_external", Affiliates::Table.into_iden()),
            ("ux_campaigns_tenant_external", Campaigns::Table.into_iden()),
            ("ux_ledger_entries_tenant_external", LedgerEntries::Table.into_iden()),
        ] {
            manager.drop_index(Index::drop().name(name).table(table).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter().table(Affiliates::Table).drop_column(Affiliates::ExternalId).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Campaigns::Table).drop_column(Campaigns::ExternalId).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(LedgerEntries::Table).drop_column(LedgerEntries::ExternalId).to_owned(),
            )
            .await
    }
}
