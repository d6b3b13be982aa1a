//! Virtual-time network simulation for jitter buffer tests.
//!
//! The source is a 440 Hz sine whose least significant bits carry the packet index in the
//! first 32 samples of each packet ("sequence tag"), so the test decoder can log exactly
//! which packets were played, while the tag changes no sample by more than 1.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use natter_jitter::{AudioDecoder, DecodeError, JitterBuffer, JitterConfig, JitterStats};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub const FS: u32 = 16_000;
pub const PACKET_MS: u32 = 20;
pub const PACKET_SAMPLES: usize = (FS * PACKET_MS / 1000) as usize;
pub const AMPLITUDE: f64 = 8000.0;
pub const TONE_HZ: f64 = 440.0;
const TAG_BITS: usize = 32;

/// Sample `i` of the untagged source.
pub fn tone(i: u64) -> i16 {
    (AMPLITUDE * (2.0 * std::f64::consts::PI * TONE_HZ * i as f64 / f64::from(FS)).sin()).round()
        as i16
}

/// A vowel-like test signal: five harmonics of a fundamental gliding between 110 and
/// 190 Hz, under a syllable-rate amplitude envelope. Far less forgiving for pitch repetition
/// and stretching than a pure tone.
pub fn voice(i: u64) -> i16 {
    let t = i as f64 / f64::from(FS);
    let two_pi = 2.0 * std::f64::consts::PI;
    // Phase of a fundamental 150 + 40 sin(2 pi 0.7 t) Hz, integrated analytically.
    let phase = two_pi * 150.0 * t - 40.0 / 0.7 * (two_pi * 0.7 * t).cos();
    let env = 0.6 + 0.4 * (two_pi * 3.0 * t).sin();
    let s: f64 = (1..=5)
        .map(|h| (phase * f64::from(h)).sin() / f64::from(h))
        .sum();
    (AMPLITUDE * 0.6 * env * s).round() as i16
}

/// The tagged samples of packet `k` of the pure tone.
pub fn packet_samples(k: u32) -> Vec<i16> {
    packet_samples_of(tone, k)
}

/// The tagged samples of packet `k` of `signal`.
pub fn packet_samples_of(signal: fn(u64) -> i16, k: u32) -> Vec<i16> {
    let base = u64::from(k) * PACKET_SAMPLES as u64;
    (0..PACKET_SAMPLES)
        .map(|j| {
            let s = signal(base + j as u64);
            if j < TAG_BITS {
                (s & !1) | ((k >> j) & 1) as i16
            } else {
                s
            }
        })
        .collect()
}

pub fn l16(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_be_bytes()).collect()
}

fn read_tag(samples: &[i16]) -> u32 {
    samples
        .iter()
        .take(TAG_BITS)
        .enumerate()
        .fold(0, |acc, (j, s)| acc | (((*s & 1) as u32) << j))
}

/// L16 (raw big-endian i16) decoder that logs the tag of every decoded packet. With `fec`
/// the payload carries the current frame followed by a copy of the previous one.
pub struct TestDecoder {
    pub log: Rc<RefCell<Vec<u32>>>,
    pub native_plc: bool,
    pub fec: bool,
    pub plc_calls: Rc<RefCell<usize>>,
}

impl TestDecoder {
    pub fn new() -> (Self, Rc<RefCell<Vec<u32>>>) {
        let log = Rc::new(RefCell::new(Vec::new()));
        (
            TestDecoder {
                log: log.clone(),
                native_plc: false,
                fec: false,
                plc_calls: Rc::default(),
            },
            log,
        )
    }
}

