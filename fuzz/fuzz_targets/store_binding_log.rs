#![no_main]
//! Fuzzes the reader of the registrar's binding log (`natter_store::binding_log`): whatever a
//! damaged or hostile file holds, reading never panics, stops inside the input, and every
//! record it accepts reads back the same after a re-encode.
use libfuzzer_sys::fuzz_target;
use natter_store::binding_log::{encode_change, Records};

fuzz_target!(|data: &[u8]| {
    let mut records = Records::new(data);
    let changes: Vec<_> = records.by_ref().collect();
    assert!(records.valid_len() <= data.len());
    let mut again = Vec::new();
    for c in &changes {
        encode_change(&mut again, c);
    }
    let back: Vec<_> = Records::new(&again).collect();
    assert_eq!(back, changes);
});
