//! NAT behaviour discovery against a simulated RFC 5780 server behind
//! simulated NATs, in virtual time.

// One real `Instant` serves as the origin; everything after it is virtual time.
#![allow(clippy::disallowed_methods)]
// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::server::{handle_binding, ResponseOptions};
use natter_stun::{
    FilteringBehavior, MappingBehavior, NatProbe, NatProbeConfig, NatProbeResult, NatType,
    TransactionId,
};

const LOCAL: &str = "10.0.0.2:5000";
const PUBLIC_IP: &str = "203.0.113.5";
const P_IP: &str = "192.0.2.1";
const A_IP: &str = "192.0.2.2";
const P_PORT: u16 = 3478;
const A_PORT: u16 = 3479;

#[derive(Clone, Copy, PartialEq)]
enum Mapping {
    None,
    Independent,
    AddressDependent,
    AddressPortDependent,
}

#[derive(Clone, Copy, PartialEq)]
enum Filter {
    Open,
    Address,
    AddressPort,
    DropAll,
}

fn last_octet(a: SocketAddr) -> u16 {
    match a.ip() {
        IpAddr::V4(v4) => u16::from(v4.octets()[3]),
        IpAddr::V6(_) => 0,
    }
}

struct World {
    mapping: Mapping,
    filter: Filter,
    /// The server announces OTHER-ADDRESS and honours CHANGE-REQUEST.
    rfc5780: bool,
    sent_to: HashSet<SocketAddr>,
}

impl World {
    fn local(&self) -> SocketAddr {
        if self.mapping == Mapping::None {
            "198.51.100.7:5000".parse().unwrap()
        } else {
            LOCAL.parse().unwrap()
        }
    }

    /// The client's address as the server sees it for traffic to `dst`.
    fn map(&self, dst: SocketAddr) -> SocketAddr {
        let ip: IpAddr = PUBLIC_IP.parse().unwrap();
        match self.mapping {
            Mapping::None => self.local(),
            Mapping::Independent => SocketAddr::new(ip, 40000),
            Mapping::AddressDependent => SocketAddr::new(ip, 41000 + last_octet(dst)),
            Mapping::AddressPortDependent => {
                SocketAddr::new(ip, 42000 + last_octet(dst) * 10 + dst.port() % 10)
            }
        }
    }

    fn inbound_allowed(&self, from: SocketAddr) -> bool {
        match self.filter {
            Filter::Open => true,
            Filter::Address => self.sent_to.iter().any(|a| a.ip() == from.ip()),
            Filter::AddressPort => self.sent_to.contains(&from),
            Filter::DropAll => false,
        }
    }

    /// The server: answers from the address CHANGE-REQUEST asks for.
    fn serve(
        &self,
        dst: SocketAddr,
        src: SocketAddr,
        payload: &[u8],
    ) -> Option<(SocketAddr, Vec<u8>)> {
        let p_ip: IpAddr = P_IP.parse().unwrap();
        let a_ip: IpAddr = A_IP.parse().unwrap();
        let other_of = |ip: IpAddr| if ip == p_ip { a_ip } else { p_ip };
        let other_port = |port: u16| if port == P_PORT { A_PORT } else { P_PORT };
        // First pass learns the CHANGE-REQUEST; the answer is then written with
        // the matching RESPONSE-ORIGIN.
        let mut out = Vec::new();
        let probe = handle_binding(payload, src, &ResponseOptions::default(), &mut out)?;
        let change = if self.rfc5780 {
            probe.change
        } else {
            Default::default()
        };
        let from = SocketAddr::new(
            if change.change_ip {
                other_of(dst.ip())
            } else {
                dst.ip()
            },
            if change.change_port {
                other_port(dst.port())
            } else {
                dst.port()
            },
        );
        let other = SocketAddr::new(other_of(dst.ip()), other_port(dst.port()));
        let opts = ResponseOptions {
            software: Some("sim"),
            response_origin: Some(from),
            other_address: self.rfc5780.then_some(other),
            fingerprint: true,
            ..Default::default()
        };
        let answer = handle_binding(payload, src, &opts, &mut out)?;
        out.truncate(answer.len);
        Some((from, out))
    }
}

