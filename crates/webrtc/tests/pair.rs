//! Two natter PeerConnections back to back in memory, in virtual time: offer/answer,
//! DTLS, SCTP, DCEP and data channels, without sockets.

use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_webrtc::dcep::{ChannelType, Reliability};
use natter_webrtc::{Config, DtlsImpl, PcEvent, PeerConnection};

struct Pair {
    a: PeerConnection,
    b: PeerConnection,
    now: Instant,
    ev_a: Vec<PcEvent>,
    ev_b: Vec<PcEvent>,
}

fn pc(cfg: Config, ufrag: &str) -> PeerConnection {
    let cert = DtlsCertificate::generate().expect("certificate");
    let mut p = PeerConnection::new(cfg, cert, Instant::now());
    p.set_local_ice(ufrag, "abcdefghijklmnopqrstuv");
    p
}

impl Pair {
    /// `a` offers, `b` answers; both sides' ICE is "connected" at once.
    fn new(a_cfg: Config, b_cfg: Config) -> Pair {
        let now = Instant::now();
        let mut a = pc(a_cfg, "aaaa");
        let mut b = pc(b_cfg, "bbbb");
        let offer = a.create_offer().expect("offer");
        let answer = b.accept_offer(&offer, now).expect("answer");
        a.accept_answer(&answer, now).expect("apply answer");
        a.transport_connected(now);
        b.transport_connected(now);
        Pair {
            a,
            b,
            now,
            ev_a: Vec::new(),
            ev_b: Vec::new(),
        }
    }

    /// Delivers everything in flight once (a->b datagrams pass `lose` first); when
    /// nothing was in flight, advances virtual time to the next timer. Returns whether
    /// anything moved.
    fn step(&mut self, lose: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        let mut moved = false;
        while let Some(d) = self.a.poll_transmit() {
            moved = true;
            if !lose(&d) {
                self.b.handle_datagram(&d, self.now);
            }
        }
        while let Some(d) = self.b.poll_transmit() {
            moved = true;
            self.a.handle_datagram(&d, self.now);
        }
        while let Some(e) = self.a.poll_event() {
            moved = true;
            self.ev_a.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            moved = true;
            self.ev_b.push(e);
        }
        if !moved {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(self.now + Duration::from_millis(10));
            self.now = next.max(self.now + Duration::from_micros(50));
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
        }
        moved
    }

    /// Steps until `done` holds (bounded).
    fn run(&mut self, mut done: impl FnMut(&Pair) -> bool, mut lose: impl FnMut(&[u8]) -> bool) {
        for _ in 0..2_000_000 {
            if done(self) {
                return;
            }
            self.step(&mut lose);
        }
        let count = |v: &[PcEvent]| {
            v.iter()
                .filter(|e| matches!(e, PcEvent::Message { .. }))
                .count()
        };
        panic!(
            "pair did not finish: a {:?} b {:?}, messages at a {} at b {}",
            self.a,
            self.b,
            count(&self.ev_a),
            count(&self.ev_b)
        );
    }

    /// Steps `n` times.
    fn steps(&mut self, n: usize, mut lose: impl FnMut(&[u8]) -> bool) {
        for _ in 0..n {
            self.step(&mut lose);
        }
    }

    fn open_channel(&mut self, label: &str, ct: ChannelType) -> (u16, u16) {
        self.a.create_channel(label, ct);
        let l = label.to_owned();
        self.run(
            |p| {
                p.ev_a
                    .iter()
                    .any(|e| matches!(e, PcEvent::ChannelOpen { label, .. } if *label == l))
                    && p.ev_b
                        .iter()
                        .any(|e| matches!(e, PcEvent::ChannelOpen { label, .. } if *label == l))
            },
            |_| false,
        );
        let id_a = self.a.channel_id(label).expect("a has the channel");
        let id_b = self
            .ev_b
            .iter()
            .find_map(|e| match e {
                PcEvent::ChannelOpen { id, label } if label == &l => Some(*id),
                _ => None,
            })
            .expect("b saw it open");
        (id_a, id_b)
    }
}

fn data_cfg(echo: bool, seed: u64) -> Config {
    Config {
        audio: false,
        video: false,
        data: true,
        echo,
        seed,
        dtls: Default::default(),
        capture_audio: false,
    }
}

fn msg(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| b'a' + ((i * 7 + k) % 26) as u8).collect()
}

