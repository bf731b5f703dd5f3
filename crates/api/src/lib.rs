//! The Clickledger server: poem HTTP routes, the async-graphql schema, authentication, and
//! the command line that starts it all.

mod admin;
mod api_keys;
pub mod auth;
mod banner;
pub mod cli;
pub mod config;
mod demo;
pub mod error;
pub mod graphql;
mod http;
mod import;
mod ingest;
mod live;
mod metrics;
mod models;
mod outbound;
mod reconcile;
mod secret_key;
pub mod server;
mod sessions;
mod simulate;
mod state;
pub(crate) mod tracking;

pub use error::Error;
pub use state::AppState;
