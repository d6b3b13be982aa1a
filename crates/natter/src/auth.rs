//! Where `natter serve` finds user keys: static `--user` entries, the REST API shared secret,
//! and the embedded store, in that order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use natter_store::Store;
use natter_turn::server::auth::rest_keys;
use natter_turn::server::{Authenticator, UserKeys};

/// The server's key source.
pub struct Keys {
    realm: String,
    statics: HashMap<String, UserKeys>,
    secret: Option<Vec<u8>>,
    store: Option<Arc<Store>>,
    /// Store hits cached by name: the store is only read on a miss, never per packet.
    cache: Mutex<HashMap<String, Option<UserKeys>>>,
}

impl Keys {
    /// `users` as `(name, password)`, derived for `realm`.
    pub fn new(
        realm: &str,
        users: &[(String, String)],
        secret: Option<String>,
        store: Option<Arc<Store>>,
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
            cache: Mutex::new(HashMap::new()),
        }
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
    fn keys(&self, username: &str, realm: &str, unix_now: u64) -> Option<UserKeys> {
        if realm != self.realm {
            return None;
        }
        if let Some(k) = self.statics.get(username) {
            return Some(*k);
        }
        if let Some(secret) = &self.secret {
            if username.contains(':') || username.bytes().all(|b| b.is_ascii_digit()) {
                return rest_keys(secret, username, realm, unix_now);
            }
        }
        let store = self.store.as_ref()?;
        if let Ok(c) = self.cache.lock() {
            if let Some(hit) = c.get(username) {
                return *hit;
            }
        }
        let md5 = store.key_md5(username, realm).ok().flatten();
        let sha = store.key_sha256(username, realm).ok().flatten();
        let keys = md5.map(|md5| UserKeys { md5, sha256: sha });
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 100_000 {
                c.clear();
            }
            c.insert(username.to_owned(), keys);
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_then_rest_then_store() {
        let store = Arc::new(Store::open_in_memory().unwrap());
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
}
