//! RFC 3264 / RFC 4317 offer/answer behaviour.
#![allow(clippy::unwrap_used)]

use natter_sdp::{
    create_answer, create_offer, negotiated_codecs, Attribute, Codec, Direction, MediaCapabilities,
    Origin, SessionDescription,
};

fn load(name: &str) -> SessionDescription {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    SessionDescription::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn audio_caps(codecs: Vec<Codec>) -> MediaCapabilities {
    MediaCapabilities {
        kind: "audio".into(),
        proto: "RTP/AVP".into(),
        port: 49174,
        codecs,
        formats: vec![],
        direction: Direction::SendRecv,
        rtcp_mux: false,
        extra_attributes: vec![],
    }
}

fn bob() -> Origin {
    Origin {
        username: "bob".into(),
        session_id: "2808844564".into(),
        session_version: 2808844564,
        unicast_address: "host.biloxi.example.com".into(),
        ..Origin::default()
    }
}

#[test]
fn rfc4317_audio_accepted_video_rejected() {
    let offer = load("rfc4317-2.1-offer.sdp");
    let caps = vec![audio_caps(vec![
        Codec::new("PCMU", 8000, None, 0),
        Codec::new("PCMA", 8000, None, 8),
    ])];
    let answer = create_answer(&offer, bob(), &caps).unwrap();
    assert_eq!(answer.media.len(), 2);
    assert_eq!(answer.media[0].formats, vec!["0", "8"]);
    assert_eq!(answer.media[0].port, 49174);
    assert!(answer.media[1].is_rejected());
    assert_eq!(answer.media[1].formats, vec!["31", "32"]);
    let text = answer.to_string();
    assert!(text.contains("m=audio 49174 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\nm=video 0 RTP/AVP 31 32\r\n"), "{text}");
}

#[test]
fn dynamic_payload_types_follow_the_offer_and_map_both_ways() {
    // we prefer opus on 96, the offer uses 111: the answer must use 111 (RFC 3264 §6.1)
    let offer = load("chromium156-nat-offer-host-srflx-relay.sdp");
    let mut caps = audio_caps(vec![
        Codec::new("opus", 48000, Some(2), 96),
        Codec::new("telephone-event", 8000, None, 101),
        Codec::new("PCMA", 8000, None, 8),
    ]);
    caps.proto = "UDP/TLS/RTP/SAVPF".into();
    caps.rtcp_mux = true;
    caps.extra_attributes = vec![Attribute::value("setup", "active")];
    let answer = create_answer(&offer, bob(), &[caps]).unwrap();
    let a = &answer.media[0];
    // offerer's order: 111 opus, 8 PCMA, 126 telephone-event/8000
    assert_eq!(a.formats, vec!["111", "8", "126"]);
    assert!(a.rtcp_mux());
    assert_eq!(a.mid(), Some("0"));
    assert_eq!(a.fmtp("111").unwrap().params, "minptime=10;useinbandfec=1");
    assert!(answer.media[1].is_rejected(), "no datachannel capability");
    assert_eq!(answer.bundle_mids().unwrap(), vec!["0"]);
    let neg = negotiated_codecs(a, &offer.media[0]);
    assert_eq!(neg.len(), 3);
    assert_eq!(
        (neg[0].name.as_str(), neg[0].send_pt, neg[0].recv_pt),
        ("opus", 111, 111)
    );
    // the answer re-parses and round-trips
    let text = answer.to_string();
    assert_eq!(SessionDescription::parse(&text).unwrap().to_string(), text);
}

#[test]
fn payload_type_mapping_when_answerer_numbers_differ() {
    let offer = create_offer(
        Origin::default(),
        &[audio_caps(vec![Codec::new("opus", 48000, Some(2), 96)])],
    );
    let mut answer = offer.clone();
    answer.media[0].formats = vec!["111".into()];
    answer.media[0].attributes.retain(|a| a.name != "rtpmap");
    answer.media[0]
        .attributes
        .push(Attribute::value("rtpmap", "111 OPUS/48000/2"));
    let neg = negotiated_codecs(&offer.media[0], &answer.media[0]);
    assert_eq!(neg.len(), 1);
    assert_eq!(neg[0].send_pt, 111);
    assert_eq!(neg[0].recv_pt, 96);
}

#[test]
fn static_payload_types_without_rtpmap_match() {
    let offer = SessionDescription::parse(
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 18 0\r\n",
    )
    .unwrap();
    let answer = create_answer(
        &offer,
        bob(),
        &[audio_caps(vec![Codec::new("pcmu", 8000, None, 0)])],
    )
    .unwrap();
    assert_eq!(answer.media[0].formats, vec!["0"]);
}

#[test]
fn only_dtmf_in_common_rejects() {
    let offer = load("asterisk-20-offer.sdp");
    let answer = create_answer(
        &offer,
        bob(),
        &[audio_caps(vec![Codec::new(
            "telephone-event",
            8000,
            None,
            101,
        )])],
    )
    .unwrap();
    assert!(answer.media[0].is_rejected());
}

#[test]
fn directions_and_hold() {
    use Direction::*;
    assert_eq!(Direction::answer(SendOnly, SendRecv), RecvOnly);
    assert_eq!(Direction::answer(RecvOnly, SendRecv), SendOnly);
    assert_eq!(Direction::answer(SendRecv, SendRecv), SendRecv);
    assert_eq!(Direction::answer(Inactive, SendRecv), Inactive);
    assert_eq!(Direction::answer(SendRecv, RecvOnly), RecvOnly);
    assert_eq!(Direction::answer(SendOnly, SendOnly), Inactive);

    let mut offer = create_offer(
        Origin::default(),
        &[audio_caps(vec![Codec::new("PCMU", 8000, None, 0)])],
    );
    offer.media[0].hold();
    assert_eq!(offer.media[0].direction_attr(), Some(SendOnly));
    assert_eq!(offer.media[0].attribute_values("sendrecv").count(), 0);
    let answer = create_answer(
        &offer,
        bob(),
        &[audio_caps(vec![Codec::new("PCMU", 8000, None, 0)])],
    )
    .unwrap();
    assert_eq!(answer.media[0].direction_attr(), Some(RecvOnly));
    offer.media[0].resume();
    assert_eq!(offer.media[0].direction_attr(), Some(SendRecv));
    // hold from recvonly goes to inactive
    offer.media[0].set_direction(RecvOnly);
    offer.media[0].hold();
    assert_eq!(offer.media[0].direction_attr(), Some(Inactive));
}

#[test]
fn adding_and_removing_streams_in_a_new_offer() {
    let pcmu = audio_caps(vec![Codec::new("PCMU", 8000, None, 0)]);
    let mut offer = create_offer(Origin::default(), std::slice::from_ref(&pcmu));
    assert_eq!(offer.origin.session_version, 0);
    // add video
    let mut video = natter_sdp::Media::new("video", 51372, "RTP/AVP", vec![]);
    video.formats.push("31".into());
    video.push_attribute(Attribute::value("mid", "1"));
    let idx = offer.add_media(video);
    offer.bump_version();
    assert_eq!(idx, 1);
    assert_eq!(offer.origin.session_version, 1);
    let answer = create_answer(&offer, bob(), std::slice::from_ref(&pcmu)).unwrap();
    assert_eq!(answer.media.len(), 2);
    assert!(answer.media[1].is_rejected());
    // remove audio: port 0, m-line stays, attributes gone except mid
    assert!(offer.remove_media(0));
    offer.bump_version();
    assert!(offer.media[0].is_rejected());
    assert_eq!(offer.media[0].attributes.len(), 1);
    let answer = create_answer(&offer, bob(), &[pcmu]).unwrap();
    assert!(answer.media[0].is_rejected());
    assert!(!offer.remove_media(9));
}

#[test]
fn offer_with_datachannel_and_bundle() {
    let dc = MediaCapabilities {
        kind: "application".into(),
        proto: "UDP/DTLS/SCTP".into(),
        port: 9,
        codecs: vec![],
        formats: vec!["webrtc-datachannel".into()],
        direction: Direction::SendRecv,
        rtcp_mux: false,
        extra_attributes: vec![Attribute::value("sctp-port", "5000")],
    };
    let mut a = audio_caps(vec![Codec {
        fmtp: Some("minptime=10".into()),
        ..Codec::new("opus", 48000, Some(2), 111)
    }]);
    a.rtcp_mux = true;
    let offer = create_offer(Origin::default(), &[a.clone(), dc.clone()]);
    let text = offer.to_string();
    assert_eq!(
        text,
        "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 49174 RTP/AVP 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\na=rtcp-mux\r\na=sendrecv\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\na=sendrecv\r\na=sctp-port:5000\r\n"
    );
    let answer = create_answer(&offer, bob(), &[a, dc]).unwrap();
    assert_eq!(answer.bundle_mids().unwrap(), vec!["0", "1"]);
    assert_eq!(answer.media[1].formats, vec!["webrtc-datachannel"]);
}

#[test]
fn h264_packetization_mode_and_rtx_apt() {
    let offer = load("chromium-video-offer-h264-rtx.sdp");
    let caps = MediaCapabilities {
        kind: "video".into(),
        proto: "UDP/TLS/RTP/SAVPF".into(),
        port: 9,
        codecs: vec![
            Codec {
                fmtp: Some("packetization-mode=1;profile-level-id=42e01f".into()),
                ..Codec::new("H264", 90000, None, 100)
            },
            Codec::new("rtx", 90000, None, 101),
        ],
        formats: vec![],
        direction: Direction::RecvOnly,
        rtcp_mux: true,
        extra_attributes: vec![],
    };
    let answer = create_answer(&offer, bob(), &[caps]).unwrap();
    let m = &answer.media[0];
    // 102 (mode 1) accepted with its rtx 103; 104 (mode 0), VP8 and AV1 and their rtx not
    assert_eq!(m.formats, vec!["102", "103"]);
    assert_eq!(m.fmtp("103").unwrap().params, "apt=102");
    assert_eq!(m.direction_attr(), Some(Direction::RecvOnly));
    let neg = negotiated_codecs(m, &offer.media[0]);
    assert_eq!(
        neg.iter().map(|n| n.send_pt).collect::<Vec<_>>(),
        vec![102, 103]
    );
}
