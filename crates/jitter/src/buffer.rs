//! The jitter buffer proper: packet intake, the per-frame playout decision, and the
//! bookkeeping that ties RTP time to output samples.
//!
//! Playout position is `next_ts`, the RTP timestamp of the next sample to be produced.
//! Each `pull` fills the sync buffer (decoded, not yet played audio) to one frame by
//! repeated decisions:
//!
//! * the packet at `next_ts` is there: decode it, then time-stretch if the measured
//!   playout delay of that packet is outside the window around the target;
//! * a later packet is there and sequence numbers show a hole: loss. FEC from the later
//!   packet if it carries it, else concealment, advancing `next_ts` over the hole;
//! * a later packet is there without a sequence hole: a DTX gap, filled with comfort noise;
//! * nothing is there: underrun. Concealment is produced but `next_ts` stays put ("frozen"),
//!   so a packet that was merely late plays in full and the delay grows by the underrun.
//!   If it turns out to have been lost, the frozen time is credited against the hole.
//!
//! The playout delay of a packet is measured from when it would have arrived on the
//! fastest recent path to when its first sample is played. It is independent of the
//! jitter of that particular packet, so it only moves when we stretch or underrun, and
//! sender clock drift shows up in it as a slow ramp that accelerate/expand take out.

use std::time::Instant;

use crate::cng::ComfortNoise;
use crate::config::JitterConfig;
use crate::decoder::AudioDecoder;
use crate::delay::DelayManager;
use crate::packet_buffer::{Entry, Packet, PacketBuffer, SEQ_MEMORY};
use crate::pitch::PitchRange;
use crate::plc::Concealer;
use crate::stats::JitterStats;
use crate::stretch::{mix, Stretcher};
use crate::unwrap::Unwrapper;

/// Payloads above this are not RTP audio; refusing them bounds memory per packet.
const MAX_PAYLOAD: usize = 16 * 1024;
/// Longest decoded packet we keep (anything longer is truncated).
const MAX_PACKET_MS: usize = 120;
/// Played audio kept for pitch analysis.
const HISTORY_MS: usize = 60;
/// Length of the cross-fade when real audio resumes after synthetic audio.
const MERGE_MS: usize = 5;
/// The accelerate window's width above the target beyond one frame.
const ACCEL_SLACK_MS: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No packet played yet: silence until the first packet has waited out the target.
    Idle,
    /// Decoding packets.
    Playing,
    /// In a comfort-noise period: CN until the next speech packet has waited out the target.
    Cn,
}

/// What the last audio appended to the sync buffer was, for seam handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Silence,
    Real,
    Concealed,
    Cn,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    received: u64,
    late: u64,
    duplicates: u64,
    concealed: u64,
    accelerated: u64,
    expanded: u64,
    fec: u64,
    cn: u64,
    underruns: u64,
    dropped: u64,
}

/// Adaptive jitter buffer; see the crate documentation.
pub struct JitterBuffer<D: AudioDecoder> {
    cfg: JitterConfig,
    decoder: D,
    fs: usize,
    frame: usize,
    range: PitchRange,
    packets: PacketBuffer,
    seq_unwrap: Unwrapper,
    ts_unwrap: Unwrapper,
    delay: DelayManager,
    /// Time origin for all millisecond values: the first arrival.
    origin: Option<Instant>,
    mode: Mode,
    next_ts: i64,
    /// Sequence number the next packet should have; `None` after a CN period or resync,
    /// when a jump in sequence numbers says nothing about loss.
    expect_seq: Option<i64>,
    last_decoded_seq: Option<i64>,
    /// Packet duration in RTP ticks, learnt from decoding.
    packet_ticks: i64,
    /// Ticks of concealment produced in the current underrun without advancing `next_ts`.
    frozen_ticks: i64,
    in_underrun: bool,
    /// Continuity with the previous audio was broken on purpose (drop / resync).
    broken: bool,
    resync: bool,
    sync: Vec<i16>,
    history: Vec<i16>,
    last_kind: Kind,
    concealer: Option<Concealer>,
    cn: ComfortNoise,
    stretcher: Stretcher,
    target_ms: u32,
    current_delay_ms: f64,
    counters: Counters,
    scratch: Vec<i16>,
}

