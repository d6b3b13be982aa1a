//! RTP and RTCP for Natter, sans-IO.
//!
//! * [`RtpPacket`] is a zero-copy, validated view of an RTP packet (RFC 3550 §5.1) with
//!   RFC 8285 header-extension elements; [`RtpHeader`] is its owned, writable twin.
//! * [`demux::classify`] tells RTP, RTCP, STUN and DTLS apart on one port (RFC 7983, RFC 5761).
//! * [`rtcp`] parses and writes compound and reduced-size (RFC 5506) RTCP, including the
//!   RFC 4585/5104 feedback messages a softphone needs (generic NACK, PLI, FIR).
//! * [`ReceiverStats`] is the per-source bookkeeping of RFC 3550 appendix A.1, A.3 and A.8.
//! * [`RtpSession`] drives the RTCP side of one session: report timing (§6.3, A.7), RTT,
//!   source time-outs, BYE and SSRC collision handling. Time, wallclock and randomness are
//!   inputs; output is bytes, events and the next deadline.

mod bytes;
pub mod demux;
mod error;
pub mod interval;
pub mod ntp;
mod packet;
pub mod rtcp;
mod session;
mod stats;

pub use error::{RtcpError, RtpError};
pub use packet::{Extensions, RtpHeader, RtpPacket, ONE_BYTE_PROFILE, TWO_BYTE_PROFILE};
pub use rtcp::{ReportBlock, RtcpPacket, SdesChunk};
pub use session::{RtpSession, SessionConfig, SessionEvent, SessionStats};
pub use stats::{ReceiverStats, SeqVerdict};
