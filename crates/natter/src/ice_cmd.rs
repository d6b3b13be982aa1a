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

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use natter_ice::{AgentConfig, Event, IceLine, IceState, InterfaceFilter, RemoteLines};
use natter_ice_io::{
    Datagram, IceTransport, ServerUri, TransportConfig, TransportEvent, TurnServer,
};

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
    Packet(Datagram),
}

/// Runs `natter ice connect`.
pub fn connect(a: ConnectArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut stun = Vec::new();
    for s in &a.stun {
        stun.extend(ServerUri::parse(s, "stun")?.resolve_all()?);
    }
    let turn = match &a.turn {
        Some(t) => {
            let u = ServerUri::parse(t, "turn")?;
            if u.transport != "udp" || u.scheme.ends_with('s') {
                return Err("ice connect relays over UDP TURN only (turn:HOST[:PORT])".into());
            }
            let (username, password) = crate::config::parse_user(a.user.as_deref().unwrap_or(""))?;
            Some(TurnServer {
                server: u.resolve()?,
                username,
                password,
            })
        }
        None => None,
    };
    let hosts = match a.bind {
        Some(ip) if !ip.is_unspecified() => vec![("bind".to_owned(), ip)],
        _ => natter_ice_io::netif::host_addresses(&InterfaceFilter::default()),
    };
    let t0 = Instant::now();
    let mut transport = IceTransport::bind(
        TransportConfig {
            agent: AgentConfig {
                controlling: a.role == "controlling",
                stun_servers: stun,
                ..AgentConfig::default()
            },
            hosts,
            turn,
            relay_only: a.relay_only,
        },
        t0,
    )?;
    let out = std::io::stdout();
    let mut out = out.lock();
    for l in transport.agent().credential_lines() {
        writeln!(out, "{l}")?;
    }
    out.flush()?;

    let (tx, rx) = mpsc::channel::<Datagram>();
    transport.start(t0, &tx, 0)?;
    drop(tx);
    let (itx, irx) = mpsc::channel::<Input>();
    let ptx = itx.clone();
    std::thread::spawn(move || {
        for d in rx {
            if ptx.send(Input::Packet(d)).is_err() {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if itx.send(Input::Line(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = itx.send(Input::Eof);
    });

    let mut s = Session {
        transport,
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
        s.transport.handle_timeout(now);
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
        if eof_at.is_some() && s.transport.agent().remote_candidates().is_empty() {
            writeln!(out, "failed")?;
            return Err("stdin ended before the peer's description".into());
        }
        if let Some(e) = eof_at {
            if now >= e + Duration::from_millis(a.linger_ms) && (s.connected || now >= deadline) {
                return Ok(());
            }
        }
        let next = s.transport.poll_timeout().unwrap_or(deadline).min(deadline);
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match irx.recv_timeout(wait) {
            Ok(Input::Line(l)) => s.line(&l),
            Ok(Input::Eof) => eof_at = eof_at.or(Some(Instant::now())),
            Ok(Input::Packet(d)) => {
                if let Some((_, data)) =
                    s.transport
                        .handle_datagram(Instant::now(), d.tag, d.from, &d.data)
                {
                    s.app_data(&data);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                eof_at = eof_at.or(Some(Instant::now()));
            }
        }
    }
}

/// The loop's state.
struct Session {
    transport: IceTransport,
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
    /// One stdin line: the peer's description until its end, then data to send.
    fn line(&mut self, line: &str) {
        let line = line.trim();
        let now = Instant::now();
        if self.remote_done_at.is_none() {
            if let Ok(Some(IceLine::Candidate(c))) = IceLine::parse(line) {
                self.transport.permit_remote(now, c.addr);
            }
            match self.remote.apply(self.transport.agent_mut(), line) {
                Ok(true) => {
                    self.remote_done_at = Some(now);
                    self.transport.agent_mut().handle_timeout(now);
                    self.transport.handle_timeout(now);
                }
                Ok(false) => {}
                Err(e) => eprintln!("natter: skipping line ({e}): {line}"),
            }
        } else if !line.is_empty() && self.pending_out.len() < 1024 {
            self.pending_out.push(line.to_owned());
        }
    }

    fn app_data(&mut self, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        if self.pending_in.len() < 1024 {
            self.pending_in.push(text);
        }
    }

    /// Prints transport events; returns true when ICE failed.
    fn drain_events(&mut self, out: &mut impl Write) -> std::io::Result<bool> {
        while let Some(ev) = self.transport.poll_event() {
            let ev = match ev {
                TransportEvent::Ice(ev) => *ev,
                TransportEvent::RelayFailed(why) => {
                    eprintln!("natter: {why}");
                    continue;
                }
            };
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
        if !self.connected && self.gathered && self.transport.is_connected() {
            if let Some((l, r)) = self.transport.agent().selected_pair(1) {
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
            if !self.transport.send(now, line.as_bytes()) {
                eprintln!("natter: cannot send: no selected pair");
            }
        }
    }
}
