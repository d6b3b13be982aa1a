//! Delay estimation from arrival jitter, after NetEq's DelayManager.
//!
//! For every packet we compute `arrival - send_time` (send time from the RTP timestamp)
//! and subtract the minimum of that value over the last two seconds: the result is how
//! much later this packet came than the fastest recent packet. Those relative delays go
//! into a histogram whose old mass decays by a forgetting factor per packet, and the
//! target is a high percentile of it. A spike moves mass to a high bucket within a few
//! packets (quick up); the mass only leaks away at the forgetting rate (slow down).

use std::collections::VecDeque;

/// Per-packet decay of old histogram mass (NetEq uses the same value).
const FORGET_FACTOR: f64 = 0.983;
/// The fraction of packets that should arrive in time.
const QUANTILE: f64 = 0.97;
/// How far back the "fastest packet" reference looks.
const MIN_WINDOW_MS: f64 = 2000.0;
/// Bound on the reference window, whatever the packet rate.
const MAX_WINDOW_LEN: usize = 512;
/// Histogram resolution bound: at most this many buckets.
const MAX_BUCKETS: usize = 1000;

#[derive(Debug, Clone)]
pub(crate) struct DelayManager {
    hist: Vec<f64>,
    bucket_ms: f64,
    samples: u64,
    window: VecDeque<(f64, f64)>,
}

impl DelayManager {
    pub(crate) fn new(max_delay_ms: u32) -> Self {
        let span = f64::from(max_delay_ms) + 1.0;
        let bucket_ms = (span / MAX_BUCKETS as f64).ceil().max(1.0);
        let buckets = (span / bucket_ms).ceil() as usize + 1;
        DelayManager {
            hist: vec![0.0; buckets],
            bucket_ms,
            samples: 0,
            window: VecDeque::new(),
        }
    }

    /// Records a packet that arrived at `arrival_ms` carrying media for `media_ms` (both on
    /// arbitrary but fixed origins) and returns its relative delay in ms.
    pub(crate) fn update(&mut self, arrival_ms: f64, media_ms: f64) -> f64 {
        let value = arrival_ms - media_ms;
        while let Some(&(t, _)) = self.window.front() {
            if arrival_ms - t > MIN_WINDOW_MS || self.window.len() >= MAX_WINDOW_LEN {
                self.window.pop_front();
            } else {
                break;
            }
        }
        self.window.push_back((arrival_ms, value));
        let min = self.window.iter().map(|&(_, v)| v).fold(value, f64::min);
        let relative = (value - min).max(0.0);

        // Early on the weight of a new sample is 1/n (a plain average) so the estimate is
        // usable after a handful of packets; afterwards it settles at 1 - FORGET_FACTOR.
        self.samples = self.samples.saturating_add(1);
        let weight = (1.0 / self.samples as f64).max(1.0 - FORGET_FACTOR);
        let last = self.hist.len() - 1;
        let idx = ((relative / self.bucket_ms) as usize).min(last);
        for p in &mut self.hist {
            *p *= 1.0 - weight;
        }
        if let Some(p) = self.hist.get_mut(idx) {
            *p += weight;
        }
        relative
    }

    /// The relative delay below which [`QUANTILE`] of the packets arrive, interpolated
    /// inside its bucket; `None` before the first packet.
    pub(crate) fn quantile_ms(&self) -> Option<f64> {
        if self.samples == 0 {
            return None;
        }
        let mut cum = 0.0;
        for (k, &p) in self.hist.iter().enumerate() {
            if p > 0.0 && cum + p >= QUANTILE {
                let frac = ((QUANTILE - cum) / p).clamp(0.0, 1.0);
                return Some((k as f64 + frac) * self.bucket_ms);
            }
            cum += p;
        }
        Some(self.hist.len() as f64 * self.bucket_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_arrivals_give_zero_delay() {
        let mut d = DelayManager::new(500);
        for i in 0..100 {
            let t = f64::from(i) * 20.0;
            assert_eq!(d.update(t + 7.0, t), 0.0);
        }
        assert!(d.quantile_ms().unwrap() < 1.0);
    }

    #[test]
    fn spike_raises_quickly_and_decays_slowly() {
        let mut d = DelayManager::new(500);
        let mut t = 0.0;
        for _ in 0..200 {
            d.update(t, t);
            t += 20.0;
        }
        for _ in 0..5 {
            d.update(t + 200.0, t);
            t += 20.0;
        }
        assert!(d.quantile_ms().unwrap() >= 190.0, "{:?}", d.quantile_ms());
        for _ in 0..20 {
            d.update(t, t);
            t += 20.0;
        }
        assert!(d.quantile_ms().unwrap() >= 190.0, "still high after 400 ms");
        for _ in 0..200 {
            d.update(t, t);
            t += 20.0;
        }
        assert!(d.quantile_ms().unwrap() < 1.0, "{:?}", d.quantile_ms());
    }
}
