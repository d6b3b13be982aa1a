//! The stores behind Natter's servers: users and their credentials, SIP contact bindings, and
//! (for a cluster) the state several `natter serve` instances share.
//!
//! [`Backend`] is the one interface; two implementations ship:
//!
//! * [`Store`]: the embedded SQLite file (the default, one instance);
//! * [`RedisStore`]: a Redis server shared by several instances (`--store redis://HOST:PORT`),
//!   so any instance can authenticate any user and route to a user registered on another.
//!
//! Passwords are never stored. What TURN long-term credentials (RFC 8489 §9.2) and SIP digest
//! (RFC 8760) both need is the same derived key, `H(username ":" realm ":" password)`, so the store
//! keeps that key per realm, in MD5 and SHA-256 forms. A realm change therefore needs the users to
//! be added again, exactly as with coturn's `turnadmin -a` or a Kamailio `ha1` column.
//!
//! The store is off the packet path on purpose: servers cache what they read and write only on
//! state changes (a REGISTER, a new user), so neither backend is touched per packet.

pub mod binding_log;
pub mod codec;
pub mod redis_store;
mod sqlite;

use std::sync::Arc;

use md5::{Digest as _, Md5};
use sha2::Sha256;

pub use redis_store::{RedisStore, CLUSTER_SCHEME, DEFAULT_TIMEOUT, SENTINEL_SCHEME};
pub use sqlite::Store;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite layer failed (file unreadable, disk full, schema damaged).
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The shared store cannot be reached or did not answer in time. Callers must not treat
    /// this as "not found": a lookup becomes a 5xx, a write is refused (and retried by the
    /// client), never silently dropped.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The shared store answered with something this version cannot read.
    #[error("store data: {0}")]
    Corrupt(String),
    /// A user name or realm that cannot be used in credentials.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// Which field was rejected.
        what: &'static str,
        /// Why it was rejected.
        why: &'static str,
    },
    /// The store's lock was poisoned by a panic in another thread.
    #[error("store lock poisoned")]
    Poisoned,
    /// `--store` names something neither backend understands.
    #[error("unsupported store {0:?}: use a directory path (SQLite) or redis://HOST:PORT[/DB]")]
    Unsupported(String),
}

impl StoreError {
    /// True when the store could not be reached (as opposed to refusing the request).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// One user as listed by [`Backend::list_users`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user name as used in TURN USERNAME and SIP digest `username`.
    pub name: String,
    /// The realm the stored keys were derived for.
    pub realm: String,
}

/// The derived keys of one user in one realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserKeyRecord {
    /// `MD5(user:realm:password)`.
    pub md5: [u8; 16],
    /// `SHA-256(user:realm:password)`.
    pub sha256: Option<[u8; 32]>,
}

/// A SIP contact binding as persisted by the registrar.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingRecord {
    /// Address-of-record, e.g. `sip:alice@example.com`.
    pub aor: String,
    /// The contact URI as registered.
    pub contact: String,
    /// Unix time (seconds) at which the binding expires.
    pub expires_at: u64,
    /// The q-value (0.0 ..= 1.0).
    pub q: f32,
    /// Call-ID of the REGISTER that created or last refreshed the binding.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// Path header values (RFC 3327), in order, joined by commas.
    pub path: String,
    /// Where the REGISTER came from (`transport:ip:port`), for routing back through NATs.
    pub source: String,
    /// The instance that received the REGISTER and so holds its flow (its SIP address,
    /// `transport:ip:port`); empty in the embedded store, where there is only one instance.
    /// Another instance that needs the flow forwards the request through this one.
    pub owner: String,
}

/// One change to the location service; [`Backend::write_bindings`] applies a list of them
/// atomically (all or none), so one REGISTER's changes never half-land.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingChange {
    /// Insert or replace the binding with the same (aor, contact).
    Put(BindingRecord),
    /// Remove one binding.
    Remove {
        /// Address-of-record.
        aor: String,
        /// Contact URI.
        contact: String,
    },
    /// Remove every binding of an AoR.
    RemoveAll {
        /// Address-of-record.
        aor: String,
    },
}

/// One `natter serve` instance as it announces itself in the shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Stable name (host and listeners), unique in the cluster.
    pub id: String,
    /// Free-form `key=value` pairs: listeners, load figures, version.
    pub fields: Vec<(String, String)>,
    /// Unix time of the heartbeat.
    pub seen_unix: u64,
}

/// The store interface every server and command goes through. Blocking: each call is short
/// (a local SQLite statement or one Redis round trip bounded by a timeout), and callers that
/// must not block (packet paths) cache.
pub trait Backend: Send + Sync {
    /// `"sqlite"` or `"redis"`.
    fn kind(&self) -> &'static str;
    /// Where the store is, for logs (no password).
    fn describe(&self) -> String;
    /// True when several instances can share this store.
    fn is_shared(&self) -> bool;
    /// Checks the store answers (a Redis PING; a SQLite query).
    fn ping(&self) -> Result<(), StoreError>;

    /// Adds or replaces a user for `realm` (only derived keys are kept).
    fn add_user(&self, name: &str, realm: &str, password: &str) -> Result<(), StoreError>;
    /// Removes a user from every realm (or from one realm). Returns how many entries went.
    fn remove_user(&self, name: &str, realm: Option<&str>) -> Result<usize, StoreError>;
    /// Every user, sorted by name then realm.
    fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Both keys of `name` in `realm`, if the user exists.
    fn user_keys(&self, name: &str, realm: &str) -> Result<Option<UserKeyRecord>, StoreError>;

