//! Live conversions. After commit, each event is broadcast in-process; with PostgreSQL every
//! replica also hears about events committed elsewhere (LISTEN/NOTIFY) and reads them from the
//! event table. Each distinct (subscription document, viewer) is a feed that resolves an event
//! once and hands the same bytes to all its subscribers. Feeds and subscribers go back to the
//! database whenever they might have missed something (a gap in the sequence, or lagging
//! behind a broadcast).

mod fanout;
mod feeds;
mod stream;
mod tenant_signals;

pub use fanout::Live;
pub use feeds::{FeedKey, Feeds, Payload, ResolveFrame, Topic};
pub use stream::{cursor_of, parse_cursor, subscriber_frames};
pub use tenant_signals::TenantSignals;
