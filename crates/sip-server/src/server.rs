//! The SIP server core: registrar + stateful proxy (or redirect server),
//! sans-IO. The driver calls [`SipServer::handle`] with each received message
//! and [`SipServer::on_timer`] when [`Output::next_timeout`] passes; both
//! return the datagrams/segments to send.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_sip::digest::{Algorithm, DigestCredentials, DigestServer, Verdict};
use natter_sip::transaction::{Event, TimerConfig, TransactionLayer, TxId};
use natter_sip::{
    Framing, HeaderName, Limits, Message, Method, ParseError, StartLine, Uri, Via, Views,
};

use crate::flow;
use crate::keepalive::{self, KeepAlive};
use crate::peer::{Peer, Transmit, Transport};
use crate::registrar::{self, RegistrarConfig};
use crate::store::{Binding, BindingStore, Credentials};

/// Proxy or redirect behaviour for requests to local users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stateful proxy (§16).
    Proxy,
    /// Redirect server (§8.3): answer 302 with the registered contacts.
    Redirect,
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Domains this server is responsible for (registrar + location).
    pub domains: Vec<String>,
    /// Addresses we listen on, used in Via/Record-Route and to recognise
    /// URIs that point at us.
    pub listeners: Vec<(Transport, SocketAddr)>,
    /// Require digest authentication for REGISTER and initial requests from
    /// local users.
    pub auth: bool,
    /// Digest realm.
    pub realm: String,
    /// Challenge algorithms, most preferred first. MD5 alone by default
    /// because common tools (SIPp 3.6) cannot answer SHA-256.
    pub auth_algorithms: Vec<Algorithm>,
    /// Host (name or IP) to put in Via and Record-Route when a listener is
    /// a wildcard address (0.0.0.0 / ::), e.g. the machine's public address.
    pub advertise: Option<String>,
    /// Proxy or redirect.
    pub mode: Mode,
    /// Insert Record-Route in dialog-creating requests.
    pub record_route: bool,
    /// Which of the driver's shards this core is: it is written into the
    /// branch of every request the proxy sends (`z9hG4bK-nt<shard>.`), so a
    /// response arriving on another shard's socket can be handed to the
    /// shard that owns the transaction (see [`branch_shard`]).
    pub shard: u16,
    /// Registrar limits.
    pub registrar: RegistrarConfig,
    /// T1/T2/T4.
    pub timers: TimerConfig,
    /// Timer C: how long an INVITE branch may stay in Proceeding (> 3 min, §16.6).
    pub timer_c: Duration,
    /// Parser limits.
    pub limits: Limits,
    /// Key for nonce MACs and flow tokens. Instances of a cluster share it, so a challenge
    /// from one verifies on another and a flow token one minted routes through another.
    pub secret: [u8; 32],
    /// When nonce timestamps count from (default: when the server starts). Instances of a
    /// cluster agree on one, so a nonce's age reads the same everywhere.
    pub nonce_epoch: Option<Instant>,
}

impl ServerConfig {
    /// Defaults for one domain and one listener.
    pub fn new(domain: impl Into<String>, listener: (Transport, SocketAddr)) -> ServerConfig {
        ServerConfig {
            domains: vec![domain.into()],
            listeners: vec![listener],
            auth: true,
            realm: String::new(),
            auth_algorithms: vec![Algorithm::Md5],
            advertise: None,
            mode: Mode::Proxy,
            record_route: true,
            shard: 0,
            registrar: RegistrarConfig::default(),
            timers: TimerConfig::default(),
            timer_c: Duration::from_secs(181),
            limits: Limits::default(),
            secret: [0x5a; 32],
            nonce_epoch: None,
        }
    }
}

/// What to do after an input.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// Messages to send.
    pub transmits: Vec<Transmit>,
    /// When to call [`SipServer::on_timer`] next.
    pub next_timeout: Option<Instant>,
    /// One line per message refused before it reached a transaction
    /// (unparsable, over a size limit), saying what was wrong and how it was
    /// answered, for the driver's log: nothing is dropped silently.
    pub refused: Vec<String>,
}

/// Counters for monitoring and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Messages that failed to parse.
    pub parse_errors: u64,
    /// REGISTERs answered 200.
    pub registrations: u64,
    /// Requests forwarded statefully (per branch).
    pub forwarded: u64,
    /// Messages relayed statelessly (2xx ACKs, stray responses).
    pub stateless: u64,
    /// Digest challenges sent (401 and 407).
    pub challenges: u64,
}

#[derive(Debug)]
struct Target {
    uri: Option<String>,
    routes: Vec<String>,
    dest: Peer,
    q: u16,
    /// Set when `dest` is the flow of a UA behind a NAT (or an outbound
    /// flow) rather than its Contact: our Record-Route facing it then
    /// carries a flow token so in-dialog requests find it again.
    flow: Option<Peer>,
}

#[derive(Debug)]
struct Branch {
    tx: TxId,
    request: Message<'static>,
    peer: Peer,
    provisional: bool,
    done: bool,
    cancel_pending: bool,
    cancel_sent: bool,
    timer_c: Option<Instant>,
}

#[derive(Debug)]
struct ProxyCtx {
    request: Message<'static>,
    /// Transport the request arrived on (for RFC 5658 double Record-Route).
    inbound: Transport,
    /// The caller's flow when in-dialog requests must reach it over that
    /// flow (caller behind a NAT, on TLS/WS, or asking with `;ob`).
    inbound_flow: Option<Peer>,
    is_invite: bool,
    pending_groups: Vec<Vec<Target>>,
    branches: Vec<Branch>,
    best: Option<Message<'static>>,
    challenges: Vec<(HeaderName, String)>,
    final_sent: bool,
    cancelled: bool,
    server_alive: bool,
    /// Targets are one server's DNS alternatives (RFC 3263 §4.3): only a
    /// 503 or a failure to reach it (408, transport error) moves on to the
    /// next; any other answer is that server's answer.
    failover_only: bool,
}

/// Registrar + proxy core.
pub struct SipServer {
    cfg: ServerConfig,
    creds: Arc<dyn Credentials>,
    bindings: Arc<dyn BindingStore>,
    layer: TransactionLayer<Peer>,
    digest: DigestServer,
    ctxs: HashMap<TxId, ProxyCtx>,
    branch_of: HashMap<TxId, TxId>,
    timer_c: BinaryHeap<Reverse<(Instant, TxId)>>,
    counter: u64,
    /// When expired bindings were last purged (see [`PURGE_EVERY`]).
    last_purge: Instant,
    /// Bindings reachable only over a connection they registered on (a
    /// NATed or outbound TCP/TLS/WS UA), by that connection: when it
    /// closes, they are dropped (see [`SipServer::flow_closed`]).
    stream_flows: HashMap<Peer, Vec<(String, String)>>,
    stats: Stats,
    /// DNS lookups (RFC 3263) the driver has not collected yet.
    lookups: Vec<Lookup>,
    /// Requests waiting for a lookup, by lookup id.
    parked: HashMap<u64, Parked>,
    next_lookup: u64,
    /// Resolved next hops by [`HopName::key`], with their expiry, so ACKs
    /// and later requests to the same name need no new lookup.
    dns_cache: HashMap<String, (Vec<Peer>, Instant)>,
}

/// A next hop named by a host name: what the driver must locate (RFC 3263
/// §4) before the request can go on. The driver runs
/// [`crate::locate::Locator`] against its resolver and answers with
/// [`SipServer::resolved`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Hands the answer back to the parked request.
    pub id: u64,
    /// Host name (never an IP literal).
    pub host: String,
    /// Explicit port from the URI.
    pub port: Option<u16>,
    /// Explicit `transport=` parameter.
    pub transport: Option<Transport>,
    /// A SIPS URI (TLS only).
    pub sips: bool,
}

#[derive(Debug)]
struct Parked {
    tx: TxId,
    req: Message<'static>,
    inbound: Transport,
    caller_flow: Option<Peer>,
    key: String,
    deadline: Instant,
}

/// How long a resolved next hop is reused (the resolver keeps its own
/// TTL-bound cache; this one only saves the round trip to it).
/// How often expired bindings and stale stream-flow entries are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);
const DNS_CACHE_TTL: Duration = Duration::from_secs(30);
/// A request waits at most this long for its lookup.
const DNS_PARK_LIMIT: Duration = Duration::from_secs(20);
/// Bounds on DNS state.
const DNS_CACHE_MAX: usize = 4096;
const DNS_PARKED_MAX: usize = 10_000;

/// The named next hop of a URI (None when the host is an IP literal).
fn uri_name(uri: &Uri<'_>) -> Option<Lookup> {
    if host_ip(uri.host).is_some() || uri.host.is_empty() {
        return None;
    }
    Some(Lookup {
        id: 0,
        host: uri.host.to_ascii_lowercase(),
        port: uri.port,
        transport: uri
            .param("transport")
            .and_then(|p| p.value)
            .and_then(Transport::from_token),
        sips: uri.scheme == natter_sip::Scheme::Sips,
    })
}

impl Lookup {
    fn key(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{}",
            self.host, self.port, self.transport, self.sips
        )
    }
}

/// The next hop of a request when it is named rather than numeric.
fn next_hop_name(req: &Message<'_>) -> Option<Lookup> {
    if req.header(HeaderName::Route).is_some() {
        let routes = req.addr_list(HeaderName::Route).ok()?;
        return routes.first().and_then(|r| uri_name(&r.uri));
    }
    req.request_uri()?.ok().as_ref().and_then(uri_name)
}

impl std::fmt::Debug for SipServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipServer")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// FNV-1a, for loop-detection hashes and stateless branches (no security role).
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Host part of a URI/Via as an IP (brackets stripped).
fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Next hop for a URI (no DNS: the host must be an IP literal).
fn uri_dest(uri: &Uri<'_>) -> Option<Peer> {
    let ip = host_ip(uri.host)?;
    let transport = uri
        .param("transport")
        .and_then(|p| p.value)
        .and_then(Transport::from_token)
        .unwrap_or(if uri.scheme == natter_sip::Scheme::Sips {
            Transport::Tls
        } else {
            Transport::Udp
        });
    Some(Peer {
        transport,
        addr: SocketAddr::new(ip, uri.port_or_default()),
    })
}

