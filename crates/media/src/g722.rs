//! ITU-T G.722 at 64 kbit/s (mode 1): 16 kHz audio split by a 24-tap QMF into a
//! 0–4 kHz band coded with 6-bit ADPCM and a 4–8 kHz band coded with 2-bit ADPCM; one
//! byte per pair of input samples (`high << 6 | low`).
//!
//! Written from the algorithm description of the Recommendation (blocks 1L–4L, 1H–4H,
//! the QMF and its fixed tables). Arithmetic is the Recommendation's 16-bit fixed point
//! with saturation, so the stream interoperates with other implementations; RTP carries
//! it with an 8000 Hz clock although the audio is 16 kHz (RFC 3551 §4.5.2).

use crate::codec::{Decoder, Encoder};
use crate::error::MediaError;
use crate::plc::Plc;

/// Even taps h0, h2, …, h22 of the symmetric 24-tap QMF (the odd ones are these reversed).
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Lower-band quantiser decision levels (block 1L), scaled by the step size.
const Q6: [i32; 31] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0,
];
/// 6-bit codes for negative differences, by decision interval.
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
/// 6-bit codes for positive differences, by decision interval.
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// Inverse quantiser with the 4-bit (truncated) lower-band code, used for adaptation.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// Inverse quantiser with the full 6-bit lower-band code, used for output at 64 kbit/s.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Lower-band log scale factor multipliers, by magnitude class.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Magnitude class of a 4-bit lower-band code.
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Antilog table of the scale factor (block 3L/3H).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Higher-band inverse quantiser.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Higher-band log scale factor multipliers.
const WH: [i32; 3] = [0, -214, 798];
/// Magnitude class of a higher-band code.
const RH2: [i32; 4] = [2, 1, 2, 1];
/// Higher-band codes for negative / positive differences by interval.
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];

#[inline]
fn sat(v: i32) -> i32 {
    v.clamp(-32768, 32767)
}

/// Sign bit of a 16-bit quantity as the Recommendation compares it (0 counts positive).
#[inline]
fn neg(v: i32) -> bool {
    v < 0
}

/// Adaptive predictor and scale factor of one sub-band (blocks 3 and 4).
#[derive(Debug, Clone, Default)]
struct Band {
    /// Signal estimate (sp + sz) for the next sample.
    s: i32,
    sp: i32,
    sz: i32,
    /// Reconstructed signal, newest first.
    r: [i32; 3],
    /// Pole coefficients a1, a2 (index 0 unused).
    a: [i32; 3],
    /// Partial reconstructed signal (d + sz), newest first.
    p: [i32; 3],
    /// Quantised differences, newest first.
    d: [i32; 7],
    /// Zero coefficients b1..b6 (index 0 unused).
    b: [i32; 7],
    /// Log scale factor.
    nb: i32,
    /// Quantiser step size.
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Band {
            det,
            ..Band::default()
        }
    }

    /// Block 3: log scale factor update and step size from the antilog table.
    fn adapt_scale(&mut self, w: i32, nb_max: i32, shift_base: i32) {
        let nb = ((self.nb * 127) >> 7) + w;
        self.nb = nb.clamp(0, nb_max);
        let idx = ((self.nb >> 6) & 31) as usize;
        let shift = shift_base - (self.nb >> 11);
        let mant = ILB[idx];
        let v = if shift < 0 {
            mant << (-shift)
        } else {
            mant >> shift
        };
        self.det = v << 2;
    }

    /// Block 4: update the pole-zero predictor with the new quantised difference `dq`
    /// and compute the signal estimate for the next sample.
    fn update_predictor(&mut self, dq: i32) {
        // RECONS and PARREC: reconstructed and partially reconstructed signal.
        let r0 = sat(self.s + dq);
        let p0 = sat(self.sz + dq);

        // UPPOL2: second pole coefficient.
        let s0 = neg(p0);
        let s1 = neg(self.p[0]);
        let s2 = neg(self.p[1]);
        let wd1 = sat(self.a[1] << 2);
        let wd2 = if s0 == s1 { -wd1 } else { wd1 }.min(32767);
        let mut a2 = (wd2 >> 7) + if s0 == s2 { 128 } else { -128 };
        a2 += (self.a[2] * 32512) >> 15;
        let a2 = a2.clamp(-12288, 12288);

        // UPPOL1: first pole coefficient, kept inside the stability triangle.
        let mut a1 = sat(if s0 == s1 { 192 } else { -192 } + ((self.a[1] * 32640) >> 15));
        let lim = sat(15360 - a2);
        a1 = a1.clamp(-lim, lim);

        // UPZERO: sign-sign update of the six zero coefficients.
        let step = if dq == 0 { 0 } else { 128 };
        let sd = neg(dq);
        // b[i] (i = 1..=6) moves towards agreement of sign(dq) with sign(d[i-1]).
        let mut b = [0i32; 7];
        for ((new, &old), &past) in b[1..].iter_mut().zip(&self.b[1..]).zip(&self.d[..6]) {
            let delta = if neg(past) == sd { step } else { -step };
            *new = sat(delta + ((old * 32640) >> 15));
        }

        // DELAYA: shift the delay lines.
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
        }
        self.d[0] = dq;
        self.b = b;
        self.r = [r0, self.r[0], self.r[1]];
        self.p = [p0, self.p[0], self.p[1]];
        self.a[1] = a1;
        self.a[2] = a2;

        // FILTEP: pole section over the two latest reconstructed samples.
        let t1 = (a1 * sat(self.r[0] + self.r[0])) >> 15;
        let t2 = (a2 * sat(self.r[1] + self.r[1])) >> 15;
        self.sp = sat(t1 + t2);

        // FILTEZ: zero section over the six latest differences.
        let mut sz = 0;
        for (&b, &d) in self.b[1..].iter().zip(&self.d[..6]) {
            sz += (b * sat(d + d)) >> 15;
        }
        self.sz = sat(sz);

        // PREDIC
        self.s = sat(self.sp + self.sz);
    }
}

