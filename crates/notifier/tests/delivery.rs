//! The delivery worker against a real database (SQLite, or PostgreSQL when
//! `TEST_DATABASE_URL` is set) and real HTTP receivers on loopback, with a manual clock: the
//! retry schedule is checked by moving time, never by sleeping.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use clickledger_domain::click_id::{ClickId, ClickSecret};
use clickledger_domain::postback;
use clickledger_notifier::postback::test_delivery;
use clickledger_notifier::signing::Secret;
use clickledger_notifier::ssrf::{AddressPolicy, Lookup};
use clickledger_notifier::{ManualClock, Notifier, NotifierConfig};
use clickledger_persistence::audit::Actor;
use clickledger_persistence::conversions::{AttributionSetup, commit_batch, prepare};
use clickledger_persistence::outbound::work;
use clickledger_persistence::outbound::{Delivery, Endpoint, Endpoints, NewEndpoint};
use clickledger_persistence::test_support::{World, fresh_db, world};
use clickledger_persistence::{Db, Scope, tracking};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- database

async fn endpoint(db: &Db, w: &World, url_template: String, method: &str) -> Endpoint {
    Endpoints::scoped(db, Scope::staff(w.tenant.id))
        .create(
            NewEndpoint {
                affiliate_id: w.affiliate.id,
                campaign_id: Some(w.campaign.id),
                url_template,
                method: method.into(),
                events: vec![],
                statuses: vec![],
                secret: Secret::generate(),
                max_concurrency: 4,
                timeout_ms: 5_000,
            },
            u64::MAX,
            Actor::Host,
        )
        .await
        .unwrap()
}

/// Stores a conversion through the real ingest path; returns its click ID.
async fn convert(db: &Db, w: &World, txn: &str) -> String {
    convert_clicked_at(db, w, txn, Utc::now()).await
}

/// As [`convert`], for a click made at `clicked_at` (an hour before now: no rule flags it).
async fn convert_clicked_at(db: &Db, w: &World, txn: &str, clicked_at: chrono::DateTime<Utc>) -> String {
    let target = tracking::link_target(db, &w.link.code).await.unwrap().unwrap();
    let secret = ClickSecret::from_bytes(&target.click_secret).unwrap();
    let click = ClickId::mint(target.click_tag, target.link_tag, clicked_at).encode(&secret);
    let setup =
        AttributionSetup { keys: tracking::click_keys(db, w.tenant.id).await.unwrap(), data_driven: None };
    let parsed = postback::parse(
        [
            ("click_id", click.as_str()),
            ("event", "ftd"),
            ("txn_id", txn),
            ("amount", "25.50"),
            ("currency", "EUR"),
        ],
        Utc::now(),
    )
    .unwrap();
    let prepared = prepare(db, w.tenant.id, &setup, parsed, Utc::now()).await.unwrap();
    for outcome in commit_batch(db, vec![prepared]).await.unwrap() {
        outcome.unwrap();
    }
    click
}

// ---------------------------------------------------------------- receiver

type Script = VecDeque<(u16, Vec<(&'static str, String)>, Duration)>;

#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// A real HTTP/1.1 server on loopback that records every request and answers from a script
/// (status, extra headers, delay), then 200 once the script runs out.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> (Receiver, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Receiver::default();
        receiver.serve(listener);
        (receiver, port)
    }

    fn serve(&self, listener: TcpListener) {
        let receiver = self.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let receiver = receiver.clone();
                tokio::spawn(async move {
                    let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    receiver.max_in_flight.fetch_max(now, Ordering::SeqCst);
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
                    let mut lines = head.split("\r\n");
                    let mut request_line = lines.next().unwrap_or("").split(' ');
                    let method = request_line.next().unwrap_or("").to_owned();
                    let target = request_line.next().unwrap_or("").to_owned();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let length: usize = headers
                        .iter()
                        .find(|(n, _)| n == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = buffer[head_end + 4..].to_vec();
                    while body.len() < length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    let (status, extra, delay) =
                        receiver.script.lock().unwrap().pop_front().unwrap_or((200, vec![], Duration::ZERO));
                    tokio::time::sleep(delay).await;
                    receiver.received.lock().unwrap().push(Received { method, target, headers, body });
                    let mut answer =
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n");
                    for (name, value) in extra {
                        answer.push_str(&format!("{name}: {value}\r\n"));
                    }
                    answer.push_str("\r\nok");
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                    receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }

    fn answer(&self, status: u16) {
        self.script.lock().unwrap().push_back((status, vec![], Duration::ZERO));
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn loopback_allowed() -> NotifierConfig {
    NotifierConfig {
        policy: AddressPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap()]),
        ..NotifierConfig::default()
    }
}

fn start_clock() -> ManualClock {
    // Ahead of the wall clock, so rows stamped with the real time are already due.
    ManualClock::new(Utc::now() + chrono::Duration::seconds(60))
}

/// Verifies a Standard Webhooks signature with ring, independently of the crate's signer.
fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed =
        format!("{}.{}.", received.header("webhook-id"), received.header("webhook-timestamp")).into_bytes();
    signed.extend_from_slice(&received.body);
    received.header("webhook-signature").split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else { return false };
        let Ok(signature) = STANDARD.decode(encoded) else { return false };
        ring::hmac::verify(&key, &signed, &signature).is_ok()
    })
}

