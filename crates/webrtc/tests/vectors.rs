//! Real Chromium 156 descriptions (captured in the lab) parse, and our answers to its
//! offers are what Chromium needs: BUNDLE with its tag, active setup, our fingerprint,
//! sctp-port and max-message-size, Opus with Chromium's payload type.

use std::time::Instant;

use natter_dtls::DtlsCertificate;
use natter_webrtc::jsep::{parse_remote, Kind, Setup};
use natter_webrtc::{Config, PeerConnection};

fn vector(name: &str) -> String {
    let p = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn answerer(audio: bool, data: bool) -> PeerConnection {
    let cert = DtlsCertificate::generate().expect("certificate");
    let mut pc = PeerConnection::new(
        Config {
            audio,
            video: false,
            data,
            echo: true,
            seed: 99,
            dtls: Default::default(),
            capture_audio: false,
        },
        cert,
        Instant::now(),
    );
    pc.set_local_ice("nttr", "natternatternatternatter");
    pc.add_local_candidate("1 1 UDP 2130706431 10.20.0.2 40000 typ host");
    pc
}

#[test]
fn chromium_offer_with_audio_and_data() {
    let offer = vector("chromium156-loopback-offer-audio-dc.sdp");
    let r = parse_remote(&offer).expect("parses");
    assert_eq!(r.bundle, ["0", "1"]);
    assert_eq!(r.transport_index, 0);
    assert_eq!(r.ufrag, "IK9z");
    assert_eq!(r.setup, Setup::ActPass);
    assert!(r.fingerprint.starts_with("4F:A7:3C"));
    // The TCP candidate is listed too; the ICE layer skips it.
    assert_eq!(r.candidates.len(), 2);
    assert_eq!(r.audio().and_then(|a| a.opus_pt), Some(111));
    assert_eq!(
        r.audio().map(|a| a.ssrcs.clone()),
        Some(vec![4_165_647_017])
    );
    let d = r.data().expect("data section");
    assert_eq!(
        (d.sctp_port, d.max_message_size),
        (Some(5000), Some(262_144))
    );

    let mut pc = answerer(true, true);
    let answer = pc.accept_offer(&offer, Instant::now()).expect("answer");
    let a = parse_remote(&answer).expect("our answer parses");
    assert_eq!(a.bundle, ["0", "1"]);
    assert_eq!(a.setup, Setup::Active);
    assert_eq!(a.media[0].kind, Kind::Audio);
    assert_eq!(a.media[0].opus_pt, Some(111));
    assert_eq!(a.media[0].direction, "sendrecv");
    assert_eq!(a.media[0].ssrcs.len(), 1);
    assert_eq!(a.media[1].kind, Kind::Data);
    assert_eq!(a.media[1].max_message_size, Some(262_144));
    assert_eq!(
        a.candidates,
        ["1 1 UDP 2130706431 10.20.0.2 40000 typ host"]
    );
    assert!(answer.contains("a=rtcp-mux\r\n"));
    assert!(answer.contains("a=ice-ufrag:nttr\r\n"));
    assert!(answer.ends_with("\r\n"));
}

#[test]
fn data_only_answer_to_audio_offer_rejects_audio() {
    let offer = vector("chromium156-loopback-offer-audio-dc.sdp");
    let mut pc = answerer(false, true);
    let answer = pc.accept_offer(&offer, Instant::now()).expect("answer");
    let a = parse_remote(&answer).expect("parses");
    assert!(a.media[0].rejected);
    assert_eq!(a.bundle, ["1"]);
    assert_eq!(a.transport_index, 1);
}

#[test]
fn every_chromium_vector_parses() {
    for name in [
        "chromium156-answer-to-webrtcbin.sdp",
        "chromium156-loopback-answer-audio-dc.sdp",
        "chromium156-loopback-dc-stun-dtls13.answer.sdp",
        "chromium156-loopback-dc-stun-dtls13.offer.sdp",
        "chromium156-loopback-offer-audio-dc.sdp",
        "chromium156-nat-offer-host-srflx-relay.sdp",
        "chromium156-offer-audio-dc-no-candidates.sdp",
        "chromium156-offer-dc-mdns.sdp",
    ] {
        let r = parse_remote(&vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.fingerprint.len(), 32 * 3 - 1, "{name}");
        assert!(r.data().is_some() || r.audio().is_some(), "{name}");
    }
    let answer = parse_remote(&vector("chromium156-loopback-answer-audio-dc.sdp")).expect("parses");
    assert_eq!(answer.setup, Setup::Active);
    let nat = parse_remote(&vector("chromium156-nat-offer-host-srflx-relay.sdp")).expect("parses");
    for typ in ["typ host", "typ srflx", "typ relay"] {
        assert!(nat.candidates.iter().any(|c| c.contains(typ)), "{typ}");
    }
}

#[test]
fn answers_to_every_chromium_offer() {
    for name in [
        "chromium156-loopback-offer-audio-dc.sdp",
        "chromium156-nat-offer-host-srflx-relay.sdp",
        "chromium156-offer-audio-dc-no-candidates.sdp",
        "chromium156-offer-dc-mdns.sdp",
        "chromium156-loopback-dc-stun-dtls13.offer.sdp",
    ] {
        let mut pc = answerer(true, true);
        let answer = pc
            .accept_offer(&vector(name), Instant::now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let a = parse_remote(&answer).unwrap_or_else(|e| panic!("{name}: our answer: {e}"));
        assert_eq!(a.setup, Setup::Active, "{name}");
        assert!(a.data().is_some(), "{name}");
    }
}

#[test]
fn video_offer_is_answered_with_vp8_and_rtx_only_when_video_is_on() {
    // Chromium's audio+data offer with a VP8 video m-section added to the BUNDLE group.
    let offer = vector("chromium156-loopback-offer-audio-dc.sdp")
        .replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2")
        + "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:IK9z\r\na=ice-pwd:F+J6oEWhjbopQIQzY8SOkxfl\r\na=setup:actpass\r\na=mid:2\r\n\
a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=ssrc:1111 cname:x\r\n";
    let mut with_video = PeerConnection::new(
        Config {
            audio: true,
            video: true,
            data: true,
            echo: true,
            seed: 5,
            dtls: Default::default(),
            capture_audio: false,
        },
        DtlsCertificate::generate().expect("certificate"),
        Instant::now(),
    );
    with_video.set_local_ice("nttr", "natternatternatternatter");
    let a = parse_remote(
        &with_video
            .accept_offer(&offer, Instant::now())
            .expect("answer"),
    )
    .expect("parses");
    assert_eq!(a.bundle, ["0", "1", "2"]);
    let v = a.video().expect("video accepted");
    // VP8 with its RTX (RFC 4588): both SSRCs, grouped as FID.
    assert_eq!(
        (v.vp8_pt, v.formats.clone(), v.rtx_pts.clone()),
        (
            Some(96),
            vec!["96".to_owned(), "97".to_owned()],
            vec![(97, 96)]
        )
    );
    assert_eq!(v.ssrcs.len(), 2);

    let mut without = answerer(true, true);
    let a = parse_remote(
        &without
            .accept_offer(&offer, Instant::now())
            .expect("answer"),
    )
    .expect("parses");
    assert!(a.media[2].rejected);
    assert_eq!(a.bundle, ["0", "1"]);
}
