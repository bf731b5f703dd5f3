//! Clickledger's domain: pure logic with no I/O. Everything here is deterministic given its
//! inputs (randomness and clocks are passed in or confined to constructors), which is what
//! makes it property-testable.

pub mod attribution;
pub mod audit;
pub mod click_id;
pub mod click_map;
pub mod commission;
pub mod conversion;
pub mod dialect;
pub mod error;
pub mod fraud;
pub mod ids;
pub mod migration;
pub mod money;
pub mod password;
pub mod period;
pub mod postback;
pub mod reconcile;
pub mod reporting;
pub mod role;
pub mod stats_changes;
pub mod stats_sources;
pub mod stats_window;
pub mod status;
pub mod url_template;
pub mod user_agent;
pub mod validate;

pub use error::Error;
