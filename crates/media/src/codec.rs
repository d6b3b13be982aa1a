//! Codec identity (names, payload types, clock rates as SDP and RTP see them) and the
//! encoder/decoder traits the phone drives.

use crate::error::MediaError;
use crate::g711::{G711Decoder, G711Encoder, Law};
use crate::g722::{G722Decoder, G722Encoder};
use crate::l16::{L16Decoder, L16Encoder};
use crate::opus_codec::{OpusDecoder, OpusEncoder, OpusSettings};

/// The audio codecs this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 64 kbit/s wideband.
    G722,
    /// Opus, mono, 48 kHz.
    Opus,
    /// Linear 16-bit PCM, network byte order, 16 kHz mono in our configuration.
    L16,
}

impl CodecKind {
    /// All codecs, in the phone's default preference order.
    pub const ALL: [CodecKind; 5] = [
        CodecKind::Opus,
        CodecKind::G722,
        CodecKind::Pcmu,
        CodecKind::Pcma,
        CodecKind::L16,
    ];

    /// The codec whose SDP encoding name is `name` (case-insensitive), if we have it.
    pub fn from_name(name: &str) -> Option<CodecKind> {
        CodecKind::ALL
            .into_iter()
            .find(|k| k.rtp_name().eq_ignore_ascii_case(name))
    }

    /// Encoding name as written in `a=rtpmap`.
    pub fn rtp_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
            CodecKind::L16 => "L16",
        }
    }

    /// RFC 3551 static payload type, where one fits our configuration. L16 has static
    /// types only for 44.1 kHz (10 stereo, 11 mono), so our 16 kHz L16 is dynamic.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::Opus | CodecKind::L16 => None,
        }
    }

    /// RTP timestamp clock. G.722 says 8000 although it samples at 16 kHz: an error in
    /// RFC 1890 kept for compatibility by RFC 3551 §4.5.2.
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8000,
            CodecKind::Opus => 48000,
            CodecKind::L16 => 16000,
        }
    }

    /// PCM rate the encoder takes and the decoder produces.
    pub fn sample_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 | CodecKind::L16 => 16000,
            CodecKind::Opus => 48000,
        }
    }

    /// Channel count written in `a=rtpmap` (RFC 7587 requires `opus/48000/2`).
    pub fn sdp_channels(self) -> Option<u8> {
        match self {
            CodecKind::Opus => Some(2),
            _ => None,
        }
    }

    /// Whether this build can create encoders and decoders for the codec: always,
    /// except Opus in a build without libopus (see [`crate::opus_available`]). The phone
    /// offers only available codecs.
    pub fn is_available(self) -> bool {
        match self {
            CodecKind::Opus => crate::opus_codec::opus_available(),
            _ => true,
        }
    }

    /// RTP timestamp ticks per PCM sample is `clock_rate / sample_rate`; this gives the
    /// ticks for a frame of `samples` PCM samples (G.722: half the sample count).
    pub fn rtp_ticks(self, samples: usize) -> u32 {
        let ticks = samples as u64 * u64::from(self.clock_rate()) / u64::from(self.sample_rate());
        u32::try_from(ticks).unwrap_or(u32::MAX)
    }
}

/// Turns mono PCM at [`Encoder::sample_rate`] into one RTP payload.
pub trait Encoder: Send {
    /// Encodes one frame, appending the payload bytes to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError>;
    /// PCM rate the encoder expects.
    fn sample_rate(&self) -> u32;
}

/// Turns RTP payloads back into mono PCM, and fills gaps when packets are lost.
pub trait Decoder: Send {
    /// Decodes one payload, appending mono PCM at [`Decoder::sample_rate`] to `out`;
    /// returns how many samples were appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, MediaError>;
    /// Appends `samples` samples that stand in for a lost packet.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);
    /// Recovers a lost packet of `samples` samples from the FEC data carried in the
    /// packet after it; returns false (appending nothing) when the codec has no FEC.
    fn decode_fec(&mut self, next_payload: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        let _ = (next_payload, samples, out);
        false
    }
    /// PCM rate of the decoder's output.
    fn sample_rate(&self) -> u32;
}

/// What the negotiated SDP says about the send codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecParams {
    /// Which codec.
    pub kind: CodecKind,
    /// Packet duration in milliseconds (`a=ptime`), usually 20.
    pub ptime_ms: u32,
    /// Opus: the peer asked for in-band FEC (`useinbandfec=1`).
    pub opus_fec: bool,
    /// Opus: the peer accepts DTX (`usedtx=1`).
    pub opus_dtx: bool,
    /// Opus: bitrate cap (`maxaveragebitrate`), if any.
    pub opus_bitrate: Option<u32>,
}

impl CodecParams {
    /// 20 ms packets, no Opus extras.
    pub fn new(kind: CodecKind) -> Self {
        CodecParams {
            kind,
            ptime_ms: 20,
            opus_fec: false,
            opus_dtx: false,
            opus_bitrate: None,
        }
    }

    /// PCM samples per packet at the codec's sample rate.
    pub fn frame_samples(&self) -> usize {
        (self.kind.sample_rate() as usize) * (self.ptime_ms as usize) / 1000
    }
}

/// An encoder for `p.kind` set up as `p` says.
pub fn new_encoder(p: &CodecParams) -> Result<Box<dyn Encoder>, MediaError> {
    Ok(match p.kind {
        CodecKind::Pcmu => Box::new(G711Encoder::new(Law::Ulaw)),
        CodecKind::Pcma => Box::new(G711Encoder::new(Law::Alaw)),
        CodecKind::G722 => Box::new(G722Encoder::new()),
        CodecKind::L16 => Box::new(L16Encoder::new(CodecKind::L16.sample_rate())),
        CodecKind::Opus => Box::new(OpusEncoder::new(OpusSettings {
            fec: p.opus_fec,
            dtx: p.opus_dtx,
            bitrate: p.opus_bitrate,
        })?),
    })
}

/// A decoder for `kind`.
pub fn new_decoder(kind: CodecKind) -> Result<Box<dyn Decoder>, MediaError> {
    Ok(match kind {
        CodecKind::Pcmu => Box::new(G711Decoder::new(Law::Ulaw)),
        CodecKind::Pcma => Box::new(G711Decoder::new(Law::Alaw)),
        CodecKind::G722 => Box::new(G722Decoder::new()),
        CodecKind::L16 => Box::new(L16Decoder::new(CodecKind::L16.sample_rate())),
        CodecKind::Opus => Box::new(OpusDecoder::new()?),
    })
}
