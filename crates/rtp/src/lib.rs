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
//!
//! ```
//! use std::time::{Duration, Instant};
//! use natter_rtp::demux::{classify, Kind};
//! use natter_rtp::{RtpHeader, RtpPacket, RtpSession, SessionConfig};
//!
//! let t0 = Instant::now(); // in the shell; the core never reads the clock
//! let mut session = RtpSession::new(SessionConfig::new(0x1234, 8000, "me@host"), t0);
//! let mut datagram = Vec::new();
//! RtpHeader { payload_type: 0, sequence: 1, timestamp: 160, ssrc: 0x1234, ..Default::default() }
//!     .write(&[0xff; 160], &mut datagram)?;
//! session.on_rtp_sent(160, 160, t0);
//!
//! let from = "198.51.100.7:4000".parse().unwrap();
//! let incoming = [0x80, 0, 0, 7, 0, 0, 0, 0, 0xab, 0xcd, 0xef, 0x01];
//! if classify(&incoming) == Kind::Rtp {
//!     let pkt = RtpPacket::parse(&incoming)?;
//!     session.on_rtp_received(&pkt, from, t0 + Duration::from_millis(5));
//! }
//! // At each deadline: expire sources, then send whatever RTCP is due.
//! let now = session.poll_timeout().unwrap();
//! let _events = session.handle_timeout(now);
//! while let Some(rtcp) = session.poll_rtcp(now) {
//!     assert_eq!(classify(&rtcp), Kind::Rtcp);
//! }
//! # Ok::<(), natter_rtp::RtpError>(())
//! ```

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
pub use session::{
    RtpSession, SessionConfig, SessionEvent, SessionStats, MAX_SOURCES, TIMEOUT_INTERVALS,
};
pub use stats::{ReceiverStats, SeqVerdict, MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL};
