//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA), table driven.
//!
//! The tables are built at compile time from the segment/quantisation rules of G.711
//! (the rules the classic Sun reference and sox use), so encode and decode are one
//! array lookup each. µ-law quantises 14-bit and A-law 13-bit input; the 16-bit
//! sample is rounded to that resolution first, as sox does, which makes every one of
//! the 65536 codes equal to sox's (tested).

use crate::codec::{Decoder, Encoder};
use crate::error::MediaError;
use crate::plc::Plc;

/// Upper ends of the eight µ-law segments, in 14-bit magnitude after the bias.
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// Upper ends of the eight A-law segments, in 13-bit magnitude.
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// µ-law code for a 14-bit signed sample (`pcm16 >> 2`).
const fn ulaw_from_14(mut pcm: i32) -> u8 {
    let mask: i32 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > 8159 {
        pcm = 8159;
    }
    pcm += 0x21; // the µ-law bias (0x84) at 14-bit scale
    let mut seg = 0;
    while seg < 8 && pcm > ULAW_SEG_END[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let uval = ((seg as i32) << 4) | ((pcm >> (seg + 1)) & 0x0F);
    (uval ^ mask) as u8
}

/// A-law code for a 13-bit signed sample (`pcm16 >> 3`).
const fn alaw_from_13(mut pcm: i32) -> u8 {
    let mask: i32 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let mut seg = 0;
    while seg < 8 && pcm > ALAW_SEG_END[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut aval = (seg as i32) << 4;
    if seg < 2 {
        aval |= (pcm >> 1) & 0x0F;
    } else {
        aval |= (pcm >> seg) & 0x0F;
    }
    (aval ^ mask) as u8
}

const fn ulaw_decode_calc(code: u8) -> i16 {
    let u = !code as i32;
    let mut t = ((u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    if u & 0x80 != 0 {
        (0x84 - t) as i16
    } else {
        (t - 0x84) as i16
    }
}

const fn alaw_decode_calc(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_ulaw_enc() -> [u8; 16384] {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        t[i] = ulaw_from_14(i as i32 - 8192);
        i += 1;
    }
    t
}

const fn build_alaw_enc() -> [u8; 8192] {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        t[i] = alaw_from_13(i as i32 - 4096);
        i += 1;
    }
    t
}

const fn build_ulaw_dec() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode_calc(i as u8);
        i += 1;
    }
    t
}

const fn build_alaw_dec() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode_calc(i as u8);
        i += 1;
    }
    t
}

static ULAW_ENC: [u8; 16384] = build_ulaw_enc();
static ALAW_ENC: [u8; 8192] = build_alaw_enc();
static ULAW_DEC: [i16; 256] = build_ulaw_dec();
static ALAW_DEC: [i16; 256] = build_alaw_dec();

/// µ-law code of a 16-bit linear sample. The sample is rounded (not truncated) to the
/// 14 bits G.711 µ-law takes, as sox does, so the codes match sox's output exactly.
#[inline]
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    let v = ((i32::from(pcm) + 2) >> 2).min(8191);
    // v + 8192 is in 0..16384 for every i16, so the mask never changes the index.
    ULAW_ENC[(v + 8192) as usize & 0x3FFF]
}

/// 16-bit linear value of a µ-law code.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DEC[code as usize]
}

/// A-law code of a 16-bit linear sample, rounded to A-law's 13-bit input like sox.
#[inline]
pub fn linear_to_alaw(pcm: i16) -> u8 {
    let v = ((i32::from(pcm) + 4) >> 3).min(4095);
    ALAW_ENC[(v + 4096) as usize & 0x1FFF]
}

/// 16-bit linear value of an A-law code.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DEC[code as usize]
}

/// Which companding law a G.711 coder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// µ-law, PCMU, payload type 0.
    Ulaw,
    /// A-law, PCMA, payload type 8.
    Alaw,
}

/// G.711 encoder: one byte per 8 kHz sample, any frame length.
#[derive(Debug)]
pub struct G711Encoder {
    law: Law,
}

impl G711Encoder {
    /// An encoder for `law`.
    pub fn new(law: Law) -> Self {
        G711Encoder { law }
    }
}

impl Encoder for G711Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        out.reserve(pcm.len());
        match self.law {
            Law::Ulaw => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
            Law::Alaw => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
        }
        Ok(())
    }

    fn sample_rate(&self) -> u32 {
        8000
    }
}

/// G.711 decoder with pitch-repeat concealment for lost packets.
#[derive(Debug)]
pub struct G711Decoder {
    law: Law,
    plc: Plc,
}

impl G711Decoder {
    /// A decoder for `law`.
    pub fn new(law: Law) -> Self {
        G711Decoder {
            law,
            plc: Plc::new(8000),
        }
    }
}

impl Decoder for G711Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, MediaError> {
        let start = out.len();
        match self.law {
            Law::Ulaw => out.extend(payload.iter().map(|&c| ulaw_to_linear(c))),
            Law::Alaw => out.extend(payload.iter().map(|&c| alaw_to_linear(c))),
        }
        self.plc.good_frame(&mut out[start..]);
        Ok(payload.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }

    fn sample_rate(&self) -> u32 {
        8000
    }
}
