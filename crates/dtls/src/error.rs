//! Errors of this crate. They are plain data (`Clone`, `Eq`) so that a failure can travel
//! inside [`crate::DtlsEvent::Failed`] and be compared in tests.

/// Why a DTLS operation or association failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// The peer's certificate does not hash to the fingerprint signalled in SDP
    /// (RFC 5763 §5); the association must not be used.
    #[error("peer certificate does not match the signalled fingerprint")]
    FingerprintMismatch,
    /// The handshake did not finish within the allowed time (lost peer, or a peer that
    /// only sends noise).
    #[error("DTLS handshake timed out")]
    Timeout,
    /// The handshake finished but the peer did not agree on any SRTP protection profile
    /// we offered (use_srtp, RFC 5764 §4.1.1), so there are no SRTP keys to derive.
    #[error("no SRTP protection profile negotiated")]
    NoSrtpProfile,
    /// The handshake failed inside the TLS engine (alert, bad message, no shared cipher…).
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// The datagram is not a DTLS 1.0/1.2 record sequence (RFC 7983 demultiplexing or a
    /// broken record header); it was dropped without touching the association.
    #[error("datagram is not a DTLS record")]
    NotDtls,
    /// Application data can only be sent once the handshake has completed.
    #[error("DTLS association is not connected")]
    NotConnected,
    /// Application data larger than one DTLS record (2^14 bytes).
    #[error("application data of {0} bytes does not fit in one DTLS record")]
    TooLarge(usize),
    /// The association is closed or failed; nothing more can be done with it.
    #[error("DTLS association is closed")]
    Closed,
    /// Creating or loading a certificate or key failed.
    #[error("certificate error: {0}")]
    Certificate(String),
    /// The TLS engine could not be set up (should not happen with a working libssl).
    #[error("DTLS setup failed: {0}")]
    Setup(String),
}
