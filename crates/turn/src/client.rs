//! The TURN client core (RFC 8656 §6–§12 from the client side), sans-IO.
//!
//! One [`Client`] is one allocation on one server over one transport. Feed it what the server
//! sends ([`Client::handle_input`]) and the time ([`Client::handle_timeout`]); send what
//! [`Client::poll_transmit`] returns to the server. It runs the 401/438 credential dance, keeps
//! the allocation, permissions and channels refreshed before they lapse, retransmits requests
//! over UDP, and wraps application data as ChannelData (when a channel is bound) or Send
//! indications.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::credentials::try_long_term_key;
use natter_stun::{
    ChannelData, Class, ClientTransaction, Message, MessageWriter, Method, PacketKind,
    PasswordAlgorithm, TransactionId, TransactionState, CHANNEL_MIN,
};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Long-term credential user name.
    pub username: String,
    /// Its password.
    pub password: String,
    /// True over TCP/TLS: no retransmissions, ChannelData padded to 4.
    pub reliable: bool,
    /// Lifetime to ask for, seconds.
    pub lifetime: u32,
    /// SOFTWARE to send, if any.
    pub software: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The allocation exists.
    Allocated {
        /// XOR-RELAYED-ADDRESS.
        relayed: SocketAddr,
        /// XOR-MAPPED-ADDRESS (our server-reflexive address).
        mapped: Option<SocketAddr>,
        /// Granted lifetime, seconds.
        lifetime: u32,
    },
    /// A request failed for good (error answer or no answer).
    Failed {
        /// The method.
        method: Method,
        /// ERROR-CODE, or 0 for a timeout.
        code: u16,
        /// The reason phrase (or "timeout").
        reason: String,
    },
    /// A permission was installed or refreshed.
    Permission(IpAddr),
    /// A channel was bound or refreshed.
    Channel {
        /// The peer.
        peer: SocketAddr,
        /// The number.
        number: u16,
    },
    /// The allocation was refreshed.
    Refreshed {
        /// New lifetime, seconds.
        lifetime: u32,
    },
    /// The allocation was deleted (Refresh with lifetime 0 answered).
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allocate,
    Refresh(u32),
    Permission(IpAddr),
    Channel(SocketAddr, u16),
}

struct Pending {
    kind: Kind,
    txn: ClientTransaction,
    /// Times this request was re-sent after a 401/438 (to stop loops).
    retries: u8,
}

#[derive(Debug, Clone, Copy)]
struct Refreshable {
    refresh_at: Instant,
    live: bool,
}

/// The client state machine.
pub struct Client {
    cfg: ClientConfig,
    realm: Option<String>,
    nonce: Option<String>,
    key: Option<[u8; 16]>,
    algorithms: Option<Vec<PasswordAlgorithm>>,
    pending: Vec<Pending>,
    relayed: Option<SocketAddr>,
    refresh_at: Option<Instant>,
    permissions: HashMap<IpAddr, Refreshable>,
    channels: HashMap<SocketAddr, (u16, Refreshable)>,
    next_channel: u16,
    events: VecDeque<ClientEvent>,
    out: VecDeque<Vec<u8>>,
    deleted: bool,
}

/// Permissions last 300 s; refresh a minute early.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// Channels last 600 s; refresh a minute early.
const CHANNEL_REFRESH: Duration = Duration::from_secs(540);

impl Client {
    /// Starts an allocation: the first Allocate (without credentials) is queued at once.
    pub fn new(now: Instant, cfg: ClientConfig) -> Self {
        let mut c = Self {
            cfg,
            realm: None,
            nonce: None,
            key: None,
            algorithms: None,
            pending: Vec::new(),
            relayed: None,
            refresh_at: None,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            next_channel: CHANNEL_MIN,
            events: VecDeque::new(),
            out: VecDeque::new(),
            deleted: false,
        };
        c.request(now, Kind::Allocate, 0);
        c
    }

