//! The first run and daily operation: what a newcomer and an operator meet before anything
//! else. A start that cannot serve leaves the database untouched (so the demo's one-time
//! credentials reach the banner of the start that does), the host-side commands, the
//! container health check, configuration errors that name what to fix, and logs fit for a
//! pipeline.

use std::process::{Output, Stdio};
use std::time::Duration;

use clickledger_e2e::{JWT_SECRET, TestApp, error_code, spawn_app};
use clickledger_persistence::test_support::TestDatabase;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_clickledger-under-test");

/// Runs the binary to completion (a start expected to fail, or a one-shot command), with
/// `RUST_LOG=warn` and, besides the given ones, no `CLICKLEDGER_*` variables of the caller.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command.args(args).env("RUST_LOG", "warn").stdin(Stdio::null()).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("CLICKLEDGER_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.env("CLICKLEDGER_SECRET_KEY", clickledger_e2e::SECRET_KEY);
    command.envs(env.iter().copied());
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command finishes within 60 s")
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value after `label` on the first line of `out` that starts with it (trimmed).
fn value_after(out: &[String], label: &str) -> String {
    out.iter()
        .map(|line| line.trim())
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {out:?}"))
        .trim()
        .to_owned()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    text(bytes).lines().map(str::to_owned).collect()
}

/// The demo owner's printed password.
fn demo_password(stdout: &[String]) -> String {
    let owner = value_after(stdout, "owner ");
    owner.split_once(" / ").map(|(_, password)| password.trim().to_owned()).expect("owner e-mail / password")
}

/// Whether a SQLite database file exists for `url` (PostgreSQL: not applicable, `false`).
fn sqlite_file_exists(url: &str) -> bool {
    url.strip_prefix("sqlite://").is_some_and(|path| std::path::Path::new(path).exists())
}

#[tokio::test]
async fn a_start_on_a_busy_port_touches_nothing_and_the_next_start_prints_the_credentials() {
    let database = TestDatabase::create("firstrun").await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().to_string();
    for _ in 0..2 {
        let failed = run(
            &["serve", "--listen", &port, "--database-url", &database.url, "--jwt-secret", JWT_SECRET],
            &[],
        )
        .await;
        assert!(!failed.status.success(), "a busy port is an error");
        let stderr = text(&failed.stderr);
        assert!(stderr.contains(&port) && stderr.to_lowercase().contains("in use"), "{stderr}");
        assert!(!text(&failed.stdout).contains("Demo tenant"), "nothing seeded, nothing printed");
        assert!(!sqlite_file_exists(&database.url), "the database was not even opened");
    }
    drop(busy);

    let app = TestApp::spawn_on(BINARY, &database.url, &[]).await;
    let password = demo_password(&app.stdout);
    app.login_token("demo", "owner@demo.clickledger.dev", &password).await;
    drop(database);
}

#[tokio::test]
async fn bad_configuration_is_refused_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clickledger.db");
    let url = format!("sqlite://{}", path.display());
    let base = ["serve", "--listen", "127.0.0.1:0", "--database-url", &url];
    let cases: [(&[&str], &str); 6] = [
        (&["--jwt-secret", "too-short"], "--jwt-secret"),
        (&["--smtp-url", "http://mail.example.com"], "SMTP"),
        (&["--public-url", "track.example.com"], "--public-url"),
        (&["--public-url", "ftp://x"], "--public-url"),
        (&["--public-url", "https://track.example.com/c"], "path"),
        (&["--mail-from", "not an address"], "sender"),
    ];
    for (args, named) in cases {
        let failed = run(&[&base[..], args].concat(), &[]).await;
        assert!(!failed.status.success(), "{args:?} accepted");
        let stderr = text(&failed.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!path.exists(), "{args:?}: the database was created before the check");
    }
    // The same start with the values fixed serves, and is the one that seeds the demo.
    let app = TestApp::spawn_on(BINARY, &url, &["--public-url", "https://track.example.com/"]).await;
    demo_password(&app.stdout);
    assert!(
        value_after(&app.stdout, "link ").starts_with("https://track.example.com/c/"),
        "{:?}",
        app.stdout
    );
}

