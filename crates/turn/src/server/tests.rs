//! Server core behaviour, driven with virtual time and a fake relay provider.

use super::*;
use natter_stun::credentials::long_term_key;
use natter_stun::ChangeRequest;
use std::collections::HashSet;

const REALM: &str = "natter";

#[derive(Default)]
struct FakeRelays {
    next_port: u32,
    open: HashSet<SocketAddr>,
    limit: Option<usize>,
    /// Relays with a TCP listener (RFC 6062 allocations).
    tcp: HashSet<SocketAddr>,
}

impl RelayProvider for FakeRelays {
    fn open(&mut self, req: RelayRequest) -> Result<RelayGrant, RelayError> {
        if req.family == AddressFamily::V6 {
            return Err(RelayError::Family);
        }
        if self.limit.is_some_and(|l| self.open.len() >= l) {
            return Err(RelayError::Exhausted);
        }
        self.next_port += 1;
        let n = self.next_port;
        let addr: SocketAddr = format!("192.0.{}.100:{}", 2 + n / 30000, 1024 + 2 * (n % 30000))
            .parse()
            .unwrap();
        self.open.insert(addr);
        Ok(RelayGrant {
            addr,
            token: req.reserve_next.then_some(0xAABB),
        })
    }
    fn close(&mut self, addr: SocketAddr) {
        assert!(self.open.remove(&addr), "closed a relay that was not open");
        self.tcp.remove(&addr);
    }
    fn listen_tcp(&mut self, relay: SocketAddr) -> Result<(), RelayError> {
        assert!(self.open.contains(&relay));
        self.tcp.insert(relay);
        Ok(())
    }
}

struct Users;
impl Authenticator for Users {
    fn keys(&self, username: &str, realm: &str, _unix: u64) -> Option<UserKeys> {
        let pw = match username {
            "alice" => "alicepw",
            "bob" => "bobpw",
            "caf\u{E9}" => "p\u{A0}w",
            _ => return None,
        };
        Some(UserKeys {
            md5: long_term_key(username, realm, pw),
            sha256: Some(natter_stun::credentials::long_term_key_sha256(
                username, realm, pw,
            )),
        })
    }
}

type S = Server<FakeRelays, Users>;

fn server_with(cfg: ServerConfig, t0: Instant) -> S {
    Server::new(
        cfg,
        t0,
        1_700_000_000,
        [9; 32],
        Arc::new(Quotas::default()),
        FakeRelays::default(),
        Users,
    )
}

fn server(t0: Instant) -> S {
    server_with(ServerConfig::default(), t0)
}

fn five() -> FiveTuple {
    FiveTuple {
        client: "198.51.100.10:40000".parse().unwrap(),
        server: "192.0.2.1:3478".parse().unwrap(),
        transport: Transport::Udp,
    }
}

fn tid(n: u8) -> TransactionId {
    TransactionId([n; 12])
}

