//! Typed errors for RTP and RTCP parsing and writing.

/// Why an RTP packet could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Fewer than the 12 bytes of the fixed header.
    #[error("packet shorter than the 12-byte RTP header")]
    TooShort,
    /// Version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC count promises more identifiers than the packet holds.
    #[error("CSRC list runs past the end of the packet")]
    CsrcOverrun,
    /// The header extension length runs past the end of the packet.
    #[error("header extension runs past the end of the packet")]
    ExtensionOverrun,
    /// The padding count is zero or larger than what follows the header.
    #[error("padding count {0} is zero or runs past the payload")]
    BadPadding(u8),
    /// Writing: more than 15 CSRCs.
    #[error("{0} CSRCs, at most 15 fit")]
    TooManyCsrcs(usize),
    /// Writing: payload type above 127.
    #[error("payload type {0} does not fit in 7 bits")]
    BadPayloadType(u8),
    /// Writing: an extension element neither RFC 8285 form can carry (id 0, or data
    /// longer than 255 bytes).
    #[error("header extension element {id} with {len} bytes cannot be encoded")]
    BadExtension {
        /// Element id.
        id: u8,
        /// Data length.
        len: usize,
    },
    /// Writing: the extension block exceeds the 16-bit word count.
    #[error("header extension block too long")]
    ExtensionTooLong,
    /// Writing: a padding length of zero was asked for.
    #[error("padding length must be at least 1")]
    ZeroPadding,
}

/// Why an RTCP packet could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Empty datagram.
    #[error("empty RTCP datagram")]
    Empty,
    /// A packet header or its length field runs past the end of the datagram, or a body is
    /// shorter than its type needs.
    #[error("RTCP packet truncated")]
    Truncated,
    /// Version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count is zero or larger than the packet body.
    #[error("padding count {0} is zero or runs past the body")]
    BadPadding(u8),
    /// A body whose length does not match its structure (e.g. a partial FCI entry).
    #[error("RTCP packet type {0} has an invalid length")]
    BadLength(u8),
    /// A compound packet that does not start with SR or RR and reduced-size RTCP was not
    /// allowed (RFC 3550 §6.1, RFC 5506).
    #[error("compound RTCP must start with SR or RR")]
    NotCompound,
    /// More packets, items or entries than this parser is willing to hold.
    #[error("too many RTCP packets or items")]
    TooMany,
    /// Writing: a count that does not fit its field, an SDES item of type 0 or longer
    /// than 255 bytes, or a packet longer than the 16-bit length field allows.
    #[error("RTCP packet cannot be encoded: {0}")]
    Unencodable(&'static str),
}
