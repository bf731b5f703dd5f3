//! For tests (feature `test-support`): a fresh, migrated database each, a SQLite file in a
//! temporary directory or, when `TEST_DATABASE_URL` names a PostgreSQL server, a new database
//! there, dropped when the test is done.

use crate::directory::{Directory, NewTenant};
use crate::records::{Affiliate, Campaign, Tenant, TrackingLink};
use crate::repo::{Affiliates, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks};
use crate::{Db, Scope};

/// A fresh, empty database for one test, dropped (PostgreSQL) or deleted (SQLite) with it.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// (admin URL, database name) to drop afterwards, on PostgreSQL.
    drop_on_exit: Option<(String, String)>,
}

impl TestDatabase {
    /// Panics when the database cannot be made: a test cannot run without it.
    pub async fn create(prefix: &str) -> TestDatabase {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => TestDatabase::create_on(&admin, prefix).await,
            _ => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("clickledger.db").display());
                TestDatabase { url, _dir: Some(dir), drop_on_exit: None }
            }
        }
    }

    /// A new PostgreSQL database on the server of `admin` (a URL whose database is created
    /// when missing).
    async fn create_on(admin: &str, prefix: &str) -> TestDatabase {
        let name = format!("clickledger_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect_creating_if_missing(admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("TEST_DATABASE_URL's user must be allowed to create databases");
        TestDatabase {
            url: with_database(admin, &name),
            _dir: None,
            drop_on_exit: Some((admin.to_owned(), name)),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop_on_exit.take() else { return };
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own can.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
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

/// A connection to the `TEST_DATABASE_URL` server's database, which is created first (through
/// the `postgres` database every server has) when a fresh server does not have it yet.
async fn connect_creating_if_missing(admin: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(admin).await {
        Ok(conn) => return conn,
        // 3D000: invalid_catalog_name, "database … does not exist".
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("3D000") => {}
        Err(err) => panic!("TEST_DATABASE_URL must accept connections: {err}"),
    }
    let name = database_name(admin);
    let mut server = sqlx::PgConnection::connect(&with_database(admin, "postgres"))
        .await
        .expect("TEST_DATABASE_URL's server must accept connections to its `postgres` database");
    let created =
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut server).await;
    match created {
        Ok(_) => {}
        // 42P04: duplicate_database, another test process made it first.
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P04") => {}
        Err(err) => panic!("cannot create TEST_DATABASE_URL's database {name}: {err}"),
    }
    sqlx::PgConnection::connect(admin).await.expect("TEST_DATABASE_URL must accept connections")
}

/// The database a PostgreSQL URL names (`test` in `postgres://u@h:5432/test?x=y`).
fn database_name(url: &str) -> String {
    let without_query = url.split_once('?').map_or(url, |(base, _)| base);
    match without_query.rfind('/') {
        Some(slash) if slash > "postgres://".len() => without_query[slash + 1..].to_owned(),
        _ => "postgres".to_owned(),
    }
}

/// `url` (a PostgreSQL URL) naming database `name` instead, query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match without_query.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &without_query[..slash],
        _ => without_query,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A fresh database, opened and migrated.
pub struct TestDb {
    pub db: Db,
    _database: TestDatabase,
}

pub async fn fresh_db(prefix: &str) -> TestDb {
    let database = TestDatabase::create(prefix).await;
    let db = Db::connect(&database.url, crate::sealed::KeyRing::ephemeral())
        .await
        .expect("the test database opens");
    db.migrate().await.expect("the migrations run");
    TestDb { db, _database: database }
}

/// A tenant signed up as `slug`, its owner's password hash a placeholder.
pub async fn tenant(db: &Db, slug: &str) -> Tenant {
    Directory::new(db)
        .sign_up(NewTenant {
            name: slug.into(),
            slug: slug.into(),
            owner_email: format!("owner@{slug}.test"),
            owner_name: "Owner".into(),
            owner_password_hash: "x".into(),
        })
        .await
        .expect("sign-up of a fresh slug succeeds")
        .0
}

/// A tenant with one affiliate (`partner@{slug}.test`), one LAST_CLICK campaign and a link
/// between them: enough for a click and a postback.
pub struct World {
    pub tenant: Tenant,
    pub affiliate: Affiliate,
    pub campaign: Campaign,
    pub link: TrackingLink,
}

pub async fn world(db: &Db, slug: &str) -> World {
    let tenant = tenant(db, slug).await;
    let staff = Scope::staff(tenant.id);
    let affiliate = Affiliates::scoped(db, staff)
        .create(NewAffiliate {
            name: "Partner".into(),
            email: format!("partner@{slug}.test"),
            parent_id: None,
            password_hash: None,
        })
        .await
        .expect("a new affiliate is stored");
    let campaign = Campaigns::scoped(db, staff)
        .create(NewCampaign {
            name: "c".into(),
            landing_url: "https://shop.test".into(),
            fallback_url: None,
            attribution_model: "LAST_CLICK".into(),
            lookback_days: 30,
        })
        .await
        .expect("a new campaign is stored");
    let link = TrackingLinks::scoped(db, staff)
        .create(NewTrackingLink { affiliate_id: affiliate.id, campaign_id: campaign.id })
        .await
        .expect("a new link is stored");
    World { tenant, affiliate, campaign, link }
}

/// Runs `sql` as written, for tests that tamper with stored rows (what another build, or a
/// person at the console, could leave behind).
pub async fn execute_raw(db: &Db, sql: &str) {
    use sea_orm::ConnectionTrait;
    db.writer().execute_unprepared(sql).await.expect("the raw statement runs");
}

#[cfg(test)]
mod tests {
    use super::{TestDatabase, database_name, with_database};

    /// A fresh PostgreSQL server has no `test` database: the harness makes it.
    #[tokio::test]
    async fn a_missing_test_database_is_created_first() {
        let Ok(admin) = std::env::var("TEST_DATABASE_URL") else { return };
        if admin.is_empty() {
            return;
        }
        let missing = format!("clickledger_missing_{}", uuid::Uuid::new_v4().simple());
        let fresh_admin = with_database(&admin, &missing);
        let database = TestDatabase::create_on(&fresh_admin, "harness").await;
        let db = crate::Db::connect(&database.url, crate::sealed::KeyRing::ephemeral())
            .await
            .expect("the test database opens");
        db.ping().await.expect("and answers");
        db.close().await;
        drop(database);
        let dropped = TestDatabase { url: String::new(), _dir: None, drop_on_exit: Some((admin, missing)) };
        drop(dropped);
    }

    #[test]
    fn database_names_are_read_from_and_put_into_urls() {
        assert_eq!(database_name("postgres://postgres@127.0.0.1:5432/test"), "test");
        assert_eq!(database_name("postgres://u@h/test?sslmode=disable"), "test");
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "postgres"),
            "postgres://u@h/postgres?sslmode=disable"
        );
    }
}
