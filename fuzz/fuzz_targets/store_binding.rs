#![no_main]
//! Fuzzes the decoder of SIP bindings as stored in Redis (`natter_store::codec`): whatever a
//! shared store hands back, decoding never panics, and what decodes survives a re-encode unchanged.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(b) = natter_store::codec::decode_binding("sip:a@b", data) {
        let again = natter_store::codec::encode_binding(&b);
        assert_eq!(
            natter_store::codec::decode_binding("sip:a@b", &again),
            Some(b)
        );
    }
});
