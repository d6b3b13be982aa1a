//! Two endpoints of this crate talking to each other in memory, on virtual time.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use natter_dtls::{
    srtp_keys, DtlsCertificate, DtlsEndpoint, DtlsError, DtlsEvent, DtlsRole, SRTP_AEAD_AES_128_GCM,
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
        Self::with_fingerprints(client_cert, server_cert, None, None)
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
        let client =
            DtlsEndpoint::new(DtlsRole::Client, &client_cert, client_expects, now).unwrap();
        let server =
            DtlsEndpoint::new(DtlsRole::Server, &server_cert, server_expects, now).unwrap();
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
        }] => (
            *profile_id,
            keying_material.clone(),
            peer_fingerprint.clone(),
            version,
        ),
        other => panic!("expected one Connected event, got {other:?}"),
    }
}

#[test]
fn handshake_exports_equal_keying_material() {
    let mut p = Pair::new();
    assert!(p.client.poll_timeout().is_some());
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
    // Full handshake without loss: client flights 1, 3 and server flights 2, 4, one datagram
    // each (ECDSA certificates fit the 1200-byte MTU). Not asserted exactly: a machine that
    // stalls for 25 ms inside one engine call lets one duplicate flight out (see timer.rs).
    assert!((2..=12).contains(&p.sent.0), "client sent {}", p.sent.0);
    assert!((2..=12).contains(&p.sent.1), "server sent {}", p.sent.1);

    let (c_tx_key, c_tx_salt, c_rx_key, c_rx_salt) = srtp_keys(c_profile, &c_km, true).unwrap();
    let (s_tx_key, s_tx_salt, s_rx_key, s_rx_salt) = srtp_keys(s_profile, &s_km, false).unwrap();
    assert_eq!(c_tx_key, s_rx_key);
    assert_eq!(c_tx_salt, s_rx_salt);
    assert_eq!(s_tx_key, c_rx_key);
    assert_eq!(s_tx_salt, c_rx_salt);
    assert_ne!(c_tx_key, c_rx_key);
    assert_eq!((c_tx_key.len(), c_tx_salt.len()), (16, 12));
}

/// Runs virtual time forward (delivering everything) until both sides are connected or a
/// side failed; returns the number of timer firings used.
fn run_to_completion(p: &mut Pair) -> usize {
    let mut firings = 0;
    p.pump();
    while !(p.client.is_connected() && p.server.is_connected()) {
        assert!(p.advance(), "no timer left and not connected");
        firings += 1;
        assert!(firings < 10_000_000, "runaway timer loop");
        p.pump();
    }
    firings
}

fn wrong_fingerprint() -> String {
    DtlsCertificate::generate().unwrap().fingerprint_sha256()
}

#[test]
fn client_rejects_server_with_other_fingerprint() {
    let client_cert = DtlsCertificate::generate().unwrap();
    let server_cert = DtlsCertificate::generate().unwrap();
    let mut p = Pair::with_fingerprints(client_cert, server_cert, Some(wrong_fingerprint()), None);
    p.pump();
    assert!(!p.client.is_connected());
    assert_eq!(
        events(&mut p.client),
        vec![DtlsEvent::Failed(DtlsError::FingerprintMismatch)]
    );
    // The client's alert makes the server fail too, without ever reporting Connected.
    let server_events = events(&mut p.server);
    assert!(!p.server.is_connected());
    assert!(
        matches!(
            server_events.as_slice(),
            [DtlsEvent::Failed(DtlsError::Handshake(_))]
        ),
        "{server_events:?}"
    );
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(p.client.send_application_data(b"x"), Err(DtlsError::Closed));
}

#[test]
fn server_rejects_client_with_other_fingerprint() {
    let client_cert = DtlsCertificate::generate().unwrap();
    let server_cert = DtlsCertificate::generate().unwrap();
    let mut p = Pair::with_fingerprints(client_cert, server_cert, None, Some(wrong_fingerprint()));
    p.pump();
    assert!(!p.server.is_connected());
    assert_eq!(
        events(&mut p.server),
        vec![DtlsEvent::Failed(DtlsError::FingerprintMismatch)]
    );
    assert!(!p.client.is_connected());
    assert!(matches!(
        events(&mut p.client).as_slice(),
        [DtlsEvent::Failed(DtlsError::Handshake(_))]
    ));
}

