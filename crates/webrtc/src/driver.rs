//! The loop behind `natter webrtc`: natter-ice-io's [`IceTransport`] (host sockets, STUN,
//! TURN, receiver threads) plus the sans-IO [`PeerConnection`], with JSON signaling on
//! stdin/stdout.
//!
//! One thread runs the loop and owns everything; receiver threads (one per socket, from
//! natter-ice-io) and a stdin reader feed it through one channel, so there is one clock
//! and no locking. stdout carries only JSON lines (signaling and events); logs go to
//! stderr through `tracing`.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_ice::{AgentConfig, CandidateType, Event as IceEvent, IceState};
use natter_ice_io::{Datagram, IceTransport, TransportConfig, TransportEvent, TurnServer};
use serde_json::json;

use crate::dcep::ChannelType;
use crate::signal::{self, Signal};
use crate::{Config, PcEvent, PeerConnection, SignalingRole};

/// Receiver tag of stdin lines (sockets use 0..n).
const STDIN_TAG: usize = usize::MAX;
/// Receiver tag of stdin's end.
const STDIN_EOF_TAG: usize = usize::MAX - 1;
/// Receiver tag of the mDNS socket.
const MDNS_TAG: usize = usize::MAX - 2;
/// Label of the channel we open as offerer.
pub const DEFAULT_LABEL: &str = "natter";
/// Remote candidates kept before the remote description arrives.
const MAX_EARLY_CANDIDATES: usize = 64;
/// Most inputs taken from the channel before the PeerConnection is pumped.
const MAX_INPUT_BATCH: usize = 64;

/// What `natter webrtc` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Offer or answer.
    pub role: SignalingRole,
    /// STUN servers.
    pub stun: Vec<SocketAddr>,
    /// A TURN server for a relayed candidate.
    pub turn: Option<TurnServer>,
    /// Audio transceiver.
    pub audio: bool,
    /// Accept (and with `echo`, return) the peer's VP8 video.
    pub video: bool,
    /// Data channels.
    pub data: bool,
    /// Echo text and audio back.
    pub echo: bool,
    /// Offerer: label of the channel to open.
    pub label: String,
    /// Give up when not connected after this long.
    pub connect_timeout: Duration,
    /// DTLS engine.
    pub dtls: crate::DtlsImpl,
    /// Host addresses to gather on; empty: every usable interface.
    pub bind: Vec<std::net::IpAddr>,
    /// WAV file to send (with `audio`); without it and without `echo` a tone is sent.
    pub play: Option<std::path::PathBuf>,
    /// WAV file to record received audio to.
    pub record: Option<std::path::PathBuf>,
    /// Resolve the peer's `.local` (mDNS) candidates on the link; without, they are left
    /// to peer-reflexive discovery.
    pub mdns: bool,
    /// Print a `stats` event this often (besides on `{"cmd":"stats"}`).
    pub stats_interval: Option<Duration>,
    /// Video of our own to send (with `video`): received video is then decoded, not echoed.
    pub send_video: Option<VideoInput>,
    /// y4m file to record the peer's decoded video to (with `video`).
    pub record_video: Option<std::path::PathBuf>,
    /// Preferred video codec (offered first; chosen when the peer offers it).
    pub video_codec: crate::video::Codec,
    /// Built-in sender: once our channel opens, push this much to an echoing peer and
    /// report a `bench` event (the library's rate, without JSON per message).
    pub bench: Option<BenchSend>,
    /// Do not print `message` events (an echoing bench peer).
    pub quiet: bool,
}

/// What `--bench-send` sends: `bytes` in text messages of `size` bytes with `window`
/// unanswered at a time; the peer runs `--echo` and each `echo:`+M counts as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSend {
    /// Payload one way.
    pub bytes: u64,
    /// Message size.
    pub size: usize,
    /// Messages outstanding.
    pub window: usize,
}

/// A running `--bench-send`.
#[derive(Debug)]
struct BenchRun {
    cfg: BenchSend,
    msg: Vec<u8>,
    total: u64,
    sent: u64,
    got: u64,
    open_at: Instant,
    first_at: Option<Instant>,
    cpu_at_open: f64,
}

/// CPU seconds (user + system) of this process so far, every thread.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Where `natter webrtc --video` takes its video from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// The moving test pattern, 320x240 at 30 fps.
    TestPattern,
    /// A y4m file (4:2:0), looped.
    File(std::path::PathBuf),
}

