//! The socket side of `.local` candidate resolution for the driver: holds remote candidates
//! whose address is an mDNS name, asks the link (224.0.0.251:5353, on every IPv4 host
//! interface) through the sans-IO [`Resolver`], and hands the candidates back with the
//! address filled in. Names that stay unresolved are dropped with a log line: the peer's
//! checks still arrive and ICE learns its address as peer-reflexive.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::mpsc::Sender;
use std::time::Instant;

use natter_ice_io::Datagram;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::mdns::{is_mdns_name, MdnsEvent, Resolver, MDNS_V4};

/// Candidates held at once.
const MAX_HELD: usize = 64;

/// mDNS resolution for one driver.
pub struct MdnsIo {
    enabled: bool,
    resolver: Resolver,
    sock: Option<UdpSocket>,
    /// Opening the socket failed once: do not retry for every candidate.
    broken: bool,
    ifaces: Vec<Ipv4Addr>,
    tx: Sender<Datagram>,
    tag: usize,
    /// (name, candidate value with the name as address).
    held: Vec<(String, String)>,
    /// Names resolved, for the driver's log/event.
    pub resolved: Vec<(String, IpAddr)>,
}

/// The address field (5th) of a candidate value, if it is an mDNS name.
pub fn mdns_address(value: &str) -> Option<&str> {
    let v = value.trim();
    let v = v.strip_prefix("a=").unwrap_or(v);
    let v = v.strip_prefix("candidate:").unwrap_or(v);
    v.split_ascii_whitespace()
        .nth(4)
        .filter(|a| is_mdns_name(a))
}

fn with_address(value: &str, addr: IpAddr) -> String {
    let v = value.trim();
    let v = v.strip_prefix("a=").unwrap_or(v);
    let v = v.strip_prefix("candidate:").unwrap_or(v);
    let addr = addr.to_string();
    v.split_ascii_whitespace()
        .enumerate()
        .map(|(i, f)| if i == 4 { addr.as_str() } else { f })
        .collect::<Vec<_>>()
        .join(" ")
}

impl MdnsIo {
    /// `ifaces`: IPv4 host addresses to ask on; datagrams of the socket go into `tx`
    /// tagged `tag`. Disabled: `.local` candidates are dropped at once.
    pub fn new(enabled: bool, ifaces: Vec<Ipv4Addr>, tx: Sender<Datagram>, tag: usize) -> Self {
        MdnsIo {
            enabled,
            resolver: Resolver::new(),
            sock: None,
            broken: false,
            ifaces,
            tx,
            tag,
            held: Vec::new(),
            resolved: Vec::new(),
        }
    }

    /// Port 5353 shared with any responder on the host (SO_REUSEADDR/PORT), in the group on
    /// every interface, multicast looped back (the browser may be on this host).
    fn open(&mut self) -> std::io::Result<()> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        let any: SocketAddr = (Ipv4Addr::UNSPECIFIED, 5353).into();
        if s.bind(&any.into()).is_err() {
            // Someone holds 5353 without sharing: a one-shot query from another port
            // (RFC 6762 §5.1) still gets answered.
            s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
        }
        s.set_multicast_loop_v4(true)?;
        s.set_multicast_ttl_v4(255)?;
        let group = Ipv4Addr::new(224, 0, 0, 251);
        for i in &self.ifaces {
            if let Err(e) = s.join_multicast_v4(&group, i) {
                tracing::debug!("mDNS: cannot join on {i}: {e}");
            }
        }
        let sock: UdpSocket = s.into();
        natter_ice_io::spawn_receiver(&sock, self.tag, self.tx.clone())?;
        self.sock = Some(sock);
        Ok(())
    }

    /// Opens the socket now (when enabled), so names the peer announces before its
    /// description arrives are already known.
    pub fn listen(&mut self) {
        if self.enabled && self.sock.is_none() && !self.broken {
            if let Err(e) = self.open() {
                tracing::warn!(
                    "mDNS socket: {e}; .local candidates left to peer-reflexive discovery"
                );
                self.broken = true;
            }
        }
    }

    /// `None` when `value` is an ordinary candidate for the agent. Otherwise its address
    /// is an mDNS name: the candidate is held while the name resolves, and what can go to
    /// the agent at once (the name was known already) is returned.
    pub fn hold(&mut self, value: &str, now: Instant) -> Option<Vec<String>> {
        let name = mdns_address(value).map(str::to_ascii_lowercase)?;
        if !self.enabled {
            tracing::info!(
                "mDNS candidate {name} ignored (--no-mdns): left to peer-reflexive discovery"
            );
            return Some(Vec::new());
        }
        self.listen();
        if self.broken || self.held.len() >= MAX_HELD {
            return Some(Vec::new());
        }
        self.held.push((name.clone(), value.to_owned()));
        if let Err(e) = self.resolver.resolve(&name, now) {
            tracing::debug!("mDNS: {e}");
        }
        self.flush();
        Some(self.take_resolved())
    }

    fn flush(&mut self) {
        let Some(sock) = &self.sock else {
            while self.resolver.poll_query().is_some() {}
            return;
        };
        while let Some(q) = self.resolver.poll_query() {
            for i in &self.ifaces {
                let _ = SockRef::from(sock).set_multicast_if_v4(i);
                if let Err(e) = sock.send_to(&q, MDNS_V4) {
                    tracing::debug!("mDNS query on {i}: {e}");
                }
            }
        }
    }

    /// Candidates whose names resolved since the last call, addresses filled in.
    fn take_resolved(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(ev) = self.resolver.poll_event() {
            match ev {
                MdnsEvent::Resolved { name, addr } => {
                    tracing::info!("mDNS: {name} is {addr}");
                    self.resolved.push((name.clone(), addr));
                    let (hit, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                        .into_iter()
                        .partition(|(n, _)| *n == name);
                    self.held = rest;
                    out.extend(hit.into_iter().map(|(_, v)| with_address(&v, addr)));
                }
                MdnsEvent::GaveUp { name } => {
                    tracing::info!("mDNS: no answer for {name}; left to peer-reflexive discovery");
                    self.held.retain(|(n, _)| *n != name);
                }
            }
        }
        out
    }

    /// A datagram of the mDNS socket; returns the candidates it resolved.
    pub fn handle_datagram(&mut self, data: &[u8]) -> Vec<String> {
        self.resolver.handle_response(data);
        self.take_resolved()
    }

    /// Retransmissions and giving up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.resolver.poll_timeout().is_some_and(|t| t <= now) {
            self.resolver.handle_timeout(now);
            self.flush();
            let _ = self.take_resolved();
        }
    }

    /// The resolver's next timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.resolver.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_field() {
        let v = "candidate:1 1 udp 2122260223 9b36eaac-bb2e-49bb-bb78-21c41c499900.local 56143 typ host generation 0";
        assert_eq!(
            mdns_address(v),
            Some("9b36eaac-bb2e-49bb-bb78-21c41c499900.local")
        );
        assert_eq!(
            with_address(v, "10.20.0.2".parse().unwrap()),
            "1 1 udp 2122260223 10.20.0.2 56143 typ host generation 0"
        );
        assert_eq!(mdns_address("1 1 udp 1 10.0.0.1 5 typ host"), None);
    }
}
