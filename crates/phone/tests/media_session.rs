//! Two `MediaSession`s wired back to back in memory, in virtual time (a fixed `Instant`
//! base plus 20 ms ticks): tones through every codec, SDES and DTLS-SRTP keying, hostile
//! datagrams, DTMF, peer silence and hold. Nothing sleeps; every count is exact.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_media::{goertzel_power, CodecKind, ToneGenerator};
use natter_phone::media::{MediaConfig, MediaEvent, MediaSession, MediaStats, Outgoing, FRAME};
use natter_phone::offer::{
    answer_offer, create_offer, read_answer, with_direction, Keying, LocalMedia, Negotiated,
    SrtpMode, SDES_PROFILES,
};
use natter_rtp::RtpHeader;
use natter_sdp::Direction;
use natter_srtp::{SdesKey, SrtpProfile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const A_ADDR: &str = "192.0.2.10:40000";
const B_ADDR: &str = "198.51.100.20:50000";
const AMPLITUDE: i16 = 8000;
const A_TONE: f64 = 440.0;
const B_TONE: f64 = 1000.0;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn local(
    a: &str,
    codec: CodecKind,
    srtp: SrtpMode,
    fingerprint: Option<String>,
    seed: u64,
) -> LocalMedia {
    let mut rng = StdRng::seed_from_u64(seed);
    LocalMedia {
        addr: addr(a),
        codecs: vec![codec],
        srtp,
        srtp_required: srtp != SrtpMode::Off,
        sdes_keys: SDES_PROFILES
            .iter()
            .map(|p| SdesKey::generate(*p, &mut rng))
            .collect(),
        fingerprint,
        ice: None,
        direction: Direction::SendRecv,
        session_id: seed,
        version: 1,
    }
}

/// Offer/answer between two natter phones: (offerer's, answerer's) negotiated streams.
fn negotiate(offerer: &LocalMedia, answerer: &LocalMedia) -> (Negotiated, Negotiated) {
    let offer = create_offer(offerer);
    let (answer, n_answerer) = answer_offer(offer.as_bytes(), answerer).unwrap();
    let n_offerer = read_answer(answer.as_bytes(), offerer).unwrap();
    (n_offerer, n_answerer)
}

fn config(
    neg: Negotiated,
    ssrc: u32,
    seq: u16,
    ts: u32,
    cert: Option<DtlsCertificate>,
) -> MediaConfig {
    MediaConfig {
        neg,
        ssrc,
        cname: format!("{ssrc:08x}@natter.test"),
        seq,
        ts,
        cert,
        opus_fec: false,
        opus_dtx: false,
        seed: u64::from(ssrc),
        ntp_now: 0xE8A0_0000_0000_0000,
        defer_dtls_client: false,
    }
}

struct Peer {
    s: MediaSession,
    addr: SocketAddr,
    tone: ToneGenerator,
    /// Whether `send_audio` is called every tick.
    talking: bool,
    /// Whether what this peer transmits reaches the other side.
    connected: bool,
    played: Vec<i16>,
    events: Vec<(Duration, MediaEvent)>,
    /// Everything this peer transmitted, in order.
    sent: Vec<Outgoing>,
}

impl Peer {
    fn new(s: MediaSession, a: &str, freq: f64) -> Self {
        let rate = s.sample_rate();
        Peer {
            s,
            addr: addr(a),
            tone: ToneGenerator::new(freq, rate, AMPLITUDE),
            talking: true,
            connected: true,
            played: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn stats(&self) -> MediaStats {
        self.s.stats()
    }

    fn secured_suites(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                MediaEvent::Secured { suite } => Some(suite.clone()),
                _ => None,
            })
            .collect()
    }

    fn keying_failures(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, MediaEvent::KeyingFailed(_)))
            .count()
    }

    fn dtmf(&self) -> String {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                MediaEvent::Dtmf(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    fn silent_at(&self) -> Vec<Duration> {
        self.events
            .iter()
            .filter(|(_, e)| *e == MediaEvent::PeerSilent)
            .map(|(t, _)| *t)
            .collect()
    }
}

/// Hands `o` to the receiver's RTP port, or to its RTCP port when rtcp-mux is off.
fn deliver(to: &mut MediaSession, now: Instant, from: SocketAddr, o: &Outgoing) {
    if o.rtcp && !to.negotiated().rtcp_mux {
        to.handle_rtcp_datagram(now, from, &o.data);
    } else {
        to.handle_datagram(now, from, &o.data);
    }
}

/// A and B joined by a perfect in-memory link.
struct Pair {
    t0: Instant,
    /// Ticks run so far.
    ticks: u32,
    a: Peer,
    b: Peer,
}

impl Pair {
    fn new(t0: Instant, a: MediaSession, b: MediaSession) -> Self {
        let mut p = Pair {
            t0,
            ticks: 0,
            a: Peer::new(a, A_ADDR, A_TONE),
            b: Peer::new(b, B_ADDR, B_TONE),
        };
        p.collect_events(t0);
        p
    }

    fn now(&self) -> Instant {
        self.t0 + FRAME * self.ticks
    }

    fn collect_events(&mut self, now: Instant) {
        let at = now - self.t0;
        for peer in [&mut self.a, &mut self.b] {
            while let Some(e) = peer.s.poll_event() {
                peer.events.push((at, e));
            }
        }
    }

    /// Delivers datagrams both ways until neither side has anything to send.
    fn pump(&mut self, now: Instant) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(o) = self.a.s.poll_transmit() {
                moved = true;
                if self.a.connected {
                    deliver(&mut self.b.s, now, self.a.addr, &o);
                }
                self.a.sent.push(o);
            }
            while let Some(o) = self.b.s.poll_transmit() {
                moved = true;
                if self.b.connected {
                    deliver(&mut self.a.s, now, self.b.addr, &o);
                }
                self.b.sent.push(o);
            }
            if !moved {
                break;
            }
        }
        self.collect_events(now);
    }

    fn timeouts(&mut self, now: Instant) {
        for _ in 0..10 {
            let mut ran = false;
            for peer in [&mut self.a, &mut self.b] {
                if peer.s.poll_timeout().is_some_and(|t| t <= now) {
                    peer.s.handle_timeout(now);
                    ran = true;
                }
            }
            self.pump(now);
            if !ran {
                break;
            }
        }
    }

    /// One 20 ms step: timers, audio out, delivery, play-out.
    fn tick(&mut self) {
        let now = self.now();
        self.timeouts(now);
        for peer in [&mut self.a, &mut self.b] {
            if peer.talking {
                let mut frame = vec![0i16; peer.s.samples_per_frame()];
                peer.tone.fill(&mut frame);
                peer.s.send_audio(now, &frame);
            }
        }
        self.pump(now);
        for peer in [&mut self.a, &mut self.b] {
            peer.s.play(now, &mut peer.played);
        }
        self.collect_events(now);
        self.ticks += 1;
    }

    fn run(&mut self, d: Duration) {
        let n = d.as_millis() / FRAME.as_millis();
        for _ in 0..n {
            self.tick();
        }
    }

    /// Runs ticks without audio until both sides are secured (at most `limit`).
    fn handshake(&mut self, limit: Duration) {
        let (ta, tb) = (self.a.talking, self.b.talking);
        self.a.talking = false;
        self.b.talking = false;
        let t = self.now();
        self.pump(t);
        let end = self.ticks + (limit.as_millis() / FRAME.as_millis()) as u32;
        while !(self.a.s.is_secured() && self.b.s.is_secured()) && self.ticks < end {
            self.tick();
        }
        self.a.talking = ta;
        self.b.talking = tb;
    }
}

