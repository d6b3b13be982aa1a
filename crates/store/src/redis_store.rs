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
//!
//! **Redis Cluster** (`redis+cluster://[:PASSWORD@]HOST:PORT,HOST:PORT,...`): the same
//! layout under the prefix `{natter}:` instead of `natter:`. The hash tag puts every key in
//! one slot, because the store's transactions span keys (a heartbeat writes `instance:ID`
//! and `instances`; a batch of binding changes may touch several AoRs; the quota is a
//! WATCH/MULTI) and the `loc:` SCAN must see every key on one node. So the store talks to
//! the primary that owns that slot, found with `CLUSTER SLOTS` from the seed nodes on every
//! (re)connect: after a failover or a slot migration the old primary answers with an error
//! (`MOVED`, read-only replica) or not at all, the connection is dropped, and the next call
//! finds the new owner. (The `redis` crate's cluster connection is not used: it refuses
//! pipelines, so MULTI/EXEC could not go through it.) The data set is small (users, live
//! bindings): the cluster gives the store failover, not sharding.

//! **Redis Sentinel** (`redis+sentinel://[:PASSWORD@]HOST:PORT,HOST:PORT/MASTER`): the
//! sentinels are asked `SENTINEL get-master-addr-by-name MASTER` on every (re)connect, in
//! turn, and the store connects to the address given (the password is the data node's;
//! sentinels are asked without one) after checking with `ROLE` that it is a master. After a
//! failover the old master stops answering or turns read-only, the connection is dropped,
//! and the next call asks the sentinels again. Same key layout as a single server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Client, Connection, Value};

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

// Key names after the prefix (`natter:`, or `{natter}:` on a Redis Cluster).
const USERS: &str = "users";
const LOC: &str = "loc:";
const REST: &str = "turn:rest-secrets";
const ALLOC: &str = "turn:alloc:";
const INSTANCE: &str = "instance:";
const INSTANCES: &str = "instances";
const SECRET: &str = "secret:";
/// The URL scheme of a Redis Cluster store: `redis+cluster://[:PASSWORD@]H:P,H:P,...`.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";
const CLUSTER_PREFIX: &str = "{natter}:";
/// The URL scheme of a Sentinel-managed store: `redis+sentinel://[:PASSWORD@]H:P,H:P/MASTER`.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// One server, or the seed nodes of a Redis Cluster (with the user info for every node).
enum Target {
    Single(Client),
    Cluster {
        seeds: Vec<Client>,
        auth: String,
    },
    Sentinel {
        sentinels: Vec<Client>,
        auth: String,
        master: String,
    },
}

