//! The SIP registrar/proxy inside `natter serve`: the sans-IO core of `natter-sip-server`
//! driven by `natter-sip-io` on its own thread, with users from the same keys as TURN and
//! bindings persisted in the embedded store so a restart keeps every registration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use natter_sip::digest::Algorithm;
use natter_sip_io::{Mode, SipServeConfig, StatsHandle};
use natter_sip_server::{Binding, BindingStore, Credentials, MemoryBindings, Transport};
use natter_store::binding_log::{self, BindingLog};
use natter_store::{Backend as _, BindingRecord, Store};
use natter_turn::server::Authenticator;

use crate::auth::Keys;

/// SIP users are the TURN users: static `--user` entries and the store, looked up by HA1
/// (the store keeps only MD5(user:realm:password) and its SHA-256 twin, never passwords).
pub struct SipCredentials {
    keys: Arc<Keys>,
    realm: String,
}

impl SipCredentials {
    /// Credentials for digest `realm` over the server's key source.
    pub fn new(keys: Arc<Keys>, realm: &str) -> Self {
        Self {
            keys,
            realm: realm.to_owned(),
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Credentials for SipCredentials {
    fn password(&self, _user: &str) -> Option<String> {
        None
    }

    fn ha1(&self, user: &str, realm: &str, alg: Algorithm) -> Option<String> {
        let k = self.keys.keys(user, realm, unix_now())?;
        match alg {
            // The -sess variants derive their session key from the same HA1.
            Algorithm::Md5 | Algorithm::Md5Sess => Some(natter_sip::syntax::hex(&k.md5)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                k.sha256.map(|s| natter_sip::syntax::hex(&s))
            }
        }
    }

    fn user_exists(&self, user: &str) -> bool {
        self.keys.keys(user, &self.realm, unix_now()).is_some()
    }
}

/// Changes made but not yet written to the binding log.
#[derive(Default)]
struct Dirty {
    /// Their records, encoded (`natter_store::binding_log`'s format), in the order the
    /// changes were made to the in-memory table.
    pending: Vec<u8>,
    stop: bool,
    /// Changes made so far.
    queued: u64,
    /// Changes written: `queued` as it was when the last write took `pending`. `sync`
    /// waits for this to catch up.
    committed: u64,
}

/// The location service: an in-memory table (every lookup is served from memory) whose
/// changes are appended to the store's binding log, and which is reloaded from it at start
/// (see `natter_store::binding_log`). The SIP driver calls [`BindingStore::sync`] before it
/// sends the answers to each batch of messages, so a `200 OK` leaves only once its binding's
/// record is written (group commit: one `write` per batch, not per REGISTER), and a crash
/// (kill -9) loses no acknowledged binding.
pub struct StoreBindings {
    mem: MemoryBindings,
    store: Arc<Store>,
    /// The binding log; `None` for an in-memory store, whose `bindings` table then takes
    /// each batch in one transaction.
    log: Mutex<Option<BindingLog>>,
    dirty: Mutex<Dirty>,
    wake: Condvar,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Clock pair used to turn the core's `Instant`s into unix seconds and back.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) instant: Instant,
    pub(crate) unix: u64,
}

impl Clock {
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            unix: unix_now(),
        }
    }

    /// Rounds up, so a binding never lapses earlier in the store than in memory.
    fn to_unix(self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.instant);
        self.unix + d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }

    fn to_instant(self, unix: u64) -> Instant {
        self.instant + Duration::from_secs(unix.saturating_sub(self.unix))
    }
}

/// The flow of a binding as stored in the `source` column: `transport:ip:port`, e.g.
/// `UDP:127.0.0.1:5060` or `TCP:[::1]:5060`, then for RFC 5626 registrations
/// `|reg-id|+sip.instance` (reg-id empty when outbound was not used), e.g.
/// `UDP:203.0.113.9:40000|1|"<urn:uuid:...>"`. Rows written before outbound existed have
/// no `|` and read back as plain flows, so no schema change is needed.
fn source_text(b: &Binding) -> String {
    use natter_sip::syntax::{push_decimal, push_ip};
    // Written piece by piece: this runs on the SIP thread for every binding it commits.
    let mut s = String::with_capacity(56 + b.instance.as_ref().map_or(0, String::len));
    if let Some((t, a)) = b.source {
        s.push_str(t.via_token());
        s.push(':');
        // `SocketAddr`'s own form, which `parse_source` reads back.
        match a {
            SocketAddr::V4(v4) => {
                push_ip(&mut s, a.ip());
                s.push(':');
                push_decimal(&mut s, u32::from(v4.port()));
            }
            SocketAddr::V6(v6) if v6.scope_id() != 0 => s.push_str(&a.to_string()),
            SocketAddr::V6(v6) => {
                s.push('[');
                push_ip(&mut s, a.ip());
                s.push_str("]:");
                push_decimal(&mut s, u32::from(v6.port()));
            }
        }
    }
    if let Some(i) = &b.instance {
        s.push('|');
        if let Some(r) = b.reg_id {
            push_decimal(&mut s, r);
        }
        s.push('|');
        s.push_str(i);
    }
    s
}

