//! Per-source receive statistics, following RFC 3550 appendix A.1 (sequence validation),
//! A.3 (loss) and A.8 (interarrival jitter).

use std::time::Duration;

use crate::rtcp::ReportBlock;

/// Packets that must arrive in sequence before a new source is believed (A.1).
pub const MIN_SEQUENTIAL: u16 = 2;
/// Largest forward jump still treated as the same stream (A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward jump treated as reordering rather than a restart (A.1).
pub const MAX_MISORDER: u16 = 100;

const RTP_SEQ_MOD: u32 = 1 << 16;

/// What [`ReceiverStats::on_packet`] concluded about a packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqVerdict {
    /// In order (possibly after a permissible gap); counted.
    Accepted,
    /// A duplicate or a packet older than the highest seen (within [`MAX_MISORDER`]);
    /// counted, as A.1 does, which is why cumulative loss can go negative.
    LateOrDuplicate,
    /// The source is not yet validated (fewer than [`MIN_SEQUENTIAL`] in-sequence packets).
    Probation,
    /// A large jump; ignored unless the next packet follows it, in which case the stream
    /// is taken to have restarted.
    Bad,
    /// Second packet after a large jump: the sender restarted its sequence; statistics
    /// were reset and the packet counted.
    Restarted,
}

impl SeqVerdict {
    /// Whether the packet should be handed on for playout.
    pub fn is_usable(self) -> bool {
        matches!(
            self,
            Self::Accepted | Self::LateOrDuplicate | Self::Restarted
        )
    }
}

/// Receive statistics for one source.
#[derive(Debug, Clone, Default)]
pub struct ReceiverStats {
    started: bool,
    max_seq: u16,
    /// Shifted count of sequence number cycles (multiples of 65536, wrapping).
    cycles: u32,
    base_seq: u32,
    /// Last "bad" sequence number + 1, or 65537 for none.
    bad_seq: u32,
    probation: u16,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the previous packet; `None` before the first one.
    transit: Option<u32>,
    /// Jitter scaled by 16 (A.8's integer form keeps 4 fractional bits).
    jitter_q4: u64,
}

impl ReceiverStats {
    /// Statistics for a source not heard from yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Feeds one packet: its sequence number, RTP timestamp and arrival time expressed in
    /// the same RTP clock (any fixed origin; only differences matter).
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, arrival_rtp: u32) -> SeqVerdict {
        if !self.started {
            // A.1: a new source starts on probation, with max_seq one before its first packet.
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let verdict = self.update_seq(seq);
        match verdict {
            SeqVerdict::Bad => {}
            SeqVerdict::Restarted => self.transit = Some(arrival_rtp.wrapping_sub(rtp_ts)),
            _ => self.update_jitter(rtp_ts, arrival_rtp),
        }
        verdict
    }

    /// A.1 `update_seq`. Deviation: the probation test `seq == max_seq + 1` is done in
    /// 16-bit arithmetic, so a source starting right at 65535 validates across the wrap
    /// (the C original compares against 65536 there and never matches).
    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Accepted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        }
        let verdict = if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
            if udelta == 0 {
                SeqVerdict::LateOrDuplicate
            } else {
                SeqVerdict::Accepted
            }
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                SeqVerdict::Restarted
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::Bad;
            }
        } else {
            SeqVerdict::LateOrDuplicate
        };
        self.received = self.received.wrapping_add(1);
        verdict
    }

    /// A.8 in its integer form: `J += |D| - (J + 8) / 16`, with J scaled by 16.
    fn update_jitter(&mut self, rtp_ts: u32, arrival_rtp: u32) {
        let transit = arrival_rtp.wrapping_sub(rtp_ts);
        if let Some(prev) = self.transit {
            let d = u64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            // J <= 16 * max|D| < 2^36, so u64 arithmetic cannot overflow.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Whether the source has passed probation.
    pub fn is_valid(&self) -> bool {
        self.started && self.probation == 0
    }

    /// Packets counted as received (A.1; duplicates included, probation excluded).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Extended highest sequence number: cycles in the upper 16 bits.
    pub fn extended_highest(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected so far (A.3); 0 while on probation.
    pub fn expected(&self) -> u32 {
        if !self.is_valid() {
            return 0;
        }
        self.extended_highest()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Cumulative loss, expected minus received (negative with duplicates), clamped to
    /// the 24-bit signed range of the report block.
    pub fn cumulative_lost(&self) -> i32 {
        let lost = i64::from(self.expected()) - i64::from(self.received);
        lost.clamp(-0x80_0000, 0x7f_ffff) as i32
    }

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter_samples(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    /// Interarrival jitter as a duration at `clock_rate` Hz.
    pub fn jitter(&self, clock_rate: u32) -> Duration {
        if clock_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(
            u64::from(self.jitter_samples()) * 1_000_000_000 / u64::from(clock_rate),
        )
    }

    /// Fraction lost since the previous call, in 1/256 (A.3); advances the interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        }
    }

    /// Builds the report block about `ssrc` and starts a new loss interval. `lsr`/`dlsr`
    /// come from the caller, who knows when the last SR from this source arrived.
    pub fn report_block(&mut self, ssrc: u32, lsr: u32, dlsr: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: self.take_fraction_lost(),
            cumulative_lost: self.cumulative_lost(),
            highest_seq: self.extended_highest(),
            jitter: self.jitter_samples(),
            lsr,
            dlsr,
        }
    }
}
