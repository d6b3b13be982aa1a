//! SDP for Natter: the RFC 8866 session description model, a parser and writer that
//! round-trip well-formed input byte for byte, typed views of the attributes the rest of
//! Natter needs (RTP maps, ICE, DTLS, SDES, BUNDLE, ...) and RFC 3264 offer/answer.
//!
//! The model keeps every attribute verbatim (`name` and raw `value`), so attributes this
//! crate does not understand survive a parse/write cycle unchanged; typed accessors parse
//! the raw value on demand.

mod attributes;
mod candidate;
mod error;
mod negotiate;
mod parse;
mod session;
mod write;

pub use attributes::{
    Crypto, Direction, Extmap, Fingerprint, Fmtp, Group, RemoteCandidate, Rtcp, Rtpmap, Setup, Ssrc,
};
pub use candidate::{CandidateAttr, CandidateType, TcpType};
pub use error::{Error, Result};
pub use negotiate::{
    create_answer, create_offer, negotiated_codecs, Codec, MediaCapabilities, NegotiatedCodec,
};
pub use session::{
    Attribute, Bandwidth, Connection, LineEnding, Media, Origin, SessionDescription, Timing,
};

/// Upper bound on the size of a description this crate will parse; SDP bodies are small and
/// this keeps a hostile input from making us build huge models.
pub const MAX_SDP_LEN: usize = 256 * 1024;
