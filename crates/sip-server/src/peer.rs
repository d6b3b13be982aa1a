//! Transport identities shared by the cores and the I/O driver.

use std::fmt;
use std::net::SocketAddr;

/// SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (unreliable: transactions retransmit).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SIP over WebSocket (RFC 7118).
    Ws,
    /// SIP over secure WebSocket.
    Wss,
}

impl Transport {
    /// Reliable transports switch off retransmission timers (§17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Message-oriented transports deliver whole messages (UDP datagrams,
    /// WebSocket messages): no Content-Length framing needed (RFC 7118 §5).
    pub fn is_message_oriented(self) -> bool {
        matches!(self, Transport::Udp | Transport::Ws | Transport::Wss)
    }

    /// Transports we can only answer over an existing connection (the
    /// client does not listen): TLS without a client config, WebSocket.
    pub fn needs_flow(self) -> bool {
        matches!(self, Transport::Tls | Transport::Ws | Transport::Wss)
    }

    /// Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Parse a Via transport token or a `transport=` URI parameter.
    pub fn from_token(s: &str) -> Option<Transport> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else if s.eq_ignore_ascii_case("tls") {
            Some(Transport::Tls)
        } else if s.eq_ignore_ascii_case("ws") {
            Some(Transport::Ws)
        } else if s.eq_ignore_ascii_case("wss") {
            Some(Transport::Wss)
        } else {
            None
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// A peer: transport plus socket address. For stream transports the driver
/// maps it to an open connection (reusing the one a request arrived on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport.
    pub transport: Transport,
    /// Remote address.
    pub addr: SocketAddr,
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: Peer,
    /// Wire bytes.
    pub bytes: Vec<u8>,
}