fn parse_l16(payload: &[u8]) -> Vec<i16> {
    payload
        .chunks_exact(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
        .collect()
}

impl AudioDecoder for TestDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        if payload.len() % 2 != 0 {
            return Err(DecodeError::Malformed("odd L16 length"));
        }
        let mut s = parse_l16(payload);
        if self.fec {
            s.truncate(s.len() / 2);
        }
        self.log.borrow_mut().push(read_tag(&s));
        out.extend_from_slice(&s);
        Ok(s.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        *self.plc_calls.borrow_mut() += samples;
        out.extend(std::iter::repeat(0).take(samples));
    }

    fn decode_fec(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        if !self.fec {
            return false;
        }
        let s = parse_l16(next);
        let prev = &s[s.len() / 2..];
        let take = samples.min(prev.len());
        out.extend_from_slice(&prev[prev.len() - take..]);
        true
    }

    fn has_native_plc(&self) -> bool {
        self.native_plc
    }

    fn sample_rate(&self) -> u32 {
        FS
    }
}

/// One packet on the wire.
#[derive(Clone, Debug)]
pub struct Sent {
    pub arrival_us: u64,
    pub seq: u16,
    pub ts: u32,
    pub payload: Vec<u8>,
    pub cn_level: Option<u8>,
}

/// A scenario: how packet `k` is sent. The closure returns the network delays (ms) of
/// the copies that arrive: empty for a loss, two for a duplicate.
pub struct Scenario {
    pub packets: u32,
    pub frame_ms: u32,
    pub min_delay_ms: u32,
    pub max_delay_ms: u32,
    /// Sender clock speed relative to the receiver's (1.005 = 0.5 % fast).
    pub sender_speed: f64,
    pub seq0: u16,
    pub ts0: u32,
    pub fec: bool,
    pub native_plc: bool,
    pub seed: u64,
    /// RTP clock rate; timestamps step by 20 ms of it (PCM stays at [`FS`]).
    pub clock_rate: u32,
    pub signal: fn(u64) -> i16,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            packets: 500,
            frame_ms: 20,
            min_delay_ms: 20,
            max_delay_ms: 500,
            sender_speed: 1.0,
            seq0: 1000,
            ts0: 123_456,
            fec: false,
            native_plc: false,
            seed: 7,
            clock_rate: FS,
            signal: tone,
        }
    }
}

/// What came out of a run.
pub struct Outcome {
    pub out: Vec<i16>,
    pub pulls: usize,
    /// Stats after every pull, with the pull time in ms.
    pub timeline: Vec<(u64, JitterStats)>,
    pub decoded: Vec<u32>,
    pub plc_samples: usize,
    pub frame: usize,
    /// Packet indices that were sent but not delivered at all.
    pub lost: Vec<u32>,
    pub reorders: usize,
}

impl Outcome {
    pub fn last(&self) -> JitterStats {
        self.timeline.last().map(|t| t.1).unwrap_or_default()
    }
    pub fn at(&self, ms: u64) -> JitterStats {
        self.timeline
            .iter()
            .take_while(|t| t.0 <= ms)
            .last()
            .map(|t| t.1)
            .unwrap_or_default()
    }
}

pub fn max_jump(x: &[i16]) -> i32 {
    x.windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap_or(0)
}

/// Largest sample-to-sample step of `signal` over its first `n` samples.
pub fn natural_jump_of(signal: fn(u64) -> i16, n: u64) -> i32 {
    let v: Vec<i16> = (0..n).map(signal).collect();
    max_jump(&v) + 2
}

/// Largest sample-to-sample step of the clean tone.
pub fn natural_jump() -> i32 {
    (AMPLITUDE * 2.0 * std::f64::consts::PI * TONE_HZ / f64::from(FS)).ceil() as i32 + 2
}

