//! The TURN server driver: sockets, shards and timers around [`natter_turn::server::Server`].
//!
//! One OS thread per shard, each with a single-threaded tokio runtime and its own core. Every
//! shard binds every UDP/TCP/TLS listening address with `SO_REUSEPORT`, so the kernel hashes
//! each client's 4-tuple to one shard: that shard owns the client's allocation and its relay
//! sockets, and nothing on the data path is shared or locked. Quotas and reserved ports are the
//! only cross-shard state.
//!
//! Client datagrams are read with `recvmmsg` in batches. Everything a batch produces (replies
//! to clients, datagrams to peers on the allocations' relay sockets, ChannelData to clients) is
//! queued in one [`GsoBatch`] and sent when the batch is done: consecutive datagrams from one
//! socket to one destination of one size go out as a single UDP GSO message, and the messages
//! for one socket share a `sendmmsg`. A relay's traffic is exactly such runs (a client's burst
//! to its peer, a peer's burst to its client), so the kernel's per-datagram stack walk, which is
//! most of a relay's cost, is paid once per run. Peer datagrams are read into slots with 4 bytes
//! of headroom so the core writes the ChannelData header in place.
//!
//! Client and relay sockets ask for UDP GRO, so a run of one flow that the kernel merged (a
//! NIC's GRO, or a GSO sender on loopback) is read once and walked segment by segment. A shard
//! reading more than [`BUSY_PPS`] datagrams/s pauses briefly after each wake-up so reads and
//! GSO runs are long; below that it serves every wake-up at once, and it never spins.
//!
//! Environment knobs, for benchmarks and for kernels or devices without the features:
//! `NATTER_TURN_GSO=0` (one message per datagram, still one `sendmmsg` per socket),
//! `NATTER_TURN_GRO=0`, `NATTER_TURN_COALESCE_US=N` (the busy pause, 0 = none, default 100).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use natter_stun::AddressFamily;
use natter_turn::server::{
    Authenticator, ClientOutput, Event, FiveTuple, PeerOutput, Quotas, RelayError, RelayGrant,
    RelayProvider, RelayRequest, Server, ServerConfig, Stats, Transport, UserKeys,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::batch::RecvBatch;
use crate::gso::GsoBatch;
use crate::relay_ports::RelayPorts;
use crate::tls::ReloadableTls;

#[path = "tcp_relay.rs"]
mod tcp_relay;

#[path = "dtls_listener.rs"]
pub mod dtls_listener;

/// Largest datagram accepted from a client or a peer (and so the largest relayed).
const MAX_DATAGRAM: usize = 2048;
/// Receive slot size with UDP GRO: a coalesced run is at most one 64 KiB UDP payload.
const GRO_SLOT: usize = 65_536;
/// Datagrams per `recvmmsg`/`sendmmsg`.
const BATCH: usize = 64;
/// Batches read from one socket before yielding to others (fairness between sockets).
const ROUNDS: usize = 8;
/// Packets per second above which a shard counts as busy and pauses briefly after a wake-up.
const BUSY_PPS: u64 = 20_000;
/// How often the shard's packet rate is re-estimated.
const LOAD_WINDOW: Duration = Duration::from_millis(10);
/// Default pause of a busy shard after a wake-up, microseconds (`NATTER_TURN_COALESCE_US`).
const COALESCE_US: u64 = 100;
/// Queued writes per stream client before new data for it is dropped (as UDP would).
const STREAM_QUEUE: usize = 1024;

/// A user-key source usable from every shard.
pub type SharedAuth = Arc<dyn Authenticator + Send + Sync>;

struct AuthRef(SharedAuth);

impl Authenticator for AuthRef {
    fn keys(&self, username: &str, realm: &str, unix_now: u64) -> Option<UserKeys> {
        self.0.keys(username, realm, unix_now)
    }

    fn candidate_keys(&self, username: &str, realm: &str, unix_now: u64) -> Vec<UserKeys> {
        self.0.candidate_keys(username, realm, unix_now)
    }
}

/// Everything the TURN driver needs.
#[derive(Clone)]
pub struct TurnConfig {
    /// UDP listening addresses (port 0 picks one, for tests).
    pub udp: Vec<SocketAddr>,
    /// TCP listening addresses.
    pub tcp: Vec<SocketAddr>,
    /// TLS listening addresses.
    pub tls: Vec<SocketAddr>,
    /// DTLS (UDP) listening addresses, RFC 7350; they use the TLS certificate.
    pub dtls: Vec<SocketAddr>,
    /// Address relays bind on for IPv4 (None: no IPv4 relays).
    pub relay_ipv4: Option<IpAddr>,
    /// Address relays bind on for IPv6.
    pub relay_ipv6: Option<IpAddr>,
    /// Relay port range, inclusive.
    pub ports: (u16, u16),
    /// The core's settings.
    pub core: ServerConfig,
    /// Shard threads (normally the number of cores).
    pub shards: usize,
    /// TLS certificate for the TLS listeners.
    pub tls_config: Option<ReloadableTls>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        /// udp, tcp or tls.
        proto: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// TLS listeners without a certificate.
    #[error("TLS listeners configured but no certificate")]
    NoTls,
    /// A thread or runtime could not be created.
    #[error("cannot start shard: {0}")]
    Runtime(io::Error),
}

/// A running TURN server.
pub struct TurnHandle {
    /// Bound UDP addresses (with real ports).
    pub udp_addrs: Vec<SocketAddr>,
    /// Bound TCP addresses.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Bound TLS addresses.
    pub tls_addrs: Vec<SocketAddr>,
    /// Bound DTLS addresses.
    pub dtls_addrs: Vec<SocketAddr>,
    stats: Arc<Mutex<Vec<Stats>>>,
    quotas: Arc<Quotas>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl TurnHandle {
    /// Counters summed over shards (updated every second and at shutdown).
    pub fn stats(&self) -> Stats {
        let v = match self.stats.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        sum(&v)
    }

    /// A closure-friendly view of the stats for the metrics endpoint.
    pub fn stats_source(&self) -> (Arc<Mutex<Vec<Stats>>>, Arc<Quotas>) {
        (self.stats.clone(), self.quotas.clone())
    }

    /// Live allocations across shards.
    pub fn allocations(&self) -> u32 {
        self.quotas.total()
    }

    /// Deletes every allocation, stops the shards and waits for them.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Sums per-shard counters.
pub fn sum(v: &[Stats]) -> Stats {
    let mut t = Stats::default();
    for s in v {
        t.binding_requests += s.binding_requests;
        t.allocations_created += s.allocations_created;
        t.allocations_ended += s.allocations_ended;
        t.auth_failures += s.auth_failures;
        t.to_peer_packets += s.to_peer_packets;
        t.to_peer_bytes += s.to_peer_bytes;
        t.to_client_packets += s.to_client_packets;
        t.to_client_bytes += s.to_client_bytes;
        t.dropped += s.dropped;
        t.rate_limited += s.rate_limited;
        t.bad_requests += s.bad_requests;
    }
    t
}

/// Binds every socket (so errors surface before any thread starts), then starts the shards.
pub fn start(cfg: TurnConfig, auth: SharedAuth) -> Result<TurnHandle, StartError> {
    let shards = cfg.shards.max(1);
    if (!cfg.tls.is_empty() || !cfg.dtls.is_empty()) && cfg.tls_config.is_none() {
        return Err(StartError::NoTls);
    }
    let dtls_cert = match (&cfg.tls_config, cfg.dtls.is_empty()) {
        (Some(t), false) => Some(
            dtls_listener::load_certificate(t.files())
                .map_err(|e| StartError::Runtime(io::Error::other(e.to_string())))?,
        ),
        _ => None,
    };
    let mut per_shard: Vec<ShardSockets> = (0..shards).map(|_| ShardSockets::default()).collect();
    let mut udp_addrs = Vec::new();
    for addr in &cfg.udp {
        let mut actual = *addr;
        for (i, s) in per_shard.iter_mut().enumerate() {
            let sock = crate::socket::udp(actual, true).map_err(|source| StartError::Bind {
                proto: "udp",
                addr: actual,
                source,
            })?;
            if i == 0 {
                actual = sock.local_addr().map_err(StartError::Runtime)?;
                udp_addrs.push(actual);
            }
            s.udp.push(sock);
        }
    }
    let mut bind_tcp = |list: &[SocketAddr], proto: &'static str, tls: bool| {
        let mut out = Vec::new();
        for addr in list {
            let mut actual = *addr;
            for (i, s) in per_shard.iter_mut().enumerate() {
                let l = crate::socket::tcp_listener(actual, true).map_err(|source| {
                    StartError::Bind {
                        proto,
                        addr: actual,
                        source,
                    }
                })?;
                if i == 0 {
                    actual = l.local_addr().map_err(StartError::Runtime)?;
                    out.push(actual);
                }
                s.tcp.push((l, tls));
            }
        }
        Ok::<_, StartError>(out)
    };
    let tcp_addrs = bind_tcp(&cfg.tcp, "tcp", false)?;
    let tls_addrs = bind_tcp(&cfg.tls, "tls", true)?;
    let mut dtls_addrs = Vec::new();
    for addr in &cfg.dtls {
        let mut actual = *addr;
        for (i, s) in per_shard.iter_mut().enumerate() {
            let sock = crate::socket::udp(actual, true).map_err(|source| StartError::Bind {
                proto: "dtls",
                addr: actual,
                source,
            })?;
            if i == 0 {
                actual = sock.local_addr().map_err(StartError::Runtime)?;
                dtls_addrs.push(actual);
            }
            s.dtls.push(sock);
            s.dtls_cert.clone_from(&dtls_cert);
        }
    }

    let start_instant = Instant::now();
    let unix_start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secret: [u8; 32] = cfg.core.nonce_secret.unwrap_or_else(rand::random);
    let quotas = Arc::new(Quotas::with_hook(cfg.core.quota_hook.clone()));
    let stats = Arc::new(Mutex::new(vec![Stats::default(); shards]));
    let ports = RelayPorts::new(cfg.ports.0, cfg.ports.1);
    let (tx, rx) = watch::channel(false);
    let mut threads = Vec::new();
    let (hub, mut hub_rxs) = tcp_relay::hub(shards);
    for (idx, sockets) in per_shard.into_iter().enumerate() {
        let hub_rx = hub_rxs.remove(0);
        let relays = ShardRelays {
            tcp: tcp_relay::TcpRelays::new(hub.clone(), hub_rx),
            ports: ports.clone(),
            ipv4: cfg.relay_ipv4,
            ipv6: cfg.relay_ipv6,
            opened: Vec::new(),
            closed: Vec::new(),
            now: start_instant,
        };
        let mut core = Server::new(
            cfg.core.clone(),
            start_instant,
            unix_start,
            secret,
            quotas.clone(),
            relays,
            AuthRef(auth.clone()),
        );
        core.set_tcp_shard_tag(idx as u8);
        let rx = rx.clone();
        let stats = stats.clone();
        let tls = cfg.tls_config.clone();
        let t = std::thread::Builder::new()
            .name(format!("turn-shard-{idx}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot build shard runtime");
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, run_shard(idx, core, sockets, tls, stats, rx));
            })
            .map_err(StartError::Runtime)?;
        threads.push(t);
    }
    Ok(TurnHandle {
        udp_addrs,
        tcp_addrs,
        tls_addrs,
        dtls_addrs,
        stats,
        quotas,
        shutdown: tx,
        threads,
    })
}

