//! Test harness: boots the real `clickledger` binary on a free port against a fresh database
//! (a SQLite file in a temp dir, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is
//! set) and speaks HTTP to it.

use std::process::Stdio;
use std::time::Duration;

use clickledger_persistence::test_support::TestDatabase;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub mod proxy;
pub mod receiver;
pub mod signing;
pub mod smtp;
pub mod tenant;
pub mod ws;

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
    /// Environment variables set for the process, besides the harness's own.
    extra_env: Vec<(String, String)>,
    /// `--mail-outbox`: without SMTP, every e-mail lands here as an `.eml` file.
    mail_outbox: tempfile::TempDir,
    /// The database this app made and drops; `None` on another app's (a second replica).
    _database: Option<TestDatabase>,
}

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// `--secret-key` of every process the tests start on a database, so a host command (`tenant
/// create`, `import`) opens what the server sealed.
pub const SECRET_KEY: &str = "7465737420736563726574206b6579207465737420736563726574206b657921";

impl TestApp {
    pub async fn spawn(binary: &str, extra_args: &[&str]) -> TestApp {
        TestApp::spawn_with_env(binary, &[], extra_args).await
    }

    /// Like [`TestApp::spawn`], with these environment variables set for the process.
    pub async fn spawn_with_env(binary: &str, env: &[(&str, &str)], extra_args: &[&str]) -> TestApp {
        let database = TestDatabase::create("test").await;
        let database_url = database.url.clone();
        TestApp::boot(binary, Some(database), database_url, env, extra_args).await
    }

    /// Boots a server process on an existing database, which this `TestApp` does not own
    /// (nor drop): e.g. a second replica on another app's PostgreSQL database.
    pub async fn spawn_on(binary: &str, database_url: &str, extra_args: &[&str]) -> TestApp {
        TestApp::boot(binary, None, database_url.to_owned(), &[], extra_args).await
    }

    /// Another server process (replica) on this app's database, with the same arguments.
    pub async fn spawn_replica(&self) -> TestApp {
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        TestApp::spawn_on(&self.binary, &self.database_url, &args).await
    }

