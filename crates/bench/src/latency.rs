//! Scenario 3: postback → subscriber latency.
//!
//! `subscribers` WebSocket clients (graphql-transport-ws, owner token) subscribe to
//! `conversions`; then postbacks go out open-loop at a steady rate, each with a unique
//! `txn_id` that carries its sequence number. For every (postback, subscriber) pair the
//! latency is the time from handing the postback request to the HTTP client until that
//! subscriber has the event's frame; pairs that never arrive are counted as missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::Result;
use crate::cpu::{CpuUse, cpu_seconds};
use crate::load::{Errors, REQUEST_TIMEOUT, error_chain, histogram, micros, snippet};
use crate::setup::postback_path;

const SUBSCRIPTION: &str = "subscription { conversions { conversion { txnId } } }";
/// How long to wait, after the last postback was answered, for events still on their way.
const GRACE: Duration = Duration::from_secs(5);
/// Postbacks awaiting their answer at most; past it the pacer waits (and reports being late).
const MAX_IN_FLIGHT: usize = 5_000;
/// How long the subscribers get to become live (all of them seeing a probe postback).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Params {
    pub base: String,
    pub token: String,
    pub api_key: String,
    pub click_ids: Vec<String>,
    pub subscribers: usize,
    pub rate: f64,
    pub duration: Duration,
    pub server_pid: u32,
}

#[derive(Debug)]
pub struct LatencyOutcome {
    pub subscribers: usize,
    pub rate: f64,
    pub duration: Duration,
    /// Postbacks sent, and answered 200.
    pub sent: u64,
    pub accepted: u64,
    pub postback_errors: Errors,
    /// How long sending took, first to last request (the achieved rate is sent / this).
    pub send_span: Duration,
    /// How late the pacer issued a postback against its schedule, µs.
    pub pacer_lag: Histogram<u64>,
    /// HTTP latency of the accepted postbacks, µs.
    pub postback_latency: Histogram<u64>,
    /// accepted × subscribers.
    pub expected: u64,
    pub received: u64,
    pub duplicates: u64,
    /// Postback sent → subscriber has the frame, µs, over all (postback, subscriber) pairs.
    pub latency: Histogram<u64>,
    /// Postback's 200 received by the load generator → subscriber has the frame, µs: the
    /// fan-out alone, without ingest. Pairs whose frame came first count as 1 µs.
    pub after_answer: Histogram<u64>,
    /// Pairs whose frame arrived before the postback's 200 did.
    pub before_answer: u64,
    /// Subscribers whose socket failed or that got an error message.
    pub subscriber_errors: Errors,
    /// While sending.
    pub cpu: CpuUse,
    /// What the fan-out costs the server per frame (see [`FrameCpu`]).
    pub frame_cpu: FrameCpu,
}

/// Server CPU per delivered frame: the server's CPU seconds from the first postback until
/// every frame arrived (or the grace period ended), minus its CPU seconds for the same number
/// of postbacks at the same rate with nobody subscribed (measured just before, in the same
/// run), divided by the frames delivered.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCpu {
    pub with_subscribers: Option<f64>,
    pub without_subscribers: Option<f64>,
    pub frames: u64,
}

impl FrameCpu {
    pub fn micros_per_frame(&self) -> Option<f64> {
        let extra = self.with_subscribers? - self.without_subscribers?;
        (self.frames > 0).then(|| extra.max(0.0) * 1e6 / self.frames as f64)
    }
}

