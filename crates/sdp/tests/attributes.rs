//! Typed attribute values parse and print back exactly.
#![allow(clippy::unwrap_used)]

use natter_sdp::{
    CandidateAttr, CandidateType, Crypto, Extmap, Fingerprint, Group, RemoteCandidate, Rtcp,
    Rtpmap, Setup, Ssrc,
};

#[test]
fn typed_values_round_trip() {
    for v in ["111 opus/48000/2", "0 PCMU/8000", "96 H264/90000"] {
        assert_eq!(Rtpmap::parse(v).unwrap().to_string(), v);
    }
    assert!(Rtpmap::parse("200 x/8000").is_err());
    assert!(Rtpmap::parse("96 opus").is_err());
    for v in ["9 IN IP4 0.0.0.0", "53020"] {
        assert_eq!(Rtcp::parse(v).unwrap().to_string(), v);
    }
    assert_eq!(
        Group::parse("BUNDLE 0 1 2").unwrap().to_string(),
        "BUNDLE 0 1 2"
    );
    let fp = "sha-256 63:15:72:7E:17:60:D8:27:E5:C7:B3:E0:71:BE:E5:C3:60:53:CF:96:E2:AA:CD:8A:36:96:38:04:44:0B:3C:46";
    assert_eq!(Fingerprint::parse(fp).unwrap().to_string(), fp);
    assert!(Fingerprint::parse("sha-256 6:15").is_err());
    assert_eq!(Setup::parse("passive").unwrap(), Setup::Passive);
    assert_eq!(Setup::answer(Setup::ActPass), Setup::Active);
    assert!(Setup::parse("both").is_err());
    let e = Extmap::parse("2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level").unwrap();
    assert_eq!(e.id, 2);
    assert_eq!(e.direction, Some(natter_sdp::Direction::RecvOnly));
    assert_eq!(
        e.to_string(),
        "2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level"
    );
    let s = Ssrc::parse("3670247649 msid:a b").unwrap();
    assert_eq!(s.value.as_deref(), Some("a b"));
    assert_eq!(s.to_string(), "3670247649 msid:a b");
    let rc = RemoteCandidate::parse_list("1 192.0.2.3 45664 2 192.0.2.3 45665").unwrap();
    assert_eq!(rc.len(), 2);
    assert_eq!(rc[1].component, 2);
    assert!(RemoteCandidate::parse_list("1 192.0.2.3").is_err());
    let c = Crypto::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
    )
    .unwrap();
    assert_eq!(
        c.inline_key(),
        Some("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
    );
}

#[test]
fn candidate_grammar_rfc8839() {
    let v = "1 1 UDP 2130706431 fe80::1 8998 typ host";
    let c = CandidateAttr::parse(v).unwrap();
    assert_eq!(c.ip(), Some("fe80::1".parse().unwrap()));
    assert_eq!(c.to_string(), v);
    let v = "2 1 udp 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998";
    let c = CandidateAttr::parse(&format!("candidate:{v}")).unwrap();
    assert_eq!(c.typ, CandidateType::Srflx);
    assert!(c.is_udp());
    assert_eq!(c.to_string(), v);
    let c = CandidateAttr::parse("3 1 TCP 1 10.0.0.1 9 typ host tcptype active").unwrap();
    assert_eq!(c.tcp_type, Some(natter_sdp::TcpType::Active));
    assert!(!c.is_udp());
}
