//! SDP offer/answer for the phone's audio stream: natter against natter, and natter
//! answering offers written the way other implementations (baresip, browsers/Janus,
//! Asterisk, pjsua) write them. Every assertion is on exact values: payload types,
//! addresses, keys, roles, attribute lines.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use natter_media::CodecKind;
use natter_phone::offer::{
    answer_offer, create_offer, read_answer, with_direction, DtlsParams, Keying, LocalMedia,
    Negotiated, OfferError, SrtpMode, SDES_PROFILES,
};
use natter_sdp::{Direction, SessionDescription};
use natter_srtp::{SdesKey, SrtpProfile};
use rand::rngs::StdRng;
use rand::SeedableRng;

const A_ADDR: &str = "192.0.2.10:40000";
const B_ADDR: &str = "198.51.100.20:50000";

/// A made-up but well-formed SHA-256 fingerprint for our side.
const OUR_FP: &str = "11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00";

/// The RFC 4568 §9.1 example key, without its MKI (which we refuse).
const RFC4568_INLINE: &str = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
const RFC4568_KEY: [u8; 16] = [
    61, 45, 110, 64, 37, 94, 120, 33, 66, 106, 117, 102, 114, 57, 41, 63,
];
const RFC4568_SALT: [u8; 14] = [44, 35, 53, 104, 92, 96, 61, 38, 93, 123, 113, 105, 80, 81];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn local(a: &str, codecs: &[CodecKind], srtp: SrtpMode, seed: u64) -> LocalMedia {
    let mut rng = StdRng::seed_from_u64(seed);
    LocalMedia {
        addr: addr(a),
        codecs: codecs.to_vec(),
        srtp,
        srtp_required: false,
        sdes_keys: SDES_PROFILES
            .iter()
            .map(|p| SdesKey::generate(*p, &mut rng))
            .collect(),
        fingerprint: Some(OUR_FP.to_owned()),
        ice: None,
        direction: Direction::SendRecv,
        session_id: 4242 + seed,
        version: 1,
    }
}

fn lines(sdp: &str) -> Vec<&str> {
    sdp.lines().map(str::trim_end).collect()
}

fn has_line(sdp: &str, line: &str) -> bool {
    lines(sdp).contains(&line)
}

fn count_prefix(sdp: &str, prefix: &str) -> usize {
    lines(sdp).iter().filter(|l| l.starts_with(prefix)).count()
}

fn crlf(s: &str) -> Vec<u8> {
    let mut out = String::new();
    for l in s.lines() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn expected_pt(k: CodecKind) -> u8 {
    match k {
        CodecKind::Pcmu => 0,
        CodecKind::Pcma => 8,
        CodecKind::G722 => 9,
        CodecKind::Opus => 111,
        CodecKind::L16 => 112,
    }
}

fn expected_rtpmap(k: CodecKind) -> &'static str {
    match k {
        CodecKind::Pcmu => "PCMU/8000",
        CodecKind::Pcma => "PCMA/8000",
        CodecKind::G722 => "G722/8000",
        CodecKind::Opus => "opus/48000/2",
        CodecKind::L16 => "L16/16000",
    }
}

fn expected_clock(k: CodecKind) -> u32 {
    match k {
        CodecKind::Opus => 48000,
        CodecKind::L16 => 16000,
        _ => 8000,
    }
}

// ---------------------------------------------------------------------------------------
// (1) natter offer -> natter answer
// ---------------------------------------------------------------------------------------

#[test]
fn offer_lists_every_codec_in_order_with_dtmf_and_mux() {
    let a = local(A_ADDR, &CodecKind::ALL, SrtpMode::Off, 1);
    let offer = create_offer(&a);
    assert!(has_line(&offer, "v=0"), "{offer}");
    assert!(
        has_line(&offer, "o=natter 4243 1 IN IP4 192.0.2.10"),
        "{offer}"
    );
    assert!(has_line(&offer, "c=IN IP4 192.0.2.10"), "{offer}");
    assert!(
        has_line(&offer, "m=audio 40000 RTP/AVP 111 9 0 8 112 101"),
        "{offer}"
    );
    for k in CodecKind::ALL {
        let l = format!("a=rtpmap:{} {}", expected_pt(k), expected_rtpmap(k));
        assert!(has_line(&offer, &l), "missing {l}: {offer}");
    }
    assert!(
        has_line(&offer, "a=fmtp:111 useinbandfec=1;minptime=10"),
        "{offer}"
    );
    assert!(
        has_line(&offer, "a=rtpmap:101 telephone-event/8000"),
        "{offer}"
    );
    assert!(has_line(&offer, "a=fmtp:101 0-16"), "{offer}");
    assert!(has_line(&offer, "a=rtcp-mux"), "{offer}");
    assert!(has_line(&offer, "a=sendrecv"), "{offer}");
    assert!(has_line(&offer, "a=ptime:20"), "{offer}");
    // Plain offer: no keys on the wire even though keys were generated.
    assert_eq!(count_prefix(&offer, "a=crypto"), 0, "{offer}");
    assert_eq!(count_prefix(&offer, "a=fingerprint"), 0, "{offer}");
    // Our own parser accepts what we write.
    SessionDescription::parse(&offer).unwrap();
}