#[tokio::test]
async fn boolean_switches_accept_1_yes_true_and_errors_name_the_variable() {
    for on in ["1", "yes", "true", "TRUE", "on"] {
        let app = TestApp::spawn_with_env(BINARY, &[("CLICKLEDGER_NO_DEMO", on)], &[]).await;
        assert!(!app.stdout.iter().any(|line| line.contains("Demo tenant")), "{on}: {:?}", app.stdout);
    }
    for off in ["0", "no", "false"] {
        let app = TestApp::spawn_with_env(BINARY, &[("CLICKLEDGER_NO_DEMO", off)], &[]).await;
        demo_password(&app.stdout);
    }
    let app = TestApp::spawn_with_env(BINARY, &[("CLICKLEDGER_DISABLE_SIGNUP", "1")], &["--no-demo"]).await;
    let refused = app.graphql(None, "mutation { signUp(input: {tenantName: \"A\", tenantSlug: \"acme\", email: \"o@acme.test\", password: \"correct horse battery\"}) { token } }", json!({})).await;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");

    let failed = run(&["serve", "--listen", "127.0.0.1:0"], &[("CLICKLEDGER_NO_DEMO", "maybe")]).await;
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    assert!(stderr.contains("CLICKLEDGER_NO_DEMO") && stderr.contains("maybe"), "{stderr}");
    let failed = run(&["serve"], &[("CLICKLEDGER_PUBLIC_URL", "track.example.com")]).await;
    let stderr = text(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("CLICKLEDGER_PUBLIC_URL"), "{stderr}");
}

#[tokio::test]
async fn with_sign_up_disabled_the_host_creates_tenants_and_resets_passwords() {
    let app = spawn_app!("--no-demo", "--disable-signup").await;
    let refused = app
        .graphql(
            None,
            "mutation { signUp(input: {tenantName: \"A\", tenantSlug: \"acme\", email: \"o@acme.test\", password: \"correct horse battery\"}) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("sign-up is disabled on this server"), "{message}");
    assert!(message.contains("clickledger tenant create"), "{message}");

    let database = ["--database-url", app.database_url.as_str()];
    let created = run(
        &[&["tenant", "create", "--slug", "acme", "--owner-email", "Boss@Acme.test"], &database[..]].concat(),
        &[],
    )
    .await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    let out = lines(&created.stdout);
    assert_eq!(value_after(&out, "tenant "), "acme");
    assert_eq!(value_after(&out, "e-mail "), "boss@acme.test");
    let password = value_after(&out, "password ");
    let token = app.login_token("acme", "boss@acme.test", &password).await;
    let me = app.ok(Some(&token), "{ me { role tenant { slug } } }", json!({})).await;
    assert_eq!(me["me"], json!({ "role": "OWNER", "tenant": { "slug": "acme" } }));

    let again = run(
        &[&["tenant", "create", "--slug", "acme", "--owner-email", "x@acme.test"], &database[..]].concat(),
        &[],
    )
    .await;
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));

    let reset = run(
        &[&["user", "reset-password", "--tenant", "acme", "--email", "boss@acme.test"], &database[..]]
            .concat(),
        &[],
    )
    .await;
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let new_password = value_after(&lines(&reset.stdout), "password ");
    assert_ne!(new_password, password);
    assert_eq!(error_code(&app.login("acme", "boss@acme.test", &password).await), Some("UNAUTHENTICATED"));
    app.login_token("acme", "boss@acme.test", &new_password).await;

    let unknown = run(
        &[&["user", "reset-password", "--tenant", "acme", "--email", "nobody@acme.test"], &database[..]]
            .concat(),
        &[],
    )
    .await;
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("no user nobody@acme.test"), "{}", text(&unknown.stderr));
}

#[tokio::test]
async fn the_demo_owner_whose_password_was_lost_gets_a_new_one() {
    let mut app = spawn_app!().await;
    let first = demo_password(&app.stdout);
    assert!(app.stop().await);
    app.start().await;
    let hint = app.stdout.join("\n");
    assert!(hint.contains("clickledger user reset-password --tenant demo"), "{hint}");
    let reset = run(
        &[
            "user",
            "reset-password",
            "--tenant",
            "demo",
            "--email",
            "owner@demo.clickledger.dev",
            "--database-url",
            &app.database_url,
        ],
        &[],
    )
    .await;
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let password = value_after(&lines(&reset.stdout), "password ");
    assert_ne!(password, first);
    app.login_token("demo", "owner@demo.clickledger.dev", &password).await;
}