/// A Redis-backed store. Share it behind an `Arc`; calls from several threads use separate
/// connections.
pub struct RedisStore {
    target: Target,
    /// `natter:` or, on a cluster, `{natter}:` (one hash slot for every key).
    prefix: &'static str,
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

/// The user info (`:PASSWORD@`, or empty) and seed `HOST:PORT`s of a
/// `redis+cluster://[USERINFO@]H:P,H:P` spec, or `None` when it names no node.
fn cluster_nodes(spec: &str) -> Option<(String, Vec<String>)> {
    let rest = spec.strip_prefix(CLUSTER_SCHEME)?;
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let nodes: Vec<String> = hosts
        .trim_end_matches('/')
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    (!nodes.is_empty()).then(|| (auth.to_owned(), nodes))
}

/// The user info, sentinel `HOST:PORT`s and master name of a
/// `redis+sentinel://[USERINFO@]H:P,H:P/MASTER` spec, or `None` when a part is missing.
fn sentinel_spec(spec: &str) -> Option<(String, Vec<String>, String)> {
    let rest = spec.strip_prefix(SENTINEL_SCHEME)?;
    let (auth, rest) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let (hosts, master) = rest.split_once('/')?;
    let master = master.trim_matches('/').trim();
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    (!nodes.is_empty() && !master.is_empty()).then(|| (auth.to_owned(), nodes, master.to_owned()))
}

/// The `HOST:PORT` of the primary serving `slot`, from a `CLUSTER SLOTS` answer
/// (`[[start, end, [host, port, id..], replicas..], ..]`).
fn slot_owner(slots: &Value, slot: i64) -> Option<String> {
    let Value::Array(ranges) = slots else {
        return None;
    };
    ranges.iter().find_map(|r| {
        let Value::Array(r) = r else { return None };
        match (r.first(), r.get(1), r.get(2)) {
            (Some(Value::Int(lo)), Some(Value::Int(hi)), Some(Value::Array(primary)))
                if (*lo..=*hi).contains(&slot) =>
            {
                let host = match primary.first()? {
                    Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    Value::SimpleString(s) => s.clone(),
                    _ => return None,
                };
                let Value::Int(port) = primary.get(1)? else {
                    return None;
                };
                Some(format!("{host}:{port}"))
            }
            _ => None,
        }
    })
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
    /// A store for `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`, `redis+unix:///PATH`, or
    /// a Redis Cluster: `redis+cluster://[:PASSWORD@]HOST:PORT,HOST:PORT,...`).
    /// Does not connect yet: a server that is down at start is reported by the first call
    /// (and `natter serve` keeps retrying instead of refusing to start).
    pub fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let bad = |e: redis::RedisError| StoreError::Unavailable(format!("{}: {e}", redact(url)));
        let (target, prefix) = if url.starts_with(CLUSTER_SCHEME) {
            let (auth, nodes) = cluster_nodes(url).ok_or(StoreError::Invalid {
                what: "Redis Cluster URL",
                why: "names no node (redis+cluster://HOST:PORT,HOST:PORT,...)",
            })?;
            let seeds = nodes
                .iter()
                .map(|n| Client::open(format!("redis://{auth}{n}")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            (Target::Cluster { seeds, auth }, CLUSTER_PREFIX)
        } else if url.starts_with(SENTINEL_SCHEME) {
            let (auth, nodes, master) = sentinel_spec(url).ok_or(StoreError::Invalid {
                what: "Redis Sentinel URL",
                why: "needs sentinels and a master name (redis+sentinel://HOST:PORT,HOST:PORT/MASTER)",
            })?;
            let sentinels = nodes
                .iter()
                .map(|n| Client::open(format!("redis://{n}")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            (
                Target::Sentinel {
                    sentinels,
                    auth,
                    master,
                },
                "natter:",
            )
        } else {
            (Target::Single(Client::open(url).map_err(bad)?), "natter:")
        };
        let timeout = if timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            timeout
        };
        Ok(Self {
            target,
            prefix,
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

    /// The full name of key `name` (one of the constants above, plus a suffix).
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
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

    fn connect_to(&self, client: &Client) -> redis::RedisResult<Connection> {
        let c = client.get_connection_with_timeout(self.timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        Ok(c)
    }

    fn connect(&self) -> redis::RedisResult<Connection> {
        match &self.target {
            Target::Single(client) => self.connect_to(client),
            Target::Cluster { seeds, auth } => {
                // The first seed that answers says who owns the slot; each step is bounded
                // by the timeout, and the seeds are tried once each.
                let mut last = None;
                for seed in seeds {
                    match self.connect_owner(seed, auth) {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::Client, "no seed node"))
                }))
            }
            Target::Sentinel {
                sentinels,
                auth,
                master,
            } => {
                let mut last = None;
                for s in sentinels {
                    match self.connect_master(s, auth, master) {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::Client, "no sentinel"))
                }))
            }
        }
    }

    /// Asks sentinel `s` where `master` is and connects to it, if it is a master.
    fn connect_master(
        &self,
        s: &Client,
        auth: &str,
        master: &str,
    ) -> redis::RedisResult<Connection> {
        let mut sc = self.connect_to(s)?;
        let addr: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master)
            .query(&mut sc)?;
        let (host, port) = addr.ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Client,
                "the sentinel does not know this master name",
            ))
        })?;
        let mut c = self.connect_to(&Client::open(format!("redis://{auth}{host}:{port}"))?)?;
        let role: Value = redis::cmd("ROLE").query(&mut c)?;
        let is_master = match &role {
            Value::Array(v) => matches!(v.first(), Some(Value::BulkString(b)) if b == b"master"),
            _ => false,
        };
        if is_master {
            Ok(c)
        } else {
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "the address the sentinel gave is not a master (failover in progress?)",
            )))
        }
    }

    /// Asks `seed` which primary owns the `{natter}` slot and connects to it.
    fn connect_owner(&self, seed: &Client, auth: &str) -> redis::RedisResult<Connection> {
        let mut c = self.connect_to(seed)?;
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(CLUSTER_PREFIX)
            .query(&mut c)?;
        let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut c)?;
        let owner = slot_owner(&slots, slot).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Client,
                "no primary serves the {natter} slot (cluster not ready?)",
            ))
        })?;
        let here = seed.get_connection_info().addr().to_string();
        if here == owner {
            return Ok(c);
        }
        self.connect_to(&Client::open(format!("redis://{auth}{owner}"))?)
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
        let pattern = format!("{}*", self.key(LOC));
        self.run(|c| {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            for _ in 0..1_000_000 {
                let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
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
                .arg(self.key(USERS))
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
        self.run(|c| {
            redis::cmd("HDEL")
                .arg(self.key(USERS))
                .arg(&fields)
                .query::<usize>(c)
        })
    }

    fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let fields: Vec<String> =
            self.run(|c| redis::cmd("HKEYS").arg(self.key(USERS)).query(c))?;
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
                .arg(self.key(USERS))
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
                    let key = self.key(&format!("{LOC}{}", b.aor));
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
                        .arg(self.key(&format!("{LOC}{aor}")))
                        .arg(contact)
                        .ignore();
                }
                BindingChange::RemoveAll { aor } => {
                    pipe.cmd("DEL")
                        .arg(self.key(&format!("{LOC}{aor}")))
                        .ignore();
                }
            }
        }
        // EXEC's reply arrives only after Redis applied every command: the write is done
        // (durable as configured on the server: AOF/replicas are its operator's choice).
        self.run(|c| pipe.query::<()>(c))
    }

    fn bindings(&self, aor: &str, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        let map: HashMap<Vec<u8>, Vec<u8>> = self.run(|c| {
            redis::cmd("HGETALL")
                .arg(self.key(&format!("{LOC}{aor}")))
                .query(c)
        })?;
        let mut v = Self::decode_all(aor, map);
        v.retain(|b| b.expires_at > now_unix);
        Ok(v)
    }

    fn live_bindings(&self, now_unix: u64) -> Result<Vec<BindingRecord>, StoreError> {
        let mut out = Vec::new();
        for key in self.loc_keys()? {
            let Some(aor) = key.strip_prefix(self.key(LOC).as_bytes()) else {
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
        let key = self.key(&format!("{SECRET}{name}"));
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
        self.run(|c| {
            redis::cmd("LRANGE")
                .arg(self.key(REST))
                .arg(0)
                .arg(-1)
                .query(c)
        })
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
                .arg(self.key(REST))
                .arg(0)
                .arg(secret)
                .ignore()
                .cmd("LPUSH")
                .arg(self.key(REST))
                .arg(secret)
                .ignore()
                .cmd("LTRIM")
                .arg(self.key(REST))
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
        let key = self.key(&format!("{ALLOC}{user}"));
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
        let key = self.key(&format!("{ALLOC}{user}"));
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
        let key = self.key(&format!("{INSTANCE}{}", info.id));
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
        pipe.cmd("SADD")
            .arg(self.key(INSTANCES))
            .arg(&info.id)
            .ignore();
        self.run(|c| pipe.query::<()>(c))
    }

    fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError> {
        let ids: Vec<String> =
            self.run(|c| redis::cmd("SMEMBERS").arg(self.key(INSTANCES)).query(c))?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            let map: HashMap<String, String> = self.run(|c| {
                redis::cmd("HGETALL")
                    .arg(self.key(&format!("{INSTANCE}{id}")))
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
            self.run(|c| {
                redis::cmd("SREM")
                    .arg(self.key(INSTANCES))
                    .arg(&gone)
                    .query::<()>(c)
            })?;
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
        assert_eq!(
            redact("redis+cluster://:pw@h:1,h:2"),
            "redis+cluster://h:1,h:2"
        );
    }

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        let (auth, nodes) = cluster_nodes("redis+cluster://h1:7000,h2:7001/").unwrap();
        assert_eq!(
            (auth.as_str(), nodes),
            ("", vec!["h1:7000".to_owned(), "h2:7001".to_owned()])
        );
        let (auth, nodes) = cluster_nodes("redis+cluster://:pw@h1:7000, h2:7001").unwrap();
        assert_eq!((auth.as_str(), nodes.len()), (":pw@", 2));
        assert_eq!(cluster_nodes("redis+cluster://"), None);
        let (auth, nodes, master) =
            sentinel_spec("redis+sentinel://:pw@s1:26379, s2:26380/natterm").unwrap();
        assert_eq!(auth, ":pw@");
        assert_eq!(nodes, vec!["s1:26379".to_owned(), "s2:26380".to_owned()]);
        assert_eq!(master, "natterm");
        assert_eq!(sentinel_spec("redis+sentinel://s1:26379"), None);
        assert_eq!(sentinel_spec("redis+sentinel://s1:26379/"), None);
        assert!(RedisStore::open("redis+sentinel://s1:1", DEFAULT_TIMEOUT).is_err());
        assert!(RedisStore::open("redis+cluster://,", DEFAULT_TIMEOUT).is_err());
    }

    #[test]
    fn the_slot_owner_is_read_from_cluster_slots() {
        let node = |h: &str, p: i64| Value::Array(vec![Value::BulkString(h.into()), Value::Int(p)]);
        let slots = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 7001),
                node("10.0.0.9", 7009),
            ]),
        ]);
        assert_eq!(slot_owner(&slots, 6000).as_deref(), Some("10.0.0.2:7001"));
        assert_eq!(slot_owner(&slots, 0).as_deref(), Some("10.0.0.1:7000"));
        assert_eq!(slot_owner(&slots, 12000), None);
        assert_eq!(slot_owner(&Value::Nil, 1), None);
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
