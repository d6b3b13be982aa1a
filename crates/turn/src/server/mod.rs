//! The TURN server core (RFC 8656; RFC 5766 clients work unchanged).
//!
//! One [`Server`] per shard. It never touches a socket or a clock: the driver passes every
//! datagram with the time it arrived, and sends what comes back. Relay sockets are opened and
//! closed through [`RelayProvider`].
//!
//! Request handling follows RFC 8656 §7–§12 and RFC 8489 §9.2 (long-term credentials): a request
//! without MESSAGE-INTEGRITY gets 401 with REALM, NONCE and PASSWORD-ALGORITHMS; a stale or
//! foreign nonce gets 438; a bad MAC or unknown user gets 401; a known user on someone else's
//! allocation gets 441. Unknown comprehension-required attributes get 420 before anything else.

mod allocation;
pub mod auth;
pub mod policy;
mod ratelimit;
pub mod tcp_relay;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter_stun::{
    attr, unknown_comprehension_required, AddressFamily, ChannelData, Class, Message,
    MessageWriter, Method, PacketKind, PasswordAlgorithm, TransactionId,
};

use allocation::{Algorithm, Allocation, ByteBucket, Channel, MAX_CHANNELS};
pub use auth::{Authenticator, NonceCheck, NonceIssuer, UserKeys};
pub use policy::{IpNet, PeerPolicy};
use ratelimit::RateLimiter;
pub use tcp_relay::TcpAction;

/// The transport between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain UDP.
    Udp,
    /// TCP (stream framing; ChannelData padded to 4 bytes).
    Tcp,
    /// TLS over TCP.
    Tls,
    /// DTLS over UDP (RFC 7350): datagram semantics, so no ChannelData padding.
    Dtls,
}

impl Transport {
    /// True for stream transports, where ChannelData is padded.
    pub fn is_stream(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls)
    }
}

/// The client's 5-tuple: what an allocation is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// The client's address as the server sees it.
    pub client: SocketAddr,
    /// The server address the client sent to.
    pub server: SocketAddr,
    /// The transport.
    pub transport: Transport,
}

/// What the driver should do with a client datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientOutput<'a> {
    /// Nothing to send (indication handled, packet dropped and counted).
    Drop,
    /// Send `data` to the client over its 5-tuple, from server address `from` (normally the
    /// 5-tuple's own; differs for RFC 5780 CHANGE-REQUEST answers).
    Reply {
        /// Local address to send from.
        from: SocketAddr,
        /// Where to send (normally the client; RESPONSE-PORT may change the port).
        to: SocketAddr,
        /// The bytes.
        data: &'a [u8],
    },
    /// Relay `data` to `peer` from the relay socket bound at `relay`.
    ToPeer {
        /// Local relay address (the driver's socket).
        relay: SocketAddr,
        /// The peer.
        peer: SocketAddr,
        /// The payload.
        data: &'a [u8],
    },
}

/// What the driver should do with a datagram a relay socket received from a peer.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerOutput<'a> {
    /// Drop it (no permission, unknown relay, over budget).
    Drop,
    /// Send `data` to the client of `five`.
    ToClient {
        /// The allocation's 5-tuple.
        five: FiveTuple,
        /// ChannelData or a Data indication.
        data: &'a [u8],
    },
}

/// A relay socket request from the core to the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayRequest {
    /// Address family of the relay.
    pub family: AddressFamily,
    /// An even port was asked for (EVEN-PORT).
    pub even_port: bool,
    /// Also reserve the next port (EVEN-PORT with R bit) and return a token for it.
    pub reserve_next: bool,
    /// Use the port reserved under this RESERVATION-TOKEN.
    pub token: Option<u64>,
    /// The client asked for DONT-FRAGMENT.
    pub dont_fragment: bool,
}

/// A relay the driver opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayGrant {
    /// The local address the relay socket is bound to.
    pub addr: SocketAddr,
    /// The token for the reserved next port, when `reserve_next` was asked.
    pub token: Option<u64>,
}

/// Why a relay could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// No port free in the range (or none of the right parity): 508.
    #[error("no relay port available")]
    Exhausted,
    /// The family has no relay address configured: 440.
    #[error("address family not supported")]
    Family,
    /// The reservation token is unknown or expired: 508.
    #[error("unknown reservation token")]
    BadToken,
}

/// Opens and closes relay sockets on the core's behalf.
pub trait RelayProvider {
    /// Opens a relay socket as requested.
    fn open(&mut self, req: RelayRequest) -> Result<RelayGrant, RelayError>;
    /// Closes the relay socket bound at `addr` (and its TCP listener, if any).
    fn close(&mut self, addr: SocketAddr);
    /// Also listens for TCP on `relay` (an address [`RelayProvider::open`] returned), for an
    /// RFC 6062 TCP allocation. Providers without TCP relaying keep the default (508).
    fn listen_tcp(&mut self, relay: SocketAddr) -> Result<(), RelayError> {
        let _ = relay;
        Err(RelayError::Exhausted)
    }
}

/// A quota shared beyond this process (a cluster's store): asked after the local checks
/// pass, told when an allocation it allowed ends. Implementations decide how to behave when
/// their store is unreachable (Natter's lets the allocation proceed under the local quota).
pub trait QuotaHook: Send + Sync {
    /// May `user` have one more allocation? Counts it when the answer is yes.
    fn acquire(&self, user: &str) -> bool;
    /// One allocation of `user` (that `acquire` allowed) ended.
    fn release(&self, user: &str);
}

/// A [`QuotaHook`] in a [`ServerConfig`] (which is `Debug` and `Clone`).
#[derive(Clone)]
pub struct QuotaHookRef(pub Arc<dyn QuotaHook>);

impl std::fmt::Debug for QuotaHookRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuotaHook")
    }
}

/// Allocation counts shared by every shard, so quotas hold across threads.
#[derive(Debug, Default)]
pub struct Quotas {
    total: AtomicU32,
    per_user: Mutex<HashMap<String, u32>>,
    hook: Option<QuotaHookRef>,
}

impl Quotas {
    /// Counts that also consult `hook` (a cluster-wide per-user quota).
    pub fn with_hook(hook: Option<QuotaHookRef>) -> Self {
        Self {
            hook,
            ..Self::default()
        }
    }

    /// Live allocations across all shards.
    pub fn total(&self) -> u32 {
        self.total.load(Ordering::Relaxed)
    }

