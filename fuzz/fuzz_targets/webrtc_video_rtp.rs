#![no_main]
//! Fuzzes the video RTP receive path of the PeerConnection's VideoRtp: arbitrary bytes, split at
//! 0xfe bytes, go in as RTP (media or RTX by payload type, unwrapped to the original sequence
//! number) or RTCP (NACKs answered from the send history as RTX); nothing panics and
//! everything produced parses as RTP/RTCP.
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_rtp::RtpPacket;
use natter_webrtc::video::{Codec, Rtx, VideoRtp};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut v = VideoRtp::new(0x1234_5678_9abc_def0);
    if data.first().is_some_and(|b| b & 1 == 1) {
        v.set_codec(Codec::H264);
    }
    v.set_twcc(Some(3));
    v.set_rtx(Some(Rtx { ssrc: 77, pt: 97 }), Some(97));
    v.set_test_loss(0, u64::from(data.get(1).copied().unwrap_or(0) % 4));
    // Something in the send history for NACKs to find.
    for (i, chunk) in data.chunks(700).take(4).enumerate() {
        for p in v.packetize(9, 96, chunk, i as u32 * 3000, i == 0, t0) {
            RtpPacket::parse(&p).expect("our packet parses");
        }
    }
    for (i, part) in data.split(|&b| b == 0xfe).take(64).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 5);
        if matches!(part.get(1), Some(192..=223)) {
            for r in v.on_rtcp(part, 9, now) {
                RtpPacket::parse(&r).expect("retransmission parses");
            }
        } else if let Ok(p) = RtpPacket::parse(part) {
            if v.is_remote_rtx(p.payload_type()) {
                v.on_rtx(&p, now);
            } else {
                v.on_rtp(&p, now);
            }
        }
        while v.poll_frame().is_some() {}
        if let Some(fb) = v.poll_feedback(5, now) {
            natter_rtp::rtcp::parse_compound(&fb, true).expect("our feedback parses");
        }
    }
});
