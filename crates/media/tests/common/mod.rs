//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

/// FNV-1a 64 over bytes; reference hashes below were computed over the same bytes
/// produced by sox / libspandsp.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub fn le_bytes(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

pub fn sine(freq: f64, rate: u32, amp: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()).round()
                as i16
        })
        .collect()
}

/// SNR in dB of `got` against `want`, after finding the lag (0..max_lag) that aligns
/// them best (codecs delay the signal).
pub fn snr_aligned(want: &[i16], got: &[i16], max_lag: usize) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for lag in 0..=max_lag {
        let n = want.len().min(got.len().saturating_sub(lag));
        if n == 0 {
            continue;
        }
        let mut sig = 0.0;
        let mut err = 0.0;
        for i in 0..n {
            let w = f64::from(want[i]);
            let g = f64::from(got[i + lag]);
            sig += w * w;
            err += (w - g) * (w - g);
        }
        let snr = 10.0 * (sig / err.max(1e-9)).log10();
        if snr > best.0 {
            best = (snr, lag);
        }
    }
    best
}
