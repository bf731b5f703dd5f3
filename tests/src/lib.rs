//! Test harness: boots the real `clickledger` binary on a free port against a fresh database
//! (a SQLite file in a temp dir, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is
//! set) and speaks HTTP to it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub mod receiver;
pub mod smtp;

/// Boots the server under test. A macro so that `env!` resolves in the calling test crate,
/// where cargo provides the binary's path.
#[macro_export]
macro_rules! spawn_app {
    () => {
        $crate::TestApp::spawn(env!("CARGO_BIN_EXE_clickledger-under-test"), &[])
    };
    ($($arg:expr),+ $(,)?) => {
        $crate::TestApp::spawn(env!("CARGO_BIN_EXE_clickledger-under-test"), &[$($arg),+])
    };
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub database_url: String,
    pub client: reqwest::Client,
    pub stdout: Vec<String>,
    child: Option<Child>,
    binary: String,
    extra_args: Vec<String>,
    database: TestDatabase,
}

enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

impl TestApp {
    pub async fn spawn(binary: &str, extra_args: &[&str]) -> TestApp {
        let (database, database_url) = fresh_database().await;
        let mut app = TestApp {
            base: String::new(),
            database_url,
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            stdout: Vec::new(),
            child: None,
            binary: binary.to_owned(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            database,
        };
        app.start().await;
        app
    }

    /// Starts (or restarts) the process on the same database.
    pub async fn start(&mut self) {
        let mut command = Command::new(&self.binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &self.database_url])
            .args(["--jwt-secret", JWT_SECRET])
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn the server binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read server stdout") {
                seen.push(line.clone());
                if let Some(rest) = line.strip_prefix("Clickledger listening on ") {
                    return rest.trim().to_owned();
                }
            }
            panic!("server exited before listening; stdout: {seen:?}");
        })
        .await
        .expect("server did not start within 60 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(line) = rx.try_recv() {
            seen.push(line);
        }
        self.stdout = seen;
        self.base = base;
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited successfully.
    pub async fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = child.kill().await;
                false
            }
        }
    }

    /// Kills the process outright (SIGKILL): no graceful shutdown, as in a crash.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs a GraphQL request and returns the whole JSON answer (`data` and `errors`).
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request =
            self.client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        response.json().await.expect("GraphQL answers JSON")
    }

    /// Signs up a new tenant with the given slug; returns (owner token, tenant id).
    pub async fn sign_up(&self, slug: &str) -> (String, String) {
        let answer = self
            .graphql(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { token tenant { id } } }",
                json!({ "input": {
                    "tenantName": format!("Tenant {slug}"),
                    "tenantSlug": slug,
                    "email": format!("owner@{slug}.test"),
                    "password": "correct horse battery",
                }}),
            )
            .await;
        let payload = &answer["data"]["signUp"];
        assert!(payload.is_object(), "signUp failed: {answer}");
        (payload["token"].as_str().unwrap().to_owned(), payload["tenant"]["id"].as_str().unwrap().to_owned())
    }
}

/// The first error's `extensions.code`, if any.
pub fn error_code(answer: &Value) -> Option<&str> {
    answer["errors"][0]["extensions"]["code"].as_str()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if let TestDatabase::Postgres { admin_url, name } = &self.database {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop is synchronous; a short-lived runtime on its own thread does the cleanup.
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    runtime.block_on(async {
                        use sqlx::Connection;
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            )))
                            .execute(&mut conn)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

async fn fresh_database() -> (TestDatabase, String) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            use sqlx::Connection;
            let name = format!("clickledger_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn =
                sqlx::PgConnection::connect(&admin_url).await.expect("connect to TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let url = replace_database(&admin_url, &name);
            (TestDatabase::Postgres { admin_url, name }, url)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("clickledger.db").display());
            (TestDatabase::Sqlite(dir), url)
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
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
