//! Replay window over packet indices (RFC 3711 §3.3.2), and ROC estimation (§3.3.1).

use crate::error::SrtpError;

/// Width of the replay window. RFC 3711 requires at least 64; 128 (as libsrtp defaults to)
/// tolerates the reordering seen on Wi-Fi with retransmission at no extra cost.
pub const REPLAY_WINDOW: u64 = 128;

/// A sliding bitmap of recently accepted indices, anchored at the highest one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayWindow {
    highest: u64,
    /// Bit `n` set means index `highest - n` was accepted.
    bits: u128,
}

impl ReplayWindow {
    /// A window whose only accepted index is `first`.
    pub(crate) fn new(first: u64) -> Self {
        ReplayWindow {
            highest: first,
            bits: 1,
        }
    }

    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Would `index` be acceptable? Does not modify the window: that happens only once the
    /// packet authenticated, so a forged packet cannot advance (and so poison) the window.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let delta = self.highest - index;
        if delta >= REPLAY_WINDOW || (self.bits >> delta) & 1 == 1 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    /// Record `index` as accepted.
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.bits = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.highest = index;
        } else {
            let delta = self.highest - index;
            if delta < REPLAY_WINDOW {
                self.bits |= 1u128 << delta;
            }
        }
    }
}

/// Guess the 48-bit packet index of `seq` given the highest index seen so far
/// (RFC 3711 §3.3.1 and Appendix A): pick the ROC among ROC-1, ROC, ROC+1 that puts the
/// index closest to the highest one.
///
/// Errors if the guess would need a ROC below zero (a packet from before the stream
/// started, only possible as a replay or garbage) or above 2^32-1 (index exhausted).
pub(crate) fn estimate_index(highest: u64, seq: u16) -> Result<u64, SrtpError> {
    let roc = (highest >> 16) as i64;
    let s_l = (highest & 0xffff) as i64;
    let seq_i = i64::from(seq);
    let v = if s_l < 32_768 {
        if seq_i - s_l > 32_768 {
            roc - 1
        } else {
            roc
        }
    } else if s_l - 32_768 > seq_i {
        roc + 1
    } else {
        roc
    };
    if v < 0 {
        return Err(SrtpError::Replayed);
    }
    if v > i64::from(u32::MAX) {
        return Err(SrtpError::IndexExhausted);
    }
    Ok(((v as u64) << 16) | u64::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(roc: u64, seq: u64) -> u64 {
        (roc << 16) | seq
    }

    #[test]
    fn index_estimation_follows_appendix_a() {
        // s_l in the lower half: a much larger seq belongs to the previous ROC.
        assert_eq!(estimate_index(idx(3, 100), 101), Ok(idx(3, 101)));
        assert_eq!(estimate_index(idx(3, 100), 90), Ok(idx(3, 90)));
        assert_eq!(
            estimate_index(idx(3, 100), 100 + 32_768),
            Ok(idx(3, 32_868))
        );
        assert_eq!(
            estimate_index(idx(3, 100), 100 + 32_769),
            Ok(idx(2, 32_869))
        );
        assert_eq!(estimate_index(idx(3, 100), 65_535), Ok(idx(2, 65_535)));
        // s_l in the upper half: a much smaller seq has wrapped into the next ROC.
        assert_eq!(estimate_index(idx(3, 65_535), 0), Ok(idx(4, 0)));
        assert_eq!(
            estimate_index(idx(3, 40_000), 40_000 - 32_768),
            Ok(idx(3, 7_232))
        );
        assert_eq!(estimate_index(idx(3, 40_000), 7_231), Ok(idx(4, 7_231)));
        // No ROC below zero, no ROC above 2^32-1.
        assert_eq!(estimate_index(idx(0, 10), 60_000), Err(SrtpError::Replayed));
        assert_eq!(
            estimate_index(idx(u64::from(u32::MAX), 65_000), 1),
            Err(SrtpError::IndexExhausted)
        );
        assert_eq!(
            estimate_index(idx(u64::from(u32::MAX), 65_000), 65_001),
            Ok(idx(u64::from(u32::MAX), 65_001))
        );
    }

    #[test]
    fn window_accepts_each_index_once_and_forgets_old_ones() {
        let mut w = ReplayWindow::new(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(999), Ok(()));
        assert_eq!(w.check(1000 - REPLAY_WINDOW + 1), Ok(()));
        assert_eq!(w.check(1000 - REPLAY_WINDOW), Err(SrtpError::Replayed));
        w.accept(990);
        assert_eq!(w.check(990), Err(SrtpError::Replayed));
        w.accept(1005);
        assert_eq!(w.highest(), 1005);
        assert_eq!(w.check(990), Err(SrtpError::Replayed));
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(1001), Ok(()));
        // A jump wider than the window clears it.
        w.accept(1005 + 500);
        assert_eq!(w.check(1005), Err(SrtpError::Replayed));
        assert_eq!(w.check(1504), Ok(()));
        // Checking never mutates.
        assert_eq!(w.check(1504), Ok(()));
    }
}
