//! L16: uncompressed 16-bit PCM in network byte order (RFC 3551 §4.5.11).

use crate::codec::{Decoder, Encoder};
use crate::error::MediaError;
use crate::plc::Plc;

/// L16 encoder: big-endian samples at the configured rate.
#[derive(Debug, Clone)]
pub struct L16Encoder {
    rate: u32,
}

impl L16Encoder {
    /// An encoder for PCM at `rate` Hz (the SDP rtpmap rate).
    pub fn new(rate: u32) -> Self {
        L16Encoder { rate }
    }
}

impl Encoder for L16Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        out.reserve(pcm.len() * 2);
        for s in pcm {
            out.extend_from_slice(&s.to_be_bytes());
        }
        Ok(())
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}

/// L16 decoder with the same concealment as the other waveform codecs.
#[derive(Debug, Clone)]
pub struct L16Decoder {
    rate: u32,
    plc: Plc,
}

impl L16Decoder {
    /// A decoder for PCM at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        L16Decoder {
            rate,
            plc: Plc::new(rate),
        }
    }
}

impl Decoder for L16Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, MediaError> {
        if payload.len() % 2 != 0 {
            return Err(MediaError::Malformed("L16 payload with an odd byte count"));
        }
        let start = out.len();
        out.extend(
            payload
                .chunks_exact(2)
                .map(|b| i16::from_be_bytes([b[0], b[1]])),
        );
        self.plc.good_frame(&mut out[start..]);
        Ok(payload.len() / 2)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}
