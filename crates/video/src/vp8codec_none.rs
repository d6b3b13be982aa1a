//! Stand-in for [`vp8codec`](crate::vp8codec) when natter is built without the `vpx`
//! feature (libvpx-dev not installed): the same API, every constructor failing with a
//! clear error, so `cargo run --release -- serve` builds with only a C compiler and
//! `natter webrtc --video --test-pattern` says why it cannot encode. Build with
//! `--features natter/vpx` (scripts/test does) for the real codec.

use std::convert::Infallible;

pub use crate::codec::{EncodedFrame, EncoderConfig};
use crate::{I420Frame, VideoError};

fn unavailable() -> VideoError {
    VideoError::Codec("built without libvpx (cargo build --features natter/vpx)".into())
}

/// VP8 encoder: unavailable in this build.
#[derive(Debug)]
pub struct Vp8Encoder {
    never: Infallible,
}

impl Vp8Encoder {
    /// Always fails: no libvpx in this build.
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

/// VP8 decoder: unavailable in this build.
#[derive(Debug)]
pub struct Vp8Decoder {
    never: Infallible,
}

impl Vp8Decoder {
    /// Always fails: no libvpx in this build.
    pub fn new() -> Result<Self, VideoError> {
        Err(unavailable())
    }

    /// Decodes one encoded frame.
    pub fn decode(&mut self, _data: &[u8]) -> Result<Vec<I420Frame>, VideoError> {
        match self.never {}
    }
}