/// How often a `video` event line reports the counters while video flows.
const VIDEO_REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// Set by SIGTERM/SIGINT: the loop ends cleanly (recordings get their WAV header).
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// Runs one PeerConnection until the peer closes, ICE fails, the connect timeout, or
/// SIGTERM/SIGINT.
pub fn run(opts: Options) -> Result<(), String> {
    install_signal_handlers();
    if opts.dtls == crate::DtlsImpl::Dimpl {
        // dimpl's config is built once per process (a crypto self-test of some ms): on a
        // thread of its own, in parallel with gathering and signaling rather than on the
        // first handshake's path. An error shows again at DTLS setup.
        let _ = std::thread::Builder::new()
            .name("dimpl-config".into())
            .spawn(|| drop(crate::dtls::dimpl_config()));
    }
    let now = Instant::now();
    let cert = DtlsCertificate::generate().map_err(|e| format!("certificate: {e}"))?;
    let seed: u64 = rand::random();
    let mut pc = PeerConnection::new(
        Config {
            audio: opts.audio,
            video: opts.video,
            data: opts.data,
            echo: opts.echo,
            seed,
            dtls: opts.dtls,
            capture_audio: opts.record.is_some(),
        },
        cert,
        now,
    );
    let filter = natter_ice::InterfaceFilter::default();
    let hosts = if opts.bind.is_empty() {
        natter_ice_io::netif::host_addresses(&filter)
    } else {
        opts.bind
            .iter()
            .map(|ip| ("bind".to_owned(), *ip))
            .collect()
    };
    let agent = AgentConfig {
        controlling: opts.role == SignalingRole::Offerer,
        stun_servers: opts.stun.clone(),
        interfaces: filter,
        ..AgentConfig::default()
    };
    let mut transport = IceTransport::bind(
        TransportConfig {
            agent,
            hosts: hosts.clone(),
            turn: opts.turn.clone(),
            relay_only: false,
        },
        now,
    )
    .map_err(|e| format!("bind: {e}"))?;
    let (tx, rx) = mpsc::channel::<Datagram>();
    spawn_stdin(tx.clone())?;
    let v4: Vec<std::net::Ipv4Addr> = hosts
        .iter()
        .filter_map(|(_, ip)| match ip {
            std::net::IpAddr::V4(a) if !a.is_loopback() => Some(*a),
            _ => None,
        })
        .collect();
    let mut mdns = crate::mdns_io::MdnsIo::new(opts.mdns, v4, tx.clone(), MDNS_TAG);
    if opts.role == SignalingRole::Answerer {
        // The offerer's browser announces its names while it gathers, before the offer.
        mdns.listen();
    }
    transport
        .start(now, &tx, 0)
        .map_err(|e| format!("receivers: {e}"))?;
    drop(tx);
    let creds = transport.agent().local_credentials().clone();
    pc.set_local_ice(&creds.ufrag, &creds.pwd);
    pc.set_video_codec(opts.video_codec);
    if opts.role == SignalingRole::Offerer && opts.data {
        pc.create_channel(&opts.label, ChannelType::RELIABLE);
    }
    let (vsource, vsink) =
        if opts.video && (opts.send_video.is_some() || opts.record_video.is_some()) {
            pc.set_video_sender(true);
            let (tx, rx) = crate::video::test_loss_from_env();
            pc.video_rtp_mut().set_test_loss(tx, rx);
            let src = match &opts.send_video {
                Some(VideoInput::TestPattern) => Some(crate::video::VideoSource::pattern_with(
                    opts.video_codec,
                    320,
                    240,
                    30,
                )?),
                Some(VideoInput::File(p)) => {
                    Some(crate::video::VideoSource::file_with(opts.video_codec, p)?)
                }
                None => None,
            };
            (
                src,
                Some(crate::video::VideoSink::new_with(
                    opts.video_codec,
                    opts.record_video.as_deref(),
                )?),
            )
        } else {
            (None, None)
        };

    // Generated audio: a file, or a tone when we neither play nor echo.
    let source = if opts.audio && (opts.play.is_some() || !opts.echo) {
        Some(crate::audio::AudioSource::new(opts.play.as_deref())?)
    } else {
        None
    };
    let recorder = match (&opts.record, opts.audio) {
        (Some(p), true) => Some(crate::audio::AudioRecorder::create(p)?),
        _ => None,
    };
    let mut d = Driver {
        vsource,
        vsink,
        next_video: None,
        last_video_report: now,
        source,
        recorder,
        next_frame: None,
        pc,
        transport,
        mdns,
        next_stats: opts.stats_interval.map(|i| now + i),
        rx_datagrams: 0,
        rx_bytes: 0,
        opts,
        description_sent: false,
        gathering_done: false,
        early_candidates: Vec::new(),
        pair: None,
        connected_at: None,
        started: now,
        setup_done: false,
        bench: None,
        out: std::io::stdout(),
    };
    d.process(now)?;
    loop {
        let now = Instant::now();
        let deadline = [
            d.transport.poll_timeout(),
            d.pc.poll_timeout(),
            d.next_frame,
            d.mdns.poll_timeout(),
            d.next_stats,
            d.next_video,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + Duration::from_millis(500))
        .min(now + Duration::from_millis(500));
        match rx.recv_timeout(deadline.saturating_duration_since(now)) {
            Ok(dg) => {
                let now = Instant::now();
                d.on_input(dg, now);
                // Whatever else has arrived goes in before the PeerConnection is pumped:
                // one pass of SCTP then answers a burst (one SACK, replies bundled).
                for _ in 1..MAX_INPUT_BATCH {
                    match rx.try_recv() {
                        Ok(dg) => d.on_input(dg, now),
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err("all inputs closed".into()),
        }
        if STOP.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::info!("stopping on signal");
            d.pc.close(Instant::now());
            let _ = d.process(Instant::now());
            if let Some(r) = d.recorder.as_mut() {
                r.finish();
            }
            d.video_report();
            return Ok(());
        }
        let now = Instant::now();
        if d.transport.poll_timeout().is_some_and(|t| t <= now) {
            d.transport.handle_timeout(now);
        }
        if d.pc.poll_timeout().is_some_and(|t| t <= now) {
            d.pc.handle_timeout(now);
        }
        d.mdns.handle_timeout(now);
        if let (Some(t), Some(i)) = (d.next_stats, d.opts.stats_interval) {
            if t <= now {
                d.next_stats = Some(now + i);
                d.emit_stats();
            }
        }
        d.media(now);
        match d.process(now) {
            Ok(true) => {}
            Ok(false) => {
                d.video_report();
                return Ok(());
            }
            Err(e) => {
                d.video_report();
                d.emit(&signal::event("closed", json!({ "reason": e })));
                return Err(e);
            }
        }
        if d.connected_at.is_none() && now.duration_since(d.started) > d.opts.connect_timeout {
            tracing::warn!(
                "not connected: ICE {}",
                d.transport.agent().describe_checks()
            );
            let e = "not connected in time".to_owned();
            d.emit(&signal::event("closed", json!({ "reason": e })));
            return Err(e);
        }
    }
}

/// Reads stdin lines on a thread of its own into the loop's channel.
fn spawn_stdin(tx: Sender<Datagram>) -> Result<(), String> {
    let from: SocketAddr = ([0, 0, 0, 0], 0).into();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let dg = Datagram {
                    tag: STDIN_TAG,
                    from,
                    data: line.into_bytes(),
                };
                if tx.send(dg).is_err() {
                    return;
                }
            }
            let _ = tx.send(Datagram {
                tag: STDIN_EOF_TAG,
                from,
                data: Vec::new(),
            });
        })
        .map(|_| ())
        .map_err(|e| format!("stdin thread: {e}"))
}

