//! Stand-in for [`h264codec`](crate::h264codec) when natter is built without the `h264`
//! feature (libopenh264-dev not installed): the same API, every constructor failing with a
//! clear error, so `cargo run --release -- serve` builds with only a C compiler and
//! `natter webrtc --video-codec h264` says why it cannot encode. Build with
//! `--features natter/h264` (scripts/test does) for the real codec.

use std::convert::Infallible;

pub use crate::codec::{EncodedFrame, EncoderConfig};
use crate::{I420Frame, VideoError};

fn unavailable() -> VideoError {
    VideoError::Codec("built without OpenH264 (cargo build --features natter/h264)".into())
}

/// H.264 encoder: unavailable in this build.
#[derive(Debug)]
pub struct H264Encoder {
    never: Infallible,
}

impl H264Encoder {
    /// Always fails: no OpenH264 in this build.
    pub fn new(_config: EncoderConfig) -> Result<Self, VideoError> {
        Err(unavailable())
    }

    /// The encoder's settings.
    pub fn config(&self) -> EncoderConfig {
        match self.never {}
    }

    /// Changes the target bitrate.
    pub fn set_bitrate(&mut self, _kbps: u32) -> Result<(), VideoError> {
        match self.never {}
    }

    /// Encodes one frame.
    pub fn encode(
        &mut self,
        _frame: &I420Frame,
        _keyframe: bool,
    ) -> Result<Vec<EncodedFrame>, VideoError> {
        match self.never {}
    }
}

/// H.264 decoder: unavailable in this build.
#[derive(Debug)]
pub struct H264Decoder {
    never: Infallible,
}

impl H264Decoder {
    /// Always fails: no OpenH264 in this build.
    pub fn new() -> Result<Self, VideoError> {
        Err(unavailable())
    }

    /// Decodes one encoded frame.
    pub fn decode(&mut self, _data: &[u8]) -> Result<Vec<I420Frame>, VideoError> {
        match self.never {}
    }
}
