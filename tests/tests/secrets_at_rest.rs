//! Secrets at rest: what signs click IDs, webhooks and sessions is stored sealed; a rotated
//! key re-seals it at start-up; a start without the key that sealed it refuses to run; and
//! without `--secret-key` a key file is made once and kept.

use std::process::{Output, Stdio};
use std::time::Duration;

use clickledger_e2e::tenant::Tenant;
use clickledger_e2e::{SECRET_KEY, TestApp, spawn_app};
use clickledger_persistence::sealed::KeyRing;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_clickledger-under-test");
const NEW_KEY: &str = "6e6577206b6579206e6577206b6579206e6577206b6579206e6577206b657921";

async fn connect(app: &TestApp) -> DatabaseConnection {
    Database::connect(app.database_url.as_str()).await.expect("the test database opens")
}

/// Every stored secret (click-ID, webhook and postback signing, generated JWT), with the row it belongs to.
async fn stored_secrets(db: &DatabaseConnection) -> Vec<(String, String)> {
    let backend = db.get_database_backend();
    let mut secrets = Vec::new();
    for (owner, sql) in [
        ("tenants.click_secret", "SELECT id, click_secret FROM tenants"),
        ("postback_endpoints.secret", "SELECT id, secret FROM postback_endpoints"),
        ("api_keys.signing_secret", "SELECT id, signing_secret FROM api_keys"),
    ] {
        for row in db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap() {
            let id: uuid::Uuid = row.try_get_by_index(0).unwrap();
            secrets.push((format!("{owner}:{id}"), row.try_get_by_index(1).unwrap()));
        }
    }
    let sql = "SELECT value FROM instance_settings WHERE key = 'generated_jwt_secret'";
    for row in db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap() {
        secrets.push(("instance_settings:generated_jwt_secret".to_owned(), row.try_get_by_index(0).unwrap()));
    }
    secrets
}

fn key_bytes(hex: &str) -> [u8; 32] {
    KeyRing::parse_key(hex).unwrap()
}

/// A tenant with a link and a webhook endpoint; returns its API key and the link's code.
async fn program(app: &TestApp) -> (String, String) {
    let t = Tenant::create(app, "sealed").await;
    let affiliate = t.create_affiliate("Partner", false).await;
    let campaign = t.create_campaign("Main", json!({})).await;
    let link = t.create_link(&affiliate, &campaign).await;
    let endpoint = t
        .run(
            "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { secret } }",
            json!({"i": {"affiliateId": affiliate, "urlTemplate": "https://partner.example/pb?c={click_id}"}}),
        )
        .await;
    assert!(endpoint["createPostbackEndpoint"]["secret"].is_string(), "{endpoint}");
    (t.api_key, link.code)
}