#[test]
fn fingerprint_comparison_ignores_hex_case_and_blanks() {
    let client_cert = DtlsCertificate::generate().unwrap();
    let server_cert = DtlsCertificate::generate().unwrap();
    let lower = format!(" {} ", server_cert.fingerprint_sha256().to_lowercase());
    let mut p = Pair::with_fingerprints(client_cert, server_cert, Some(lower), None);
    p.pump();
    assert!(p.client.is_connected() && p.server.is_connected());
}

#[test]
fn without_expected_fingerprint_the_peer_fingerprint_is_reported() {
    let client_cert = DtlsCertificate::generate().unwrap();
    let server_cert = DtlsCertificate::generate().unwrap();
    let now = Instant::now();
    let mut client = DtlsEndpoint::new(DtlsRole::Client, &client_cert, None, now).unwrap();
    let mut server = DtlsEndpoint::new(DtlsRole::Server, &server_cert, None, now).unwrap();
    for _ in 0..10 {
        while let Some(d) = client.poll_datagram() {
            server.handle_datagram(&d, now).unwrap();
        }
        while let Some(d) = server.poll_datagram() {
            client.handle_datagram(&d, now).unwrap();
        }
    }
    let (_, _, peer, _) = connected(&events(&mut client));
    assert_eq!(peer, server_cert.fingerprint_sha256());
    let (_, _, peer, _) = connected(&events(&mut server));
    assert_eq!(peer, client_cert.fingerprint_sha256());
}

#[test]
fn lost_client_hello_is_retransmitted_after_one_second() {
    let mut p = Pair::new();
    let start = p.now;
    // The ClientHello (client datagram 0) is lost.
    p.pump_with(|from_client, i| !(from_client && i == 0));
    assert_eq!(p.sent, (1, 0));
    assert!(!p.client.is_connected());
    assert_eq!(p.server.poll_timeout().map(|t| t > start), Some(true));
    let retransmit_at = p.client.poll_timeout().unwrap();
    assert_eq!(retransmit_at - start, Duration::from_secs(1));
    // Nothing is due before then.
    p.client.handle_timeout(start + Duration::from_millis(999));
    assert_eq!(p.client.poll_datagram(), None);
    run_to_completion(&mut p);
    assert!(p.sent.0 >= 3, "client sent {}", p.sent.0);
    // The retransmission happened at (or, while OpenSSL's wall-clock latch was still closed,
    // a few virtual milliseconds after) the 1 s deadline.
    let elapsed = p.now - start;
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let (_, c_km, _, _) = connected(&events(&mut p.client));
    let (_, s_km, _, _) = connected(&events(&mut p.server));
    assert_eq!(c_km, s_km);
}

#[test]
fn lost_server_flight_is_recovered() {
    let mut p = Pair::new();
    // Every datagram of the server's first flight is lost.
    p.pump_with(|from_client, _| from_client);
    let server_flight = p.sent.1;
    assert!(server_flight >= 1);
    p.sent.1 = 0;
    let mut dropping = true;
    loop {
        p.pump_with(|from_client, _| from_client || !dropping);
        dropping = false;
        if p.client.is_connected() && p.server.is_connected() {
            break;
        }
        assert!(p.advance());
    }
    let (_, c_km, _, _) = connected(&events(&mut p.client));
    let (_, s_km, _, _) = connected(&events(&mut p.server));
    assert_eq!(c_km, s_km);
}

