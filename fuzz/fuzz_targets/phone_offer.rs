//! An arbitrary SDP offer answered by the phone's offer/answer code: any input gets an answer
//! or a typed refusal (488), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natter_media::CodecKind;
use natter_phone::offer::{answer_offer, LocalMedia, SrtpMode};
use natter_sdp::Direction;
use natter_srtp::{SdesKey, SrtpProfile};

fuzz_target!(|data: &[u8]| {
    let key = SdesKey {
        profile: SrtpProfile::AesCm128HmacSha1_80,
        key: vec![7; 16],
        salt: vec![9; 14],
    };
    let local = LocalMedia {
        addr: "192.0.2.1:4000".parse().expect("literal"),
        codecs: vec![CodecKind::Pcmu, CodecKind::Opus, CodecKind::G722],
        srtp: SrtpMode::Sdes,
        srtp_required: false,
        sdes_keys: vec![key],
        fingerprint: Some("AB:CD".into()),
        ice: None,
        direction: Direction::SendRecv,
        session_id: 1,
        version: 1,
    };
    let _ = answer_offer(data, &local);
});
