//! Operator-loaded address lists (data centres, VPN exits, a blocklist): reading a file of
//! CIDR ranges, and the fixed-width keys that let storage find the range holding an address
//! with one index probe.
//!
//! Every address is keyed as 16 bytes, IPv4 as its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so
//! byte order is address order in one space for both families. A list's ranges are merged
//! into disjoint intervals before they are stored: then the one range with the greatest start
//! not above an address is the only one that can hold it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::Error;

/// One of the instance's address lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpList {
    Datacenter,
    Vpn,
    Blocklist,
}

impl IpList {
    pub const ALL: [IpList; 3] = [IpList::Datacenter, IpList::Vpn, IpList::Blocklist];

    pub fn as_str(self) -> &'static str {
        match self {
            IpList::Datacenter => "datacenter",
            IpList::Vpn => "vpn",
            IpList::Blocklist => "blocklist",
        }
    }
}

impl fmt::Display for IpList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IpList {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        IpList::ALL
            .into_iter()
            .find(|list| list.as_str() == s)
            .ok_or_else(|| Error::invalid("list", format!("unknown address list `{s}`")))
    }
}

/// An address as its 16-byte key: IPv4 (and IPv4-mapped IPv6) as `::ffff:a.b.c.d`.
pub fn ip_key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address a key stands for (the inverse of [`ip_key`]).
pub fn key_ip(key: [u8; 16]) -> IpAddr {
    Ipv6Addr::from(key).to_canonical()
}

/// An inclusive interval of addresses, as keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IpRange {
    pub start: [u8; 16],
    pub end: [u8; 16],
}

impl IpRange {
    pub fn of(net: IpNet) -> IpRange {
        IpRange { start: ip_key(net.network()), end: ip_key(net.broadcast()) }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let key = ip_key(ip);
        self.start <= key && key <= self.end
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = (key_ip(self.start), key_ip(self.end));
        if start == end { write!(f, "{start}") } else { write!(f, "{start}–{end}") }
    }
}

/// A list's ranges held in memory for lookups: disjoint and sorted (as [`merge`] gives and
/// storage keeps them), so the one range with the greatest start not above an address is the
/// only one that can hold it: a binary search, as the stored list's index probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeTable(Vec<IpRange>);

impl RangeTable {
    /// `ranges` as [`merge`] leaves them; anything else is merged first.
    pub fn new(ranges: Vec<IpRange>) -> RangeTable {
        let disjoint = ranges.windows(2).all(|pair| pair[0].end < pair[1].start);
        RangeTable(if disjoint { ranges } else { merge(ranges) })
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The range holding `ip`, if any.
    pub fn holding(&self, ip: IpAddr) -> Option<IpRange> {
        let key = ip_key(ip);
        let after = self.0.partition_point(|range| range.start <= key);
        let candidate = *self.0.get(after.checked_sub(1)?)?;
        (key <= candidate.end).then_some(candidate)
    }
}

/// A bad line of a ranges file: its number (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Reads one CIDR range (or a single address) per line; `#` starts a comment, blank lines are
/// skipped. Returns the ranges merged into disjoint intervals, in order, with how many lines
/// named one; or every bad line.
pub fn parse_ranges(text: &str) -> Result<(Vec<IpRange>, usize), Vec<LineError>> {
    let mut ranges = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let parsed = IpNet::from_str(entry).or_else(|_| IpAddr::from_str(entry).map(IpNet::from));
        match parsed {
            Ok(net) => ranges.push(IpRange::of(net)),
            Err(_) => errors.push(LineError {
                line: n + 1,
                message: format!("`{}` is not an IP address or CIDR range", entry.escape_debug()),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let lines = ranges.len();
    Ok((merge(ranges), lines))
}

/// Disjoint, sorted intervals covering exactly the addresses of `ranges`.
pub fn merge(mut ranges: Vec<IpRange>) -> Vec<IpRange> {
    ranges.sort_unstable();
    let mut merged: Vec<IpRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            // Overlapping or adjacent: one interval.
            Some(last)
                if range.start <= last.end
                    || u128::from_be_bytes(last.end).checked_add(1)
                        == Some(u128::from_be_bytes(range.start)) =>
            {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    merged
}
