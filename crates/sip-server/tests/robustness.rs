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