impl LatencyOutcome {
    pub fn missing(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
}

/// What the subscribers and the pacer share.
struct Shared {
    origin: Instant,
    run: String,
    /// Send time of postback `seq`, ns since `origin` + 1 (0: not sent).
    sent_at: Vec<AtomicU64>,
    /// Events matched to a sent postback, all subscribers together.
    received: AtomicU64,
    /// Subscribers that have seen at least one probe event.
    live: AtomicUsize,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

struct SubscriberResult {
    /// Arrival of the event of postback `seq`, ns since `origin` + 1 (0: never).
    arrivals: Vec<u64>,
    duplicates: u64,
    errors: Errors,
}

impl Shared {
    fn new(total: u64) -> Arc<Shared> {
        Arc::new(Shared {
            origin: Instant::now(),
            run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            sent_at: (0..total).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicU64::new(0),
            live: AtomicUsize::new(0),
        })
    }
}

pub async fn run(params: Params) -> Result<LatencyOutcome> {
    let total = (params.rate * params.duration.as_secs_f64()).round().max(1.0) as u64;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(REQUEST_TIMEOUT)
        .build()?;

    // The same postbacks with nobody subscribed: what the server spends without the fan-out.
    let alone = Shared::new(total);
    let cpu_before = cpu_seconds(Some(params.server_pid));
    let paced = pace(&client, &params, &alone, total).await;
    let without_subscribers = cpu_seconds(Some(params.server_pid)).zip(cpu_before).map(|(b, a)| b - a);
    if paced.accepted() == 0 {
        return Err(format!("no postback was accepted: {}", paced.errors.summary()).into());
    }

    let shared = Shared::new(total);

    // Subscribers: connected, acknowledged and subscribed.
    let ws_url = format!("{}/graphql/ws", params.base.replacen("http://", "ws://", 1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut subscribers = JoinSet::new();
    let mut connecting = JoinSet::new();
    for _ in 0..params.subscribers {
        let (url, token) = (ws_url.clone(), params.token.clone());
        connecting.spawn(async move { tokio::time::timeout(READY_TIMEOUT, connect(&url, &token)).await });
    }
    while let Some(joined) = connecting.join_next().await {
        let socket = match joined {
            Ok(Ok(Ok(socket))) => socket,
            Ok(Ok(Err(err))) => return Err(format!("a subscriber could not subscribe: {err}").into()),
            Ok(Err(_)) => return Err("a subscriber could not subscribe within 30 s".into()),
            Err(err) => return Err(format!("a subscriber task failed: {err}").into()),
        };
        subscribers.spawn(follow(socket, shared.clone(), total, stop_rx.clone()));
    }

    // Subscriptions start asynchronously on the server: probe until every subscriber sees one.
    let probe_deadline = Instant::now() + READY_TIMEOUT;
    let mut probes = 0u32;
    while shared.live.load(Ordering::Relaxed) < params.subscribers {
        if Instant::now() > probe_deadline {
            let _ = stop_tx.send(true);
            return Err(format!(
                "only {} of {} subscribers received a probe event within {READY_TIMEOUT:?}",
                shared.live.load(Ordering::Relaxed),
                params.subscribers
            )
            .into());
        }
        let txn = format!("probe-{}-{probes}", shared.run);
        probes += 1;
        let url = format!("{}{}", params.base, postback_path(&params.click_ids[0], &txn));
        let answer = client.get(url).bearer_auth(&params.api_key).send().await?;
        if answer.status() != reqwest::StatusCode::OK {
            let status = answer.status();
            let body = answer.bytes().await.unwrap_or_default();
            return Err(format!("probe postback answered {status}: {}", snippet(&body)).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the probes' events drain before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let cpu_before = cpu_seconds(Some(params.server_pid));
    let paced = pace(&client, &params, &shared, total).await;
    let accepted = paced.accepted();

    // Wait for the events still on their way, then stop the subscribers.
    let expected = accepted * params.subscribers as u64;
    let grace_end = Instant::now() + GRACE;
    while shared.received.load(Ordering::Relaxed) < expected && Instant::now() < grace_end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let with_subscribers = cpu_seconds(Some(params.server_pid)).zip(cpu_before).map(|(b, a)| b - a);
    let _ = stop_tx.send(true);

    let sent_at: Vec<u64> = shared.sent_at.iter().map(|at| at.load(Ordering::Relaxed)).collect();
    let (mut latency, mut after_answer) = (histogram(), histogram());
    let (mut received, mut duplicates, mut before_answer) = (0u64, 0u64, 0u64);
    let mut subscriber_errors = Errors::new();
    while let Some(joined) = subscribers.join_next().await {
        match joined {
            Ok(result) => {
                for ((arrived, sent), answered) in result.arrivals.iter().zip(&sent_at).zip(&paced.answered) {
                    if *arrived == 0 || *answered == 0 || *sent == 0 {
                        continue;
                    }
                    received += 1;
                    let _ = latency.record(to_micros(arrived.saturating_sub(*sent)));
                    if arrived < answered {
                        before_answer += 1;
                    }
                    let _ = after_answer.record(to_micros(arrived.saturating_sub(*answered)));
                }
                duplicates += result.duplicates;
                subscriber_errors.merge(result.errors);
            }
            Err(err) => subscriber_errors.add(format!("subscriber task failed: {err}")),
        }
    }

    Ok(LatencyOutcome {
        subscribers: params.subscribers,
        rate: params.rate,
        duration: params.duration,
        sent: paced.sent,
        accepted,
        postback_errors: paced.errors,
        send_span: paced.send_span,
        pacer_lag: paced.pacer_lag,
        postback_latency: paced.latency,
        expected,
        received,
        duplicates,
        latency,
        after_answer,
        before_answer,
        subscriber_errors,
        cpu: paced.cpu,
        frame_cpu: FrameCpu { with_subscribers, without_subscribers, frames: received },
    })
}

/// What one paced series of postbacks gave.
struct Paced {
    sent: u64,
    /// Answer time (ns since origin + 1) of each postback answered 200; 0 otherwise.
    answered: Vec<u64>,
    errors: Errors,
    /// How long sending took, first to last request.
    send_span: Duration,
    pacer_lag: Histogram<u64>,
    latency: Histogram<u64>,
    /// While sending.
    cpu: CpuUse,
}

impl Paced {
    fn accepted(&self) -> u64 {
        self.answered.iter().filter(|at| **at > 0).count() as u64
    }
}

/// Open-loop pacing: postback `seq` is due at start + seq / rate, whatever the answers do.
/// Returns once every postback is answered.
async fn pace(client: &reqwest::Client, params: &Params, shared: &Arc<Shared>, total: u64) -> Paced {
    let mut in_flight = JoinSet::new();
    let mut pacer_lag = histogram();
    let mut postback_latency = histogram();
    let mut postback_errors = Errors::new();
    let mut answered = vec![0u64; total as usize];
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let cpu_before = (cpu_seconds(Some(params.server_pid)), cpu_seconds(None));
    let mut next = 0u64;
    let mut last_sent = start;
    while next < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * params.rate) as u64 + 1).min(total);
        while next < due && in_flight.len() < MAX_IN_FLIGHT {
            let scheduled = start + Duration::from_secs_f64(next as f64 / params.rate);
            let now = Instant::now();
            let _ = pacer_lag.record(micros(now.saturating_duration_since(scheduled)));
            last_sent = now;
            let seq = next;
            next += 1;
            let click_id = &params.click_ids[(seq as usize) % params.click_ids.len()];
            let url = format!("{}{}", params.base, postback_path(click_id, &txn_id(&shared.run, seq)));
            let request = client.get(url).bearer_auth(&params.api_key);
            let shared = shared.clone();
            in_flight.spawn(async move {
                shared.sent_at[seq as usize].store(shared.now_ns() + 1, Ordering::Relaxed);
                let answer = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.bytes().await.unwrap_or_default();
                        if status == reqwest::StatusCode::OK {
                            Ok(())
                        } else {
                            Err(format!("HTTP {}: {}", status.as_u16(), snippet(&body)))
                        }
                    }
                    Err(err) if err.is_timeout() => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
                    Err(err) => Err(format!("request: {}", error_chain(&err.without_url()))),
                };
                (seq, shared.now_ns() + 1, answer)
            });
        }
        while let Some(joined) = in_flight.try_join_next() {
            collect(joined, shared, &mut answered, &mut postback_latency, &mut postback_errors);
        }
    }
    let send_span = last_sent - start;
    let cpu = {
        let elapsed = start.elapsed().as_secs_f64();
        let (server, loadgen) = (cpu_seconds(Some(params.server_pid)), cpu_seconds(None));
        let cores = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / elapsed);
        CpuUse { server: cores(cpu_before.0, server), loadgen: cores(cpu_before.1, loadgen) }
    };
    while let Some(joined) = in_flight.join_next().await {
        collect(joined, shared, &mut answered, &mut postback_latency, &mut postback_errors);
    }
    Paced {
        sent: next,
        answered,
        errors: postback_errors,
        send_span,
        pacer_lag,
        latency: postback_latency,
        cpu,
    }
}

/// ns (+ 1) → µs, within the histograms' bounds.
fn to_micros(ns: u64) -> u64 {
    (ns / 1_000).clamp(1, 60_000_000)
}

/// (seq, answered at ns + 1, outcome) of one postback.
type Joined = std::result::Result<(u64, u64, std::result::Result<(), String>), tokio::task::JoinError>;

fn collect(
    joined: Joined,
    shared: &Shared,
    answered: &mut [u64],
    latency: &mut Histogram<u64>,
    errors: &mut Errors,
) {
    match joined {
        Ok((seq, answered_at, Ok(()))) => {
            answered[seq as usize] = answered_at;
            let sent = shared.sent_at[seq as usize].load(Ordering::Relaxed);
            let _ = latency.record(to_micros(answered_at.saturating_sub(sent)));
        }
        Ok((_, _, Err(err))) => errors.add(err),
        Err(err) => errors.add(format!("postback task failed: {err}")),
    }
}

fn txn_id(run: &str, seq: u64) -> String {
    format!("lat-{run}-{seq}")
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, sends `connection_init` with the token, waits for the ack, subscribes.
async fn connect(url: &str, token: &str) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "token": token } });
    socket.send(Message::text(init.to_string())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: serde_json::Value = serde_json::from_str(&text)?;
                match message["type"].as_str() {
                    Some("connection_ack") => break,
                    Some("ping") => socket.send(Message::text(r#"{"type":"pong"}"#)).await?,
                    _ => return Err(format!("expected connection_ack, got {text}").into()),
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed before the ack: {frame:?}").into()),
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
            None => return Err("closed before the ack".into()),
        }
    }
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

#[derive(Deserialize)]
struct Next<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    payload: NextPayload<'a>,
}

#[derive(Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow)]
    data: Option<NextData<'a>>,
}

