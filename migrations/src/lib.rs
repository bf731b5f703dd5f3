//! Schema migrations. Each file is dated and never edited once released; the same migrations
//! run on SQLite and PostgreSQL, at server start-up and via `clickledger migrate`.
//!
//! Decimal columns: `decimal_len(…)` on PostgreSQL, `text` on SQLite, where `decimal_len` would
//! make a float (see `m20261202_000007_exact_decimals`).

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_foundation;
mod m20261125_000002_attribution;
mod m20261125_000003_commission;
mod m20261125_000004_notifier;
mod m20261125_000005_mail;
mod m20261129_000006_tenant_time_zone;
mod m20261202_000007_exact_decimals;
mod m20261206_000008_fraud;
mod m20261206_000009_stats_rollups;
mod m20261206_000010_import;
mod m20261206_000011_wider_running_totals;
mod m20261207_000012_sessions_and_audit;
mod m20261207_000013_api_key_limits_and_signing;
mod m20261207_000014_fraud_review;
mod m20261207_000015_api_key_dialects;
mod m20261207_000016_click_fraud;
mod m20261207_000017_fraud_rules_more;
mod m20261207_000019_click_country;
mod m20261207_000020_import_jobs;
mod m20261207_000021_migration_from_trackers;
mod m20261207_000023_player_signals_by_player;
pub mod m20261207_000024_coarse_rollups;
mod m20261207_000025_opening_carryovers;
mod m20261207_000026_imported_cpa_paid;
mod m20261208_000027_flagged_events;
mod util;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_foundation::Migration),
            Box::new(m20261125_000002_attribution::Migration),
            Box::new(m20261125_000003_commission::Migration),
            Box::new(m20261125_000004_notifier::Migration),
            Box::new(m20261125_000005_mail::Migration),
            Box::new(m20261129_000006_tenant_time_zone::Migration),
            Box::new(m20261202_000007_exact_decimals::Migration),
            Box::new(m20261206_000008_fraud::Migration),
            Box::new(m20261206_000009_stats_rollups::Migration),
            Box::new(m20261206_000010_import::Migration),
            Box::new(m20261206_000011_wider_running_totals::Migration),
            Box::new(m20261207_000012_sessions_and_audit::Migration),
            Box::new(m20261207_000013_api_key_limits_and_signing::Migration),
            Box::new(m20261207_000014_fraud_review::Migration),
            Box::new(m20261207_000015_api_key_dialects::Migration),
            Box::new(m20261207_000016_click_fraud::Migration),
            Box::new(m20261207_000017_fraud_rules_more::Migration),
            Box::new(m20261207_000019_click_country::Migration),
            Box::new(m20261207_000020_import_jobs::Migration),
            Box::new(m20261207_000021_migration_from_trackers::Migration),
            Box::new(m20261207_000023_player_signals_by_player::Migration),
            Box::new(m20261207_000024_coarse_rollups::Migration),
            Box::new(m20261207_000025_opening_carryovers::Migration),
            Box::new(m20261207_000026_imported_cpa_paid::Migration),
            Box::new(m20261208_000027_flagged_events::Migration),
        ]
    }
}