/// Flow, reg-id and instance from [`source_text`]'s format.
type StoredFlow = (Option<(Transport, SocketAddr)>, Option<u32>, Option<String>);

fn parse_source(s: &str) -> StoredFlow {
    let mut parts = s.splitn(3, '|');
    let flow = parts.next().and_then(|f| {
        let (t, a) = f.split_once(':')?;
        Some((Transport::from_token(t)?, a.parse().ok()?))
    });
    let reg_id = parts.next().and_then(|r| r.parse().ok());
    let instance = parts.next().filter(|i| !i.is_empty()).map(str::to_owned);
    // A reg-id means nothing without its instance.
    (flow, reg_id.filter(|_| instance.is_some()), instance)
}

pub(crate) fn to_record(b: &Binding, clock: Clock) -> BindingRecord {
    BindingRecord {
        aor: b.aor.clone(),
        contact: b.contact.clone(),
        expires_at: clock.to_unix(b.expires_at),
        q: f32::from(b.q) / 1000.0,
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        // Path values are name-addrs that may hold commas; one per line.
        path: b.path.join("\n"),
        source: source_text(b),
        owner: String::new(),
    }
}

pub(crate) fn from_record(r: BindingRecord, clock: Clock) -> Binding {
    let (source, reg_id, instance) = parse_source(&r.source);
    Binding {
        expires_at: clock.to_instant(r.expires_at),
        q: (r.q.clamp(0.0, 1.0) * 1000.0).round() as u16,
        path: r
            .path
            .split('\n')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        source,
        instance,
        reg_id,
        aor: r.aor,
        contact: r.contact,
        call_id: r.call_id,
        cseq: r.cseq,
    }
}

/// How often the writer thread writes changes no SIP batch has written yet.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often the active log segment is synced to disk (what a power cut may take).
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Soonest a failed snapshot is tried again.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(10);
/// How often freed heap pages go back to the kernel (see [`release_free_memory`]).
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// A REGISTER burst leaves tens of thousands of finished transactions that are dropped 32 s
/// later (Timer J); glibc keeps the freed pages, so the process would stay at its peak size.
/// `malloc_trim` hands free pages back, so RSS follows the live bindings.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and releases glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The writer thread's bursts (a snapshot walks every binding) must not delay the SIP
/// threads on a machine whose cores they keep busy: it runs at the lowest priority (nice 19),
/// so it takes the CPU they leave. Its waits on the table's locks are short copies.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their arguments; on Linux a thread id names
    // just this thread for PRIO_PROCESS.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// Fix glibc's mmap threshold at its default (128 KiB). Left dynamic, it rises to the size of
/// the largest mapped block freed (the SIP core's 256 KiB chunks of responses held for Timer J),
/// after which those chunks come from the heap, where small long-lived allocations fill the
/// holes they leave and the pages can no longer be handed back.
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

impl StoreBindings {
    /// Loads the live bindings of `store` and starts the writer thread. `file` is the store's
    /// SQLite file: its binding log lives next to it (taken for this process; an error if
    /// another server holds it). Bindings a previous version left in the `bindings` table
    /// move into the log.
    pub fn open(
        store: Arc<Store>,
        file: Option<&std::path::Path>,
    ) -> Result<Arc<Self>, natter_store::StoreError> {
        fix_mmap_threshold();
        let clock = Clock::now();
        let (log, records) = match file {
            Some(f) => {
                let (log, records) =
                    BindingLog::open(f, clock.unix, &mut || store.live_bindings(clock.unix))?;
                // The log's first snapshot holds them now.
                store.clear_binding_table()?;
                (Some(log), records)
            }
            None => (None, store.live_bindings(clock.unix)?),
        };
        let mem = MemoryBindings::new();
        for r in records {
            mem.upsert(from_record(r, clock));
        }
        let me = Arc::new(Self {
            mem,
            store,
            log: Mutex::new(log),
            dirty: Mutex::new(Dirty::default()),
            wake: Condvar::new(),
            writer: Mutex::new(None),
        });
        let w = me.clone();
        let h = std::thread::Builder::new()
            .name("sip-bindings".into())
            .spawn(move || w.write_loop())
            .map_err(|_| natter_store::StoreError::Poisoned)?;
        *lock(&me.writer) = Some(h);
        Ok(me)
    }