#[test]
fn round_trip_for_each_preference_order() {
    // The offerer lists every codec; the answerer's preference decides.
    let a = local(A_ADDR, &CodecKind::ALL, SrtpMode::Off, 1);
    let offer = create_offer(&a);
    for first in CodecKind::ALL {
        let mut prefs = vec![first];
        prefs.extend(CodecKind::ALL.iter().copied().filter(|k| *k != first));
        let b = local(B_ADDR, &prefs, SrtpMode::Off, 2);
        let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
        let pt = expected_pt(first);
        assert!(
            has_line(&answer, &format!("m=audio 50000 RTP/AVP {pt} 101")),
            "{first:?}: {answer}"
        );
        assert!(has_line(
            &answer,
            &format!("a=rtpmap:{pt} {}", expected_rtpmap(first))
        ));
        assert!(has_line(&answer, "a=rtcp-mux"), "{answer}");
        assert!(has_line(&answer, "c=IN IP4 198.51.100.20"), "{answer}");
        assert_eq!(
            nb,
            Negotiated {
                codec: first,
                send_pt: pt,
                recv_pt: pt,
                clock_rate: expected_clock(first),
                dtmf_send_pt: Some(101),
                dtmf_recv_pt: Some(101),
                dtmf_clock: 8000,
                cn_pt: None,
                remote_rtp: addr(A_ADDR),
                remote_rtcp: addr(A_ADDR),
                rtcp_mux: true,
                keying: Keying::None,
                ice: None,
                direction: Direction::SendRecv,
                remote_direction: Direction::SendRecv,
            },
            "answerer, {first:?} first"
        );
        let na = read_answer(answer.as_bytes(), &a).unwrap();
        assert_eq!(
            na,
            Negotiated {
                codec: first,
                send_pt: pt,
                recv_pt: pt,
                clock_rate: expected_clock(first),
                dtmf_send_pt: Some(101),
                dtmf_recv_pt: Some(101),
                dtmf_clock: 8000,
                cn_pt: None,
                remote_rtp: addr(B_ADDR),
                remote_rtcp: addr(B_ADDR),
                rtcp_mux: true,
                keying: Keying::None,
                ice: None,
                direction: Direction::SendRecv,
                remote_direction: Direction::SendRecv,
            },
            "offerer, {first:?} first"
        );
    }
}

#[test]
fn offerer_order_does_not_override_answerer_preference() {
    // A prefers PCMA; B prefers PCMU but also has PCMA: B's order decides (RFC 3264 leaves
    // it to the answerer), so both settle on PCMU.
    let a = local(
        A_ADDR,
        &[CodecKind::Pcma, CodecKind::Pcmu],
        SrtpMode::Off,
        1,
    );
    let b = local(
        B_ADDR,
        &[CodecKind::Pcmu, CodecKind::Pcma],
        SrtpMode::Off,
        2,
    );
    let offer = create_offer(&a);
    assert!(has_line(&offer, "m=audio 40000 RTP/AVP 8 0 101"), "{offer}");
    let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
    assert_eq!(nb.codec, CodecKind::Pcmu);
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 0 101"), "{answer}");
    let na = read_answer(answer.as_bytes(), &a).unwrap();
    assert_eq!((na.codec, na.send_pt, na.recv_pt), (CodecKind::Pcmu, 0, 0));
}

#[test]
fn round_trip_sdes_every_profile() {
    for (i, profile) in SDES_PROFILES.iter().enumerate() {
        let mut a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 10);
        // The offerer offers only this profile; the answerer has keys for all four.
        a.sdes_keys.retain(|k| k.profile == *profile);
        a.srtp_required = true;
        let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 20);
        let offer = create_offer(&a);
        assert!(!has_line(&offer, "m=audio 40000 RTP/AVP 0 101"), "{offer}");
        assert!(has_line(&offer, "m=audio 40000 RTP/SAVP 0 101"), "{offer}");
        assert_eq!(count_prefix(&offer, "a=crypto:"), 1, "{offer}");
        let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
        assert!(
            has_line(&answer, "m=audio 50000 RTP/SAVP 0 101"),
            "{answer}"
        );
        let b_key = b.sdes_keys[i].clone();
        assert_eq!(b_key.profile, *profile);
        assert!(
            has_line(
                &answer,
                &format!("a=crypto:{}", b_key.crypto_attribute_value(1))
            ),
            "{answer}"
        );
        assert_eq!(
            nb.keying,
            Keying::Sdes {
                local: b_key.clone(),
                remote: a.sdes_keys[0].clone()
            }
        );
        let na = read_answer(answer.as_bytes(), &a).unwrap();
        assert_eq!(
            na.keying,
            Keying::Sdes {
                local: a.sdes_keys[0].clone(),
                remote: b_key
            }
        );
    }
}

#[test]
fn sdes_best_effort_offer_is_avp_with_all_crypto_lines() {
    let a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 10);
    let offer = create_offer(&a);
    assert!(has_line(&offer, "m=audio 40000 RTP/AVP 0 101"), "{offer}");
    for (i, k) in a.sdes_keys.iter().enumerate() {
        let l = format!("a=crypto:{}", k.crypto_attribute_value(i as u32 + 1));
        assert!(has_line(&offer, &l), "missing {l}: {offer}");
    }
    // The answerer's first usable line is tag 1 (AES_CM_128_HMAC_SHA1_80).
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 20);
    let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 0 101"), "{answer}");
    assert_eq!(count_prefix(&answer, "a=crypto:"), 1, "{answer}");
    match nb.keying {
        Keying::Sdes { local, remote } => {
            assert_eq!(local.profile, SrtpProfile::AesCm128HmacSha1_80);
            assert_eq!(remote, a.sdes_keys[0]);
        }
        k => panic!("expected SDES, got {k:?}"),
    }
    // A plain answerer ignores the keys of a best-effort (RTP/AVP) offer.
    let plain = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 21);
    let (answer, nb) = answer_offer(offer.as_bytes(), &plain).unwrap();
    assert_eq!(nb.keying, Keying::None);
    assert_eq!(count_prefix(&answer, "a=crypto"), 0, "{answer}");
    // And the offerer, reading that plain answer, has no keys.
    assert_eq!(
        read_answer(answer.as_bytes(), &a).unwrap().keying,
        Keying::None
    );
}