struct Driver {
    /// Our encoded video (test pattern or y4m file).
    vsource: Option<crate::video::VideoSource>,
    /// Decoder (and recorder) of the peer's video.
    vsink: Option<crate::video::VideoSink>,
    /// When the next video frame is due.
    next_video: Option<Instant>,
    last_video_report: Instant,
    source: Option<crate::audio::AudioSource>,
    recorder: Option<crate::audio::AudioRecorder>,
    /// When the next 20 ms frame is due (set once audio can flow).
    next_frame: Option<Instant>,
    pc: PeerConnection,
    transport: IceTransport,
    mdns: crate::mdns_io::MdnsIo,
    /// When the next periodic stats line is due.
    next_stats: Option<Instant>,
    /// Datagrams (STUN included) and bytes that arrived on our sockets.
    rx_datagrams: u64,
    rx_bytes: u64,
    opts: Options,
    /// Our offer or answer went out: later candidates are trickled.
    description_sent: bool,
    gathering_done: bool,
    early_candidates: Vec<(String, Option<String>, Option<u64>)>,
    /// Selected pair's candidate types (local, remote).
    pair: Option<(CandidateType, CandidateType)>,
    connected_at: Option<Instant>,
    started: Instant,
    /// The built-in sender, once our channel is open.
    bench: Option<BenchRun>,
    /// The first message arrived: the setup trace (debug, target `natter_webrtc::setup`)
    /// stops.
    setup_done: bool,
    out: std::io::Stdout,
}

fn kind_name(k: CandidateType) -> &'static str {
    match k {
        CandidateType::Host => "host",
        CandidateType::Srflx => "srflx",
        CandidateType::Prflx => "prflx",
        CandidateType::Relay => "relay",
    }
}

impl Driver {
    /// One input from the loop's channel: a stdin line, an mDNS answer or a datagram.
    fn on_input(&mut self, dg: Datagram, now: Instant) {
        match dg.tag {
            STDIN_TAG => {
                let line = String::from_utf8_lossy(&dg.data).into_owned();
                self.on_line(&line, now);
            }
            STDIN_EOF_TAG => tracing::debug!("stdin closed"),
            MDNS_TAG => {
                for c in self.mdns.handle_datagram(&dg.data) {
                    self.add_checked(&c, now);
                }
            }
            tag => {
                self.rx_datagrams += 1;
                self.rx_bytes += dg.data.len() as u64;
                self.trace(now, || {
                    format!("rx {} from {}", describe(&dg.data), dg.from)
                });
                if let Some((_, data)) = self.transport.handle_datagram(now, tag, dg.from, &dg.data)
                {
                    self.pc.handle_datagram(&data, now);
                }
            }
        }
    }

