//! Transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-extensions-01,
//! what browsers send as RTPFB FMT 15): the feedback message (parse and write), a receiver
//! that records arrivals of the transport-wide sequence number header extension and writes
//! feedback, and a simple send-side bandwidth estimate that turns feedback into a target
//! bitrate for the encoder.
//!
//! The estimate is loss- and delay-based in the spirit of GCC (draft-ietf-rmcat-gcc) but
//! much simpler: per feedback, the loss fraction and the growth of one-way delay across the
//! reported packets; back off on loss over 10 % or delay growth over 30 ms, grow 8 % per
//! 200 ms otherwise (never above 1.5 x the rate actually acknowledged plus a margin).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::VideoError;

/// The header extension's URI, for `a=extmap`.
pub const EXTENSION_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Feedback message type: RTPFB (205), FMT 15.
pub const FMT: u8 = 15;

/// One parsed feedback message (the FCI of RTPFB FMT 15, plus its SSRCs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Feedback sender.
    pub sender_ssrc: u32,
    /// Media source (informational; TWCC covers the whole transport).
    pub media_ssrc: u32,
    /// Feedback packet counter.
    pub fb_count: u8,
    /// `(transport-wide sequence, arrival time in µs since an arbitrary origin)`;
    /// `None` for packets not received.
    pub packets: Vec<(u16, Option<i64>)>,
}

/// Parses an RTPFB FMT 15 packet (whole RTCP packet, header included). Never panics.
pub fn parse_feedback(p: &[u8]) -> Result<Feedback, VideoError> {
    if p.len() < 20 {
        return Err(VideoError::Truncated("TWCC feedback"));
    }
    if p[1] != 205 || p[0] & 0x1f != FMT {
        return Err(VideoError::Invalid("not a TWCC feedback"));
    }
    let be32 = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let base = u16::from_be_bytes([p[12], p[13]]);
    let count = usize::from(u16::from_be_bytes([p[14], p[15]]));
    // 24-bit signed reference time in multiples of 64 ms.
    let r = i32::from_be_bytes([p[16], p[17], p[18], 0]) >> 8;
    let fb_count = p[19];
    let mut statuses = Vec::with_capacity(count);
    let mut i = 20;
    while statuses.len() < count {
        let c = match p.get(i..i + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => return Err(VideoError::Truncated("TWCC chunk")),
        };
        i += 2;
        if c & 0x8000 == 0 {
            let sym = ((c >> 13) & 3) as u8;
            let run = usize::from(c & 0x1fff);
            if sym == 3 {
                return Err(VideoError::Invalid("TWCC status symbol"));
            }
            for _ in 0..run.min(count - statuses.len()) {
                statuses.push(sym);
            }
        } else if c & 0x4000 == 0 {
            for k in (0..14).rev() {
                if statuses.len() < count {
                    statuses.push(((c >> k) & 1) as u8);
                }
            }
        } else {
            for k in (0..7).rev() {
                if statuses.len() < count {
                    let sym = ((c >> (2 * k)) & 3) as u8;
                    if sym == 3 {
                        return Err(VideoError::Invalid("TWCC status symbol"));
                    }
                    statuses.push(sym);
                }
            }
        }
    }
    let mut t = i64::from(r) * 64_000;
    let mut packets = Vec::with_capacity(count);
    for (k, sym) in statuses.into_iter().enumerate() {
        let seq = base.wrapping_add(k as u16);
        let delta = match sym {
            0 => {
                packets.push((seq, None));
                continue;
            }
            1 => {
                let d = *p.get(i).ok_or(VideoError::Truncated("TWCC delta"))?;
                i += 1;
                i64::from(d)
            }
            _ => {
                let d = p.get(i..i + 2).ok_or(VideoError::Truncated("TWCC delta"))?;
                i += 2;
                i64::from(i16::from_be_bytes([d[0], d[1]]))
            }
        };
        t += delta * 250;
        packets.push((seq, Some(t)));
    }
    Ok(Feedback {
        sender_ssrc: be32(4),
        media_ssrc: be32(8),
        fb_count,
        packets,
    })
}

