//! More fraud rules: promo codes claimed per player (`promo_claims`, looked up by code and
//! the claim's IP or device within the window, or by code and player; by when they happened
//! for the bonus-only check when a commission period closes), the user agent of an
//! affiliate's latest login from each address (self-referral by device), and per affiliate
//! and UTC day the counts the fraud report and the click-spamming check read
//! (`affiliate_fraud_days`: conversions, flagged, flagged per rule, CTIT buckets), added to in
//! each conversion's transaction. And for the fraud-alert e-mail, which the notifier sends
//! from the event log: how far it has read each tenant's log (`fraud_alert_cursors`, started
//! at each existing tenant's latest event, so an upgrade does not mail the past), when it last
//! mailed each (rule, affiliate) (`fraud_alert_mails`), and per UTC day how many alerts it
//! held back for the daily digest (`fraud_alert_digest`).
//!
//! One column per `ALTER TABLE`: SQLite takes a single change per statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AffiliateLogins {
    Table,
    UserAgent,
}

#[derive(DeriveIden, Clone, Copy)]
enum PromoClaims {
    Table,
    TenantId,
    PromoCode,
    PlayerId,
    Ip,
    DeviceId,
    ConversionId,
    CreatedAt,
    BonusAmount,
    OccurredAt,
}

const CLAIMS_BY_TIME: &str = "ix_promo_claims_tenant_occurred";
const CLAIMS_BY_IP: &str = "ix_promo_claims_tenant_code_ip_time";
const CLAIMS_BY_DEVICE: &str = "ix_promo_claims_tenant_code_device_time";

#[derive(DeriveIden, Clone, Copy)]
enum AffiliateFraudDays {
    Table,
    TenantId,
    Day,
    AffiliateId,
    Metric,
    Hits,
}

const DAYS_BY_AFFILIATE: &str = "ix_affiliate_fraud_days_tenant_affiliate_day";

#[derive(DeriveIden, Clone, Copy)]
enum FraudAlertCursors {
    Table,
    TenantId,
    LastSeq,
}

#[derive(DeriveIden, Clone, Copy)]
enum FraudAlertMails {
    Table,
    TenantId,
    Rule,
    AffiliateId,
    LastSentAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum FraudAlertDigest {
    Table,
    TenantId,
    Day,
    Rule,
    AffiliateId,
    Held,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AffiliateLogins::Table)
                    .add_column(text_null(AffiliateLogins::UserAgent))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PromoClaims::Table)
                    .col(uuid(PromoClaims::TenantId))
                    .col(string(PromoClaims::PromoCode))
                    .col(string(PromoClaims::PlayerId))
                    .col(string_null(PromoClaims::Ip))
                    .col(string_null(PromoClaims::DeviceId))
                    .col(uuid(PromoClaims::ConversionId))
                    .col(timestamp_with_time_zone(PromoClaims::CreatedAt))
                    // Exact, as given (`bonus_amount`), compared only in Rust.
                    .col(string_null(PromoClaims::BonusAmount))
                    .col(timestamp_with_time_zone(PromoClaims::OccurredAt))
                    .primary_key(
                        Index::create()
                            .col(PromoClaims::TenantId)
                            .col(PromoClaims::PromoCode)
                            .col(PromoClaims::PlayerId),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [(CLAIMS_BY_IP, PromoClaims::Ip), (CLAIMS_BY_DEVICE, PromoClaims::DeviceId)] {
            crate::util::index(
                manager,
                name,
                PromoClaims::Table,
                &[PromoClaims::TenantId, PromoClaims::PromoCode, column, PromoClaims::CreatedAt],
                false,
            )
            .await?;
        }
        crate::util::index(
            manager,
            CLAIMS_BY_TIME,
            PromoClaims::Table,
            &[PromoClaims::TenantId, PromoClaims::OccurredAt],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(AffiliateFraudDays::Table)
                    .col(uuid(AffiliateFraudDays::TenantId))
                    .col(big_integer(AffiliateFraudDays::Day))
                    .col(uuid(AffiliateFraudDays::AffiliateId))
                    .col(string(AffiliateFraudDays::Metric))
                    .col(big_integer(AffiliateFraudDays::Hits))
                    .primary_key(
                        Index::create()
                            .col(AffiliateFraudDays::TenantId)
                            .col(AffiliateFraudDays::Day)
                            .col(AffiliateFraudDays::AffiliateId)
                            .col(AffiliateFraudDays::Metric),
                    )
                    .to_owned(),
            )
            .await?;
        crate::util::index(
            manager,
            DAYS_BY_AFFILIATE,
            AffiliateFraudDays::Table,
            &[AffiliateFraudDays::TenantId, AffiliateFraudDays::AffiliateId, AffiliateFraudDays::Day],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(FraudAlertCursors::Table)
                    .col(uuid(FraudAlertCursors::TenantId).primary_key())
                    .col(big_integer(FraudAlertCursors::LastSeq))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO fraud_alert_cursors (tenant_id, last_seq) SELECT id, event_seq FROM tenants",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FraudAlertMails::Table)
                    .col(uuid(FraudAlertMails::TenantId))
                    .col(string(FraudAlertMails::Rule))
                    .col(uuid(FraudAlertMails::AffiliateId))
                    .col(timestamp_with_time_zone(FraudAlertMails::LastSentAt))
                    .primary_key(
                        Index::create()
                            .col(FraudAlertMails::TenantId)
                            .col(FraudAlertMails::Rule)
                            .col(FraudAlertMails::AffiliateId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FraudAlertDigest::Table)
                    .col(uuid(FraudAlertDigest::TenantId))
                    .col(string(FraudAlertDigest::Day))
                    .col(string(FraudAlertDigest::Rule))
                    .col(uuid(FraudAlertDigest::AffiliateId))
                    .col(big_integer(FraudAlertDigest::Held))
                    .primary_key(
                        Index::create()
                            .col(FraudAlertDigest::TenantId)
                            .col(FraudAlertDigest::Day)
                            .col(FraudAlertDigest::Rule)
                            .col(FraudAlertDigest::AffiliateId),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FraudAlertDigest::Table.into_iden(),
            FraudAlertMails::Table.into_iden(),
            FraudAlertCursors::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(AffiliateFraudDays::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PromoClaims::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AffiliateLogins::Table)
                    .drop_column(AffiliateLogins::UserAgent)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