/// Power of `freq` and of the other side's tone in `played[from..to]` (seconds).
fn tone_powers(
    played: &[i16],
    rate: u32,
    from_s: f64,
    to_s: f64,
    freq: f64,
    other: f64,
) -> (f64, f64) {
    let from = (from_s * f64::from(rate)) as usize;
    let to = (to_s * f64::from(rate)) as usize;
    let w = &played[from..to];
    (
        goertzel_power(w, rate, freq),
        goertzel_power(w, rate, other),
    )
}

/// A sine of `AMPLITUDE` measures A²/2; a codec that keeps the tone keeps most of it.
fn assert_hears(played: &[i16], rate: u32, freq: f64, other: f64, what: &str) {
    let full = f64::from(AMPLITUDE) * f64::from(AMPLITUDE) / 2.0;
    // 0.6 s: an integer number of periods of both 440 Hz and 1000 Hz.
    let (p, q) = tone_powers(played, rate, 0.2, 0.8, freq, other);
    assert!(
        p > 0.5 * full,
        "{what}: {freq} Hz power {p:.0} < half of {full:.0}"
    );
    assert!(
        q < p / 1000.0,
        "{what}: {other} Hz leaked: {q:.0} vs {p:.0}"
    );
}

fn plain_pair(t0: Instant, codec: CodecKind) -> Pair {
    let la = local(A_ADDR, codec, SrtpMode::Off, None, 1);
    let lb = local(B_ADDR, codec, SrtpMode::Off, None, 2);
    let (na, nb) = negotiate(&la, &lb);
    assert_eq!(na.keying, Keying::None);
    // Sequence numbers and timestamps that wrap during the call.
    let a = MediaSession::new(config(na, 0x1111_1111, 65_530, 0xFFFF_FF00, None), t0).unwrap();
    let b = MediaSession::new(config(nb, 0x2222_2222, 100, 1000, None), t0).unwrap();
    Pair::new(t0, a, b)
}

fn codecs_to_test() -> Vec<CodecKind> {
    let mut v = vec![
        CodecKind::Pcmu,
        CodecKind::Pcma,
        CodecKind::G722,
        CodecKind::L16,
    ];
    if CodecKind::Opus.is_available() {
        v.push(CodecKind::Opus);
    }
    v
}

// ---------------------------------------------------------------------------------------
// (1) plain RTP
// ---------------------------------------------------------------------------------------

#[test]
fn pcmu_plain_tone_both_ways_exact_counts() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    assert_eq!(p.a.secured_suites(), ["off"]);
    assert_eq!(p.b.secured_suites(), ["off"]);
    p.run(Duration::from_secs(1));
    assert_eq!(p.ticks, 50);
    assert_eq!(p.a.played.len(), 8000);
    assert_eq!(p.b.played.len(), 8000);
    assert_hears(&p.b.played, 8000, A_TONE, B_TONE, "B hears A");
    assert_hears(&p.a.played, 8000, B_TONE, A_TONE, "A hears B");
    let (sa, sb) = (p.a.stats(), p.b.stats());
    assert_eq!((sa.tx_packets, sb.rx_packets), (50, 50));
    assert_eq!((sb.tx_packets, sa.rx_packets), (50, 50));
    for s in [&sa, &sb] {
        assert_eq!(s.rx_lost, 0);
        assert_eq!(s.rx_malformed, 0);
        assert_eq!(s.rx_unauthenticated, 0);
        assert_eq!(s.rx_unknown_pt, 0);
        assert_eq!(s.dtmf_sent, 0);
    }
    // Every RTP packet: 12-byte header + 160 µ-law bytes, PT 0, A's SSRC, wrapping seq.
    let rtp: Vec<&Outgoing> = p.a.sent.iter().filter(|o| !o.rtcp).collect();
    assert_eq!(rtp.len(), 50);
    for (i, o) in rtp.iter().enumerate() {
        assert_eq!(o.data.len(), 172);
        assert_eq!(o.data[0], 0x80);
        assert_eq!(o.data[1] & 0x7f, 0);
        let seq = u16::from_be_bytes([o.data[2], o.data[3]]);
        assert_eq!(seq, 65_530u16.wrapping_add(i as u16));
        let ts = u32::from_be_bytes([o.data[4], o.data[5], o.data[6], o.data[7]]);
        assert_eq!(ts, 0xFFFF_FF00u32.wrapping_add(160 * i as u32));
        assert_eq!(&o.data[8..12], &0x1111_1111u32.to_be_bytes());
    }
}

#[test]
fn every_codec_carries_the_tone_plain() {
    for codec in codecs_to_test() {
        let t0 = Instant::now();
        let mut p = plain_pair(t0, codec);
        p.run(Duration::from_secs(1));
        let rate = codec.sample_rate();
        assert_eq!(p.b.played.len(), rate as usize, "{codec:?}");
        assert_hears(
            &p.b.played,
            rate,
            A_TONE,
            B_TONE,
            &format!("{codec:?} B hears A"),
        );
        assert_hears(
            &p.a.played,
            rate,
            B_TONE,
            A_TONE,
            &format!("{codec:?} A hears B"),
        );
        assert_eq!(
            (p.a.stats().tx_packets, p.b.stats().rx_packets),
            (50, 50),
            "{codec:?}"
        );
        assert_eq!(
            (p.b.stats().tx_packets, p.a.stats().rx_packets),
            (50, 50),
            "{codec:?}"
        );
    }
}