async fn deliveries(db: &Db, endpoint: &Endpoint) -> Vec<Delivery> {
    work::deliveries_of(db, endpoint.tenant_id, endpoint.id).await.unwrap()
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_conversion_becomes_a_signed_postback_retried_on_schedule() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "sched").await;
    let (receiver, port) = Receiver::start().await;
    let ep = endpoint(
        &t.db,
        &w,
        format!("http://127.0.0.1:{port}/pb?cid={{click_id}}&amount={{amount}}&st={{status}}&ev={{event}}"),
        "POST",
    )
    .await;
    receiver.answer(500);
    receiver.answer(503);
    let click = convert(&t.db, &w, "T-1").await;

    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 1, "the first attempt goes at once");
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 1, "nothing more before the 5 s retry");

    clock.advance(Duration::from_secs(4));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 1);
    clock.advance(Duration::from_secs(2));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 2, "second attempt after about 5 s");

    clock.advance(Duration::from_secs(4 * 60));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 2);
    clock.advance(Duration::from_secs(2 * 60));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 3, "third attempt after about 5 min; it succeeds");

    clock.advance(Duration::from_secs(24 * 3600));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 3, "an acknowledged delivery is never sent again");

    let all = receiver.all();
    let first = &all[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.target, format!("/pb?cid={click}&amount=25.5&st=approved&ev=ftd"));
    assert!(
        all.iter().all(|r| r.header("webhook-id") == first.header("webhook-id")),
        "same id on every retry"
    );
    assert!(first.header("webhook-id").starts_with("msg_"));
    assert!(all.iter().all(|r| verify(&ep.secret, r)), "signatures verify independently");
    let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["type"], "conversion.created");
    assert_eq!(body["data"]["click_id"], click.as_str());
    assert_eq!(body["data"]["affiliate_id"], w.affiliate.id.to_string());

    let stored = deliveries(&t.db, &ep).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].state.as_str(), stored[0].attempts, stored[0].last_status),
        ("succeeded", 3, Some(200))
    );
    let log = Endpoints::scoped(&t.db, Scope::staff(w.tenant.id)).attempts(&[stored[0].id]).await.unwrap();
    let statuses: Vec<_> = log.iter().map(|a| (a.attempt, a.response_status)).collect();
    assert_eq!(statuses, vec![(1, Some(500)), (2, Some(503)), (3, Some(200))]);
    assert_eq!(log[2].response_body.as_deref(), Some("ok"));
}

#[tokio::test]
async fn get_postbacks_sign_the_empty_body_and_rotation_sends_both_signatures() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "rot").await;
    let (receiver, port) = Receiver::start().await;
    let ep = endpoint(&t.db, &w, format!("http://127.0.0.1:{port}/pb?t={{txn_id}}"), "GET").await;
    let repo = Endpoints::scoped(&t.db, Scope::staff(w.tenant.id));
    let new_secret = Secret::generate();
    let rotated = repo
        .rotate_secret(ep.id, new_secret.clone(), Utc::now() + chrono::Duration::hours(24), Actor::Host)
        .await
        .unwrap();
    repo.enqueue(test_delivery(&rotated, Utc::now())).await.unwrap();

    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    notifier.run_once().await.unwrap();
    let got = receiver.all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "GET");
    assert!(got[0].body.is_empty());
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(verify(&ep.secret, &got[0]), "old secret still verifies during the overlap");
    assert!(verify(&new_secret, &got[0]), "new secret verifies");

    // After the overlap only the new secret signs.
    clock.advance(Duration::from_secs(25 * 3600));
    repo.enqueue(test_delivery(&rotated, Utc::now())).await.unwrap();
    notifier.run_once().await.unwrap();
    let got = receiver.all();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 1);
    assert!(verify(&new_secret, &got[1]) && !verify(&ep.secret, &got[1]));
}

