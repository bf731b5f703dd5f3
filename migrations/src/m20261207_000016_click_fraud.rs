//! Fraud on the click side: each click's `Accept-Language`, whether its user agent is a
//! known bot's and whether it came beyond the clicks a minute allowed from its address, and the operator's address lists (data centres, VPN exits, a blocklist) as
//! disjoint ranges of 16-byte keys (IPv4 as IPv4-mapped IPv6), so the range that can hold an
//! address is found with one probe of the primary key: `list = ? AND range_start <= ?`,
//! newest start first, `LIMIT 1`. The lists belong to the instance, not to a tenant. And an
//! index of players' signals by when they were first seen, so the velocity rule counts the
//! registrations of the last hour from one IP or device with a bounded range read.
//!
//! One column per `ALTER TABLE`: SQLite takes a single change per statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Clicks {
    Table,
    AcceptLanguage,
    IsBot,
    Velocity,
}

#[derive(DeriveIden, Clone, Copy)]
enum PlayerSignals {
    Table,
    TenantId,
    Signal,
    Value,
    CreatedAt,
}

const SIGNALS_BY_TIME: &str = "ix_player_signals_tenant_signal_value_time";

#[derive(DeriveIden, Clone, Copy)]
enum IpRanges {
    Table,
    List,
    RangeStart,
    RangeEnd,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for mut column in [
            text_null(Clicks::AcceptLanguage),
            boolean(Clicks::IsBot).default(false).to_owned(),
            boolean(Clicks::Velocity).default(false).to_owned(),
        ] {
            manager
                .alter_table(Table::alter().table(Clicks::Table).add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(IpRanges::Table)
                    .col(string(IpRanges::List))
                    .col(ColumnDef::new(IpRanges::RangeStart).binary().not_null())
                    .col(ColumnDef::new(IpRanges::RangeEnd).binary().not_null())
                    .primary_key(Index::create().col(IpRanges::List).col(IpRanges::RangeStart))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SIGNALS_BY_TIME)
                    .table(PlayerSignals::Table)
                    .col(PlayerSignals::TenantId)
                    .col(PlayerSignals::Signal)
                    .col(PlayerSignals::Value)
                    .col(PlayerSignals::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(SIGNALS_BY_TIME).table(PlayerSignals::Table).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(IpRanges::Table).to_owned()).await?;
        for column in [Clicks::Velocity, Clicks::IsBot, Clicks::AcceptLanguage] {
            manager.alter_table(Table::alter().table(Clicks::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
