//! Behaviour of contexts and sessions: round trips, rollover, reordering, replay,
//! tampering, truncation, SDES and DTLS keying.
#![allow(clippy::unwrap_used)]

use natter_srtp::{
    SdesError, SdesKey, SrtpContext, SrtpError, SrtpProfile, SrtpSession, MAX_SSRCS,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const ALL: [SrtpProfile; 4] = SrtpProfile::ALL;

fn keys(p: SrtpProfile, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let key = (0..p.master_key_len()).map(|i| seed ^ i as u8).collect();
    let salt = (0..p.master_salt_len())
        .map(|i| seed.wrapping_add(0x40) ^ i as u8)
        .collect();
    (key, salt)
}

fn pair(p: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let (k, s) = keys(p, 7);
    (
        SrtpContext::new(p, &k, &s).unwrap(),
        SrtpContext::new(p, &k, &s).unwrap(),
    )
}

/// An RTP packet with optional CSRCs and a one-byte-header extension.
fn rtp(seq: u16, ssrc: u32, csrcs: u8, ext_words: u16, payload: &[u8]) -> Vec<u8> {
    let x = if ext_words > 0 { 0x10 } else { 0 };
    let mut v = vec![0x80 | x | csrcs, 0x60];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..csrcs {
        v.extend_from_slice(&(0x1000 + u32::from(c)).to_be_bytes());
    }
    if ext_words > 0 {
        v.extend_from_slice(&[0xbe, 0xde]);
        v.extend_from_slice(&ext_words.to_be_bytes());
        v.extend((0..ext_words * 4).map(|i| i as u8));
    }
    v.extend_from_slice(payload);
    v
}

fn rtcp_sr(ssrc: u32, fill: u8) -> Vec<u8> {
    let mut v = vec![0x80, 200, 0x00, 0x06];
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(&[fill; 20]);
    v
}

fn payload(seed: u16) -> Vec<u8> {
    (0..160u16)
        .map(|i| (i.wrapping_mul(31) ^ seed) as u8)
        .collect()
}

#[test]
fn profile_parameters_are_exact() {
    use SrtpProfile::*;
    let table = [
        (
            AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_80",
            1u16,
            16,
            14,
            10,
            10,
        ),
        (
            AesCm128HmacSha1_32,
            "AES_CM_128_HMAC_SHA1_32",
            2,
            16,
            14,
            4,
            10,
        ),
        (AeadAes128Gcm, "AEAD_AES_128_GCM", 7, 16, 12, 16, 16),
        (AeadAes256Gcm, "AEAD_AES_256_GCM", 8, 32, 12, 16, 16),
    ];
    for (p, name, id, kl, sl, rt, rc) in table {
        assert_eq!(p.sdes_name(), name);
        assert_eq!(SrtpProfile::from_sdes_name(name), Some(p));
        assert_eq!(p.dtls_id(), id);
        assert_eq!(SrtpProfile::from_dtls_id(id), Some(p));
        assert_eq!(p.master_key_len(), kl);
        assert_eq!(p.master_salt_len(), sl);
        assert_eq!(p.rtp_auth_tag_len(), rt);
        assert_eq!(p.rtcp_auth_tag_len(), rc);
    }
    assert_eq!(SrtpProfile::from_sdes_name("aes_cm_128_hmac_sha1_80"), None);
    assert_eq!(SrtpProfile::from_dtls_id(3), None);
}

#[test]
fn bad_key_and_salt_lengths_are_typed_errors() {
    let p = SrtpProfile::AeadAes256Gcm;
    assert_eq!(
        SrtpContext::new(p, &[0; 16], &[0; 12]).unwrap_err(),
        SrtpError::BadKeyLength {
            expected: 32,
            got: 16
        }
    );
    assert_eq!(
        SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &[0; 16], &[0; 12]).unwrap_err(),
        SrtpError::BadSaltLength {
            expected: 14,
            got: 12
        }
    );
}

