//! Open-loop pacing: how many packets should have left by a given instant.
//!
//! The generator offers a fixed aggregate rate whatever the server answers (open loop), so loss
//! shows up as loss instead of as a slower sender. Time is an argument, so the arithmetic is
//! tested with made-up instants.

use std::time::{Duration, Instant};

/// Packet budget for a constant rate starting at `start`, capped at `total`.
#[derive(Clone, Debug)]
pub struct Pacer {
    start: Instant,
    rate_per_s: u64,
    total: u64,
}

impl Pacer {
    /// Paces `rate_per_s` packets per second from `start` for `duration` (the total is
    /// `rate * duration`, rounded down).
    pub fn new(start: Instant, rate_per_s: u64, duration: Duration) -> Self {
        let total = (u128::from(rate_per_s) * duration.as_micros() / 1_000_000) as u64;
        Self {
            start,
            rate_per_s,
            total,
        }
    }

    /// Packets due in total by `now` (never more than [`Pacer::total`]).
    pub fn due(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        let due = u128::from(self.rate_per_s) * elapsed.as_micros() / 1_000_000;
        (due.min(u128::from(self.total))) as u64
    }

    /// Packets the whole run offers.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The instant at which `count` packets are due; used to sleep just long enough.
    pub fn instant_of(&self, count: u64) -> Instant {
        if self.rate_per_s == 0 {
            return self.start;
        }
        let micros = u128::from(count) * 1_000_000 / u128::from(self.rate_per_s);
        self.start + Duration::from_micros(micros.min(u128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_grows_linearly_and_caps_at_total() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 100_000, Duration::from_secs(2));
        assert_eq!(pacer.total(), 200_000);
        assert_eq!(pacer.due(start), 0);
        assert_eq!(pacer.due(start + Duration::from_micros(10)), 1);
        assert_eq!(pacer.due(start + Duration::from_millis(1)), 100);
        assert_eq!(pacer.due(start + Duration::from_millis(1500)), 150_000);
        assert_eq!(pacer.due(start + Duration::from_secs(5)), 200_000);
    }

    #[test]
    fn instant_of_inverts_due() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 1_000, Duration::from_secs(1));
        assert_eq!(pacer.instant_of(250), start + Duration::from_millis(250));
        assert_eq!(pacer.due(pacer.instant_of(250)), 250);
    }

    #[test]
    fn zero_rate_offers_nothing() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 0, Duration::from_secs(10));
        assert_eq!(pacer.total(), 0);
        assert_eq!(pacer.due(start + Duration::from_secs(3)), 0);
        assert_eq!(pacer.instant_of(7), start);
    }
}
