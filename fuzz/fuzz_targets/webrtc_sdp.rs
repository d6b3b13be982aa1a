#![no_main]
//! Fuzzes remote-description handling: parsing an offer/answer and answering an offer never
//! panic, and an answer we write always parses.
use libfuzzer_sys::fuzz_target;
use natter_webrtc::jsep::{create_answer, parse_remote, LocalParams};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(remote) = parse_remote(text) else {
        return;
    };
    let p = LocalParams {
        session_id: 1,
        session_version: 2,
        ufrag: "fuzz".into(),
        pwd: "fuzzfuzzfuzzfuzzfuzzfuzz".into(),
        fingerprint: "AA:BB".into(),
        candidates: vec!["1 1 UDP 1 10.0.0.1 9 typ host".into()],
        end_of_candidates: true,
        audio_ssrc: Some(7),
        video_ssrc: Some(9),
        // Both codec preferences: H.264 and RTX lines in the answer must parse too.
        video_codec: if data.len() % 2 == 0 {
            natter_webrtc::video::Codec::Vp8
        } else {
            natter_webrtc::video::Codec::H264
        },
        data: true,
        cname: "fuzz".into(),
    };
    if let Ok(answer) = create_answer(&p, &remote) {
        parse_remote(&answer).expect("our answer parses");
    }
});
