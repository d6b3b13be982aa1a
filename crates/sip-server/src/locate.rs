//! Locating SIP servers (RFC 3263 §4): which transport, address and port a
//! request for a URI goes to, as an ordered list of destinations to try in
//! turn (failover, §4.3).
//!
//! This is the procedure without the DNS I/O: [`Locator`] says which
//! records it needs next ([`Step::Query`]) and is fed the answers; the
//! driver owns the resolver. So the whole NAPTR → SRV → A/AAAA walk,
//! including the fallbacks when a level has no records, is tested without a
//! network, and a DNS server started by an interop test checks the driver.

use std::net::{IpAddr, SocketAddr};

use crate::peer::{Peer, Transport};

/// Upper bound on destinations kept from one lookup: a hostile zone cannot
/// make a request fan out without limit.
pub const MAX_DESTINATIONS: usize = 16;
/// Upper bound on SRV names followed from NAPTR records.
const MAX_SRV_NAMES: usize = 6;

/// A NAPTR record (RFC 3403) as far as SIP uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower is tried first.
    pub order: u16,
    /// Lower is preferred among equal `order`.
    pub preference: u16,
    /// Flags; SIP uses "s" (the replacement is an SRV name).
    pub flags: String,
    /// Service, e.g. `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
    pub service: String,
    /// The SRV name to query next.
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative weight among equal priority.
    pub weight: u16,
    /// Port at the target.
    pub port: u16,
    /// Host name of the target ("." means the service is not offered).
    pub target: String,
}

/// A DNS question the locator needs answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// NAPTR records of a domain.
    Naptr(String),
    /// SRV records of `_service._proto.domain`.
    Srv(String),
    /// A and AAAA records of a host.
    Addr(String),
}

/// What the locator wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer this question with the matching `on_*` method.
    Query(Query),
    /// Destinations in the order to try them (empty: the name does not resolve).
    Done(Vec<Peer>),
}

/// An SRV target still to be turned into addresses.
#[derive(Debug, Clone)]
struct Pending {
    transport: Transport,
    host: String,
    port: u16,
}

/// RFC 3263 §4 for one target URI.
#[derive(Debug)]
pub struct Locator {
    host: String,
    sips: bool,
    /// SRV names still to query, each with the transport it stands for.
    srv_names: Vec<(Transport, String)>,
    /// Hosts (from SRV or the URI) still to resolve to addresses.
    hosts: Vec<Pending>,
    /// Whether any SRV query returned records (else fall back to A/AAAA).
    srv_seen: bool,
    /// Transport and port to use if the SRV level has nothing.
    fallback: Option<(Transport, u16)>,
    out: Vec<Peer>,
    /// Randomness for SRV weight selection (RFC 2782), supplied by the
    /// caller so tests are deterministic.
    rng: u64,
}

fn default_port(t: Transport) -> u16 {
    if t == Transport::Tls || t == Transport::Wss {
        5061
    } else {
        5060
    }
}

fn srv_name(t: Transport, host: &str) -> String {
    match t {
        Transport::Tls | Transport::Wss => format!("_sips._tcp.{host}"),
        Transport::Tcp | Transport::Ws => format!("_sip._tcp.{host}"),
        Transport::Udp => format!("_sip._udp.{host}"),
    }
}

fn naptr_transport(service: &str, sips: bool) -> Option<Transport> {
    match service.to_ascii_uppercase().as_str() {
        "SIPS+D2T" => Some(Transport::Tls),
        "SIP+D2T" if !sips => Some(Transport::Tcp),
        "SIP+D2U" if !sips => Some(Transport::Udp),
        _ => None,
    }
}

