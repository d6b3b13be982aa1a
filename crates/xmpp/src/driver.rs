//! The tokio driver of `natter xmpp`: one task owning the XMPP connection (TCP, STARTTLS
//! or direct TLS with rustls), a channel of media datagrams (natter-ice-io's receiver
//! threads feed it) and the 20 ms media clock. It composes the sans-IO parts: the
//! [`Client`] stream core, the Jingle [`Session`], XEP-0353 [`Jmi`], the Jingle⇄SDP mapping
//! and natter-phone's offer/answer and [`MediaSession`].
//!
//! A call, caller side: XEP-0353 `propose` to the callee's bare JID (or `session-initiate`
//! straight to a full JID), `proceed` names the device; ICE gathers (host candidates and
//! a TURN relay with the XEP-0215 credentials the server handed out); our SDP offer becomes
//! the `session-initiate`; `session-accept` is mapped back to SDP and read as the answer.
//! The callee does the mirror image. Media is DTLS-SRTP keyed (XEP-0320 fingerprints);
//! trickled `transport-info` candidates are added as they come.
//!
//! stdout carries the phone's lines (`established ...`, `ended reason=...`, `stats ...`);
//! stderr the log.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_ice::{AgentConfig, CandidateType, Event as IceEvent, IceState, InterfaceFilter};
use natter_ice_io::{Datagram, IceTransport, TransportConfig, TransportEvent, TurnServer};
use natter_media::{CodecKind, WavRecorder};
use natter_phone::audio::{CallSource, Clip, SourceSpec};
use natter_phone::media::{MediaConfig, MediaEvent, MediaSession, FRAME};
use natter_phone::offer::{self, IceDescription, LocalMedia, Negotiated, RemoteIce, SrtpMode};
use natter_phone::report;
use natter_phone::sip_transport::TlsTrust;
use natter_sdp::Direction;
use rand::{Rng, RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Client, ClientConfig, ClientError, Event, TlsPolicy};
use crate::jid::Jid;
use crate::jingle::jmi::{Jmi, JmiCall, JmiEvent, JmiOut};
use crate::jingle::sdp::{candidate_from_sdp, candidate_to_sdp, from_sdp, to_sdp};
use crate::jingle::session::{Incoming, Refusal, Session, State as JState};
use crate::jingle::{Action, Content, Group, Jingle};
use crate::xml::Element;
use crate::{extdisco, ns};

/// What `natter xmpp` should do.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Call `to` (bare: XEP-0353 propose; full: session-initiate), hang up after `duration`.
    Call {
        /// Callee.
        to: Jid,
        /// Call length once established.
        duration: Duration,
    },
    /// Wait for calls and answer them.
    Answer {
        /// Exit after the first call.
        once: bool,
    },
    /// Send one chat message.
    Send {
        /// Recipient.
        to: Jid,
        /// Body.
        text: String,
    },
}

/// Settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Account (bare JID; a resource asks for that resource).
    pub jid: Jid,
    /// Password.
    pub password: String,
    /// `HOST[:PORT]` to connect to (default: the JID's domain, 5222 / 5223 direct TLS).
    pub server: Option<String>,
    /// TLS policy.
    pub tls: TlsPolicy,
    /// Certificate trust for TLS.
    pub trust: TlsTrust,
    /// Allow SASL PLAIN without TLS.
    pub allow_plain: bool,
    /// What to do.
    pub mode: Mode,
    /// Audio to send.
    pub source: SourceSpec,
    /// Where to record what we play out.
    pub record: Option<PathBuf>,
    /// Codecs in preference order.
    pub codecs: Vec<CodecKind>,
    /// Host address for media (default: the machine's usable addresses).
    pub bind: Option<IpAddr>,
    /// Use the TURN server from XEP-0215 for a relayed candidate.
    pub use_turn: bool,
    /// Offer only the relayed candidate.
    pub relay_only: bool,
    /// Call set-up limit (propose to established).
    pub setup_timeout: Duration,
    /// Media silence that ends a call.
    pub media_timeout: Duration,
}

impl DriverConfig {
    /// Defaults for an account.
    pub fn new(jid: Jid, password: &str, mode: Mode) -> Self {
        DriverConfig {
            jid,
            password: password.to_owned(),
            server: None,
            tls: TlsPolicy::Opportunistic,
            trust: TlsTrust::default(),
            allow_plain: false,
            mode,
            source: SourceSpec::Silence,
            record: None,
            codecs: vec![
                CodecKind::Opus,
                CodecKind::G722,
                CodecKind::Pcmu,
                CodecKind::Pcma,
            ],
            bind: None,
            use_turn: true,
            relay_only: false,
            setup_timeout: Duration::from_secs(30),
            media_timeout: Duration::from_secs(20),
        }
    }
}

/// Why the driver could not run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Socket trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Bad setting.
    #[error("{0}")]
    Config(String),
    /// The XMPP stream failed before we were online.
    #[error("XMPP: {0}")]
    Xmpp(String),
}

/// The XMPP connection (plain TCP until STARTTLS, or TLS from the start).
enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Gone => std::future::pending().await,
        }
    }

    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(b).await,
            Conn::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
            Conn::Gone => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// XEP-0353 propose sent, waiting for proceed.
    Proposed,
    /// ICE gathering before our initiate/accept.
    Gathering,
    /// Initiate/accept sent.
    Signalled,
    /// Media flows.
    Established,
    /// Over.
    Ended,
}

struct Call {
    session: Session,
    outgoing: bool,
    stage: Stage,
    ice: Option<Box<IceTransport>>,
    tag_base: usize,
    local: Option<LocalMedia>,
    /// The initiator's contents (incoming) for naming our answer's contents.
    remote_contents: Vec<Content>,
    remote_group: Option<Group>,
    /// Remote candidates (SDP values) waiting for the agent to know the peer's credentials.
    stash: Vec<String>,
    remote_ready: bool,
    remote_done: bool,
    media: Option<MediaSession>,
    source: Option<CallSource>,
    recorder: Option<WavRecorder>,
    started: Instant,
    hangup_at: Option<Instant>,
    answered: bool,
    early: Vec<Vec<u8>>,
    early_in: Vec<(SocketAddr, Vec<u8>)>,
    ice_kind: Option<CandidateType>,
    ice_remote_kind: Option<CandidateType>,
    proposed_at: Instant,
}

/// What an IQ we sent was for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Extdisco,
    Roster,
    Jingle(String),
}

const TAG_BLOCK: usize = 64;

