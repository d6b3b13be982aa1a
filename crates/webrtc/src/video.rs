//! Video of the PeerConnection: our VP8 or H.264 stream and the peer's, at the RTP level
//! (sans-IO), plus the media ends the driver and tests use (a test pattern or y4m file
//! encoded with libvpx or OpenH264; received frames decoded and written to a y4m file).
//!
//! Sending: each encoded frame is packetized (RFC 7741; RFC 6184 packetization mode 1),
//! numbered, kept in a short history
//! and handed back as plaintext RTP for the PeerConnection to protect. A NACK from the peer
//! (RFC 4585 generic NACK) retransmits from the history: as RTX (RFC 4588: own SSRC, own
//! payload type and sequence space, the original sequence number in the first two payload
//! bytes) when the peer negotiated `rtx` with `apt=` our codec, else the packet again on the
//! media SSRC. A PLI or FIR (RFC 4585/5104) raises a key-frame request for the encoder.
//!
//! Receiving: packets (and the peer's RTX, unwrapped to the original sequence number;
//! padding-only RTX probes are counted and dropped) go into natter-video's frame assembler;
//! gaps become NACKs and lost
//! frames a PLI (repeated at most every [`PLI_INTERVAL`] while no key frame arrives), each
//! sent as a compound RTCP packet behind an empty receiver report.

use std::collections::VecDeque;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

use natter_rtp::{RtcpPacket, RtpHeader, RtpPacket};
use natter_video::assembler::{AssembledFrame, FrameAssembler};
use natter_video::h264codec::{H264Decoder, H264Encoder};
use natter_video::pattern::TestPattern;
use natter_video::twcc::{SendSideBwe, TwccReceiver};
use natter_video::vp8::Vp8Packetizer;
use natter_video::vp8codec::{EncoderConfig, Vp8Decoder, Vp8Encoder};
use natter_video::y4m::{Y4mReader, Y4mWriter};
use natter_video::I420Frame;

/// The video codecs (VP8, H.264 packetization mode 1).
pub use natter_video::assembler::Codec;

/// VP8's RTP clock.
pub const CLOCK_RATE: u32 = 90_000;
/// Largest VP8 payload we send (room for SRTP, header extensions and TURN framing).
pub const MAX_PAYLOAD: usize = 1100;
/// Sent packets kept for retransmission.
pub const HISTORY: usize = 600;
/// Shortest time between two PLIs while waiting for a key frame.
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Time between two transport-wide feedback messages.
pub const TWCC_INTERVAL: Duration = Duration::from_millis(100);
/// Send-side estimate: start, floor and ceiling in bit/s.
pub const BWE_START: u32 = 500_000;
/// Floor of the estimate.
pub const BWE_MIN: u32 = 80_000;
/// Ceiling of the estimate.
pub const BWE_MAX: u32 = 2_500_000;

/// Video counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoStats {
    /// Frames sent.
    pub frames_sent: u64,
    /// Key frames among them.
    pub keyframes_sent: u64,
    /// RTP packets sent (retransmissions included).
    pub packets_sent: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Packets sent again on NACK.
    pub retransmitted: u64,
    /// RTP packets received on the video stream.
    pub packets_received: u64,
    /// Frames assembled from the peer's stream.
    pub frames_received: u64,
    /// Frames given up (gap not filled in time).
    pub frames_lost: u64,
    /// Sequence numbers we NACKed.
    pub nacks_sent: u64,
    /// PLIs we sent.
    pub plis_sent: u64,
    /// Sequence numbers the peer NACKed.
    pub nacks_received: u64,
    /// NACKed numbers not sent again because they were resent less than
    /// [`RESEND_INTERVAL`] before.
    pub nacks_suppressed: u64,
    /// PLIs and FIRs the peer sent about our stream.
    pub keyframe_requests_received: u64,
    /// Transport-wide feedback messages received (and used by the estimate).
    pub twcc_feedback_received: u64,
    /// Transport-wide feedback messages sent.
    pub twcc_feedback_sent: u64,
    /// Current send-side estimate, bit/s.
    pub estimate_bps: u32,
    /// Loss fraction seen in the last feedback, per mille.
    pub loss_permille: u32,
    /// Retransmissions sent as RTX packets (RFC 4588; also counted in `retransmitted`).
    pub rtx_sent: u64,
    /// RTX packets received that carried a packet (unwrapped into the assembler).
    pub rtx_received: u64,
    /// Padding-only RTX packets received (the peer's bandwidth probes).
    pub rtx_padding_received: u64,
    /// Packets left out on purpose by [`VideoRtp::set_test_loss`].
    pub test_dropped: u64,
}

