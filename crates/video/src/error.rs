use thiserror::Error;

/// Why a payload, file or codec call was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VideoError {
    /// The payload ended inside a header.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A field has a value the RFC does not allow or we do not support.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A y4m stream is malformed.
    #[error("y4m: {0}")]
    Y4m(String),
    /// libvpx said no.
    #[error("libvpx: {0}")]
    Codec(String),
    /// An I/O error (y4m files).
    #[error("i/o: {0}")]
    Io(String),
}

impl From<std::io::Error> for VideoError {
    fn from(e: std::io::Error) -> Self {
        VideoError::Io(e.to_string())
    }
}
