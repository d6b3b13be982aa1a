//! Typed views of attribute values. Each type parses from the raw value (text after
//! `a=name:`) and displays back to it, so callers can build attributes without string
//! formatting of their own.

use std::fmt;

use crate::error::{Error, Result};
use crate::session::Attribute;

/// Something parsed from an attribute value.
pub(crate) trait AttrValue: Sized {
    fn parse_value(v: &str) -> Result<Self>;
}

/// Parses every attribute named `name`, skipping values that fail to parse.
pub(crate) fn parse_all<T: AttrValue>(attrs: &[Attribute], name: &str) -> Vec<T> {
    attrs
        .iter()
        .filter(|a| a.name == name)
        .filter_map(|a| a.value.as_deref())
        .filter_map(|v| T::parse_value(v).ok())
        .collect()
}

macro_rules! attr_value {
    ($t:ty) => {
        impl AttrValue for $t {
            fn parse_value(v: &str) -> Result<Self> {
                <$t>::parse(v)
            }
        }
    };
}

fn digits<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidAttribute(what));
    }
    s.parse().map_err(|_| Error::InvalidAttribute(what))
}

/// Media direction (RFC 3264 §5.1, RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// Attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Direction for an attribute name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    pub(crate) fn from_attributes(attrs: &[Attribute]) -> Option<Self> {
        attrs
            .iter()
            .filter(|a| a.value.is_none())
            .find_map(|a| Direction::from_name(&a.name))
    }

    /// The direction seen from the other side (sendonly ↔ recvonly).
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether this side sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Builds a direction from send/receive flags.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The answer direction for an offered direction given what the answerer wants
    /// (RFC 3264 §6.1): the answer may only narrow the reverse of the offer.
    pub fn answer(offered: Direction, local: Direction) -> Direction {
        let remote = offered.reversed();
        Direction::from_flags(
            remote.sends() && local.sends(),
            remote.receives() && local.receives(),
        )
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels / encoding parameters.
    pub channels: Option<u16>,
}

impl Rtpmap {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        const W: &str = "rtpmap";
        let (pt, rest) = v.split_once(' ').ok_or(Error::InvalidAttribute(W))?;
        let payload_type: u8 = digits(pt, W)?;
        if payload_type > 127 {
            return Err(Error::InvalidAttribute(W));
        }
        let mut parts = rest.trim_end().split('/');
        let encoding = parts
            .next()
            .filter(|e| !e.is_empty())
            .ok_or(Error::InvalidAttribute(W))?;
        let clock_rate = digits(parts.next().ok_or(Error::InvalidAttribute(W))?, W)?;
        let channels = parts.next().map(|c| digits(c, W)).transpose()?;
        if parts.next().is_some() {
            return Err(Error::InvalidAttribute(W));
        }
        Ok(Rtpmap {
            payload_type,
            encoding: encoding.into(),
            clock_rate,
            channels,
        })
    }

    /// As an attribute.
    pub fn to_attribute(&self) -> Attribute {
        Attribute::value("rtpmap", self.to_string())
    }
}

impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(c) = self.channels {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}
attr_value!(Rtpmap);

/// `a=fmtp:<format> <parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// Format (payload type for RTP).
    pub format: String,
    /// Raw parameter string.
    pub params: String,
}

impl Fmtp {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        let (f, p) = v.split_once(' ').ok_or(Error::InvalidAttribute("fmtp"))?;
        if f.is_empty() {
            return Err(Error::InvalidAttribute("fmtp"));
        }
        Ok(Fmtp {
            format: f.into(),
            params: p.into(),
        })
    }

    /// `key=value` pairs split on `;` (the common convention; values are trimmed).
    pub fn pairs(&self) -> Vec<(String, Option<String>)> {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                None => (kv.to_owned(), None),
            })
            .collect()
    }

    /// Value of one parameter.
    pub fn get(&self, key: &str) -> Option<String> {
        self.pairs()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v)
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format, self.params)
    }
}
attr_value!(Fmtp);

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// RTCP port.
    pub port: u16,
    /// Optional `IN IP4 addr` triple, verbatim.
    pub connection: Option<(String, String, String)>,
}