    fn write_loop(&self) {
        lower_own_priority();
        let mut last_trim = Instant::now();
        let mut last_sync = Instant::now();
        let mut last_failed_snapshot: Option<Instant> = None;
        loop {
            let stop = {
                let d = lock(&self.dirty);
                // Always the full interval: the SIP thread writes its own batches, so
                // pending changes do not mean the writer has to hurry.
                let d = if !d.stop {
                    match self.wake.wait_timeout(d, FLUSH_EVERY) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    }
                } else {
                    d
                };
                d.stop
            };
            self.flush();
            if stop || last_sync.elapsed() >= SYNC_EVERY {
                last_sync = Instant::now();
                self.sync_to_disk();
            }
            let wants = lock(&self.log)
                .as_ref()
                .is_some_and(BindingLog::wants_snapshot);
            let retry_due =
                !matches!(last_failed_snapshot, Some(t) if t.elapsed() < SNAPSHOT_RETRY);
            if wants && retry_due {
                match self.snapshot() {
                    Ok(()) => last_failed_snapshot = None,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot write the SIP binding snapshot");
                        last_failed_snapshot = Some(Instant::now());
                    }
                }
            }
            if last_trim.elapsed() >= TRIM_EVERY {
                last_trim = Instant::now();
                release_free_memory();
            }
            if stop {
                return;
            }
        }
    }

    /// Syncs the active segment to disk, through a second descriptor so the SIP thread's
    /// appends do not wait for the disk.
    fn sync_to_disk(&self) {
        let handle = lock(&self.log)
            .as_ref()
            .and_then(|l| l.active_handle().ok());
        if let Some(h) = handle {
            if let Err(e) = h.sync_data() {
                tracing::warn!(error = %e, "cannot sync the SIP binding log");
            }
        }
    }

    /// Rewrites the log as a snapshot of the in-memory table: a new segment takes every
    /// change from here on, the table is walked one shard at a time (SIP threads keep
    /// working), and the segments before the new one are deleted once the snapshot is on
    /// disk.
    fn snapshot(&self) -> Result<(), natter_store::StoreError> {
        let (mut w, db) = {
            let mut log = lock(&self.log);
            let Some(l) = log.as_mut() else {
                return Ok(());
            };
            (l.begin_snapshot()?, l.db().to_path_buf())
        };
        let clock = Clock::now();
        let mut buf = Vec::with_capacity(128 << 10);
        let mut failed = None;
        let mut n = 0u64;
        self.mem.for_each_binding(|b| {
            n += 1;
            if b.expires_at <= clock.instant || failed.is_some() {
                return;
            }
            encode_binding(&mut buf, b, clock);
            if buf.len() >= 120 << 10 {
                if let Err(e) = w.write(&buf) {
                    failed = Some(e);
                }
                buf.clear();
            }
        });
        let io = |e: std::io::Error| natter_store::StoreError::Unavailable(e.to_string());
        if let Some(e) = failed {
            return Err(io(e));
        }
        w.write(&buf).map_err(io)?;
        let walked = clock.instant.elapsed();
        let bytes = binding_log::finish_snapshot_file(&db, w).map_err(io)?;
        if let Some(l) = lock(&self.log).as_mut() {
            l.snapshot_done(bytes);
        }
        tracing::debug!(
            bindings = n,
            bytes,
            walk_ms = walked.as_millis() as u64,
            total_ms = clock.instant.elapsed().as_millis() as u64,
            "SIP binding snapshot written"
        );
        Ok(())
    }

    /// Writes every change queued so far. Whoever calls it (the SIP thread in `sync`, the
    /// writer thread on its timer) takes the records and writes them under the log's lock,
    /// so they reach the log in the order they were made.
    fn flush(&self) {
        let mut log = lock(&self.log);
        let (bytes, upto) = {
            let mut d = lock(&self.dirty);
            if d.committed >= d.queued {
                return;
            }
            (std::mem::take(&mut d.pending), d.queued)
        };
        match log.as_mut() {
            Some(l) => {
                if let Err(e) = l.append(&bytes) {
                    tracing::warn!(error = %e, "cannot write to the SIP binding log");
                }
            }
            None => {
                let changes: Vec<_> = binding_log::Records::new(&bytes).collect();
                if let Err(e) = self.store.write_bindings(&changes) {
                    tracing::warn!(error = %e, "cannot persist SIP bindings");
                }
            }
        }
        let mut d = lock(&self.dirty);
        d.committed = d.committed.max(upto);
        // Hand the buffer back, so the next batch does not grow a new one.
        if d.pending.is_empty() {
            let mut bytes = bytes;
            bytes.clear();
            d.pending = bytes;
        }
    }

    /// Returns once every change made so far is written. The caller writes them itself:
    /// handing them to the writer thread and waiting for it cost two thread wake-ups per
    /// batch of messages, more than the write.
    fn wait_committed(&self) {
        {
            let d = lock(&self.dirty);
            if d.committed >= d.queued {
                return;
            }
        }
        self.flush();
    }

    /// Writes everything pending and stops the writer (at shutdown).
    pub fn flush_and_stop(&self) {
        lock(&self.dirty).stop = true;
        self.wake.notify_one();
        if let Some(h) = lock(&self.writer).take() {
            let _ = h.join();
        }
        // Anything queued after the writer stopped goes out here.
        self.flush();
        self.sync_to_disk();
    }

    /// Makes one change to the in-memory table and queues its record, under one lock, so
    /// the log holds every AOR's changes in the order the table saw them.
    fn change(&self, apply: impl FnOnce(&MemoryBindings), record: impl FnOnce(&mut Vec<u8>)) {
        let mut d = lock(&self.dirty);
        apply(&self.mem);
        record(&mut d.pending);
        d.queued += 1;
        if d.stop {
            // The writer is gone: write through.
            drop(d);
            self.flush();
        }
    }
}

