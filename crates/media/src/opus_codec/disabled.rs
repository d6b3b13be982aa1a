//! Stand-ins for the libopus handles when the crate was built without libopus (see
//! `build.rs`): creating one fails with [`MediaError::Unavailable`], so the public Opus
//! types and factories keep their signatures and callers get a typed error instead of a
//! build failure.

use crate::error::MediaError;

const WHY: &str = "opus: built without libopus (install libopus-dev and rebuild)";

pub(crate) fn version() -> &'static str {
    "none"
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Application {
    Voip,
}

/// Never constructed: [`EncoderHandle::new`] always fails.
pub(crate) struct EncoderHandle(());

impl EncoderHandle {
    pub(crate) fn new(_channels: u8, _app: Application) -> Result<Self, MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
    pub(crate) fn set_bitrate(&mut self, _bps: i32) -> Result<(), MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
    pub(crate) fn set_inband_fec(&mut self, _on: bool) -> Result<(), MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
    pub(crate) fn set_packet_loss_perc(&mut self, _percent: i32) -> Result<(), MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
    pub(crate) fn set_dtx(&mut self, _on: bool) -> Result<(), MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
    pub(crate) fn encode(&mut self, _pcm: &[i16], _out: &mut [u8]) -> Result<usize, MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
}

/// Never constructed: [`DecoderHandle::new`] always fails.
pub(crate) struct DecoderHandle(());

impl DecoderHandle {
    pub(crate) fn new(_channels: u8) -> Result<Self, MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
    pub(crate) fn decode(
        &mut self,
        _packet: Option<&[u8]>,
        _pcm: &mut [i16],
        _fec: bool,
    ) -> Result<usize, MediaError> {
        Err(MediaError::Unavailable(WHY))
    }
}
