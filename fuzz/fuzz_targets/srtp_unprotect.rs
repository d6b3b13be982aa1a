#![no_main]
//! Fuzzes the SRTP/SRTCP receive path with fixed keys for every profile: unprotect must
//! never panic on arbitrary bytes. Whatever `protect` accepts must also come back
//! unchanged through a fresh receiver, and SDES key-params parsing must never panic.
use libfuzzer_sys::fuzz_target;
use natter_srtp::{SdesKey, SrtpContext, SrtpProfile};

fn context(p: SrtpProfile) -> SrtpContext {
    let key: Vec<u8> = (0..p.master_key_len() as u8).collect();
    let salt: Vec<u8> = (0..p.master_salt_len() as u8).map(|b| b ^ 0xa5).collect();
    SrtpContext::new(p, &key, &salt).expect("fixed key lengths match the profile")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let p = SrtpProfile::ALL[usize::from(selector) % SrtpProfile::ALL.len()];
    let mut rx = context(p);
    let mut out = Vec::new();

    // Prime the receiver with a genuine packet so ROC estimation and the replay window
    // have state to work against.
    if selector & 0x80 != 0 {
        let mut tx = context(p);
        let mut genuine = vec![0x80, 0x00, 0xff, 0xf0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3];
        tx.protect_rtp_in_place(&mut genuine).expect("valid packet");
        rx.unprotect_rtp_in_place(&mut genuine)
            .expect("genuine packet");
    }

    let _ = rx.unprotect_rtp(rest, &mut out);
    let _ = rx.unprotect_rtcp(rest, &mut out);
    let mut inplace = rest.to_vec();
    let _ = rx.unprotect_rtp_in_place(&mut inplace);
    let mut inplace = rest.to_vec();
    let _ = rx.unprotect_rtcp_in_place(&mut inplace);

    let mut tx = context(p);
    if tx.protect_rtp(rest, &mut out).is_ok() {
        let mut back = Vec::new();
        context(p)
            .unprotect_rtp(&out, &mut back)
            .expect("own RTP packet");
        assert_eq!(back, rest);
    }
    if tx.protect_rtcp(rest, &mut out).is_ok() {
        let mut back = Vec::new();
        context(p)
            .unprotect_rtcp(&out, &mut back)
            .expect("own RTCP packet");
        assert_eq!(back, rest);
    }

    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = SdesKey::parse_key_params(p, text);
        let _ = SdesKey::parse_crypto_attribute(text);
    }
});
