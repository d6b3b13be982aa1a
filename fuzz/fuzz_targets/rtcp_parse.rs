#![no_main]
//! Fuzzes the RTCP parser (compound and reduced-size) and the session's RTCP input path:
//! never panic; whatever parses must write back and reparse to the same packets.
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_rtp::rtcp::{parse_compound, write_compound};
use natter_rtp::{RtpSession, SessionConfig};

fuzz_target!(|data: &[u8]| {
    for reduced in [false, true] {
        let Ok(packets) = parse_compound(data, reduced) else {
            continue;
        };
        let mut out = Vec::new();
        write_compound(&packets, &mut out).expect("parsed packets are writable");
        assert_eq!(
            parse_compound(&out, reduced).expect("written packets parse"),
            packets
        );
    }
    let t0 = Instant::now();
    let mut config = SessionConfig::new(0x1111, 8000, "fuzz");
    config.reduced_size = data.first().is_some_and(|b| b & 1 == 1);
    let mut session = RtpSession::new(config, t0);
    let from = "198.51.100.7:5005".parse().unwrap();
    let _ = session.on_rtcp_received(data, from, t0 + Duration::from_millis(10));
    let _ = session.handle_timeout(t0 + Duration::from_secs(1));
    let _ = session.poll_rtcp(t0 + Duration::from_secs(10));
    let _ = session.poll_timeout();
});
