//! Commission storage on a real database (SQLite, and PostgreSQL when `TEST_DATABASE_URL`
//! is set): booking inside group commit, scoping of the commission repositories.

use chrono::{Duration, Utc};
use clickledger_domain::click_id::ClickId;
use clickledger_domain::commission::{CpaRules, EntryKind, Plan};
use clickledger_domain::money::Currency;
use clickledger_domain::postback;
use clickledger_persistence::audit::Actor;
use clickledger_persistence::commission::{Commissions, EntryFilter, NewAssignment, Plans};
use clickledger_persistence::conversions::{
    AttributionSetup, IngestOutcome, Prepared, commit_batch, prepare,
};
use clickledger_persistence::records::Affiliate;
use clickledger_persistence::repo::{
    Affiliates, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks,
};
use clickledger_persistence::test_support::{fresh_db, tenant};
use clickledger_persistence::{Db, Error, PageRequest, Scope, Viewer, tracking};
use rust_decimal::Decimal;

async fn affiliate(db: &Db, scope: Scope, email: &str, parent: Option<&Affiliate>) -> Affiliate {
    Affiliates::scoped(db, scope)
        .create(NewAffiliate {
            name: email.into(),
            email: email.into(),
            parent_id: parent.map(|p| p.id),
            password_hash: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn one_group_commit_books_cpa_once_on_the_qualifying_deposit() {
    let t = fresh_db("repo").await;
    let a = tenant(&t.db, "omega").await;
    let staff = Scope::staff(a.id);
    let partner = affiliate(&t.db, staff, "p@o.test", None).await;
    let other = affiliate(&t.db, staff, "q@o.test", None).await;
    let campaign = Campaigns::scoped(&t.db, staff)
        .create(NewCampaign {
            name: "c".into(),
            landing_url: "https://o.test".into(),
            fallback_url: None,
            attribution_model: "LAST_CLICK".into(),
            lookback_days: 30,
        })
        .await
        .unwrap();
    let plan = Plan {
        currency: Currency::USD,
        cpa: Some(CpaRules {
            amount: Decimal::from(50),
            min_total_deposits: Some(Decimal::from(120)),
            ..Default::default()
        }),
        cpl: None,
        revshare: None,
        per_lot: None,
        kpi: Vec::new(),
        overrides: Vec::new(),
    };
    let plans = Plans::scoped(&t.db, staff);
    let stored =
        plans.create("CPA".into(), plan, Utc::now() - Duration::hours(1), Actor::Host).await.unwrap();
    plans
        .assign(
            NewAssignment {
                plan_id: stored.id,
                campaign_id: campaign.id,
                affiliate_id: None,
                effective_from: Utc::now() - Duration::hours(1),
            },
            Actor::Host,
        )
        .await
        .unwrap();
    let link = TrackingLinks::scoped(&t.db, staff)
        .create(NewTrackingLink { affiliate_id: partner.id, campaign_id: campaign.id })
        .await
        .unwrap();
    let target = tracking::link_target(&t.db, &link.code).await.unwrap().unwrap();
    let secret = clickledger_domain::click_id::ClickSecret::from_bytes(&target.click_secret).unwrap();
    let click = ClickId::mint(target.click_tag, target.link_tag, Utc::now()).encode(&secret);
    let setup =
        AttributionSetup { keys: tracking::click_keys(&t.db, a.id).await.unwrap(), data_driven: None };

    // Registration, the first deposit three times (retries), and a second deposit: one batch.
    let registration = vec![("click_id", click.as_str()), ("player_id", "p"), ("event", "registration")];
    let first =
        vec![("player_id", "p"), ("event", "ftd"), ("txn_id", "T1"), ("amount", "100"), ("currency", "USD")];
    let second = vec![
        ("player_id", "p"),
        ("event", "deposit"),
        ("txn_id", "T2"),
        ("amount", "50"),
        ("currency", "USD"),
    ];
    let mut batch: Vec<Prepared> = Vec::new();
    for pairs in [&registration, &first, &first, &first, &second] {
        let parsed = postback::parse(pairs.iter().copied(), Utc::now()).unwrap();
        batch.push(prepare(&t.db, a.id, &setup, parsed, Utc::now()).await.unwrap());
    }
    let outcomes = commit_batch(&t.db, batch).await.unwrap();
    let created: Vec<_> = outcomes
        .into_iter()
        .filter_map(|o| match o {
            Ok(IngestOutcome::Created(event)) => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 3, "registration, T1, T2");
    let commission: Vec<_> =
        created.iter().map(|e| e.conversion.credits[0].commission.map(|m| m.amount)).collect();
    // 100 does not reach 120 in deposits; 100 + 50 does, and CPA is paid on that event.
    assert_eq!(commission, vec![None, None, Some(Decimal::new(5000, 2))]);

    let ledger = Commissions::scoped(&t.db, staff)
        .list(&EntryFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(ledger.items.len(), 1);
    assert_eq!((ledger.items[0].kind, ledger.items[0].affiliate_id), (EntryKind::Cpa, partner.id));
    assert_eq!(ledger.items[0].plan_version, Some(1));

    // The affiliate sees its entry, another affiliate nothing, another tenant nothing.
    let own = Commissions::scoped(&t.db, Scope::new(a.id, Viewer::Affiliate(partner.id)));
    assert_eq!(own.list(&EntryFilter::default(), PageRequest::default()).await.unwrap().items.len(), 1);
    let stranger = Commissions::scoped(&t.db, Scope::new(a.id, Viewer::Affiliate(other.id)));
    assert!(stranger.list(&EntryFilter::default(), PageRequest::default()).await.unwrap().items.is_empty());
    let b = tenant(&t.db, "sigma").await;
    let foreign = Commissions::scoped(&t.db, Scope::staff(b.id));
    assert!(foreign.list(&EntryFilter::default(), PageRequest::default()).await.unwrap().items.is_empty());
    assert!(matches!(Plans::scoped(&t.db, Scope::staff(b.id)).get(stored.id).await, Err(Error::NotFound)));
    let as_affiliate = Plans::scoped(&t.db, Scope::new(a.id, Viewer::Affiliate(partner.id)));
    assert!(matches!(as_affiliate.get(stored.id).await, Err(Error::Forbidden)));
}
