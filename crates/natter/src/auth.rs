//! Where `natter serve` finds user keys: static `--user` entries, the REST API shared secrets
//! (`--auth-secret`, then the ones rotated into a shared store), and the store, in that order.
//!
//! Store answers are cached by name, so the store is read on a miss, never per packet. With
//! the embedded store the cache lives until SIGHUP (the store only changes through `natter
//! user`, on this host). With a shared store another instance may add or remove a user at any
//! time, so entries go stale after [`SHARED_TTL`]; when the store cannot be reached a stale
//! entry keeps serving rather than locking out users who were known a moment ago.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use natter_store::SharedStore;
use natter_turn::server::auth::rest_keys;
use natter_turn::server::{Authenticator, UserKeys};

/// How long a shared store's answer is trusted before it is read again.
pub const SHARED_TTL: Duration = Duration::from_secs(5);

/// The server's key source.
pub struct Keys {
    realm: String,
    statics: HashMap<String, UserKeys>,
    secret: Option<Vec<u8>>,
    store: Option<SharedStore>,
    /// TURN REST secrets from the shared store, newest first (see [`Keys::set_rest_secrets`]).
    rest: RwLock<Vec<Vec<u8>>>,
    /// Store answers by name, with when they were read.
    cache: Mutex<HashMap<String, (Option<UserKeys>, Instant)>>,
}

impl Keys {
    /// `users` as `(name, password)`, derived for `realm`.
    pub fn new(
        realm: &str,
        users: &[(String, String)],
        secret: Option<String>,
        store: Option<SharedStore>,
    ) -> Self {
        let statics = users
            .iter()
            .map(|(u, p)| {
                (
                    u.clone(),
                    UserKeys {
                        md5: natter_store::md5_key(u, realm, p),
                        sha256: Some(natter_store::sha256_key(u, realm, p)),
                    },
                )
            })
            .collect();
        Self {
            realm: realm.to_owned(),
            statics,
            secret: secret.map(String::into_bytes),
            store,
            rest: RwLock::new(Vec::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the TURN REST secrets read from the shared store (newest first).
    pub fn set_rest_secrets(&self, secrets: Vec<String>) {
        if let Ok(mut r) = self.rest.write() {
            *r = secrets.into_iter().map(String::into_bytes).collect();
        }
    }

    fn shared(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.is_shared())
    }

    /// Forgets cached store lookups (after `natter user add/remove`, on SIGHUP).
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    /// True when no way to authenticate anyone is configured.
    pub fn is_empty(&self) -> bool {
        self.statics.is_empty()
            && self.secret.is_none()
            && self
                .store
                .as_ref()
                .and_then(|s| s.list_users().ok())
                .is_none_or(|v| v.is_empty())
    }
}

impl Authenticator for Keys {
    fn candidate_keys(&self, username: &str, realm: &str, unix_now: u64) -> Vec<UserKeys> {
        if realm == self.realm && !self.statics.contains_key(username) && is_rest_name(username) {
            let rest = self.rest.read().map(|r| r.clone()).unwrap_or_default();
            if self.secret.is_some() || !rest.is_empty() {
                // Store secrets newest first, then --auth-secret: during a rotation both the
                // new and the previous credentials verify.
                return rest
                    .iter()
                    .chain(self.secret.iter())
                    .filter_map(|s| rest_keys(s, username, realm, unix_now))
                    .collect();
            }
        }
        self.keys(username, realm, unix_now).into_iter().collect()
    }

    fn keys(&self, username: &str, realm: &str, unix_now: u64) -> Option<UserKeys> {
        if realm != self.realm {
            return None;
        }
        if let Some(k) = self.statics.get(username) {
            return Some(*k);
        }
        if is_rest_name(username) {
            let rest = self.rest.read().map(|r| r.clone()).unwrap_or_default();
            if self.secret.is_some() || !rest.is_empty() {
                // A REST name never falls through to the store. One key only here: the newest
                // secret's (`candidate_keys` gives every valid one, for verification).
                return rest
                    .iter()
                    .chain(self.secret.iter())
                    .find_map(|s| rest_keys(s, username, realm, unix_now));
            }
        }
        let store = self.store.as_ref()?;
        let ttl = self.shared().then_some(SHARED_TTL);
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(username).copied());
        if let Some((hit, at)) = cached {
            if ttl.is_none_or(|t| at.elapsed() < t) {
                return hit;
            }
        }
        let keys = match store.user_keys(username, realm) {
            Ok(k) => k.map(|k| UserKeys {
                md5: k.md5,
                sha256: k.sha256,
            }),
            Err(e) => {
                // Unreachable store: keep serving what was known (a stale hit), and do not
                // cache the failure as "no such user".
                tracing::debug!(error = %e, "user lookup failed; using the cached answer");
                return cached.and_then(|(hit, _)| hit);
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 100_000 {
                c.clear();
            }
            c.insert(username.to_owned(), (keys, Instant::now()));
        }
        keys
    }
}

/// TURN REST usernames are `EXPIRY` or `EXPIRY:NAME`.
fn is_rest_name(username: &str) -> bool {
    username.contains(':') || username.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn static_then_rest_then_store() {
        let store = Arc::new(natter_store::Store::open_in_memory().unwrap());
        store.add_user("carol", "natter", "cpw").unwrap();
        let k = Keys::new(
            "natter",
            &[("alice".into(), "apw".into())],
            Some("s3cret".into()),
            Some(store),
        );
        assert_eq!(
            k.keys("alice", "natter", 0).unwrap().md5,
            natter_store::md5_key("alice", "natter", "apw")
        );
        assert!(k.keys("alice", "other", 0).is_none());
        let rest = k.keys("2000000000:bob", "natter", 1_000).unwrap();
        let pw = natter_turn::server::auth::rest_password(b"s3cret", "2000000000:bob");
        assert_eq!(
            rest.md5,
            natter_store::md5_key("2000000000:bob", "natter", &pw)
        );
        assert!(k.keys("1000:bob", "natter", 2_000).is_none(), "expired");
        assert_eq!(
            k.keys("carol", "natter", 0).unwrap().md5,
            natter_store::md5_key("carol", "natter", "cpw")
        );
        assert!(k.keys("dave", "natter", 0).is_none());
    }

    #[test]
    fn rotated_rest_secrets_all_verify_newest_first() {
        let k = Keys::new("natter", &[], Some("old".into()), None);
        k.set_rest_secrets(vec!["new".into(), "older".into()]);
        let name = "2000000000:bob";
        let key = |secret: &[u8]| {
            let pw = natter_turn::server::auth::rest_password(secret, name);
            natter_store::md5_key(name, "natter", &pw)
        };
        let c: Vec<[u8; 16]> = k
            .candidate_keys(name, "natter", 1_000)
            .into_iter()
            .map(|u| u.md5)
            .collect();
        assert_eq!(c, vec![key(b"new"), key(b"older"), key(b"old")]);
        assert_eq!(k.keys(name, "natter", 1_000).unwrap().md5, key(b"new"));
        assert!(
            k.candidate_keys(name, "natter", 3_000_000_000).is_empty(),
            "expired"
        );
    }
}
