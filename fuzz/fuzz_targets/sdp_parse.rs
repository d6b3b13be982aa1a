#![no_main]
//! Fuzzes the SDP parser: it must never panic, and whatever parses must write back to
//! text that re-parses to the same model.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = natter_sdp::SessionDescription::parse_bytes(data) {
        let text = sd.to_string();
        let again = natter_sdp::SessionDescription::parse(&text).expect("writer output parses");
        assert_eq!(again, sd);
        for m in &sd.media {
            let _ = (
                m.candidates(),
                m.rtpmaps(),
                m.fmtps(),
                m.crypto(),
                m.extmaps(),
                m.ssrcs(),
            );
            let _ = (m.rtcp(), m.setup(), m.fingerprints(), m.remote_candidates());
        }
    }
});