#[derive(Default)]
struct ShardSockets {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<(std::net::TcpListener, bool)>,
    dtls: Vec<std::net::UdpSocket>,
    dtls_cert: Option<natter_dtls::DtlsCertificate>,
}

/// The shard's [`RelayProvider`]: binds relay sockets and queues them for the driver to poll.
struct ShardRelays {
    ports: RelayPorts,
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    opened: Vec<std::net::UdpSocket>,
    closed: Vec<SocketAddr>,
    now: Instant,
    /// RFC 6062 TCP relaying (listeners, peer connections).
    tcp: tcp_relay::TcpRelays,
}

fn set_dont_fragment(sock: &std::net::UdpSocket, v6: bool) {
    let (level, opt, val) = if v6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DO,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        )
    };
    // SAFETY: plain setsockopt with an int option on a socket we own.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl RelayProvider for ShardRelays {
    fn open(&mut self, req: RelayRequest) -> Result<RelayGrant, RelayError> {
        let ip = match req.family {
            AddressFamily::V4 => self.ipv4,
            AddressFamily::V6 => self.ipv6,
        }
        .ok_or(RelayError::Family)?;
        let (sock, token) = if let Some(t) = req.token {
            (self.ports.take_reserved(t, self.now)?, None)
        } else if req.reserve_next {
            let (s, t) = self.ports.bind_pair(ip, self.now)?;
            (s, Some(t))
        } else {
            (self.ports.bind(ip, req.even_port)?, None)
        };
        if req.dont_fragment {
            set_dont_fragment(&sock, ip.is_ipv6());
        }
        let addr = sock.local_addr().map_err(|_| RelayError::Exhausted)?;
        self.opened.push(sock);
        Ok(RelayGrant { addr, token })
    }

    fn close(&mut self, addr: SocketAddr) {
        self.closed.push(addr);
        self.tcp.close(addr);
    }

    fn listen_tcp(&mut self, relay: SocketAddr) -> Result<(), RelayError> {
        self.tcp.listen(relay)
    }
}

