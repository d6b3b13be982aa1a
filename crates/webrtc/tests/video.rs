//! natter <-> natter VP8 video in memory, in virtual time: both sides send the test pattern
//! (libvpx), the other assembles, decodes and compares with the source; losses are repaired
//! by NACK retransmission (RTX, RFC 4588, when negotiated) or, for bursts, by PLI and a
//! fresh key frame. Needs the `vpx` feature (libvpx); the H.264 cases also `h264`.
#![cfg(feature = "vpx")]

use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_video::pattern::TestPattern;
use natter_webrtc::video::{Codec, VideoSink, VideoSource};
use natter_webrtc::{Config, PeerConnection};

fn pc(seed: u64, ufrag: &str, codec: Codec) -> PeerConnection {
    let cert = DtlsCertificate::generate().expect("certificate");
    let cfg = Config {
        video: true,
        seed,
        ..Config::default()
    };
    let mut p = PeerConnection::new(cfg, cert, Instant::now());
    p.set_local_ice(ufrag, "abcdefghijklmnopqrstuv");
    p.set_video_sender(true);
    p.set_video_codec(codec);
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

/// Runs `frames` frame intervals; `lose(seq)` drops a media RTP packet from a to b by its
/// sequence number, counted from a's first (retransmissions on the media SSRC carry the
/// same number); RTX packets (RFC 4588, payload type 97) get through.
fn run(frames: u32, mut lose: impl FnMut(u16) -> bool) -> (Side, Side) {
    let (a, b, _) = run_with(Codec::Vp8, frames, |o| o, |seq, rtx| !rtx && lose(seq));
    (a, b)
}

/// The RTP packets a sent to b (that arrived): `(payload type, SSRC)`.
type Wire = Vec<(u8, u32)>;

/// As [`run`], with the offer rewritten by `munge` and `lose(seq, rtx)` seeing RTX
/// packets too (their `seq` counts in their own space, from a's first media packet).
fn run_with(
    codec: Codec,
    frames: u32,
    munge: impl FnOnce(String) -> String,
    mut lose: impl FnMut(u16, bool) -> bool,
) -> (Side, Side, Wire) {
    let now0 = Instant::now();
    let mut a = Side {
        pc: pc(0x1111_2222_3333_4444, "aaaa", codec),
        src: VideoSource::pattern_with(codec, 320, 240, 30).expect("source"),
        sink: VideoSink::new_with(codec, None).expect("sink"),
        seen: Vec::new(),
    };
    let mut b = Side {
        pc: pc(0x5555_6666_7777_8888, "bbbb", codec),
        src: VideoSource::pattern_with(codec, 320, 240, 30).expect("source"),
        sink: VideoSink::new_with(codec, None).expect("sink"),
        seen: Vec::new(),
    };
    let offer = munge(a.pc.create_offer().expect("offer"));
    let pt = if codec == Codec::H264 { 102 } else { 96 };
    assert!(offer.contains(&format!("m=video 9 UDP/TLS/RTP/SAVPF {pt}")));
    assert!(offer.contains("a=rtpmap:96 VP8/90000"));
    let answer = b.pc.accept_offer(&offer, now0).expect("answer");
    assert!(answer.contains("a=sendrecv"));
    assert!(answer.contains(&format!("a=rtcp-fb:{pt} transport-cc")));
    assert!(answer.contains(natter_video::twcc::EXTENSION_URI));
    a.pc.accept_answer(&answer, now0).expect("apply answer");
    a.pc.transport_connected(now0);
    b.pc.transport_connected(now0);
    let mut now = now0;
    let mut first_seq = None;
    let mut next_frame = None;
    let mut sent = 0;
    let mut wire = Wire::new();
    for _ in 0..200_000 {
        let mut moved = false;
        while let Some(d) = a.pc.poll_transmit() {
            moved = true;
            let is_rtp = d.first().is_some_and(|b| (128..=191).contains(b))
                && !matches!(d.get(1), Some(192..=223));
            if is_rtp {
                let seq = u16::from_be_bytes([d[2], d[3]]);
                let first = *first_seq.get_or_insert(seq);
                let pt = d[1] & 0x7f;
                if lose(seq.wrapping_sub(first), pt == 97 || pt == 103) {
                    continue;
                }
                wire.push((pt, u32::from_be_bytes([d[8], d[9], d[10], d[11]])));
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
    (a, b, wire)
}

/// The SSRCs of `a=ssrc-group:FID <media> <rtx>` in a description.
fn fid(sdp: &str) -> Option<(u32, u32)> {
    let l = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=ssrc-group:FID "))?;
    let mut it = l.split(' ').map(|s| s.trim().parse::<u32>().ok());
    Some((it.next()??, it.next()??))
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
fn single_losses_are_retransmitted_as_rtx_on_nack() {
    // Every 37th RTP packet from a to b is lost; its RTX retransmission gets through, on
    // the RTX SSRC of a's `a=ssrc-group:FID` with the RTX payload type, and is unwrapped
    // into b's assembler.
    let mut fids = None;
    let (a, mut b, wire) = run_with(
        Codec::Vp8,
        60,
        |o| {
            assert!(o.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"));
            assert!(o.contains("a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"));
            fids = fid(&o);
            o
        },
        |i, rtx| !rtx && i % 37 == 5,
    );
    let (media, rtx) = fids.expect("offer has a=ssrc-group:FID");
    assert_ne!(media, rtx);
    let sa = a.pc.video_stats();
    let sb = b.pc.video_stats();
    assert!(sb.nacks_sent > 0, "b NACKed: {sb:?}");
    assert!(sa.rtx_sent > 0, "a sent RTX: {sa:?}");
    assert_eq!(sa.rtx_sent, sa.retransmitted, "every retransmission is RTX");
    assert_eq!(
        sb.rtx_received, sa.rtx_sent,
        "b unwrapped every RTX: {sb:?}"
    );
    let on_wire: Vec<_> = wire.iter().filter(|w| w.0 == 97).collect();
    assert_eq!(on_wire.len() as u64, sa.rtx_sent);
    assert!(on_wire.iter().all(|w| w.1 == rtx), "RTX on the RTX SSRC");
    assert!(wire.iter().filter(|w| w.0 == 96).all(|w| w.1 == media));
    assert_eq!(sb.frames_lost, 0);
    assert_eq!(b.seen.len(), 60, "every frame decoded at b");
    // b (answerer) accepted RTX too and announced its own RTX SSRC.
    assert!(b.pc.video_rtp_mut().rtx().is_some());
}

#[test]
fn without_rtx_in_the_offer_losses_are_resent_on_the_media_ssrc() {
    let strip = |o: String| {
        o.replace("SAVPF 96 97\r\n", "SAVPF 96\r\n")
            .lines()
            .filter(|l| !l.contains(":97 ") && !l.starts_with("a=ssrc-group:FID"))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
    };
    let mut dropped = std::collections::HashSet::new();
    let (mut a, b, wire) = run_with(Codec::Vp8, 60, strip, |i, _| {
        i % 37 == 5 && dropped.insert(i)
    });
    let sa = a.pc.video_stats();
    let sb = b.pc.video_stats();
    assert!(sa.retransmitted > 0, "a retransmitted: {sa:?}");
    assert_eq!((sa.rtx_sent, sb.rtx_received), (0, 0));
    assert!(
        wire.iter().all(|w| w.0 == 96),
        "everything on the media stream"
    );
    assert!(a.pc.video_rtp_mut().rtx().is_none());
    assert_eq!(sb.frames_lost, 0);
    assert_eq!(b.seen.len(), 60, "every frame decoded at b");
}

#[test]
fn burst_loss_recovers_with_pli_and_keyframe() {
    // a's RTP packets 40..=60 are lost, and every RTX packet.
    let (a, b, _) = run_with(
        Codec::Vp8,
        90,
        |o| o,
        |i, rtx| rtx || (40..=60).contains(&i),
    );
    let sa = a.pc.video_stats();
    let sb = b.pc.video_stats();
    assert!(sb.plis_sent > 0, "b sent PLI: {sb:?}");
    assert!(sa.keyframe_requests_received > 0);
    assert!(sa.keyframes_sent >= 2, "a sent a fresh key frame: {sa:?}");
    let last = b.seen.last().expect("b decoded frames").1;
    assert_eq!(last, 89, "b decodes up to the last frame after recovering");
    assert!(b.seen.len() < 90, "frames in the burst were lost");
}

#[cfg(feature = "h264")]
#[test]
fn h264_both_ways_with_rtx_repair() {
    // a prefers H.264 and offers it first (then VP8); b prefers it too and answers with
    // H.264 packetization-mode 1 and its RTX; every 29th packet from a to b is lost once
    // and repaired by RTX with payload type 103.
    let (a, b, wire) = run_with(
        Codec::H264,
        60,
        |o| {
            assert!(o.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97\r\n"));
            assert!(o.contains(
                "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            ));
            assert!(o.contains("a=fmtp:103 apt=102"));
            o
        },
        |i, rtx| !rtx && i % 29 == 7,
    );
    assert_eq!(a.pc.video_codec(), Codec::H264);
    assert_eq!(b.pc.video_codec(), Codec::H264);
    for (name, side) in [("a", &a), ("b", &b)] {
        assert_eq!(side.seen.len(), 60, "{name} decoded every frame");
        let counters: Vec<u16> = side.seen.iter().map(|s| s.1).collect();
        assert_eq!(counters, (0..60).collect::<Vec<u16>>(), "{name}: in order");
        let worst = side.seen.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
        assert!(worst > 28.0, "{name}: worst Y PSNR {worst:.1} dB");
    }
    let (sa, sb) = (a.pc.video_stats(), b.pc.video_stats());
    assert!(
        sa.rtx_sent > 0 && sb.rtx_received == sa.rtx_sent,
        "{sa:?} {sb:?}"
    );
    assert!(wire.iter().any(|w| w.0 == 103));
    assert!(wire.iter().all(|w| w.0 == 102 || w.0 == 103), "H.264 only");
}
