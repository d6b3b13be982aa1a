//! RFC 6062 TCP relaying in the core, driven in virtual time with the fake relay provider.

use super::*;
use crate::server::tcp_relay::{connection_bind_id, PENDING_TIMEOUT};

fn control() -> FiveTuple {
    FiveTuple {
        client: "198.51.100.10:40000".parse().unwrap(),
        server: "192.0.2.1:3478".parse().unwrap(),
        transport: Transport::Tcp,
    }
}

fn data_conn(port: u16) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::new("198.51.100.10".parse().unwrap(), port),
        ..control()
    }
}

const PEER: &str = "203.0.113.5:8080";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn actions(s: &mut S) -> Vec<TcpAction> {
    std::iter::from_fn(|| s.poll_tcp_action()).collect()
}

/// Allocates a TCP relay for alice on `control()`.
fn allocate_tcp(s: &mut S, now: Instant) -> (Creds<'static>, SocketAddr) {
    let mut out = Vec::new();
    let nonce = challenge(s, now, control(), 6);
    let creds = alice(nonce);
    let req = request(Method::ALLOCATE, tid(2), Some(&creds), |w| {
        w.add_requested_transport(6);
    });
    let r = reply(s.handle_client(now, control(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    let relayed = m.xor_relayed_address().unwrap().unwrap();
    assert!(
        s.relay_provider().tcp.contains(&relayed),
        "TCP listener asked"
    );
    (creds, relayed)
}

fn connect(s: &mut S, now: Instant, creds: &Creds<'_>, t: u8, peer: SocketAddr) -> Owned {
    let req = request(Method::CONNECT, tid(t), Some(creds), |w| {
        w.add_xor_peer_address(peer);
    });
    let mut out = Vec::new();
    match s.handle_client(now, control(), &req, &mut out) {
        ClientOutput::Drop => Owned::Drop,
        ClientOutput::Reply { from, to, data } => Owned::Reply {
            from,
            to,
            data: data.to_vec(),
        },
        other => panic!("unexpected {other:?}"),
    }
}

/// The owned twin of [`ClientOutput`] for these tests.
#[derive(Debug)]
enum Owned {
    Drop,
    #[allow(dead_code)]
    Reply {
        from: SocketAddr,
        to: SocketAddr,
        data: Vec<u8>,
    },
}

fn bind(s: &mut S, now: Instant, five: FiveTuple, creds: &Creds<'_>, t: u8, id: u32) -> Vec<u8> {
    let req = request(Method::CONNECTION_BIND, tid(t), Some(creds), |w| {
        w.add_connection_id(id);
    });
    assert_eq!(connection_bind_id(&req), Some(id));
    let mut out = Vec::new();
    reply(s.handle_client(now, five, &req, &mut out))
}

#[test]
fn connect_then_connection_bind_splices_a_data_connection() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.set_tcp_shard_tag(3);
    let (creds, relayed) = allocate_tcp(&mut s, t0);
    assert!(matches!(
        connect(&mut s, t0, &creds, 3, peer()),
        Owned::Drop
    ));
    let [TcpAction::Connect { id, relay, peer: p }] = actions(&mut s)[..] else {
        panic!("expected one Connect");
    };
    assert_eq!((relay, p), (relayed, peer()));
    assert_eq!(id & 0xFF, 3, "shard tag in the low byte");
    // A second CONNECT to the same peer while the first is under way: 446.
    let Owned::Reply { data, .. } = connect(&mut s, t0, &creds, 4, peer()) else {
        panic!("446 expected");
    };
    assert_eq!(error_code(&data), Some(446));

    s.tcp_connect_result(t0, id, true);
    let acts = actions(&mut s);
    let [TcpAction::ToClient { five, data }] = &acts[..] else {
        panic!("{acts:?}");
    };
    assert_eq!(*five, control());
    let m = Message::parse(data).unwrap();
    assert_eq!((m.method(), m.class()), (Method::CONNECT, Class::Success));
    assert_eq!(m.transaction_id(), tid(3));
    assert_eq!(m.connection_id(), Ok(Some(id)));
    m.verify_integrity(&long_term_key("alice", REALM, "alicepw"))
        .unwrap();
    m.verify_fingerprint().unwrap();

    // The data connection: unauthenticated first (401), then bound.
    let d = data_conn(40001);
    let mut out = Vec::new();
    let unauth = request(Method::CONNECTION_BIND, tid(5), None, |w| {
        w.add_connection_id(id);
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, d, &unauth, &mut out))),
        Some(401)
    );
    let r = bind(&mut s, t0, d, &creds, 6, id);
    let m = Message::parse(&r).unwrap();
    assert_eq!(
        (m.method(), m.class()),
        (Method::CONNECTION_BIND, Class::Success),
        "{:?}",
        m.error_code()
    );
    m.verify_integrity(&long_term_key("alice", REALM, "alicepw"))
        .unwrap();
    assert_eq!(actions(&mut s), vec![TcpAction::Bind { id, data: d }]);
    // Bound once only; another data connection for the same ID is 400, and so is a second
    // bind on the bound data connection.
    assert_eq!(
        error_code(&bind(&mut s, t0, data_conn(40002), &creds, 7, id)),
        Some(400)
    );
    assert_eq!(error_code(&bind(&mut s, t0, d, &creds, 8, id)), Some(400));
    // No 30 s timer once bound.
    s.handle_timeout(t0 + PENDING_TIMEOUT * 2);
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.tcp_connection_count(), 1);
    // The data connection closing closes the peer connection.
    s.connection_closed(d);
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
    assert_eq!(s.tcp_connection_count(), 0);
}

