//! Every description in tests/data must parse and write back byte for byte.
#![allow(clippy::unwrap_used)]

use natter_sdp::{CandidateType, Direction, SessionDescription, Setup};

fn load(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_corpus_file_round_trips_exactly() {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("sdp") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let sd =
            SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(sd.to_string(), text, "{}", path.display());
        n += 1;
    }
    assert_eq!(n, 19);
}

#[test]
fn lf_only_round_trips_too() {
    let text = load("asterisk-20-offer.sdp").replace("\r\n", "\n");
    let sd = SessionDescription::parse(&text).unwrap();
    assert_eq!(sd.to_string(), text);
}

#[test]
fn chromium_nat_offer_typed_views() {
    let sd =
        SessionDescription::parse(&load("chromium156-nat-offer-host-srflx-relay.sdp")).unwrap();
    assert_eq!(sd.origin.session_id, "5221374762187525684");
    assert_eq!(sd.origin.session_version, 2);
    assert_eq!(sd.bundle_mids().unwrap(), vec!["0", "1"]);
    assert_eq!(sd.media.len(), 2);
    let audio = &sd.media[0];
    assert_eq!(audio.port, 49849);
    assert_eq!(
        audio.formats,
        vec!["111", "63", "9", "0", "8", "13", "110", "126"]
    );
    assert_eq!(audio.mid(), Some("0"));
    assert!(audio.rtcp_mux());
    let rtcp = audio.rtcp().unwrap();
    assert_eq!(rtcp.port, 9);
    let opus = audio.rtpmap(111).unwrap();
    assert_eq!(
        (opus.encoding.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48000, Some(2))
    );
    assert_eq!(
        audio.fmtp("111").unwrap().get("useinbandfec").as_deref(),
        Some("1")
    );
    let cands = audio.candidates();
    assert_eq!(cands.len(), 4);
    assert_eq!(cands[1].typ, CandidateType::Srflx);
    assert_eq!(cands[1].related_address.as_deref(), Some("10.10.1.2"));
    assert_eq!(cands[1].related_port, Some(46864));
    assert_eq!(cands[2].typ, CandidateType::Relay);
    assert_eq!(cands[2].priority, 58662911);
    assert_eq!(cands[3].extension("network-id"), Some("1"));
    assert_eq!(sd.ice_ufrag(0), Some("XjtS"));
    assert_eq!(sd.ice_pwd(1), Some("KDnuO2MM4FSduU6oGRSWvvIy"));
    assert_eq!(sd.ice_options(0), vec!["trickle"]);
    assert_eq!(audio.setup(), Some(Setup::ActPass));
    let fp = &audio.fingerprints()[0];
    assert_eq!(fp.hash, "sha-256");
    assert_eq!(fp.digest.len(), 32);
    assert_eq!(fp.digest[0], 0x63);
    assert_eq!(
        audio.extmaps()[1].uri,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    );
    let ssrc = &audio.ssrcs()[0];
    assert_eq!((ssrc.ssrc, ssrc.attribute.as_str()), (3670247649, "cname"));
    assert_eq!(audio.direction(&sd), Direction::SendRecv);
    // candidate values re-serialise exactly
    for (c, raw) in cands.iter().zip(audio.attribute_values("candidate")) {
        assert_eq!(c.to_string(), raw);
    }
    // unknown attributes kept verbatim
    assert_eq!(
        sd.attribute("msid-semantic"),
        Some(" WMS 5c672206-20cb-4b68-ae4c-6cdd6bdfddbe")
    );
}

#[test]
fn mdns_candidate_has_no_ip() {
    let sd = SessionDescription::parse(&load("chromium156-offer-dc-mdns.sdp")).unwrap();
    let c = sd.media[0].candidates();
    assert!(!c.is_empty());
    assert!(c[0].address.ends_with(".local"));
    assert_eq!(c[0].ip(), None);
}

#[test]
fn gstreamer_session_level_ice_options_and_bundle_only() {
    let sd =
        SessionDescription::parse(&load("gstreamer1.22-webrtcbin-offer-audio-dc.sdp")).unwrap();
    assert_eq!(sd.ice_options(1), vec!["trickle"]);
    assert_eq!(sd.bundle_mids().unwrap(), vec!["audio0", "application1"]);
    assert!(sd.media[1].is_rejected());
    assert!(sd.media[1].has_attribute("bundle-only"));
    assert_eq!(sd.media[0].candidates().len(), 24);
    assert_eq!(
        sd.media[0].candidates()[6].address,
        "fe80::c83e:48ff:fef3:b623"
    );
}

#[test]
fn baresip_sdes_and_pjsua_ice() {
    let sd = SessionDescription::parse(&load("baresip-offer-sdes.sdp")).unwrap();
    let c = sd.media[0].crypto();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].tag, 1);
    assert_eq!(c[0].suite, "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(
        c[0].inline_key(),
        Some("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
    );
    assert_eq!(c[1].session_params, vec!["UNENCRYPTED_SRTCP"]);
    assert_eq!(
        c[1].to_string(),
        sd.media[0].attribute_values("crypto").nth(1).unwrap()
    );
    assert_eq!(sd.media[0].bandwidths[0].bandwidth, 80);

    let sd = SessionDescription::parse(&load("pjsua-2.14-offer-ice.sdp")).unwrap();
    let m = &sd.media[0];
    assert_eq!(
        m.candidates().iter().filter(|c| c.component == 2).count(),
        1
    );
    let rtcp = m.rtcp().unwrap();
    assert_eq!(rtcp.port, 4001);
    assert_eq!(rtcp.connection.unwrap().2, "203.0.113.20");
    assert!(!m.rtcp_mux());
}

#[test]
fn rfc8866_example_fields() {
    let sd = SessionDescription::parse(&load("rfc8866-example.sdp")).unwrap();
    assert_eq!(sd.origin.username, "jdoe");
    assert_eq!(sd.session_name, "SDP Seminar");
    assert_eq!(sd.emails, vec!["j.doe@example.com (Jane Doe)"]);
    assert_eq!(
        sd.connection.as_ref().unwrap().ip(),
        Some("224.2.17.12".parse().unwrap())
    );
    assert_eq!(sd.timings[0].start, 2873397496);
    assert_eq!(sd.direction(), Direction::RecvOnly);
    assert_eq!(sd.media[1].direction(&sd), Direction::RecvOnly);
}