/// The Dockerfile's HEALTHCHECK command, run as written (the binary's path swapped for the one
/// under test, `CLICKLEDGER_LISTEN` as the image sets it, pointed at this server's port).
#[tokio::test]
async fn the_container_health_check_command_passes_against_a_live_server_and_fails_without_one() {
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/Dockerfile")).unwrap();
    let exec_form = dockerfile
        .lines()
        .find_map(|line| {
            line.strip_prefix("HEALTHCHECK ").and_then(|rest| rest.split_once(" CMD ")).map(|(_, cmd)| cmd)
        })
        .expect("a HEALTHCHECK … CMD [..] line");
    let argv: Vec<String> =
        serde_json::from_str(exec_form.trim()).expect("CMD in exec form (no shell in the image)");
    assert_eq!(argv[0], "/usr/local/bin/clickledger", "the binary the image installs");
    let image_listen = dockerfile
        .split_whitespace()
        .find_map(|word| word.strip_prefix("CLICKLEDGER_LISTEN="))
        .expect("the image sets CLICKLEDGER_LISTEN");
    assert!(image_listen.starts_with("0.0.0.0:"), "{image_listen}");

    let app = spawn_app!("--no-demo").await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let listen = format!("0.0.0.0:{port}");
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let healthy = run(&args, &[("CLICKLEDGER_LISTEN", &listen)]).await;
    assert!(healthy.status.success(), "{}{}", text(&healthy.stdout), text(&healthy.stderr));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let unhealthy = run(&args, &[("CLICKLEDGER_LISTEN", &format!("0.0.0.0:{closed_port}"))]).await;
    assert_eq!(unhealthy.status.code(), Some(1), "{}", text(&unhealthy.stderr));
}

#[tokio::test]
async fn dockerignore_keeps_build_output_and_databases_out_of_the_build_context() {
    let ignore = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.dockerignore")).unwrap();
    let patterns: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    for needed in ["target/", ".git/", "*.db"] {
        assert!(patterns.contains(&needed), "{needed} missing from .dockerignore");
    }
}

#[tokio::test]
async fn the_kubernetes_manifest_sets_the_public_url_and_uses_a_local_image() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/k8s/clickledger.yaml"))
            .unwrap();
    assert!(manifest.contains("name: CLICKLEDGER_PUBLIC_URL"), "{manifest}");
    assert!(manifest.contains("imagePullPolicy: IfNotPresent"), "{manifest}");
}

#[tokio::test]
async fn two_concurrent_migrations_of_a_new_postgresql_database_both_succeed() {
    if std::env::var("TEST_DATABASE_URL").unwrap_or_default().is_empty() {
        eprintln!("SKIPPED: PostgreSQL only (SQLite has one writer and no race)");
        return;
    }
    for _ in 0..3 {
        let database = TestDatabase::create("migrate").await;
        let migrate = ["migrate", "--database-url", database.url.as_str()];
        let (first, second) = tokio::join!(run(&migrate, &[]), run(&migrate, &[]));
        assert!(first.status.success(), "{}", text(&first.stderr));
        assert!(second.status.success(), "{}", text(&second.stderr));
    }
}

#[tokio::test]
async fn database_errors_name_the_problem_without_postgresqls_source_line() {
    let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    if admin.is_empty() {
        eprintln!("SKIPPED: PostgreSQL only");
        return;
    }
    let (base, _) = admin.rsplit_once('/').unwrap();
    let missing = format!("{base}/clickledger_no_such_database_{}", std::process::id());
    let failed = run(&["migrate", "--database-url", &missing], &[]).await;
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains(" at line "), "{stderr}");
}

#[tokio::test]
async fn logs_carry_no_colour_codes_when_not_on_a_terminal() {
    // The harness reads standard output through a pipe; the outbox warning is logged.
    let app = spawn_app!().await;
    let out = app.stdout.join("\n");
    assert!(out.contains("mail outbox"), "{out}");
    assert!(!out.contains('\u{1b}'), "ANSI escape in piped logs: {out:?}");
}

