#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too
mod common;

use common::sine;
use natter_media::{
    goertzel_power, rms, rms_dbov, CnPayload, ComfortNoise, LegId, Mixer, Resampler, ToneGenerator,
};

#[test]
fn cn_payload_round_trip() {
    let p = CnPayload { level: 50 };
    assert_eq!(p.encode(), vec![50]);
    assert_eq!(CnPayload::decode(&[50]).unwrap(), p);
    // Reflection coefficients after the level are ignored; the reserved bit is masked.
    assert_eq!(CnPayload::decode(&[0x80 | 40, 1, 2, 3]).unwrap().level, 40);
    assert!(CnPayload::decode(&[]).is_err());
    assert_eq!(CnPayload { level: 200 }.encode(), vec![200 & 0x7F]);
}

#[test]
fn comfort_noise_level_and_whiteness() {
    for level in [30u8, 50, 70] {
        let mut cn = ComfortNoise::new(level, 7);
        let mut buf = vec![0; 16000];
        cn.fill(&mut buf);
        let measured = rms_dbov(&buf);
        assert!(
            (measured + f64::from(level)).abs() < 0.5,
            "asked -{level} dBov, got {measured}"
        );
    }
    // White: no band holds much more than its share.
    let mut cn = ComfortNoise::new(30, 1);
    let mut buf = vec![0; 8000];
    cn.fill(&mut buf);
    let total = rms(&buf).powi(2);
    for f in [300.0, 1000.0, 2500.0, 3500.0] {
        assert!(goertzel_power(&buf, 8000, f) < total * 0.05, "{f}");
    }
    // Deterministic per seed, different across seeds.
    let mut a = vec![0; 64];
    let mut b = vec![0; 64];
    ComfortNoise::new(40, 3).fill(&mut a);
    ComfortNoise::new(40, 3).fill(&mut b);
    assert_eq!(a, b);
    ComfortNoise::new(40, 4).fill(&mut b);
    assert_ne!(a, b);
    // Level change takes effect.
    let mut cn = ComfortNoise::new(20, 9);
    cn.set_level(60);
    let mut q = vec![0; 8000];
    cn.fill(&mut q);
    assert!((rms_dbov(&q) + 60.0).abs() < 1.0, "{}", rms_dbov(&q));
}

#[test]
fn level_helpers() {
    assert_eq!(rms(&[]), 0.0);
    assert_eq!(rms_dbov(&[0; 10]), -127.0);
    assert_eq!(rms(&[3, -3, 3, -3]), 3.0);
    // Full-scale square wave is 0 dBov; a full-scale sine about −3 dBov.
    assert!(rms_dbov(&[i16::MIN; 8]).abs() < 1e-9);
    let s = sine(1000.0, 8000, 32767.0, 8000);
    assert!((rms_dbov(&s) + 3.01).abs() < 0.02, "{}", rms_dbov(&s));
    // Goertzel: amplitude A at the probed frequency gives A²/2; elsewhere ~0.
    let s = sine(1000.0, 8000, 1000.0, 800);
    assert!((goertzel_power(&s, 8000, 1000.0) - 500_000.0).abs() < 2000.0);
    assert!(goertzel_power(&s, 8000, 2000.0) < 50.0);
    assert_eq!(goertzel_power(&[], 8000, 1000.0), 0.0);
}

#[test]
fn tone_generator_phase_continuous() {
    let mut g = ToneGenerator::new(1000.0, 8000, 10000);
    let mut whole = vec![0; 800];
    g.fill(&mut whole);
    assert_eq!(whole[..4], [0, 7071, 10000, 7071]);
    let mut g2 = ToneGenerator::new(1000.0, 8000, 10000);
    let mut parts = Vec::new();
    for n in [1, 7, 160, 632] {
        let mut b = vec![0; n];
        g2.fill(&mut b);
        parts.extend(b);
    }
    assert_eq!(parts, whole);
    assert!(goertzel_power(&whole, 8000, 1000.0) > 0.99 * rms(&whole).powi(2));
    // Dual tone via mix_into (DTMF '1' = 697 + 1209 Hz).
    let mut lo = ToneGenerator::new(697.0, 8000, 5000);
    let mut hi = ToneGenerator::new(1209.0, 8000, 5000);
    let mut b = vec![0; 800];
    lo.fill(&mut b);
    hi.mix_into(&mut b);
    assert!(goertzel_power(&b, 8000, 697.0) > 10_000_000.0);
    assert!(goertzel_power(&b, 8000, 1209.0) > 10_000_000.0);
}

