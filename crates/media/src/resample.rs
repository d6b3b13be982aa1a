//! Streaming mono resampler: a polyphase windowed-sinc (Kaiser) filter for any rational
//! ratio, written here rather than pulled in because the phone only needs
//! 8/16/48 kHz conversions of short frames and a few hundred lines beat an FFT stack.
//!
//! The ratio `to/from` is reduced to `L/M`. Output sample `j` sits at input time
//! `j·M/L`; it is the dot product of the 2·H input samples around that time with one
//! of `L` precomputed filter phases. The filter history is carried across calls, so
//! chunk borders are invisible and, after `n` input samples in total, exactly
//! `ceil(n·L/M)` output samples have been produced, at a fixed delay of H input samples.

use crate::error::MediaError;

/// Zero crossings of the sinc on each side, at the narrower of the two rates.
const ZERO_CROSSINGS: f64 = 12.0;
/// Passband edge as a fraction of the narrower Nyquist frequency.
const ROLLOFF: f64 = 0.91;
/// Kaiser window shape: about 80 dB stopband.
const KAISER_BETA: f64 = 8.0;

/// Converts mono i16 PCM from one rate to another, keeping state between calls.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    l: u64,
    m: u64,
    taps: usize,
    /// `l` phases of `taps` coefficients each, phase-major.
    coefs: Vec<f32>,
    /// Input history; `buf[0]` is padded-stream index `buf_start`.
    buf: Vec<f32>,
    buf_start: u64,
    /// Index of the next output sample.
    next_out: u64,
    passthrough: bool,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Modified Bessel function of the first kind, order 0 (series), for the Kaiser window.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz. Equal rates pass samples through.
    pub fn new(from: u32, to: u32) -> Result<Self, MediaError> {
        if from == 0 {
            return Err(MediaError::BadRate(from));
        }
        if to == 0 {
            return Err(MediaError::BadRate(to));
        }
        let g = gcd(u64::from(from), u64::from(to));
        let l = u64::from(to) / g;
        let m = u64::from(from) / g;
        if l > 4096 {
            // The phase table would be huge (e.g. 44100 -> 44101); not a rate pair a
            // phone meets.
            return Err(MediaError::BadRate(to));
        }
        // Cutoff in cycles per input sample ×2 (1.0 = input Nyquist).
        let fc = ROLLOFF * (l as f64 / m as f64).min(1.0);
        let half_width = ZERO_CROSSINGS / fc; // in input samples
        let h = half_width.ceil() as usize;
        let taps = 2 * h;
        let mut coefs = Vec::with_capacity(l as usize * taps);
        let i0_beta = bessel_i0(KAISER_BETA);
        for p in 0..l {
            let frac = p as f64 / l as f64;
            let start = coefs.len();
            for k in 0..taps {
                // Distance from the output instant to this tap's input sample.
                let tau = frac + (h as f64 - 1.0) - k as f64;
                let x = tau / half_width;
                let w = if x.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / i0_beta
                };
                let arg = std::f64::consts::PI * fc * tau;
                let sinc = if arg.abs() < 1e-12 {
                    1.0
                } else {
                    arg.sin() / arg
                };
                coefs.push((fc * sinc * w) as f32);
            }
            // Normalise each phase to unity DC gain so a constant stays constant.
            let sum: f32 = coefs[start..].iter().sum();
            if sum.abs() > 1e-9 {
                for c in &mut coefs[start..] {
                    *c /= sum;
                }
            }
        }
        Ok(Resampler {
            from,
            to,
            l,
            m,
            taps,
            coefs,
            buf: vec![0.0; taps],
            buf_start: 0,
            next_out: 0,
            passthrough: from == to,
        })
    }

    /// Input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Delay the filter adds, in input samples.
    pub fn delay_input_samples(&self) -> usize {
        if self.passthrough {
            0
        } else {
            self.taps / 2
        }
    }

    /// Resamples `input`, appending every output sample it completes to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.passthrough {
            out.extend_from_slice(input);
            return;
        }
        self.buf.extend(input.iter().map(|&s| f32::from(s)));
        let buf_end = self.buf_start + self.buf.len() as u64;
        loop {
            let t = self.next_out * self.m;
            let base = t / self.l;
            let phase = (t % self.l) as usize;
            // Taps cover padded indices base+1 ..= base+taps (the `taps` zeros the
            // buffer started with shift input index i to padded index i+taps).
            let last = base + self.taps as u64;
            if last >= buf_end {
                break;
            }
            let first = (base + 1 - self.buf_start) as usize;
            let (Some(window), Some(coefs)) = (
                self.buf.get(first..first + self.taps),
                self.coefs.get(phase * self.taps..(phase + 1) * self.taps),
            ) else {
                break;
            };
            let acc: f32 = window.iter().zip(coefs).map(|(x, c)| x * c).sum();
            out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
            self.next_out += 1;
        }
        // Drop history no future output can reach.
        let keep_from = (self.next_out * self.m) / self.l + 1;
        if keep_from > self.buf_start {
            let drop = ((keep_from - self.buf_start) as usize).min(self.buf.len());
            self.buf.drain(..drop);
            self.buf_start += drop as u64;
        }
    }
}
