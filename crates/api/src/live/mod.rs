//! Live conversions. After commit, each event is broadcast in-process; with PostgreSQL every
//! replica also hears about events committed elsewhere (LISTEN/NOTIFY) and reads them from the
//! event table. Subscribers follow the broadcast and go back to the database whenever they
//! might have missed something (a gap in the sequence, or lagging behind the broadcast).

mod fanout;
mod stream;

pub use fanout::Live;
pub use stream::{conversion_stream, cursor_of, parse_cursor};
