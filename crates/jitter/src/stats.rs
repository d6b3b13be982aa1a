//! Counters the buffer exposes for monitoring and tests.

/// A snapshot of the buffer's state and lifetime counters. Durations are in milliseconds
/// of output audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Playout delay the buffer is steering towards (from measured jitter, clamped).
    pub target_delay_ms: u32,
    /// Playout delay of the last decoded packet, measured from when it could have arrived
    /// on the fastest path to when its first sample is played.
    pub current_delay_ms: u32,
    /// Audio packets handed to `insert` (including duplicates and late ones).
    pub packets_received: u64,
    /// Packets that arrived after their playout time had passed.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Audio synthesised for missing packets (loss and underrun), excluding FEC and CN.
    pub concealed_ms: u64,
    /// Audio removed by time compression.
    pub accelerated_ms: u64,
    /// Audio added by time expansion (preemptive expand).
    pub expanded_ms: u64,
    /// Frames recovered from in-band FEC.
    pub fec_recovered: u64,
    /// Comfort noise played (CN packets and DTX gaps).
    pub cn_ms: u64,
    /// Times the buffer ran dry while playing.
    pub underruns: u64,
    /// Packets discarded because the buffer was over `max_delay_ms` or `max_packets`, or
    /// the payload was absurdly large.
    pub dropped: u64,
}