/// Runs the probe to completion; returns the result and the elapsed virtual time.
fn run(mapping: Mapping, filter: Filter, rfc5780: bool) -> (NatProbeResult, Duration) {
    let mut world = World {
        mapping,
        filter,
        rfc5780,
        sent_to: HashSet::new(),
    };
    let start = Instant::now();
    let server: SocketAddr = SocketAddr::new(P_IP.parse().unwrap(), P_PORT);
    let config = NatProbeConfig {
        rto: Duration::from_millis(100),
        rc: 2,
        rm: 2,
    };
    let mut probe = NatProbe::new(start, world.local(), server, TransactionId([7; 12]), config);
    let mut now = start;
    for _ in 0..1000 {
        if let Some(r) = probe.result() {
            return (*r, now - start);
        }
        let mut inbound = Vec::new();
        while let Some(t) = probe.poll_transmit() {
            world.sent_to.insert(t.destination);
            let src = world.map(t.destination);
            if world.filter == Filter::DropAll {
                continue;
            }
            if let Some(answer) = world.serve(t.destination, src, t.payload) {
                inbound.push(answer);
            }
        }
        let mut answered = false;
        for (from, bytes) in inbound {
            if world.inbound_allowed(from) {
                answered |= probe.handle_response(now, from, &bytes);
            }
        }
        if !answered {
            let Some(next) = probe.poll_timeout() else {
                continue;
            };
            now = next;
            probe.handle_timeout(now);
        }
    }
    panic!("probe did not finish");
}

#[test]
fn full_cone() {
    let (r, _) = run(Mapping::Independent, Filter::Open, true);
    assert_eq!(r.nat_type, NatType::FullCone);
    assert_eq!(r.mapped, Some("203.0.113.5:40000".parse().unwrap()));
    assert_eq!(r.mapping, Some(MappingBehavior::EndpointIndependent));
    assert_eq!(r.filtering, Some(FilteringBehavior::EndpointIndependent));
    assert_eq!(r.other_address, Some("192.0.2.2:3479".parse().unwrap()));
    assert_eq!(r.response_origin, Some("192.0.2.1:3478".parse().unwrap()));
}

#[test]
fn restricted_cone() {
    let (r, elapsed) = run(Mapping::Independent, Filter::Address, true);
    assert_eq!(r.nat_type, NatType::RestrictedCone);
    assert_eq!(r.filtering, Some(FilteringBehavior::AddressDependent));
    // Only the change-IP test goes unanswered: 100 ms + 2 x 100 ms.
    assert_eq!(elapsed, Duration::from_millis(300));
}

#[test]
fn port_restricted_cone() {
    let (r, elapsed) = run(Mapping::Independent, Filter::AddressPort, true);
    assert_eq!(r.nat_type, NatType::PortRestrictedCone);
    assert_eq!(
        r.filtering,
        Some(FilteringBehavior::AddressAndPortDependent)
    );
    assert_eq!(elapsed, Duration::from_millis(600));
}

#[test]
fn symmetric_address_dependent() {
    let (r, _) = run(Mapping::AddressDependent, Filter::AddressPort, true);
    assert_eq!(r.nat_type, NatType::Symmetric);
    assert_eq!(r.mapping, Some(MappingBehavior::AddressDependent));
}

#[test]
fn symmetric_address_and_port_dependent() {
    let (r, _) = run(Mapping::AddressPortDependent, Filter::AddressPort, true);
    assert_eq!(r.nat_type, NatType::Symmetric);
    assert_eq!(r.mapping, Some(MappingBehavior::AddressAndPortDependent));
}

#[test]
fn open_internet() {
    let (r, _) = run(Mapping::None, Filter::Open, true);
    assert_eq!(r.nat_type, NatType::OpenInternet);
    assert_eq!(r.mapped, Some("198.51.100.7:5000".parse().unwrap()));
}

#[test]
fn symmetric_udp_firewall() {
    let (r, _) = run(Mapping::None, Filter::AddressPort, true);
    assert_eq!(r.nat_type, NatType::SymmetricUdpFirewall);
}

#[test]
fn udp_blocked_after_one_transaction_timeout() {
    let (r, elapsed) = run(Mapping::Independent, Filter::DropAll, true);
    assert_eq!(r.nat_type, NatType::UdpBlocked);
    assert_eq!(r.mapped, None);
    assert_eq!(elapsed, Duration::from_millis(300));
}

#[test]
fn server_without_rfc5780_gives_unknown_with_mapping() {
    let (r, _) = run(Mapping::Independent, Filter::Open, false);
    assert_eq!(r.nat_type, NatType::Unknown);
    assert_eq!(r.mapped, Some("203.0.113.5:40000".parse().unwrap()));
    assert_eq!(r.other_address, None);
}