/// Builds the wire traffic for `sc` with delays from `net`, plus optional extra packets
/// (comfort noise), and runs the buffer until `end_ms`.
pub fn run(
    sc: &Scenario,
    end_ms: u64,
    mut net: impl FnMut(u32, &mut StdRng) -> Vec<f64>,
    mut shape: impl FnMut(u32) -> Option<(u16, u32)>,
    extra: Vec<Sent>,
) -> Outcome {
    let mut rng = StdRng::seed_from_u64(sc.seed);
    let mut wire = extra;
    let mut lost = Vec::new();
    for k in 0..sc.packets {
        // `shape` may skip packets (DTX) or renumber them; default: consecutive.
        let Some((seq_off, ts_off)) = shape(k) else {
            continue;
        };
        let seq = sc.seq0.wrapping_add(seq_off);
        let ts = sc
            .ts0
            .wrapping_add((u64::from(ts_off) * u64::from(sc.clock_rate) / u64::from(FS)) as u32);
        let send_ms = f64::from(k) * f64::from(PACKET_MS) / sc.sender_speed;
        let mut samples = packet_samples(k);
        if sc.fec {
            let prev = if k == 0 {
                vec![0; PACKET_SAMPLES]
            } else {
                packet_samples(k - 1)
            };
            samples.extend_from_slice(&prev);
        }
        let payload = l16(&samples);
        let delays = net(k, &mut rng);
        if delays.is_empty() {
            lost.push(k);
        }
        for d in delays {
            let arrival_us = ((send_ms + d) * 1000.0).round() as u64;
            wire.push(Sent {
                arrival_us,
                seq,
                ts,
                payload: payload.clone(),
                cn_level: None,
            });
        }
    }
    // Stable sort keeps send order for equal arrival times.
    let in_send_order: Vec<u16> = wire
        .iter()
        .filter(|s| s.cn_level.is_none())
        .map(|s| s.seq)
        .collect();
    wire.sort_by_key(|s| s.arrival_us);
    let arrival_order: Vec<u16> = wire
        .iter()
        .filter(|s| s.cn_level.is_none())
        .map(|s| s.seq)
        .collect();
    let reorders = in_send_order
        .iter()
        .zip(&arrival_order)
        .filter(|(a, b)| a != b)
        .count();

    let (mut dec, log) = TestDecoder::new();
    dec.fec = sc.fec;
    dec.native_plc = sc.native_plc;
    let plc = dec.plc_calls.clone();
    let cfg = JitterConfig {
        sample_rate: FS,
        clock_rate: sc.clock_rate,
        frame_ms: sc.frame_ms,
        min_delay_ms: sc.min_delay_ms,
        max_delay_ms: sc.max_delay_ms,
        max_packets: 250,
    };
    let mut jb = JitterBuffer::new(cfg, dec);
    let frame = (FS * sc.frame_ms / 1000) as usize;
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut timeline = Vec::new();
    let mut next = 0;
    let mut pulls = 0;
    let mut t_ms = 0u64;
    while t_ms <= end_ms {
        let t_us = t_ms * 1000;
        while next < wire.len() && wire[next].arrival_us <= t_us {
            let s = &wire[next];
            let at = t0 + Duration::from_micros(s.arrival_us);
            match s.cn_level {
                Some(level) => jb.insert_comfort_noise(s.ts, level, at),
                None => jb.insert(s.seq, s.ts, &s.payload, at),
            }
            next += 1;
        }
        let before = out.len();
        jb.pull(t0 + Duration::from_micros(t_us), &mut out);
        assert_eq!(
            out.len() - before,
            frame,
            "pull must yield exactly one frame"
        );
        pulls += 1;
        timeline.push((t_ms, jb.stats()));
        t_ms += u64::from(sc.frame_ms);
    }
    let decoded = log.borrow().clone();
    let plc_samples = *plc.borrow();
    Outcome {
        out,
        pulls,
        timeline,
        decoded,
        plc_samples,
        frame,
        lost,
        reorders,
    }
}

/// Consecutive numbering, the common case for `run`'s `shape`.
pub fn consecutive(k: u32) -> Option<(u16, u32)> {
    Some((k as u16, k * PACKET_SAMPLES as u32))
}

/// The source as sent, concatenated, for packets `0..n`.
pub fn source(n: u32) -> Vec<i16> {
    (0..n).flat_map(packet_samples).collect()
}

/// Finds where `needle` starts in `hay`.
pub fn find(hay: &[i16], needle: &[i16]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
