//! The PeerConnection core, sans-IO: JSEP descriptions, one DTLS association shared by
//! SRTP and SCTP (BUNDLE), data channels and the audio stream.
//!
//! ICE stays outside: the owner runs an ICE agent (natter-ice) on its sockets, tells us
//! the local credentials and candidates, feeds the peer's into the agent (see
//! [`PeerConnection::remote`]) and, once a pair is selected, calls
//! [`PeerConnection::transport_connected`]. From then on every non-STUN datagram goes to
//! [`PeerConnection::handle_datagram`] and every [`PeerConnection::poll_transmit`] leaves
//! on the selected pair. This keeps the core testable in virtual time without sockets:
//! two cores can be wired back to back.

use std::collections::VecDeque;
use std::time::Instant;

use natter_dtls::{srtp_keys, DtlsCertificate, DtlsEvent, DtlsRole};
use natter_rtp::{RtpHeader, RtpPacket};
use natter_srtp::{SrtpContext, SrtpProfile};

use crate::dcep::ChannelType;
use crate::dtls::{Dtls, DtlsImpl};
use crate::error::{JsepError, SendError};
use crate::jsep::{self, LocalParams, RemoteDescription, Setup};
use crate::sctp::{ChannelEvent, DataChannels};

/// Datagrams kept while the DTLS association does not exist yet (the peer's ClientHello
/// can overtake its answer on the signaling path).
const MAX_EARLY_DTLS: usize = 16;

/// What the PeerConnection does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Audio (Opus) transceiver.
    pub audio: bool,
    /// Video: accept the peer's VP8 stream (answers only) and, with `echo`, send it back.
    pub video: bool,
    /// Data channels.
    pub data: bool,
    /// Answer every text message M with `echo:M` and send received audio back.
    pub echo: bool,
    /// `o=` session id and SSRC source.
    pub seed: u64,
    /// DTLS engine.
    pub dtls: DtlsImpl,
    /// Keep received audio payloads for [`PeerConnection::poll_audio`] (recording).
    pub capture_audio: bool,
}

/// Which side of offer/answer we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingRole {
    /// We made the offer.
    Offerer,
    /// We answer.
    Answerer,
}

/// What the owner should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcEvent {
    /// DTLS is up (and SRTP keyed).
    Connected {
        /// "1.2" or "1.3".
        dtls: String,
        /// SRTP profile name, e.g. `AES_CM_128_HMAC_SHA1_80`.
        srtp: Option<String>,
    },
    /// A data channel opened.
    ChannelOpen {
        /// Stream id.
        id: u16,
        /// Label.
        label: String,
    },
    /// A message on a channel.
    Message {
        /// Stream id.
        id: u16,
        /// Channel label.
        label: String,
        /// Text or binary.
        text: bool,
        /// Bytes.
        data: Vec<u8>,
    },
    /// A channel closed.
    ChannelClosed {
        /// Stream id.
        id: u16,
        /// Label.
        label: String,
    },
    /// A channel's queued bytes fell to or below its low mark
    /// ([`PeerConnection::set_buffered_amount_low_threshold`]).
    BufferedAmountLow {
        /// Stream id.
        id: u16,
        /// Label.
        label: String,
    },
    /// The first audio packet arrived from the peer.
    AudioStarted {
        /// The peer's SSRC.
        ssrc: u32,
    },
    /// DTLS or SCTP failed, or the peer closed.
    Closed {
        /// Why.
        reason: String,
    },
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcStats {
    /// RTP packets received and authenticated.
    pub rtp_rx: u64,
    /// RTP packets sent.
    pub rtp_tx: u64,
    /// SRTP packets that failed authentication.
    pub srtp_bad: u64,
    /// Datagrams of no known protocol.
    pub unknown: u64,
    /// Data-channel messages received.
    pub msgs_rx: u64,
    /// Data-channel messages sent.
    pub msgs_tx: u64,
    /// Datagrams (DTLS, SRTP; STUN stays with ICE) received on the selected pair.
    pub packets_rx: u64,
    /// Their bytes.
    pub bytes_rx: u64,
    /// Datagrams handed out for the selected pair.
    pub packets_tx: u64,
    /// Their bytes.
    pub bytes_tx: u64,
    /// DTLS version once connected ("1.2" or "1.3").
    pub dtls: Option<String>,
    /// SRTP profile once keyed.
    pub srtp: Option<String>,
    /// Data channels open now (filled by [`PeerConnection::stats`]).
    pub channels_open: u64,
    /// Data channels that opened so far.
    pub channels_opened: u64,
    /// Data channels that closed so far.
    pub channels_closed: u64,
    /// SCTP retransmission timeout in ms (sctp-proto's smoothed-RTT based estimate; it
    /// keeps no plain RTT), once the association exists.
    pub sctp_rto_ms: Option<u64>,
}

