#![no_main]
//! Fuzzes the mDNS response parser behind `.local` candidate resolution (RFC 6762): never
//! panics, and feeding the bytes to a resolver waiting for a name never panics either.
use libfuzzer_sys::fuzz_target;
use natter_webrtc::mdns::{parse_response, Resolver};

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = parse_response(data) {
        assert!(records.len() <= 64);
    }
    let mut r = Resolver::new();
    let _ = r.resolve("x.local", std::time::Instant::now());
    r.handle_response(data);
    while r.poll_event().is_some() {}
});