/// With JSON logs, standard output is JSON only, with the banner as one event and no secret;
/// the human-readable banner, credentials included, goes to standard error.
#[tokio::test]
async fn json_logs_are_pure_json_without_secrets() {
    let database = TestDatabase::create("json").await;
    let mut child = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &database.url])
        .args(["--jwt-secret", JWT_SECRET, "--log-format", "json"])
        .arg("--mail-outbox")
        .arg(tempfile::tempdir().unwrap().path())
        .env("RUST_LOG", "info")
        .env("CLICKLEDGER_SECRET_KEY", clickledger_e2e::SECRET_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut banner = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            let done = line.trim_start().starts_with("link ");
            banner.push(line);
            if done {
                return;
            }
        }
        panic!("no banner on stderr: {banner:?}");
    })
    .await
    .expect("the banner within 60 s");
    let password = demo_password(&banner);
    let api_key = value_after(&banner, "API key ");
    let listen = value_after(&banner, "Clickledger listening on ");

    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{listen}/healthz")).send().await.unwrap().status(), 200);
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).await.unwrap();
    assert!(child.wait().await.unwrap().success());

    let events: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line:?}")))
        .collect();
    let listening = events
        .iter()
        .find(|event| event["message"] == "clickledger listening")
        .unwrap_or_else(|| panic!("no listening event: {stdout}"));
    assert_eq!(listening["listen"], listen.as_str());
    assert!(!stdout.contains(&password) && !stdout.contains(&api_key), "a secret in the JSON logs: {stdout}");
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
}

