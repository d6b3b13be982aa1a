//! Time-stretching without pitch change (WSOLA / TDHS style): remove or insert exactly one
//! pitch period, cross-fading the two period-apart segments so the waveform stays
//! continuous. Voiced audio is stretched only where it is periodic enough for that to be
//! inaudible; near-silence can be stretched anywhere.

use crate::pitch::{best_lag, PitchRange};

/// Minimum correlation for treating a segment as periodic (NetEq uses 0.9 as well).
const VOICED_CORR: f64 = 0.9;
/// Mean square below which audio counts as silence (about -55 dBov).
const SILENCE_ENERGY: f64 = 3000.0;
/// After this many refusals in a row we stretch anyway, so delay stays bounded even on
/// long aperiodic stretches (noise, music).
const MAX_REFUSALS: u32 = 8;

#[derive(Debug, Clone)]
pub(crate) struct Stretcher {
    range: PitchRange,
    accel_refused: u32,
    expand_refused: u32,
}

impl Stretcher {
    pub(crate) fn new(range: PitchRange) -> Self {
        Stretcher {
            range,
            accel_refused: 0,
            expand_refused: 0,
        }
    }

    /// Removes one pitch period from the start of `buf` (unplayed audio). Returns how many
    /// samples were removed (0 if the audio is unsuitable or too short).
    pub(crate) fn accelerate(&mut self, buf: &mut Vec<i16>) -> usize {
        let max = self.range.max_lag.min(buf.len() / 2);
        let Some(m) = best_lag(buf, self.range.min_lag, max, self.range.decim, |l| (0, l)) else {
            return 0;
        };
        let silent = m.energy < SILENCE_ENERGY;
        if m.corr < VOICED_CORR && !silent && self.accel_refused < MAX_REFUSALS {
            self.accel_refused += 1;
            return 0;
        }
        self.accel_refused = 0;
        let lag = if silent { max } else { m.lag };
        // y[i] fades from buf[i] to buf[lag + i]: starts on buf[0] (continuous with what
        // was played) and ends next to buf[2 * lag] (continuous with what follows).
        let mut out = Vec::with_capacity(buf.len() - lag);
        for i in 0..lag {
            let w = (i + 1) as f64 / (lag + 1) as f64;
            let a = f64::from(buf.get(i).copied().unwrap_or(0));
            let b = f64::from(buf.get(lag + i).copied().unwrap_or(0));
            out.push(mix(a, b, w));
        }
        out.extend_from_slice(buf.get(2 * lag..).unwrap_or(&[]));
        *buf = out;
        lag
    }

    /// Inserts one pitch period at the start of `buf` (unplayed audio), using `hist`
    /// (audio already played, oldest first) as the period before the insertion point.
    pub(crate) fn expand(&mut self, hist: &[i16], buf: &mut Vec<i16>) -> usize {
        let max = self.range.max_lag.min(hist.len()).min(buf.len());
        if max < self.range.min_lag {
            return 0;
        }
        let start = hist.len() - max;
        let mut x = Vec::with_capacity(2 * max);
        x.extend_from_slice(hist.get(start..).unwrap_or(&[]));
        x.extend_from_slice(buf.get(..max).unwrap_or(&[]));
        let split = max;
        let Some(m) = best_lag(&x, self.range.min_lag, max, self.range.decim, |l| {
            (split - l, split)
        }) else {
            return 0;
        };
        let silent = m.energy < SILENCE_ENERGY;
        if m.corr < VOICED_CORR && !silent && self.expand_refused < MAX_REFUSALS {
            self.expand_refused += 1;
            return 0;
        }
        self.expand_refused = 0;
        let lag = m.lag;
        // y[i] fades from buf[i] (continuous after the played audio) to the sample one
        // period earlier, so it ends next to the last played sample and buf[0] follows.
        let mut out = Vec::with_capacity(buf.len() + lag);
        for i in 0..lag {
            let w = (i + 1) as f64 / (lag + 1) as f64;
            let a = f64::from(buf.get(i).copied().unwrap_or(0));
            let b = f64::from(x.get(split - lag + i).copied().unwrap_or(0));
            out.push(mix(a, b, w));
        }
        out.extend_from_slice(buf);
        *buf = out;
        lag
    }
}

/// `a * (1 - w) + b * w`, saturated to i16.
pub(crate) fn mix(a: f64, b: f64, w: f64) -> i16 {
    (a * (1.0 - w) + b * w).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(n: usize, phase0: usize) -> Vec<i16> {
        (phase0..phase0 + n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 250.0 * i as f64 / 16000.0).sin()) as i16
            })
            .collect()
    }

    fn max_jump(x: &[i16]) -> i32 {
        x.windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn accelerate_removes_whole_periods_seamlessly() {
        let mut s = Stretcher::new(PitchRange::for_rate(16000));
        let mut buf = sine(320, 0);
        let removed = s.accelerate(&mut buf);
        assert!(removed > 0 && removed % 64 == 0, "{removed}");
        assert_eq!(buf.len(), 320 - removed);
        // A 250 Hz sine at 16 kHz with whole periods removed is the same sine.
        let want = sine(320 - removed, 0);
        for (a, b) in buf.iter().zip(&want) {
            assert!((i32::from(*a) - i32::from(*b)).abs() <= 1, "{a} vs {b}");
        }
    }

    #[test]
    fn expand_inserts_a_period_without_a_click() {
        let mut s = Stretcher::new(PitchRange::for_rate(16000));
        let hist = sine(480, 0);
        let mut buf = sine(320, 480);
        let added = s.expand(&hist, &mut buf);
        assert!(added >= 40, "{added}");
        assert_eq!(buf.len(), 320 + added);
        let mut all = hist.clone();
        all.extend_from_slice(&buf);
        assert!(max_jump(&all) <= max_jump(&sine(800, 0)) + 2);
    }

    #[test]
    fn noise_is_refused_then_forced() {
        let mut s = Stretcher::new(PitchRange::for_rate(8000));
        let mut state = 12345u32;
        let mut noise: Vec<i16> = (0..400)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 16) as i16 / 4
            })
            .collect();
        let mut removed = 0;
        let mut tries = 0;
        while removed == 0 {
            removed = s.accelerate(&mut noise);
            tries += 1;
        }
        assert_eq!(tries, MAX_REFUSALS + 1);
    }
}