#[test]
fn round_trip_every_profile_rtp_and_rtcp() {
    for p in ALL {
        let (mut tx, mut rx) = pair(p);
        for (csrcs, ext) in [(0u8, 0u16), (2, 0), (0, 3), (15, 1)] {
            let plain = rtp(
                100 + u16::from(csrcs) + ext,
                0x1111,
                csrcs,
                ext,
                &payload(9),
            );
            let hdr_len = plain.len() - 160;
            let mut sealed = Vec::new();
            tx.protect_rtp(&plain, &mut sealed).unwrap();
            assert_eq!(sealed.len(), plain.len() + p.rtp_auth_tag_len(), "{p}");
            assert_eq!(
                sealed[..hdr_len],
                plain[..hdr_len],
                "{p}: header in the clear"
            );
            assert_ne!(
                sealed[hdr_len..hdr_len + 160],
                plain[hdr_len..],
                "{p}: encrypted"
            );
            let mut back = Vec::new();
            rx.unprotect_rtp(&sealed, &mut back).unwrap();
            assert_eq!(back, plain, "{p}");
        }
        for i in 0..3u8 {
            let plain = rtcp_sr(0x2222, i);
            let mut sealed = Vec::new();
            tx.protect_rtcp(&plain, &mut sealed).unwrap();
            assert_eq!(sealed.len(), plain.len() + 4 + p.rtcp_auth_tag_len(), "{p}");
            assert_eq!(sealed[..8], plain[..8]);
            assert_ne!(sealed[8..28], plain[8..]);
            // E bit set, index counts from zero.
            let word_at = if p.is_aead() {
                sealed.len() - 4
            } else {
                sealed.len() - 4 - p.rtcp_auth_tag_len()
            };
            assert_eq!(sealed[word_at..word_at + 4], [0x80, 0, 0, i]);
            let mut back = Vec::new();
            rx.unprotect_rtcp(&sealed, &mut back).unwrap();
            assert_eq!(back, plain);
        }
    }
}

#[test]
fn in_place_matches_copying_api() {
    for p in ALL {
        let (mut a, mut b) = pair(p);
        let plain = rtp(5, 9, 1, 1, &payload(1));
        let mut copied = Vec::new();
        a.protect_rtp(&plain, &mut copied).unwrap();
        let mut inplace = plain.clone();
        b.protect_rtp_in_place(&mut inplace).unwrap();
        assert_eq!(copied, inplace);

        let (_, mut rx) = pair(p);
        rx.unprotect_rtp_in_place(&mut inplace).unwrap();
        assert_eq!(inplace, plain);
    }
}

#[test]
fn empty_payload_round_trips() {
    for p in ALL {
        let (mut tx, mut rx) = pair(p);
        let plain = rtp(1, 1, 0, 0, &[]);
        let mut sealed = Vec::new();
        tx.protect_rtp(&plain, &mut sealed).unwrap();
        let mut back = Vec::new();
        rx.unprotect_rtp(&sealed, &mut back).unwrap();
        assert_eq!(back, plain);
    }
}

#[test]
fn roc_rolls_over_at_65535() {
    for p in ALL {
        let (mut tx, mut rx) = pair(p);
        let mut sealed_zero_after_wrap = Vec::new();
        for seq in (65_530u16..=65_535).chain(0..6) {
            let plain = rtp(seq, 0xabc, 0, 0, &payload(seq));
            let mut sealed = Vec::new();
            tx.protect_rtp(&plain, &mut sealed).unwrap();
            if seq == 0 {
                sealed_zero_after_wrap = sealed.clone();
            }
            let mut back = Vec::new();
            rx.unprotect_rtp(&sealed, &mut back).unwrap();
            assert_eq!(back, plain, "{p} seq {seq}");
        }
        assert_eq!(tx.roc(0xabc), Some(1));
        assert_eq!(rx.roc(0xabc), Some(1));

        // The ROC is in the crypto: the same packet under ROC 0 is different on the wire,
        // and a fresh receiver (ROC 0) cannot authenticate the ROC-1 packet.
        let (mut fresh_tx, mut fresh_rx) = pair(p);
        let mut roc0 = Vec::new();
        fresh_tx
            .protect_rtp(&rtp(0, 0xabc, 0, 0, &payload(0)), &mut roc0)
            .unwrap();
        assert_ne!(roc0, sealed_zero_after_wrap);
        let mut out = Vec::new();
        assert_eq!(
            fresh_rx.unprotect_rtp(&sealed_zero_after_wrap, &mut out),
            Err(SrtpError::AuthFailed)
        );
    }
}

