//! Outbound delivery, driven by the conversion event log: affiliate postbacks (webhooks),
//! signed per the Standard Webhooks specification, stored before they are tried, retried on a
//! fixed schedule, and never sent to a non-public address.

mod alert_scan;
pub mod clock;
pub mod mail;
pub mod postback;
pub mod schedule;
pub mod signing;
pub mod ssrf;
pub mod template;
mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use worker::{Error, Notifier, NotifierConfig, NotifierHandle};
