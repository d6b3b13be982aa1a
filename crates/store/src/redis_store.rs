//! The Redis backend: several `natter serve` instances share users, SIP bindings, secrets,
//! TURN allocation counts and heartbeats through one Redis (`--store redis://HOST:PORT[/DB]`).
//!
//! Key layout (all under `natter:`):
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `natter:users` | hash | field `REALM\nNAME` → MD5 key (16 bytes) ++ SHA-256 key (32 bytes) |
//! | `natter:loc:AOR` | hash | field contact → binding ([`crate::codec`]); key TTL ≥ latest expiry |
//! | `natter:secret:NAME` | string | 32-byte cluster secret (first writer wins, `SET NX`) |
//! | `natter:turn:rest-secrets` | list | TURN REST secrets, newest first |
//! | `natter:turn:alloc:USER` | hash | field instance → live allocations it holds |
//! | `natter:instance:ID` | hash | heartbeat fields, expires after the heartbeat TTL |
//! | `natter:instances` | set | IDs that heartbeated (pruned when their hash lapsed) |
//!
//! Every call is bounded: connects and reads time out after the configured timeout (default
//! [`DEFAULT_TIMEOUT`]), and after a failure the store answers `Unavailable` at once for
//! [`FAIL_FAST`] instead of making every caller wait out the timeout again. The next call
//! after that window reconnects, so recovery needs no restart.
//!
//! The client is the `redis` crate's blocking one (no async runtime is needed by callers,
//! which are server threads with caches in front); it runs with default features off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Client, Connection};

use crate::codec::{decode_binding, encode_binding};
use crate::{
    check_user, md5_key, sha256_key, Backend, BindingChange, BindingRecord, InstanceInfo,
    StoreError, UserKeyRecord, UserRecord,
};

/// How long one Redis call (connect, or a command's answer) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(300);
/// After a failure, how long calls fail at once instead of waiting on a dead server.
pub const FAIL_FAST: Duration = Duration::from_millis(500);
/// Connections kept (the SIP thread, TURN shards' cache misses, background tasks).
const SLOTS: usize = 4;
/// Bindings keys outlive their latest binding by this much (expired fields are also
/// filtered on read, so the margin only bounds garbage).
const LOC_KEY_MARGIN_SECS: u64 = 60;

const USERS: &str = "natter:users";
const LOC: &str = "natter:loc:";
const REST: &str = "natter:turn:rest-secrets";
const ALLOC: &str = "natter:turn:alloc:";
const INSTANCE: &str = "natter:instance:";
const INSTANCES: &str = "natter:instances";