struct RelayEntry {
    sock: Rc<UdpSocket>,
    task: JoinHandle<()>,
}

struct Shard {
    idx: usize,
    core: Server<ShardRelays, AuthRef>,
    recv: RecvBatch,
    /// Every UDP datagram the shard sends on its data path, coalesced per batch.
    send: GsoBatch,
    out: Vec<u8>,
    udp: Vec<(SocketAddr, Rc<UdpSocket>)>,
    relays: HashMap<SocketAddr, RelayEntry>,
    streams: HashMap<FiveTuple, mpsc::Sender<Vec<u8>>>,
    send_errors: u64,
    /// Whether sockets get UDP GRO (and `recv` reads segment sizes).
    gro: bool,
    /// Recent packet rate, for the busy-shard pause.
    load: Load,
    /// How long a busy shard waits after a wake-up before reading (zero: never).
    coalesce: Duration,
    published: Arc<Mutex<Vec<Stats>>>,
}

type ShardRef = Rc<RefCell<Shard>>;

/// A shard's packet rate over the last window: the data path's switch between "wake up for
/// every datagram" (idle or light load: lowest latency, nothing spins) and "let a batch build
/// up after each wake-up" (busy: fewer wake-ups, longer `recvmmsg` batches and GSO runs).
struct Load {
    since: Instant,
    packets: u64,
    busy: bool,
}