#[test]
fn round_trip_dtls_offerer_is_server() {
    let a = local(
        A_ADDR,
        &[CodecKind::Opus, CodecKind::Pcmu],
        SrtpMode::Dtls,
        1,
    );
    let mut b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Dtls, 2);
    let b_fp = "AA:".repeat(31) + "AB";
    b.fingerprint = Some(b_fp.clone());
    let offer = create_offer(&a);
    assert!(
        has_line(&offer, "m=audio 40000 UDP/TLS/RTP/SAVP 111 0 101"),
        "{offer}"
    );
    assert!(
        has_line(&offer, &format!("a=fingerprint:sha-256 {OUR_FP}")),
        "{offer}"
    );
    assert!(has_line(&offer, "a=setup:actpass"), "{offer}");
    let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
    assert!(
        has_line(&answer, "m=audio 50000 UDP/TLS/RTP/SAVP 0 101"),
        "{answer}"
    );
    assert!(has_line(&answer, "a=setup:active"), "{answer}");
    assert!(
        has_line(&answer, &format!("a=fingerprint:sha-256 {b_fp}")),
        "{answer}"
    );
    assert_eq!(
        nb.keying,
        Keying::Dtls(DtlsParams {
            client: true,
            remote_fingerprint: OUR_FP.into()
        })
    );
    let na = read_answer(answer.as_bytes(), &a).unwrap();
    assert_eq!(
        na.keying,
        Keying::Dtls(DtlsParams {
            client: false,
            remote_fingerprint: b_fp
        })
    );
    assert_eq!((na.codec, na.send_pt), (CodecKind::Pcmu, 0));
}

#[test]
fn answer_keeps_session_id_and_version_of_answerer() {
    let a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 1);
    let mut b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 2);
    b.session_id = 987654321;
    b.version = 7;
    let (answer, _) = answer_offer(create_offer(&a).as_bytes(), &b).unwrap();
    assert!(
        has_line(&answer, "o=natter 987654321 7 IN IP4 198.51.100.20"),
        "{answer}"
    );
}

#[test]
fn ipv6_addresses_round_trip() {
    let a = local("[2001:db8::1]:40000", &[CodecKind::Pcmu], SrtpMode::Off, 1);
    let b = local("[2001:db8::2]:50000", &[CodecKind::Pcmu], SrtpMode::Off, 2);
    let offer = create_offer(&a);
    assert!(has_line(&offer, "c=IN IP6 2001:db8::1"), "{offer}");
    let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
    assert_eq!(nb.remote_rtp, addr("[2001:db8::1]:40000"));
    let na = read_answer(answer.as_bytes(), &a).unwrap();
    assert_eq!(na.remote_rtp, addr("[2001:db8::2]:50000"));
}

// ---------------------------------------------------------------------------------------
// (2) offers from other implementations
// ---------------------------------------------------------------------------------------

/// baresip with `mediaenc srtp` (best effort): RTP/AVP, two crypto lines, the 32-bit tag
/// first, telephone-event, mux offered.
fn baresip_offer() -> Vec<u8> {
    crlf(&format!(
        "v=0
         o=- 3162937842 3162937843 IN IP4 192.168.1.33
         s=-
         c=IN IP4 192.168.1.33
         t=0 0
         m=audio 10350 RTP/AVP 0 8 101
         b=AS:64
         a=rtpmap:0 PCMU/8000
         a=rtpmap:8 PCMA/8000
         a=rtpmap:101 telephone-event/8000
         a=fmtp:101 0-15
         a=sendrecv
         a=label:1
         a=rtcp-rsize
         a=ssrc:1478932104 cname:sip:alice@example.org
         a=rtcp-mux
         a=ptime:20
         a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:QjnGMGJzbnJXNjU4cXNqUDlYNTh6MnRyOUpJbXNO|2^20
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 {RFC4568_INLINE}
         "
    ))
}

#[test]
fn baresip_sdes_offer_takes_first_line_we_have_a_key_for() {
    // Only an _80 key: the _32 line (tag 1) is skipped, tag 2 is answered with tag 2.
    let mut b = local(
        B_ADDR,
        &[CodecKind::Pcma, CodecKind::Pcmu],
        SrtpMode::Sdes,
        5,
    );
    b.sdes_keys
        .retain(|k| k.profile == SrtpProfile::AesCm128HmacSha1_80);
    let (answer, nb) = answer_offer(&baresip_offer(), &b).unwrap();
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 8 101"), "{answer}");
    assert!(has_line(&answer, "a=rtpmap:8 PCMA/8000"), "{answer}");
    assert!(
        has_line(
            &answer,
            &format!("a=crypto:{}", b.sdes_keys[0].crypto_attribute_value(2))
        ),
        "{answer}"
    );
    assert_eq!(count_prefix(&answer, "a=crypto:"), 1);
    assert_eq!(
        nb,
        Negotiated {
            codec: CodecKind::Pcma,
            send_pt: 8,
            recv_pt: 8,
            clock_rate: 8000,
            dtmf_send_pt: Some(101),
            dtmf_recv_pt: Some(101),
            dtmf_clock: 8000,
            cn_pt: None,
            remote_rtp: addr("192.168.1.33:10350"),
            remote_rtcp: addr("192.168.1.33:10350"),
            rtcp_mux: true,
            keying: Keying::Sdes {
                local: b.sdes_keys[0].clone(),
                remote: SdesKey {
                    profile: SrtpProfile::AesCm128HmacSha1_80,
                    key: RFC4568_KEY.to_vec(),
                    salt: RFC4568_SALT.to_vec(),
                },
            },
            ice: None,
            direction: Direction::SendRecv,
            remote_direction: Direction::SendRecv,
        }
    );
}

#[test]
fn baresip_sdes_offer_with_all_keys_takes_tag_1() {
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 5);
    let (answer, nb) = answer_offer(&baresip_offer(), &b).unwrap();
    let ours = b
        .sdes_keys
        .iter()
        .find(|k| k.profile == SrtpProfile::AesCm128HmacSha1_32)
        .unwrap()
        .clone();
    assert!(
        has_line(
            &answer,
            &format!("a=crypto:{}", ours.crypto_attribute_value(1))
        ),
        "{answer}"
    );
    match nb.keying {
        Keying::Sdes { local, remote } => {
            assert_eq!(local, ours);
            assert_eq!(remote.profile, SrtpProfile::AesCm128HmacSha1_32);
            assert_eq!(remote.key.len(), 16);
            assert_eq!(remote.salt.len(), 14);
        }
        k => panic!("{k:?}"),
    }
    assert_eq!((nb.codec, nb.send_pt), (CodecKind::Pcmu, 0));
}

