//! Sine tone generator with continuous phase across calls, for test tones, ringback and
//! the phone's audio check.

/// A sine at a fixed frequency and amplitude.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// Phase advance per sample, in cycles.
    step: f64,
    /// Current phase in cycles, kept in [0, 1) so precision does not drift.
    phase: f64,
    amplitude: f64,
}

impl ToneGenerator {
    /// A `freq_hz` sine sampled at `rate` Hz with peak `amplitude`.
    pub fn new(freq_hz: f64, rate: u32, amplitude: i16) -> Self {
        ToneGenerator {
            step: freq_hz / f64::from(rate.max(1)),
            phase: 0.0,
            amplitude: f64::from(amplitude),
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            let v = (self.phase * std::f64::consts::TAU).sin() * self.amplitude;
            *s = v.round().clamp(-32768.0, 32767.0) as i16;
            self.phase += self.step;
            self.phase -= self.phase.floor();
        }
    }

    /// Adds (saturating) the next samples onto `out`, for dual tones.
    pub fn mix_into(&mut self, out: &mut [i16]) {
        for s in out {
            let v = (self.phase * std::f64::consts::TAU).sin() * self.amplitude;
            *s = (f64::from(*s) + v.round()).clamp(-32768.0, 32767.0) as i16;
            self.phase += self.step;
            self.phase -= self.phase.floor();
        }
    }
}
