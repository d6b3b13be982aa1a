//! Opus through the system libopus: mono at 48 kHz in both directions.
//!
//! The decoder is created with one channel even when the SDP says `opus/48000/2`:
//! RFC 7587 makes the `/2` a fixed label, and libopus downmixes stereo packets itself,
//! so a peer that really sends stereo still plays.
//!
//! libopus is optional at build time: without it (`build.rs` found no library, or
//! `NATTER_NO_OPUS=1`) the types below still exist but their constructors return
//! [`MediaError::Unavailable`]; [`opus_available`] says which build this is, so the
//! phone can leave Opus out of its offer. The packet inspection helpers
//! ([`packet_has_fec`], [`is_dtx_packet`]) are pure Rust and always work.

#[cfg(not(natter_opus))]
mod disabled;
#[cfg(natter_opus)]
mod libopus;

#[cfg(not(natter_opus))]
use disabled as backend;
#[cfg(natter_opus)]
use libopus as backend;

use crate::codec::{Decoder, Encoder};
use crate::error::MediaError;
use backend::{Application, DecoderHandle, EncoderHandle};

/// Whether this build links libopus, i.e. whether Opus encoders and decoders can be
/// created. Fixed at build time.
pub fn opus_available() -> bool {
    cfg!(natter_opus)
}

/// Version string of the linked libopus (e.g. `libopus 1.3.1`), or `"none"` when built
/// without it; for logs and `--version` output.
pub fn opus_version() -> &'static str {
    backend::version()
}

/// Largest Opus packet we produce; RFC 6716 allows up to 1275 bytes per frame.
const MAX_PACKET: usize = 1500;
/// Longest frame libopus can return: 120 ms at 48 kHz.
const MAX_FRAME: usize = 5760;
/// Loss rate hint given to the encoder when in-band FEC is on, so it spends bits on it.
const FEC_LOSS_HINT_PERCENT: i32 = 10;

/// Opus encoder settings beyond the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpusSettings {
    /// Enable in-band FEC (LBRR) and tell the encoder to expect some loss.
    pub fec: bool,
    /// Enable discontinuous transmission: silence becomes tiny (≤ 2 byte) packets that
    /// the caller may choose not to send.
    pub dtx: bool,
    /// Target bitrate in bit/s; `None` leaves libopus's automatic choice.
    pub bitrate: Option<u32>,
}

/// Mono 48 kHz Opus encoder in VOIP mode.
pub struct OpusEncoder {
    inner: EncoderHandle,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// A VOIP-application encoder configured by `settings`. Fails with
    /// [`MediaError::Unavailable`] in a build without libopus.
    pub fn new(settings: OpusSettings) -> Result<Self, MediaError> {
        let mut inner = EncoderHandle::new(1, Application::Voip)?;
        inner.set_inband_fec(settings.fec)?;
        if settings.fec {
            inner.set_packet_loss_perc(FEC_LOSS_HINT_PERCENT)?;
        }
        inner.set_dtx(settings.dtx)?;
        if let Some(bps) = settings.bitrate {
            let bps = i32::try_from(bps.clamp(6000, 510_000)).unwrap_or(510_000);
            inner.set_bitrate(bps)?;
        }
        Ok(OpusEncoder {
            inner,
            buf: vec![0; MAX_PACKET],
        })
    }
}

/// Frame lengths (samples at 48 kHz) Opus accepts: 2.5, 5, 10, 20, 40, 60 ms.
fn valid_frame(len: usize) -> bool {
    matches!(len, 120 | 240 | 480 | 960 | 1920 | 2880)
}

impl Encoder for OpusEncoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        if !valid_frame(pcm.len()) {
            return Err(MediaError::BadFrameSize {
                got: pcm.len(),
                why: "Opus needs 2.5/5/10/20/40/60 ms at 48 kHz",
            });
        }
        let n = self.inner.encode(pcm, &mut self.buf)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or(&[]));
        Ok(())
    }

    fn sample_rate(&self) -> u32 {
        48000
    }
}

/// Mono 48 kHz Opus decoder with libopus PLC and FEC recovery.
pub struct OpusDecoder {
    inner: DecoderHandle,
    buf: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A one-channel decoder at 48 kHz. Fails with [`MediaError::Unavailable`] in a
    /// build without libopus.
    pub fn new() -> Result<Self, MediaError> {
        Ok(OpusDecoder {
            inner: DecoderHandle::new(1)?,
            buf: vec![0; MAX_FRAME],
        })
    }
}

/// Round a concealment request to what libopus accepts: a multiple of 2.5 ms, at most
/// 120 ms.
fn plc_len(samples: usize) -> usize {
    (samples.div_ceil(120) * 120).clamp(120, MAX_FRAME)
}

impl Decoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, MediaError> {
        if payload.is_empty() {
            // An empty slice would mean "conceal" to libopus; an empty RTP payload is
            // simply nothing.
            return Ok(0);
        }
        let n = self.inner.decode(Some(payload), &mut self.buf, false)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or(&[]));
        Ok(n)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let mut left = samples;
        while left > 0 {
            let want = plc_len(left.min(MAX_FRAME));
            let Some(buf) = self.buf.get_mut(..want) else {
                break;
            };
            match self.inner.decode(None, buf, false) {
                Ok(n) if n > 0 => {
                    let take = n.min(left);
                    out.extend_from_slice(buf.get(..take).unwrap_or(&[]));
                    left -= take;
                }
                _ => {
                    out.resize(out.len() + left, 0);
                    break;
                }
            }
        }
    }

    fn decode_fec(&mut self, next_payload: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        if samples == 0 || samples > MAX_FRAME || samples % 120 != 0 {
            return false;
        }
        // libopus would quietly fall back to PLC; say "no FEC" so the caller knows.
        if !packet_has_fec(next_payload) {
            return false;
        }
        let Some(buf) = self.buf.get_mut(..samples) else {
            return false;
        };
        match self.inner.decode(Some(next_payload), buf, true) {
            Ok(n) if n == samples => {
                out.extend_from_slice(buf);
                true
            }
            _ => false,
        }
    }

    fn sample_rate(&self) -> u32 {
        48000
    }
}