/// Writes a feedback packet (RTCP header included, padded to 32 bits) for `packets`
/// (consecutive sequence numbers from the first, arrival in µs). Status chunks are
/// two-bit status vectors (7 packets each), valid for any mix of received and lost.
pub fn write_feedback(
    sender_ssrc: u32,
    media_ssrc: u32,
    fb_count: u8,
    packets: &[(u16, Option<i64>)],
) -> Vec<u8> {
    let base = packets.first().map_or(0, |p| p.0);
    let first_arrival = packets.iter().find_map(|p| p.1).unwrap_or(0);
    // Reference time: 64 ms units, floor, 24 bits.
    let reference = first_arrival.div_euclid(64_000);
    let mut t = reference * 64_000;
    let mut symbols = Vec::with_capacity(packets.len());
    let mut deltas = Vec::new();
    for (_, arrival) in packets {
        match arrival {
            None => symbols.push(0u8),
            Some(a) => {
                let d = (a - t).div_euclid(250);
                let d = d.clamp(i64::from(i16::MIN), i64::from(i16::MAX));
                t += d * 250;
                if (0..=255).contains(&d) {
                    symbols.push(1);
                    deltas.push(d as u8);
                } else {
                    symbols.push(2);
                    deltas.extend_from_slice(&(d as i16).to_be_bytes());
                }
            }
        }
    }
    let mut out = vec![0x80 | FMT, 205, 0, 0];
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    out.extend_from_slice(&base.to_be_bytes());
    out.extend_from_slice(&(packets.len() as u16).to_be_bytes());
    out.extend_from_slice(&((reference as i32) << 8).to_be_bytes()[..3]);
    out.push(fb_count);
    for chunk in symbols.chunks(7) {
        let mut c: u16 = 0xc000;
        for (k, s) in chunk.iter().enumerate() {
            c |= u16::from(*s) << (2 * (6 - k));
        }
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&deltas);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    let words = (out.len() / 4 - 1) as u16;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    out
}

/// Receive side: arrival times of transport-wide sequence numbers, reported in feedback
/// messages (the owner sends one every ~100 ms).
#[derive(Debug, Clone)]
pub struct TwccReceiver {
    origin: Option<Instant>,
    highest: Option<i64>,
    arrivals: BTreeMap<i64, i64>,
    next_report: Option<i64>,
    fb_count: u8,
}

impl Default for TwccReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl TwccReceiver {
    /// Nothing received yet.
    pub fn new() -> Self {
        TwccReceiver {
            origin: None,
            highest: None,
            arrivals: BTreeMap::new(),
            next_report: None,
            fb_count: 0,
        }
    }

    /// A packet with transport-wide sequence `seq` arrived at `now`.
    pub fn on_packet(&mut self, seq: u16, now: Instant) {
        let origin = *self.origin.get_or_insert(now);
        let ext = match self.highest {
            None => i64::from(seq),
            Some(h) => h + i64::from(seq.wrapping_sub(h as u16) as i16),
        };
        if self.highest.map_or(true, |h| ext > h) {
            self.highest = Some(ext);
        }
        if self.next_report.is_some_and(|n| ext < n) {
            return; // already reported
        }
        let us = now.duration_since(origin).as_micros() as i64;
        self.arrivals.insert(ext, us);
        while self.arrivals.len() > 4096 {
            self.arrivals.pop_first();
        }
    }

    /// A feedback packet covering everything since the last one, if anything arrived.
    pub fn poll_feedback(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Option<Vec<u8>> {
        let (&first, _) = self.arrivals.first_key_value()?;
        let start = self.next_report.map_or(first, |n| n.max(first));
        let end = *self.arrivals.last_key_value()?.0;
        // At most 4096 packets per message (and far below the 16-bit count).
        let end = end.min(start + 4095);
        let packets: Vec<(u16, Option<i64>)> = (start..=end)
            .map(|s| (s as u16, self.arrivals.get(&s).copied()))
            .collect();
        self.arrivals = self.arrivals.split_off(&(end + 1));
        self.next_report = Some(end + 1);
        let fb = write_feedback(sender_ssrc, media_ssrc, self.fb_count, &packets);
        self.fb_count = self.fb_count.wrapping_add(1);
        Some(fb)
    }
}

/// Send side: what we sent under which transport-wide number, and the bitrate estimate.
#[derive(Debug, Clone)]
pub struct SendSideBwe {
    seq: u16,
    sent: VecDeque<(u16, Instant, usize)>,
    target_bps: f64,
    min_bps: f64,
    max_bps: f64,
    last_change: Option<Instant>,
    /// Loss fraction of the last feedback.
    pub last_loss: f64,
    /// Delay growth of the last feedback in ms.
    pub last_delay_growth_ms: f64,
    /// Feedback messages used.
    pub feedbacks: u64,
}

impl SendSideBwe {
    /// Starts at `start_bps`, kept within `min_bps..=max_bps`.
    pub fn new(start_bps: u32, min_bps: u32, max_bps: u32) -> Self {
        SendSideBwe {
            seq: 0,
            sent: VecDeque::new(),
            target_bps: f64::from(start_bps),
            min_bps: f64::from(min_bps),
            max_bps: f64::from(max_bps),
            last_change: None,
            last_loss: 0.0,
            last_delay_growth_ms: 0.0,
            feedbacks: 0,
        }
    }