/// Next hop of a request being forwarded: the first Route entry, else the
/// Request-URI (§16.6 step 7, loose routing only).
fn next_hop(req: &Message<'_>) -> Option<Peer> {
    if req.header(HeaderName::Route).is_some() {
        let routes = req.addr_list(HeaderName::Route).ok()?;
        return routes.first().and_then(|r| uri_dest(&r.uri));
    }
    req.request_uri()?.ok().as_ref().and_then(uri_dest)
}

/// Where a request for binding `b` goes (§16.5, RFC 3327 Path, RFC 5626).
///
/// * With a Path, its first entry is the next hop.
/// * Outbound bindings and UAs whose Contact is not reachable from here
///   (behind a NAT, TLS/WS, `;ob`: see [`flow::needs_flow`]) get the flow
///   their REGISTER came in on; the Request-URI stays the Contact.
/// * Otherwise the Contact is used, as registered from the open internet:
///   over UDP its address; over TCP its address on that transport (the
///   connection the REGISTER used may be gone and its port was ephemeral;
///   the client listens at its Contact).
fn binding_target(b: &Binding) -> Option<Target> {
    let parsed = Uri::parse(&b.contact).ok()?;
    let path_hop = b.path.first().and_then(|p| {
        natter_sip::NameAddr::parse(p)
            .ok()
            .and_then(|na| uri_dest(&na.uri))
    });
    let flow = b.source.map(|(t, a)| Peer {
        transport: t,
        addr: a,
    });
    let (dest, via_flow) = match (path_hop, flow) {
        (Some(hop), _) => (hop, None),
        (None, Some(f)) if b.is_outbound() || flow::needs_flow(Some(&parsed), f) => (f, Some(f)),
        (None, Some(f)) => match uri_dest(&parsed) {
            Some(p) if f.transport == Transport::Udp && !p.transport.needs_flow() => (p, None),
            Some(p) if f.transport != Transport::Udp => (
                Peer {
                    transport: f.transport,
                    addr: p.addr,
                },
                None,
            ),
            _ => (f, Some(f)),
        },
        (None, None) => (uri_dest(&parsed)?, None),
    };
    Some(Target {
        uri: Some(b.contact.clone()),
        routes: b.path.clone(),
        dest,
        q: b.q,
        flow: via_flow,
    })
}

/// RFC 5626 §5.3: at most one flow per instance in a target set. Of an
/// instance's outbound bindings (one per reg-id, i.e. per edge flow) the
/// most recently refreshed one (latest expiry) is used.
fn one_flow_per_instance(mut bindings: Vec<Binding>) -> Vec<Binding> {
    bindings.sort_by_key(|b| Reverse(b.expires_at));
    let mut seen: Vec<String> = Vec::new();
    bindings.retain(|b| match (&b.instance, b.is_outbound()) {
        (Some(i), true) => {
            if seen.contains(i) {
                false
            } else {
                seen.push(i.clone());
                true
            }
        }
        _ => true,
    });
    bindings
}

/// Where a response goes according to a Via (§18.2.2, RFC 3581).
fn via_dest(via: &Via<'_>) -> Option<Peer> {
    let ip = via
        .received()
        .and_then(host_ip)
        .or_else(|| host_ip(via.host))?;
    let port = via.rport().flatten().or(via.port).unwrap_or(5060);
    let transport = Transport::from_token(via.transport).unwrap_or(Transport::Udp);
    Some(Peer {
        transport,
        addr: SocketAddr::new(ip, port),
    })
}

impl SipServer {
    /// A server over the given stores.
    pub fn new(
        cfg: ServerConfig,
        creds: Arc<dyn Credentials>,
        bindings: Arc<dyn BindingStore>,
        now: Instant,
    ) -> SipServer {
        let realm = if cfg.realm.is_empty() {
            cfg.domains
                .first()
                .cloned()
                .unwrap_or_else(|| "natter".to_owned())
        } else {
            cfg.realm.clone()
        };
        let digest = DigestServer::new(realm, cfg.secret, cfg.nonce_epoch.unwrap_or(now));
        SipServer {
            layer: TransactionLayer::new(cfg.timers, true),
            cfg,
            creds,
            bindings,
            digest,
            ctxs: HashMap::new(),
            branch_of: HashMap::new(),
            timer_c: BinaryHeap::new(),
            counter: 0,
            last_purge: now,
            stream_flows: HashMap::new(),
            stats: Stats::default(),
            lookups: Vec::new(),
            parked: HashMap::new(),
            next_lookup: 0,
            dns_cache: HashMap::new(),
        }
    }

    /// DNS lookups requested since the last call: the driver locates each
    /// (RFC 3263) and answers with [`SipServer::resolved`].
    pub fn take_lookups(&mut self) -> Vec<Lookup> {
        std::mem::take(&mut self.lookups)
    }

    /// The driver could not reach `peer` (connection refused, TLS handshake
    /// failed): every branch waiting on it fails now with a transport error
    /// (a 503 for the proxy, so the next DNS destination is tried: RFC 3263
    /// §4.3) instead of waiting for Timer B/F.
    pub fn peer_unreachable(&mut self, now: Instant, peer: Peer) -> Output {
        let txs: Vec<TxId> = self
            .ctxs
            .values()
            .flat_map(|c| c.branches.iter())
            .filter(|b| b.peer == peer && !b.done)
            .map(|b| b.tx)
            .collect();
        let mut events = Vec::new();
        for tx in txs {
            events.extend(self.layer.transport_error(tx));
        }
        let mut out = Vec::new();
        self.process(now, events, &mut out);
        Output {
            transmits: out,
            next_timeout: self.next_timeout(),
            refused: Vec::new(),
        }
    }

    /// Requests waiting for DNS.
    pub fn parked_requests(&self) -> usize {
        self.parked.len()
    }

    /// The answer to lookup `id`: destinations in the order to try them
    /// (empty when the name does not resolve). The parked request is
    /// forwarded to them in sequence, each tried after the previous one
    /// failed (503, timeout, transport error: RFC 3263 §4.3), or answered
    /// 478 when there is nowhere to send it.
    pub fn resolved(&mut self, now: Instant, id: u64, dests: Vec<Peer>) -> Output {
        let mut out = Vec::new();
        if let Some(p) = self.parked.remove(&id) {
            if !dests.is_empty() {
                if self.dns_cache.len() >= DNS_CACHE_MAX {
                    self.dns_cache.retain(|_, (_, exp)| *exp > now);
                    if self.dns_cache.len() >= DNS_CACHE_MAX {
                        self.dns_cache.clear();
                    }
                }
                self.dns_cache
                    .insert(p.key.clone(), (dests.clone(), now + DNS_CACHE_TTL));
            }
            let events = self.forward_to_located(now, p, dests);
            self.process(now, events, &mut out);
        }
        Output {
            transmits: out,
            next_timeout: self.next_timeout(),
            refused: Vec::new(),
        }
    }

