//! The event-driven network: hosts, NATs and servers in realms, moved by virtual time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::link::LinkConfig;
use crate::nat::{NatConfig, NatState};

/// A realm: the public Internet (id 0) or the inside of one NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealmId(pub usize);

/// A host (an endpoint the test drives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub usize);

/// A NAT box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NatId(pub usize);

impl RealmId {
    /// The public Internet.
    pub const INTERNET: RealmId = RealmId(0);
}

/// A service that lives inside the simulation (STUN server, relay). It owns an IP: every
/// packet to that IP, any port, reaches it.
pub trait Server {
    /// Handles one datagram and returns datagrams to send as `(from, to, payload)`.
    fn handle(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)>;
}

/// A datagram that reached a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Receiving host.
    pub host: HostId,
    /// Local address it arrived on.
    pub local: SocketAddr,
    /// Source as seen by the host (after any NAT).
    pub remote: SocketAddr,
    /// Payload.
    pub data: Vec<u8>,
    /// Arrival time.
    pub at: Instant,
}

/// Why a packet vanished; counted in [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Random link loss.
    Loss,
    /// A NAT mapping exists but filtering rejected the source.
    Filtered,
    /// No NAT mapping for the destination port (or it expired).
    NoMapping,
    /// Hairpinning was needed and is off.
    NoHairpin,
    /// Nothing owns the destination address.
    NoRoute,
}

/// Packet counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to [`Network::send`] or emitted by servers.
    pub sent: u64,
    /// Packets delivered to hosts.
    pub delivered: u64,
    /// Lost on a link.
    pub lost: u64,
    /// Rejected by NAT filtering.
    pub filtered: u64,
    /// Arrived at a NAT port with no mapping.
    pub no_mapping: u64,
    /// Dropped for lack of hairpinning.
    pub no_hairpin: u64,
    /// Unroutable.
    pub no_route: u64,
}

#[derive(Debug)]
struct Host {
    realm: RealmId,
    ips: Vec<IpAddr>,
    link: LinkConfig,
}

struct NatBox {
    outer: RealmId,
    inner: RealmId,
    state: NatState,
    link: LinkConfig,
}

struct ServerSlot {
    realm: RealmId,
    ip: IpAddr,
    server: Box<dyn Server>,
}

#[derive(Debug)]
enum Event {
    /// The packet is in `realm`, about to be routed.
    InRealm {
        realm: RealmId,
        src: SocketAddr,
        dst: SocketAddr,
        data: Vec<u8>,
    },
    /// The packet reaches `host`.
    AtHost {
        host: HostId,
        src: SocketAddr,
        dst: SocketAddr,
        data: Vec<u8>,
    },
}

struct Pending {
    at: Instant,
    seq: u64,
    event: Event,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Cap on packets in flight, so a feedback loop in a test fails instead of eating RAM.
const MAX_IN_FLIGHT: usize = 1 << 20;

/// The simulated network.
pub struct Network {
    now: Instant,
    rng: StdRng,
    realm_parent: Vec<Option<NatId>>,
    hosts: Vec<Host>,
    nats: Vec<NatBox>,
    servers: Vec<ServerSlot>,
    queue: BinaryHeap<Reverse<Pending>>,
    inbox: VecDeque<Delivery>,
    seq: u64,
    stats: Stats,
    log: Option<Vec<String>>,
}

impl Network {
    /// An empty network (just the Internet realm) starting at virtual time `start`, with
    /// all randomness drawn from `seed`.
    pub fn new(start: Instant, seed: u64) -> Self {
        Network {
            now: start,
            rng: StdRng::seed_from_u64(seed),
            realm_parent: vec![None],
            hosts: Vec::new(),
            nats: Vec::new(),
            servers: Vec::new(),
            queue: BinaryHeap::new(),
            inbox: VecDeque::new(),
            seq: 0,
            stats: Stats::default(),
            log: None,
        }
    }

    /// Records a one-line trace of every routing decision (see [`Network::take_log`]).
    pub fn enable_log(&mut self) {
        self.log = Some(Vec::new());
    }