#[test]
fn baresip_offer_answered_plain_when_srtp_off() {
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 5);
    let (answer, nb) = answer_offer(&baresip_offer(), &b).unwrap();
    assert_eq!(nb.keying, Keying::None);
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 0 101"), "{answer}");
    assert_eq!(count_prefix(&answer, "a=crypto"), 0, "{answer}");
}

/// A browser/Janus/baresip-dtls-style offer: opus/48000/2, DTLS-SRTP with an uppercase
/// hash name, telephone-event at 48 kHz only, sendrecv, mux.
fn dtls_offer(setup: &str) -> Vec<u8> {
    crlf(&format!(
        "v=0
         o=mozilla...THIS_IS_SDPARTA-99.0 5146937452359412345 0 IN IP4 0.0.0.0
         s=-
         t=0 0
         a=fingerprint:SHA-256 5D:1B:6E:0A:3C:E5:E6:52:4C:2A:93:87:2D:60:50:1F:61:D8:3E:58:5B:7A:24:91:41:8C:AA:04:5E:10:05:33
         a=group:BUNDLE 0
         a=msid-semantic:WMS *
         m=audio 41234 UDP/TLS/RTP/SAVP 111 9 0 8 101
         c=IN IP4 203.0.113.77
         a=sendrecv
         a=fmtp:111 maxplaybackrate=48000;stereo=1;useinbandfec=1
         a=fmtp:101 0-15
         a=mid:0
         a=rtcp-mux
         a=rtpmap:111 opus/48000/2
         a=rtpmap:9 G722/8000/1
         a=rtpmap:0 PCMU/8000
         a=rtpmap:8 PCMA/8000
         a=rtpmap:101 telephone-event/48000
         a=setup:{setup}
         a=ssrc:2937513425 cname:{{b3c1c5c0-1d5e-4c2c-9a6e-0b1d2c3e4f50}}
         "
    ))
}

const BROWSER_FP: &str =
    "5D:1B:6E:0A:3C:E5:E6:52:4C:2A:93:87:2D:60:50:1F:61:D8:3E:58:5B:7A:24:91:41:8C:AA:04:5E:10:05:33";

#[test]
fn dtls_opus_offer_actpass_makes_us_active_client() {
    let b = local(
        B_ADDR,
        &[CodecKind::Opus, CodecKind::Pcmu],
        SrtpMode::Dtls,
        7,
    );
    let (answer, nb) = answer_offer(&dtls_offer("actpass"), &b).unwrap();
    assert!(
        has_line(&answer, "m=audio 50000 UDP/TLS/RTP/SAVP 111 101"),
        "{answer}"
    );
    assert!(has_line(&answer, "a=rtpmap:111 opus/48000/2"), "{answer}");
    assert!(has_line(&answer, "a=setup:active"), "{answer}");
    assert!(
        has_line(&answer, &format!("a=fingerprint:sha-256 {OUR_FP}")),
        "{answer}"
    );
    assert!(has_line(&answer, "a=rtcp-mux"), "{answer}");
    assert_eq!(count_prefix(&answer, "a=crypto"), 0);
    assert_eq!(
        nb,
        Negotiated {
            codec: CodecKind::Opus,
            send_pt: 111,
            recv_pt: 111,
            clock_rate: 48000,
            // Only telephone-event/48000 was offered: the clock-matched one is taken.
            dtmf_send_pt: Some(101),
            dtmf_recv_pt: Some(101),
            dtmf_clock: 48000,
            cn_pt: None,
            remote_rtp: addr("203.0.113.77:41234"),
            remote_rtcp: addr("203.0.113.77:41234"),
            rtcp_mux: true,
            keying: Keying::Dtls(DtlsParams {
                client: true,
                remote_fingerprint: BROWSER_FP.into(),
            }),
            ice: None,
            direction: Direction::SendRecv,
            remote_direction: Direction::SendRecv,
        }
    );
}

#[test]
fn dtls_offer_with_telephone_event_48k_is_answered_at_48k() {
    // The answer must describe PT 101 with the clock the offer gave it (RFC 3264 §6.1:
    // same PT, same encoding); telephone-event/8000 under PT 101 would be a different
    // format from the one offered.
    let b = local(B_ADDR, &[CodecKind::Opus], SrtpMode::Dtls, 7);
    let (answer, _) = answer_offer(&dtls_offer("actpass"), &b).unwrap();
    assert!(
        has_line(&answer, "a=rtpmap:101 telephone-event/48000"),
        "{answer}"
    );
}

#[test]
fn dtls_offer_setup_active_makes_us_passive_server() {
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Dtls, 7);
    let (answer, nb) = answer_offer(&dtls_offer("active"), &b).unwrap();
    assert!(has_line(&answer, "a=setup:passive"), "{answer}");
    // telephone-event was offered at 48 kHz only, which does not go with PCMU's 8 kHz
    // clock (RFC 4733 §2.1): no DTMF payload in the answer.
    assert!(
        has_line(&answer, "m=audio 50000 UDP/TLS/RTP/SAVP 0"),
        "{answer}"
    );
    assert_eq!((nb.dtmf_send_pt, nb.dtmf_recv_pt), (None, None));
    assert_eq!(
        nb.keying,
        Keying::Dtls(DtlsParams {
            client: false,
            remote_fingerprint: BROWSER_FP.into()
        })
    );
    let (answer, nb) = answer_offer(&dtls_offer("passive"), &b).unwrap();
    assert!(has_line(&answer, "a=setup:active"), "{answer}");
    assert!(matches!(
        nb.keying,
        Keying::Dtls(DtlsParams { client: true, .. })
    ));
}

