//! A real HTTP/1.1 receiver on loopback for outbound-postback tests: records every request
//! and answers from a script.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Script = VecDeque<(u16, Vec<(&'static str, String)>, Duration)>;

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// A real HTTP/1.1 server on loopback that records every request and answers from a script
/// (status, extra headers, delay), then 200 once the script runs out.
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub script: Arc<Mutex<Script>>,
    pub in_flight: Arc<AtomicUsize>,
    pub max_in_flight: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start() -> (Receiver, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Receiver::default();
        receiver.serve(listener);
        (receiver, port)
    }

    pub fn serve(&self, listener: TcpListener) {
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

    pub fn answer(&self, status: u16) {
        self.script.lock().unwrap().push_back((status, vec![], Duration::ZERO));
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}
