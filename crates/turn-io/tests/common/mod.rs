//! What the driver tests share: one user (alice/pw in realm "natter") and a request builder
//! that signs with her long-term key once a nonce is known.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use natter_stun::credentials::long_term_key;
use natter_stun::{Class, MessageWriter, Method, TransactionId};
use natter_turn::server::{Authenticator, UserKeys};

pub const REALM: &str = "natter";
/// Bound on every wait, so a broken driver fails the test instead of hanging it.
pub const T: Duration = Duration::from_secs(10);

/// The only user: alice, password "pw".
pub struct Alice;
impl Authenticator for Alice {
    fn keys(&self, username: &str, realm: &str, _unix: u64) -> Option<UserKeys> {
        (username == "alice").then(|| UserKeys {
            md5: long_term_key("alice", realm, "pw"),
            sha256: None,
        })
    }
}

/// alice's long-term key in [`REALM`].
pub fn key() -> [u8; 16] {
    long_term_key("alice", REALM, "pw")
}

/// A request with transaction id `[n; 12]`, signed as alice when `nonce` is given.
pub fn request(
    method: Method,
    n: u8,
    nonce: Option<&str>,
    add: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let mut b = Vec::new();
    let mut w = MessageWriter::new(&mut b, method, Class::Request, TransactionId([n; 12]));
    add(&mut w);
    if let Some(nonce) = nonce {
        w.add_username("alice").add_realm(REALM).add_nonce(nonce);
        w.add_message_integrity(&key());
    }
    w.finish().unwrap();
    b
}