/// The first two payload bytes of an RTX packet: the original sequence number (RFC 4588 §4).
/// `None` for padding-only packets (probes) and anything shorter.
pub fn rtx_unwrap<'a>(p: &RtpPacket<'a>) -> Option<(u16, &'a [u8])> {
    let b = p.payload();
    let osn = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    Some((osn, &b[2..]))
}

/// RTX of one direction: our retransmission stream, or the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtx {
    /// RTX SSRC (ours; the peer's is recognised by payload type).
    pub ssrc: u32,
    /// RTX payload type (`a=rtpmap:<pt> rtx/90000` with `apt=` the media type).
    pub pt: u8,
}

/// How soon one sent packet may be retransmitted again. A receiver NACKs a gap again only
/// after about a round trip (libwebrtc waits at least 5 ms and the RTT), so repeats inside this
/// interval are duplicates within one NACK or one burst of them.
pub const RESEND_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// One packet of our media stream kept for NACKs.
#[derive(Debug)]
struct Sent {
    seq: u16,
    bytes: Vec<u8>,
    resent_at: Option<Instant>,
}

/// RTP-level state of both video directions (owned by the PeerConnection).
#[derive(Debug)]
pub struct VideoRtp {
    codec: Codec,
    packetizer: Vp8Packetizer,
    seq: u16,
    history: VecDeque<Sent>,
    keyframe_requested: bool,
    assembler: FrameAssembler,
    remote_ssrc: Option<u32>,
    last_pli: Option<Instant>,
    pli_due: bool,
    frames: VecDeque<AssembledFrame>,
    stats: VideoStats,
    /// Negotiated `a=extmap` id of the transport-wide sequence number.
    twcc_id: Option<u8>,
    bwe: SendSideBwe,
    twcc_rx: TwccReceiver,
    last_twcc: Option<Instant>,
    new_target: Option<u32>,
    /// Our RTX stream, when negotiated.
    rtx: Option<Rtx>,
    /// Next sequence number of our RTX stream (its own space, RFC 4588 §4).
    rtx_seq: u16,
    /// The peer's RTX payload type, when negotiated.
    remote_rtx_pt: Option<u8>,
    /// Test loss: leave out every n-th new outgoing / incoming media packet (0: none).
    drop_tx_every: u64,
    drop_rx_every: u64,
    tx_count: u64,
    rx_count: u64,
}

impl VideoRtp {
    /// Fresh state; `seed` picks the first sequence number and PictureID.
    pub fn new(seed: u64) -> Self {
        VideoRtp {
            codec: Codec::Vp8,
            packetizer: Vp8Packetizer::new(MAX_PAYLOAD, (seed >> 40) as u16),
            seq: (seed >> 8) as u16,
            history: VecDeque::new(),
            keyframe_requested: false,
            assembler: FrameAssembler::new(Codec::Vp8),
            remote_ssrc: None,
            last_pli: None,
            pli_due: false,
            frames: VecDeque::new(),
            stats: VideoStats::default(),
            twcc_id: None,
            bwe: SendSideBwe::new(BWE_START, BWE_MIN, BWE_MAX),
            twcc_rx: TwccReceiver::new(),
            last_twcc: None,
            new_target: None,
            rtx: None,
            rtx_seq: (seed >> 24) as u16,
            remote_rtx_pt: None,
            drop_tx_every: 0,
            drop_rx_every: 0,
            tx_count: 0,
            rx_count: 0,
        }
    }