    /// One line of the setup trace: milliseconds since start, then what happened.
    fn trace(&self, now: Instant, what: impl FnOnce() -> String) {
        if !self.setup_done
            && tracing::enabled!(target: "natter_webrtc::setup", tracing::Level::DEBUG)
        {
            let ms = now.duration_since(self.started).as_secs_f64() * 1000.0;
            tracing::debug!(target: "natter_webrtc::setup", "{ms:8.1} ms {}", what());
        }
    }

    fn emit(&mut self, line: &str) {
        self.trace(Instant::now(), || {
            format!("signal out: {}", line.chars().take(60).collect::<String>())
        });
        let mut o = self.out.lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    fn on_line(&mut self, line: &str, now: Instant) {
        let sig = match Signal::parse(line) {
            Ok(s) => {
                self.trace(now, || {
                    format!("signal in: {}", line.chars().take(60).collect::<String>())
                });
                s
            }
            Err(e) => {
                tracing::warn!("ignored signaling line: {e}");
                return;
            }
        };
        match sig {
            Signal::Offer(sdp) => {
                let renegotiation = self.pc.is_stable();
                if self.opts.role != SignalingRole::Answerer && !renegotiation {
                    tracing::warn!("ignored an offer: our own offer is pending");
                    return;
                }
                if renegotiation && self.pc.offer_restarts_ice(&sdp) {
                    // ICE restart: new credentials of ours in the answer, new checks;
                    // DTLS and SCTP carry on over whatever pair ICE selects next.
                    tracing::info!("ICE restart by the peer");
                    self.transport.agent_mut().restart(now);
                    let creds = self.transport.agent().local_credentials().clone();
                    self.pc.set_local_ice(&creds.ufrag, &creds.pwd);
                }
                match self.pc.accept_offer(&sdp, now) {
                    Ok(answer) => {
                        self.apply_remote_ice(now);
                        self.emit(&signal::description("answer", &answer));
                        self.description_sent = true;
                        if renegotiation {
                            self.emit(&signal::event("renegotiated", json!({})));
                        }
                        // Candidates already in the answer need no trickle; later ones do.
                        if self.gathering_done {
                            let mid = self.transport_mid();
                            self.emit(&signal::candidate(None, &mid, 0));
                        }
                    }
                    Err(e) => {
                        tracing::error!("cannot answer: {e}");
                        self.emit(&signal::event(
                            "error",
                            json!({ "reason": format!("cannot answer: {e}") }),
                        ));
                    }
                }
            }
            Signal::Answer(sdp) => {
                let renegotiation = self.pc.remote().is_some();
                match self.pc.accept_answer(&sdp, now) {
                    Ok(()) => {
                        self.apply_remote_ice(now);
                        if renegotiation {
                            self.emit(&signal::event("renegotiated", json!({})));
                        }
                    }
                    Err(e) => tracing::error!("cannot apply answer: {e}"),
                }
            }
            Signal::Candidate {
                candidate,
                mid,
                mline,
            } => {
                if self.pc.remote().is_none() {
                    if self.early_candidates.len() < MAX_EARLY_CANDIDATES {
                        self.early_candidates.push((candidate, mid, mline));
                    }
                } else {
                    self.add_remote_candidate(&candidate, mid.as_deref(), mline, now);
                }
            }
            Signal::Send { label, data } => {
                let id = match &label {
                    Some(l) => self.pc.channel_id(l),
                    None => self.pc.open_channel_ids().first().copied(),
                };
                let r = match id {
                    Some(id) => self
                        .pc
                        .send(id, true, data.as_bytes(), now)
                        .map_err(|e| e.to_string()),
                    None => Err(format!("no channel {label:?}")),
                };
                if let Err(e) = r {
                    tracing::warn!("send failed: {e}");
                }
            }
            Signal::Stats => self.emit_stats(),
            Signal::AddChannel { label } => {
                let negotiated = self.pc.remote().is_some_and(|r| r.data().is_some())
                    && self.pc.local_params().data;
                self.pc.create_channel(&label, ChannelType::RELIABLE);
                if !negotiated {
                    self.pc.add_media(false, true);
                    self.offer_again();
                }
            }
            Signal::BufferedLow { label, bytes } => {
                let set = self
                    .pc
                    .channel_id(&label)
                    .is_some_and(|id| self.pc.set_buffered_amount_low_threshold(id, bytes));
                if !set {
                    tracing::warn!("buffered-low: no open channel {label:?}");
                }
            }
            Signal::AddMedia { audio, data } => {
                self.pc.add_media(audio, data);
                self.offer_again();
            }
            Signal::EndOfCandidates => {
                if self.pc.remote().is_some() {
                    self.transport.agent_mut().end_of_remote_candidates();
                }
            }
        }
    }

    /// A subsequent offer of ours (after `add`/`add-channel`): only on a stable session;
    /// before that, the first offer/answer will carry what was added.
    fn offer_again(&mut self) {
        if !self.pc.is_stable() {
            tracing::info!(
                "not renegotiating yet: no stable session; the next description carries it"
            );
            return;
        }
        match self.pc.create_offer() {
            Ok(offer) => self.emit(&signal::description("offer", &offer)),
            Err(e) => self.emit(&signal::event(
                "error",
                json!({ "reason": format!("cannot offer: {e}") }),
            )),
        }
    }

    fn transport_mid(&self) -> String {
        if let Some(r) = self.pc.remote() {
            // Our answer uses the offerer's BUNDLE tag; our offer starts at mid 0.
            if self.pc.role() == Some(SignalingRole::Answerer) {
                return r.transport_mid().to_owned();
            }
        }
        "0".to_owned()
    }

    /// Feeds the remote description's ICE parameters to the agent.
    fn apply_remote_ice(&mut self, now: Instant) {
        let Some(r) = self.pc.remote().cloned() else {
            return;
        };
        let agent = self.transport.agent_mut();
        agent.set_remote_credentials(&r.ufrag, &r.pwd);
        agent.set_remote_lite(r.ice_lite);
        for c in &r.candidates {
            self.add_checked(c, now);
        }
        for (c, mid, mline) in std::mem::take(&mut self.early_candidates) {
            self.add_remote_candidate(&c, mid.as_deref(), mline, now);
        }
        if r.end_of_candidates {
            self.transport.agent_mut().end_of_remote_candidates();
        }
    }

    fn add_remote_candidate(
        &mut self,
        c: &str,
        mid: Option<&str>,
        mline: Option<u64>,
        now: Instant,
    ) {
        let Some(r) = self.pc.remote() else {
            return;
        };
        // With BUNDLE only the tagged m-section's transport is used.
        let ours = match (mid, mline) {
            (Some(m), _) => m == r.transport_mid(),
            (None, Some(i)) => i == r.transport_index as u64,
            (None, None) => true,
        };
        if ours {
            self.add_checked(c, now);
        }
    }

    fn add_checked(&mut self, c: &str, now: Instant) {
        if let Some(ready) = self.mdns.hold(c, now) {
            for v in ready {
                self.add_checked(&v, now);
            }
            return;
        }
        let value = c.strip_prefix("candidate:").unwrap_or(c);
        match natter_ice::Candidate::from_sdp(value) {
            Ok(cand) => {
                let addr = cand.addr;
                if self
                    .transport
                    .agent_mut()
                    .add_remote_candidate(cand)
                    .is_ok()
                {
                    self.transport.permit_remote(now, addr);
                }
            }
            Err(e) => tracing::debug!("skipped remote candidate {value}: {e}"),
        }
    }

    /// Sends due audio frames (paced on `t0 + k·20 ms`) and records what arrived.
    fn media(&mut self, now: Instant) {
        self.video(now);
        if let Some(r) = self.recorder.as_mut() {
            while let Some((seq, ts, p)) = self.pc.poll_audio_packet() {
                r.insert(seq, ts, &p, now);
            }
            r.pull_due(now);
        }
        let Some(src) = self.source.as_mut() else {
            return;
        };
        if !self.pc.audio_ready() {
            return;
        }
        let mut due = *self.next_frame.get_or_insert(now);
        // Bounded catch-up after a stall: at most 5 frames at once.
        for _ in 0..5 {
            if due > now {
                break;
            }
            if let Some((payload, ts, marker)) = src.next_frame() {
                self.pc.send_audio(&payload, ts, marker, now);
            }
            due += Duration::from_millis(20);
        }
        if due <= now {
            due = now + Duration::from_millis(20);
        }
        self.next_frame = Some(due);
    }

    /// Sends due video frames (key frame first and on the peer's request), decodes and
    /// records what arrived, and reports the counters every [`VIDEO_REPORT_INTERVAL`].
    fn video(&mut self, now: Instant) {
        if let Some(sink) = self.vsink.as_mut() {
            let _ = sink.set_codec(self.pc.video_codec());
            while let Some(f) = self.pc.poll_video_frame() {
                if sink.push(&f.data).is_err() {
                    self.pc.request_keyframe();
                }
            }
        }
        if let Some(src) = self.vsource.as_mut() {
            if let Some(bps) = self.pc.take_target_bitrate() {
                // The send-side estimate (TWCC feedback) steers the encoder.
                src.set_bitrate(bps / 1000);
            }
            // The negotiated codec; none of ours (built without it): nothing to send.
            if self.pc.video_ready() && src.set_codec(self.pc.video_codec()).is_ok() {
                let first = self.next_video.is_none();
                let mut due = *self.next_video.get_or_insert(now);
                let interval = src.frame_interval();
                for _ in 0..3 {
                    if due > now {
                        break;
                    }
                    let key = first || self.pc.take_keyframe_request();
                    if let Some((data, ts, key)) = src.next_frame(key) {
                        self.pc.send_video(&data, ts, key, now);
                    }
                    due += interval;
                }
                if due <= now {
                    due = now + interval;
                }
                self.next_video = Some(due);
            }
        }
        if (self.vsource.is_some() || self.vsink.is_some())
            && self.next_video.is_some()
            && now.duration_since(self.last_video_report) >= VIDEO_REPORT_INTERVAL
        {
            self.last_video_report = now;
            self.video_report();
        }
    }

    /// One `video` event line with the counters of both directions.
    fn video_report(&mut self) {
        if self.vsource.is_none() && self.vsink.is_none() {
            return;
        }
        if let Some(s) = self.vsink.as_mut() {
            s.finish();
        }
        let st = self.pc.video_stats();
        let (w, h) = self.vsink.as_ref().map_or((0, 0), |s| s.size);
        let sent = self.vsource.as_ref().map(|s| s.size());
        let line = signal::event(
            "video",
            json!({
                "frames_sent": st.frames_sent,
                "keyframes_sent": st.keyframes_sent,
                "packets_sent": st.packets_sent,
                "bytes_sent": st.bytes_sent,
                "retransmitted": st.retransmitted,
                "nacks_received": st.nacks_received,
                "nacks_suppressed": st.nacks_suppressed,
                "keyframe_requests_received": st.keyframe_requests_received,
                "sent_size": sent.map(|(w, h)| format!("{w}x{h}")),
                "bitrate_kbps": self.vsource.as_ref().map(|s| s.bitrate()),
                "estimate_bps": st.estimate_bps,
                "twcc_feedback_received": st.twcc_feedback_received,
                "twcc_feedback_sent": st.twcc_feedback_sent,
                "loss_permille": st.loss_permille,
                "packets_received": st.packets_received,
                "frames_received": st.frames_received,
                "frames_lost": st.frames_lost,
                "frames_decoded": self.vsink.as_ref().map_or(0, |s| s.decoded),
                "frames_recorded": self.vsink.as_ref().map_or(0, |s| s.written),
                "decode_errors": self.vsink.as_ref().map_or(0, |s| s.errors),
                "nacks_sent": st.nacks_sent,
                "plis_sent": st.plis_sent,
                "rtx_sent": st.rtx_sent,
                "rtx_received": st.rtx_received,
                "rtx_padding_received": st.rtx_padding_received,
                "test_dropped": st.test_dropped,
                "width": w,
                "height": h,
            }),
        );
        self.emit(&line);
    }

    /// Drains ICE and PeerConnection output. `Ok(false)`: finished.
    fn process(&mut self, now: Instant) -> Result<bool, String> {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(ev) = self.transport.poll_event() {
                busy = true;
                self.on_transport_event(ev, now)?;
            }
            if self.pc.poll_timeout().is_some_and(|t| t <= now) {
                self.pc.handle_timeout(now);
            }
            while let Some(d) = self.pc.poll_transmit() {
                busy = true;
                self.trace(now, || format!("tx {}", describe(&d)));
                if !self.transport.send(now, &d) {
                    tracing::debug!("no selected pair yet: dropped {} bytes", d.len());
                }
            }
            while let Some(ev) = self.pc.poll_event() {
                busy = true;
                if !self.on_pc_event(ev) {
                    return Ok(false);
                }
            }
            if !busy {
                break;
            }
        }
        Ok(true)
    }

