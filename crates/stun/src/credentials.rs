//! Keys for MESSAGE-INTEGRITY(-SHA256), USERHASH, and the RFC 8489 nonce cookie.
//!
//! # String preparation
//!
//! The long-term key hashes the username, realm and password after
//! **SASLprep** (RFC 4013, the `stringprep` crate): non-ASCII spaces become
//! U+0020, "commonly mapped to nothing" code points (the soft hyphen, ZWSP, ...)
//! are dropped, the result is put in NFKC, and prohibited code points
//! (controls, private use, surrogates, ...) and bad bidi text are refused.
//! RFC 8489 section 9.2.2 names the PRECIS OpaqueString profile (RFC 8265)
//! as SASLprep's successor, but its own Appendix B.1 vector (like RFC 5769's)
//! is only reproducible with SASLprep: `The<U+00AD>M<U+00AA>tr<U+2168>` must
//! become `TheMatrIX`, which needs NFKC and the map-to-nothing table that
//! OpaqueString lacks. Deployed servers (and RFC 5389 clients) use SASLprep
//! or nothing, and for printable ASCII - almost every deployed credential -
//! both profiles are the identity, so SASLprep is the interoperable choice.
//! [`opaque_string`] stays available for callers that want the PRECIS form.
//!
//! The short-term key stays unprepared: ICE credentials are random ASCII.

use std::borrow::Cow;

use md5::{Digest, Md5};
use sha2::Sha256;

use crate::attribute::PasswordAlgorithm;

/// The short-term key (RFC 8489 section 9.1.1): the password itself.
/// (No OpaqueString processing, see the module doc.)
pub fn short_term_key(password: &str) -> &[u8] {
    password.as_bytes()
}

/// Why a string cannot be prepared with SASLprep or OpaqueString.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
pub enum PrepError {
    /// A zero-length result is refused (RFC 8265 section 4.2.2; an empty
    /// SASLprep'd credential is never a real one either).
    #[error("empty string after preparation")]
    Empty,
    /// A code point the profile disallows (e.g. a control).
    #[error("disallowed code point U+{:04X}", u32::from(*.0))]
    Disallowed(char),
    /// SASLprep refused the string for its bidirectional text or a leading
    /// combining mark (RFC 3454 section 6).
    #[error("SASLprep refused the string (bidi rule or leading combining mark)")]
    Bidi,
}

/// Prepares `s` with SASLprep (RFC 4013) for the long-term key, treating it
/// as a "stored string": unassigned code points are refused too.
///
/// Printable ASCII comes back borrowed without allocating.
pub fn saslprep(s: &str) -> Result<Cow<'_, str>, PrepError> {
    if s.is_empty() {
        return Err(PrepError::Empty);
    }
    match stringprep::saslprep(s) {
        Ok(out) if out.is_empty() => Err(PrepError::Empty),
        Ok(out) => Ok(out),
        // The crate's error does not expose the code point: find it by
        // preparing each character alone; none found means a bidi/combining
        // rule on the whole string.
        Err(_) => Err(s
            .chars()
            .find(|c| {
                let mut b = [0u8; 4];
                let one: &str = c.encode_utf8(&mut b);
                stringprep::saslprep(one).is_err() && !is_combining_start(*c)
            })
            .map_or(PrepError::Bidi, PrepError::Disallowed)),
    }
}

/// A lone combining mark fails SASLprep's "no leading combining mark" rule
/// without being prohibited itself; [`saslprep`] must not blame it.
fn is_combining_start(c: char) -> bool {
    use unicode_normalization::char::is_combining_mark;
    is_combining_mark(c)
}

/// Prepares `s` with the PRECIS OpaqueString profile (RFC 8265 section 4.2).
///
/// Printable ASCII is returned borrowed without allocating: it is already in
/// NFC, has no spaces to map and nothing disallowed, which covers almost every
/// deployed credential.
pub fn opaque_string(s: &str) -> Result<Cow<'_, str>, PrepError> {
    if s.is_empty() {
        return Err(PrepError::Empty);
    }
    if s.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Ok(Cow::Borrowed(s));
    }
    use unicode_normalization::UnicodeNormalization as _;
    // Additional mapping rule: non-ASCII spaces (general category Zs) to U+0020;
    // then the normalization rule (NFC); then the FreeformClass check.
    let out: String = s
        .chars()
        .map(|c| if is_non_ascii_space(c) { ' ' } else { c })
        .nfc()
        .collect();
    if let Some(c) = out.chars().find(|&c| is_disallowed(c)) {
        return Err(PrepError::Disallowed(c));
    }
    Ok(Cow::Owned(out))
}

