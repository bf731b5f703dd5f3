//! Repository-level tests on a real database: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set (each test in its own fresh database).

use chrono::Utc;
use clickledger_domain::click_id::ClickId;
use clickledger_domain::ids::TenantId;
use clickledger_domain::postback;
use clickledger_persistence::conversions::{
    AttributionSetup, IngestOutcome, Prepared, commit_batch, prepare,
};
use clickledger_persistence::records::{Affiliate, Tenant};
use clickledger_persistence::repo::{
    Affiliates, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks,
};
use clickledger_persistence::test_support::{World, fresh_db, tenant, world};
use clickledger_persistence::{Db, Error, PageRequest, Scope, Viewer, tracking};

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
async fn another_tenants_rows_are_not_found() {
    let t = fresh_db("repo").await;
    let (a, b) = (tenant(&t.db, "alpha").await, tenant(&t.db, "beta").await);
    let alice = affiliate(&t.db, Scope::staff(a.id), "alice@a.test", None).await;

    let as_b = Affiliates::scoped(&t.db, Scope::staff(b.id));
    assert!(matches!(as_b.get(alice.id).await, Err(Error::NotFound)));
    assert!(as_b.list(PageRequest::default()).await.unwrap().items.is_empty());
    let patch =
        clickledger_persistence::repo::AffiliatePatch { name: Some("mallory".into()), ..Default::default() };
    assert!(matches!(as_b.update(alice.id, patch).await, Err(Error::NotFound)));
    // …and a link in B cannot point at A's affiliate.
    let campaign = Campaigns::scoped(&t.db, Scope::staff(b.id))
        .create(NewCampaign {
            name: "c".into(),
            landing_url: "https://b.test".into(),
            fallback_url: None,
            attribution_model: "LAST_CLICK".into(),
            lookback_days: 30,
        })
        .await
        .unwrap();
    let links_of_b = TrackingLinks::scoped(&t.db, Scope::staff(b.id));
    let link = links_of_b.create(NewTrackingLink { affiliate_id: alice.id, campaign_id: campaign.id }).await;
    assert!(matches!(link, Err(Error::NotFound)));
    assert_eq!(
        Affiliates::scoped(&t.db, Scope::staff(a.id)).get(alice.id).await.unwrap().name,
        "alice@a.test"
    );
}

#[tokio::test]
async fn an_affiliate_sees_itself_and_its_sub_affiliates_only() {
    let t = fresh_db("repo").await;
    let a = tenant(&t.db, "gamma").await;
    let staff = Scope::staff(a.id);
    let parent = affiliate(&t.db, staff, "parent@g.test", None).await;
    let child = affiliate(&t.db, staff, "child@g.test", Some(&parent)).await;
    let stranger = affiliate(&t.db, staff, "stranger@g.test", None).await;

    let as_parent = Affiliates::scoped(&t.db, Scope::new(a.id, Viewer::Affiliate(parent.id)));
    let mut seen: Vec<_> =
        as_parent.list(PageRequest::default()).await.unwrap().items.into_iter().map(|a| a.id).collect();
    seen.sort();
    let mut expected = vec![parent.id, child.id];
    expected.sort();
    assert_eq!(seen, expected);
    assert!(matches!(as_parent.get(stranger.id).await, Err(Error::NotFound)));
    assert!(matches!(
        as_parent
            .create(NewAffiliate {
                name: "x".into(),
                email: "x@g.test".into(),
                parent_id: None,
                password_hash: None
            })
            .await,
        Err(Error::Forbidden)
    ));
}

/// A `test_support::world`, with what it takes to mint its click IDs and prepare postbacks.
struct Tracked {
    tenant: Tenant,
    partner: Affiliate,
    setup: AttributionSetup,
    secret: clickledger_domain::click_id::ClickSecret,
    target: tracking::LinkTarget,
}

impl Tracked {
    async fn new(db: &Db, slug: &str) -> Tracked {
        let World { tenant, affiliate: partner, link, .. } = world(db, slug).await;
        let target = tracking::link_target(db, &link.code).await.unwrap().unwrap();
        let secret = clickledger_domain::click_id::ClickSecret::from_bytes(&target.click_secret).unwrap();
        let setup =
            AttributionSetup { keys: tracking::click_keys(db, tenant.id).await.unwrap(), data_driven: None };
        Tracked { tenant, partner, setup, secret, target }
    }

    fn click(&self) -> String {
        ClickId::mint(self.target.click_tag, self.target.link_tag, Utc::now()).encode(&self.secret)
    }

    async fn prepare(&self, db: &Db, fields: &[(&str, &str)]) -> Prepared {
        let parsed = postback::parse(fields.iter().copied(), Utc::now()).unwrap();
        prepare(db, self.tenant.id, &self.setup, parsed, Utc::now()).await.unwrap()
    }
}

