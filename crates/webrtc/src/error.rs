//! Errors of the WebRTC core.

use thiserror::Error;

/// A DCEP message that could not be parsed or encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DcepError {
    /// Shorter than its fixed header or its declared lengths.
    #[error("DCEP message truncated")]
    Truncated,
    /// Neither OPEN (3) nor ACK (2).
    #[error("unknown DCEP message type {0:#04x}")]
    MessageType(u8),
    /// A channel type RFC 8832 does not define.
    #[error("unknown DCEP channel type {0:#04x}")]
    ChannelType(u8),
    /// Label or protocol is not UTF-8.
    #[error("DCEP label or protocol is not UTF-8")]
    Utf8,
    /// Label or protocol longer than 65535 bytes.
    #[error("DCEP label or protocol too long")]
    TooLong,
}

/// Why a description could not be applied or created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsepError {
    /// Not parseable SDP.
    #[error("SDP: {0}")]
    Sdp(String),
    /// A required attribute is missing.
    #[error("remote description has no {0}")]
    Missing(&'static str),
    /// Something we cannot work with (no BUNDLE-able transport, unknown setup, ...).
    #[error("unsupported remote description: {0}")]
    Unsupported(String),
    /// The call does not fit the signaling state (answer without offer, ...).
    #[error("wrong signaling state: {0}")]
    State(&'static str),
}

/// Why sending on a data channel failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// No such channel, or it is not open.
    #[error("channel {0} is not open")]
    NotOpen(u16),
    /// Larger than the peer's a=max-message-size.
    #[error("message of {0} bytes exceeds the peer's max-message-size {1}")]
    TooLarge(usize, usize),
    /// The SCTP association refused it.
    #[error("SCTP: {0}")]
    Sctp(String),
}