#[test]
fn lost_final_server_flight_is_resent_when_client_retransmits() {
    let mut p = Pair::new();
    // Deliver until the server completes; drop what it sends in that moment (its
    // ChangeCipherSpec + Finished).
    let mut dropped = 0;
    loop {
        let mut moved = false;
        while let Some(d) = p.client.poll_datagram() {
            moved = true;
            p.server.handle_datagram(&d, p.now).unwrap();
        }
        let server_done = p.server.is_connected();
        while let Some(d) = p.server.poll_datagram() {
            moved = true;
            if server_done && dropped == 0 {
                dropped += 1;
                // Drop the whole final flight.
                while p.server.poll_datagram().is_some() {}
                break;
            }
            p.client.handle_datagram(&d, p.now).unwrap();
        }
        if !moved {
            break;
        }
    }
    assert_eq!(dropped, 1);
    assert!(p.server.is_connected());
    assert!(!p.client.is_connected());
    run_to_completion(&mut p);
    let (_, c_km, _, _) = connected(&events(&mut p.client));
    let (_, s_km, _, _) = connected(&events(&mut p.server));
    assert_eq!(c_km, s_km);
}

#[test]
fn silent_peer_times_out_after_30_seconds() {
    let cert = DtlsCertificate::generate().unwrap();
    let start = Instant::now();
    let mut client = DtlsEndpoint::new(DtlsRole::Client, &cert, None, start).unwrap();
    let mut sent = 0;
    let mut firings = 0;
    while let Some(at) = client.poll_timeout() {
        while client.poll_datagram().is_some() {
            sent += 1;
        }
        client.handle_timeout(at);
        firings += 1;
        assert!(firings < 10_000_000);
        if let Some(ev) = client.poll_event() {
            assert_eq!(ev, DtlsEvent::Failed(DtlsError::Timeout));
            assert_eq!(at - start, natter_dtls::HANDSHAKE_TIMEOUT);
            break;
        }
    }
    while client.poll_datagram().is_some() {
        sent += 1;
    }
    // The ClientHello and its retransmissions at about 1, 3, 7, 15 and 23 s.
    assert_eq!(sent, 6);
    assert_eq!(client.poll_timeout(), None);
    assert!(!client.is_connected());
    // Nothing more is accepted.
    assert_eq!(
        client.handle_datagram(&[22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], start),
        Err(DtlsError::Closed)
    );
}

#[test]
fn application_data_flows_both_ways_and_close_is_reported() {
    let mut p = Pair::new();
    p.pump();
    events(&mut p.client);
    events(&mut p.server);
    p.client.send_application_data(b"ping from client").unwrap();
    p.server.send_application_data(&[7u8; 1000]).unwrap();
    // Larger than the handshake MTU: one record, one (large) datagram.
    p.server.send_application_data(&[9u8; 1 << 14]).unwrap();
    p.pump();
    assert_eq!(
        events(&mut p.server),
        vec![DtlsEvent::ApplicationData(b"ping from client".to_vec())]
    );
    assert_eq!(
        events(&mut p.client),
        vec![
            DtlsEvent::ApplicationData(vec![7u8; 1000]),
            DtlsEvent::ApplicationData(vec![9u8; 1 << 14])
        ]
    );
    assert_eq!(
        p.client.send_application_data(&vec![0u8; (1 << 14) + 1]),
        Err(DtlsError::TooLarge((1 << 14) + 1))
    );
    p.client.close();
    assert!(!p.client.is_connected());
    p.pump();
    assert_eq!(events(&mut p.server), vec![DtlsEvent::Closed]);
    assert!(!p.server.is_connected());
}

#[test]
fn application_data_before_handshake_is_refused() {
    let cert = DtlsCertificate::generate().unwrap();
    let mut client = DtlsEndpoint::new(DtlsRole::Client, &cert, None, Instant::now()).unwrap();
    assert_eq!(
        client.send_application_data(b"early"),
        Err(DtlsError::NotConnected)
    );
}

#[test]
fn non_dtls_datagrams_are_refused_without_harm() {
    let mut p = Pair::new();
    let now = p.now;
    for bad in [
        &[][..],
        &[0u8, 1, 0, 0][..],                                    // STUN
        &[0x80, 0x00, 0x00, 0x01][..],                          // RTP
        &[22, 0xFE, 0xFD][..],                                  // truncated header
        &[22, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],    // TLS, not DTLS
        &[22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1][..], // length past the end
    ] {
        assert_eq!(p.server.handle_datagram(bad, now), Err(DtlsError::NotDtls));
        assert_eq!(p.client.handle_datagram(bad, now), Err(DtlsError::NotDtls));
    }
    p.pump();
    assert!(p.client.is_connected() && p.server.is_connected());
}

