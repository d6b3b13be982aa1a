#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too
mod common;

use common::{fnv1a, le_bytes};
use natter_media::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
use natter_media::{new_decoder, new_encoder, CodecKind, CodecParams};

#[test]
fn ulaw_known_values() {
    assert_eq!(linear_to_ulaw(0), 0xFF);
    assert_eq!(linear_to_ulaw(-1), 0xFF); // rounds to 0 at 14 bits
    assert_eq!(linear_to_ulaw(32767), 0x80);
    assert_eq!(linear_to_ulaw(-32768), 0x00);
    assert_eq!(linear_to_ulaw(1000), 0xCE);
    assert_eq!(linear_to_ulaw(-1000), 0x4E);
    assert_eq!(ulaw_to_linear(0xFF), 0);
    assert_eq!(ulaw_to_linear(0x7F), 0);
    assert_eq!(ulaw_to_linear(0x80), 32124);
    assert_eq!(ulaw_to_linear(0x00), -32124);
    assert_eq!(ulaw_to_linear(0xD5), 716);
    assert_eq!(ulaw_to_linear(0xAA), 5372);
}

#[test]
fn alaw_known_values() {
    assert_eq!(linear_to_alaw(0), 0xD5);
    assert_eq!(linear_to_alaw(-1), 0xD5);
    assert_eq!(linear_to_alaw(32767), 0xAA);
    assert_eq!(linear_to_alaw(-32768), 0x2A);
    assert_eq!(linear_to_alaw(1000), 0xFA);
    assert_eq!(linear_to_alaw(-1000), 0x7A);
    assert_eq!(alaw_to_linear(0xD5), 8);
    assert_eq!(alaw_to_linear(0x55), -8);
    assert_eq!(alaw_to_linear(0xAA), 32256);
    assert_eq!(alaw_to_linear(0x2A), -32256);
    assert_eq!(alaw_to_linear(0x80), 5504);
    assert_eq!(alaw_to_linear(0xFF), 848);
}

/// Every 16-bit input and every code, against hashes of sox's (-D, no dither) output.
#[test]
fn full_tables_match_sox() {
    let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    let ul: Vec<u8> = all.iter().map(|&s| linear_to_ulaw(s)).collect();
    let al: Vec<u8> = all.iter().map(|&s| linear_to_alaw(s)).collect();
    assert_eq!(fnv1a(&ul), 0xe1ee_ec5d_0a7b_09f1);
    assert_eq!(fnv1a(&al), 0xb3b7_55e1_69a3_5e25);
    let ud: Vec<i16> = (0..=255u8).map(ulaw_to_linear).collect();
    let ad: Vec<i16> = (0..=255u8).map(alaw_to_linear).collect();
    assert_eq!(fnv1a(&le_bytes(&ud)), 0xb91e_65d6_8481_a1a8);
    assert_eq!(fnv1a(&le_bytes(&ad)), 0x693a_40ca_62a3_d2a5);
}

/// Companding error is bounded by half a step of the segment: ≤ 1/32 of the magnitude
/// plus a small floor, and decode(encode(decode(c))) == decode(c).
#[test]
fn round_trip_error_bounded() {
    for s in i16::MIN..=i16::MAX {
        let m = i32::from(s).abs();
        let bound = m / 30 + 16;
        let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
        let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
        // µ-law clips at ±32124 / A-law at ±32256 by design.
        assert!(
            (u - i32::from(s)).abs() <= bound.max(m - 32124),
            "ulaw {s} -> {u}"
        );
        assert!(
            (a - i32::from(s)).abs() <= bound.max(m - 32256),
            "alaw {s} -> {a}"
        );
    }
    for c in 0..=255u8 {
        assert_eq!(
            ulaw_to_linear(linear_to_ulaw(ulaw_to_linear(c))),
            ulaw_to_linear(c)
        );
        assert_eq!(
            alaw_to_linear(linear_to_alaw(alaw_to_linear(c))),
            alaw_to_linear(c)
        );
    }
}

#[test]
fn trait_objects_round_trip() {
    for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
        let mut enc = new_encoder(&CodecParams::new(kind)).unwrap();
        let mut dec = new_decoder(kind).unwrap();
        assert_eq!(enc.sample_rate(), 8000);
        let pcm = common::sine(440.0, 8000, 10000.0, 160);
        let mut payload = Vec::new();
        enc.encode(&pcm, &mut payload).unwrap();
        assert_eq!(payload.len(), 160);
        let mut out = vec![7i16]; // decode appends
        assert_eq!(dec.decode(&payload, &mut out).unwrap(), 160);
        assert_eq!(out.len(), 161);
        let (snr, lag) = common::snr_aligned(&pcm, &out[1..], 0);
        assert_eq!(lag, 0);
        assert!(snr > 30.0, "{kind:?} snr {snr}");
    }
}