#[test]
fn mixer_hears_everyone_but_itself() {
    let mut m = Mixer::new(4);
    let a = m.add_leg();
    let b = m.add_leg();
    let c = m.add_leg();
    assert_eq!(m.len(), 3);
    assert!(m.push(a, &[1, 2, 3, 4]));
    assert!(m.push(b, &[10, 20, 30, 40]));
    assert!(m.push(c, &[100, 200]));
    assert_eq!(m.mix_for(a), [110, 220, 30, 40]);
    assert_eq!(m.mix_for(b), [101, 202, 3, 4]);
    assert_eq!(m.mix_for(c), [11, 22, 33, 44]);
    // Saturation instead of wrap.
    assert!(m.push(a, &[30000, -30000, 0, 0]));
    assert!(m.push(b, &[30000, -30000, 0, 0]));
    assert_eq!(m.mix_for(c), [32767, -32768, 0, 0]);
    // Over-long input is cut; unknown legs refused.
    assert!(m.push(c, &[1, 1, 1, 1, 1, 1]));
    assert!(!m.push(LegId(99), &[1]));
    assert!(m.remove_leg(b));
    assert!(!m.remove_leg(b));
    assert_eq!(m.mix_for(a), [1, 1, 1, 1]);
    assert_eq!(m.mix_for(c), [30000, -30000, 0, 0]);
    m.clear_frames();
    assert_eq!(m.mix_for(a), [0, 0, 0, 0]);
    // A leg alone hears silence.
    let mut solo = Mixer::new(2);
    let s = solo.add_leg();
    solo.push(s, &[5, 5]);
    assert_eq!(solo.mix_for(s), [0, 0]);
}

fn resample_all(from: u32, to: u32, input: &[i16], chunk: usize) -> Vec<i16> {
    let mut r = Resampler::new(from, to).unwrap();
    let mut out = Vec::new();
    for c in input.chunks(chunk) {
        r.process(c, &mut out);
    }
    out
}

#[test]
fn resampler_keeps_frequency_and_exact_length() {
    for (from, to) in [
        (8000, 48000),
        (48000, 8000),
        (16000, 48000),
        (48000, 16000),
        (8000, 16000),
        (16000, 8000),
        (44100, 8000),
        (8000, 44100),
    ] {
        let input = sine(1000.0, from, 10000.0, from as usize); // one second
        for chunk in [160, 997, from as usize / 50] {
            let out = resample_all(from, to, &input, chunk);
            let expect = (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from));
            assert_eq!(out.len() as u64, expect, "{from}->{to} chunk {chunk}");
        }
        let out = resample_all(from, to, &input, 160);
        let mid = &out[out.len() / 4..out.len() * 3 / 4];
        let total = rms(mid).powi(2);
        let at_1k = goertzel_power(mid, to, 1000.0);
        assert!(at_1k > 0.98 * total, "{from}->{to}: {at_1k} of {total}");
        let gain = rms(mid) / rms(&input);
        assert!((gain - 1.0).abs() < 0.01, "{from}->{to} gain {gain}");
        // Chunking is invisible: identical output whatever the chunk size.
        assert_eq!(out, resample_all(from, to, &input, 997), "{from}->{to}");
    }
}

#[test]
fn resampler_filters_aliases_and_passes_dc() {
    // 6 kHz at 48 kHz cannot exist at 8 kHz: it must be removed, not folded to 2 kHz.
    let input = sine(6000.0, 48000, 10000.0, 48000);
    let out = resample_all(48000, 8000, &input, 960);
    let mid = &out[2000..6000];
    assert!(rms(mid) < 10.0, "alias leaked: rms {}", rms(mid));
    // A constant stays that constant.
    let out = resample_all(8000, 48000, &[1234; 800], 80);
    assert!(out[600..4000].iter().all(|&s| s == 1234));
    // Equal rates pass through untouched.
    let mut r = Resampler::new(16000, 16000).unwrap();
    let mut o = Vec::new();
    r.process(&[1, 2, 3], &mut o);
    assert_eq!(o, [1, 2, 3]);
    assert!(Resampler::new(0, 8000).is_err());
    assert!(Resampler::new(8000, 0).is_err());
}

#[test]
fn resampler_delay_is_fixed() {
    // An impulse comes out centred where the stated delay says.
    let mut input = vec![0i16; 400];
    input[100] = 16000;
    let mut r = Resampler::new(8000, 16000).unwrap();
    let delay = r.delay_input_samples();
    let mut out = Vec::new();
    r.process(&input, &mut out);
    let peak = out
        .iter()
        .enumerate()
        .max_by_key(|(_, &v)| v)
        .map(|(i, _)| i)
        .unwrap();
    assert_eq!(peak, (100 + delay) * 2);
}
