#![no_main]
//! Fuzzes the jitter buffer with arbitrary sequences of packet inserts, comfort-noise
//! inserts and pulls, with arbitrary sequence numbers, timestamps, payloads and (possibly
//! backwards) arrival times, on a decoder that sometimes fails, returns nothing, offers FEC
//! or native PLC. Nothing may panic and every pull must yield exactly one frame; the
//! buffer's own caps (max_packets, payload size, decoded length) bound its memory.
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_jitter::{AudioDecoder, DecodeError, JitterBuffer, JitterConfig};

struct Dec {
    rate: u32,
    native: bool,
    fec: bool,
}

impl AudioDecoder for Dec {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        match payload.first() {
            None => Err(DecodeError::Malformed("empty")),
            Some(0) => Ok(0),
            Some(_) => {
                let n = payload.len() / 2;
                out.extend(
                    payload
                        .chunks_exact(2)
                        .map(|c| i16::from_be_bytes([c[0], c[1]])),
                );
                Ok(n)
            }
        }
    }
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.extend(std::iter::repeat(7).take(samples));
    }
    fn decode_fec(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        if !self.fec || next.len() < 2 {
            return false;
        }
        out.extend(std::iter::repeat(i16::from(next[1])).take(samples));
        true
    }
    fn has_native_plc(&self) -> bool {
        self.native
    }
    fn sample_rate(&self) -> u32 {
        self.rate
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

const RATES: [u32; 4] = [8000, 16000, 48000, 44100];

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor(data);
    let (Some(a), Some(b), Some(d), Some(e)) = (c.u8(), c.u8(), c.u8(), c.u8()) else {
        return;
    };
    let rate = RATES[usize::from(a & 3)];
    let cfg = JitterConfig {
        sample_rate: rate,
        clock_rate: RATES[usize::from((a >> 2) & 3)],
        frame_ms: if a & 0x10 != 0 { 10 } else { 20 },
        min_delay_ms: u32::from(b),
        max_delay_ms: u32::from(d) * 4,
        max_packets: usize::from(e % 64),
    };
    let dec = Dec {
        rate,
        native: a & 0x20 != 0,
        fec: a & 0x40 != 0,
    };
    let mut jb = JitterBuffer::new(cfg, dec);
    let frame = (rate * if a & 0x10 != 0 { 10 } else { 20 } / 1000) as usize;
    let t0 = Instant::now() + Duration::from_secs(3600);
    let mut t_ms: i64 = 0;
    let mut out = Vec::new();
    let at = |ms: i64| {
        if ms >= 0 {
            t0 + Duration::from_millis(ms as u64)
        } else {
            t0.checked_sub(Duration::from_millis(ms.unsigned_abs()))
                .unwrap_or(t0)
        }
    };
    while let Some(op) = c.u8() {
        match op % 4 {
            0 | 1 => {
                let (Some(seq), Some(ts), Some(dt), Some(len)) = (c.u16(), c.u32(), c.u8(), c.u8())
                else {
                    break;
                };
                t_ms += i64::from(dt as i8);
                let payload = c.bytes(usize::from(len) * 4).to_vec();
                jb.insert(seq, ts, &payload, at(t_ms));
            }
            2 => {
                let (Some(ts), Some(level)) = (c.u32(), c.u8()) else {
                    break;
                };
                jb.insert_comfort_noise(ts, level, at(t_ms));
            }
            _ => {
                let Some(n) = c.u8() else { break };
                for _ in 0..=(n % 16) {
                    t_ms += i64::from(if op & 0x80 != 0 { 10 } else { 20 });
                    out.clear();
                    jb.pull(at(t_ms), &mut out);
                    assert_eq!(out.len(), frame);
                }
            }
        }
        let st = jb.stats();
        assert!(st.target_delay_ms <= jb.config().max_delay_ms);
    }
});