impl Locator {
    /// Start locating `host` (a URI's host part, brackets allowed for IPv6),
    /// with the URI's explicit `port` and `transport` parameter if any;
    /// `sips` for a SIPS URI. `seed` drives SRV weighting. Returns the
    /// locator and its first step.
    pub fn start(
        host: &str,
        port: Option<u16>,
        transport: Option<Transport>,
        sips: bool,
        seed: u64,
    ) -> (Locator, Step) {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let mut l = Locator {
            host: host.clone(),
            sips,
            srv_names: Vec::new(),
            hosts: Vec::new(),
            srv_seen: false,
            fallback: None,
            out: Vec::new(),
            rng: seed | 1,
        };
        let transport = transport.map(|t| {
            if sips && t == Transport::Tcp {
                Transport::Tls
            } else {
                t
            }
        });
        // §4.1: a numeric host needs no DNS at all.
        if let Ok(ip) = host.parse::<IpAddr>() {
            let t = transport.unwrap_or(if sips { Transport::Tls } else { Transport::Udp });
            let p = port.unwrap_or_else(|| default_port(t));
            return (
                l,
                Step::Done(vec![Peer {
                    transport: t,
                    addr: SocketAddr::new(ip, p),
                }]),
            );
        }
        // §4.2: an explicit port means A/AAAA only.
        if let Some(p) = port {
            let t = transport.unwrap_or(if sips { Transport::Tls } else { Transport::Udp });
            l.hosts.push(Pending {
                transport: t,
                host: host.clone(),
                port: p,
            });
            return (l, Step::Query(Query::Addr(host)));
        }
        // §4.1: an explicit transport skips NAPTR.
        if let Some(t) = transport {
            l.srv_names.push((t, srv_name(t, &host)));
            l.fallback = Some((t, default_port(t)));
            let step = l.next_step();
            return (l, step);
        }
        (l, Step::Query(Query::Naptr(host)))
    }

    /// Feed the NAPTR answer (empty when there are none or the query failed).
    pub fn on_naptr(&mut self, mut records: Vec<Naptr>) -> Step {
        records.sort_by_key(|r| (r.order, r.preference));
        for r in &records {
            if !r.flags.eq_ignore_ascii_case("s") {
                continue;
            }
            let Some(t) = naptr_transport(&r.service, self.sips) else {
                continue;
            };
            let name = r.replacement.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() || self.srv_names.len() >= MAX_SRV_NAMES {
                continue;
            }
            if !self.srv_names.iter().any(|(_, n)| *n == name) {
                self.srv_names.push((t, name));
            }
        }
        if self.srv_names.is_empty() {
            // §4.1: no usable NAPTR: SRV for the transports we support, in our
            // order of preference. A SIPS URI only ever uses TLS.
            let ts: &[Transport] = if self.sips {
                &[Transport::Tls]
            } else {
                &[Transport::Udp, Transport::Tcp, Transport::Tls]
            };
            for &t in ts {
                self.srv_names.push((t, srv_name(t, &self.host)));
            }
        }
        // §4.2: if no SRV records turn up either, the host itself.
        let t = if self.sips {
            Transport::Tls
        } else {
            Transport::Udp
        };
        self.fallback = Some((t, default_port(t)));
        self.next_step()
    }

    /// Feed the SRV answer for the name last asked about.
    pub fn on_srv(&mut self, records: Vec<Srv>) -> Step {
        if self.srv_names.is_empty() {
            return self.next_step();
        }
        let (t, _) = self.srv_names.remove(0);
        let usable: Vec<Srv> = records
            .into_iter()
            .filter(|r| {
                let target = r.target.trim_end_matches('.');
                !target.is_empty() && r.port != 0
            })
            .collect();
        if !usable.is_empty() {
            self.srv_seen = true;
        }
        for r in self.order_srv(usable) {
            if self.hosts.len() >= MAX_DESTINATIONS {
                break;
            }
            self.hosts.push(Pending {
                transport: t,
                host: r.target.trim_end_matches('.').to_ascii_lowercase(),
                port: r.port,
            });
        }
        self.next_step()
    }

    /// Feed the A and AAAA answer for the host last asked about.
    pub fn on_addr(&mut self, ips: Vec<IpAddr>) -> Step {
        if !self.hosts.is_empty() {
            let h = self.hosts.remove(0);
            for ip in ips {
                if self.out.len() >= MAX_DESTINATIONS {
                    break;
                }
                let p = Peer {
                    transport: h.transport,
                    addr: SocketAddr::new(ip, h.port),
                };
                if !self.out.contains(&p) {
                    self.out.push(p);
                }
            }
        }
        self.next_step()
    }

    fn next_step(&mut self) -> Step {
        if let Some((_, name)) = self.srv_names.first() {
            return Step::Query(Query::Srv(name.clone()));
        }
        if !self.srv_seen {
            // §4.2: no SRV records at all: the host itself, default port.
            if let Some((t, port)) = self.fallback.take() {
                self.hosts.push(Pending {
                    transport: t,
                    host: self.host.clone(),
                    port,
                });
            }
        }
        if let Some(h) = self.hosts.first() {
            return Step::Query(Query::Addr(h.host.clone()));
        }
        Step::Done(std::mem::take(&mut self.out))
    }

