//! `natter ice connect`: one ICE session driven over stdin/stdout, so two terminals (or two
//! network namespaces, or a script and libnice) can connect by pasting each other's lines.
//!
//! stdout: `a=ice-ufrag:`, `a=ice-pwd:`, one `a=candidate:` per local candidate,
//! `a=end-of-candidates`, then `connected LTYPE LADDR RTYPE RADDR` (or `failed`), then
//! every line received from the peer. stdin: the peer's lines up to
//! `a=end-of-candidates`, then lines to send to it, until EOF.
//!
//! The ICE agent (natter-ice) and the TURN client (natter-turn) are sans-IO cores; this
//! module owns the sockets and the clock. One UDP socket per host address; the TURN
//! allocation shares the first socket, and everything arriving from the TURN server goes
//! to the TURN client first (Data indications carry the peer's checks and data for the
//! relayed candidate), then to the agent (Binding answers when the TURN server is also the
//! STUN server).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use natter_ice::{
    Agent, AgentConfig, CandidateType, Event, IceLine, IceState, InterfaceFilter, RelayToken,
    RemoteLines, Transmit,
};
use natter_turn::client::{Client, ClientConfig, ClientEvent};

use crate::uri::ServerUri;

/// Arguments of `natter ice connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// `controlling` (the offerer) or `controlled`.
    #[arg(long, value_parser = ["controlling", "controlled"])]
    pub role: String,
    /// STUN server for server-reflexive candidates, `stun:HOST[:PORT]` (repeatable).
    #[arg(long)]
    pub stun: Vec<String>,
    /// TURN server for a relayed candidate, `turn:HOST[:PORT]` (UDP only).
    #[arg(long, requires = "user")]
    pub turn: Option<String>,
    /// TURN credentials, NAME:PASSWORD.
    #[arg(long)]
    pub user: Option<String>,
    /// Host address to use (default: every usable interface address).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Offer only the relayed candidate (needs --turn): forces the path through TURN.
    #[arg(long, requires = "turn")]
    pub relay_only: bool,
    /// Seconds to wait for a connection before giving up.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Milliseconds to keep answering checks and printing lines after stdin's EOF.
    #[arg(long, default_value_t = 300)]
    pub linger_ms: u64,
}

