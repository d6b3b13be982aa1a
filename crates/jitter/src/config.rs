//! Configuration of a jitter buffer.

/// Shape of the stream and the delay bounds. Out-of-range values are clamped by
/// [`crate::JitterBuffer::new`] (it cannot fail), see [`JitterConfig::normalized`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// PCM sample rate of the output (and of the decoder).
    pub sample_rate: u32,
    /// RTP clock rate of the timestamps (differs from `sample_rate` for G.722, sometimes Opus).
    pub clock_rate: u32,
    /// Output block per [`crate::JitterBuffer::pull`], normally 10 or 20 ms.
    pub frame_ms: u32,
    /// Lower bound of the target delay.
    pub min_delay_ms: u32,
    /// Upper bound of the target delay; audio buffered beyond it is discarded.
    pub max_delay_ms: u32,
    /// Bound on packets held; the oldest is discarded when exceeded.
    pub max_packets: usize,
}

impl JitterConfig {
    /// A 20 ms / 20..500 ms configuration with room for 250 packets.
    pub fn new(sample_rate: u32, clock_rate: u32) -> Self {
        JitterConfig {
            sample_rate,
            clock_rate,
            frame_ms: 20,
            min_delay_ms: 20,
            max_delay_ms: 500,
            max_packets: 250,
        }
    }

    /// The configuration with every field forced into a range the buffer can work with:
    /// rates 1 kHz..384 kHz (a zero clock rate means "same as the sample rate"),
    /// frames 5..60 ms, delays up to 10 s with `min <= max`, at least one packet.
    pub fn normalized(self) -> Self {
        let sample_rate = self.sample_rate.clamp(1000, 384_000);
        let clock_rate = if self.clock_rate == 0 {
            sample_rate
        } else {
            self.clock_rate.clamp(1000, 384_000)
        };
        let min_delay_ms = self.min_delay_ms.min(5000);
        JitterConfig {
            sample_rate,
            clock_rate,
            frame_ms: self.frame_ms.clamp(5, 60),
            min_delay_ms,
            max_delay_ms: self.max_delay_ms.clamp(min_delay_ms.max(20), 10_000),
            max_packets: self.max_packets.clamp(1, 10_000),
        }
    }
}