    /// RFC 2782 ordering: by priority; within a priority, weighted random
    /// selection (zero weights get a small chance, as the RFC asks).
    fn order_srv(&mut self, mut rs: Vec<Srv>) -> Vec<Srv> {
        rs.sort_by_key(|r| r.priority);
        let mut out = Vec::with_capacity(rs.len());
        while !rs.is_empty() {
            let prio = rs[0].priority;
            let n = rs.iter().take_while(|r| r.priority == prio).count();
            let mut group: Vec<Srv> = rs.drain(..n).collect();
            // Zero weights first, as RFC 2782 arranges them.
            group.sort_by_key(|r| r.weight != 0);
            while !group.is_empty() {
                let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
                let pick = if total == 0 {
                    0
                } else {
                    let x = (self.next_rand() % u64::from(total + 1)) as u32;
                    let mut run = 0u32;
                    group
                        .iter()
                        .position(|r| {
                            run += u32::from(r.weight);
                            run >= x
                        })
                        .unwrap_or(0)
                };
                out.push(group.remove(pick));
            }
        }
        out
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64: only spreads load, no security role.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(t: Transport, a: &str) -> Peer {
        Peer {
            transport: t,
            addr: a.parse().expect("addr"),
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn naptr(order: u16, pref: u16, service: &str, repl: &str) -> Naptr {
        Naptr {
            order,
            preference: pref,
            flags: "s".into(),
            service: service.into(),
            replacement: repl.into(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn numeric_host_needs_no_dns() {
        let (_, step) = Locator::start("[2001:db8::1]", None, None, true, 1);
        assert_eq!(
            step,
            Step::Done(vec![peer(Transport::Tls, "[2001:db8::1]:5061")])
        );
        let (_, step) = Locator::start("192.0.2.1", Some(5080), Some(Transport::Tcp), false, 1);
        assert_eq!(
            step,
            Step::Done(vec![peer(Transport::Tcp, "192.0.2.1:5080")])
        );
    }

    #[test]
    fn explicit_port_goes_straight_to_addresses() {
        let (mut l, step) = Locator::start("Proxy.Example.COM.", Some(5070), None, false, 1);
        assert_eq!(step, Step::Query(Query::Addr("proxy.example.com".into())));
        let step = l.on_addr(vec![ip("192.0.2.7"), ip("2001:db8::7")]);
        assert_eq!(
            step,
            Step::Done(vec![
                peer(Transport::Udp, "192.0.2.7:5070"),
                peer(Transport::Udp, "[2001:db8::7]:5070")
            ])
        );
    }

    #[test]
    fn naptr_then_srv_then_addresses_in_order() {
        let (mut l, step) = Locator::start("example.com", None, None, false, 7);
        assert_eq!(step, Step::Query(Query::Naptr("example.com".into())));
        // Order 50 TCP before order 90 UDP; an unknown service is skipped.
        let step = l.on_naptr(vec![
            naptr(90, 50, "SIP+D2U", "_sip._udp.example.com."),
            naptr(50, 50, "SIP+D2T", "_sip._tcp.example.com."),
            naptr(10, 10, "SIP+D2X", "_sip._sctp.example.com."),
        ]);
        assert_eq!(
            step,
            Step::Query(Query::Srv("_sip._tcp.example.com".into()))
        );
        let step = l.on_srv(vec![
            srv(20, 0, 5060, "b.example.com."),
            srv(10, 0, 5062, "a.example.com."),
        ]);
        assert_eq!(
            step,
            Step::Query(Query::Srv("_sip._udp.example.com".into()))
        );
        let step = l.on_srv(vec![srv(10, 0, 5060, "c.example.com.")]);
        assert_eq!(step, Step::Query(Query::Addr("a.example.com".into())));
        let step = l.on_addr(vec![ip("192.0.2.1")]);
        assert_eq!(step, Step::Query(Query::Addr("b.example.com".into())));
        let step = l.on_addr(vec![ip("192.0.2.2")]);
        assert_eq!(step, Step::Query(Query::Addr("c.example.com".into())));
        let step = l.on_addr(vec![ip("192.0.2.3")]);
        assert_eq!(
            step,
            Step::Done(vec![
                peer(Transport::Tcp, "192.0.2.1:5062"),
                peer(Transport::Tcp, "192.0.2.2:5060"),
                peer(Transport::Udp, "192.0.2.3:5060"),
            ])
        );
    }

    #[test]
    fn sips_uses_only_tls_services() {
        let (mut l, _) = Locator::start("example.com", None, None, true, 7);
        let step = l.on_naptr(vec![
            naptr(10, 10, "SIP+D2U", "_sip._udp.example.com"),
            naptr(20, 10, "SIPS+D2T", "_sips._tcp.example.com"),
        ]);
        assert_eq!(
            step,
            Step::Query(Query::Srv("_sips._tcp.example.com".into()))
        );
        let step = l.on_srv(vec![srv(1, 1, 5061, "tls.example.com")]);
        assert_eq!(step, Step::Query(Query::Addr("tls.example.com".into())));
        assert_eq!(
            l.on_addr(vec![ip("192.0.2.9")]),
            Step::Done(vec![peer(Transport::Tls, "192.0.2.9:5061")])
        );
    }

    #[test]
    fn no_naptr_tries_srv_per_transport_then_the_host() {
        let (mut l, _) = Locator::start("example.com", None, None, false, 7);
        assert_eq!(
            l.on_naptr(Vec::new()),
            Step::Query(Query::Srv("_sip._udp.example.com".into()))
        );
        assert_eq!(
            l.on_srv(Vec::new()),
            Step::Query(Query::Srv("_sip._tcp.example.com".into()))
        );
        assert_eq!(
            l.on_srv(Vec::new()),
            Step::Query(Query::Srv("_sips._tcp.example.com".into()))
        );
        // "." target: service explicitly not offered.
        assert_eq!(
            l.on_srv(vec![srv(0, 0, 0, ".")]),
            Step::Query(Query::Addr("example.com".into()))
        );
        assert_eq!(
            l.on_addr(vec![ip("192.0.2.5")]),
            Step::Done(vec![peer(Transport::Udp, "192.0.2.5:5060")])
        );
    }

    #[test]
    fn explicit_transport_skips_naptr() {
        let (mut l, step) = Locator::start("example.com", None, Some(Transport::Tcp), false, 7);
        assert_eq!(
            step,
            Step::Query(Query::Srv("_sip._tcp.example.com".into()))
        );
        assert_eq!(
            l.on_srv(Vec::new()),
            Step::Query(Query::Addr("example.com".into()))
        );
        assert_eq!(
            l.on_addr(vec![ip("192.0.2.5")]),
            Step::Done(vec![peer(Transport::Tcp, "192.0.2.5:5060")])
        );
    }

    #[test]
    fn unresolvable_name_is_empty() {
        let (mut l, _) = Locator::start("nowhere.invalid", Some(5060), None, false, 7);
        assert_eq!(l.on_addr(Vec::new()), Step::Done(Vec::new()));
    }

    #[test]
    fn srv_weights_spread_load_and_keep_every_target() {
        let mut first_a = 0;
        for seed in 0..400u64 {
            let (mut l, _) = Locator::start("example.com", None, Some(Transport::Udp), false, seed);
            l.on_srv(vec![
                srv(10, 90, 5060, "a.example.com"),
                srv(10, 10, 5060, "b.example.com"),
            ]);
            let first = l.hosts.first().map(|h| h.host.clone());
            assert_eq!(l.hosts.len(), 2);
            if first.as_deref() == Some("a.example.com") {
                first_a += 1;
            }
        }
        // 90:10 weights: "a" first in most orderings, never in all.
        assert!(first_a > 300 && first_a < 400, "a first {first_a}/400");
    }

    #[test]
    fn hostile_zone_is_bounded() {
        let (mut l, _) = Locator::start("example.com", None, Some(Transport::Udp), false, 3);
        let many: Vec<Srv> = (0..1000)
            .map(|i| srv(1, 1, 5060, &format!("h{i}.example.com")))
            .collect();
        l.on_srv(many);
        assert_eq!(l.hosts.len(), MAX_DESTINATIONS);
        let mut step = l.next_step();
        let mut rounds = 0;
        while let Step::Query(_) = step {
            rounds += 1;
            step = l.on_addr((0..100u8).map(|i| IpAddr::from([192, 0, 2, i])).collect());
        }
        assert!(rounds <= MAX_DESTINATIONS);
        match step {
            Step::Done(v) => assert_eq!(v.len(), MAX_DESTINATIONS),
            Step::Query(_) => unreachable!(),
        }
    }
}