    fn on_transport_event(&mut self, ev: TransportEvent, now: Instant) -> Result<(), String> {
        let ev = match ev {
            TransportEvent::Ice(e) => {
                self.trace(now, || format!("ICE {e:?}"));
                *e
            }
            TransportEvent::RelayFailed(r) => {
                tracing::warn!("{r}");
                return Ok(());
            }
        };
        match ev {
            IceEvent::LocalCandidate(c) => {
                let value = c.to_sdp_value();
                if self.description_sent {
                    let mid = self.transport_mid();
                    self.emit(&signal::candidate(Some(&value), &mid, 0));
                } else {
                    self.pc.add_local_candidate(&value);
                }
            }
            IceEvent::GatheringComplete => {
                self.gathering_done = true;
                if self.description_sent {
                    let mid = self.transport_mid();
                    self.emit(&signal::candidate(None, &mid, 0));
                } else if self.opts.role == SignalingRole::Offerer {
                    // Offers go out complete (all candidates, end-of-candidates): the
                    // peer may still trickle its own.
                    self.pc.set_end_of_local_candidates();
                    let offer = self.pc.create_offer().map_err(|e| e.to_string())?;
                    self.emit(&signal::description("offer", &offer));
                    self.description_sent = true;
                }
            }
            IceEvent::StateChanged(s) => {
                tracing::info!("ICE {s:?}");
                match s {
                    IceState::Connected | IceState::Completed if self.transport.is_connected() => {
                        self.pc.transport_connected(now);
                    }
                    IceState::Failed => return Err("ICE failed".into()),
                    _ => {}
                }
            }
            IceEvent::SelectedPair { local, remote, .. } => {
                tracing::info!(
                    "selected pair {} {} -> {} {}",
                    kind_name(local.kind),
                    local.addr,
                    kind_name(remote.kind),
                    remote.addr
                );
                self.pair = Some((local.kind, remote.kind));
                if self.transport.is_connected() {
                    self.pc.transport_connected(now);
                }
            }
            IceEvent::RoleChanged(r) => tracing::info!("ICE role now {r:?}"),
        }
        Ok(())
    }