struct Driver<W: Write> {
    cfg: DriverConfig,
    out: W,
    client: Client,
    conn: Conn,
    server_name: String,
    dg_tx: std::sync::mpsc::Sender<Datagram>,
    dg_rx: tokio::sync::mpsc::UnboundedReceiver<Datagram>,
    turn: Option<TurnServer>,
    /// STUN servers from XEP-0215 (server-reflexive candidates).
    stun: Vec<SocketAddr>,
    services_known: bool,
    services_deadline: Option<Instant>,
    pending: HashMap<String, Pending>,
    call: Option<Call>,
    /// The XEP-0353 side of the current (or last) call, when it began with a proposal.
    jmi: Option<JmiCall>,
    cert: DtlsCertificate,
    clip: Option<Clip>,
    rng: rand::rngs::StdRng,
    /// Available full JIDs by bare JID (presence).
    available: HashMap<Jid, Vec<Jid>>,
    online: bool,
    closed: bool,
    placed: bool,
    sent: bool,
    calls_done: usize,
    all_ok: bool,
    next_tick: Instant,
    next_tag: usize,
    /// How to reconnect for an XEP-0198 resume.
    ccfg: ClientConfig,
    addr: SocketAddr,
    /// A connection attempt under way, its next try, and how many failed.
    reconnect: Option<tokio::sync::oneshot::Receiver<Result<Conn, String>>>,
    reconnect_at: Option<Instant>,
    reconnect_tries: u32,
}

/// Connection attempts when the stream breaks during a resumable session.
const RECONNECT_TRIES: u32 = 10;

/// Runs `natter xmpp` until its work is done; returns whether every call went well.
pub async fn run<W: Write>(cfg: DriverConfig, out: W) -> Result<bool, DriverError> {
    let (host, port) = server_of(&cfg)?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .ok_or_else(|| DriverError::Config(format!("{host}: no address")))?;
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .map_err(|_| DriverError::Xmpp(format!("connecting to {addr} timed out")))??;
    let _ = tcp.set_nodelay(true);
    let server_name = if host.parse::<IpAddr>().is_ok() {
        cfg.jid.domain.clone()
    } else {
        host.clone()
    };
    let conn = if cfg.tls == TlsPolicy::Direct {
        Conn::Tls(Box::new(tls_connect(&cfg.trust, &server_name, tcp).await?))
    } else {
        Conn::Tcp(tcp)
    };
    eprintln!("natter xmpp: connected to {addr} as {}", cfg.jid);
    let now = Instant::now();
    let mut ccfg = ClientConfig::new(cfg.jid.clone(), &cfg.password);
    ccfg.tls = cfg.tls;
    ccfg.allow_plain_without_tls = cfg.allow_plain;
    ccfg.app_iq_namespaces = vec![ns::JINGLE.into(), ns::ROSTER.into()];
    if cfg.jid.resource.is_empty() {
        ccfg.resource = format!("natter-{:08x}", rand::random::<u32>());
    }
    let client = Client::new(ccfg.clone(), now);
    let (dg_tx, std_rx) = std::sync::mpsc::channel::<Datagram>();
    let (tok_tx, dg_rx) = tokio::sync::mpsc::unbounded_channel();
    // natter-ice-io's receiver threads send on a std channel; one thread moves what they
    // read into the loop's tokio channel.
    std::thread::Builder::new()
        .name("xmpp-media-bridge".into())
        .spawn(move || {
            while let Ok(d) = std_rx.recv() {
                if tok_tx.send(d).is_err() {
                    return;
                }
            }
        })?;
    let cert = DtlsCertificate::generate()
        .map_err(|e| DriverError::Config(format!("DTLS certificate: {e}")))?;
    let clip = match &cfg.source {
        SourceSpec::File(p) => Some(Clip::load(p).map_err(DriverError::Config)?),
        _ => None,
    };
    let mut d = Driver {
        cfg,
        out,
        client,
        conn,
        server_name,
        dg_tx,
        dg_rx,
        turn: None,
        stun: Vec::new(),
        services_known: false,
        services_deadline: None,
        pending: HashMap::new(),
        call: None,
        jmi: None,
        cert,
        clip,
        rng: rand::rngs::StdRng::from_entropy(),
        available: HashMap::new(),
        online: false,
        closed: false,
        placed: false,
        sent: false,
        calls_done: 0,
        all_ok: true,
        next_tick: now + FRAME,
        next_tag: TAG_BLOCK,
        ccfg,
        addr,
        reconnect: None,
        reconnect_at: None,
        reconnect_tries: 0,
    };
    d.run().await
}

/// `HOST[:PORT]` of `--server`, or the JID's domain; 5222 (5223 for direct TLS).
fn server_of(cfg: &DriverConfig) -> Result<(String, u16), DriverError> {
    let default_port = if cfg.tls == TlsPolicy::Direct {
        5223
    } else {
        5222
    };
    let Some(s) = &cfg.server else {
        return Ok((cfg.jid.domain.clone(), default_port));
    };
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok((a.ip().to_string(), a.port()));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip.to_string(), default_port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.trim_matches(['[', ']']).to_owned(),
            p.parse()
                .map_err(|_| DriverError::Config(format!("--server {s}: bad port")))?,
        )),
        None => Ok((s.clone(), default_port)),
    }
}

