//! Typed errors for SRTP/SRTCP processing.

use thiserror::Error;

/// Why a packet could not be protected or unprotected, or a context could not be built.
///
/// Receivers usually drop the packet on any of these; the variants are distinct so that a
/// caller can count replays separately from forgeries (the first is normal on a lossy
/// network with retransmission, the second is an attack or a key mismatch).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SrtpError {
    /// The packet is shorter than its header, trailer and tag require.
    #[error("packet too short")]
    TooShort,
    /// The packet is not an RTP version 2 packet, or its header (CSRCs, extension) runs past
    /// the end.
    #[error("malformed RTP/RTCP header")]
    Malformed,
    /// The authentication tag did not verify (forgery, corruption or wrong keys).
    #[error("authentication failed")]
    AuthFailed,
    /// The packet index was already seen or is older than the replay window.
    #[error("replayed or too old packet")]
    Replayed,
    /// The master key length does not match the profile.
    #[error("bad master key length: expected {expected}, got {got}")]
    BadKeyLength {
        /// What the profile needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The master salt length does not match the profile.
    #[error("bad master salt length: expected {expected}, got {got}")]
    BadSaltLength {
        /// What the profile needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// DTLS keying material of the wrong size for the profile.
    #[error("bad keying material length: expected {expected}, got {got}")]
    BadKeyingMaterialLength {
        /// `2 * (key + salt)` for the profile.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The two SDES keys of a session name different crypto suites.
    #[error("local and remote SDES keys use different profiles")]
    ProfileMismatch,
    /// The packet index space (2^48 for SRTP, 2^31 for SRTCP) is used up: the key must be
    /// replaced before sending more (RFC 3711 §9.2).
    #[error("packet index exhausted; rekey required")]
    IndexExhausted,
}
