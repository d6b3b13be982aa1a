//! Natter media: the audio pieces a softphone needs between the RTP payload and the
//! sound card or file.
//!
//! Everything here is sans-IO except [`wav`] (which reads and writes files by
//! design): codecs take and produce buffers, the DTMF sender is driven by an RTP clock
//! advance the caller passes in, noise generators take seeds. Nothing reads a clock.
//!
//! - [`codec`]: [`CodecKind`], the [`Encoder`]/[`Decoder`] traits and their factories.
//! - [`g711`], [`g722`], [`l16`], [`opus_codec`]: the codecs behind them.
//! - [`plc`]: pitch-repeat packet loss concealment for the waveform codecs.
//! - [`dtmf`]: RFC 4733 telephone-events.
//! - [`cn`]: RFC 3389 comfort noise.
//! - [`resample`], [`tone`], [`mixer`], [`level`]: signal plumbing and measurement.

pub mod cn;
pub mod codec;
pub mod dtmf;
pub mod error;
pub mod g711;
pub mod g722;
pub mod jitter_adapter;
pub mod l16;
pub mod level;
pub mod mixer;
pub mod opus_codec;
pub mod plc;
pub mod resample;
pub mod tone;
pub mod wav;

pub use cn::{CnPayload, ComfortNoise};
pub use codec::{new_decoder, new_encoder, CodecKind, CodecParams, Decoder, Encoder};
pub use dtmf::{digit_to_event, event_to_digit, DtmfEvent, DtmfReceiver, DtmfSender};
pub use error::MediaError;
pub use jitter_adapter::JitterDecoder;
pub use level::{goertzel_power, rms, rms_dbov};
pub use mixer::{LegId, Mixer};
pub use opus_codec::{opus_available, opus_version};
pub use resample::Resampler;
pub use tone::ToneGenerator;
pub use wav::{WavRecorder, WavSource};