    fn forward_to_located(
        &mut self,
        now: Instant,
        p: Parked,
        dests: Vec<Peer>,
    ) -> Vec<Event<'static, Peer>> {
        if dests.is_empty() {
            let tag = self.to_tag(&p.req);
            let resp =
                Message::response_to(&p.req, 478, Some("Unresolvable destination"), Some(&tag));
            return self.layer.send_response(now, p.tx, &resp);
        }
        // Distinct, descending q: one destination at a time, in DNS order.
        let targets = dests
            .into_iter()
            .enumerate()
            .map(|(i, dest)| Target {
                uri: None,
                routes: Vec::new(),
                dest,
                q: 1000u16.saturating_sub(i as u16).max(1),
                flow: None,
            })
            .collect();
        let tx = p.tx;
        let ev = self.start_proxy(now, tx, p.req, targets, p.inbound, p.caller_flow);
        if let Some(ctx) = self.ctxs.get_mut(&tx) {
            ctx.failover_only = true;
        }
        ev
    }

    /// A request whose next hop is a name: forward from the cache, or park
    /// it and ask the driver for a lookup.
    fn forward_named(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Message<'static>,
        mut name: Lookup,
        inbound: Transport,
        caller_flow: Option<Peer>,
    ) -> Vec<Event<'static, Peer>> {
        let key = name.key();
        let parked = Parked {
            tx,
            req,
            inbound,
            caller_flow,
            key: key.clone(),
            deadline: now + DNS_PARK_LIMIT,
        };
        if let Some((dests, exp)) = self.dns_cache.get(&key) {
            if *exp > now {
                let dests = dests.clone();
                return self.forward_to_located(now, parked, dests);
            }
        }
        if self.parked.len() >= DNS_PARKED_MAX {
            let resp = Message::response_to(&parked.req, 503, Some("DNS Busy"), None);
            return self.layer.send_response(now, tx, &resp);
        }
        self.next_lookup += 1;
        name.id = self.next_lookup;
        self.parked.insert(name.id, parked);
        self.lookups.push(name);
        Vec::new()
    }

    /// A cached location for a named URI (stateless forwarding never waits).
    fn cached_dest(&self, uri: &Uri<'_>, now: Instant) -> Option<Peer> {
        let name = uri_name(uri)?;
        self.dns_cache
            .get(&name.key())
            .filter(|(_, exp)| *exp > now)
            .and_then(|(d, _)| d.first().copied())
    }

    /// Requests whose lookup never came back are answered 504.
    fn expire_parked(&mut self, now: Instant) -> Vec<Event<'static, Peer>> {
        let due: Vec<u64> = self
            .parked
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut ev = Vec::new();
        for id in due {
            if let Some(p) = self.parked.remove(&id) {
                let resp = Message::response_to(&p.req, 504, Some("DNS Time-out"), None);
                ev.extend(self.layer.send_response(now, p.tx, &resp));
            }
        }
        ev
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live transactions (for tests and monitoring).
    pub fn transactions(&self) -> usize {
        self.layer.len()
    }

    /// Live proxy contexts.
    pub fn proxy_contexts(&self) -> usize {
        self.ctxs.len()
    }

    fn next_timeout(&self) -> Option<Instant> {
        let c = self.timer_c.peek().map(|Reverse((t, _))| *t);
        let dns = self.parked.values().map(|p| p.deadline).min();
        [self.layer.next_deadline(), c, dns]
            .into_iter()
            .flatten()
            .min()
    }

    fn listener(&self, transport: Transport) -> Option<SocketAddr> {
        self.cfg
            .listeners
            .iter()
            .find(|(t, _)| *t == transport)
            .or_else(|| self.cfg.listeners.first())
            .map(|(_, a)| *a)
    }

    /// Our `host:port` for Via and Record-Route towards `dest`. A wildcard
    /// listener (0.0.0.0 / ::) is not an address anyone can reach: use the
    /// configured `advertise` host, else loopback when talking to a
    /// loopback peer, else the primary domain.
    fn local_hostport(&self, transport: Transport, dest: Option<SocketAddr>) -> String {
        let Some(a) = self.listener(transport) else {
            return self
                .cfg
                .domains
                .first()
                .cloned()
                .unwrap_or_else(|| "localhost".to_owned());
        };
        let host = if !a.ip().is_unspecified() {
            a.ip().to_string()
        } else if let Some(adv) = &self.cfg.advertise {
            adv.clone()
        } else if dest.is_some_and(|d| d.ip().is_loopback()) {
            if a.is_ipv6() {
                "::1".to_owned()
            } else {
                "127.0.0.1".to_owned()
            }
        } else {
            self.cfg
                .domains
                .first()
                .cloned()
                .unwrap_or_else(|| a.ip().to_string())
        };
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", a.port())
        } else {
            format!("{host}:{}", a.port())
        }
    }

    /// True if (host, port) names this server.
    fn is_local(&self, host: &str, port: Option<u16>) -> bool {
        if self
            .cfg
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(host))
        {
            return true;
        }
        let port = port.unwrap_or(5060);
        let advertised = self
            .cfg
            .advertise
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(host));
        if advertised && self.cfg.listeners.iter().any(|(_, a)| a.port() == port) {
            return true;
        }
        let Some(ip) = host_ip(host) else {
            return false;
        };
        self.cfg.listeners.iter().any(|(_, a)| {
            a.port() == port
                && (a.ip() == ip
                    || (a.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())))
        })
    }

    fn is_local_uri(&self, uri: &Uri<'_>) -> bool {
        uri.is_sip() && self.is_local(uri.host, uri.port)
    }

    /// Pop leading Route entries that point at us (at most two: RFC 5658)
    /// and return the flow the request must go to, if our entries say so.
    ///
    /// When a dialog involves a UA whose flow matters (NAT, TLS/WS, `;ob`),
    /// we record-route twice, each entry carrying the flow token of the UA
    /// it faces (none for a UA reachable at its Contact). A request from
    /// one side presents that side's entry first and the other side's
    /// second, so the second entry's token is the destination flow. A lone
    /// entry with a token (RFC 5626 §5.3 style) means: send to that flow,
    /// unless the request came from it.
    fn strip_own_routes(&self, req: &mut Message<'_>, from: Peer) -> Option<Peer> {
        let mut tokens: Vec<Option<Peer>> = Vec::with_capacity(2);
        for _ in 0..2 {
            let first = req
                .addr_list(HeaderName::Route)
                .ok()
                .and_then(|l| l.into_iter().next());
            match first {
                Some(r) if self.is_local_uri(&r.uri) => {
                    tokens.push(
                        r.uri
                            .user
                            .and_then(|u| flow::decode_token(u, &self.cfg.secret)),
                    );
                    drop(r);
                    remove_top_route(req);
                }
                _ => break,
            }
        }
        match tokens.as_slice() {
            [_, second] => *second,
            [only] => only.filter(|f| *f != from),
            _ => None,
        }
    }

    /// Location-service key: local hosts (our IPs, aliases) collapse onto the
    /// primary domain so `sip:bob@127.0.0.1:5060` and `sip:bob@natter.test`
    /// name the same user.
    fn canonical_aor(&self, uri: &Uri<'_>) -> String {
        match (self.is_local_uri(uri), uri.user, self.cfg.domains.first()) {
            (true, Some(user), Some(domain)) => {
                // One string, no `format!`: this runs for every REGISTER.
                let user = natter_sip::uri::unescape(user);
                let user = String::from_utf8_lossy(&user);
                let mut aor = String::with_capacity(5 + user.len() + domain.len());
                aor.push_str("sip:");
                aor.push_str(&user);
                aor.push('@');
                aor.extend(domain.chars().map(|c| c.to_ascii_lowercase()));
                aor
            }
            _ => uri.aor(),
        }
    }

    /// Feed one received message (one datagram, or one framed stream message).
    pub fn handle(
        &mut self,
        now: Instant,
        transport: Transport,
        src: SocketAddr,
        bytes: &[u8],
    ) -> Output {
        let peer = Peer {
            transport,
            addr: src,
        };
        let mut tx_out = Vec::new();
        match keepalive::classify(transport, src, bytes) {
            Some(KeepAlive::Answer(answer)) => {
                return Output {
                    transmits: vec![Transmit {
                        to: peer,
                        bytes: answer,
                    }],
                    next_timeout: self.next_timeout(),
                    refused: Vec::new(),
                };
            }
            Some(KeepAlive::Ignore) => {
                return Output {
                    transmits: Vec::new(),
                    next_timeout: self.next_timeout(),
                    refused: Vec::new(),
                };
            }
            None => {}
        }
        let framing = if transport.is_message_oriented() {
            Framing::Datagram
        } else {
            Framing::Stream
        };
        match Message::parse_with_views(bytes, framing, &self.cfg.limits) {
            Ok((msg, mut views)) => {
                let top_via = views.top_via.take();
                let msg = if msg.is_request() {
                    fix_top_via(msg, transport, src, top_via.as_ref())
                } else {
                    msg
                };
                if let Some(bytes) = self.stateless_challenge(now, &msg) {
                    return Output {
                        transmits: vec![Transmit { to: peer, bytes }],
                        next_timeout: self.next_timeout(),
                        refused: Vec::new(),
                    };
                }
                // `received`/`rport` do not change the branch or sent-by that key it.
                let events =
                    self.layer
                        .on_message_via(now, peer, transport.is_reliable(), msg, top_via);
                self.process_with_views(now, events, &mut tx_out, views);
            }
            Err(e) => return self.refuse(peer, Some(bytes), &e),
        }
        Output {
            transmits: tx_out,
            next_timeout: self.next_timeout(),
            refused: Vec::new(),
        }
    }

    /// A message that cannot be served: `bytes` failed to parse (or, from a
    /// stream, is the header section of a message the framer refused) with
    /// `err`. Requests are answered statelessly with
    /// [`ParseError::status_code`] and a reason phrase saying what was wrong
    /// when enough is readable to address an answer (§16.3, §21.4, RFC 4475);
    /// every refusal gets a line in [`Output::refused`].
    pub fn refuse(&mut self, from: Peer, bytes: Option<&[u8]>, err: &ParseError) -> Output {
        self.stats.parse_errors += 1;
        let lenient = bytes.map(Message::parse_lenient);
        let what = match &lenient {
            Some(Ok(m)) => match (m.method(), m.request_uri_str()) {
                (Some(method), Some(uri)) => {
                    // Untrusted: escaped and cut short for the log.
                    let uri: String = uri.escape_debug().take(200).collect();
                    format!("{method} {uri}")
                }
                _ => "response".to_owned(),
            },
            _ => "message".to_owned(),
        };
        let mut transmits = Vec::new();
        let answer = match lenient {
            Some(Ok(m)) if m.is_request() && m.method() != Some(&Method::Ack) => {
                if m.top_via().is_ok() {
                    let code = err.status_code();
                    let reason = err.reason_phrase();
                    let resp = Message::response_to(&m, code, Some(&reason), None);
                    transmits.push(Transmit {
                        to: from,
                        bytes: resp.to_bytes(),
                    });
                    format!("answered {code} {reason}")
                } else {
                    "not answered: no usable Via".to_owned()
                }
            }
            Some(Ok(_)) => "dropped (responses and ACKs are never answered)".to_owned(),
            _ => "not answered: no readable request line and Via".to_owned(),
        };
        Output {
            transmits,
            next_timeout: self.next_timeout(),
            refused: vec![format!(
                "refused {what} from {} {}: {err}; {answer}",
                from.transport, from.addr
            )],
        }
    }

    /// A TCP/TLS/WebSocket connection closed (the driver calls this). Bindings
    /// that could only be reached over it (NATed or outbound registrations)
    /// are removed: there is no way back to those UAs until they register
    /// again, and trying to connect to a NAT's address would only hang
    /// (RFC 5626 §5.3: a failed flow is not used). Bindings of UAs reachable
    /// at their Contact stay. Returns how many bindings were removed.
    pub fn flow_closed(&mut self, now: Instant, flow: Peer) -> usize {
        let Some(entries) = self.stream_flows.remove(&flow) else {
            return 0;
        };
        let mut removed = 0;
        for (aor, contact) in entries {
            let still_on_flow = self
                .bindings
                .lookup(&aor, now)
                .iter()
                .any(|b| b.contact == contact && b.source == Some((flow.transport, flow.addr)));
            if still_on_flow {
                self.bindings.remove(&aor, &contact);
                removed += 1;
            }
        }
        removed
    }

    /// Remember the flow-only bindings a REGISTER over a connection made.
    fn note_stream_flow(&mut self, now: Instant, aor: &str, from: Peer) {
        if !from.transport.is_reliable() {
            return;
        }
        let source = Some((from.transport, from.addr));
        let flow_only: Vec<String> = self
            .bindings
            .lookup(aor, now)
            .into_iter()
            .filter(|b| b.source == source)
            .filter(|b| binding_target(b).is_some_and(|t| t.flow.is_some()))
            .map(|b| b.contact)
            .collect();
        let list = self.stream_flows.entry(from).or_default();
        list.retain(|(a, _)| a != aor);
        list.extend(flow_only.into_iter().map(|c| (aor.to_owned(), c)));
        if list.is_empty() {
            self.stream_flows.remove(&from);
        }
    }

    /// Forget flow entries whose bindings expired or moved to another flow
    /// (a driver that never reports closed connections stays bounded).
    fn prune_stream_flows(&mut self, now: Instant) {
        let bindings = &self.bindings;
        self.stream_flows.retain(|flow, list| {
            list.retain(|(aor, contact)| {
                bindings
                    .lookup(aor, now)
                    .iter()
                    .any(|b| &b.contact == contact && b.source == Some((flow.transport, flow.addr)))
            });
            !list.is_empty()
        });
    }

    /// Run due timers.
    pub fn on_timer(&mut self, now: Instant) -> Output {
        let mut out = Vec::new();
        let mut events = self.layer.on_timer(now);
        if !self.parked.is_empty() {
            events.extend(self.expire_parked(now));
        }
        self.process(now, events, &mut out);
        while let Some(Reverse((t, tx))) = self.timer_c.peek().copied() {
            if t > now {
                break;
            }
            self.timer_c.pop();
            self.fire_timer_c(now, tx, t, &mut out);
        }
        // Expired bindings are filtered on lookup; purge occasionally. By
        // time, not by timer count: under load Timer J fires every
        // millisecond, and a purge reads every binding (tens of
        // milliseconds for 100 000 users, with every request waiting).
        if now.saturating_duration_since(self.last_purge) >= PURGE_EVERY {
            self.last_purge = now;
            self.bindings.purge_expired(now);
            self.prune_stream_flows(now);
        }
        Output {
            transmits: out,
            next_timeout: self.next_timeout(),
            refused: Vec::new(),
        }
    }

    fn process(&mut self, now: Instant, events: Vec<Event<'_, Peer>>, out: &mut Vec<Transmit>) {
        self.process_with_views(now, events, out, Views::default());
    }

    /// [`SipServer::process`] for the events of one received message, with the typed
    /// headers its validation parsed: they go with the first request event, the only one
    /// that can be that message (the layer reports a new request once, and whatever the
    /// handlers add is queued behind it).
    fn process_with_views<'m>(
        &mut self,
        now: Instant,
        events: Vec<Event<'m, Peer>>,
        out: &mut Vec<Transmit>,
        mut views: Views<'m>,
    ) {
        let mut queue: std::collections::VecDeque<Event<'_, Peer>> = events.into();
        let mut guard = 0usize;
        while let Some(ev) = queue.pop_front() {
            guard += 1;
            if guard > 100_000 {
                break;
            }
            let more = match ev {
                Event::Send { to, bytes, .. } => {
                    out.push(Transmit { to, bytes });
                    Vec::new()
                }
                Event::Request { tx, from, msg } => {
                    self.on_request(now, tx, from, msg, std::mem::take(&mut views))
                }
                // Responses and strays are forwarded or kept: they are copied out of the
                // received datagram, requests only where they are kept (proxied, parked).
                Event::Response { tx, msg } => self.on_branch_response(now, tx, msg.into_owned()),
                Event::Stray { from, msg } => {
                    self.on_stray(now, from, msg.into_owned(), out);
                    Vec::new()
                }
                Event::Timeout { tx } => self.on_branch_failure(now, tx, 408),
                Event::TransportError { tx } => self.on_branch_failure(now, tx, 503),
                Event::Terminated { tx } => {
                    self.on_terminated(tx);
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    fn respond(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Message<'_>,
        code: u16,
    ) -> Vec<Event<'static, Peer>> {
        let tag = self.to_tag(req);
        let resp = Message::response_to(req, code, None, Some(&tag));
        self.layer.send_response(now, tx, &resp)
    }

    fn to_tag(&self, req: &Message<'_>) -> String {
        // Deterministic per request so retransmitted answers agree.
        let call_id = req.call_id().unwrap_or("");
        let from_tag = req.from_tag().unwrap_or("");
        let mut tag = String::with_capacity(18);
        tag.push_str("nt");
        tag.push_str(&natter_sip::syntax::hex(
            &fnv(&[call_id, from_tag, "natter"]).to_be_bytes(),
        ));
        tag
    }

    fn on_request(
        &mut self,
        now: Instant,
        tx: TxId,
        from: Peer,
        req: Message<'_>,
        views: Views<'_>,
    ) -> Vec<Event<'static, Peer>> {
        let method = req.method().cloned().unwrap_or(Method::Options);
        if method == Method::Cancel {
            return self.on_cancel(now, tx, &req);
        }
        if req.max_forwards().ok().flatten() == Some(0) {
            let to_us = req
                .request_uri()
                .and_then(Result::ok)
                .is_some_and(|u| self.is_local_uri(&u) && u.user.is_none());
            let code = if method == Method::Options && to_us {
                200
            } else {
                483
            };
            return self.respond(now, tx, &req, code);
        }
        if self.is_loop(&req) {
            return self.respond(now, tx, &req, 482);
        }
        // §16.3 step 5: option tags in Proxy-Require we do not support -> 420.
        if let Some(ev) = self.reject_unsupported(now, tx, &req, HeaderName::ProxyRequire) {
            return ev;
        }
        let mut req = req;
        // §16.4: remove our own Route entries (loose routing; two of them
        // after RFC 5658 double record-routing).
        let flow_dest = self.strip_own_routes(&mut req, from);
        let in_dialog = req.to_tag().is_some();
        if let Some(dest) = flow_dest {
            // A mid-dialog request for a UA behind a NAT: its Contact (the Request-URI, left
            // as is) is private; the flow reaches it. An initial request whose Route names one
            // of our flows: another instance of a cluster (or an edge role, via Path) hands us
            // a request for a UA only we can reach. Send it over the flow, and record-route
            // with its token so the dialog's later requests come back through us to that flow.
            let target = Target {
                uri: None,
                routes: Vec::new(),
                dest,
                q: 1000,
                flow: (!in_dialog).then_some(dest),
            };
            return self.start_proxy(
                now,
                tx,
                req.into_owned(),
                vec![target],
                from.transport,
                None,
            );
        }
        let Some(Ok(ruri)) = req.request_uri() else {
            return self.respond(now, tx, &req, 416);
        };
        let has_route = req.header(HeaderName::Route).is_some();
        if !has_route && !ruri.is_sip() && ruri.scheme != natter_sip::Scheme::Tel {
            return self.respond(now, tx, &req, 416);
        }
        if !has_route && self.is_local_uri(&ruri) {
            if method == Method::Register {
                return self.on_register(now, tx, from, &req, views);
            }
            if ruri.user.is_none() {
                let code = if method == Method::Options { 200 } else { 404 };
                return self.respond(now, tx, &req, code);
            }
            // Like a typical Kamailio setup: challenge initial requests that
            // claim to come from one of our users (From is local); calls from
            // foreign domains are routed to local users unauthenticated.
            let from_local = req.from().is_ok_and(|f| self.is_local_uri(&f.uri));
            let mut strip_auth = false;
            if self.cfg.auth && !in_dialog && from_local && method != Method::Ack {
                if let Some(ev) = self.check_auth(now, tx, &req, None) {
                    return ev;
                }
                // Our credentials are consumed here, not forwarded (§22.3).
                strip_auth = true;
            }
            let aor = self.canonical_aor(&ruri);
            let user = ruri.user.unwrap_or("").to_owned();
            let bindings = match self.bindings.try_lookup(&aor, now) {
                Ok(b) => b,
                Err(_) => {
                    // Unknown is not "not registered": 500 + Retry-After, never 404/480.
                    let tag = self.to_tag(&req);
                    let resp = registrar::unavailable(&req, &tag);
                    return self.layer.send_response(now, tx, &resp);
                }
            };
            if bindings.is_empty() {
                let code = if self.creds.user_exists(&user) {
                    480
                } else {
                    404
                };
                return self.respond(now, tx, &req, code);
            }
            if self.cfg.mode == Mode::Redirect {
                let tag = self.to_tag(&req);
                let mut resp = Message::response_to(&req, 302, None, Some(&tag));
                resp.remove(HeaderName::ContentLength);
                for b in &bindings {
                    resp.push(
                        HeaderName::Contact,
                        format!("<{}>;q=0.{:03}", b.contact, b.q.min(999)),
                    );
                }
                resp.push(HeaderName::ContentLength, "0");
                return self.layer.send_response(now, tx, &resp);
            }
            let targets: Vec<Target> = one_flow_per_instance(bindings)
                .iter()
                .filter_map(binding_target)
                .collect();
            drop(ruri);
            if strip_auth {
                req.remove(HeaderName::ProxyAuthorization);
            }
            let caller_flow = self.caller_flow(&req, from);
            return self.start_proxy(
                now,
                tx,
                req.into_owned(),
                targets,
                from.transport,
                caller_flow,
            );
        }
        // Route set or foreign Request-URI: forward to the next hop. With
        // authentication on this is not an open relay: initial requests
        // (no To tag) must come from an authenticated local user.
        drop(ruri);
        if self.cfg.auth && !in_dialog && method != Method::Ack {
            let from_local = req.from().is_ok_and(|f| self.is_local_uri(&f.uri));
            if !from_local {
                let tag = self.to_tag(&req);
                let resp = Message::response_to(&req, 403, Some("Relaying Forbidden"), Some(&tag));
                return self.layer.send_response(now, tx, &resp);
            }
            if let Some(ev) = self.check_auth(now, tx, &req, None) {
                return ev;
            }
            req.remove(HeaderName::ProxyAuthorization);
        }
        match next_hop(&req) {
            Some(dest) => {
                let target = Target {
                    uri: None,
                    routes: Vec::new(),
                    dest,
                    q: 1000,
                    flow: None,
                };
                let caller_flow = self.caller_flow(&req, from);
                self.start_proxy(
                    now,
                    tx,
                    req.into_owned(),
                    vec![target],
                    from.transport,
                    caller_flow,
                )
            }
            None => match next_hop_name(&req) {
                Some(name) => {
                    let caller_flow = self.caller_flow(&req, from);
                    self.forward_named(now, tx, req.into_owned(), name, from.transport, caller_flow)
                }
                None => self.respond(now, tx, &req, 404),
            },
        }
    }

    /// The caller's flow, when a dialog-creating request comes straight from
    /// a UA (one Via) that cannot be reached at its Contact: in-dialog
    /// requests towards it then go to this flow (via the token in our
    /// Record-Route). Requests relayed by another proxy are left alone: that
    /// proxy's address is not the UA's flow.
    fn caller_flow(&self, req: &Message<'_>, from: Peer) -> Option<Peer> {
        let initial = req.to_tag().is_none();
        let dialog_creating = matches!(
            req.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer)
        );
        if !(self.cfg.record_route && initial && dialog_creating) {
            return None;
        }
        if req.list(HeaderName::Via).map_or(true, |v| v.len() != 1) {
            return None;
        }
        let contacts = req.contacts().ok()?;
        let contact = contacts.iter().find_map(|c| match c {
            natter_sip::Contact::Addr(a) => Some(&a.uri),
            natter_sip::Contact::Star => None,
        })?;
        flow::needs_flow(Some(contact), from).then_some(from)
    }

    /// Authenticate a request; `Some(events)` means it was answered (401/407/403).
    /// `register` is `Some(To's user)` for a REGISTER (answered with 401, and the
    /// authenticated user must own the AOR), `None` for a request to proxy (407).
    fn check_auth(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Message<'_>,
        register: Option<Option<&str>>,
    ) -> Option<Vec<Event<'static, Peer>>> {
        let proxy = register.is_none();
        let cred_h = if proxy {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        };
        let method = req.method().map_or("", |m| m.as_str());
        let creds = req
            .header_values(cred_h)
            .filter_map(|v| DigestCredentials::parse(v).ok())
            .find(|c| c.realm == self.digest.realm());
        let mut stale = false;
        if let Some(c) = creds {
            match self
                .creds
                .ha1(&c.username, self.digest.realm(), c.algorithm)
            {
                None => return Some(self.respond(now, tx, req, 403)),
                Some(h) => match self.digest.verify(now, &c, method, &h) {
                    Verdict::Ok => {
                        // For REGISTER the authenticated user must own the AOR (§10.3 step 3).
                        if let Some(to_user) = register {
                            if to_user != Some(c.username.as_ref()) {
                                return Some(self.respond(now, tx, req, 403));
                            }
                        }
                        return None;
                    }
                    Verdict::Stale => stale = true,
                    Verdict::BadResponse => return Some(self.respond(now, tx, req, 403)),
                    Verdict::BadNonce | Verdict::Replay | Verdict::Mismatch => {}
                },
            }
        }
        let resp = self.challenge(now, req, proxy, stale);
        // Challenges to non-INVITE requests are stateless (RFC 3261 §8.2.7, as Kamailio's
        // `www_challenge` answers through `sl`): a REGISTER storm leaves no held 401s, and a
        // retransmitted request gets a fresh nonce. An INVITE's 407 stays in its transaction,
        // which absorbs the hop-by-hop ACK.
        if matches!(req.method(), Some(Method::Invite)) {
            Some(self.layer.send_response(now, tx, &resp))
        } else {
            Some(self.layer.send_response_stateless(now, tx, &resp))
        }
    }

    /// The 401 (or, for a proxied request, 407) that asks `req` for credentials.
    fn challenge(
        &mut self,
        now: Instant,
        req: &Message<'_>,
        proxy: bool,
        stale: bool,
    ) -> Message<'static> {
        let (chal_h, code) = if proxy {
            (HeaderName::ProxyAuthenticate, 407)
        } else {
            (HeaderName::WwwAuthenticate, 401)
        };
        let tag = self.to_tag(req);
        let mut resp = Message::response_to(req, code, None, Some(&tag));
        resp.remove(HeaderName::ContentLength);
        for v in self.challenge_values(now, stale) {
            resp.push(chal_h, v);
        }
        resp.push(HeaderName::ContentLength, "0");
        resp.into_owned()
    }

    /// One challenge per configured algorithm, each with a fresh nonce (counted).
    fn challenge_values(&mut self, now: Instant, stale: bool) -> Vec<String> {
        self.stats.challenges += 1;
        let mut values = Vec::with_capacity(self.cfg.auth_algorithms.len());
        for i in 0..self.cfg.auth_algorithms.len() {
            let alg = self.cfg.auth_algorithms[i];
            values.push(self.digest.challenge_value(now, alg, stale));
        }
        values
    }

    /// The answer to a REGISTER that brings no credentials at all, when the transaction
    /// layer need not see it: a 401 with a fresh nonce, built from the parsed datagram and
    /// sent statelessly (RFC 3261 §8.2.7), the same answer `on_register` would give through
    /// a transaction it then drops at once. Half of a registration storm is such requests;
    /// skipping the layer skips copying the request into an owned transaction entry.
    /// `None` for anything the full path treats differently (a Route, a Require or
    /// Proxy-Require to check, Max-Forwards 0, a loop, a Request-URI not ours).
    fn stateless_challenge(&mut self, now: Instant, req: &Message<'_>) -> Option<Vec<u8>> {
        if !self.cfg.auth
            || req.method() != Some(&Method::Register)
            || req.header(HeaderName::Authorization).is_some()
            || req.header(HeaderName::Route).is_some()
            || req.header(HeaderName::Require).is_some()
            || req.header(HeaderName::ProxyRequire).is_some()
            || req.max_forwards().ok()? == Some(0)
            || self.is_loop(req)
        {
            return None;
        }
        let ruri = req.request_uri()?.ok()?;
        if !self.is_local_uri(&ruri) {
            return None;
        }
        // The fields a response copies are well-formed: `handle` only gets
        // here with a message `Message::parse_with` validated.
        // What `challenge` builds, written straight into bytes.
        let tag = self.to_tag(req);
        let values = self.challenge_values(now, false);
        let extra: Vec<(HeaderName, &str)> = values
            .iter()
            .map(|v| (HeaderName::WwwAuthenticate, v.as_str()))
            .collect();
        let mut out = Vec::with_capacity(512);
        Message::write_response_to(req, 401, Some(&tag), &extra, &mut out);
        Some(out)
    }

    fn on_register(
        &mut self,
        now: Instant,
        tx: TxId,
        from: Peer,
        req: &Message<'_>,
        views: Views<'_>,
    ) -> Vec<Event<'static, Peer>> {
        // The registrar is a UAS: Require it does not understand -> 420 (§8.2.2.3).
        if let Some(ev) = self.reject_unsupported(now, tx, req, HeaderName::Require) {
            return ev;
        }
        // Validation parsed To and the Contacts; they are parsed here only when they came
        // folded (see `Views`).
        let to = match views.to {
            Some(to) => to,
            None => match req.to() {
                Ok(to) => to,
                Err(_) => return self.respond(now, tx, req, 400),
            },
        };
        if self.cfg.auth {
            if let Some(ev) = self.check_auth(now, tx, req, Some(to.uri.user)) {
                return ev;
            }
        }
        let aor = self.canonical_aor(&to.uri);
        let tag = self.to_tag(req);
        let resp = registrar::register(
            &self.cfg.registrar,
            self.bindings.as_ref(),
            now,
            req,
            &aor,
            from,
            &tag,
            views.contacts,
        );
        if resp.code() == Some(200) {
            self.stats.registrations += 1;
            self.note_stream_flow(now, &aor, from);
        }
        self.layer.send_response(now, tx, &resp)
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        tx: TxId,
        cancel: &Message<'_>,
    ) -> Vec<Event<'static, Peer>> {
        let Some(target) = self.layer.find_cancel_target(cancel) else {
            return self.respond(now, tx, cancel, 481);
        };
        let mut ev = self.respond(now, tx, cancel, 200);
        if let Some(ctx) = self.ctxs.get_mut(&target) {
            ctx.cancelled = true;
            ctx.pending_groups.clear();
        }
        ev.extend(self.cancel_branches(now, target, None));
        // If no branch was ever started, answer 487 ourselves.
        let no_branches = self
            .ctxs
            .get(&target)
            .map_or(true, |c| c.branches.is_empty() && !c.final_sent);
        if no_branches {
            if let Some(req) = self.layer.request(target).cloned() {
                ev.extend(self.respond(now, target, &req, 487));
            }
            if let Some(ctx) = self.ctxs.get_mut(&target) {
                ctx.final_sent = true;
            }
        }
        ev
    }

    /// Answer 420 with `Unsupported` if `kind` lists option tags other than
    /// the ones we implement (`path`, `outbound`).
    fn reject_unsupported(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Message<'_>,
        kind: HeaderName,
    ) -> Option<Vec<Event<'static, Peer>>> {
        let unknown: Vec<String> = req
            .list(kind)
            .ok()?
            .into_iter()
            .filter(|t| !t.eq_ignore_ascii_case("path") && !t.eq_ignore_ascii_case("outbound"))
            .map(str::to_owned)
            .collect();
        if unknown.is_empty() {
            return None;
        }
        let tag = self.to_tag(req);
        let mut resp = Message::response_to(req, 420, None, Some(&tag));
        resp.remove(HeaderName::ContentLength);
        resp.push(HeaderName::Unsupported, unknown.join(", "));
        resp.push(HeaderName::ContentLength, "0");
        Some(self.layer.send_response(now, tx, &resp))
    }

    /// Loop detection (§16.3 step 4): one of our Vias carries the hash this
    /// request would get again.
    fn is_loop(&self, req: &Message<'_>) -> bool {
        // Only a Via with one of our branches can close a loop: skip parsing
        // the Vias of the common request that has none.
        // Our branches are written exactly so, and branches travel unchanged.
        let ours = req
            .header_values(HeaderName::Via)
            .any(|v| v.contains("z9hG4bK-nt"));
        if !ours {
            return false;
        }
        let Ok(vias) = req.vias() else { return false };
        // The hash costs parsing From/To again: only compute it when one of
        // the Vias is ours (never for a UA's own REGISTER, the common case).
        let mut hash: Option<String> = None;
        vias.iter().skip(1).chain(vias.first()).any(|v| {
            self.is_local(v.host, v.port)
                && v.branch().is_some_and(|b| {
                    let h = hash.get_or_insert_with(|| format!("{:x}", loop_hash(req)));
                    b.split('.').nth(1) == Some(h.as_str())
                })
        })
    }

    fn start_proxy(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Message<'static>,
        mut targets: Vec<Target>,
        inbound: Transport,
        inbound_flow: Option<Peer>,
    ) -> Vec<Event<'static, Peer>> {
        let is_invite = req.method() == Some(&Method::Invite);
        // Sequential groups by descending q; equal q forked in parallel (§16.6, §10.2.1.2).
        targets.sort_by_key(|t| Reverse(t.q));
        let mut groups: Vec<Vec<Target>> = Vec::new();
        for t in targets {
            match groups.last_mut() {
                Some(g) if g.first().is_some_and(|f| f.q == t.q) => g.push(t),
                _ => groups.push(vec![t]),
            }
        }
        groups.reverse(); // pop() takes the highest q first
        let ctx = ProxyCtx {
            request: req,
            is_invite,
            pending_groups: groups,
            branches: Vec::new(),
            best: None,
            challenges: Vec::new(),
            final_sent: false,
            cancelled: false,
            server_alive: true,
            failover_only: false,
            inbound,
            inbound_flow,
        };
        self.ctxs.insert(tx, ctx);
        self.next_group(now, tx)
    }

    fn next_group(&mut self, now: Instant, server_tx: TxId) -> Vec<Event<'static, Peer>> {
        let mut ev = Vec::new();
        let Some(ctx) = self.ctxs.get_mut(&server_tx) else {
            return ev;
        };
        let Some(group) = ctx.pending_groups.pop() else {
            return ev;
        };
        let base = ctx.request.clone();
        let inbound = ctx.inbound;
        let inbound_flow = ctx.inbound_flow;
        let is_invite = ctx.is_invite;
        for target in group {
            let fwd = self.forward_request(&base, &target, inbound, inbound_flow);
            let reliable = target.dest.transport.is_reliable();
            let (ctx_tx, events) = self
                .layer
                .send_request(now, target.dest, reliable, fwd.clone());
            self.stats.forwarded += 1;
            let timer_c = if is_invite {
                Some(now + self.cfg.timer_c)
            } else {
                None
            };
            if let Some(t) = timer_c {
                self.timer_c.push(Reverse((t, ctx_tx)));
            }
            self.branch_of.insert(ctx_tx, server_tx);
            if let Some(ctx) = self.ctxs.get_mut(&server_tx) {
                ctx.branches.push(Branch {
                    tx: ctx_tx,
                    request: fwd,
                    peer: target.dest,
                    provisional: false,
                    done: false,
                    cancel_pending: false,
                    cancel_sent: false,
                    timer_c,
                });
            }
            ev.extend(events);
        }
        ev
    }

    /// Build the forwarded copy of a request for one target (§16.6).
    fn forward_request(
        &mut self,
        base: &Message<'static>,
        target: &Target,
        inbound: Transport,
        inbound_flow: Option<Peer>,
    ) -> Message<'static> {
        let mut fwd = base.clone();
        if let (Some(uri), StartLine::Request { uri: ruri, .. }) = (&target.uri, &mut fwd.start) {
            *ruri = uri.clone().into();
        }
        let mf = base
            .max_forwards()
            .ok()
            .flatten()
            .map_or(70, |m| m.saturating_sub(1));
        fwd.set(HeaderName::MaxForwards, mf.to_string());
        let transport = target.dest.transport;
        let me = self.local_hostport(transport, Some(target.dest.addr));
        let initial = base.to_tag().is_none();
        let dialog_creating = matches!(
            base.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer)
        );
        if self.cfg.record_route && initial && dialog_creating {
            let secret = self.cfg.secret;
            let rr = |t: Transport, hostport: &str, flow: Option<Peer>| {
                let tp = if t == Transport::Udp {
                    String::new()
                } else {
                    format!(";transport={}", t.via_token().to_ascii_lowercase())
                };
                let user = flow
                    .map(|f| format!("{}@", flow::encode_token(f, &secret)))
                    .unwrap_or_default();
                format!("<sip:{user}{hostport}{tp};lr>")
            };
            if inbound != transport || inbound_flow.is_some() || target.flow.is_some() {
                // RFC 5658: one entry per side, so each UA routes back over
                // the transport it can use (e.g. a WebSocket caller), and
                // each entry names the flow of the UA it faces (see
                // `strip_own_routes`).
                let them = self.local_hostport(inbound, None);
                fwd.push_front(HeaderName::RecordRoute, rr(inbound, &them, inbound_flow));
            }
            fwd.push_front(HeaderName::RecordRoute, rr(transport, &me, target.flow));
        }
        for r in target.routes.iter().rev() {
            fwd.push_front(HeaderName::Route, r.clone());
        }
        self.counter += 1;
        let branch = format!(
            "z9hG4bK-nt{}.{:x}.{:x}",
            self.cfg.shard,
            loop_hash(base),
            self.counter
        );
        let via = format!(
            "SIP/2.0/{} {me};branch={branch};rport",
            transport.via_token()
        );
        if fwd.headers.iter().any(|h| h.kind == HeaderName::Via) {
            fwd.push_front(HeaderName::Via, via);
        } else {
            fwd.headers
                .insert(0, natter_sip::Header::new(HeaderName::Via, via));
        }
        fwd
    }

    fn on_branch_response(
        &mut self,
        now: Instant,
        client_tx: TxId,
        resp: Message<'static>,
    ) -> Vec<Event<'static, Peer>> {
        let mut ev = Vec::new();
        let Some(&server_tx) = self.branch_of.get(&client_tx) else {
            return ev;
        };
        let Some(code) = resp.code() else { return ev };
        let Some(ctx) = self.ctxs.get_mut(&server_tx) else {
            return ev;
        };
        let Some(idx) = ctx.branches.iter().position(|b| b.tx == client_tx) else {
            return ev;
        };
        if code == 100 {
            return ev;
        }
        let mut up = resp;
        up.pop_via();
        if up.header(HeaderName::Via).is_none() {
            // §16.7 step 3: nothing left to route it by; it was meant for us.
            return ev;
        }
        if code < 200 {
            let send_cancel = {
                let b = &mut ctx.branches[idx];
                b.provisional = true;
                if b.timer_c.is_some() {
                    let t = now + self.cfg.timer_c;
                    b.timer_c = Some(t);
                    self.timer_c.push(Reverse((t, client_tx)));
                }
                std::mem::take(&mut b.cancel_pending)
            };
            if send_cancel {
                ev.extend(self.send_cancel(now, server_tx, idx));
            }
            let final_sent = self.ctxs.get(&server_tx).is_some_and(|c| c.final_sent);
            if !final_sent {
                ev.extend(self.layer.send_response(now, server_tx, &up));
            }
            return ev;
        }
        if (200..300).contains(&code) {
            ctx.branches[idx].done = true;
            ctx.branches[idx].timer_c = None;
            ctx.final_sent = true;
            let alive = ctx.server_alive;
            let is_invite = ctx.is_invite;
            if alive {
                ev.extend(self.layer.send_response(now, server_tx, &up));
            } else {
                // Late 2xx after the server transaction ended: relay by Via.
                if let Some(dest) = up.top_via().ok().and_then(|v| via_dest(&v)) {
                    ev.push(Event::Send {
                        tx: server_tx,
                        to: dest,
                        bytes: up.to_bytes(),
                    });
                }
            }
            if is_invite {
                ev.extend(self.cancel_branches(now, server_tx, Some(idx)));
            }
            self.maybe_cleanup(server_tx);
            return ev;
        }
        // 3xx-6xx: remember the best, continue.
        ctx.branches[idx].done = true;
        ctx.branches[idx].timer_c = None;
        if code == 401 || code == 407 {
            for kind in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
                for v in up.header_values(kind) {
                    ctx.challenges.push((kind, v.to_owned()));
                }
            }
        }
        let better = match &ctx.best {
            None => true,
            Some(b) => response_rank(code) < response_rank(b.code().unwrap_or(500)),
        };
        if better {
            ctx.best = Some(up);
        }
        if code >= 600 {
            ctx.pending_groups.clear();
            ev.extend(self.cancel_branches(now, server_tx, Some(idx)));
        } else if ctx.failover_only && code != 503 && code != 408 {
            ctx.pending_groups.clear();
        }
        ev.extend(self.check_complete(now, server_tx));
        ev
    }

    fn on_branch_failure(
        &mut self,
        now: Instant,
        client_tx: TxId,
        code: u16,
    ) -> Vec<Event<'static, Peer>> {
        let Some(&server_tx) = self.branch_of.get(&client_tx) else {
            return Vec::new();
        };
        let Some(req) = self.ctxs.get(&server_tx).and_then(|c| {
            c.branches
                .iter()
                .find(|b| b.tx == client_tx && !b.done)
                .map(|b| b.request.clone())
        }) else {
            return Vec::new();
        };
        // Synthesise the branch's final response (§16.7 step 1: 408 on timeout).
        // It carries the forwarded request's Vias; ours on top is popped as
        // for a real response.
        let tag = self.to_tag(&req);
        let resp = Message::response_to(&req, code, None, Some(&tag));
        self.on_branch_response(now, client_tx, resp)
    }

    fn check_complete(&mut self, now: Instant, server_tx: TxId) -> Vec<Event<'static, Peer>> {
        let Some(ctx) = self.ctxs.get_mut(&server_tx) else {
            return Vec::new();
        };
        if ctx.final_sent || ctx.branches.iter().any(|b| !b.done) {
            return Vec::new();
        }
        if !ctx.pending_groups.is_empty() && !ctx.cancelled {
            return self.next_group(now, server_tx);
        }
        ctx.final_sent = true;
        let mut best = match ctx.best.take() {
            Some(b) => b,
            None => Message::response_to(&ctx.request, 408, None, None),
        };
        // §16.7 step 6: a 503 is forwarded as 500.
        if best.code() == Some(503) {
            if let StartLine::Response { code, reason } = &mut best.start {
                *code = 500;
                *reason = "Server Internal Error".into();
            }
        }
        if matches!(best.code(), Some(401 | 407)) {
            for kind in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
                best.remove(kind);
            }
            let cl = best.header(HeaderName::ContentLength).map(str::to_owned);
            best.remove(HeaderName::ContentLength);
            for (k, v) in std::mem::take(&mut ctx.challenges) {
                best.push(k, v);
            }
            best.push(
                HeaderName::ContentLength,
                cl.unwrap_or_else(|| "0".to_owned()),
            );
        }
        let ev = self.layer.send_response(now, server_tx, &best);
        self.maybe_cleanup(server_tx);
        ev
    }

    fn cancel_branches(
        &mut self,
        now: Instant,
        server_tx: TxId,
        except: Option<usize>,
    ) -> Vec<Event<'static, Peer>> {
        let mut ev = Vec::new();
        let n = self.ctxs.get(&server_tx).map_or(0, |c| c.branches.len());
        for idx in 0..n {
            if Some(idx) == except {
                continue;
            }
            let action = match self
                .ctxs
                .get_mut(&server_tx)
                .and_then(|c| c.branches.get_mut(idx))
            {
                Some(b) if !b.done && b.provisional => Some(true),
                Some(b) if !b.done => {
                    // §9.1: wait for a provisional before sending CANCEL.
                    b.cancel_pending = true;
                    None
                }
                _ => None,
            };
            if action == Some(true) {
                ev.extend(self.send_cancel(now, server_tx, idx));
            }
        }
        ev
    }

    fn send_cancel(
        &mut self,
        now: Instant,
        server_tx: TxId,
        idx: usize,
    ) -> Vec<Event<'static, Peer>> {
        let Some((inv, peer)) = self
            .ctxs
            .get(&server_tx)
            .and_then(|c| c.branches.get(idx))
            .filter(|b| b.request.method() == Some(&Method::Invite))
            .map(|b| (b.request.clone(), b.peer))
        else {
            return Vec::new();
        };
        let mut cancel = Message::request(
            Method::Cancel,
            inv.request_uri_str().unwrap_or("").to_owned(),
        );
        if let Ok(v) = inv.top_via() {
            cancel.push(HeaderName::Via, v.to_string());
        }
        for h in &inv.headers {
            if matches!(
                h.kind,
                HeaderName::Route | HeaderName::From | HeaderName::To | HeaderName::CallId
            ) {
                cancel.headers.push(h.clone());
            }
        }
        cancel.push(HeaderName::MaxForwards, "70");
        let seq = inv.cseq().map(|c| c.seq).unwrap_or(1);
        cancel.push(HeaderName::CSeq, format!("{seq} CANCEL"));
        cancel.push(HeaderName::ContentLength, "0");
        let (_, ev) = self
            .layer
            .send_request(now, peer, peer.transport.is_reliable(), cancel);
        // Give the cancelled branch 64*T1 to finish (§16.8), then drop it.
        let giveup = now + self.cfg.timers.t1x64();
        if let Some(b) = self
            .ctxs
            .get_mut(&server_tx)
            .and_then(|c| c.branches.get_mut(idx))
        {
            b.cancel_sent = true;
            if let Some(tx) = Some(b.tx).filter(|_| b.timer_c.is_some()) {
                b.timer_c = Some(giveup);
                self.timer_c.push(Reverse((giveup, tx)));
            }
        }
        ev
    }

    fn fire_timer_c(
        &mut self,
        now: Instant,
        client_tx: TxId,
        at: Instant,
        out: &mut Vec<Transmit>,
    ) {
        let Some(&server_tx) = self.branch_of.get(&client_tx) else {
            return;
        };
        let state = self
            .ctxs
            .get(&server_tx)
            .and_then(|c| {
                c.branches
                    .iter()
                    .position(|b| b.tx == client_tx && b.timer_c == Some(at) && !b.done)
            })
            .and_then(|idx| {
                self.ctxs
                    .get(&server_tx)
                    .and_then(|c| c.branches.get(idx))
                    .map(|b| (idx, b.provisional, b.cancel_sent))
            });
        let Some((idx, provisional, cancel_sent)) = state else {
            return;
        };
        let ev = if provisional && !cancel_sent {
            // §16.8: CANCEL the branch; its 487 normally completes it.
            self.send_cancel(now, server_tx, idx)
        } else {
            // No provisional, or the CANCEL went unanswered for 64*T1:
            // the branch is over (408), and its INVITE transaction, which
            // has no timer left in Proceeding, is dropped.
            let mut ev = self.on_branch_failure(now, client_tx, 408);
            ev.extend(self.layer.terminate(client_tx));
            ev
        };
        self.process(now, ev, out);
    }

    fn on_terminated(&mut self, tx: TxId) {
        if let Some(server_tx) = self.branch_of.get(&tx).copied() {
            // A branch's client transaction ended; the context keeps the branch state.
            let _ = server_tx;
            self.branch_of.remove(&tx);
            return;
        }
        if let Some(ctx) = self.ctxs.get_mut(&tx) {
            ctx.server_alive = false;
            self.maybe_cleanup(tx);
        }
    }

    fn maybe_cleanup(&mut self, server_tx: TxId) {
        let done = self.ctxs.get(&server_tx).is_some_and(|c| {
            c.final_sent && c.branches.iter().all(|b| b.done) && (!c.server_alive || !c.is_invite)
        });
        if done {
            if let Some(ctx) = self.ctxs.remove(&server_tx) {
                for b in ctx.branches {
                    self.branch_of.remove(&b.tx);
                }
            }
        }
    }

    /// Messages outside transactions: ACK for 2xx and stray responses are
    /// relayed statelessly (§16.11 / §16.7).
    fn on_stray(
        &mut self,
        now: Instant,
        from: Peer,
        msg: Message<'static>,
        out: &mut Vec<Transmit>,
    ) {
        if msg.is_request() {
            if msg.method() != Some(&Method::Ack) {
                return;
            }
            let mut ack = msg;
            if ack.max_forwards().ok().flatten() == Some(0) {
                return;
            }
            let flow_dest = self.strip_own_routes(&mut ack, from);
            let route_dest = ack.addr_list(HeaderName::Route).ok().and_then(|l| {
                l.first()
                    .and_then(|r| uri_dest(&r.uri).or_else(|| self.cached_dest(&r.uri, now)))
            });
            let dest = match flow_dest.or(route_dest) {
                Some(d) => Some(d),
                None => match ack.request_uri().and_then(Result::ok) {
                    Some(u) if self.is_local_uri(&u) && u.user.is_some() => {
                        let aor = self.canonical_aor(&u);
                        self.bindings.lookup(&aor, now).first().and_then(|b| {
                            b.source.map(|(t, a)| Peer {
                                transport: t,
                                addr: a,
                            })
                        })
                    }
                    Some(u) => uri_dest(&u).or_else(|| self.cached_dest(&u, now)),
                    None => None,
                },
            };
            let Some(dest) = dest else { return };
            let mf = ack
                .max_forwards()
                .ok()
                .flatten()
                .map_or(70, |m| m.saturating_sub(1));
            ack.set(HeaderName::MaxForwards, mf.to_string());
            let in_branch = ack
                .top_via()
                .ok()
                .and_then(|v| v.branch().map(str::to_owned))
                .unwrap_or_default();
            let me = self.local_hostport(dest.transport, Some(dest.addr));
            let via = format!(
                "SIP/2.0/{} {me};branch=z9hG4bK-nt{}.{:x}.s{:x}",
                dest.transport.via_token(),
                self.cfg.shard,
                loop_hash(&ack),
                fnv(&[&in_branch, "ack"])
            );
            ack.push_front(HeaderName::Via, via);
            self.stats.stateless += 1;
            out.push(Transmit {
                to: dest,
                bytes: ack.to_bytes(),
            });
            return;
        }
        // Stray response: relay if the top Via is ours.
        let mut resp = msg;
        let ours = resp.top_via().is_ok_and(|v| self.is_local(v.host, v.port));
        if !ours {
            return;
        }
        resp.pop_via();
        if let Some(dest) = resp.top_via().ok().and_then(|v| via_dest(&v)) {
            self.stats.stateless += 1;
            out.push(Transmit {
                to: dest,
                bytes: resp.to_bytes(),
            });
        }
    }
}