    /// The negotiated codec (before any packet flows).
    pub fn set_codec(&mut self, codec: Codec) {
        if codec != self.codec {
            self.codec = codec;
            self.assembler = FrameAssembler::new(codec);
        }
    }

    /// The negotiated codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The negotiated RTX streams: ours (`None`: retransmit on the media SSRC) and the
    /// peer's payload type.
    pub fn set_rtx(&mut self, ours: Option<Rtx>, remote_pt: Option<u8>) {
        self.rtx = ours;
        self.remote_rtx_pt = remote_pt;
    }

    /// Our RTX stream, if negotiated.
    pub fn rtx(&self) -> Option<Rtx> {
        self.rtx
    }

    /// Whether `pt` is the peer's RTX payload type.
    pub fn is_remote_rtx(&self, pt: u8) -> bool {
        self.remote_rtx_pt == Some(pt)
    }

    /// Testing loss recovery against real peers: leave out every `tx`-th new outgoing media
    /// packet (kept in the history, so a NACK repairs it) and every `rx`-th received media
    /// packet (RTX packets are never dropped); 0 turns a direction off.
    pub fn set_test_loss(&mut self, tx: u64, rx: u64) {
        self.drop_tx_every = tx;
        self.drop_rx_every = rx;
    }

    /// The negotiated transport-wide sequence number extension id (`None`: not used).
    pub fn set_twcc(&mut self, id: Option<u8>) {
        self.twcc_id = id;
    }

    /// A new target bitrate (bit/s) since the last call.
    pub fn take_target_bitrate(&mut self) -> Option<u32> {
        self.new_target.take()
    }

    /// Counters.
    pub fn stats(&self) -> VideoStats {
        let mut s = self.stats;
        let a = self.assembler.stats();
        s.frames_received = a.frames;
        s.frames_lost = a.frames_dropped;
        s.estimate_bps = self.bwe.target_bps();
        s.loss_permille = (self.bwe.last_loss * 1000.0) as u32;
        s
    }

    /// The plaintext RTP packets of one encoded frame (kept for retransmission).
    pub fn packetize(
        &mut self,
        ssrc: u32,
        pt: u8,
        frame: &[u8],
        timestamp: u32,
        keyframe: bool,
        now: Instant,
    ) -> Vec<Vec<u8>> {
        let payloads = match self.codec {
            Codec::Vp8 => self.packetizer.packetize(frame),
            Codec::H264 => natter_video::h264::packetize(frame, MAX_PAYLOAD),
        };
        let n = payloads.len();
        let mut out = Vec::with_capacity(n);
        for (i, p) in payloads.into_iter().enumerate() {
            let mut h = RtpHeader {
                marker: i + 1 == n,
                payload_type: pt,
                sequence: self.seq,
                timestamp,
                ssrc,
                ..RtpHeader::default()
            };
            if let Some(id) = self.twcc_id {
                let tseq = self.bwe.on_send(p.len() + 12 + 4 + 10, now);
                h.extensions.push((id, tseq.to_be_bytes().to_vec()));
            }
            let mut pkt = Vec::with_capacity(p.len() + 12);
            if h.write(&p, &mut pkt).is_err() {
                continue;
            }
            self.stats.bytes_sent += p.len() as u64;
            self.history.push_back(Sent {
                seq: self.seq,
                bytes: pkt.clone(),
                resent_at: None,
            });
            if self.history.len() > HISTORY {
                self.history.pop_front();
            }
            self.seq = self.seq.wrapping_add(1);
            self.tx_count += 1;
            if self.drop_tx_every > 0 && self.tx_count % self.drop_tx_every == 0 {
                self.stats.test_dropped += 1;
                continue;
            }
            out.push(pkt);
        }
        self.stats.frames_sent += 1;
        self.stats.keyframes_sent += u64::from(keyframe);
        self.stats.packets_sent += out.len() as u64;
        out
    }

