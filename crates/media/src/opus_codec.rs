//! Opus through libopus (the `opus` crate): mono at 48 kHz in both directions.
//!
//! The decoder is created with one channel even when the SDP says `opus/48000/2`:
//! RFC 7587 makes the `/2` a fixed label, and libopus downmixes stereo packets itself,
//! so a peer that really sends stereo still plays.

use crate::codec::{Decoder, Encoder};
use crate::error::MediaError;

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
    inner: opus::Encoder,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// A VOIP-application encoder configured by `settings`.
    pub fn new(settings: OpusSettings) -> Result<Self, MediaError> {
        let mut inner = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_inband_fec(settings.fec)?;
        if settings.fec {
            inner.set_packet_loss_perc(FEC_LOSS_HINT_PERCENT)?;
        }
        inner.set_dtx(settings.dtx)?;
        if let Some(bps) = settings.bitrate {
            let bps = i32::try_from(bps.clamp(6000, 510_000)).unwrap_or(510_000);
            inner.set_bitrate(opus::Bitrate::Bits(bps))?;
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
    inner: opus::Decoder,
    buf: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A one-channel decoder at 48 kHz.
    pub fn new() -> Result<Self, MediaError> {
        Ok(OpusDecoder {
            inner: opus::Decoder::new(48000, opus::Channels::Mono)?,
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
        let n = self.inner.decode(payload, &mut self.buf, false)?;
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
            match self.inner.decode(&[], buf, false) {
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
        if next_payload.is_empty() || samples == 0 || samples > MAX_FRAME || samples % 120 != 0 {
            return false;
        }
        let Some(buf) = self.buf.get_mut(..samples) else {
            return false;
        };
        match self.inner.decode(next_payload, buf, true) {
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