#[derive(Deserialize)]
struct NextData<'a> {
    #[serde(borrow)]
    conversions: NextEvent<'a>,
}

#[derive(Deserialize)]
struct NextEvent<'a> {
    #[serde(borrow)]
    conversion: NextConversion<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextConversion<'a> {
    #[serde(borrow)]
    txn_id: Option<std::borrow::Cow<'a, str>>,
}

/// Reads events until told to stop; records the latency of each matched one.
async fn follow(
    mut socket: Socket,
    shared: Arc<Shared>,
    total: u64,
    mut stop: watch::Receiver<bool>,
) -> SubscriberResult {
    let mut result =
        SubscriberResult { arrivals: vec![0; total as usize], duplicates: 0, errors: Errors::new() };
    let prefix = format!("lat-{}-", shared.run);
    let probe_prefix = format!("probe-{}-", shared.run);
    let mut live = false;
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = stop.changed() => break,
        };
        let arrived_ns = shared.now_ns();
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                result.errors.add(format!("socket closed by the server: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                result.errors.add(format!("socket: {err}"));
                break;
            }
            None => {
                result.errors.add("socket closed".to_owned());
                break;
            }
        };
        let txn = match serde_json::from_str::<Next>(&text) {
            Ok(next) if next.kind == "next" => {
                next.payload.data.and_then(|data| data.conversions.conversion.txn_id)
            }
            _ => {
                let message: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                match message["type"].as_str() {
                    Some("ping") => {
                        let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
                    }
                    Some("pong") => {}
                    _ => result.errors.add(format!("unexpected message: {}", snippet(text.as_bytes()))),
                }
                continue;
            }
        };
        let Some(txn) = txn else { continue };
        if txn.starts_with(&probe_prefix) {
            if !live {
                live = true;
                shared.live.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let Some(seq) = txn.strip_prefix(&prefix).and_then(|seq| seq.parse::<u64>().ok()) else { continue };
        let Some(slot) = result.arrivals.get_mut(seq as usize) else { continue };
        if *slot != 0 {
            result.duplicates += 1;
            continue;
        }
        *slot = arrived_ns + 1;
        shared.received.fetch_add(1, Ordering::Relaxed);
    }
    let _ = socket.close(None).await;
    result
}
