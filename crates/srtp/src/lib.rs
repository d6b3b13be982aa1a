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
//! ```
//! use natter_srtp::{SdesKey, SrtpProfile, SrtpSession};
//!
//! let mut rng = rand::thread_rng();
//! let profile = SrtpProfile::AesCm128HmacSha1_80;
//! // Offer: put our key in `a=crypto:`; answer: read theirs.
//! let ours = SdesKey::generate(profile, &mut rng);
//! let theirs = SdesKey::generate(profile, &mut rng);
//! let offer_line = ours.crypto_attribute_value(1);
//! let (_tag, seen_by_peer) = SdesKey::parse_crypto_attribute(&offer_line).unwrap();
//!
//! let mut me = SrtpSession::from_sdes(&ours, &theirs).unwrap();
//! let mut peer = SrtpSession::from_sdes(&theirs, &seen_by_peer).unwrap();
//!
//! // Keep capacity for the tag so the in-place path never allocates.
//! let mut packet = Vec::with_capacity(1500);
//! packet.extend_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0xd5, 0xd5]);
//! let plain = packet.clone();
//! me.protect_rtp_in_place(&mut packet).unwrap();
//! assert_eq!(packet.len(), plain.len() + profile.rtp_auth_tag_len());
//! peer.unprotect_rtp_in_place(&mut packet).unwrap();
//! assert_eq!(packet, plain);
//! ```
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