/// A Redis-backed store. Share it behind an `Arc`; calls from several threads use separate
/// connections.
pub struct RedisStore {
    client: Client,
    display: String,
    timeout: Duration,
    slots: Vec<Mutex<Option<Connection>>>,
    next: AtomicUsize,
    base: Instant,
    /// Milliseconds since `base` until which calls fail fast (0: healthy).
    down_until: AtomicU64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The URL without a password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn user_field(name: &str, realm: &str) -> String {
    format!("{realm}\n{name}")
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

impl RedisStore {
    /// A store for `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`, `redis+unix:///PATH`).
    /// Does not connect yet: a server that is down at start is reported by the first call
    /// (and `natter serve` keeps retrying instead of refusing to start).
    pub fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", redact(url))))?;
        let timeout = if timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            timeout
        };
        Ok(Self {
            client,
            display: redact(url),
            timeout,
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            base: Instant::now(),
            down_until: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    fn slot(&self) -> MutexGuard<'_, Option<Connection>> {
        for s in &self.slots {
            if let Ok(g) = s.try_lock() {
                return g;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        lock(&self.slots[i])
    }

    fn connect(&self) -> redis::RedisResult<Connection> {
        let c = self.client.get_connection_with_timeout(self.timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        Ok(c)
    }

    /// Runs `f` on a connection, connecting first if needed. Any failure drops the
    /// connection (its state is unknown after a timeout) and opens the fail-fast window.
    fn run<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let until = self.down_until.load(Ordering::Relaxed);
        if until != 0 && self.now_ms() < until {
            return Err(StoreError::Unavailable(format!(
                "{}: recently failed, retrying shortly",
                self.display
            )));
        }
        let mut slot = self.slot();
        if slot.is_none() {
            match self.connect() {
                Ok(c) => *slot = Some(c),
                Err(e) => return Err(self.failed(e)),
            }
        }
        let Some(conn) = slot.as_mut() else {
            return Err(StoreError::Unavailable(self.display.clone()));
        };
        match f(conn) {
            Ok(v) => {
                self.down_until.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                *slot = None;
                Err(self.failed(e))
            }
            // The server answered, but with an error (wrong type, OOM, read-only replica).
            Err(e) => {
                *slot = None;
                Err(StoreError::Unavailable(format!("{}: {e}", self.display)))
            }
        }
    }

    fn failed(&self, e: redis::RedisError) -> StoreError {
        let until = self.now_ms() + FAIL_FAST.as_millis() as u64;
        self.down_until.store(until.max(1), Ordering::Relaxed);
        StoreError::Unavailable(format!("{}: {e}", self.display))
    }

    /// Every `natter:loc:*` key (SCAN, bounded by the key count).
    fn loc_keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(|c| {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            for _ in 0..1_000_000 {
                let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{LOC}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            Ok(keys)
        })
    }

    fn decode_all(aor: &str, map: HashMap<Vec<u8>, Vec<u8>>) -> Vec<BindingRecord> {
        let mut v: Vec<BindingRecord> = map
            .values()
            .filter_map(|bytes| decode_binding(aor, bytes))
            .collect();
        v.sort_by(|a, b| a.contact.cmp(&b.contact));
        v
    }
}

impl Backend for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn describe(&self) -> String {
        self.display.clone()
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.run(|c| redis::cmd("PING").query(c))?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(corrupt(format!("PING answered {pong:?}")))
        }
    }

    fn add_user(&self, name: &str, realm: &str, password: &str) -> Result<(), StoreError> {
        check_user(name, realm)?;
        let mut v = md5_key(name, realm, password).to_vec();
        v.extend_from_slice(&sha256_key(name, realm, password));
        self.run(|c| {
            redis::cmd("HSET")
                .arg(USERS)
                .arg(user_field(name, realm))
                .arg(v)
                .query::<()>(c)
        })
    }

    fn remove_user(&self, name: &str, realm: Option<&str>) -> Result<usize, StoreError> {
        let fields: Vec<String> = match realm {
            Some(r) => vec![user_field(name, r)],
            None => self
                .list_users()?
                .into_iter()
                .filter(|u| u.name == name)
                .map(|u| user_field(&u.name, &u.realm))
                .collect(),
        };
        if fields.is_empty() {
            return Ok(0);
        }
        self.run(|c| redis::cmd("HDEL").arg(USERS).arg(&fields).query::<usize>(c))
    }

    fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let fields: Vec<String> = self.run(|c| redis::cmd("HKEYS").arg(USERS).query(c))?;
        let mut v: Vec<UserRecord> = fields
            .iter()
            .filter_map(|f| f.split_once('\n'))
            .map(|(realm, name)| UserRecord {
                name: name.to_owned(),
                realm: realm.to_owned(),
            })
            .collect();
        v.sort_by(|a, b| (&a.name, &a.realm).cmp(&(&b.name, &b.realm)));
        Ok(v)
    }

    fn user_keys(&self, name: &str, realm: &str) -> Result<Option<UserKeyRecord>, StoreError> {
        let v: Option<Vec<u8>> = self.run(|c| {
            redis::cmd("HGET")
                .arg(USERS)
                .arg(user_field(name, realm))
                .query(c)
        })?;
        let Some(v) = v else { return Ok(None) };
        let md5: [u8; 16] = v
            .get(..16)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt("user key shorter than 16 bytes"))?;
        let sha256 = v.get(16..48).and_then(|s| s.try_into().ok());
        Ok(Some(UserKeyRecord { md5, sha256 }))
    }

