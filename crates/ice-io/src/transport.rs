//! [`IceTransport`]: the natter-ice agent with real UDP sockets and, optionally, a TURN
//! allocation (natter-turn's client core) for the relayed candidate.
//!
//! The transport owns the sockets but not the loop: receiver threads (see
//! [`spawn_receiver`]) push [`Datagram`]s into a channel the application's loop reads,
//! so one loop can serve SIP, ICE and media sockets alike and keep one clock. Everything
//! that arrives goes through [`IceTransport::handle_datagram`], which hands STUN to the
//! agent, TURN framing to the TURN client, and returns the rest (RTP, RTCP, DTLS) as
//! application data. Sends leave with a direct `sendto` on the socket (never queued
//! behind a reactor's readiness).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use natter_ice::{Agent, AgentConfig, Candidate, CandidateType, Event, IceState, RelayToken};
use natter_turn::client::{Client, ClientConfig, ClientEvent};

/// A datagram read by a receiver thread.
#[derive(Debug)]
pub struct Datagram {
    /// The tag given to [`spawn_receiver`]: which socket it came in on.
    pub tag: usize,
    /// Sender.
    pub from: SocketAddr,
    /// Payload.
    pub data: Vec<u8>,
}

/// Reads `sock` forever on a thread of its own and sends what arrives, tagged, into
/// `tx`; the thread ends when the channel's receiver is gone or the socket fails.
pub fn spawn_receiver(sock: &UdpSocket, tag: usize, tx: Sender<Datagram>) -> io::Result<()> {
    spawn_receiver_until(sock, tag, tx, Arc::new(AtomicBool::new(false)))
}

/// Like [`spawn_receiver`], but the thread also ends (within a quarter second) once
/// `stop` is set, closing its copy of the socket: a call's sockets go away with the call.
pub fn spawn_receiver_until(
    sock: &UdpSocket,
    tag: usize,
    tx: Sender<Datagram>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let sock = sock.try_clone()?;
    sock.set_read_timeout(Some(std::time::Duration::from_millis(250)))?;
    std::thread::Builder::new()
        .name(format!("udp-rx-{tag}"))
        .spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let data = buf.get(..n).unwrap_or(&[]).to_vec();
                        if tx.send(Datagram { tag, from, data }).is_err() {
                            return;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                                | io::ErrorKind::ConnectionRefused
                        ) => {}
                    Err(_) => return,
                }
            }
        })?;
    Ok(())
}

/// A TURN server and the long-term credentials to allocate on it.
#[derive(Debug, Clone)]
pub struct TurnServer {
    /// Server address (UDP).
    pub server: SocketAddr,
    /// User name (a TURN REST name may contain colons).
    pub username: String,
    /// Password.
    pub password: String,
}

/// What to bind and gather.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The agent's settings (role, STUN servers, timers).
    pub agent: AgentConfig,
    /// Host addresses to bind (one socket each, ephemeral port), with interface names.
    pub hosts: Vec<(String, IpAddr)>,
    /// A TURN server for a relayed candidate.
    pub turn: Option<TurnServer>,
    /// Offer only the relayed candidate (forces the path through TURN).
    pub relay_only: bool,
}

/// Something the application should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// An event of the agent (candidates, state, selected pair).
    Ice(Box<Event>),
    /// The TURN allocation failed; the relayed candidate is gone.
    RelayFailed(String),
}

struct Sock {
    name: String,
    sock: UdpSocket,
    local: SocketAddr,
}

/// The TURN allocation behind the relayed candidate.
struct Relay {
    /// Index of the host socket the allocation uses.
    sock: usize,
    client: Client,
    server: SocketAddr,
    token: Option<RelayToken>,
    relayed: Option<SocketAddr>,
    /// Peers with an installed permission.
    allowed: HashSet<IpAddr>,
    /// Peers a permission was asked for.
    asked: HashSet<IpAddr>,
    /// Datagrams waiting for a permission (bounded per peer).
    queued: HashMap<IpAddr, Vec<(SocketAddr, Vec<u8>)>>,
}

impl Relay {
    /// Asks for a permission towards `ip` once.
    fn permit(&mut self, now: Instant, ip: IpAddr) {
        if self.asked.insert(ip) {
            self.client.create_permission(now, ip);
        }
    }

    /// Sends (or queues until its permission exists) `data` to `peer` via the allocation.
    fn send(&mut self, sock: &UdpSocket, now: Instant, peer: SocketAddr, data: &[u8]) {
        if self.allowed.contains(&peer.ip()) {
            let b = self.client.send_to(peer, data);
            let _ = sock.send_to(&b, self.server);
        } else {
            self.permit(now, peer.ip());
            let q = self.queued.entry(peer.ip()).or_default();
            if q.len() < 64 {
                q.push((peer, data.to_vec()));
            }
        }
    }
}