    /// The transport-wide number for a packet of `size` bytes sent at `now`.
    pub fn on_send(&mut self, size: usize, now: Instant) -> u16 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.sent.push_back((s, now, size));
        while self.sent.len() > 8192 {
            self.sent.pop_front();
        }
        s
    }

    /// When and how big the packet numbered `seq` was, if it is still in the history.
    ///
    /// The history holds consecutive numbers (`on_send` appends the next one, only the
    /// oldest are dropped, and it is shorter than the number space), so the entry is found
    /// by its distance from the oldest. A search per reported packet made one feedback
    /// (up to 65535 packets from a 36-byte message) cost 65535 x 8192 comparisons.
    fn sent_entry(&self, seq: u16) -> Option<(Instant, usize)> {
        let &(first, _, _) = self.sent.front()?;
        let &(s, at, size) = self.sent.get(usize::from(seq.wrapping_sub(first)))?;
        (s == seq).then_some((at, size))
    }

    /// The current target in bit/s.
    pub fn target_bps(&self) -> u32 {
        self.target_bps as u32
    }

    /// Applies one feedback; returns the new target when it changed.
    pub fn on_feedback(&mut self, fb: &Feedback, now: Instant) -> Option<u32> {
        let mut lost = 0usize;
        let mut acked_bytes = 0usize;
        let mut samples: Vec<(Instant, i64)> = Vec::new();
        for (seq, arrival) in &fb.packets {
            let Some((sent_at, size)) = self.sent_entry(*seq) else {
                continue;
            };
            match arrival {
                None => lost += 1,
                Some(a) => {
                    acked_bytes += size;
                    samples.push((sent_at, *a));
                }
            }
        }
        let total = lost + samples.len();
        if total == 0 {
            return None;
        }
        self.feedbacks += 1;
        let loss = lost as f64 / total as f64;
        // Delay growth: (arrival - send) of the last packets minus that of the first ones.
        let growth_ms = match (samples.first(), samples.last()) {
            (Some(&(s0, a0)), Some(&(s1, a1))) if samples.len() >= 2 => {
                let send_span = s1.saturating_duration_since(s0).as_micros() as i64;
                ((a1 - a0) - send_span) as f64 / 1000.0
            }
            _ => 0.0,
        };
        self.last_loss = loss;
        self.last_delay_growth_ms = growth_ms;
        let span = match (samples.first(), samples.last()) {
            (Some(&(_, a0)), Some(&(_, a1))) => (a1 - a0).max(1) as f64 / 1e6,
            _ => 1.0,
        };
        let acked_bps = acked_bytes as f64 * 8.0 / span.max(0.05);
        let old = self.target_bps;
        let since = self
            .last_change
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        if loss > 0.10 {
            self.target_bps *= 1.0 - 0.5 * loss;
        } else if growth_ms > 30.0 {
            self.target_bps *= 0.85;
        } else if loss < 0.02 && since >= Duration::from_millis(200) {
            self.target_bps = (self.target_bps * 1.08).min(acked_bps.max(self.target_bps) * 1.5);
        }
        self.target_bps = self.target_bps.clamp(self.min_bps, self.max_bps);
        if (self.target_bps - old).abs() >= 1.0 {
            self.last_change = Some(now);
            return Some(self.target_bps as u32);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_round_trip_with_losses_and_large_deltas() {
        let packets = vec![
            (65534u16, Some(1_000_000i64)),
            (65535, None),
            (0, Some(1_000_250)),
            (1, Some(1_100_000)), // 99.75 ms later: a large delta
            (2, None),
            (3, None),
            (4, Some(1_100_500)),
            (5, Some(1_100_750)),
        ];
        let fb = write_feedback(1, 2, 9, &packets);
        assert_eq!(fb.len() % 4, 0);
        let p = parse_feedback(&fb).expect("parses");
        assert_eq!((p.sender_ssrc, p.media_ssrc, p.fb_count), (1, 2, 9));
        assert_eq!(p.packets, packets);
        assert!(parse_feedback(&fb[..fb.len() - 4]).is_err());
    }

    #[test]
    fn parses_run_length_and_one_bit_chunks() {
        // base 10, 20 packets: run of 14 "small delta", then a 1-bit vector of 6 (1,0,1,0,1,0).
        let mut p = vec![
            0x8f, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 10, 0, 20, 0, 0, 1, 0,
        ];
        p.extend_from_slice(&(0x2000u16 | 14).to_be_bytes());
        p.extend_from_slice(&(0x8000u16 | 0b10_1010_0000_0000).to_be_bytes());
        p.extend_from_slice(&[4u8; 17]);
        while p.len() % 4 != 0 {
            p.push(0);
        }
        let f = parse_feedback(&p).expect("parses");
        assert_eq!(f.packets.len(), 20);
        assert_eq!(f.packets[0], (10, Some(64_000 + 1000)));
        assert_eq!(f.packets[13].1, Some(64_000 + 14 * 1000));
        assert_eq!(f.packets[15].1, None);
        assert_eq!(f.packets[16].1, Some(64_000 + 16 * 1000));
    }

    #[test]
    fn receiver_reports_each_packet_once() {
        let t0 = Instant::now();
        let mut r = TwccReceiver::new();
        for (i, s) in [100u16, 101, 103].iter().enumerate() {
            r.on_packet(*s, t0 + Duration::from_millis(i as u64 * 5));
        }
        let fb = parse_feedback(&r.poll_feedback(7, 8).expect("feedback")).expect("parses");
        let got: Vec<(u16, bool)> = fb.packets.iter().map(|p| (p.0, p.1.is_some())).collect();
        assert_eq!(got, [(100, true), (101, true), (102, false), (103, true)]);
        let d = fb.packets[1].1.zip(fb.packets[0].1).map(|(b, a)| b - a);
        assert_eq!(d, Some(5000));
        assert!(r.poll_feedback(7, 8).is_none());
        r.on_packet(104, t0 + Duration::from_millis(20));
        let fb = parse_feedback(&r.poll_feedback(7, 8).expect("feedback")).expect("parses");
        assert_eq!(fb.packets.len(), 1);
        assert_eq!(fb.fb_count, 1);
    }

    #[test]
    fn feedback_is_matched_to_the_history_across_wraparound() {
        let t0 = Instant::now();
        let mut bwe = SendSideBwe::new(500_000, 50_000, 2_000_000);
        // 70000 sends: the numbers wrap and only the last 8192 (4464..=12655) are kept.
        for k in 0..70_000u32 {
            bwe.on_send(1000, t0 + Duration::from_micros(u64::from(k)));
        }
        let last = (70_000u32 - 1) as u16;
        assert_eq!(bwe.sent_entry(last).map(|e| e.1), Some(1000));
        assert_eq!(
            bwe.sent_entry(last.wrapping_sub(8191)).map(|e| e.0),
            Some(t0 + Duration::from_micros(70_000 - 8192))
        );
        assert_eq!(bwe.sent_entry(last.wrapping_sub(8192)), None);
        assert_eq!(bwe.sent_entry(last.wrapping_add(1)), None);
        // The largest feedback a peer can send: every number, every second one lost. Only
        // the 8192 in the history count, half of them lost.
        let packets: Vec<(u16, Option<i64>)> = (0..=u16::MAX)
            .map(|s| {
                (
                    last.wrapping_add(1).wrapping_add(s),
                    (s % 2 == 0).then_some(i64::from(s)),
                )
            })
            .collect();
        let fb = Feedback {
            sender_ssrc: 1,
            media_ssrc: 2,
            fb_count: 0,
            packets,
        };
        bwe.on_feedback(&fb, t0 + Duration::from_secs(1));
        assert_eq!(bwe.feedbacks, 1);
        assert!((bwe.last_loss - 0.5).abs() < 1e-9, "{}", bwe.last_loss);
    }

    #[test]
    fn estimate_backs_off_on_loss_and_grows_without() {
        let t0 = Instant::now();
        let mut bwe = SendSideBwe::new(500_000, 50_000, 2_000_000);
        let mut now = t0;
        let round = |bwe: &mut SendSideBwe, now: &mut Instant, lose_every: Option<u16>| {
            let mut pk = Vec::new();
            for k in 0..50u16 {
                let s = bwe.on_send(1000, *now + Duration::from_millis(u64::from(k) * 2));
                let lost = lose_every.is_some_and(|n| k % n == 0);
                let arr =
                    (now.duration_since(t0).as_micros() as i64) + i64::from(k) * 2000 + 10_000;
                pk.push((s, (!lost).then_some(arr)));
            }
            *now += Duration::from_millis(250);
            let fb = parse_feedback(&write_feedback(1, 2, 0, &pk)).expect("parses");
            bwe.on_feedback(&fb, *now);
        };
        round(&mut bwe, &mut now, None);
        round(&mut bwe, &mut now, None);
        let grown = bwe.target_bps();
        assert!(grown > 500_000, "grew: {grown}");
        round(&mut bwe, &mut now, Some(4));
        assert!(bwe.target_bps() < grown, "backed off on 26 % loss");
        assert!(bwe.last_loss > 0.2);
    }
}