#[test]
fn rtcp_flows_and_gives_rtt() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.run(Duration::from_secs(15));
    let rtcp_a = p.a.sent.iter().filter(|o| o.rtcp).count();
    let rtcp_b = p.b.sent.iter().filter(|o| o.rtcp).count();
    assert!(
        rtcp_a >= 2 && rtcp_b >= 2,
        "RTCP sent: A {rtcp_a}, B {rtcp_b}"
    );
    // Delivery is instant, so the round trip RTCP measures is 0 ms.
    let rtt = p.a.stats().rtt_ms.expect("A has an RTT from B's reports");
    assert!(rtt.abs() < 1.0, "rtt {rtt}");
    assert_eq!(p.a.stats().tx_packets, 750);
    assert_eq!(p.b.stats().rx_packets, 750);
    assert!(p.a.silent_at().is_empty());
}

// ---------------------------------------------------------------------------------------
// (2) SDES-SRTP
// ---------------------------------------------------------------------------------------

fn sdes_pair(t0: Instant, codec: CodecKind, profile: SrtpProfile) -> Pair {
    let mut la = local(A_ADDR, codec, SrtpMode::Sdes, None, 1);
    la.sdes_keys.retain(|k| k.profile == profile);
    let lb = local(B_ADDR, codec, SrtpMode::Sdes, None, 2);
    let (na, nb) = negotiate(&la, &lb);
    assert!(matches!(&na.keying, Keying::Sdes { local, .. } if local.profile == profile));
    // A's sequence wraps after 16 packets: SRTP's rollover counter must follow.
    let a = MediaSession::new(config(na, 0xA1A1_A1A1, 65_520, 0, None), t0).unwrap();
    let b = MediaSession::new(config(nb, 0xB2B2_B2B2, 40_000, 7, None), t0).unwrap();
    Pair::new(t0, a, b)
}

#[test]
fn sdes_each_profile_secures_and_carries_the_tone() {
    let cases = [
        (
            SrtpProfile::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_80",
            172 + 10,
        ),
        (
            SrtpProfile::AesCm128HmacSha1_32,
            "AES_CM_128_HMAC_SHA1_32",
            172 + 4,
        ),
        (SrtpProfile::AeadAes128Gcm, "AEAD_AES_128_GCM", 172 + 16),
        (SrtpProfile::AeadAes256Gcm, "AEAD_AES_256_GCM", 172 + 16),
    ];
    for (profile, name, wire_len) in cases {
        let t0 = Instant::now();
        let mut p = sdes_pair(t0, CodecKind::Pcmu, profile);
        assert_eq!(p.a.secured_suites(), [name]);
        assert_eq!(p.b.secured_suites(), [name]);
        assert_eq!(p.a.s.suite(), Some(name));
        p.run(Duration::from_secs(1));
        assert_hears(&p.b.played, 8000, A_TONE, B_TONE, name);
        assert_hears(&p.a.played, 8000, B_TONE, A_TONE, name);
        let (sa, sb) = (p.a.stats(), p.b.stats());
        assert_eq!(
            (sa.tx_packets, sb.rx_packets, sb.tx_packets, sa.rx_packets),
            (50, 50, 50, 50),
            "{name}"
        );
        assert_eq!(
            (sa.rx_unauthenticated, sb.rx_unauthenticated),
            (0, 0),
            "{name}"
        );
        // On the wire: encrypted payload plus the suite's tag.
        let first = p.a.sent.iter().find(|o| !o.rtcp).unwrap();
        assert_eq!(first.data.len(), wire_len, "{name}");
        assert!(
            first.data[12..172].iter().any(|&b| b != first.data[12]),
            "{name}"
        );
    }
}

#[test]
fn sdes_aes_gcm_with_opus_when_available() {
    if !CodecKind::Opus.is_available() {
        return;
    }
    let t0 = Instant::now();
    let mut p = sdes_pair(t0, CodecKind::Opus, SrtpProfile::AeadAes128Gcm);
    assert_eq!(p.b.secured_suites(), ["AEAD_AES_128_GCM"]);
    p.run(Duration::from_secs(1));
    assert_hears(&p.b.played, 48000, A_TONE, B_TONE, "opus/GCM");
    assert_eq!(p.b.stats().rx_packets, 50);
}

// ---------------------------------------------------------------------------------------
// (3) DTLS-SRTP
// ---------------------------------------------------------------------------------------

/// B offers (actpass), A answers (active): A is the DTLS client, B the server.
fn dtls_pair(
    t0: Instant,
    a_expects: Option<String>,
    b_expects: Option<String>,
    defer: bool,
) -> Pair {
    let ca = DtlsCertificate::generate().unwrap();
    let cb = DtlsCertificate::generate().unwrap();
    let lb = local(
        B_ADDR,
        CodecKind::Pcmu,
        SrtpMode::Dtls,
        Some(cb.fingerprint_sha256()),
        2,
    );
    let la = local(
        A_ADDR,
        CodecKind::Pcmu,
        SrtpMode::Dtls,
        Some(ca.fingerprint_sha256()),
        1,
    );
    let (mut nb, mut na) = negotiate(&lb, &la);
    match (&mut na.keying, &mut nb.keying) {
        (Keying::Dtls(pa), Keying::Dtls(pb)) => {
            assert!(pa.client, "answerer to actpass is the client");
            assert!(!pb.client);
            assert_eq!(pa.remote_fingerprint, cb.fingerprint_sha256());
            assert_eq!(pb.remote_fingerprint, ca.fingerprint_sha256());
            if let Some(f) = a_expects {
                pa.remote_fingerprint = f;
            }
            if let Some(f) = b_expects {
                pb.remote_fingerprint = f;
            }
        }
        k => panic!("{k:?}"),
    }
    let mut cfg_a = config(na, 0x0A0A_0A0A, 500, 0, Some(ca));
    cfg_a.defer_dtls_client = defer;
    let a = MediaSession::new(cfg_a, t0).unwrap();
    let b = MediaSession::new(config(nb, 0x0B0B_0B0B, 600, 0, Some(cb)), t0).unwrap();
    Pair::new(t0, a, b)
}

