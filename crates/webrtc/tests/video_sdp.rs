//! Video negotiation against a Chromium-shaped video m-section (Chromium 156 lists VP8, then
//! H.264 in several profiles and packetization modes, each with its RTX): which codec and RTX
//! payload type we pick, and what our answer says.

use natter_webrtc::jsep::{create_answer, parse_remote, rtx_ssrc, LocalParams};
use natter_webrtc::video::Codec;

const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 103 104 107 108 109 114 115 116\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:103 H264/90000\r\n\
a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:104 rtx/90000\r\na=fmtp:104 apt=103\r\n\
a=rtpmap:107 H264/90000\r\n\
a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:108 rtx/90000\r\na=fmtp:108 apt=107\r\n\
a=rtpmap:109 H264/90000\r\n\
a=fmtp:109 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:114 rtx/90000\r\na=fmtp:114 apt=109\r\n\
a=rtpmap:115 H264/90000\r\n\
a=fmtp:115 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n\
a=rtpmap:116 rtx/90000\r\na=fmtp:116 apt=115\r\n\
a=ssrc-group:FID 1111 2222\r\na=ssrc:1111 cname:c\r\na=ssrc:2222 cname:c\r\n";

fn params(codec: Codec) -> LocalParams {
    LocalParams {
        session_id: 1,
        session_version: 2,
        ufrag: "nttr".into(),
        pwd: "natternatternatternatter".into(),
        fingerprint: "CC:DD".into(),
        candidates: Vec::new(),
        end_of_candidates: false,
        audio_ssrc: None,
        video_ssrc: Some(5000),
        video_codec: codec,
        data: false,
        cname: "natter".into(),
    }
}

#[test]
fn chromium_offer_parses_h264_and_rtx() {
    let r = parse_remote(OFFER).expect("offer parses");
    let v = r.video().expect("video");
    assert_eq!(v.vp8_pt, Some(96));
    // packetization-mode 1, Constrained Baseline preferred over Baseline; no mode 0, no Main.
    assert_eq!(v.h264, Some((109, "42e01f".to_owned())));
    assert_eq!(v.rtx_for(96), Some(97));
    assert_eq!(v.rtx_for(109), Some(114));
    assert_eq!(v.video_choice(Codec::Vp8), Some((Codec::Vp8, 96)));
    assert_eq!(v.video_choice(Codec::H264), Some((Codec::H264, 109)));
    assert_eq!(v.ssrcs, vec![1111, 2222]);
}

#[test]
fn answer_with_h264_keeps_the_offered_types_and_announces_our_rtx() {
    let answer =
        create_answer(&params(Codec::H264), &parse_remote(OFFER).expect("offer")).expect("answer");
    assert!(
        answer.contains("m=video 9 UDP/TLS/RTP/SAVPF 109 114\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=rtpmap:109 H264/90000\r\n"));
    assert!(answer.contains(
        "a=fmtp:109 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    ));
    assert!(answer.contains("a=rtpmap:114 rtx/90000\r\na=fmtp:114 apt=109\r\n"));
    assert!(answer.contains(&format!("a=ssrc-group:FID 5000 {}\r\n", rtx_ssrc(5000))));
    assert!(answer.contains(&format!("a=ssrc:{} cname:natter\r\n", rtx_ssrc(5000))));
    assert!(!answer.contains("VP8"));
    let a = parse_remote(&answer).expect("our answer parses");
    let v = a.video().expect("video");
    assert_eq!(v.video_choice(Codec::Vp8), Some((Codec::H264, 109)));
    assert_eq!(v.rtx_pts, vec![(114, 109)]);
}

#[test]
fn answer_with_vp8_by_default() {
    let answer =
        create_answer(&params(Codec::Vp8), &parse_remote(OFFER).expect("offer")).expect("answer");
    assert!(
        answer.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"),
        "{answer}"
    );
    assert!(!answer.contains("H264"));
}

#[test]
fn without_packetization_mode_1_h264_is_not_taken() {
    let only_mode0 = OFFER
        .replace("packetization-mode=1", "packetization-mode=0")
        .replace("a=rtpmap:96 VP8/90000\r\n", "");
    let r = parse_remote(&only_mode0).expect("parses");
    assert!(r.video().is_none(), "neither VP8 nor H.264 mode 1");
    assert!(
        create_answer(&params(Codec::H264), &r).is_err(),
        "nothing to accept"
    );
}
