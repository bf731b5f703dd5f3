//! The database goes away under postback load and comes back (PostgreSQL only: the server
//! reaches it through a TCP proxy the test pauses). While it is away, postbacks answer `503`
//! with `Retry-After` within 5 s, never hang and never `500`, and `/readyz` is `503`; when it
//! is back the server recovers by itself; every postback it acknowledged (`200`) is stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clickledger_e2e::TestApp;
use clickledger_e2e::proxy::{TcpProxy, upstream_of};
use clickledger_e2e::tenant::Tenant;
use clickledger_persistence::test_support::TestDatabase;
use futures_util::StreamExt;
use serde_json::Value;

/// The longest any postback may take to be answered, whatever the database does.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// The outage. The issue speaks of 30 s; 8 s shows the same behaviour: every request is
/// bounded by the pool's acquire timeout (2 s), not by how long the database stays away, and
/// nothing builds up with time (requests fail fast, so neither the writers' queues nor the
/// pool's waiters grow). 8 s is four acquire timeouts and longer than the 5 s bound, so a
/// request that waited for the database to come back would show as too slow.
const OUTAGE: Duration = Duration::from_secs(8);
const CLIENTS: usize = 6;

struct Answer {
    txn: String,
    player: String,
    started: Instant,
    elapsed: Duration,
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

fn params<'a>(key: &'a str, player: &'a str, txn: &'a str) -> [(&'static str, &'a str); 6] {
    [
        ("key", key),
        ("player_id", player),
        ("event", "deposit"),
        ("txn_id", txn),
        ("amount", "10"),
        ("currency", "USD"),
    ]
}

async fn send(client: &reqwest::Client, app: &TestApp, key: &str, player: &str, txn: &str) -> Answer {
    let started = Instant::now();
    let sent = client.get(app.url("/postback")).query(&params(key, player, txn)).send().await;
    let (status, retry_after, body) = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (status, retry_after, response.json().await.unwrap_or(Value::Null))
        }
        // Timed out or cut: recorded as 0, which the checks below refuse.
        Err(err) => (0, None, Value::String(err.to_string())),
    };
    Answer {
        txn: txn.to_owned(),
        player: player.to_owned(),
        started,
        elapsed: started.elapsed(),
        status,
        retry_after,
        body,
    }
}

async fn readyz(client: &reqwest::Client, app: &TestApp) -> (u16, Duration) {
    let started = Instant::now();
    let status = client.get(app.url("/readyz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
    (status, started.elapsed())
}

#[tokio::test]
async fn postgresql_away_under_postback_load_answers_503_fast_and_recovers_losing_nothing() {
    let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    if !admin.starts_with("postgres") {
        eprintln!("SKIPPED: PostgreSQL only (the server reaches it through a TCP proxy the test pauses)");
        return;
    }
    let database = TestDatabase::create("outage").await;
    let proxy = TcpProxy::start(upstream_of(&database.url).await).await;
    let app = TestApp::spawn_on(
        env!("CARGO_BIN_EXE_clickledger-under-test"),
        &proxy.url_through(&database.url),
        &[],
    )
    .await;
    let tenant = Tenant::create(&app, "outage").await;
    let key = tenant.api_key.clone();
    // A client timeout well past the bound, so a hang shows as a slow answer, not a stuck test.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (client, app, key, stop) = (client.clone(), &app, key.clone(), stop.clone());
            async move {
                let player = format!("p{n}");
                let mut answers = Vec::new();
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) {
                    let txn = format!("T{n}-{sent}");
                    sent += 1;
                    answers.push(send(&client, app, &key, &player, &txn).await);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                answers
            }
        })
        .collect();
    let load = futures_util::future::join_all(load);

    let script = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.pause();
        let paused = Instant::now();
        // While it is away, /readyz says so, quickly.
        let mut ready_while_away = Vec::new();
        while paused.elapsed() < OUTAGE {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            ready_while_away.push(readyz(&client, &app).await);
        }
        proxy.resume().await;
        let resumed = Instant::now();
        // It comes back by itself.
        loop {
            let (status, _) = readyz(&client, &app).await;
            if status == 200 {
                break;
            }
            assert!(
                resumed.elapsed() < Duration::from_secs(20),
                "not ready 20 s after the database came back"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let recovered = Instant::now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::SeqCst);
        (paused, resumed, recovered, ready_while_away)
    };
    let (answers, (paused, resumed, recovered, ready_while_away)) = tokio::join!(load, script);
    let answers: Vec<Answer> = answers.into_iter().flatten().collect();

    for (status, took) in &ready_while_away {
        assert_eq!(*status, 503, "/readyz while the database is away");
        assert!(*took <= ANSWER_WITHIN, "/readyz took {took:?}");
    }
    for answer in &answers {
        assert!(
            answer.status == 200 || answer.status == 503,
            "{} answered {} after {:?}: {}",
            answer.txn,
            answer.status,
            answer.elapsed,
            answer.body
        );
        assert!(
            answer.elapsed <= ANSWER_WITHIN,
            "{} took {:?} ({})",
            answer.txn,
            answer.elapsed,
            answer.status
        );
        if answer.status == 503 {
            assert_eq!(answer.retry_after.as_deref(), Some("5"), "{}: 503 without Retry-After", answer.txn);
            assert_eq!(answer.body["error"]["code"], "UNAVAILABLE", "{}", answer.body);
        }
    }
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.started >= paused + Duration::from_secs(1) && a.started + a.elapsed <= resumed)
        .collect();
    assert!(!during.is_empty(), "no postback was sent during the outage");
    assert!(during.iter().all(|a| a.status == 503), "a postback was stored while the database was away?");
    let before = answers.iter().filter(|a| a.started + a.elapsed < paused && a.status == 200).count();
    assert!(before > 0, "no postback was stored before the outage");
    let after: Vec<&Answer> = answers.iter().filter(|a| a.started >= recovered).collect();
    assert!(
        !after.is_empty() && after.iter().all(|a| a.status == 200),
        "postbacks after recovery must succeed"
    );

    // Nothing acknowledged is lost: each is stored, once, as the conversion it was answered with.
    let acknowledged: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let repeats = futures_util::stream::iter(acknowledged.iter().map(|a| {
        let (client, app, key) = (&client, &app, &key);
        async move { (a, send(client, app, key, &a.player, &a.txn).await) }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    for (first, repeat) in repeats {
        assert_eq!(repeat.status, 200, "{}: {}", first.txn, repeat.body);
        assert_eq!(repeat.body["duplicate"], true, "{} was acknowledged but not stored", first.txn);
        assert_eq!(repeat.body["conversion_id"], first.body["conversion_id"], "{}", first.txn);
    }
    eprintln!(
        "{} postbacks: {} acknowledged, {} answered 503, slowest answer {:?}; ready again {:?} after the database came back",
        answers.len(),
        acknowledged.len(),
        answers.iter().filter(|a| a.status == 503).count(),
        answers.iter().map(|a| a.elapsed).max().unwrap_or_default(),
        recovered - resumed
    );
    drop(app);
    drop(proxy);
    drop(database);
}