    /// Returns and clears the trace.
    pub fn take_log(&mut self) -> Vec<String> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn trace(&mut self, f: impl FnOnce() -> String) {
        if let Some(l) = &mut self.log {
            if l.len() < 100_000 {
                l.push(f());
            }
        }
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Adds a host with one or more addresses in `realm`.
    pub fn add_host(&mut self, realm: RealmId, ips: &[IpAddr], link: LinkConfig) -> HostId {
        self.hosts.push(Host {
            realm,
            ips: ips.to_vec(),
            link,
        });
        HostId(self.hosts.len() - 1)
    }

    /// Adds a NAT whose public address `public_ip` lives in `outer`; returns the NAT and
    /// the new realm behind it.
    pub fn add_nat(
        &mut self,
        outer: RealmId,
        public_ip: IpAddr,
        config: NatConfig,
        link: LinkConfig,
    ) -> (NatId, RealmId) {
        let inner = RealmId(self.realm_parent.len());
        let id = NatId(self.nats.len());
        self.realm_parent.push(Some(id));
        self.nats.push(NatBox {
            outer,
            inner,
            state: NatState::new(config, public_ip),
            link,
        });
        (id, inner)
    }

    /// Puts a server on `ip` in `realm`.
    pub fn add_server(&mut self, realm: RealmId, ip: IpAddr, server: Box<dyn Server>) {
        self.servers.push(ServerSlot { realm, ip, server });
    }

    /// Changes a host's link (e.g. to start losing packets mid-test).
    pub fn set_host_link(&mut self, host: HostId, link: LinkConfig) {
        if let Some(h) = self.hosts.get_mut(host.0) {
            h.link = link;
        }
    }

    /// Live mappings on a NAT.
    pub fn nat_mapping_count(&mut self, nat: NatId) -> usize {
        let now = self.now;
        self.nats
            .get_mut(nat.0)
            .map(|n| n.state.mapping_count(now))
            .unwrap_or(0)
    }

    /// The addresses of a host.
    pub fn host_ips(&self, host: HostId) -> Vec<IpAddr> {
        self.hosts
            .get(host.0)
            .map(|h| h.ips.clone())
            .unwrap_or_default()
    }

    fn push(&mut self, at: Instant, event: Event) {
        if self.queue.len() >= MAX_IN_FLIGHT {
            self.stats.no_route += 1;
            return;
        }
        self.seq += 1;
        self.queue.push(Reverse(Pending {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn cross(&mut self, link: LinkConfig) -> Option<Duration> {
        let d = link.traverse(&mut self.rng);
        if d.is_none() {
            self.stats.lost += 1;
        }
        d
    }

    /// Sends a datagram from `host`, source `local` (must be one of its IPs), to `dst`,
    /// at the current virtual time.
    pub fn send(&mut self, host: HostId, local: SocketAddr, dst: SocketAddr, data: Vec<u8>) {
        self.stats.sent += 1;
        let Some(h) = self.hosts.get(host.0) else {
            self.stats.no_route += 1;
            return;
        };
        if !h.ips.contains(&local.ip()) {
            self.stats.no_route += 1;
            return;
        }
        let (realm, link) = (h.realm, h.link);
        // Loopback to itself.
        if h.ips.contains(&dst.ip()) {
            let at = self.now;
            self.push(
                at,
                Event::AtHost {
                    host,
                    src: local,
                    dst,
                    data,
                },
            );
            return;
        }
        if let Some(d) = self.cross(link) {
            let at = self.now + d;
            self.push(
                at,
                Event::InRealm {
                    realm,
                    src: local,
                    dst,
                    data,
                },
            );
        }
    }

    /// When the next packet moves, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(p)| p.at)
    }

    /// Processes everything due up to and including `t`, then sets the clock to `t`
    /// (never backwards). Deliveries accumulate for [`Network::poll_delivery`].
    pub fn advance_to(&mut self, t: Instant) {
        let mut budget = 10_000_000u64;
        while let Some(Reverse(p)) = self.queue.peek() {
            if p.at > t || budget == 0 {
                break;
            }
            budget -= 1;
            let Some(Reverse(p)) = self.queue.pop() else {
                break;
            };
            if p.at > self.now {
                self.now = p.at;
            }
            self.process(p.event);
        }
        if t > self.now {
            self.now = t;
        }
    }

    /// Next datagram that reached a host.
    pub fn poll_delivery(&mut self) -> Option<Delivery> {
        self.inbox.pop_front()
    }

    fn host_in_realm(&self, realm: RealmId, ip: IpAddr) -> Option<HostId> {
        self.hosts
            .iter()
            .position(|h| h.realm == realm && h.ips.contains(&ip))
            .map(HostId)
    }

    fn process(&mut self, ev: Event) {
        match ev {
            Event::AtHost {
                host,
                src,
                dst,
                data,
            } => {
                self.stats.delivered += 1;
                self.trace(|| format!("deliver {src} -> {dst} host {}", host.0));
                let at = self.now;
                self.inbox.push_back(Delivery {
                    host,
                    local: dst,
                    remote: src,
                    data,
                    at,
                });
            }
            Event::InRealm {
                realm,
                src,
                dst,
                data,
            } => self.route(realm, src, dst, data),
        }
    }

    fn route(&mut self, realm: RealmId, src: SocketAddr, dst: SocketAddr, data: Vec<u8>) {
        let now = self.now;
        // 1. a host in this realm
        if let Some(host) = self.host_in_realm(realm, dst.ip()) {
            let link = self.hosts.get(host.0).map(|h| h.link).unwrap_or_default();
            if let Some(d) = self.cross(link) {
                self.push(
                    now + d,
                    Event::AtHost {
                        host,
                        src,
                        dst,
                        data,
                    },
                );
            }
            return;
        }
        // 2. a server in this realm
        if let Some(slot) = self
            .servers
            .iter_mut()
            .find(|s| s.realm == realm && s.ip == dst.ip())
        {
            let out = slot.server.handle(now, dst, src, &data);
            self.trace(|| format!("server {dst} <- {src}: {} replies", out.len()));
            for (from, to, payload) in out {
                self.stats.sent += 1;
                self.push(
                    now,
                    Event::InRealm {
                        realm,
                        src: from,
                        dst: to,
                        data: payload,
                    },
                );
            }
            return;
        }
        // 3. the public side of a NAT whose outside is this realm
        if let Some(n) = self
            .nats
            .iter()
            .position(|n| n.outer == realm && n.state.public_ip == dst.ip())
        {
            self.inbound(n, src, dst, data);
            return;
        }
        // 4. our own NAT's public address: hairpin
        let parent = self.realm_parent.get(realm.0).copied().flatten();
        if let Some(NatId(n)) = parent {
            let Some(nat) = self.nats.get_mut(n) else {
                return;
            };
            if nat.state.public_ip == dst.ip() {
                if !nat.state.config.hairpin {
                    self.stats.no_hairpin += 1;
                    self.trace(|| format!("drop {src} -> {dst}: no hairpin"));
                    return;
                }
                match nat.state.outbound(now, src, dst, &mut self.rng) {
                    Some(ext) => self.inbound(n, ext, dst, data),
                    None => self.stats.no_route += 1,
                }
                return;
            }
            // 5. out through our NAT
            let outer = nat.outer;
            let link = nat.link;
            match nat.state.outbound(now, src, dst, &mut self.rng) {
                Some(ext) => {
                    self.trace(|| format!("nat{n} out {src} as {ext} -> {dst}"));
                    if let Some(d) = self.cross(link) {
                        self.push(
                            now + d,
                            Event::InRealm {
                                realm: outer,
                                src: ext,
                                dst,
                                data,
                            },
                        );
                    }
                }
                None => self.stats.no_route += 1,
            }
            return;
        }
        self.stats.no_route += 1;
        self.trace(|| format!("drop {src} -> {dst}: no route"));
    }

    fn inbound(&mut self, n: usize, src: SocketAddr, dst: SocketAddr, data: Vec<u8>) {
        let now = self.now;
        let Some(nat) = self.nats.get_mut(n) else {
            return;
        };
        let (inner, link) = (nat.inner, nat.link);
        match nat.state.inbound(now, dst.port(), src) {
            Ok(internal) => {
                self.trace(|| format!("nat{n} in {src} -> {dst} to {internal}"));
                if let Some(d) = self.cross(link) {
                    self.push(
                        now + d,
                        Event::InRealm {
                            realm: inner,
                            src,
                            dst: internal,
                            data,
                        },
                    );
                }
            }
            Err(true) => {
                self.stats.filtered += 1;
                self.trace(|| format!("nat{n} filtered {src} -> {dst}"));
            }
            Err(false) => {
                self.stats.no_mapping += 1;
                self.trace(|| format!("nat{n} no mapping {src} -> {dst}"));
            }
        }
    }
}