/// What the I/O threads hand to the loop.
enum Input {
    Line(String),
    Eof,
    Packet {
        sock: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
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
    /// Datagrams waiting for a permission.
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
    fn send(&mut self, sock: &UdpSocket, now: Instant, peer: SocketAddr, data: Vec<u8>) {
        if self.allowed.contains(&peer.ip()) {
            let b = self.client.send_to(peer, &data);
            let _ = sock.send_to(&b, self.server);
        } else {
            self.permit(now, peer.ip());
            let q = self.queued.entry(peer.ip()).or_default();
            if q.len() < 64 {
                q.push((peer, data));
            }
        }
    }
}

/// The server's first address of each family (the agent queries a server from host
/// candidates of the same family).
fn resolve_all(uri: &ServerUri) -> Result<Vec<SocketAddr>, String> {
    let all: Vec<SocketAddr> = (uri.host.as_str(), uri.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", uri.host))?
        .collect();
    let v: Vec<SocketAddr> = [
        all.iter().find(|a| a.is_ipv4()),
        all.iter().find(|a| a.is_ipv6()),
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    if v.is_empty() {
        return Err(format!("{} has no address", uri.host));
    }
    Ok(v)
}

/// The TURN server's address: IPv4 first (the allocation shares the first host socket).
fn resolve(uri: &ServerUri) -> Result<SocketAddr, String> {
    resolve_all(uri)?
        .first()
        .copied()
        .ok_or_else(|| format!("{} has no address", uri.host))
}

/// Every up interface's addresses the filter accepts, with the interface name (at most 16).
fn interface_addresses(filter: &InterfaceFilter) -> Vec<(String, IpAddr)> {
    crate::config::interface_addresses()
        .into_iter()
        .filter(|(name, ip)| filter.allows(name, *ip))
        .take(16)
        .collect()
}

/// Runs `natter ice connect`.
pub fn connect(a: ConnectArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut stun = Vec::new();
    for s in &a.stun {
        let u = ServerUri::parse(s, "stun")?;
        stun.extend(resolve_all(&u)?);
    }
    let turn = match &a.turn {
        Some(t) => {
            let u = ServerUri::parse(t, "turn")?;
            if u.transport != "udp" || u.scheme.ends_with('s') {
                return Err("ice connect relays over UDP TURN only (turn:HOST[:PORT])".into());
            }
            let (user, password) = crate::config::parse_user(a.user.as_deref().unwrap_or(""))?;
            Some((resolve(&u)?, user, password))
        }
        None => None,
    };

    let addrs = match a.bind {
        Some(ip) if !ip.is_unspecified() => vec![("bind".to_owned(), ip)],
        _ => {
            let mut v = interface_addresses(&InterfaceFilter::default());
            if v.is_empty() {
                v = interface_addresses(&InterfaceFilter::allow_all())
                    .into_iter()
                    .filter(|(_, ip)| ip.is_loopback())
                    .collect();
            }
            v
        }
    };
    let mut socks = Vec::new();
    for (name, ip) in addrs {
        if let Ok(s) = UdpSocket::bind((ip, 0)) {
            let local = s.local_addr()?;
            socks.push((name, s, local));
        }
    }
    if socks.is_empty() {
        return Err("no usable local address".into());
    }

    let cfg = AgentConfig {
        controlling: a.role == "controlling",
        stun_servers: if a.relay_only { Vec::new() } else { stun },
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    };
    let mut agent = Agent::new(cfg);
    let t0 = Instant::now();
    let out = std::io::stdout();
    let mut out = out.lock();
    for l in agent.credential_lines() {
        writeln!(out, "{l}")?;
    }
    out.flush()?;

    let mut relay = None;
    if let Some((server, username, password)) = turn {
        // the allocation lives on the first host socket of the server's family
        let Some(sock) = socks.iter().position(|s| s.2.is_ipv4() == server.is_ipv4()) else {
            return Err("no local address of the TURN server's family".into());
        };
        relay = Some(Relay {
            sock,
            client: Client::new(
                t0,
                ClientConfig {
                    username,
                    password,
                    reliable: false,
                    lifetime: 600,
                    software: Some(concat!("natter/", env!("CARGO_PKG_VERSION")).into()),
                },
            ),
            server,
            token: Some(agent.expect_relay(t0)),
            relayed: None,
            allowed: HashSet::new(),
            asked: HashSet::new(),
            queued: HashMap::new(),
        });
    }
    if !a.relay_only {
        for (name, _, local) in &socks {
            agent.add_host_candidate(1, name, *local);
        }
    }
    agent.gather(t0);

    let (tx, rx) = mpsc::channel::<Input>();
    for (i, (_, s, _)) in socks.iter().enumerate() {
        let s = s.try_clone()?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let data = buf.get(..n).unwrap_or(&[]).to_vec();
                if tx
                    .send(Input::Packet {
                        sock: i,
                        from,
                        data,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send(Input::Line(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(Input::Eof);
    });

    let mut s = Session {
        agent,
        socks,
        relay,
        remote: RemoteLines::new(),
        remote_done_at: None,
        connected: false,
        gathered: false,
        pending_out: Vec::new(),
        pending_in: Vec::new(),
    };
    let deadline = t0 + Duration::from_secs(a.timeout.max(1));
    let mut eof_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        s.run_timers(now);
        s.flush(now);
        if s.drain_events(&mut out)? {
            return Err("ICE failed".into());
        }
        if s.connected {
            s.send_pending(now);
        }
        out.flush()?;
        if !s.connected && now >= deadline {
            writeln!(out, "failed")?;
            return Err("timed out before connecting".into());
        }
        if eof_at.is_some() && s.agent.remote_candidates().is_empty() {
            writeln!(out, "failed")?;
            return Err("stdin ended before the peer's description".into());
        }
        if let Some(e) = eof_at {
            if now >= e + Duration::from_millis(a.linger_ms) && (s.connected || now >= deadline) {
                return Ok(());
            }
        }
        let next = [s.agent.poll_timeout(), s.relay_timeout(), Some(deadline)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(deadline);
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match rx.recv_timeout(wait) {
            Ok(Input::Line(l)) => s.line(&l),
            Ok(Input::Eof) => eof_at = eof_at.or(Some(Instant::now())),
            Ok(Input::Packet { sock, from, data }) => s.packet(Instant::now(), sock, from, &data),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                eof_at = eof_at.or(Some(Instant::now()));
            }
        }
    }
}

/// The loop's state.
struct Session {
    agent: Agent,
    socks: Vec<(String, UdpSocket, SocketAddr)>,
    relay: Option<Relay>,
    remote: RemoteLines,
    remote_done_at: Option<Instant>,
    connected: bool,
    /// Whether `a=end-of-candidates` was printed.
    gathered: bool,
    /// Lines from stdin waiting for the connection.
    pending_out: Vec<String>,
    /// Lines from the peer that arrived before we printed `connected`.
    pending_in: Vec<String>,
}

impl Session {
    fn relay_timeout(&self) -> Option<Instant> {
        self.relay.as_ref().and_then(|r| r.client.poll_timeout())
    }

    fn run_timers(&mut self, now: Instant) {
        if self.agent.poll_timeout().is_some_and(|t| t <= now) {
            self.agent.handle_timeout(now);
        }
        if let Some(r) = &mut self.relay {
            if r.client.poll_timeout().is_some_and(|t| t <= now) {
                r.client.handle_timeout(now);
            }
        }
    }

    /// One stdin line: the peer's description until its end, then data to send.
    fn line(&mut self, line: &str) {
        let line = line.trim();
        if self.remote_done_at.is_none() {
            if let Ok(Some(IceLine::Candidate(c))) = IceLine::parse(line) {
                if let Some(r) = &mut self.relay {
                    if r.relayed.is_some() {
                        r.permit(Instant::now(), c.addr.ip());
                    }
                }
            }
            match self.remote.apply(&mut self.agent, line) {
                Ok(true) => {
                    let now = Instant::now();
                    self.remote_done_at = Some(now);
                    self.agent.handle_timeout(now);
                }
                Ok(false) => {}
                Err(e) => eprintln!("natter: skipping line ({e}): {line}"),
            }
        } else if !line.is_empty() && self.pending_out.len() < 1024 {
            self.pending_out.push(line.to_owned());
        }
    }

    fn packet(&mut self, now: Instant, sock: usize, from: SocketAddr, data: &[u8]) {
        let Some(local) = self.socks.get(sock).map(|s| s.2) else {
            return;
        };
        if let Some(r) = &mut self.relay {
            if sock == r.sock && from == r.server {
                if let Some((peer, payload)) = r.client.handle_input(now, data) {
                    let payload = payload.to_vec();
                    if let Some(relayed) = r.relayed {
                        if !self.agent.handle_receive(now, relayed, peer, &payload) {
                            self.app_data(&payload);
                        }
                    }
                    return;
                }
                // TURN answers and Binding answers from the same server: never data.
                if natter_stun::classify(data) == natter_stun::PacketKind::Stun {
                    self.agent.handle_receive(now, local, from, data);
                }
                return;
            }
        }
        if !self.agent.handle_receive(now, local, from, data) {
            self.app_data(data);
        }
    }

    fn app_data(&mut self, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        if self.pending_in.len() < 1024 {
            self.pending_in.push(text);
        }
    }

    fn transmit(&mut self, now: Instant, t: Transmit) {
        if t.relayed {
            if let Some(r) = &mut self.relay {
                if let Some((_, sock, _)) = self.socks.get(r.sock) {
                    r.send(sock, now, t.destination, t.data);
                }
            }
        } else if let Some((_, s, _)) = self.socks.iter().find(|s| s.2 == t.source) {
            let _ = s.send_to(&t.data, t.destination);
        }
    }

    /// Sends what the agent and the TURN client queued; handles TURN client events.
    fn flush(&mut self, now: Instant) {
        while let Some(t) = self.agent.poll_transmit() {
            self.transmit(now, t);
        }
        let Some(r) = &mut self.relay else {
            return;
        };
        let Some((_, sock, base)) = self.socks.get(r.sock) else {
            return;
        };
        let base = Some(*base);
        while let Some(b) = r.client.poll_transmit() {
            let _ = sock.send_to(&b, r.server);
        }
        while let Some(ev) = r.client.poll_event() {
            match ev {
                ClientEvent::Allocated {
                    relayed, mapped, ..
                } => {
                    r.relayed = Some(relayed);
                    let mapped = mapped.unwrap_or(relayed);
                    if let Some(token) = r.token.take() {
                        self.agent.relay_allocated(token, 1, relayed, mapped);
                    }
                    if let Some(base) = base {
                        if mapped != base
                            && self.agent.local_candidates().iter().any(|c| c.base == base)
                        {
                            self.agent
                                .add_server_reflexive_candidate(1, base, mapped, r.server);
                        }
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
                    eprintln!(
                        "natter: TURN {} failed: {code} {reason}",
                        method.name().unwrap_or("request")
                    );
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
        // Relay events may have queued candidates and checks.
        while let Some(t) = self.agent.poll_transmit() {
            self.transmit(now, t);
        }
    }

    /// Prints agent events; returns true when ICE failed.
    fn drain_events(&mut self, out: &mut impl Write) -> std::io::Result<bool> {
        while let Some(ev) = self.agent.poll_event() {
            match ev {
                // After a=end-of-candidates the description is closed: a candidate
                // re-announced later (a srflx learned again) is only logged.
                Event::LocalCandidate(c) if !self.gathered => {
                    writeln!(out, "{}", c.to_sdp_line())?;
                }
                Event::LocalCandidate(c) => eprintln!("natter: late {}", c.to_sdp_line()),
                Event::SelectedPair {
                    component,
                    local,
                    remote,
                } => {
                    eprintln!(
                        "natter: selected component {component} {} {} {} {}",
                        local.kind, local.addr, remote.kind, remote.addr
                    );
                    // Data through the allocation: a channel costs 4 bytes a packet
                    // instead of a Send indication's 36.
                    if local.kind == CandidateType::Relay {
                        if let Some(r) = &mut self.relay {
                            if r.client.channel(remote.addr).is_none() {
                                r.client.bind_channel(Instant::now(), remote.addr);
                            }
                        }
                    }
                }
                Event::GatheringComplete => {
                    self.gathered = true;
                    writeln!(out, "a=end-of-candidates")?;
                }
                Event::StateChanged(IceState::Failed) => {
                    writeln!(out, "failed")?;
                    out.flush()?;
                    return Ok(true);
                }
                _ => {}
            }
        }
        // `connected` comes after our own description is complete, so a script reading
        // the description up to `a=end-of-candidates` never misses a candidate.
        if !self.connected
            && self.gathered
            && matches!(
                self.agent.state(),
                IceState::Connected | IceState::Completed
            )
        {
            if let Some((l, r)) = self.agent.selected_pair(1) {
                self.connected = true;
                writeln!(out, "connected {} {} {} {}", l.kind, l.addr, r.kind, r.addr)?;
                if let Some(at) = self.remote_done_at {
                    eprintln!(
                        "natter: connected {} ms after the remote description",
                        at.elapsed().as_millis()
                    );
                }
            }
        }
        if self.connected {
            for l in self.pending_in.drain(..) {
                writeln!(out, "{l}")?;
            }
        }
        Ok(false)
    }

    fn send_pending(&mut self, now: Instant) {
        for line in std::mem::take(&mut self.pending_out) {
            match self.agent.send(now, 1, line.as_bytes()) {
                Ok(t) => self.transmit(now, t),
                Err(e) => eprintln!("natter: cannot send: {e}"),
            }
        }
    }
}