/// Appends `b`'s put record (expiry in unix seconds by `clock`).
fn encode_binding(out: &mut Vec<u8>, b: &Binding, clock: Clock) {
    binding_log::encode_put(
        out,
        &binding_log::PutRef {
            aor: &b.aor,
            contact: &b.contact,
            expires_at: clock.to_unix(b.expires_at),
            q: f32::from(b.q) / 1000.0,
            call_id: &b.call_id,
            cseq: b.cseq,
            path: &b.path,
            source: &source_text(b),
        },
    );
}

impl BindingStore for StoreBindings {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.mem.lookup(aor, now)
    }

    fn upsert(&self, binding: Binding) {
        let clock = Clock::now();
        self.change(
            |m| m.upsert_ref(&binding),
            |out| encode_binding(out, &binding, clock),
        );
    }

    fn remove(&self, aor: &str, contact: &str) {
        self.change(
            |m| m.remove(aor, contact),
            |out| binding_log::encode_remove(out, aor, contact),
        );
    }

    fn remove_all(&self, aor: &str) {
        self.change(
            |m| m.remove_all(aor),
            |out| binding_log::encode_remove_all(out, aor),
        );
    }

    fn purge_expired(&self, now: Instant) -> usize {
        // No records: a reload and the next snapshot leave expired bindings out anyway.
        self.mem.purge_expired(now)
    }

    fn len(&self) -> usize {
        self.mem.len()
    }

    fn sync(&self) {
        self.wait_committed();
    }

    fn needs_sync(&self) -> bool {
        let d = lock(&self.dirty);
        d.committed < d.queued
    }

    fn changes(&self) -> u64 {
        lock(&self.dirty).queued
    }
}

/// What `natter serve` passes in.
pub struct SipSettings {
    /// UDP+TCP listeners.
    pub listen: Vec<SocketAddr>,
    /// TLS listeners (used only with `tls`).
    pub tls_listen: Vec<SocketAddr>,
    /// Domain we are registrar and proxy for.
    pub domain: String,
    /// Digest realm (the TURN realm: the stored keys are derived for it).
    pub realm: String,
    /// Require digest authentication.
    pub auth: bool,
    /// Answer 302 instead of proxying.
    pub redirect: bool,
    /// Spread UDP requests over the threads by Call-ID (see `SipServeConfig::spread_by_call_id`).
    pub spread_by_call_id: bool,
    /// Registrations in memory only (with the local store): nothing written, nothing reloaded.
    pub volatile_bindings: bool,
    /// Server certificate (the TURN one).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The store's SQLite file (for batched binding writes).
    pub store_file: Option<std::path::PathBuf>,
    /// Where DNS questions for named next hops go.
    pub dns: natter_sip_io::DnsConfig,
    /// For TLS connections the proxy opens.
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    /// SIP threads (UDP shards), like the TURN shards.
    pub threads: usize,
}

/// The system's CA bundle on Debian and derivatives.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The client TLS configuration for the proxy's outbound connections: the
/// CAs in `ca` (else the system bundle, when there is one), or none checked
/// with `insecure`. None when there is nothing to trust: TLS next hops are
/// then reached only over connections they opened.
pub fn tls_client(
    ca: Option<std::path::PathBuf>,
    insecure: bool,
) -> Result<Option<Arc<rustls::ClientConfig>>, Box<dyn std::error::Error>> {
    let ca = ca.or_else(|| {
        let p = std::path::PathBuf::from(SYSTEM_CA_BUNDLE);
        p.exists().then_some(p)
    });
    if ca.is_none() && !insecure {
        return Ok(None);
    }
    let trust = natter_sip_io::client::TlsTrust {
        ca,
        insecure,
        server_name: String::new(),
    };
    Ok(Some(Arc::new(natter_sip_io::client::tls_config(&trust)?)))
}

/// Where the location service keeps bindings.
pub enum SipStore {
    /// The embedded SQLite store: bindings in memory, written behind in groups.
    Local(Arc<Store>),
    /// A cluster's shared store: bindings read and written there (see `sip_cluster`).
    Shared {
        /// The store.
        store: natter_store::SharedStore,
        /// Cluster secret: digest nonces and flow tokens verify on every instance.
        secret: [u8; 32],
        /// Unix second the cluster's nonce timestamps count from.
        epoch_unix: u64,
    },
}

/// A running SIP server.
pub struct SipHandle {
    /// UDP addresses bound.
    pub udp: Vec<SocketAddr>,
    /// TCP addresses bound.
    pub tcp: Vec<SocketAddr>,
    /// TLS addresses bound.
    pub tls: Vec<SocketAddr>,
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    bindings: Arc<dyn BindingStore>,
    /// The embedded store's writer, flushed at shutdown.
    local: Option<Arc<StoreBindings>>,
    stats: StatsHandle,
}

/// The default listeners: UDP+TCP 5060 on all IPv4 addresses.
pub fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060)]
}

