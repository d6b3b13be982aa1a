//! A deliberately simple relay that stands in for a TURN server inside the simulation.
//!
//! It has TURN's forwarding semantics (an allocation per client 5-tuple, a relayed
//! address on the server's IP, IP-based permissions installed by sending, data wrapped
//! towards the client) but a toy wire format, so NAT traversal tests of the ICE agent
//! do not depend on the real TURN client. The format is:
//!
//! - `ALOC` → reply `ALOK <addr>` with the relayed address;
//! - `SEND <addr> <payload>` → payload sent from the relayed address to `addr`;
//! - `DATA <addr> <payload>` (server → client) → payload that `addr` sent to the
//!   relayed address.
//!
//! `<addr>` is 1 byte family (4 or 6), the IP bytes, then a big-endian port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use crate::network::Server;

/// A decoded relay message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayMessage {
    /// Allocation request.
    Allocate,
    /// Allocation success with the relayed address.
    Allocated(SocketAddr),
    /// Client → server: forward to peer.
    Send(SocketAddr, Vec<u8>),
    /// Server → client: from peer.
    Data(SocketAddr, Vec<u8>),
}

/// Encoder/decoder for [`RelayMessage`], used by clients (test adapters).
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayClientCodec;

fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn get_addr(b: &[u8]) -> Option<(SocketAddr, &[u8])> {
    let (fam, rest) = b.split_first()?;
    let (ip, rest): (IpAddr, &[u8]) = match fam {
        4 => {
            let o: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            (Ipv4Addr::from(o).into(), rest.get(4..)?)
        }
        6 => {
            let o: [u8; 16] = rest.get(..16)?.try_into().ok()?;
            (Ipv6Addr::from(o).into(), rest.get(16..)?)
        }
        _ => return None,
    };
    let port = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
    Some((SocketAddr::new(ip, port), rest.get(2..)?))
}

impl RelayMessage {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            RelayMessage::Allocate => out.extend_from_slice(b"ALOC"),
            RelayMessage::Allocated(a) => {
                out.extend_from_slice(b"ALOK");
                put_addr(&mut out, *a);
            }
            RelayMessage::Send(a, p) => {
                out.extend_from_slice(b"SEND");
                put_addr(&mut out, *a);
                out.extend_from_slice(p);
            }
            RelayMessage::Data(a, p) => {
                out.extend_from_slice(b"DATA");
                put_addr(&mut out, *a);
                out.extend_from_slice(p);
            }
        }
        out
    }

    /// Decodes a message; `None` when `b` is not one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let tag = b.get(..4)?;
        let rest = b.get(4..)?;
        Some(match tag {
            b"ALOC" => RelayMessage::Allocate,
            b"ALOK" => RelayMessage::Allocated(get_addr(rest)?.0),
            b"SEND" => {
                let (a, p) = get_addr(rest)?;
                RelayMessage::Send(a, p.to_vec())
            }
            b"DATA" => {
                let (a, p) = get_addr(rest)?;
                RelayMessage::Data(a, p.to_vec())
            }
            _ => return None,
        })
    }
}

struct Allocation {
    client: SocketAddr,
    relayed: SocketAddr,
    permissions: Vec<IpAddr>,
}

/// The relay server. Listens on `port` of its IP; relayed addresses are other ports of
/// the same IP, handed out sequentially from 50000.
pub struct RelayServer {
    port: u16,
    next_port: u16,
    allocations: Vec<Allocation>,
    /// Packets relayed in either direction.
    pub relayed: u64,
}

impl RelayServer {
    /// A relay listening on `port` (3478 by convention).
    pub fn new(port: u16) -> Self {
        RelayServer {
            port,
            next_port: 50000,
            allocations: Vec::new(),
            relayed: 0,
        }
    }
}

impl Server for RelayServer {
    fn handle(
        &mut self,
        _now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        if local.port() == self.port {
            match RelayMessage::decode(data) {
                Some(RelayMessage::Allocate) => {
                    let relayed = match self.allocations.iter().find(|a| a.client == from) {
                        Some(a) => a.relayed,
                        None => {
                            if self.allocations.len() >= 4096 {
                                return Vec::new();
                            }
                            let relayed = SocketAddr::new(local.ip(), self.next_port);
                            self.next_port = self.next_port.wrapping_add(1).max(50000);
                            self.allocations.push(Allocation {
                                client: from,
                                relayed,
                                permissions: Vec::new(),
                            });
                            relayed
                        }
                    };
                    vec![(local, from, RelayMessage::Allocated(relayed).encode())]
                }
                Some(RelayMessage::Send(peer, payload)) => {
                    let Some(a) = self.allocations.iter_mut().find(|a| a.client == from) else {
                        return Vec::new();
                    };
                    if !a.permissions.contains(&peer.ip()) && a.permissions.len() < 256 {
                        a.permissions.push(peer.ip());
                    }
                    self.relayed += 1;
                    vec![(a.relayed, peer, payload)]
                }
                _ => Vec::new(),
            }
        } else {
            let Some(a) = self.allocations.iter().find(|a| a.relayed == local) else {
                return Vec::new();
            };
            if !a.permissions.contains(&from.ip()) {
                return Vec::new();
            }
            self.relayed += 1;
            vec![(
                SocketAddr::new(local.ip(), self.port),
                a.client,
                RelayMessage::Data(from, data.to_vec()).encode(),
            )]
        }
    }
}
