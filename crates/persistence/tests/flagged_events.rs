//! `events.flagged` (migration `m20261208_000027_flagged_events`): the fraud alerts read only
//! the conversions whose created event says they were flagged, so the events stored before
//! the column existed must say so too. Runs on SQLite, and on PostgreSQL with
//! `TEST_DATABASE_URL`.

use chrono::Utc;
use clickledger_domain::ids::{ConversionId, TenantId};
use clickledger_migration::{Migrator, MigratorTrait};
use clickledger_persistence::conversions::flagged_created_after;
use clickledger_persistence::sealed::KeyRing;
use clickledger_persistence::test_support::TestDatabase;
use clickledger_persistence::{Backend, Db};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, Database};

const FLAGGED_EVENTS: &str = "m20261208_000027_flagged_events";

#[tokio::test]
async fn created_events_stored_before_the_migration_are_flagged_as_their_conversions_are() {
    let database = TestDatabase::create("flagged_events").await;
    let url = if database.url.starts_with("sqlite:") {
        format!("{}?mode=rwc", database.url)
    } else {
        database.url.clone()
    };
    let old = Database::connect(url).await.unwrap();
    let before =
        Migrator::migrations().iter().position(|m| m.name() == FLAGGED_EVENTS).expect("the migration");
    Migrator::up(&old, Some(u32::try_from(before).unwrap())).await.unwrap();

    let tenant = TenantId::new();
    let now = Utc::now();
    let flags = r#"[{"rule":"velocity","score":40,"action":"flag","evidence":"5 registrations from 203.0.113.9 within 1 h"}]"#;
    let (clean, flagged) = (ConversionId::new(), ConversionId::new());
    for (seq, (id, fraud_flags)) in [(clean, "[]"), (flagged, flags)].into_iter().enumerate() {
        let txn = format!("T{seq}");
        let conversion = Query::insert()
            .into_table(Alias::new("conversions"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "dedupe_key",
                    "txn_id",
                    "event",
                    "status",
                    "attributed",
                    "journey",
                    "payload_hash",
                    "payload",
                    "occurred_at",
                    "received_at",
                    "updated_at",
                    "fraud_flags",
                ]
                .map(Alias::new),
            )
            .values_panic::<Vec<Expr>>(vec![
                id.uuid().into(),
                tenant.uuid().into(),
                format!("txn:{txn}").into(),
                txn.into(),
                "registration".into(),
                "approved".into(),
                false.into(),
                "[]".into(),
                "".into(),
                "{}".into(),
                now.into(),
                now.into(),
                now.into(),
                fraud_flags.into(),
            ])
            .to_owned();
        old.execute(&conversion).await.unwrap();
        // Its created event, and a status change after it (which is never flagged).
        for (n, kind) in ["conversion.created", "conversion.status_changed"].into_iter().enumerate() {
            let event = Query::insert()
                .into_table(Alias::new("events"))
                .columns(
                    ["tenant_id", "seq", "conversion_id", "kind", "status", "created_at"].map(Alias::new),
                )
                .values_panic::<Vec<Expr>>(vec![
                    tenant.uuid().into(),
                    i64::try_from(seq * 2 + n + 1).unwrap().into(),
                    id.uuid().into(),
                    kind.into(),
                    "approved".into(),
                    now.into(),
                ])
                .to_owned();
            old.execute(&event).await.unwrap();
        }
    }
    old.close().await.unwrap();

    let db = Db::connect(&database.url, KeyRing::ephemeral()).await.unwrap();
    db.migrate().await.unwrap();
    let (events, last) = flagged_created_after(&db, tenant, 0, 100).await.unwrap();
    assert_eq!(last, 4, "every event was read");
    let found: Vec<_> = events.iter().map(|e| (e.conversion.id, e.seq, e.kind.as_str())).collect();
    assert_eq!(
        found,
        vec![(flagged, 3, "conversion.created")],
        "only the flagged conversion's created event"
    );
    assert_eq!(db.backend() == Backend::Postgres, database.url.starts_with("postgres"));
    db.close().await;
}