fn connected_versions(a: DtlsImpl, b: DtlsImpl) -> (String, String) {
    let mut p = Pair::new(
        Config {
            dtls: a,
            ..data_cfg(false, 1)
        },
        Config {
            dtls: b,
            ..data_cfg(false, 2)
        },
    );
    p.run(
        |p| {
            p.ev_a
                .iter()
                .any(|e| matches!(e, PcEvent::Connected { .. }))
                && p.ev_b
                    .iter()
                    .any(|e| matches!(e, PcEvent::Connected { .. }))
        },
        |_| false,
    );
    let version = |v: &[PcEvent]| match v.first() {
        Some(PcEvent::Connected { dtls, srtp }) => {
            assert!(srtp.is_some(), "SRTP keyed");
            dtls.clone()
        }
        other => panic!("first event is not Connected: {other:?}"),
    };
    (version(&p.ev_a), version(&p.ev_b))
}

#[test]
fn dtls_13_with_dimpl_12_with_openssl_and_mixed() {
    let v = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        connected_versions(DtlsImpl::Dimpl, DtlsImpl::Dimpl),
        v("1.3", "1.3")
    );
    assert_eq!(
        connected_versions(DtlsImpl::OpenSsl, DtlsImpl::OpenSsl),
        v("1.2", "1.2")
    );
    // dimpl client (answerer) offering 1.3+1.2 to an OpenSSL 3.0 server, and the reverse.
    assert_eq!(
        connected_versions(DtlsImpl::OpenSsl, DtlsImpl::Dimpl),
        v("1.2", "1.2")
    );
    assert_eq!(
        connected_versions(DtlsImpl::Dimpl, DtlsImpl::OpenSsl),
        v("1.2", "1.2")
    );
}

#[test]
fn openssl_engine_carries_data_channels() {
    let cfg = |echo, seed| Config {
        dtls: DtlsImpl::OpenSsl,
        ..data_cfg(echo, seed)
    };
    let mut p = Pair::new(cfg(false, 11), cfg(true, 12));
    let (ia, _) = p.open_channel("bar", ChannelType::RELIABLE);
    p.a.send(ia, true, &msg(1, 100_000), p.now).expect("send");
    p.run(
        |p| p.ev_a.iter().any(|e| matches!(e, PcEvent::Message { .. })),
        |_| false,
    );
    let mut want = b"echo:".to_vec();
    want.extend(msg(1, 100_000));
    assert!(p
        .ev_a
        .iter()
        .any(|e| matches!(e, PcEvent::Message { data, .. } if *data == want)));
}

#[test]
fn thousand_messages_up_to_256k_both_ways_in_order() {
    let mut p = Pair::new(data_cfg(false, 3), data_cfg(false, 4));
    let (ia, ib) = p.open_channel("bulk", ChannelType::RELIABLE);
    assert_eq!(ia, ib, "same stream id on both sides");
    assert_eq!(
        ia % 2,
        1,
        "the offerer is the DTLS server (the answerer is active): odd id"
    );
    let n = 1000;
    let size = |i: usize| match i % 10 {
        0 => 256 * 1024,
        1 => 65536,
        2 => 1,
        3 => 1199,
        _ => 1 + (i * 37) % 5000,
    };
    for i in 0..n {
        p.a.send(ia, false, &msg(i, size(i)), p.now)
            .expect("send a");
        p.b.send(ib, true, &msg(i, size(i)), p.now).expect("send b");
    }
    let count = |v: &[PcEvent]| {
        v.iter()
            .filter(|e| matches!(e, PcEvent::Message { .. }))
            .count()
    };
    p.run(|p| count(&p.ev_a) == n && count(&p.ev_b) == n, |_| false);
    let got = |v: &[PcEvent]| -> Vec<(bool, Vec<u8>)> {
        v.iter()
            .filter_map(|e| match e {
                PcEvent::Message { text, data, .. } => Some((*text, data.clone())),
                _ => None,
            })
            .collect()
    };
    let (at_a, at_b) = (got(&p.ev_a), got(&p.ev_b));
    for i in 0..n {
        assert!(
            at_b[i] == (false, msg(i, size(i))),
            "a->b message {i} differs"
        );
        assert!(
            at_a[i] == (true, msg(i, size(i))),
            "b->a message {i} differs"
        );
    }
}