#[test]
fn dtls_offer_answered_even_when_we_prefer_sdes() {
    // The profile asks for DTLS: an SDES-configured phone with a certificate follows it.
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 7);
    let (_, nb) = answer_offer(&dtls_offer("actpass"), &b).unwrap();
    assert!(matches!(
        nb.keying,
        Keying::Dtls(DtlsParams { client: true, .. })
    ));
    // Without a certificate it is refused.
    let mut nocert = b.clone();
    nocert.fingerprint = None;
    assert!(matches!(
        answer_offer(&dtls_offer("actpass"), &nocert),
        Err(OfferError::Keying(_))
    ));
}

/// Asterisk (chan_pjsip) style: c= at session level, static PTs with rtpmap, CN,
/// telephone-event, no mux, `a=maxptime`.
fn asterisk_offer() -> Vec<u8> {
    crlf(
        "v=0
         o=- 1733912345 1733912347 IN IP4 203.0.113.5
         s=Asterisk
         c=IN IP4 203.0.113.5
         t=0 0
         m=audio 17450 RTP/AVP 9 0 8 3 13 101
         a=rtpmap:9 G722/8000
         a=rtpmap:0 PCMU/8000
         a=rtpmap:8 PCMA/8000
         a=rtpmap:3 GSM/8000
         a=rtpmap:13 CN/8000
         a=rtpmap:101 telephone-event/8000
         a=fmtp:101 0-16
         a=ptime:20
         a=maxptime:150
         a=sendrecv
         ",
    )
}

#[test]
fn asterisk_offer_session_level_c_no_mux_rtcp_port_plus_one() {
    let b = local(
        B_ADDR,
        &[CodecKind::G722, CodecKind::Pcmu],
        SrtpMode::Off,
        3,
    );
    let (answer, nb) = answer_offer(&asterisk_offer(), &b).unwrap();
    assert_eq!(
        nb,
        Negotiated {
            codec: CodecKind::G722,
            send_pt: 9,
            recv_pt: 9,
            clock_rate: 8000,
            dtmf_send_pt: Some(101),
            dtmf_recv_pt: Some(101),
            dtmf_clock: 8000,
            cn_pt: Some(13),
            remote_rtp: addr("203.0.113.5:17450"),
            remote_rtcp: addr("203.0.113.5:17451"),
            rtcp_mux: false,
            keying: Keying::None,
            ice: None,
            direction: Direction::SendRecv,
            remote_direction: Direction::SendRecv,
        }
    );
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 9 101"), "{answer}");
    // No mux offered: none in the answer (RFC 5761 §5.1.1).
    assert_eq!(count_prefix(&answer, "a=rtcp-mux"), 0, "{answer}");
}

/// pjsua style: static PTs without rtpmap, c= only at session level, a separate
/// `a=rtcp:PORT`, no mux.
fn pjsua_offer(rtcp_line: &str) -> Vec<u8> {
    crlf(&format!(
        "v=0
         o=- 3912345678 3912345678 IN IP4 10.0.0.7
         s=pjmedia
         b=AS:84
         c=IN IP4 10.0.0.7
         t=0 0
         a=X-nat:0
         m=audio 4000 RTP/AVP 9 0 8 18 101
         b=TIAS:64000
         {rtcp_line}
         a=sendrecv
         a=rtpmap:101 telephone-event/8000
         a=fmtp:101 0-16
         a=ssrc:1925648234 cname:5d2a3f4b6c7d8e9f
         "
    ))
}

#[test]
fn pjsua_offer_static_pts_without_rtpmap_and_rtcp_port() {
    let b = local(
        B_ADDR,
        &[CodecKind::Pcmu, CodecKind::G722],
        SrtpMode::Off,
        4,
    );
    let (answer, nb) = answer_offer(&pjsua_offer("a=rtcp:4001"), &b).unwrap();
    assert_eq!(
        nb,
        Negotiated {
            codec: CodecKind::Pcmu,
            send_pt: 0,
            recv_pt: 0,
            clock_rate: 8000,
            dtmf_send_pt: Some(101),
            dtmf_recv_pt: Some(101),
            dtmf_clock: 8000,
            cn_pt: None,
            remote_rtp: addr("10.0.0.7:4000"),
            remote_rtcp: addr("10.0.0.7:4001"),
            rtcp_mux: false,
            keying: Keying::None,
            ice: None,
            direction: Direction::SendRecv,
            remote_direction: Direction::SendRecv,
        }
    );
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 0 101"), "{answer}");
    assert!(has_line(&answer, "a=rtpmap:0 PCMU/8000"), "{answer}");
    assert_eq!(count_prefix(&answer, "a=rtcp-mux"), 0, "{answer}");

    // G.722 by static PT 9 only, for a G.722-first phone.
    let wb = local(B_ADDR, &[CodecKind::G722], SrtpMode::Off, 4);
    let (_, nb) = answer_offer(&pjsua_offer("a=rtcp:4001"), &wb).unwrap();
    assert_eq!(
        (nb.codec, nb.send_pt, nb.clock_rate),
        (CodecKind::G722, 9, 8000)
    );
}

#[test]
fn pjsua_offer_rtcp_with_its_own_address() {
    let b = local(B_ADDR, &[CodecKind::Pcma], SrtpMode::Off, 4);
    let (_, nb) = answer_offer(&pjsua_offer("a=rtcp:4101 IN IP4 10.0.0.8"), &b).unwrap();
    assert_eq!((nb.codec, nb.send_pt), (CodecKind::Pcma, 8));
    assert_eq!(nb.remote_rtp, addr("10.0.0.7:4000"));
    assert_eq!(nb.remote_rtcp, addr("10.0.0.8:4101"));
    assert!(!nb.rtcp_mux);
}

