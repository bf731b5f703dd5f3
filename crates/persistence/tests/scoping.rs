//! Repository-level tests on a real database: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set (each test in its own fresh database).

use chrono::Utc;
use clickledger_domain::click_id::ClickId;
use clickledger_domain::postback;
use clickledger_persistence::conversions::{
    AttributionSetup, IngestOutcome, Prepared, commit_batch, prepare,
};
use clickledger_persistence::directory::{Directory, NewTenant};
use clickledger_persistence::records::{Affiliate, Tenant};
use clickledger_persistence::repo::{
    Affiliates, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks,
};
use clickledger_persistence::{Db, Error, PageRequest, Scope, Viewer, tracking};

struct TestDb {
    db: Db,
    _dir: Option<tempfile::TempDir>,
    /// (admin URL, database) to drop afterwards, on PostgreSQL.
    drop_on_exit: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop_on_exit.take() else { return };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

async fn fresh_db() -> TestDb {
    let (url, dir, drop_on_exit) = match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Connection;
            let name = format!("clickledger_repo_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(base, _)| base.to_owned()).unwrap();
            (format!("{base}/{name}"), None, Some((admin.clone(), name)))
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}", dir.path().join("t.db").display()), Some(dir), None)
        }
    };
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    TestDb { db, _dir: dir, drop_on_exit }
}

async fn tenant(db: &Db, slug: &str) -> Tenant {
    Directory::new(db)
        .sign_up(NewTenant {
            name: slug.into(),
            slug: slug.into(),
            owner_email: format!("owner@{slug}.test"),
            owner_name: "Owner".into(),
            owner_password_hash: "x".into(),
        })
        .await
        .unwrap()
        .0
}

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
    let t = fresh_db().await;
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
    let t = fresh_db().await;
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

#[tokio::test]
async fn identical_postbacks_in_one_group_commit_make_one_conversion() {
    let t = fresh_db().await;
    let a = tenant(&t.db, "delta").await;
    let staff = Scope::staff(a.id);
    let partner = affiliate(&t.db, staff, "p@d.test", None).await;
    let campaign = Campaigns::scoped(&t.db, staff)
        .create(NewCampaign {
            name: "c".into(),
            landing_url: "https://d.test".into(),
            fallback_url: None,
            attribution_model: "LAST_CLICK".into(),
            lookback_days: 30,
        })
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
    let parsed = postback::parse([
        ("click_id", click.as_str()),
        ("event", "ftd"),
        ("txn_id", "T-1"),
        ("amount", "10"),
        ("currency", "EUR"),
    ])
    .unwrap();
    let mut batch: Vec<Prepared> = Vec::new();
    for _ in 0..5 {
        batch.push(prepare(&t.db, a.id, &setup, parsed.clone(), Utc::now()).await.unwrap());
    }
    let outcomes = commit_batch(&t.db, batch).await.unwrap();
    let created: Vec<_> = outcomes.iter().filter(|o| matches!(o, Ok(IngestOutcome::Created(_)))).collect();
    let duplicates = outcomes.iter().filter(|o| matches!(o, Ok(IngestOutcome::Duplicate(_)))).count();
    assert_eq!((created.len(), duplicates), (1, 4));
    let Ok(IngestOutcome::Created(event)) = created[0] else { unreachable!() };
    assert_eq!(event.seq, 1, "duplicates give their sequence numbers back");
    assert_eq!(event.conversion.credits.len(), 1);
    assert_eq!(event.conversion.credits[0].affiliate_id, partner.id);
}