impl<D: AudioDecoder> JitterBuffer<D> {
    /// Creates a buffer. The configuration is normalised (see [`JitterConfig::normalized`]);
    /// a decoder whose sample rate disagrees with `cfg.sample_rate` wins, since that is the
    /// PCM we actually get.
    pub fn new(cfg: JitterConfig, decoder: D) -> Self {
        let mut cfg = cfg;
        let dec_rate = decoder.sample_rate();
        if dec_rate != 0 {
            cfg.sample_rate = dec_rate;
        }
        let cfg = cfg.normalized();
        let fs = cfg.sample_rate as usize;
        let frame = (fs * cfg.frame_ms as usize / 1000).max(1);
        let range = PitchRange::for_rate(fs);
        let packet_ticks = i64::from(cfg.clock_rate) * i64::from(cfg.frame_ms) / 1000;
        JitterBuffer {
            decoder,
            fs,
            frame,
            range,
            packets: PacketBuffer::default(),
            seq_unwrap: Unwrapper::default(),
            ts_unwrap: Unwrapper::default(),
            delay: DelayManager::new(cfg.max_delay_ms),
            origin: None,
            mode: Mode::Idle,
            next_ts: 0,
            expect_seq: None,
            last_decoded_seq: None,
            packet_ticks: packet_ticks.max(1),
            frozen_ticks: 0,
            in_underrun: false,
            broken: false,
            resync: false,
            sync: Vec::new(),
            history: Vec::new(),
            last_kind: Kind::Silence,
            concealer: None,
            cn: ComfortNoise::new(),
            stretcher: Stretcher::new(range),
            target_ms: cfg.min_delay_ms,
            current_delay_ms: 0.0,
            counters: Counters::default(),
            scratch: Vec::new(),
            cfg,
        }
    }

    /// The configuration in force (after normalisation).
    pub fn config(&self) -> &JitterConfig {
        &self.cfg
    }

    /// The decoder, e.g. to reconfigure it.
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// Offers an RTP packet. The payload is copied. Duplicates and packets whose playout
    /// time has passed are dropped and counted; order does not matter otherwise.
    pub fn insert(&mut self, seq: u16, rtp_ts: u32, payload: &[u8], arrival: Instant) {
        self.counters.received += 1;
        if payload.len() > MAX_PAYLOAD {
            self.counters.dropped += 1;
            return;
        }
        let origin = *self.origin.get_or_insert(arrival);
        let seq = self.seq_unwrap.seq(seq);
        let ts = self.ts_unwrap.ts(rtp_ts);
        if self.packets.seen(seq) {
            self.counters.duplicates += 1;
            return;
        }
        let highest = self.seq_unwrap.highest().unwrap_or(seq);
        self.packets.mark_seen(seq, highest);

        // Late packets still say something about the network, so they feed the estimate.
        let arrival_ms = ms_since(origin, arrival);
        let media_ms = ts as f64 * 1000.0 / f64::from(self.cfg.clock_rate);
        let relative = self.delay.update(arrival_ms, media_ms);
        self.update_target();

        let behind_played = self.last_decoded_seq.is_some_and(|l| seq <= l);
        let too_old = seq < highest - SEQ_MEMORY;
        let past_playout = self.mode == Mode::Playing && ts < self.next_ts;
        if behind_played || too_old || past_playout {
            self.counters.late += 1;
            return;
        }
        let packet = Packet {
            seq,
            payload: payload.to_vec(),
            earliest_ms: arrival_ms - relative,
        };
        if !self.packets.insert(ts, Entry::Audio(packet)) {
            self.counters.duplicates += 1;
            return;
        }
        self.enforce_capacity();
    }

