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

#[cfg(test)]
mod tests {
    //! The lag path: a subscriber that falls behind the bounded broadcast must catch up from
    //! the database, in order, without gaps or duplicates.

    use chrono::Utc;
    use clickledger_domain::click_id::{ClickId, ClickSecret};
    use clickledger_domain::postback;
    use clickledger_persistence::conversions::{AttributionSetup, IngestOutcome, commit_batch, prepare};
    use clickledger_persistence::directory::{Directory, NewTenant};
    use clickledger_persistence::repo::{
        Affiliates, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks,
    };
    use clickledger_persistence::{Db, Scope, tracking};
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_lagging_subscriber_catches_up_from_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("lag.db").display())).await.unwrap();
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

        // Room for 2 events only; the subscriber will not read while 12 are published.
        let live = Live::with_capacity(2);
        let stream = conversion_stream(db.clone(), live.clone(), staff, Some(0));
        futures_util::pin_mut!(stream);
        let mut expected = Vec::new();
        // Poll once so the stream subscribes, then fall behind.
        let first = tokio::time::timeout(std::time::Duration::from_millis(50), stream.next()).await;
        assert!(first.is_err(), "nothing to deliver yet");
        for n in 0..12 {
            let click = ClickId::mint(target.click_tag, target.link_tag, Utc::now()).encode(&secret);
            let txn = format!("T{n}");
            let parsed = postback::parse([
                ("click_id", click.as_str()),
                ("event", "deposit"),
                ("txn_id", txn.as_str()),
                ("amount", "1"),
                ("currency", "EUR"),
            ])
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
            received.push(event.seq);
        }
        assert_eq!(received, expected, "every event once, in order");
    }
}
