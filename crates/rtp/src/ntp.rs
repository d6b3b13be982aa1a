//! NTP timestamp helpers (RFC 3550 §4): 64-bit wallclock stamps in SRs and the "middle
//! 32 bits" (16.16 fixed point seconds) used for LSR, DLSR and round-trip time.

use std::time::Duration;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A duration as 32.32 fixed point seconds (wraps after 2^32 s).
pub fn duration_to_ntp(d: Duration) -> u64 {
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (d.as_secs() << 32).wrapping_add(frac)
}

/// The NTP timestamp for a wallclock given as time since the Unix epoch; the shell calls
/// this with `SystemTime::now().duration_since(UNIX_EPOCH)`.
pub fn unix_to_ntp(since_unix_epoch: Duration) -> u64 {
    duration_to_ntp(since_unix_epoch + Duration::from_secs(NTP_UNIX_OFFSET_SECS))
}

/// Middle 32 bits of an NTP timestamp: the LSR field.
pub fn middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A 16.16 fixed point value (DLSR, RTT) as a duration.
pub fn short_to_duration(v: u32) -> Duration {
    Duration::from_nanos((u64::from(v) * 1_000_000_000) >> 16)
}

/// A duration as 16.16 fixed point seconds, saturating at about 18 hours.
pub fn duration_to_short(d: Duration) -> u32 {
    let v = (d.as_nanos() << 16) / 1_000_000_000;
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(
            duration_to_ntp(Duration::from_millis(1500)),
            (1 << 32) | 0x8000_0000
        );
        assert_eq!(middle32((1 << 32) | 0x8000_0000), 0x0001_8000);
        assert_eq!(short_to_duration(0x0001_8000), Duration::from_millis(1500));
        assert_eq!(duration_to_short(Duration::from_millis(1500)), 0x0001_8000);
        assert_eq!(duration_to_short(Duration::from_secs(1 << 20)), u32::MAX);
        // 2026-01-01T00:00:00Z = 1767225600 Unix seconds.
        assert_eq!(
            unix_to_ntp(Duration::from_secs(1_767_225_600)) >> 32,
            3_976_214_400
        );
    }
}