    /// The relayed address, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed
    }

    /// The channel bound to `peer`, if any.
    pub fn channel(&self, peer: SocketAddr) -> Option<u16> {
        self.channels
            .get(&peer)
            .filter(|(_, r)| r.live)
            .map(|(n, _)| *n)
    }

    fn build(&self, kind: Kind, tid: TransactionId) -> Vec<u8> {
        let method = match kind {
            Kind::Allocate => Method::ALLOCATE,
            Kind::Refresh(_) => Method::REFRESH,
            Kind::Permission(_) => Method::CREATE_PERMISSION,
            Kind::Channel(..) => Method::CHANNEL_BIND,
        };
        let mut buf = Vec::with_capacity(160);
        let mut w = MessageWriter::new(&mut buf, method, Class::Request, tid);
        match kind {
            Kind::Allocate => {
                w.add_requested_transport(natter_stun::PROTOCOL_UDP)
                    .add_lifetime(self.cfg.lifetime);
            }
            Kind::Refresh(l) => {
                w.add_lifetime(l);
            }
            Kind::Permission(ip) => {
                w.add_xor_peer_address(SocketAddr::new(ip, 0));
            }
            Kind::Channel(peer, n) => {
                w.add_channel_number(n).add_xor_peer_address(peer);
            }
        }
        if let Some(sw) = &self.cfg.software {
            w.add_software(sw);
        }
        if let (Some(realm), Some(nonce), Some(key)) = (&self.realm, &self.nonce, &self.key) {
            w.add_username(&self.cfg.username)
                .add_realm(realm)
                .add_nonce(nonce);
            if let Some(algs) = &self.algorithms {
                w.add_password_algorithms(algs)
                    .add_password_algorithm(PasswordAlgorithm::MD5, &[]);
            }
            w.add_message_integrity(key);
        }
        w.add_fingerprint();
        // Every attribute above is well-formed by construction; an error here would be a bug,
        // and the request is then simply not sent (the transaction times out).
        let _ = w.finish();
        buf
    }

    fn request(&mut self, now: Instant, kind: Kind, retries: u8) {
        let tid = TransactionId::random();
        let bytes = self.build(kind, tid);
        let txn = ClientTransaction::with_defaults(now, bytes, self.cfg.reliable);
        self.pending.push(Pending { kind, txn, retries });
    }

    /// Installs a permission for `ip` (and keeps it refreshed).
    pub fn create_permission(&mut self, now: Instant, ip: IpAddr) {
        self.permissions.entry(ip).or_insert(Refreshable {
            refresh_at: now + PERMISSION_REFRESH,
            live: false,
        });
        self.request(now, Kind::Permission(ip), 0);
    }

    /// Binds a channel to `peer` (and keeps it refreshed). Returns the number.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) -> u16 {
        let n = match self.channels.get(&peer) {
            Some((n, _)) => *n,
            None => {
                let n = self.next_channel;
                self.next_channel = if n >= natter_stun::CHANNEL_MAX {
                    CHANNEL_MIN
                } else {
                    n + 1
                };
                self.channels.insert(
                    peer,
                    (
                        n,
                        Refreshable {
                            refresh_at: now + CHANNEL_REFRESH,
                            live: false,
                        },
                    ),
                );
                n
            }
        };
        self.request(now, Kind::Channel(peer, n), 0);
        n
    }

    /// Deletes the allocation (Refresh with LIFETIME 0).
    pub fn delete(&mut self, now: Instant) {
        self.deleted = true;
        self.request(now, Kind::Refresh(0), 0);
    }

    /// Wraps `data` for `peer`: ChannelData when a channel is bound, else a Send indication.
    /// The result goes to the server like any other transmit.
    pub fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> Vec<u8> {
        if let Some(n) = self.channel(peer) {
            let mut out = vec![0u8; 4 + data.len() + 3];
            if let Ok(len) = ChannelData::encode_into(n, data, self.cfg.reliable, &mut out) {
                out.truncate(len);
                return out;
            }
        }
        let mut buf = Vec::with_capacity(data.len() + 40);
        let mut w = MessageWriter::new(
            &mut buf,
            Method::SEND,
            Class::Indication,
            TransactionId::random(),
        );
        w.add_xor_peer_address(peer).add_data(data);
        let _ = w.finish();
        buf
    }

    /// The next datagram (or stream frame) to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(b) = self.out.pop_front() {
            return Some(b);
        }
        for p in &mut self.pending {
            if let Some(b) = p.txn.poll_transmit() {
                return Some(b.to_vec());
            }
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`Client::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.refresh_at;
        let mut min = |x: Instant| {
            t = Some(t.map_or(x, |c| c.min(x)));
        };
        for p in &self.pending {
            if let Some(x) = p.txn.poll_timeout() {
                min(x);
            }
        }
        if self.relayed.is_some() && !self.deleted {
            for r in self.permissions.values() {
                min(r.refresh_at);
            }
            for (_, r) in self.channels.values() {
                min(r.refresh_at);
            }
        }
        t
    }

    /// Retransmits, expires transactions, and refreshes what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for p in &mut self.pending {
            p.txn.handle_timeout(now);
        }
        let mut timed_out = Vec::new();
        self.pending.retain(|p| {
            if p.txn.state() == TransactionState::TimedOut {
                timed_out.push(p.kind);
                false
            } else {
                true
            }
        });
        for k in timed_out {
            self.events.push_back(ClientEvent::Failed {
                method: method_of(k),
                code: 0,
                reason: "timeout".into(),
            });
        }
        if self.relayed.is_none() || self.deleted {
            return;
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.request(now, Kind::Refresh(self.cfg.lifetime), 0);
        }
        let due: Vec<IpAddr> = self
            .permissions
            .iter()
            .filter(|(_, r)| r.refresh_at <= now)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            if let Some(r) = self.permissions.get_mut(&ip) {
                r.refresh_at = now + PERMISSION_REFRESH;
            }
            self.request(now, Kind::Permission(ip), 0);
        }
        let due: Vec<(SocketAddr, u16)> = self
            .channels
            .iter()
            .filter(|(_, (_, r))| r.refresh_at <= now)
            .map(|(p, (n, _))| (*p, *n))
            .collect();
        for (peer, n) in due {
            if let Some((_, r)) = self.channels.get_mut(&peer) {
                r.refresh_at = now + CHANNEL_REFRESH;
            }
            self.request(now, Kind::Channel(peer, n), 0);
        }
    }

    /// Handles a datagram (or stream frame) from the server. Returns application data a peer
    /// sent (from a Data indication or ChannelData) as `(peer, payload)`.
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        data: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8])> {
        match natter_stun::classify(data) {
            PacketKind::ChannelData => {
                let cd = ChannelData::parse(data).ok()?;
                let peer = self
                    .channels
                    .iter()
                    .find(|(_, (n, _))| *n == cd.channel)
                    .map(|(p, _)| *p)?;
                Some((peer, cd.payload))
            }
            PacketKind::Stun => {
                let msg = Message::parse(data).ok()?;
                if msg.class() == Class::Indication {
                    if msg.method() == Method::DATA {
                        let peer = msg.xor_peer_address().ok()??;
                        return Some((peer, msg.data()?));
                    }
                    return None;
                }
                self.handle_response(now, &msg);
                None
            }
            PacketKind::Other => None,
        }
    }

    fn handle_response(&mut self, now: Instant, msg: &Message<'_>) {
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.txn.transaction_id() == msg.transaction_id())
        else {
            return;
        };
        // Authenticated answers must verify; an unverifiable success is ignored (the
        // transaction then times out) rather than trusted.
        if let (Some(key), true) = (self.key, msg.contains(natter_stun::attr::MESSAGE_INTEGRITY)) {
            if msg.verify_integrity(&key).is_err() {
                return;
            }
        }
        let mut p = self.pending.swap_remove(i);
        p.txn.handle_response(now, msg);
        if msg.class() == Class::Success {
            self.on_success(now, p.kind, msg);
            return;
        }
        let (code, reason) = match msg.error_code() {
            Ok(Some(e)) => (e.code, e.reason.to_owned()),
            _ => (0, "malformed error response".to_owned()),
        };
        let can_retry = p.retries < 2;
        if (code == 401 || code == 438) && can_retry {
            let realm = msg.realm().ok().flatten().map(str::to_owned);
            let nonce = msg.nonce().ok().flatten().map(str::to_owned);
            if let (Some(r), Some(n)) = (realm.or_else(|| self.realm.clone()), nonce) {
                let key = try_long_term_key(&self.cfg.username, &r, &self.cfg.password);
                if code == 401 && self.key.is_some() && p.retries > 0 {
                    // Credentials were already sent and refused: wrong password.
                } else if let Ok(key) = key {
                    // Credentials SASLprep refuses (RFC 8489 §9.2.2) are never sent: the
                    // request fails below with the server's error instead.
                    self.key = Some(key);
                    self.realm = Some(r);
                    self.nonce = Some(n);
                    if let Ok(Some(list)) = msg.password_algorithms() {
                        self.algorithms = Some(list.map(|p| p.algorithm).collect());
                    }
                    self.request(now, p.kind, p.retries + 1);
                    return;
                }
            }
        }
        if let Kind::Channel(peer, _) = p.kind {
            self.channels.remove(&peer);
        }
        self.events.push_back(ClientEvent::Failed {
            method: method_of(p.kind),
            code,
            reason,
        });
    }

    fn on_success(&mut self, now: Instant, kind: Kind, msg: &Message<'_>) {
        let lifetime = msg.lifetime().ok().flatten().unwrap_or(600);
        match kind {
            Kind::Allocate => {
                let Ok(Some(relayed)) = msg.xor_relayed_address() else {
                    self.events.push_back(ClientEvent::Failed {
                        method: Method::ALLOCATE,
                        code: 0,
                        reason: "success without XOR-RELAYED-ADDRESS".into(),
                    });
                    return;
                };
                self.relayed = Some(relayed);
                self.refresh_at = Some(now + refresh_delay(lifetime));
                self.events.push_back(ClientEvent::Allocated {
                    relayed,
                    mapped: msg.xor_mapped_address().ok().flatten(),
                    lifetime,
                });
            }
            Kind::Refresh(0) => {
                self.relayed = None;
                self.refresh_at = None;
                self.events.push_back(ClientEvent::Deleted);
            }
            Kind::Refresh(_) => {
                self.refresh_at = Some(now + refresh_delay(lifetime));
                self.events.push_back(ClientEvent::Refreshed { lifetime });
            }
            Kind::Permission(ip) => {
                if let Some(r) = self.permissions.get_mut(&ip) {
                    r.live = true;
                }
                self.events.push_back(ClientEvent::Permission(ip));
            }
            Kind::Channel(peer, number) => {
                if let Some((_, r)) = self.channels.get_mut(&peer) {
                    r.live = true;
                }
                self.events.push_back(ClientEvent::Channel { peer, number });
            }
        }
    }
}

fn refresh_delay(lifetime: u32) -> Duration {
    // Refresh a minute early, or at half-life for short lifetimes.
    let l = u64::from(lifetime);
    Duration::from_secs(if l > 120 { l - 60 } else { l / 2 }.max(1))
}

fn method_of(k: Kind) -> Method {
    match k {
        Kind::Allocate => Method::ALLOCATE,
        Kind::Refresh(_) => Method::REFRESH,
        Kind::Permission(_) => Method::CREATE_PERMISSION,
        Kind::Channel(..) => Method::CHANNEL_BIND,
    }
}

#[cfg(test)]
mod tests;
