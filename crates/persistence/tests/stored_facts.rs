//! What attribution reads back from storage must be something this build understands: an
//! unknown stored model or unattributed reason is an error, never a silent default (a default
//! model would credit the wrong affiliate; a default reason would explain it wrongly).

use chrono::Utc;
use clickledger_domain::click_id::{ClickId, ClickSecret};
use clickledger_domain::postback;
use clickledger_persistence::conversions::{AttributionSetup, Conversions, IngestOutcome, ingest, prepare};
use clickledger_persistence::repo::{
    Affiliates, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks,
};
use clickledger_persistence::test_support::{execute_raw, fresh_db, tenant};
use clickledger_persistence::{Error, Scope, tracking};

#[tokio::test]
async fn an_unknown_stored_model_is_an_error_not_last_click() {
    let t = fresh_db("stored-model").await;
    let a = tenant(&t.db, "sigma").await;
    let staff = Scope::staff(a.id);
    let partner = Affiliates::scoped(&t.db, staff)
        .create(NewAffiliate {
            name: "P".into(),
            email: "p@s.test".into(),
            parent_id: None,
            password_hash: None,
        })
        .await
        .unwrap();
    let campaign = Campaigns::scoped(&t.db, staff)
        .create(NewCampaign {
            name: "c".into(),
            landing_url: "https://s.test".into(),
            fallback_url: None,
            attribution_model: "FIRST_CLICK".into(),
            lookback_days: 30,
        })
        .await
        .unwrap();
    let link = TrackingLinks::scoped(&t.db, staff)
        .create(NewTrackingLink { affiliate_id: partner.id, campaign_id: campaign.id })
        .await
        .unwrap();
    let target = tracking::link_target(&t.db, &link.code).await.unwrap().unwrap();
    let secret = ClickSecret::from_bytes(&target.click_secret).unwrap();
    let click = ClickId::mint(target.click_tag, target.link_tag, Utc::now()).encode(&secret);
    let setup =
        AttributionSetup { keys: tracking::click_keys(&t.db, a.id).await.unwrap(), data_driven: None };
    // Written by a newer build, or by hand.
    execute_raw(&t.db, "UPDATE campaigns SET attribution_model = 'TIME_TRAVEL'").await;

    let parsed = postback::parse(
        [("click_id", click.as_str()), ("event", "registration"), ("player_id", "p1")],
        Utc::now(),
    )
    .unwrap();
    match prepare(&t.db, a.id, &setup, parsed, Utc::now()).await {
        Err(Error::Corrupt(what)) => assert!(what.contains("TIME_TRAVEL"), "{what}"),
        Err(other) => panic!("expected a corrupt-row error, got {other}"),
        Ok(_) => panic!("an unknown model was read as some other model"),
    }
}

#[tokio::test]
async fn an_unknown_stored_unattributed_reason_is_an_error() {
    let t = fresh_db("stored-reason").await;
    let a = tenant(&t.db, "tau").await;
    let setup =
        AttributionSetup { keys: tracking::click_keys(&t.db, a.id).await.unwrap(), data_driven: None };
    let parsed = postback::parse(
        [
            ("event", "deposit"),
            ("player_id", "nobody"),
            ("txn_id", "T1"),
            ("amount", "5"),
            ("currency", "EUR"),
        ],
        Utc::now(),
    )
    .unwrap();
    let IngestOutcome::Created(event) = ingest(&t.db, a.id, &setup, &parsed, Utc::now()).await.unwrap()
    else {
        panic!("not created")
    };
    let conversions = Conversions::scoped(&t.db, Scope::staff(a.id));
    let stored = conversions.get(event.conversion.id).await.unwrap();
    assert_eq!(stored.unattributed_reason.map(|r| r.as_str()), Some("unknown_player"));

    execute_raw(&t.db, "UPDATE conversions SET unattributed_reason = 'moon_phase'").await;
    assert!(matches!(conversions.get(event.conversion.id).await, Err(Error::Corrupt(_))));
}
