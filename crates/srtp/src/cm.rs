//! AES-128 counter mode with HMAC-SHA1 (RFC 3711 §4.1.1, §4.2.1).
//!
//! The expanded AES key schedule and the keyed HMAC state are computed once per context;
//! each packet clones them (a memcpy) instead of re-running the key schedule or hashing the
//! HMAC pads again. Nothing here allocates.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Session keys of one SRTP or SRTCP stream direction for AES-CM/HMAC-SHA1.
#[derive(Clone)]
pub(crate) struct CmKeys {
    aes: aes::Aes128,
    salt: [u8; 14],
    mac: Hmac<Sha1>,
}

impl CmKeys {
    /// Lengths are checked by the caller (16-octet key, 14-octet salt, 20-octet auth key);
    /// `None` only if they were not.
    pub(crate) fn new(key: &[u8], salt: &[u8], auth_key: &[u8]) -> Option<Self> {
        Some(CmKeys {
            aes: aes::Aes128::new_from_slice(key).ok()?,
            salt: salt.try_into().ok()?,
            mac: <Hmac<Sha1> as Mac>::new_from_slice(auth_key).ok()?,
        })
    }

    /// The counter-mode IV: (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
    pub(crate) fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        // The low 48 bits of the index, big-endian, in octets 8..14.
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        iv
    }

    /// XOR the keystream starting at `iv` into `data` (encrypts and decrypts alike).
    pub(crate) fn apply(&self, iv: &[u8; 16], data: &mut [u8]) {
        let core = ctr::CtrCore::<aes::Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.aes.clone(),
            iv.into(),
        );
        let mut c = Aes128Ctr::from_core(core);
        c.apply_keystream(data);
    }

    /// Full 20-octet HMAC-SHA1 of `data || trailer`.
    pub(crate) fn tag(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut m = self.mac.clone();
        m.update(data);
        m.update(trailer);
        m.finalize().into_bytes().into()
    }

    /// Constant-time check of a truncated tag over `data || trailer`.
    pub(crate) fn verify(&self, data: &[u8], trailer: &[u8], tag: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(data);
        m.update(trailer);
        m.verify_truncated_left(tag).is_ok()
    }
}