#[test]
fn dtls_srtp_handshake_then_audio() {
    let t0 = Instant::now();
    let mut p = dtls_pair(t0, None, None, false);
    assert!(!p.a.s.is_secured() && !p.b.s.is_secured());
    // Before keys: send_audio sends nothing (the ClientHello is all A has queued).
    p.a.s.send_audio(t0, &[0; 160]);
    p.b.s.send_audio(t0, &[0; 160]);
    assert_eq!((p.a.stats().tx_packets, p.b.stats().tx_packets), (0, 0));
    // On a lossless zero-delay link the whole handshake is one exchange of flights.
    p.pump(t0);
    assert!(p.a.s.is_secured() && p.b.s.is_secured());
    // ClientHello; server flight; client flight; server ChangeCipherSpec + Finished. OpenSSL
    // may let one duplicate of a flight out when the test thread stalls > 25 ms of wall
    // clock (natter-dtls timer.rs), so allow one extra each way.
    let (na, nb) = (p.a.sent.len(), p.b.sent.len());
    assert!((2..=3).contains(&na) && (2..=3).contains(&nb), "{na} {nb}");
    assert!(p
        .a
        .sent
        .iter()
        .chain(&p.b.sent)
        .all(|o| o.data[0] == 22 || o.data[0] == 20));
    // The first datagram was the client's (a DTLS handshake record).
    assert_eq!(p.a.sent[0].data[0], 22);
    assert!(p.b.sent.iter().all(|o| !o.rtcp));
    let suites_a = p.a.secured_suites();
    let suites_b = p.b.secured_suites();
    assert_eq!(suites_a.len(), 1);
    assert_eq!(suites_a, suites_b);
    assert!(
        [
            "AES_CM_128_HMAC_SHA1_80",
            "AES_CM_128_HMAC_SHA1_32",
            "AEAD_AES_128_GCM",
            "AEAD_AES_256_GCM"
        ]
        .contains(&suites_a[0].as_str()),
        "{suites_a:?}"
    );
    assert_eq!(p.a.keying_failures() + p.b.keying_failures(), 0);
    let before_a = p.a.played.len();
    let before_b = p.b.played.len();
    p.run(Duration::from_secs(1));
    assert_hears(
        &p.b.played[before_b..],
        8000,
        A_TONE,
        B_TONE,
        "DTLS B hears A",
    );
    assert_hears(
        &p.a.played[before_a..],
        8000,
        B_TONE,
        A_TONE,
        "DTLS A hears B",
    );
    let (sa, sb) = (p.a.stats(), p.b.stats());
    assert_eq!(
        (sa.tx_packets, sb.rx_packets, sb.tx_packets, sa.rx_packets),
        (50, 50, 50, 50)
    );
    assert_eq!((sa.rx_unauthenticated, sb.rx_unauthenticated), (0, 0));
    assert_eq!((sa.rx_malformed, sb.rx_malformed), (0, 0));
}

#[test]
fn dtls_deferred_client_waits_for_start_dtls() {
    let t0 = Instant::now();
    let mut p = dtls_pair(t0, None, None, true);
    p.run(Duration::from_millis(200));
    assert!(
        p.a.sent.is_empty(),
        "deferred client sent {} datagrams",
        p.a.sent.len()
    );
    assert!(p.b.sent.is_empty(), "a server waits for the ClientHello");
    let now = p.now();
    p.a.s.start_dtls(now);
    p.handshake(Duration::from_secs(2));
    assert!(p.a.s.is_secured() && p.b.s.is_secured());
    assert_eq!(p.a.secured_suites().len(), 1);
    p.run(Duration::from_secs(1));
    assert_eq!((p.a.stats().tx_packets, p.b.stats().rx_packets), (50, 50));
}

fn wrong_fingerprint() -> String {
    DtlsCertificate::generate().unwrap().fingerprint_sha256()
}

#[test]
fn dtls_client_sees_wrong_server_fingerprint() {
    let t0 = Instant::now();
    let mut p = dtls_pair(t0, Some(wrong_fingerprint()), None, false);
    p.run(Duration::from_secs(2));
    assert_eq!(p.a.keying_failures(), 1, "{:?}", p.a.events);
    assert!(p.a.secured_suites().is_empty());
    assert!(p.b.secured_suites().is_empty());
    assert!(!p.a.s.is_secured() && !p.b.s.is_secured());
    assert_eq!((p.a.stats().tx_packets, p.b.stats().tx_packets), (0, 0));
    assert_eq!((p.a.stats().rx_packets, p.b.stats().rx_packets), (0, 0));
}

#[test]
fn dtls_server_sees_wrong_client_fingerprint() {
    let t0 = Instant::now();
    let mut p = dtls_pair(t0, None, Some(wrong_fingerprint()), false);
    p.run(Duration::from_secs(2));
    assert_eq!(p.b.keying_failures(), 1, "{:?}", p.b.events);
    assert!(p.b.secured_suites().is_empty());
    assert!(
        p.a.secured_suites().is_empty(),
        "client must not be secured: {:?}",
        p.a.events
    );
    assert_eq!((p.a.stats().tx_packets, p.b.stats().tx_packets), (0, 0));
}

// ---------------------------------------------------------------------------------------
// (4) hostile input
// ---------------------------------------------------------------------------------------

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    RtpHeader {
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
        ..RtpHeader::default()
    }
    .write(payload, &mut out)
    .unwrap();
    out
}