#[test]
fn connect_applies_the_peer_policy_and_failures_are_447() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate_tcp(&mut s, t0);
    for (n, p) in [
        "127.0.0.1:80",
        "10.1.2.3:80",
        "169.254.169.254:80",
        "[::1]:80",
    ]
    .iter()
    .enumerate()
    {
        let Owned::Reply { data, .. } =
            connect(&mut s, t0, &creds, 10 + n as u8, p.parse().unwrap())
        else {
            panic!("refusal expected for {p}");
        };
        let code = error_code(&data);
        assert!(matches!(code, Some(403) | Some(443)), "{p}: {code:?}");
    }
    assert_eq!(actions(&mut s), vec![]);
    // The driver reports failure: 447.
    assert!(matches!(
        connect(&mut s, t0, &creds, 20, peer()),
        Owned::Drop
    ));
    let [TcpAction::Connect { id, .. }] = actions(&mut s)[..] else {
        panic!()
    };
    s.tcp_connect_result(t0, id, false);
    let acts = actions(&mut s);
    assert_eq!(acts.len(), 2, "{acts:?}");
    let TcpAction::ToClient { data, .. } = &acts[1] else {
        panic!("{acts:?}")
    };
    assert_eq!(acts[0], TcpAction::Close { id });
    assert_eq!(error_code(data), Some(447));
    assert_eq!(Message::parse(data).unwrap().transaction_id(), tid(20));
    // A connect that never finishes: 447 after 30 s, and a late success is closed.
    assert!(matches!(
        connect(&mut s, t0, &creds, 21, peer()),
        Owned::Drop
    ));
    let [TcpAction::Connect { id, .. }] = actions(&mut s)[..] else {
        panic!()
    };
    s.handle_timeout(t0 + PENDING_TIMEOUT - Duration::from_secs(1));
    assert_eq!(actions(&mut s), vec![]);
    s.handle_timeout(t0 + PENDING_TIMEOUT);
    let acts = actions(&mut s);
    assert!(
        matches!(&acts[..], [TcpAction::Close { id: c }, TcpAction::ToClient { data, .. }]
            if *c == id && error_code(data) == Some(447)),
        "{acts:?}"
    );
    s.tcp_connect_result(t0 + PENDING_TIMEOUT, id, true);
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
}

#[test]
fn allowed_private_peers_can_be_connected_when_configured() {
    let t0 = Instant::now();
    let cfg = ServerConfig {
        peers: PeerPolicy {
            allow_loopback: true,
            ..PeerPolicy::default()
        },
        ..Default::default()
    };
    let mut s = server_with(cfg, t0);
    let (creds, _) = allocate_tcp(&mut s, t0);
    assert!(matches!(
        connect(&mut s, t0, &creds, 3, "127.0.0.1:9".parse().unwrap()),
        Owned::Drop
    ));
    assert!(matches!(actions(&mut s)[..], [TcpAction::Connect { .. }]));
}

