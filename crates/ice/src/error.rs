//! Errors returned to the application (never for bad network input, which is dropped).

/// What the application asked for could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A candidate line did not parse.
    #[error("invalid candidate: {0}")]
    InvalidCandidate(#[from] natter_sdp::Error),
    /// The candidate uses a transport or address form this agent does not support
    /// (TCP, FQDN/mDNS names).
    #[error("unsupported candidate: {0}")]
    UnsupportedCandidate(&'static str),
    /// Component id outside `1..=components`.
    #[error("no component {0}")]
    NoSuchComponent(u16),
    /// No selected pair yet (or consent was lost).
    #[error("component {0} has no usable pair")]
    NotConnected(u16),
    /// A limit on candidates or pairs was reached.
    #[error("too many {0}")]
    TooMany(&'static str),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