    /// Where sequence number `seq` is in the history. The history holds consecutive numbers
    /// (every media packet is stored as it is numbered), so this is an offset from the oldest.
    fn history_index(&self, seq: u16) -> Option<usize> {
        let first = self.history.front()?.seq;
        let i = usize::from(seq.wrapping_sub(first));
        self.history.get(i).filter(|e| e.seq == seq).map(|_| i)
    }

    /// A stored packet again for a NACK: wrapped as RTX on our RTX stream when negotiated
    /// (new sequence number, fresh transport-wide number), else the same bytes.
    fn retransmission(&mut self, pkt: &[u8], now: Instant) -> Option<Vec<u8>> {
        let Some(rtx) = self.rtx else {
            return Some(pkt.to_vec());
        };
        let p = RtpPacket::parse(pkt).ok()?;
        let mut h = RtpHeader {
            marker: p.marker(),
            payload_type: rtx.pt,
            sequence: self.rtx_seq,
            timestamp: p.timestamp(),
            ssrc: rtx.ssrc,
            ..RtpHeader::default()
        };
        let mut payload = Vec::with_capacity(p.payload().len() + 2);
        payload.extend_from_slice(&p.sequence().to_be_bytes());
        payload.extend_from_slice(p.payload());
        if let Some(id) = self.twcc_id {
            let tseq = self.bwe.on_send(payload.len() + 12 + 4 + 10, now);
            h.extensions.push((id, tseq.to_be_bytes().to_vec()));
        }
        let mut out = Vec::with_capacity(payload.len() + 20);
        h.write(&payload, &mut out).ok()?;
        self.rtx_seq = self.rtx_seq.wrapping_add(1);
        self.stats.rtx_sent += 1;
        Some(out)
    }

    /// One authenticated RTX packet of the peer (its payload type is the negotiated RTX
    /// type): the original packet goes into the assembler; padding-only probes are counted.
    pub fn on_rtx(&mut self, p: &RtpPacket<'_>, now: Instant) {
        self.record_twcc(p, now);
        let Some((osn, payload)) = rtx_unwrap(p) else {
            self.stats.rtx_padding_received += 1;
            return;
        };
        if payload.is_empty() {
            self.stats.rtx_padding_received += 1;
            return;
        }
        self.stats.rtx_received += 1;
        self.assembler.push(osn, p.timestamp(), p.marker(), payload);
        self.after_push(now);
    }

    fn record_twcc(&mut self, p: &RtpPacket<'_>, now: Instant) {
        if let Some(id) = self.twcc_id {
            if let Some((_, v)) = p.extensions().find(|(i, v)| *i == id && v.len() == 2) {
                self.twcc_rx
                    .on_packet(u16::from_be_bytes([v[0], v[1]]), now);
            }
        }
    }

