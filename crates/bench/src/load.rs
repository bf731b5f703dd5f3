//! Closed-loop HTTP load: a fixed number of keep-alive connections, each with exactly one
//! request in flight, for a warm-up and then a measured window. Plain hyper HTTP/1.1 client
//! connections (no pool, no redirect logic), to keep the load generator's own cost low: it
//! runs on the same two cores as the server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Result;

/// A request that takes longer than this is an error (and its connection is replaced).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct error descriptions kept; the rest are counted as "other".
const MAX_ERROR_KINDS: usize = 20;

/// Latency histogram in microseconds, 1 µs to 1 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).clamp(1, 60_000_000)
}

#[derive(Debug, Clone)]
pub struct Errors {
    pub count: u64,
    pub kinds: BTreeMap<String, u64>,
}

impl Errors {
    pub fn new() -> Errors {
        Errors { count: 0, kinds: BTreeMap::new() }
    }

    pub fn add(&mut self, kind: String) {
        self.count += 1;
        self.add_kind(kind, 1);
    }

    fn add_kind(&mut self, kind: String, count: u64) {
        let key = if self.kinds.len() < MAX_ERROR_KINDS || self.kinds.contains_key(&kind) {
            kind
        } else {
            "other".to_owned()
        };
        *self.kinds.entry(key).or_default() += count;
    }

    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        for (kind, count) in other.kinds {
            self.add_kind(kind, count);
        }
    }

    pub fn summary(&self) -> String {
        self.kinds.iter().map(|(kind, count)| format!("{count} × {kind}")).collect::<Vec<_>>().join("; ")
    }
}

/// What a closed-loop run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Expected answers completed inside the measured window.
    pub ok: u64,
    /// Everything else completed (or failed) inside the window.
    pub errors: Errors,
    pub window: Duration,
    /// Latency of the `ok` requests, µs.
    pub latency: Histogram<u64>,
}

impl Outcome {
    pub fn empty() -> Outcome {
        Outcome { ok: 0, errors: Errors::new(), window: Duration::ZERO, latency: histogram() }
    }

    /// Adds another measured window to this one.
    pub fn absorb(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors.merge(other.errors);
        self.window += other.window;
        let _ = self.latency.add(&other.latency);
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

/// The request a worker sends next, from (worker index, that worker's sequence number).
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Empty<Bytes>> + Send + Sync>;

/// Drives `connections` closed loops against `addr` from now until `end`, measuring from
/// `start` (the time before is warm-up). A request counts when it completes inside
/// `[start, end)`.
pub async fn closed_loop(
    addr: SocketAddr,
    connections: usize,
    start: Instant,
    end: Instant,
    expected: StatusCode,
    make_request: MakeRequest,
) -> Outcome {
    let window = end - start;
    let mut workers = tokio::task::JoinSet::new();
    for id in 0..connections {
        let make_request = make_request.clone();
        workers.spawn(worker(id, addr, start, end, expected, make_request));
    }
    let mut outcome = Outcome { ok: 0, errors: Errors::new(), window, latency: histogram() };
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(part) => {
                outcome.ok += part.ok;
                outcome.errors.merge(part.errors);
                let _ = outcome.latency.add(&part.latency);
            }
            Err(err) => outcome.errors.add(format!("load worker failed: {err}")),
        }
    }
    outcome
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn worker(
    id: usize,
    addr: SocketAddr,
    start: Instant,
    end: Instant,
    expected: StatusCode,
    make_request: MakeRequest,
) -> Outcome {
    let mut out = Outcome { ok: 0, errors: Errors::new(), window: end - start, latency: histogram() };
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    let mut seq = 0u64;
    while Instant::now() < end {
        let connection = match sender.as_mut() {
            Some(connection) => connection,
            None => match tokio::time::timeout(REQUEST_TIMEOUT, connect(addr)).await {
                Ok(Ok(connection)) => sender.insert(connection),
                failed => {
                    let now = Instant::now();
                    if now >= start && now < end {
                        out.errors.add(match failed {
                            Ok(Err(err)) => format!("connect: {}", error_chain(err.as_ref())),
                            _ => "connect: timed out".to_owned(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let request = make_request(id, seq);
        seq += 1;
        let sent = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            connection.ready().await?;
            let response = connection.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        let done = Instant::now();
        let counted = done >= start && done < end;
        match answer {
            Ok(Ok((status, _))) if status == expected => {
                if counted {
                    out.ok += 1;
                    let _ = out.latency.record(micros(done - sent));
                }
            }
            Ok(Ok((status, body))) => {
                if counted {
                    out.errors.add(format!("HTTP {}: {}", status.as_u16(), snippet(&body)));
                }
            }
            Ok(Err(err)) => {
                sender = None;
                if counted {
                    out.errors.add(format!("request: {}", error_chain(&err)));
                }
            }
            Err(_) => {
                sender = None;
                if counted {
                    out.errors.add(format!("no answer within {REQUEST_TIMEOUT:?}"));
                }
            }
        }
    }
    out
}

/// The first characters of a body, for error reports.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        cut.push('…');
    }
    cut.replace(['\n', '\r'], " ")
}

/// An error with its causes: "a: b: c".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
