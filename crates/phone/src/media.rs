//! One call's media, sans-IO: 20 ms of PCM in, protected RTP out; datagrams in, 20 ms of
//! played-out PCM back. It composes the cores: natter-media codecs and RFC 4733 DTMF,
//! natter-rtp packets and the RTCP session, natter-srtp contexts keyed by SDES or by
//! DTLS-SRTP (natter-dtls), and the natter-jitter adaptive buffer with concealment.
//!
//! The driver calls [`MediaSession::send_audio`] and [`MediaSession::play`] every 20 ms
//! (on a clock of its own), hands every datagram to [`MediaSession::handle_datagram`],
//! sends what [`MediaSession::poll_transmit`] gives and runs
//! [`MediaSession::handle_timeout`] at [`MediaSession::poll_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_dtls::{DtlsCertificate, DtlsEndpoint, DtlsEvent, DtlsRole};
use natter_jitter::{JitterBuffer, JitterConfig};
use natter_media::{CodecKind, CodecParams, DtmfReceiver, DtmfSender, Encoder, JitterDecoder};
use natter_rtp::{demux, RtpHeader, RtpPacket, RtpSession, SessionConfig, SessionEvent};
use natter_sdp::Direction;
use natter_srtp::{SrtpContext, SrtpProfile};

use crate::offer::{Keying, Negotiated};

/// Length of one media frame.
pub const FRAME: Duration = Duration::from_millis(20);

/// What the call should know.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// Keys are in place (SDES at once, DTLS after the handshake): media flows.
    Secured {
        /// The SRTP suite (`AES_CM_128_HMAC_SHA1_80`, ...), `off` for plain RTP.
        suite: String,
    },
    /// DTLS failed (fingerprint mismatch, timeout): the call cannot be secured.
    KeyingFailed(String),
    /// A DTMF digit arrived (RFC 4733), once per event.
    Dtmf(char),
    /// The peer sent RTCP BYE.
    Bye,
    /// Nothing (no RTP, no RTCP) from the peer for too long.
    PeerSilent,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Bytes.
    pub data: Vec<u8>,
    /// RTCP (goes to the RTCP address when rtcp-mux is off).
    pub rtcp: bool,
}

/// Counters for the `stats` line and the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets sent.
    pub tx_packets: u64,
    /// RTP packets received and accepted.
    pub rx_packets: u64,
    /// Cumulative loss (RFC 3550 A.3).
    pub rx_lost: i64,
    /// Interarrival jitter in ms.
    pub jitter_ms: f64,
    /// Round-trip time from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// Datagrams dropped as malformed.
    pub rx_malformed: u64,
    /// SRTP/SRTCP packets that failed authentication or replay checks.
    pub rx_unauthenticated: u64,
    /// Packets of an unexpected payload type.
    pub rx_unknown_pt: u64,
    /// STUN on the media port outside ICE (a peer's NAT probes), ignored.
    pub rx_stun: u64,
    /// DTMF digits sent.
    pub dtmf_sent: u64,
    /// Concealed ms (jitter buffer).
    pub concealed_ms: u64,
    /// Current jitter-buffer delay, ms.
    pub buffer_delay_ms: u64,
    /// The jitter buffer's own counters.
    pub jitter: natter_jitter::JitterStats,
}

/// The jitter buffer's settings for a codec: 20 ms frames, 20-400 ms of delay.
fn jitter_config(rate: u32, clock_rate: u32) -> JitterConfig {
    JitterConfig {
        sample_rate: rate,
        clock_rate,
        frame_ms: 20,
        min_delay_ms: 20,
        max_delay_ms: 400,
        max_packets: 200,
    }
}

/// Settings for one session.
pub struct MediaConfig {
    /// The negotiated stream.
    pub neg: Negotiated,
    /// Our SSRC.
    pub ssrc: u32,
    /// RTCP CNAME.
    pub cname: String,
    /// First RTP sequence number and timestamp (random per RFC 3550).
    pub seq: u16,
    /// Initial timestamp.
    pub ts: u32,
    /// Certificate for DTLS-SRTP.
    pub cert: Option<DtlsCertificate>,
    /// Opus in-band FEC.
    pub opus_fec: bool,
    /// Opus discontinuous transmission: silence costs a packet every 400 ms.
    pub opus_dtx: bool,
    /// Seed for RTCP interval randomisation.
    pub seed: u64,
    /// Wallclock at `now` as a 64-bit NTP timestamp (for sender reports).
    pub ntp_now: u64,
    /// As DTLS client, wait for [`MediaSession::start_dtls`] before sending the
    /// ClientHello (an offerer that gets it before it has processed our answer drops it,
    /// costing a one-second retransmission).
    pub defer_dtls_client: bool,
}