/// QMF delay line shared by the analysis (encoder) and synthesis (decoder) filters.
#[derive(Debug, Clone, Default)]
struct Qmf {
    x: [i32; 24],
}

impl Qmf {
    /// Shifts two samples in and returns the two polyphase sums (odd-tap, even-tap).
    fn push(&mut self, a: i32, b: i32) -> (i32, i32) {
        self.x.copy_within(2.., 0);
        self.x[22] = a;
        self.x[23] = b;
        let mut even_taps = 0i32;
        let mut odd_taps = 0i32;
        for i in 0..12 {
            even_taps += self.x[2 * i] * QMF[i];
            odd_taps += self.x[2 * i + 1] * QMF[11 - i];
        }
        (even_taps, odd_taps)
    }
}

/// G.722 64 kbit/s encoder; takes 16 kHz PCM with an even number of samples.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    qmf: Qmf,
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// A fresh encoder in the Recommendation's reset state.
    pub fn new() -> Self {
        G722Encoder {
            qmf: Qmf::default(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Encodes one pair of 16 kHz samples into one G.722 byte.
    fn encode_pair(&mut self, s0: i16, s1: i16) -> u8 {
        // Transmit QMF: split into 8 kHz low and high sub-band samples.
        let (sum_odd, sum_even) = self.qmf.push(i32::from(s0), i32::from(s1));
        let xlow = (sum_even + sum_odd) >> 14;
        let xhigh = (sum_even - sum_odd) >> 14;

        // Block 1L: 6-bit quantisation of the lower-band prediction error.
        let el = sat(xlow - self.low.s);
        let mag = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && mag >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };

        // Block 2L: inverse-quantise the 4-bit truncated code for the predictor.
        let ril = (ilow >> 2) as usize;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        // Block 3L and 4L.
        self.low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
        self.low.update_predictor(dlow);

        // Block 1H: 2-bit quantisation of the higher-band prediction error.
        let eh = sat(xhigh - self.high.s);
        let mag = if eh >= 0 { eh } else { -(eh + 1) };
        let threshold = (564 * self.high.det) >> 12;
        let mih = if mag >= threshold { 2 } else { 1 };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };

        // Blocks 2H, 3H, 4H.
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        self.high
            .adapt_scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
        self.high.update_predictor(dhigh);

        ((ihigh << 6) | ilow) as u8
    }
}

impl Encoder for G722Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        if pcm.len() % 2 != 0 {
            return Err(MediaError::BadFrameSize {
                got: pcm.len(),
                why: "G.722 codes sample pairs; need an even count",
            });
        }
        out.reserve(pcm.len() / 2);
        for pair in pcm.chunks_exact(2) {
            let byte = self.encode_pair(pair[0], pair[1]);
            out.push(byte);
        }
        Ok(())
    }

    fn sample_rate(&self) -> u32 {
        16000
    }
}

/// G.722 64 kbit/s decoder producing 16 kHz PCM, with pitch-repeat concealment.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    qmf: Qmf,
    low: Band,
    high: Band,
    plc: Plc,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A fresh decoder in the Recommendation's reset state.
    pub fn new() -> Self {
        G722Decoder {
            qmf: Qmf::default(),
            low: Band::new(32),
            high: Band::new(8),
            plc: Plc::new(16000),
        }
    }

    /// Decodes one G.722 byte into two 16 kHz samples.
    fn decode_byte(&mut self, code: u8) -> [i16; 2] {
        let ilr = usize::from(code & 0x3F);
        let ihigh = usize::from(code >> 6);

        // Block 5L: output reconstruction with the full 6-bit code.
        let wd = (self.low.det * QM6[ilr]) >> 15;
        let rlow = (self.low.s + wd).clamp(-16384, 16383);
        // Blocks 2L–4L: adaptation with the 4-bit code, as the encoder did.
        let ril = ilr >> 2;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
        self.low.update_predictor(dlow);

        // Higher band.
        let dhigh = (self.high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        self.high.adapt_scale(WH[RH2[ihigh] as usize], 22528, 10);
        self.high.update_predictor(dhigh);

        // Receive QMF: recombine the sub-bands into two 16 kHz samples.
        let (xout2, xout1) = self.qmf.push(rlow + rhigh, rlow - rhigh);
        [sat(xout1 >> 11) as i16, sat(xout2 >> 11) as i16]
    }
}

impl Decoder for G722Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, MediaError> {
        let start = out.len();
        out.reserve(payload.len() * 2);
        for &b in payload {
            let pair = self.decode_byte(b);
            out.extend_from_slice(&pair);
        }
        self.plc.good_frame(&mut out[start..]);
        Ok(payload.len() * 2)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }

    fn sample_rate(&self) -> u32 {
        16000
    }
}
