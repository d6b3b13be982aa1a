//! `stun:` / `turn:` URIs (RFC 7064 / RFC 7065): `turn:host[:port][?transport=udp|tcp]`.

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed STUN/TURN URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUri {
    /// `stun`, `stuns`, `turn` or `turns`.
    pub scheme: String,
    /// Host name or address literal (brackets removed).
    pub host: String,
    /// Port (defaults 3478, or 5349 for the `s` schemes).
    pub port: u16,
    /// `udp` or `tcp`.
    pub transport: String,
}

impl ServerUri {
    /// Parses a URI; a bare `host[:port]` is taken as `turn:` / `stun:` per `default_scheme`.
    pub fn parse(s: &str, default_scheme: &str) -> Result<Self, String> {
        let (scheme, rest) = match s.split_once(':') {
            Some((sch, rest)) if matches!(sch, "stun" | "stuns" | "turn" | "turns") => {
                (sch.to_owned(), rest)
            }
            _ => (default_scheme.to_owned(), s),
        };
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let secure = scheme.ends_with('s');
        let default_port = if secure { 5349 } else { 3478 };
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or("unclosed '[' in host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
                None => default_port,
            };
            (h.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse().map_err(|_| format!("bad port {p:?}"))?,
                ),
                None => (hostport.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err("missing host".into());
        }
        let mut transport = if secure { "tcp" } else { "udp" }.to_owned();
        if let Some(q) = query {
            for kv in q.split('&') {
                if let Some(t) = kv.strip_prefix("transport=") {
                    if t != "udp" && t != "tcp" {
                        return Err(format!("transport must be udp or tcp, got {t:?}"));
                    }
                    transport = t.to_owned();
                }
            }
        }
        Ok(Self {
            scheme,
            host,
            port,
            transport,
        })
    }

    /// Resolves the host (first address).
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        self.resolve_all()?
            .first()
            .copied()
            .ok_or_else(|| format!("{} has no address", self.host))
    }

    /// The host's first address of each family, IPv4 first (an ICE agent queries a
    /// server from host candidates of the same family).
    pub fn resolve_all(&self) -> Result<Vec<SocketAddr>, String> {
        let all: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .collect();
        let v: Vec<SocketAddr> = [
            all.iter().find(|a| a.is_ipv4()),
            all.iter().find(|a| a.is_ipv6()),
        ]
        .into_iter()
        .flatten()
        .copied()
        .collect();
        if v.is_empty() {
            return Err(format!("{} has no address", self.host));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = ServerUri::parse("turn:example.org?transport=tcp", "turn").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport.as_str()),
            ("example.org", 3478, "tcp")
        );
        let u = ServerUri::parse("stun:[::1]:4000", "stun").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 4000));
        let u = ServerUri::parse("127.0.0.1:9", "stun").unwrap();
        assert_eq!((u.scheme.as_str(), u.port), ("stun", 9));
        assert_eq!(ServerUri::parse("turns:h", "turn").unwrap().port, 5349);
        assert!(ServerUri::parse("turn:h?transport=sctp", "turn").is_err());
        assert!(ServerUri::parse("turn::5", "turn").is_err());
    }
}