/// Lower is better (§16.7 step 6): 6xx first, then by class, 2xx never here.
fn response_rank(code: u16) -> u32 {
    match code {
        600..=699 => 0,
        // Prefer challenges and specific errors over the generic 408/503 ones.
        401 | 407 => 1,
        408 | 503 => 50 + u32::from(code) / 100,
        _ => 10 + u32::from(code / 100),
    }
}

/// The shard named in the branch of the top Via of a response, read from
/// the raw bytes without parsing the message: the driver calls this for
/// every datagram, so it only looks at the first Via header line. `None`
/// for requests and for branches that are not ours.
pub fn branch_shard(bytes: &[u8]) -> Option<u16> {
    if !bytes.starts_with(b"SIP/2.0 ") {
        return None;
    }
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let head = bytes.get(..head_end)?;
    let via = head.split(|&b| b == b'\n').skip(1).find(|line| {
        let name = line.split(|&b| b == b':').next().unwrap_or(&[]);
        let name = name.trim_ascii();
        name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")
    })?;
    const MARK: &[u8] = b"branch=z9hG4bK-nt";
    let at = via.windows(MARK.len()).position(|w| w == MARK)?;
    let digits = via.get(at + MARK.len()..)?;
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 4 || digits.get(n) != Some(&b'.') {
        return None;
    }
    std::str::from_utf8(digits.get(..n)?).ok()?.parse().ok()
}