#[tokio::test]
async fn identical_postbacks_in_one_group_commit_make_one_conversion() {
    let t = fresh_db("repo").await;
    let a = Tracked::new(&t.db, "delta").await;
    let click = a.click();
    let fields = [
        ("click_id", click.as_str()),
        ("event", "ftd"),
        ("txn_id", "T-1"),
        ("amount", "10"),
        ("currency", "EUR"),
    ];
    let mut batch: Vec<Prepared> = Vec::new();
    for _ in 0..5 {
        batch.push(a.prepare(&t.db, &fields).await);
    }
    let outcomes = commit_batch(&t.db, batch).await.unwrap();
    let created: Vec<_> = outcomes.iter().filter(|o| matches!(o, Ok(IngestOutcome::Created(_)))).collect();
    let duplicates = outcomes.iter().filter(|o| matches!(o, Ok(IngestOutcome::Duplicate(_)))).count();
    assert_eq!((created.len(), duplicates), (1, 4));
    let Ok(IngestOutcome::Created(event)) = created[0] else { unreachable!() };
    assert_eq!(event.seq, 1, "duplicates give their sequence numbers back");
    assert_eq!(event.conversion.credits.len(), 1);
    assert_eq!(event.conversion.credits[0].affiliate_id, a.partner.id);
}

/// One group commit holding postbacks that depend on each other (a deposit by a player bound
/// in the same batch, a status update and a chargeback of a transaction in the same batch)
/// and postbacks of two tenants: each is stored as if it had come alone, in arrival order,
/// and each tenant's events get consecutive sequence numbers.
#[tokio::test]
async fn a_mixed_group_commit_stores_each_postback_as_if_alone() {
    let t = fresh_db("repo").await;
    let (a, b) = (Tracked::new(&t.db, "echo").await, Tracked::new(&t.db, "foxtrot").await);
    let (click_a, click_b) = (a.click(), b.click());
    let batch = vec![
        a.prepare(&t.db, &[("click_id", &click_a), ("event", "registration"), ("player_id", "P1")]).await,
        a.prepare(
            &t.db,
            &[
                ("event", "deposit"),
                ("player_id", "P1"),
                ("txn_id", "D-1"),
                ("amount", "50"),
                ("currency", "EUR"),
            ],
        )
        .await,
        a.prepare(
            &t.db,
            &[
                ("click_id", &click_a),
                ("event", "ftd"),
                ("txn_id", "T-2"),
                ("amount", "20"),
                ("currency", "EUR"),
                ("status", "pending"),
            ],
        )
        .await,
        b.prepare(
            &t.db,
            &[
                ("click_id", &click_b),
                ("event", "ftd"),
                ("txn_id", "T-2"),
                ("amount", "20"),
                ("currency", "EUR"),
            ],
        )
        .await,
        a.prepare(
            &t.db,
            &[
                ("click_id", &click_a),
                ("event", "ftd"),
                ("txn_id", "T-2"),
                ("amount", "20"),
                ("currency", "EUR"),
                ("status", "approved"),
            ],
        )
        .await,
        a.prepare(
            &t.db,
            &[
                ("click_id", &click_a),
                ("event", "chargeback"),
                ("txn_id", "T-2"),
                ("amount", "20"),
                ("currency", "EUR"),
            ],
        )
        .await,
        a.prepare(
            &t.db,
            &[
                ("click_id", &click_a),
                ("event", "ftd"),
                ("txn_id", "T-2"),
                ("amount", "99"),
                ("currency", "EUR"),
            ],
        )
        .await,
    ];
    let outcomes = commit_batch(&t.db, batch).await.unwrap();
    let summary: Vec<String> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Ok(IngestOutcome::Created(e)) => format!(
                "created {} {} {}",
                e.conversion.event.as_str(),
                e.conversion.status.as_str(),
                e.conversion.credits.iter().map(|c| c.affiliate_id.to_string()).collect::<Vec<_>>().join(",")
            ),
            Ok(IngestOutcome::StatusChanged(e)) => format!("changed {}", e.conversion.status.as_str()),
            Ok(IngestOutcome::Duplicate(_)) => "duplicate".into(),
            Err(Error::Mismatch { fields }) => format!("mismatch {}", fields.join(",")),
            Err(other) => format!("error {other}"),
        })
        .collect();
    let (pa, pb) = (a.partner.id.to_string(), b.partner.id.to_string());
    assert_eq!(
        summary,
        [
            format!("created registration approved {pa}"),
            format!("created deposit approved {pa}"),
            format!("created ftd pending {pa}"),
            format!("created ftd approved {pb}"),
            "changed approved".to_owned(),
            format!("created chargeback approved {pa}"),
            "mismatch amount".to_owned(),
        ]
    );
    let lifetime = match &outcomes[1] {
        Ok(IngestOutcome::Created(e)) => e.conversion.model.clone(),
        _ => None,
    };
    assert_eq!(lifetime.as_deref(), Some("LIFETIME"), "the deposit follows the player bound just before it");

    for (tracked, expected) in [(&a, 5), (&b, 1)] {
        let (events, last) =
            clickledger_persistence::conversions::events_after(&t.db, tracked.tenant.id, 0, 100)
                .await
                .unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=expected).collect::<Vec<_>>(), "consecutive sequence numbers, none lost");
        assert_eq!(last, expected);
        let mut announced: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Ok(IngestOutcome::Created(e) | IngestOutcome::StatusChanged(e))
                    if e.tenant_id == tracked.tenant.id =>
                {
                    Some(e.seq)
                }
                _ => None,
            })
            .collect();
        announced.sort();
        assert_eq!(announced, seqs, "each answer names the event stored for it");
    }
}