    /// Applies `changes` atomically and durably: when this returns `Ok`, every change is
    /// committed (SQLite transaction; Redis MULTI/EXEC acknowledged by the server).
    fn write_bindings(&self, changes: &[BindingChange]) -> Result<(), StoreError>;
    /// The bindings of `aor` not yet expired at `now_unix`.
    fn bindings(&self, aor: &str, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError>;
    /// Every binding not yet expired at `now_unix` (start-up load, status).
    fn live_bindings(&self, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError>;
    /// Deletes bindings that expired at or before `now_unix`; returns how many.
    fn purge_expired(&self, now_unix: u64) -> Result<usize, StoreError>;

    /// The cluster-wide secret called `name`: the stored one, or `candidate` if none was
    /// stored yet (first instance wins). Used for SIP nonces and flow tokens, so a challenge
    /// issued by one instance verifies on another.
    fn shared_secret(&self, name: &str, candidate: &[u8; 32]) -> Result<[u8; 32], StoreError>;
    /// TURN REST API secrets, newest first (the previous ones stay valid while credentials
    /// minted with them have not expired: rotation without a flag day).
    fn rest_secrets(&self) -> Result<Vec<String>, StoreError>;
    /// Makes `secret` the current TURN REST secret, keeping the `keep` previous ones.
    fn rotate_rest_secret(&self, secret: &str, keep: usize) -> Result<(), StoreError>;

    /// Counts one more TURN allocation of `user` made by instance `instance` unless the user
    /// already has `limit` allocations counted by the instances in `live` (cluster-wide
    /// quota). Returns whether the allocation may proceed.
    fn acquire_allocation(
        &self,
        user: &str,
        instance: &str,
        limit: u32,
        live: &[String],
    ) -> Result<bool, StoreError>;
    /// Counts one allocation of `user` by `instance` less.
    fn release_allocation(&self, user: &str, instance: &str) -> Result<(), StoreError>;

    /// Announces `info` for `ttl_secs` (instances that stop heartbeating drop out).
    fn heartbeat(&self, info: &InstanceInfo, ttl_secs: u64) -> Result<(), StoreError>;
    /// Every instance whose heartbeat has not lapsed.
    fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError>;
}

/// A store shared between the servers of one process.
pub type SharedStore = Arc<dyn Backend>;

/// Opens the store named by `spec`: `redis://…` / `rediss://…` / `redis+unix://…` for Redis,
/// `redis+cluster://H:P,H:P,…` for a Redis Cluster,
/// anything else is a directory holding `natter.sqlite3`.
pub fn open(spec: &str) -> Result<SharedStore, StoreError> {
    if is_redis_url(spec) {
        Ok(Arc::new(RedisStore::open(spec, DEFAULT_TIMEOUT)?))
    } else if spec.contains("://") {
        Err(StoreError::Unsupported(spec.to_owned()))
    } else {
        let dir = std::path::Path::new(spec);
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot create {spec}: {e}")))?;
        Ok(Arc::new(Store::open(&dir.join("natter.sqlite3"))?))
    }
}

/// True for the URL schemes the Redis backend takes.
pub fn is_redis_url(spec: &str) -> bool {
    [
        "redis://",
        "rediss://",
        "redis+unix://",
        "unix://",
        CLUSTER_SCHEME,
        SENTINEL_SCHEME,
    ]
    .iter()
    .any(|p| spec.starts_with(p))
}

/// `MD5(user:realm:password)`: the TURN long-term key and the SIP digest HA1.
pub fn md5_key(user: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// `SHA-256(user:realm:password)`: the RFC 8489 SHA-256 long-term key and the RFC 8760 HA1.
pub fn sha256_key(user: &str, realm: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

fn check_field(what: &'static str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid {
            what,
            why: "must not be empty",
        });
    }
    if value.len() > 509 {
        // RFC 8489 limits USERNAME to 509 bytes and REALM to 763 bytes; use the tighter one.
        return Err(StoreError::Invalid {
            what,
            why: "longer than 509 bytes",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            what,
            why: "contains control characters",
        });
    }
    Ok(())
}

/// The checks every backend applies before storing a user.
fn check_user(name: &str, realm: &str) -> Result<(), StoreError> {
    check_field("user name", name)?;
    check_field("realm", realm)?;
    if name.contains(':') {
        // A colon would make `user:realm:password` ambiguous, and REST API names use it.
        return Err(StoreError::Invalid {
            what: "user name",
            why: "contains ':'",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_key_matches_rfc5769_long_term_vector() {
        // RFC 5769 §2.4: user "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}" (after SASLprep),
        // realm "example.org", password "TheMatrIX"; key = MD5(user:realm:pass).
        let key = md5_key(
            "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
            "example.org",
            "TheMatrIX",
        );
        let mut h = Md5::new();
        h.update("\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}:example.org:TheMatrIX");
        let expect: [u8; 16] = h.finalize().into();
        assert_eq!(key, expect);
    }

    #[test]
    fn specs_pick_the_backend() {
        assert!(is_redis_url("redis://127.0.0.1:6379"));
        assert!(is_redis_url("redis+sentinel://127.0.0.1:26379/mymaster"));
        assert!(is_redis_url(
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
        ));
        assert!(is_redis_url("rediss://h:6380/2"));
        assert!(!is_redis_url("/var/lib/natter"));
        assert!(matches!(
            open("mysql://x").err(),
            Some(StoreError::Unsupported(_))
        ));
    }
}