#[tokio::test]
async fn dead_letter_after_the_schedule_410_disables_and_retry_after_is_honoured() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "dead").await;
    let (receiver, port) = Receiver::start().await;
    let repo = Endpoints::scoped(&t.db, Scope::staff(w.tenant.id));
    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();

    // Always 500: eight attempts, then dead-lettered.
    let failing = endpoint(&t.db, &w, format!("http://127.0.0.1:{port}/fail"), "POST").await;
    for _ in 0..20 {
        receiver.answer(500);
    }
    repo.enqueue(test_delivery(&failing, Utc::now())).await.unwrap();
    for _ in 0..12 {
        notifier.run_once().await.unwrap();
        clock.advance(Duration::from_secs(11 * 3600));
    }
    assert_eq!(receiver.count(), 8);
    let d = &deliveries(&t.db, &failing).await[0];
    assert_eq!((d.state.as_str(), d.attempts), ("failed", 8));
    receiver.script.lock().unwrap().clear();

    // 410 Gone: failed at once, endpoint disabled, later deliveries wait.
    let gone = endpoint(&t.db, &w, format!("http://127.0.0.1:{port}/gone"), "POST").await;
    receiver.answer(410);
    repo.enqueue(test_delivery(&gone, Utc::now())).await.unwrap();
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 9);
    let gone_now = repo.get(gone.id).await.unwrap();
    assert!(!gone_now.enabled);
    let mails = clickledger_persistence::mail::work::emails_of(&t.db, w.tenant.id).await.unwrap();
    assert_eq!(mails.len(), 1, "the owner is told the endpoint was disabled");
    assert_eq!((mails[0].kind.as_str(), mails[0].to.as_str()), ("endpoint_disabled", "owner@dead.test"));
    assert!(mails[0].text.contains("410 Gone"));
    // Without SMTP the message is written to the outbox as an .eml file, and marked so.
    notifier.run_once().await.unwrap();
    let mails = clickledger_persistence::mail::work::emails_of(&t.db, w.tenant.id).await.unwrap();
    assert_eq!(mails[0].state, "sent");
    let note = mails[0].last_error.clone().unwrap_or_default();
    let path = note.split_once("written to ").map(|(_, path)| path.to_owned()).unwrap_or_default();
    assert!(path.ends_with(".eml"), "{note}");
    let eml = std::fs::read_to_string(&path).unwrap();
    assert!(eml.contains("To: owner@dead.test"), "{eml}");
    let _ = std::fs::remove_file(&path);
    assert_eq!(deliveries(&t.db, &gone).await[0].state, "failed");
    repo.enqueue(test_delivery(&gone, Utc::now())).await.unwrap();
    clock.advance(Duration::from_secs(60));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 9, "a disabled endpoint gets nothing");

    // 429 with Retry-After: 3600 waits an hour, not 5 s.
    let busy = endpoint(&t.db, &w, format!("http://127.0.0.1:{port}/busy"), "POST").await;
    receiver.script.lock().unwrap().push_back((429, vec![("Retry-After", "3600".into())], Duration::ZERO));
    repo.enqueue(test_delivery(&busy, Utc::now())).await.unwrap();
    notifier.run_once().await.unwrap();
    let d = &deliveries(&t.db, &busy).await[0];
    let wait = d.next_attempt_at.unwrap() - clock_now(&clock);
    assert!(wait >= chrono::Duration::seconds(3590), "{wait}");
    clock.advance(Duration::from_secs(60));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 10);
    clock.advance(Duration::from_secs(3600));
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 11);
}

fn clock_now(clock: &ManualClock) -> chrono::DateTime<Utc> {
    use clickledger_notifier::Clock;
    clock.now()
}