impl Load {
    fn new(now: Instant) -> Self {
        Self {
            since: now,
            packets: 0,
            busy: false,
        }
    }

    /// Counts `n` datagrams read at `now`; re-decides `busy` once per window.
    fn add(&mut self, n: usize, now: Instant) {
        self.packets += n as u64;
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= LOAD_WINDOW {
            let pps = self.packets.saturating_mul(1_000_000) / (elapsed.as_micros().max(1) as u64);
            self.busy = pps >= BUSY_PPS;
            self.packets = 0;
            self.since = now;
        }
    }
}

/// Called after a wake-up, before reading: a busy shard sleeps `coalesce` so that what the
/// next reads find is a batch, not one datagram. An idle shard returns at once; after traffic
/// stops the first window re-decides `busy` from the real rate, so this never spins.
fn coalesce_pause(shard: &ShardRef) {
    let pause = {
        let sh = shard.borrow();
        if sh.load.busy {
            sh.coalesce
        } else {
            Duration::ZERO
        }
    };
    if !pause.is_zero() {
        std::thread::sleep(pause);
    }
}

impl Shard {
    /// Copies the core's counters where `/metrics` reads them. Called after every batch, so a
    /// scrape sees everything handled so far; the lock is per batch, not per packet.
    fn publish(&self) {
        let s = self.core.stats();
        if let Ok(mut v) = self.published.lock() {
            if let Some(slot) = v.get_mut(self.idx) {
                *slot = s;
            }
        }
    }

