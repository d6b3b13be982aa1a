//! Comfort noise for DTX gaps (RFC 3389): white noise at the signalled level. Spectral
//! shaping parameters are not used; the level is what keeps silence from sounding dead.

/// Deterministic noise source; the seed is fixed because comfort noise needs no secrecy
/// and determinism keeps tests reproducible.
#[derive(Debug, Clone)]
pub(crate) struct ComfortNoise {
    state: u32,
    amplitude: f64,
}

impl ComfortNoise {
    pub(crate) fn new() -> Self {
        ComfortNoise {
            state: 0x2545_f491,
            amplitude: 0.0,
        }
    }

    /// Sets the level from an RFC 3389 noise level (0..127 meaning -dBov).
    pub(crate) fn set_level(&mut self, level_dbov: u8) {
        let dbov = f64::from(level_dbov.min(127));
        let rms = 32767.0 * 10f64.powf(-dbov / 20.0);
        // A uniform distribution on [-a, a] has an RMS of a / sqrt(3).
        self.amplitude = (rms * 3f64.sqrt()).min(32767.0);
    }

    pub(crate) fn generate(&mut self, n: usize, out: &mut Vec<i16>) {
        out.reserve(n);
        for _ in 0..n {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 17;
            self.state ^= self.state << 5;
            let u = f64::from(self.state) / f64::from(u32::MAX) * 2.0 - 1.0;
            out.push((u * self.amplitude).round().clamp(-32768.0, 32767.0) as i16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_matches_dbov() {
        let mut cn = ComfortNoise::new();
        cn.set_level(40);
        let mut out = Vec::new();
        cn.generate(16000, &mut out);
        let rms =
            (out.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / out.len() as f64).sqrt();
        let want = 32767.0 * 10f64.powf(-2.0);
        assert!((rms / want - 1.0).abs() < 0.05, "{rms} vs {want}");
    }
}