#[test]
fn reordering_across_the_rollover() {
    for p in ALL {
        let (mut tx, mut rx) = pair(p);
        let seqs = [65_533u16, 65_534, 65_535, 0, 1, 2, 3];
        let sealed: Vec<(u16, Vec<u8>)> = seqs
            .iter()
            .map(|&s| {
                let mut out = Vec::new();
                tx.protect_rtp(&rtp(s, 77, 0, 0, &payload(s)), &mut out)
                    .unwrap();
                (s, out)
            })
            .collect();
        // Deliver: 65533, 0, 65535, 2, 65534, 1, 3.
        for i in [0usize, 3, 2, 5, 1, 4, 6] {
            let (s, pkt) = &sealed[i];
            let mut back = Vec::new();
            rx.unprotect_rtp(pkt, &mut back)
                .unwrap_or_else(|e| panic!("{p} seq {s}: {e}"));
            assert_eq!(back, rtp(*s, 77, 0, 0, &payload(*s)));
        }
        assert_eq!(rx.roc(77), Some(1));
        // Every one of them is now a replay, on both sides of the wrap.
        for (s, pkt) in &sealed {
            let mut back = Vec::new();
            assert_eq!(
                rx.unprotect_rtp(pkt, &mut back),
                Err(SrtpError::Replayed),
                "{p} seq {s}"
            );
        }
    }
}

#[test]
fn replay_and_too_old_are_rejected() {
    for p in ALL {
        let (mut tx, mut rx) = pair(p);
        let mut first = Vec::new();
        tx.protect_rtp(&rtp(1000, 5, 0, 0, &payload(1)), &mut first)
            .unwrap();
        let mut back = Vec::new();
        rx.unprotect_rtp(&first, &mut back).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&first, &mut back),
            Err(SrtpError::Replayed)
        );

        // Jump ahead by the window size: seq 1000 is now too old even if never seen before.
        let mut old = Vec::new();
        tx.protect_rtp(&rtp(1001, 5, 0, 0, &payload(2)), &mut old)
            .unwrap();
        let mut ahead = Vec::new();
        tx.protect_rtp(
            &rtp(
                1001 + natter_srtp::REPLAY_WINDOW as u16,
                5,
                0,
                0,
                &payload(3),
            ),
            &mut ahead,
        )
        .unwrap();
        rx.unprotect_rtp(&ahead, &mut back).unwrap();
        assert_eq!(rx.unprotect_rtp(&old, &mut back), Err(SrtpError::Replayed));

        // SRTCP replay.
        let mut sr = Vec::new();
        tx.protect_rtcp(&rtcp_sr(5, 1), &mut sr).unwrap();
        rx.unprotect_rtcp(&sr, &mut back).unwrap();
        assert_eq!(rx.unprotect_rtcp(&sr, &mut back), Err(SrtpError::Replayed));
    }
}

#[test]
fn a_forgery_does_not_advance_the_replay_window() {
    for p in ALL {
        let (mut tx, mut rx) = pair(p);
        let mut back = Vec::new();
        let mut a = Vec::new();
        tx.protect_rtp(&rtp(10, 3, 0, 0, &payload(0)), &mut a)
            .unwrap();
        rx.unprotect_rtp(&a, &mut back).unwrap();

        // A forged packet far ahead (same seq as a later genuine one) fails...
        let mut genuine = Vec::new();
        tx.protect_rtp(&rtp(500, 3, 0, 0, &payload(5)), &mut genuine)
            .unwrap();
        let mut forged = genuine.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0x80;
        assert_eq!(
            rx.unprotect_rtp(&forged, &mut back),
            Err(SrtpError::AuthFailed)
        );
        // ...and neither pushes seq 11 out of the window nor marks seq 500 as seen.
        let mut b = Vec::new();
        tx.protect_rtp(&rtp(11, 3, 0, 0, &payload(0)), &mut b)
            .unwrap();
        rx.unprotect_rtp(&b, &mut back).unwrap();
        rx.unprotect_rtp(&genuine, &mut back).unwrap();
    }
}