/// One call's media.
pub struct MediaSession {
    neg: Negotiated,
    encoder: Box<dyn Encoder>,
    jitter: JitterBuffer<JitterDecoder>,
    rtcp: RtpSession,
    tx: Option<SrtpContext>,
    rx: Option<SrtpContext>,
    dtls: Option<DtlsEndpoint>,
    secured: bool,
    ssrc: u32,
    seq: u16,
    ts: u32,
    ts_per_frame: u32,
    samples_per_frame: usize,
    dtmf_tx: DtmfSender,
    dtmf_rx: DtmfReceiver,
    dtmf_queue: VecDeque<char>,
    out: VecDeque<Outgoing>,
    events: VecDeque<MediaEvent>,
    stats: MediaStats,
    last_heard: Instant,
    silence_limit: Duration,
    payload: Vec<u8>,
    packet: Vec<u8>,
    suite: Option<String>,
    /// A DTLS client endpoint waiting for [`MediaSession::start_dtls`].
    deferred_dtls: Option<(DtlsCertificate, String)>,
    /// Without rtcp-mux, DTLS-SRTP runs a second association on the RTCP component
    /// (RFC 5764 §4.1); its keys protect SRTCP.
    rtcp_dtls: Option<DtlsEndpoint>,
    rtcp_tx: Option<SrtpContext>,
    rtcp_rx: Option<SrtpContext>,
    rtcp_component: bool,
    /// The SSRC whose packets fill the jitter buffer.
    remote_ssrc: Option<u32>,
    opus_dtx: bool,
    /// Receive statistics as last seen while the peer's source was known.
    seen_lost: i64,
    seen_jitter_ms: f64,
}

fn srtp_pair(
    local: (&SrtpProfile, &[u8], &[u8]),
    remote: (&[u8], &[u8]),
) -> Option<(SrtpContext, SrtpContext)> {
    let tx = SrtpContext::new(*local.0, local.1, local.2).ok()?;
    let rx = SrtpContext::new(*local.0, remote.0, remote.1).ok()?;
    Some((tx, rx))
}

