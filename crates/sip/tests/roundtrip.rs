//! Property tests: writer(parser(x)) round-trips, and the parser never panics
//! on garbage or on mutations of valid messages.

use natter_sip::{Limits, Message, StreamFramer};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,12}"
}

fn header_name(
    canonical: &'static str,
    compact: Option<&'static str>,
) -> impl Strategy<Value = String> {
    let forms: Vec<String> = match compact {
        Some(c) => vec![
            canonical.to_owned(),
            c.to_owned(),
            canonical.to_ascii_uppercase(),
            canonical.to_ascii_lowercase(),
        ],
        None => vec![
            canonical.to_owned(),
            canonical.to_ascii_uppercase(),
            canonical.to_ascii_lowercase(),
        ],
    };
    proptest::sample::select(forms)
}

/// Optionally fold a value at its spaces.
fn fold(value: String, fold_mask: u32) -> String {
    let mut out = String::new();
    for (i, part) in value.split(' ').enumerate() {
        if i > 0 {
            out.push_str(if fold_mask & (1 << (i % 32)) != 0 {
                "\r\n\t "
            } else {
                " "
            });
        }
        out.push_str(part);
    }
    out
}

prop_compose! {
    fn sip_uri()(user in "[a-z0-9._-]{1,10}", host in "[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,5}){0,2}",
                 port in proptest::option::of(1u16..), lr in any::<bool>()) -> String {
        let mut s = format!("sip:{user}@{host}");
        if let Some(p) = port { s.push_str(&format!(":{p}")); }
        if lr { s.push_str(";lr"); }
        s
    }
}

prop_compose! {
    fn message()(
        is_req in any::<bool>(),
        method in proptest::sample::select(vec!["INVITE", "REGISTER", "OPTIONS", "BYE", "MESSAGE", "FOO-BAR"]),
        code in 100u16..700,
        reason in "[A-Za-z ]{0,20}",
        ruri in sip_uri(),
        from_uri in sip_uri(), to_uri in sip_uri(), contact in sip_uri(),
        display in proptest::option::of("[A-Za-z \\\\\"]{0,10}"),
        tag in token(), branch in token(), callid in token(),
        seq in 0u32..(1 << 31),
        vias in 1usize..4,
        via_combined in any::<bool>(),
        maxf in proptest::option::of(0u8..=255),
        ext in proptest::collection::vec((token(), "[ -~]{0,30}"), 0..5),
        names in (header_name("Via", Some("v")), header_name("From", Some("f")), header_name("To", Some("t")),
                  header_name("Call-ID", Some("i")), header_name("CSeq", None), header_name("Contact", Some("m"))),
        fold_mask in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        with_len in any::<bool>(),
    ) -> Vec<u8> {
        let (via_n, from_n, to_n, cid_n, cseq_n, contact_n) = names;
        let mut m = String::new();
        if is_req {
            m.push_str(&format!("{method} {ruri} SIP/2.0\r\n"));
        } else {
            m.push_str(&format!("SIP/2.0 {code} {}\r\n", reason.trim()));
        }
        let via_vals: Vec<String> = (0..vias).map(|i| format!("SIP/2.0/UDP h{i}.example.com:5060;branch=z9hG4bK{branch}{i};rport")).collect();
        if via_combined {
            m.push_str(&format!("{via_n}: {}\r\n", fold(via_vals.join(", "), fold_mask)));
        } else {
            for v in &via_vals { m.push_str(&format!("{via_n}: {v}\r\n")); }
        }
        let disp = match display {
            Some(d) => {
                let esc: String = d.chars().flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] }).collect();
                format!("\"{esc}\" ")
            }
            None => String::new(),
        };
        m.push_str(&format!("{from_n}: {}\r\n", fold(format!("{disp}<{from_uri}>;tag={tag}"), fold_mask)));
        m.push_str(&format!("{to_n}: <{to_uri}>\r\n"));
        m.push_str(&format!("{cid_n}: {callid}@example.com\r\n"));
        let cseq_method = if is_req { method } else { "INVITE" };
        m.push_str(&format!("{cseq_n}: {seq} {cseq_method}\r\n"));
        m.push_str(&format!("{contact_n}: <{contact}>;expires=60;q=0.5\r\n"));
        if let Some(mf) = maxf { m.push_str(&format!("Max-Forwards: {mf}\r\n")); }
        for (n, v) in &ext { m.push_str(&format!("X-{n}: {}\r\n", fold(v.trim().to_owned(), fold_mask))); }
        if with_len { m.push_str(&format!("Content-Length: {}\r\n", body.len())); }
        m.push_str("\r\n");
        let mut bytes = m.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn write_parse_round_trip(bytes in message()) {
        let parsed = Message::parse(&bytes);
        prop_assert!(parsed.is_ok(), "{:?}: {}", parsed, String::from_utf8_lossy(&bytes));
        let parsed = parsed.unwrap();
        let written = parsed.to_bytes();
        let reparsed = Message::parse(&written).unwrap();
        prop_assert_eq!(&parsed, &reparsed);
        // Writing is a fixed point after one round.
        prop_assert_eq!(&written, &reparsed.to_bytes());
    }

    #[test]
    fn parser_never_panics_on_mutations(bytes in message(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut b = bytes;
        for (pos, val) in edits {
            if b.is_empty() { break; }
            let i = pos % b.len();
            b[i] = val;
        }
        let _ = Message::parse(&b);
        let _ = Message::parse_lenient(&b);
        let mut f = StreamFramer::new(Limits::default());
        if f.push(&b).is_ok() {
            for _ in 0..4 { if !matches!(f.next_frame(), Ok(Some(_))) { break; } }
        }
    }

    #[test]
    fn parser_never_panics_on_garbage(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::parse(&b);
        let _ = Message::parse_lenient(&b);
    }
}