#[test]
fn plain_session_counts_garbage_truncated_and_unknown_pt() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.run(Duration::from_millis(200));
    let from = p.a.addr;
    let now = p.now();
    let b = &mut p.b.s;
    let base = b.stats();
    assert_eq!(base.rx_packets, 10);
    let malformed: Vec<Vec<u8>> = vec![
        vec![],                                                     // empty
        vec![0xff; 40],                                             // not RTP/RTCP/DTLS/STUN
        vec![0x40, 0x00, 0x00, 0x10],                               // TURN ChannelData range
        vec![0x80],                                                 // one byte
        vec![0x80, 0x00, 0x12],                                     // truncated RTP header
        rtp(0, 1, 2, 3, &[])[..11].to_vec(),                        // 11 of 12 header bytes
        vec![0x8f, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4], // CC=15, 1 CSRC present
        vec![
            0x90, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0x00, 0x08,
        ], // ext too long
        vec![0xa0, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 0xff], // padding > payload
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],         // DTLS on a plain session
    ];
    for d in &malformed {
        b.handle_datagram(now, from, d);
    }
    let s = b.stats();
    assert_eq!(s.rx_malformed - base.rx_malformed, malformed.len() as u64);
    // STUN (a NAT probe outside ICE) is counted apart and ignored.
    b.handle_datagram(now, from, &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
    let s = b.stats();
    assert_eq!(
        (s.rx_stun, s.rx_malformed - base.rx_malformed),
        (1, malformed.len() as u64)
    );
    // Well-formed RTP with payload types not negotiated.
    for (i, pt) in [96u8, 18, 8, 127].into_iter().enumerate() {
        b.handle_datagram(
            now,
            from,
            &rtp(pt, 9000 + i as u16, 0, 0x1111_1111, &[0xff; 160]),
        );
    }
    let s = b.stats();
    assert_eq!(s.rx_unknown_pt - base.rx_unknown_pt, 4);
    assert_eq!(s.rx_packets, base.rx_packets, "nothing accepted as audio");
    assert_eq!(s.rx_unauthenticated, 0);
    // The call goes on.
    p.run(Duration::from_millis(800));
    assert_eq!(p.b.stats().rx_packets, 50);
    assert_hears(&p.b.played, 8000, A_TONE, B_TONE, "after garbage");
}

#[test]
fn malformed_rtcp_is_counted() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    let now = p.now();
    let from = p.a.addr;
    // RTCP SR header claiming 100 words with 4 bytes present; and an RR cut mid-report.
    p.b.s.handle_datagram(now, from, &[0x80, 200, 0x00, 0x64]);
    p.b.s
        .handle_datagram(now, from, &[0x81, 201, 0x00, 0x07, 0, 0, 0, 1, 0, 0]);
    assert_eq!(p.b.stats().rx_malformed, 2);
}

#[test]
fn random_datagrams_never_panic() {
    let t0 = Instant::now();
    for (codec, profile) in [
        (CodecKind::Pcmu, None),
        (CodecKind::Pcmu, Some(SrtpProfile::AesCm128HmacSha1_80)),
        (CodecKind::G722, Some(SrtpProfile::AeadAes128Gcm)),
    ] {
        let mut p = match profile {
            None => plain_pair(t0, codec),
            Some(pr) => sdes_pair(t0, codec, pr),
        };
        p.run(Duration::from_millis(100));
        let mut rng = StdRng::seed_from_u64(7);
        let from = p.a.addr;
        let mut out = Vec::new();
        for i in 0..3000u32 {
            let len = rng.gen_range(0..300);
            let mut d: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            // Make most of them look like RTP or RTCP so they get past the demux.
            if let Some(first) = d.first_mut() {
                if i % 4 != 0 {
                    *first = 0x80 | (*first & 0x3f);
                }
            }
            let now = p.now() + Duration::from_micros(u64::from(i));
            p.b.s.handle_datagram(now, from, &d);
            if i % 20 == 0 {
                p.b.s.play(now, &mut out);
                p.b.s.handle_timeout(now);
                while p.b.s.poll_transmit().is_some() {}
                while p.b.s.poll_event().is_some() {}
            }
        }
        let s = p.b.stats();
        assert!(s.rx_malformed + s.rx_unauthenticated + s.rx_unknown_pt > 0);
        if profile.is_some() {
            // Random bytes never authenticate.
            assert_eq!(s.rx_packets, 5, "{profile:?}");
        }
    }
}

#[test]
fn srtp_flipped_bit_replay_and_plain_packets_are_unauthenticated() {
    let t0 = Instant::now();
    let mut p = sdes_pair(t0, CodecKind::Pcmu, SrtpProfile::AesCm128HmacSha1_80);
    // Capture A's next packet instead of delivering it.
    p.a.connected = false;
    p.tick();
    p.a.connected = true;
    let good = p.a.sent.iter().rfind(|o| !o.rtcp).unwrap().data.clone();
    let now = p.now();
    let from = p.a.addr;
    let b = &mut p.b.s;
    assert_eq!(b.stats().rx_packets, 0);
    for bit in [8 * 20, 8 * 100 + 3, 8 * (good.len() - 1)] {
        // Payload bit, another payload bit, last tag bit.
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        b.handle_datagram(now, from, &bad);
    }
    // A header bit (the marker) is authenticated too.
    let mut bad = good.clone();
    bad[1] ^= 0x80;
    b.handle_datagram(now, from, &bad);
    // Cut off the tag.
    b.handle_datagram(now, from, &good[..good.len() - 10]);
    // Plain RTP on an SRTP session.
    b.handle_datagram(now, from, &rtp(0, 1, 0, 0xA1A1_A1A1, &[0xff; 160]));
    let s = b.stats();
    assert_eq!(s.rx_unauthenticated, 6);
    assert_eq!(s.rx_packets, 0);
    // A failed packet must not poison the replay window: the genuine one still passes...
    b.handle_datagram(now, from, &good);
    assert_eq!(b.stats().rx_packets, 1);
    // ...once.
    b.handle_datagram(now, from, &good);
    let s = b.stats();
    assert_eq!((s.rx_packets, s.rx_unauthenticated), (1, 7));
}

#[test]
fn srtcp_flipped_bit_is_unauthenticated() {
    let t0 = Instant::now();
    let mut p = sdes_pair(t0, CodecKind::Pcmu, SrtpProfile::AesCm128HmacSha1_80);
    p.a.connected = false;
    let mut ticks = 0;
    while !p.a.sent.iter().any(|o| o.rtcp) && ticks < 1000 {
        p.tick();
        ticks += 1;
    }
    let rtcp =
        p.a.sent
            .iter()
            .find(|o| o.rtcp)
            .expect("A sent RTCP")
            .data
            .clone();
    let now = p.now();
    let base = p.b.stats().rx_unauthenticated;
    let mut bad = rtcp.clone();
    bad[10] ^= 0x01;
    p.b.s.handle_datagram(now, p.a.addr, &bad);
    assert_eq!(p.b.stats().rx_unauthenticated, base + 1);
    p.b.s.handle_datagram(now, p.a.addr, &rtcp);
    assert_eq!(p.b.stats().rx_unauthenticated, base + 1);
}

// ---------------------------------------------------------------------------------------
// (5) DTMF
// ---------------------------------------------------------------------------------------

