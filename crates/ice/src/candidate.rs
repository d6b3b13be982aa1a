//! Candidates, their priorities (RFC 8445 §5.1.2) and SDP form (RFC 8839 §5.1).

use std::net::{IpAddr, SocketAddr};

use natter_sdp::CandidateAttr;
pub use natter_sdp::CandidateType;

use crate::error::{Error, Result};

/// ICE username fragment and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `ice-ufrag` (4+ chars).
    pub ufrag: String,
    /// `ice-pwd` (22+ chars).
    pub pwd: String,
}

impl Credentials {
    /// Random credentials from `rng`, with RFC 8839 lengths and ice-chars only.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    char::from(
                        CHARS
                            .get(rng.gen_range(0..CHARS.len()))
                            .copied()
                            .unwrap_or(b'x'),
                    )
                })
                .collect()
        };
        Credentials {
            ufrag: pick(8),
            pwd: pick(24),
        }
    }
}

/// One candidate, local or remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// host / srflx / prflx / relay.
    pub kind: CandidateType,
    /// Component (1 = RTP).
    pub component: u16,
    /// Transport address.
    pub addr: SocketAddr,
    /// Base: the local address packets for this candidate leave from (for relay
    /// candidates, the relayed address itself). Equal to `addr` for remote candidates.
    pub base: SocketAddr,
    /// Priority.
    pub priority: u32,
    /// Foundation.
    pub foundation: String,
    /// `raddr`/`rport`: base for srflx/prflx, mapped address for relay.
    pub related: Option<SocketAddr>,
}

/// Type preferences of RFC 8445 §5.1.2.2.
pub(crate) fn type_preference(kind: CandidateType) -> u32 {
    match kind {
        CandidateType::Host => 126,
        CandidateType::Prflx => 110,
        CandidateType::Srflx => 100,
        CandidateType::Relay => 0,
    }
}

/// RFC 8445 §5.1.2.1 priority.
pub(crate) fn priority(kind: CandidateType, local_pref: u16, component: u16) -> u32 {
    (type_preference(kind) << 24)
        | (u32::from(local_pref) << 8)
        | (256 - u32::from(component.clamp(1, 256)))
}

/// RFC 8445 §6.1.2.3 pair priority, `g` being the controlling agent's candidate.
pub(crate) fn pair_priority(g: u32, d: u32) -> u64 {
    let (g, d) = (u64::from(g), u64::from(d));
    (1u64 << 32) * g.min(d) + 2 * g.max(d) + u64::from(g > d)
}

impl Candidate {
    /// The SDP attribute value (what follows `a=candidate:`).
    pub fn to_sdp_value(&self) -> String {
        self.to_attr().to_string()
    }

    /// `a=candidate:...` line.
    pub fn to_sdp_line(&self) -> String {
        format!("a=candidate:{}", self.to_sdp_value())
    }

    fn to_attr(&self) -> CandidateAttr {
        CandidateAttr {
            foundation: self.foundation.clone(),
            component: self.component,
            transport: "UDP".into(),
            priority: self.priority,
            address: self.addr.ip().to_string(),
            port: self.addr.port(),
            typ: self.kind,
            related_address: self.related.map(|r| r.ip().to_string()),
            related_port: self.related.map(|r| r.port()),
            tcp_type: None,
            extensions: Vec::new(),
        }
    }

    /// Parses a remote candidate from an `a=candidate:` value (with or without the
    /// `a=`/`candidate:` prefix). Only UDP with IP literals is supported.
    pub fn from_sdp(value: &str) -> Result<Self> {
        let v = value.trim();
        let v = v.strip_prefix("a=").unwrap_or(v);
        let attr = CandidateAttr::parse(v)?;
        if !attr.is_udp() {
            return Err(Error::UnsupportedCandidate("non-UDP transport"));
        }
        let ip: IpAddr = attr
            .ip()
            .ok_or(Error::UnsupportedCandidate("FQDN address"))?;
        let addr = SocketAddr::new(ip, attr.port);
        let related = match (
            attr.related_address
                .as_deref()
                .and_then(|a| a.parse::<IpAddr>().ok()),
            attr.related_port,
        ) {
            (Some(ip), Some(p)) => Some(SocketAddr::new(ip, p)),
            _ => None,
        };
        if attr.component == 0 {
            return Err(Error::UnsupportedCandidate("component 0"));
        }
        Ok(Candidate {
            kind: attr.typ,
            component: attr.component,
            addr,
            base: addr,
            priority: attr.priority,
            foundation: attr.foundation,
            related,
        })
    }
}