/// When the multi-row path fails, the batch is stored one postback per savepoint: the one
/// that cannot be stored fails alone and its neighbours are still stored.
#[tokio::test]
async fn a_postback_that_cannot_be_stored_does_not_fail_its_batch() {
    let t = fresh_db("repo").await;
    let a = Tracked::new(&t.db, "hotel").await;
    let click = a.click();
    let deposit = |txn: &'static str| -> [(&str, &str); 5] {
        [("click_id", &click), ("event", "deposit"), ("txn_id", txn), ("amount", "5"), ("currency", "EUR")]
    };
    let mut batch = Vec::new();
    for txn in ["D-1", "D-2", "D-3"] {
        batch.push(a.prepare(&t.db, &deposit(txn)).await);
    }
    // The second one names a tenant that does not exist, so storing it must fail.
    let parsed = postback::parse(deposit("D-ghost"), Utc::now()).unwrap();
    let ghost = prepare(&t.db, TenantId::new(), &a.setup, parsed, Utc::now()).await.unwrap();
    batch.insert(1, ghost);

    let outcomes = commit_batch(&t.db, batch).await.unwrap();
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            Ok(IngestOutcome::Created(_)) => "created",
            Ok(_) => "other",
            Err(_) => "failed",
        })
        .collect();
    assert_eq!(kinds, ["created", "failed", "created", "created"]);
    let (events, last) =
        clickledger_persistence::conversions::events_after(&t.db, a.tenant.id, 0, 10).await.unwrap();
    assert_eq!((events.len(), last), (3, 3), "the three good postbacks, with consecutive sequence numbers");
}

/// Registrations of one group commit sharing a device: each later one is linked to the
/// earlier players of the same batch (kept in memory until the batch's signals are written
/// together), exactly as if they had been stored one by one; and the next batch finds them
/// stored.
#[tokio::test]
async fn players_sharing_a_device_within_one_group_commit_are_linked_in_order() {
    let t = fresh_db("repo").await;
    let a = Tracked::new(&t.db, "golf").await;
    let mut batch = Vec::new();
    for n in 0..4 {
        let click = a.click();
        let player = format!("P{n}");
        let fields = [
            ("click_id", click.as_str()),
            ("event", "registration"),
            ("player_id", &player),
            ("device_id", "D"),
        ];
        batch.push(a.prepare(&t.db, &fields).await);
    }
    let linked_to = |outcome: &Result<IngestOutcome, Error>| -> Vec<String> {
        let Ok(IngestOutcome::Created(event)) = outcome else { panic!("{outcome:?}") };
        let flags = &event.conversion.fraud.flags;
        flags
            .iter()
            .filter(|flag| flag.rule == clickledger_domain::fraud::Rule::MultiAccounting)
            .flat_map(|flag| (0..4).map(|n| format!("P{n}")).filter(|p| flag.evidence.contains(p.as_str())))
            .collect()
    };
    let outcomes = commit_batch(&t.db, batch).await.unwrap();
    let linked: Vec<Vec<String>> = outcomes.iter().map(linked_to).collect();
    assert_eq!(
        linked,
        vec![
            vec![],
            vec!["P0".to_owned()],
            vec!["P0".to_owned(), "P1".to_owned()],
            vec!["P0".to_owned(), "P1".to_owned(), "P2".to_owned()]
        ]
    );
    // The next batch reads them stored (at most three named per signal).
    let click = a.click();
    let later = a
        .prepare(
            &t.db,
            &[
                ("click_id", click.as_str()),
                ("event", "registration"),
                ("player_id", "P9"),
                ("device_id", "D"),
            ],
        )
        .await;
    let outcome = commit_batch(&t.db, vec![later]).await.unwrap().remove(0);
    let Ok(IngestOutcome::Created(event)) = &outcome else { panic!("{outcome:?}") };
    let evidence = &event.conversion.fraud.flags[0].evidence;
    assert!(["P0", "P1", "P2"].iter().all(|p| evidence.contains(p)), "{evidence}");
    // A stored player asking is not its own evidence: the three oldest others are named.
    let deposit = a
        .prepare(
            &t.db,
            &[
                ("player_id", "P1"),
                ("event", "deposit"),
                ("txn_id", "D-1"),
                ("amount", "10"),
                ("currency", "EUR"),
                ("device_id", "D"),
                ("email_hash", "only-P1"),
            ],
        )
        .await;
    let outcome = commit_batch(&t.db, vec![deposit]).await.unwrap().remove(0);
    let Ok(IngestOutcome::Created(event)) = &outcome else { panic!("{outcome:?}") };
    let evidence = &event.conversion.fraud.flags[0].evidence;
    assert!(["P0", "P2", "P3"].iter().all(|p| evidence.contains(p)), "{evidence}");
    assert!(!evidence.contains("P1"), "{evidence}");
}