impl MediaSession {
    /// A session for the negotiated stream, starting at `now`.
    pub fn new(cfg: MediaConfig, now: Instant) -> Result<Self, String> {
        let neg = cfg.neg;
        let encoder = natter_media::new_encoder(&CodecParams {
            kind: neg.codec,
            ptime_ms: 20,
            opus_fec: cfg.opus_fec,
            opus_dtx: cfg.opus_dtx,
            opus_bitrate: None,
        })
        .map_err(|e| format!("encoder: {e}"))?;
        let decoder = natter_media::new_decoder(neg.codec).map_err(|e| format!("decoder: {e}"))?;
        let rate = neg.codec.sample_rate();
        let jitter = JitterBuffer::new(jitter_config(rate, neg.clock_rate), JitterDecoder(decoder));
        let mut rtcp_cfg = SessionConfig::new(cfg.ssrc, neg.clock_rate, cfg.cname.clone());
        rtcp_cfg.seed = cfg.seed;
        rtcp_cfg.ntp_at_start = cfg.ntp_now;
        let rtcp = RtpSession::new(rtcp_cfg, now);
        let (mut tx, mut rx, mut dtls, mut secured, mut suite) = (None, None, None, false, None);
        let mut deferred = None;
        match &neg.keying {
            Keying::None => {
                secured = true;
                suite = Some("off".to_owned());
            }
            Keying::Sdes { local, remote } => {
                let (t, r) = srtp_pair(
                    (&local.profile, &local.key, &local.salt),
                    (&remote.key, &remote.salt),
                )
                .ok_or("bad SDES key length")?;
                tx = Some(t);
                rx = Some(r);
                secured = true;
                suite = Some(local.profile.sdes_name().to_owned());
            }
            Keying::Dtls(p) => {
                let cert = cfg.cert.as_ref().ok_or("DTLS-SRTP without a certificate")?;
                let role = if p.client {
                    DtlsRole::Client
                } else {
                    DtlsRole::Server
                };
                if p.client && cfg.defer_dtls_client {
                    deferred = Some((cert.clone(), p.remote_fingerprint.clone()));
                } else {
                    dtls = Some(
                        DtlsEndpoint::new(role, cert, Some(p.remote_fingerprint.clone()), now)
                            .map_err(|e| format!("DTLS: {e}"))?,
                    );
                }
            }
        }
        let neg_clock = neg.dtmf_clock.max(1000);
        let opus_dtx = cfg.opus_dtx && neg.codec == CodecKind::Opus;
        let mut s = MediaSession {
            ts_per_frame: neg.clock_rate / 50,
            samples_per_frame: (rate / 50) as usize,
            neg,
            encoder,
            jitter,
            rtcp,
            tx,
            rx,
            dtls,
            secured: false,
            ssrc: cfg.ssrc,
            seq: cfg.seq,
            ts: cfg.ts,
            dtmf_tx: DtmfSender::new(neg_clock),
            dtmf_rx: DtmfReceiver::new(),
            dtmf_queue: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: MediaStats::default(),
            last_heard: now,
            silence_limit: Duration::from_secs(30),
            payload: Vec::with_capacity(1500),
            packet: Vec::with_capacity(1500),
            suite: None,
            deferred_dtls: deferred,
            rtcp_dtls: None,
            rtcp_tx: None,
            rtcp_rx: None,
            rtcp_component: false,
            remote_ssrc: None,
            opus_dtx,
            seen_lost: 0,
            seen_jitter_ms: 0.0,
        };
        if let (Keying::Dtls(p), false) = (&s.neg.keying, s.neg.rtcp_mux) {
            s.rtcp_component = true;
            if !(p.client && cfg.defer_dtls_client) {
                let role = if p.client {
                    DtlsRole::Client
                } else {
                    DtlsRole::Server
                };
                if let Some(cert) = &cfg.cert {
                    s.rtcp_dtls =
                        DtlsEndpoint::new(role, cert, Some(p.remote_fingerprint.clone()), now).ok();
                }
            }
        }
        if secured {
            s.set_secured(suite.unwrap_or_default());
        }
        s.flush_dtls();
        Ok(s)
    }

    /// Starts a deferred DTLS client handshake (no-op otherwise).
    pub fn start_dtls(&mut self, now: Instant) {
        let Some((cert, fp)) = self.deferred_dtls.take() else {
            return;
        };
        if self.rtcp_component {
            self.rtcp_dtls = DtlsEndpoint::new(DtlsRole::Client, &cert, Some(fp.clone()), now).ok();
        }
        match DtlsEndpoint::new(DtlsRole::Client, &cert, Some(fp), now) {
            Ok(d) => self.dtls = Some(d),
            Err(e) => self
                .events
                .push_back(MediaEvent::KeyingFailed(format!("DTLS: {e}"))),
        }
        self.flush_dtls();
    }

    fn set_secured(&mut self, suite: String) {
        self.secured = true;
        self.suite = Some(suite.clone());
        self.events.push_back(MediaEvent::Secured { suite });
    }

    /// PCM samples per 20 ms frame at the codec's rate.
    pub fn samples_per_frame(&self) -> usize {
        self.samples_per_frame
    }

    /// The codec's PCM rate.
    pub fn sample_rate(&self) -> u32 {
        self.neg.codec.sample_rate()
    }

    /// The negotiated stream.
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// The SRTP suite once secured.
    pub fn suite(&self) -> Option<&str> {
        self.suite.as_deref()
    }

    /// Whether keys are in place.
    pub fn is_secured(&self) -> bool {
        self.secured
    }

    /// How long without any packet from the peer ends the call (RTP + RTCP silence).
    pub fn set_silence_limit(&mut self, d: Duration) {
        self.silence_limit = d;
    }

    /// Changes direction (hold / resume) after a re-INVITE.
    pub fn set_direction(&mut self, dir: Direction) {
        self.neg.direction = dir;
    }

    /// Queues DTMF digits (RFC 4733 when negotiated).
    pub fn send_dtmf(&mut self, digits: &str) {
        for c in digits.chars() {
            if natter_media::digit_to_event(c).is_some() && self.dtmf_queue.len() < 64 {
                self.dtmf_queue.push_back(c);
            }
        }
        let queued: String = self.dtmf_queue.drain(..).collect();
        let _ = self.dtmf_tx.start_str(&queued, self.ts);
        self.stats.dtmf_sent += queued.chars().count() as u64;
    }