    fn udp_socket(&self, local: SocketAddr) -> Option<&Rc<UdpSocket>> {
        self.udp.iter().find(|(a, _)| *a == local).map(|(_, s)| s)
    }

    fn log_events(&mut self) {
        while let Some(e) = self.core.poll_event() {
            match e {
                Event::Refused {
                    five,
                    username,
                    why,
                } => {
                    tracing::warn!(
                        shard = self.idx,
                        client = %five.client,
                        transport = ?five.transport,
                        user = username.as_deref().unwrap_or("-"),
                        reason = why.describe(),
                        "TURN request refused"
                    );
                }
                Event::Allocated {
                    five,
                    username,
                    relayed,
                } => {
                    tracing::debug!(shard = self.idx, client = %five.client, user = %username,
                        relayed = %relayed, "allocation created");
                }
                Event::Ended { five, username } => {
                    tracing::debug!(shard = self.idx, client = %five.client, user = %username,
                        "allocation ended");
                }
            }
        }
    }
}

/// Starts tasks for relays the core opened and stops those it closed.
fn settle(shard: &ShardRef) {
    let (opened, closed) = {
        let mut sh = shard.borrow_mut();
        sh.log_events();
        sh.publish();
        let p = sh.core.relay_provider();
        (std::mem::take(&mut p.opened), std::mem::take(&mut p.closed))
    };
    for std_sock in opened {
        let Ok(addr) = std_sock.local_addr() else {
            continue;
        };
        if shard.borrow().gro {
            crate::batch::enable_gro(std_sock.as_raw_fd());
        }
        let sock = match UdpSocket::from_std(std_sock) {
            Ok(s) => Rc::new(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot register relay socket");
                continue;
            }
        };
        let task = tokio::task::spawn_local(relay_task(shard.clone(), sock.clone(), addr));
        shard
            .borrow_mut()
            .relays
            .insert(addr, RelayEntry { sock, task });
    }
    for addr in closed {
        if let Some(e) = shard.borrow_mut().relays.remove(&addr) {
            e.task.abort();
        }
    }
    tcp_relay::settle(shard);
}

