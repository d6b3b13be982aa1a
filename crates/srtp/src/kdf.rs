//! Session key derivation (RFC 3711 §4.3 with key_derivation_rate = 0; RFC 7714 §11).
//!
//! The PRF is AES in counter mode keyed with the master key. The input block is the master
//! salt XOR (label || 48 zero bits, right-aligned in 112 bits), times 2^16. GCM profiles have
//! a 96-bit master salt; as libsrtp does, it is padded with zero octets on the right to the
//! 112-bit width the PRF expects, which is what RFC 7714 §11 prescribes.

use aes::cipher::{KeyIvInit, StreamCipher};

use crate::profile::SrtpProfile;

/// Key derivation labels (RFC 3711 §4.3.1, RFC 7714 §11).
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(crate) enum Label {
    RtpEncryption = 0x00,
    RtpAuth = 0x01,
    RtpSalt = 0x02,
    RtcpEncryption = 0x03,
    RtcpAuth = 0x04,
    RtcpSalt = 0x05,
}

/// Fill `out` with the PRF output for `label`. Lengths were validated by the caller.
pub(crate) fn derive(master_key: &[u8], master_salt: &[u8], label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    let n = master_salt.len().min(14);
    iv[..n].copy_from_slice(&master_salt[..n]);
    iv[7] ^= label as u8;
    out.fill(0);
    match master_key.len() {
        32 => {
            if let Ok(mut c) = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(master_key, &iv) {
                c.apply_keystream(out);
            }
        }
        _ => {
            if let Ok(mut c) = ctr::Ctr128BE::<aes::Aes128>::new_from_slices(master_key, &iv) {
                c.apply_keystream(out);
            }
        }
    }
}

/// The six session values for one context (one direction).
pub(crate) struct SessionKeys {
    pub rtp_key: Vec<u8>,
    pub rtp_salt: Vec<u8>,
    pub rtp_auth: Vec<u8>,
    pub rtcp_key: Vec<u8>,
    pub rtcp_salt: Vec<u8>,
    pub rtcp_auth: Vec<u8>,
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.rtp_key.zeroize();
        self.rtp_salt.zeroize();
        self.rtp_auth.zeroize();
        self.rtcp_key.zeroize();
        self.rtcp_salt.zeroize();
        self.rtcp_auth.zeroize();
    }
}

impl SessionKeys {
    pub(crate) fn derive(profile: SrtpProfile, master_key: &[u8], master_salt: &[u8]) -> Self {
        let k = profile.master_key_len();
        let s = profile.master_salt_len();
        let a = profile.auth_key_len();
        let mut out = SessionKeys {
            rtp_key: vec![0; k],
            rtp_salt: vec![0; s],
            rtp_auth: vec![0; a],
            rtcp_key: vec![0; k],
            rtcp_salt: vec![0; s],
            rtcp_auth: vec![0; a],
        };
        derive(
            master_key,
            master_salt,
            Label::RtpEncryption,
            &mut out.rtp_key,
        );
        derive(master_key, master_salt, Label::RtpSalt, &mut out.rtp_salt);
        derive(
            master_key,
            master_salt,
            Label::RtcpEncryption,
            &mut out.rtcp_key,
        );
        derive(master_key, master_salt, Label::RtcpSalt, &mut out.rtcp_salt);
        if a > 0 {
            derive(master_key, master_salt, Label::RtpAuth, &mut out.rtp_auth);
            derive(master_key, master_salt, Label::RtcpAuth, &mut out.rtcp_auth);
        }
        out
    }
}