/// One ICE session (one component: RTP and RTCP multiplexed) over real sockets.
pub struct IceTransport {
    agent: Agent,
    socks: Vec<Sock>,
    relay: Option<Relay>,
    events: VecDeque<TransportEvent>,
    selected: Option<(Candidate, Candidate)>,
    /// Tells the receiver threads to end when the transport goes.
    stop: Arc<AtomicBool>,
}

impl Drop for IceTransport {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl IceTransport {
    /// Binds one UDP socket per host address and prepares the agent; call
    /// [`IceTransport::start`] next.
    pub fn bind(cfg: TransportConfig, now: Instant) -> io::Result<Self> {
        let mut socks = Vec::new();
        for (name, ip) in &cfg.hosts {
            if let Ok(s) = UdpSocket::bind((*ip, 0)) {
                let local = s.local_addr()?;
                socks.push(Sock {
                    name: name.clone(),
                    sock: s,
                    local,
                });
            }
        }
        if socks.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no usable local address",
            ));
        }
        let mut agent_cfg = cfg.agent;
        if cfg.relay_only {
            agent_cfg.stun_servers.clear();
        }
        agent_cfg.interfaces = natter_ice::InterfaceFilter::allow_all();
        let mut agent = Agent::new(agent_cfg);
        let mut relay = None;
        if let Some(t) = cfg.turn {
            // The allocation lives on the first host socket of the server's family.
            let sock = socks
                .iter()
                .position(|s| s.local.is_ipv4() == t.server.is_ipv4())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        "no local address of the TURN server's family",
                    )
                })?;
            relay = Some(Relay {
                sock,
                client: Client::new(
                    now,
                    ClientConfig {
                        username: t.username,
                        password: t.password,
                        reliable: false,
                        lifetime: 600,
                        software: Some(concat!("natter/", env!("CARGO_PKG_VERSION")).into()),
                    },
                ),
                server: t.server,
                token: Some(agent.expect_relay(now)),
                relayed: None,
                allowed: HashSet::new(),
                asked: HashSet::new(),
                queued: HashMap::new(),
            });
        }
        if !cfg.relay_only {
            for s in &socks {
                agent.add_host_candidate(1, &s.name, s.local);
            }
        }
        Ok(IceTransport {
            agent,
            socks,
            relay,
            events: VecDeque::new(),
            selected: None,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Starts receiver threads (tags `tag_base`, `tag_base + 1`, ... one per socket, see
    /// [`IceTransport::socket_count`]) and gathering.
    pub fn start(
        &mut self,
        now: Instant,
        tx: &Sender<Datagram>,
        tag_base: usize,
    ) -> io::Result<()> {
        for (i, s) in self.socks.iter().enumerate() {
            spawn_receiver_until(&s.sock, tag_base + i, tx.clone(), self.stop.clone())?;
        }
        self.agent.gather(now);
        self.flush(now);
        Ok(())
    }

    /// Number of sockets (receiver tags used).
    pub fn socket_count(&self) -> usize {
        self.socks.len()
    }

    /// Local addresses of the host sockets.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.socks.iter().map(|s| s.local).collect()
    }

    /// The agent (credentials, candidates, remote description).
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The agent, to feed the remote description.
    pub fn agent_mut(&mut self) -> &mut Agent {
        &mut self.agent
    }

    /// The pair media currently uses (component 1).
    pub fn selected(&self) -> Option<&(Candidate, Candidate)> {
        self.selected.as_ref()
    }

    /// Whether data can flow.
    pub fn is_connected(&self) -> bool {
        matches!(
            self.agent.state(),
            IceState::Connected | IceState::Completed
        ) && self.selected.is_some()
    }

    /// Asks the TURN server for a permission towards a remote candidate's address, so
    /// the peer's checks can reach the relayed candidate before ours reach it.
    pub fn permit_remote(&mut self, now: Instant, addr: SocketAddr) {
        if let Some(r) = &mut self.relay {
            if r.relayed.is_some() {
                r.permit(now, addr.ip());
            }
        }
    }

    /// One datagram from socket `index` (tag minus `tag_base`). Returns application data
    /// (anything that is not ICE's STUN or the TURN server's framing) with its sender.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        index: usize,
        from: SocketAddr,
        data: &[u8],
    ) -> Option<(SocketAddr, Vec<u8>)> {
        let local = self.socks.get(index)?.local;
        let mut app = None;
        let mut relay_data = None;
        if let Some(r) = &mut self.relay {
            if index == r.sock && from == r.server {
                if let Some((peer, payload)) = r.client.handle_input(now, data) {
                    relay_data = Some((r.relayed, peer, payload.to_vec()));
                } else if natter_stun::classify(data) == natter_stun::PacketKind::Stun {
                    // Binding answers when the TURN server is also the STUN server.
                    self.agent.handle_receive(now, local, from, data);
                }
                self.flush(now);
                if let Some((Some(relayed), peer, payload)) = relay_data {
                    if !self.agent.handle_receive(now, relayed, peer, &payload) {
                        app = Some((peer, payload));
                    }
                    self.flush(now);
                }
                return app;
            }
        }
        if !self.agent.handle_receive(now, local, from, data) {
            app = Some((from, data.to_vec()));
        }
        self.flush(now);
        app
    }

    /// When [`IceTransport::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let relay = self.relay.as_ref().and_then(|r| r.client.poll_timeout());
        match (self.agent.poll_timeout(), relay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs due timers of the agent and the TURN client.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.agent.poll_timeout().is_some_and(|t| t <= now) {
            self.agent.handle_timeout(now);
        }
        if let Some(r) = &mut self.relay {
            if r.client.poll_timeout().is_some_and(|t| t <= now) {
                r.client.handle_timeout(now);
            }
        }
        self.flush(now);
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.events.pop_front()
    }

    /// Sends application data on the selected pair of component 1. Returns false when no
    /// pair is selected yet.
    pub fn send(&mut self, now: Instant, data: &[u8]) -> bool {
        let Ok(t) = self.agent.send(now, 1, data) else {
            return false;
        };
        self.transmit(now, t.source, t.destination, t.relayed, &t.data);
        true
    }

    fn transmit(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        relayed: bool,
        data: &[u8],
    ) {
        if relayed {
            if let Some(r) = &mut self.relay {
                if let Some(s) = self.socks.get(r.sock) {
                    r.send(&s.sock, now, destination, data);
                }
            }
        } else if let Some(s) = self.socks.iter().find(|s| s.local == source) {
            let _ = s.sock.send_to(data, destination);
        }
    }

    /// Sends what the agent and the TURN client queued; turns their events into ours.
    fn flush(&mut self, now: Instant) {
        for _ in 0..4 {
            let mut again = false;
            while let Some(t) = self.agent.poll_transmit() {
                self.transmit(now, t.source, t.destination, t.relayed, &t.data);
            }
            while let Some(ev) = self.agent.poll_event() {
                again = true;
                self.on_agent_event(now, ev);
            }
            again |= self.flush_relay(now);
            if !again {
                break;
            }
        }
    }

    fn on_agent_event(&mut self, now: Instant, ev: Event) {
        if let Event::SelectedPair {
            component: 1,
            local,
            remote,
        } = &ev
        {
            // Data through the allocation: a channel costs 4 bytes a packet instead of a
            // Send indication's 36.
            if local.kind == CandidateType::Relay {
                if let Some(r) = &mut self.relay {
                    if r.client.channel(remote.addr).is_none() {
                        r.client.bind_channel(now, remote.addr);
                    }
                }
            }
            self.selected = Some((local.clone(), remote.clone()));
        }
        self.events.push_back(TransportEvent::Ice(Box::new(ev)));
    }

    /// Returns whether anything happened that may have queued agent output.
    fn flush_relay(&mut self, now: Instant) -> bool {
        let Some(r) = &mut self.relay else {
            return false;
        };
        let Some(s) = self.socks.get(r.sock) else {
            return false;
        };
        let (sock, base) = (&s.sock, s.local);
        let mut touched = false;
        while let Some(b) = r.client.poll_transmit() {
            let _ = sock.send_to(&b, r.server);
        }
        while let Some(ev) = r.client.poll_event() {
            touched = true;
            match ev {
                ClientEvent::Allocated {
                    relayed, mapped, ..
                } => {
                    r.relayed = Some(relayed);
                    let mapped = mapped.unwrap_or(relayed);
                    if let Some(token) = r.token.take() {
                        self.agent.relay_allocated(token, 1, relayed, mapped);
                    }
                    if mapped != base
                        && self.agent.local_candidates().iter().any(|c| c.base == base)
                    {
                        self.agent
                            .add_server_reflexive_candidate(1, base, mapped, r.server);
                    }
                    for c in self.agent.remote_candidates().to_vec() {
                        r.permit(now, c.addr.ip());
                    }
                }
                ClientEvent::Permission(ip) => {
                    r.allowed.insert(ip);
                    for (peer, data) in r.queued.remove(&ip).unwrap_or_default() {
                        let b = r.client.send_to(peer, &data);
                        let _ = sock.send_to(&b, r.server);
                    }
                }
                ClientEvent::Failed {
                    method,
                    code,
                    reason,
                } => {
                    self.events.push_back(TransportEvent::RelayFailed(format!(
                        "TURN {} failed: {code} {reason}",
                        method.name().unwrap_or("request")
                    )));
                    if let Some(token) = r.token.take() {
                        self.agent.relay_failed(token);
                    }
                }
                _ => {}
            }
        }
        while let Some(b) = r.client.poll_transmit() {
            let _ = sock.send_to(&b, r.server);
        }
        touched
    }

    /// Stops checks and consent; the sockets close when the transport is dropped.
    pub fn close(&mut self) {
        self.agent.close();
    }
}