    /// Whether the database is PostgreSQL (TEST_DATABASE_URL was set).
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    async fn boot(
        binary: &str,
        database: Option<TestDatabase>,
        database_url: String,
        env: &[(&str, &str)],
        extra_args: &[&str],
    ) -> TestApp {
        let mut app = TestApp {
            base: String::new(),
            database_url,
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            stdout: Vec::new(),
            child: None,
            binary: binary.to_owned(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            extra_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            mail_outbox: tempfile::tempdir().expect("a temporary directory"),
            _database: database,
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
            .arg("--mail-outbox")
            .arg(self.mail_outbox.path())
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .env("CLICKLEDGER_SECRET_KEY", SECRET_KEY)
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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

    /// Runs a host command of the binary under test (`import`, `fraud import-ip-ranges`, …)
    /// against this app's database, as an operator would on the host: the harness's secret
    /// key, no other `CLICKLEDGER_*` setting from the test's environment; within 60 s.
    pub async fn host_command(&self, args: &[&std::ffi::OsStr]) -> std::process::Output {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .args(["--database-url", &self.database_url])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (key, _) in std::env::vars() {
            if key.starts_with("CLICKLEDGER_") || key == "DATABASE_URL" {
                command.env_remove(key);
            }
        }
        command.env("CLICKLEDGER_SECRET_KEY", SECRET_KEY);
        tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("the command finishes within 60 s")
            .expect("the binary runs")
    }

    /// Replaces the extra environment variables used by the next [`TestApp::start`].
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.extra_env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    }

    /// Replaces the extra command-line arguments used by the next [`TestApp::start`].
    pub fn set_extra_args(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
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

    /// The `.eml` files in the mail outbox, oldest first, as (path, contents).
    pub fn outbox(&self) -> Vec<(std::path::PathBuf, String)> {
        let mut mails: Vec<_> = std::fs::read_dir(self.mail_outbox.path())
            .expect("the mail outbox exists")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .filter_map(|path| {
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
                let contents = std::fs::read_to_string(&path).ok()?;
                Some((modified, path, contents))
            })
            .collect();
        mails.sort_by_key(|(modified, _, _)| *modified);
        mails.into_iter().map(|(_, path, contents)| (path, contents)).collect()
    }

    /// The path of the binary under test, for running its other commands.
    pub fn binary(&self) -> &str {
        &self.binary
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
                    "password": PASSWORD,
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

/// The first error's `extensions.field` (the input field a validation error names), if any.
pub fn error_field(answer: &Value) -> Option<&str> {
    answer["errors"][0]["extensions"]["field"].as_str()
}

/// The password `sign_up` gives every owner; also handy for affiliates.
pub const PASSWORD: &str = "correct horse battery";

/// Every field of the entity types, for selections in tests.
pub const AFFILIATE_FIELDS: &str = "id name email parentId status createdAt updatedAt";
pub const CAMPAIGN_FIELDS: &str =
    "id name landingUrl fallbackUrl attributionModel lookbackDays status createdAt updatedAt";
pub const LINK_FIELDS: &str = "id code url affiliateId campaignId status createdAt";
pub const API_KEY_FIELDS: &str = "id name prefix createdAt revokedAt lastUsedAt";

/// Helpers for the common set-up steps; each panics (with the answer) when the server refuses.
impl TestApp {
    /// Runs an operation that must succeed; returns its `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let answer = self.graphql(token, query, variables).await;
        assert!(answer.get("errors").is_none() && answer["data"].is_object(), "{query}\nfailed: {answer}");
        answer["data"].clone()
    }

    /// The whole answer of a `login` mutation.
    pub async fn login(&self, slug: &str, email: &str, password: &str) -> Value {
        self.graphql(
            None,
            "mutation($input: LoginInput!) { login(input: $input) { token user { id email role affiliateId } } }",
            json!({ "input": { "tenantSlug": slug, "email": email, "password": password } }),
        )
        .await
    }

    /// Logs in and returns the token.
    pub async fn login_token(&self, slug: &str, email: &str, password: &str) -> String {
        let answer = self.login(slug, email, password).await;
        answer["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login {slug}/{email} failed: {answer}"))
            .to_owned()
    }

    /// Creates an affiliate (with a login when `password` is given); returns it.
    pub async fn create_affiliate(
        &self,
        token: &str,
        name: &str,
        email: &str,
        password: Option<&str>,
        parent_id: Option<&str>,
    ) -> Value {
        let data = self
            .ok(
                Some(token),
                &format!(
                    "mutation($input: CreateAffiliateInput!) {{ createAffiliate(input: $input) {{ {AFFILIATE_FIELDS} }} }}"
                ),
                json!({ "input": { "name": name, "email": email, "password": password, "parentId": parent_id } }),
            )
            .await;
        data["createAffiliate"].clone()
    }

    /// Creates a campaign with defaults for everything but its name and landing URL.
    pub async fn create_campaign(&self, token: &str, name: &str, landing_url: &str) -> Value {
        let data = self
            .ok(
                Some(token),
                &format!(
                    "mutation($input: CreateCampaignInput!) {{ createCampaign(input: $input) {{ {CAMPAIGN_FIELDS} }} }}"
                ),
                json!({ "input": { "name": name, "landingUrl": landing_url } }),
            )
            .await;
        data["createCampaign"].clone()
    }

    pub async fn create_link(&self, token: &str, affiliate_id: &str, campaign_id: &str) -> Value {
        let data = self
            .ok(
                Some(token),
                &format!(
                    "mutation($input: CreateTrackingLinkInput!) {{ createTrackingLink(input: $input) {{ {LINK_FIELDS} }} }}"
                ),
                json!({ "input": { "affiliateId": affiliate_id, "campaignId": campaign_id } }),
            )
            .await;
        data["createTrackingLink"].clone()
    }

    /// Creates an API key; returns the payload (`key` and `apiKey`).
    pub async fn create_api_key(&self, token: &str, name: &str) -> Value {
        let data = self
            .ok(
                Some(token),
                &format!(
                    "mutation($input: CreateApiKeyInput!) {{ createApiKey(input: $input) {{ key signingSecret apiKey {{ {API_KEY_FIELDS} }} }} }}"
                ),
                json!({ "input": { "name": name } }),
            )
            .await;
        data["createApiKey"].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
