//! RFC 4475 torture messages (tests/data/rfc4475/*.dat, one file per message,
//! named as in the RFC). Valid messages must parse and survive a write/parse
//! round trip; invalid ones must be rejected with a reason, never a panic.

use natter_sip::{HeaderName, Message, Method, ParseError};

macro_rules! dat {
    ($name:literal) => {
        include_bytes!(concat!("data/rfc4475/", $name, ".dat")).as_slice()
    };
}

/// §3.1.1 valid messages, §3.2/§3.3/§3.4 messages that are syntactically fine
/// (their problems are for the transaction or application layer).
const VALID: &[(&str, &[u8])] = &[
    ("wsinv", dat!("wsinv")),
    ("intmeth", dat!("intmeth")),
    ("esc01", dat!("esc01")),
    ("escnull", dat!("escnull")),
    ("esc02", dat!("esc02")),
    ("lwsdisp", dat!("lwsdisp")),
    ("longreq", dat!("longreq")),
    ("dblreq", dat!("dblreq")),
    ("semiuri", dat!("semiuri")),
    ("transports", dat!("transports")),
    ("mpart01", dat!("mpart01")),
    ("unreason", dat!("unreason")),
    ("noreason", dat!("noreason")),
    ("badbranch", dat!("badbranch")),
    ("unkscm", dat!("unkscm")),
    ("novelsc", dat!("novelsc")),
    ("unksm2", dat!("unksm2")),
    ("bext01", dat!("bext01")),
    ("invut", dat!("invut")),
    ("regaut01", dat!("regaut01")),
    ("bcast", dat!("bcast")),
    ("zeromf", dat!("zeromf")),
    ("cparam01", dat!("cparam01")),
    ("cparam02", dat!("cparam02")),
    ("regescrt", dat!("regescrt")),
    ("sdp01", dat!("sdp01")),
    ("inv2543", dat!("inv2543")),
];

/// §3.1.2 invalid messages plus the §3.3 ones a server must answer with 400
/// (insuf, multi01, mcl01).
const INVALID: &[(&str, &[u8])] = &[
    ("badinv01", dat!("badinv01")),
    ("clerr", dat!("clerr")),
    ("ncl", dat!("ncl")),
    ("scalar02", dat!("scalar02")),
    ("scalarlg", dat!("scalarlg")),
    ("quotbal", dat!("quotbal")),
    ("ltgtruri", dat!("ltgtruri")),
    ("lwsruri", dat!("lwsruri")),
    ("lwsstart", dat!("lwsstart")),
    ("trws", dat!("trws")),
    ("escruri", dat!("escruri")),
    ("baddate", dat!("baddate")),
    ("regbadct", dat!("regbadct")),
    ("badaspec", dat!("badaspec")),
    ("baddn", dat!("baddn")),
    ("badvers", dat!("badvers")),
    ("mismatch01", dat!("mismatch01")),
    ("mismatch02", dat!("mismatch02")),
    ("bigcode", dat!("bigcode")),
    ("insuf", dat!("insuf")),
    ("multi01", dat!("multi01")),
    ("mcl01", dat!("mcl01")),
];

#[test]
fn valid_messages_parse_and_round_trip() {
    for (name, bytes) in VALID {
        let m = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = m.to_bytes();
        let m2 = Message::parse(&again).unwrap_or_else(|e| panic!("{name} reparse: {e}"));
        assert_eq!(m, m2, "{name} round trip");
    }
}

#[test]
fn invalid_messages_rejected_with_reason() {
    for (name, bytes) in INVALID {
        match Message::parse(bytes) {
            Ok(_) => panic!("{name} accepted"),
            Err(e) => {
                let reason = e.reason_phrase();
                assert!(reason.starts_with("Bad Request ("), "{name}: {reason}");
                println!("{name}: {reason}");
            }
        }
    }
}

