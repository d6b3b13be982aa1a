//! Per-source-IP token buckets for requests that arrive before authentication (Binding, and
//! TURN requests that earn a 401/438), so one address cannot make the server a reflector.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The table never grows past this many sources; when full, unknown sources share one
/// overflow bucket, which keeps memory bounded under a spoofed-source flood.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    sources: HashMap<IpAddr, Bucket>,
    overflow: Option<Bucket>,
}

impl RateLimiter {
    /// `rate` requests per second per source, bursts of twice that; 0 disables limiting.
    pub fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(rate) * 2.0,
            sources: HashMap::new(),
            overflow: None,
        }
    }

    fn take(b: &mut Bucket, rate: f64, burst: f64, now: Instant) -> bool {
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now;
        b.tokens = (b.tokens + dt * rate).min(burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether one more unauthenticated request from `ip` may be answered now.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let (rate, burst) = (self.rate, self.burst);
        let fresh = Bucket {
            tokens: burst,
            last: now,
        };
        if let Some(b) = self.sources.get_mut(&ip) {
            return Self::take(b, rate, burst, now);
        }
        if self.sources.len() < MAX_SOURCES {
            let b = self.sources.entry(ip).or_insert(fresh);
            return Self::take(b, rate, burst, now);
        }
        let b = self.overflow.get_or_insert(fresh);
        Self::take(b, rate, burst, now)
    }

    /// Forgets sources idle long enough to have a full bucket again.
    pub fn sweep(&mut self, now: Instant) {
        if self.rate == 0.0 {
            return;
        }
        let full_after = Duration::from_secs_f64(self.burst / self.rate);
        self.sources
            .retain(|_, b| now.saturating_duration_since(b.last) < full_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_rate() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut r = RateLimiter::new(10);
        let allowed = (0..100).filter(|_| r.allow(ip, t0)).count();
        assert_eq!(allowed, 20, "burst is twice the rate");
        assert!(!r.allow(ip, t0));
        assert!(r.allow(ip, t0 + Duration::from_millis(100)));
        assert!(!r.allow(ip, t0 + Duration::from_millis(100)));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(r.allow(other, t0), "sources are independent");
        r.sweep(t0 + Duration::from_secs(10));
        assert!(r.sources.is_empty());
    }

    #[test]
    fn zero_means_unlimited() {
        let mut r = RateLimiter::new(0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| r.allow(ip, t0)));
    }
}