/// Unicode general category Zs minus U+0020.
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Code points the FreeformClass (RFC 8264 section 9) disallows, as far as this
/// crate can tell without property tables: Controls, PrecisIgnorableProperties
/// (Default_Ignorable_Code_Point and noncharacters) and OldHangulJamo.
fn is_disallowed(c: char) -> bool {
    let cp = u32::from(c);
    c.is_control()
        || (cp & 0xFFFE) == 0xFFFE
        || (0xFDD0..=0xFDEF).contains(&cp)
        || matches!(
            cp,
            0x00AD
                | 0x034F
                | 0x061C
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x206F
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFF8
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
        || matches!(
            cp,
            0x1100..=0x11FF | 0xA960..=0xA97C | 0xD7B0..=0xD7C6 | 0xD7CB..=0xD7FB
        )
}

/// Feeds `username ":" realm ":" password`, each SASLprep'd, to `h`.
fn hash_prepared<D: Digest>(
    mut h: D,
    username: &str,
    realm: &str,
    password: &str,
) -> Result<D, PrepError> {
    h.update(saslprep(username)?.as_bytes());
    h.update(b":");
    h.update(saslprep(realm)?.as_bytes());
    h.update(b":");
    h.update(saslprep(password)?.as_bytes());
    Ok(h)
}

/// Feeds the raw bytes: the fallback of the infallible key functions.
fn hash_raw<D: Digest>(mut h: D, username: &str, realm: &str, password: &str) -> D {
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h
}

/// The long-term MD5 key (RFC 8489 section 9.2.2, RFC 5389 section 15.4):
/// MD5(SASLprep(username) ":" SASLprep(realm) ":" SASLprep(password)).
pub fn try_long_term_key(
    username: &str,
    realm: &str,
    password: &str,
) -> Result<[u8; 16], PrepError> {
    Ok(hash_prepared(Md5::new(), username, realm, password)?
        .finalize()
        .into())
}

/// The long-term SHA-256 key, prepared as [`try_long_term_key`].
pub fn try_long_term_key_sha256(
    username: &str,
    realm: &str,
    password: &str,
) -> Result<[u8; 32], PrepError> {
    Ok(hash_prepared(Sha256::new(), username, realm, password)?
        .finalize()
        .into())
}

/// The long-term key for MD5 (RFC 8489 section 9.2.2, RFC 5389), prepared
/// with SASLprep. Strings the profile refuses are hashed as raw bytes, a
/// key no conforming peer derives, so authentication simply fails; use
/// [`try_long_term_key`] to learn why.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    try_long_term_key(username, realm, password).unwrap_or_else(|_| {
        hash_raw(Md5::new(), username, realm, password)
            .finalize()
            .into()
    })
}