/// Binds every listener (errors surface here) and serves on a thread of its own.
pub fn start(
    s: SipSettings,
    keys: Arc<Keys>,
    store: SipStore,
) -> Result<SipHandle, Box<dyn std::error::Error>> {
    let first = *s.listen.first().ok_or("no SIP listen address")?;
    let mut cfg = SipServeConfig::new(&s.domain, first);
    cfg.udp = s.listen.clone();
    cfg.tcp = s.listen.clone();
    if s.tls.is_some() {
        cfg.tls_listen = s.tls_listen.clone();
        cfg.tls = s.tls.clone();
    }
    cfg.server.auth = s.auth;
    cfg.dns = s.dns.clone();
    cfg.tls_client = s.tls_client.clone();
    cfg.udp_shards = s.threads.max(1);
    cfg.spread_by_call_id = s.spread_by_call_id;
    cfg.server.realm = s.realm.clone();
    cfg.server.mode = if s.redirect {
        Mode::Redirect
    } else {
        Mode::Proxy
    };
    if s.listen.iter().any(|a| a.ip().is_unspecified()) {
        // Via/Record-Route need a reachable host when we listen on a wildcard.
        let ip = crate::config::first_interface_ip(true).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        cfg.server.advertise = Some(ip.to_string());
    }
    cfg.server.secret = rand::random();
    let (b2, local, cluster): (Arc<dyn BindingStore>, _, _) = match store {
        SipStore::Local(_) if s.volatile_bindings => {
            tracing::info!("SIP registrations are kept in memory only (--sip-volatile-bindings)");
            // No writer thread hands freed pages back here: the SIP thread does (below).
            fix_mmap_threshold();
            (Arc::new(MemoryBindings::new()), None, None)
        }
        SipStore::Local(store) => {
            let b = StoreBindings::open(store, s.store_file.as_deref())?;
            (b.clone(), Some(b), None)
        }
        SipStore::Shared {
            store,
            secret,
            epoch_unix,
        } => {
            if s.volatile_bindings {
                tracing::warn!(
                    "--sip-volatile-bindings ignored: a cluster keeps bindings in its shared store"
                );
            }
            cfg.server.secret = secret;
            let behind = Duration::from_secs(unix_now().saturating_sub(epoch_unix));
            cfg.server.nonce_epoch = Instant::now().checked_sub(behind);
            let b = crate::sip_cluster::ClusterBindings::new(store, secret);
            (b.clone(), None, Some(b))
        }
    };
    let creds: Arc<dyn Credentials> = Arc::new(SipCredentials::new(keys, &s.realm));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let bindings = b2.clone();
    // Memory-only bindings: no writer thread hands freed pages back, so the SIP runtime does.
    let trim_here = local.is_none() && cluster.is_none();
    let thread = std::thread::Builder::new()
        .name("sip".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                if trim_here {
                    // Off the SIP thread: trimming a large heap can take milliseconds.
                    tokio::spawn(async {
                        loop {
                            tokio::time::sleep(TRIM_EVERY).await;
                            let _ = tokio::task::spawn_blocking(release_free_memory).await;
                        }
                    });
                }
                match natter_sip_io::bind_with_stats(cfg, creds, b2, rx).await {
                    Ok((bound, stats, fut)) => {
                        let _ = ready_tx.send(Ok((bound, stats)));
                        if let Err(e) = fut.await {
                            tracing::error!(error = %e, "SIP server stopped");
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                    }
                }
            });
        })?;
    let (bound, stats) = match ready_rx.recv() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            let _ = thread.join();
            if let Some(l) = &local {
                l.flush_and_stop();
            }
            return Err(format!("SIP: {e}").into());
        }
        Err(_) => return Err("SIP server thread died".into()),
    };
    if let Some(c) = &cluster {
        // Other instances reach bindings' flows through our first UDP listener.
        let first = bound.of(Transport::Udp).first().copied();
        if let Some(a) = first {
            let host = if a.ip().is_unspecified() {
                crate::config::first_interface_ip(a.is_ipv4()).unwrap_or(a.ip())
            } else {
                a.ip()
            };
            c.set_owner(SocketAddr::new(host, a.port()).to_string());
        }
    }
    tracing::info!(listeners = ?bound.listeners, domain = %s.domain, auth = s.auth, "SIP server listening");
    Ok(SipHandle {
        udp: bound.of(Transport::Udp),
        tcp: bound.of(Transport::Tcp),
        tls: bound.of(Transport::Tls),
        shutdown: tx,
        thread: Some(thread),
        bindings,
        local,
        stats,
    })
}

impl SipHandle {
    /// The readiness line scripts wait for.
    pub fn ready_line(&self) -> String {
        let j = |v: &[SocketAddr]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "natter: sip udp={} tcp={} tls={}",
            j(&self.udp),
            j(&self.tcp),
            j(&self.tls)
        )
    }

    /// A handle for `/metrics` that outlives borrowing `self`.
    pub fn metrics_source(&self) -> SipMetrics {
        SipMetrics {
            stats: self.stats.clone(),
            bindings: self.bindings.clone(),
        }
    }

    /// Stops serving and writes pending bindings to the store.
    pub fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(l) = &self.local {
            l.flush_and_stop();
        }
    }
}

/// Renders the SIP counters in Prometheus text.
#[derive(Clone)]
pub struct SipMetrics {
    stats: StatsHandle,
    bindings: Arc<dyn BindingStore>,
}