/// Owned copy of a reply, so the test can keep it while calling the server again.
fn reply(out: ClientOutput<'_>) -> Vec<u8> {
    match out {
        ClientOutput::Reply { data, .. } => data.to_vec(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

struct Creds<'a> {
    user: &'a str,
    pw: &'a str,
    nonce: String,
}

fn request(
    method: Method,
    t: TransactionId,
    creds: Option<&Creds<'_>>,
    add: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, method, Class::Request, t);
    add(&mut w);
    if let Some(c) = creds {
        w.add_username(c.user).add_realm(REALM).add_nonce(&c.nonce);
        w.add_message_integrity(&long_term_key(c.user, REALM, c.pw));
    }
    w.add_fingerprint();
    w.finish().unwrap();
    buf
}

fn error_code(bytes: &[u8]) -> Option<u16> {
    let m = Message::parse(bytes).unwrap();
    m.error_code().unwrap().map(|e| e.code)
}

/// Sends an ALLOCATE without credentials (REQUESTED-TRANSPORT `transport`) from `five`:
/// the 401 challenge's nonce.
fn challenge(s: &mut S, now: Instant, five: FiveTuple, transport: u8) -> String {
    let mut out = Vec::new();
    let req = request(Method::ALLOCATE, tid(1), None, |w| {
        w.add_requested_transport(transport);
    });
    let r = reply(s.handle_client(now, five, &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().code, 401);
    assert_eq!(m.realm().unwrap(), Some(REALM));
    m.nonce().unwrap().unwrap().to_owned()
}

/// alice's credentials with `nonce`.
fn alice(nonce: String) -> Creds<'static> {
    Creds {
        user: "alice",
        pw: "alicepw",
        nonce,
    }
}

/// Allocates for alice on `five()`; returns the credentials and the relayed address.
fn allocate(s: &mut S, now: Instant) -> (Creds<'static>, SocketAddr) {
    let mut out = Vec::new();
    let creds = alice(challenge(s, now, five(), 17));
    let req = request(Method::ALLOCATE, tid(2), Some(&creds), |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(now, five(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    m.verify_integrity(&long_term_key("alice", REALM, "alicepw"))
        .unwrap();
    m.verify_fingerprint().unwrap();
    assert_eq!(m.lifetime().unwrap(), Some(600));
    assert_eq!(m.xor_mapped_address().unwrap(), Some(five().client));
    let relayed = m.xor_relayed_address().unwrap().unwrap();
    (creds, relayed)
}

#[test]
fn binding_reports_the_source_address() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let req = request(Method::BINDING, tid(5), None, |_| {});
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!((m.method(), m.class()), (Method::BINDING, Class::Success));
    assert_eq!(m.transaction_id(), tid(5));
    assert_eq!(m.xor_mapped_address().unwrap(), Some(five().client));
    m.verify_fingerprint().unwrap();
    assert!(m.software().unwrap().is_none(), "no SOFTWARE before auth");
    assert_eq!(s.stats().binding_requests, 1);
}

#[test]
fn change_request_without_alternate_is_420_and_with_alternate_changes_origin() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let req = request(Method::BINDING, tid(5), None, |w| {
        w.add_change_request(ChangeRequest {
            change_ip: true,
            change_port: true,
        });
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    assert_eq!(error_code(&r), Some(420));

    let cfg = ServerConfig {
        alternates: vec![(five().server, "192.0.2.2".parse().unwrap(), 3479)],
        ..Default::default()
    };
    let mut s = server_with(cfg, t0);
    match s.handle_client(t0, five(), &req, &mut out) {
        ClientOutput::Reply { from, to, data } => {
            assert_eq!(from, "192.0.2.2:3479".parse().unwrap());
            assert_eq!(to, five().client);
            let m = Message::parse(data).unwrap();
            assert_eq!(m.response_origin().unwrap(), Some(from));
            assert_eq!(
                m.other_address().unwrap(),
                Some("192.0.2.2:3479".parse().unwrap())
            );
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn unknown_comprehension_required_attribute_gets_420_listing_it() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let req = request(Method::ALLOCATE, tid(1), None, |w| {
        w.add_raw(0x0077, &[1, 2, 3, 4]).add_raw(0x8077, &[0; 4]);
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().code, 420);
    let listed: Vec<u16> = m.unknown_attributes().unwrap().unwrap().collect();
    assert_eq!(
        listed,
        vec![0x0077],
        "comprehension-optional 0x8077 is not listed"
    );
}

#[test]
fn allocate_needs_credentials_and_succeeds_with_them() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (_, relayed) = allocate(&mut s, t0);
    assert_eq!(relayed.ip(), "192.0.2.100".parse::<IpAddr>().unwrap());
    assert_eq!(s.allocation_count(), 1);
    assert_eq!(s.stats().allocations_created, 1);
}

#[test]
fn retransmitted_allocate_is_answered_again_and_a_new_one_is_437() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, relayed) = allocate(&mut s, t0);
    let mut out = Vec::new();
    let again = request(Method::ALLOCATE, tid(2), Some(&creds), |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(t0, five(), &again, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.xor_relayed_address().unwrap(), Some(relayed));
    let other = request(Method::ALLOCATE, tid(3), Some(&creds), |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(t0, five(), &other, &mut out));
    assert_eq!(error_code(&r), Some(437));
    assert_eq!(s.relay_provider().open.len(), 1);
}

#[test]
fn wrong_password_is_401_and_counted_and_unknown_user_too() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let nonce = challenge(&mut s, t0, five(), 17);
    for (user, pw) in [("alice", "wrong"), ("mallory", "x")] {
        let c = Creds {
            user,
            pw,
            nonce: nonce.clone(),
        };
        let req = request(Method::ALLOCATE, tid(2), Some(&c), |w| {
            w.add_requested_transport(17);
        });
        let r = reply(s.handle_client(t0, five(), &req, &mut out));
        assert_eq!(error_code(&r), Some(401));
    }
    assert_eq!(s.stats().auth_failures, 2);
    assert_eq!(s.allocation_count(), 0);
}

#[test]
fn expired_nonce_is_438_with_a_fresh_nonce() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let later = t0 + Duration::from_secs(601);
    let mut out = Vec::new();
    let req = request(Method::REFRESH, tid(9), Some(&creds), |_| {});
    let r = reply(s.handle_client(later, five(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().code, 438);
    let fresh = m.nonce().unwrap().unwrap().to_owned();
    assert_ne!(fresh, creds.nonce);
    let c2 = Creds {
        nonce: fresh,
        ..creds
    };
    let req = request(Method::REFRESH, tid(10), Some(&c2), |_| {});
    let r = reply(s.handle_client(later, five(), &req, &mut out));
    assert_eq!(Message::parse(&r).unwrap().class(), Class::Success);
}

#[test]
fn peers_on_loopback_and_private_ranges_are_forbidden_by_default() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let mut out = Vec::new();
    for peer in ["127.0.0.1:9", "10.0.0.1:9", "169.254.169.254:80"] {
        let p: SocketAddr = peer.parse().unwrap();
        let req = request(Method::CREATE_PERMISSION, tid(4), Some(&creds), |w| {
            w.add_xor_peer_address(p);
        });
        let r = reply(s.handle_client(t0, five(), &req, &mut out));
        assert_eq!(error_code(&r), Some(403), "{peer}");
    }
}

#[test]
fn send_indication_needs_a_permission() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, relayed) = allocate(&mut s, t0);
    let peer: SocketAddr = "203.0.113.5:7000".parse().unwrap();
    let mut send = Vec::new();
    MessageWriter::new(&mut send, Method::SEND, Class::Indication, tid(6))
        .add_xor_peer_address(peer)
        .add_data(b"hello")
        .finish()
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        s.handle_client(t0, five(), &send, &mut out),
        ClientOutput::Drop
    );
    let req = request(Method::CREATE_PERMISSION, tid(4), Some(&creds), |w| {
        w.add_xor_peer_address(peer);
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    assert_eq!(Message::parse(&r).unwrap().class(), Class::Success);
    assert_eq!(
        s.handle_client(t0, five(), &send, &mut out),
        ClientOutput::ToPeer {
            relay: relayed,
            peer,
            data: b"hello"
        }
    );
    // The permission lapses after 300 s.
    let later = t0 + Duration::from_secs(300);
    assert_eq!(
        s.handle_client(later, five(), &send, &mut out),
        ClientOutput::Drop
    );
}

#[test]
fn channels_relay_both_ways_and_peer_data_without_channel_is_a_data_indication() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, relayed) = allocate(&mut s, t0);
    let peer: SocketAddr = "203.0.113.5:7000".parse().unwrap();
    let mut out = Vec::new();
    // Before any permission, peer data is dropped.
    let mut slot = [0u8; 64];
    slot[4..9].copy_from_slice(b"early");
    assert_eq!(
        s.handle_peer(t0, relayed, peer, &mut slot, 4, 5, &mut out),
        PeerOutput::Drop
    );

    let req = request(Method::CHANNEL_BIND, tid(7), Some(&creds), |w| {
        w.add_channel_number(0x4001).add_xor_peer_address(peer);
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    assert_eq!(Message::parse(&r).unwrap().class(), Class::Success);

    let cd = [0x40, 0x01, 0x00, 0x03, b'a', b'b', b'c', 0];
    assert_eq!(
        s.handle_client(t0, five(), &cd, &mut out),
        ClientOutput::ToPeer {
            relay: relayed,
            peer,
            data: b"abc"
        }
    );
    let mut slot = [0u8; 64];
    slot[4..9].copy_from_slice(b"hello");
    match s.handle_peer(t0, relayed, peer, &mut slot, 4, 5, &mut out) {
        PeerOutput::ToClient { five: f, data } => {
            assert_eq!(f, five());
            assert_eq!(
                data,
                &[0x40, 0x01, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o']
            );
        }
        o => panic!("{o:?}"),
    }
    // Another port of the same peer IP has the permission but no channel: Data indication.
    let peer2: SocketAddr = "203.0.113.5:7001".parse().unwrap();
    let mut slot = [0u8; 64];
    slot[4..6].copy_from_slice(b"hi");
    match s.handle_peer(t0, relayed, peer2, &mut slot, 4, 2, &mut out) {
        PeerOutput::ToClient { data, .. } => {
            let m = Message::parse(data).unwrap();
            assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
            assert_eq!(m.xor_peer_address().unwrap(), Some(peer2));
            assert_eq!(m.data(), Some(&b"hi"[..]));
        }
        o => panic!("{o:?}"),
    }
    // Every Data indication has its own transaction ID.
    let mut ids = HashSet::new();
    for _ in 0..100 {
        let mut slot = [0u8; 64];
        match s.handle_peer(t0, relayed, peer2, &mut slot, 4, 2, &mut out) {
            PeerOutput::ToClient { data, .. } => {
                assert!(ids.insert(Message::parse(data).unwrap().transaction_id()));
            }
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(s.stats().to_client_packets, 102);
    assert_eq!(s.stats().to_peer_packets, 1);
}

#[test]
fn channel_data_to_a_tcp_client_is_padded() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let tcp = FiveTuple {
        transport: Transport::Tcp,
        ..five()
    };
    let mut out = Vec::new();
    let nonce = challenge(&mut s, t0, tcp, 17);
    let c = alice(nonce);
    let req = request(Method::ALLOCATE, tid(2), Some(&c), |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(t0, tcp, &req, &mut out));
    let relayed = Message::parse(&r)
        .unwrap()
        .xor_relayed_address()
        .unwrap()
        .unwrap();
    let peer: SocketAddr = "203.0.113.5:7000".parse().unwrap();
    let req = request(Method::CHANNEL_BIND, tid(7), Some(&c), |w| {
        w.add_channel_number(0x4ABC).add_xor_peer_address(peer);
    });
    reply(s.handle_client(t0, tcp, &req, &mut out));
    let mut slot = [0xEEu8; 64];
    slot[4..9].copy_from_slice(b"hello");
    match s.handle_peer(t0, relayed, peer, &mut slot, 4, 5, &mut out) {
        PeerOutput::ToClient { data, .. } => {
            assert_eq!(
                data,
                &[0x4A, 0xBC, 0, 5, b'h', b'e', b'l', b'l', b'o', 0, 0, 0]
            );
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn channel_bind_conflicts_and_bad_numbers_are_400() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let p1: SocketAddr = "203.0.113.5:7000".parse().unwrap();
    let p2: SocketAddr = "203.0.113.6:7000".parse().unwrap();
    let mut out = Vec::new();
    let mut bind = |s: &mut S, n: u16, p: SocketAddr, t: u8| {
        let req = request(Method::CHANNEL_BIND, tid(t), Some(&creds), |w| {
            w.add_channel_number(n).add_xor_peer_address(p);
        });
        let r = reply(s.handle_client(t0, five(), &req, &mut out));
        let m = Message::parse(&r).unwrap();
        m.error_code()
            .unwrap()
            .map(|e| (e.code, e.reason.to_string()))
    };
    assert_eq!(bind(&mut s, 0x4000, p1, 10), None);
    assert_eq!(bind(&mut s, 0x4000, p1, 11), None, "refresh is fine");
    // Each refusal says why: a client that draws channel numbers at random can tell.
    for (n, p, t, why) in [
        (
            0x4000,
            p2,
            12,
            "Channel number already bound to another peer",
        ),
        (
            0x4001,
            p1,
            13,
            "Peer already bound to another channel number",
        ),
        (0x3FFF, p2, 14, "Channel number outside 0x4000-0x7FFF"),
        (0x8000, p2, 15, "Channel number outside 0x4000-0x7FFF"),
    ] {
        assert_eq!(bind(&mut s, n, p, t), Some((400, why.to_owned())));
    }
    assert_eq!(
        bind(&mut s, 0x7FFF, p2, 16),
        None,
        "RFC 5766 range accepted"
    );
}

#[test]
fn refresh_zero_deletes_and_expiry_reclaims() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let mut out = Vec::new();
    let req = request(Method::REFRESH, tid(8), Some(&creds), |w| {
        w.add_lifetime(0);
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.lifetime().unwrap(), Some(0));
    assert_eq!(s.allocation_count(), 0);
    assert!(s.relay_provider().open.is_empty());

    let (_, _) = allocate(&mut s, t0);
    s.handle_timeout(t0 + Duration::from_secs(599));
    assert_eq!(s.allocation_count(), 1);
    s.handle_timeout(t0 + Duration::from_secs(601));
    assert_eq!(s.allocation_count(), 0);
    assert!(s.relay_provider().open.is_empty());
    assert_eq!(s.stats().allocations_ended, 2);
}

#[test]
fn refresh_without_allocation_is_437() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let other = FiveTuple {
        client: "198.51.100.10:40001".parse().unwrap(),
        ..five()
    };
    let mut out = Vec::new();
    let req = request(Method::REFRESH, tid(8), Some(&creds), |_| {});
    let r = reply(s.handle_client(t0, other, &req, &mut out));
    assert_eq!(error_code(&r), Some(437));
}

#[test]
fn another_user_on_the_allocation_is_441() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let bob = Creds {
        user: "bob",
        pw: "bobpw",
        nonce: creds.nonce.clone(),
    };
    let mut out = Vec::new();
    let req = request(Method::REFRESH, tid(8), Some(&bob), |_| {});
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    assert_eq!(error_code(&r), Some(441));
}

#[test]
fn tcp_relaying_over_udp_and_unknown_transport_and_missing_transport() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (creds, _) = allocate(&mut s, t0);
    let other = FiveTuple {
        client: "198.51.100.10:40009".parse().unwrap(),
        ..five()
    };
    let mut out = Vec::new();
    // RFC 6062 §5.1: TCP relaying asked over UDP is 400; an unknown protocol is 442.
    let req = request(Method::ALLOCATE, tid(20), Some(&creds), |w| {
        w.add_requested_transport(6);
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, other, &req, &mut out))),
        Some(400)
    );
    let req = request(Method::ALLOCATE, tid(23), Some(&creds), |w| {
        w.add_requested_transport(132);
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, other, &req, &mut out))),
        Some(442)
    );
    let req = request(Method::ALLOCATE, tid(21), Some(&creds), |_| {});
    assert_eq!(
        error_code(&reply(s.handle_client(t0, other, &req, &mut out))),
        Some(400)
    );
    let req = request(Method::ALLOCATE, tid(22), Some(&creds), |w| {
        w.add_requested_transport(17)
            .add_requested_address_family(AddressFamily::V6);
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, other, &req, &mut out))),
        Some(440)
    );
}

