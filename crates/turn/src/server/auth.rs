//! Long-term credential support for the server: where keys come from, stateless nonces, and the
//! TURN REST API shared-secret scheme.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use natter_stun::credentials::{nonce_cookie, SecurityFeatures, NONCE_COOKIE};
use sha1::Sha1;

/// The keys of one user, as the store keeps them (`H(user:realm:password)`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UserKeys {
    /// MD5 key, for MESSAGE-INTEGRITY.
    pub md5: [u8; 16],
    /// SHA-256 key, for MESSAGE-INTEGRITY-SHA256 (absent for keys derived on the fly without it).
    pub sha256: Option<[u8; 32]>,
}

impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserKeys(..)")
    }
}

/// Where the server finds a user's keys. Implemented by the driver over the user store, static
/// users and the REST secret; `unix_now` is wall-clock seconds for expiring REST usernames.
pub trait Authenticator {
    /// The keys for `username` in `realm`, or `None` if the user is unknown (or expired).
    fn keys(&self, username: &str, realm: &str, unix_now: u64) -> Option<UserKeys>;

    /// Every key `username` may be using: more than one while a TURN REST secret is being
    /// rotated (credentials minted with the previous secret stay valid until they expire).
    /// The server accepts a message that verifies with any of them.
    fn candidate_keys(&self, username: &str, realm: &str, unix_now: u64) -> Vec<UserKeys> {
        self.keys(username, realm, unix_now).into_iter().collect()
    }
}

/// The REST API password for a `expiry:user` username: base64(HMAC-SHA1(secret, username)),
/// as coturn's `use-auth-secret` and the IETF draft-uberti-behave-turn-rest define it.
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot be taken.
        <Hmac<Sha1> as Mac>::new_from_slice(&[]).unwrap_or_else(|_| unreachable!())
    });
    mac.update(username.as_bytes());
    base64(&mac.finalize().into_bytes())
}

/// The expiry (unix seconds) encoded in a REST username (`1700000000:alice` or `1700000000`).
pub fn rest_expiry(username: &str) -> Option<u64> {
    let ts = username.split(':').next()?;
    ts.parse().ok()
}

/// Keys for a REST username if it has not expired at `unix_now`.
pub fn rest_keys(secret: &[u8], username: &str, realm: &str, unix_now: u64) -> Option<UserKeys> {
    let expiry = rest_expiry(username)?;
    if expiry < unix_now {
        return None;
    }
    let pw = rest_password(secret, username);
    Some(UserKeys {
        md5: natter_stun::credentials::long_term_key(username, realm, &pw),
        sha256: Some(natter_stun::credentials::long_term_key_sha256(
            username, realm, &pw,
        )),
    })
}

/// Standard base64 with padding (the REST API's password encoding).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(char::from(T[(n >> 18) as usize & 63]));
        out.push(char::from(T[(n >> 12) as usize & 63]));
        out.push(if chunk.len() > 1 {
            char::from(T[(n >> 6) as usize & 63])
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            char::from(T[n as usize & 63])
        } else {
            '='
        });
    }
    out
}

/// What a received nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued by us, for this client address, still fresh.
    Valid {
        /// Whether it carried the RFC 8489 cookie (the client may use SHA-256 and must echo
        /// PASSWORD-ALGORITHMS).
        cookie: bool,
    },
    /// Issued by us but expired: answer 438 with a fresh one.
    Stale,
    /// Not ours (forged, from before a restart, or for another address): also 438, per RFC 8489
    /// §9.2.4, since the client should simply retry with the new nonce.
    Invalid,
}

/// Stateless nonces: `cookie || expiry(hex seconds) || mac(hex)` where the MAC binds the expiry
/// to the client's IP under a per-process secret. Nothing is stored per client, so a flood of
/// unauthenticated requests costs no memory.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: [u8; 32],
    lifetime_secs: u64,
    features: SecurityFeatures,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// `secret` should be random per process; `lifetime_secs` is how long a nonce stays fresh.
    pub fn new(secret: [u8; 32], lifetime_secs: u64) -> Self {
        Self {
            secret,
            lifetime_secs,
            features: SecurityFeatures::PASSWORD_ALGORITHMS,
        }
    }

    fn mac(&self, expiry: u64, client: IpAddr) -> [u8; 8] {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&expiry.to_be_bytes());
        match client {
            IpAddr::V4(a) => mac.update(&a.octets()),
            IpAddr::V6(a) => mac.update(&a.octets()),
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&full[..8]);
        out
    }

    /// A fresh nonce for `client` at `secs` (seconds on the server's monotonic clock).
    pub fn issue(&self, client: IpAddr, secs: u64) -> String {
        let expiry = secs + self.lifetime_secs;
        let cookie = nonce_cookie(self.features);
        let mut s = String::with_capacity(13 + 8 + 16);
        s.push_str(std::str::from_utf8(&cookie).unwrap_or(NONCE_COOKIE));
        s.push_str(&format!("{expiry:08x}"));
        for b in self.mac(expiry, client) {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Checks a nonce a client sent back.
    pub fn check(&self, nonce: &str, client: IpAddr, secs: u64) -> NonceCheck {
        let Some(rest) = nonce.get(13..) else {
            return NonceCheck::Invalid;
        };
        let cookie = nonce.starts_with(NONCE_COOKIE);
        if rest.len() != 24 {
            return NonceCheck::Invalid;
        }
        let Ok(expiry) = u64::from_str_radix(&rest[..8], 16) else {
            return NonceCheck::Invalid;
        };
        let mac = self.mac(expiry, client);
        let mut ok = 0u8;
        for (i, b) in mac.iter().enumerate() {
            let Ok(got) = u8::from_str_radix(&rest[8 + 2 * i..10 + 2 * i], 16) else {
                return NonceCheck::Invalid;
            };
            ok |= got ^ b;
        }
        if ok != 0 {
            return NonceCheck::Invalid;
        }
        if secs >= expiry {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid { cookie }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn rest_password_matches_coturn_formula() {
        // HMAC-SHA1("secret", "1700000000:alice"), computed independently with
        // `printf %s 1700000000:alice | openssl dgst -sha1 -hmac secret -binary | base64`.
        assert_eq!(
            rest_password(b"secret", "1700000000:alice"),
            "d8soP47RbdIKLDUOpnJPVQyq5Ts="
        );
        assert!(rest_keys(b"secret", "1700000000:alice", "r", 1_700_000_001).is_none());
        assert!(rest_keys(b"secret", "1700000000:alice", "r", 1_699_999_999).is_some());
        assert!(rest_keys(b"secret", "alice", "r", 0).is_none());
    }

    #[test]
    fn nonces_bind_address_and_expire() {
        let n = NonceIssuer::new([7; 32], 600);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let nonce = n.issue(a, 100);
        assert!(nonce.starts_with("obMatJos2"));
        assert_eq!(n.check(&nonce, a, 100), NonceCheck::Valid { cookie: true });
        assert_eq!(n.check(&nonce, a, 699), NonceCheck::Valid { cookie: true });
        assert_eq!(n.check(&nonce, a, 700), NonceCheck::Stale);
        assert_eq!(n.check(&nonce, b, 100), NonceCheck::Invalid);
        assert_eq!(n.check("short", a, 100), NonceCheck::Invalid);
        let other = NonceIssuer::new([8; 32], 600);
        assert_eq!(other.check(&nonce, a, 100), NonceCheck::Invalid);
        let mut forged = nonce.clone();
        forged.replace_range(13..21, "ffffffff");
        assert_eq!(n.check(&forged, a, 100), NonceCheck::Invalid);
    }
}
