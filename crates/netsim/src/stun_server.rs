//! A minimal STUN server (RFC 8489 Binding only): answers each Binding request with the
//! source address it saw, which is what server-reflexive gathering needs.

use std::net::SocketAddr;
use std::time::Instant;

use natter_stun::{Class, Message, MessageWriter, Method};

use crate::network::Server;

/// Binding-only STUN server. Counts requests so tests can assert traffic.
#[derive(Debug, Default)]
pub struct StunServer {
    /// Binding requests answered.
    pub requests: u64,
}

impl StunServer {
    /// A new server.
    pub fn new() -> Self {
        StunServer::default()
    }
}

impl Server for StunServer {
    fn handle(
        &mut self,
        _now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let Ok(msg) = Message::parse(data) else {
            return Vec::new();
        };
        if msg.method() != Method::BINDING || msg.class() != Class::Request {
            return Vec::new();
        }
        self.requests += 1;
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Success,
            msg.transaction_id(),
        );
        w.add_xor_mapped_address(from).add_fingerprint();
        if w.finish().is_err() {
            return Vec::new();
        }
        vec![(local, from, buf)]
    }
}
