//! NAT, link and server behaviour of the simulated network, asserted packet by packet.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_netsim::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Lab {
    net: Network,
    inside: HostId,
    nat: NatId,
    a: HostId,
    b: HostId,
    t0: Instant,
}

/// inside 10.0.0.2 behind NAT 203.0.113.1; public hosts a=198.51.100.1, b=198.51.100.2.
fn lab(cfg: NatConfig) -> Lab {
    let t0 = Instant::now();
    let mut net = Network::new(t0, 7);
    let (nat, lan) = net.add_nat(
        RealmId::INTERNET,
        ip("203.0.113.1"),
        cfg,
        LinkConfig::default(),
    );
    let inside = net.add_host(lan, &[ip("10.0.0.2")], LinkConfig::default());
    let a = net.add_host(
        RealmId::INTERNET,
        &[ip("198.51.100.1")],
        LinkConfig::default(),
    );
    let b = net.add_host(
        RealmId::INTERNET,
        &[ip("198.51.100.2")],
        LinkConfig::default(),
    );
    Lab {
        net,
        inside,
        nat,
        a,
        b,
        t0,
    }
}

impl Lab {
    fn run(&mut self) -> Vec<Delivery> {
        let t = self.net.now() + Duration::from_secs(1);
        self.net.advance_to(t);
        std::iter::from_fn(|| self.net.poll_delivery()).collect()
    }
    /// sends from inside 10.0.0.2:5000 to dst and returns the source seen there
    fn out(&mut self, dst: &str, dst_host: HostId) -> SocketAddr {
        self.net
            .send(self.inside, sa("10.0.0.2:5000"), sa(dst), b"x".to_vec());
        let d = self.run();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].host, dst_host);
        d[0].remote
    }
    fn try_in(&mut self, from_host: HostId, from: &str, to: SocketAddr) -> bool {
        self.net.send(from_host, sa(from), to, b"y".to_vec());
        let d = self.run();
        d.iter()
            .any(|d| d.host == self.inside && d.local == sa("10.0.0.2:5000"))
    }
}

fn cfg(m: MappingBehavior, f: FilteringBehavior, p: PortAllocation) -> NatConfig {
    NatConfig {
        mapping: m,
        filtering: f,
        port_allocation: p,
        ..NatConfig::default()
    }
}

#[test]
fn endpoint_independent_mapping_reuses_the_port() {
    let mut l = lab(cfg(
        MappingBehavior::EndpointIndependent,
        FilteringBehavior::EndpointIndependent,
        PortAllocation::Preserving,
    ));
    let m1 = l.out("198.51.100.1:3478", l.a);
    let m2 = l.out("198.51.100.2:9999", l.b);
    assert_eq!(m1, sa("203.0.113.1:5000"));
    assert_eq!(m2, m1);
    assert_eq!(l.net.nat_mapping_count(l.nat), 1);
}

#[test]
fn address_dependent_mapping() {
    let mut l = lab(cfg(
        MappingBehavior::AddressDependent,
        FilteringBehavior::EndpointIndependent,
        PortAllocation::Sequential,
    ));
    let m1 = l.out("198.51.100.1:1", l.a);
    let m2 = l.out("198.51.100.1:2", l.a);
    let m3 = l.out("198.51.100.2:1", l.b);
    assert_eq!(m1, sa("203.0.113.1:40000"));
    assert_eq!(m2, m1, "same IP, other port: same mapping");
    assert_eq!(m3, sa("203.0.113.1:40001"));
}

#[test]
fn symmetric_mapping_random_ports_are_seeded() {
    let sym = NatType::Symmetric.config().unwrap();
    let mut l = lab(sym);
    let m1 = l.out("198.51.100.1:1", l.a);
    let m2 = l.out("198.51.100.1:2", l.a);
    assert_ne!(m1.port(), m2.port());
    let mut again = lab(sym);
    assert_eq!(
        again.out("198.51.100.1:1", again.a),
        m1,
        "same seed, same port"
    );
}

#[test]
fn filtering_full_restricted_port_restricted() {
    let mk = |f| {
        cfg(
            MappingBehavior::EndpointIndependent,
            f,
            PortAllocation::Preserving,
        )
    };
    // EIF: a stranger gets in
    let mut l = lab(mk(FilteringBehavior::EndpointIndependent));
    let ext = l.out("198.51.100.1:3478", l.a);
    assert!(l.try_in(l.b, "198.51.100.2:7", ext));
    // ADF: same IP other port ok, other IP not
    let mut l = lab(mk(FilteringBehavior::AddressDependent));
    let ext = l.out("198.51.100.1:3478", l.a);
    assert!(l.try_in(l.a, "198.51.100.1:7", ext));
    assert!(!l.try_in(l.b, "198.51.100.2:3478", ext));
    assert_eq!(l.net.stats().filtered, 1);
    // APDF: only the exact endpoint
    let mut l = lab(mk(FilteringBehavior::AddressAndPortDependent));
    let ext = l.out("198.51.100.1:3478", l.a);
    assert!(!l.try_in(l.a, "198.51.100.1:7", ext));
    assert!(l.try_in(l.a, "198.51.100.1:3478", ext));
    // unknown port: no mapping
    assert!(!l.try_in(l.a, "198.51.100.1:3478", sa("203.0.113.1:1234")));
    assert_eq!(l.net.stats().no_mapping, 1);
}

