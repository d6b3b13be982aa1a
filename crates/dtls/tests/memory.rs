//! Two endpoints of this crate talking to each other in memory, on virtual time.

use std::time::{Duration, Instant};

use natter_dtls::{
    srtp_keys, DtlsCertificate, DtlsEndpoint, DtlsError, DtlsEvent, DtlsRole,
    SRTP_AEAD_AES_128_GCM,
};
use rand::{Rng, RngCore, SeedableRng};

struct Pair {
    client: DtlsEndpoint,
    server: DtlsEndpoint,
    client_cert: DtlsCertificate,
    server_cert: DtlsCertificate,
    now: Instant,
    /// Datagrams carried so far, client->server and server->client.
    sent: (usize, usize),
}

impl Pair {
    fn new() -> Self {
        let client_cert = DtlsCertificate::generate().unwrap();
        let server_cert = DtlsCertificate::generate().unwrap();
        Self::with_fingerprints(
            client_cert,
            server_cert,
            None,
            None,
        )
    }

    /// Both sides expect the other's real fingerprint unless overridden.
    fn with_fingerprints(
        client_cert: DtlsCertificate,
        server_cert: DtlsCertificate,
        client_expects: Option<String>,
        server_expects: Option<String>,
    ) -> Self {
        let now = Instant::now();
        let client_expects = client_expects.or_else(|| Some(server_cert.fingerprint_sha256()));
        let server_expects = server_expects.or_else(|| Some(client_cert.fingerprint_sha256()));
        let client = DtlsEndpoint::new(DtlsRole::Client, &client_cert, client_expects, now).unwrap();
        let server = DtlsEndpoint::new(DtlsRole::Server, &server_cert, server_expects, now).unwrap();
        Self {
            client,
            server,
            client_cert,
            server_cert,
            now,
            sent: (0, 0),
        }
    }

    /// Moves datagrams both ways until both sides are quiet. `keep(from_client, index)`
    /// decides whether the index-th datagram in that direction is delivered.
    fn pump_with(&mut self, mut keep: impl FnMut(bool, usize) -> bool) {
        loop {
            let mut moved = false;
            while let Some(d) = self.client.poll_datagram() {
                moved = true;
                let i = self.sent.0;
                self.sent.0 += 1;
                if keep(true, i) {
                    self.server.handle_datagram(&d, self.now).unwrap();
                }
            }
            while let Some(d) = self.server.poll_datagram() {
                moved = true;
                let i = self.sent.1;
                self.sent.1 += 1;
                if keep(false, i) {
                    self.client.handle_datagram(&d, self.now).unwrap();
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn pump(&mut self) {
        self.pump_with(|_, _| true);
    }

    /// Advances virtual time to the earliest deadline of either side and fires it.
    fn advance(&mut self) -> bool {
        let next = match (self.client.poll_timeout(), self.server.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return false,
        };
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        true
    }
}

fn events(ep: &mut DtlsEndpoint) -> Vec<DtlsEvent> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn connected(ev: &[DtlsEvent]) -> (u16, Vec<u8>, String, &'static str) {
    match ev {
        [DtlsEvent::Connected {
            profile_id,
            keying_material,
            peer_fingerprint,
            version,
        }] => (*profile_id, keying_material.clone(), peer_fingerprint.clone(), version),
        other => panic!("expected one Connected event, got {other:?}"),
    }
}

#[test]
fn handshake_exports_equal_keying_material() {
    let mut p = Pair::new();
    assert!(p.client.poll_timeout().is_some(), "{:?}", p.client.poll_event());
    p.pump();
    assert!(p.client.is_connected());
    assert!(p.server.is_connected());
    let (c_profile, c_km, c_peer, c_ver) = connected(&events(&mut p.client));
    let (s_profile, s_km, s_peer, s_ver) = connected(&events(&mut p.server));
    assert_eq!(c_profile, SRTP_AEAD_AES_128_GCM);
    assert_eq!(s_profile, SRTP_AEAD_AES_128_GCM);
    assert_eq!(c_km.len(), 56);
    assert_eq!(c_km, s_km);
    assert_ne!(c_km, vec![0u8; 56]);
    assert_eq!(c_peer, p.server_cert.fingerprint_sha256());
    assert_eq!(s_peer, p.client_cert.fingerprint_sha256());
    assert_eq!((c_ver, s_ver), ("1.2", "1.2"));
    // No timers once connected.
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(p.server.poll_timeout(), None);
    // Full handshake without loss: client flights 1, 3 and server flights 2, 4.
    assert!(p.sent.0 >= 2 && p.sent.0 <= 4, "client sent {}", p.sent.0);
    assert!(p.sent.1 >= 2 && p.sent.1 <= 5, "server sent {}", p.sent.1);

    let (c_tx_key, c_tx_salt, c_rx_key, c_rx_salt) = srtp_keys(c_profile, &c_km, true).unwrap();
    let (s_tx_key, s_tx_salt, s_rx_key, s_rx_salt) = srtp_keys(s_profile, &s_km, false).unwrap();
    assert_eq!(c_tx_key, s_rx_key);
    assert_eq!(c_tx_salt, s_rx_salt);
    assert_eq!(s_tx_key, c_rx_key);
    assert_eq!(s_tx_salt, c_rx_salt);
    assert_ne!(c_tx_key, c_rx_key);
    assert_eq!((c_tx_key.len(), c_tx_salt.len()), (16, 12));
}