#[test]
fn dtmf_digits_arrive_in_order_once_each() {
    for profile in [None, Some(SrtpProfile::AeadAes128Gcm)] {
        let t0 = Instant::now();
        let mut p = match profile {
            None => plain_pair(t0, CodecKind::Pcmu),
            Some(pr) => sdes_pair(t0, CodecKind::Pcmu, pr),
        };
        p.run(Duration::from_millis(200));
        p.a.s.send_dtmf("159#");
        assert!(p.a.s.dtmf_pending());
        assert_eq!(p.a.stats().dtmf_sent, 4);
        p.run(Duration::from_secs(2));
        assert!(!p.a.s.dtmf_pending());
        assert_eq!(p.b.dtmf(), "159#", "{profile:?}: {:?}", p.b.events);
        assert_eq!(p.a.dtmf(), "");
        // Telephone events are PT 101 and are not audio nor unknown.
        let events =
            p.a.sent
                .iter()
                .filter(|o| !o.rtcp && (o.data[1] & 0x7f) == 101)
                .count();
        assert!(events >= 4 * 5, "{events} event packets");
        let s = p.b.stats();
        assert_eq!(s.rx_unknown_pt, 0);
        assert_eq!(s.rx_packets + events as u64, p.a.stats().tx_packets);
    }
}

#[test]
fn dtmf_from_the_answerer_and_over_opus() {
    let mut codecs = vec![CodecKind::Pcmu];
    if CodecKind::Opus.is_available() {
        codecs.push(CodecKind::Opus);
    }
    for codec in codecs {
        let t0 = Instant::now();
        let mut p = sdes_pair(t0, codec, SrtpProfile::AesCm128HmacSha1_80);
        p.run(Duration::from_millis(100));
        p.b.s.send_dtmf("*0A");
        p.run(Duration::from_secs(2));
        assert_eq!(p.a.dtmf(), "*0A", "{codec:?}: {:?}", p.a.events);
        assert_eq!(p.b.dtmf(), "", "{codec:?}");
        assert_eq!(p.a.stats().rx_unknown_pt, 0, "{codec:?}");
    }
}

#[test]
fn dtmf_ignores_non_digits() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.a.s.send_dtmf("1x*");
    assert_eq!(p.a.stats().dtmf_sent, 2);
    p.run(Duration::from_secs(1));
    assert_eq!(p.b.dtmf(), "1*");
}

// ---------------------------------------------------------------------------------------
// (6) peer silence
// ---------------------------------------------------------------------------------------

#[test]
fn peer_silent_exactly_at_the_limit() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.a.s.set_silence_limit(Duration::from_secs(2));
    p.run(Duration::from_secs(1));
    assert!(p.a.silent_at().is_empty());
    // B vanishes: no RTP, no RTCP. Its last packet reached A at tick 49 (0.98 s).
    p.b.talking = false;
    p.b.connected = false;
    let last_heard = FRAME * 49;
    p.run(Duration::from_millis(1980));
    assert!(p.a.silent_at().is_empty(), "early: {:?}", p.a.silent_at());
    assert!(p.a.s.poll_timeout().unwrap() <= t0 + last_heard + Duration::from_secs(2));
    p.run(Duration::from_millis(20));
    assert_eq!(p.a.silent_at(), [last_heard + Duration::from_secs(2)]);
    // Once per limit while the silence lasts.
    p.run(Duration::from_secs(2));
    assert_eq!(
        p.a.silent_at(),
        [
            last_heard + Duration::from_secs(2),
            last_heard + Duration::from_secs(4)
        ]
    );
    // B, still hearing A, never reports silence.
    assert!(p.b.silent_at().is_empty());
}

#[test]
fn malformed_datagrams_do_not_keep_a_vanished_peer_alive() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.a.s.set_silence_limit(Duration::from_secs(2));
    p.run(Duration::from_secs(1));
    p.b.talking = false;
    p.b.connected = false;
    let last_heard = FRAME * 49;
    // Every 100 ms a stray datagram from B's address: truncated RTCP, truncated RTP.
    for i in 0..150 {
        if i % 5 == 0 {
            let now = p.now();
            let junk: &[u8] = if i % 10 == 0 {
                &[0x80, 200, 0x00, 0x64]
            } else {
                &[0x80, 0x00, 0x12]
            };
            p.a.s.handle_datagram(now, p.b.addr, junk);
        }
        p.tick();
    }
    assert_eq!(
        p.a.silent_at().first(),
        Some(&(last_heard + Duration::from_secs(2)))
    );
}

#[test]
fn rtcp_alone_keeps_the_peer_alive() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.a.s.set_silence_limit(Duration::from_secs(10));
    // B is on hold (sends no RTP) but its RTCP still arrives.
    p.b.talking = false;
    p.run(Duration::from_secs(30));
    assert_eq!(p.a.stats().rx_packets, 0);
    assert!(p.b.sent.iter().filter(|o| o.rtcp).count() >= 3);
    assert!(p.a.silent_at().is_empty(), "{:?}", p.a.silent_at());
}

// ---------------------------------------------------------------------------------------
// (7) hold
// ---------------------------------------------------------------------------------------

#[test]
fn hold_and_resume_via_reoffer() {
    let t0 = Instant::now();
    let la = local(A_ADDR, CodecKind::Pcmu, SrtpMode::Sdes, None, 1);
    let lb = local(B_ADDR, CodecKind::Pcmu, SrtpMode::Sdes, None, 2);
    let offer = create_offer(&la);
    let (answer, nb) = answer_offer(offer.as_bytes(), &lb).unwrap();
    let na = read_answer(answer.as_bytes(), &la).unwrap();
    let a = MediaSession::new(config(na, 0xAAAA_0001, 1, 0, None), t0).unwrap();
    let b = MediaSession::new(config(nb.clone(), 0xBBBB_0002, 1, 0, None), t0).unwrap();
    let mut p = Pair::new(t0, a, b);
    p.run(Duration::from_secs(1));
    assert_eq!((p.a.stats().tx_packets, p.b.stats().tx_packets), (50, 50));

    // A puts B on hold: re-offer sendonly; B answers recvonly.
    let hold = with_direction(&offer, Direction::SendOnly, None).unwrap();
    let (_, nb_hold) = answer_offer(hold.as_bytes(), &lb).unwrap();
    assert_eq!(nb_hold.direction, Direction::RecvOnly);
    assert_eq!(nb_hold.keying, nb.keying, "hold keeps the keys");
    p.a.s.set_direction(Direction::SendOnly);
    p.b.s.set_direction(nb_hold.direction);
    p.run(Duration::from_secs(1));
    assert_eq!(
        p.a.stats().tx_packets,
        100,
        "A keeps sending (music on hold)"
    );
    assert_eq!(p.b.stats().tx_packets, 50, "B sends nothing while held");
    assert_eq!(p.b.stats().rx_packets, 100);
    assert_eq!(p.a.stats().rx_packets, 50);

    // Resume.
    let resume = with_direction(&hold, Direction::SendRecv, None).unwrap();
    let (_, nb_resume) = answer_offer(resume.as_bytes(), &lb).unwrap();
    assert_eq!(nb_resume.direction, Direction::SendRecv);
    p.a.s.set_direction(Direction::SendRecv);
    p.b.s.set_direction(nb_resume.direction);
    let before = p.a.played.len();
    p.run(Duration::from_secs(1));
    assert_eq!((p.a.stats().tx_packets, p.b.stats().tx_packets), (150, 100));
    assert_eq!(p.a.stats().rx_packets, 100);
    assert_hears(
        &p.a.played[before..],
        8000,
        B_TONE,
        A_TONE,
        "A hears B after resume",
    );
    // RTP sequence numbers continue across the hold (RFC 3550: no reset).
    let seqs: Vec<u16> =
        p.b.sent
            .iter()
            .filter(|o| !o.rtcp)
            .map(|o| u16::from_be_bytes([o.data[2], o.data[3]]))
            .collect();
    assert_eq!(seqs.len(), 100);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
}