#[test]
fn quota_is_486_and_exhausted_ports_are_508() {
    let t0 = Instant::now();
    let cfg = ServerConfig {
        user_quota: 1,
        ..Default::default()
    };
    let mut s = server_with(cfg, t0);
    let (creds, _) = allocate(&mut s, t0);
    let other = FiveTuple {
        client: "198.51.100.10:40002".parse().unwrap(),
        ..five()
    };
    let mut out = Vec::new();
    let req = request(Method::ALLOCATE, tid(30), Some(&creds), |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, other, &req, &mut out))),
        Some(486)
    );

    let mut s = server(t0);
    s.relay_provider().limit = Some(0);
    // Nonces are stateless and keyed by the shared secret, so the first server's still works.
    let c = creds;
    let req = request(Method::ALLOCATE, tid(31), Some(&c), |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(
        error_code(&reply(s.handle_client(t0, other, &req, &mut out))),
        Some(508)
    );
    // The failed allocation did not leak quota.
    s.relay_provider().limit = None;
    let req = request(Method::ALLOCATE, tid(32), Some(&c), |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(t0, other, &req, &mut out));
    assert_eq!(Message::parse(&r).unwrap().class(), Class::Success);
}

#[test]
fn sha256_credentials_are_accepted_and_responses_sealed_with_sha256() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let req = request(Method::ALLOCATE, tid(1), None, |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    let nonce = m.nonce().unwrap().unwrap().to_owned();
    let algs: Vec<PasswordAlgorithm> = m
        .password_algorithms()
        .unwrap()
        .unwrap()
        .map(|p| p.algorithm)
        .collect();
    assert_eq!(
        algs,
        vec![PasswordAlgorithm::MD5, PasswordAlgorithm::SHA256]
    );
    let key = natter_stun::credentials::long_term_key_sha256("alice", REALM, "alicepw");
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Request, tid(2));
    w.add_requested_transport(17)
        .add_username("alice")
        .add_realm(REALM)
        .add_nonce(&nonce)
        .add_password_algorithms(&algs)
        .add_password_algorithm(PasswordAlgorithm::SHA256, &[])
        .add_message_integrity_sha256(&key)
        .finish()
        .unwrap();
    let r = reply(s.handle_client(t0, five(), &buf, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    m.verify_integrity_sha256(&key).unwrap();
}

#[test]
fn unauthenticated_floods_are_rate_limited_per_source() {
    let t0 = Instant::now();
    let cfg = ServerConfig {
        unauth_rate: 5,
        ..Default::default()
    };
    let mut s = server_with(cfg, t0);
    let mut out = Vec::new();
    let req = request(Method::BINDING, tid(1), None, |_| {});
    let answered = (0..100)
        .filter(|_| s.handle_client(t0, five(), &req, &mut out) != ClientOutput::Drop)
        .count();
    assert_eq!(answered, 10);
    assert_eq!(s.stats().rate_limited, 90);
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let (_, relayed) = allocate(&mut s, t0);
    let mut out = Vec::new();
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dropped_before = s.stats().dropped;
    for i in 0..20_000 {
        let len = (next() % 200) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Make some look like STUN or ChannelData so deeper paths are reached.
        if i % 3 == 0 && buf.len() >= 20 {
            buf[0] &= 0x3F;
            buf[4..8].copy_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
            let l = (buf.len() - 20) as u16;
            buf[2..4].copy_from_slice(&l.to_be_bytes());
        } else if i % 3 == 1 && !buf.is_empty() {
            buf[0] = 0x40;
        }
        let _ = s.handle_client(t0, five(), &buf, &mut out);
        let mut slot = vec![0u8; buf.len() + 8];
        slot[4..4 + buf.len()].copy_from_slice(&buf);
        let _ = s.handle_peer(
            t0,
            relayed,
            five().client,
            &mut slot,
            4,
            buf.len(),
            &mut out,
        );
    }
    assert!(s.stats().dropped > dropped_before);
}

#[test]
fn ten_thousand_live_allocations() {
    let t0 = Instant::now();
    let cfg = ServerConfig {
        user_quota: 20_000,
        unauth_rate: 0,
        ..Default::default()
    };
    let mut s = server_with(cfg, t0);
    let mut out = Vec::new();
    let nonce = challenge(&mut s, t0, five(), 17);
    let c = alice(nonce);
    for i in 0..10_000u32 {
        let f = FiveTuple {
            client: SocketAddr::new("198.51.100.10".parse().unwrap(), 10_000 + i as u16),
            ..five()
        };
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&i.to_be_bytes());
        let req = request(Method::ALLOCATE, TransactionId(t), Some(&c), |w| {
            w.add_requested_transport(17);
        });
        let r = reply(s.handle_client(t0, f, &req, &mut out));
        assert_eq!(Message::parse(&r).unwrap().class(), Class::Success);
    }
    assert_eq!(s.allocation_count(), 10_000);
    assert_eq!(s.relay_provider().open.len(), 10_000);
    s.shutdown();
    assert_eq!(s.allocation_count(), 0);
    assert!(s.relay_provider().open.is_empty());
}

