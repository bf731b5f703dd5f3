//! "The client address": the one answer every part of the server uses for per-address
//! budgets (login, password tokens) and, later, fraud signals on clicks.
//!
//! The socket peer is the client unless it is one of the configured trusted proxies
//! (`--trusted-proxies`). Then `X-Forwarded-For` is read from the right (each proxy appends
//! the address it saw): the first hop that is not itself a trusted proxy is the client. A
//! header from anyone else is ignored, so a client cannot pick its own budget by sending one.

use std::net::IpAddr;
use std::sync::Arc;

use clickledger_notifier::ssrf::Cidr;
use poem::{Endpoint, IntoResponse, Request, Response};

/// What a request's client address was resolved to, stored in the request's extensions.
#[derive(Debug, Clone, Copy)]
struct ClientAddress(Option<IpAddr>);

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<Cidr>>);

impl TrustedProxies {
    pub fn new(ranges: Vec<Cidr>) -> Self {
        TrustedProxies(Arc::new(ranges))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` values in header order.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.into_iter().flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // A hop we cannot read ends the walk: the last address we could vouch for stands.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }

    /// Middleware: resolves the client address once per request, for [`client_ip`].
    pub async fn resolve<E: Endpoint>(self, next: E, mut req: Request) -> poem::Result<Response> {
        let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
        let client = peer.map(|peer| {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect::<Vec<_>>();
            self.client(peer, forwarded)
        });
        req.extensions_mut().insert(ClientAddress(client));
        next.call(req).await.map(IntoResponse::into_response)
    }
}

/// `1.2.3.4`, `2001:db8::1`, and the bracketed or ported forms some proxies write.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|addr| addr.ip())
}

/// The client's address (see the module's comment). Falls back to the socket peer when the
/// middleware did not run (it always does in the server).
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    match req.extensions().get::<ClientAddress>() {
        Some(ClientAddress(client)) => *client,
        None => req.remote_addr().as_socket_addr().map(|addr| addr.ip()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = proxies(&[]);
        assert_eq!(none.client(ip("203.0.113.9"), ["198.51.100.1"]), ip("203.0.113.9"));
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(lb.client(ip("203.0.113.9"), ["198.51.100.1"]), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_hands_over_to_the_first_untrusted_hop_from_the_right() {
        let lb = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; the load balancers appended the rest.
        assert_eq!(lb.client(ip("10.0.0.2"), ["6.6.6.6, 198.51.100.7", "10.0.0.1"]), ip("198.51.100.7"));
        assert_eq!(lb.client(ip("10.0.0.2"), ["[2001:db8::1]:4711"]), ip("2001:db8::1"));
        assert_eq!(lb.client(ip("10.0.0.2"), ["198.51.100.7:5000"]), ip("198.51.100.7"));
    }

    #[test]
    fn without_a_readable_header_the_nearest_proxy_stands() {
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(lb.client(ip("10.0.0.2"), []), ip("10.0.0.2"));
        assert_eq!(lb.client(ip("10.0.0.2"), ["garbage, 10.0.0.1"]), ip("10.0.0.1"));
        assert_eq!(lb.client(ip("10.0.0.2"), ["10.0.0.3"]), ip("10.0.0.3"));
    }
}