/// The outgoing audio stream.
#[derive(Debug)]
struct AudioOut {
    ssrc: u32,
    pt: u8,
    seq: u16,
    ts_offset: u32,
}

/// One PeerConnection.
pub struct PeerConnection {
    cfg: Config,
    cert: DtlsCertificate,
    local: LocalParams,
    role: Option<SignalingRole>,
    remote: Option<RemoteDescription>,
    /// Our offer is out and its answer not applied (JSEP `have-local-offer`).
    have_local_offer: bool,
    dtls: Option<Dtls>,
    dtls_client: bool,
    /// The remote description is in and the DTLS association not created yet: it is
    /// made on the next timer (see [`Self::poll_timeout`]), a DTLS datagram or ICE coming
    /// up, whichever is first. Creating one costs about 10 ms of key work (dimpl loads
    /// the key and makes its key share), so it happens off the offer/answer path and,
    /// for a client, before ICE is up rather than after.
    dtls_due: bool,
    /// DTLS flights made before ICE had a pair, sent on [`Self::transport_connected`]: a
    /// client's first flight, and a server's answer to a ClientHello that came in before
    /// our own ICE selected a pair (the controlled side can select one first, as soon as
    /// its check succeeds, and its ClientHello then overtakes our check's response). A
    /// datagram without a pair would be dropped and cost a retransmission timeout (1 s
    /// with OpenSSL).
    dtls_held: Vec<Vec<u8>>,
    early_dtls: Vec<Vec<u8>>,
    transport_up: bool,
    dtls_up: bool,
    sctp: DataChannels,
    srtp_tx: Option<SrtpContext>,
    srtp_rx: Option<SrtpContext>,
    srtp_name: Option<String>,
    audio_out: Option<AudioOut>,
    remote_audio_ssrc: Option<u32>,
    /// Our video SSRC and the negotiated VP8 payload type, once video is accepted.
    video_out: Option<(u32, u8)>,
    /// The peer's video SSRC as last seen (feedback we forward is about it).
    remote_video_ssrc: Option<u32>,
    /// Our own VP8 stream (from [`PeerConnection::send_video`]) and the peer's, assembled.
    video: crate::video::VideoRtp,
    /// We send video of our own (set by [`PeerConnection::set_video_sender`]): received
    /// video is assembled for the owner instead of echoed.
    video_sender: bool,
    audio_in: VecDeque<(u16, u32, Vec<u8>)>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<PcEvent>,
    closed: bool,
    /// Input arrived (a datagram, a message to send) and DTLS and SCTP have not been
    /// pumped since: the pump runs once, on the next poll, so a burst of inputs costs one
    /// pass. SCTP then bundles every queued message into full packets and acknowledges
    /// every received packet with one SACK, instead of a packet and a SACK per input.
    pump_due: bool,
    stats: PcStats,
    now: Instant,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("role", &self.role)
            .field("dtls_up", &self.dtls_up)
            .field("sctp", &self.sctp)
            .finish_non_exhaustive()
    }
}

fn profile_name(p: SrtpProfile) -> String {
    p.sdes_name().to_owned()
}

impl PeerConnection {
    /// A PeerConnection with its certificate; ICE credentials come from the owner's
    /// agent via [`Self::set_local_ice`].
    pub fn new(cfg: Config, cert: DtlsCertificate, now: Instant) -> Self {
        let seed = cfg.seed;
        let ssrc = (seed as u32) | 1;
        let local = LocalParams {
            session_id: seed >> 1,
            session_version: 2,
            ufrag: String::new(),
            pwd: String::new(),
            fingerprint: cert.fingerprint_sha256(),
            candidates: Vec::new(),
            end_of_candidates: false,
            audio_ssrc: cfg.audio.then_some(ssrc),
            video_ssrc: cfg.video.then_some(ssrc.wrapping_add(2)),
            video_codec: natter_video::assembler::Codec::Vp8,
            data: cfg.data,
            cname: format!("natter-{:08x}", (seed >> 32) as u32),
        };
        PeerConnection {
            cfg,
            cert,
            local,
            role: None,
            remote: None,
            have_local_offer: false,
            dtls: None,
            dtls_client: false,
            dtls_due: false,
            dtls_held: Vec::new(),
            early_dtls: Vec::new(),
            transport_up: false,
            dtls_up: false,
            sctp: DataChannels::new(),
            srtp_tx: None,
            srtp_rx: None,
            srtp_name: None,
            audio_out: None,
            remote_audio_ssrc: None,
            video_out: None,
            remote_video_ssrc: None,
            video: crate::video::VideoRtp::new(seed),
            video_sender: false,
            audio_in: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            closed: false,
            pump_due: false,
            stats: PcStats::default(),
            now,
        }
    }

    /// Our ICE ufrag and password (from the agent).
    pub fn set_local_ice(&mut self, ufrag: &str, pwd: &str) {
        self.local.ufrag = ufrag.to_owned();
        self.local.pwd = pwd.to_owned();
    }

