//! SRTP and SRTCP (RFC 3711, AES-GCM per RFC 7714) and SDES keying (RFC 4568) for Natter.
//!
//! Sans-IO: contexts take packets as bytes and return bytes; there is no clock, socket or
//! global state. One [`SrtpContext`] handles one direction; [`SrtpSession`] pairs two and
//! knows how SDES and DTLS-SRTP (RFC 5764 §4.2) assign keys to directions.
//!
//! Crypto backends: AES-CM and the key derivation use RustCrypto (`aes` + `ctr`, `hmac` +
//! `sha1`); AES-GCM uses `ring`, which measured faster than RustCrypto's `aes-gcm` for
//! 160-octet packets (`cargo test --release -p natter-srtp -- --ignored bench`).
//!
//! Not implemented: MKI, key derivation rate other than zero, NULL cipher, encrypted header
//! extensions (RFC 6904) and cryptex.

mod base64;
mod cm;
mod context;
mod error;
mod gcm;
mod header;
mod kdf;
mod profile;
mod replay;
mod sdes;
mod session;
mod streams;

#[cfg(test)]
mod vectors;

pub use context::SrtpContext;
pub use error::SrtpError;
pub use profile::SrtpProfile;
pub use replay::REPLAY_WINDOW;
pub use sdes::{SdesError, SdesKey};
pub use session::{SrtpSession, DTLS_SRTP_EXPORTER_LABEL};
pub use streams::MAX_SSRCS;
