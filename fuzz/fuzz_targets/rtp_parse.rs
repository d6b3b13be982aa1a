#![no_main]
//! Fuzzes the RTP parser and classifier: never panic, and whatever parses must write back
//! (header with RFC 8285 elements + payload) and reparse to the same header and payload.
use libfuzzer_sys::fuzz_target;
use natter_rtp::demux::classify;
use natter_rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    let _ = (
        p.marker(),
        p.csrcs().count(),
        p.extension(),
        p.extensions().count(),
        p.header_len(),
    );
    let h = p.to_header();
    let mut out = Vec::new();
    h.write(p.payload(), &mut out)
        .expect("a parsed header is writable");
    let q = RtpPacket::parse(&out).expect("written packet parses");
    assert_eq!(q.to_header(), h);
    assert_eq!(q.payload(), p.payload());
});
