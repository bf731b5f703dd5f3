//! Commission: versioned plans and their assignments, the append-only ledger, operator-set
//! exchange rates, per-player running totals (CPA qualification) and period statements.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum CommissionPlans {
    Table,
    Id,
    TenantId,
    Name,
    Currency,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CommissionPlanVersions {
    Table,
    TenantId,
    PlanId,
    Version,
    EffectiveFrom,
    /// The plan's rules as JSON (the domain `Plan`).
    Body,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PlanAssignments {
    Table,
    Id,
    TenantId,
    PlanId,
    CampaignId,
    /// Null: the campaign's default plan.
    AffiliateId,
    EffectiveFrom,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LedgerEntries {
    Table,
    Id,
    TenantId,
    AffiliateId,
    ConversionId,
    PlanId,
    PlanVersion,
    Kind,
    Tier,
    Reverses,
    ReversesEntryId,
    Amount,
    Currency,
    BasisAmount,
    SourceAmount,
    SourceCurrency,
    FxRate,
    Status,
    Period,
    Reason,
    CreatedBy,
    OccurredAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum FxRates {
    Table,
    TenantId,
    Day,
    FromCurrency,
    ToCurrency,
    Rate,
    SetBy,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PlayerFacts {
    Table,
    TenantId,
    PlayerKey,
    Currency,
    RegisteredAt,
    Country,
    FirstDeposit,
    TotalDeposits,
    Turnover,
    Lots,
    Trades,
    CpaPaid,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Statements {
    Table,
    Id,
    TenantId,
    AffiliateId,
    Period,
    Currency,
    OpeningCarryover,
    ClosingCarryover,
    Balance,
    Lines,
    Status,
    ClosedAt,
    PaidAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CommissionPlans::Table)
                    .col(uuid(CommissionPlans::Id).primary_key())
                    .col(uuid(CommissionPlans::TenantId))
                    .col(string(CommissionPlans::Name))
                    .col(string(CommissionPlans::Currency))
                    .col(timestamp_with_time_zone(CommissionPlans::CreatedAt))
                    .col(timestamp_with_time_zone(CommissionPlans::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_commission_plans_tenant_id",
            CommissionPlans::Table,
            &[CommissionPlans::TenantId, CommissionPlans::Id],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CommissionPlanVersions::Table)
                    .col(uuid(CommissionPlanVersions::TenantId))
                    .col(uuid(CommissionPlanVersions::PlanId))
                    .col(integer(CommissionPlanVersions::Version))
                    .col(timestamp_with_time_zone(CommissionPlanVersions::EffectiveFrom))
                    .col(text(CommissionPlanVersions::Body))
                    .col(timestamp_with_time_zone(CommissionPlanVersions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(CommissionPlanVersions::TenantId)
                            .col(CommissionPlanVersions::PlanId)
                            .col(CommissionPlanVersions::Version),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlanAssignments::Table)
                    .col(uuid(PlanAssignments::Id).primary_key())
                    .col(uuid(PlanAssignments::TenantId))
                    .col(uuid(PlanAssignments::PlanId))
                    .col(uuid(PlanAssignments::CampaignId))
                    .col(uuid_null(PlanAssignments::AffiliateId))
                    .col(timestamp_with_time_zone(PlanAssignments::EffectiveFrom))
                    .col(timestamp_with_time_zone(PlanAssignments::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_plan_assignments_tenant_campaign",
            PlanAssignments::Table,
            &[
                PlanAssignments::TenantId,
                PlanAssignments::CampaignId,
                PlanAssignments::AffiliateId,
                PlanAssignments::EffectiveFrom,
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerEntries::Table)
                    .col(uuid(LedgerEntries::Id).primary_key())
                    .col(uuid(LedgerEntries::TenantId))
                    .col(uuid(LedgerEntries::AffiliateId))
                    .col(uuid_null(LedgerEntries::ConversionId))
                    .col(uuid_null(LedgerEntries::PlanId))
                    .col(integer_null(LedgerEntries::PlanVersion))
                    .col(string(LedgerEntries::Kind))
                    .col(integer(LedgerEntries::Tier))
                    .col(string_null(LedgerEntries::Reverses))
                    .col(uuid_null(LedgerEntries::ReversesEntryId))
                    .col(decimal_len(LedgerEntries::Amount, 20, 6))
                    .col(string(LedgerEntries::Currency))
                    .col(decimal_len_null(LedgerEntries::BasisAmount, 20, 6))
                    .col(decimal_len_null(LedgerEntries::SourceAmount, 20, 6))
                    .col(string_null(LedgerEntries::SourceCurrency))
                    .col(decimal_len_null(LedgerEntries::FxRate, 28, 12))
                    .col(string(LedgerEntries::Status))
                    .col(string(LedgerEntries::Period))
                    .col(text_null(LedgerEntries::Reason))
                    .col(uuid_null(LedgerEntries::CreatedBy))
                    .col(timestamp_with_time_zone(LedgerEntries::OccurredAt))
                    .col(timestamp_with_time_zone(LedgerEntries::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_ledger_tenant_affiliate_period",
            LedgerEntries::Table,
            &[LedgerEntries::TenantId, LedgerEntries::AffiliateId, LedgerEntries::Period],
            false,
        )
        .await?;
        index(
            manager,
            "ix_ledger_tenant_conversion",
            LedgerEntries::Table,
            &[LedgerEntries::TenantId, LedgerEntries::ConversionId],
            false,
        )
        .await?;
        index(
            manager,
            "ix_ledger_tenant_period",
            LedgerEntries::Table,
            &[LedgerEntries::TenantId, LedgerEntries::Period, LedgerEntries::Id],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(FxRates::Table)
                    .col(uuid(FxRates::TenantId))
                    .col(string(FxRates::Day))
                    .col(string(FxRates::FromCurrency))
                    .col(string(FxRates::ToCurrency))
                    .col(decimal_len(FxRates::Rate, 28, 12))
                    .col(uuid_null(FxRates::SetBy))
                    .col(timestamp_with_time_zone(FxRates::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(FxRates::TenantId)
                            .col(FxRates::FromCurrency)
                            .col(FxRates::ToCurrency)
                            .col(FxRates::Day),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlayerFacts::Table)
                    .col(uuid(PlayerFacts::TenantId))
                    .col(string(PlayerFacts::PlayerKey))
                    .col(string(PlayerFacts::Currency))
                    .col(timestamp_with_time_zone_null(PlayerFacts::RegisteredAt))
                    .col(string_null(PlayerFacts::Country))
                    .col(decimal_len_null(PlayerFacts::FirstDeposit, 20, 6))
                    .col(decimal_len(PlayerFacts::TotalDeposits, 20, 6))
                    .col(decimal_len(PlayerFacts::Turnover, 20, 6))
                    .col(decimal_len(PlayerFacts::Lots, 20, 6))
                    .col(integer(PlayerFacts::Trades))
                    .col(boolean(PlayerFacts::CpaPaid))
                    .col(timestamp_with_time_zone(PlayerFacts::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(PlayerFacts::TenantId)
                            .col(PlayerFacts::PlayerKey)
                            .col(PlayerFacts::Currency),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Statements::Table)
                    .col(uuid(Statements::Id).primary_key())
                    .col(uuid(Statements::TenantId))
                    .col(uuid(Statements::AffiliateId))
                    .col(string(Statements::Period))
                    .col(string(Statements::Currency))
                    .col(decimal_len(Statements::OpeningCarryover, 20, 6))
                    .col(decimal_len(Statements::ClosingCarryover, 20, 6))
                    .col(decimal_len(Statements::Balance, 20, 6))
                    .col(text(Statements::Lines))
                    .col(string(Statements::Status))
                    .col(timestamp_with_time_zone(Statements::ClosedAt))
                    .col(timestamp_with_time_zone_null(Statements::PaidAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_statements_tenant_affiliate_period",
            Statements::Table,
            &[Statements::TenantId, Statements::AffiliateId, Statements::Period, Statements::Currency],
            true,
        )
        .await?;
        Ok(())
    }
}
