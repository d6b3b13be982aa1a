//! Parse errors. Every variant maps to a short reason phrase a server can put
//! in a `400 Bad Request` (RFC 3261 §21.4.1 suggests saying what was wrong).

use thiserror::Error;

/// Why a message or header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Input ended before the header section was complete.
    #[error("incomplete message")]
    Incomplete,
    /// The message or a part of it exceeds a configured limit (`513`).
    #[error("message too large: {0}")]
    TooLarge(&'static str),
    /// More header fields than [`crate::Limits::max_headers`] (`400`).
    #[error("too many headers (limit {0})")]
    TooManyHeaders(usize),
    /// A header line (with its continuations) longer than
    /// [`crate::Limits::max_header_line`] (`400`).
    #[error("header line too long (limit {0} bytes)")]
    HeaderTooLong(usize),
    /// Content-Length larger than [`crate::Limits::max_body`] (`413`).
    #[error("body too large (limit {0} bytes)")]
    BodyTooLarge(usize),
    /// The start line is malformed.
    #[error("bad start line: {0}")]
    StartLine(&'static str),
    /// A header line is malformed (no colon, bad name, ...).
    #[error("bad header line")]
    HeaderLine,
    /// The header section is not valid UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// A header value does not follow its grammar.
    #[error("bad {0} header")]
    BadHeader(&'static str),
    /// A numeric or enumerated value is out of range.
    #[error("bad {0} value")]
    BadValue(&'static str),
    /// Generic syntax problem inside a value.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// A mandatory header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header that must appear once appears more than once.
    #[error("duplicate {0} header")]
    Duplicate(&'static str),
    /// A URI is malformed.
    #[error("bad URI: {0}")]
    Uri(&'static str),
    /// Content-Length disagrees with the bytes present.
    #[error("Content-Length mismatch")]
    ContentLength,
    /// SIP version other than 2.0.
    #[error("unsupported SIP version")]
    Version,
    /// CSeq method differs from the request method.
    #[error("CSeq method does not match request method")]
    CSeqMismatch,
}

impl ParseError {
    /// The final response a server answers this error with (RFC 3261 §21.4):
    /// `513 Message Too Large` for a message beyond the size limit, `413
    /// Request Entity Too Large` for a body beyond its limit, `400` otherwise
    /// (too many or too long header fields included: the message as a whole
    /// may be small, it is its header section that is refused).
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::TooLarge(_) => 513,
            ParseError::BodyTooLarge(_) => 413,
            _ => 400,
        }
    }

    /// Reason phrase for the [`ParseError::status_code`] response that says
    /// what was wrong, e.g. `Bad Request (bad Via header)`.
    pub fn reason_phrase(&self) -> String {
        let base = match self.status_code() {
            513 => "Message Too Large",
            413 => "Request Entity Too Large",
            _ => "Bad Request",
        };
        format!("{base} ({self})")
    }

    /// Attach header context to a lower-level syntax error.
    pub(crate) fn in_header(self, name: &'static str) -> ParseError {
        match self {
            ParseError::Syntax(_) | ParseError::Uri(_) | ParseError::BadValue(_) => {
                ParseError::BadHeader(name)
            }
            other => other,
        }
    }
}
