//! The one error type of the crate: every fallible media call returns [`MediaError`].

use thiserror::Error;

/// What went wrong in a media operation. Variants carry enough to log without the input.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The codec name is not one this crate implements.
    #[error("unsupported codec {0:?}")]
    UnsupportedCodec(String),
    /// The PCM frame handed to an encoder has a length the codec cannot take.
    #[error("bad frame size: {got} samples ({why})")]
    BadFrameSize {
        /// Samples given.
        got: usize,
        /// What the codec wanted.
        why: &'static str,
    },
    /// A payload is shorter than its format's fixed part, or has a dangling byte.
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
    /// libopus refused an operation.
    #[error("opus: {0}")]
    Opus(String),
    /// The codec exists but this build cannot provide it, e.g. Opus compiled without
    /// libopus. The text says what to install.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A character that has no RFC 4733 event code.
    #[error("not a DTMF digit: {0:?}")]
    InvalidDigit(char),
    /// A sample rate of zero, or one the component cannot work at.
    #[error("unsupported sample rate {0}")]
    BadRate(u32),
    /// Reading or writing a WAV file failed.
    #[error("wav: {0}")]
    Wav(String),
}

impl From<hound::Error> for MediaError {
    fn from(e: hound::Error) -> Self {
        MediaError::Wav(e.to_string())
    }
}