#[test]
fn echo_answers_text_with_prefix() {
    let mut p = Pair::new(data_cfg(false, 5), data_cfg(true, 6));
    let (ia, _) = p.open_channel("bar", ChannelType::RELIABLE);
    for i in 0..20 {
        p.a.send(ia, true, format!("m{i}").as_bytes(), p.now)
            .expect("send");
    }
    p.a.send(ia, true, b"", p.now).expect("empty string");
    p.run(
        |p| {
            p.ev_a
                .iter()
                .filter(|e| matches!(e, PcEvent::Message { .. }))
                .count()
                == 21
        },
        |_| false,
    );
    let got: Vec<Vec<u8>> = p
        .ev_a
        .iter()
        .filter_map(|e| match e {
            PcEvent::Message { data, label, .. } if label == "bar" => Some(data.clone()),
            _ => None,
        })
        .collect();
    let mut want: Vec<Vec<u8>> = (0..20).map(|i| format!("echo:m{i}").into_bytes()).collect();
    want.push(b"echo:".to_vec());
    assert_eq!(got, want);
}

#[test]
fn unordered_no_retransmit_channel_delivers_and_drops_lost() {
    let ct = ChannelType {
        ordered: false,
        reliability: Reliability::MaxRetransmits(0),
    };
    let mut p = Pair::new(data_cfg(false, 7), data_cfg(false, 8));
    let (ia, _) = p.open_channel("lossy", ct);
    // Lose every 5th DTLS record a->b from now on; give each message time to settle.
    let mut n = 0u32;
    for i in 0..100u32 {
        p.a.send(ia, false, &i.to_be_bytes(), p.now).expect("send");
        p.steps(4, |d| {
            // Application data records: content type 23 (DTLS 1.2) or the DTLS 1.3
            // unified header (0b001xxxxx).
            if matches!(d.first(), Some(23 | 0x20..=0x3f)) {
                n += 1;
                n % 5 == 0
            } else {
                false
            }
        });
    }
    p.steps(200, |_| false);
    let got: Vec<u32> = p
        .ev_b
        .iter()
        .filter_map(|e| match e {
            PcEvent::Message { data, .. } => {
                data.as_slice().try_into().ok().map(u32::from_be_bytes)
            }
            _ => None,
        })
        .collect();
    assert!(
        got.len() >= 70 && got.len() < 100,
        "some lost, most delivered: {}",
        got.len()
    );
    let mut dedup = got.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "no duplicates");
    // The channel still works after losses.
    p.a.send(ia, false, b"after", p.now).expect("send");
    p.run(
        |p| {
            p.ev_b
                .iter()
                .any(|e| matches!(e, PcEvent::Message { data, .. } if data == b"after"))
        },
        |_| false,
    );
}

/// The m-lines of a description as (kind, mid), in order.
fn mlines(sdp: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for l in sdp.lines() {
        if let Some(m) = l.strip_prefix("m=") {
            out.push((m.split(' ').next().unwrap_or("").to_owned(), String::new()));
        } else if let Some(mid) = l.strip_prefix("a=mid:") {
            if let Some(last) = out.last_mut() {
                last.1 = mid.to_owned();
            }
        }
    }
    out
}

fn attr<'a>(sdp: &'a str, name: &str) -> Vec<&'a str> {
    sdp.lines().filter_map(|l| l.strip_prefix(name)).collect()
}

fn connected_count(v: &[PcEvent]) -> usize {
    v.iter()
        .filter(|e| matches!(e, PcEvent::Connected { .. }))
        .count()
}

/// Sends `text` from a to b on a's channel `id` and waits for b's echo.
fn echo_round(p: &mut Pair, id: u16, text: &str) {
    let want = format!("echo:{text}").into_bytes();
    p.a.send(id, true, text.as_bytes(), p.now).expect("send");
    p.run(
        |p| {
            p.ev_a
                .iter()
                .any(|e| matches!(e, PcEvent::Message { data, .. } if *data == want))
        },
        |_| false,
    );
}