#[test]
fn inactive_sends_nothing_either_way() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.run(Duration::from_millis(200));
    p.a.s.set_direction(Direction::Inactive);
    p.b.s.set_direction(Direction::Inactive);
    p.run(Duration::from_secs(1));
    assert_eq!((p.a.stats().tx_packets, p.b.stats().tx_packets), (10, 10));
    // DTMF is not sent while the stream is not ours to send.
    p.a.s.send_dtmf("1");
    p.run(Duration::from_secs(1));
    assert_eq!(p.b.dtmf(), "");
}

// ---------------------------------------------------------------------------------------
// loss and peer restarts
// ---------------------------------------------------------------------------------------

#[test]
fn lost_packets_are_counted_and_concealed() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    for i in 0..50 {
        // Every tenth of A's packets is lost (5 of 50, never the last one).
        p.a.connected = i % 10 != 5;
        p.tick();
    }
    let s = p.b.stats();
    assert_eq!(s.rx_packets, 45);
    assert_eq!(s.rx_lost, 5);
    assert!(s.concealed_ms >= 5 * 20, "concealed {} ms", s.concealed_ms);
    assert_eq!(p.a.stats().tx_packets, 50);
}

#[test]
fn peer_restarting_with_new_ssrc_seq_and_ts_is_heard() {
    let t0 = Instant::now();
    let mut p = plain_pair(t0, CodecKind::Pcmu);
    p.run(Duration::from_secs(1));
    // B's media restarts (e.g. an SBC or PBX switched legs): new SSRC, sequence, timestamp.
    let nb = p.b.s.negotiated().clone();
    let now = p.now();
    p.b.s = MediaSession::new(config(nb, 0x3333_3333, 7, 0x8000_0000, None), now).unwrap();
    let before = p.a.played.len();
    p.run(Duration::from_secs(1));
    assert_eq!(p.a.stats().rx_packets, 100);
    assert_hears(
        &p.a.played[before..],
        8000,
        B_TONE,
        A_TONE,
        "A hears restarted B",
    );
}

// ---------------------------------------------------------------------------------------
// no rtcp-mux
// ---------------------------------------------------------------------------------------

/// Offer/answer where the offer (and so the answer) has no `a=rtcp-mux`.
fn negotiate_no_mux(offerer: &LocalMedia, answerer: &LocalMedia) -> (Negotiated, Negotiated) {
    let offer = create_offer(offerer).replace("a=rtcp-mux\r\n", "");
    let (answer, n_answerer) = answer_offer(offer.as_bytes(), answerer).unwrap();
    assert!(!answer.contains("rtcp-mux"), "{answer}");
    let n_offerer = read_answer(answer.as_bytes(), offerer).unwrap();
    assert!(!n_offerer.rtcp_mux && !n_answerer.rtcp_mux);
    (n_offerer, n_answerer)
}

#[test]
fn sdes_without_rtcp_mux_reports_on_the_rtcp_port() {
    let t0 = Instant::now();
    let la = local(A_ADDR, CodecKind::Pcmu, SrtpMode::Sdes, None, 1);
    let lb = local(B_ADDR, CodecKind::Pcmu, SrtpMode::Sdes, None, 2);
    let (na, nb) = negotiate_no_mux(&la, &lb);
    assert_eq!(na.remote_rtcp, addr("198.51.100.20:50001"));
    assert_eq!(nb.remote_rtcp, addr("192.0.2.10:40001"));
    let a = MediaSession::new(config(na, 0x5555_0001, 1, 0, None), t0).unwrap();
    let b = MediaSession::new(config(nb, 0x5555_0002, 1, 0, None), t0).unwrap();
    let mut p = Pair::new(t0, a, b);
    p.run(Duration::from_secs(15));
    assert!(p.a.sent.iter().filter(|o| o.rtcp).count() >= 2);
    assert!(p.b.sent.iter().filter(|o| o.rtcp).count() >= 2);
    for s in [p.a.stats(), p.b.stats()] {
        assert_eq!((s.rx_packets, s.tx_packets), (750, 750));
        assert_eq!((s.rx_unauthenticated, s.rx_malformed), (0, 0));
        assert!(s.rtt_ms.is_some(), "SRTCP reports arrived: {s:?}");
    }
}