    /// Signals an RFC 3389 comfort-noise packet (or any DTX start) at `rtp_ts` with noise
    /// level `level_dbov` (-dBov). The silence that follows is filled with comfort noise
    /// and does not count as loss.
    pub fn insert_comfort_noise(&mut self, rtp_ts: u32, level_dbov: u8, arrival: Instant) {
        self.origin.get_or_insert(arrival);
        let ts = self.ts_unwrap.ts(rtp_ts);
        if self.mode == Mode::Playing && ts < self.next_ts - self.packet_ticks {
            // Stale: speech after it has already played.
            return;
        }
        if self.packets.insert(ts, Entry::Cn { level: level_dbov }) {
            self.enforce_capacity();
        }
    }

    /// Appends exactly one frame (`frame_ms` at `sample_rate`) of audio to `out`.
    pub fn pull(&mut self, now: Instant, out: &mut Vec<i16>) {
        let now_ms = self.origin.map_or(0.0, |o| ms_since(o, now));
        // Every step either consumes a buffered entry or produces audio, so this bound
        // is never reached in practice; it only guards against a logic error spinning.
        let mut budget = self.packets.len() + 64;
        while self.sync.len() < self.frame {
            if budget == 0 {
                self.sync.resize(self.frame, 0);
                break;
            }
            budget -= 1;
            match self.mode {
                Mode::Idle | Mode::Cn => self.step_waiting(now_ms),
                Mode::Playing => self.step_playing(now_ms),
            }
        }
        out.extend(self.sync.drain(..self.frame));
        let hist_max = self.fs * HISTORY_MS / 1000;
        let start = out.len() - self.frame;
        self.history
            .extend_from_slice(out.get(start..).unwrap_or(&[]));
        if self.history.len() > 2 * hist_max {
            let cut = self.history.len() - hist_max;
            self.history.drain(..cut);
        }
    }

    /// Current state and counters.
    pub fn stats(&self) -> JitterStats {
        let ms = |samples: u64| samples * 1000 / self.fs as u64;
        let c = &self.counters;
        JitterStats {
            target_delay_ms: self.target_ms,
            current_delay_ms: self.current_delay_ms.max(0.0).round() as u32,
            packets_received: c.received,
            late: c.late,
            duplicates: c.duplicates,
            concealed_ms: ms(c.concealed),
            accelerated_ms: ms(c.accelerated),
            expanded_ms: ms(c.expanded),
            fec_recovered: c.fec,
            cn_ms: ms(c.cn),
            underruns: c.underruns,
            dropped: c.dropped,
        }
    }

    fn update_target(&mut self) {
        let Some(q) = self.delay.quantile_ms() else {
            return;
        };
        // A packet is fetched at the pull that needs it, up to one frame before its first
        // sample plays, so the target carries one frame on top of the measured jitter.
        let raw = (q + f64::from(self.cfg.frame_ms)).floor();
        let raw = raw.clamp(0.0, f64::from(u32::MAX)) as u32;
        self.target_ms = raw.clamp(self.cfg.min_delay_ms, self.cfg.max_delay_ms);
    }

    fn enforce_capacity(&mut self) {
        while self.packets.len() > self.cfg.max_packets {
            self.packets.pop_front();
            self.counters.dropped += 1;
            if self.mode == Mode::Playing {
                self.resync = true;
            }
        }
    }

    /// Playout delay the front packet would get if decoded in this step.
    fn delay_if_decoded_now(&self, now_ms: f64, p: &Packet) -> f64 {
        now_ms + self.sync.len() as f64 * 1000.0 / self.fs as f64 - p.earliest_ms
    }