#[test]
fn classic_rfc3489_binding_gets_mapped_address() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let mut req = vec![0x00, 0x01, 0x00, 0x00];
    req.extend_from_slice(&[0xAB; 16]);
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    let mut want = vec![0x01, 0x01, 0x00, 0x0C];
    want.extend_from_slice(&[0xAB; 16]);
    want.extend_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x01]);
    want.extend_from_slice(&40000u16.to_be_bytes());
    want.extend_from_slice(&[198, 51, 100, 10]);
    assert_eq!(r, want);
    // Not a Binding request: dropped.
    req[1] = 0x03;
    assert_eq!(
        s.handle_client(t0, five(), &req, &mut out),
        ClientOutput::Drop
    );
}

fn allocate_with(
    s: &mut S,
    now: Instant,
    t: u8,
    add: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let (creds, _) = allocate(s, now);
    let other = FiveTuple {
        client: "198.51.100.10:41000".parse().unwrap(),
        ..five()
    };
    let mut out = Vec::new();
    let req = request(Method::ALLOCATE, tid(t), Some(&creds), |w| {
        w.add_requested_transport(17);
        add(w);
    });
    reply(s.handle_client(now, other, &req, &mut out))
}

#[test]
fn even_port_with_reservation_returns_a_token_and_token_with_even_port_is_400() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let r = allocate_with(&mut s, t0, 40, |w| {
        w.add_even_port(true);
    });
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.reservation_token().unwrap(), Some(0xAABB));
    let mut s = server(t0);
    let r = allocate_with(&mut s, t0, 41, |w| {
        w.add_even_port(false).add_reservation_token(7);
    });
    assert_eq!(error_code(&r), Some(400));
}

