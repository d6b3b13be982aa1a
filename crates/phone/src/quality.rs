//! How closely a received recording matches what was sent: the delay (cross-correlation
//! lag) and the peak normalised cross-correlation for speech, and the share of sound
//! that sits at the expected frequency for a tone. Used by `natter demo` and the call
//! benchmark's sanity checks; PESQ itself is computed by the benchmark (ITU-T P.862).

use natter_media::Resampler;

/// Result of aligning a recording against its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// How much later the recording has the reference's sound, in ms.
    pub delay_ms: f64,
    /// Peak normalised cross-correlation (1.0 = identical waveform).
    pub xcorr: f64,
}

fn to_rate(pcm: &[i16], from: u32, to: u32) -> Vec<f32> {
    let v: Vec<i16> = if from == to {
        pcm.to_vec()
    } else {
        let mut out = Vec::with_capacity(pcm.len() * to as usize / from.max(1) as usize + 16);
        if let Ok(mut r) = Resampler::new(from, to) {
            r.process(pcm, &mut out);
        }
        out
    };
    v.into_iter().map(f32::from).collect()
}

/// Energy envelope in 5 ms blocks (coarse search).
fn envelope(x: &[f32], block: usize) -> Vec<f32> {
    x.chunks(block.max(1))
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

fn ncc(a: &[f32], b: &[f32], lag: isize) -> f64 {
    // b shifted: b[i + lag] against a[i]
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (i, &x) in a.iter().enumerate() {
        let j = i as isize + lag;
        if j < 0 {
            continue;
        }
        let Some(&y) = b.get(j as usize) else { break };
        ab += f64::from(x) * f64::from(y);
        aa += f64::from(x) * f64::from(x);
        bb += f64::from(y) * f64::from(y);
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// Aligns `got` (at `got_rate`) against `reference` (at `ref_rate`), searching delays
/// from 0 to `max_delay_ms`.
pub fn align(
    reference: &[i16],
    ref_rate: u32,
    got: &[i16],
    got_rate: u32,
    max_delay_ms: u32,
) -> Alignment {
    let rate = ref_rate.min(16000);
    let a = to_rate(reference, ref_rate, rate);
    let b = to_rate(got, got_rate, rate);
    let block = (rate / 200) as usize; // 5 ms
    let (ea, eb) = (envelope(&a, block), envelope(&b, block));
    let max_lag = (max_delay_ms as usize * 200 / 1000).max(1);
    let mut best = (0usize, f64::MIN);
    for lag in 0..=max_lag {
        let c = ncc(&ea, &eb, lag as isize);
        if c > best.1 {
            best = (lag, c);
        }
    }
    let centre = (best.0 * block) as isize;
    let mut fine = (centre, f64::MIN);
    for d in -(2 * block as isize)..=(2 * block as isize) {
        let lag = centre + d;
        if lag < 0 {
            continue;
        }
        let c = ncc(&a, &b, lag);
        if c > fine.1 {
            fine = (lag, c);
        }
    }
    Alignment {
        delay_ms: fine.0 as f64 * 1000.0 / f64::from(rate),
        xcorr: fine.1.max(0.0),
    }
}

/// Share of the recording's active 20 ms frames whose energy is mostly at `freq` (a
/// Goertzel filter against the frame's total energy). 1.0 = a clean tone throughout.
pub fn tone_share(got: &[i16], rate: u32, freq: f64) -> f64 {
    let n = (rate / 50) as usize;
    let (mut active, mut good) = (0usize, 0usize);
    for frame in got.chunks(n) {
        if frame.len() < n {
            break;
        }
        let energy: f64 = frame.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
        let rms = (energy / n as f64).sqrt();
        if rms < 100.0 {
            continue;
        }
        active += 1;
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0f64, 0f64);
        for &x in frame {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        // A pure tone of amplitude A gives power (A n / 2)^2 and energy A^2 n / 2.
        let tone_energy = 2.0 * power / n as f64;
        if tone_energy >= 0.8 * energy {
            good += 1;
        }
    }
    if active == 0 {
        0.0
    } else {
        good as f64 / active as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() * 8000.0)
                    as i16
            })
            .collect()
    }

    #[test]
    fn finds_the_delay_of_a_shifted_signal() {
        // A chirp-like signal: the sum of tones with an envelope, so the lag is unique.
        let rate = 8000;
        let mut x: Vec<i16> = Vec::new();
        for k in 0..40 {
            let f = 300.0 + 37.0 * f64::from(k % 11);
            let amp = if k % 3 == 0 { 0.2 } else { 1.0 };
            x.extend(
                sine(f, rate, 400)
                    .iter()
                    .map(|s| (f64::from(*s) * amp) as i16),
            );
        }
        let mut got = vec![0i16; 800]; // 100 ms
        got.extend_from_slice(&x);
        let a = align(&x, rate, &got, rate, 500);
        assert!((a.delay_ms - 100.0).abs() < 0.2, "{a:?}");
        assert!(a.xcorr > 0.99, "{a:?}");
    }

    #[test]
    fn tone_share_tells_a_tone_from_another() {
        let t = sine(440.0, 8000, 8000);
        assert!(tone_share(&t, 8000, 440.0) > 0.95);
        assert!(tone_share(&t, 8000, 1000.0) < 0.05);
        assert_eq!(tone_share(&[0; 8000], 8000, 440.0), 0.0);
    }
}