/// The long-term key for PASSWORD-ALGORITHM SHA-256:
/// SHA-256(username ":" realm ":" password), prepared as [`long_term_key`].
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    try_long_term_key_sha256(username, realm, password).unwrap_or_else(|_| {
        hash_raw(Sha256::new(), username, realm, password)
            .finalize()
            .into()
    })
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
    #[test]
    fn opaque_string_ascii_is_borrowed_and_unchanged() {
        let p = opaque_string("alice pw!~").unwrap();
        assert!(matches!(p, Cow::Borrowed("alice pw!~")));
        assert_eq!(opaque_string(""), Err(PrepError::Empty));
        assert_eq!(opaque_string("a\tb"), Err(PrepError::Disallowed('\t')));
        assert_eq!(
            opaque_string("a\u{7F}"),
            Err(PrepError::Disallowed('\u{7F}'))
        );
    }

    #[test]
    fn opaque_string_maps_spaces_and_composes() {
        assert_eq!(opaque_string("a\u{00A0}b").unwrap(), "a b");
        assert_eq!(opaque_string("a\u{3000}b\u{2003}").unwrap(), "a b ");
        assert_eq!(opaque_string("e\u{0301}").unwrap(), "\u{00E9}");
        // No NFKC and no width mapping: compatibility characters stay.
        assert_eq!(
            opaque_string("\u{00AA}\u{2168}\u{FF21}").unwrap(),
            "\u{00AA}\u{2168}\u{FF21}"
        );
        // Soft hyphen: SASLprep maps it to nothing, OpaqueString disallows it.
        assert_eq!(
            opaque_string("I\u{00AD}X"),
            Err(PrepError::Disallowed('\u{00AD}'))
        );
        assert_eq!(
            opaque_string("a\u{200B}"),
            Err(PrepError::Disallowed('\u{200B}'))
        );
        assert_eq!(
            opaque_string("\u{FFFF}"),
            Err(PrepError::Disallowed('\u{FFFF}'))
        );
        assert_eq!(
            opaque_string("\u{85}"),
            Err(PrepError::Disallowed('\u{85}'))
        );
    }

    #[test]
    fn keys_agree_across_normalization_forms() {
        let composed = try_long_term_key("caf\u{00E9}", "r", "p\u{00A0}w").unwrap();
        let decomposed = try_long_term_key("cafe\u{0301}", "r", "p w").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(long_term_key("cafe\u{0301}", "r", "p w"), composed);
        assert_eq!(
            try_long_term_key_sha256("cafe\u{0301}", "r", "p\u{00A0}w").unwrap(),
            try_long_term_key_sha256("caf\u{00E9}", "r", "p w").unwrap()
        );
        assert_eq!(
            try_long_term_key("u", "r", "p\u{0}"),
            Err(PrepError::Disallowed('\u{0}'))
        );
        assert_eq!(
            try_long_term_key_sha256("u\u{1}", "r", "p"),
            Err(PrepError::Disallowed('\u{1}'))
        );
        // The infallible form never panics; it hashes refused input raw.
        assert_eq!(long_term_key("u", "r", "p\u{0}"), {
            let k: [u8; 16] = hash_raw(Md5::new(), "u", "r", "p\u{0}").finalize().into();
            k
        });
    }

    #[test]
    fn rfc5769_non_ascii_credentials() {
        // RFC 5769 section 2.4 / RFC 8489 Appendix B.1: the katakana username
        // passes SASLprep unchanged; the password loses its soft hyphen and
        // NFKC turns U+00AA into "a" and U+2168 into "IX".
        let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
        let raw_pw = "The\u{00AD}M\u{00AA}tr\u{2168}";
        assert_eq!(saslprep(user).unwrap(), user);
        assert_eq!(saslprep(raw_pw).unwrap(), "TheMatrIX");
        let expected: [u8; 16] = hash_raw(Md5::new(), user, "example.org", "TheMatrIX")
            .finalize()
            .into();
        assert_eq!(
            try_long_term_key(user, "example.org", raw_pw).unwrap(),
            expected
        );
        assert_eq!(long_term_key(user, "example.org", raw_pw), expected);
        assert_eq!(
            long_term_key_sha256(user, "example.org", raw_pw),
            long_term_key_sha256(user, "example.org", "TheMatrIX")
        );
    }

    #[test]
    fn saslprep_maps_and_refuses() {
        assert!(matches!(
            saslprep("alice pw!~"),
            Ok(Cow::Borrowed("alice pw!~"))
        ));
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("\u{00AA}").unwrap(), "a");
        assert_eq!(saslprep("a\u{00A0}b").unwrap(), "a b");
        assert_eq!(saslprep("\u{2168}").unwrap(), "IX");
        assert_eq!(saslprep(""), Err(PrepError::Empty));
        assert_eq!(saslprep("\u{00AD}"), Err(PrepError::Empty));
        assert_eq!(saslprep("a\u{7}"), Err(PrepError::Disallowed('\u{7}')));
        // RFC 4013 section 3 examples: a bidi string mixing RandALCat and LCat.
        assert_eq!(saslprep("\u{0627}1"), Err(PrepError::Bidi));
        assert_eq!(saslprep("\u{0627}1\u{0628}").unwrap(), "\u{0627}1\u{0628}");
    }
}
