#![no_main]
//! Fuzz the SIP parser, the writer round trip and the stream framer.

use libfuzzer_sys::fuzz_target;
use natter_sip::{Limits, Message, StreamFramer};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        // Anything accepted must survive a write/parse round trip unchanged.
        let written = m.to_bytes();
        let again = Message::parse(&written).expect("re-parse of written message");
        assert_eq!(m, again);
        // Tags are found without collecting the parameters: must agree with the full parse.
        assert_eq!(m.from_tag(), m.from().ok().and_then(|f| f.tag()));
        assert_eq!(m.to_tag(), m.to().ok().and_then(|t| t.tag()));
    }
    let _ = Message::parse_lenient(data);
    let mut framer = StreamFramer::new(Limits::default());
    for chunk in data.chunks(97) {
        if framer.push(chunk).is_err() {
            break;
        }
        while let Ok(Some(_)) = framer.next_frame() {}
    }
});