/// The shard that owns a request when the driver runs `shards` of them: its Call-ID hashed
/// over the shards, read from the raw bytes without parsing the message. Every request of a
/// registration or dialog (retransmissions, the ACK of a 2xx, a CANCEL, a BYE from either
/// side) carries the same Call-ID, so they all meet the transaction and dialog state of one
/// shard, whichever shard's socket the kernel gave them to. The kernel spreads datagrams over
/// SO_REUSEPORT sockets by 4-tuple: a registrar behind one SBC or proxy (one flow) would
/// otherwise run on one core. `None` with one shard, for responses (see [`branch_shard`]),
/// and when no Call-ID header comes before the blank line (the owner of the socket then
/// answers it, with 400).
///
/// The hash is not keyed: a sender choosing Call-IDs can load one shard, as it can already by
/// choosing its ports, and nothing else depends on it.
pub fn call_id_shard(bytes: &[u8], shards: u16) -> Option<u16> {
    if shards <= 1 {
        return None;
    }
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let start = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n'))?;
    let msg = bytes.get(start..)?;
    if msg.starts_with(b"SIP/2.0 ") {
        return None;
    }
    let mut at = memchr::memchr(b'\n', msg)? + 1;
    while let Some(rest) = msg.get(at..) {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..end)?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of the header block
        }
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = line.get(..colon)?.trim_ascii();
            if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
                let value = line.get(colon + 1..)?.trim_ascii();
                if value.is_empty() {
                    return None;
                }
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for &b in value {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
                // FNV's low bits mix poorly: fold the high half in.
                return Some(((h ^ (h >> 32)) % u64::from(shards)) as u16);
            }
        }
        at += end + 1;
    }
    None
}

