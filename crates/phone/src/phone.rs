//! The phone's driver: one loop owning the SIP socket, each call's media sockets (an
//! [`IceTransport`] or a plain RTP/RTCP pair) and a 20 ms media clock, composing the
//! sans-IO SIP user agent, SDP offer/answer and each call's [`MediaSession`].
//!
//! Receiver threads push datagrams into one channel; the loop sleeps until the next
//! datagram or deadline (SIP timers, ICE/TURN timers, RTCP, DTLS, the media tick), so
//! there is no polling and one clock orders everything.
//!
//! Events go to `out` as one `key=value` line each (the CLI contract of `natter phone`).

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_ice::{AgentConfig, CandidateType, Event as IceEvent, IceState, InterfaceFilter};
use natter_ice_io::{
    spawn_receiver, spawn_receiver_until, Datagram, IceTransport, TransportConfig, TransportEvent,
};
use natter_media::WavRecorder;
use natter_sdp::Direction;
use natter_sip::ua::{CallId, UaConfig, UaEvent, UserAgent};
use natter_srtp::SdesKey;
use rand::{Rng, RngCore, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::audio::{CallSource, Clip, SourceSpec};
use crate::config::PhoneConfig;
use crate::media::{MediaConfig, MediaEvent, MediaSession, MediaStats, FRAME};
use crate::offer::{self, IceDescription, LocalMedia, Negotiated, SrtpMode, SDES_PROFILES};
use crate::sip_transport::{SipTransport, SipTransportKind};

/// RFC 5626 keep-alive period for UDP flows (§4.4.1: a random 80-100 % of 25 s).
const KEEPALIVE: Duration = Duration::from_secs(25);

/// A stable RFC 5626 instance URN for an AoR (same device, same URN across restarts).
fn instance_urn(aor: &str) -> String {
    // Two FNV-1a passes make 128 bits; shaped as a UUID (RFC 4122 layout, version 5 bits).
    let fnv = |seed: u64| {
        aor.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
    format!(
        "urn:uuid:{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Receiver tag of the SIP socket.
const TAG_SIP: usize = 0;
/// Each call gets a block of tags this wide.
const TAG_BLOCK: usize = 64;

/// Why the phone could not run.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// Socket or file trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Bad setting.
    #[error("{0}")]
    Config(String),
}

/// A call's media path.
enum Path {
    /// ICE over host/srflx/relay candidates.
    Ice(Box<IceTransport>),
    /// Plain RTP to the address in the peer's SDP (latched to where its RTP comes from).
    Plain {
        /// Ends the receiver threads when the call is gone.
        stop: Arc<AtomicBool>,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        local: SocketAddr,
        remote_rtp: Option<SocketAddr>,
        remote_rtcp: Option<SocketAddr>,
        latched: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// ICE gathering before our offer/answer can be written.
    Gathering,
    /// INVITE sent / 200 OK sent, waiting for the rest.
    Signalled,
    /// Media established (line printed).
    Established,
    /// Finished.
    Ended,
}

struct Call {
    sip: CallId,
    outgoing: bool,
    tag_base: usize,
    stage: Stage,
    path: Path,
    local: LocalMedia,
    offer_in: Option<Vec<u8>>,
    neg: Option<Negotiated>,
    media: Option<MediaSession>,
    source: Option<CallSource>,
    recorder: Option<WavRecorder>,
    started: Instant,
    established_at: Option<Instant>,
    hangup_at: Option<Instant>,
    dtmf_at: Option<Instant>,
    answered: bool,
    ending_reason: Option<String>,
    ok: bool,
    stats: MediaStats,
    ice_kind: Option<CandidateType>,
    /// The last SDP we sent (offer or answer): the base of re-offers and re-answers.
    last_sdp: String,
    /// DTLS datagrams written before ICE selected a pair.
    early: Vec<Vec<u8>>,
    /// Datagrams that arrived before the media session existed.
    early_in: Vec<(bool, SocketAddr, Vec<u8>)>,
    /// Type of the remote candidate of the selected pair.
    ice_remote_kind: Option<CandidateType>,
    hold_at: Option<Instant>,
    resume_at: Option<Instant>,
    /// The sound device, when the phone talks through one.
    mic: Option<natter_audio_device::Microphone>,
    speaker: Option<natter_audio_device::Speaker>,
}

/// The phone.
pub struct Phone<W: Write> {
    cfg: PhoneConfig,
    out: W,
    ua: UserAgent<SocketAddr>,
    sip: SipTransport,
    local_ip: IpAddr,
    tx: Sender<Datagram>,
    rx: Receiver<Datagram>,
    calls: HashMap<CallId, Call>,
    next_tag: usize,
    cert: Option<DtlsCertificate>,
    clip: Option<Clip>,
    registered: bool,
    registration_failed: bool,
    placed: bool,
    calls_done: usize,
    all_ok: bool,
    next_tick: Instant,
    rng: rand::rngs::StdRng,
    /// Next RFC 5626 keep-alive (STUN Binding to the registrar over the SIP flow).
    next_keepalive: Option<Instant>,
}

/// The address the kernel would use to reach `to` (no packet is sent).
fn route_ip(to: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if to.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(to).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// `host:port` of a SIP URI (`sip:user@host:port;params`), for direct calls.
fn uri_target(uri: &str) -> Option<SocketAddr> {
    let s = uri.strip_prefix("sip:").unwrap_or(uri);
    let s = s.split([';', '?', '>']).next()?;
    let host = s.rsplit_once('@').map(|(_, h)| h).unwrap_or(s);
    if let Ok(a) = host.parse::<SocketAddr>() {
        return Some(a);
    }
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 5060))
}

impl<W: Write> Phone<W> {
    /// Binds the SIP socket and prepares the user agent.
    pub fn new(cfg: PhoneConfig, out: W) -> Result<Self, PhoneError> {
        let (tx, rx) = mpsc::channel();
        let sip = match (cfg.transport, cfg.registrar) {
            (SipTransportKind::Tcp | SipTransportKind::Tls, Some(reg)) => {
                SipTransport::connect(cfg.transport, reg, &cfg.tls, tx.clone(), TAG_SIP)
                    .map_err(|e| PhoneError::Config(format!("cannot reach the registrar: {e}")))?
            }
            _ => {
                let s = UdpSocket::bind(cfg.listen)?;
                spawn_receiver(&s, TAG_SIP, tx.clone())?;
                SipTransport::Udp(s)
            }
        };
        let bound = sip.local_addr()?;
        let target = cfg
            .registrar
            .or_else(|| cfg.call.as_deref().and_then(uri_target));
        let local_ip = if bound.ip().is_unspecified() {
            target
                .and_then(route_ip)
                .or_else(|| {
                    natter_ice_io::netif::host_addresses(&InterfaceFilter::default())
                        .first()
                        .map(|(_, ip)| *ip)
                })
                .unwrap_or(IpAddr::from([127, 0, 0, 1]))
        } else {
            bound.ip()
        };
        let local = SocketAddr::new(local_ip, bound.port());
        let (user, domain, password) = match &cfg.account {
            Some(a) => (a.user.clone(), a.domain.clone(), a.password.clone()),
            None => ("natter".to_owned(), local_ip.to_string(), None),
        };
        let mut rng = rand::rngs::StdRng::from_entropy();
        let outbound = target.unwrap_or(local);
        let mut ua = UserAgent::new(UaConfig {
            user,
            domain,
            display: None,
            password,
            local: local.to_string(),
            transport: cfg.transport.via().into(),
            reliable: sip.reliable(),
            outbound,
            timers: Default::default(),
            seed: rng.gen(),
        });
        ua.answer_reinvites_manually(true);
        if let (Some(a), Some(_)) = (&cfg.account, cfg.registrar) {
            ua.set_outbound(&instance_urn(&a.aor()), 1);
        }
        let cert = match cfg.srtp {
            SrtpMode::Dtls => Some(
                DtlsCertificate::generate()
                    .map_err(|e| PhoneError::Config(format!("DTLS certificate: {e}")))?,
            ),
            _ => None,
        };
        let clip = match &cfg.source {
            SourceSpec::File(p) => Some(Clip::load(p).map_err(PhoneError::Config)?),
            _ => None,
        };
        let now = Instant::now();
        Ok(Phone {
            cfg,
            out,
            ua,
            sip,
            local_ip,
            tx,
            rx,
            calls: HashMap::new(),
            next_tag: TAG_BLOCK,
            cert,
            clip,
            registered: false,
            registration_failed: false,
            placed: false,
            calls_done: 0,
            all_ok: true,
            next_tick: now + FRAME,
            rng,
            next_keepalive: None,
        })
    }

    fn emit(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    /// Runs until the work asked for is done; returns whether every call went well.
    pub fn run(mut self) -> Result<bool, PhoneError> {
        let now = Instant::now();
        if self.cfg.registrar.is_some() && self.cfg.account.is_some() {
            self.ua.register(now, self.cfg.register_expires);
        }
        let mut unregister_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if self.ua.next_timeout().is_some_and(|t| t <= now) {
                self.ua.on_timer(now);
            }
            self.pump_sip(now);
            self.keepalive(now);
            self.maybe_place_call(now);
            self.service_calls(now);
            if now >= self.next_tick {
                self.tick(now);
                self.next_tick += FRAME;
                if now > self.next_tick + Duration::from_millis(200) {
                    // Far behind (suspended): restart the clock instead of bursting.
                    self.next_tick = now + FRAME;
                }
            }
            self.pump_sip(now);
            if let Some(d) = unregister_deadline {
                if !self.registered || now >= d {
                    return Ok(self.all_ok);
                }
            } else if self.finished() {
                if self.registered {
                    self.ua.register(now, 0);
                    self.pump_sip(now);
                    unregister_deadline = Some(now + Duration::from_secs(2));
                } else {
                    return Ok(self.all_ok);
                }
            }
            let deadline = self.next_deadline(now);
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(d) => {
                    self.on_datagram(Instant::now(), d);
                    // Drain what else is queued before timers run again.
                    while let Ok(d) = self.rx.try_recv() {
                        self.on_datagram(Instant::now(), d);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(self.all_ok),
            }
        }
    }

    /// Whether the phone has done what it was asked.
    fn finished(&self) -> bool {
        if self.registration_failed && self.calls.is_empty() {
            return true;
        }
        let active = self.calls.values().any(|c| c.stage != Stage::Ended);
        if active {
            return false;
        }
        if self.cfg.call.is_some() {
            return self.placed;
        }
        if self.cfg.once {
            return self.calls_done > 0;
        }
        false
    }

    /// RFC 5626 §4.4.1: a STUN Binding request every ~25 s keeps the NAT binding of the
    /// SIP flow open, so the registrar can still reach us.
    fn keepalive(&mut self, now: Instant) {
        let Some(registrar) = self.cfg.registrar else {
            return;
        };
        if !self.registered {
            self.next_keepalive = None;
            return;
        }
        let due = *self.next_keepalive.get_or_insert(
            now + KEEPALIVE - Duration::from_millis(u64::from(self.rng.gen::<u16>() % 5000)),
        );
        if now < due {
            return;
        }
        let mut buf = Vec::with_capacity(28);
        let mut tid = [0u8; 12];
        self.rng.fill_bytes(&mut tid);
        let mut w = natter_stun::MessageWriter::new(
            &mut buf,
            natter_stun::Method::BINDING,
            natter_stun::Class::Request,
            natter_stun::TransactionId(tid),
        );
        if self.sip.reliable() {
            // RFC 5626 §4.4.1: a CRLFCRLF ping on connection-oriented flows.
            self.sip.send(registrar, b"\r\n\r\n");
        } else if w.finish().is_ok() {
            self.sip.send(registrar, &buf);
        }
        self.next_keepalive = Some(now + KEEPALIVE);
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let mut d = self.next_tick;
        if let Some(k) = self.next_keepalive {
            d = d.min(k);
        }
        if let Some(t) = self.ua.next_timeout() {
            d = d.min(t);
        }
        for c in self.calls.values() {
            if let Path::Ice(t) = &c.path {
                if let Some(x) = t.poll_timeout() {
                    d = d.min(x);
                }
            }
            if let Some(m) = &c.media {
                if let Some(x) = m.poll_timeout() {
                    d = d.min(x);
                }
            }
        }
        d.max(now)
    }

    fn pump_sip(&mut self, now: Instant) {
        for _ in 0..64 {
            let mut any = false;
            while let Some((to, bytes)) = self.ua.poll_transmit() {
                any = true;
                self.sip.send(to, &bytes);
            }
            while let Some(ev) = self.ua.poll_event() {
                any = true;
                self.on_ua_event(now, ev);
            }
            if !any {
                break;
            }
        }
    }

    fn on_datagram(&mut self, now: Instant, d: Datagram) {
        if d.tag == TAG_SIP {
            // RFC 5626 keep-alive answers (CRLF, STUN) are not SIP messages.
            if d.data.iter().all(|b| *b == b'\r' || *b == b'\n')
                || natter_stun::classify(&d.data) == natter_stun::PacketKind::Stun
            {
                return;
            }
            self.ua.handle(now, d.from, &d.data);
            self.pump_sip(now);
            return;
        }
        let Some(call) = self
            .calls
            .values_mut()
            .find(|c| d.tag >= c.tag_base && d.tag < c.tag_base + TAG_BLOCK)
        else {
            return;
        };
        let app = match &mut call.path {
            Path::Ice(t) => t.handle_datagram(now, d.tag - call.tag_base, d.from, &d.data),
            Path::Plain {
                remote_rtp,
                remote_rtcp,
                latched,
                ..
            } => {
                // Symmetric RTP: follow the peer's real source (it may be behind a NAT
                // that rewrote what its SDP says).
                if d.tag == call.tag_base && !*latched && call.media.is_some() {
                    let is_rtp = matches!(
                        natter_rtp::demux::classify(&d.data),
                        natter_rtp::demux::Kind::Rtp | natter_rtp::demux::Kind::Dtls
                    );
                    if is_rtp && *remote_rtp != Some(d.from) {
                        if *remote_rtcp == *remote_rtp {
                            *remote_rtcp = Some(d.from);
                        }
                        *remote_rtp = Some(d.from);
                    }
                    if is_rtp {
                        *latched = true;
                    }
                }
                Some((d.from, d.data))
            }
        };
        let rtcp_port = matches!(call.path, Path::Plain { .. }) && d.tag == call.tag_base + 1;
        match (app, call.media.as_mut()) {
            (Some((from, data)), Some(m)) if rtcp_port => m.handle_rtcp_datagram(now, from, &data),
            (Some((from, data)), Some(m)) => m.handle_datagram(now, from, &data),
            // The answer's DTLS or RTP can beat the SIP answer: keep a few for the session.
            (Some((from, data)), None) if call.early_in.len() < 16 => {
                call.early_in.push((rtcp_port, from, data));
            }
            _ => {}
        }
    }

    fn alloc_tags(&mut self) -> usize {
        let t = self.next_tag;
        self.next_tag += TAG_BLOCK;
        t
    }

    fn uses_ice(&self) -> bool {
        self.cfg.ice || !self.cfg.stun.is_empty() || self.cfg.turn.is_some()
    }

    /// Binds the media path for a new call.
    fn open_path(
        &mut self,
        now: Instant,
        ice: bool,
        controlling: bool,
        tag_base: usize,
    ) -> Result<Path, PhoneError> {
        if ice {
            let hosts = if self.cfg.listen.ip().is_unspecified() {
                natter_ice_io::netif::host_addresses(&InterfaceFilter::default())
            } else {
                vec![("listen".to_owned(), self.cfg.listen.ip())]
            };
            let mut t = IceTransport::bind(
                TransportConfig {
                    agent: AgentConfig {
                        controlling,
                        stun_servers: self.cfg.stun.clone(),
                        seed: Some(self.rng.gen()),
                        ..AgentConfig::default()
                    },
                    hosts,
                    turn: self.cfg.turn.clone(),
                    relay_only: false,
                },
                now,
            )?;
            t.start(now, &self.tx, tag_base)?;
            return Ok(Path::Ice(Box::new(t)));
        }
        // An even RTP port and the next one for RTCP (RFC 3550 §11).
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..50 {
            let p = 20000 + 2 * (self.rng.gen::<u16>() % 5000);
            let Ok(rtp) = UdpSocket::bind((self.local_ip, p)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind((self.local_ip, p + 1)) else {
                continue;
            };
            spawn_receiver_until(&rtp, tag_base, self.tx.clone(), stop.clone())?;
            spawn_receiver_until(&rtcp, tag_base + 1, self.tx.clone(), stop.clone())?;
            let local = rtp.local_addr()?;
            return Ok(Path::Plain {
                stop,
                rtp,
                rtcp,
                local,
                remote_rtp: None,
                remote_rtcp: None,
                latched: false,
            });
        }
        Err(PhoneError::Config("no free RTP port pair".into()))
    }

    fn local_media(&mut self, path: &Path) -> LocalMedia {
        let sdes_keys = if self.cfg.srtp == SrtpMode::Sdes || self.cfg.srtp == SrtpMode::Off {
            SDES_PROFILES
                .iter()
                .map(|p| SdesKey::generate(*p, &mut self.rng))
                .collect()
        } else {
            Vec::new()
        };
        let addr = match path {
            Path::Plain { local, .. } => *local,
            Path::Ice(t) => t
                .local_addrs()
                .first()
                .copied()
                .unwrap_or_else(|| SocketAddr::new(self.local_ip, 9)),
        };
        LocalMedia {
            addr,
            codecs: self.cfg.codecs.clone(),
            srtp: self.cfg.srtp,
            srtp_required: self.cfg.srtp_required,
            sdes_keys,
            fingerprint: self.cert.as_ref().map(|c| c.fingerprint_sha256()),
            ice: None,
            direction: Direction::SendRecv,
            session_id: self.rng.gen::<u32>().into(),
            version: 1,
        }
    }

    fn new_call(
        &mut self,
        now: Instant,
        sip: CallId,
        outgoing: bool,
        ice: bool,
        offer_in: Option<Vec<u8>>,
    ) -> Result<(), PhoneError> {
        let tag_base = self.alloc_tags();
        let path = self.open_path(now, ice, outgoing, tag_base)?;
        let local = self.local_media(&path);
        let stage = if ice {
            Stage::Gathering
        } else {
            Stage::Signalled
        };
        self.calls.insert(
            sip,
            Call {
                sip,
                outgoing,
                tag_base,
                stage,
                path,
                local,
                offer_in,
                neg: None,
                media: None,
                source: None,
                recorder: None,
                started: now,
                established_at: None,
                hangup_at: None,
                dtmf_at: None,
                answered: false,
                ending_reason: None,
                ok: false,
                stats: MediaStats::default(),
                ice_kind: None,
                last_sdp: String::new(),
                early: Vec::new(),
                early_in: Vec::new(),
                ice_remote_kind: None,
                hold_at: None,
                resume_at: None,
                mic: None,
                speaker: None,
            },
        );
        Ok(())
    }

    fn maybe_place_call(&mut self, now: Instant) {
        if self.placed {
            return;
        }
        let Some(uri) = self.cfg.call.clone() else {
            return;
        };
        let needs_reg = self.cfg.registrar.is_some() && self.cfg.account.is_some();
        if needs_reg && !self.registered {
            return;
        }
        self.placed = true;
        // The UA core gives the handle when the INVITE goes out; a provisional key until then.
        let placeholder = u64::MAX - 1;
        let ice = self.uses_ice();
        if let Err(e) = self.new_call(now, placeholder, true, ice, None) {
            eprintln!("natter phone: cannot call {uri}: {e}");
            self.all_ok = false;
            self.calls_done += 1;
            return;
        }
        if !ice {
            self.signal(now, placeholder);
        }
    }

    /// Writes our offer (outgoing) or answer (incoming) once ICE gathering is done.
    fn signal(&mut self, now: Instant, key: CallId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Path::Ice(t) = &call.path {
            let agent = t.agent();
            let creds = agent.local_credentials();
            let cands: Vec<String> = agent
                .local_candidates()
                .iter()
                .map(|c| c.to_sdp_value())
                .collect();
            if let Some(def) = agent.default_candidate(1) {
                call.local.addr = def.addr;
            }
            call.local.ice = Some(IceDescription {
                ufrag: creds.ufrag.clone(),
                pwd: creds.pwd.clone(),
                candidates: cands,
            });
        }
        call.stage = Stage::Signalled;
        if call.outgoing {
            let sdp = offer::create_offer(&call.local);
            call.last_sdp = sdp.clone();
            let uri = self.cfg.call.clone().unwrap_or_default();
            let Some(mut c) = self.calls.remove(&key) else {
                return;
            };
            let id = self.ua.invite(now, &uri, Some(sdp.into_bytes()));
            c.sip = id;
            self.calls.insert(id, c);
            return;
        }
        let offer_in = call.offer_in.clone().unwrap_or_default();
        match offer::answer_offer(&offer_in, &call.local) {
            Ok((sdp, neg)) => {
                call.last_sdp = sdp.clone();
                let sip = call.sip;
                self.ua.answer(now, sip, 200, Some(sdp.into_bytes()));
                call.answered = true;
                self.start_media(now, key, neg);
            }
            Err(e) => {
                eprintln!("natter phone: rejecting the offer with 488: {e}");
                let sip = call.sip;
                self.ua.reject(now, sip, 488);
                self.end_call(now, key, &format!("not-acceptable ({e})"), false);
            }
        }
    }

    fn start_media(&mut self, now: Instant, key: CallId, neg: Negotiated) {
        let seed = self.rng.gen();
        let ssrc = self.rng.next_u32();
        let seq = self.rng.gen();
        let ts = self.rng.next_u32();
        let cname = format!("natter-{:08x}", self.rng.next_u32());
        let cert = self.cert.clone();
        let media_timeout = self.cfg.media_timeout;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Path::Plain {
            remote_rtp,
            remote_rtcp,
            ..
        } = &mut call.path
        {
            *remote_rtp = Some(neg.remote_rtp);
            *remote_rtcp = Some(if neg.rtcp_mux {
                neg.remote_rtp
            } else {
                neg.remote_rtcp
            });
        }
        if let (Path::Ice(t), Some(ice)) = (&mut call.path, &neg.ice) {
            let agent = t.agent_mut();
            agent.set_remote_credentials(&ice.ufrag, &ice.pwd);
            if ice.lite {
                agent.set_remote_lite(true);
            }
            let mut addrs = Vec::new();
            for c in &ice.candidates {
                match natter_ice::Candidate::from_sdp(c) {
                    Ok(c) if c.component == 1 => {
                        addrs.push(c.addr);
                        let _ = agent.add_remote_candidate(c);
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("natter phone: skipping remote candidate ({e}): {c}"),
                }
            }
            agent.end_of_remote_candidates();
            for a in addrs {
                t.permit_remote(now, a);
            }
            t.handle_timeout(now);
        }
        match MediaSession::new(
            MediaConfig {
                neg: neg.clone(),
                ssrc,
                cname,
                seq,
                ts,
                cert,
                opus_fec: true,
                opus_dtx: self.cfg.opus_dtx,
                seed,
                ntp_now: crate::report::ntp_now(),
                defer_dtls_client: !call.outgoing && matches!(call.path, Path::Plain { .. }),
            },
            now,
        ) {
            Ok(mut m) => {
                m.set_silence_limit(media_timeout);
                for (rtcp_port, from, data) in std::mem::take(&mut call.early_in) {
                    if rtcp_port {
                        m.handle_rtcp_datagram(now, from, &data);
                    } else {
                        m.handle_datagram(now, from, &data);
                    }
                }
                call.neg = Some(neg);
                call.media = Some(m);
            }
            Err(e) => {
                eprintln!("natter phone: media setup failed: {e}");
                let sip = call.sip;
                self.ua.bye(now, sip);
                self.end_call(now, key, &format!("media-setup-failed ({e})"), false);
            }
        }
    }

    fn on_ua_event(&mut self, now: Instant, ev: UaEvent) {
        match ev {
            UaEvent::Registration {
                registered, code, ..
            } => {
                if registered && !self.registered {
                    let aor = self
                        .cfg
                        .account
                        .as_ref()
                        .map(|a| a.aor())
                        .unwrap_or_default();
                    self.emit(&format!("registered aor={aor}"));
                } else if !registered && code >= 300 && !self.registered {
                    self.emit(&format!("registration-failed code={code}"));
                    self.registration_failed = true;
                    self.all_ok = false;
                    if self.cfg.call.is_some() {
                        self.placed = true;
                    }
                }
                self.registered = registered;
            }
            UaEvent::IncomingCall { call, from, body } => {
                self.emit(&format!("incoming from={}", from.replace(' ', "")));
                if !self.cfg.answer {
                    self.ua.reject(now, call, 486);
                    return;
                }
                if body.is_empty() {
                    eprintln!("natter phone: INVITE without an offer is not supported; 488");
                    self.ua.reject(now, call, 488);
                    return;
                }
                self.direct_next_hop(call);
                let ice = self.uses_ice()
                    || offer::parse(&body).is_ok_and(|sd| sd.ice_ufrag(0).is_some());
                self.ua.answer(now, call, 180, None);
                if let Err(e) = self.new_call(now, call, false, ice, Some(body)) {
                    eprintln!("natter phone: cannot take the call: {e}");
                    self.ua.reject(now, call, 500);
                    return;
                }
                if !ice {
                    self.signal(now, call);
                }
            }
            UaEvent::CallRinging { call, body, .. } => {
                self.emit("ringing");
                if !body.is_empty() {
                    self.on_answer_sdp(now, call, &body);
                }
            }
            UaEvent::CallAnswered { call, body } => {
                self.direct_next_hop(call);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.answered = true;
                }
                if self.calls.get(&call).is_some_and(|c| c.media.is_none()) {
                    self.on_answer_sdp(now, call, &body);
                }
            }
            UaEvent::CallAck { call } => {
                // The offerer has our answer now: start DTLS if we are its client.
                if let Some(m) = self.calls.get_mut(&call).and_then(|c| c.media.as_mut()) {
                    m.start_dtls(now);
                }
            }
            UaEvent::CallProceeding { .. } => {}
            UaEvent::CallClosed { call, code } => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.stage == Stage::Ended {
                    return;
                }
                let (reason, ok) = if c.ending_reason.is_some() {
                    (c.ending_reason.clone().unwrap_or_default(), c.ok)
                } else if code == 200 && c.stage == Stage::Established {
                    ("remote-hangup".to_owned(), true)
                } else if code == 200 {
                    ("remote-hangup-before-media".to_owned(), false)
                } else {
                    (format!("rejected code={code}"), false)
                };
                self.end_call(now, call, &reason, ok);
            }
            UaEvent::InDialogRequest { call, method, body } => {
                if method == "INVITE" && !body.is_empty() {
                    self.on_reinvite(now, call, &body);
                } else if method == "INFO" {
                    if let Some(d) = dtmf_from_info(&body) {
                        self.emit(&format!("dtmf digit={d}"));
                    }
                }
            }
            UaEvent::Response { .. }
            | UaEvent::RequestFailed { .. }
            | UaEvent::MessageReceived { .. } => {}
        }
    }

    /// Without a proxy, in-dialog requests go to the peer's Contact (its remote target).
    fn direct_next_hop(&mut self, call: CallId) {
        if self.cfg.registrar.is_some() {
            return;
        }
        if let Some(hop) = self.ua.remote_target(call).as_deref().and_then(uri_target) {
            self.ua.set_next_hop(call, hop);
        }
    }

    /// A re-INVITE with an offer: follow the peer's direction (hold / resume) and answer
    /// with our description, its direction mirrored (RFC 3264 §8.4).
    fn on_reinvite(&mut self, now: Instant, call: CallId, body: &[u8]) {
        let Some(c) = self.calls.get_mut(&call) else {
            self.ua.answer_reinvite(now, call, 481, None);
            return;
        };
        let dir = offer::parse(body).ok().and_then(|sd| {
            sd.media
                .iter()
                .find(|m| m.media == "audio" && m.port != 0)
                .map(|m| Direction::answer(m.direction(&sd), Direction::SendRecv))
        });
        let Some(dir) = dir else {
            self.ua.answer_reinvite(now, call, 488, None);
            return;
        };
        let client = c.neg.as_ref().and_then(|n| match &n.keying {
            offer::Keying::Dtls(p) => Some(p.client),
            _ => None,
        });
        let Some(answer) = offer::with_direction(&c.last_sdp, dir, client) else {
            self.ua.answer_reinvite(now, call, 500, None);
            return;
        };
        c.last_sdp = answer.clone();
        if let Some(media) = &mut c.media {
            media.set_direction(dir);
        }
        self.ua
            .answer_reinvite(now, call, 200, Some(answer.into_bytes()));
        let held = !dir.sends() || !dir.receives();
        self.emit(if held {
            "held by=remote"
        } else {
            "resumed by=remote"
        });
    }

    /// Puts the call on hold (`hold`) or resumes it with a re-INVITE.
    fn local_hold(&mut self, now: Instant, call: CallId, hold: bool) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let dir = if hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let client = c.neg.as_ref().and_then(|n| match &n.keying {
            offer::Keying::Dtls(p) => Some(p.client),
            _ => None,
        });
        let Some(sdp) = offer::with_direction(&c.last_sdp, dir, client) else {
            return;
        };
        c.last_sdp = sdp.clone();
        if let Some(m) = &mut c.media {
            m.set_direction(dir);
        }
        let sip = c.sip;
        if self.ua.reinvite(now, sip, sdp.into_bytes()).is_some() {
            self.emit(if hold {
                "held by=local"
            } else {
                "resumed by=local"
            });
        }
    }

    fn on_answer_sdp(&mut self, now: Instant, call: CallId, body: &[u8]) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        match offer::read_answer(body, &c.local) {
            Ok(neg) => self.start_media(now, call, neg),
            Err(e) => {
                eprintln!("natter phone: unusable answer: {e}");
                self.ua.bye(now, call);
                self.end_call(now, call, &format!("not-acceptable ({e})"), false);
            }
        }
    }

    /// Runs ICE/media timers, flushes media output, prints `established`, hangs up.
    fn service_calls(&mut self, now: Instant) {
        let keys: Vec<CallId> = self.calls.keys().copied().collect();
        for key in keys {
            let mut gathered = false;
            let mut ice_failed = None;
            let mut events = Vec::new();
            {
                let Some(call) = self.calls.get_mut(&key) else {
                    continue;
                };
                if call.stage == Stage::Ended {
                    continue;
                }
                if let Path::Ice(t) = &mut call.path {
                    if t.poll_timeout().is_some_and(|x| x <= now) {
                        t.handle_timeout(now);
                    }
                    while let Some(ev) = t.poll_event() {
                        let ms = now.saturating_duration_since(call.started).as_millis();
                        match &ev {
                            TransportEvent::Ice(e) => match &**e {
                                IceEvent::StateChanged(st) => {
                                    eprintln!("natter phone: +{ms} ms ice state {st:?}");
                                }
                                IceEvent::SelectedPair { local, remote, .. } => eprintln!(
                                    "natter phone: +{ms} ms ice selected {} {} -> {} {}",
                                    local.kind, local.addr, remote.kind, remote.addr
                                ),
                                IceEvent::GatheringComplete => {
                                    eprintln!("natter phone: +{ms} ms ice gathering complete");
                                }
                                _ => {}
                            },
                            TransportEvent::RelayFailed(_) => {}
                        }
                        match ev {
                            TransportEvent::Ice(ev) => match *ev {
                                IceEvent::GatheringComplete => gathered = true,
                                IceEvent::StateChanged(IceState::Failed) => {
                                    ice_failed = Some("ice-failed".to_owned());
                                }
                                IceEvent::SelectedPair { local, remote, .. } => {
                                    call.ice_kind = Some(local.kind);
                                    call.ice_remote_kind = Some(remote.kind);
                                }
                                _ => {}
                            },
                            TransportEvent::RelayFailed(w) => eprintln!("natter phone: {w}"),
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
                    .calls
                    .get(&key)
                    .is_some_and(|c| c.stage == Stage::Gathering)
            {
                self.signal(now, key);
            }
            for ev in events {
                match ev {
                    MediaEvent::Dtmf(d) => self.emit(&format!("dtmf digit={d}")),
                    MediaEvent::KeyingFailed(why) => {
                        eprintln!("natter phone: {why}");
                        self.hangup(now, key, "dtls-failed", false);
                    }
                    MediaEvent::PeerSilent => self.hangup(now, key, "media-timeout", false),
                    MediaEvent::Bye | MediaEvent::Secured { .. } => {}
                }
            }
            if let Some(why) = ice_failed {
                self.hangup(now, key, &why, false);
            }
            self.check_established(now, key);
            let Some(call) = self.calls.get(&key) else {
                continue;
            };
            if call.stage == Stage::Ended {
                continue;
            }
            if call.stage != Stage::Established && now >= call.started + self.cfg.setup_timeout {
                self.hangup(now, key, "setup-timeout", false);
                continue;
            }
            if call.hold_at.is_some_and(|t| now >= t) {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.hold_at = None;
                }
                self.local_hold(now, key, true);
                continue;
            }
            if call.resume_at.is_some_and(|t| now >= t) {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.resume_at = None;
                }
                self.local_hold(now, key, false);
                continue;
            }
            if call.hangup_at.is_some_and(|t| now >= t)
                && !call.media.as_ref().is_some_and(|m| m.dtmf_pending())
            {
                self.hangup(now, key, "local-hangup", true);
                continue;
            }
            if call.dtmf_at.is_some_and(|t| now >= t) {
                let digits = self.cfg.dtmf.clone().unwrap_or_default();
                let Some(call) = self.calls.get_mut(&key) else {
                    continue;
                };
                call.dtmf_at = None;
                let rfc4733 = call.neg.as_ref().is_some_and(|n| n.dtmf_send_pt.is_some());
                if rfc4733 {
                    if let Some(m) = &mut call.media {
                        m.send_dtmf(&digits);
                    }
                } else {
                    let sip = call.sip;
                    for d in digits.chars() {
                        let body = format!("Signal={d}\r\nDuration=160\r\n").into_bytes();
                        self.ua.info(now, sip, "application/dtmf-relay", body);
                    }
                }
            }
        }
        self.calls
            .retain(|_, c| c.stage != Stage::Ended || c.media.is_some());
    }

    fn check_established(&mut self, now: Instant, key: CallId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.stage != Stage::Signalled || !call.answered {
            return;
        }
        let Some(m) = &call.media else { return };
        let remote = match &call.path {
            Path::Ice(t) => {
                if !t.is_connected() {
                    return;
                }
                t.selected().map(|(_, r)| r.addr)
            }
            Path::Plain { remote_rtp, .. } => *remote_rtp,
        };
        if !m.is_secured() {
            return;
        }
        let Some(remote) = remote else { return };
        let ice = match (&call.path, call.ice_kind) {
            (Path::Plain { .. }, _) => "none".to_owned(),
            (Path::Ice(t), kind) => kind
                .or_else(|| t.selected().map(|(l, _)| l.kind))
                .map(|k| k.to_string())
                .unwrap_or_else(|| "host".into()),
        };
        let line = crate::report::established_line(
            m,
            &ice,
            remote,
            now.saturating_duration_since(call.started).as_millis(),
            call.ice_remote_kind,
        );
        let rate = m.sample_rate();
        call.stage = Stage::Established;
        call.established_at = Some(now);
        if call.outgoing {
            call.hangup_at = Some(now + self.cfg.duration);
        }
        if let Some((hold, resume)) = self.cfg.hold {
            call.hold_at = Some(now + hold);
            call.resume_at = Some(now + resume);
        }
        if self.cfg.dtmf.as_deref().is_some_and(|d| !d.is_empty()) {
            call.dtmf_at = Some(now + Duration::from_millis(500));
        }
        call.source = Some(CallSource::new(&self.cfg.source, self.clip.as_ref(), rate));
        if let Some(name) = &self.cfg.device {
            let dev = natter_audio_device::DeviceConfig {
                name: name.clone(),
                rate,
                frame_samples: (rate / 50) as usize,
            };
            match (
                natter_audio_device::Microphone::open(&dev),
                natter_audio_device::Speaker::open(&dev),
            ) {
                (Ok(m), Ok(s)) => {
                    call.mic = Some(m);
                    call.speaker = Some(s);
                }
                (Err(e), _) | (_, Err(e)) => eprintln!("natter phone: sound device {name}: {e}"),
            }
        }
        if let Some(p) = &self.cfg.record {
            match crate::audio::recorder(p, rate) {
                Ok(r) => call.recorder = Some(r),
                Err(e) => eprintln!("natter phone: cannot record: {e}"),
            }
        }
        self.emit(&line);
    }

    /// The 20 ms media clock: one frame out and one frame played per active call.
    fn tick(&mut self, now: Instant) {
        let mut frame = Vec::with_capacity(960);
        let mut played = Vec::with_capacity(960);
        for call in self.calls.values_mut() {
            if call.stage == Stage::Ended {
                continue;
            }
            let Some(m) = &mut call.media else { continue };
            let n = m.samples_per_frame();
            frame.clear();
            frame.resize(n, 0);
            if let Some(src) = &mut call.source {
                src.fill(&mut frame);
            }
            if let Some(mic) = &call.mic {
                // The newest captured frame; older ones are late by now.
                let mut last = None;
                while let Some(f) = mic.try_frame() {
                    last = Some(f);
                }
                if let Some(f) = last.filter(|f| f.len() == frame.len()) {
                    frame.copy_from_slice(&f);
                }
            }
            m.send_audio(now, &frame);
            played.clear();
            m.play(now, &mut played);
            if let Some(sp) = &call.speaker {
                sp.play(&played);
            }
            if call.stage == Stage::Established {
                if let Some(r) = &mut call.recorder {
                    if r.write(&played).is_err() {
                        call.recorder = None;
                    }
                }
            }
            flush_media(call, now);
        }
    }

    fn hangup(&mut self, now: Instant, key: CallId, reason: &str, ok: bool) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.stage == Stage::Ended {
            return;
        }
        call.ending_reason = Some(reason.to_owned());
        call.ok = ok;
        if let Some(m) = &mut call.media {
            m.bye(now);
        }
        flush_media(call, now);
        let sip = call.sip;
        if call.answered || call.outgoing && call.stage == Stage::Established {
            self.ua.bye(now, sip);
        } else if call.outgoing {
            self.ua.cancel(now, sip);
        } else {
            self.ua.reject(now, sip, 480);
        }
        self.end_call(now, key, reason, ok);
    }

    fn end_call(&mut self, _now: Instant, key: CallId, reason: &str, ok: bool) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.stage == Stage::Ended {
            return;
        }
        let ok = ok && call.stage == Stage::Established;
        call.stage = Stage::Ended;
        if let Some(r) = call.recorder.take() {
            let _ = r.finalize();
        }
        match &mut call.path {
            Path::Ice(t) => t.close(),
            Path::Plain { stop, .. } => stop.store(true, Ordering::Relaxed),
        }
        let stats = call.media.as_ref().map(|m| m.stats()).unwrap_or_default();
        call.stats = stats.clone();
        call.media = None;
        call.mic = None;
        call.speaker = None;
        self.calls_done += 1;
        if !ok {
            self.all_ok = false;
        }
        self.emit(&format!("ended reason={reason}"));
        eprintln!(
            "natter phone: call ended ({reason}); dropped: malformed={} unauthenticated={} unknown_pt={}; jitter buffer: {:?}",
            stats.rx_malformed, stats.rx_unauthenticated, stats.rx_unknown_pt, stats.jitter
        );
        self.emit(&crate::report::stats_line(&stats));
    }
}

/// Sends what the call's media session queued, on its path.
fn flush_media(call: &mut Call, now: Instant) {
    if let Path::Ice(t) = &mut call.path {
        if !call.early.is_empty() && t.is_connected() {
            for d in std::mem::take(&mut call.early) {
                t.send(now, &d);
            }
        }
    }
    let Some(m) = &mut call.media else { return };
    while let Some(o) = m.poll_transmit() {
        match &mut call.path {
            Path::Ice(t) => {
                // DTLS flights written before ICE has a pair wait for it (a lost first
                // flight would cost a whole retransmission timeout); RTP does not.
                let is_rtp = matches!(
                    natter_rtp::demux::classify(&o.data),
                    natter_rtp::demux::Kind::Rtp | natter_rtp::demux::Kind::Rtcp
                );
                if !t.send(now, &o.data) && !is_rtp && call.early.len() < 16 {
                    call.early.push(o.data);
                }
            }
            Path::Plain {
                rtp,
                rtcp,
                remote_rtp,
                remote_rtcp,
                ..
            } => {
                if o.rtcp && *remote_rtcp != *remote_rtp {
                    if let Some(to) = remote_rtcp {
                        let _ = rtcp.send_to(&o.data, *to);
                    }
                } else if let Some(to) = remote_rtp {
                    let _ = rtp.send_to(&o.data, *to);
                }
            }
        }
    }
}

/// The digit of an INFO `application/dtmf-relay` body (`Signal=5`).
fn dtmf_from_info(body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Signal="))
        .and_then(|v| v.trim().chars().next())
}