    fn write_bindings(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let now = unix_now();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for ch in changes {
            match ch {
                BindingChange::Put(b) => {
                    let key = format!("{LOC}{}", b.aor);
                    let ttl = b.expires_at.saturating_sub(now) + LOC_KEY_MARGIN_SECS;
                    pipe.cmd("HSET")
                        .arg(&key)
                        .arg(&b.contact)
                        .arg(encode_binding(b))
                        .ignore();
                    // NX then GT: set a TTL on a new key, and only ever lengthen it, so a
                    // short registration never cuts a longer one's key short (Redis >= 7).
                    pipe.cmd("EXPIRE").arg(&key).arg(ttl).arg("NX").ignore();
                    pipe.cmd("EXPIRE").arg(&key).arg(ttl).arg("GT").ignore();
                }
                BindingChange::Remove { aor, contact } => {
                    pipe.cmd("HDEL")
                        .arg(format!("{LOC}{aor}"))
                        .arg(contact)
                        .ignore();
                }
                BindingChange::RemoveAll { aor } => {
                    pipe.cmd("DEL").arg(format!("{LOC}{aor}")).ignore();
                }
            }
        }
        // EXEC's reply arrives only after Redis applied every command: the write is done
        // (durable as configured on the server: AOF/replicas are its operator's choice).
        self.run(|c| pipe.query::<()>(c))
    }

    fn bindings(&self, aor: &str, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        let map: HashMap<Vec<u8>, Vec<u8>> =
            self.run(|c| redis::cmd("HGETALL").arg(format!("{LOC}{aor}")).query(c))?;
        let mut v = Self::decode_all(aor, map);
        v.retain(|b| b.expires_at > now_unix);
        Ok(v)
    }

    fn live_bindings(&self, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        let mut out = Vec::new();
        for key in self.loc_keys()? {
            let Some(aor) = key.strip_prefix(LOC.as_bytes()) else {
                continue;
            };
            let aor = String::from_utf8_lossy(aor).into_owned();
            out.extend(self.bindings(&aor, now_unix)?);
        }
        out.sort_by(|a, b| (&a.aor, &a.contact).cmp(&(&b.aor, &b.contact)));
        Ok(out)
    }

