//! Storage interfaces the cores need: user credentials and the location
//! service. Both are traits so `natter-store` can back them with SQLite; an
//! in-memory implementation of each ships here for tests and small setups.
//!
//! Times are `Instant`s because the cores are sans-IO. A persistent store
//! converts them to wall-clock on write (`SystemTime::now() + (t - Instant::now())`)
//! and back on read, which is what makes bindings survive a restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use natter_sip::digest::{ha1, Algorithm};

use crate::compact;
use crate::peer::Transport;

/// User credential lookup (the same users as TURN).
pub trait Credentials: Send + Sync {
    /// Clear-text password of `user`, if the store has one.
    fn password(&self, user: &str) -> Option<String>;

    /// H(user:realm:password) for `alg`. Stores that keep only HA1 values
    /// override this (and may return `None` from [`Credentials::password`]).
    fn ha1(&self, user: &str, realm: &str, alg: Algorithm) -> Option<String> {
        self.password(user).map(|p| ha1(alg, user, realm, &p))
    }

    /// Whether `user` exists (decides 480 vs 404 for unregistered targets).
    fn user_exists(&self, user: &str) -> bool {
        self.password(user).is_some()
    }
}

/// Fixed user list.
#[derive(Debug, Default, Clone)]
pub struct StaticCredentials {
    users: HashMap<String, String>,
}

impl StaticCredentials {
    /// Empty list.
    pub fn new() -> StaticCredentials {
        StaticCredentials::default()
    }

    /// Add or replace a user.
    pub fn with_user(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> StaticCredentials {
        self.users.insert(user.into(), password.into());
        self
    }
}

impl Credentials for StaticCredentials {
    fn password(&self, user: &str) -> Option<String> {
        self.users.get(user).cloned()
    }
}

/// One registered contact of an address-of-record (RFC 3261 §10.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Canonical AOR (`sip:user@domain`, see `Uri::aor`).
    pub aor: String,
    /// Contact URI as registered (without `<>` and header parameters).
    pub contact: String,
    /// q-value in thousandths.
    pub q: u16,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// Call-ID of the REGISTER that created or last refreshed it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// Path header values (RFC 3327), used as a pre-loaded route set.
    pub path: Vec<String>,
    /// The flow the REGISTER came in on: transport and source address as
    /// seen by us (RFC 3581 received/rport). For TCP/TLS/WebSocket this is
    /// also the connection's name in the driver, so requests for a NATed
    /// client go back over the connection it registered on.
    pub source: Option<(Transport, SocketAddr)>,
    /// `+sip.instance` of the Contact (RFC 5626 §4.1), verbatim with its
    /// quotes, e.g. `"<urn:uuid:...>"`. With it the binding is keyed by
    /// instance (and reg-id) instead of the Contact URI.
    pub instance: Option<String>,
    /// `reg-id` when the registration used outbound (RFC 5626 §6: Contact
    /// with `+sip.instance` and `reg-id`, `Supported: outbound`). Such a
    /// binding is always reached over its flow.
    pub reg_id: Option<u32>,
}

impl Binding {
    /// True when the registration used RFC 5626 outbound.
    pub fn is_outbound(&self) -> bool {
        self.reg_id.is_some() && self.instance.is_some()
    }
}

/// The location service could not answer or could not make a change durable (a shared store
/// that is down or too slow). The server answers such requests 500 with `Retry-After`: a
/// REGISTER is never acknowledged for a binding that was not written, and a request for a
/// user whose bindings cannot be read gets a 5xx, never a 404 or 480.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("location service unavailable: {0}")]
pub struct Unavailable(pub String);

/// One change a REGISTER makes; [`BindingStore::apply`] takes all of one request's together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert or replace the binding with the same (aor, contact).
    Upsert(Binding),
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

impl Change {
    /// Applies the change to `list` (the AoR's bindings), as a store would.
    pub fn apply_to(&self, list: &mut Vec<Binding>) {
        match self {
            Change::Upsert(b) => match list.iter_mut().find(|x| x.contact == b.contact) {
                Some(x) => *x = b.clone(),
                None => list.push(b.clone()),
            },
            Change::Remove { contact, .. } => list.retain(|x| &x.contact != contact),
            Change::RemoveAll { .. } => list.clear(),
        }
    }
}

