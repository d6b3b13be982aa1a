//! Keys for MESSAGE-INTEGRITY(-SHA256), USERHASH, and the RFC 8489 nonce cookie.
//!
//! # String preparation
//!
//! RFC 8489 asks for OpaqueString (RFC 8265) on passwords and realms, and
//! RFC 5389 asked for SASLprep. Natter currently applies **no** preparation:
//! the strings are used as given, which is exact for ASCII credentials (the
//! overwhelming case, and what ICE's random ufrag/pwd are). Callers holding
//! non-ASCII credentials must normalise them before calling these functions;
//! the RFC 5769 long-term vector's password `The<U+00AD>M<U+00AA>tr<U+2168>`
//! becomes `TheMatrIX` that way.

use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::attribute::PasswordAlgorithm;

/// The short-term key (RFC 8489 section 9.1.1): the password itself.
/// (No OpaqueString processing, see the module doc.)
pub fn short_term_key(password: &str) -> &[u8] {
    password.as_bytes()
}

/// The long-term key for MD5 (RFC 8489 section 9.2.2, RFC 5389):
/// MD5(username ":" realm ":" password).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// The long-term key for PASSWORD-ALGORITHM SHA-256:
/// SHA-256(username ":" realm ":" password).
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// USERHASH value (RFC 8489 section 14.4): SHA-256(username ":" realm).
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.finalize().into()
}

/// A long-term key of either algorithm, as bytes ready for the MAC.
#[derive(Clone, Copy, Eq, PartialEq)]
pub enum LongTermKey {
    /// MD5 key (16 bytes).
    Md5([u8; 16]),
    /// SHA-256 key (32 bytes).
    Sha256([u8; 32]),
}

impl LongTermKey {
    /// Derives the key for `algorithm`; `None` for algorithms this crate lacks.
    pub fn derive(
        algorithm: PasswordAlgorithm,
        username: &str,
        realm: &str,
        password: &str,
    ) -> Option<Self> {
        match algorithm {
            PasswordAlgorithm::MD5 => Some(Self::Md5(long_term_key(username, realm, password))),
            PasswordAlgorithm::SHA256 => Some(Self::Sha256(long_term_key_sha256(
                username, realm, password,
            ))),
            _ => None,
        }
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Md5(k) => k,
            Self::Sha256(k) => k,
        }
    }
}

impl std::fmt::Debug for LongTermKey {
    /// Keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Md5(_) => f.write_str("LongTermKey::Md5(..)"),
            Self::Sha256(_) => f.write_str("LongTermKey::Sha256(..)"),
        }
    }
}

/// The nonce prefix announcing RFC 8489 security features (section 9.2).
pub const NONCE_COOKIE: &str = "obMatJos2";

/// The 24-bit STUN Security Features set carried in a nonce cookie.
///
/// Bit numbering follows verified erratum 6290 of RFC 8489: bit 0 is the
/// least significant, so "Password algorithms" is 0x000001 and "Username
/// anonymity" 0x000002 (the Appendix B.1 nonce `obMatJos2AAAC...` carries
/// 0x000002).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
pub struct SecurityFeatures(pub u32);

impl SecurityFeatures {
    /// Password algorithms (PASSWORD-ALGORITHMS negotiation).
    pub const PASSWORD_ALGORITHMS: Self = Self(1 << 0);
    /// Username anonymity (USERHASH).
    pub const USERNAME_ANONYMITY: Self = Self(1 << 1);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union of two sets.
    pub const fn union(self, other: Self) -> Self {
        Self((self.0 | other.0) & 0x00FF_FFFF)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The 13-byte nonce prefix: `obMatJos2` plus four base64 characters of the
/// feature bits. Servers append their own opaque nonce after it.
pub fn nonce_cookie(features: SecurityFeatures) -> [u8; 13] {
    let mut out = [0u8; 13];
    out[..9].copy_from_slice(NONCE_COOKIE.as_bytes());
    let v = features.0 & 0x00FF_FFFF;
    for (i, slot) in out[9..].iter_mut().enumerate() {
        let shift = 18 - 6 * i;
        // Six bits index a 64-entry table.
        *slot = B64[((v >> shift) & 0x3F) as usize];
    }
    out
}

/// If `nonce` starts with the nonce cookie, the security features it announces.
pub fn parse_nonce_cookie(nonce: &str) -> Option<SecurityFeatures> {
    let rest = nonce.as_bytes().strip_prefix(NONCE_COOKIE.as_bytes())?;
    let chars = rest.first_chunk::<4>()?;
    let mut v = 0u32;
    for c in chars {
        let d = B64.iter().position(|b| b == c)?;
        // `d` < 64.
        v = (v << 6) | d as u32;
    }
    Some(SecurityFeatures(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_cookie_round_trips() {
        let c = nonce_cookie(SecurityFeatures::USERNAME_ANONYMITY);
        assert_eq!(&c, b"obMatJos2AAAC");
        let both =
            SecurityFeatures::PASSWORD_ALGORITHMS.union(SecurityFeatures::USERNAME_ANONYMITY);
        let c = nonce_cookie(both);
        assert_eq!(&c, b"obMatJos2AAAD");
        assert_eq!(
            parse_nonce_cookie("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"),
            Some(SecurityFeatures::USERNAME_ANONYMITY)
        );
        assert_eq!(parse_nonce_cookie("obMatJos2AA"), None);
        assert_eq!(parse_nonce_cookie("plainnonce"), None);
        assert_eq!(parse_nonce_cookie("obMatJos2A!AA"), None);
    }

    #[test]
    fn long_term_key_matches_rfc5769() {
        // RFC 5769 section 2.4 parameters after preparation.
        let key = long_term_key(
            "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
            "example.org",
            "TheMatrIX",
        );
        let again = LongTermKey::derive(
            PasswordAlgorithm::MD5,
            "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
            "example.org",
            "TheMatrIX",
        );
        assert_eq!(again, Some(LongTermKey::Md5(key)));
        assert_eq!(format!("{:?}", again), "Some(LongTermKey::Md5(..))");
    }
}
