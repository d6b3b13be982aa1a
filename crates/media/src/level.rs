//! Signal measurement: RMS level in dBov and single-frequency power (Goertzel), used
//! by tests and by the phone's audio self-check.

/// Root mean square of `samples` (0 for an empty slice).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// RMS level relative to full scale (32768) in dB; silence reads −127 dBov, the floor
/// RFC 3389 can express.
pub fn rms_dbov(samples: &[i16]) -> f64 {
    let r = rms(samples);
    if r <= 0.0 {
        return -127.0;
    }
    (20.0 * (r / 32768.0).log10()).max(-127.0)
}

/// Mean power of the component of `samples` at `freq` Hz (Goertzel algorithm),
/// normalised so that a sine of amplitude A at exactly that frequency gives A²/2, the
/// same scale as `rms(samples)²`.
pub fn goertzel_power(samples: &[i16], rate: u32, freq: f64) -> f64 {
    if samples.is_empty() || rate == 0 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power / (n * n)
}
