//! Keep-alive answers for flows (RFC 5626 §3.5): a UA behind a NAT keeps its
//! flow open and learns whether it still works by pinging the SIP port.
//!
//! * Connection-oriented transports: a CRLFCRLF "ping" is answered with a
//!   CRLF "pong" (§3.5.1).
//! * UDP: a STUN Binding request on the SIP socket (§8) is answered with a
//!   Binding success response carrying XOR-MAPPED-ADDRESS, so the UA also
//!   sees when its NAT mapping changed. SIP and STUN are told apart by the
//!   first byte (SIP starts with a letter, STUN with 0b00).

use std::net::SocketAddr;

use natter_stun::{Class, Message as StunMessage, MessageWriter, Method as StunMethod};

use crate::peer::Transport;

/// The double-CRLF ping of RFC 5626 §3.5.1.
pub const PING: &[u8] = b"\r\n\r\n";
/// Its answer.
pub const PONG: &[u8] = b"\r\n";

/// What a keep-alive needs, if `bytes` (one datagram, or one framed unit of
/// a stream) is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepAlive {
    /// Send these bytes back on the same flow.
    Answer(Vec<u8>),
    /// A keep-alive that needs no answer (a bare CRLF on UDP, a pong, a
    /// STUN message that is not a Binding request).
    Ignore,
}

/// Classify `bytes` received from `src` on `transport`; `None` means it is
/// not a keep-alive (hand it to the SIP parser).
pub fn classify(transport: Transport, src: SocketAddr, bytes: &[u8]) -> Option<KeepAlive> {
    if !bytes.is_empty() && bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
        if transport.is_reliable() && bytes == PING {
            return Some(KeepAlive::Answer(PONG.to_vec()));
        }
        return Some(KeepAlive::Ignore);
    }
    if transport != Transport::Udp || !matches!(bytes.first(), Some(b) if b & 0xc0 == 0) {
        return None;
    }
    let Ok(req) = StunMessage::parse(bytes) else {
        // Starts like STUN but is not: SIP never starts with such a byte.
        return Some(KeepAlive::Ignore);
    };
    if req.method() != StunMethod::BINDING || req.class() != Class::Request {
        return Some(KeepAlive::Ignore);
    }
    let mut buf = Vec::with_capacity(32);
    let mut w = MessageWriter::reply(&mut buf, &req, Class::Success);
    w.add_xor_mapped_address(src);
    if req.get(natter_stun::attr::FINGERPRINT).is_some() {
        w.add_fingerprint();
    }
    match w.finish() {
        Ok(_) => Some(KeepAlive::Answer(buf)),
        Err(_) => Some(KeepAlive::Ignore),
    }
}
