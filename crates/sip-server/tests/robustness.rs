//! The server core under hostile input: random bytes, mutated valid
//! messages and random message sequences never panic, and every transaction
//! and proxy context is gone once all timers have run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_sip_server::{MemoryBindings, ServerConfig, SipServer, StaticCredentials, Transport};
use proptest::prelude::*;

fn server(auth: bool, t0: Instant) -> SipServer {
    let mut cfg = ServerConfig::new(
        "natter.test",
        (Transport::Udp, "127.0.0.1:5060".parse().expect("addr")),
    );
    cfg.auth = auth;
    let creds = StaticCredentials::new()
        .with_user("alice", "pw")
        .with_user("bob", "pw");
    SipServer::new(cfg, Arc::new(creds), Arc::new(MemoryBindings::new()), t0)
}

const TEMPLATES: &[&str] = &[
    "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKr1;rport\r\nMax-Forwards: 70\r\n\
From: <sip:bob@natter.test>;tag=b\r\nTo: <sip:bob@natter.test>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:bob@127.0.0.1:5072>;expires=60\r\nContent-Length: 0\r\n\r\n",
    "INVITE sip:bob@natter.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKi1;rport\r\nMax-Forwards: 70\r\n\
From: <sip:carol@other.test>;tag=a\r\nTo: <sip:bob@natter.test>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:carol@127.0.0.1:5071>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
    "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-nt.1.1;rport\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKi1\r\n\
From: <sip:carol@other.test>;tag=a\r\nTo: <sip:bob@natter.test>;tag=t\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    "CANCEL sip:bob@natter.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKi1;rport\r\nMax-Forwards: 70\r\n\
From: <sip:carol@other.test>;tag=a\r\nTo: <sip:bob@natter.test>\r\nCall-ID: i1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
    "ACK sip:bob@127.0.0.1:5072 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKa1\r\nRoute: <sip:127.0.0.1:5060;lr>\r\n\
Max-Forwards: 70\r\nFrom: <sip:carol@other.test>;tag=a\r\nTo: <sip:bob@natter.test>;tag=t\r\nCall-ID: i1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
    "BYE sip:carol@127.0.0.1:5071 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKby;rport\r\nRoute: <sip:127.0.0.1:5060;lr>\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@natter.test>;tag=t\r\nTo: <sip:carol@other.test>;tag=a\r\nCall-ID: i1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    "OPTIONS sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKo\r\nMax-Forwards: 0\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: <sip:natter.test>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), auth in any::<bool>()) {
        let t0 = Instant::now();
        let mut s = server(auth, t0);
        let src: SocketAddr = "127.0.0.1:5071".parse().expect("addr");
        let _ = s.handle(t0, Transport::Udp, src, &bytes);
        let _ = s.handle(t0, Transport::Tcp, src, &bytes);
    }

    #[test]
    fn random_sequences_never_panic_and_drain(
        steps in proptest::collection::vec((0usize..7, 0u16..4, proptest::collection::vec((any::<u16>(), any::<u8>()), 0..3), 0u64..3000), 1..25),
        auth in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = server(auth, t0);
        for (which, from, edits, wait_ms) in steps {
            let mut msg = TEMPLATES[which].as_bytes().to_vec();
            for (pos, val) in edits {
                let i = usize::from(pos) % msg.len();
                msg[i] = val;
            }
            let src: SocketAddr = format!("127.0.0.1:{}", 5071 + from).parse().expect("addr");
            let _ = s.handle(now, Transport::Udp, src, &msg);
            now += Duration::from_millis(wait_ms);
            let _ = s.on_timer(now);
        }
        // Run every timer out (bounded): nothing may be left behind.
        for _ in 0..10_000 {
            match s.on_timer(now).next_timeout {
                Some(t) if t <= now + Duration::from_secs(600) => now = t.max(now + Duration::from_millis(1)),
                _ => break,
            }
        }
        now += Duration::from_secs(600);
        let _ = s.on_timer(now);
        prop_assert_eq!(s.transactions(), 0);
        prop_assert_eq!(s.proxy_contexts(), 0);
    }
}