    /// A local candidate (`a=candidate` value without `candidate:`) to put into the
    /// descriptions we create from now on.
    pub fn add_local_candidate(&mut self, value: &str) {
        self.local.candidates.push(value.to_owned());
    }

    /// Gathering is complete (descriptions get `a=end-of-candidates`).
    pub fn set_end_of_local_candidates(&mut self) {
        self.local.end_of_candidates = true;
    }

    /// Our description's parameters.
    pub fn local_params(&self) -> &LocalParams {
        &self.local
    }

    /// The applied remote description.
    pub fn remote(&self) -> Option<&RemoteDescription> {
        self.remote.as_ref()
    }

    /// Signaling role, once decided.
    pub fn role(&self) -> Option<SignalingRole> {
        self.role
    }

    /// Counters and the state behind them (DTLS version, channel counts, SCTP RTO).
    pub fn stats(&self) -> PcStats {
        let mut s = self.stats.clone();
        s.channels_open = self.open_channel_ids().len() as u64;
        s.sctp_rto_ms = self.sctp.rto().map(|d| d.as_millis() as u64);
        s
    }

    /// Whether a session is negotiated and no offer of ours is pending (JSEP `stable`
    /// after the first exchange): a new offer either way is a renegotiation.
    pub fn is_stable(&self) -> bool {
        self.remote.is_some() && !self.have_local_offer
    }

    /// Adds audio and/or data to what we do, for the next offer or answer (JSEP §5.2.2:
    /// a renegotiation appends their m-sections).
    pub fn add_media(&mut self, audio: bool, data: bool) {
        if audio && self.local.audio_ssrc.is_none() {
            self.cfg.audio = true;
            self.local.audio_ssrc = Some((self.cfg.seed as u32) | 1);
        }
        if data {
            self.cfg.data = true;
            self.local.data = true;
        }
    }

    /// Whether `sdp`, an offer on a live session, carries new ICE credentials: an ICE
    /// restart (RFC 8839 §4.4.1.1.1). The owner then restarts its agent and calls
    /// [`Self::set_local_ice`] with the new credentials before [`Self::accept_offer`].
    pub fn offer_restarts_ice(&self, sdp: &str) -> bool {
        match (&self.remote, jsep::parse_remote(sdp)) {
            (Some(old), Ok(new)) => old.ufrag != new.ufrag || old.pwd != new.pwd,
            _ => false,
        }
    }

