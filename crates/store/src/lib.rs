//! The embedded store behind Natter's servers: users and their credentials, and (for the SIP
//! registrar) contact bindings, in one SQLite file.
//!
//! Passwords are never stored. What TURN long-term credentials (RFC 8489 §9.2) and SIP digest
//! (RFC 8760) both need is the same derived key, `H(username ":" realm ":" password)`, so the store
//! keeps that key per realm, in MD5 and SHA-256 forms. A realm change therefore needs the users to
//! be added again, exactly as with coturn's `turnadmin -a` or a Kamailio `ha1` column.
//!
//! The store is small on purpose: servers load what they need into memory and look here only on
//! a cache miss, so SQLite is never on a packet path.

use std::path::Path;
use std::sync::Mutex;

use md5::{Digest as _, Md5};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::Sha256;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite layer failed (file unreadable, disk full, schema damaged).
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
}

/// One user as listed by [`Store::list_users`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user name as used in TURN USERNAME and SIP digest `username`.
    pub name: String,
    /// The realm the stored keys were derived for.
    pub realm: String,
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

/// The SQLite-backed store. Cheap to share behind an `Arc`; every call takes a short lock.
pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name TEXT NOT NULL,
    realm TEXT NOT NULL,
    key_md5 BLOB NOT NULL,
    key_sha256 BLOB NOT NULL,
    PRIMARY KEY (name, realm)
);
CREATE TABLE IF NOT EXISTS bindings (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    q REAL NOT NULL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (aor, contact)
);
";

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

impl Store {
    /// Opens (creating if needed) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        // WAL keeps readers (the servers) from blocking on a `natter user add` in another process.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// An in-memory store, for tests and for `--data-dir` of `:memory:`.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Adds or replaces a user for `realm`.
    pub fn add_user(&self, name: &str, realm: &str, password: &str) -> Result<(), StoreError> {
        check_field("user name", name)?;
        check_field("realm", realm)?;
        if name.contains(':') {
            // A colon would make `user:realm:password` ambiguous, and REST API names use it.
            return Err(StoreError::Invalid {
                what: "user name",
                why: "contains ':'",
            });
        }
        let md5 = md5_key(name, realm, password);
        let sha = sha256_key(name, realm, password);
        self.lock()?.execute(
            "INSERT OR REPLACE INTO users (name, realm, key_md5, key_sha256) VALUES (?1, ?2, ?3, ?4)",
            params![name, realm, &md5[..], &sha[..]],
        )?;
        Ok(())
    }

    /// Removes a user from every realm (or from one realm). Returns how many rows went.
    pub fn remove_user(&self, name: &str, realm: Option<&str>) -> Result<usize, StoreError> {
        let conn = self.lock()?;
        let n = match realm {
            Some(r) => conn.execute(
                "DELETE FROM users WHERE name = ?1 AND realm = ?2",
                params![name, r],
            )?,
            None => conn.execute("DELETE FROM users WHERE name = ?1", params![name])?,
        };
        Ok(n)
    }