#[test]
fn binding_timeout_expires_idle_mappings() {
    let mut c = cfg(
        MappingBehavior::EndpointIndependent,
        FilteringBehavior::EndpointIndependent,
        PortAllocation::Sequential,
    );
    c.binding_timeout = Duration::from_secs(30);
    let mut l = lab(c);
    let ext = l.out("198.51.100.1:1", l.a);
    assert_eq!(ext.port(), 40000);
    let t = l.t0 + Duration::from_secs(29);
    l.net.advance_to(t);
    assert!(
        l.try_in(l.a, "198.51.100.1:1", ext),
        "still alive (inbound does not refresh)"
    );
    let t = l.t0 + Duration::from_secs(32);
    l.net.advance_to(t);
    assert!(!l.try_in(l.a, "198.51.100.1:1", ext));
    assert_eq!(l.net.nat_mapping_count(l.nat), 0);
    assert_eq!(
        l.out("198.51.100.1:1", l.a).port(),
        40001,
        "new mapping after expiry"
    );
}

#[test]
fn hairpinning_on_and_off() {
    for hairpin in [false, true] {
        let t0 = Instant::now();
        let mut net = Network::new(t0, 1);
        let c = NatConfig {
            hairpin,
            ..NatConfig::default()
        };
        let (_, lan) = net.add_nat(
            RealmId::INTERNET,
            ip("203.0.113.1"),
            c,
            LinkConfig::default(),
        );
        let h1 = net.add_host(lan, &[ip("10.0.0.2")], LinkConfig::default());
        let h2 = net.add_host(lan, &[ip("10.0.0.3")], LinkConfig::default());
        let s = net.add_host(
            RealmId::INTERNET,
            &[ip("198.51.100.1")],
            LinkConfig::default(),
        );
        // both open EIM/EIF mappings
        net.send(h1, sa("10.0.0.2:1000"), sa("198.51.100.1:1"), vec![1]);
        net.send(h2, sa("10.0.0.3:2000"), sa("198.51.100.1:1"), vec![2]);
        net.advance_to(t0 + Duration::from_millis(1));
        assert_eq!(
            std::iter::from_fn(|| net.poll_delivery())
                .filter(|d| d.host == s)
                .count(),
            2
        );
        net.send(h1, sa("10.0.0.2:1000"), sa("203.0.113.1:2000"), vec![3]);
        net.advance_to(t0 + Duration::from_millis(2));
        let got: Vec<_> = std::iter::from_fn(|| net.poll_delivery()).collect();
        if hairpin {
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].host, h2);
            assert_eq!(
                got[0].remote,
                sa("203.0.113.1:1000"),
                "source is the external mapping"
            );
        } else {
            assert!(got.is_empty());
            assert_eq!(net.stats().no_hairpin, 1);
        }
    }
}

#[test]
fn link_delay_is_exact_and_loss_is_seeded() {
    let t0 = Instant::now();
    let mut net = Network::new(t0, 42);
    let a = net.add_host(
        RealmId::INTERNET,
        &[ip("198.51.100.1")],
        LinkConfig::delay(Duration::from_millis(30)),
    );
    let b = net.add_host(
        RealmId::INTERNET,
        &[ip("198.51.100.2")],
        LinkConfig::delay(Duration::from_millis(20)),
    );
    net.send(
        a,
        sa("198.51.100.1:1"),
        sa("198.51.100.2:2"),
        b"hi".to_vec(),
    );
    assert_eq!(net.poll_timeout(), Some(t0 + Duration::from_millis(30)));
    net.advance_to(t0 + Duration::from_millis(49));
    assert!(net.poll_delivery().is_none());
    net.advance_to(t0 + Duration::from_millis(50));
    let d = net.poll_delivery().unwrap();
    assert_eq!(
        (d.host, d.at, d.data.as_slice()),
        (b, t0 + Duration::from_millis(50), &b"hi"[..])
    );

    let lossy = LinkConfig {
        loss: 0.25,
        ..LinkConfig::default()
    };
    let count = |seed| {
        let mut net = Network::new(t0, seed);
        let a = net.add_host(RealmId::INTERNET, &[ip("198.51.100.1")], lossy);
        let _b = net.add_host(
            RealmId::INTERNET,
            &[ip("198.51.100.2")],
            LinkConfig::default(),
        );
        for _ in 0..1000 {
            net.send(a, sa("198.51.100.1:1"), sa("198.51.100.2:2"), vec![0]);
        }
        net.advance_to(t0 + Duration::from_secs(1));
        std::iter::from_fn(|| net.poll_delivery()).count()
    };
    let n = count(9);
    assert_eq!(n, count(9), "deterministic");
    assert!((700..800).contains(&n), "{n}");
}

