//! The Via header (RFC 3261 §20.42, §18.2.1 `received`, RFC 3581 `rport`).

use std::fmt;

use crate::error::ParseError;
use crate::syntax::{find_param, header_params, is_token, is_ws, trim_ws, Param};
use crate::uri::split_hostport;

/// RFC 3261 branch prefix: a branch starting with it is globally unique and
/// can key a transaction on its own (§17.2.3).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// Transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, ...).
    pub transport: &'a str,
    /// sent-by host.
    pub host: &'a str,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport, maddr, ttl, extensions).
    pub params: Vec<Param<'a>>,
}

/// Split around `/` with LWS allowed on both sides; returns (before, after).
fn slash(s: &str) -> Option<(&str, &str)> {
    let (a, b) = crate::syntax::split_once_byte(s, b'/')?;
    Some((trim_ws(a), crate::syntax::trim_ws_start(b)))
}

impl<'a> Via<'a> {
    /// Parse one via-parm (`SIP/2.0/UDP host:port;params`).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        let bad = ParseError::BadHeader("Via");
        let (name, rest) = slash(s).ok_or(bad.clone())?;
        let (version, rest) = slash(rest).ok_or(bad.clone())?;
        if !name.eq_ignore_ascii_case("SIP") {
            return Err(bad);
        }
        if version != "2.0" {
            return Err(ParseError::Version);
        }
        let t_end = rest
            .bytes()
            .position(|b| !crate::syntax::is_token_char(char::from(b)))
            .unwrap_or(rest.len());
        let transport = rest.get(..t_end).unwrap_or("");
        if !is_token(transport) {
            return Err(bad);
        }
        let rest = rest.get(t_end..).unwrap_or("");
        if !rest.starts_with(is_ws) {
            return Err(bad);
        }
        let rest = crate::syntax::trim_ws_start(rest);
        let hp_end = crate::syntax::end_of_address(rest);
        let hostport = rest.get(..hp_end).unwrap_or("");
        let (host, port) = split_hostport(hostport).map_err(|_| bad.clone())?;
        let params = header_params(rest.get(hp_end..).unwrap_or("")).map_err(|_| bad.clone())?;
        for p in &params {
            let v = p.value.unwrap_or("");
            let ok = if p.name.eq_ignore_ascii_case("rport") {
                v.is_empty() || v.parse::<u16>().is_ok()
            } else if p.name.eq_ignore_ascii_case("ttl") {
                v.parse::<u8>().is_ok()
            } else if p.name.eq_ignore_ascii_case("branch")
                || p.name.eq_ignore_ascii_case("received")
            {
                !v.is_empty()
            } else {
                true
            };
            if !ok {
                return Err(bad);
            }
        }
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    /// The branch parameter, if present.
    pub fn branch(&self) -> Option<&'a str> {
        find_param(&self.params, "branch").and_then(|p| p.value)
    }

    /// True when the branch carries the RFC 3261 magic cookie.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        find_param(&self.params, "received").and_then(|p| p.value)
    }

    /// `rport`: `None` if absent, `Some(None)` if present without value.
    pub fn rport(&self) -> Option<Option<u16>> {
        find_param(&self.params, "rport").map(|p| p.value.and_then(|v| v.parse().ok()))
    }

    /// `sent-by` as `host[:port]`, used in transaction keys.
    pub fn sent_by(&self) -> String {
        let mut out = String::with_capacity(self.host.len() + 6);
        out.extend(self.host.chars().map(|c| c.to_ascii_lowercase()));
        if let Some(p) = self.port {
            use std::fmt::Write as _;
            let _ = write!(out, ":{p}");
        }
        out
    }
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for p in &self.params {
            write!(f, ";{}", p.name)?;
            if let Some(v) = p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws() {
        let v = Via::parse("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        let v =
            Via::parse("SIP/2.0/TCP [::1]:5070;rport;received=10.0.0.1;branch=z9hG4bKx").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("10.0.0.1"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP [::1]:5070;rport;received=10.0.0.1;branch=z9hG4bKx"
        );
    }

    #[test]
    fn via_rejects() {
        assert_eq!(Via::parse("SIP/7.0/UDP a"), Err(ParseError::Version));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP a;rport=x").is_err());
    }
}
