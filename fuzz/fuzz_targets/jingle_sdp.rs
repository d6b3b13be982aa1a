#![no_main]
//! Fuzzes Jingle → SDP: any `<jingle/>` that parses must map to SDP (or a clean error),
//! the SDP must parse, and mapping it back must not panic. Also SDP → Jingle on raw input.
use libfuzzer_sys::fuzz_target;
use natter_xmpp::jingle::sdp::{from_sdp, to_sdp};
use natter_xmpp::jingle::Jingle;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(e) = natter_xmpp::xml::parse_element(text) {
            if let Ok(j) = Jingle::parse(&e) {
                let _ = j.to_element().to_xml();
                for initiator in [true, false] {
                    if let Ok(sdp) = to_sdp(&j.contents, j.group.as_ref(), initiator) {
                        natter_sdp::SessionDescription::parse(&sdp).expect("our SDP parses");
                        let _ = from_sdp(&sdp, "initiator", initiator);
                    }
                }
            }
        }
        let _ = from_sdp(text, "responder", false);
    }
});