/// The plain-text part of an `.eml` file, decoded by Python's standard `email` package (the
/// outbox is read by mail tools, not by us).
fn plain_text_of(eml: &std::path::Path) -> String {
    let script = "import email, email.policy, sys\n\
                  m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
                  print(m.get_body(preferencelist=('plain',)).get_content())";
    let output =
        std::process::Command::new("python3").arg("-c").arg(script).arg(eml).output().expect("python3 runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// Waits (up to 30 s, polling) until the outbox holds `count` e-mails.
async fn outbox_with(app: &TestApp, count: usize) -> Vec<(std::path::PathBuf, String)> {
    for _ in 0..300 {
        let mails = app.outbox();
        if mails.len() >= count {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox has {} e-mails, not {count}", app.outbox().len());
}

#[tokio::test]
async fn without_smtp_invitations_land_in_the_outbox_and_say_how_to_sign_in() {
    let app = spawn_app!("--no-demo").await;
    let (owner, _) = app.sign_up("mailco").await;
    let ann = app.create_affiliate(&owner, "Ann", "ann@partner.test", None, None).await;
    app.ok(
        Some(&owner),
        "mutation($id: ID!) { inviteAffiliate(id: $id) { id } }",
        json!({ "id": ann["id"] }),
    )
    .await;
    let mails = outbox_with(&app, 1).await;
    let (path, eml) = &mails[0];
    assert!(eml.contains("To: ann@partner.test"), "{eml}");
    let body = plain_text_of(path);
    assert!(body.contains("tenant \"mailco\""), "the slug login asks for: {body}");
    assert!(body.contains(&format!("{}/dashboard", app.base)), "where to sign in: {body}");
    assert!(body.contains("ann@partner.test"), "{body}");
    let start =
        body.find("/set-password?token=").expect("a set-password link") + "/set-password?token=".len();
    let token: String =
        body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();

    // The page that sets the password says the same.
    let page = app
        .client
        .post(app.url("/set-password"))
        .form(&[("token", token.as_str()), ("password", "ann's new password")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("mailco") && page.contains(&format!("{}/dashboard", app.base)), "{page}");
    app.login_token("mailco", "ann@partner.test", "ann's new password").await;

    // A password reset too, whatever RUST_LOG filters.
    app.ok(
        None,
        "mutation { requestPasswordReset(tenantSlug: \"mailco\", email: \"owner@mailco.test\") }",
        json!({}),
    )
    .await;
    let mails = outbox_with(&app, 2).await;
    assert!(mails.iter().any(|(_, eml)| eml.contains("To: owner@mailco.test")), "{mails:?}");
}

#[tokio::test]
async fn the_set_password_page_has_its_own_metrics_route() {
    let app = spawn_app!("--no-demo").await;
    app.client.get(app.url("/set-password?token=x")).send().await.unwrap();
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/set-password",status="200"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary_and_passes_the_token_to_subscriptions() {
    let app = spawn_app!("--no-demo").await;
    let html = app.client.get(app.url("/graphql")).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("unpkg") && !html.contains("jsdelivr") && !html.contains("//cdn"), "{html}");
    assert!(html.contains("wsConnectionParams") && html.contains("Authorization"), "{html}");
    let assets: Vec<&str> =
        html.split(['"', '\'']).filter(|piece| piece.starts_with("/graphql/assets/")).collect();
    assert_eq!(assets.len(), 4, "GraphiQL's script and style, React, ReactDOM: {assets:?}");
    for asset in assets {
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = if asset.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(content_type.starts_with(expected), "{asset}: {content_type}");
        assert!(response.bytes().await.unwrap().len() > 1000, "{asset}");
    }
    let missing = app.client.get(app.url("/graphql/assets/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

mod websocket_closes {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    type Socket =
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    async fn open(app: &TestApp, protocol: &'static str) -> Socket {
        let url = format!("{}/graphql/ws", app.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        tokio_tungstenite::connect_async(request).await.unwrap().0
    }

    /// Reads until the server's close frame; returns (code, reason) and the text messages before it.
    async fn close_frame(socket: &mut Socket, within: Duration) -> ((u16, String), Vec<String>) {
        let mut texts = Vec::new();
        let frame = tokio::time::timeout(within, async {
            while let Some(message) = socket.next().await {
                match message {
                    Ok(Message::Close(Some(frame))) => {
                        return (u16::from(frame.code), frame.reason.to_string());
                    }
                    Ok(Message::Close(None)) => panic!("a close frame without a code; before it: {texts:?}"),
                    Ok(Message::Text(text)) => texts.push(text.to_string()),
                    Ok(_) => {}
                    Err(err) => {
                        panic!("the connection dropped without a close frame ({err}); before it: {texts:?}")
                    }
                }
            }
            panic!("the stream ended without a close frame; before it: {texts:?}")
        })
        .await
        .expect("a close frame in time");
        (frame, texts)
    }

    async fn init(socket: &mut Socket, payload: Value) {
        socket
            .send(Message::text(json!({ "type": "connection_init", "payload": payload }).to_string()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn refused_sign_ins_close_with_4401_or_4403_and_a_reason_on_both_protocols() {
        let app = spawn_app!("--no-demo").await;
        let (owner, _) = app.sign_up("acme").await;
        let ann = app.create_affiliate(&owner, "Ann", "ann@partner.test", Some("ann password 1"), None).await;
        let ann_token = app.login_token("acme", "ann@partner.test", "ann password 1").await;
        app.ok(
            Some(&owner),
            "mutation($id: ID!) { suspendAffiliate(id: $id) { id } }",
            json!({ "id": ann["id"] }),
        )
        .await;
        for protocol in ["graphql-transport-ws", "graphql-ws"] {
            let mut socket = open(&app, protocol).await;
            init(&mut socket, json!({ "token": "not-a-token" })).await;
            let ((code, reason), texts) = close_frame(&mut socket, Duration::from_secs(10)).await;
            assert_eq!(code, 4401, "{protocol}: {reason}");
            assert!(reason.contains("unauthorized"), "{protocol}: {reason}");
            if protocol == "graphql-ws" {
                assert!(texts.iter().any(|t| t.contains("connection_error")), "{texts:?}");
            }

            let mut socket = open(&app, protocol).await;
            init(&mut socket, json!({ "Authorization": format!("Bearer {ann_token}") })).await;
            let ((code, reason), _) = close_frame(&mut socket, Duration::from_secs(10)).await;
            assert_eq!(code, 4403, "{protocol}: a suspended account: {reason}");
            assert!(reason.contains("forbidden"), "{protocol}: {reason}");
        }
    }

    #[tokio::test]
    async fn no_connection_init_closes_with_4408() {
        let app = spawn_app!("--no-demo").await;
        for protocol in ["graphql-transport-ws", "graphql-ws"] {
            let mut socket = open(&app, protocol).await;
            let ((code, reason), _) = close_frame(&mut socket, Duration::from_secs(30)).await;
            assert_eq!(code, 4408, "{protocol}: {reason}");
        }
    }

    #[tokio::test]
    async fn sigterm_closes_live_subscriptions_with_1001_going_away() {
        let mut app = spawn_app!("--no-demo").await;
        let (owner, _) = app.sign_up("acme").await;
        let mut sockets = Vec::new();
        for protocol in ["graphql-transport-ws", "graphql-ws"] {
            let mut socket = open(&app, protocol).await;
            init(&mut socket, json!({ "token": owner })).await;
            loop {
                let message = socket.next().await.unwrap().unwrap();
                if let Message::Text(text) = message
                    && text.contains("connection_ack")
                {
                    break;
                }
            }
            sockets.push((protocol, socket));
        }
        let stopping = tokio::spawn(async move { app.stop().await });
        for (protocol, mut socket) in sockets {
            let ((code, reason), _) = close_frame(&mut socket, Duration::from_secs(20)).await;
            assert_eq!((code, reason.as_str()), (1001, "going away"), "{protocol}");
        }
        assert!(stopping.await.unwrap(), "exit code 0");
    }
}