/// A DTLS-framed record with random body; passes the framing filter, so it reaches OpenSSL.
fn framed_junk(rng: &mut impl RngCore) -> Vec<u8> {
    let body_len = rng.gen_range(0..1200usize);
    let mut d = vec![
        rng.gen_range(20..=23u8),
        0xFE,
        if rng.gen() { 0xFD } else { 0xFF },
    ];
    let mut epoch_seq = [0u8; 8];
    rng.fill_bytes(&mut epoch_seq);
    d.extend_from_slice(&epoch_seq);
    d.extend_from_slice(&(body_len as u16).to_be_bytes());
    let mut body = vec![0u8; body_len];
    rng.fill_bytes(&mut body);
    d.extend_from_slice(&body);
    d
}

#[test]
fn garbage_never_panics_and_a_handshake_still_completes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_d715);
    let cert = DtlsCertificate::generate().unwrap();
    let now = Instant::now();
    // Fresh servers and clients fed noise, raw and DTLS-framed.
    for round in 0..200 {
        let role = if round % 2 == 0 {
            DtlsRole::Server
        } else {
            DtlsRole::Client
        };
        let mut ep = DtlsEndpoint::new(role, &cert, None, now).unwrap();
        for _ in 0..5 {
            let d = if rng.gen() {
                let mut d = vec![0u8; rng.gen_range(0..1500)];
                rng.fill_bytes(&mut d);
                d
            } else {
                framed_junk(&mut rng)
            };
            let _ = ep.handle_datagram(&d, now);
            while ep.poll_datagram().is_some() {}
            while ep.poll_event().is_some() {}
        }
    }
    // Noise interleaved with a real handshake does not stop it.
    let mut p = Pair::new();
    for _ in 0..5 {
        let d = framed_junk(&mut rng);
        let _ = p.server.handle_datagram(&d, p.now);
        let d = framed_junk(&mut rng);
        let _ = p.client.handle_datagram(&d, p.now);
        if let Some(d) = p.client.poll_datagram() {
            p.server.handle_datagram(&d, p.now).unwrap();
        }
        if let Some(d) = p.server.poll_datagram() {
            p.client.handle_datagram(&d, p.now).unwrap();
        }
    }
    run_to_completion(&mut p);
    let (_, c_km, _, _) = connected(&events(&mut p.client));
    let (_, s_km, _, _) = connected(&events(&mut p.server));
    assert_eq!(c_km, s_km);
    // Noise after the handshake is dropped too.
    for _ in 0..20 {
        let d = framed_junk(&mut rng);
        let _ = p.client.handle_datagram(&d, p.now);
    }
    assert!(p.client.is_connected());
    assert_eq!(p.client.poll_event(), None);
}

/// 20 % of datagrams lost in both directions, on 20 fixed loss patterns: retransmission
/// recovers (almost) every handshake well within the time limit.
#[test]
fn handshakes_survive_twenty_percent_loss() {
    let mut completed = 0;
    for seed in 0..20u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut p = Pair::new();
        loop {
            p.pump_with(|_, _| rng.gen_range(0..100) >= 20);
            if p.client.is_connected() && p.server.is_connected() {
                completed += 1;
                let (_, c_km, _, _) = connected(&events(&mut p.client));
                let (_, s_km, _, _) = connected(&events(&mut p.server));
                assert_eq!(c_km, s_km);
                break;
            }
            if !p.advance() {
                break;
            }
        }
    }
    // A handshake fails only when some flight, or every answer to it, is lost on all of its
    // six tries within 30 s; allow one unlucky pattern.
    assert!(completed >= 19, "{completed}/20 completed");
}

#[test]
fn endpoint_and_certificate_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<DtlsEndpoint>();
    assert_send_sync::<DtlsCertificate>();
    assert_send_sync::<DtlsEvent>();
    assert_send_sync::<DtlsError>();
}
