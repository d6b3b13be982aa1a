#![no_main]
//! Fuzzes the DCEP parser (RFC 8832): never panics; what parses encodes back to bytes that
//! parse to the same message.
use libfuzzer_sys::fuzz_target;
use natter_webrtc::dcep::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let wire = m.encode().expect("a parsed message encodes");
        assert_eq!(Message::parse(&wire), Ok(m));
    }
});
