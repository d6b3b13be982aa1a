//! The RTCP transmission interval of RFC 3550 §6.3.1 / appendix A.7.
//!
//! RTCP is limited to a fraction of the session bandwidth (5 %, of which senders get a
//! quarter when they are few), so the interval grows with the number of members; the
//! random factor keeps members from synchronising and the `e - 3/2` divisor compensates
//! for the timer reconsideration that makes the average interval shorter.

use std::time::Duration;

/// Minimum interval between reports (halved before the first report).
pub const RTCP_MIN_TIME: Duration = Duration::from_secs(5);
/// Share of the RTCP bandwidth reserved for senders when they are at most a quarter.
pub const SENDER_BW_FRACTION: f64 = 0.25;
/// Share of the session bandwidth given to RTCP.
pub const RTCP_BW_FRACTION: f64 = 0.05;
/// Compensation divisor `e - 3/2` for timer reconsideration.
pub const COMPENSATION: f64 = std::f64::consts::E - 1.5;

/// Inputs of the interval computation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalParams {
    /// Members of the session, us included.
    pub members: usize,
    /// Members that sent RTP recently, us included if we did.
    pub senders: usize,
    /// Session bandwidth in bits per second (RTCP gets [`RTCP_BW_FRACTION`] of it).
    pub session_bw_bps: u32,
    /// Whether we sent RTP recently.
    pub we_sent: bool,
    /// Average compound RTCP size in octets, lower-layer headers included.
    pub avg_rtcp_size: f64,
    /// Before our first report: the minimum is halved.
    pub initial: bool,
}

/// The deterministic interval `Td` in seconds: before randomisation and compensation.
/// Source time-outs are multiples of this (§6.3.5).
pub fn deterministic_secs(p: &IntervalParams) -> f64 {
    let mut min_time = RTCP_MIN_TIME.as_secs_f64();
    if p.initial {
        min_time /= 2.0;
    }
    let mut rtcp_bw = f64::from(p.session_bw_bps) * RTCP_BW_FRACTION / 8.0;
    let mut n = p.members.max(1) as f64;
    let senders = p.senders as f64;
    if senders <= n * SENDER_BW_FRACTION {
        if p.we_sent {
            rtcp_bw *= SENDER_BW_FRACTION;
            n = senders.max(1.0);
        } else {
            rtcp_bw *= 1.0 - SENDER_BW_FRACTION;
            n -= senders;
        }
    }
    // With no bandwidth at all the interval is unbounded; an hour stands in for "never"
    // and keeps the later f64 -> Duration conversion finite.
    let t = if rtcp_bw > 0.0 {
        p.avg_rtcp_size * n / rtcp_bw
    } else {
        3600.0
    };
    t.clamp(min_time, 3600.0)
}

/// The randomised interval: `Td * factor / (e - 3/2)`, with `factor` drawn uniformly from
/// `[0.5, 1.5)` by the caller (clamped into that range here).
pub fn rtcp_interval(p: &IntervalParams, factor: f64) -> Duration {
    let factor = if factor.is_finite() {
        factor.clamp(0.5, 1.5)
    } else {
        1.0
    };
    secs(deterministic_secs(p) * factor / COMPENSATION)
}

/// Seconds as a duration, never panicking on odd floats.
pub(crate) fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.clamp(0.0, 86_400.0)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(members: usize, senders: usize, we_sent: bool) -> IntervalParams {
        IntervalParams {
            members,
            senders,
            session_bw_bps: 64_000,
            we_sent,
            avg_rtcp_size: 100.0,
            initial: false,
        }
    }

    #[test]
    fn minimum_applies_to_small_sessions() {
        assert_eq!(deterministic_secs(&params(2, 2, true)), 5.0);
        assert_eq!(
            deterministic_secs(&IntervalParams {
                initial: true,
                ..params(2, 2, true)
            }),
            2.5
        );
        // Randomised range: 5 * [0.5, 1.5) / 1.218...
        let lo = rtcp_interval(&params(2, 2, true), 0.5).as_secs_f64();
        let hi = rtcp_interval(&params(2, 2, true), 1.5).as_secs_f64();
        assert!((lo - 2.5 / COMPENSATION).abs() < 1e-9, "{lo}");
        assert!((hi - 7.5 / COMPENSATION).abs() < 1e-9, "{hi}");
    }

    #[test]
    fn scales_with_members() {
        // RTCP bandwidth 64000 * 0.05 / 8 = 400 octets/s. 100 members, 2 senders:
        // a receiver shares 300 octets/s with 98 others: 100 * 98 / 300 s.
        let t = deterministic_secs(&params(100, 2, false));
        assert!((t - 100.0 * 98.0 / 300.0).abs() < 1e-9, "{t}");
        // A sender shares 100 octets/s with one other sender: 100 * 2 / 100 = 2 s -> min.
        assert_eq!(deterministic_secs(&params(100, 2, true)), 5.0);
        // Senders above a quarter: no split, everybody shares 400 octets/s.
        let t = deterministic_secs(&params(100, 50, true));
        assert!((t - 100.0 * 100.0 / 400.0).abs() < 1e-9, "{t}");
        // Doubling members doubles the interval once above the minimum.
        let a = deterministic_secs(&params(1000, 0, false));
        let b = deterministic_secs(&params(2000, 0, false));
        assert!((b / a - 2.0).abs() < 1e-9);
        // Zero bandwidth does not panic.
        let z = IntervalParams {
            session_bw_bps: 0,
            ..params(2, 1, true)
        };
        assert_eq!(deterministic_secs(&z), 3600.0);
        assert_eq!(
            rtcp_interval(&params(2, 2, true), f64::NAN),
            secs(5.0 / COMPENSATION)
        );
    }
}