#[tokio::test]
async fn receiver_down_then_up_gets_every_delivery() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "down").await;
    // Reserve a port, then close it: connections are refused until the receiver starts.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let ep = endpoint(&t.db, &w, format!("http://127.0.0.1:{port}/pb?t={{txn_id}}"), "GET").await;
    for i in 0..5 {
        convert(&t.db, &w, &format!("T-{i}")).await;
    }
    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    notifier.run_once().await.unwrap();
    let stored = deliveries(&t.db, &ep).await;
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|d| d.state == "pending" && d.attempts == 1 && d.last_error.is_some()));

    let receiver = Receiver::default();
    receiver.serve(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    clock.advance(Duration::from_secs(6));
    notifier.run_once().await.unwrap();
    let mut targets: Vec<String> = receiver.all().into_iter().map(|r| r.target).collect();
    targets.sort();
    assert_eq!(targets, (0..5).map(|i| format!("/pb?t=T-{i}")).collect::<Vec<_>>());
    assert!(deliveries(&t.db, &ep).await.iter().all(|d| d.state == "succeeded"));
}

#[tokio::test]
async fn a_crash_loses_nothing_and_repeats_nothing_acknowledged() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "crash").await;
    let (receiver, port) = Receiver::start().await;
    let ep = endpoint(&t.db, &w, format!("http://127.0.0.1:{port}/pb?t={{txn_id}}"), "GET").await;
    convert(&t.db, &w, "A").await;
    convert(&t.db, &w, "B").await;
    let clock = start_clock();

    // First process: stores the deliveries, claims one, and dies before sending it.
    {
        let first = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
        first.enqueue_new_events().await.unwrap();
        let due = work::due(&t.db, clock_now(&clock), 10).await.unwrap();
        assert_eq!(due.len(), 2);
        let lease = clock_now(&clock) + chrono::Duration::seconds(65);
        assert!(work::claim(&t.db, &due[0], lease).await.unwrap());
        assert!(
            !work::claim(&t.db, &due[0], lease).await.unwrap(),
            "a claimed attempt cannot be claimed twice"
        );
    }
    // Second process: sends the unclaimed one now, the orphaned one once its lease runs out.
    let second = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    second.run_once().await.unwrap();
    assert_eq!(receiver.count(), 1);
    clock.advance(Duration::from_secs(70));
    second.run_once().await.unwrap();
    assert_eq!(receiver.count(), 2);
    // A third process after a restart: the cursor and the unique index keep it from re-queueing,
    // and acknowledged deliveries are never sent again.
    let third = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    clock.advance(Duration::from_secs(3600));
    third.run_once().await.unwrap();
    assert_eq!(receiver.count(), 2);
    assert_eq!(deliveries(&t.db, &ep).await.len(), 2);
}

#[tokio::test]
async fn a_slow_endpoint_delays_only_itself_and_keeps_its_concurrency_limit() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "slow").await;
    let (slow, slow_port) = Receiver::start().await;
    let (fast, fast_port) = Receiver::start().await;
    let repo = Endpoints::scoped(&t.db, Scope::staff(w.tenant.id));
    let slow_ep = endpoint(&t.db, &w, format!("http://127.0.0.1:{slow_port}/slow"), "POST").await;
    let slow_ep = repo
        .update(
            slow_ep.id,
            clickledger_persistence::outbound::EndpointPatch {
                max_concurrency: Some(1),
                ..Default::default()
            },
            Actor::Host,
        )
        .await
        .unwrap();
    let fast_ep = endpoint(&t.db, &w, format!("http://127.0.0.1:{fast_port}/fast"), "POST").await;
    for _ in 0..3 {
        slow.script.lock().unwrap().push_back((200, vec![], Duration::from_millis(1500)));
        repo.enqueue(test_delivery(&slow_ep, Utc::now())).await.unwrap();
    }
    repo.enqueue(test_delivery(&fast_ep, Utc::now())).await.unwrap();

    let clock = start_clock();
    let mut config = loopback_allowed();
    config.poll_interval = Duration::from_millis(50);
    let notifier = Notifier::new(t.db.clone(), config, Arc::new(clock.clone())).unwrap();
    let handle = notifier.spawn();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(fast.count(), 1, "the fast endpoint did not wait for the slow one");
    assert_eq!(slow.count(), 0);
    for _ in 0..100 {
        if slow.count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.stop().await;
    assert_eq!(slow.count(), 3);
    assert_eq!(slow.max_in_flight.load(Ordering::SeqCst), 1, "max_concurrency 1 is respected");
}

