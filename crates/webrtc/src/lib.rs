//! WebRTC for Natter: a PeerConnection that browsers accept as a peer.
//!
//! The core is sans-IO ([`PeerConnection`]): JSEP offer/answer with BUNDLE and rtcp-mux
//! ([`jsep`]), one DTLS association (natter-dtls) shared by SRTP (natter-srtp, Opus audio)
//! and SCTP (sctp-proto) for data channels with DCEP ([`dcep`], [`sctp`]). ICE runs beside
//! it in the owner's loop; [`driver`] is the thread-and-socket loop behind `natter webrtc`,
//! reusing natter-ice-io's [`natter_ice_io::IceTransport`] (host sockets, STUN, TURN) and
//! speaking the W3C-shaped JSON signaling of [`signal`] on stdin/stdout.

pub mod audio;
pub mod dcep;
pub mod driver;
pub mod dtls;
mod error;
pub mod jsep;
pub mod mdns;
pub mod mdns_io;
mod peer;
pub mod sctp;
pub mod signal;
pub mod video;

pub use dtls::DtlsImpl;
pub use error::{DcepError, JsepError, SendError};
pub use peer::{Config, PcEvent, PcStats, PeerConnection, SignalingRole};
