//! Reporting rollups, kept in the same transactions that write clicks and conversions, so
//! `stats` reads live numbers without a nightly job and without reading raw clicks.
//!
//! - `stats_hourly`: one row per tenant, UTC hour and dimension key (affiliate, campaign, link,
//!   sub-IDs, country, device type, OS, browser, source, creative, landing page) with its
//!   counters. A missing dimension is
//!   stored as `''` (text) or the nil UUID, never `NULL`: `NULL`s never collide in a unique
//!   index, so the upsert (`ON CONFLICT … DO UPDATE`) would insert a second row instead of
//!   adding to the first. The hour is the epoch second at the start of the UTC hour.
//! - `stats_visitor_days`: the (tenant, UTC day, link, visitor) seen so far; a click whose
//!   insert here adds a row is a unique click.
//!
//! Each amount is two exact integers (`BIGINT`) on both databases: whole units (`…_units`,
//! truncated toward zero) and millionths (`…_micros`, the rest, same sign). The upsert adds
//! them in SQL, which SQLite cannot do exactly on the text that holds other decimals (see
//! `m20261202_000007_exact_decimals`), and one integer of millionths would end at
//! 9.2 × 10¹², below the amounts a postback may carry (10¹⁵).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum StatsHourly {
    Table,
    TenantId,
    Hour,
    AffiliateId,
    CampaignId,
    LinkId,
    Sub1,
    Sub2,
    Sub3,
    Sub4,
    Sub5,
    Country,
    DeviceType,
    Os,
    Browser,
    Source,
    Creative,
    LandingPage,
    Clicks,
    UniqueClicks,
    Registrations,
    Ftds,
    Deposits,
    Chargebacks,
    FtdAmountUnits,
    FtdAmountMicros,
    DepositAmountUnits,
    DepositAmountMicros,
    NetRevenueUnits,
    NetRevenueMicros,
    LotsUnits,
    LotsMicros,
    CommissionUnits,
    CommissionMicros,
}

#[derive(DeriveIden, Clone, Copy)]
enum StatsVisitorDays {
    Table,
    TenantId,
    Day,
    LinkId,
    VisitorId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use StatsHourly as H;
        let mut table = Table::create();
        table
            .table(H::Table)
            .col(uuid(H::TenantId))
            .col(big_integer(H::Hour))
            .col(uuid(H::AffiliateId))
            .col(uuid(H::CampaignId))
            .col(uuid(H::LinkId));
        for text in [
            H::Sub1,
            H::Sub2,
            H::Sub3,
            H::Sub4,
            H::Sub5,
            H::Country,
            H::DeviceType,
            H::Os,
            H::Browser,
            H::Source,
            H::Creative,
            H::LandingPage,
        ] {
            table.col(string(text).default(""));
        }
        for counter in [
            H::Clicks,
            H::UniqueClicks,
            H::Registrations,
            H::Ftds,
            H::Deposits,
            H::Chargebacks,
            H::FtdAmountUnits,
            H::FtdAmountMicros,
            H::DepositAmountUnits,
            H::DepositAmountMicros,
            H::NetRevenueUnits,
            H::NetRevenueMicros,
            H::LotsUnits,
            H::LotsMicros,
            H::CommissionUnits,
            H::CommissionMicros,
        ] {
            table.col(big_integer(counter).default(0));
        }
        manager.create_table(table.to_owned()).await?;
        index(
            manager,
            "ux_stats_hourly_key",
            H::Table,
            &[
                H::TenantId,
                H::Hour,
                H::AffiliateId,
                H::CampaignId,
                H::LinkId,
                H::Sub1,
                H::Sub2,
                H::Sub3,
                H::Sub4,
                H::Sub5,
                H::Country,
                H::DeviceType,
                H::Os,
                H::Browser,
                H::Source,
                H::Creative,
                H::LandingPage,
            ],
            true,
        )
        .await?;
        index(manager, "ix_stats_hourly_affiliate", H::Table, &[H::TenantId, H::AffiliateId, H::Hour], false)
            .await?;

        use StatsVisitorDays as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .col(uuid(V::TenantId))
                    .col(big_integer(V::Day))
                    .col(uuid(V::LinkId))
                    .col(uuid(V::VisitorId))
                    .primary_key(
                        Index::create().col(V::TenantId).col(V::Day).col(V::LinkId).col(V::VisitorId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StatsVisitorDays::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(StatsHourly::Table).to_owned()).await
    }
}
