//! RTCP packets (RFC 3550 §6, RFC 4585 §6, RFC 5104 §4.3.1) and compound framing.
//!
//! Parsing accepts a compound datagram (first packet SR or RR, RFC 3550 §6.1) and, when
//! asked to, reduced-size RTCP (RFC 5506), where the datagram may start with any packet.
//! Parsing is bounded: at most [`MAX_PACKETS`] packets per datagram and
//! [`MAX_NACK_FCI`] NACK entries per packet, and every count is checked against the
//! length field before anything is allocated.

mod nack;
mod parse;
mod write;

pub use parse::{parse_compound, parse_packet};
pub use write::write_compound;

/// Packet type: sender report.
pub const PT_SR: u8 = 200;
/// Packet type: receiver report.
pub const PT_RR: u8 = 201;
/// Packet type: source description.
pub const PT_SDES: u8 = 202;
/// Packet type: goodbye.
pub const PT_BYE: u8 = 203;
/// Packet type: application-defined.
pub const PT_APP: u8 = 204;
/// Packet type: transport-layer feedback (RFC 4585).
pub const PT_RTPFB: u8 = 205;
/// Packet type: payload-specific feedback (RFC 4585).
pub const PT_PSFB: u8 = 206;
/// SDES item type CNAME.
pub const SDES_CNAME: u8 = 1;

/// Upper bound on packets in one datagram.
pub const MAX_PACKETS: usize = 32;
/// Upper bound on generic-NACK FCI entries (each expands to up to 17 sequence numbers).
pub const MAX_NACK_FCI: usize = 256;

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReportBlock {
    /// Source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost; 24-bit signed on the wire (duplicates make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from this source (0: none).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// One SDES chunk: a source and its items `(type, value)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdesChunk {
    /// Source described.
    pub ssrc: u32,
    /// Items as `(type, value)`; type 0 terminates a chunk on the wire and is not allowed.
    pub items: Vec<(u8, Vec<u8>)>,
}

/// One RTCP packet of a compound datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report (PT 200). Profile-specific extensions are dropped.
    SenderReport {
        /// Sender's SSRC.
        ssrc: u32,
        /// 64-bit NTP wallclock timestamp.
        ntp: u64,
        /// RTP timestamp corresponding to `ntp`.
        rtp_ts: u32,
        /// Packets sent since starting with this SSRC (wraps).
        packet_count: u32,
        /// Payload octets sent since starting with this SSRC (wraps).
        octet_count: u32,
        /// Reception reports, at most 31.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report (PT 201). Profile-specific extensions are dropped.
    ReceiverReport {
        /// Reporter's SSRC.
        ssrc: u32,
        /// Reception reports, at most 31.
        reports: Vec<ReportBlock>,
    },
    /// Source description (PT 202), at most 31 chunks.
    Sdes(Vec<SdesChunk>),
    /// Goodbye (PT 203).
    Bye {
        /// Sources leaving, at most 31.
        ssrcs: Vec<u32>,
        /// Optional reason, at most 255 bytes of UTF-8 (invalid UTF-8 is replaced).
        reason: Option<String>,
    },
    /// Application-defined (PT 204).
    App {
        /// 5-bit subtype.
        subtype: u8,
        /// Source.
        ssrc: u32,
        /// Four ASCII characters naming the application.
        name: [u8; 4],
        /// Application data (written with RTCP padding if not a multiple of 4 bytes).
        data: Vec<u8>,
    },
    /// Generic NACK (RTPFB, FMT 1; RFC 4585 §6.2.1), with PID/BLP expanded into the list of
    /// lost sequence numbers in wire order.
    Nack {
        /// Feedback sender.
        sender_ssrc: u32,
        /// Media source the losses are about.
        media_ssrc: u32,
        /// Lost sequence numbers.
        lost: Vec<u16>,
    },
    /// Picture loss indication (PSFB, FMT 1; RFC 4585 §6.3.1).
    Pli {
        /// Feedback sender.
        sender_ssrc: u32,
        /// Media source asked for a key frame.
        media_ssrc: u32,
    },
    /// Full intra request (PSFB, FMT 4; RFC 5104 §4.3.1).
    Fir {
        /// Feedback sender.
        sender_ssrc: u32,
        /// `(media SSRC, command sequence number)` per request.
        entries: Vec<(u32, u8)>,
    },
    /// Any other packet type or feedback format, kept verbatim.
    Other {
        /// Packet type.
        pt: u8,
        /// The 5-bit count/format field.
        fmt: u8,
        /// Body after the 4-byte header, padding removed.
        body: Vec<u8>,
    },
}

impl RtcpPacket {
    /// The wire packet type.
    pub fn packet_type(&self) -> u8 {
        match self {
            Self::SenderReport { .. } => PT_SR,
            Self::ReceiverReport { .. } => PT_RR,
            Self::Sdes(_) => PT_SDES,
            Self::Bye { .. } => PT_BYE,
            Self::App { .. } => PT_APP,
            Self::Nack { .. } => PT_RTPFB,
            Self::Pli { .. } | Self::Fir { .. } => PT_PSFB,
            Self::Other { pt, .. } => *pt,
        }
    }
}
