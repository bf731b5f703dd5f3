//! For tests (feature `test-support`): a fresh, migrated database each, a SQLite file in a
//! temporary directory or, when `TEST_DATABASE_URL` names a PostgreSQL server, a new database
//! there, dropped when the test is done.

use crate::Db;

pub struct TestDb {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    /// (admin URL, database name) to drop afterwards, on PostgreSQL.
    drop_on_exit: Option<(String, String)>,
}

impl Drop for TestDb {
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

/// Panics when the database cannot be made: a test cannot run without it.
pub async fn fresh_db(prefix: &str) -> TestDb {
    let (url, dir, drop_on_exit) = match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Connection;
            let name = format!("clickledger_{prefix}_{}", uuid::Uuid::new_v4().simple());
            let mut conn =
                sqlx::PgConnection::connect(&admin).await.expect("TEST_DATABASE_URL must accept connections");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .expect("TEST_DATABASE_URL's user must be allowed to create databases");
            let base =
                admin.rsplit_once('/').map(|(base, _)| base.to_owned()).unwrap_or_else(|| admin.clone());
            (format!("{base}/{name}"), None, Some((admin.clone(), name)))
        }
        _ => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            (format!("sqlite://{}", dir.path().join("t.db").display()), Some(dir), None)
        }
    };
    let db = Db::connect(&url).await.expect("the test database opens");
    db.migrate().await.expect("the migrations run");
    TestDb { db, _dir: dir, drop_on_exit }
}