    fn settled_setup(&self) -> &'static str {
        if self.dtls_client {
            "active"
        } else {
            "passive"
        }
    }

    /// Creates our offer (audio and/or data as configured). On a live session this is a
    /// subsequent offer: existing m-sections keep order and mids, new ones are appended,
    /// `a=setup` keeps the DTLS role, ICE credentials are whatever [`Self::set_local_ice`]
    /// last set (new ones: an ICE restart).
    pub fn create_offer(&mut self) -> Result<String, JsepError> {
        if self.is_stable() {
            let existing: Vec<(jsep::Kind, String)> = self
                .remote
                .iter()
                .flat_map(|r| r.media.iter().map(|m| (m.kind, m.mid.clone())))
                .collect();
            self.local.session_version += 1;
            self.have_local_offer = true;
            return Ok(jsep::create_offer_with(
                &self.local,
                &existing,
                self.settled_setup(),
            ));
        }
        if self.role == Some(SignalingRole::Answerer) {
            return Err(JsepError::State("already answering"));
        }
        self.role = Some(SignalingRole::Offerer);
        self.have_local_offer = true;
        Ok(jsep::create_offer(&self.local))
    }

    /// A subsequent description must keep the session's m-sections in order with their
    /// mids (JSEP §5.2.2/§5.3.2 for ours; we hold the peer to the same) and its DTLS
    /// certificate (a new DTLS association is not supported).
    fn check_subsequent(old: &RemoteDescription, new: &RemoteDescription) -> Result<(), JsepError> {
        for m in &old.media {
            match new.media.get(m.index) {
                Some(n) if n.mid == m.mid && n.kind == m.kind => {}
                _ => {
                    return Err(JsepError::Unsupported(format!(
                        "m-section {} (mid {}) moved or removed",
                        m.index, m.mid
                    )))
                }
            }
        }
        if new.fingerprint != old.fingerprint {
            return Err(JsepError::Unsupported(
                "DTLS fingerprint changed (new DTLS association)".into(),
            ));
        }
        Ok(())
    }

    /// A renegotiating offer on a live session: answered with the same DTLS role; new
    /// m-sections are taken up (audio starts, SCTP starts over the running DTLS).
    fn accept_reoffer(&mut self, sdp: &str, now: Instant) -> Result<String, JsepError> {
        let remote = jsep::parse_remote(sdp)?;
        if let Some(old) = &self.remote {
            Self::check_subsequent(old, &remote)?;
        }
        self.local.session_version += 1;
        let answer = jsep::create_answer(&self.local, &remote)?;
        let answer = if self.dtls_client {
            answer
        } else {
            answer.replace("a=setup:active", "a=setup:passive")
        };
        self.apply_remote(remote, now);
        Ok(answer)
    }

    /// Applies the peer's offer; returns our answer. We take `a=setup:active`. On a live
    /// session (either side offered first) the offer renegotiates.
    pub fn accept_offer(&mut self, sdp: &str, now: Instant) -> Result<String, JsepError> {
        if self.is_stable() {
            return self.accept_reoffer(sdp, now);
        }
        if self.role.is_some() {
            return Err(JsepError::State("offer after local description"));
        }
        let remote = jsep::parse_remote(sdp)?;
        if remote.setup == Setup::Active {
            // The offerer insists on being the client; we serve.
            self.dtls_client = false;
        } else {
            self.dtls_client = true;
        }
        let answer = jsep::create_answer(&self.local, &remote)?;
        let answer = if remote.setup == Setup::Active {
            answer.replace("a=setup:active", "a=setup:passive")
        } else {
            answer
        };
        self.role = Some(SignalingRole::Answerer);
        self.apply_remote(remote, now);
        Ok(answer)
    }

    /// Applies the peer's answer to our offer.
    pub fn accept_answer(&mut self, sdp: &str, now: Instant) -> Result<(), JsepError> {
        if !self.have_local_offer {
            return Err(JsepError::State("answer without a pending offer"));
        }
        let remote = jsep::parse_remote(sdp)?;
        if let Some(old) = &self.remote {
            // The answer to a subsequent offer: the DTLS role stays.
            Self::check_subsequent(old, &remote)?;
            self.have_local_offer = false;
            self.apply_remote(remote, now);
            return Ok(());
        }
        self.dtls_client = match remote.setup {
            Setup::Active => false,
            Setup::Passive => true,
            Setup::ActPass => {
                return Err(JsepError::Unsupported(
                    "a=setup:actpass in an answer".into(),
                ))
            }
        };
        self.have_local_offer = false;
        self.apply_remote(remote, now);
        Ok(())
    }

    fn apply_remote(&mut self, remote: RemoteDescription, now: Instant) {
        self.now = now;
        if let (Some(ssrc), Some(a), None) =
            (self.local.audio_ssrc, remote.audio(), &self.audio_out)
        {
            if self.role == Some(SignalingRole::Answerer) || a.direction != "inactive" {
                self.audio_out = Some(AudioOut {
                    ssrc,
                    pt: a.opus_pt.unwrap_or(jsep::OPUS_PT),
                    seq: (self.cfg.seed >> 16) as u16,
                    ts_offset: (self.cfg.seed >> 24) as u32,
                });
            }
        }
        if let (Some(ssrc), Some(v), None) = (self.local.video_ssrc, remote.video(), self.video_out)
        {
            let choice = v.video_choice(self.local.video_codec);
            self.video_out = choice.map(|(_, pt)| (ssrc, pt));
            if let Some((codec, _)) = choice {
                self.video.set_codec(codec);
            }
            self.video.set_twcc(v.twcc_ext);
            let rtx = choice.and_then(|(_, pt)| v.rtx_for(pt));
            let ours = rtx.map(|pt| crate::video::Rtx {
                ssrc: jsep::rtx_ssrc(ssrc),
                pt,
            });
            self.video.set_rtx(ours, rtx);
        }
        // A data m-section that a renegotiation added to a running DTLS association.
        let data_max = remote.data().map(|d| d.max_message_size);
        self.remote = Some(remote);
        if let (true, true, Some(max)) = (self.dtls_up, self.cfg.data, data_max) {
            self.sctp.start(self.dtls_client, max, now);
            self.pump(now);
        }
        // Created on the next timer, off the offer/answer path; the server then waits for
        // the ClientHello, the client holds its own until ICE is up.
        if self.dtls.is_none() {
            self.dtls_due = true;
        }
    }

    fn start_dtls(&mut self, now: Instant) {
        if self.dtls.is_some() || self.closed {
            return;
        }
        self.dtls_due = false;
        let Some(remote) = &self.remote else {
            return;
        };
        let role = if self.dtls_client {
            DtlsRole::Client
        } else {
            DtlsRole::Server
        };
        let fp = remote.fingerprint.clone();
        match Dtls::new(self.cfg.dtls, role, &self.cert, fp, now) {
            Ok(d) => self.dtls = Some(d),
            Err(e) => {
                self.fail(format!("DTLS setup: {e}"));
                return;
            }
        }
        for d in std::mem::take(&mut self.early_dtls) {
            if let Some(dtls) = self.dtls.as_mut() {
                dtls.handle_datagram(&d, now);
            }
        }
        self.pump(now);
    }

    /// ICE has a selected pair: a DTLS client starts its handshake.
    pub fn transport_connected(&mut self, now: Instant) {
        self.transport_up = true;
        self.start_dtls(now);
        self.out.extend(self.dtls_held.drain(..));
    }

    /// Whether DTLS output must wait for ICE: any flight before a pair exists.
    fn hold_dtls(&self) -> bool {
        !self.transport_up
    }

    /// Creates a data channel (opens when SCTP is up and the peer acknowledges).
    pub fn create_channel(&mut self, label: &str, channel_type: ChannelType) -> u16 {
        let id = self.sctp.create_channel(label, "", channel_type);
        self.pump(self.now);
        id
    }

    /// Channel ids are renumbered when SCTP starts (even/odd by DTLS role); the label is
    /// the stable handle before that.
    pub fn channel_id(&self, label: &str) -> Option<u16> {
        self.sctp
            .channels()
            .find(|c| c.label == label)
            .map(|c| c.id)
    }

    /// Ids of the open channels.
    pub fn open_channel_ids(&self) -> Vec<u16> {
        self.sctp
            .channels()
            .filter(|c| c.state == crate::sctp::ChannelState::Open)
            .map(|c| c.id)
            .collect()
    }

    /// Sends a message.
    pub fn send(
        &mut self,
        id: u16,
        text: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), SendError> {
        self.sctp.send(id, text, data)?;
        self.stats.msgs_tx += 1;
        self.now = self.now.max(now);
        // Packets go out on the next poll: messages sent together share packets.
        self.pump_due = true;
        Ok(())
    }

    /// Bytes not yet acknowledged on a channel.
    pub fn buffered_amount(&mut self, id: u16) -> usize {
        self.sctp.buffered_amount(id)
    }

    /// Sets a channel's low mark (W3C `bufferedAmountLowThreshold`): flow control for a sender
    /// that stops at a high mark of [`Self::buffered_amount`] and resumes on
    /// [`PcEvent::BufferedAmountLow`]. `false` when the channel does not exist (yet).
    pub fn set_buffered_amount_low_threshold(&mut self, id: u16, bytes: usize) -> bool {
        self.sctp.set_buffered_amount_low_threshold(id, bytes)
    }

    /// Closes a channel.
    pub fn close_channel(&mut self, id: u16, now: Instant) {
        self.sctp.close_channel(id);
        self.pump(now);
    }

    /// One datagram from the selected pair (STUN already taken out by the ICE agent).
    /// Demultiplexed by its first byte (RFC 7983).
    pub fn handle_datagram(&mut self, data: &[u8], now: Instant) {
        self.now = now;
        self.stats.packets_rx += 1;
        self.stats.bytes_rx += data.len() as u64;
        match data.first().copied() {
            Some(20..=63) => match self.dtls.as_mut() {
                Some(d) => d.handle_datagram(data, now),
                None if self.dtls_due => {
                    self.start_dtls(now);
                    if let Some(d) = self.dtls.as_mut() {
                        d.handle_datagram(data, now);
                    }
                }
                None => {
                    if self.early_dtls.len() < MAX_EARLY_DTLS {
                        self.early_dtls.push(data.to_vec());
                    }
                }
            },
            Some(128..=191) => self.handle_srtp(data),
            _ => self.stats.unknown += 1,
        }
        // SCTP runs on the next poll: datagrams handled together get one SACK, and the
        // replies to their messages share packets.
        self.pump_due = true;
    }

    /// Sends one Opus frame (`samples` at 48 kHz) on the audio stream.
    pub fn send_audio(&mut self, opus: &[u8], timestamp: u32, marker: bool, now: Instant) {
        let (Some(a), Some(tx)) = (self.audio_out.as_mut(), self.srtp_tx.as_mut()) else {
            return;
        };
        let h = RtpHeader {
            marker,
            payload_type: a.pt,
            sequence: a.seq,
            timestamp: timestamp.wrapping_add(a.ts_offset),
            ssrc: a.ssrc,
            ..RtpHeader::default()
        };
        a.seq = a.seq.wrapping_add(1);
        let mut pkt = Vec::with_capacity(opus.len() + 32);
        if h.write(opus, &mut pkt).is_ok() && tx.protect_rtp_in_place(&mut pkt).is_ok() {
            self.out.push_back(pkt);
            self.stats.rtp_tx += 1;
        }
        self.pump(now);
    }

    /// Next received audio payload (with [`Config::capture_audio`]).
    pub fn poll_audio(&mut self) -> Option<Vec<u8>> {
        self.audio_in.pop_front().map(|p| p.2)
    }

    /// Next received audio packet (with [`Config::capture_audio`]): sequence number, RTP
    /// timestamp and payload, for a jitter buffer.
    pub fn poll_audio_packet(&mut self) -> Option<(u16, u32, Vec<u8>)> {
        self.audio_in.pop_front()
    }

    /// Whether audio can be sent (DTLS-SRTP keyed and an audio stream negotiated).
    pub fn audio_ready(&self) -> bool {
        self.audio_out.is_some() && self.srtp_tx.is_some()
    }

    fn handle_srtp(&mut self, data: &[u8]) {
        // RFC 5761 §4: RTCP packet types 192..=223 in the second byte.
        let is_rtcp = matches!(data.get(1), Some(192..=223));
        let Some(rx) = self.srtp_rx.as_mut() else {
            return;
        };
        let mut buf = data.to_vec();
        if is_rtcp {
            if rx.unprotect_rtcp_in_place(&mut buf).is_err() {
                self.stats.srtp_bad += 1;
                return;
            }
            // Reports are not used; video feedback about our echo goes to the source, about
            // our own video to our sender.
            if self.video_echo() {
                self.forward_video_feedback(&buf);
            } else if let Some((ours, _)) = self.video_out {
                for pkt in self.video.on_rtcp(&buf, ours, self.now) {
                    self.protect_and_queue(pkt);
                }
            }
            return;
        }
        if rx.unprotect_rtp_in_place(&mut buf).is_err() {
            self.stats.srtp_bad += 1;
            return;
        }
        let Ok(p) = RtpPacket::parse(&buf) else {
            return;
        };
        self.stats.rtp_rx += 1;
        if let Some((vssrc, vpt)) = self.video_out {
            let rtx = self.video.is_remote_rtx(p.payload_type());
            if p.payload_type() == vpt || rtx {
                if !self.video_echo() {
                    if rtx {
                        self.video.on_rtx(&p, self.now);
                    } else {
                        self.remote_video_ssrc = Some(p.ssrc());
                        self.video.on_rtp(&p, self.now);
                    }
                    self.flush_video_feedback();
                    return;
                }
                // Echoed, a retransmission goes back as the packet it repairs.
                let Some((seq, payload)) = (if rtx {
                    crate::video::rtx_unwrap(&p).filter(|(_, b)| !b.is_empty())
                } else {
                    self.remote_video_ssrc = Some(p.ssrc());
                    Some((p.sequence(), p.payload()))
                }) else {
                    return;
                };
                if self.cfg.echo {
                    // Same sequence numbers and timestamps, our SSRC: the peer's NACKs and
                    // PLIs about our stream map 1:1 onto its own.
                    let h = RtpHeader {
                        marker: p.marker(),
                        payload_type: vpt,
                        sequence: seq,
                        timestamp: p.timestamp(),
                        ssrc: vssrc,
                        ..RtpHeader::default()
                    };
                    let mut pkt = Vec::with_capacity(buf.len() + 16);
                    if let Some(tx) = self.srtp_tx.as_mut() {
                        if h.write(payload, &mut pkt).is_ok()
                            && tx.protect_rtp_in_place(&mut pkt).is_ok()
                        {
                            self.out.push_back(pkt);
                            self.stats.rtp_tx += 1;
                        }
                    }
                }
                return;
            }
        }
        if self.remote_audio_ssrc.is_none() {
            self.remote_audio_ssrc = Some(p.ssrc());
            self.events
                .push_back(PcEvent::AudioStarted { ssrc: p.ssrc() });
        }
        if self.cfg.capture_audio && self.audio_in.len() < 256 {
            self.audio_in
                .push_back((p.sequence(), p.timestamp(), p.payload().to_vec()));
        }
        if self.cfg.echo {
            let (payload, ts, marker) = (p.payload().to_vec(), p.timestamp(), p.marker());
            self.send_audio(&payload, ts, marker, self.now);
        }
    }

    /// Received video is echoed (with `echo`, unless we send video of our own).
    fn video_echo(&self) -> bool {
        self.cfg.echo && !self.video_sender
    }

    /// We send video of our own: call before the offer/answer. Received video is then
    /// assembled for [`Self::poll_video_frame`] rather than echoed.
    pub fn set_video_sender(&mut self, on: bool) {
        self.video_sender = on;
    }

    /// Whether video can be sent (DTLS-SRTP keyed and a VP8 stream negotiated).
    pub fn video_ready(&self) -> bool {
        self.video_out.is_some() && self.srtp_tx.is_some()
    }

    /// Sends one encoded VP8 frame with RTP timestamp `timestamp` (90 kHz).
    pub fn send_video(&mut self, frame: &[u8], timestamp: u32, keyframe: bool, now: Instant) {
        let Some((ssrc, pt)) = self.video_out else {
            return;
        };
        if self.srtp_tx.is_none() {
            return;
        }
        for pkt in self
            .video
            .packetize(ssrc, pt, frame, timestamp, keyframe, now)
        {
            self.protect_and_queue(pkt);
            self.stats.rtp_tx += 1;
        }
        self.pump(now);
    }

    /// The peer asked for a key frame (PLI or FIR) since the last call.
    pub fn take_keyframe_request(&mut self) -> bool {
        self.video.take_keyframe_request()
    }

    /// A new target bitrate (bit/s) from the send-side estimate (TWCC feedback), if it
    /// changed since the last call.
    pub fn take_target_bitrate(&mut self) -> Option<u32> {
        self.video.take_target_bitrate()
    }

    /// Asks the peer for a key frame (our decoder failed).
    pub fn request_keyframe(&mut self) {
        self.video.request_keyframe();
        self.flush_video_feedback();
    }

    /// Next frame of the peer's video, assembled (with [`Self::set_video_sender`]).
    pub fn poll_video_frame(&mut self) -> Option<natter_video::assembler::AssembledFrame> {
        self.video.poll_frame()
    }

    /// Video counters.
    pub fn video_stats(&self) -> crate::video::VideoStats {
        self.video.stats()
    }

    /// Preferred video codec (call before the offer/answer): offered first, chosen when the
    /// peer offers it.
    pub fn set_video_codec(&mut self, codec: natter_video::assembler::Codec) {
        self.local.video_codec = codec;
    }

    /// The negotiated video codec (VP8 until negotiated).
    pub fn video_codec(&self) -> natter_video::assembler::Codec {
        self.video.codec()
    }

    /// The video RTP state (RTX, test loss).
    pub fn video_rtp_mut(&mut self) -> &mut crate::video::VideoRtp {
        &mut self.video
    }

    fn protect_and_queue(&mut self, mut pkt: Vec<u8>) {
        if let Some(tx) = self.srtp_tx.as_mut() {
            let rtcp = matches!(pkt.get(1), Some(192..=223));
            let ok = if rtcp {
                tx.protect_rtcp_in_place(&mut pkt).is_ok()
            } else {
                tx.protect_rtp_in_place(&mut pkt).is_ok()
            };
            if ok {
                self.out.push_back(pkt);
            }
        }
    }

    /// Sends due NACK/PLI feedback about the peer's video.
    fn flush_video_feedback(&mut self) {
        let Some((ours, _)) = self.video_out else {
            return;
        };
        if let Some(fb) = self.video.poll_feedback(ours, self.now) {
            self.protect_and_queue(fb);
        }
    }

    /// Forwards the peer's NACK (RTPFB 1), PLI (PSFB 1) and FIR (PSFB 4) about our echoed
    /// video to the peer's own video source, rewriting the SSRCs, so its encoder
    /// retransmits or sends a key frame.
    fn forward_video_feedback(&mut self, rtcp: &[u8]) {
        let (Some((ours, _)), Some(theirs)) = (self.video_out, self.remote_video_ssrc) else {
            return;
        };
        let mut out = Vec::new();
        let mut rest = rtcp;
        while rest.len() >= 12 {
            let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
            let Some(pkt) = rest.get(..len) else {
                break;
            };
            rest = &rest[len..];
            let (fmt, pt) = (pkt[0] & 0x1f, pkt[1]);
            let fb = matches!((pt, fmt), (205, 1) | (206, 1) | (206, 4));
            let media = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
            if !fb || (media != ours && !(pt == 206 && fmt == 4)) {
                continue;
            }
            let mut p = pkt.to_vec();
            p[4..8].copy_from_slice(&ours.to_be_bytes());
            p[8..12].copy_from_slice(&theirs.to_be_bytes());
            if pt == 206 && fmt == 4 {
                // FIR carries the target SSRC in its FCI.
                match p.get_mut(12..16) {
                    Some(t) if u32::from_be_bytes([t[0], t[1], t[2], t[3]]) == ours => {
                        t.copy_from_slice(&theirs.to_be_bytes());
                    }
                    _ => continue,
                }
            }
            out.extend_from_slice(&p);
        }
        if out.is_empty() {
            return;
        }
        if let Some(tx) = self.srtp_tx.as_mut() {
            if tx.protect_rtcp_in_place(&mut out).is_ok() {
                self.out.push_back(out);
            }
        }
    }

    /// Runs timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.dtls_due {
            self.start_dtls(now);
        }
        let hold = self.hold_dtls();
        if let Some(d) = self.dtls.as_mut() {
            if hold && d.poll_timeout().is_some_and(|t| t <= now) {
                // A retransmitted first flight replaces the one still held.
                self.dtls_held.clear();
            }
            d.handle_timeout(now);
        }
        if self.sctp.poll_timeout().is_some_and(|t| t <= now) {
            self.sctp.handle_timeout(now);
        }
        if !self.video_echo() {
            self.flush_video_feedback();
        }
        self.pump(now);
    }

    /// The earliest timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if (self.dtls_due || self.pump_due) && !self.closed {
            return Some(self.now);
        }
        let d = self.dtls.as_ref().and_then(|d| d.poll_timeout());
        let s = if self.dtls_up {
            self.sctp.poll_timeout()
        } else {
            None
        };
        match (d, s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Next datagram to send on the selected pair.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.pump_due {
            self.pump(self.now);
        }
        let d = self.out.pop_front()?;
        self.stats.packets_tx += 1;
        self.stats.bytes_tx += d.len() as u64;
        Some(d)
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<PcEvent> {
        if self.pump_due {
            self.pump(self.now);
        }
        self.events.pop_front()
    }

    /// Closes everything (SCTP shutdown is skipped; DTLS close_notify is sent).
    pub fn close(&mut self, now: Instant) {
        if let Some(d) = self.dtls.as_mut() {
            d.close();
        }
        self.pump(now);
        self.closed = true;
    }

    fn fail(&mut self, reason: String) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(PcEvent::Closed { reason });
        }
    }

    /// Moves data between DTLS and SCTP until both are quiet.
    fn pump(&mut self, now: Instant) {
        self.pump_due = false;
        for _ in 0..64 {
            let mut busy = false;
            self.drain_dtls();
            while let Some(ev) = self.dtls.as_mut().and_then(|d| d.poll_event()) {
                busy = true;
                match ev {
                    DtlsEvent::Connected {
                        profile_id,
                        keying_material,
                        version,
                        ..
                    } => self.on_dtls_connected(profile_id, &keying_material, version),
                    DtlsEvent::ApplicationData(data) => self.sctp.handle_packet(&data, now),
                    DtlsEvent::Closed => self.fail("peer closed DTLS".into()),
                    DtlsEvent::Failed(e) => self.fail(format!("DTLS: {e}")),
                }
            }
            if self.dtls_up {
                while let Some(pkt) = self.sctp.poll_transmit(now) {
                    busy = true;
                    if let Some(d) = self.dtls.as_mut() {
                        if d.send_application_data(&pkt).is_err() {
                            break;
                        }
                    }
                }
            }
            while let Some(ev) = self.sctp.poll_event() {
                busy = true;
                self.on_channel_event(ev);
            }
            if !busy {
                break;
            }
        }
        self.drain_dtls();
    }

    /// DTLS datagrams to the wire, or held while a client has no pair yet.
    fn drain_dtls(&mut self) {
        let hold = self.hold_dtls();
        if let Some(d) = self.dtls.as_mut() {
            while let Some(p) = d.poll_datagram() {
                if hold {
                    self.dtls_held.push(p);
                } else {
                    self.out.push_back(p);
                }
            }
        }
    }

    fn on_dtls_connected(&mut self, profile_id: u16, km: &[u8], version: &str) {
        if self.dtls_up {
            return;
        }
        self.dtls_up = true;
        if let Some(profile) = SrtpProfile::from_dtls_id(profile_id) {
            if let Some((tk, ts, rk, rs)) = srtp_keys(profile_id, km, self.dtls_client) {
                self.srtp_tx = SrtpContext::new(profile, &tk, &ts).ok();
                self.srtp_rx = SrtpContext::new(profile, &rk, &rs).ok();
                self.srtp_name = Some(profile_name(profile));
            }
        }
        self.stats.dtls = Some(version.to_owned());
        self.stats.srtp = self.srtp_name.clone();
        self.events.push_back(PcEvent::Connected {
            dtls: version.to_owned(),
            srtp: self.srtp_name.clone(),
        });
        let remote_data = self.remote.as_ref().and_then(|r| r.data().cloned());
        if let Some(d) = remote_data {
            if self.cfg.data {
                self.sctp
                    .start(self.dtls_client, d.max_message_size, self.now);
            }
        }
    }

    fn label(&self, id: u16) -> String {
        self.sctp
            .channel(id)
            .map(|c| c.label.clone())
            .unwrap_or_default()
    }

    fn on_channel_event(&mut self, ev: ChannelEvent) {
        match ev {
            ChannelEvent::Connected => {}
            ChannelEvent::Open { id, label } => {
                self.stats.channels_opened += 1;
                self.events.push_back(PcEvent::ChannelOpen { id, label })
            }
            ChannelEvent::Message { id, text, data } => {
                self.stats.msgs_rx += 1;
                if self.cfg.echo && text {
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&data);
                    if self.sctp.send(id, true, &reply).is_ok() {
                        self.stats.msgs_tx += 1;
                    }
                }
                let label = self.label(id);
                self.events.push_back(PcEvent::Message {
                    id,
                    label,
                    text,
                    data,
                });
            }
            ChannelEvent::Closed { id } => {
                self.stats.channels_closed += 1;
                let label = self.label(id);
                self.events.push_back(PcEvent::ChannelClosed { id, label });
            }
            ChannelEvent::BufferedAmountLow { id } => {
                let label = self.label(id);
                self.events
                    .push_back(PcEvent::BufferedAmountLow { id, label });
            }
            ChannelEvent::Lost(reason) => self.fail(format!("SCTP: {reason}")),
        }
    }
}