/// The location service.
pub trait BindingStore: Send + Sync {
    /// Unexpired bindings of `aor`.
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding>;
    /// Insert or replace the binding with the same (aor, contact).
    fn upsert(&self, binding: Binding);
    /// Remove one binding.
    fn remove(&self, aor: &str, contact: &str);
    /// Remove every binding of `aor`.
    fn remove_all(&self, aor: &str);
    /// Drop expired bindings; returns how many were removed.
    fn purge_expired(&self, now: Instant) -> usize;
    /// Number of stored bindings (all AORs).
    fn len(&self) -> usize;
    /// True when no binding is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Make every change made so far durable, blocking until it is. Drivers
    /// call it before sending the answers to a batch of messages, so no
    /// `200 OK` to a REGISTER goes out for a binding a crash could still
    /// lose; one call covers every change since the last (group commit).
    /// Memory-only stores have nothing to do.
    fn sync(&self) {}
    /// Whether changes are waiting for [`BindingStore::sync`]. Drivers may then gather a
    /// few more messages (a millisecond's worth) so one commit covers them all.
    fn needs_sync(&self) -> bool {
        false
    }
    /// How many changes this store has been asked to make so far (any counter that grows with
    /// each one). A driver compares it before and after handling a message: when it did not
    /// move, the message's answers need not wait for [`BindingStore::sync`], so an INVITE or
    /// an OPTIONS is not held up by the commit of a REGISTER storm (a REGISTER still waits
    /// while changes are pending: its retransmission repeats a 200 OK). Stores that do not
    /// count return 0, and drivers then treat every REGISTER as waiting.
    fn changes(&self) -> u64 {
        0
    }
    /// Like [`BindingStore::lookup`], but says when the answer is unknown (shared store down
    /// and nothing cached) instead of answering "no bindings". Local stores never fail.
    fn try_lookup(&self, aor: &str, now: Instant) -> Result<Vec<Binding>, Unavailable> {
        Ok(self.lookup(aor, now))
    }
    /// Applies one REGISTER's changes, all or none. `Ok` means they are (or, for stores that
    /// commit in groups, will be by the next [`BindingStore::sync`]) durable; `Err` means
    /// none was made and the REGISTER must be refused.
    fn apply(&self, changes: Vec<Change>) -> Result<(), Unavailable> {
        for c in changes {
            match c {
                Change::Upsert(b) => self.upsert(b),
                Change::Remove { aor, contact } => self.remove(&aor, &contact),
                Change::RemoveAll { aor } => self.remove_all(&aor),
            }
        }
        Ok(())
    }
}

/// In-memory location service. Each AOR's bindings are kept packed in one
/// byte string (see `compact`): ~200 bytes per typical user instead of ~440.
/// The AORs are spread over [`SHARDS`] separately locked maps, so SIP threads
/// seldom wait for each other, and a walk over every binding (expiry, a
/// snapshot) holds one small map at a time instead of the whole table.
#[derive(Debug)]
pub struct MemoryBindings {
    shards: Box<[Mutex<Packed>]>,
    /// Picks an AOR's shard; keyed per process, as AORs come from requests.
    hasher: std::collections::hash_map::RandomState,
    /// Origin of the packed expiry times.
    epoch: Instant,
}

/// How many maps [`MemoryBindings`] splits its AORs over.
const SHARDS: usize = 32;

#[derive(Debug, Default)]
struct Packed {
    map: HashMap<Box<str>, Box<[u8]>>,
    /// Bindings over the shard's AORs.
    count: usize,
}