#[tokio::test]
async fn the_ssrf_guard_refuses_internal_addresses_and_dns_rebinding() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "ssrf").await;
    let (receiver, port) = Receiver::start().await;
    let repo = Endpoints::scoped(&t.db, Scope::staff(w.tenant.id));

    // A name that is public when first looked up (a save-time check would pass) and points at
    // loopback afterwards.
    let lookups = Arc::new(AtomicUsize::new(0));
    let counter = lookups.clone();
    let lookup: Lookup = Arc::new(move |_name: String| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let ip: IpAddr =
                if n == 0 { "93.184.216.34".parse().unwrap() } else { "127.0.0.1".parse().unwrap() };
            Ok(vec![ip])
        })
    });
    let policy = AddressPolicy::default();
    let config =
        NotifierConfig { policy: policy.clone(), lookup: lookup.clone(), ..NotifierConfig::default() };
    let first_answer = lookup("rebind.test".into()).await.unwrap();
    assert!(first_answer.iter().all(|ip| policy.permits(*ip)), "the check-time answer looks public");

    let mut endpoints = Vec::new();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        "http://10.1.2.3/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/"),
        format!("http://rebind.test:{port}/"),
    ] {
        let ep = endpoint(&t.db, &w, url, "POST").await;
        repo.enqueue(test_delivery(&ep, Utc::now())).await.unwrap();
        endpoints.push(ep);
    }
    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), config, Arc::new(clock.clone())).unwrap();
    notifier.run_once().await.unwrap();
    assert_eq!(receiver.count(), 0, "nothing reached the loopback receiver");
    for ep in &endpoints {
        let d = &deliveries(&t.db, ep).await[0];
        let error = d.last_error.clone().unwrap_or_default();
        assert!(error.contains("refused by the SSRF guard"), "{}: {error}", ep.url_template);
    }
    assert!(lookups.load(Ordering::SeqCst) >= 2, "the name was resolved again at connect time");
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled_and_its_owner_told() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "flaky").await;
    let (receiver, port) = Receiver::start().await;
    for _ in 0..50 {
        receiver.answer(502);
    }
    let repo = Endpoints::scoped(&t.db, Scope::staff(w.tenant.id));
    let ep = endpoint(&t.db, &w, format!("http://127.0.0.1:{port}/pb"), "POST").await;
    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();

    // A new message every day, each failing: after five days of nothing but failures the
    // endpoint is disabled (one dead letter alone would not do it).
    for day in 0..7 {
        repo.enqueue(test_delivery(&ep, Utc::now())).await.unwrap();
        notifier.run_once().await.unwrap();
        let enabled = repo.get(ep.id).await.unwrap().enabled;
        assert_eq!(enabled, day < 5, "day {day}");
        clock.advance(Duration::from_secs(24 * 3600 + 60));
    }
    let disabled = repo.get(ep.id).await.unwrap();
    assert!(disabled.disabled_reason.unwrap().contains("five days"));
    let mails = clickledger_persistence::mail::work::emails_of(&t.db, w.tenant.id).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!((mails[0].kind.as_str(), mails[0].to.as_str()), ("endpoint_disabled", "owner@flaky.test"));

    // Re-enabling clears the failure run; the next success keeps it enabled.
    receiver.script.lock().unwrap().clear();
    let patch =
        clickledger_persistence::outbound::EndpointPatch { enabled: Some(true), ..Default::default() };
    let enabled = repo.update(ep.id, patch, Actor::Host).await.unwrap();
    assert!(enabled.enabled && enabled.failing_since.is_none());
    notifier.run_once().await.unwrap();
    assert!(repo.get(ep.id).await.unwrap().failing_since.is_none());
}

#[tokio::test]
async fn daily_digests_go_once_per_tenant_and_day() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "digest").await;
    convert(&t.db, &w, "D-1").await;
    convert(&t.db, &w, "D-2").await;
    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    // The tenant was created today: no digest for a day it did not live through.
    assert_eq!(notifier.queue_daily_digests().await.unwrap(), 0);

    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(notifier.queue_daily_digests().await.unwrap(), 0, "nor for the day it was created");
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(notifier.queue_daily_digests().await.unwrap(), 1);
    assert_eq!(notifier.queue_daily_digests().await.unwrap(), 0, "once per day");
    let again = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    assert_eq!(again.queue_daily_digests().await.unwrap(), 0, "once per day across restarts");

    let mails = clickledger_persistence::mail::work::emails_of(&t.db, w.tenant.id).await.unwrap();
    let digests: Vec<_> = mails.iter().filter(|m| m.kind == "daily_digest").collect();
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0].to, "owner@digest.test");
    assert!(digests[0].text.contains("Conversions received: 0"), "{}", digests[0].text);

    // The figures of the day the conversions came in.
    use clickledger_persistence::mail::{DigestFigures, digest};
    let day_start = Utc::now().date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    let figures = digest::figures(
        &t.db,
        w.tenant.id,
        day_start - chrono::Duration::days(1),
        day_start + chrono::Duration::days(1),
    )
    .await
    .unwrap();
    assert_eq!(
        figures,
        DigestFigures { conversions: 2, attributed: 2, postbacks_delivered: 0, postbacks_failed: 0 }
    );
    // Each affiliate's own digest counts only the conversions that credited it.
    let affiliates = digest::affiliate_days(
        &t.db,
        w.tenant.id,
        day_start - chrono::Duration::days(1),
        day_start + chrono::Duration::days(1),
    )
    .await
    .unwrap();
    assert_eq!(affiliates.len(), 1, "{affiliates:?}");
    assert_eq!((affiliates[0].email.as_str(), affiliates[0].conversions), ("partner@digest.test", 2));
}

