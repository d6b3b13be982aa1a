//! What the jitter buffer needs from a codec. The phone adapts its real codecs (G.711,
//! G.722, Opus, ...) to this trait so the buffer never knows codec details.

use thiserror::Error;

/// Why a payload could not be decoded. The buffer treats every failure like a lost packet
/// (it conceals the packet's duration), so the variants are for logging, not control flow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The payload does not have a shape this codec can decode.
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
    /// The codec itself failed.
    #[error("codec failure: {0}")]
    Codec(String),
}

/// A mono audio decoder as seen by the jitter buffer.
pub trait AudioDecoder {
    /// Decodes one RTP payload, appending mono PCM at [`AudioDecoder::sample_rate`] to
    /// `out`; returns the number of samples appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError>;
    /// Appends exactly `samples` samples of concealment (codec PLC or generic).
    /// Only called when [`AudioDecoder::has_native_plc`] is true.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);
    /// Recovers the frame *preceding* `next_payload` from in-band FEC (Opus LBRR), appending
    /// `samples` samples. Returns false when the payload carries no FEC.
    fn decode_fec(&mut self, _next_payload: &[u8], _samples: usize, _out: &mut Vec<i16>) -> bool {
        false
    }
    /// True when [`AudioDecoder::conceal`] is a real codec PLC; otherwise the buffer uses
    /// its own pitch-repetition concealment, which beats a codec that only makes silence.
    fn has_native_plc(&self) -> bool {
        false
    }
    /// PCM sample rate of the decoded output.
    fn sample_rate(&self) -> u32;
}