/// Hash of the fields that identify a request for loop detection (§16.6 step 8).
fn loop_hash(req: &Message<'_>) -> u64 {
    let ruri = req.request_uri_str().unwrap_or("");
    let call_id = req.call_id().unwrap_or("");
    let from_tag = req.from_tag().unwrap_or("");
    let to_tag = req.to_tag().unwrap_or("");
    let seq = req.cseq().map(|c| c.seq.to_string()).unwrap_or_default();
    let route = req.header(HeaderName::Route).unwrap_or("");
    fnv(&[ruri, call_id, from_tag, to_tag, &seq, route]) & 0xffff_ffff
}

fn remove_top_route(req: &mut Message<'_>) {
    let Some(i) = req.headers.iter().position(|h| h.kind == HeaderName::Route) else {
        return;
    };
    let rest = natter_sip::syntax::split_commas(&req.headers[i].value)
        .ok()
        .and_then(|parts| {
            if parts.len() > 1 {
                Some(parts[1..].join(", "))
            } else {
                None
            }
        });
    match rest {
        Some(r) => req.headers[i].value = r.into(),
        None => {
            req.headers.remove(i);
        }
    }
}

/// §18.2.1 / RFC 3581: record where the request really came from.
///
/// Over UDP, a Via whose sent-by is an IP other than the source address
/// comes from behind a NAT: `rport` is added even when the UA did not ask
/// (nathelper's `force_rport`), since its Via port is unreachable too and
/// statelessly relayed responses must follow the flow.
fn fix_top_via<'a>(
    mut msg: Message<'a>,
    transport: Transport,
    src: SocketAddr,
    top_via: Option<&Via<'_>>,
) -> Message<'a> {
    let Some(i) = msg.headers.iter().position(|h| h.kind == HeaderName::Via) else {
        return msg;
    };
    if let Some(fixed) = fixed_via(&msg.headers[i].value, transport, src, top_via) {
        msg.headers[i].value = fixed.into();
    }
    msg
}

