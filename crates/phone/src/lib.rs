//! The Natter softphone (pjsua / baresip class), as a library: accounts with registration,
//! outgoing and incoming calls, SDP offer/answer with plain RTP, SDES-SRTP or DTLS-SRTP,
//! ICE through natter serve's STUN/TURN (or plain `c=`/`m=` peers), codecs, DTMF, a
//! jitter buffer and call statistics.
//!
//! Layers: [`offer`] (SDP for one audio stream) and [`media`] (one call's media, sans-IO)
//! are pure; [`Phone`] is the driver that owns sockets and the clock. `natter phone` is
//! a thin CLI over [`Phone`].

pub mod audio;
mod config;
pub mod media;
pub mod offer;
mod phone;
pub mod quality;
pub mod report;
pub mod sip_transport;

pub use config::{Account, PhoneConfig};
pub use phone::{Phone, PhoneError};
