//! RTX (RFC 4588) at the RTP level, sans-IO in virtual time and without a codec: a lost
//! VP8 packet is NACKed by the receiver and repaired by an RTX packet whose bytes are checked
//! (payload type, SSRC, its own sequence space, the original sequence number in the first
//! two payload bytes), then unwrapped into the receiver's frame assembler. Without RTX the
//! same packet goes again on the media SSRC.

use std::time::{Duration, Instant};

use natter_rtp::{RtcpPacket, RtpHeader, RtpPacket};
use natter_webrtc::video::{Rtx, VideoRtp};

const MEDIA_SSRC: u32 = 0x1000_0001;
const RTX_SSRC: u32 = 0x1000_0002;
const RECV_SSRC: u32 = 0x2000_0001;
const VP8: u8 = 96;
const RTX_PT: u8 = 97;

/// A fake VP8 key frame (first byte's P bit clear) of `n` bytes.
fn frame(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| if i == 0 { 0x10 } else { (i as u8) ^ salt })
        .collect()
}

fn pair(rtx: bool) -> (VideoRtp, VideoRtp) {
    let mut a = VideoRtp::new(0x0123_4567_89ab_cdef);
    let mut b = VideoRtp::new(0x0fed_cba9_8765_4321);
    if rtx {
        a.set_rtx(
            Some(Rtx {
                ssrc: RTX_SSRC,
                pt: RTX_PT,
            }),
            Some(RTX_PT),
        );
        b.set_rtx(
            Some(Rtx {
                ssrc: 0x2000_0002,
                pt: RTX_PT,
            }),
            Some(RTX_PT),
        );
    }
    (a, b)
}

