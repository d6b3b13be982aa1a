//! Link impairments applied on each hop a packet takes.

use std::time::Duration;

use rand::Rng;

/// Delay, jitter and loss of one access link (host uplink or NAT uplink). A packet
/// crossing the link in either direction is delayed by `delay` plus a uniform random
/// `[0, jitter]` and dropped with probability `loss`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkConfig {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Maximum extra random delay.
    pub jitter: Duration,
    /// Drop probability in `[0, 1]`.
    pub loss: f64,
}

impl LinkConfig {
    /// A perfect link with only a fixed delay.
    pub fn delay(delay: Duration) -> Self {
        LinkConfig {
            delay,
            ..LinkConfig::default()
        }
    }

    /// Returns `None` if the packet is lost, else the time it spends on the link.
    pub(crate) fn traverse(&self, rng: &mut impl Rng) -> Option<Duration> {
        if self.loss > 0.0 && rng.gen_bool(self.loss.clamp(0.0, 1.0)) {
            return None;
        }
        let jitter_us = u64::try_from(self.jitter.as_micros()).unwrap_or(u64::MAX);
        let extra = if jitter_us > 0 {
            rng.gen_range(0..=jitter_us)
        } else {
            0
        };
        Some(self.delay + Duration::from_micros(extra))
    }
}
