//! VP8 and H.264 depacketizers, the frame assembler, the TWCC feedback parser and the y4m
//! reader on arbitrary bytes:
//! the input is split into payloads at 0xff bytes; each payload also goes through the
//! assembler with a sequence number and timestamp taken from its first bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natter_video::assembler::{Codec, FrameAssembler};
use natter_video::{h264, twcc, vp8, y4m};

fuzz_target!(|data: &[u8]| {
    let payloads: Vec<&[u8]> = data.split(|&b| b == 0xff).take(64).collect();
    if let Ok(fb) = twcc::parse_feedback(data) {
        // What parses writes back to the same statuses and arrival times (250 µs grid).
        let again = twcc::write_feedback(fb.sender_ssrc, fb.media_ssrc, fb.fb_count, &fb.packets);
        let _ = twcc::parse_feedback(&again);
    }
    let _ = vp8::depacketize(&payloads);
    let _ = h264::depacketize(&payloads);
    for p in &payloads {
        let _ = vp8::Vp8Descriptor::parse(p);
        let _ = vp8::keyframe_size(p);
        let _ = h264::is_keyframe_payload(p);
    }
    for codec in [Codec::Vp8, Codec::H264] {
        let mut a = FrameAssembler::new(codec);
        for p in &payloads {
            let seq = u16::from_be_bytes([
                p.first().copied().unwrap_or(0),
                p.get(1).copied().unwrap_or(0),
            ]);
            let ts = u32::from(p.get(2).copied().unwrap_or(0));
            a.push(seq, ts, p.get(3).is_some_and(|b| b & 1 == 1), p);
            while a.poll_frame().is_some() {}
            let _ = a.take_nacks();
        }
    }
    if let Ok(mut r) = y4m::Y4mReader::new(data) {
        for _ in 0..4 {
            if !matches!(r.next_frame(), Ok(Some(_))) {
                break;
            }
        }
    }
});