    /// The peer asked for a key frame since the last call.
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_requested)
    }

    /// One authenticated RTP packet of the peer's video stream.
    pub fn on_rtp(&mut self, p: &RtpPacket<'_>, now: Instant) {
        self.rx_count += 1;
        if self.drop_rx_every > 0 && self.rx_count % self.drop_rx_every == 0 {
            self.stats.test_dropped += 1;
            return;
        }
        self.stats.packets_received += 1;
        self.record_twcc(p, now);
        if self.remote_ssrc != Some(p.ssrc()) {
            if self.remote_ssrc.is_some() {
                // A new source (the peer restarted its sender): start over.
                self.assembler = FrameAssembler::new(self.codec);
            }
            self.remote_ssrc = Some(p.ssrc());
        }
        self.assembler
            .push(p.sequence(), p.timestamp(), p.marker(), p.payload());
        self.after_push(now);
    }

    fn after_push(&mut self, now: Instant) {
        while let Some(f) = self.assembler.poll_frame() {
            if self.frames.len() >= 64 {
                self.frames.pop_front();
            }
            self.frames.push_back(f);
        }
        if self.assembler.take_keyframe_request() {
            self.pli_due = true;
        }
        if self.assembler.waiting_for_keyframe()
            && self
                .last_pli
                .map_or(true, |t| now.duration_since(t) >= PLI_INTERVAL)
        {
            self.pli_due = true;
        }
    }

    /// Asks the peer for a key frame (e.g. our decoder failed).
    pub fn request_keyframe(&mut self) {
        self.pli_due = true;
    }

    /// Next assembled frame of the peer's stream.
    pub fn poll_frame(&mut self) -> Option<AssembledFrame> {
        self.frames.pop_front()
    }

    /// A decrypted RTCP compound packet from the peer: PLI/FIR about `our_ssrc` raise a
    /// key-frame request; NACKs return the packets to send again (plaintext RTP).
    pub fn on_rtcp(&mut self, rtcp: &[u8], our_ssrc: u32, now: Instant) -> Vec<Vec<u8>> {
        let Ok(pkts) = natter_rtp::rtcp::parse_compound(rtcp, true) else {
            return Vec::new();
        };
        let mut resend = Vec::new();
        for p in pkts {
            match p {
                RtcpPacket::Pli { media_ssrc, .. } if media_ssrc == our_ssrc => {
                    self.keyframe_requested = true;
                    self.stats.keyframe_requests_received += 1;
                }
                RtcpPacket::Fir { entries, .. } if entries.iter().any(|e| e.0 == our_ssrc) => {
                    self.keyframe_requested = true;
                    self.stats.keyframe_requests_received += 1;
                }
                RtcpPacket::Nack {
                    media_ssrc, lost, ..
                } if media_ssrc == our_ssrc => {
                    self.stats.nacks_received += lost.len() as u64;
                    for s in lost {
                        let Some(i) = self.history_index(s) else {
                            continue;
                        };
                        // The same packet at most once per interval, however many times a
                        // NACK (or a burst of them) names it: a 1 KB NACK listing one number
                        // 256 times must not become 256 retransmissions.
                        if self.history[i]
                            .resent_at
                            .is_some_and(|t| now.saturating_duration_since(t) < RESEND_INTERVAL)
                        {
                            self.stats.nacks_suppressed += 1;
                            continue;
                        }
                        self.history[i].resent_at = Some(now);
                        let pkt = std::mem::take(&mut self.history[i].bytes);
                        if let Some(r) = self.retransmission(&pkt, now) {
                            resend.push(r);
                        }
                        self.history[i].bytes = pkt;
                    }
                }
                RtcpPacket::Other {
                    pt: 205,
                    fmt: natter_video::twcc::FMT,
                    body,
                } => {
                    let mut whole = vec![0x80 | natter_video::twcc::FMT, 205, 0, 0];
                    whole.extend_from_slice(&body);
                    if let Ok(fb) = natter_video::twcc::parse_feedback(&whole) {
                        self.stats.twcc_feedback_received += 1;
                        if let Some(t) = self.bwe.on_feedback(&fb, now) {
                            self.new_target = Some(t);
                        }
                    }
                }
                _ => {}
            }
        }
        self.stats.retransmitted += resend.len() as u64;
        self.stats.packets_sent += resend.len() as u64;
        resend
    }

    /// Feedback to send now (plaintext compound RTCP: RR, then NACK and/or PLI), if any.
    pub fn poll_feedback(&mut self, sender_ssrc: u32, now: Instant) -> Option<Vec<u8>> {
        let media_ssrc = self.remote_ssrc?;
        let mut pkts = vec![RtcpPacket::ReceiverReport {
            ssrc: sender_ssrc,
            reports: Vec::new(),
        }];
        let lost = self.assembler.take_nacks();
        if !lost.is_empty() {
            self.stats.nacks_sent += lost.len() as u64;
            pkts.push(RtcpPacket::Nack {
                sender_ssrc,
                media_ssrc,
                lost,
            });
        }
        let pli_ok = self
            .last_pli
            .map_or(true, |t| now.duration_since(t) >= PLI_INTERVAL / 5);
        if self.pli_due && pli_ok {
            self.pli_due = false;
            self.last_pli = Some(now);
            self.stats.plis_sent += 1;
            pkts.push(RtcpPacket::Pli {
                sender_ssrc,
                media_ssrc,
            });
        }
        if self.twcc_id.is_some()
            && self
                .last_twcc
                .map_or(true, |t| now.duration_since(t) >= TWCC_INTERVAL)
        {
            if let Some(fb) = self.twcc_rx.poll_feedback(sender_ssrc, media_ssrc) {
                self.last_twcc = Some(now);
                self.stats.twcc_feedback_sent += 1;
                pkts.push(RtcpPacket::Other {
                    pt: 205,
                    fmt: natter_video::twcc::FMT,
                    body: fb.get(4..).unwrap_or_default().to_vec(),
                });
            }
        }
        if pkts.len() == 1 {
            return None;
        }
        let mut out = Vec::new();
        natter_rtp::rtcp::write_compound(&pkts, &mut out).ok()?;
        Some(out)
    }
}

