//! Frame assembly on the receive side: RTP packets of one stream (in any order, with
//! duplicates and losses) in, whole encoded frames out, in order.
//!
//! A frame is the run of consecutive sequence numbers sharing one RTP timestamp and ending
//! with the marker bit. A gap first yields NACK candidates ([`FrameAssembler::take_nacks`]);
//! if later frames complete while the gap stays open ([`GIVE_UP_FRAMES`]), the frame is
//! given up and, because later VP8/H.264 frames reference it, everything is dropped until
//! the next key frame, which the owner is asked to request ([`FrameAssembler::take_keyframe_request`]).
//! No clock is needed: progress is counted in frames that arrive behind the gap.

use std::collections::{BTreeMap, BTreeSet};

use crate::{h264, vp8};

/// Complete frames seen behind an open gap before its frame is given up.
pub const GIVE_UP_FRAMES: usize = 6;
/// Packets buffered at most (older ones are dropped first).
pub const MAX_PACKETS: usize = 2048;
/// Missing sequence numbers reported per NACK round at most.
pub const MAX_NACKS: usize = 64;

/// The payload format of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// RFC 7741.
    Vp8,
    /// RFC 6184, packetization mode 1.
    H264,
}

impl Codec {
    fn keyframe_start(self, payload: &[u8]) -> bool {
        match self {
            Codec::Vp8 => vp8::is_keyframe_start(payload),
            Codec::H264 => h264::is_keyframe_payload(payload),
        }
    }

    fn depacketize(self, payloads: &[&[u8]]) -> Result<Vec<u8>, crate::VideoError> {
        match self {
            Codec::Vp8 => vp8::depacketize(payloads),
            Codec::H264 => h264::depacketize(payloads),
        }
    }
}

/// One assembled frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    /// RTP timestamp.
    pub timestamp: u32,
    /// The encoded frame (VP8 bitstream or H.264 Annex B).
    pub data: Vec<u8>,
    /// Starts with a key frame.
    pub keyframe: bool,
    /// Sequence numbers it spanned.
    pub first_seq: u16,
    /// Last sequence number (the marker packet).
    pub last_seq: u16,
}