#[tokio::test]
async fn reading_events_without_alerts_writes_nothing_and_an_alert_is_still_mailed_once() {
    use clickledger_persistence::fraud_alert_mail::tenants_behind;
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "quiet").await;
    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    let stored_cursor = || async {
        let behind = tenants_behind(&t.db).await.unwrap();
        behind.into_iter().find(|b| b.tenant.id == w.tenant.id).map(|b| b.cursor)
    };
    let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
    for n in 0..3 {
        convert_clicked_at(&t.db, &w, &format!("Q-{n}"), an_hour_ago).await;
    }
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 0);
    let cursor = stored_cursor().await.expect("three events past the stored cursor");
    assert_eq!(cursor, 0, "no alert: the stored cursor did not move (no write per pass)");

    // A flagged one (click injection: converted at once) after them is mailed, once, and
    // moves the stored cursor past everything read.
    convert(&t.db, &w, "Q-flagged").await;
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 1);
    assert!(stored_cursor().await.is_none(), "the stored cursor is at the last event");
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 0);
    let again = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    assert_eq!(again.queue_fraud_alerts().await.unwrap(), 0, "once across restarts");

    // Quiet events read by this process and not stored are read again after a restart,
    // and again yield nothing.
    convert_clicked_at(&t.db, &w, "Q-late", an_hour_ago).await;
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 0);
    assert_eq!(again.queue_fraud_alerts().await.unwrap(), 0);
    let mails = clickledger_persistence::mail::work::emails_of(&t.db, w.tenant.id).await.unwrap();
    assert_eq!(mails.iter().filter(|m| m.kind == "fraud_alert").count(), 1);
}

#[tokio::test]
async fn fraud_alerts_go_once_an_hour_per_rule_and_affiliate_and_the_rest_into_the_digest() {
    let t = fresh_db("notifier").await;
    let w = world(&t.db, "alerts").await;
    let clock = start_clock();
    let notifier = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    // A first deposit at once after its click is click injection (floor 30 s).
    convert(&t.db, &w, "F-1").await;
    convert(&t.db, &w, "F-2").await;
    // A day on, so that the next day's digest covers a day the tenant lived through.
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 1, "the second is held back");
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 0, "each event is read once");
    let again = Notifier::new(t.db.clone(), loopback_allowed(), Arc::new(clock.clone())).unwrap();
    assert_eq!(again.queue_fraud_alerts().await.unwrap(), 0, "once across restarts");
    clock.advance(Duration::from_secs(59 * 60));
    convert(&t.db, &w, "F-3").await;
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 0, "59 minutes later: held back");
    clock.advance(Duration::from_secs(60));
    convert(&t.db, &w, "F-4").await;
    assert_eq!(notifier.queue_fraud_alerts().await.unwrap(), 1, "an hour later: mailed");

    let mails = clickledger_persistence::mail::work::emails_of(&t.db, w.tenant.id).await.unwrap();
    let alerts: Vec<_> = mails.iter().filter(|m| m.kind == "fraud_alert").collect();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].to, "owner@alerts.test");
    assert_eq!(alerts[0].subject, "Fraud alert: Partner (click_injection)");

    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(notifier.queue_daily_digests().await.unwrap(), 1);
    let mails = clickledger_persistence::mail::work::emails_of(&t.db, w.tenant.id).await.unwrap();
    let digest = mails.iter().find(|m| m.kind == "daily_digest" && m.to == "owner@alerts.test").unwrap();
    assert!(
        digest.text.contains("Fraud alerts not mailed: 2 × click_injection, affiliate Partner"),
        "{}",
        digest.text
    );
}
