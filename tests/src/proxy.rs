//! A TCP proxy the test controls, between the server under test and its database. Paused, it
//! drops every open connection and stops listening, so new connections are refused
//! (`ECONNREFUSED`, as when the database host is down); resumed, it listens on the same port
//! again and forwards. Only to loopback addresses.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    upstream: SocketAddr,
    /// Bumped on each pause: every forwarding task opened before it ends.
    generation: watch::Sender<u64>,
    /// The accepting task while not paused; aborting it closes the listening socket.
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        assert!(upstream.ip().is_loopback(), "the proxy forwards to this machine only");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (generation, _) = watch::channel(0u64);
        let proxy = TcpProxy { addr, upstream, generation, accept: Mutex::new(None) };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, generation) = (self.upstream, self.generation.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let mut cut = generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                    // Dropping both ends closes them.
                });
            }
        });
        if let Some(previous) = self.accept.lock().unwrap().replace(task) {
            previous.abort();
        }
    }

    /// The database goes away: open connections are dropped, new ones refused.
    pub fn pause(&self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// The database is back, on the same address.
    pub async fn resume(&self) {
        // The aborted task drops its listener when it is next polled: retry the bind briefly.
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("cannot listen on {} again", self.addr);
    }

    /// `url` (`postgres://user@host:port/db`) with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let mut parsed = url::Url::parse(url).expect("a database URL");
        parsed.set_host(Some(&self.addr.ip().to_string())).expect("a host");
        parsed.set_port(Some(self.addr.port())).expect("a port");
        parsed.to_string()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.pause();
    }
}

/// The loopback address a database URL's host and port name.
pub async fn upstream_of(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("a database URL");
    let host = parsed.host_str().expect("a host").to_owned();
    let port = parsed.port().unwrap_or(5432);
    let host = if host == "localhost" { "127.0.0.1".to_owned() } else { host };
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve the database host")
        .find(|addr| addr.is_ipv4())
        .expect("an IPv4 address for the database host")
}