/// True when an Opus packet is (nearly) empty, as DTX produces during silence: the
/// sender may skip transmitting it and the receiver treats the gap as comfort noise.
pub fn is_dtx_packet(packet: &[u8]) -> bool {
    packet.len() <= 2
}

/// Whether `packet`'s first frame carries LBRR (in-band FEC) data for the frame before.
///
/// Only SILK and hybrid frames can; CELT-only ones never do. For those, the SILK
/// header at the very start of the range-coded frame is one VAD bit per 20 ms SILK
/// frame followed by the LBRR flag, each coded as an equiprobable bit (RFC 6716
/// §4.2.3), so a few steps of the range decoder (§4.1) read it without decoding audio.
/// libopus 1.3 has no call for this (`opus_packet_has_lbrr` came in 1.5).
pub fn packet_has_fec(packet: &[u8]) -> bool {
    let Some((&toc, rest)) = packet.split_first() else {
        return false;
    };
    let config = toc >> 3;
    if config >= 16 {
        return false; // CELT-only
    }
    let frame_ms = if config < 12 {
        [10, 20, 40, 60][usize::from(config % 4)]
    } else {
        [10, 20][usize::from(config % 2)]
    };
    let silk_frames = (frame_ms / 20).max(1);
    // Locate the first Opus frame (RFC 6716 §3.2).
    let first: &[u8] = match toc & 3 {
        0 | 1 => rest,
        2 => match rest {
            [l0, tail @ ..] if *l0 < 252 => tail,
            [_, _, tail @ ..] => tail,
            _ => return false,
        },
        // Code 3 (several frames, padding, VBR lengths) is rare for VoIP; read the
        // frame-count byte and, for CBR without padding, the data that follows.
        _ => match rest {
            [fc, tail @ ..] if fc & 0xC0 == 0 => tail,
            _ => return false,
        },
    };
    if first.is_empty() {
        return false;
    }
    let mut rd = RangeBits::new(first);
    for _ in 0..silk_frames {
        rd.bit(); // VAD flags
    }
    rd.bit()
}

/// The first few steps of the RFC 6716 range decoder, enough for equiprobable bits.
struct RangeBits<'a> {
    data: &'a [u8],
    pos: usize,
    rng: u32,
    val: u32,
    rem: u32,
}

impl<'a> RangeBits<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut d = RangeBits {
            data,
            pos: 0,
            rng: 128,
            val: 0,
            rem: 0,
        };
        d.rem = d.next_byte();
        d.val = d.rng - 1 - (d.rem >> 1);
        d.normalize();
        d
    }

    fn next_byte(&mut self) -> u32 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        u32::from(b)
    }

    fn normalize(&mut self) {
        while self.rng <= 1 << 23 {
            self.rng <<= 8;
            let sym = self.rem;
            self.rem = self.next_byte();
            let sym = ((sym << 8) | self.rem) >> 1;
            self.val = ((self.val << 8) + (255 & !sym)) & 0x7FFF_FFFF;
        }
    }

    /// One bit of probability 1/2.
    fn bit(&mut self) -> bool {
        let s = self.rng >> 1;
        let one = self.val < s;
        if one {
            self.rng = s;
        } else {
            self.val -= s;
            self.rng -= s;
        }
        self.normalize();
        one
    }
}

#[cfg(all(test, natter_opus))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::backend::{Application, EncoderHandle};
    use super::OpusDecoder;
    use crate::codec::Decoder;
    use crate::level::{goertzel_power, rms};

    /// A real stereo stream (which our public encoder never makes) plays as mono: left
    /// 1 kHz, right silent, so the mono decode carries the tone at about half level.
    #[test]
    fn stereo_stream_downmixed_to_mono() {
        let mut st = EncoderHandle::new(2, Application::Audio).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        let mut inter = vec![0i16; 1920];
        let mut buf = vec![0u8; 1500];
        for f in 0..50 {
            for i in 0..960 {
                let t = f64::from(f * 960 + i) / 48000.0;
                let s = 16000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin();
                inter[2 * i as usize] = s as i16;
                inter[2 * i as usize + 1] = 0;
            }
            let n = st.encode(&inter, &mut buf).unwrap();
            assert_eq!(dec.decode(&buf[..n], &mut out).unwrap(), 960);
        }
        let tail = &out[9600..];
        assert!(goertzel_power(tail, 48000, 1000.0) > 0.7 * rms(tail).powi(2));
        assert!(rms(tail) > 2000.0, "{}", rms(tail));
    }

    /// libopus's own error text reaches the caller.
    #[test]
    fn libopus_errors_are_reported() {
        let e = EncoderHandle::new(3, Application::Voip).err().unwrap();
        assert_eq!(e.to_string(), "opus: opus_encoder_create: invalid argument");
        assert!(super::opus_version().starts_with("libopus "));
    }
}