#[test]
fn tampering_is_rejected_everywhere() {
    for p in ALL {
        let (mut tx, _) = pair(p);
        let mut sealed = Vec::new();
        tx.protect_rtp(&rtp(42, 8, 1, 1, &payload(3)), &mut sealed)
            .unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x04;
            let (_, mut rx) = pair(p);
            let mut out = Vec::new();
            let r = rx.unprotect_rtp(&bad, &mut out);
            // Flipping header length fields may make the header unparseable instead.
            assert!(
                matches!(r, Err(SrtpError::AuthFailed | SrtpError::Malformed)),
                "{p} octet {i}: {r:?}"
            );
        }
        let mut sr = Vec::new();
        tx.protect_rtcp(&rtcp_sr(8, 0), &mut sr).unwrap();
        for i in 0..sr.len() {
            let mut bad = sr.clone();
            bad[i] ^= 0x01;
            let (_, mut rx) = pair(p);
            let mut out = Vec::new();
            let r = rx.unprotect_rtcp(&bad, &mut out);
            assert!(
                matches!(r, Err(SrtpError::AuthFailed | SrtpError::Malformed)),
                "{p} rtcp octet {i}: {r:?}"
            );
        }
    }
}

#[test]
fn wrong_key_fails_authentication() {
    for p in ALL {
        let (mut tx, _) = pair(p);
        let (k, s) = keys(p, 8);
        let mut rx = SrtpContext::new(p, &k, &s).unwrap();
        let mut sealed = Vec::new();
        tx.protect_rtp(&rtp(1, 1, 0, 0, &payload(0)), &mut sealed)
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(
            rx.unprotect_rtp(&sealed, &mut out),
            Err(SrtpError::AuthFailed)
        );
    }
}

#[test]
fn truncated_and_malformed_input_errors_without_panicking() {
    for p in ALL {
        let (mut tx, mut rx) = pair(p);
        let mut sealed = Vec::new();
        tx.protect_rtp(&rtp(7, 7, 2, 2, &payload(7)), &mut sealed)
            .unwrap();
        let mut sr = Vec::new();
        tx.protect_rtcp(&rtcp_sr(7, 7), &mut sr).unwrap();
        let mut out = Vec::new();
        for n in 0..sealed.len() {
            assert!(rx.unprotect_rtp(&sealed[..n], &mut out).is_err(), "{p} {n}");
        }
        for n in 0..sr.len() {
            assert!(rx.unprotect_rtcp(&sr[..n], &mut out).is_err(), "{p} {n}");
        }
        // The intact ones still work: failures changed no state.
        rx.unprotect_rtp(&sealed, &mut out).unwrap();
        rx.unprotect_rtcp(&sr, &mut out).unwrap();

        // Protect-side parsing.
        assert_eq!(
            tx.protect_rtp(&[0x80; 11], &mut out),
            Err(SrtpError::TooShort)
        );
        assert_eq!(
            tx.protect_rtp(&[0x40; 12], &mut out),
            Err(SrtpError::Malformed)
        );
        let mut cc = rtp(1, 1, 0, 0, &[]);
        cc[0] |= 0x03; // three CSRCs announced, none present
        assert_eq!(tx.protect_rtp(&cc, &mut out), Err(SrtpError::Malformed));
        let mut ext = rtp(1, 1, 0, 1, &[]);
        ext[15] = 9; // extension longer than the packet
        assert_eq!(tx.protect_rtp(&ext, &mut out), Err(SrtpError::Malformed));
        assert_eq!(
            tx.protect_rtcp(&[0x80; 7], &mut out),
            Err(SrtpError::TooShort)
        );
    }
}

#[test]
fn many_ssrcs_are_bounded_and_still_work() {
    let p = SrtpProfile::AeadAes128Gcm;
    let (mut tx, mut rx) = pair(p);
    let mut out = Vec::new();
    let mut back = Vec::new();
    for ssrc in 0..(MAX_SSRCS as u32 * 3) {
        tx.protect_rtp(&rtp(1, ssrc, 0, 0, &payload(1)), &mut out)
            .unwrap();
        rx.unprotect_rtp(&out, &mut back).unwrap();
    }
    // The most recent SSRC is still tracked, the earliest was evicted.
    assert_eq!(rx.roc(MAX_SSRCS as u32 * 3 - 1), Some(0));
    assert_eq!(rx.roc(0), None);
}

