//! Which peers a relay may reach.
//!
//! An open relay that reaches loopback or private addresses lets anyone on the internet talk to
//! the services behind the TURN server (metadata endpoints, admin ports). So by default only
//! global unicast peers are allowed, and the operator opens ranges explicitly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network in CIDR form (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpNetError {
    /// The address part is not an IP address.
    #[error("not an IP address: {0}")]
    Addr(String),
    /// The prefix is not a number within the family's width.
    #[error("bad prefix length: {0}")]
    Prefix(String),
}

impl IpNet {
    /// A network from an address and a prefix length (clamped to the family's width).
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            prefix: prefix.min(max),
        }
    }

    /// Parses `ADDR/PREFIX`, or a bare address meaning one host.
    pub fn parse(s: &str) -> Result<Self, IpNetError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| IpNetError::Addr(a.into()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|v| *v <= max)
                .ok_or_else(|| IpNetError::Prefix(p.into()))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    /// True if `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Maps `::ffff:a.b.c.d` to `a.b.c.d`, so a mapped address cannot sneak past IPv4 rules.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The peer policy: explicit deny wins, then explicit allow, then the built-in rules.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    /// Allow 127.0.0.0/8 and ::1 (tests, single-host set-ups).
    pub allow_loopback: bool,
    /// Allow RFC 1918, RFC 6598 (CGNAT), fc00::/7 and link-local ranges.
    pub allow_private: bool,
    /// Ranges always allowed (checked after `denied`).
    pub allowed: Vec<IpNet>,
    /// Ranges always denied.
    pub denied: Vec<IpNet>,
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback(),
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private() || a.is_link_local() || (o[0] == 100 && (o[1] & 0xC0) == 64)
            // 100.64.0.0/10, shared address space
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            (s[0] & 0xFE00) == 0xFC00 // fc00::/7 unique local
                || (s[0] & 0xFFC0) == 0xFE80 // fe80::/10 link local
                || (s[0] & 0xFFC0) == 0xFEC0 // fec0::/10 deprecated site local
        }
    }
}

/// Addresses no relay should ever send to, whatever the configuration: unspecified, broadcast,
/// multicast, the "this network" block, and reserved/documentation ranges are not peers.
fn is_never_a_peer(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_unspecified() || a.is_broadcast() || a.is_multicast() || o[0] == 0 || o[0] >= 240
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a == Ipv6Addr::UNSPECIFIED,
    }
}

impl PeerPolicy {
    /// Whether a relay may exchange data with `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.denied.iter().any(|n| n.contains(ip)) {
            return false;
        }
        if self.allowed.iter().any(|n| n.contains(ip)) {
            return true;
        }
        if is_never_a_peer(ip) {
            return false;
        }
        if is_loopback(ip) {
            return self.allow_loopback;
        }
        if is_private(ip) {
            return self.allow_private;
        }
        true
    }
}

/// The unspecified address of `ip`'s family, handy for tests and defaults.
pub fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_deny_everything_internal() {
        let p = PeerPolicy::default();
        for bad in [
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
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!p.permits(ip(bad)), "{bad} must be denied");
        }
        for good in ["8.8.8.8", "2001:4860::8888", "198.51.100.7"] {
            assert!(p.permits(ip(good)), "{good} must be allowed");
        }
    }

    #[test]
    fn flags_and_lists_open_and_close_ranges() {
        let mut p = PeerPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        assert!(p.permits(ip("127.0.0.1")));
        assert!(p.permits(ip("::1")));
        assert!(!p.permits(ip("10.0.0.1")));
        p.allowed.push(IpNet::parse("10.0.0.0/8").unwrap());
        assert!(p.permits(ip("10.9.9.9")));
        p.denied.push(IpNet::parse("10.9.0.0/16").unwrap());
        assert!(!p.permits(ip("10.9.9.9")));
        assert!(p.permits(ip("10.8.9.9")));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            IpNet::parse("192.0.2.0/24").unwrap(),
            IpNet::new(ip("192.0.2.0"), 24)
        );
        assert!(IpNet::parse("192.0.2.0/33").is_err());
        assert!(IpNet::parse("nope/3").is_err());
        assert!(IpNet::parse("2001:db8::/32")
            .unwrap()
            .contains(ip("2001:db8::5")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(!IpNet::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
    }
}
