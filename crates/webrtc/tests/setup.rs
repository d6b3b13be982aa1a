//! How many half round trips setup takes, in virtual time that never advances: once ICE
//! is up, DTLS, SCTP and DCEP must reach an open channel (and a first echo) on packets
//! alone, with no retransmission or fallback timer firing. Guards against a flight that
//! is dropped or held (it would cost a timer: 500 ms for DTLS, 1 s for SCTP) and against
//! round trips creeping in.

use std::time::Instant;

use natter_dtls::DtlsCertificate;
use natter_webrtc::dcep::ChannelType;
use natter_webrtc::{Config, DtlsImpl, PcEvent, PeerConnection};

fn pc(dtls: DtlsImpl, echo: bool, seed: u64, ufrag: &str, now: Instant) -> PeerConnection {
    let cert = DtlsCertificate::generate().expect("certificate");
    let cfg = Config {
        data: true,
        echo,
        seed,
        dtls,
        ..Config::default()
    };
    let mut p = PeerConnection::new(cfg, cert, now);
    p.set_local_ice(ufrag, "abcdefghijklmnopqrstuv");
    p
}

/// What one side sent in one half round trip.
#[derive(Debug, Default)]
struct Flight {
    datagrams: usize,
}

/// Delivers everything `from` has queued to `to`; returns what moved.
fn deliver(from: &mut PeerConnection, to: &mut PeerConnection, now: Instant) -> Flight {
    let mut f = Flight::default();
    let queued: Vec<Vec<u8>> = std::iter::from_fn(|| from.poll_transmit()).collect();
    for d in queued {
        f.datagrams += 1;
        to.handle_datagram(&d, now);
    }
    f
}

fn events(p: &mut PeerConnection, into: &mut Vec<PcEvent>) {
    into.extend(std::iter::from_fn(|| p.poll_event()));
}

/// When ICE selects a pair on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ice {
    /// Both sides at once.
    Together,
    /// The answerer (ICE-controlled, DTLS client) first: its check succeeded before the
    /// offerer's did, so its ClientHello reaches the offerer (DTLS server) while the
    /// offerer has no pair yet. Whatever the server sends then is dropped, as natter's
    /// driver must (no pair to send on); the server's pair comes right after.
    ClientFirst,
}

/// Offer from `a` (with a channel, like `natter webrtc --role offer`), answer from `b`
/// (an echo peer, DTLS client); the owners run their due timers at the same instant, as
/// natter's loop does right after signaling; then ICE comes up as `ice` says. Returns the
/// half round trips until the channel is open on both sides and until `a` has its first
/// echo.
fn setup(a_dtls: DtlsImpl, b_dtls: DtlsImpl, ice: Ice) -> (usize, usize) {
    let now = Instant::now();
    let mut a = pc(a_dtls, false, 1, "aaaa", now);
    let mut b = pc(b_dtls, true, 2, "bbbb", now);
    a.create_channel("c", ChannelType::RELIABLE);
    let offer = a.create_offer().expect("offer");
    let answer = b.accept_offer(&offer, now).expect("answer");
    a.accept_answer(&answer, now).expect("apply answer");
    // The DTLS associations are made on the first timer, before ICE has a pair; the
    // client's ClientHello waits for the pair instead of being lost.
    for p in [&mut a, &mut b] {
        assert!(
            p.poll_timeout().is_some_and(|t| t <= now),
            "DTLS is due at once"
        );
        p.handle_timeout(now);
    }
    assert!(b.poll_transmit().is_none(), "no DTLS before ICE has a pair");
    assert!(a.poll_transmit().is_none(), "the server waits");
    b.transport_connected(now);
    if ice == Ice::Together {
        a.transport_connected(now);
    }
    let (mut ev_a, mut ev_b) = (Vec::new(), Vec::new());
    let (mut open_at, mut echo_at) = (None, None);
    let mut sent = false;
    for half in 1..=40 {
        // Odd halves: b (client) to a; even: a to b. Time never moves.
        let f = if half % 2 == 1 {
            deliver(&mut b, &mut a, now)
        } else {
            deliver(&mut a, &mut b, now)
        };
        if ice == Ice::ClientFirst && half == 1 {
            let lost = std::iter::from_fn(|| a.poll_transmit()).count();
            assert_eq!(lost, 0, "the server sent before ICE had a pair: lost");
            a.transport_connected(now);
        }
        events(&mut a, &mut ev_a);
        events(&mut b, &mut ev_b);
        let open = |v: &[PcEvent]| v.iter().any(|e| matches!(e, PcEvent::ChannelOpen { .. }));
        if open_at.is_none() && open(&ev_a) && open(&ev_b) {
            open_at = Some(half);
        }
        if open(&ev_a) && !sent {
            let id = a.channel_id("c").expect("channel");
            a.send(id, true, b"ping", now).expect("send");
            sent = true;
        }
        if ev_a
            .iter()
            .any(|e| matches!(e, PcEvent::Message { data, .. } if data == b"echo:ping"))
        {
            echo_at = Some(half);
            break;
        }
        assert!(
            f.datagrams > 0 || half == 1,
            "stalled at half {half}: a {a:?} b {b:?}"
        );
    }
    (
        open_at.expect("channel opened without a timer"),
        echo_at.expect("echo arrived without a timer"),
    )
}

#[test]
fn dtls13_setup_needs_no_timer_and_few_round_trips() {
    // ClientHello; ServerHello..Finished; client Finished + SCTP INIT; INIT-ACK (and the
    // server's INIT); COOKIE-ECHO; COOKIE-ACK + DCEP OPEN; ACK -> open on both; then the
    // message and its echo.
    let (open, echo) = setup(DtlsImpl::Dimpl, DtlsImpl::Dimpl, Ice::Together);
    assert_eq!(
        (open, echo),
        (7, 9),
        "half round trips to open / to first echo"
    );
}

#[test]
fn dtls12_setup_needs_no_timer_and_few_round_trips() {
    let (open, echo) = setup(DtlsImpl::OpenSsl, DtlsImpl::OpenSsl, Ice::Together);
    assert_eq!(
        (open, echo),
        (9, 11),
        "half round trips to open / to first echo"
    );
}

/// The stall `bench/webrtc` showed (setup 1035 ms with OpenSSL, 408 ms with dimpl): the
/// ICE-controlled answerer selects its pair first and sends its ClientHello; the offerer
/// answers before its own pair exists, and that flight used to be lost until the
/// client's retransmission timer fired. Held until the pair is there, it costs nothing.
#[test]
fn server_flight_before_its_ice_pair_is_held_not_lost() {
    for (dtls, want) in [(DtlsImpl::Dimpl, (7, 9)), (DtlsImpl::OpenSsl, (9, 11))] {
        assert_eq!(
            setup(dtls, dtls, Ice::ClientFirst),
            want,
            "{dtls:?}: half round trips to open / to first echo"
        );
    }
}