#[test]
fn dtls_split_assigns_client_keys_to_the_client_sender() {
    for p in ALL {
        let len = SrtpSession::dtls_keying_material_len(p);
        let km: Vec<u8> = (0..len as u8).collect();
        let mut client = SrtpSession::from_dtls(p, &km, true).unwrap();
        let mut server = SrtpSession::from_dtls(p, &km, false).unwrap();

        // client -> server and back.
        let plain = rtp(3, 1, 0, 0, &payload(3));
        let mut buf = plain.clone();
        client.protect_rtp_in_place(&mut buf).unwrap();
        server.unprotect_rtp_in_place(&mut buf).unwrap();
        assert_eq!(buf, plain);
        let mut buf = plain.clone();
        server.protect_rtp_in_place(&mut buf).unwrap();
        client.unprotect_rtp_in_place(&mut buf).unwrap();
        assert_eq!(buf, plain);
        let sr = rtcp_sr(1, 1);
        let mut buf = sr.clone();
        client.protect_rtcp_in_place(&mut buf).unwrap();
        server.unprotect_rtcp_in_place(&mut buf).unwrap();
        assert_eq!(buf, sr);

        // The layout is key|key|salt|salt: the client's sender equals a context built
        // from the first key and first salt.
        let (k, s) = (p.master_key_len(), p.master_salt_len());
        let mut manual = SrtpContext::new(p, &km[..k], &km[2 * k..2 * k + s]).unwrap();
        let mut a = plain.clone();
        let mut b = plain.clone();
        manual.protect_rtp_in_place(&mut a).unwrap();
        let mut fresh_client = SrtpSession::from_dtls(p, &km, true).unwrap();
        fresh_client.protect_rtp_in_place(&mut b).unwrap();
        assert_eq!(a, b);

        assert_eq!(
            SrtpSession::from_dtls(p, &km[1..], true).unwrap_err(),
            SrtpError::BadKeyingMaterialLength {
                expected: len,
                got: len - 1
            }
        );
    }
}

#[test]
fn sdes_session_pairs_interoperate() {
    let mut rng = StdRng::seed_from_u64(4568);
    for p in ALL {
        let alice_key = SdesKey::generate(p, &mut rng);
        let bob_key = SdesKey::generate(p, &mut rng);
        assert_ne!(alice_key, bob_key);
        // Each side learns the other's key through SDP.
        let alice_sdp = alice_key.crypto_attribute_value(1);
        let bob_sdp = bob_key.crypto_attribute_value(1);
        let (_, alice_seen_by_bob) = SdesKey::parse_crypto_attribute(&alice_sdp).unwrap();
        let (_, bob_seen_by_alice) = SdesKey::parse_crypto_attribute(&bob_sdp).unwrap();
        let mut alice = SrtpSession::from_sdes(&alice_key, &bob_seen_by_alice).unwrap();
        let mut bob = SrtpSession::from_sdes(&bob_key, &alice_seen_by_bob).unwrap();

        let plain = rtp(9, 9, 0, 0, &payload(9));
        let mut buf = plain.clone();
        alice.protect_rtp_in_place(&mut buf).unwrap();
        bob.unprotect_rtp_in_place(&mut buf).unwrap();
        assert_eq!(buf, plain);
        let mut buf = plain.clone();
        bob.protect_rtp_in_place(&mut buf).unwrap();
        alice.unprotect_rtp_in_place(&mut buf).unwrap();
        assert_eq!(buf, plain);
    }
    let a = SdesKey::generate(SrtpProfile::AeadAes128Gcm, &mut rng);
    let b = SdesKey::generate(SrtpProfile::AesCm128HmacSha1_80, &mut rng);
    assert_eq!(
        SrtpSession::from_sdes(&a, &b).unwrap_err(),
        SrtpError::ProfileMismatch
    );
}