async fn run_shard(
    idx: usize,
    core: Server<ShardRelays, AuthRef>,
    sockets: ShardSockets,
    tls: Option<ReloadableTls>,
    stats: Arc<Mutex<Vec<Stats>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut udp = Vec::new();
    for s in sockets.udp {
        match (s.local_addr(), UdpSocket::from_std(s)) {
            (Ok(a), Ok(s)) => udp.push((a, Rc::new(s))),
            (_, Err(e)) | (Err(e), _) => tracing::error!(error = %e, "cannot register socket"),
        }
    }
    let gro = gro_wanted();
    if gro {
        for (_, s) in &udp {
            crate::batch::enable_gro(s.as_raw_fd());
        }
    }
    let shard: ShardRef = Rc::new(RefCell::new(Shard {
        idx,
        core,
        recv: {
            let mut r = RecvBatch::new(BATCH, if gro { GRO_SLOT } else { MAX_DATAGRAM }, 4);
            r.set_gro(gro);
            r
        },
        // Room for a whole receive batch's output (a reply can be a little larger than the
        // request, ChannelData adds 4 bytes), so one batch is one flush.
        send: GsoBatch::new(BATCH * (MAX_DATAGRAM + 64), BATCH, gso_wanted()),
        out: Vec::with_capacity(MAX_DATAGRAM + 64),
        udp: udp.clone(),
        relays: HashMap::new(),
        streams: HashMap::new(),
        send_errors: 0,
        gro,
        load: Load::new(Instant::now()),
        coalesce: Duration::from_micros(
            std::env::var("NATTER_TURN_COALESCE_US")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(COALESCE_US)
                .min(10_000),
        ),
        published: stats.clone(),
    }));
    let mut tasks = Vec::new();
    tcp_relay::start(&shard);
    for (addr, sock) in udp {
        tasks.push(tokio::task::spawn_local(udp_listener_task(
            shard.clone(),
            sock,
            addr,
        )));
    }
    for (l, is_tls) in sockets.tcp {
        match TcpListener::from_std(l) {
            Ok(l) => tasks.push(tokio::task::spawn_local(tcp_accept_task(
                shard.clone(),
                l,
                if is_tls { tls.clone() } else { None },
            ))),
            Err(e) => tracing::error!(error = %e, "cannot register TCP listener"),
        }
    }
    if let Some(cert) = sockets.dtls_cert.map(Rc::new) {
        for s in sockets.dtls {
            match (s.local_addr(), UdpSocket::from_std(s)) {
                (Ok(a), Ok(s)) => tasks.push(tokio::task::spawn_local(dtls_listener::dtls_task(
                    shard.clone(),
                    Rc::new(s),
                    a,
                    cert.clone(),
                ))),
                (_, Err(e)) | (Err(e), _) => tracing::error!(error = %e, "cannot register DTLS"),
            }
        }
    }
    let publish = |shard: &ShardRef| shard.borrow().publish();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                shard.borrow_mut().core.handle_timeout(Instant::now());
                settle(&shard);
                publish(&shard);
            }
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    for t in tasks {
        t.abort();
    }
    let deleted = shard.borrow().core.allocation_count();
    shard.borrow_mut().core.shutdown();
    settle(&shard);
    publish(&shard);
    let (errors, sent) = {
        let sh = shard.borrow();
        (sh.send_errors, sh.send.stats())
    };
    tracing::info!(
        shard = idx,
        deleted,
        send_errors = errors + sent.errors,
        datagrams = sent.datagrams,
        messages = sent.messages,
        syscalls = sent.syscalls,
        gso = shard.borrow().send.gso_enabled(),
        "TURN shard stopped"
    );
}

/// Whether to send with UDP GSO: yes unless `NATTER_TURN_GSO=0` (GSO needs Linux 4.18; on
/// older kernels the first refused run switches it off by itself).
fn gso_wanted() -> bool {
    std::env::var("NATTER_TURN_GSO").map_or(true, |v| v != "0")
}

/// Whether to ask for UDP GRO on listening and relay sockets: yes unless `NATTER_TURN_GRO=0`.
fn gro_wanted() -> bool {
    std::env::var("NATTER_TURN_GRO").map_or(true, |v| v != "0")
}

/// How many datagrams the first `n` reads of `recv` hold, counting each GRO segment.
fn datagrams_in(recv: &RecvBatch, n: usize) -> usize {
    (0..n)
        .map(|i| {
            let seg = recv.segment_size(i);
            match recv.len_of(i) {
                Some(len) if seg > 0 => len.div_ceil(seg).max(1),
                _ => 1,
            }
        })
        .sum()
}

/// (bytes, step) to walk a received datagram: GRO runs in steps of their segment size, a single
/// datagram (seg 0) in one step, cut to [`MAX_DATAGRAM`] as before GRO.
fn segments(len: usize, seg: usize) -> (usize, usize) {
    if seg == 0 {
        let len = len.min(MAX_DATAGRAM);
        (len, len.max(1))
    } else {
        (len, seg)
    }
}

fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

