//! Malformed input yields the specific error, and garbage never panics.
#![allow(clippy::unwrap_used)]

use natter_sdp::{CandidateAttr, Error, SessionDescription};
use rand::{Rng, SeedableRng};

const OK: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";

#[test]
fn specific_errors() {
    assert_eq!(SessionDescription::parse(""), Err(Error::Missing('v')));
    assert_eq!(
        SessionDescription::parse("o=- 1 2 IN IP4 x\r\n"),
        Err(Error::Missing('v'))
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\nxx\r\n"),
        Err(Error::MalformedLine { line: 2 })
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\no=- 1 2 IN IP4 a\r\ns=-\r\nt=0 0\r\nq=1\r\n"),
        Err(Error::UnknownLineType { line: 5, kind: 'q' })
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\no=- 1 x IN IP4 a\r\n"),
        Err(Error::InvalidField {
            line: 2,
            what: "origin session version"
        })
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\no=- 1 2 IN IP4 a\r\ns=-\r\n"),
        Err(Error::Missing('t'))
    );
    assert_eq!(
        SessionDescription::parse(
            "v=0\r\no=- 1 2 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n"
        ),
        Err(Error::InvalidField {
            line: 5,
            what: "media port"
        })
    );
    assert_eq!(
        SessionDescription::parse(&format!("{OK}s=again\r\n")),
        Err(Error::UnexpectedLine { line: 6, kind: 's' })
    );
    assert!(matches!(
        SessionDescription::parse_bytes(&[0xff, 0xfe]),
        Err(Error::NotUtf8)
    ));
    let big = "a".repeat(natter_sdp::MAX_SDP_LEN + 1);
    assert!(matches!(
        SessionDescription::parse(&big),
        Err(Error::TooLarge(_))
    ));
    assert!(SessionDescription::parse(OK).is_ok());
}

#[test]
fn candidate_errors() {
    let good = "1 1 UDP 2130706431 10.0.0.1 5000 typ host";
    assert!(CandidateAttr::parse(good).is_ok());
    for bad in [
        "",
        "1 1 UDP 2130706431 10.0.0.1 5000",
        "1 1 UDP 2130706431 10.0.0.1 5000 typ bogus",
        "1 1 UDP 99999999999 10.0.0.1 5000 typ host",
        "1 1 UDP 1 10.0.0.1 70000 typ host",
        "f!x 1 UDP 1 10.0.0.1 5000 typ host",
        "1 1 UDP 1 10.0.0.1 5000 typ srflx raddr",
        "1 1 UDP 1 10.0.0.1 5000 tip host",
        "123456789012345678901234567890123 1 UDP 1 10.0.0.1 5000 typ host",
    ] {
        assert!(CandidateAttr::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5d9);
    let alphabet = b"vosicbtmaz=: /\r\n0123456789INPAUDRTacdeghkl-.";
    let base = std::fs::read(format!(
        "{}/tests/data/chromium156-nat-offer-host-srflx-relay.sdp",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for i in 0..4000 {
        let input: Vec<u8> = if i % 2 == 0 {
            let len = rng.gen_range(0..400);
            (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        } else {
            let mut b = base.clone();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..b.len());
                b[at] = rng.gen();
            }
            b
        };
        if let Ok(sd) = SessionDescription::parse_bytes(&input) {
            // anything that parses must also write and re-parse to the same model
            let again = SessionDescription::parse(&sd.to_string()).unwrap();
            assert_eq!(again, sd);
            // offer/answer on arbitrary input must not panic either
            let audio = natter_sdp::MediaCapabilities {
                kind: "audio".into(),
                proto: "RTP/AVP".into(),
                port: 4000,
                codecs: vec![
                    natter_sdp::Codec::new("PCMU", 8000, None, 0),
                    natter_sdp::Codec::new("rtx", 8000, None, 99),
                ],
                formats: vec![],
                direction: natter_sdp::Direction::SendRecv,
                rtcp_mux: true,
                extra_attributes: vec![],
            };
            let mut webrtc = audio.clone();
            webrtc.proto = "UDP/TLS/RTP/SAVPF".into();
            webrtc.codecs = vec![
                natter_sdp::Codec::new("opus", 48000, Some(2), 111),
                natter_sdp::Codec::new("telephone-event", 8000, None, 126),
            ];
            let caps = vec![audio, webrtc];
            if let Ok(ans) = natter_sdp::create_answer(&sd, natter_sdp::Origin::default(), &caps) {
                assert_eq!(ans.media.len(), sd.media.len());
                for (a, o) in ans.media.iter().zip(&sd.media) {
                    let _ = natter_sdp::negotiated_codecs(a, o);
                }
            }
            for m in &sd.media {
                let _ = (
                    m.candidates(),
                    m.rtpmaps(),
                    m.fmtps(),
                    m.crypto(),
                    m.extmaps(),
                    m.ssrcs(),
                );
                let _ = (m.rtcp(), m.setup(), m.fingerprints(), m.remote_candidates());
            }
        }
    }
}

/// RFC 8866 §9: byte-string and every other field exclude NUL, CR and LF. The
/// parser refuses them with a typed error instead of accepting text the
/// writer cannot give back (found by `cargo fuzz run sdp_parse`).
#[test]
fn nul_and_stray_cr_are_refused() {
    const LF: &str = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nt=0 0\n";
    // A lone CR inside an LF-ended line.
    assert_eq!(
        SessionDescription::parse(&format!("{LF}p=+1 555\r0100\n")),
        Err(Error::ControlCharacter {
            line: 5,
            byte: b'\r'
        })
    );
    // A CR before the CRLF ending of a p= line in an LF document.
    assert_eq!(
        SessionDescription::parse(&format!("{LF}p=x\r\r\n")),
        Err(Error::ControlCharacter {
            line: 5,
            byte: b'\r'
        })
    );
    // NUL in a session name, a media title and an attribute value.
    for (text, line) in [
        (
            "v=0\r\no=- 1 2 IN IP4 a\r\ns=a\0b\r\nt=0 0\r\n".to_owned(),
            3,
        ),
        (format!("{OK}i=x\0\r\n"), 6),
        (format!("{OK}a=tool:\0\r\n"), 6),
    ] {
        assert_eq!(
            SessionDescription::parse(&text),
            Err(Error::ControlCharacter { line, byte: 0 }),
            "{text:?}"
        );
    }
    // A trailing CR is the line ending, not content: still accepted.
    assert!(SessionDescription::parse(&format!("{LF}p=x\r\n")).is_ok());
    // Other control characters are bytes the grammar allows, and round-trip.
    let tab = format!("{OK}i=a\tb\x01c\r\n");
    let sd = SessionDescription::parse(&tab).unwrap();
    assert_eq!(sd.to_string(), tab);
}
