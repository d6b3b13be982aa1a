#![no_main]
//! Fuzzes the STUN decoder: `Message::parse`, every typed getter, integrity and
//! fingerprint checks, the re-encode round trip, ChannelData and demultiplexing.
//! The checks live in `natter_stun::fuzzing::exercise` so the crate's own
//! garbage tests run the same code.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    natter_stun::fuzzing::exercise(data);
});
