//! Property tests: protect/unprotect is the identity for any valid packet, and arbitrary
//! bytes never panic the receiver.
#![allow(clippy::unwrap_used)]

use natter_srtp::{SrtpContext, SrtpProfile};
use proptest::prelude::*;

fn profile() -> impl Strategy<Value = SrtpProfile> {
    prop::sample::select(SrtpProfile::ALL.to_vec())
}

fn context(p: SrtpProfile) -> SrtpContext {
    let key: Vec<u8> = (0..p.master_key_len() as u8).collect();
    let salt: Vec<u8> = (0..p.master_salt_len() as u8).map(|b| b ^ 0x5a).collect();
    SrtpContext::new(p, &key, &salt).unwrap()
}

prop_compose! {
    fn rtp_packet()(
        marker_pt in any::<u8>(),
        seq in any::<u16>(),
        ts in any::<u32>(),
        ssrc in any::<u32>(),
        csrcs in prop::collection::vec(any::<u32>(), 0..16),
        ext in prop::option::of(prop::collection::vec(any::<u8>(), 0..5).prop_flat_map(|w| {
            prop::collection::vec(any::<u8>(), w.len() * 4)
        })),
        payload in prop::collection::vec(any::<u8>(), 0..1200),
    ) -> Vec<u8> {
        let x = if ext.is_some() { 0x10 } else { 0 };
        let mut v = vec![0x80 | x | csrcs.len() as u8, marker_pt];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&ssrc.to_be_bytes());
        for c in &csrcs {
            v.extend_from_slice(&c.to_be_bytes());
        }
        if let Some(e) = &ext {
            v.extend_from_slice(&[0xbe, 0xde]);
            v.extend_from_slice(&((e.len() / 4) as u16).to_be_bytes());
            v.extend_from_slice(e);
        }
        v.extend_from_slice(&payload);
        v
    }
}

prop_compose! {
    fn rtcp_packet()(
        pt in any::<u8>(),
        ssrc in any::<u32>(),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) -> Vec<u8> {
        let mut v = vec![0x80, pt, 0, 0];
        v.extend_from_slice(&ssrc.to_be_bytes());
        v.extend_from_slice(&body);
        v
    }
}

proptest! {
    #[test]
    fn rtp_round_trips(p in profile(), pkts in prop::collection::vec(rtp_packet(), 1..4)) {
        let mut tx = context(p);
        let mut rx = context(p);
        for pkt in pkts {
            let mut buf = pkt.clone();
            tx.protect_rtp_in_place(&mut buf).unwrap();
            prop_assert_eq!(buf.len(), pkt.len() + p.rtp_auth_tag_len());
            // Distinct SSRCs or distinct sequence numbers per SSRC are not guaranteed by the
            // generator, so unprotect with a fresh receiver each time.
            let mut rx1 = context(p);
            let mut out = Vec::new();
            rx1.unprotect_rtp(&buf, &mut out).unwrap();
            prop_assert_eq!(&out, &pkt);
            let _ = rx.unprotect_rtp_in_place(&mut buf);
        }
    }

    #[test]
    fn rtcp_round_trips(p in profile(), pkt in rtcp_packet()) {
        let mut tx = context(p);
        let mut rx = context(p);
        let mut sealed = Vec::new();
        tx.protect_rtcp(&pkt, &mut sealed).unwrap();
        let mut out = Vec::new();
        rx.unprotect_rtcp(&sealed, &mut out).unwrap();
        prop_assert_eq!(out, pkt);
    }

    #[test]
    fn arbitrary_bytes_never_panic(p in profile(), data in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut rx = context(p);
        let mut out = Vec::new();
        let _ = rx.unprotect_rtp(&data, &mut out);
        let _ = rx.unprotect_rtcp(&data, &mut out);
        // Force the version bits so parsing gets further.
        let mut v2 = data.clone();
        if let Some(b) = v2.first_mut() {
            *b = (*b & 0x3f) | 0x80;
        }
        prop_assert!(rx.unprotect_rtp(&v2, &mut out).is_err());
        prop_assert!(rx.unprotect_rtcp(&v2, &mut out).is_err());
        // Whatever the sender accepts, a fresh receiver gets back unchanged.
        let mut tx = context(p);
        let mut back = Vec::new();
        if tx.protect_rtp(&v2, &mut out).is_ok() {
            context(p).unprotect_rtp(&out, &mut back).unwrap();
            prop_assert_eq!(&back, &v2);
        }
        if tx.protect_rtcp(&v2, &mut out).is_ok() {
            context(p).unprotect_rtcp(&out, &mut back).unwrap();
            prop_assert_eq!(&back, &v2);
        }
    }
}