    /// `{"event":"stats",...}`: transport bytes/packets, the selected pair and its STUN
    /// RTT, DTLS, SCTP and data-channel counters.
    fn emit_stats(&mut self) {
        let s = self.pc.stats();
        let agent = self.transport.agent();
        let selected = self.transport.selected().map(|(l, r)| {
            json!({
                "local": kind_name(l.kind), "remote": kind_name(r.kind),
                "local_addr": l.addr.to_string(), "remote_addr": r.addr.to_string(),
            })
        });
        let rtt = agent.rtt(1).map(|d| d.as_secs_f64() * 1000.0);
        let mdns: Vec<String> = self
            .mdns
            .resolved
            .iter()
            .map(|(n, a)| format!("{n}={a}"))
            .collect();
        let line = signal::event(
            "stats",
            json!({
                "transport": {
                    "packets_sent": s.packets_tx, "bytes_sent": s.bytes_tx,
                    "packets_received": s.packets_rx, "bytes_received": s.bytes_rx,
                    "socket_datagrams_received": self.rx_datagrams,
                    "socket_bytes_received": self.rx_bytes,
                },
                "ice": { "state": format!("{:?}", agent.state()), "selected": selected, "rtt_ms": rtt },
                "dtls": { "version": s.dtls, "srtp": s.srtp },
                "sctp": { "rto_ms": s.sctp_rto_ms },
                "mdns": mdns,
                "data_channels": {
                    "open": s.channels_open, "opened": s.channels_opened, "closed": s.channels_closed,
                    "messages_sent": s.msgs_tx, "messages_received": s.msgs_rx,
                },
                "rtp": { "packets_sent": s.rtp_tx, "packets_received": s.rtp_rx, "srtp_auth_failures": s.srtp_bad },
            }),
        );
        self.emit(&line);
    }