impl SipMetrics {
    /// A few figures for the cluster heartbeat (`natter cluster status`).
    pub fn figures(&self) -> Vec<(String, String)> {
        let mut f = vec![("sip_bindings".to_owned(), self.bindings.len().to_string())];
        if let Some(s) = self.stats.get() {
            f.push((
                "sip_registrations".to_owned(),
                s.core.registrations.to_string(),
            ));
            f.push(("sip_forwarded".to_owned(), s.core.forwarded.to_string()));
            f.push(("sip_transactions".to_owned(), s.transactions.to_string()));
        }
        f
    }

    /// Prometheus text (empty once the server stopped).
    pub fn render(&self) -> String {
        use natter_turn_io::metrics::push;
        let mut o = String::new();
        let Some(s) = self.stats.get() else {
            return o;
        };
        push(
            &mut o,
            "natter_sip_bindings",
            "gauge",
            "Registered SIP contacts.",
            self.bindings.len() as u64,
        );
        push(
            &mut o,
            "natter_sip_transactions",
            "gauge",
            "Live SIP transactions.",
            s.transactions as u64,
        );
        push(
            &mut o,
            "natter_sip_connections",
            "gauge",
            "Open SIP TCP/TLS/WebSocket connections.",
            s.connections as u64,
        );
        push(
            &mut o,
            "natter_sip_registrations_total",
            "counter",
            "REGISTER requests answered 200.",
            s.core.registrations,
        );
        push(
            &mut o,
            "natter_sip_forwarded_total",
            "counter",
            "Requests forwarded statefully (per branch).",
            s.core.forwarded,
        );
        push(
            &mut o,
            "natter_sip_stateless_total",
            "counter",
            "Messages relayed statelessly (2xx ACKs, stray responses).",
            s.core.stateless,
        );
        push(
            &mut o,
            "natter_sip_parse_errors_total",
            "counter",
            "SIP messages that failed to parse.",
            s.core.parse_errors,
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_sip_io::client::{self, ClientConfig};
    use std::collections::HashSet;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn settings() -> SipSettings {
        SipSettings {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            tls_listen: Vec::new(),
            domain: "natter".into(),
            realm: "natter".into(),
            auth: true,
            redirect: false,
            spread_by_call_id: false,
            volatile_bindings: false,
            tls: None,
            store_file: None,
            dns: natter_sip_io::DnsConfig::System,
            tls_client: None,
            threads: 2,
        }
    }

    fn serve(path: &std::path::Path) -> (SipHandle, Arc<Store>) {
        serve_with(path, false)
    }

    fn serve_with(path: &std::path::Path, volatile_bindings: bool) -> (SipHandle, Arc<Store>) {
        let store = Arc::new(Store::open(path).unwrap());
        let keys = Arc::new(Keys::new(
            "natter",
            &[("alice".into(), "pw".into())],
            None,
            Some(store.clone() as natter_store::SharedStore),
        ));
        let mut s = settings();
        s.store_file = Some(path.to_owned());
        s.volatile_bindings = volatile_bindings;
        (
            start(s, keys, SipStore::Local(store.clone())).unwrap(),
            store,
        )
    }

    fn client(server: SocketAddr, contact: Option<String>) -> ClientConfig {
        ClientConfig {
            server,
            bind: "127.0.0.1:0".parse().unwrap(),
            user: "alice".into(),
            domain: "natter".into(),
            password: Some("pw".into()),
            timeout: Duration::from_secs(3),
            contact,
        }
    }

    #[test]
    fn credentials_come_from_static_users_and_the_store() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        store.add_user("carol", "natter", "cpw").unwrap();
        let keys = Arc::new(Keys::new(
            "natter",
            &[("alice".into(), "apw".into())],
            None,
            Some(store as natter_store::SharedStore),
        ));
        let c = SipCredentials::new(keys, "natter");
        let md5 = |u: &str, p: &str| natter_sip::digest::ha1(Algorithm::Md5, u, "natter", p);
        let sha = |u: &str, p: &str| natter_sip::digest::ha1(Algorithm::Sha256, u, "natter", p);
        assert_eq!(
            c.ha1("alice", "natter", Algorithm::Md5),
            Some(md5("alice", "apw"))
        );
        assert_eq!(
            c.ha1("carol", "natter", Algorithm::Md5),
            Some(md5("carol", "cpw"))
        );
        assert_eq!(
            c.ha1("carol", "natter", Algorithm::Md5Sess),
            Some(md5("carol", "cpw"))
        );
        assert_eq!(
            c.ha1("carol", "natter", Algorithm::Sha256),
            Some(sha("carol", "cpw"))
        );
        assert_eq!(c.ha1("carol", "elsewhere", Algorithm::Md5), None);
        assert_eq!(c.ha1("dave", "natter", Algorithm::Md5), None);
        assert!(c.user_exists("alice") && c.user_exists("carol") && !c.user_exists("dave"));
        assert_eq!(c.password("alice"), None, "passwords are never handed out");
    }

    #[test]
    fn instants_and_records_round_trip() {
        let clock = Clock::now();
        let b = Binding {
            aor: "sip:alice@natter".into(),
            contact: "sip:alice@192.0.2.1:5070".into(),
            q: 500,
            expires_at: clock.instant + Duration::from_secs(60),
            call_id: "c1".into(),
            cseq: 7,
            path: vec!["<sip:p1;lr>".into(), "<sip:p2;lr>".into()],
            source: Some((Transport::Tcp, "[::1]:5070".parse().unwrap())),
            instance: None,
            reg_id: None,
        };
        let r = to_record(&b, clock);
        assert_eq!(r.expires_at, clock.unix + 60);
        assert_eq!(r.source, "TCP:[::1]:5070");
        assert_eq!(from_record(r, clock), b);
        assert_eq!(parse_source("bogus"), (None, None, None));
        // An RFC 5626 outbound binding keeps its flow, reg-id and instance.
        let ob = Binding {
            source: Some((Transport::Udp, "203.0.113.9:40000".parse().unwrap())),
            instance: Some("\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"".into()),
            reg_id: Some(1),
            ..b.clone()
        };
        let r = to_record(&ob, clock);
        assert_eq!(
            r.source,
            "UDP:203.0.113.9:40000|1|\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\""
        );
        assert_eq!(from_record(r, clock), ob);
        // An instance without outbound (no reg-id) too.
        let inst = Binding {
            reg_id: None,
            ..ob.clone()
        };
        assert_eq!(from_record(to_record(&inst, clock), clock), inst);
        // A link-local IPv6 flow keeps its scope.
        for flow in ["[fe80::1%3]:5060", "[2001:db8::9]:5061", "10.0.0.1:0"] {
            let scoped = Binding {
                source: Some((Transport::Udp, flow.parse().unwrap())),
                ..b.clone()
            };
            let r = to_record(&scoped, clock);
            assert_eq!(r.source, format!("UDP:{flow}"));
            assert_eq!(from_record(r, clock), scoped);
        }
    }

    /// A fresh store path under a directory named for the test, and a socket standing in for
    /// alice's phone with her contact URI.
    /// A fresh, empty directory for one test's store; returns the store file's path in it.
    fn fresh_store_file(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("natter-sip-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("natter.sqlite3")
    }

    fn store_and_phone(name: &str) -> (std::path::PathBuf, std::net::UdpSocket, String) {
        let db = fresh_store_file(name);
        let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        phone
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let contact = format!("sip:alice@{}", phone.local_addr().unwrap());
        (db, phone, contact)
    }

    fn register_alice(h: &SipHandle, contact: &str) {
        let ex = rt()
            .block_on(client::register(
                &client(h.udp[0], Some(contact.to_owned())),
                600,
            ))
            .unwrap();
        assert_eq!(ex.code, 200, "{:?}", ex.log);
    }

    /// A MESSAGE for alice through the proxy at `server` must reach `phone` at `contact`; the
    /// phone answers 200, which must travel back to the sender through the proxy.
    fn message_reaches_alice(server: SocketAddr, phone: &std::net::UdpSocket, contact: &str) {
        let sender = std::thread::spawn(move || {
            rt().block_on(client::message(
                &client(server, None),
                "sip:alice@natter",
                "hi",
            ))
        });
        let mut buf = [0u8; 4096];
        let (n, from) = phone
            .recv_from(&mut buf)
            .expect("MESSAGE reaches the contact");
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            got.starts_with(&format!("MESSAGE {contact} SIP/2.0\r\n")),
            "{got}"
        );
        assert!(got.ends_with("\r\n\r\nhi"), "{got}");
        // Answer it like a phone would: the 200 travels back through the proxy.
        let req = natter_sip::Message::parse(&buf[..n]).unwrap();
        let ok = natter_sip::Message::response_to(&req, 200, None, Some("alice"));
        phone.send_to(&ok.to_bytes(), from).unwrap();
        let ex = sender.join().unwrap().unwrap();
        assert_eq!(ex.code, 200, "{:?}", ex.log);
    }

    /// With `--sip-volatile-bindings` a registration is served from memory (a MESSAGE reaches
    /// the contact) and nothing reaches the store, so a restart starts empty.
    #[test]
    fn volatile_bindings_are_served_from_memory_and_never_written() {
        let (db, phone, contact) = store_and_phone("volatile");
        let (h, store) = serve_with(&db, true);
        register_alice(&h, &contact);
        message_reaches_alice(h.udp[0], &phone, &contact);
        h.shutdown();
        assert!(store.live_bindings(unix_now()).unwrap().is_empty());
        drop(store);
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }

    /// Register, stop the server, start it again on the same store: the proxy still knows
    /// where alice is and delivers a MESSAGE to her contact.
    #[test]
    fn restart_keeps_registrations() {
        let (db, phone, contact) = store_and_phone("restart");
        let (h, store) = serve(&db);
        register_alice(&h, &contact);
        h.shutdown();
        let rows = store.live_bindings(unix_now()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].aor, "sip:alice@natter");
        assert_eq!(rows[0].contact, contact);
        drop(store);

        let (h, _store) = serve(&db);
        message_reaches_alice(h.udp[0], &phone, &contact);
        h.shutdown();
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }

    fn binding(aor: &str, contact: &str, now: Instant) -> Binding {
        Binding {
            aor: aor.into(),
            contact: contact.into(),
            q: 500,
            expires_at: now + Duration::from_secs(600),
            call_id: format!("{contact}-cid"),
            cseq: 3,
            path: vec!["<sip:edge.test;lr>".into(), "<sip:p2.test;lr>".into()],
            source: Some((Transport::Udp, "192.0.2.7:5062".parse().unwrap())),
            instance: Some("\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"".into()),
            reg_id: Some(1),
        }
    }

    /// The binding log's snapshot is taken while changes go on: what a restart loads (the
    /// snapshot plus the segment after it) is exactly the table in memory, including the
    /// changes made between the start of the snapshot and its end, and the segments the
    /// snapshot covers are gone.
    #[test]
    fn a_snapshot_taken_under_changes_reloads_the_same_table() {
        let db = fresh_store_file("snap");
        let store = Arc::new(Store::open(&db).unwrap());
        let b = StoreBindings::open(store.clone(), Some(&db)).unwrap();
        let now = Instant::now();
        for i in 0..300 {
            b.upsert(binding(
                &format!("sip:u{i}@natter"),
                &format!("sip:u{i}@h1"),
                now,
            ));
            b.upsert(binding(
                &format!("sip:u{i}@natter"),
                &format!("sip:u{i}@h2"),
                now,
            ));
        }
        b.sync();
        // Changes between the log's rotation and the walk over the table, as a SIP thread
        // would make them: they land in the new segment and (some of them) in the snapshot.
        let w = {
            let mut log = lock(&b.log);
            log.as_mut().unwrap().begin_snapshot().unwrap()
        };
        for i in 0..100 {
            b.remove(&format!("sip:u{i}@natter"), &format!("sip:u{i}@h1"));
        }
        b.remove_all("sip:u150@natter");
        b.upsert(binding("sip:new@natter", "sip:new@h", now));
        b.sync();
        let clock = Clock::now();
        let mut w = w;
        let mut buf = Vec::new();
        b.mem
            .for_each_binding(|x| encode_binding(&mut buf, x, clock));
        w.write(&buf).unwrap();
        binding_log::finish_snapshot_file(&db, w).unwrap();
        for i in 200..210 {
            b.remove_all(&format!("sip:u{i}@natter"));
        }
        b.sync();
        // Then the writer thread's own snapshot path, with more changes after it.
        b.snapshot().unwrap();
        b.upsert(binding("sip:late@natter", "sip:late@h", now));
        b.sync();

        let mut expected: Vec<(String, String)> = Vec::new();
        b.mem
            .for_each_binding(|x| expected.push((x.aor.clone(), x.contact.clone())));
        expected.sort();
        assert_eq!(expected.len(), 2 * 300 - 100 - 2 - 2 * 10 + 2);
        let loaded = |rows: Vec<BindingRecord>| {
            let mut v: Vec<(String, String)> =
                rows.into_iter().map(|r| (r.aor, r.contact)).collect();
            v.sort();
            v
        };
        // Read as another process would, while the server still holds the log.
        assert_eq!(loaded(store.live_bindings(unix_now()).unwrap()), expected);
        b.flush_and_stop();
        drop(b);
        let again = StoreBindings::open(store.clone(), Some(&db)).unwrap();
        let back = again.lookup("sip:u5@natter", Instant::now());
        assert_eq!(back.len(), 1);
        let want = binding("sip:u5@natter", "sip:u5@h2", now);
        assert_eq!(back[0].path, want.path);
        assert_eq!(back[0].source, want.source);
        assert_eq!(back[0].instance, want.instance);
        assert_eq!(back[0].reg_id, want.reg_id);
        assert_eq!((back[0].q, back[0].cseq), (500, 3));
        assert_eq!(again.len(), expected.len());
        again.flush_and_stop();
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }

    /// Issue 10: a kill -9 under REGISTER load lost acknowledged bindings (they waited up to
    /// 200 ms in the write-behind queue). Every binding a 200 OK acknowledged must already be
    /// committed when the 200 arrives: read through a fresh connection (what a restart after
    /// a crash at that instant would load) right after each 200, without any flush.
    #[test]
    fn every_acknowledged_binding_is_committed_before_its_200() {
        let db = fresh_store_file("crash");
        let (h, _store) = serve(&db);
        let rt = rt();
        let mut acked = Vec::new();
        for i in 0..20 {
            let contact = format!("sip:alice@127.0.0.1:{}", 40_000 + i);
            let ex = rt
                .block_on(client::register(
                    &client(h.udp[0], Some(contact.clone())),
                    600,
                ))
                .unwrap();
            assert_eq!(ex.code, 200, "{:?}", ex.log);
            acked.push(contact);
            // A second process opening the same file: nothing flushed, nothing shut down.
            let after_crash = Store::open(&db).unwrap();
            let rows: HashSet<String> = after_crash
                .live_bindings(unix_now())
                .unwrap()
                .into_iter()
                .map(|r| r.contact)
                .collect();
            for c in &acked {
                assert!(
                    rows.contains(c),
                    "binding {c} acknowledged but not committed"
                );
            }
        }
        // And a restart's location service loads them all.
        let restarted = StoreBindings::open(Arc::new(Store::open(&db).unwrap()), None).unwrap();
        let now = Instant::now();
        assert_eq!(restarted.lookup("sip:alice@natter", now).len(), 20);
        restarted.flush_and_stop();
        h.shutdown();
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }
}
