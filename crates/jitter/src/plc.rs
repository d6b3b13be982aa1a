//! Our own packet-loss concealment for codecs without one, after ITU-T G.711 Appendix I:
//! repeat the last pitch period of the audio played so far, attenuating by 20 % per 10 ms
//! after the first 10 ms, so the output is silent after 60 ms.
//!
//! Appendix I smooths the seam of the repeated period by overlap-adding into the last
//! quarter period of history, which it can do because it delays output by 3.75 ms. We may
//! not delay, so the quarter-period overlap-add is done at the *end* of the stored period
//! instead: its last samples fade towards the samples one period earlier, which makes the
//! wrap from the end of the period to its start exactly continuous. The one seam left, from
//! the real audio into the first repetition, is as smooth as the audio is periodic.

use crate::pitch::{best_lag, PitchRange};
use crate::stretch::mix;

#[derive(Debug, Clone)]
pub(crate) struct Concealer {
    period: Vec<i16>,
    pos: usize,
    /// Samples generated so far, which drives the attenuation.
    run: usize,
    /// Samples per 10 ms.
    ten_ms: usize,
}

impl Concealer {
    /// Prepares concealment continuing `hist` (most recent audio, oldest first).
    pub(crate) fn start(hist: &[i16], fs: usize, range: PitchRange) -> Self {
        let ten_ms = (fs / 100).max(1);
        let n = hist.len();
        let max = range.max_lag.min(n / 2);
        let period = match best_lag(hist, range.min_lag, max, range.decim, |l| {
            (n - 2 * l, n - l)
        }) {
            Some(m) => {
                let lag = m.lag;
                let ola = (lag / 4).max(1);
                let mut p = Vec::with_capacity(lag);
                for j in 0..lag {
                    let cur = f64::from(hist.get(n - lag + j).copied().unwrap_or(0));
                    if j + ola >= lag {
                        let prev = f64::from(hist.get(n - 2 * lag + j).copied().unwrap_or(0));
                        let w = (j + ola + 1 - lag) as f64 / (ola + 1) as f64;
                        p.push(mix(cur, prev, w));
                    } else {
                        p.push(cur.round() as i16);
                    }
                }
                p
            }
            // Too little history for a pitch: hold the last value and let the attenuation
            // ramp it to zero, which cannot click.
            None => vec![hist.last().copied().unwrap_or(0)],
        };
        Concealer {
            period,
            pos: 0,
            run: 0,
            ten_ms,
        }
    }

    /// Appends `n` concealment samples.
    pub(crate) fn generate(&mut self, n: usize, out: &mut Vec<i16>) {
        out.reserve(n);
        for _ in 0..n {
            let s = self.period.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            if self.pos >= self.period.len() {
                self.pos = 0;
            }
            let g = self.gain();
            out.push(mix(0.0, f64::from(s), g));
            self.run = self.run.saturating_add(1);
        }
    }

    /// Linear gain: 1 for the first 10 ms, then down 0.2 per 10 ms, 0 from 60 ms.
    fn gain(&self) -> f64 {
        if self.run < self.ten_ms {
            return 1.0;
        }
        let over = (self.run - self.ten_ms) as f64 / self.ten_ms as f64;
        (1.0 - 0.2 * over).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_the_period_and_fades_to_silence() {
        let fs = 8000;
        let hist: Vec<i16> = (0..480)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 200.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let mut c = Concealer::start(&hist, fs, PitchRange::for_rate(fs));
        let mut out = Vec::new();
        c.generate(80, &mut out);
        // First 10 ms: the sine continues (200 Hz = 40 samples per period).
        for (i, s) in out.iter().enumerate() {
            assert!((i32::from(*s) - i32::from(hist[440 + i % 40])).abs() <= 1);
        }
        out.clear();
        c.generate(480, &mut out);
        // 80 + 400 samples = 60 ms at 8 kHz; from then on, silence.
        assert!(out[400..].iter().all(|&s| s == 0), "silent after 60 ms");
        assert!(
            out[300..380].iter().any(|&s| s.abs() > 500),
            "still audible at 47 ms"
        );
        let mut all = hist.clone();
        all.extend_from_slice(&out);
        let jump = all
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(jump <= 1260, "{jump}");
    }
}