    fn try_acquire(&self, user: &str, max_total: u32, max_user: u32) -> bool {
        let mut map = match self.per_user.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if self.total.load(Ordering::Relaxed) >= max_total {
            return false;
        }
        let n = map.entry(user.to_owned()).or_insert(0);
        if *n >= max_user {
            return false;
        }
        if let Some(h) = &self.hook {
            if !h.0.acquire(user) {
                if *n == 0 {
                    map.remove(user);
                }
                return false;
            }
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn release(&self, user: &str) {
        if let Some(h) = &self.hook {
            h.0.release(user);
        }
        let mut map = match self.per_user.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = map.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(user);
            }
        }
        self.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Server settings (see docs/configuration.md for the operator's view).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// REALM for long-term credentials.
    pub realm: String,
    /// SOFTWARE sent in authenticated responses (never before authentication: it only helps an
    /// attacker fingerprint the server and makes answers bigger).
    pub software: Option<String>,
    /// Lifetime granted when the client asks for less or nothing (RFC: 10 minutes).
    pub default_lifetime: Duration,
    /// Longest lifetime granted (RFC: 1 hour).
    pub max_lifetime: Duration,
    /// Permission lifetime (RFC: 5 minutes, not configurable by clients).
    pub permission_lifetime: Duration,
    /// Channel binding lifetime (RFC: 10 minutes).
    pub channel_lifetime: Duration,
    /// Allocations per user.
    pub user_quota: u32,
    /// Allocations in total across shards.
    pub total_quota: u32,
    /// Per-allocation relay bandwidth cap in bytes/s (each direction counted), 0 = none.
    pub bandwidth_limit: u64,
    /// Unauthenticated requests per second per source IP (0 = unlimited).
    pub unauth_rate: u32,
    /// Peer address policy.
    pub peers: PeerPolicy,
    /// Advertised address for relays bound on a private IPv4 (1:1 NAT, `--external-ip`).
    pub external_ipv4: Option<IpAddr>,
    /// Advertised address for IPv6 relays.
    pub external_ipv6: Option<IpAddr>,
    /// The other server address for RFC 5780 tests, for each listening address that has one:
    /// (primary listening address, alternate IP, alternate port).
    pub alternates: Vec<(SocketAddr, IpAddr, u16)>,
    /// Whether authentication is required for TURN methods (it is by default; off only for
    /// closed test set-ups).
    pub auth_required: bool,
    /// Key for nonces (default: random per process). Instances of a cluster share one, so a
    /// nonce from one instance is accepted by another (behind a load balancer).
    pub nonce_secret: Option<[u8; 32]>,
    /// Cluster-wide per-user allocation quota, on top of `user_quota` in this process.
    pub quota_hook: Option<QuotaHookRef>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            realm: "natter".into(),
            software: Some(concat!("natter/", env!("CARGO_PKG_VERSION")).into()),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            user_quota: 100,
            total_quota: 50_000,
            bandwidth_limit: 0,
            unauth_rate: 200,
            peers: PeerPolicy::default(),
            external_ipv4: None,
            external_ipv6: None,
            alternates: Vec::new(),
            auth_required: true,
            nonce_secret: None,
            quota_hook: None,
        }
    }
}

/// Counters, read by the driver for `/metrics`. Plain integers: each shard owns its own.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Binding requests answered.
    pub binding_requests: u64,
    /// Successful Allocates.
    pub allocations_created: u64,
    /// Allocations ended (deleted, expired, or torn down).
    pub allocations_ended: u64,
    /// Requests refused for credentials (401 after a MAC check, 441).
    pub auth_failures: u64,
    /// Packets and bytes relayed client -> peer.
    pub to_peer_packets: u64,
    /// Bytes relayed client -> peer (payload).
    pub to_peer_bytes: u64,
    /// Packets relayed peer -> client.
    pub to_client_packets: u64,
    /// Bytes relayed peer -> client (payload).
    pub to_client_bytes: u64,
    /// Datagrams dropped: malformed, no permission, no allocation, over budget, rate-limited.
    pub dropped: u64,
    /// Of those, dropped by the unauthenticated rate limiter.
    pub rate_limited: u64,
    /// Requests answered with 400.
    pub bad_requests: u64,
}

/// Every attribute this server understands; a comprehension-required attribute outside this
/// list in a request earns a 420.
const KNOWN: &[u16] = &[
    attr::MAPPED_ADDRESS,
    attr::USERNAME,
    attr::MESSAGE_INTEGRITY,
    attr::ERROR_CODE,
    attr::UNKNOWN_ATTRIBUTES,
    attr::REALM,
    attr::NONCE,
    attr::MESSAGE_INTEGRITY_SHA256,
    attr::PASSWORD_ALGORITHM,
    attr::USERHASH,
    attr::XOR_MAPPED_ADDRESS,
    attr::CHANNEL_NUMBER,
    attr::LIFETIME,
    attr::XOR_PEER_ADDRESS,
    attr::DATA,
    attr::XOR_RELAYED_ADDRESS,
    attr::REQUESTED_ADDRESS_FAMILY,
    attr::EVEN_PORT,
    attr::REQUESTED_TRANSPORT,
    attr::DONT_FRAGMENT,
    attr::RESERVATION_TOKEN,
    attr::CHANGE_REQUEST,
    attr::PADDING,
    attr::RESPONSE_PORT,
    attr::PRIORITY,
    attr::USE_CANDIDATE,
    attr::CONNECTION_ID,
];

const UDP: u8 = 17;
const TCP: u8 = 6;

/// How a request authenticated.
struct Authed {
    username: String,
    keys: UserKeys,
    algorithm: Algorithm,
}

/// The TURN server core. `R` opens relay sockets, `A` finds user keys.
pub struct Server<R, A> {
    cfg: ServerConfig,
    start: Instant,
    unix_start: u64,
    relay: R,
    auth: A,
    nonces: NonceIssuer,
    quotas: Arc<Quotas>,
    slots: Vec<Option<Allocation>>,
    free: Vec<usize>,
    by_five: HashMap<FiveTuple, usize>,
    by_relay: HashMap<SocketAddr, usize>,
    limiter: RateLimiter,
    stats: Stats,
    next_sweep: Instant,
    events: std::collections::VecDeque<Event>,
    tcp: tcp_relay::TcpRelay,
    indication_ids: IndicationIds,
}

/// Transaction IDs for the Data indications this server sends. Nothing matches an
/// indication's ID (RFC 8489 §6.3.4 needs them unique, not secret), so a random prefix per
/// server and a counter do; the OS random source per relayed packet cost a system call each.
struct IndicationIds {
    prefix: [u8; 4],
    next: u64,
}