#[test]
fn stun_server_reports_the_mapped_address() {
    use natter_stun::{Class, Message, MessageWriter, Method, TransactionId};
    let mut l = lab(NatType::PortRestrictedCone.config().unwrap());
    l.net.add_server(
        RealmId::INTERNET,
        ip("198.51.100.9"),
        Box::new(StunServer::new()),
    );
    let mut buf = Vec::new();
    let tid = TransactionId([7; 12]);
    MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid)
        .finish()
        .unwrap();
    l.net
        .send(l.inside, sa("10.0.0.2:5000"), sa("198.51.100.9:3478"), buf);
    let d = l.run();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].remote, sa("198.51.100.9:3478"));
    let msg = Message::parse(&d[0].data).unwrap();
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.transaction_id(), tid);
    assert_eq!(
        msg.xor_mapped_address().unwrap(),
        Some(sa("203.0.113.1:40000"))
    );
}

#[test]
fn relay_allocates_and_forwards_with_permissions() {
    let mut l = lab(NatType::Symmetric.config().unwrap());
    l.net.add_server(
        RealmId::INTERNET,
        ip("198.51.100.10"),
        Box::new(RelayServer::new(3478)),
    );
    let srv = sa("198.51.100.10:3478");
    l.net.send(
        l.inside,
        sa("10.0.0.2:5000"),
        srv,
        RelayMessage::Allocate.encode(),
    );
    let d = l.run();
    let relayed = match RelayMessage::decode(&d[0].data) {
        Some(RelayMessage::Allocated(a)) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(relayed, sa("198.51.100.10:50000"));
    // no permission yet: peer a cannot reach the relayed address
    l.net
        .send(l.a, sa("198.51.100.1:9"), relayed, b"early".to_vec());
    assert!(l.run().is_empty());
    // client sends to a via the relay; a sees the relayed address as source
    l.net.send(
        l.inside,
        sa("10.0.0.2:5000"),
        srv,
        RelayMessage::Send(sa("198.51.100.1:9"), b"hi".to_vec()).encode(),
    );
    let d = l.run();
    assert_eq!(
        (d[0].host, d[0].remote, d[0].data.as_slice()),
        (l.a, relayed, &b"hi"[..])
    );
    // a answers; the client gets a DATA from the server address
    l.net
        .send(l.a, sa("198.51.100.1:9"), relayed, b"yo".to_vec());
    let d = l.run();
    assert_eq!(d[0].host, l.inside);
    assert_eq!(d[0].remote, srv);
    assert_eq!(
        RelayMessage::decode(&d[0].data),
        Some(RelayMessage::Data(sa("198.51.100.1:9"), b"yo".to_vec()))
    );
}

#[test]
fn relay_codec_rejects_garbage() {
    for b in [
        &b""[..],
        b"ALO",
        b"SEND\x04\x01",
        b"DATA\x05",
        b"ALOK\x06\0\0",
    ] {
        assert_eq!(RelayMessage::decode(b), None);
    }
}

#[test]
fn servers_and_nats_survive_garbage() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut l = lab(NatType::Symmetric.config().unwrap());
    l.net.add_server(
        RealmId::INTERNET,
        ip("198.51.100.9"),
        Box::new(StunServer::new()),
    );
    l.net.add_server(
        RealmId::INTERNET,
        ip("198.51.100.10"),
        Box::new(RelayServer::new(3478)),
    );
    let targets = [
        "198.51.100.9:3478",
        "198.51.100.10:3478",
        "198.51.100.10:50000",
        "203.0.113.1:40000",
    ];
    for i in 0..5000 {
        let mut data: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
        if i % 3 == 0 && data.len() >= 4 {
            let tags: [&[u8; 4]; 4] = [b"ALOC", b"SEND", b"DATA", b"ALOK"];
            data[..4].copy_from_slice(tags[rng.gen_range(0..4)]);
        }
        let to = sa(targets[rng.gen_range(0..targets.len())]);
        let from_inside = rng.gen_bool(0.5);
        if from_inside {
            l.net.send(l.inside, sa("10.0.0.2:5000"), to, data);
        } else {
            l.net.send(l.a, sa("198.51.100.1:9"), to, data);
        }
    }
    l.run();
    let s = l.net.stats();
    assert!(s.sent >= 5000);
}