/// The top Via value with `received`/`rport` set, or `None` when it needs
/// neither (a UA reachable at its sent-by that did not ask for rport: the
/// common case, which then costs no copy).
fn fixed_via(
    value: &str,
    transport: Transport,
    src: SocketAddr,
    top_via: Option<&Via<'_>>,
) -> Option<String> {
    // The list is walked without collecting it (this runs for every request); a list that
    // does not split is left alone, as before. `top_via` is this list's first element as
    // validation parsed it.
    let mut first = None;
    natter_sip::syntax::for_each_comma_part(value, |part| {
        first.get_or_insert(part);
        Ok::<(), natter_sip::ParseError>(())
    })
    .ok()?;
    let first = first?;
    let parsed;
    let via = match top_via {
        Some(v) => v,
        None => {
            parsed = Via::parse(first).ok()?;
            &parsed
        }
    };
    let needs_received = host_ip(via.host) != Some(src.ip());
    let behind_nat =
        transport == Transport::Udp && host_ip(via.host).is_some_and(|ip| ip != src.ip());
    let has_rport = via.rport().is_some() || behind_nat;
    if !needs_received && !has_rport {
        return None;
    }
    // One string, written in place without `write!`: this runs for nearly
    // every request.
    use natter_sip::syntax::{push_decimal, push_ip};
    let mut out = String::with_capacity(first.len() + 48);
    out.push_str("SIP/2.0/");
    out.push_str(via.transport);
    out.push(' ');
    out.push_str(via.host);
    if let Some(p) = via.port {
        out.push(':');
        push_decimal(&mut out, u32::from(p));
    }
    for p in &via.params {
        if p.name.eq_ignore_ascii_case("received") || p.name.eq_ignore_ascii_case("rport") {
            continue;
        }
        out.push(';');
        out.push_str(p.name);
        if let Some(v) = p.value {
            out.push('=');
            out.push_str(v);
        }
    }
    out.push_str(";received=");
    push_ip(&mut out, src.ip());
    if has_rport {
        out.push_str(";rport=");
        push_decimal(&mut out, u32::from(src.port()));
    }
    let mut index = 0;
    let _ = natter_sip::syntax::for_each_comma_part(value, |rest| {
        if index > 0 {
            out.push_str(", ");
            out.push_str(rest);
        }
        index += 1;
        Ok::<(), natter_sip::ParseError>(())
    });
    Some(out)
}

