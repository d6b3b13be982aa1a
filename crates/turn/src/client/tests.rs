//! The client core against the server core, in memory and in virtual time.

use super::*;
use crate::server::{
    Authenticator, ClientOutput, FiveTuple, PeerOutput, Quotas, RelayError, RelayGrant,
    RelayProvider, RelayRequest, Server, ServerConfig, Transport, UserKeys,
};
use natter_stun::credentials::long_term_key;
use std::sync::Arc;

struct OneRelay;
impl RelayProvider for OneRelay {
    fn open(&mut self, _req: RelayRequest) -> Result<RelayGrant, RelayError> {
        Ok(RelayGrant {
            addr: "192.0.2.1:50000".parse().unwrap(),
            token: None,
        })
    }
    fn close(&mut self, _addr: SocketAddr) {}
}

struct Alice;
impl Authenticator for Alice {
    fn keys(&self, u: &str, realm: &str, _: u64) -> Option<UserKeys> {
        (u == "alice").then(|| UserKeys {
            md5: long_term_key(u, realm, "pw"),
            sha256: None,
        })
    }
}

fn five() -> FiveTuple {
    FiveTuple {
        client: "198.51.100.1:4000".parse().unwrap(),
        server: "192.0.2.1:3478".parse().unwrap(),
        transport: Transport::Udp,
    }
}

fn cfg(password: &str) -> ClientConfig {
    ClientConfig {
        username: "alice".into(),
        password: password.into(),
        reliable: false,
        lifetime: 600,
        software: None,
    }
}

type S = Server<OneRelay, Alice>;

fn server(t0: Instant) -> S {
    Server::new(
        ServerConfig::default(),
        t0,
        0,
        [1; 32],
        Arc::new(Quotas::default()),
        OneRelay,
        Alice,
    )
}

/// Delivers everything the client wants to send, and the server's answers back, until quiet.
/// Returns what reached peers.
fn pump(c: &mut Client, s: &mut S, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut to_peers = Vec::new();
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        match s.handle_client(now, five(), &b, &mut out) {
            ClientOutput::Reply { data, .. } => {
                let d = data.to_vec();
                assert!(c.handle_input(now, &d).is_none());
            }
            ClientOutput::ToPeer { peer, data, .. } => to_peers.push((peer, data.to_vec())),
            ClientOutput::Drop => {}
        }
    }
    to_peers
}

fn events(c: &mut Client) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

#[test]
fn allocates_binds_and_relays_both_ways() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut c = Client::new(t0, cfg("pw"));
    pump(&mut c, &mut s, t0);
    let relayed: SocketAddr = "192.0.2.1:50000".parse().unwrap();
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::Allocated {
            relayed,
            mapped: Some(five().client),
            lifetime: 600
        }]
    );
    let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    // A Send indication before any permission is dropped by the server.
    let ind = c.send_to(peer, b"too early");
    assert!(pump_one(&mut s, t0, &ind).is_none());
    let n = c.bind_channel(t0, peer);
    assert_eq!(n, 0x4000);
    pump(&mut c, &mut s, t0);
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::Channel { peer, number: n }]
    );
    let cd = c.send_to(peer, b"hello");
    assert_eq!(&cd[..4], &[0x40, 0x00, 0, 5], "ChannelData once bound");
    assert_eq!(pump_one(&mut s, t0, &cd), Some((peer, b"hello".to_vec())));
    let mut slot = [0u8; 64];
    slot[4..9].copy_from_slice(b"world");
    let mut out = Vec::new();
    let PeerOutput::ToClient { data, .. } =
        s.handle_peer(t0, relayed, peer, &mut slot, 4, 5, &mut out)
    else {
        panic!("dropped");
    };
    let d = data.to_vec();
    assert_eq!(c.handle_input(t0, &d), Some((peer, &b"world"[..])));
}

fn pump_one(s: &mut S, now: Instant, b: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    match s.handle_client(now, five(), b, &mut out) {
        ClientOutput::ToPeer { peer, data, .. } => Some((peer, data.to_vec())),
        _ => None,
    }
}

#[test]
fn wrong_password_fails_with_401_after_one_retry() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut c = Client::new(t0, cfg("nope"));
    pump(&mut c, &mut s, t0);
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [ClientEvent::Failed { method, code: 401, .. }] if *method == Method::ALLOCATE),
        "{ev:?}"
    );
}

#[test]
fn lost_requests_are_retransmitted_on_the_rfc_schedule() {
    let t0 = Instant::now();
    let mut c = Client::new(t0, cfg("pw"));
    assert!(c.poll_transmit().is_some(), "first send at once");
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_millis(500)));
    c.handle_timeout(t0 + Duration::from_millis(500));
    assert!(c.poll_transmit().is_some(), "retransmit at 500 ms");
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
    let mut sends = 2;
    while let Some(t) = c.poll_timeout() {
        assert!(
            t <= t0 + Duration::from_millis(39_500),
            "gives up at 39.5 s"
        );
        c.handle_timeout(t);
        while c.poll_transmit().is_some() {
            sends += 1;
        }
    }
    assert_eq!(sends, 7, "Rc = 7");
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [ClientEvent::Failed { code: 0, .. }]),
        "{ev:?}"
    );
}

#[test]
fn allocation_permissions_and_channels_are_refreshed_before_they_lapse() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut c = Client::new(t0, cfg("pw"));
    pump(&mut c, &mut s, t0);
    let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    c.bind_channel(t0, peer);
    c.create_permission(t0, peer.ip());
    pump(&mut c, &mut s, t0);
    events(&mut c);
    // Walk 30 minutes in 10 s steps, answering everything: data keeps flowing throughout.
    let mut now = t0;
    let mut refreshes = 0;
    for _ in 0..180 {
        now += Duration::from_secs(10);
        c.handle_timeout(now);
        s.handle_timeout(now);
        pump(&mut c, &mut s, now);
        for e in events(&mut c) {
            if matches!(e, ClientEvent::Refreshed { lifetime: 600 }) {
                refreshes += 1;
            }
            assert!(!matches!(e, ClientEvent::Failed { .. }), "{e:?}");
        }
        let cd = c.send_to(peer, b"x");
        assert_eq!(
            pump_one(&mut s, now, &cd),
            Some((peer, b"x".to_vec())),
            "at {:?}",
            now - t0
        );
    }
    assert_eq!(refreshes, 3, "refresh every 540 s over 1800 s");
    c.delete(now);
    pump(&mut c, &mut s, now);
    assert_eq!(events(&mut c), vec![ClientEvent::Deleted]);
    assert_eq!(s.allocation_count(), 0);
}

#[test]
fn password_refused_by_saslprep_fails_without_sending_it() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut c = Client::new(t0, cfg("p\u{0}w"));
    pump(&mut c, &mut s, t0);
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [ClientEvent::Failed { method, code: 401, .. }] if *method == Method::ALLOCATE),
        "{ev:?}"
    );
    assert_eq!(s.stats().auth_failures, 0, "no integrity was ever sent");
}