    /// Prints an event line; `false` when the PeerConnection is over.
    fn on_pc_event(&mut self, ev: PcEvent) -> bool {
        self.trace(Instant::now(), || match &ev {
            PcEvent::Message { id, data, .. } => format!("message on {id}, {} B", data.len()),
            e => format!("{e:?}"),
        });
        if matches!(ev, PcEvent::Message { .. }) {
            self.setup_done = true;
        }
        match ev {
            PcEvent::Connected { dtls, srtp } => {
                self.connected_at = Some(Instant::now());
                let pair = match self.pair {
                    Some((l, r)) if l == CandidateType::Relay || r == CandidateType::Relay => {
                        "relay"
                    }
                    Some((l, _)) => kind_name(l),
                    None => "host",
                };
                let remote = self.pair.map_or("host", |(_, r)| kind_name(r));
                let mdns: Vec<String> = self
                    .mdns
                    .resolved
                    .iter()
                    .map(|(n, a)| format!("{n}={a}"))
                    .collect();
                self.emit(&signal::event(
                    "connected",
                    json!({ "pair": pair, "remote": remote, "dtls": dtls, "srtp": srtp, "mdns": mdns }),
                ));
            }
            PcEvent::ChannelOpen { id, label } => {
                self.start_bench(id, &label);
                self.emit(&signal::event(
                    "channel-open",
                    json!({ "label": label, "id": id }),
                ));
            }
            PcEvent::Message {
                id,
                label,
                text,
                data,
            } => {
                if self.bench.is_some() {
                    return self.bench_message(id, &data);
                }
                if self.opts.quiet {
                    return true;
                }
                let line = if text {
                    signal::event(
                        "message",
                        json!({ "label": label, "id": id, "data": String::from_utf8_lossy(&data) }),
                    )
                } else {
                    signal::event(
                        "message",
                        json!({ "label": label, "id": id, "binary": true, "data": hex(&data) }),
                    )
                };
                self.emit(&line);
            }
            PcEvent::ChannelClosed { id, label } => {
                self.emit(&signal::event(
                    "closed",
                    json!({ "label": label, "id": id }),
                ));
            }
            PcEvent::BufferedAmountLow { id, label } => {
                let buffered = self.pc.buffered_amount(id);
                self.emit(&signal::event(
                    "buffered-low",
                    json!({ "label": label, "id": id, "buffered": buffered }),
                ));
            }
            PcEvent::AudioStarted { ssrc } => {
                self.emit(&signal::event("audio", json!({ "ssrc": ssrc })));
            }
            PcEvent::Closed { reason } => {
                self.emit(&signal::event("closed", json!({ "reason": reason })));
                return false;
            }
        }
        true
    }
}