#[cfg(test)]
mod shard_tests {
    use super::{branch_shard, call_id_shard};

    #[test]
    fn requests_belong_to_the_shard_of_their_call_id() {
        let a = b"REGISTER sip:d SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: abc@h\r\nCSeq: 1 REGISTER\r\n\r\n";
        let owner = call_id_shard(a, 8).expect("a Call-ID");
        assert!(owner < 8);
        // The same Call-ID in compact form, other spacing, CRLFs before the start line and
        // another method (a CANCEL, an ACK): the same shard.
        let b = b"\r\nCANCEL sip:x SIP/2.0\r\nv: SIP/2.0/UDP h\r\ni:abc@h \r\n\r\n";
        assert_eq!(call_id_shard(b, 8), Some(owner));
        let lf = b"ACK sip:x SIP/2.0\nCSeq: 1 ACK\ncall-id:\tabc@h\n\n";
        assert_eq!(call_id_shard(lf, 8), Some(owner));
        // One shard, a response, no Call-ID before the blank line, an empty one: no owner.
        assert_eq!(call_id_shard(a, 1), None);
        assert_eq!(
            call_id_shard(b"SIP/2.0 200 OK\r\nCall-ID: abc@h\r\n\r\n", 8),
            None
        );
        assert_eq!(
            call_id_shard(b"OPTIONS sip:x SIP/2.0\r\n\r\nCall-ID: abc@h\r\n", 8),
            None
        );
        assert_eq!(
            call_id_shard(b"OPTIONS sip:x SIP/2.0\r\nCall-ID:  \r\n\r\n", 8),
            None
        );
        assert_eq!(call_id_shard(b"", 8), None);
        assert_eq!(call_id_shard(b"\r\n\r\n", 8), None);
        // Many Call-IDs spread over every shard.
        let mut seen = [0u32; 4];
        for i in 0..400 {
            let m = format!("OPTIONS sip:x SIP/2.0\r\nCall-ID: {i}-reg@10.0.0.1\r\n\r\n");
            seen[usize::from(call_id_shard(m.as_bytes(), 4).expect("owner"))] += 1;
        }
        assert!(seen.iter().all(|&n| n > 60), "{seen:?}");
    }

    #[test]
    fn branch_shard_reads_the_top_via_of_responses_only() {
        let resp = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-nt3.1f.2;rport\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-nt1.5.5\r\n\r\n";
        assert_eq!(branch_shard(resp), Some(3));
        let compact = b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP h;branch=z9hG4bK-nt12.a.s1\r\n\r\n";
        assert_eq!(branch_shard(compact), Some(12));
        let req = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-nt1.a.1\r\n\r\n";
        assert_eq!(branch_shard(req), None);
        let foreign = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKabc\r\n\r\n";
        assert_eq!(branch_shard(foreign), None);
        let junk = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-nt99999999.\r\n\r\n";
        assert_eq!(branch_shard(junk), None);
        assert_eq!(branch_shard(b"SIP/2.0 "), None);
    }
}