impl Rtcp {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        let mut it = v.split(' ');
        let port = digits(it.next().unwrap_or(""), "rtcp")?;
        let connection = match (it.next(), it.next(), it.next()) {
            (None, _, _) => None,
            (Some(n), Some(a), Some(addr)) => Some((n.into(), a.into(), addr.into())),
            _ => return Err(Error::InvalidAttribute("rtcp")),
        };
        if it.next().is_some() {
            return Err(Error::InvalidAttribute("rtcp"));
        }
        Ok(Rtcp { port, connection })
    }
}

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some((n, a, addr)) = &self.connection {
            write!(f, " {n} {a} {addr}")?;
        }
        Ok(())
    }
}

/// `a=group:<semantics> <mid>...` (RFC 5888, BUNDLE RFC 9143).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `BUNDLE`, `LS`, `FID`, ...
    pub semantics: String,
    /// Identification tags in order.
    pub mids: Vec<String>,
}

impl Group {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        let mut it = v.split(' ').filter(|s| !s.is_empty());
        let semantics = it
            .next()
            .ok_or(Error::InvalidAttribute("group"))?
            .to_owned();
        Ok(Group {
            semantics,
            mids: it.map(str::to_owned).collect(),
        })
    }

    /// As an attribute.
    pub fn to_attribute(&self) -> Attribute {
        Attribute::value("group", self.to_string())
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantics)?;
        for m in &self.mids {
            write!(f, " {m}")?;
        }
        Ok(())
    }
}

/// `a=fingerprint:<hash-func> <XX:XX:...>` (RFC 8122).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `sha-256`, ...
    pub hash: String,
    /// Digest bytes.
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        const W: &str = "fingerprint";
        let (h, d) = v.split_once(' ').ok_or(Error::InvalidAttribute(W))?;
        if h.is_empty() || d.len() > 64 * 3 {
            return Err(Error::InvalidAttribute(W));
        }
        let digest = d
            .split(':')
            .map(|b| {
                if b.len() == 2 {
                    u8::from_str_radix(b, 16).map_err(|_| Error::InvalidAttribute(W))
                } else {
                    Err(Error::InvalidAttribute(W))
                }
            })
            .collect::<Result<Vec<u8>>>()?;
        Ok(Fingerprint {
            hash: h.to_ascii_lowercase(),
            digest,
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hash)?;
        for (i, b) in self.digest.iter().enumerate() {
            write!(f, "{}{:02X}", if i == 0 { ' ' } else { ':' }, b)?;
        }
        Ok(())
    }
}
attr_value!(Fingerprint);

/// `a=setup` (RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Will initiate the connection.
    Active,
    /// Will accept.
    Passive,
    /// Either (offers only).
    ActPass,
    /// Keep the existing connection.
    HoldConn,
}

impl Setup {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        Ok(match v {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "actpass" => Setup::ActPass,
            "holdconn" => Setup::HoldConn,
            _ => return Err(Error::InvalidAttribute("setup")),
        })
    }

    /// Attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    /// The answer to an offered setup role (RFC 5763 §5: answerer to actpass is active).
    pub fn answer(offered: Setup) -> Setup {
        match offered {
            Setup::Active => Setup::Passive,
            Setup::Passive | Setup::ActPass => Setup::Active,
            Setup::HoldConn => Setup::HoldConn,
        }
    }
}

/// `a=crypto:<tag> <suite> <key-params> [<session-params>]` (RFC 4568 §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Tag (1-9 digits).
    pub tag: u32,
    /// Crypto suite, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: String,
    /// Key parameters, each `method:info` (e.g. `inline:base64|2^20|1:4`).
    pub key_params: Vec<String>,
    /// Session parameters verbatim.
    pub session_params: Vec<String>,
}