async fn udp_listener_task(shard: ShardRef, sock: Rc<UdpSocket>, local: SocketAddr) {
    let fd = sock.as_raw_fd();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        coalesce_pause(&shard);
        {
            let mut guard = shard.borrow_mut();
            let sh = &mut *guard;
            for _ in 0..ROUNDS {
                let n = match sock.try_io(tokio::io::Interest::READABLE, || sh.recv.recv(fd)) {
                    Ok(n) => n,
                    Err(e) if is_would_block(&e) => break,
                    Err(_) => break,
                };
                let now = Instant::now();
                // Datagrams, not reads: a GRO read is a whole run.
                sh.load.add(datagrams_in(&sh.recv, n), now);
                for i in 0..n {
                    let seg = sh.recv.segment_size(i);
                    let Some((slot, len, src)) = sh.recv.slot_mut(i) else {
                        continue;
                    };
                    let five = FiveTuple {
                        client: src,
                        server: local,
                        transport: Transport::Udp,
                    };
                    // A GRO read holds a run of datagrams of `seg` bytes each (the last may be
                    // shorter); without GRO it is one datagram.
                    let (len, step) = segments(len, seg);
                    for off in (0..len).step_by(step) {
                        let chunk = step.min(len - off).min(MAX_DATAGRAM);
                        let data = &slot[4 + off..4 + off + chunk];
                        match sh.core.handle_client(now, five, data, &mut sh.out) {
                            ClientOutput::Drop => {}
                            ClientOutput::Reply { from, to, data } => {
                                if from == local {
                                    sh.send.push(fd, to, data);
                                } else if let Some(alt) =
                                    sh.udp.iter().find(|(a, _)| *a == from).map(|(_, s)| s)
                                {
                                    let _ = crate::batch::send_to(alt.as_raw_fd(), data, to);
                                }
                            }
                            ClientOutput::ToPeer { relay, peer, data } => {
                                // Relay sockets stay open until `settle`, after this flush, so
                                // the fd queued here is still the relay's when it is sent.
                                if let Some(r) = sh.relays.get(&relay) {
                                    sh.send.push(r.sock.as_raw_fd(), peer, data);
                                }
                            }
                        }
                    }
                }
                sh.send.flush();
                if n < BATCH {
                    break;
                }
            }
        }
        settle(&shard);
    }
}

async fn relay_task(shard: ShardRef, sock: Rc<UdpSocket>, relay: SocketAddr) {
    let fd = sock.as_raw_fd();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        coalesce_pause(&shard);
        let mut guard = shard.borrow_mut();
        let sh = &mut *guard;
        for _ in 0..ROUNDS {
            let n = match sock.try_io(tokio::io::Interest::READABLE, || sh.recv.recv(fd)) {
                Ok(n) => n,
                Err(e) if is_would_block(&e) => break,
                Err(_) => break,
            };
            let now = Instant::now();
            // Datagrams, not reads: a GRO read is a whole run.
            sh.load.add(datagrams_in(&sh.recv, n), now);
            for i in 0..n {
                let seg = sh.recv.segment_size(i);
                let Some((slot, len, src)) = sh.recv.slot_mut(i) else {
                    continue;
                };
                let (len, step) = segments(len, seg);
                for off in (0..len).step_by(step) {
                    let chunk = step.min(len - off).min(MAX_DATAGRAM);
                    // The core writes the ChannelData header into the 4 bytes before the payload:
                    // for a GRO segment that is the tail of the previous segment, which has been
                    // copied out already. The slice ends at this segment so that nothing after it
                    // (the next segment) is written to.
                    let end = if seg == 0 {
                        slot.len()
                    } else {
                        4 + off + chunk
                    };
                    match sh.core.handle_peer(
                        now,
                        relay,
                        src,
                        &mut slot[..end],
                        4 + off,
                        chunk,
                        &mut sh.out,
                    ) {
                        PeerOutput::Drop => {}
                        PeerOutput::ToClient { five, data } => {
                            if five.transport == Transport::Udp {
                                let Some(lfd) = sh
                                    .udp
                                    .iter()
                                    .find(|(a, _)| *a == five.server)
                                    .map(|(_, s)| s.as_raw_fd())
                                else {
                                    continue;
                                };
                                sh.send.push(lfd, five.client, data);
                            } else if let Some(tx) = sh.streams.get(&five) {
                                if tx.try_send(data.to_vec()).is_err() {
                                    sh.send_errors += 1;
                                }
                            }
                        }
                    }
                }
            }
            sh.send.flush();
            if n < BATCH {
                break;
            }
        }
        sh.publish();
    }
}