#[test]
fn media_level_c_overrides_session_level() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.1.1.1
         s=-
         c=IN IP4 10.1.1.1
         t=0 0
         m=audio 6000 RTP/AVP 0
         c=IN IP4 10.2.2.2
         a=rtcp-mux
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 4);
    let (answer, nb) = answer_offer(&offer, &b).unwrap();
    assert_eq!(nb.remote_rtp, addr("10.2.2.2:6000"));
    assert_eq!(nb.remote_rtcp, addr("10.2.2.2:6000"));
    // No telephone-event offered: none answered, none negotiated.
    assert_eq!((nb.dtmf_send_pt, nb.dtmf_recv_pt), (None, None));
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 0"), "{answer}");
    assert_eq!(count_prefix(&answer, "a=rtpmap:101"), 0, "{answer}");
}

#[test]
fn hold_offer_from_peer_is_answered_recvonly() {
    let mut offer = String::from_utf8(asterisk_offer()).unwrap();
    offer = offer.replace("a=sendrecv", "a=sendonly");
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 4);
    let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
    assert_eq!(nb.direction, Direction::RecvOnly);
    assert_eq!(nb.remote_direction, Direction::SendOnly);
    assert!(has_line(&answer, "a=recvonly"), "{answer}");
    assert_eq!(count_prefix(&answer, "a=sendrecv"), 0, "{answer}");
    let offer = offer.replace("a=sendonly", "a=inactive");
    let (answer, nb) = answer_offer(offer.as_bytes(), &b).unwrap();
    assert_eq!(nb.direction, Direction::Inactive);
    assert!(has_line(&answer, "a=inactive"), "{answer}");
}

// ---------------------------------------------------------------------------------------
// (3) refusals
// ---------------------------------------------------------------------------------------

#[test]
fn g729_only_offer_is_no_codec() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/AVP 18 101
         a=rtpmap:18 G729/8000
         a=fmtp:18 annexb=no
         a=rtpmap:101 telephone-event/8000
         ",
    );
    let b = local(B_ADDR, &CodecKind::ALL, SrtpMode::Off, 1);
    assert_eq!(
        answer_offer(&offer, &b).unwrap_err(),
        OfferError::NoCodec("G729/8000,telephone-event/8000".into())
    );
}

#[test]
fn savp_without_crypto_is_keying_error() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/SAVP 0
         ",
    );
    for mode in [SrtpMode::Off, SrtpMode::Sdes, SrtpMode::Dtls] {
        let b = local(B_ADDR, &[CodecKind::Pcmu], mode, 1);
        assert_eq!(
            answer_offer(&offer, &b).unwrap_err(),
            OfferError::Keying("RTP/SAVP without a=crypto or fingerprint".into()),
            "{mode:?}"
        );
    }
}

#[test]
fn savp_with_only_unknown_suites_is_keying_error() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/SAVP 0
         a=crypto:1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 1);
    assert_eq!(
        answer_offer(&offer, &b).unwrap_err(),
        OfferError::Keying("no usable crypto suite in F8_128_HMAC_SHA1_80".into())
    );
}

#[test]
fn dtls_profile_without_fingerprint_is_keying_error() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 UDP/TLS/RTP/SAVP 0
         a=setup:actpass
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Dtls, 1);
    assert_eq!(
        answer_offer(&offer, &b).unwrap_err(),
        OfferError::Keying("DTLS profile without a sha-256 fingerprint".into())
    );
}

#[test]
fn srtp_required_refuses_plain_offer() {
    let a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 1);
    for mode in [SrtpMode::Sdes, SrtpMode::Dtls] {
        let mut b = local(B_ADDR, &[CodecKind::Pcmu], mode, 2);
        b.srtp_required = true;
        assert_eq!(
            answer_offer(create_offer(&a).as_bytes(), &b).unwrap_err(),
            OfferError::Keying("SRTP required, offer is plain RTP".into()),
            "{mode:?}"
        );
        assert_eq!(
            answer_offer(&asterisk_offer(), &b).unwrap_err(),
            OfferError::Keying("SRTP required, offer is plain RTP".into())
        );
    }
}

#[test]
fn srtp_required_offerer_refuses_plain_answer() {
    let mut a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 1);
    a.srtp_required = true;
    let plain_answer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/AVP 0 101
         a=rtpmap:101 telephone-event/8000
         ",
    );
    assert_eq!(
        read_answer(&plain_answer, &a).unwrap_err(),
        OfferError::Keying("SRTP required, answer is plain RTP".into())
    );
}

#[test]
fn video_only_offer_is_no_audio() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=video 5000 RTP/AVP 96
         a=rtpmap:96 VP8/90000
         ",
    );
    let b = local(B_ADDR, &CodecKind::ALL, SrtpMode::Off, 1);
    assert_eq!(
        answer_offer(&offer, &b).unwrap_err(),
        OfferError::NoAudio("no audio m-line with a port".into())
    );
}

#[test]
fn audio_on_unsupported_transport_is_no_audio() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 5000 TCP/RTP/AVP 0
         ",
    );
    let b = local(B_ADDR, &CodecKind::ALL, SrtpMode::Off, 1);
    assert_eq!(
        answer_offer(&offer, &b).unwrap_err(),
        OfferError::NoAudio("unsupported transport TCP/RTP/AVP".into())
    );
}

#[test]
fn unparsable_bytes_are_parse_errors() {
    let b = local(B_ADDR, &CodecKind::ALL, SrtpMode::Off, 1);
    let inputs: [&[u8]; 5] = [
        b"",
        b"hello world",
        b"\xff\xfe\x00\x01garbage",
        b"v=0\r\no=broken\r\n",
        b"m=audio 4000 RTP/AVP 0\r\n",
    ];
    for input in inputs {
        match answer_offer(input, &b) {
            Err(OfferError::Parse(_)) => {}
            other => panic!(
                "{:?}: expected Parse, got {other:?}",
                String::from_utf8_lossy(input)
            ),
        }
        let a = local(A_ADDR, &CodecKind::ALL, SrtpMode::Off, 1);
        assert!(matches!(read_answer(input, &a), Err(OfferError::Parse(_))));
    }
}

