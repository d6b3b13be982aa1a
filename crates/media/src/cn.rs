//! RFC 3389 comfort noise: the payload that tells the far end how loud the background
//! is during silence, and a generator that plays such noise.
//!
//! We only use the level; the optional spectral (reflection) coefficients are parsed
//! past and ignored, so received noise is white rather than shaped.

use crate::error::MediaError;

/// A comfort noise payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnPayload {
    /// Noise level in −dBov (0–127): 40 means −40 dBov.
    pub level: u8,
}

impl CnPayload {
    /// The 1-byte payload (no spectral information).
    pub fn encode(&self) -> Vec<u8> {
        vec![self.level & 0x7F]
    }

    /// Parses a payload, ignoring reflection coefficients. The level byte's top bit is
    /// reserved and masked off.
    pub fn decode(payload: &[u8]) -> Result<CnPayload, MediaError> {
        let first = payload
            .first()
            .ok_or(MediaError::Malformed("empty comfort noise payload"))?;
        Ok(CnPayload {
            level: first & 0x7F,
        })
    }
}

/// White noise at a given level, from a seeded generator (reproducible, no OS entropy).
#[derive(Debug, Clone)]
pub struct ComfortNoise {
    /// Peak of the uniform distribution; its RMS is `peak / √3`.
    peak: f64,
    state: u64,
}

impl ComfortNoise {
    /// Noise at −`level_dbov` dBov (RMS relative to full scale 32768), seeded by `seed`.
    pub fn new(level_dbov: u8, seed: u64) -> Self {
        let rms = 32768.0 * 10f64.powf(-f64::from(level_dbov.min(127)) / 20.0);
        ComfortNoise {
            peak: (rms * 3f64.sqrt()).min(32767.0),
            // xorshift must not start at zero.
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Changes the level, e.g. when a new CN packet arrives.
    pub fn set_level(&mut self, level_dbov: u8) {
        let rms = 32768.0 * 10f64.powf(-f64::from(level_dbov.min(127)) / 20.0);
        self.peak = (rms * 3f64.sqrt()).min(32767.0);
    }

    fn next_unit(&mut self) -> f64 {
        // xorshift64*: plenty for noise, and deterministic for tests.
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // 53 random bits to [-1, 1).
        (r >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// Fills `out` with noise.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = (self.next_unit() * self.peak).round() as i16;
        }
    }
}