impl IndicationIds {
    fn new() -> Self {
        let r = TransactionId::random();
        let b = r.as_bytes();
        Self {
            prefix: [b[0], b[1], b[2], b[3]],
            next: u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
        }
    }

    fn next(&mut self) -> TransactionId {
        self.next = self.next.wrapping_add(1);
        let mut id = [0u8; 12];
        id[..4].copy_from_slice(&self.prefix);
        id[4..].copy_from_slice(&self.next.to_be_bytes());
        TransactionId(id)
    }
}

impl<R: RelayProvider, A: Authenticator> Server<R, A> {
    /// A server whose clock starts at `start` (monotonic) = `unix_start` (wall, seconds).
    /// `nonce_secret` should be random; shards of one process may share it.
    pub fn new(
        cfg: ServerConfig,
        start: Instant,
        unix_start: u64,
        nonce_secret: [u8; 32],
        quotas: Arc<Quotas>,
        relay: R,
        auth: A,
    ) -> Self {
        let limiter = RateLimiter::new(cfg.unauth_rate);
        Self {
            cfg,
            start,
            unix_start,
            relay,
            auth,
            nonces: NonceIssuer::new(nonce_secret, 600),
            quotas,
            slots: Vec::new(),
            free: Vec::new(),
            by_five: HashMap::new(),
            by_relay: HashMap::new(),
            limiter,
            stats: Stats::default(),
            next_sweep: start + Duration::from_secs(1),
            events: std::collections::VecDeque::new(),
            tcp: tcp_relay::TcpRelay::new(u32::from_le_bytes([
                nonce_secret[0],
                nonce_secret[1],
                nonce_secret[2],
                0,
            ])),
            indication_ids: IndicationIds::new(),
        }
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(e);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A stream connection closed: its allocation goes with it (RFC 8656 §3.1).
    pub fn connection_closed(&mut self, five: FiveTuple) {
        if let Some(i) = self.by_five.get(&five).copied() {
            self.remove(i);
        }
        self.tcp.data_closed(five);
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live allocations in this shard.
    pub fn allocation_count(&self) -> usize {
        self.by_five.len()
    }

    /// The relay provider (for the driver to reach its own state).
    pub fn relay_provider(&mut self) -> &mut R {
        &mut self.relay
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs()
    }

    /// When [`Server::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        self.next_sweep
    }

    /// Expires allocations, permissions and channels. Cheap to call often.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tcp_sweep(now);
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + Duration::from_secs(1);
        let expired: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|a| a.expires <= now).map(|_| i))
            .collect();
        for i in expired {
            self.remove(i);
        }
        for a in self.slots.iter_mut().flatten() {
            a.sweep(now);
        }
        self.limiter.sweep(now);
    }

    /// Deletes every allocation (graceful shutdown), closing relays.
    pub fn shutdown(&mut self) {
        for i in 0..self.slots.len() {
            if self.slots[i].is_some() {
                self.remove(i);
            }
        }
    }

    fn remove(&mut self, i: usize) {
        let Some(a) = self.slots.get_mut(i).and_then(Option::take) else {
            return;
        };
        self.by_five.remove(&a.five);
        self.tcp.allocation_gone(a.five);
        for r in &a.relays {
            self.by_relay.remove(r);
            self.relay.close(*r);
        }
        self.quotas.release(&a.username);
        self.free.push(i);
        self.stats.allocations_ended += 1;
        self.push_event(Event::Ended {
            five: a.five,
            username: a.username,
        });
    }

    /// Handles one datagram (or one stream frame) from a client. Replies are written into
    /// `out` (cleared first); relayed payloads are slices of `data`.
    pub fn handle_client<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        data: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> ClientOutput<'a> {
        let act = match natter_stun::classify(data) {
            PacketKind::ChannelData => self.client_channel_data(now, five, data),
            PacketKind::Stun => match Message::parse(data) {
                Ok(msg) => self.client_stun(now, five, &msg, out),
                Err(_) => {
                    self.stats.dropped += 1;
                    Act::Drop
                }
            },
            PacketKind::Other => self.classic_binding(now, five, data, out),
        };
        match act {
            Act::Drop => ClientOutput::Drop,
            Act::Reply { from, to } => ClientOutput::Reply {
                from,
                to,
                data: out.as_slice(),
            },
            Act::ToPeer { relay, peer, data } => ClientOutput::ToPeer { relay, peer, data },
        }
    }

    /// RFC 3489 clients (no magic cookie; libnice's discovery among them) get a Binding answer
    /// with MAPPED-ADDRESS, as a classic STUN server gave. Anything else that is not STUN or
    /// ChannelData is dropped and counted.
    fn classic_binding<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let is_classic_request = data.len() >= 20
            && data[0..2] == [0x00, 0x01]
            && usize::from(u16::from_be_bytes([data[2], data[3]])) + 20 == data.len()
            && data.len() & 3 == 0;
        if !is_classic_request {
            self.stats.dropped += 1;
            return Act::Drop;
        }
        if !self.limiter.allow(five.client.ip(), now) {
            self.stats.rate_limited += 1;
            self.stats.dropped += 1;
            return Act::Drop;
        }
        self.stats.binding_requests += 1;
        let (family, addr_len): (u8, u16) = if five.client.is_ipv4() {
            (1, 4)
        } else {
            (2, 16)
        };
        out.clear();
        out.extend_from_slice(&[0x01, 0x01]);
        out.extend_from_slice(&(4 + 4 + addr_len).to_be_bytes());
        // The 128-bit RFC 3489 transaction ID is echoed as is.
        out.extend_from_slice(&data[4..20]);
        out.extend_from_slice(&attr::MAPPED_ADDRESS.to_be_bytes());
        out.extend_from_slice(&(4 + addr_len).to_be_bytes());
        out.extend_from_slice(&[0, family]);
        out.extend_from_slice(&five.client.port().to_be_bytes());
        match five.client.ip() {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
        Act::Reply {
            from: five.server,
            to: five.client,
        }
    }

    fn client_channel_data<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        data: &'a [u8],
    ) -> Act<'a> {
        let Ok(cd) = ChannelData::parse(data) else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        let Some(&i) = self.by_five.get(&five) else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        let Some(a) = self.slots.get_mut(i).and_then(Option::as_mut) else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        let Some(peer) = a.peer_for_channel(cd.channel, now) else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        // A channel implies a permission, but the permission may have lapsed on its own timer
        // if the client refreshed only the channel: RFC 8656 §12 ties both, so check it.
        if !a.has_permission(peer.ip(), now) {
            self.stats.dropped += 1;
            return Act::Drop;
        }
        if let Some(b) = a.bucket.as_mut() {
            if !b.take(cd.payload.len(), now) {
                self.stats.dropped += 1;
                return Act::Drop;
            }
        }
        let Some(relay) = a.relay_for_family(peer.ip()) else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        self.stats.to_peer_packets += 1;
        self.stats.to_peer_bytes += cd.payload.len() as u64;
        Act::ToPeer {
            relay,
            peer,
            data: cd.payload,
        }
    }

    fn client_stun<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'a>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        match msg.class() {
            Class::Indication => self.client_indication(now, five, msg),
            Class::Request => {
                let unknown = unknown_comprehension_required(msg, KNOWN);
                if !unknown.is_empty() {
                    self.stats.bad_requests += 1;
                    let tid = msg.transaction_id();
                    let mut w = MessageWriter::new(out, msg.method(), Class::Error, tid);
                    w.add_error_code(420, "Unknown Attribute")
                        .add_unknown_attributes(unknown.as_slice());
                    return self.finish_reply(five, msg, None, w);
                }
                if msg.method() == Method::BINDING {
                    return self.binding(now, five, msg, out);
                }
                self.turn_request(now, five, msg, out)
            }
            // Responses to a server are nonsense: drop them.
            Class::Success | Class::Error => {
                self.stats.dropped += 1;
                Act::Drop
            }
        }
    }

    /// Seals a reply (MESSAGE-INTEGRITY with the client's key when authenticated, FINGERPRINT
    /// when the request had one) and returns it.
    fn finish_reply<'a>(
        &mut self,
        five: FiveTuple,
        req: &Message<'_>,
        authed: Option<(&UserKeys, Algorithm)>,
        mut w: MessageWriter<'_>,
    ) -> Act<'a> {
        if let Some((keys, alg)) = authed {
            if let Some(sw) = &self.cfg.software {
                w.add_software(sw);
            }
            match (alg, keys.sha256) {
                (Algorithm::Sha256, Some(k)) => {
                    w.add_message_integrity_sha256(&k);
                }
                _ => {
                    w.add_message_integrity(&keys.md5);
                }
            }
        }
        if req.contains(attr::FINGERPRINT) {
            w.add_fingerprint();
        }
        let ok = w.finish().is_ok();
        if !ok {
            self.stats.dropped += 1;
            return Act::Drop;
        }
        Act::Reply {
            from: five.server,
            to: five.client,
        }
    }

    fn binding<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        if !self.limiter.allow(five.client.ip(), now) {
            self.stats.rate_limited += 1;
            self.stats.dropped += 1;
            return Act::Drop;
        }
        self.stats.binding_requests += 1;
        let tid = msg.transaction_id();
        let alt = self
            .cfg
            .alternates
            .iter()
            .find(|(p, _, _)| *p == five.server)
            .copied();
        let change = match msg.change_request() {
            Ok(c) => c,
            Err(_) => return self.bad_request(five, msg, out),
        };
        let mut from = five.server;
        if let Some(c) = change {
            if c.change_ip || c.change_port {
                let Some((_, alt_ip, alt_port)) = alt else {
                    // RFC 5780 §6.1: a server without an alternate address treats CHANGE-REQUEST
                    // as an unknown comprehension-required attribute.
                    let mut w = MessageWriter::new(out, Method::BINDING, Class::Error, tid);
                    w.add_error_code(420, "Unknown Attribute")
                        .add_unknown_attributes(&[attr::CHANGE_REQUEST]);
                    return self.seal(five.client, from, msg, w);
                };
                if c.change_ip {
                    from.set_ip(alt_ip);
                }
                if c.change_port {
                    from.set_port(alt_port);
                }
            }
        }
        let mut to = five.client;
        if let Ok(Some(port)) = msg.response_port() {
            if five.transport == Transport::Udp {
                to.set_port(port);
            }
        }
        let mut w = MessageWriter::new(out, Method::BINDING, Class::Success, tid);
        w.add_xor_mapped_address(five.client);
        if let Some((_, alt_ip, alt_port)) = alt {
            w.add_response_origin(from);
            w.add_other_address(SocketAddr::new(alt_ip, alt_port));
        }
        self.seal(to, from, msg, w)
    }

    fn seal<'a>(
        &mut self,
        to: SocketAddr,
        from: SocketAddr,
        req: &Message<'_>,
        mut w: MessageWriter<'_>,
    ) -> Act<'a> {
        if req.contains(attr::FINGERPRINT) {
            w.add_fingerprint();
        }
        if w.finish().is_err() {
            self.stats.dropped += 1;
            return Act::Drop;
        }
        Act::Reply { from, to }
    }

    fn bad_request<'a>(
        &mut self,
        five: FiveTuple,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        self.stats.bad_requests += 1;
        let mut w = MessageWriter::new(out, msg.method(), Class::Error, msg.transaction_id());
        w.add_error_code(400, "Bad Request");
        self.finish_reply(five, msg, None, w)
    }

    /// 401 or 438 with a fresh nonce.
    fn challenge<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        code: u16,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let nonce = self.nonces.issue(five.client.ip(), self.secs(now));
        let mut w = MessageWriter::new(out, msg.method(), Class::Error, msg.transaction_id());
        w.add_error_code(
            code,
            if code == 438 {
                "Stale Nonce"
            } else {
                "Unauthorized"
            },
        )
        .add_realm(&self.cfg.realm)
        .add_nonce(&nonce)
        .add_password_algorithms(&[PasswordAlgorithm::MD5, PasswordAlgorithm::SHA256]);
        self.finish_reply(five, msg, None, w)
    }

    /// Runs RFC 8489 §9.2.4 on a request. `Err` carries the answer to send.
    fn authenticate(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
    ) -> Result<Authed, (u16, Refusal)> {
        let has_mi = msg.contains(attr::MESSAGE_INTEGRITY);
        let has_mi256 = msg.contains(attr::MESSAGE_INTEGRITY_SHA256);
        if !has_mi && !has_mi256 {
            return Err((401, Refusal::NoCredentials));
        }
        let (Ok(Some(username)), Ok(Some(realm)), Ok(Some(nonce))) =
            (msg.username(), msg.realm(), msg.nonce())
        else {
            return Err((400, Refusal::MissingAttributes));
        };
        // RFC 8489 §14.3: USERNAME must have been prepared (SASLprep here, as the key
        // derivation, see natter_stun::credentials); one the profile refuses (a control
        // character, say) can never match a key, so say why with a 400.
        // A lenient client's unprepared form is looked up as its prepared form.
        let Ok(username) = natter_stun::credentials::saslprep(username) else {
            return Err((400, Refusal::BadUsername));
        };
        let cookie = match self.nonces.check(nonce, five.client.ip(), self.secs(now)) {
            NonceCheck::Valid { cookie } => cookie,
            NonceCheck::Stale => return Err((438, Refusal::StaleNonce)),
            NonceCheck::Invalid => return Err((438, Refusal::ForeignNonce)),
        };
        if realm != self.cfg.realm {
            return Err((401, Refusal::WrongRealm));
        }
        // RFC 8489 §9.2.4: with the cookie, PASSWORD-ALGORITHMS must be echoed unchanged and
        // PASSWORD-ALGORITHM, if present, must be one of ours; without them MD5 is used.
        let mut algorithm = Algorithm::Md5;
        if cookie {
            let algs = msg.password_algorithms();
            let alg = msg.password_algorithm();
            match (algs, alg) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some(list)), Ok(Some(chosen))) => {
                    let offered: Vec<u16> = list.map(|p| p.algorithm.0).collect();
                    if offered != [PasswordAlgorithm::MD5.0, PasswordAlgorithm::SHA256.0] {
                        return Err((400, Refusal::BadPasswordAlgorithms));
                    }
                    if chosen.algorithm == PasswordAlgorithm::SHA256 {
                        algorithm = Algorithm::Sha256;
                    } else if chosen.algorithm != PasswordAlgorithm::MD5 {
                        return Err((400, Refusal::BadPasswordAlgorithms));
                    }
                }
                _ => return Err((400, Refusal::BadPasswordAlgorithms)),
            }
        }
        let unix_now = self.unix_start + self.secs(now);
        let candidates = self.auth.candidate_keys(&username, realm, unix_now);
        if candidates.is_empty() {
            return Err((401, Refusal::UnknownUser));
        }
        if has_mi256 {
            algorithm = Algorithm::Sha256;
        } else if algorithm == Algorithm::Sha256 {
            return Err((400, Refusal::BadPasswordAlgorithms));
        }
        // Several candidates only for REST names during a secret rotation: the first whose
        // key verifies the message is the one the client holds.
        let Some(keys) = candidates.into_iter().find(|keys| {
            if has_mi256 {
                keys.sha256
                    .is_some_and(|k| msg.verify_integrity_sha256(&k).is_ok())
            } else {
                msg.verify_integrity(&keys.md5).is_ok()
            }
        }) else {
            return Err((401, Refusal::BadIntegrity));
        };
        Ok(Authed {
            username: username.into_owned(),
            keys,
            algorithm,
        })
    }

    fn turn_request<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let method = msg.method();
        if !matches!(
            method,
            Method::ALLOCATE
                | Method::REFRESH
                | Method::CREATE_PERMISSION
                | Method::CHANNEL_BIND
                | Method::CONNECT
                | Method::CONNECTION_BIND
        ) {
            return self.bad_request(five, msg, out);
        }
        let authed = if self.cfg.auth_required {
            match self.authenticate(now, five, msg) {
                Ok(a) => a,
                Err((code, why)) => {
                    if why.is_failure() {
                        self.stats.auth_failures += 1;
                    }
                    if why != Refusal::NoCredentials {
                        self.push_event(Event::Refused {
                            five,
                            username: msg.username().ok().flatten().map(str::to_owned),
                            why,
                        });
                    }
                    if !self.limiter.allow(five.client.ip(), now) {
                        self.stats.rate_limited += 1;
                        self.stats.dropped += 1;
                        return Act::Drop;
                    }
                    return match code {
                        400 => self.bad_request(five, msg, out),
                        c => self.challenge(now, five, msg, c, out),
                    };
                }
            }
        } else {
            Authed {
                username: msg.username().ok().flatten().unwrap_or("").to_owned(),
                keys: UserKeys {
                    md5: [0; 16],
                    sha256: None,
                },
                algorithm: Algorithm::Md5,
            }
        };
        let sealed = self.cfg.auth_required;
        let existing = self.by_five.get(&five).copied();
        if method == Method::CONNECTION_BIND {
            // Sent on a fresh data connection, never on an allocation's own (RFC 6062 §5.4).
            return self.connection_bind(now, five, msg, authed, existing, out);
        }
        // RFC 8656 §7: requests on an existing allocation must come from its user (441).
        if let Some(i) = existing {
            if let Some(a) = self.slots.get(i).and_then(Option::as_ref) {
                if sealed && a.username != authed.username {
                    self.stats.auth_failures += 1;
                    self.push_event(Event::Refused {
                        five,
                        username: Some(authed.username.clone()),
                        why: Refusal::WrongUser,
                    });
                    let mut w = MessageWriter::new(out, method, Class::Error, msg.transaction_id());
                    w.add_error_code(441, "Wrong Credentials");
                    return self.finish_reply(five, msg, None, w);
                }
            }
        }
        let seal = sealed.then_some((authed.keys, authed.algorithm));
        match method {
            Method::ALLOCATE => self.allocate(now, five, msg, authed, existing, out),
            Method::REFRESH => self.refresh(now, five, msg, seal, existing, out),
            Method::CREATE_PERMISSION => {
                self.create_permission(now, five, msg, seal, existing, out)
            }
            Method::CONNECT => self.connect(now, five, msg, seal, existing, out),
            _ => self.channel_bind(now, five, msg, seal, existing, out),
        }
    }

    fn error<'a>(
        &mut self,
        five: FiveTuple,
        msg: &Message<'_>,
        seal: Option<(UserKeys, Algorithm)>,
        code: u16,
        reason: &str,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        if code == 400 {
            self.stats.bad_requests += 1;
        }
        let mut w = MessageWriter::new(out, msg.method(), Class::Error, msg.transaction_id());
        w.add_error_code(code, reason);
        self.finish_reply(five, msg, seal.as_ref().map(|(k, a)| (k, *a)), w)
    }

    /// A success answer with no attributes of its own (CreatePermission, ChannelBind).
    fn empty_success<'a>(
        &mut self,
        five: FiveTuple,
        msg: &Message<'_>,
        seal: Option<(UserKeys, Algorithm)>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let w = MessageWriter::new(out, msg.method(), Class::Success, msg.transaction_id());
        self.finish_reply(five, msg, seal.as_ref().map(|(k, a)| (k, *a)), w)
    }

    fn advertise(&self, relay: SocketAddr) -> SocketAddr {
        let ext = if relay.is_ipv4() {
            self.cfg.external_ipv4
        } else {
            self.cfg.external_ipv6
        };
        match ext {
            Some(ip) => SocketAddr::new(ip, relay.port()),
            None => relay,
        }
    }

    fn lifetime(&self, msg: &Message<'_>) -> Result<Duration, ()> {
        let asked = msg.lifetime().map_err(|_| ())?;
        Ok(match asked {
            None => self.cfg.default_lifetime,
            Some(0) => Duration::ZERO,
            Some(s) => Duration::from_secs(u64::from(s))
                .max(self.cfg.default_lifetime)
                .min(self.cfg.max_lifetime),
        })
    }

    fn allocate<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        authed: Authed,
        existing: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let seal = self
            .cfg
            .auth_required
            .then_some((authed.keys, authed.algorithm));
        if let Some(i) = existing {
            // A retransmitted Allocate gets the original success again (RFC 8656 §7.2, step 2).
            let same = self
                .slots
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|a| a.allocate_tid == msg.transaction_id());
            if same {
                return self.allocate_success(now, five, msg, i, seal, out);
            }
            return self.error(five, msg, seal, 437, "Allocation Mismatch", out);
        }
        let tcp = match msg.requested_transport() {
            Ok(Some(UDP)) => false,
            // RFC 6062 §5.1: TCP relaying only for a client on TCP/TLS, and without the
            // UDP-only EVEN-PORT, RESERVATION-TOKEN and DONT-FRAGMENT.
            Ok(Some(TCP)) => {
                let udp_only = msg.contains(attr::EVEN_PORT)
                    || msg.contains(attr::RESERVATION_TOKEN)
                    || msg.contains(attr::ADDITIONAL_ADDRESS_FAMILY)
                    || msg.dont_fragment();
                if !five.transport.is_stream() || udp_only {
                    return self.error(five, msg, seal, 400, "Bad Request", out);
                }
                true
            }
            Ok(Some(_)) => {
                return self.error(five, msg, seal, 442, "Unsupported Transport Protocol", out)
            }
            _ => return self.error(five, msg, seal, 400, "Bad Request", out),
        };
        let (Ok(token), Ok(even), Ok(req_fam), Ok(add_fam)) = (
            msg.reservation_token(),
            msg.even_port(),
            msg.requested_address_family(),
            msg.additional_address_family(),
        ) else {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        };
        if token.is_some() && (even.is_some() || req_fam.is_some() || add_fam.is_some()) {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        }
        if req_fam.is_some() && add_fam.is_some() {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        }
        if add_fam == Some(AddressFamily::V4) {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        }
        let Ok(lifetime) = self.lifetime(msg) else {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        };
        let lifetime = if lifetime.is_zero() {
            self.cfg.default_lifetime
        } else {
            lifetime
        };
        if !self
            .quotas
            .try_acquire(&authed.username, self.cfg.total_quota, self.cfg.user_quota)
        {
            return self.error(five, msg, seal, 486, "Allocation Quota Reached", out);
        }
        let family = req_fam.unwrap_or(AddressFamily::V4);
        let first = self.relay.open(RelayRequest {
            family,
            even_port: even.is_some(),
            reserve_next: even.is_some_and(|e| e.reserve_next),
            token,
            dont_fragment: msg.dont_fragment(),
        });
        let grant = match first {
            Ok(g) => g,
            Err(e) => {
                self.quotas.release(&authed.username);
                return match e {
                    RelayError::Family => {
                        self.error(five, msg, seal, 440, "Address Family not Supported", out)
                    }
                    RelayError::Exhausted | RelayError::BadToken => {
                        self.error(five, msg, seal, 508, "Insufficient Capacity", out)
                    }
                };
            }
        };
        if tcp {
            if let Err(e) = self.relay.listen_tcp(grant.addr) {
                self.relay.close(grant.addr);
                self.quotas.release(&authed.username);
                let _ = e;
                return self.error(five, msg, seal, 508, "Insufficient Capacity", out);
            }
        }
        let mut relays = vec![grant.addr];
        let mut second_failed = false;
        if add_fam == Some(AddressFamily::V6) {
            match self.relay.open(RelayRequest {
                family: AddressFamily::V6,
                even_port: false,
                reserve_next: false,
                token: None,
                dont_fragment: msg.dont_fragment(),
            }) {
                Ok(g) => relays.push(g.addr),
                Err(_) => second_failed = true,
            }
        }
        let advertised = relays.iter().map(|r| self.advertise(*r)).collect();
        let alloc = Allocation {
            five,
            username: authed.username,
            relays: relays.clone(),
            advertised,
            reservation_token: grant.token,
            expires: now + lifetime,
            allocate_tid: msg.transaction_id(),
            permissions: Vec::new(),
            channels: Vec::new(),
            bucket: (self.cfg.bandwidth_limit > 0)
                .then(|| ByteBucket::new(self.cfg.bandwidth_limit, now)),
            tcp,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(alloc);
                i
            }
            None => {
                self.slots.push(Some(alloc));
                self.slots.len() - 1
            }
        };
        self.by_five.insert(five, i);
        for r in relays {
            self.by_relay.insert(r, i);
        }
        self.stats.allocations_created += 1;
        if let Some(a) = self.slots.get(i).and_then(Option::as_ref) {
            let e = Event::Allocated {
                five,
                username: a.username.clone(),
                relayed: a.advertised.first().copied().unwrap_or(a.relays[0]),
            };
            self.push_event(e);
        }
        let reply = self.allocate_success(now, five, msg, i, seal, out);
        let _ = second_failed;
        reply
    }

    fn allocate_success<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        i: usize,
        seal: Option<(UserKeys, Algorithm)>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let Some(a) = self.slots.get(i).and_then(Option::as_ref) else {
            return Act::Drop;
        };
        let mut w = MessageWriter::new(out, Method::ALLOCATE, Class::Success, msg.transaction_id());
        for r in &a.advertised {
            w.add_xor_relayed_address(*r);
        }
        let wants_v6_too = matches!(msg.additional_address_family(), Ok(Some(AddressFamily::V6)));
        if wants_v6_too && a.advertised.len() < 2 {
            w.add_address_error_code(AddressFamily::V6, 440, "Address Family not Supported");
        }
        let remaining = a.expires.saturating_duration_since(now).as_secs();
        w.add_lifetime(u32::try_from(remaining).unwrap_or(u32::MAX));
        if let Some(t) = a.reservation_token {
            w.add_reservation_token(t);
        }
        w.add_xor_mapped_address(five.client);
        self.finish_reply(five, msg, seal.as_ref().map(|(k, a)| (k, *a)), w)
    }

    fn refresh<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        seal: Option<(UserKeys, Algorithm)>,
        existing: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let Some(i) = existing else {
            return self.error(five, msg, seal, 437, "Allocation Mismatch", out);
        };
        let Ok(lifetime) = self.lifetime(msg) else {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        };
        if let Ok(Some(fam)) = msg.requested_address_family() {
            let has = self
                .slots
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|a| a.relays.iter().any(|r| AddressFamily::of(r) == fam));
            if !has {
                return self.error(five, msg, seal, 443, "Peer Address Family Mismatch", out);
            }
        }
        if lifetime.is_zero() {
            self.remove(i);
        } else if let Some(a) = self.slots.get_mut(i).and_then(Option::as_mut) {
            a.expires = now + lifetime;
        }
        let mut w = MessageWriter::new(out, Method::REFRESH, Class::Success, msg.transaction_id());
        w.add_lifetime(u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX));
        self.finish_reply(five, msg, seal.as_ref().map(|(k, a)| (k, *a)), w)
    }

    /// Checks a peer address for a permission-installing request: family (443) and policy (403).
    fn check_peer(&self, a: &Allocation, peer: SocketAddr) -> Result<(), (u16, &'static str)> {
        if a.relay_for_family(peer.ip()).is_none() {
            return Err((443, "Peer Address Family Mismatch"));
        }
        if !self.cfg.peers.permits(peer.ip()) {
            return Err((403, "Forbidden"));
        }
        Ok(())
    }

    fn create_permission<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        seal: Option<(UserKeys, Algorithm)>,
        existing: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let Some(i) = existing else {
            return self.error(five, msg, seal, 437, "Allocation Mismatch", out);
        };
        let mut peers: Vec<SocketAddr> = Vec::new();
        for p in msg.xor_peer_addresses() {
            match p {
                Ok(p) if peers.len() < 32 => peers.push(p),
                _ => return self.error(five, msg, seal, 400, "Bad Request", out),
            }
        }
        if peers.is_empty() {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        }
        let Some(a) = self.slots.get(i).and_then(Option::as_ref) else {
            return Act::Drop;
        };
        // All or nothing (RFC 8656 §9.2): check every peer before installing any.
        for p in &peers {
            if let Err((code, reason)) = self.check_peer(a, *p) {
                return self.error(five, msg, seal, code, reason, out);
            }
        }
        let expires = now + self.cfg.permission_lifetime;
        let mut full = false;
        if let Some(a) = self.slots.get_mut(i).and_then(Option::as_mut) {
            for p in &peers {
                full |= !a.permit(p.ip(), expires);
            }
        }
        if full {
            return self.error(five, msg, seal, 508, "Insufficient Capacity", out);
        }
        self.empty_success(five, msg, seal, out)
    }

    fn channel_bind<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        seal: Option<(UserKeys, Algorithm)>,
        existing: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let Some(i) = existing else {
            return self.error(five, msg, seal, 437, "Allocation Mismatch", out);
        };
        let (Ok(Some(number)), Ok(Some(peer))) = (msg.channel_number(), msg.xor_peer_address())
        else {
            return self.error(
                five,
                msg,
                seal,
                400,
                "CHANNEL-NUMBER and XOR-PEER-ADDRESS required",
                out,
            );
        };
        // RFC 8656 allows 0x4000-0x4FFF; RFC 5766 clients (coturn's tools among them) still use
        // its wider 0x4000-0x7FFF, and accepting them costs nothing.
        if !(natter_stun::CHANNEL_MIN..=natter_stun::CHANNEL_MAX_RFC5766).contains(&number) {
            return self.error(
                five,
                msg,
                seal,
                400,
                "Channel number outside 0x4000-0x7FFF",
                out,
            );
        }
        let Some(a) = self.slots.get(i).and_then(Option::as_ref) else {
            return Act::Drop;
        };
        if a.tcp {
            // RFC 6062 §5.x: channels are a UDP-relay feature.
            return self.error(five, msg, seal, 400, "Bad Request", out);
        }
        if let Err((code, reason)) = self.check_peer(a, peer) {
            return self.error(five, msg, seal, code, reason, out);
        }
        // The number must not be bound to another peer, nor the peer to another number, even
        // while a lapsed binding sits in quarantine.
        // The reason says which of the two it was: clients that draw channel numbers at random
        // (coturn's turnutils_uclient) occasionally draw one twice, and the log should say so.
        let clash = a.channels.iter().find_map(|c| {
            if c.number == number && c.peer != peer {
                Some("Channel number already bound to another peer")
            } else if c.peer == peer && c.number != number {
                Some("Peer already bound to another channel number")
            } else {
                None
            }
        });
        if let Some(reason) = clash {
            return self.error(five, msg, seal, 400, reason, out);
        }
        let expires = now + self.cfg.channel_lifetime;
        let perm_expires = now + self.cfg.permission_lifetime;
        let Some(a) = self.slots.get_mut(i).and_then(Option::as_mut) else {
            return Act::Drop;
        };
        if let Some(c) = a.channels.iter_mut().find(|c| c.number == number) {
            c.expires = expires;
        } else if a.channels.len() >= MAX_CHANNELS {
            return self.error(five, msg, seal, 508, "Insufficient Capacity", out);
        } else {
            a.channels.push(Channel {
                number,
                peer,
                expires,
            });
        }
        if !a.permit(peer.ip(), perm_expires) {
            return self.error(five, msg, seal, 508, "Insufficient Capacity", out);
        }
        self.empty_success(five, msg, seal, out)
    }

    fn client_indication<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'a>,
    ) -> Act<'a> {
        if msg.method() != Method::SEND {
            self.stats.dropped += 1;
            return Act::Drop;
        }
        // Indications with unknown comprehension-required attributes are silently discarded.
        if !unknown_comprehension_required(msg, KNOWN).is_empty() {
            self.stats.dropped += 1;
            return Act::Drop;
        }
        let (Some(&i), Ok(Some(peer)), Some(data)) =
            (self.by_five.get(&five), msg.xor_peer_address(), msg.data())
        else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        let Some(a) = self.slots.get_mut(i).and_then(Option::as_mut) else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        if a.tcp || !a.has_permission(peer.ip(), now) {
            self.stats.dropped += 1;
            return Act::Drop;
        }
        if let Some(b) = a.bucket.as_mut() {
            if !b.take(data.len(), now) {
                self.stats.dropped += 1;
                return Act::Drop;
            }
        }
        let Some(relay) = a.relay_for_family(peer.ip()) else {
            self.stats.dropped += 1;
            return Act::Drop;
        };
        self.stats.to_peer_packets += 1;
        self.stats.to_peer_bytes += data.len() as u64;
        Act::ToPeer { relay, peer, data }
    }

    /// Handles a datagram that relay socket `relay` received from `peer`.
    ///
    /// `slot` holds the datagram at `slot[headroom..headroom + len]`; with at least 4 bytes of
    /// headroom a ChannelData header is written in place (and, for stream clients, padding
    /// after the payload when the slot has room). Otherwise, and for Data indications, the
    /// message is built in `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_peer<'a>(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        slot: &'a mut [u8],
        headroom: usize,
        len: usize,
        out: &'a mut Vec<u8>,
    ) -> PeerOutput<'a> {
        let Some(&i) = self.by_relay.get(&relay) else {
            self.stats.dropped += 1;
            return PeerOutput::Drop;
        };
        let Some(a) = self.slots.get_mut(i).and_then(Option::as_mut) else {
            self.stats.dropped += 1;
            return PeerOutput::Drop;
        };
        if a.tcp || !a.has_permission(peer.ip(), now) || headroom + len > slot.len() {
            self.stats.dropped += 1;
            return PeerOutput::Drop;
        }
        if let Some(b) = a.bucket.as_mut() {
            if !b.take(len, now) {
                self.stats.dropped += 1;
                return PeerOutput::Drop;
            }
        }
        let five = a.five;
        let channel = a.channel_for_peer(peer, now);
        self.stats.to_client_packets += 1;
        self.stats.to_client_bytes += len as u64;
        if let Some(ch) = channel {
            let pad = if five.transport.is_stream() {
                (4 - len % 4) % 4
            } else {
                0
            };
            let Ok(header) = ChannelData::header(ch, len) else {
                self.stats.dropped += 1;
                return PeerOutput::Drop;
            };
            if headroom >= 4 && headroom + len + pad <= slot.len() {
                let start = headroom - 4;
                slot[start..headroom].copy_from_slice(&header);
                slot[headroom + len..headroom + len + pad].fill(0);
                return PeerOutput::ToClient {
                    five,
                    data: &slot[start..headroom + len + pad],
                };
            }
            out.clear();
            out.extend_from_slice(&header);
            out.extend_from_slice(&slot[headroom..headroom + len]);
            out.resize(out.len() + pad, 0);
            return PeerOutput::ToClient { five, data: out };
        }
        let payload = &slot[headroom..headroom + len];
        let mut w = MessageWriter::new(
            out,
            Method::DATA,
            Class::Indication,
            self.indication_ids.next(),
        );
        w.add_xor_peer_address(peer).add_data(payload);
        if w.finish().is_err() {
            self.stats.dropped += 1;
            return PeerOutput::Drop;
        }
        PeerOutput::ToClient { five, data: out }
    }
}