async fn tcp_accept_task(shard: ShardRef, listener: TcpListener, tls: Option<ReloadableTls>) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shard = shard.clone();
        match &tls {
            None => {
                let five = FiveTuple {
                    client: peer,
                    server: local,
                    transport: Transport::Tcp,
                };
                tokio::task::spawn_local(stream_conn(shard, stream, five));
            }
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                tokio::task::spawn_local(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await;
                    match handshake {
                        Ok(Ok(s)) => {
                            let five = FiveTuple {
                                client: peer,
                                server: local,
                                transport: Transport::Tls,
                            };
                            stream_conn(shard, s, five).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(client = %peer, error = %e,
                                "TLS handshake failed (client does not trust the certificate, \
                                 speaks plain TCP to the TLS port, or offers no common cipher)");
                        }
                        Err(_) => {
                            tracing::warn!(client = %peer, "TLS handshake timed out after 10 s");
                        }
                    }
                });
            }
        }
    }
}

/// One TCP or TLS client: frames STUN/ChannelData off the stream (RFC 8656 §3.1 framing).
async fn stream_conn<S>(shard: ShardRef, stream: S, five: FiveTuple)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE);
    shard.borrow_mut().streams.insert(five, tx.clone());
    let writer = tokio::task::spawn_local(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            let frame_len = match natter_stun::stream_frame_len(rest) {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(_) => {
                    tracing::debug!(client = %five.client, "not STUN/ChannelData framing; closing");
                    break 'read;
                }
            };
            if rest.len() < frame_len {
                break;
            }
            let frame = &rest[..frame_len];
            // RFC 6062: a ConnectionBind turns this stream into a raw data connection.
            if let Some(id) = natter_turn::server::tcp_relay::connection_bind_id(frame) {
                let bound =
                    tcp_relay::bind_data(&shard, five, id, frame.to_vec(), tx.clone()).await;
                if let Some(to_peer) = bound {
                    let after = buf[used + frame_len..].to_vec();
                    tcp_relay::pipe_to_peer(rd, after, to_peer).await;
                    break 'read;
                }
                used += frame_len;
                continue;
            }
            {
                let mut guard = shard.borrow_mut();
                let sh = &mut *guard;
                match sh
                    .core
                    .handle_client(Instant::now(), five, frame, &mut sh.out)
                {
                    ClientOutput::Drop => {}
                    ClientOutput::Reply { data, .. } => {
                        if tx.try_send(data.to_vec()).is_err() {
                            sh.send_errors += 1;
                        }
                    }
                    ClientOutput::ToPeer { relay, peer, data } => {
                        if let Some(r) = sh.relays.get(&relay) {
                            if crate::batch::send_to(r.sock.as_raw_fd(), data, peer).is_err() {
                                sh.send_errors += 1;
                            }
                        }
                    }
                }
            }
            settle(&shard);
            used += frame_len;
        }
        buf.drain(..used);
        if buf.len() > 70_000 {
            break;
        }
    }
    {
        let mut sh = shard.borrow_mut();
        sh.streams.remove(&five);
        sh.core.connection_closed(five);
    }
    settle(&shard);
    drop(tx);
    // Let queued replies drain, then stop.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

/// A udp socket of this shard, for tests of the alternate-address path.
#[allow(dead_code)]
fn _assert_shard_api(s: &Shard) -> Option<&Rc<UdpSocket>> {
    s.udp_socket("0.0.0.0:0".parse().ok()?)
}
