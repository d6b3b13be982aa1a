//! Arbitrary RTP payloads into every audio decoder, the telephone-event and comfort
//! noise parsers: nothing may panic, and output sizes stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_media::{new_decoder, CnPayload, CodecKind, DtmfEvent, DtmfReceiver};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let kind = CodecKind::ALL[usize::from(sel) % CodecKind::ALL.len()];
    let Ok(mut dec) = new_decoder(kind) else {
        return;
    };
    let mut out = Vec::new();
    // Split the rest into up to 8 payloads so decoder state carries between packets.
    for (i, chunk) in rest.chunks(rest.len() / 8 + 1).enumerate() {
        let before = out.len();
        let _ = dec.decode(chunk, &mut out);
        assert!(out.len() - before <= 5760.max(chunk.len() * 2));
        if sel & 0x80 != 0 && i % 2 == 1 {
            dec.conceal(
                usize::from(chunk.first().copied().unwrap_or(0)) * 10,
                &mut out,
            );
            let _ = dec.decode_fec(chunk, 960, &mut out);
        }
    }
    let _ = DtmfEvent::decode(rest);
    let _ = CnPayload::decode(rest);
    let mut rx = DtmfReceiver::new();
    for c in rest.chunks(4) {
        let _ = rx.on_packet(u32::from(sel), c);
    }
});