    /// Every user, sorted by name then realm.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT name, realm FROM users ORDER BY name, realm")?;
        let rows = stmt.query_map([], |r| {
            Ok(UserRecord {
                name: r.get(0)?,
                realm: r.get(1)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }

    fn key<const N: usize>(
        &self,
        column: &str,
        name: &str,
        realm: &str,
    ) -> Result<Option<[u8; N]>, StoreError> {
        let conn = self.lock()?;
        let sql = format!("SELECT {column} FROM users WHERE name = ?1 AND realm = ?2");
        let v: Option<Vec<u8>> = conn
            .query_row(&sql, params![name, realm], |r| r.get(0))
            .optional()?;
        Ok(v.and_then(|b| b.try_into().ok()))
    }

    /// The MD5 long-term key / HA1 of `name` in `realm`, if the user exists.
    pub fn key_md5(&self, name: &str, realm: &str) -> Result<Option<[u8; 16]>, StoreError> {
        self.key("key_md5", name, realm)
    }

    /// The SHA-256 long-term key / HA1 of `name` in `realm`, if the user exists.
    pub fn key_sha256(&self, name: &str, realm: &str) -> Result<Option<[u8; 32]>, StoreError> {
        self.key("key_sha256", name, realm)
    }

    /// Inserts or replaces one binding.
    pub fn put_binding(&self, b: &BindingRecord) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT OR REPLACE INTO bindings (aor, contact, expires_at, q, call_id, cseq, path, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                b.aor,
                b.contact,
                b.expires_at as i64,
                f64::from(b.q),
                b.call_id,
                b.cseq,
                b.path,
                b.source
            ],
        )?;
        Ok(())
    }

    /// Removes one binding (or all of an AoR's when `contact` is `None`).
    pub fn remove_binding(&self, aor: &str, contact: Option<&str>) -> Result<usize, StoreError> {
        let conn = self.lock()?;
        let n = match contact {
            Some(c) => conn.execute(
                "DELETE FROM bindings WHERE aor = ?1 AND contact = ?2",
                params![aor, c],
            )?,
            None => conn.execute("DELETE FROM bindings WHERE aor = ?1", params![aor])?,
        };
        Ok(n)
    }

    /// Every binding not yet expired at `now_unix`, for loading the registrar at start.
    pub fn live_bindings(&self, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT aor, contact, expires_at, q, call_id, cseq, path, source FROM bindings
             WHERE expires_at > ?1 ORDER BY aor, contact",
        )?;
        let rows = stmt.query_map(params![now_unix as i64], |r| {
            Ok(BindingRecord {
                aor: r.get(0)?,
                contact: r.get(1)?,
                expires_at: r.get::<_, i64>(2)?.max(0) as u64,
                q: r.get::<_, f64>(3)? as f32,
                call_id: r.get(4)?,
                cseq: r.get(5)?,
                path: r.get(6)?,
                source: r.get(7)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }

    /// Deletes bindings that expired at or before `now_unix`.
    pub fn purge_expired(&self, now_unix: u64) -> Result<usize, StoreError> {
        Ok(self.lock()?.execute(
            "DELETE FROM bindings WHERE expires_at <= ?1",
            params![now_unix as i64],
        )?)
    }
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
    fn users_round_trip_and_never_store_passwords() {
        let s = Store::open_in_memory().unwrap();
        s.add_user("alice", "natter", "secret").unwrap();
        s.add_user("bob", "natter", "pw").unwrap();
        assert_eq!(
            s.key_md5("alice", "natter").unwrap(),
            Some(md5_key("alice", "natter", "secret"))
        );
        assert_eq!(
            s.key_sha256("alice", "natter").unwrap(),
            Some(sha256_key("alice", "natter", "secret"))
        );
        assert_eq!(s.key_md5("alice", "other").unwrap(), None);
        let names: Vec<_> = s
            .list_users()
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(s.remove_user("alice", None).unwrap(), 1);
        assert_eq!(s.key_md5("alice", "natter").unwrap(), None);
        let conn = s.lock().unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM users WHERE CAST(key_md5 AS TEXT) LIKE '%pw%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn bad_user_names_are_refused() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.add_user("", "r", "p").is_err());
        assert!(s.add_user("a:b", "r", "p").is_err());
        assert!(s.add_user("a\nb", "r", "p").is_err());
    }

    #[test]
    fn bindings_persist_and_expire() {
        let dir = std::env::temp_dir().join(format!("natter-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sqlite3");
        let _ = std::fs::remove_file(&path);
        let b = BindingRecord {
            aor: "sip:alice@example.com".into(),
            contact: "sip:alice@192.0.2.1:5060".into(),
            expires_at: 1000,
            q: 0.5,
            call_id: "c1".into(),
            cseq: 7,
            path: String::new(),
            source: "udp:192.0.2.1:5060".into(),
        };
        {
            let s = Store::open(&path).unwrap();
            s.put_binding(&b).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.live_bindings(999).unwrap(), vec![b.clone()]);
        assert!(s.live_bindings(1000).unwrap().is_empty());
        assert_eq!(s.purge_expired(1000).unwrap(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
