use std::sync::Arc;

use clickledger_persistence::conversions::{ConversionEvent, Conversions};
use clickledger_persistence::{Db, Scope, Viewer};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::Live;

const PAGE: u64 = 500;

/// Opaque to clients; today the tenant's event sequence number.
pub fn cursor_of(seq: i64) -> String {
    format!("c{seq}")
}

pub fn parse_cursor(cursor: &str) -> Option<i64> {
    cursor.strip_prefix('c')?.parse().ok().filter(|seq: &i64| *seq >= 0)
}

/// The viewer's events after `since` (or from now), then live: no gap, no duplicate.
pub fn conversion_stream(
    db: Db,
    live: Arc<Live>,
    scope: Scope,
    since: Option<i64>,
) -> impl Stream<Item = Result<ConversionEvent, clickledger_persistence::Error>> {
    async_stream::try_stream! {
        // Subscribe before reading, so nothing committed in between is missed.
        let mut rx = live.subscribe();
        let repo = Conversions::scoped(&db, scope);
        let mut cursor = match since {
            Some(seq) => seq,
            None => repo.latest_seq().await?,
        };
        loop {
            // State: whatever the database has after the cursor.
            loop {
                let (events, last) = repo.events_after(cursor, PAGE).await?;
                let full_page = last - cursor >= PAGE as i64;
                cursor = last;
                for event in events {
                    yield event;
                }
                if !full_page {
                    break;
                }
            }
            // Stream: follow the broadcast until it may have skipped something.
            loop {
                match rx.recv().await {
                    Ok(event) => {
                        if event.tenant_id != scope.tenant() || event.seq <= cursor {
                            continue;
                        }
                        if event.seq > cursor + 1 {
                            break; // a gap: read it from the database
                        }
                        cursor = event.seq;
                        if let Some(visible) = visible_to(&event, scope) {
                            yield visible;
                        }
                    }
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                }
            }
        }
    }
}

fn visible_to(event: &ConversionEvent, scope: Scope) -> Option<ConversionEvent> {
    match scope.viewer() {
        Viewer::Staff => Some(event.clone()),
        Viewer::Affiliate(me) => {
            let conversion = event.conversion.clone().for_affiliate(me)?;
            Some(ConversionEvent { conversion, ..event.clone() })
        }
    }
}