    fn step_waiting(&mut self, now_ms: f64) {
        loop {
            match self.packets.front() {
                Some((_, Entry::Cn { level })) => {
                    let level = *level;
                    self.packets.pop_front();
                    self.cn.set_level(level);
                    self.mode = Mode::Cn;
                }
                Some((ts, Entry::Audio(p))) => {
                    if self.delay_if_decoded_now(now_ms, p) >= f64::from(self.target_ms) {
                        self.next_ts = ts;
                        self.expect_seq = Some(p.seq);
                        self.mode = Mode::Playing;
                        self.frozen_ticks = 0;
                        self.in_underrun = false;
                        return;
                    }
                    break;
                }
                None => break,
            }
        }
        let n = self.frame - self.sync.len().min(self.frame);
        if self.mode == Mode::Cn {
            self.append_cn(n);
        } else {
            self.sync.resize(self.sync.len() + n, 0);
            self.last_kind = Kind::Silence;
        }
    }

    fn step_playing(&mut self, now_ms: f64) {
        if self.resync {
            self.resync = false;
            self.resync_to_front();
        }
        self.drop_beyond_max_delay(now_ms);
        let Some((ts, entry)) = self.packets.front() else {
            self.underrun();
            return;
        };
        let (seq, is_audio) = match entry {
            Entry::Audio(p) => (p.seq, true),
            Entry::Cn { .. } => (0, false),
        };
        if !is_audio {
            if let Some((_, Entry::Cn { level })) = self.packets.pop_front() {
                self.cn.set_level(level);
            }
            self.mode = Mode::Cn;
            self.expect_seq = None;
            self.frozen_ticks = 0;
            self.in_underrun = false;
            return;
        }
        if ts < self.next_ts {
            self.packets.pop_front();
            self.counters.late += 1;
            return;
        }
        if ts == self.next_ts {
            self.decode_front(now_ms, true);
            return;
        }
        // A hole before the front packet. Time already spent concealing in an underrun
        // covers it first.
        let gap = ts - self.next_ts;
        // A hole in sequence numbers means loss; none (or no expectation) means DTX.
        let lost = matches!(self.expect_seq, Some(e) if seq > e);
        let credit = self.frozen_ticks.min(gap);
        if credit > 0 && lost && self.in_underrun {
            // The "underrun" was the lost packet's slot running empty: it is loss, and
            // already counted as concealment, not a late packet.
            self.counters.underruns = self.counters.underruns.saturating_sub(1);
            self.in_underrun = false;
        }
        self.frozen_ticks -= credit;
        self.next_ts += credit;
        let rest = gap - credit;
        if rest == 0 {
            return;
        }
        let max_ticks = i64::from(self.cfg.max_delay_ms) * i64::from(self.cfg.clock_rate) / 1000;
        if rest > max_ticks {
            // A timestamp jump (new talk spurt after unsignalled silence, sender reset):
            // start over at the packet rather than filling seconds of audio.
            self.resync_to_front();
            return;
        }
        let chunk_ticks = rest.min(self.ticks(self.frame));
        if lost {
            if rest <= self.packet_ticks && self.try_fec(rest) {
                return;
            }
            let n = self.samples(chunk_ticks);
            if n > 0 {
                self.conceal(n);
            }
        } else {
            let n = self.samples(chunk_ticks);
            self.append_cn(n);
        }
        self.next_ts += chunk_ticks;
    }

    /// Play position jumps to the front packet, accepting whatever sequence number it has.
    fn resync_to_front(&mut self) {
        if let Some((ts, Entry::Audio(p))) = self.packets.front() {
            self.next_ts = ts;
            self.expect_seq = Some(p.seq);
        } else if let Some((ts, _)) = self.packets.front() {
            self.next_ts = ts;
            self.expect_seq = None;
        }
        self.frozen_ticks = 0;
        self.broken = true;
    }

