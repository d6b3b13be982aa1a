//! natter <-> natter VP8 video in memory, in virtual time: both sides send the test pattern
//! (libvpx), the other assembles, decodes and compares with the source; losses are repaired
//! by NACK retransmission or, for bursts, by PLI and a fresh key frame. Needs the `vpx`
//! feature (libvpx).
#![cfg(feature = "vpx")]

use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_video::pattern::TestPattern;
use natter_webrtc::video::{VideoSink, VideoSource};
use natter_webrtc::{Config, PeerConnection};

fn pc(seed: u64, ufrag: &str) -> PeerConnection {
    let cert = DtlsCertificate::generate().expect("certificate");
    let cfg = Config {
        video: true,
        seed,
        ..Config::default()
    };
    let mut p = PeerConnection::new(cfg, cert, Instant::now());
    p.set_local_ice(ufrag, "abcdefghijklmnopqrstuv");
    p.set_video_sender(true);
    p
}

struct Side {
    pc: PeerConnection,
    src: VideoSource,
    sink: VideoSink,
    /// (PSNR of the Y plane against the source frame with the same counter, counter).
    seen: Vec<(f64, u16)>,
}

impl Side {
    fn decode(&mut self) {
        while let Some(f) = self.pc.poll_video_frame() {
            match self.sink.push(&f.data) {
                Ok(pics) => {
                    for pic in pics {
                        let n = TestPattern::read_counter(&pic);
                        let mut p = TestPattern::new(pic.width, pic.height);
                        p.frame = u64::from(n);
                        let psnr = pic.psnr_y(&p.next_frame()).unwrap_or(0.0);
                        self.seen.push((psnr, n));
                    }
                }
                Err(_) => self.pc.request_keyframe(),
            }
        }
    }
}

/// Runs `frames` frame intervals; `lose(seq)` drops an RTP packet from a to b by its
/// sequence number, counted from a's first (retransmissions carry the same number).
fn run(frames: u32, mut lose: impl FnMut(u16) -> bool) -> (Side, Side) {
    let now0 = Instant::now();
    let mut a = Side {
        pc: pc(0x1111_2222_3333_4444, "aaaa"),
        src: VideoSource::pattern(320, 240, 30).expect("source"),
        sink: VideoSink::new(None).expect("sink"),
        seen: Vec::new(),
    };
    let mut b = Side {
        pc: pc(0x5555_6666_7777_8888, "bbbb"),
        src: VideoSource::pattern(320, 240, 30).expect("source"),
        sink: VideoSink::new(None).expect("sink"),
        seen: Vec::new(),
    };
    let offer = a.pc.create_offer().expect("offer");
    assert!(offer.contains("m=video 9 UDP/TLS/RTP/SAVPF 96"));
    assert!(offer.contains("a=rtpmap:96 VP8/90000"));
    let answer = b.pc.accept_offer(&offer, now0).expect("answer");
    assert!(answer.contains("a=sendrecv"));
    assert!(answer.contains("a=rtcp-fb:96 transport-cc"));
    assert!(answer.contains(natter_video::twcc::EXTENSION_URI));
    a.pc.accept_answer(&answer, now0).expect("apply answer");
    a.pc.transport_connected(now0);
    b.pc.transport_connected(now0);
    let mut now = now0;
    let mut first_seq = None;
    let mut next_frame = None;
    let mut sent = 0;
    for _ in 0..200_000 {
        let mut moved = false;
        while let Some(d) = a.pc.poll_transmit() {
            moved = true;
            let is_rtp = d.first().is_some_and(|b| (128..=191).contains(b))
                && !matches!(d.get(1), Some(192..=223));
            if is_rtp {
                let seq = u16::from_be_bytes([d[2], d[3]]);
                let first = *first_seq.get_or_insert(seq);
                if lose(seq.wrapping_sub(first)) {
                    continue;
                }
            }
            b.pc.handle_datagram(&d, now);
        }
        while let Some(d) = b.pc.poll_transmit() {
            moved = true;
            a.pc.handle_datagram(&d, now);
        }
        while a.pc.poll_event().is_some() || b.pc.poll_event().is_some() {}
        a.decode();
        b.decode();
        if moved {
            continue;
        }
        if a.pc.video_ready() && b.pc.video_ready() {
            let due = *next_frame.get_or_insert(now);
            if due <= now {
                if sent == frames {
                    break;
                }
                for s in [&mut a, &mut b] {
                    let key = sent == 0 || s.pc.take_keyframe_request();
                    if let Some((data, ts, key)) = s.src.next_frame(key) {
                        s.pc.send_video(&data, ts, key, now);
                    }
                }
                sent += 1;
                next_frame = Some(due + Duration::from_millis(33));
                continue;
            }
        }
        let next = [a.pc.poll_timeout(), b.pc.poll_timeout(), next_frame]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_millis(10));
        now = next.max(now + Duration::from_micros(50));
        a.pc.handle_timeout(now);
        b.pc.handle_timeout(now);
    }
    assert_eq!(sent, frames, "all frames were sent");
    (a, b)
}

#[test]
fn video_both_ways_decodes_every_frame() {
    let (a, b) = run(60, |_| false);
    for (name, side) in [("a", &a), ("b", &b)] {
        assert_eq!(side.seen.len(), 60, "{name} decoded every frame");
        let counters: Vec<u16> = side.seen.iter().map(|s| s.1).collect();
        assert_eq!(counters, (0..60).collect::<Vec<u16>>(), "{name}: in order");
        let worst = side.seen.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
        assert!(worst > 28.0, "{name}: worst Y PSNR {worst:.1} dB");
        assert_eq!(side.sink.size, (320, 240));
        let st = side.pc.video_stats();
        assert_eq!(st.frames_sent, 60);
        assert_eq!(st.frames_lost, 0);
        // Transport-wide congestion feedback flows both ways and feeds the estimate, which
        // grows without loss or queuing.
        assert!(
            st.twcc_feedback_sent > 0 && st.twcc_feedback_received > 0,
            "{name}: {st:?}"
        );
        assert!(
            st.estimate_bps > natter_webrtc::video::BWE_START,
            "{name}: {st:?}"
        );
        assert_eq!(st.loss_permille, 0);
    }
}

#[test]
fn single_losses_are_retransmitted_on_nack() {
    // Every 37th RTP packet from a to b is lost once; its retransmission gets through.
    let mut dropped = std::collections::HashSet::new();
    let (a, b) = run(60, |i| i % 37 == 5 && dropped.insert(i));
    let sa = a.pc.video_stats();
    let sb = b.pc.video_stats();
    assert!(sb.nacks_sent > 0, "b NACKed: {sb:?}");
    assert!(sa.retransmitted > 0, "a retransmitted: {sa:?}");
    assert_eq!(sb.frames_lost, 0);
    assert_eq!(b.seen.len(), 60, "every frame decoded at b");
}

#[test]
fn burst_loss_recovers_with_pli_and_keyframe() {
    // a's RTP packets 40..=60 are lost, retransmissions included.
    let (a, b) = run(90, |i| (40..=60).contains(&i));
    let sa = a.pc.video_stats();
    let sb = b.pc.video_stats();
    assert!(sb.plis_sent > 0, "b sent PLI: {sb:?}");
    assert!(sa.keyframe_requests_received > 0);
    assert!(sa.keyframes_sent >= 2, "a sent a fresh key frame: {sa:?}");
    let last = b.seen.last().expect("b decoded frames").1;
    assert_eq!(last, 89, "b decodes up to the last frame after recovering");
    assert!(b.seen.len() < 90, "frames in the burst were lost");
}