impl Driver {
    /// Our bench channel opened: fill the window.
    fn start_bench(&mut self, id: u16, label: &str) {
        let Some(cfg) = self.opts.bench else { return };
        if self.bench.is_some() || label != self.opts.label {
            return;
        }
        let size = cfg.size.max(1);
        let total = cfg.bytes.div_ceil(size as u64).max(1);
        self.bench = Some(BenchRun {
            cfg,
            msg: vec![b'x'; size],
            total,
            sent: 0,
            got: 0,
            open_at: Instant::now(),
            first_at: None,
            cpu_at_open: process_cpu_seconds(),
        });
        self.bench_pump(id);
    }

    fn bench_pump(&mut self, id: u16) {
        let Some(b) = self.bench.as_mut() else { return };
        let now = Instant::now();
        while b.sent < b.total && b.sent - b.got < b.cfg.window as u64 {
            if let Err(e) = self.pc.send(id, true, &b.msg, now) {
                tracing::warn!("bench send: {e}");
                break;
            }
            b.sent += 1;
        }
    }

    /// An echo arrived; `false` once every message came back (the `bench` event is out).
    fn bench_message(&mut self, id: u16, data: &[u8]) -> bool {
        let Some(b) = self.bench.as_mut() else {
            return true;
        };
        if data.len() != b.msg.len() + 5 {
            return true;
        }
        let now = Instant::now();
        b.first_at.get_or_insert(now);
        b.got += 1;
        if b.got < b.total {
            self.bench_pump(id);
            return true;
        }
        let secs = now.duration_since(b.open_at).as_secs_f64().max(1e-9);
        let mb = (b.total * b.msg.len() as u64) as f64 / 1_048_576.0;
        let cpu = process_cpu_seconds() - b.cpu_at_open;
        let line = signal::event(
            "bench",
            json!({
                "setup_ms": b.open_at.duration_since(self.started).as_millis() as u64,
                "first_ms": b.first_at.map(|t| t.duration_since(self.started).as_millis() as u64),
                "transfer_ms": (secs * 1000.0).round() as u64,
                "msgs": b.total,
                "size": b.msg.len(),
                "mb_per_s_each_way": (mb / secs * 100.0).round() / 100.0,
                "msgs_per_s": (b.total as f64 / secs).round(),
                "cpu_s": (cpu * 1000.0).round() / 1000.0,
            }),
        );
        self.emit(&line);
        false
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a datagram is, for the setup trace: STUN (with USE-CANDIDATE), DTLS records by
/// content and handshake type, or other.
fn describe(data: &[u8]) -> String {
    match data.first().copied() {
        Some(0..=3) if data.len() >= 20 => {
            let ty = u16::from_be_bytes([data[0], data[1]]);
            let mut nominate = false;
            let mut rest = &data[20..];
            for _ in 0..32 {
                let Some(h) = rest.get(..4) else { break };
                let (at, len) = (
                    u16::from_be_bytes([h[0], h[1]]),
                    usize::from(u16::from_be_bytes([h[2], h[3]])),
                );
                nominate |= at == 0x0025;
                rest = rest.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
            }
            let kind = match ty {
                0x0001 => "request",
                0x0101 => "success",
                0x0111 => "error",
                _ => "other",
            };
            format!(
                "STUN {kind}{}",
                if nominate { " USE-CANDIDATE" } else { "" }
            )
        }
        Some(20..=63) => {
            let mut parts = Vec::new();
            let mut rest = data;
            for _ in 0..16 {
                let Some(&b) = rest.first() else { break };
                if (20..=25).contains(&b) && rest.len() >= 13 {
                    let epoch = u16::from_be_bytes([rest[3], rest[4]]);
                    let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
                    let what = match (b, epoch) {
                        (22, 0) => format!("hs{}", rest.get(13).copied().unwrap_or(255)),
                        (20, _) => "ccs".to_owned(),
                        (21, _) => "alert".to_owned(),
                        (22, _) => "hs(enc)".to_owned(),
                        (23, _) => format!("app{len}"),
                        _ => format!("ct{b}"),
                    };
                    parts.push(what);
                    rest = rest.get(13 + len..).unwrap_or(&[]);
                } else {
                    // DTLS 1.3 unified header: encrypted, content type hidden.
                    parts.push(format!("enc{}", rest.len()));
                    break;
                }
            }
            format!("DTLS [{}] {}B", parts.join(" "), data.len())
        }
        _ => format!("other {}B", data.len()),
    }
}
