//! Parse and negotiation errors.

/// Why a description or attribute value could not be parsed or negotiated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Input exceeds [`crate::MAX_SDP_LEN`].
    #[error("SDP is {0} bytes, larger than the limit")]
    TooLarge(usize),
    /// Input is not UTF-8.
    #[error("SDP is not valid UTF-8")]
    NotUtf8,
    /// A line holds a NUL or a CR other than its line ending: RFC 8866's
    /// byte-string (and every other field rule) excludes NUL, CR and LF, and a
    /// stray CR would not survive being written back.
    #[error("line {line}: control character {byte:#04x} not allowed")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
        /// The offending byte.
        byte: u8,
    },
    /// A line is not of the form `<type>=<value>`.
    #[error("line {line}: not of the form <type>=<value>")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A line type letter that RFC 8866 does not define.
    #[error("line {line}: unknown line type '{kind}'")]
    UnknownLineType {
        /// 1-based line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A line appears where the grammar does not allow it (e.g. `s=` in a media section).
    #[error("line {line}: '{kind}=' not allowed here")]
    UnexpectedLine {
        /// 1-based line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A required line is missing.
    #[error("missing required '{0}=' line")]
    Missing(char),
    /// A field inside a line is malformed.
    #[error("line {line}: invalid {what}")]
    InvalidField {
        /// 1-based line number (0 when parsing a lone value).
        line: usize,
        /// Which field.
        what: &'static str,
    },
    /// An attribute value does not match its grammar.
    #[error("invalid a={0} value")]
    InvalidAttribute(&'static str),
    /// Offer/answer could not be performed.
    #[error("negotiation: {0}")]
    Negotiation(&'static str),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