impl Crypto {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        const W: &str = "crypto";
        let mut it = v.split(' ').filter(|s| !s.is_empty());
        let tag = digits(it.next().ok_or(Error::InvalidAttribute(W))?, W)?;
        let suite = it.next().ok_or(Error::InvalidAttribute(W))?.to_owned();
        let kp = it.next().ok_or(Error::InvalidAttribute(W))?;
        let key_params: Vec<String> = kp.split(';').map(str::to_owned).collect();
        if key_params.iter().any(|k| !k.contains(':')) {
            return Err(Error::InvalidAttribute(W));
        }
        Ok(Crypto {
            tag,
            suite,
            key_params,
            session_params: it.map(str::to_owned).collect(),
        })
    }

    /// The base64 key+salt of the first `inline:` key parameter (without lifetime/MKI).
    pub fn inline_key(&self) -> Option<&str> {
        self.key_params
            .iter()
            .find_map(|k| k.strip_prefix("inline:"))
            .and_then(|k| k.split('|').next())
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.tag,
            self.suite,
            self.key_params.join(";")
        )?;
        for s in &self.session_params {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}
attr_value!(Crypto);

/// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssrc {
    /// SSRC.
    pub ssrc: u32,
    /// Source attribute name (`cname`, `msid`, ...).
    pub attribute: String,
    /// Its value.
    pub value: Option<String>,
}

impl Ssrc {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        let (id, rest) = v.split_once(' ').ok_or(Error::InvalidAttribute("ssrc"))?;
        let ssrc = digits(id, "ssrc")?;
        let (attribute, value) = match rest.split_once(':') {
            Some((a, v)) => (a.to_owned(), Some(v.to_owned())),
            None => (rest.to_owned(), None),
        };
        Ok(Ssrc {
            ssrc,
            attribute,
            value,
        })
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.ssrc, self.attribute)?;
        if let Some(v) = &self.value {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}
attr_value!(Ssrc);

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extmap {
    /// Extension id (1-14 one-byte, up to 255 two-byte).
    pub id: u16,
    /// Optional direction.
    pub direction: Option<Direction>,
    /// Extension URI.
    pub uri: String,
    /// Extension attributes, verbatim.
    pub attributes: Option<String>,
}

impl Extmap {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self> {
        const W: &str = "extmap";
        let (head, rest) = v.split_once(' ').ok_or(Error::InvalidAttribute(W))?;
        let (id, direction) = match head.split_once('/') {
            Some((i, d)) => (
                digits(i, W)?,
                Some(Direction::from_name(d).ok_or(Error::InvalidAttribute(W))?),
            ),
            None => (digits(head, W)?, None),
        };
        let (uri, attributes) = match rest.split_once(' ') {
            Some((u, a)) => (u, Some(a.to_owned())),
            None => (rest, None),
        };
        if uri.is_empty() {
            return Err(Error::InvalidAttribute(W));
        }
        Ok(Extmap {
            id,
            direction,
            uri: uri.into(),
            attributes,
        })
    }
}

impl fmt::Display for Extmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(d) = self.direction {
            write!(f, "/{}", d.as_str())?;
        }
        write!(f, " {}", self.uri)?;
        if let Some(a) = &self.attributes {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}
attr_value!(Extmap);

/// One entry of `a=remote-candidates:` (RFC 8839 §5.2): component, address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCandidate {
    /// Component id.
    pub component: u16,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
}

impl RemoteCandidate {
    /// Parses the whole attribute value (a sequence of triples).
    pub fn parse_list(v: &str) -> Result<Vec<Self>> {
        const W: &str = "remote-candidates";
        let toks: Vec<&str> = v.split(' ').filter(|s| !s.is_empty()).collect();
        if toks.is_empty() || toks.len() % 3 != 0 {
            return Err(Error::InvalidAttribute(W));
        }
        toks.chunks(3)
            .map(|c| match c {
                [comp, addr, port] => Ok(RemoteCandidate {
                    component: digits(comp, W)?,
                    address: (*addr).to_owned(),
                    port: digits(port, W)?,
                }),
                _ => Err(Error::InvalidAttribute(W)),
            })
            .collect()
    }
}

impl fmt::Display for RemoteCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.component, self.address, self.port)
    }
}