#[derive(Debug, Clone)]
struct Pkt {
    ts: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Frames handed out.
    pub frames: u64,
    /// Key frames among them.
    pub keyframes: u64,
    /// Frames given up (gap never filled, or a payload that did not parse).
    pub frames_dropped: u64,
    /// Packets that came too late or twice.
    pub packets_discarded: u64,
    /// Sequence numbers offered for NACK.
    pub nacks: u64,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct FrameAssembler {
    codec: Codec,
    packets: BTreeMap<u64, Pkt>,
    highest: Option<u64>,
    /// Next sequence number expected to start a frame; `None` while waiting for a key frame.
    expected: Option<u64>,
    nacked: BTreeSet<u64>,
    /// `(expected, next)`: while `expected` is unchanged, every number below `next` has
    /// been looked at by [`Self::take_nacks`] (offered, or present then and still present).
    nack_cursor: Option<(u64, u64)>,
    keyframe_request: bool,
    stats: AssemblerStats,
}

/// How far below the newest packet losses are still NACKed (and remembered as offered):
/// older ones are past any sender's retransmission history.
const NACK_WINDOW: u64 = 4096;

impl FrameAssembler {
    /// An assembler that waits for a key frame first.
    pub fn new(codec: Codec) -> Self {
        FrameAssembler {
            codec,
            packets: BTreeMap::new(),
            highest: None,
            expected: None,
            nacked: BTreeSet::new(),
            nack_cursor: None,
            keyframe_request: false,
            stats: AssemblerStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// Waiting for a key frame (the owner should keep asking, rate-limited, with PLI).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.expected.is_none()
    }

    /// A key frame became necessary since the last call (a frame was lost).
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_request)
    }

    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => (1u64 << 32) + u64::from(seq),
            Some(h) => {
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                (h as i64 + delta).max(0) as u64
            }
        }
    }

    /// One received RTP packet of the stream (after SRTP, payload without padding).
    pub fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) {
        let ext = self.extend(seq);
        if self.expected.is_some_and(|e| ext < e) || self.packets.contains_key(&ext) {
            self.stats.packets_discarded += 1;
            return;
        }
        if self.highest.map_or(true, |h| ext > h) {
            self.highest = Some(ext);
        }
        self.packets.insert(
            ext,
            Pkt {
                ts: timestamp,
                marker,
                payload: payload.to_vec(),
            },
        );
        while self.packets.len() > MAX_PACKETS {
            self.packets.pop_first();
            if self.expected.is_some() {
                self.lose();
            }
        }
    }

    /// Sequence numbers missing between the frame being assembled and the newest packet
    /// that were not offered before (each is offered once).
    pub fn take_nacks(&mut self) -> Vec<u16> {
        let (Some(e), Some(h)) = (self.expected, self.highest) else {
            return Vec::new();
        };
        // Only the window below the newest packet, and not again what an earlier call
        // already looked at: scanning all of `e..h` on every call cost time proportional to
        // the gap, which a peer grows by 32767 with every packet it sends.
        let mut s = e.max(h.saturating_sub(NACK_WINDOW));
        if let Some((ce, next)) = self.nack_cursor {
            if ce == e {
                s = s.max(next);
            }
        }
        let mut out = Vec::new();
        while s < h && out.len() < MAX_NACKS {
            if !self.packets.contains_key(&s) && self.nacked.insert(s) {
                out.push(s as u16);
            }
            s += 1;
        }
        self.nack_cursor = Some((e, s));
        if let Some(&first) = self.nacked.first() {
            if first + NACK_WINDOW < h {
                self.nacked = self.nacked.split_off(&(h - NACK_WINDOW));
            }
        }
        self.stats.nacks += out.len() as u64;
        out
    }

    fn lose(&mut self) {
        self.expected = None;
        self.keyframe_request = true;
        self.stats.frames_dropped += 1;
    }

    /// The next complete frame, in order.
    pub fn poll_frame(&mut self) -> Option<AssembledFrame> {
        for _ in 0..64 {
            let start = match self.expected {
                Some(e) => e,
                None => {
                    let codec = self.codec;
                    let k = self
                        .packets
                        .iter()
                        .find(|(_, p)| codec.keyframe_start(&p.payload))
                        .map(|(&s, _)| s)?;
                    self.packets = self.packets.split_off(&k);
                    self.expected = Some(k);
                    k
                }
            };
            let Some(first) = self.packets.get(&start) else {
                self.maybe_give_up(start);
                if self.expected.is_some() {
                    return None;
                }
                continue;
            };
            if first.payload.is_empty() {
                // Padding-only packets (bandwidth probes, sent between frames) take
                // sequence numbers but belong to no frame.
                self.packets.remove(&start);
                self.expected = Some(start + 1);
                continue;
            }
            let ts = first.ts;
            let mut end = start;
            let complete = loop {
                match self.packets.get(&end) {
                    Some(p) if p.ts == ts && p.marker => break true,
                    Some(p) if p.ts == ts => end += 1,
                    // The timestamp changed without a marker: the marker packet was lost
                    // or never sent; the frame ends before it.
                    Some(_) if end > start => {
                        end -= 1;
                        break true;
                    }
                    _ => break false,
                }
            };
            if !complete {
                self.maybe_give_up(end);
                if self.expected.is_some() {
                    return None;
                }
                continue;
            }
            let rest = self.packets.split_off(&(end + 1));
            let frame_pkts = std::mem::replace(&mut self.packets, rest);
            self.expected = Some(end + 1);
            let refs: Vec<&[u8]> = frame_pkts.values().map(|p| p.payload.as_slice()).collect();
            let keyframe = refs.first().is_some_and(|p| self.codec.keyframe_start(p));
            match self.codec.depacketize(&refs) {
                Ok(data) => {
                    self.stats.frames += 1;
                    self.stats.keyframes += u64::from(keyframe);
                    return Some(AssembledFrame {
                        timestamp: ts,
                        data,
                        keyframe,
                        first_seq: start as u16,
                        last_seq: end as u16,
                    });
                }
                Err(_) => self.lose(),
            }
        }
        None
    }

    /// A gap at `missing` blocks the frame: give it up once enough frames completed
    /// behind it.
    fn maybe_give_up(&mut self, missing: u64) {
        let behind = self
            .packets
            .range(missing..)
            .filter(|(_, p)| p.marker)
            .count();
        if behind >= GIVE_UP_FRAMES {
            self.packets = self.packets.split_off(&missing);
            self.lose();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vp8::Vp8Packetizer;

    /// Frames of `n` packets each; frame 0 and every `key_every`th are key frames.
    fn stream(frames: usize, key_every: usize) -> Vec<(u16, u32, bool, Vec<u8>)> {
        let mut pz = Vp8Packetizer::new(100, 1);
        let mut out = Vec::new();
        let mut seq = 65530u16;
        for f in 0..frames {
            let key = f % key_every == 0;
            let mut data = vec![if key { 0x10 } else { 0x11 }; 250];
            data[1] = f as u8;
            let p = pz.packetize(&data);
            let n = p.len();
            for (i, x) in p.into_iter().enumerate() {
                out.push((seq, f as u32 * 3000, i + 1 == n, x));
                seq = seq.wrapping_add(1);
            }
        }
        out
    }

    fn drain(a: &mut FrameAssembler) -> Vec<AssembledFrame> {
        std::iter::from_fn(|| a.poll_frame()).collect()
    }

    #[test]
    fn in_order_and_reordered_with_wrap() {
        let s = stream(5, 100);
        let mut a = FrameAssembler::new(Codec::Vp8);
        let mut got = Vec::new();
        // Swap neighbours: every frame still completes, in order.
        for pair in s.chunks(2) {
            for (seq, ts, m, p) in pair.iter().rev() {
                a.push(*seq, *ts, *m, p);
            }
            got.extend(drain(&mut a));
        }
        assert_eq!(got.len(), 5);
        assert_eq!(
            got.iter().map(|f| f.data[1]).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert!(got[0].keyframe && !got[1].keyframe);
        assert_eq!(got[0].data.len(), 250);
        assert!(a.take_nacks().is_empty());
        assert!(!a.take_keyframe_request());
    }

    #[test]
    fn sequence_jumps_are_nacked_only_near_the_newest_packet() {
        let s = stream(1, 100);
        let mut a = FrameAssembler::new(Codec::Vp8);
        let (seq0, ts, _, p) = &s[0];
        a.push(*seq0, *ts, false, p);
        assert!(drain(&mut a).is_empty());
        assert!(!a.waiting_for_keyframe());
        // A peer jumping ahead 30000 numbers with every packet: the gap behind the frame
        // being assembled reaches 3 million; only the last 4096 numbers are offered, each
        // once, MAX_NACKS per call.
        let mut seq = *seq0;
        for _ in 0..100 {
            seq = seq.wrapping_add(30_000);
            a.push(seq, *ts, false, &[0x11]);
        }
        let mut offered = std::collections::BTreeSet::new();
        loop {
            let n = a.take_nacks();
            if n.is_empty() {
                break;
            }
            assert!(n.len() <= MAX_NACKS);
            for x in n {
                assert!(seq.wrapping_sub(x) <= 4096, "{x} is far below {seq}");
                assert!(offered.insert(x), "{x} offered twice");
            }
        }
        assert_eq!(offered.len(), 4096);
        // New losses after the newest packet are still offered.
        a.push(seq.wrapping_add(3), *ts, false, &[0x11]);
        let n = a.take_nacks();
        assert_eq!(n, [seq.wrapping_add(1), seq.wrapping_add(2)]);
    }

    #[test]
    fn gap_is_nacked_then_filled() {
        let s = stream(4, 100);
        let mut a = FrameAssembler::new(Codec::Vp8);
        let lost = 4; // second packet of frame 1
        for (i, (seq, ts, m, p)) in s.iter().enumerate() {
            if i != lost {
                a.push(*seq, *ts, *m, p);
            }
        }
        assert_eq!(drain(&mut a).len(), 1);
        assert_eq!(a.take_nacks(), [s[lost].0]);
        assert!(a.take_nacks().is_empty(), "each loss offered once");
        let (seq, ts, m, p) = &s[lost];
        a.push(*seq, *ts, *m, p);
        assert_eq!(drain(&mut a).len(), 3);
        assert_eq!(a.stats().frames_dropped, 0);
    }

    #[test]
    fn unfilled_gap_drops_until_keyframe_and_requests_one() {
        let s = stream(20, 10);
        let mut a = FrameAssembler::new(Codec::Vp8);
        let mut got = Vec::new();
        for (i, (seq, ts, m, p)) in s.iter().enumerate() {
            if i != 4 {
                a.push(*seq, *ts, *m, p);
            }
            got.extend(drain(&mut a));
        }
        assert!(a.take_keyframe_request());
        // Frame 0, then nothing until key frame 10, then 10..20.
        let ids: Vec<u8> = got.iter().map(|f| f.data[1]).collect();
        assert_eq!(ids, [0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        assert_eq!(a.stats().frames_dropped, 1);
    }

    #[test]
    fn padding_only_packets_between_frames_are_skipped() {
        let s = stream(4, 100);
        let mut a = FrameAssembler::new(Codec::Vp8);
        let mut seq_shift = 0u16;
        for (i, (seq, ts, m, p)) in s.iter().enumerate() {
            a.push(seq.wrapping_add(seq_shift), *ts, *m, p);
            if *m && i < s.len() - 1 {
                // Two probes after each frame.
                for _ in 0..2 {
                    seq_shift += 1;
                    a.push(seq.wrapping_add(seq_shift), *ts, false, &[]);
                }
            }
        }
        let ids: Vec<u8> = drain(&mut a).iter().map(|f| f.data[1]).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        assert!(a.take_nacks().is_empty());
        assert!(!a.take_keyframe_request());
    }

    #[test]
    fn starts_at_first_keyframe_and_ignores_duplicates() {
        let s = stream(12, 5);
        let mut a = FrameAssembler::new(Codec::Vp8);
        for (seq, ts, m, p) in s.iter().skip(3) {
            a.push(*seq, *ts, *m, p);
            a.push(*seq, *ts, *m, p);
        }
        let ids: Vec<u8> = drain(&mut a).iter().map(|f| f.data[1]).collect();
        assert_eq!(ids, [5, 6, 7, 8, 9, 10, 11]);
    }
}
