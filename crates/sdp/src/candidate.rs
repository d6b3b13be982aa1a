//! The ICE `a=candidate` grammar (RFC 8839 §5.1), shared by SDP users and the ICE agent.

use std::fmt;
use std::net::IpAddr;

use crate::attributes::AttrValue;
use crate::error::{Error, Result};
use crate::session::Attribute;

/// Candidate type (`typ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// Host.
    Host,
    /// Server reflexive.
    Srflx,
    /// Peer reflexive.
    Prflx,
    /// Relayed.
    Relay,
}

impl CandidateType {
    /// Token used in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
        }
    }

    /// Parses the SDP token.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::Srflx,
            "prflx" => CandidateType::Prflx,
            "relay" => CandidateType::Relay,
            _ => return None,
        })
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TCP candidate type (RFC 6544).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpType {
    /// Active.
    Active,
    /// Passive.
    Passive,
    /// Simultaneous open.
    So,
}

/// One `a=candidate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateAttr {
    /// Foundation (1-32 ice-chars).
    pub foundation: String,
    /// Component id (1 = RTP).
    pub component: u16,
    /// Transport as written (`UDP`, `udp`, `TCP`).
    pub transport: String,
    /// Priority.
    pub priority: u32,
    /// Address: IP literal or FQDN (e.g. an mDNS `.local` name).
    pub address: String,
    /// Port.
    pub port: u16,
    /// Type.
    pub typ: CandidateType,
    /// `raddr`.
    pub related_address: Option<String>,
    /// `rport`.
    pub related_port: Option<u16>,
    /// `tcptype`, if present.
    pub tcp_type: Option<TcpType>,
    /// Other extensions (`generation 0`, `network-id 1`, `ufrag x`...), in order.
    pub extensions: Vec<(String, String)>,
}

fn is_ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

impl CandidateAttr {
    /// Parses the value after `a=candidate:` (also accepts a leading `candidate:` as
    /// used by trickle JSON and WebRTC APIs).
    pub fn parse(v: &str) -> Result<Self> {
        const W: &str = "candidate";
        let bad = || Error::InvalidAttribute(W);
        let v = v.strip_prefix("candidate:").unwrap_or(v);
        let toks: Vec<&str> = v.split(' ').filter(|s| !s.is_empty()).take(64).collect();
        let get = |i: usize| toks.get(i).copied().ok_or_else(bad);
        let foundation = get(0)?;
        if foundation.is_empty() || foundation.len() > 32 || !foundation.bytes().all(is_ice_char) {
            return Err(bad());
        }
        let num = |s: &str, max_len: usize| -> Result<u64> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let component = u16::try_from(num(get(1)?, 3)?).map_err(|_| bad())?;
        let transport = get(2)?;
        let priority = u32::try_from(num(get(3)?, 10)?).map_err(|_| bad())?;
        let address = get(4)?;
        let port = u16::try_from(num(get(5)?, 5)?).map_err(|_| bad())?;
        if get(6)? != "typ" {
            return Err(bad());
        }
        let typ = CandidateType::parse(get(7)?).ok_or_else(bad)?;
        let mut c = CandidateAttr {
            foundation: foundation.into(),
            component,
            transport: transport.into(),
            priority,
            address: address.into(),
            port,
            typ,
            related_address: None,
            related_port: None,
            tcp_type: None,
            extensions: Vec::new(),
        };
        let mut i = 8;
        while i < toks.len() {
            let key = get(i)?;
            let val = get(i + 1)?;
            match key {
                "raddr" => c.related_address = Some(val.into()),
                "rport" => c.related_port = Some(u16::try_from(num(val, 5)?).map_err(|_| bad())?),
                "tcptype" => {
                    c.tcp_type = Some(match val {
                        "active" => TcpType::Active,
                        "passive" => TcpType::Passive,
                        "so" => TcpType::So,
                        _ => return Err(bad()),
                    })
                }
                _ => c.extensions.push((key.into(), val.into())),
            }
            i += 2;
        }
        Ok(c)
    }

    /// Address as an IP, `None` for FQDNs.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Whether transport is UDP (case-insensitive).
    pub fn is_udp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("udp")
    }

    /// Value of an extension such as `ufrag` or `generation`.
    pub fn extension(&self, key: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// As an `a=candidate` attribute.
    pub fn to_attribute(&self) -> Attribute {
        Attribute::value("candidate", self.to_string())
    }
}

impl fmt::Display for CandidateAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.typ
        )?;
        if let Some(a) = &self.related_address {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.related_port {
            write!(f, " rport {p}")?;
        }
        if let Some(t) = self.tcp_type {
            let t = match t {
                TcpType::Active => "active",
                TcpType::Passive => "passive",
                TcpType::So => "so",
            };
            write!(f, " tcptype {t}")?;
        }
        for (k, v) in &self.extensions {
            write!(f, " {k} {v}")?;
        }
        Ok(())
    }
}

impl AttrValue for CandidateAttr {
    fn parse_value(v: &str) -> Result<Self> {
        CandidateAttr::parse(v)
    }
}