    /// Whether DTMF is still being sent.
    pub fn dtmf_pending(&self) -> bool {
        !self.dtmf_queue.is_empty() || self.dtmf_tx.is_active()
    }

    fn push_rtp(&mut self, now: Instant, pt: u8, marker: bool, ts: u32) {
        let header = RtpHeader {
            marker,
            payload_type: pt,
            sequence: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
            ..RtpHeader::default()
        };
        self.seq = self.seq.wrapping_add(1);
        self.packet.clear();
        if header.write(&self.payload, &mut self.packet).is_err() {
            return;
        }
        let mut pkt = std::mem::take(&mut self.packet);
        if let Some(tx) = &mut self.tx {
            if tx.protect_rtp_in_place(&mut pkt).is_err() {
                self.packet = pkt;
                return;
            }
        }
        self.stats.tx_packets += 1;
        self.rtcp.on_rtp_sent(ts, self.payload.len(), now);
        self.out.push_back(Outgoing {
            data: pkt,
            rtcp: false,
        });
    }

    /// Sends one 20 ms frame of PCM (mono, at [`MediaSession::sample_rate`]). Skipped
    /// while keys are missing or the stream is not ours to send (hold); DTMF events
    /// replace the audio while a digit plays (RFC 4733 §2.5.1.1).
    pub fn send_audio(&mut self, now: Instant, pcm: &[i16]) {
        let ts = self.ts;
        self.ts = self.ts.wrapping_add(self.ts_per_frame);
        if !self.secured || !self.neg.direction.sends() {
            return;
        }
        if let Some(pt) = self.neg.dtmf_send_pt {
            if self.dtmf_tx.is_active() {
                if let Some((event, ets, marker)) = self.dtmf_tx.poll(self.neg.dtmf_clock / 50) {
                    self.payload.clear();
                    self.payload.extend_from_slice(&event.encode());
                    self.push_rtp(now, pt, marker, ets);
                }
                return;
            }
        }
        self.payload.clear();
        let mut payload = std::mem::take(&mut self.payload);
        let ok = self.encoder.encode(pcm, &mut payload).is_ok();
        // A DTX frame (one or two bytes) is not sent: the gap in timestamps without a gap
        // in sequence numbers tells the receiver it was silence, not loss.
        let dtx = self.opus_dtx && natter_media::opus_codec::is_dtx_packet(&payload);
        self.payload = payload;
        if ok && !dtx {
            self.push_rtp(now, self.neg.send_pt, false, ts);
        }
    }

    /// The next 20 ms of played-out audio (always exactly one frame).
    pub fn play(&mut self, now: Instant, out: &mut Vec<i16>) {
        self.jitter.pull(now, out);
    }