#[test]
fn second_video_line_rejected_with_port_zero_audio_taken() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/AVP 0 101
         a=rtpmap:101 telephone-event/8000
         a=rtcp-mux
         m=video 4002 RTP/AVP 96 97
         a=rtpmap:96 VP8/90000
         a=rtpmap:97 H264/90000
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 1);
    let (answer, nb) = answer_offer(&offer, &b).unwrap();
    let m_lines: Vec<&str> = lines(&answer)
        .into_iter()
        .filter(|l| l.starts_with("m="))
        .collect();
    assert_eq!(
        m_lines,
        ["m=audio 50000 RTP/AVP 0 101", "m=video 0 RTP/AVP 96 97"],
        "{answer}"
    );
    assert_eq!(nb.remote_rtp, addr("10.0.0.1:4000"));
    let sd = SessionDescription::parse(&answer).unwrap();
    assert_eq!(sd.media.len(), 2);
    assert_eq!(sd.media[1].port, 0);
    // The offerer sees its audio taken.
    let a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 9);
    let na = read_answer(answer.as_bytes(), &a).unwrap();
    assert_eq!((na.codec, na.remote_rtp), (CodecKind::Pcmu, addr(B_ADDR)));
}

#[test]
fn video_first_then_audio_keeps_order() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=video 4002 RTP/AVP 96
         a=rtpmap:96 VP8/90000
         m=audio 4000 RTP/AVP 8
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcma], SrtpMode::Off, 1);
    let (answer, nb) = answer_offer(&offer, &b).unwrap();
    let m_lines: Vec<&str> = lines(&answer)
        .into_iter()
        .filter(|l| l.starts_with("m="))
        .collect();
    assert_eq!(
        m_lines,
        ["m=video 0 RTP/AVP 96", "m=audio 50000 RTP/AVP 8"],
        "{answer}"
    );
    assert_eq!(nb.remote_rtp, addr("10.0.0.1:4000"));
}

#[test]
fn disabled_audio_line_is_skipped_for_the_next_one() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 0 RTP/AVP 0
         m=audio 4010 RTP/AVP 0
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 1);
    let (answer, nb) = answer_offer(&offer, &b).unwrap();
    assert_eq!(nb.remote_rtp, addr("10.0.0.1:4010"));
    let m_lines: Vec<&str> = lines(&answer)
        .into_iter()
        .filter(|l| l.starts_with("m="))
        .collect();
    assert_eq!(
        m_lines,
        ["m=audio 0 RTP/AVP 0", "m=audio 50000 RTP/AVP 0"],
        "{answer}"
    );
}

// ---------------------------------------------------------------------------------------
// (4) with_direction
// ---------------------------------------------------------------------------------------

fn version_of(sdp: &str) -> u64 {
    SessionDescription::parse(sdp)
        .unwrap()
        .origin
        .session_version
}

fn attr_lines<'a>(sdp: &'a str, prefix: &str) -> Vec<&'a str> {
    sdp.lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with(prefix))
        .collect()
}

#[test]
fn with_direction_sendonly_recvonly_bumps_version_keeps_keys() {
    let mut a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 1);
    a.version = 5;
    let offer = create_offer(&a);
    assert_eq!(version_of(&offer), 5);
    let hold = with_direction(&offer, Direction::SendOnly, None).unwrap();
    assert_eq!(version_of(&hold), 6);
    assert!(has_line(&hold, "a=sendonly"), "{hold}");
    assert_eq!(count_prefix(&hold, "a=sendrecv"), 0, "{hold}");
    assert_eq!(count_prefix(&hold, "a=sendonly"), 1, "{hold}");
    assert_eq!(
        attr_lines(&hold, "a=crypto:"),
        attr_lines(&offer, "a=crypto:")
    );
    assert_eq!(attr_lines(&hold, "a=crypto:").len(), 4);
    assert_eq!(attr_lines(&hold, "m="), attr_lines(&offer, "m="));
    let o_before: Vec<&str> = attr_lines(&offer, "o=")[0].split(' ').collect();
    let o_after: Vec<&str> = attr_lines(&hold, "o=")[0].split(' ').collect();
    assert_eq!(o_before[1], o_after[1], "session id kept");
    assert_eq!(o_after[2], "6");

    let recv = with_direction(&hold, Direction::RecvOnly, None).unwrap();
    assert_eq!(version_of(&recv), 7);
    assert!(has_line(&recv, "a=recvonly"), "{recv}");
    assert_eq!(count_prefix(&recv, "a=sendonly"), 0, "{recv}");

    let resume = with_direction(&recv, Direction::SendRecv, None).unwrap();
    assert_eq!(version_of(&resume), 8);
    assert!(has_line(&resume, "a=sendrecv"), "{resume}");
    assert_eq!(
        attr_lines(&resume, "a=crypto:"),
        attr_lines(&offer, "a=crypto:")
    );
}

#[test]
fn with_direction_hold_reoffer_is_answered_and_read() {
    let a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 1);
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 2);
    let offer = create_offer(&a);
    let (_, nb1) = answer_offer(offer.as_bytes(), &b).unwrap();
    let hold = with_direction(&offer, Direction::SendOnly, None).unwrap();
    let (answer, nb2) = answer_offer(hold.as_bytes(), &b).unwrap();
    assert_eq!(nb2.direction, Direction::RecvOnly);
    assert!(has_line(&answer, "a=recvonly"), "{answer}");
    // Same keys as before the hold: the SRTP contexts do not change.
    assert_eq!(nb1.keying, nb2.keying);
    let mut held = a.clone();
    held.direction = Direction::SendOnly;
    let na = read_answer(answer.as_bytes(), &held).unwrap();
    assert_eq!(na.direction, Direction::SendOnly);
    assert_eq!(na.remote_direction, Direction::RecvOnly);
}

