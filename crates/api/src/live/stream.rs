use std::sync::Arc;

use clickledger_persistence::Db;
use clickledger_persistence::conversions::Conversions;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::feeds::{Feed, Payload};

const PAGE: u64 = 500;

/// Opaque to clients; today the tenant's event sequence number.
pub fn cursor_of(seq: i64) -> String {
    format!("c{seq}")
}

pub fn parse_cursor(cursor: &str) -> Option<i64> {
    cursor.strip_prefix('c')?.parse().ok().filter(|seq: &i64| *seq >= 0)
}

/// The frames of `feed`'s viewer after `since` (or from now), then live: no gap, no
/// duplicate. What the subscriber missed (before it joined, or while it lagged behind the
/// feed) it reads from the database and has resolved for itself; everything else is the
/// feed's shared payload.
pub fn subscriber_frames(
    feed: Arc<Feed>,
    db: Db,
    since: Option<i64>,
) -> impl Stream<Item = Result<Payload, clickledger_persistence::Error>> {
    async_stream::try_stream! {
        // Subscribe before reading, and read only once the feed knows where it starts, so
        // nothing committed in between is missed.
        let mut rx = feed.subscribe();
        feed.started().await;
        let repo = Conversions::scoped(&db, feed.scope());
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
                for event in events.into_iter().filter(|event| feed.topic().admits(event)) {
                    yield feed.resolve_replayed(event).await;
                }
                if !full_page {
                    break;
                }
            }
            // Stream: follow the feed until it may have skipped something.
            loop {
                match rx.recv().await {
                    Ok(frame) => {
                        if frame.seq <= cursor {
                            continue;
                        }
                        if frame.after > cursor {
                            break; // a gap: read it from the database
                        }
                        cursor = frame.seq;
                        yield frame.payload.clone();
                    }
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The lag path: a feed that falls behind the bounded event broadcast, and a subscriber
    //! that falls behind its feed, must catch up from the database, in order, without gaps or
    //! duplicates.

    use chrono::Utc;
    use clickledger_domain::click_id::{ClickId, ClickSecret};
    use clickledger_domain::postback;
    use clickledger_domain::role::Role;
    use clickledger_persistence::conversions::ConversionEvent;
    use clickledger_persistence::conversions::{AttributionSetup, IngestOutcome, commit_batch, prepare};
    use clickledger_persistence::directory::{Directory, NewTenant};
    use clickledger_persistence::repo::{
        Affiliates, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks,
    };
    use clickledger_persistence::{Db, Scope, tracking};
    use futures_util::StreamExt;
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::live::{FeedKey, Feeds, Live, ResolveFrame};

    /// Frames that say which event they are.
    struct SeqOnly;

    impl ResolveFrame for SeqOnly {
        fn resolve(&self, event: ConversionEvent) -> BoxFuture<'static, Payload> {
            Box::pin(async move { Payload::from(event.seq.to_string()) })
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_catches_up_from_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(
            &format!("sqlite://{}", dir.path().join("lag.db").display()),
            clickledger_persistence::sealed::KeyRing::ephemeral(),
        )
        .await
        .unwrap();
        db.migrate().await.unwrap();
        let (tenant, _) = Directory::new(&db)
            .sign_up(NewTenant {
                name: "Lag".into(),
                slug: "lag".into(),
                owner_email: "o@lag.test".into(),
                owner_name: "O".into(),
                owner_password_hash: "x".into(),
            })
            .await
            .unwrap();
        let staff = Scope::staff(tenant.id);
        let affiliate = Affiliates::scoped(&db, staff)
            .create(NewAffiliate {
                name: "A".into(),
                email: "a@lag.test".into(),
                parent_id: None,
                password_hash: None,
            })
            .await
            .unwrap();
        let campaign = Campaigns::scoped(&db, staff)
            .create(NewCampaign {
                name: "C".into(),
                landing_url: "https://lag.test".into(),
                fallback_url: None,
                attribution_model: "LAST_CLICK".into(),
                lookback_days: 30,
            })
            .await
            .unwrap();
        let link = TrackingLinks::scoped(&db, staff)
            .create(NewTrackingLink { affiliate_id: affiliate.id, campaign_id: campaign.id })
            .await
            .unwrap();
        let target = tracking::link_target(&db, &link.code).await.unwrap().unwrap();
        let secret = ClickSecret::from_bytes(&target.click_secret).unwrap();
        let setup =
            AttributionSetup { keys: tracking::click_keys(&db, tenant.id).await.unwrap(), data_driven: None };

        // Room for 2 events and 2 frames only; the subscriber will not read while 12 are
        // published.
        let live = Live::with_capacity(2);
        let feeds = Feeds::with_capacity(live.clone(), db.clone(), 2);
        let key = FeedKey {
            document: "subscription { conversions { cursor } }".into(),
            operation_name: None,
            variables: "{}".into(),
            scope: staff,
            role: Role::Owner,
            topic: crate::live::Topic::Conversions,
        };
        let feed = feeds.join(key, || std::sync::Arc::new(SeqOnly));
        let stream = subscriber_frames(feed, db.clone(), Some(0));
        futures_util::pin_mut!(stream);
        let mut expected = Vec::new();
        // Poll once so the stream subscribes, then fall behind.
        let first = tokio::time::timeout(std::time::Duration::from_millis(50), stream.next()).await;
        assert!(first.is_err(), "nothing to deliver yet");
        for n in 0..12 {
            let click = ClickId::mint(target.click_tag, target.link_tag, Utc::now()).encode(&secret);
            let txn = format!("T{n}");
            let parsed = postback::parse(
                [
                    ("click_id", click.as_str()),
                    ("event", "deposit"),
                    ("txn_id", txn.as_str()),
                    ("amount", "1"),
                    ("currency", "EUR"),
                ],
                Utc::now(),
            )
            .unwrap();
            let prepared = prepare(&db, tenant.id, &setup, parsed, Utc::now()).await.unwrap();
            let Ok(IngestOutcome::Created(event)) =
                commit_batch(&db, vec![prepared]).await.unwrap().remove(0)
            else {
                panic!("not created")
            };
            expected.push(event.seq);
            live.publish(event);
        }
        let mut received = Vec::new();
        while received.len() < expected.len() {
            let event = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
                .await
                .expect("the subscriber catches up")
                .expect("stream open")
                .unwrap();
            received.push(event.parse::<i64>().unwrap());
        }
        assert_eq!(received, expected, "every event once, in order");
    }
}