    /// Beyond `max_delay_ms` we stop stretching and discard the oldest packets.
    fn drop_beyond_max_delay(&mut self, now_ms: f64) {
        let max = f64::from(self.cfg.max_delay_ms);
        let keep = f64::from(self.target_ms) + f64::from(self.cfg.frame_ms);
        let mut dropped = false;
        while self.packets.len() > 1 {
            let Some((_, Entry::Audio(p))) = self.packets.front() else {
                break;
            };
            let d = self.delay_if_decoded_now(now_ms, p);
            if d <= max && !dropped {
                break;
            }
            if d <= keep {
                break;
            }
            self.packets.pop_front();
            self.counters.dropped += 1;
            dropped = true;
        }
        if dropped {
            self.resync_to_front();
        }
    }

    fn underrun(&mut self) {
        if !self.in_underrun {
            self.in_underrun = true;
            self.counters.underruns += 1;
        }
        let n = self.frame - self.sync.len().min(self.frame);
        self.conceal(n.max(1));
        self.frozen_ticks = self.frozen_ticks.saturating_add(self.ticks(n.max(1)));
    }

    fn try_fec(&mut self, ticks: i64) -> bool {
        let Some((_, Entry::Audio(p))) = self.packets.front() else {
            return false;
        };
        let n = self.samples(ticks);
        if n == 0 {
            return false;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let ok = self.decoder.decode_fec(&p.payload, n, &mut buf) && !buf.is_empty();
        if ok {
            buf.resize(n, 0);
            self.counters.fec += 1;
            self.append_real(&mut buf);
            self.next_ts += ticks;
            self.in_underrun = false;
        }
        self.scratch = buf;
        ok
    }

    /// Decodes the front packet (which is at `next_ts`) and, if `adapt`, time-stretches.
    fn decode_front(&mut self, now_ms: f64, adapt: bool) {
        let Some((ts, Entry::Audio(p))) = self.packets.pop_front() else {
            return;
        };
        let queued = self.sync.len();
        let delay = now_ms + queued as f64 * 1000.0 / self.fs as f64 - p.earliest_ms;
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let decoded = self.decoder.decode(&p.payload, &mut buf);
        self.last_decoded_seq = Some(self.last_decoded_seq.map_or(p.seq, |l| l.max(p.seq)));
        self.expect_seq = Some(p.seq + 1);
        self.in_underrun = false;
        self.frozen_ticks = 0;
        if decoded.is_err() || buf.is_empty() {
            // An undecodable packet is a lost packet of the usual duration.
            let n = self.samples(self.packet_ticks);
            if n > 0 {
                self.conceal(n);
            }
            self.next_ts = ts + self.packet_ticks;
            self.scratch = buf;
            return;
        }
        buf.truncate(self.fs * MAX_PACKET_MS / 1000);
        let ticks = self.ticks(buf.len()).max(1);
        self.packet_ticks = ticks;
        self.next_ts = ts + ticks;
        self.current_delay_ms = delay;
        self.append_real(&mut buf);
        self.scratch = buf;
        if adapt {
            self.adapt(now_ms, delay);
        }
    }

    /// Steers the playout delay into `[target, target + frame + slack]`.
    fn adapt(&mut self, now_ms: f64, delay: f64) {
        let target = f64::from(self.target_ms);
        let high = target + f64::from(self.cfg.frame_ms) + ACCEL_SLACK_MS;
        if delay > high {
            // Accelerate works on two pitch periods of unplayed audio; pull in more
            // packets if one is too short (there are plenty when we are above target).
            let mut extra = 0;
            while self.sync.len() < 2 * self.range.max_lag && extra < 4 {
                match self.packets.front() {
                    Some((ts, Entry::Audio(_))) if ts == self.next_ts => {
                        self.decode_front(now_ms, false)
                    }
                    _ => break,
                }
                extra += 1;
            }
            let removed = self.stretcher.accelerate(&mut self.sync);
            self.counters.accelerated += removed as u64;
        } else if delay < target {
            let added = self.stretcher.expand(&self.history, &mut self.sync);
            self.counters.expanded += added as u64;
        }
    }

    /// Appends `n` samples of concealment and counts them.
    fn conceal(&mut self, n: usize) {
        let start = self.sync.len();
        if self.decoder.has_native_plc() {
            self.decoder.conceal(n, &mut self.sync);
            self.sync.resize(start + n, 0);
        } else {
            if self.last_kind != Kind::Concealed || self.concealer.is_none() {
                self.concealer = Some(Concealer::start(&self.recent(), self.fs, self.range));
            }
            if let Some(c) = self.concealer.as_mut() {
                c.generate(n, &mut self.sync);
            }
        }
        self.counters.concealed += n as u64;
        self.last_kind = Kind::Concealed;
    }

    /// Appends `n` samples of comfort noise, cross-faded in from the previous audio.
    fn append_cn(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let mut buf = Vec::with_capacity(n);
        self.cn.generate(n, &mut buf);
        if self.last_kind != Kind::Cn {
            let m = n.min(self.fs * MERGE_MS / 1000);
            if let Some(cont) = self.continuation(m) {
                crossfade(&cont, &mut buf);
            }
        }
        self.sync.extend_from_slice(&buf);
        self.counters.cn += n as u64;
        self.last_kind = Kind::Cn;
    }

    /// Appends decoded audio, cross-fading from synthetic audio (or a deliberate jump) so
    /// the seam does not click.
    fn append_real(&mut self, buf: &mut [i16]) {
        let seam = self.broken || matches!(self.last_kind, Kind::Concealed | Kind::Cn);
        if seam {
            let m = buf.len().min(self.fs * MERGE_MS / 1000);
            if let Some(cont) = self.continuation(m) {
                crossfade(&cont, buf);
            }
        }
        self.sync.extend_from_slice(buf);
        self.last_kind = Kind::Real;
        self.broken = false;
        self.concealer = None;
    }

    /// `m` samples of what the previous audio would have continued with. `None` when a
    /// codec PLC owns continuity (its state must not be advanced behind its back).
    fn continuation(&mut self, m: usize) -> Option<Vec<i16>> {
        let mut out = Vec::with_capacity(m);
        match self.last_kind {
            Kind::Silence => out.resize(m, 0),
            Kind::Cn => self.cn.generate(m, &mut out),
            Kind::Concealed => {
                if self.decoder.has_native_plc() {
                    return None;
                }
                match self.concealer.as_mut() {
                    Some(c) => c.generate(m, &mut out),
                    None => out.resize(m, 0),
                }
            }
            Kind::Real => {
                Concealer::start(&self.recent(), self.fs, self.range).generate(m, &mut out)
            }
        }
        Some(out)
    }

    /// The most recent audio on the output timeline (played history, then queued audio).
    fn recent(&self) -> Vec<i16> {
        let want = 2 * self.range.max_lag + self.range.max_lag / 2;
        let from_sync = self.sync.len().min(want);
        let from_hist = (want - from_sync).min(self.history.len());
        let mut v = Vec::with_capacity(from_hist + from_sync);
        v.extend_from_slice(
            self.history
                .get(self.history.len() - from_hist..)
                .unwrap_or(&[]),
        );
        v.extend_from_slice(self.sync.get(self.sync.len() - from_sync..).unwrap_or(&[]));
        v
    }

    fn samples(&self, ticks: i64) -> usize {
        let s = i128::from(ticks.max(0)) * self.fs as i128 / i128::from(self.cfg.clock_rate);
        usize::try_from(s).unwrap_or(usize::MAX)
    }

    fn ticks(&self, samples: usize) -> i64 {
        let t = samples as i128 * i128::from(self.cfg.clock_rate) / self.fs as i128;
        i64::try_from(t).unwrap_or(i64::MAX)
    }
}

/// Fades `buf`'s start in over `cont` (the continuation of the previous audio).
fn crossfade(cont: &[i16], buf: &mut [i16]) {
    let m = cont.len().min(buf.len());
    for (i, (b, c)) in buf.iter_mut().zip(cont).take(m).enumerate() {
        let w = (i + 1) as f64 / (m + 1) as f64;
        *b = mix(f64::from(*c), f64::from(*b), w);
    }
}

fn ms_since(origin: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(origin).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecodeError;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::time::Duration;

    /// L16 decoder that fails on odd lengths.
    struct L16;
    impl AudioDecoder for L16 {
        fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
            if payload.len() % 2 == 1 {
                return Err(DecodeError::Malformed("odd"));
            }
            out.extend(
                payload
                    .chunks_exact(2)
                    .map(|c| i16::from_be_bytes([c[0], c[1]])),
            );
            Ok(payload.len() / 2)
        }
        fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
            out.resize(out.len() + samples, 0);
        }
        fn sample_rate(&self) -> u32 {
            8000
        }
    }

    #[test]
    fn silence_before_the_first_packet_in_exact_frames() {
        let mut cfg = JitterConfig::new(8000, 8000);
        cfg.frame_ms = 10;
        let mut jb = JitterBuffer::new(cfg, L16);
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in 0..5 {
            jb.pull(t0 + Duration::from_millis(i * 10), &mut out);
        }
        assert_eq!(out, vec![0; 400]);
        assert_eq!(
            jb.stats(),
            JitterStats {
                target_delay_ms: 20,
                ..JitterStats::default()
            }
        );
    }

    #[test]
    fn config_is_normalized() {
        let cfg = JitterConfig {
            sample_rate: 0,
            clock_rate: 0,
            frame_ms: 1000,
            min_delay_ms: 900,
            max_delay_ms: 5,
            max_packets: 0,
        }
        .normalized();
        assert_eq!(
            cfg,
            JitterConfig {
                sample_rate: 1000,
                clock_rate: 1000,
                frame_ms: 60,
                min_delay_ms: 900,
                max_delay_ms: 900,
                max_packets: 1
            }
        );
    }

    /// Random garbage in, random timing: memory stays bounded and pulls stay exact.
    #[test]
    fn random_operations_keep_memory_bounded() {
        let mut rng = StdRng::seed_from_u64(99);
        let mut cfg = JitterConfig::new(8000, 8000);
        cfg.max_packets = 40;
        let mut jb = JitterBuffer::new(cfg, L16);
        let t0 = Instant::now();
        let mut t = 0u64;
        let mut seq = 0u16;
        let mut ts = 0u32;
        let mut out = Vec::new();
        for _ in 0..20_000 {
            match rng.gen_range(0..10) {
                0..=5 => {
                    // Mostly a plausible stream, sometimes wild jumps and bad payloads.
                    seq = if rng.gen_bool(0.05) {
                        rng.gen()
                    } else {
                        seq.wrapping_add(1)
                    };
                    ts = if rng.gen_bool(0.05) {
                        rng.gen()
                    } else {
                        ts.wrapping_add(160)
                    };
                    let len = if rng.gen_bool(0.1) {
                        rng.gen_range(0..2000)
                    } else {
                        320
                    };
                    let payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                    let jitter = rng.gen_range(0..200);
                    jb.insert(seq, ts, &payload, t0 + Duration::from_millis(t + jitter));
                }
                6 => jb.insert_comfort_noise(rng.gen(), rng.gen(), t0 + Duration::from_millis(t)),
                _ => {
                    t += 20;
                    out.clear();
                    jb.pull(t0 + Duration::from_millis(t), &mut out);
                    assert_eq!(out.len(), 160);
                }
            }
            assert!(jb.packets.len() <= 40);
            assert!(
                jb.sync.len() <= 8000 * (MAX_PACKET_MS * 6) / 1000,
                "{}",
                jb.sync.len()
            );
            assert!(jb.history.len() <= 2 * 8000 * HISTORY_MS / 1000 + 160);
        }
        let st = jb.stats();
        assert!(
            st.late > 0 && st.dropped > 0 && st.concealed_ms > 0,
            "{st:?}"
        );
    }
}