/// JSEP §5.2.2/§5.3.2: an audio-only session gets a data channel by a second offer (the
/// audio m-line keeps its place and mid 0, data is appended as mid 1), then the offerer
/// restarts ICE: new ufrag/pwd both ways, the same DTLS association and SCTP channel.
#[test]
fn renegotiation_adds_data_to_audio_then_ice_restart_keeps_dtls() {
    let audio = |seed| Config {
        audio: true,
        data: false,
        ..data_cfg(true, seed)
    };
    let mut p = Pair::new(
        audio(11),
        Config {
            data: true,
            ..audio(12)
        },
    );
    p.run(
        |p| connected_count(&p.ev_a) == 1 && connected_count(&p.ev_b) == 1,
        |_| false,
    );
    assert!(p.a.audio_ready() && p.b.audio_ready());
    assert!(p.b.is_stable() && p.a.is_stable());

    // A second offer from a: same ICE credentials and fingerprint, data appended.
    p.a.add_media(false, true);
    let offer2 = p.a.create_offer().expect("re-offer");
    assert_eq!(
        mlines(&offer2),
        vec![
            ("audio".into(), "0".into()),
            ("application".into(), "1".into())
        ]
    );
    assert_eq!(attr(&offer2, "a=ice-ufrag:")[0], "aaaa");
    assert!(
        attr(&offer2, "a=setup:").iter().all(|s| *s == "passive"),
        "a stays DTLS server"
    );
    assert!(!p.b.offer_restarts_ice(&offer2));
    let answer2 = p.b.accept_offer(&offer2, p.now).expect("re-answer");
    assert_eq!(mlines(&answer2), mlines(&offer2));
    assert!(attr(&answer2, "a=setup:").iter().all(|s| *s == "active"));
    assert!(
        answer2.contains("o=- ") && !answer2.contains(" 2 IN IP4"),
        "session version grew"
    );
    p.a.accept_answer(&answer2, p.now).expect("apply re-answer");
    let (ia, _) = p.open_channel("late", ChannelType::RELIABLE);
    echo_round(&mut p, ia, "after renegotiation");

    // ICE restart: new credentials in a's offer; b answers with new ones of its own.
    p.a.set_local_ice("cccc", "ccccccccccccccccccccccc");
    let offer3 = p.a.create_offer().expect("restart offer");
    assert!(p.b.offer_restarts_ice(&offer3));
    p.b.set_local_ice("dddd", "ddddddddddddddddddddddd");
    let answer3 = p.b.accept_offer(&offer3, p.now).expect("restart answer");
    assert_eq!(attr(&answer3, "a=ice-ufrag:")[0], "dddd");
    assert_eq!(mlines(&answer3), mlines(&offer2));
    p.a.accept_answer(&answer3, p.now)
        .expect("apply restart answer");
    echo_round(&mut p, ia, "after ICE restart");
    assert_eq!(
        (connected_count(&p.ev_a), connected_count(&p.ev_b)),
        (1, 1),
        "one DTLS association throughout"
    );
}

/// A data-only session gets audio appended (mid 1, after the data m-line) and audio flows
/// on the running DTLS-SRTP keys; an offer that reorders m-lines is refused.
#[test]
fn renegotiation_adds_audio_to_data_and_refuses_reordering() {
    let mut p = Pair::new(
        data_cfg(false, 21),
        Config {
            audio: true,
            ..data_cfg(true, 22)
        },
    );
    let (ia, _) = p.open_channel("chat", ChannelType::RELIABLE);
    assert!(!p.a.audio_ready());
    p.a.add_media(true, false);
    let offer = p.a.create_offer().expect("re-offer");
    assert_eq!(
        mlines(&offer),
        vec![
            ("application".into(), "0".into()),
            ("audio".into(), "1".into())
        ]
    );
    let answer = p.b.accept_offer(&offer, p.now).expect("re-answer");
    p.a.accept_answer(&answer, p.now).expect("apply");
    assert!(p.a.audio_ready() && p.b.audio_ready());
    p.a.send_audio(&[0xf8, 0xff, 0xfe], 960, true, p.now);
    p.run(
        |p| {
            p.ev_b
                .iter()
                .any(|e| matches!(e, PcEvent::AudioStarted { .. }))
        },
        |_| false,
    );
    echo_round(&mut p, ia, "still here");

    // m-lines swapped: refused, the session stays as it was.
    let mut swapped = offer.clone();
    let a = swapped.find("m=application").expect("data m-line");
    let b = swapped.find("m=audio").expect("audio m-line");
    let (data, audio) = (swapped[a..b].to_owned(), swapped[b..].to_owned());
    swapped.truncate(a);
    swapped.push_str(&audio);
    swapped.push_str(&data);
    // a's offer is answered; b is stable again, so this is a fresh re-offer.
    assert!(p.b.accept_offer(&swapped, p.now).is_err());
    echo_round(&mut p, ia, "unchanged");
}