async fn tls_connect(
    trust: &TlsTrust,
    name: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, DriverError> {
    let cfg = natter_phone::sip_transport::tls_client_config(trust)
        .map_err(|e| DriverError::Config(e.to_string()))?;
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| DriverError::Config(format!("server name {name:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    tokio::time::timeout(Duration::from_secs(10), connector.connect(server_name, tcp))
        .await
        .map_err(|_| DriverError::Xmpp("TLS handshake timed out".into()))?
        .map_err(|e| DriverError::Xmpp(format!("TLS: {e}")))
}

/// The kernel's source address towards `to` (no packet is sent).
fn route_ip(to: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if to.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let s = std::net::UdpSocket::bind(bind).ok()?;
    s.connect(SocketAddr::new(to, 9)).ok()?;
    Some(s.local_addr().ok()?.ip())
}

impl<W: Write> Driver<W> {
    fn emit(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    async fn run(&mut self) -> Result<bool, DriverError> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            self.start_reconnect(now);
            self.pump(now).await?;
            self.maybe_start(now);
            self.service_call(now);
            if now >= self.next_tick {
                self.tick(now);
                self.next_tick += FRAME;
                if now > self.next_tick + Duration::from_millis(200) {
                    self.next_tick = now + FRAME;
                }
            }
            self.pump(now).await?;
            if self.finished() {
                self.client.close();
                self.pump(now).await?;
                if !self.online && self.calls_done == 0 && !self.sent {
                    return Err(DriverError::Xmpp(
                        "the stream ended before we were online".into(),
                    ));
                }
                return Ok(self.all_ok);
            }
            let deadline = self.next_deadline(now);
            tokio::select! {
                r = self.conn.read(&mut buf) => {
                    let now = Instant::now();
                    match r {
                        Ok(0) | Err(_) => {
                            self.conn = Conn::Gone;
                            self.client.connection_lost();
                        }
                        Ok(n) => self.client.handle_bytes(now, buf.get(..n).unwrap_or(&[])),
                    }
                }
                d = self.dg_rx.recv() => {
                    if let Some(d) = d {
                        self.on_datagram(Instant::now(), d);
                        while let Ok(d) = self.dg_rx.try_recv() {
                            self.on_datagram(Instant::now(), d);
                        }
                    }
                }
                r = async {
                    match self.reconnect.as_mut() {
                        Some(rx) => rx.await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.reconnect = None;
                    self.on_reconnect(Instant::now(), r.unwrap_or_else(|_| Err("task ended".into())));
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    /// Starts a connection attempt when one is due (XEP-0198 resume after a broken stream).
    fn start_reconnect(&mut self, now: Instant) {
        if self.reconnect.is_some() || !self.reconnect_at.is_some_and(|t| now >= t) {
            return;
        }
        self.reconnect_at = None;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (addr, direct) = (self.addr, self.cfg.tls == TlsPolicy::Direct);
        let (trust, name) = (self.cfg.trust.clone(), self.server_name.clone());
        tokio::spawn(async move {
            let r = async {
                let tcp = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
                    .await
                    .map_err(|_| "connect timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
                let _ = tcp.set_nodelay(true);
                if direct {
                    let t = tls_connect(&trust, &name, tcp)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok(Conn::Tls(Box::new(t)));
                }
                Ok(Conn::Tcp(tcp))
            }
            .await;
            let _ = tx.send(r);
        });
        self.reconnect = Some(rx);
    }

    fn on_reconnect(&mut self, now: Instant, r: Result<Conn, String>) {
        match r {
            Ok(conn) => {
                let mut cfg = self.ccfg.clone();
                cfg.resume = self.client.resume_state();
                cfg.seed = self.rng.gen();
                self.conn = conn;
                self.client = Client::new(cfg, now);
                self.reconnect_tries = 0;
                eprintln!("natter xmpp: reconnected to {}", self.addr);
            }
            Err(e) => {
                self.reconnect_tries += 1;
                eprintln!(
                    "natter xmpp: reconnect {} of {RECONNECT_TRIES} failed: {e}",
                    self.reconnect_tries
                );
                if self.reconnect_tries >= RECONNECT_TRIES {
                    self.closed = true;
                    self.hangup(now, "xmpp-connection-lost", false);
                } else {
                    self.reconnect_at = Some(now + Duration::from_secs(1));
                }
            }
        }
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let mut d = self.next_tick;
        for t in [
            self.client.poll_timeout(),
            self.services_deadline,
            self.reconnect_at,
        ]
        .into_iter()
        .flatten()
        {
            d = d.min(t);
        }
        if let Some(c) = &self.call {
            if let Some(t) = c.ice.as_ref().and_then(|i| i.poll_timeout()) {
                d = d.min(t);
            }
            if let Some(t) = c.media.as_ref().and_then(|m| m.poll_timeout()) {
                d = d.min(t);
            }
        }
        d.max(now)
    }

    /// Writes what the client queued and handles its events until both are quiet.
    async fn pump(&mut self, now: Instant) -> Result<(), DriverError> {
        for _ in 0..64 {
            let mut any = false;
            while let Some(b) = self.client.poll_transmit() {
                any = true;
                if self.conn.write_all(&b).await.is_err() {
                    self.conn = Conn::Gone;
                    self.client.connection_lost();
                }
            }
            while let Some(ev) = self.client.poll_event() {
                any = true;
                self.on_event(now, ev).await?;
            }
            if !any {
                break;
            }
        }
        Ok(())
    }

    async fn on_event(&mut self, now: Instant, ev: Event) -> Result<(), DriverError> {
        match ev {
            Event::StartTls => {
                let Conn::Tcp(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
                    return Err(DriverError::Xmpp("STARTTLS on a TLS stream".into()));
                };
                let tls = tls_connect(&self.cfg.trust, &self.server_name, tcp).await?;
                eprintln!("natter xmpp: STARTTLS done");
                self.conn = Conn::Tls(Box::new(tls));
                self.client.tls_established();
            }
            Event::Online { jid, resumed } => {
                eprintln!(
                    "natter xmpp: online as {jid}{}",
                    if resumed { " (resumed)" } else { "" }
                );
                self.online = true;
                if !resumed {
                    let id = self
                        .client
                        .iq(now, "get", None, Element::new("query", ns::ROSTER));
                    self.pending.insert(id, Pending::Roster);
                    let p = self.client.available_presence();
                    self.client.send(now, p);
                    let domain = Jid::parse(&jid.domain).ok();
                    let id = self
                        .client
                        .iq(now, "get", domain.as_ref(), extdisco::request());
                    self.pending.insert(id, Pending::Extdisco);
                    self.services_deadline = Some(now + Duration::from_secs(3));
                }
            }
            Event::Stanza(e) => self.on_stanza(now, e),
            Event::Acked(_) => {}
            Event::Closed(Some(ClientError::ConnectionLost))
                if self.online && self.client.resume_state().is_some() =>
            {
                eprintln!("natter xmpp: connection lost; resuming the stream (XEP-0198)");
                self.reconnect_at = Some(now);
            }
            Event::Closed(err) => {
                if let Some(e) = &err {
                    eprintln!("natter xmpp: stream closed: {e}");
                    if !self.online {
                        return Err(DriverError::Xmpp(e.to_string()));
                    }
                }
                self.closed = true;
                self.hangup(now, "xmpp-stream-closed", false);
            }
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        if self.closed {
            return true;
        }
        if self.reconnect.is_some() || self.reconnect_at.is_some() {
            return false;
        }
        let active = self.call.as_ref().is_some_and(|c| c.stage != Stage::Ended);
        if active {
            return false;
        }
        match &self.cfg.mode {
            Mode::Call { .. } => self.placed,
            Mode::Answer { once } => *once && self.calls_done > 0,
            Mode::Send { .. } => self.sent,
        }
    }

    /// Starts the work of `call` / `send` once online (and once XEP-0215 answered, so the
    /// call can use the TURN relay).
    fn maybe_start(&mut self, now: Instant) {
        if !self.online || self.placed {
            return;
        }
        if !self.services_known && self.services_deadline.is_some_and(|t| now >= t) {
            eprintln!("natter xmpp: no XEP-0215 answer; calling without a TURN relay");
            self.services_known = true;
        }
        match self.cfg.mode.clone() {
            Mode::Send { to, text } => {
                if self.sent {
                    return;
                }
                let id = self.client.new_id();
                let m = Element::new("message", ns::CLIENT)
                    .with_attr("type", "chat")
                    .with_attr("to", to.to_string())
                    .with_attr("id", id)
                    .with_child(Element::new("body", ns::CLIENT).with_text(text));
                self.client.send(now, m);
                self.sent = true;
                self.emit(&format!("sent to={to}"));
            }
            Mode::Call { to, .. } => {
                if !self.services_known {
                    return;
                }
                self.placed = true;
                let sid = format!("{:016x}", self.rng.next_u64());
                if to.is_bare() {
                    let me = self
                        .client
                        .jid()
                        .cloned()
                        .unwrap_or_else(|| self.cfg.jid.clone());
                    let (jmi, out) = JmiCall::propose(&sid, &me, &to, &["audio"]);
                    self.send_jmi(now, &out);
                    self.jmi = Some(jmi);
                    eprintln!("natter xmpp: proposed call {sid} to {to} (XEP-0353)");
                    self.call = Some(self.new_call(Session::outgoing(&sid, me, to), true, now));
                } else {
                    self.start_outgoing(now, to, sid);
                }
            }
            Mode::Answer { .. } => {}
        }
    }

    fn new_call(&mut self, session: Session, outgoing: bool, now: Instant) -> Call {
        let tag_base = self.next_tag;
        self.next_tag += TAG_BLOCK;
        Call {
            session,
            outgoing,
            stage: Stage::Proposed,
            ice: None,
            tag_base,
            local: None,
            remote_contents: Vec::new(),
            remote_group: None,
            stash: Vec::new(),
            remote_ready: false,
            remote_done: false,
            media: None,
            source: None,
            recorder: None,
            started: now,
            hangup_at: None,
            answered: false,
            early: Vec::new(),
            early_in: Vec::new(),
            ice_kind: None,
            ice_remote_kind: None,
            proposed_at: now,
        }
    }

    /// ICE sockets and gathering for the call; our media description.
    fn open_media(&mut self, now: Instant, controlling: bool) -> Result<(), String> {
        let hosts = match self.cfg.bind {
            Some(ip) => vec![("bind".to_owned(), ip)],
            None => {
                let h = natter_ice_io::netif::host_addresses(&InterfaceFilter::default());
                if h.is_empty() {
                    let ip = self
                        .server_name
                        .parse()
                        .ok()
                        .and_then(route_ip)
                        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
                    vec![("route".to_owned(), ip)]
                } else {
                    h
                }
            }
        };
        let turn = if self.cfg.use_turn {
            self.turn.clone()
        } else {
            None
        };
        let seed = self.rng.gen();
        let stun_servers = if self.cfg.use_turn {
            self.stun.clone()
        } else {
            Vec::new()
        };
        let fingerprint = self.cert.fingerprint_sha256();
        let session_id: u64 = self.rng.gen::<u32>().into();
        let Some(call) = &mut self.call else {
            return Err("no call".into());
        };
        let mut t = IceTransport::bind(
            TransportConfig {
                agent: AgentConfig {
                    controlling,
                    seed: Some(seed),
                    stun_servers,
                    ..AgentConfig::default()
                },
                hosts,
                relay_only: self.cfg.relay_only && turn.is_some(),
                turn,
            },
            now,
        )
        .map_err(|e| format!("ICE: {e}"))?;
        t.start(now, &self.dg_tx, call.tag_base)
            .map_err(|e| format!("ICE: {e}"))?;
        let addr = t
            .local_addrs()
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9)));
        call.ice = Some(Box::new(t));
        call.local = Some(LocalMedia {
            addr,
            codecs: self.cfg.codecs.clone(),
            srtp: SrtpMode::Dtls,
            srtp_required: true,
            sdes_keys: Vec::new(),
            fingerprint: Some(fingerprint),
            ice: None,
            direction: Direction::SendRecv,
            session_id,
            version: 1,
        });
        call.stage = Stage::Gathering;
        Ok(())
    }

    fn start_outgoing(&mut self, now: Instant, peer: Jid, sid: String) {
        let me = self
            .client
            .jid()
            .cloned()
            .unwrap_or_else(|| self.cfg.jid.clone());
        let started = self.call.as_ref().map(|c| c.started);
        let mut call = self.new_call(Session::outgoing(&sid, me, peer.clone()), true, now);
        if let Some(s) = started {
            call.started = s;
        }
        self.call = Some(call);
        eprintln!("natter xmpp: calling {peer} (sid {sid})");
        if let Err(e) = self.open_media(now, true) {
            eprintln!("natter xmpp: {e}");
            self.end_call(now, &format!("media-setup-failed ({e})"), false);
        }
    }

    fn send_jingle(&mut self, now: Instant, to: &Jid, j: &Jingle) {
        let id = self.client.iq(now, "set", Some(to), j.to_element());
        self.pending
            .insert(id, Pending::Jingle(j.action.as_str().to_owned()));
    }

    fn on_stanza(&mut self, now: Instant, e: Element) {
        let from = e.attr("from").and_then(|f| Jid::parse(f).ok());
        match e.name.as_str() {
            "iq" => self.on_iq(now, from, e),
            "message" => {
                if let (Some(from), Some(j)) = (from.clone(), Jmi::parse(&e)) {
                    self.on_jmi(now, from, j);
                } else if let Some(b) = e.child("body", ns::CLIENT) {
                    let who = from.map(|f| f.to_string()).unwrap_or_default();
                    self.emit(&format!(
                        "message from={who} text={}",
                        b.text().replace('\n', " ")
                    ));
                }
            }
            "presence" => {
                let Some(from) = from else { return };
                let gone = matches!(e.attr("type"), Some("unavailable") | Some("error"));
                if e.attr("type").is_some() && !gone {
                    return;
                }
                let list = self.available.entry(from.bare()).or_default();
                list.retain(|j| *j != from);
                if !gone && !from.is_bare() {
                    // Resources that advertise caps (a client that can be called) first.
                    if e.child("c", ns::CAPS).is_some() {
                        list.insert(0, from);
                    } else {
                        list.push(from);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_iq(&mut self, now: Instant, from: Option<Jid>, e: Element) {
        let kind = e.attr("type").unwrap_or("");
        let id = e.attr("id").unwrap_or("").to_owned();
        match kind {
            "result" | "error" => match self.pending.remove(&id) {
                Some(Pending::Extdisco) => {
                    let services = extdisco::parse(&e);
                    self.services_known = true;
                    self.services_deadline = None;
                    self.stun = services
                        .iter()
                        .filter(|s| s.kind == "stun" && s.transport == "udp")
                        .filter_map(|s| {
                            std::net::ToSocketAddrs::to_socket_addrs(&(s.host.as_str(), s.port))
                                .ok()
                                .and_then(|mut a| a.find(SocketAddr::is_ipv4))
                        })
                        .take(2)
                        .collect();
                    if !self.stun.is_empty() {
                        eprintln!("natter xmpp: XEP-0215 STUN {:?}", self.stun);
                    }
                    if let Some(s) = services.iter().find(|s| s.is_turn_udp()) {
                        let addr = (s.host.as_str(), s.port);
                        match std::net::ToSocketAddrs::to_socket_addrs(&addr)
                            .ok()
                            .and_then(|mut a| a.next())
                        {
                            Some(server) => {
                                eprintln!(
                                    "natter xmpp: XEP-0215 TURN {server} user {}",
                                    s.username.as_deref().unwrap_or("")
                                );
                                self.turn = Some(TurnServer {
                                    server,
                                    username: s.username.clone().unwrap_or_default(),
                                    password: s.password.clone().unwrap_or_default(),
                                });
                            }
                            None => eprintln!("natter xmpp: cannot resolve TURN host {}", s.host),
                        }
                    }
                }
                Some(Pending::Jingle(action)) if kind == "error" => {
                    let cond = e
                        .child("error", ns::CLIENT)
                        .and_then(|x| x.elements().next())
                        .map(|c| c.name.clone())
                        .unwrap_or_default();
                    eprintln!("natter xmpp: peer refused our {action}: {cond}");
                    if action == "session-initiate" || action == "session-accept" {
                        if let Some(c) = &mut self.call {
                            c.session.terminate("failed-application", None);
                        }
                        self.end_call(now, &format!("rejected ({cond})"), false);
                    }
                }
                _ => {}
            },
            "set" | "get" => {
                if let Some(j) = e.child("jingle", ns::JINGLE) {
                    match Jingle::parse(j) {
                        Ok(j) => self.on_jingle(now, from, &e, j),
                        Err(_) => self.client.iq_error(now, &e, "cancel", "bad-request", None),
                    }
                } else if e.child("query", ns::ROSTER).is_some() && kind == "set" {
                    // Roster push (RFC 6121 §2.1.6): acknowledge.
                    self.client.iq_result(now, &e, None);
                } else {
                    self.client
                        .iq_error(now, &e, "cancel", "service-unavailable", None);
                }
            }
            _ => {}
        }
    }

    fn refuse(&mut self, now: Instant, iq: &Element, r: Refusal) {
        let app = r.jingle.map(|j| Element::new(j, ns::JINGLE_ERRORS));
        self.client.iq_error(now, iq, r.kind, r.condition, app);
    }

    fn send_jmi(&mut self, now: Instant, out: &JmiOut) {
        let kind = match &out.jmi {
            Jmi::Propose { .. } => "p",
            Jmi::Ringing { .. } => "g",
            Jmi::Proceed { .. } | Jmi::Accept { .. } => "a",
            Jmi::Reject { .. } => "r",
            Jmi::Retract { .. } => "x",
            Jmi::Finish { .. } => "f",
        };
        let m = out.to_message(&format!("jmi-{}-{kind}", out.jmi.id()));
        self.client.send(now, m);
    }

    /// XEP-0353: proposals (we ring, then proceed, or reject when busy), the callee's
    /// ringing/proceed/reject, the caller's retract and either side's finish.
    fn on_jmi(&mut self, now: Instant, from: Jid, j: Jmi) {
        let me = self
            .client
            .jid()
            .cloned()
            .unwrap_or_else(|| self.cfg.jid.clone());
        if let (Mode::Answer { .. }, Jmi::Propose { id, media }) = (&self.cfg.mode, &j) {
            if from.bare() == me.bare() {
                return;
            }
            let busy = self.call.as_ref().is_some_and(|c| c.stage != Stage::Ended);
            let mut jmi = JmiCall::incoming(id, &me, &from);
            if busy || !media.iter().any(|m| m == "audio") {
                eprintln!("natter xmpp: call {id} proposed by {from}: rejected");
                if let Some(out) = jmi.reject(if busy { "busy" } else { "decline" }) {
                    self.send_jmi(now, &out);
                }
                return;
            }
            eprintln!("natter xmpp: call {id} proposed by {from}: ringing, proceeding");
            for out in [jmi.ring(), jmi.proceed()].into_iter().flatten() {
                self.send_jmi(now, &out);
            }
            self.jmi = Some(jmi);
            return;
        }
        let Some(jmi) = self.jmi.as_mut() else { return };
        let id = jmi.id.clone();
        match jmi.handle(&from, &j) {
            Some(JmiEvent::Ringing { device }) => {
                eprintln!("natter xmpp: {device} is ringing (call {id})");
            }
            Some(JmiEvent::Proceed { device }) => {
                let ours = self.call.as_ref().is_some_and(|c| {
                    matches!(self.cfg.mode, Mode::Call { .. })
                        && c.stage == Stage::Proposed
                        && c.session.sid == id
                });
                if ours {
                    eprintln!("natter xmpp: {device} proceeds with {id}");
                    self.start_outgoing(now, device, id);
                }
            }
            Some(JmiEvent::Rejected(r)) => {
                let ours = self
                    .call
                    .as_ref()
                    .is_some_and(|c| c.stage == Stage::Proposed && c.session.sid == id);
                let why = r.map(|r| r.condition).unwrap_or_default();
                eprintln!("natter xmpp: {from} rejected {id} ({why})");
                if ours {
                    self.end_call(now, "rejected", false);
                }
            }
            Some(JmiEvent::Retracted(_)) | Some(JmiEvent::HandledElsewhere) => {
                eprintln!("natter xmpp: proposal {id} withdrawn or taken elsewhere");
            }
            Some(JmiEvent::Finished(r)) => {
                let why = r.map(|r| r.condition).unwrap_or_default();
                eprintln!("natter xmpp: {from} finished {id} ({why}) (XEP-0353)");
            }
            None => {}
        }
    }

    fn on_jingle(&mut self, now: Instant, from: Option<Jid>, iq: &Element, j: Jingle) {
        let Some(from) = from else {
            self.client.iq_error(now, iq, "cancel", "bad-request", None);
            return;
        };
        if j.action == Action::SessionInitiate {
            let busy = self.call.as_ref().is_some_and(|c| c.stage != Stage::Ended);
            let answering = matches!(self.cfg.mode, Mode::Answer { .. });
            if let Err(r) = Session::check_initiate(&j) {
                self.refuse(now, iq, r);
                return;
            }
            self.client.iq_result(now, iq, None);
            let me = self
                .client
                .jid()
                .cloned()
                .unwrap_or_else(|| self.cfg.jid.clone());
            if busy || !answering {
                let mut s = Session::incoming(&j, me, from.clone());
                if let Some(t) = s.terminate(if busy { "busy" } else { "decline" }, None) {
                    self.send_jingle(now, &from, &t);
                }
                return;
            }
            self.emit(&format!("incoming from={from}"));
            let mut call = self.new_call(Session::incoming(&j, me, from), false, now);
            call.remote_contents = j.contents.clone();
            call.remote_group = j.group.clone();
            self.call = Some(call);
            if let Err(e) = self.open_media(now, false) {
                eprintln!("natter xmpp: {e}");
                self.hangup(now, &format!("media-setup-failed ({e})"), false);
                return;
            }
            if let Some(c) = &mut self.call {
                for content in &j.contents {
                    if let Some(t) = &content.transport {
                        c.stash.extend(t.candidates.iter().map(candidate_to_sdp));
                        c.remote_done |= t.gathering_complete;
                    }
                }
            }
            return;
        }
        let Some(call) = &mut self.call else {
            self.refuse(
                now,
                iq,
                Refusal {
                    kind: "cancel",
                    condition: "item-not-found",
                    jingle: Some("unknown-session"),
                },
            );
            return;
        };
        let incoming = match call.session.handle(&from, &j) {
            Ok(i) => i,
            Err(r) => {
                self.refuse(now, iq, r);
                return;
            }
        };
        self.client.iq_result(now, iq, None);
        match incoming {
            Incoming::Accepted(contents) => self.on_accept(now, &contents, j.group.as_ref()),
            Incoming::TransportInfo(contents) => {
                for c in &contents {
                    if let Some(t) = &c.transport {
                        for cand in &t.candidates {
                            self.add_remote(now, candidate_to_sdp(cand));
                        }
                        if t.gathering_complete {
                            self.remote_complete();
                        }
                    }
                }
            }
            Incoming::Terminated(reason) => {
                let cond = reason
                    .map(|r| r.condition)
                    .unwrap_or_else(|| "success".into());
                let established = self
                    .call
                    .as_ref()
                    .is_some_and(|c| c.stage == Stage::Established);
                let (why, ok) = if established {
                    ("remote-hangup".to_owned(), true)
                } else {
                    (format!("remote-terminate ({cond})"), false)
                };
                self.end_call(now, &why, ok);
            }
            Incoming::ContentAdd(contents) => {
                let (rej, peer) = (
                    call.session.content_reject(&contents),
                    call.session.peer.clone(),
                );
                self.send_jingle(now, &peer, &rej);
            }
            Incoming::ContentRemove(nothing_left) => {
                if nothing_left {
                    self.hangup(now, "content-removed", false);
                }
            }
            Incoming::Info(_) | Incoming::Ignored => {}
        }
    }

    /// A remote candidate (SDP value): to the agent now, or kept until it knows the peer.
    fn add_remote(&mut self, now: Instant, cand: String) {
        let Some(c) = &mut self.call else { return };
        if !c.remote_ready {
            if c.stash.len() < 64 {
                c.stash.push(cand);
            }
            return;
        }
        let Some(t) = &mut c.ice else { return };
        add_candidate(t, now, &cand);
    }

    fn remote_complete(&mut self) {
        let Some(c) = &mut self.call else { return };
        c.remote_done = true;
        if c.remote_ready {
            if let Some(t) = &mut c.ice {
                t.agent_mut().end_of_remote_candidates();
            }
        }
    }

    /// The caller got session-accept: read it as the SDP answer.
    fn on_accept(&mut self, now: Instant, contents: &[Content], group: Option<&Group>) {
        let Some(call) = &mut self.call else { return };
        let Some(local) = &call.local else { return };
        let result = to_sdp(contents, group, false)
            .map_err(|e| e.to_string())
            .and_then(|sdp| {
                offer::read_answer(sdp.as_bytes(), local)
                    .map(|n| (n, sdp))
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok((mut neg, _)) => {
                fill_ice(&mut neg, contents);
                for c in contents {
                    if let Some(t) = &c.transport {
                        call.stash.extend(t.candidates.iter().map(candidate_to_sdp));
                        call.remote_done |= t.gathering_complete;
                    }
                }
                call.answered = true;
                self.start_media(now, neg);
            }
            Err(e) => {
                eprintln!("natter xmpp: unusable session-accept: {e}");
                self.hangup(now, &format!("not-acceptable ({e})"), false);
            }
        }
    }

    /// ICE gathering is done: send session-initiate (caller) or session-accept (callee).
    fn signal(&mut self, now: Instant) {
        let Some(call) = &mut self.call else { return };
        let Some(t) = &call.ice else { return };
        let Some(local) = &mut call.local else { return };
        let agent = t.agent();
        let creds = agent.local_credentials();
        if let Some(def) = agent.default_candidate(1) {
            local.addr = def.addr;
        }
        local.ice = Some(IceDescription {
            ufrag: creds.ufrag.clone(),
            pwd: creds.pwd.clone(),
            candidates: agent
                .local_candidates()
                .iter()
                .map(|c| c.to_sdp_value())
                .collect(),
        });
        call.stage = Stage::Signalled;
        if call.outgoing {
            let sdp = offer::create_offer(local);
            match from_sdp(&sdp, "initiator", true) {
                Ok((mut contents, _)) => {
                    for c in &mut contents {
                        c.name = "0".into();
                        if let Some(t) = &mut c.transport {
                            t.gathering_complete = true;
                        }
                    }
                    let group = Some(Group {
                        semantics: "BUNDLE".into(),
                        contents: contents.iter().map(|c| c.name.clone()).collect(),
                    });
                    let j = call.session.initiate(contents, group);
                    let peer = call.session.peer.clone();
                    self.send_jingle(now, &peer, &j);
                }
                Err(e) => {
                    eprintln!("natter xmpp: cannot map our offer: {e}");
                    self.end_call(now, "internal-error", false);
                }
            }
            return;
        }
        let offer_sdp = match to_sdp(&call.remote_contents, call.remote_group.as_ref(), true) {
            Ok(s) => s,
            Err(e) => {
                self.hangup(now, &format!("not-acceptable ({e})"), false);
                return;
            }
        };
        match offer::answer_offer(offer_sdp.as_bytes(), local) {
            Ok((answer, mut neg)) => {
                fill_ice(&mut neg, &call.remote_contents);
                let mapped = from_sdp(&answer, "initiator", false);
                let Ok((mut contents, _)) = mapped else {
                    self.hangup(now, "internal-error", false);
                    return;
                };
                // Our answer's contents carry the offer's names and creators.
                let audio: Vec<&Content> = call
                    .remote_contents
                    .iter()
                    .filter(|c| c.description.is_some())
                    .collect();
                for (i, c) in contents.iter_mut().enumerate() {
                    if let Some(o) = audio.get(i) {
                        c.name = o.name.clone();
                        c.creator = o.creator.clone();
                    }
                    if let Some(t) = &mut c.transport {
                        t.gathering_complete = true;
                        // natter-phone's answer leaves ICE out when the offer had no
                        // candidates yet (a trickling peer): our description goes in anyway.
                        if let Some(ice) = &local.ice {
                            t.ufrag = Some(ice.ufrag.clone());
                            t.pwd = Some(ice.pwd.clone());
                            t.candidates = ice
                                .candidates
                                .iter()
                                .filter_map(|v| candidate_from_sdp(v))
                                .collect();
                        }
                    }
                }
                let group = call.remote_group.clone();
                let peer = call.session.peer.clone();
                if let Some(j) = call.session.accept(contents, group) {
                    call.answered = true;
                    self.send_jingle(now, &peer, &j);
                    self.start_media(now, neg);
                }
            }
            Err(e) => {
                eprintln!("natter xmpp: refusing the offer: {e}");
                if let Some(t) = call
                    .session
                    .terminate("unsupported-applications", Some(&e.to_string()))
                {
                    let peer = call.session.peer.clone();
                    self.send_jingle(now, &peer, &t);
                }
                self.end_call(now, &format!("not-acceptable ({e})"), false);
            }
        }
    }

    fn start_media(&mut self, now: Instant, neg: Negotiated) {
        let seed = self.rng.gen();
        let ssrc = self.rng.next_u32();
        let seq = self.rng.gen();
        let ts = self.rng.next_u32();
        let cname = format!("natter-{:08x}", self.rng.next_u32());
        let cert = self.cert.clone();
        let media_timeout = self.cfg.media_timeout;
        let Some(call) = &mut self.call else { return };
        if let (Some(t), Some(ice)) = (&mut call.ice, &neg.ice) {
            let agent = t.agent_mut();
            agent.set_remote_credentials(&ice.ufrag, &ice.pwd);
            if ice.lite {
                agent.set_remote_lite(true);
            }
            call.remote_ready = true;
            let mut all = ice.candidates.clone();
            all.append(&mut call.stash);
            all.sort();
            all.dedup();
            for c in &all {
                add_candidate(t, now, c);
            }
            if call.remote_done {
                t.agent_mut().end_of_remote_candidates();
            }
            t.handle_timeout(now);
        }
        match MediaSession::new(
            MediaConfig {
                neg,
                ssrc,
                cname,
                seq,
                ts,
                cert: Some(cert),
                opus_fec: true,
                opus_dtx: false,
                seed,
                ntp_now: report::ntp_now(),
                defer_dtls_client: false,
            },
            now,
        ) {
            Ok(mut m) => {
                m.set_silence_limit(media_timeout);
                for (from, data) in std::mem::take(&mut call.early_in) {
                    m.handle_datagram(now, from, &data);
                }
                call.media = Some(m);
            }
            Err(e) => {
                eprintln!("natter xmpp: media setup failed: {e}");
                self.hangup(now, &format!("media-setup-failed ({e})"), false);
            }
        }
    }

    fn on_datagram(&mut self, now: Instant, d: Datagram) {
        let Some(call) = &mut self.call else { return };
        if d.tag < call.tag_base || d.tag >= call.tag_base + TAG_BLOCK || call.stage == Stage::Ended
        {
            return;
        }
        let Some(t) = &mut call.ice else { return };
        let Some((from, data)) = t.handle_datagram(now, d.tag - call.tag_base, d.from, &d.data)
        else {
            return;
        };
        match &mut call.media {
            Some(m) => m.handle_datagram(now, from, &data),
            None if call.early_in.len() < 16 => call.early_in.push((from, data)),
            None => {}
        }
    }

    /// ICE and media timers and events, `established`, the set-up timeout, the hang-up.
    fn service_call(&mut self, now: Instant) {
        let mut gathered = false;
        let mut failed: Option<String> = None;
        let mut events = Vec::new();
        {
            let Some(call) = &mut self.call else { return };
            if call.stage == Stage::Ended {
                return;
            }
            if let Some(t) = &mut call.ice {
                if t.poll_timeout().is_some_and(|x| x <= now) {
                    t.handle_timeout(now);
                }
                while let Some(ev) = t.poll_event() {
                    let ms = now.saturating_duration_since(call.started).as_millis();
                    match ev {
                        TransportEvent::Ice(e) => match *e {
                            IceEvent::GatheringComplete => {
                                eprintln!("natter xmpp: +{ms} ms ice gathering complete");
                                gathered = true;
                            }
                            IceEvent::StateChanged(st) => {
                                eprintln!("natter xmpp: +{ms} ms ice state {st:?}");
                                if st == IceState::Failed {
                                    failed = Some("ice-failed".into());
                                }
                            }
                            IceEvent::SelectedPair { local, remote, .. } => {
                                eprintln!(
                                    "natter xmpp: +{ms} ms ice selected {} {} -> {} {}",
                                    local.kind, local.addr, remote.kind, remote.addr
                                );
                                call.ice_kind = Some(local.kind);
                                call.ice_remote_kind = Some(remote.kind);
                            }
                            _ => {}
                        },
                        TransportEvent::RelayFailed(w) => eprintln!("natter xmpp: TURN: {w}"),
                    }
                }
            }
            if let Some(m) = &mut call.media {
                if m.poll_timeout().is_some_and(|x| x <= now) {
                    m.handle_timeout(now);
                }
                while let Some(ev) = m.poll_event() {
                    events.push(ev);
                }
            }
            flush_media(call, now);
        }
        if gathered
            && self
                .call
                .as_ref()
                .is_some_and(|c| c.stage == Stage::Gathering)
        {
            self.signal(now);
        }
        for ev in events {
            match ev {
                MediaEvent::KeyingFailed(why) => {
                    eprintln!("natter xmpp: {why}");
                    self.hangup(now, "dtls-failed", false);
                }
                MediaEvent::PeerSilent => self.hangup(now, "media-timeout", false),
                MediaEvent::Dtmf(d) => self.emit(&format!("dtmf digit={d}")),
                MediaEvent::Bye | MediaEvent::Secured { .. } => {}
            }
        }
        if let Some(why) = failed {
            self.hangup(now, &why, false);
        }
        self.check_established(now);
        let Some(call) = &self.call else { return };
        if call.stage == Stage::Ended {
            return;
        }
        if call.stage != Stage::Established && now >= call.started + self.cfg.setup_timeout {
            let proposed = call.stage == Stage::Proposed;
            if proposed {
                if let Some(out) = self.jmi.as_mut().and_then(JmiCall::retract) {
                    self.send_jmi(now, &out);
                }
            }
            self.hangup(
                now,
                if proposed {
                    "no-answer"
                } else {
                    "setup-timeout"
                },
                false,
            );
            return;
        }
        // No device proceeded: call a resource that announced itself in presence.
        if call.stage == Stage::Proposed && now >= call.proposed_at + Duration::from_secs(5) {
            let target = call.session.peer.bare();
            if let Some(full) = self.available.get(&target).and_then(|l| l.first()).cloned() {
                if let Some(out) = self.jmi.as_mut().and_then(JmiCall::retract) {
                    self.send_jmi(now, &out);
                }
                eprintln!("natter xmpp: no proceed; calling {full} from its presence");
                let sid = format!("{:016x}", self.rng.next_u64());
                self.start_outgoing(now, full, sid);
            }
            return;
        }
        if call.hangup_at.is_some_and(|t| now >= t) {
            self.hangup(now, "local-hangup", true);
        }
    }

    fn check_established(&mut self, now: Instant) {
        let duration = match &self.cfg.mode {
            Mode::Call { duration, .. } => Some(*duration),
            _ => None,
        };
        let Some(call) = &mut self.call else { return };
        if call.stage != Stage::Signalled || !call.answered {
            return;
        }
        let (Some(m), Some(t)) = (&call.media, &call.ice) else {
            return;
        };
        if !t.is_connected() || !m.is_secured() {
            return;
        }
        let Some((l, r)) = t.selected() else { return };
        let ice = call.ice_kind.unwrap_or(l.kind).to_string();
        let line = report::established_line(
            m,
            &ice,
            r.addr,
            now.saturating_duration_since(call.started).as_millis(),
            call.ice_remote_kind,
        );
        let rate = m.sample_rate();
        call.stage = Stage::Established;
        if call.outgoing {
            call.hangup_at = duration.map(|d| now + d);
        }
        call.source = Some(CallSource::new(&self.cfg.source, self.clip.as_ref(), rate));
        if let Some(p) = &self.cfg.record {
            match natter_phone::audio::recorder(p, rate) {
                Ok(r) => call.recorder = Some(r),
                Err(e) => eprintln!("natter xmpp: cannot record: {e}"),
            }
        }
        self.emit(&line);
    }

    /// The 20 ms media clock.
    fn tick(&mut self, now: Instant) {
        let Some(call) = &mut self.call else { return };
        if call.stage == Stage::Ended {
            return;
        }
        let Some(m) = &mut call.media else { return };
        let n = m.samples_per_frame();
        let mut frame = vec![0i16; n];
        if let Some(src) = &mut call.source {
            src.fill(&mut frame);
        }
        m.send_audio(now, &frame);
        let mut played = Vec::with_capacity(n);
        m.play(now, &mut played);
        if call.stage == Stage::Established {
            if let Some(r) = &mut call.recorder {
                if r.write(&played).is_err() {
                    call.recorder = None;
                }
            }
        }
        flush_media(call, now);
    }

    /// Ends the call from our side: RTCP BYE, session-terminate (or a JMI retract).
    fn hangup(&mut self, now: Instant, reason: &str, ok: bool) {
        let Some(call) = &mut self.call else { return };
        if call.stage == Stage::Ended {
            return;
        }
        if let Some(m) = &mut call.media {
            m.bye(now);
        }
        flush_media(call, now);
        let cond = if ok { "success" } else { "failed-application" };
        let pending = call.stage == Stage::Proposed;
        let peer = call.session.peer.clone();
        let term = if pending || call.session.state() == JState::Idle {
            None
        } else {
            call.session.terminate(cond, (!ok).then_some(reason))
        };
        if let Some(t) = term {
            // The <finish/> goes out just before the session-terminate: the peer's stream
            // delivers it first, so a peer that stops once its session ends still has it.
            let sid = t.sid.clone();
            self.jmi_finish(now, &sid, reason);
            self.send_jingle(now, &peer, &t);
        }
        self.end_call(now, reason, ok);
    }

    /// XEP-0353: both parties tell the other's devices (and archives) that the call that
    /// followed a proposal is over (once; nothing when no device proceeded).
    fn jmi_finish(&mut self, now: Instant, sid: &str, reason: &str) {
        let Some(jmi) = self.jmi.as_mut().filter(|j| j.id == sid) else {
            return;
        };
        let lost = ["timeout", "ice", "dtls", "connect"]
            .iter()
            .any(|w| reason.contains(w));
        if let Some(out) = jmi.finish(if lost {
            "connectivity-error"
        } else {
            "success"
        }) {
            self.send_jmi(now, &out);
        }
    }

    fn end_call(&mut self, now: Instant, reason: &str, ok: bool) {
        let Some(call) = &mut self.call else { return };
        if call.stage == Stage::Ended {
            return;
        }
        let sid = call.session.sid.clone();
        self.jmi_finish(now, &sid, reason);
        let Some(call) = &mut self.call else { return };
        let ok = ok && call.stage == Stage::Established;
        call.stage = Stage::Ended;
        if let Some(r) = call.recorder.take() {
            let _ = r.finalize();
        }
        if let Some(t) = &mut call.ice {
            if call.stage != Stage::Established {
                // A call that never got going: what ICE knew, so the log says whether the
                // peer's candidates or checks ever arrived (and which pairs were tried).
                eprintln!(
                    "natter xmpp: call not established; ICE {} (stashed {})",
                    t.agent().describe_checks(),
                    call.stash.len()
                );
            }
            t.close();
        }
        let stats = call.media.as_ref().map(|m| m.stats()).unwrap_or_default();
        call.media = None;
        self.calls_done += 1;
        if !ok {
            self.all_ok = false;
        }
        self.emit(&format!("ended reason={reason}"));
        eprintln!(
            "natter xmpp: call ended ({reason}); dropped: malformed={} unauthenticated={} unknown_pt={}",
            stats.rx_malformed, stats.rx_unauthenticated, stats.rx_unknown_pt
        );
        self.emit(&report::stats_line(&stats));
    }
}

/// The peer's ICE credentials from its Jingle transport when its SDP had no candidates
/// yet (trickle: natter-phone's offer code only takes ICE with candidates).
fn fill_ice(neg: &mut Negotiated, contents: &[Content]) {
    if neg.ice.is_some() {
        return;
    }
    let t = contents.iter().find_map(|c| {
        c.description.as_ref()?;
        c.transport.as_ref()
    });
    if let Some(t) = t {
        if let (Some(u), Some(p)) = (&t.ufrag, &t.pwd) {
            neg.ice = Some(RemoteIce {
                ufrag: u.clone(),
                pwd: p.clone(),
                candidates: Vec::new(),
                lite: false,
            });
        }
    }
}

/// Adds one remote UDP RTP candidate (SDP value) to the agent, opening a TURN permission.
fn add_candidate(t: &mut IceTransport, now: Instant, cand: &str) {
    match natter_ice::Candidate::from_sdp(cand) {
        Ok(c) if c.component == 1 => {
            let addr = c.addr;
            if t.agent_mut().add_remote_candidate(c).is_ok() {
                t.permit_remote(now, addr);
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("natter xmpp: skipping remote candidate ({e}): {cand}"),
    }
}

/// Sends what the media session queued over ICE; DTLS written before ICE has a pair waits.
fn flush_media(call: &mut Call, now: Instant) {
    let Some(t) = &mut call.ice else { return };
    if !call.early.is_empty() && t.is_connected() {
        for d in std::mem::take(&mut call.early) {
            t.send(now, &d);
        }
    }
    let Some(m) = &mut call.media else { return };
    while let Some(o) = m.poll_transmit() {
        let is_rtp = matches!(
            natter_rtp::demux::classify(&o.data),
            natter_rtp::demux::Kind::Rtp | natter_rtp::demux::Kind::Rtcp
        );
        if !t.send(now, &o.data) && !is_rtp && call.early.len() < 16 {
            call.early.push(o.data);
        }
    }
}
