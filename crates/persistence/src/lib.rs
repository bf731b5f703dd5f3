//! Storage for Clickledger: sea-orm entities behind tenant-scoped repositories.
//!
//! Every repository is built from a [`Scope`] (tenant + who is looking), and the unscoped
//! entities are private to this crate, so there is no query path that forgets the tenant.
//! The few entry points that *establish* a scope (sign-up, login, API-key authentication)
//! live in [`directory`].

pub mod audit;
mod click_rows;
pub mod commission;
pub mod conversions;
mod db;
pub mod directory;
mod entities;
mod error;
pub mod event_cursor;
pub mod fraud;
pub mod fraud_alert_mail;
pub mod fraud_report;
pub mod import;
pub mod import_jobs;
pub mod ip_lists;
pub mod key_revocations;
pub mod legacy_links;
pub mod mail;
pub mod outbound;
mod page;
pub mod reconcile;
pub mod records;
pub mod repo;
pub mod rollups;
mod scope;
pub mod sealed;
pub mod secrets;
pub mod sessions;
pub mod settings;
mod tcp_nodelay;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod tracking;

pub use db::{Backend, Db};
pub use error::{Error, StaleBalance};
pub use page::{Page, PageRequest};
pub use scope::{Scope, Viewer};
pub use sea_orm::DbErr;

pub type Result<T, E = Error> = std::result::Result<T, E>;
