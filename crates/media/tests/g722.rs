#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too
mod common;

use common::{fnv1a, le_bytes, sine, snr_aligned};
use natter_media::g722::{G722Decoder, G722Encoder};
use natter_media::{goertzel_power, CodecKind, Decoder, Encoder};

/// Deterministic wideband test signal (LCG noise + triangle, stepped envelope) that the
/// reference vectors were generated from.
fn reference_signal() -> Vec<i16> {
    let mut st: u32 = 12345;
    (0..4000u32)
        .map(|n| {
            st = (st.wrapping_mul(1_103_515_245).wrapping_add(12345)) & 0x7fff_ffff;
            let noise = ((st >> 16) & 0x3fff) as i32 - 8192;
            let tri = ((n * 37) % 400) as i32;
            let tri = if tri < 200 { tri } else { 400 - tri } * 100 - 10000;
            let env = ((n / 500) % 4 + 1) as i32;
            ((noise + tri) * env).div_euclid(2).clamp(-32768, 32767) as i16
        })
        .collect()
}

/// Bit-exact against an independent G.722 implementation (libspandsp 64 kbit/s):
/// encoder bytes and decoder PCM hashes of the same input.
#[test]
fn matches_reference_implementation() {
    let pcm = reference_signal();
    let mut enc = G722Encoder::new();
    let mut code = Vec::new();
    enc.encode(&pcm, &mut code).unwrap();
    assert_eq!(code.len(), 2000);
    assert_eq!(
        code[..16],
        [
            0x32, 0x86, 0x21, 0x87, 0x25, 0x84, 0x86, 0x9c, 0xa7, 0xb4, 0x9a, 0x10, 0x1f, 0xa7,
            0xb5, 0x19
        ]
    );
    assert_eq!(fnv1a(&code), 0xa479_3904_52cb_1b54);

    let mut dec = G722Decoder::new();
    let mut out = Vec::new();
    assert_eq!(dec.decode(&code, &mut out).unwrap(), 4000);
    assert_eq!(out[..8], [0, -1, -1, 0, 0, -1, -1, 3]);
    // The reference lets four overloaded QMF outputs wrap around i16; we saturate.
    // Put its wrapped values in and the whole output must be identical.
    let wrapped = [
        (1795, -32768, 31484),
        (1952, 32767, -31194),
        (3730, -32768, 28979),
        (3838, -32768, 32756),
    ];
    for (i, ours, theirs) in wrapped {
        assert_eq!(out[i], ours, "sample {i}");
        out[i] = theirs;
    }
    assert_eq!(fnv1a(&le_bytes(&out)), 0xa451_7e06_923d_009c);
}

#[test]
fn sine_round_trip_snr() {
    for freq in [300.0, 1000.0, 3000.0, 6000.0] {
        let pcm = sine(freq, 16000, 12000.0, 16000);
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let mut out = Vec::new();
        for frame in pcm.chunks(320) {
            let mut payload = Vec::new();
            enc.encode(frame, &mut payload).unwrap();
            assert_eq!(payload.len(), 160);
            dec.decode(&payload, &mut out).unwrap();
        }
        assert_eq!(out.len(), pcm.len());
        // Skip the adaptation start-up; the QMF pair delays by 22 samples.
        let (snr, lag) = snr_aligned(&pcm[2000..15000], &out[2000..], 40);
        let gain = natter_media::rms(&out[2000..15000]) / natter_media::rms(&pcm[2000..15000]);
        assert!((gain - 1.0).abs() < 0.01, "{freq} Hz gain {gain}");
        // Measured: 63 dB at 300 Hz, 47 at 1 kHz, 41 at 3 kHz, 27.5 at 6 kHz.
        assert!(snr > 25.0, "{freq} Hz: snr {snr} dB at lag {lag}");
        if freq == 300.0 {
            assert_eq!(lag, 22, "QMF analysis + synthesis delay");
            assert!(snr > 50.0);
        }
    }
}

/// Band split property: a 1 kHz tone comes back at 1 kHz, a 6 kHz tone at 6 kHz
/// (through the upper band), and silence encodes to a steady idle pattern that decodes
/// to silence.
#[test]
fn band_split_and_silence() {
    let mut enc = G722Encoder::new();
    let mut dec = G722Decoder::new();
    let pcm = sine(6000.0, 16000, 8000.0, 3200);
    let mut code = Vec::new();
    enc.encode(&pcm, &mut code).unwrap();
    let mut out = Vec::new();
    dec.decode(&code, &mut out).unwrap();
    let tail = &out[1600..];
    assert!(goertzel_power(tail, 16000, 6000.0) > 100.0 * goertzel_power(tail, 16000, 2000.0));

    let mut enc = G722Encoder::new();
    let mut code = Vec::new();
    enc.encode(&[0; 640], &mut code).unwrap();
    // Idle: the reset state codes silence as 0xFA (smallest positive low-band step,
    // high band code 3) until the step size adapts down and the codes start to chatter.
    assert_eq!(code[..40], [0xFA; 40]);
    let mut dec = G722Decoder::new();
    let mut out = Vec::new();
    dec.decode(&code, &mut out).unwrap();
    // ...and the decoded idle channel noise stays far below audibility.
    let level = natter_media::rms_dbov(&out);
    assert!(level < -70.0, "idle noise {level} dBov");
    assert!(out.iter().all(|&s| s.abs() <= 16), "{out:?}");
}

#[test]
fn odd_frame_rejected_and_kind_metadata() {
    let mut enc = G722Encoder::new();
    assert!(enc.encode(&[0; 3], &mut Vec::new()).is_err());
    assert_eq!(CodecKind::G722.clock_rate(), 8000);
    assert_eq!(CodecKind::G722.sample_rate(), 16000);
    assert_eq!(CodecKind::G722.rtp_ticks(320), 160);
}