#[test]
fn peer_connections_need_a_permission_and_expire_unbound_after_30_s() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, relayed) = allocate_tcp(&mut s, t0);
    assert_eq!(
        s.tcp_peer_incoming(t0, relayed, peer()),
        None,
        "no permission"
    );
    let mut out = Vec::new();
    let req = request(Method::CREATE_PERMISSION, tid(3), Some(&creds), |w| {
        w.add_xor_peer_address(peer());
    });
    let r = reply(s.handle_client(t0, control(), &req, &mut out));
    assert_eq!(Message::parse(&r).unwrap().class(), Class::Success);
    let id = s.tcp_peer_incoming(t0, relayed, peer()).unwrap();
    let acts = actions(&mut s);
    let [TcpAction::ToClient { five, data }] = &acts[..] else {
        panic!("{acts:?}")
    };
    assert_eq!(*five, control());
    let m = Message::parse(data).unwrap();
    assert_eq!(
        (m.method(), m.class()),
        (Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(data[..2], [0x00, 0x1c], "ConnectionAttempt indication type");
    assert_eq!(m.xor_peer_address(), Ok(Some(peer())));
    assert_eq!(m.connection_id(), Ok(Some(id)));
    // Another relay address is not ours: refused.
    assert_eq!(
        s.tcp_peer_incoming(t0, "192.0.2.99:1".parse().unwrap(), peer()),
        None
    );
    // Nobody binds it: closed at 30 s, and a later bind is 400.
    s.handle_timeout(t0 + PENDING_TIMEOUT - Duration::from_millis(1));
    assert_eq!(actions(&mut s), vec![]);
    s.handle_timeout(t0 + PENDING_TIMEOUT);
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
    let later = t0 + PENDING_TIMEOUT;
    assert_eq!(
        error_code(&bind(&mut s, later, data_conn(40001), &creds, 9, id)),
        Some(400)
    );
}

#[test]
fn another_user_cannot_bind_and_channels_and_udp_are_refused_on_tcp_allocations() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, relayed) = allocate_tcp(&mut s, t0);
    let mut out = Vec::new();
    let req = request(Method::CREATE_PERMISSION, tid(3), Some(&creds), |w| {
        w.add_xor_peer_address(peer());
    });
    reply(s.handle_client(t0, control(), &req, &mut out));
    let id = s.tcp_peer_incoming(t0, relayed, peer()).unwrap();
    actions(&mut s);
    let bob = Creds {
        user: "bob",
        pw: "bobpw",
        nonce: creds.nonce.clone(),
    };
    assert_eq!(
        error_code(&bind(&mut s, t0, data_conn(40005), &bob, 4, id)),
        Some(441)
    );
    // A ConnectionBind on the control connection itself (it holds the allocation): 400.
    let req = request(Method::CONNECTION_BIND, tid(5), Some(&creds), |w| {
        w.add_connection_id(id);
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, control(), &req, &mut out))),
        Some(400)
    );
    let req = request(Method::CHANNEL_BIND, tid(6), Some(&creds), |w| {
        w.add_channel_number(0x4000).add_xor_peer_address(peer());
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, control(), &req, &mut out))),
        Some(400)
    );
    // A UDP datagram to the relayed address is never relayed.
    let mut slot = vec![0u8; 64];
    let mut out2 = Vec::new();
    assert_eq!(
        s.handle_peer(t0, relayed, peer(), &mut slot, 4, 8, &mut out2),
        PeerOutput::Drop
    );
    // DONT-FRAGMENT with TCP is 400; CONNECT on a UDP allocation is 400.
    let other = data_conn(40006);
    let req = request(Method::ALLOCATE, tid(7), Some(&creds), |w| {
        w.add_requested_transport(6).add_dont_fragment();
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, other, &req, &mut out))),
        Some(400)
    );
    // The allocation going closes its connections.
    s.connection_closed(control());
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
    assert!(!s.relay_provider().tcp.contains(&relayed));
}

#[test]
fn connect_on_a_udp_allocation_is_400() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let req = request(Method::CONNECT, tid(9), Some(&creds), |w| {
        w.add_xor_peer_address(peer());
    });
    let mut out = Vec::new();
    assert_eq!(
        error_code(&reply(s.handle_client(t0, five(), &req, &mut out))),
        Some(400)
    );
    assert_eq!(connection_bind_id(&req), None);
    assert_eq!(connection_bind_id(b"garbage"), None);
}