#[test]
fn sdes_inline_format_is_exact() {
    let k = SdesKey {
        profile: SrtpProfile::AesCm128HmacSha1_80,
        key: (0..16).collect(),
        salt: (16..30).collect(),
    };
    assert_eq!(
        k.to_inline(),
        "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    );
    assert_eq!(
        k.crypto_attribute_value(1),
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    );
    // GCM-128: 28 octets needs padding; both padded and unpadded forms parse.
    let g = SdesKey {
        profile: SrtpProfile::AeadAes128Gcm,
        key: vec![0xff; 16],
        salt: vec![0x00; 12],
    };
    let inline = g.to_inline();
    assert_eq!(inline, "inline://///////////////////wAAAAAAAAAAAAAAAA==");
    assert_eq!(SdesKey::parse_key_params(g.profile, &inline).unwrap(), g);
    assert_eq!(
        SdesKey::parse_key_params(g.profile, inline.trim_end_matches('=')).unwrap(),
        g
    );
}

#[test]
fn sdes_key_params_tolerate_lifetime_and_refuse_mki() {
    let p = SrtpProfile::AesCm128HmacSha1_80;
    // RFC 4568 §4's example key.
    let b64 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let plain = SdesKey::parse_key_params(p, &format!("inline:{b64}")).unwrap();
    assert_eq!(plain.key.len(), 16);
    assert_eq!(plain.salt.len(), 14);
    assert_eq!(plain.to_inline(), format!("inline:{b64}"));
    for ok in [
        format!("inline:{b64}|2^20"),
        format!("inline:{b64}|2^31"),
        format!("inline:{b64}|1048576"),
        format!("inline:{b64}|2^20|1:0"),
        format!("inline:{b64}|2^20;inline:{b64}|2^20"),
    ] {
        assert_eq!(SdesKey::parse_key_params(p, &ok).unwrap(), plain, "{ok}");
    }
    assert_eq!(
        SdesKey::parse_key_params(p, &format!("inline:{b64}|2^20|1:4")).unwrap_err(),
        SdesError::MkiNotSupported {
            value: 1,
            length: 4
        }
    );
    assert_eq!(
        SdesKey::parse_key_params(p, &format!("inline:{b64}|1:4")).unwrap_err(),
        SdesError::MkiNotSupported {
            value: 1,
            length: 4
        }
    );
    assert_eq!(
        SdesKey::parse_key_params(p, &format!("inline:{b64}|2^x")).unwrap_err(),
        SdesError::BadLifetime
    );
    assert_eq!(
        SdesKey::parse_key_params(p, &format!("uri:{b64}")).unwrap_err(),
        SdesError::NotInline
    );
    assert_eq!(
        SdesKey::parse_key_params(p, "inline:!!!!").unwrap_err(),
        SdesError::BadBase64
    );
    assert_eq!(
        SdesKey::parse_key_params(SrtpProfile::AeadAes256Gcm, &format!("inline:{b64}"))
            .unwrap_err(),
        SdesError::BadKeyLength {
            expected: 44,
            got: 30
        }
    );
    let (tag, key) = SdesKey::parse_crypto_attribute(&format!(
        "1 AES_CM_128_HMAC_SHA1_32 inline:{b64}|2^20|1:0 KDR=0"
    ))
    .unwrap();
    assert_eq!(tag, 1);
    assert_eq!(key.profile, SrtpProfile::AesCm128HmacSha1_32);
    assert_eq!(
        SdesKey::parse_crypto_attribute(&format!("1 F8_128_HMAC_SHA1_80 inline:{b64}"))
            .unwrap_err(),
        SdesError::UnknownSuite("F8_128_HMAC_SHA1_80".into())
    );
    assert_eq!(
        SdesKey::parse_crypto_attribute("x AES_CM_128_HMAC_SHA1_80").unwrap_err(),
        SdesError::Malformed
    );
}

#[test]
fn debug_output_does_not_leak_keys() {
    let k = SdesKey {
        profile: SrtpProfile::AesCm128HmacSha1_80,
        key: vec![0xab; 16],
        salt: vec![0xcd; 14],
    };
    let d = format!("{k:?}");
    assert!(!d.contains("171") && !d.contains("ab, ab"), "{d}");
    let (ctx, _) = pair(SrtpProfile::AeadAes128Gcm);
    assert!(format!("{ctx:?}").starts_with("SrtpContext"));
}