#[test]
fn dtls_without_rtcp_mux_runs_a_second_association_for_rtcp() {
    let t0 = Instant::now();
    let ca = DtlsCertificate::generate().unwrap();
    let cb = DtlsCertificate::generate().unwrap();
    let lb = local(
        B_ADDR,
        CodecKind::Pcmu,
        SrtpMode::Dtls,
        Some(cb.fingerprint_sha256()),
        2,
    );
    let la = local(
        A_ADDR,
        CodecKind::Pcmu,
        SrtpMode::Dtls,
        Some(ca.fingerprint_sha256()),
        1,
    );
    let (nb, na) = negotiate_no_mux(&lb, &la);
    let a = MediaSession::new(config(na, 0x6666_0001, 1, 0, Some(ca)), t0).unwrap();
    let b = MediaSession::new(config(nb, 0x6666_0002, 1, 0, Some(cb)), t0).unwrap();
    let mut p = Pair::new(t0, a, b);
    p.handshake(Duration::from_secs(2));
    assert!(p.a.s.is_secured() && p.b.s.is_secured());
    // Secured once (the RTP component), and the RTCP component shook hands on its port.
    assert_eq!(p.a.secured_suites().len(), 1);
    assert_eq!(p.b.secured_suites().len(), 1);
    assert!(
        p.a.sent.iter().any(|o| o.rtcp && o.data[0] == 22),
        "client DTLS on RTCP port"
    );
    assert!(
        p.b.sent.iter().any(|o| o.rtcp && o.data[0] == 22),
        "server DTLS on RTCP port"
    );
    p.run(Duration::from_secs(15));
    for s in [p.a.stats(), p.b.stats()] {
        assert_eq!((s.rx_packets, s.tx_packets), (750, 750));
        assert_eq!((s.rx_unauthenticated, s.rx_malformed), (0, 0), "{s:?}");
        assert!(
            s.rtt_ms.is_some(),
            "SRTCP with the RTCP component's keys: {s:?}"
        );
    }
    assert_eq!(p.a.keying_failures() + p.b.keying_failures(), 0);
}

// ---------------------------------------------------------------------------------------
// reordering, BYE, comfort noise
// ---------------------------------------------------------------------------------------

#[test]
fn srtp_reordered_packets_are_all_accepted() {
    for profile in [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AeadAes128Gcm] {
        let t0 = Instant::now();
        let mut p = sdes_pair(t0, CodecKind::Pcmu, profile);
        p.a.connected = false;
        p.b.talking = false;
        let mut held: Option<Outgoing> = None;
        for _ in 0..50 {
            let before = p.a.sent.len();
            p.tick();
            let now = p.now();
            let fresh: Vec<Outgoing> = p.a.sent[before..]
                .iter()
                .filter(|o| !o.rtcp)
                .cloned()
                .collect();
            // Swap every pair: packet 2k+1 arrives before packet 2k.
            for o in fresh {
                match held.take() {
                    None => held = Some(o),
                    Some(h) => {
                        p.b.s.handle_datagram(now, p.a.addr, &o.data);
                        p.b.s.handle_datagram(now, p.a.addr, &h.data);
                    }
                }
            }
        }
        let s = p.b.stats();
        assert_eq!(s.rx_packets, 50, "{profile:?}");
        assert_eq!(s.rx_unauthenticated, 0, "{profile:?}");
        assert_eq!(s.rx_lost, 0, "{profile:?}");
    }
}

#[test]
fn rtcp_bye_reaches_the_peer() {
    for profile in [None, Some(SrtpProfile::AesCm128HmacSha1_80)] {
        let t0 = Instant::now();
        let mut p = match profile {
            None => plain_pair(t0, CodecKind::Pcmu),
            Some(pr) => sdes_pair(t0, CodecKind::Pcmu, pr),
        };
        p.run(Duration::from_millis(500));
        let now = p.now();
        p.a.s.bye(now);
        p.pump(now);
        let byes =
            p.b.events
                .iter()
                .filter(|(_, e)| *e == MediaEvent::Bye)
                .count();
        assert_eq!(byes, 1, "{profile:?}: {:?}", p.b.events);
        assert_eq!(p.b.stats().rx_unauthenticated, 0);
        assert!(!p.a.events.iter().any(|(_, e)| *e == MediaEvent::Bye));
    }
}

#[test]
fn comfort_noise_from_an_asterisk_style_peer_is_played_not_refused() {
    // Asterisk offers CN (PT 13); B takes PCMU and learns the CN PT.
    let offer = "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=Asterisk\r\nc=IN IP4 203.0.113.5\r\n\
                 t=0 0\r\nm=audio 17450 RTP/AVP 0 13 101\r\na=rtpmap:0 PCMU/8000\r\n\
                 a=rtpmap:13 CN/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let lb = local(B_ADDR, CodecKind::Pcmu, SrtpMode::Off, None, 2);
    let (_, nb) = answer_offer(offer.as_bytes(), &lb).unwrap();
    assert_eq!(nb.cn_pt, Some(13));
    let t0 = Instant::now();
    let mut b = MediaSession::new(config(nb, 0x4444_0002, 1, 0, None), t0).unwrap();
    let from = addr("203.0.113.5:17450");
    let mut tone = ToneGenerator::new(A_TONE, 8000, AMPLITUDE);
    let mut enc = natter_media::new_encoder(&natter_media::CodecParams {
        kind: CodecKind::Pcmu,
        ptime_ms: 20,
        opus_fec: false,
        opus_dtx: false,
        opus_bitrate: None,
    })
    .unwrap();
    let mut played = Vec::new();
    let ssrc = 0x0bad_cafe;
    // One sequence number per packet sent (RFC 3550): SIDs follow speech without gaps.
    let mut seq = 0u16;
    for i in 0..100u32 {
        let now = t0 + FRAME * i;
        let ts = 160 * i;
        if i < 25 {
            // 0.5 s of speech...
            let mut pcm = vec![0i16; 160];
            tone.fill(&mut pcm);
            let mut payload = Vec::new();
            enc.encode(&pcm, &mut payload).unwrap();
            b.handle_datagram(now, from, &rtp(0, seq, ts, ssrc, &payload));
            seq += 1;
        } else if i % 10 == 5 {
            // ...then a SID at -50 dBov every 200 ms (Asterisk's rate).
            b.handle_datagram(now, from, &rtp(13, seq, ts, ssrc, &[50]));
            seq += 1;
        }
        b.play(now, &mut played);
    }
    let s = b.stats();
    assert_eq!(s.rx_packets, 25);
    assert_eq!((s.rx_unknown_pt, s.rx_malformed), (0, 0));
    // The last second is comfort noise near -50 dBov: not silence, not the tone.
    let tail = &played[played.len() - 8000..];
    let level = natter_media::rms_dbov(tail);
    assert!(
        (-56.0..=-44.0).contains(&level),
        "comfort noise level {level:.1} dBov"
    );
    let full = f64::from(AMPLITUDE) * f64::from(AMPLITUDE) / 2.0;
    assert!(goertzel_power(tail, 8000, A_TONE) < full / 1000.0);
    // And it is not counted as loss.
    assert_eq!(s.rx_lost, 0);
}