#[test]
fn dual_allocation_without_ipv6_relay_reports_address_error_code() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let r = allocate_with(&mut s, t0, 42, |w| {
        w.add_additional_address_family(AddressFamily::V6);
    });
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success, "IPv4 half still allocated");
    let e = m.address_error_code().unwrap().unwrap();
    assert_eq!((e.family, e.code), (AddressFamily::V6, 440));
    let mut s = server(t0);
    let r = allocate_with(&mut s, t0, 43, |w| {
        w.add_additional_address_family(AddressFamily::V4);
    });
    assert_eq!(
        error_code(&r),
        Some(400),
        "ADDITIONAL-ADDRESS-FAMILY must be IPv6"
    );
}

#[test]
fn bandwidth_cap_drops_what_exceeds_the_budget() {
    let t0 = Instant::now();
    let cfg = ServerConfig {
        bandwidth_limit: 1000,
        ..Default::default()
    };
    let mut s = server_with(cfg, t0);
    let (creds, _) = allocate(&mut s, t0);
    let peer: SocketAddr = "203.0.113.5:7000".parse().unwrap();
    let mut out = Vec::new();
    let req = request(Method::CHANNEL_BIND, tid(7), Some(&creds), |w| {
        w.add_channel_number(0x4001).add_xor_peer_address(peer);
    });
    reply(s.handle_client(t0, five(), &req, &mut out));
    let mut cd = vec![0x40, 0x01, 0x01, 0x00];
    cd.extend_from_slice(&[0u8; 256]);
    let sent = (0..10)
        .filter(|_| {
            matches!(
                s.handle_client(t0, five(), &cd, &mut out),
                ClientOutput::ToPeer { .. }
            )
        })
        .count();
    assert_eq!(
        sent, 3,
        "1000 bytes of budget carry three 256-byte payloads"
    );
    let later = t0 + Duration::from_millis(500);
    let sent = (0..10)
        .filter(|_| {
            matches!(
                s.handle_client(later, five(), &cd, &mut out),
                ClientOutput::ToPeer { .. }
            )
        })
        .count();
    assert_eq!(sent, 2, "half a second refills 500 bytes");
}

