//! The SSRF guard. Postback URLs are chosen by affiliates, so nothing may be sent to our own
//! network: loopback, private, link-local (cloud metadata lives at 169.254.169.254),
//! multicast and every other non-public range are refused. The check runs inside the HTTP
//! client's DNS resolver, on the very addresses it will connect to, so a name that resolves to
//! a public address when saved and to 127.0.0.1 when used (DNS rebinding) is still refused.
//! IP-literal hosts never reach a resolver and are checked before the request.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// An address range, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(raw: &str) -> Result<Cidr, String> {
        let raw = raw.trim();
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let network: IpAddr =
            address.parse().map_err(|_| format!("`{raw}` is not an address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix in `{raw}`"))?
            }
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    // Only global unicast (2000::/3) is public; inside it, documentation (2001:db8::/32),
    // ORCHID/benchmarking in 2001::/23 and 6to4/Teredo tunnels, whose embedded IPv4 could be
    // anything, are refused.
    (first & 0xe000) == 0x2000
        && !(first == 0x2001 && ip.segments()[1] == 0x0db8)
        && !(first == 0x2001 && ip.segments()[1] < 0x0200)
        && first != 0x2002
}

/// Which addresses postbacks may go to: public ones, plus explicitly allowed ranges (for
/// development and tests, e.g. `127.0.0.1/32`).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<Cidr>,
}

impl AddressPolicy {
    pub fn allowing(allow: Vec<Cidr>) -> Self {
        AddressPolicy { allow }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|cidr| cidr.contains(ip))
    }

    /// For a URL whose host is an IP literal, the verdict now; names are checked by
    /// [`GuardedResolver`] at connect time.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(Refused("no host".to_owned())),
        };
        if self.permits(ip) { Ok(()) } else { Err(Refused(format!("{ip} is not a public address"))) }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("refused by the SSRF guard: {0}")]
pub struct Refused(pub String);

type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
/// Name → addresses; the system resolver unless a test injects another.
pub type Lookup = Arc<dyn Fn(String) -> LookupFuture + Send + Sync>;

pub fn system_lookup() -> Lookup {
    Arc::new(|name: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// A reqwest resolver that hands the connector only permitted addresses, and fails the
/// request when there are none.
pub struct GuardedResolver {
    policy: AddressPolicy,
    lookup: Lookup,
}

impl GuardedResolver {
    pub fn new(policy: AddressPolicy, lookup: Lookup) -> Self {
        GuardedResolver { policy, lookup }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = lookup(name.clone()).await?;
            let permitted: Vec<SocketAddr> = addresses
                .iter()
                .filter(|ip| policy.permits(**ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if permitted.is_empty() {
                let refused = Refused(format!("{name} resolves to no public address ({addresses:?})"));
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "2002:7f00:1::1",
        ] {
            assert!(!is_public(ip(refused)), "{refused} should be refused");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(public)), "{public} should be allowed");
        }
    }

    #[test]
    fn allow_list_lets_listed_ranges_through() {
        let policy = AddressPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::1")));
        assert!(policy.permits(ip("::ffff:127.0.0.2")));
        assert!(!policy.permits(ip("10.0.0.1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn ip_literal_urls_are_checked_up_front() {
        let policy = AddressPolicy::default();
        for url in
            ["http://127.0.0.1/", "http://10.0.0.1/", "http://169.254.169.254/latest", "http://[::1]:8080/"]
        {
            assert!(policy.check_url(&url.parse().unwrap()).is_err(), "{url}");
        }
        assert!(policy.check_url(&"https://93.184.216.34/".parse().unwrap()).is_ok());
        assert!(policy.check_url(&"https://tracker.example/".parse().unwrap()).is_ok());
    }
}