/// Environment variable that makes `natter webrtc --video` (sending video of its own)
/// leave out media packets on purpose, to show NACK/RTX repair against a real peer:
/// `TX[,RX]`, every TX-th new outgoing and every RX-th received video packet (0: none).
pub const TEST_LOSS_ENV: &str = "NATTER_VIDEO_TEST_LOSS";

/// [`TEST_LOSS_ENV`] read and parsed; `(0, 0)` when unset or malformed.
pub fn test_loss_from_env() -> (u64, u64) {
    let Ok(v) = std::env::var(TEST_LOSS_ENV) else {
        return (0, 0);
    };
    let mut it = v.split(',').map(|n| n.trim().parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Where our video comes from.
enum Input {
    Pattern(TestPattern),
    File {
        reader: Y4mReader<std::io::BufReader<std::fs::File>>,
        path: std::path::PathBuf,
    },
}

/// An encoder of either codec.
#[derive(Debug)]
enum Encoder {
    Vp8(Vp8Encoder),
    H264(H264Encoder),
}

impl Encoder {
    fn new(codec: Codec, config: EncoderConfig) -> Result<Self, String> {
        match codec {
            Codec::Vp8 => Vp8Encoder::new(config).map(Encoder::Vp8),
            Codec::H264 => H264Encoder::new(config).map(Encoder::H264),
        }
        .map_err(|e| e.to_string())
    }

    fn codec(&self) -> Codec {
        match self {
            Encoder::Vp8(_) => Codec::Vp8,
            Encoder::H264(_) => Codec::H264,
        }
    }

    fn config(&self) -> EncoderConfig {
        match self {
            Encoder::Vp8(e) => e.config(),
            Encoder::H264(e) => e.config(),
        }
    }

    fn set_bitrate(&mut self, kbps: u32) {
        let _ = match self {
            Encoder::Vp8(e) => e.set_bitrate(kbps),
            Encoder::H264(e) => e.set_bitrate(kbps),
        };
    }

    fn encode(
        &mut self,
        f: &I420Frame,
        key: bool,
    ) -> Result<Vec<natter_video::codec::EncodedFrame>, natter_video::VideoError> {
        match self {
            Encoder::Vp8(e) => e.encode(f, key),
            Encoder::H264(e) => e.encode(f, key),
        }
    }
}

/// Raw frames (test pattern or a y4m file, looped) encoded with libvpx VP8 or OpenH264,
/// paced by the owner at [`VideoSource::frame_interval`].
pub struct VideoSource {
    input: Input,
    encoder: Encoder,
    fps: u32,
    /// RTP timestamp of the next frame.
    pub timestamp: u32,
}

impl std::fmt::Debug for VideoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSource")
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl VideoSource {
    /// The moving test pattern at `width` x `height`, `fps`.
    pub fn pattern(width: u32, height: u32, fps: u32) -> Result<Self, String> {
        Self::pattern_with(Codec::Vp8, width, height, fps)
    }

    /// The moving test pattern encoded with `codec`.
    pub fn pattern_with(codec: Codec, width: u32, height: u32, fps: u32) -> Result<Self, String> {
        let encoder = Encoder::new(
            codec,
            EncoderConfig {
                width,
                height,
                fps,
                ..EncoderConfig::default()
            },
        )?;
        Ok(VideoSource {
            input: Input::Pattern(TestPattern::new(width as usize, height as usize)),
            encoder,
            fps,
            timestamp: 0,
        })
    }

    /// A y4m file (4:2:0), sent at its own size and rate, from the start again at its end.
    pub fn file(path: &Path) -> Result<Self, String> {
        Self::file_with(Codec::Vp8, path)
    }

    /// A y4m file encoded with `codec`.
    pub fn file_with(codec: Codec, path: &Path) -> Result<Self, String> {
        let open = || -> Result<Y4mReader<_>, String> {
            let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Y4mReader::new(std::io::BufReader::new(f))
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        let reader = open()?;
        let h = reader.header();
        let fps = (h.fps_num / h.fps_den.max(1)).clamp(1, 60);
        let encoder = Encoder::new(
            codec,
            EncoderConfig {
                width: h.width as u32,
                height: h.height as u32,
                fps,
                ..EncoderConfig::default()
            },
        )?;
        Ok(VideoSource {
            input: Input::File {
                reader,
                path: path.to_owned(),
            },
            encoder,
            fps,
            timestamp: 0,
        })
    }

    /// Time between frames.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_micros(1_000_000 / u64::from(self.fps.max(1)))
    }

    /// Frame size.
    pub fn size(&self) -> (u32, u32) {
        let c = self.encoder.config();
        (c.width, c.height)
    }

    /// Changes the encoder's target bitrate (kbit/s).
    pub fn set_bitrate(&mut self, kbps: u32) {
        self.encoder.set_bitrate(kbps);
    }

    /// The codec it encodes with.
    pub fn codec(&self) -> Codec {
        self.encoder.codec()
    }

    /// Switches to `codec` (the negotiated one), keeping size, rate and bitrate; the next
    /// frame is a key frame of the new encoder.
    pub fn set_codec(&mut self, codec: Codec) -> Result<(), String> {
        if codec != self.encoder.codec() {
            self.encoder = Encoder::new(codec, self.encoder.config())?;
        }
        Ok(())
    }

    /// Current target bitrate (kbit/s).
    pub fn bitrate(&self) -> u32 {
        self.encoder.config().bitrate_kbps
    }

    fn next_raw(&mut self) -> Option<I420Frame> {
        match &mut self.input {
            Input::Pattern(p) => Some(p.next_frame()),
            Input::File { reader, path } => match reader.next_frame() {
                Ok(Some(f)) => Some(f),
                _ => {
                    let f = std::fs::File::open(&*path).ok()?;
                    *reader = Y4mReader::new(std::io::BufReader::new(f)).ok()?;
                    reader.next_frame().ok().flatten()
                }
            },
        }
    }

    /// Encodes the next frame: `(VP8 frame or H.264 access unit, RTP timestamp, key frame)`,
    /// or `None` when
    /// the encoder dropped it.
    pub fn next_frame(&mut self, keyframe: bool) -> Option<(Vec<u8>, u32, bool)> {
        let raw = self.next_raw()?;
        let ts = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(CLOCK_RATE / self.fps.max(1));
        let f = self
            .encoder
            .encode(&raw, keyframe)
            .ok()?
            .into_iter()
            .next()?;
        Some((f.data, ts, f.keyframe))
    }
}

/// Decodes the peer's frames; with a file, writes them to it as y4m (frames whose size
/// differs from the first one are scaled to it, nearest neighbour: a y4m stream has one
/// size, and browsers change resolution as they adapt).
pub struct VideoSink {
    decoder: Decoder,
    path: Option<std::path::PathBuf>,
    writer: Option<Y4mWriter<BufWriter<std::fs::File>>>,
    /// Frames decoded.
    pub decoded: u64,
    /// Frames that failed to decode.
    pub errors: u64,
    /// Frames written to the file.
    pub written: u64,
    /// Size of the last decoded frame.
    pub size: (usize, usize),
}

impl std::fmt::Debug for VideoSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSink")
            .field("decoded", &self.decoded)
            .finish_non_exhaustive()
    }
}

