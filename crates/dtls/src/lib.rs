//! DTLS 1.2 for DTLS-SRTP (RFC 5763/5764) behind a small sans-IO interface.
//!
//! The media layer owns the UDP socket and the clock; a [`DtlsEndpoint`] only turns received
//! datagrams and time into datagrams to send, events, and the next deadline. Peers are
//! authenticated by the SHA-256 certificate fingerprint from SDP, not by a PKI, and the
//! result of the handshake is the negotiated SRTP profile plus the exported keying
//! material, which [`srtp_keys`] splits into per-direction keys.
//!
//! The TLS engine is the system OpenSSL (libssl 3.x) over in-memory datagrams. It was chosen
//! over a pure-Rust engine because the peers we must talk to (baresip 1.0) use RSA
//! certificates, which the pure-Rust candidate does not support. OpenSSL 3.0 has no
//! DTLS 1.3, so `version` is always "1.2"; Chromium still negotiates DTLS 1.2.

mod cert;
mod endpoint;
mod error;
mod pipe;
mod record;
mod role;
mod srtp;
mod timer;

pub use cert::{fingerprint_sha256_of_der, DtlsCertificate};
pub use endpoint::{DtlsEndpoint, DtlsEvent, HANDSHAKE_TIMEOUT};
pub use error::DtlsError;
pub use role::DtlsRole;
pub use srtp::{
    key_salt_len, keying_material_len, srtp_keys, SrtpKeys, EXPORTER_LABEL, SRTP_AEAD_AES_128_GCM,
    SRTP_AEAD_AES_256_GCM, SRTP_AES128_CM_HMAC_SHA1_32, SRTP_AES128_CM_HMAC_SHA1_80,
};