/// What a client datagram leads to, before the reply bytes are attached.
enum Act<'a> {
    Drop,
    Reply {
        from: SocketAddr,
        to: SocketAddr,
    },
    ToPeer {
        relay: SocketAddr,
        peer: SocketAddr,
        data: &'a [u8],
    },
}

/// Why a request was refused on credentials. The driver logs these with the client address,
/// so an operator sees "unknown user alice" instead of an opaque 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No MESSAGE-INTEGRITY: the normal first step, answered with a 401 challenge.
    NoCredentials,
    /// MESSAGE-INTEGRITY without USERNAME, REALM or NONCE (400).
    MissingAttributes,
    /// USERNAME is refused by SASLprep (RFC 4013), e.g. it holds a control (400).
    BadUsername,
    /// The nonce expired (438, the client retries).
    StaleNonce,
    /// The nonce was not issued by this server for this address, e.g. from before a restart
    /// (438, the client retries).
    ForeignNonce,
    /// REALM differs from the server's.
    WrongRealm,
    /// No such user, or an expired REST API username.
    UnknownUser,
    /// The MAC did not verify: wrong password (or a realm/username mismatch in the key).
    BadIntegrity,
    /// PASSWORD-ALGORITHMS/PASSWORD-ALGORITHM do not match what the server offered (400).
    BadPasswordAlgorithms,
    /// A different user than the allocation's owner (441).
    WrongUser,
}