/// A decoder of either codec.
#[derive(Debug)]
enum Decoder {
    Vp8(Vp8Decoder),
    H264(H264Decoder),
}

impl Decoder {
    fn new(codec: Codec) -> Result<Self, String> {
        match codec {
            Codec::Vp8 => Vp8Decoder::new().map(Decoder::Vp8),
            Codec::H264 => H264Decoder::new().map(Decoder::H264),
        }
        .map_err(|e| e.to_string())
    }

    fn codec(&self) -> Codec {
        match self {
            Decoder::Vp8(_) => Codec::Vp8,
            Decoder::H264(_) => Codec::H264,
        }
    }

    fn decode(&mut self, data: &[u8]) -> Result<Vec<I420Frame>, natter_video::VideoError> {
        match self {
            Decoder::Vp8(d) => d.decode(data),
            Decoder::H264(d) => d.decode(data),
        }
    }
}

impl VideoSink {
    /// A VP8 decoder, recording to `path` when given (created at the first frame).
    pub fn new(path: Option<&Path>) -> Result<Self, String> {
        Self::new_with(Codec::Vp8, path)
    }

    /// A decoder of `codec`, recording to `path` when given.
    pub fn new_with(codec: Codec, path: Option<&Path>) -> Result<Self, String> {
        Ok(VideoSink {
            decoder: Decoder::new(codec)?,
            path: path.map(Path::to_owned),
            writer: None,
            decoded: 0,
            errors: 0,
            written: 0,
            size: (0, 0),
        })
    }