#[test]
fn specific_rejection_reasons() {
    let r = |b: &[u8]| Message::parse(b).unwrap_err();
    assert_eq!(r(dat!("clerr")), ParseError::ContentLength);
    assert_eq!(r(dat!("ncl")), ParseError::BadHeader("Content-Length"));
    assert_eq!(r(dat!("badvers")), ParseError::Version);
    assert_eq!(r(dat!("mismatch01")), ParseError::CSeqMismatch);
    assert_eq!(r(dat!("mismatch02")), ParseError::CSeqMismatch);
    assert_eq!(r(dat!("mcl01")), ParseError::Duplicate("Content-Length"));
    assert_eq!(r(dat!("multi01")), ParseError::Duplicate("From"));
    assert_eq!(r(dat!("insuf")), ParseError::Missing("From"));
    assert_eq!(r(dat!("baddate")), ParseError::BadHeader("Date"));
    assert_eq!(
        r(dat!("escruri")),
        ParseError::Uri("headers in Request-URI")
    );
    assert!(matches!(r(dat!("bigcode")), ParseError::StartLine(_)));
    assert!(matches!(
        r(dat!("trws")),
        ParseError::Version | ParseError::StartLine(_)
    ));
    assert_eq!(r(dat!("badaspec")), ParseError::BadHeader("To"));
    assert_eq!(r(dat!("baddn")), ParseError::BadHeader("From"));
}

#[test]
fn wsinv_details() {
    let m = Message::parse(dat!("wsinv")).unwrap();
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display.as_ref().unwrap().text(), "J Rosenberg \\\"");
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.cseq().unwrap().seq, 9);
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport, vias[0].host, vias[0].branch()),
        ("UDP", "192.0.2.2", Some("390skdjuw"))
    );
    assert_eq!(
        (vias[1].transport, vias[1].host, vias[1].branch()),
        ("TCP", "spindle.example.com", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(
        (vias[2].transport, vias[2].host, vias[2].branch()),
        ("UDP", "192.168.255.111", Some("z9hG4bK30239"))
    );
    assert_eq!(m.header(HeaderName::Subject), Some(""));
    assert_eq!(
        m.header_named("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        m.header_named("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let natter_sip::Contact::Addr(c) = &m.contacts().unwrap()[0] else {
        panic!("star")
    };
    assert_eq!(c.display.as_ref().unwrap().text(), "Quoted string \"\"");
    assert_eq!(c.q_millis().unwrap(), 330);
    assert_eq!(c.param("newparam").unwrap().value, Some("newvalue"));
    assert_eq!(m.body.len(), 150);
}

#[test]
fn mpart01_binary_body_exact_length() {
    let m = Message::parse(dat!("mpart01")).unwrap();
    assert_eq!(m.method(), Some(&Method::Message));
    assert_eq!(m.body.len(), 553);
    // The body ends with the closing multipart boundary, and the DER blob
    // (a 342-byte PKCS#7 SEQUENCE) survives byte for byte.
    assert!(m.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
    let der = b"0\x82\x01R";
    assert!(m.body.windows(4).any(|w| w == der));
}

#[test]
fn dblreq_keeps_only_first_message() {
    let m = Message::parse(dat!("dblreq")).unwrap();
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body.is_empty());
}

#[test]
fn intmeth_extension_method_and_uri() {
    let m = Message::parse(dat!("intmeth")).unwrap();
    assert_eq!(
        m.method().unwrap().as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    let uri = m.request_uri().unwrap().unwrap();
    assert_eq!(
        uri.user,
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password,
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(
        m.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
}

#[test]
fn esc01_uri_escapes() {
    let m = Message::parse(dat!("esc01")).unwrap();
    assert_eq!(m.to().unwrap().uri.aor(), "sip:user@example.com");
    let uri = m.request_uri().unwrap().unwrap();
    assert_eq!(uri.aor(), "sip:sips:user@example.com@example.net");
}

#[test]
fn truncations_never_panic() {
    for (_, bytes) in VALID.iter().chain(INVALID) {
        for n in 0..bytes.len() {
            let _ = Message::parse(&bytes[..n]);
            let _ = Message::parse_lenient(&bytes[..n]);
        }
    }
}