#[test]
fn with_direction_dtls_states_role_and_keeps_fingerprint() {
    let a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Dtls, 1);
    let offer = create_offer(&a);
    assert!(has_line(&offer, "a=setup:actpass"));
    let hold = with_direction(&offer, Direction::SendOnly, Some(false)).unwrap();
    assert_eq!(attr_lines(&hold, "a=setup:"), ["a=setup:passive"], "{hold}");
    assert_eq!(
        attr_lines(&hold, "a=fingerprint:"),
        attr_lines(&offer, "a=fingerprint:")
    );
    let hold = with_direction(&offer, Direction::SendOnly, Some(true)).unwrap();
    assert_eq!(attr_lines(&hold, "a=setup:"), ["a=setup:active"], "{hold}");
    // None leaves the setup line alone.
    let hold = with_direction(&offer, Direction::Inactive, None).unwrap();
    assert_eq!(attr_lines(&hold, "a=setup:"), ["a=setup:actpass"], "{hold}");
    assert!(has_line(&hold, "a=inactive"), "{hold}");
}

#[test]
fn with_direction_leaves_rejected_streams_alone_and_refuses_garbage() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/AVP 0
         a=sendrecv
         m=audio 0 RTP/AVP 0
         ",
    );
    let text = String::from_utf8(offer).unwrap();
    let hold = with_direction(&text, Direction::SendOnly, None).unwrap();
    assert_eq!(count_prefix(&hold, "a=sendonly"), 1, "{hold}");
    assert_eq!(with_direction("not sdp", Direction::SendOnly, None), None);
}

#[test]
fn second_audio_line_is_rejected_first_taken() {
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/AVP 0
         m=audio 4100 RTP/AVP 8
         ",
    );
    let b = local(
        B_ADDR,
        &[CodecKind::Pcma, CodecKind::Pcmu],
        SrtpMode::Off,
        1,
    );
    let (answer, nb) = answer_offer(&offer, &b).unwrap();
    assert_eq!(
        (nb.codec, nb.remote_rtp),
        (CodecKind::Pcmu, addr("10.0.0.1:4000"))
    );
    let m_lines: Vec<&str> = lines(&answer)
        .into_iter()
        .filter(|l| l.starts_with("m="))
        .collect();
    assert_eq!(
        m_lines,
        ["m=audio 50000 RTP/AVP 0", "m=audio 0 RTP/AVP 8"],
        "{answer}"
    );
}

#[test]
fn savp_offer_whose_only_key_has_an_mki_is_refused() {
    // The RFC 4568 §9.1 example line verbatim: MKI 1, 32 octets long.
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/SAVP 0
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 1);
    assert_eq!(
        answer_offer(&offer, &b).unwrap_err(),
        OfferError::Keying("no usable crypto suite in AES_CM_128_HMAC_SHA1_80".into())
    );
}

#[test]
fn telephone_event_on_another_dynamic_pt_is_followed() {
    // pjsua / some SBCs put telephone-event on 96 or 120.
    let offer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.1
         s=-
         c=IN IP4 10.0.0.1
         t=0 0
         m=audio 4000 RTP/AVP 8 120
         a=rtpmap:8 PCMA/8000
         a=rtpmap:120 telephone-event/8000
         a=fmtp:120 0-16
         ",
    );
    let b = local(B_ADDR, &[CodecKind::Pcma], SrtpMode::Off, 1);
    let (answer, nb) = answer_offer(&offer, &b).unwrap();
    assert_eq!((nb.dtmf_send_pt, nb.dtmf_recv_pt), (Some(120), Some(120)));
    assert!(has_line(&answer, "m=audio 50000 RTP/AVP 8 120"), "{answer}");
    assert!(
        has_line(&answer, "a=rtpmap:120 telephone-event/8000"),
        "{answer}"
    );
}

#[test]
fn answer_with_its_own_opus_pt_is_read_asymmetrically() {
    // We offered opus on 111; the answerer describes it on 96 (allowed: RFC 3264 §6.1
    // says it SHOULD but need not keep the PT). We send with 96 and receive on 111.
    let a = local(
        A_ADDR,
        &[CodecKind::Opus, CodecKind::Pcmu],
        SrtpMode::Off,
        1,
    );
    let answer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.9
         s=-
         c=IN IP4 10.0.0.9
         t=0 0
         m=audio 7000 RTP/AVP 96 97
         a=rtpmap:96 opus/48000/2
         a=rtpmap:97 telephone-event/48000
         a=rtcp-mux
         ",
    );
    let na = read_answer(&answer, &a).unwrap();
    assert_eq!(
        (na.codec, na.send_pt, na.recv_pt, na.clock_rate),
        (CodecKind::Opus, 96, 111, 48000)
    );
    assert_eq!(na.dtmf_send_pt, Some(97));
    assert_eq!(na.remote_rtp, addr("10.0.0.9:7000"));
    assert!(na.rtcp_mux);
}

#[test]
fn answer_rejecting_audio_is_no_audio() {
    let a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Off, 1);
    let answer = crlf(
        "v=0
         o=- 1 1 IN IP4 10.0.0.9
         s=-
         c=IN IP4 10.0.0.9
         t=0 0
         m=audio 0 RTP/AVP 0
         ",
    );
    assert_eq!(
        read_answer(&answer, &a).unwrap_err(),
        OfferError::NoAudio("no audio m-line with a port".into())
    );
}

#[test]
fn answer_picking_a_suite_we_did_not_offer_is_keying_error() {
    let mut a = local(A_ADDR, &[CodecKind::Pcmu], SrtpMode::Sdes, 1);
    a.sdes_keys
        .retain(|k| k.profile == SrtpProfile::AesCm128HmacSha1_80);
    let answer = crlf(&format!(
        "v=0
         o=- 1 1 IN IP4 10.0.0.9
         s=-
         c=IN IP4 10.0.0.9
         t=0 0
         m=audio 7000 RTP/SAVP 0
         a=crypto:1 AES_CM_128_HMAC_SHA1_32 {RFC4568_INLINE}
         "
    ));
    assert_eq!(
        read_answer(&answer, &a).unwrap_err(),
        OfferError::Keying("answer picked unoffered AES_CM_128_HMAC_SHA1_32".into())
    );
}