impl Refusal {
    /// True when this counts as a failed authentication (not a normal challenge round).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Self::WrongRealm | Self::UnknownUser | Self::BadIntegrity | Self::WrongUser
        )
    }

    /// A sentence for logs.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoCredentials => "no credentials yet (challenge sent)",
            Self::MissingAttributes => "MESSAGE-INTEGRITY without USERNAME, REALM or NONCE",
            Self::BadUsername => "USERNAME refused by SASLprep (control or unassigned)",
            Self::StaleNonce => "nonce expired (client should retry)",
            Self::ForeignNonce => "nonce not issued by this server for this address",
            Self::WrongRealm => "realm does not match the server's realm",
            Self::UnknownUser => "unknown user, or REST API username expired",
            Self::BadIntegrity => "MESSAGE-INTEGRITY did not verify: wrong password?",
            Self::BadPasswordAlgorithms => "PASSWORD-ALGORITHMS not echoed as offered",
            Self::WrongUser => "request for another user's allocation",
        }
    }
}

/// Things the driver may log or count. Bounded: when nobody drains them, new ones are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request was refused on credentials.
    Refused {
        /// Who sent it.
        five: FiveTuple,
        /// The USERNAME it carried.
        username: Option<String>,
        /// Why.
        why: Refusal,
    },
    /// An allocation was created.
    Allocated {
        /// Its 5-tuple.
        five: FiveTuple,
        /// Its user.
        username: String,
        /// Its relayed address (as advertised).
        relayed: SocketAddr,
    },
    /// An allocation ended (deleted, expired, connection closed, shutdown).
    Ended {
        /// Its 5-tuple.
        five: FiveTuple,
        /// Its user.
        username: String,
    },
}

const MAX_EVENTS: usize = 4096;

#[cfg(test)]
mod tests;
