//! The embedded SQLite backend: one file, one instance. Bindings and users live in tables;
//! the cluster-only state ([`Backend::shared_secret`], heartbeats, allocation counts) has small
//! tables of its own so the same code paths work without Redis.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::{
    check_user, md5_key, sha256_key, Backend, BindingChange, BindingRecord, InstanceInfo,
    StoreError, UserKeyRecord, UserRecord,
};

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
-- WITHOUT ROWID: the table is its primary key's B-tree, so a REGISTER's upsert writes one
-- tree instead of a table and an index. Files made before keep their rowid table; the SQL
-- that reads and writes it is the same.
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
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS allocations (
    user TEXT NOT NULL,
    instance TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (user, instance)
);
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    seen INTEGER NOT NULL,
    until INTEGER NOT NULL
);
";

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
        check_user(name, realm)?;
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
        let conn = self.lock()?;
        put_row(&conn, b)?;
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

    /// Every binding not yet expired at `now_unix`, as a restart of the registrar would load
    /// them: from the binding log next to the file when a server has kept one (see
    /// [`crate::binding_log`]), else from the `bindings` table.
    pub fn live_bindings(&self, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        match self.file() {
            Some(db) => crate::binding_log::live_bindings(&db, now_unix, &mut || {
                self.table_bindings(now_unix)
            }),
            None => self.table_bindings(now_unix),
        }
    }

    /// The store's file, `None` for an in-memory store.
    pub fn file(&self) -> Option<std::path::PathBuf> {
        let conn = self.lock().ok()?;
        conn.path()
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
    }

    /// Empties the `bindings` table (once a binding log holds them all).
    pub fn clear_binding_table(&self) -> Result<usize, StoreError> {
        Ok(self.lock()?.execute("DELETE FROM bindings", [])?)
    }

    fn table_bindings(&self, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT aor, contact, expires_at, q, call_id, cseq, path, source FROM bindings
             WHERE expires_at > ?1 ORDER BY aor, contact",
        )?;
        let rows = stmt.query_map(params![now_unix as i64], read_row)?;
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

const PUT_ROW: &str =
    "INSERT OR REPLACE INTO bindings (aor, contact, expires_at, q, call_id, cseq, path, source)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

