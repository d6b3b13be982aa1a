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
//!
//! ```
//! use std::time::Instant;
//! use natter_dtls::{srtp_keys, DtlsCertificate, DtlsEndpoint, DtlsEvent, DtlsRole};
//!
//! let (ours, theirs) = (DtlsCertificate::generate()?, DtlsCertificate::generate()?);
//! let now = Instant::now();
//! // Our a=setup:active makes us the client; the peer's a=fingerprint is checked.
//! let role = DtlsRole::from_setup("active").expect("final setup value");
//! let mut us = DtlsEndpoint::new(role, &ours, Some(theirs.fingerprint_sha256()), now)?;
//! let mut peer = DtlsEndpoint::new(DtlsRole::Server, &theirs, Some(ours.fingerprint_sha256()), now)?;
//! while !us.is_connected() {
//!     // A real caller sends these over the ICE-selected path and also calls
//!     // handle_timeout(now) when poll_timeout() is due.
//!     while let Some(d) = us.poll_datagram() { peer.handle_datagram(&d, now)?; }
//!     while let Some(d) = peer.poll_datagram() { us.handle_datagram(&d, now)?; }
//! }
//! let Some(DtlsEvent::Connected { profile_id, keying_material, .. }) = us.poll_event() else {
//!     panic!("expected Connected");
//! };
//! let (tx_key, tx_salt, rx_key, rx_salt) =
//!     srtp_keys(profile_id, &keying_material, role.is_client()).expect("known profile");
//! assert_eq!((tx_key.len(), tx_salt.len(), rx_key.len(), rx_salt.len()), (16, 12, 16, 12));
//! # Ok::<(), natter_dtls::DtlsError>(())
//! ```

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