    /// A datagram from the peer (RTP, RTCP, DTLS).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        match demux::classify(data) {
            demux::Kind::Dtls => {
                if let Some(d) = &mut self.dtls {
                    let _ = d.handle_datagram(data, now);
                    self.flush_dtls();
                } else {
                    self.stats.rx_malformed += 1;
                }
            }
            demux::Kind::Rtcp => self.on_rtcp(now, from, data),
            demux::Kind::Rtp => self.on_rtp(now, from, data),
            demux::Kind::Stun => self.stats.rx_stun += 1,
            _ => self.stats.rx_malformed += 1,
        }
    }

    /// A datagram that arrived on the RTCP port (no rtcp-mux): RTCP, or DTLS of the RTCP
    /// component's own association.
    pub fn handle_rtcp_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        match demux::classify(data) {
            demux::Kind::Dtls => match &mut self.rtcp_dtls {
                Some(d) => {
                    let _ = d.handle_datagram(data, now);
                    self.flush_dtls();
                }
                None => self.stats.rx_malformed += 1,
            },
            demux::Kind::Rtcp => self.on_rtcp(now, from, data),
            _ => self.stats.rx_malformed += 1,
        }
    }

    fn on_rtcp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let mut buf = data.to_vec();
        let rx = if self.rtcp_component {
            if self.rtcp_rx.is_none() {
                return;
            }
            &mut self.rtcp_rx
        } else {
            &mut self.rx
        };
        if let Some(rx) = rx {
            if rx.unprotect_rtcp_in_place(&mut buf).is_err() {
                self.stats.rx_unauthenticated += 1;
                return;
            }
        } else if !self.secured {
            return;
        }
        // A BYE removes the peer's source from the RTCP session and its counts with it:
        // keep what they said before that.
        self.remember_receive_stats();
        let malformed_before = self.rtcp.stats().rx_dropped_malformed;
        let events = self.rtcp.on_rtcp_received(&buf, from, now);
        if self.rtcp.stats().rx_dropped_malformed != malformed_before {
            // Unparsable RTCP proves nothing about the peer being there.
            return;
        }
        self.last_heard = now;
        for ev in events {
            match ev {
                SessionEvent::Bye { .. } => self.events.push_back(MediaEvent::Bye),
                SessionEvent::Rtt(d) => self.stats.rtt_ms = Some(d.as_secs_f64() * 1000.0),
                _ => {}
            }
        }
    }

    fn on_rtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let mut buf = data.to_vec();
        if let Some(rx) = &mut self.rx {
            if rx.unprotect_rtp_in_place(&mut buf).is_err() {
                self.stats.rx_unauthenticated += 1;
                return;
            }
        } else if !self.secured {
            // DTLS not done yet: nothing to decrypt with.
            return;
        }
        let Ok(pkt) = RtpPacket::parse(&buf) else {
            self.stats.rx_malformed += 1;
            return;
        };
        self.last_heard = now;
        let pt = pkt.payload_type();
        if Some(pt) == self.neg.dtmf_recv_pt || Some(pt) == self.neg.dtmf_send_pt {
            if let Some(d) = self.dtmf_rx.on_packet(pkt.timestamp(), pkt.payload()) {
                self.events.push_back(MediaEvent::Dtmf(d));
            }
            self.rtcp.on_rtp_received(&pkt, from, now);
            return;
        }
        if Some(pt) == self.neg.cn_pt {
            let level = pkt.payload().first().copied().unwrap_or(127);
            self.jitter
                .insert_comfort_noise(pkt.timestamp(), level, now);
            self.rtcp.on_rtp_received(&pkt, from, now);
            return;
        }
        if pt != self.neg.recv_pt && pt != self.neg.send_pt {
            self.stats.rx_unknown_pt += 1;
            return;
        }
        self.stats.rx_packets += 1;
        self.rtcp.on_rtp_received(&pkt, from, now);
        if self.remote_ssrc != Some(pkt.ssrc()) {
            // A new source (the peer restarted, or a re-INVITE moved the stream): its
            // sequence and timestamps have nothing to do with the old ones, so the buffer
            // starts afresh instead of treating every packet as late.
            if self.remote_ssrc.is_some() {
                if let Ok(d) = natter_media::new_decoder(self.neg.codec) {
                    let rate = self.neg.codec.sample_rate();
                    self.jitter = JitterBuffer::new(
                        jitter_config(rate, self.neg.clock_rate),
                        JitterDecoder(d),
                    );
                }
            }
            self.remote_ssrc = Some(pkt.ssrc());
        }
        self.jitter
            .insert(pkt.sequence(), pkt.timestamp(), pkt.payload(), now);
    }

    fn flush_dtls(&mut self) {
        self.flush_component(false);
        self.flush_component(true);
    }

    /// Sends a component's DTLS output; installs its SRTP keys once connected.
    fn flush_component(&mut self, rtcp: bool) {
        let d = if rtcp {
            &mut self.rtcp_dtls
        } else {
            &mut self.dtls
        };
        let Some(d) = d else { return };
        while let Some(b) = d.poll_datagram() {
            self.out.push_back(Outgoing { data: b, rtcp });
        }
        let mut keys = None;
        let mut failures = Vec::new();
        while let Some(ev) = d.poll_event() {
            match ev {
                DtlsEvent::Connected {
                    profile_id,
                    keying_material,
                    ..
                } => {
                    let client = matches!(&self.neg.keying, Keying::Dtls(p) if p.client);
                    let Some(profile) = SrtpProfile::from_dtls_id(profile_id) else {
                        failures.push(format!("unknown SRTP profile {profile_id:#06x}"));
                        continue;
                    };
                    let pair = natter_dtls::srtp_keys(profile_id, &keying_material, client)
                        .and_then(|(tk, ts, rk, rs)| {
                            Some((
                                SrtpContext::new(profile, &tk, &ts).ok()?,
                                SrtpContext::new(profile, &rk, &rs).ok()?,
                            ))
                        });
                    match pair {
                        Some(p) => keys = Some((profile, p)),
                        None => failures.push("DTLS-SRTP keys unusable".into()),
                    }
                }
                DtlsEvent::Failed(e) => failures.push(format!("DTLS: {e}")),
                DtlsEvent::Closed | DtlsEvent::ApplicationData(_) => {}
            }
        }
        // RTCP keying failing costs reports, not the call.
        if !rtcp {
            for f in failures {
                self.events.push_back(MediaEvent::KeyingFailed(f));
            }
        }
        if let Some((profile, (t, r))) = keys {
            if rtcp {
                self.rtcp_tx = Some(t);
                self.rtcp_rx = Some(r);
            } else {
                self.tx = Some(t);
                self.rx = Some(r);
                self.set_secured(profile.sdes_name().to_owned());
            }
        }
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`MediaSession::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let d = self.dtls.as_ref().and_then(|d| d.poll_timeout());
        let d2 = self.rtcp_dtls.as_ref().and_then(|d| d.poll_timeout());
        let r = self.rtcp.poll_timeout();
        [d, d2, r, Some(self.last_heard + self.silence_limit)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs RTCP reports, DTLS retransmissions and the silence check.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.remember_receive_stats();
        for d in [&mut self.dtls, &mut self.rtcp_dtls].into_iter().flatten() {
            if d.poll_timeout().is_some_and(|t| t <= now) {
                d.handle_timeout(now);
            }
        }
        self.flush_dtls();
        if self.rtcp.poll_timeout().is_some_and(|t| t <= now) {
            for ev in self.rtcp.handle_timeout(now) {
                if let SessionEvent::Rtt(d) = ev {
                    self.stats.rtt_ms = Some(d.as_secs_f64() * 1000.0);
                }
            }
        }
        while self.secured {
            let Some(mut pkt) = self.rtcp.poll_rtcp(now) else {
                break;
            };
            {
                let tx = if self.rtcp_component {
                    &mut self.rtcp_tx
                } else {
                    &mut self.tx
                };
                let ok = match tx {
                    Some(tx) => tx.protect_rtcp_in_place(&mut pkt).is_ok(),
                    None => !self.rtcp_component,
                };
                if ok {
                    self.out.push_back(Outgoing {
                        data: pkt,
                        rtcp: true,
                    });
                }
            }
        }
        if now >= self.last_heard + self.silence_limit {
            self.events.push_back(MediaEvent::PeerSilent);
            self.last_heard = now;
        }
    }

    /// RTCP BYE, protected, for the end of the call.
    pub fn bye(&mut self, now: Instant) {
        if !self.secured {
            return;
        }
        let mut pkt = self.rtcp.send_bye(now);
        let tx = if self.rtcp_component {
            &mut self.rtcp_tx
        } else {
            &mut self.tx
        };
        let protected = match tx {
            Some(tx) => tx.protect_rtcp_in_place(&mut pkt).is_ok(),
            None => !self.rtcp_component,
        };
        if !protected {
            return;
        }
        self.out.push_back(Outgoing {
            data: pkt,
            rtcp: true,
        });
    }

    fn remember_receive_stats(&mut self) {
        let r = self.rtcp.stats();
        if r.rx_packets > 0 {
            self.seen_lost = self.seen_lost.max(r.rx_lost);
            self.seen_jitter_ms = self.seen_jitter_ms.max(r.jitter.as_secs_f64() * 1000.0);
        }
    }

    /// Counters.
    pub fn stats(&self) -> MediaStats {
        let mut s = self.stats.clone();
        let r = self.rtcp.stats();
        s.rx_malformed += r.rx_dropped_malformed;
        s.rx_lost = r.rx_lost.max(self.seen_lost);
        s.jitter_ms =
            (r.jitter.as_secs_f64() * 1000.0).max(if r.rx_lost == 0 && self.seen_lost > 0 {
                self.seen_jitter_ms
            } else {
                0.0
            });
        if let Some(rtt) = r.rtt {
            s.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
        }
        let j = self.jitter.stats();
        s.concealed_ms = j.concealed_ms;
        s.buffer_delay_ms = u64::from(j.current_delay_ms);
        s.jitter = j;
        s
    }

    /// The codec, for the `established` line (`PCMU/8000`, `opus/48000`).
    pub fn codec_label(&self) -> String {
        codec_label(self.neg.codec, self.neg.clock_rate)
    }
}

/// `PCMU/8000`, `opus/48000`, `G722/8000`.
pub fn codec_label(kind: CodecKind, clock: u32) -> String {
    format!("{}/{}", kind.rtp_name(), clock)
}