/// The NACKed sequence numbers in b's feedback.
fn nacks(fb: &[u8]) -> Vec<u16> {
    natter_rtp::rtcp::parse_compound(fb, true)
        .expect("feedback parses")
        .into_iter()
        .filter_map(|p| match p {
            RtcpPacket::Nack {
                media_ssrc, lost, ..
            } => {
                assert_eq!(media_ssrc, MEDIA_SSRC, "NACK names the media SSRC");
                Some(lost)
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// A compound RTCP packet holding one generic NACK from b about a's media stream.
fn nack_of(lost: Vec<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    natter_rtp::rtcp::write_compound(
        &[RtcpPacket::Nack {
            sender_ssrc: RECV_SSRC,
            media_ssrc: MEDIA_SSRC,
            lost,
        }],
        &mut out,
    )
    .expect("nack");
    out
}

/// a sends one frame to b with packet `lost` missing; b NACKs it; a's answer is returned
/// with the original packet.
fn lose_one(a: &mut VideoRtp, b: &mut VideoRtp, lost: usize) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let t0 = Instant::now();
    let data = frame(4000, 0x5a);
    let pkts = a.packetize(MEDIA_SSRC, VP8, &data, 9000, true, t0);
    assert!(pkts.len() >= 4, "frame spans several packets");
    for (i, p) in pkts.iter().enumerate() {
        if i != lost {
            b.on_rtp(&RtpPacket::parse(p).expect("rtp"), t0);
        }
    }
    assert!(b.poll_frame().is_none(), "frame incomplete");
    let t1 = t0 + Duration::from_millis(5);
    let fb = b.poll_feedback(RECV_SSRC, t1).expect("b sends feedback");
    let orig = pkts[lost].clone();
    let seq = u16::from_be_bytes([orig[2], orig[3]]);
    assert_eq!(nacks(&fb), vec![seq], "b NACKs exactly the lost packet");
    let resent = a.on_rtcp(&fb, MEDIA_SSRC, t1);
    (orig, resent, data)
}

#[test]
fn nack_is_answered_with_rtx_and_repairs_the_frame() {
    let (mut a, mut b) = pair(true);
    let (orig, resent, data) = lose_one(&mut a, &mut b, 2);
    assert_eq!(resent.len(), 1);
    let o = RtpPacket::parse(&orig).expect("original");
    let r = RtpPacket::parse(&resent[0]).expect("rtx parses");
    assert_eq!(r.payload_type(), RTX_PT, "RTX payload type");
    assert_eq!(r.ssrc(), RTX_SSRC, "RTX SSRC");
    assert_eq!(r.timestamp(), o.timestamp(), "timestamp kept");
    assert_eq!(r.marker(), o.marker(), "marker kept");
    assert_eq!(
        r.payload()[..2],
        o.sequence().to_be_bytes(),
        "OSN: the original sequence number, first two payload bytes"
    );
    assert_eq!(&r.payload()[2..], o.payload(), "original payload follows");
    let first_rtx_seq = r.sequence();

    // Unwrapped at b, the packet completes the frame byte for byte.
    b.on_rtx(&r, Instant::now());
    let f = b.poll_frame().expect("frame repaired");
    assert_eq!(f.data, data);
    assert!(f.keyframe);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        (sa.rtx_sent, sa.retransmitted, sa.nacks_received),
        (1, 1, 1)
    );
    assert_eq!((sb.rtx_received, sb.nacks_sent, sb.frames_lost), (1, 1, 0));

    // A second NACK of the same packet: the next number of the RTX stream's own space.
    let nack = nack_of(vec![o.sequence()]);
    // (later than RESEND_INTERVAL after the first, or it would count as a duplicate)
    let later = Instant::now() + Duration::from_secs(1);
    let again = a.on_rtcp(&nack, MEDIA_SSRC, later);
    let r2 = RtpPacket::parse(&again[0]).expect("rtx");
    assert_eq!(r2.sequence(), first_rtx_seq.wrapping_add(1));
    assert_eq!(r2.payload(), r.payload());
    // A NACK about another SSRC is not ours.
    assert!(a.on_rtcp(&nack, 0x5555, later).is_empty());
}

/// A NACK naming one packet 256 times (about 1 KB of RTCP), and the same NACK again at once,
/// cost one retransmission, not hundreds: the amplification a hostile peer could otherwise
/// get. After RESEND_INTERVAL the packet may go again.
#[test]
fn repeated_nacks_of_one_packet_are_answered_once_per_interval() {
    let (mut a, _b) = pair(true);
    let t0 = Instant::now();
    let pkts = a.packetize(MEDIA_SSRC, VP8, &frame(4000, 1), 9000, true, t0);
    let seq = RtpPacket::parse(&pkts[1]).expect("rtp").sequence();
    let oldest = RtpPacket::parse(&pkts[0]).expect("rtp").sequence();
    let nack = nack_of(vec![seq; 256]);
    assert!(
        nack.len() >= 256,
        "one FCI entry per repeat: {} bytes",
        nack.len()
    );
    let first = a.on_rtcp(&nack, MEDIA_SSRC, t0);
    assert_eq!(first.len(), 1, "one retransmission for 256 repeats");
    let osn = u16::from_be_bytes([first[0][12], first[0][13]]);
    assert_eq!(osn, seq, "the NACKed packet");
    let soon = t0 + natter_webrtc::video::RESEND_INTERVAL / 2;
    assert!(
        a.on_rtcp(&nack, MEDIA_SSRC, soon).is_empty(),
        "a repeat at once is a duplicate"
    );
    let later = t0 + natter_webrtc::video::RESEND_INTERVAL;
    assert_eq!(
        a.on_rtcp(&nack, MEDIA_SSRC, later).len(),
        1,
        "after the interval, again"
    );
    let st = a.stats();
    assert_eq!(
        (st.nacks_received, st.nacks_suppressed, st.rtx_sent),
        (768, 766, 2)
    );
    // A number never sent (or long gone from the history) is ignored.
    let gone = nack_of(vec![seq.wrapping_add(1000), oldest.wrapping_sub(1)]);
    assert!(a.on_rtcp(&gone, MEDIA_SSRC, later).is_empty());
}

#[test]
fn without_rtx_the_packet_goes_again_on_the_media_ssrc() {
    let (mut a, mut b) = pair(false);
    let (orig, resent, data) = lose_one(&mut a, &mut b, 1);
    assert_eq!(resent, vec![orig.clone()], "same bytes, media SSRC and PT");
    b.on_rtp(&RtpPacket::parse(&resent[0]).expect("rtp"), Instant::now());
    assert_eq!(b.poll_frame().expect("repaired").data, data);
    assert_eq!(a.stats().rtx_sent, 0);
    assert_eq!(a.stats().retransmitted, 1);
}

#[test]
fn padding_only_rtx_probes_are_counted_and_dropped() {
    let (_, mut b) = pair(true);
    let h = RtpHeader {
        payload_type: RTX_PT,
        sequence: 7,
        timestamp: 1,
        ssrc: 0x3333,
        ..RtpHeader::default()
    };
    let mut probe = Vec::new();
    h.write_padded(&[], 224, &mut probe).expect("probe");
    let p = RtpPacket::parse(&probe).expect("probe parses");
    assert!(b.is_remote_rtx(p.payload_type()));
    b.on_rtx(&p, Instant::now());
    // One byte is too short for an OSN.
    let mut short = Vec::new();
    h.write(&[1], &mut short).expect("short");
    b.on_rtx(&RtpPacket::parse(&short).expect("short"), Instant::now());
    let s = b.stats();
    assert_eq!((s.rtx_padding_received, s.rtx_received), (2, 0));
    assert!(b.poll_frame().is_none());
}

#[test]
fn test_loss_leaves_out_every_nth_packet_and_rtx_repairs_it() {
    let (mut a, mut b) = pair(true);
    a.set_test_loss(3, 0);
    let t0 = Instant::now();
    // Seven packets: the 3rd and 6th are left out (a lost last packet would only show
    // with the next frame).
    let data = frame(7000, 1);
    let pkts = a.packetize(MEDIA_SSRC, VP8, &data, 0, true, t0);
    let dropped = a.stats().test_dropped as usize;
    assert_eq!(
        dropped,
        (pkts.len() + dropped) / 3,
        "every third packet left out"
    );
    for p in &pkts {
        b.on_rtp(&RtpPacket::parse(p).expect("rtp"), t0);
    }
    let fb = b.poll_feedback(RECV_SSRC, t0).expect("NACK");
    let lost = nacks(&fb);
    assert_eq!(lost.len() as u64, a.stats().test_dropped);
    for r in a.on_rtcp(&fb, MEDIA_SSRC, t0) {
        b.on_rtx(&RtpPacket::parse(&r).expect("rtx"), t0);
    }
    assert_eq!(b.poll_frame().expect("repaired").data, data);
    // Receive-side test loss never drops RTX.
    let (mut a, mut b) = pair(true);
    b.set_test_loss(0, 2);
    let pkts = a.packetize(MEDIA_SSRC, VP8, &data, 0, true, t0);
    for p in &pkts {
        b.on_rtp(&RtpPacket::parse(p).expect("rtp"), t0);
    }
    let fb = b.poll_feedback(RECV_SSRC, t0).expect("NACK");
    assert_eq!(nacks(&fb).len(), pkts.len() / 2);
    for r in a.on_rtcp(&fb, MEDIA_SSRC, t0) {
        b.on_rtx(&RtpPacket::parse(&r).expect("rtx"), t0);
    }
    assert_eq!(b.poll_frame().expect("repaired").data, data);
}