/// stats(): bytes and packets both ways, DTLS version, channel counts.
#[test]
fn stats_count_traffic_and_channels() {
    let mut p = Pair::new(data_cfg(false, 31), data_cfg(true, 32));
    let (ia, _) = p.open_channel("s", ChannelType::RELIABLE);
    echo_round(&mut p, ia, "x");
    let s = p.a.stats();
    assert_eq!(s.dtls.as_deref(), Some("1.3"));
    assert_eq!(
        (s.channels_open, s.channels_opened, s.msgs_tx, s.msgs_rx),
        (1, 1, 1, 1)
    );
    assert!(s.packets_tx > 0 && s.packets_rx > 0 && s.bytes_tx > s.packets_tx);
    let b = p.b.stats();
    assert_eq!(
        (b.packets_rx, b.bytes_rx),
        (s.packets_tx, s.bytes_tx),
        "nothing lost in memory"
    );
    assert!(s.sctp_rto_ms.is_some());
    p.a.close_channel(ia, p.now);
    assert_eq!(p.a.stats().channels_closed, 1);
}

/// What `{"cmd":"add","kind":"audio"}` makes `natter webrtc` do as the original answerer:
/// add audio and offer again (it keeps its DTLS role); the first offerer answers, audio
/// flows and the channel carries on.
#[test]
fn answerer_offers_again_adding_audio() {
    let mut p = Pair::new(
        Config {
            audio: true,
            ..data_cfg(true, 41)
        },
        data_cfg(false, 42),
    );
    let (ia, _) = p.open_channel("chat", ChannelType::RELIABLE);
    p.b.add_media(true, false);
    let offer = p.b.create_offer().expect("re-offer from the answerer");
    assert_eq!(
        mlines(&offer),
        // a offered audio first; b, without audio then, had refused it: the m-section
        // keeps its place and is taken up now.
        vec![
            ("audio".into(), "0".into()),
            ("application".into(), "1".into())
        ]
    );
    assert_eq!(
        attr(&offer, "a=setup:"),
        vec!["active", "active"],
        "b stays the DTLS client"
    );
    let answer = p.a.accept_offer(&offer, p.now).expect("re-answer");
    p.b.accept_answer(&answer, p.now).expect("apply");
    assert!(p.a.audio_ready() && p.b.audio_ready());
    p.b.send_audio(&[0xf8, 0xff, 0xfe], 960, true, p.now);
    p.run(
        |p| {
            p.ev_a
                .iter()
                .any(|e| matches!(e, PcEvent::AudioStarted { .. }))
        },
        |_| false,
    );
    // a echoes audio back (echo config): b hears it too.
    p.run(
        |p| {
            p.ev_b
                .iter()
                .any(|e| matches!(e, PcEvent::AudioStarted { .. }))
        },
        |_| false,
    );
    p.a.send(ia, true, b"still here", p.now).expect("send");
    p.run(
        |p| {
            p.ev_b
                .iter()
                .any(|e| matches!(e, PcEvent::Message { data, .. } if data == b"still here"))
        },
        |_| false,
    );
}

/// Flow control (W3C `bufferedAmountLowThreshold`): with a 64 KiB low mark, 1 MiB queued on a
/// channel raises exactly one low-mark event once acknowledgements bring what is queued to
/// 64 KiB or less, and at that point the queue really is at or below the mark; refilling above
/// the mark raises it again.
#[test]
fn buffered_amount_low_mark_fires_when_the_queue_drains_below_it() {
    let mut p = Pair::new(data_cfg(false, 21), data_cfg(false, 22));
    let (ia, _) = p.open_channel("flow", ChannelType::RELIABLE);
    let mark = 64 * 1024;
    assert!(p.a.set_buffered_amount_low_threshold(ia, mark));
    assert!(
        !p.a.set_buffered_amount_low_threshold(999, mark),
        "no such channel"
    );
    let lows = |p: &Pair| {
        p.ev_a
            .iter()
            .filter(|e| matches!(e, PcEvent::BufferedAmountLow { label, .. } if label == "flow"))
            .count()
    };
    for round in 1..=2 {
        for i in 0..16 {
            p.a.send(ia, false, &msg(i, 64 * 1024), p.now)
                .expect("send");
        }
        assert!(p.a.buffered_amount(ia) > mark, "queued above the mark");
        let before = lows(&p);
        p.run(|p| lows(p) > before, |_| false);
        let at = p.a.buffered_amount(ia);
        assert!(at <= mark, "round {round}: {at} bytes queued at the event");
        assert_eq!(lows(&p), round, "one event per crossing");
        // Drain completely: no further event without going above the mark again.
        let got = |p: &Pair| {
            p.ev_b
                .iter()
                .filter(|e| matches!(e, PcEvent::Message { label, .. } if label == "flow"))
                .count()
        };
        p.run(|p| got(p) == 16 * round, |_| false);
        p.steps(50, |_| false);
        assert_eq!(
            lows(&p),
            round,
            "round {round}: no second event while below the mark"
        );
    }
}