#[test]
fn refusals_are_reported_as_events_with_reasons() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let nonce = challenge(&mut s, t0, five(), 17);
    assert_eq!(s.poll_event(), None, "a plain challenge is not a refusal");
    let c = Creds {
        user: "alice",
        pw: "bad",
        nonce,
    };
    let req = request(Method::ALLOCATE, tid(2), Some(&c), |w| {
        w.add_requested_transport(17);
    });
    reply(s.handle_client(t0, five(), &req, &mut out));
    assert_eq!(
        s.poll_event(),
        Some(Event::Refused {
            five: five(),
            username: Some("alice".into()),
            why: Refusal::BadIntegrity
        })
    );
}

#[test]
fn credentials_are_saslprepped_and_controls_are_400() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Vec::new();
    let nonce = challenge(&mut s, t0, five(), 17);
    let bad = Creds {
        user: "al\u{1}ice",
        pw: "alicepw",
        nonce: nonce.clone(),
    };
    let req = request(Method::ALLOCATE, tid(2), Some(&bad), |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    assert_eq!(error_code(&r), Some(400));
    assert_eq!(
        s.poll_event(),
        Some(Event::Refused {
            five: five(),
            username: Some("al\u{1}ice".into()),
            why: Refusal::BadUsername
        })
    );
    assert_eq!(s.allocation_count(), 0);
    // Decomposed username and an ASCII space match the stored NFC name and U+00A0 password.
    let good = Creds {
        user: "cafe\u{301}",
        pw: "p w",
        nonce,
    };
    let req = request(Method::ALLOCATE, tid(3), Some(&good), |w| {
        w.add_requested_transport(17);
    });
    let r = reply(s.handle_client(t0, five(), &req, &mut out));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    m.verify_integrity(&long_term_key("caf\u{E9}", REALM, "p\u{A0}w"))
        .unwrap();
    assert_eq!(s.allocation_count(), 1);
}

#[path = "tcp_relay_tests.rs"]
mod tcp_relay_tests;
