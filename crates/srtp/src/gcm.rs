//! AES-GCM (RFC 7714) on top of ring's AEAD implementation.
//!
//! ring was measured against RustCrypto's `aes-gcm` on this workload (160-octet payload,
//! 12-octet AAD) and was faster; see `tests/bench.rs` and the crate README section in
//! `lib.rs`. Swapping the backend only touches this file.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};

/// Octets of GCM tag (RFC 7714 §13.2 forbids truncation).
pub(crate) const GCM_TAG_LEN: usize = 16;

/// Session keys of one SRTP or SRTCP stream direction for AES-GCM.
pub(crate) struct GcmKeys {
    key: LessSafeKey,
    salt: [u8; 12],
}

impl GcmKeys {
    /// `None` if the key is not 16 or 32 octets or the salt not 12.
    pub(crate) fn new(key: &[u8], salt: &[u8]) -> Option<Self> {
        let alg = match key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return None,
        };
        Some(GcmKeys {
            key: LessSafeKey::new(UnboundKey::new(alg, key).ok()?),
            salt: salt.try_into().ok()?,
        })
    }

    /// SRTP IV (§8.1): 00 00 || SSRC || ROC || SEQ, XOR salt.
    pub(crate) fn rtp_iv(&self, ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&roc.to_be_bytes());
        iv[10..12].copy_from_slice(&seq.to_be_bytes());
        self.xor_salt(iv)
    }

    /// SRTCP IV (§9.1): 00 00 || SSRC || 00 00 || 0 || 31-bit index, XOR salt.
    pub(crate) fn rtcp_iv(&self, ssrc: u32, index: u32) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..12].copy_from_slice(&(index & 0x7fff_ffff).to_be_bytes());
        self.xor_salt(iv)
    }

    fn xor_salt(&self, mut iv: [u8; 12]) -> [u8; 12] {
        for (d, s) in iv.iter_mut().zip(self.salt) {
            *d ^= s;
        }
        iv
    }

    /// Encrypt `data` in place and return the tag.
    pub(crate) fn seal(&self, iv: [u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; GCM_TAG_LEN] {
        let mut out = [0u8; GCM_TAG_LEN];
        // Sealing fails only for inputs beyond 2^36 octets, impossible for a datagram.
        if let Ok(tag) = self.key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad),
            data,
        ) {
            out.copy_from_slice(tag.as_ref());
        }
        out
    }

    /// Verify and decrypt `data` (ciphertext followed by the tag) in place; returns
    /// whether it authenticated. On failure `data` is left in an unspecified state.
    pub(crate) fn open(&self, iv: [u8; 12], aad: &[u8], data: &mut [u8]) -> bool {
        self.key
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), data)
            .is_ok()
    }
}
