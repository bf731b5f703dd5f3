//! sea-orm entities: the storage shape, nothing more. They stay private to this crate; what
//! leaves it are the records in `crate::records`, already scoped to a tenant.

pub mod affiliate_fraud_days;
pub mod affiliate_logins;
pub mod affiliates;
pub mod api_keys;
pub mod audit_log;
pub mod campaigns;
pub mod clicks;
pub mod commission_plan_versions;
pub mod commission_plans;
pub mod conversion_credits;
pub mod conversion_history;
pub mod conversions;
pub mod digest_marks;
pub mod events;
mod exact_decimal;
pub mod fraud_alert_cursors;
pub mod fraud_alert_digest;
pub mod fraud_alert_mails;
pub mod fraud_settings;
pub mod fx_rates;
pub mod import_jobs;
pub mod imported_clicks;
pub mod instance_settings;
pub mod ip_ranges;
pub mod ledger_entries;
pub mod notifier_cursors;
pub mod opening_carryovers;
pub mod outbound_emails;
pub mod plan_assignments;
pub mod player_facts;
pub mod player_signals;
pub mod players;
pub mod postback_attempts;
pub mod postback_deliveries;
pub mod postback_endpoints;
pub mod promo_claims;
pub mod statements;
pub mod tenants;
pub mod tracking_links;
pub mod user_tokens;
pub mod users;

pub use exact_decimal::ExactDecimal;