fn put_row(conn: &Connection, b: &BindingRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(PUT_ROW)?.execute(params![
        b.aor,
        b.contact,
        b.expires_at as i64,
        f64::from(b.q),
        b.call_id,
        b.cseq,
        b.path,
        b.source
    ])
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BindingRecord> {
    Ok(BindingRecord {
        aor: r.get(0)?,
        contact: r.get(1)?,
        expires_at: r.get::<_, i64>(2)?.max(0) as u64,
        q: r.get::<_, f64>(3)? as f32,
        call_id: r.get(4)?,
        cseq: r.get(5)?,
        path: r.get(6)?,
        source: r.get(7)?,
        owner: String::new(),
    })
}

/// `key=value` pairs, one per line (instance fields never hold newlines: see `heartbeat`).
fn fields_text(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('\n', " ")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_fields(s: &str) -> Vec<(String, String)> {
    s.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Backend for Store {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn describe(&self) -> String {
        let conn = self.lock();
        conn.ok()
            .and_then(|c| c.path().map(str::to_owned))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ":memory:".to_owned())
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.lock()?.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn add_user(&self, name: &str, realm: &str, password: &str) -> Result<(), StoreError> {
        Store::add_user(self, name, realm, password)
    }

    fn remove_user(&self, name: &str, realm: Option<&str>) -> Result<usize, StoreError> {
        Store::remove_user(self, name, realm)
    }

    fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        Store::list_users(self)
    }

    fn user_keys(&self, name: &str, realm: &str) -> Result<Option<UserKeyRecord>, StoreError> {
        let conn = self.lock()?;
        let row: Option<(Vec<u8>, Vec<u8>)> = conn
            .query_row(
                "SELECT key_md5, key_sha256 FROM users WHERE name = ?1 AND realm = ?2",
                params![name, realm],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(m, s)| {
            Some(UserKeyRecord {
                md5: m.try_into().ok()?,
                sha256: s.try_into().ok(),
            })
        }))
    }

    fn write_bindings(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        for c in changes {
            match c {
                BindingChange::Put(b) => {
                    put_row(&tx, b)?;
                }
                BindingChange::Remove { aor, contact } => {
                    tx.prepare_cached("DELETE FROM bindings WHERE aor = ?1 AND contact = ?2")?
                        .execute(params![aor, contact])?;
                }
                BindingChange::RemoveAll { aor } => {
                    tx.prepare_cached("DELETE FROM bindings WHERE aor = ?1")?
                        .execute(params![aor])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn bindings(&self, aor: &str, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT aor, contact, expires_at, q, call_id, cseq, path, source FROM bindings
             WHERE aor = ?1 AND expires_at > ?2 ORDER BY contact",
        )?;
        let rows = stmt.query_map(params![aor, now_unix as i64], read_row)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }

    fn live_bindings(&self, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        Store::live_bindings(self, now_unix)
    }

    fn purge_expired(&self, now_unix: u64) -> Result<usize, StoreError> {
        Store::purge_expired(self, now_unix)
    }

    fn shared_secret(&self, name: &str, candidate: &[u8; 32]) -> Result<[u8; 32], StoreError> {
        let conn = self.lock()?;
        let key = format!("secret:{name}");
        conn.execute(
            "INSERT OR IGNORE INTO kv (name, value) VALUES (?1, ?2)",
            params![key, &candidate[..]],
        )?;
        let v: Vec<u8> =
            conn.query_row("SELECT value FROM kv WHERE name = ?1", [&key], |r| r.get(0))?;
        v.try_into()
            .map_err(|_| StoreError::Corrupt(format!("{key} is not 32 bytes")))
    }

    fn rest_secrets(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let v: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM kv WHERE name = 'turn-rest-secrets'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
    }

    fn rotate_rest_secret(&self, secret: &str, keep: usize) -> Result<(), StoreError> {
        if secret.is_empty() || secret.contains('\n') {
            return Err(StoreError::Invalid {
                what: "REST secret",
                why: "empty or contains a newline",
            });
        }
        let mut all = Backend::rest_secrets(self)?;
        all.retain(|s| s != secret);
        all.insert(0, secret.to_owned());
        all.truncate(keep + 1);
        self.lock()?.execute(
            "INSERT OR REPLACE INTO kv (name, value) VALUES ('turn-rest-secrets', ?1)",
            params![all.join("\n").into_bytes()],
        )?;
        Ok(())
    }

    fn acquire_allocation(
        &self,
        user: &str,
        instance: &str,
        limit: u32,
        live: &[String],
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let mut used: i64 = 0;
        {
            let mut stmt =
                tx.prepare_cached("SELECT instance, n FROM allocations WHERE user = ?1")?;
            let rows = stmt.query_map(params![user], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            for r in rows {
                let (inst, n) = r?;
                if inst == instance || live.contains(&inst) {
                    used += n;
                }
            }
        }
        if used >= i64::from(limit) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO allocations (user, instance, n) VALUES (?1, ?2, 1)
             ON CONFLICT (user, instance) DO UPDATE SET n = n + 1",
            params![user, instance],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn release_allocation(&self, user: &str, instance: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE allocations SET n = n - 1 WHERE user = ?1 AND instance = ?2 AND n > 0",
            params![user, instance],
        )?;
        conn.execute("DELETE FROM allocations WHERE n <= 0", [])?;
        Ok(())
    }

    fn heartbeat(&self, info: &InstanceInfo, ttl_secs: u64) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT OR REPLACE INTO instances (id, fields, seen, until) VALUES (?1, ?2, ?3, ?4)",
            params![
                info.id,
                fields_text(&info.fields),
                info.seen_unix as i64,
                // Like a Redis TTL: from now, whatever `seen_unix` says.
                unix_now().saturating_add(ttl_secs) as i64
            ],
        )?;
        Ok(())
    }

    fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError> {
        let now = unix_now();
        let conn = self.lock()?;
        let mut stmt =
            conn.prepare("SELECT id, fields, seen FROM instances WHERE until > ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![now as i64], |r| {
            Ok(InstanceInfo {
                id: r.get(0)?,
                fields: parse_fields(&r.get::<_, String>(1)?),
                seen_unix: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            owner: String::new(),
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
