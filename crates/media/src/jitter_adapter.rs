//! A [`Decoder`] as the jitter buffer sees it: natter-jitter only knows the small
//! [`AudioDecoder`] trait, so the phone and the WebRTC recorder hand it this adapter around
//! whichever codec they negotiated (Opus brings its native PLC and in-band FEC).

use natter_jitter::{AudioDecoder, DecodeError};

use crate::Decoder;

/// Wraps a boxed natter-media decoder for [`natter_jitter::JitterBuffer`].
pub struct JitterDecoder(pub Box<dyn Decoder>);

impl AudioDecoder for JitterDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        self.0
            .decode(payload, out)
            .map_err(|e| DecodeError::Codec(e.to_string()))
    }
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.0.conceal(samples, out)
    }
    fn decode_fec(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        self.0.decode_fec(next, samples, out)
    }
    fn has_native_plc(&self) -> bool {
        true
    }
    fn sample_rate(&self) -> u32 {
        self.0.sample_rate()
    }
}