impl Default for MemoryBindings {
    fn default() -> Self {
        MemoryBindings {
            shards: (0..SHARDS).map(|_| Mutex::new(Packed::default())).collect(),
            hasher: Default::default(),
            epoch: Instant::now(),
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update; the map
/// itself is still usable.
fn lock_shard(m: &Mutex<Packed>) -> std::sync::MutexGuard<'_, Packed> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl MemoryBindings {
    /// Empty store.
    pub fn new() -> MemoryBindings {
        MemoryBindings::default()
    }

    fn with<R>(&self, aor: &str, f: impl FnOnce(&mut Packed) -> R) -> R {
        use std::hash::BuildHasher as _;
        let i = (self.hasher.hash_one(aor) as usize) % self.shards.len();
        f(&mut lock_shard(&self.shards[i]))
    }

    /// Calls `f` with every binding, expired or not. Each shard is copied in its packed form
    /// under its lock and decoded after, so a SIP thread waits at most for one small copy.
    /// An AOR changed during the walk is seen either before or after the change, never half
    /// of it.
    pub fn for_each_binding(&self, mut f: impl FnMut(&Binding)) {
        let mut copy: Vec<(Box<str>, Box<[u8]>)> = Vec::new();
        for shard in self.shards.iter() {
            copy.clear();
            copy.extend(
                lock_shard(shard)
                    .map
                    .iter()
                    .map(|(a, p)| (a.clone(), p.clone())),
            );
            for (aor, packed) in &copy {
                for b in compact::decode(self.epoch, aor, packed) {
                    f(&b);
                }
            }
        }
    }

    /// Change the list of `aor` with `f` (unpacked, then packed again; an
    /// empty list removes the AOR).
    fn edit(&self, aor: &str, f: impl FnOnce(&mut Vec<Binding>)) {
        let epoch = self.epoch;
        self.with(aor, |p| {
            let mut list = p
                .map
                .get(aor)
                .map(|b| compact::decode(epoch, aor, b))
                .unwrap_or_default();
            let before = list.len();
            f(&mut list);
            p.count = (p.count + list.len()).saturating_sub(before);
            if list.is_empty() {
                p.map.remove(aor);
            } else {
                let packed = compact::encode_all(epoch, &list);
                match p.map.get_mut(aor) {
                    Some(v) => *v = packed,
                    None => {
                        p.map.insert(aor.into(), packed);
                    }
                }
            }
        });
    }
}

impl MemoryBindings {
    /// Inserts or replaces the binding with `b`'s (aor, contact) without taking it: a store
    /// that keeps `b` as well (a write-behind queue) need not clone it for this table.
    pub fn upsert_ref(&self, b: &Binding) {
        let epoch = self.epoch;
        self.with(&b.aor, |p| {
            let list = p
                .map
                .get(b.aor.as_str())
                .map(|packed| compact::decode(epoch, &b.aor, packed))
                .unwrap_or_default();
            // In place when it refreshes a binding (the list keeps its order), else last.
            let replaced = list.iter().any(|x| x.contact == b.contact);
            let updated = list
                .iter()
                .map(|x| if x.contact == b.contact { b } else { x });
            let added = (!replaced).then_some(b);
            let packed = compact::encode_all(epoch, updated.chain(added));
            if !replaced {
                p.count += 1;
            }
            match p.map.get_mut(b.aor.as_str()) {
                Some(v) => *v = packed,
                None => {
                    p.map.insert(b.aor.as_str().into(), packed);
                }
            }
        });
    }
}

impl BindingStore for MemoryBindings {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        let epoch = self.epoch;
        self.with(aor, |p| {
            let mut v = p
                .map
                .get(aor)
                .map(|b| compact::decode(epoch, aor, b))
                .unwrap_or_default();
            v.retain(|b| b.expires_at > now);
            v
        })
    }

    fn upsert(&self, binding: Binding) {
        self.upsert_ref(&binding);
    }

    fn remove(&self, aor: &str, contact: &str) {
        self.edit(aor, |list| list.retain(|b| b.contact != contact));
    }

    fn remove_all(&self, aor: &str) {
        self.edit(aor, Vec::clear);
    }

    fn purge_expired(&self, now: Instant) -> usize {
        let epoch = self.epoch;
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut p = lock_shard(shard);
            let mut here = 0;
            p.map.retain(|aor, packed| {
                let list = compact::decode(epoch, aor, packed);
                let live = list.iter().filter(|b| b.expires_at > now).count();
                if live < list.len() {
                    here += list.len() - live;
                    *packed =
                        compact::encode_all(epoch, list.iter().filter(|b| b.expires_at > now));
                }
                live > 0
            });
            p.count -= here.min(p.count);
            if p.map.capacity() > 4 * p.map.len() + 4096 {
                let n = 2 * p.map.len();
                p.map.shrink_to(n);
            }
            removed += here;
        }
        removed
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock_shard(s).count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn binding(contact: &str, cseq: u32, now: Instant) -> Binding {
        Binding {
            aor: "sip:alice@example.com".into(),
            contact: contact.into(),
            q: 1000,
            expires_at: now + Duration::from_secs(60),
            call_id: "c".into(),
            cseq,
            path: Vec::new(),
            source: None,
            instance: None,
            reg_id: None,
        }
    }

    #[test]
    fn a_refresh_keeps_the_binding_in_its_place() {
        let now = Instant::now();
        let m = MemoryBindings::new();
        for c in ["sip:a@h", "sip:b@h", "sip:c@h"] {
            m.upsert(binding(c, 1, now));
        }
        m.upsert_ref(&binding("sip:b@h", 2, now));
        let list = m.lookup("sip:alice@example.com", now);
        let got: Vec<_> = list.iter().map(|b| (b.contact.as_str(), b.cseq)).collect();
        assert_eq!(got, [("sip:a@h", 1), ("sip:b@h", 2), ("sip:c@h", 1)]);
        assert_eq!(m.len(), 3);
        m.upsert_ref(&binding("sip:d@h", 1, now));
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn a_walk_sees_every_binding_of_every_shard_once() {
        let now = Instant::now();
        let m = MemoryBindings::new();
        for i in 0..500 {
            let mut b = binding(&format!("sip:c{i}@h"), i, now);
            b.aor = format!("sip:u{}@example.com", i % 200);
            m.upsert(b);
        }
        m.remove_all("sip:u7@example.com");
        let mut seen = Vec::new();
        m.for_each_binding(|b| seen.push((b.aor.clone(), b.contact.clone(), b.cseq)));
        assert_eq!(seen.len(), m.len());
        assert_eq!(seen.len(), 500 - 3);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 497);
        assert!(seen
            .iter()
            .all(|(a, c, n)| { a != "sip:u7@example.com" && *c == format!("sip:c{n}@h") }));
        // The expired ones are walked too (a snapshot leaves them out itself) until purged.
        assert_eq!(m.purge_expired(now + Duration::from_secs(61)), 497);
        let mut left = 0;
        m.for_each_binding(|_| left += 1);
        assert_eq!((left, m.len()), (0, 0));
    }
}