/// Issue 10: a request the server cannot serve always gets a final response
/// that says why, and a log line; never silence.
#[allow(clippy::unwrap_used)]
mod refused {
    use super::*;

    fn request(uri: &str, extra: &str) -> Vec<u8> {
        format!(
            "INVITE {uri} SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKref1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=a1\r\n\
To: <sip:bob@natter.test>\r\n\
Call-ID: refused-1@192.0.2.1\r\n\
CSeq: 1 INVITE\r\n\
{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn answer(bytes: &[u8]) -> (String, Vec<String>) {
        let mut s = server(false, Instant::now());
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let out = s.handle(Instant::now(), Transport::Udp, src, bytes);
        assert_eq!(out.transmits.len(), 1, "one answer");
        let text = String::from_utf8(out.transmits[0].bytes.clone()).unwrap();
        let status = text.split("\r\n").next().unwrap().to_owned();
        assert!(text.contains("Call-ID: refused-1@192.0.2.1\r\n"), "{text}");
        (status, out.refused)
    }

    #[test]
    fn request_uri_with_headers_is_answered_400() {
        let (status, log) = answer(&request("sip:bob@natter.test?subject=hi", ""));
        assert_eq!(
            status,
            "SIP/2.0 400 Bad Request (bad URI: headers in Request-URI)"
        );
        assert_eq!(log.len(), 1);
        assert!(
            log[0].contains("INVITE sip:bob@natter.test?subject=hi"),
            "{log:?}"
        );
        assert!(log[0].contains("answered 400"), "{log:?}");
    }

    #[test]
    fn escaped_question_mark_in_request_uri_is_answered() {
        let (status, log) = answer(&request("sip:bob@x%3Fa=b", ""));
        assert!(
            status.starts_with("SIP/2.0 400 Bad Request (bad URI"),
            "{status}"
        );
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn unknown_scheme_is_answered_416() {
        let mut s = server(false, Instant::now());
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let out = s.handle(
            Instant::now(),
            Transport::Udp,
            src,
            &request("http://natter.test/x", ""),
        );
        let last = out.transmits.last().expect("an answer");
        let text = String::from_utf8(last.bytes.clone()).unwrap();
        assert!(text.starts_with("SIP/2.0 416 "), "{text}");
    }

    #[test]
    fn a_huge_header_is_answered_400() {
        let big = format!("X-Big: {}\r\n", "a".repeat(60_000));
        let (status, _) = answer(&request("sip:bob@natter.test", &big));
        assert_eq!(
            status,
            "SIP/2.0 400 Bad Request (header line too long (limit 8192 bytes))"
        );
    }

    #[test]
    fn three_thousand_headers_are_answered_400() {
        let many = "X-H: v\r\n".repeat(3_000);
        let (status, _) = answer(&request("sip:bob@natter.test", &many));
        assert_eq!(
            status,
            "SIP/2.0 400 Bad Request (too many headers (limit 256))"
        );
    }

    #[test]
    fn a_body_over_the_limit_is_answered_413() {
        let mut msg = request("sip:bob@natter.test", "Content-Type: text/plain\r\n");
        let text = String::from_utf8(msg).unwrap().replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: 40000\r\n\r\n{}", "b".repeat(40_000)),
        );
        msg = text.into_bytes();
        let (status, _) = answer(&msg);
        assert_eq!(
            status,
            "SIP/2.0 413 Request Entity Too Large (body too large (limit 32768 bytes))"
        );
    }

    #[test]
    fn unanswerable_input_is_still_logged() {
        let mut s = server(false, Instant::now());
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let out = s.handle(Instant::now(), Transport::Udp, src, b"HELLO\r\n\r\n");
        assert!(out.transmits.is_empty());
        assert_eq!(out.refused.len(), 1, "{out:?}");
    }
}