    fn purge_expired(&self, now_unix: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for key in self.loc_keys()? {
            let map: HashMap<Vec<u8>, Vec<u8>> =
                self.run(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
            let stale: Vec<&Vec<u8>> = map
                .iter()
                .filter(|(_, v)| decode_binding("", v).is_none_or(|b| b.expires_at <= now_unix))
                .map(|(k, _)| k)
                .collect();
            if !stale.is_empty() {
                removed +=
                    self.run(|c| redis::cmd("HDEL").arg(&key).arg(stale).query::<usize>(c))?;
            }
        }
        Ok(removed)
    }

    fn shared_secret(&self, name: &str, candidate: &[u8; 32]) -> Result<[u8; 32], StoreError> {
        let key = format!("natter:secret:{name}");
        let v: Vec<u8> = self.run(|c| {
            let mut p = redis::pipe();
            p.cmd("SET")
                .arg(&key)
                .arg(&candidate[..])
                .arg("NX")
                .ignore();
            p.cmd("GET").arg(&key);
            let (v,): (Vec<u8>,) = p.query(c)?;
            Ok(v)
        })?;
        v.try_into()
            .map_err(|_| corrupt(format!("{key} is not 32 bytes")))
    }

    fn rest_secrets(&self) -> Result<Vec<String>, StoreError> {
        self.run(|c| redis::cmd("LRANGE").arg(REST).arg(0).arg(-1).query(c))
    }

    fn rotate_rest_secret(&self, secret: &str, keep: usize) -> Result<(), StoreError> {
        if secret.is_empty() || secret.contains('\n') {
            return Err(StoreError::Invalid {
                what: "REST secret",
                why: "empty or contains a newline",
            });
        }
        self.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("LREM")
                .arg(REST)
                .arg(0)
                .arg(secret)
                .ignore()
                .cmd("LPUSH")
                .arg(REST)
                .arg(secret)
                .ignore()
                .cmd("LTRIM")
                .arg(REST)
                .arg(0)
                .arg(keep as i64)
                .ignore()
                .query::<()>(c)
        })
    }

    fn acquire_allocation(
        &self,
        user: &str,
        instance: &str,
        limit: u32,
        live: &[String],
    ) -> Result<bool, StoreError> {
        let key = format!("{ALLOC}{user}");
        self.run(|c| {
            // Optimistic transaction: another instance allocating for the same user between
            // our read and our increment aborts EXEC, and we read again.
            for _ in 0..16 {
                redis::cmd("WATCH").arg(&key).query::<()>(c)?;
                let counts: HashMap<String, i64> = redis::cmd("HGETALL").arg(&key).query(c)?;
                let used: i64 = counts
                    .iter()
                    .filter(|(inst, _)| *inst == instance || live.iter().any(|l| l == *inst))
                    .map(|(_, n)| (*n).max(0))
                    .sum();
                if used >= i64::from(limit) {
                    redis::cmd("UNWATCH").query::<()>(c)?;
                    return Ok(false);
                }
                let done: Option<(i64,)> = redis::pipe()
                    .atomic()
                    .cmd("HINCRBY")
                    .arg(&key)
                    .arg(instance)
                    .arg(1)
                    .query(c)?;
                if done.is_some() {
                    return Ok(true);
                }
            }
            // Sixteen lost races in a row: count it anyway rather than refuse a user
            // because others are busy (the quota may be exceeded by at most one).
            redis::cmd("HINCRBY")
                .arg(&key)
                .arg(instance)
                .arg(1)
                .query::<()>(c)?;
            Ok(true)
        })
    }

    fn release_allocation(&self, user: &str, instance: &str) -> Result<(), StoreError> {
        let key = format!("{ALLOC}{user}");
        self.run(|c| {
            let n: i64 = redis::cmd("HINCRBY")
                .arg(&key)
                .arg(instance)
                .arg(-1)
                .query(c)?;
            if n <= 0 {
                redis::cmd("HDEL").arg(&key).arg(instance).query::<()>(c)?;
            }
            Ok(())
        })
    }

    fn heartbeat(&self, info: &InstanceInfo, ttl_secs: u64) -> Result<(), StoreError> {
        let key = format!("{INSTANCE}{}", info.id);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("DEL").arg(&key).ignore();
        pipe.cmd("HSET")
            .arg(&key)
            .arg("seen")
            .arg(info.seen_unix)
            .ignore();
        for (k, v) in &info.fields {
            pipe.cmd("HSET").arg(&key).arg(k).arg(v).ignore();
        }
        pipe.cmd("EXPIRE").arg(&key).arg(ttl_secs.max(1)).ignore();
        pipe.cmd("SADD").arg(INSTANCES).arg(&info.id).ignore();
        self.run(|c| pipe.query::<()>(c))
    }

    fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError> {
        let ids: Vec<String> = self.run(|c| redis::cmd("SMEMBERS").arg(INSTANCES).query(c))?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            let map: HashMap<String, String> = self.run(|c| {
                redis::cmd("HGETALL")
                    .arg(format!("{INSTANCE}{id}"))
                    .query(c)
            })?;
            if map.is_empty() {
                gone.push(id);
                continue;
            }
            let seen_unix = map.get("seen").and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut fields: Vec<(String, String)> =
                map.into_iter().filter(|(k, _)| k != "seen").collect();
            fields.sort();
            out.push(InstanceInfo {
                id,
                fields,
                seen_unix,
            });
        }
        if !gone.is_empty() {
            self.run(|c| redis::cmd("SREM").arg(INSTANCES).arg(&gone).query::<()>(c))?;
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("redis://:pw@h:6379/0"), "redis://h:6379/0");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }

    #[test]
    fn a_dead_server_fails_fast_and_bounded() {
        // Port 1 on loopback: nothing listens, the connect is refused at once.
        let s = RedisStore::open("redis://127.0.0.1:1", Duration::from_millis(200)).unwrap();
        let e = s.ping().unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        // Inside the fail-fast window no connect is even attempted.
        let e = s.user_keys("a", "r").unwrap_err();
        assert!(e.to_string().contains("recently failed"), "{e}");
    }
}