    /// Switches to decoding `codec` (the negotiated one).
    pub fn set_codec(&mut self, codec: Codec) -> Result<(), String> {
        if codec != self.decoder.codec() {
            self.decoder = Decoder::new(codec)?;
        }
        Ok(())
    }

    /// Decodes one assembled frame; `Err` when the decoder refused it (ask for a key
    /// frame). Returns the decoded pictures.
    pub fn push(&mut self, frame: &[u8]) -> Result<Vec<I420Frame>, String> {
        let pics = match self.decoder.decode(frame) {
            Ok(p) => p,
            Err(e) => {
                self.errors += 1;
                return Err(e.to_string());
            }
        };
        for pic in &pics {
            self.decoded += 1;
            self.size = (pic.width, pic.height);
            if let Some(path) = &self.path {
                if self.writer.is_none() {
                    let f = std::fs::File::create(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    self.writer = Some(
                        Y4mWriter::new(BufWriter::new(f), pic.width, pic.height, 30)
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            if let Some(w) = self.writer.as_mut() {
                let ok = if (pic.width, pic.height) == w.size() {
                    w.write(pic)
                } else {
                    w.write(&scale(pic, w.size()))
                };
                if ok.is_ok() {
                    self.written += 1;
                }
            }
        }
        Ok(pics)
    }

    /// Flushes the recording.
    pub fn finish(&mut self) {
        if let Some(w) = self.writer.as_mut() {
            let _ = w.flush();
        }
    }
}

impl Drop for VideoSink {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Nearest-neighbour scaling of an I420 frame.
pub fn scale(f: &I420Frame, (w, h): (usize, usize)) -> I420Frame {
    let mut out = I420Frame::black(w, h);
    let plane = |src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize| {
        if sw == 0 || sh == 0 {
            return;
        }
        for y in 0..dh {
            let sy = y * sh / dh;
            for x in 0..dw {
                let sx = x * sw / dw;
                dst[y * dw + x] = src.get(sy * sw + sx).copied().unwrap_or(16);
            }
        }
    };
    let (scw, sch) = I420Frame::chroma_size(f.width, f.height);
    let (dcw, dch) = I420Frame::chroma_size(w, h);
    plane(&f.y, f.width, f.height, &mut out.y, w, h);
    plane(&f.u, scw, sch, &mut out.u, dcw, dch);
    plane(&f.v, scw, sch, &mut out.v, dcw, dch);
    out
}
