//! Pitch-lag search by normalised cross-correlation, shared by time-stretching and
//! concealment. A coarse pass on every `decim`-th lag and sample (about 4 kHz resolution)
//! keeps the cost flat across sample rates; a full-resolution pass refines around it.

/// Result of a lag search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LagMatch {
    pub(crate) lag: usize,
    /// Normalised cross-correlation in [-1, 1] of the two compared segments.
    pub(crate) corr: f64,
    /// Mean square of the two segments (full scale is about 1e9).
    pub(crate) energy: f64,
}

/// Pitch search parameters for one sample rate: 2.5..15 ms lags, ~4 kHz coarse pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PitchRange {
    pub(crate) min_lag: usize,
    pub(crate) max_lag: usize,
    pub(crate) decim: usize,
}

impl PitchRange {
    pub(crate) fn for_rate(fs: usize) -> Self {
        PitchRange {
            min_lag: (fs / 400).max(2),
            max_lag: (fs * 15 / 1000).max(4),
            decim: (fs / 4000).max(1),
        }
    }
}

/// Searches lags in `min_lag..=max_lag`; for each lag, `pair(lag)` names the starts of the
/// two `lag`-long segments of `x` to compare. Out-of-range segments score zero.
pub(crate) fn best_lag(
    x: &[i16],
    min_lag: usize,
    max_lag: usize,
    decim: usize,
    pair: impl Fn(usize) -> (usize, usize),
) -> Option<LagMatch> {
    if min_lag == 0 || max_lag < min_lag {
        return None;
    }
    let decim = decim.max(1);
    let score = |lag: usize, step: usize| {
        let (a, b) = pair(lag);
        ncc(x, a, b, lag, step)
    };
    let mut best: Option<(usize, f64)> = None;
    let mut lag = min_lag;
    while lag <= max_lag {
        let (c, _) = score(lag, decim);
        if best.map_or(true, |(_, b)| c > b) {
            best = Some((lag, c));
        }
        lag += decim;
    }
    let (coarse, _) = best?;
    let lo = coarse.saturating_sub(decim).max(min_lag);
    let hi = (coarse + decim).min(max_lag);
    let mut fine: Option<LagMatch> = None;
    for lag in lo..=hi {
        let (corr, energy) = score(lag, 1);
        if fine.map_or(true, |m| corr > m.corr) {
            fine = Some(LagMatch { lag, corr, energy });
        }
    }
    fine
}

/// Normalised cross-correlation and mean energy of `x[a..a+len]` and `x[b..b+len]`,
/// sampling every `step`-th pair.
fn ncc(x: &[i16], a: usize, b: usize, len: usize, step: usize) -> (f64, f64) {
    let (Some(sa), Some(sb)) = (x.get(a..a + len), x.get(b..b + len)) else {
        return (0.0, 0.0);
    };
    let (mut ab, mut aa, mut bb, mut n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for (p, q) in sa.iter().step_by(step).zip(sb.iter().step_by(step)) {
        let (p, q) = (f64::from(*p), f64::from(*q));
        ab += p * q;
        aa += p * p;
        bb += q * q;
        n += 1;
    }
    let energy = if n == 0 {
        0.0
    } else {
        (aa + bb) / (2 * n) as f64
    };
    let corr = if aa > 0.0 && bb > 0.0 {
        ab / (aa * bb).sqrt()
    } else {
        0.0
    };
    (corr, energy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_period_of_a_sine() {
        let fs = 16000usize;
        let x: Vec<i16> = (0..960)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 250.0 * i as f64 / fs as f64).sin()) as i16
            })
            .collect();
        let r = PitchRange::for_rate(fs);
        // Compare the first segment with the one right after it (accelerate's shape);
        // 250 Hz has a 64-sample period, so 64 or a multiple must win with corr ~1.
        let m = best_lag(&x, r.min_lag, r.max_lag, r.decim, |l| (0, l)).unwrap();
        assert_eq!(m.lag % 64, 0, "{m:?}");
        assert!(m.corr > 0.999);
    }
}