async fn registration(app: &TestApp, key: &str, click_id: &str, player: &str) -> serde_json::Value {
    let (status, answer) = app
        .postback_get(&[
            ("key", key),
            ("click_id", click_id),
            ("player_id", player),
            ("event", "registration"),
        ])
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn stored_secrets_are_sealed_and_a_key_rotation_reseals_them() {
    let mut app = spawn_app!("--no-demo").await;
    let (key, code) = program(&app).await;
    let before_rotation = app.click(&code, "", None).await.click_id();

    let db = connect(&app).await;
    let sealed = stored_secrets(&db).await;
    assert_eq!(sealed.len(), 3, "the tenant's click secret, the endpoint's, the API key's: {sealed:?}");
    let old = KeyRing::new(&key_bytes(SECRET_KEY), &[]);
    for (owner, stored) in &sealed {
        assert!(stored.starts_with(&format!("sealed1.{}.", old.current_key_id())), "{owner}: {stored}");
        let secret = old.open(owner, stored).expect("opens with the key that sealed it");
        assert!(!stored.contains(&secret), "{owner}: the secret itself is not in the row");
    }
    // Bound to its row: the tenant's sealed secret does not open as the endpoint's.
    let owned_by = |prefix: &str| sealed.iter().find(|(owner, _)| owner.starts_with(prefix)).unwrap();
    let (endpoint_owner, _) = owned_by("postback_endpoints.");
    let (_, tenant_secret) = owned_by("tenants.");
    assert!(old.open(endpoint_owner, tenant_secret).is_err());

    // A start with another key and without the old one refuses to run, naming the key it needs.
    assert!(app.stop().await);
    let refused = serve_once(&app, &[("CLICKLEDGER_SECRET_KEY", NEW_KEY)]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains(old.current_key_id()) && stderr.contains("--previous-secret-keys"), "{stderr}");

    // Rotation: the new key, the old one as previous. Everything is re-sealed at start-up,
    // and click IDs signed before the rotation still attribute.
    app.set_env(&[("CLICKLEDGER_SECRET_KEY", NEW_KEY), ("CLICKLEDGER_PREVIOUS_SECRET_KEYS", SECRET_KEY)]);
    app.start().await;
    let new = KeyRing::new(&key_bytes(NEW_KEY), &[]);
    for (owner, stored) in stored_secrets(&db).await {
        assert!(stored.starts_with(&format!("sealed1.{}.", new.current_key_id())), "{owner}: {stored}");
        let before = &sealed.iter().find(|(o, _)| *o == owner).expect("the same rows").1;
        assert_eq!(
            new.open(&owner, &stored).unwrap(),
            old.open(&owner, before).unwrap(),
            "{owner}: the same secret"
        );
    }
    assert_eq!(registration(&app, &key, &before_rotation, "p1").await["attributed"], true);

    // The old key can go.
    assert!(app.stop().await);
    app.set_env(&[("CLICKLEDGER_SECRET_KEY", NEW_KEY)]);
    app.start().await;
    assert_eq!(registration(&app, &key, &before_rotation, "p2").await["attributed"], true);
    let after_rotation = app.click(&code, "", None).await.click_id();
    assert_eq!(registration(&app, &key, &after_rotation, "p3").await["attributed"], true);
}

#[tokio::test]
async fn secrets_stored_before_sealing_are_sealed_at_the_next_start() {
    let mut app = spawn_app!("--no-demo").await;
    let (key, code) = program(&app).await;
    let click_id = app.click(&code, "", None).await.click_id();
    assert!(app.stop().await);

    // Put the secrets back as a build before sealing stored them: in plain text.
    let db = connect(&app).await;
    let ring = KeyRing::new(&key_bytes(SECRET_KEY), &[]);
    let backend = db.get_database_backend();
    for (owner, stored) in stored_secrets(&db).await {
        let plain = ring.open(&owner, &stored).unwrap();
        let (table, column) = owner.split_once(':').unwrap().0.split_once('.').unwrap();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => format!("UPDATE {table} SET {column} = $1 WHERE {column} = $2"),
            _ => format!("UPDATE {table} SET {column} = ? WHERE {column} = ?"),
        };
        db.execute_raw(Statement::from_sql_and_values(backend, sql, [plain.into(), stored.into()]))
            .await
            .unwrap();
    }
    assert!(stored_secrets(&db).await.iter().all(|(_, stored)| !stored.starts_with("sealed1.")));

    app.start().await;
    for (owner, stored) in stored_secrets(&db).await {
        assert!(stored.starts_with("sealed1."), "{owner} is sealed again at start-up: {stored}");
    }
    assert_eq!(
        registration(&app, &key, &click_id, "p1").await["attributed"],
        true,
        "the same secret, sealed"
    );
}

/// `serve` run to its end: a start expected to fail.
async fn serve_once(app: &TestApp, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &app.database_url])
        .args(["--jwt-secret", clickledger_e2e::JWT_SECRET])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("CLICKLEDGER_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    tokio::time::timeout(Duration::from_secs(60), command.output()).await.unwrap().unwrap()
}

/// A host command run in `dir` with no key configured, as a newcomer runs one.
async fn in_dir(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    command.args(args).current_dir(dir).env("RUST_LOG", "warn").stdin(Stdio::null()).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("CLICKLEDGER_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    tokio::time::timeout(Duration::from_secs(60), command.output()).await.unwrap().unwrap()
}

#[tokio::test]
async fn without_a_configured_key_one_is_generated_into_a_private_file_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let create = |slug: &'static str| ["tenant", "create", "--slug", slug, "--owner-email", "o@x.test"];
    let first = in_dir(dir.path(), &create("first")).await;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let path = dir.path().join("clickledger.key");
    let generated = std::fs::read_to_string(&path).expect("the key file is made");
    assert!(KeyRing::parse_key(&generated).is_ok(), "{generated}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let log = String::from_utf8_lossy(&first.stdout);
    assert!(
        log.contains("clickledger.key") && !log.contains(generated.trim()),
        "named in a warning, never shown: {log}"
    );

    let second = in_dir(dir.path(), &create("second")).await;
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), generated, "the file is kept, not replaced");

    // A key that did not seal what is stored is refused before anything is written.
    let wrong = in_dir(dir.path(), &[&create("third")[..], &["--secret-key", NEW_KEY]].concat()).await;
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--previous-secret-keys"));
}
