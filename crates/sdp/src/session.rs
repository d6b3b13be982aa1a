//! The session description model (RFC 8866 §5). Fields that carry numbers the rest of
//! Natter computes with are typed; everything else is kept as the exact text received so
//! that writing a parsed description reproduces it.

use crate::attributes::{Direction, Group};
use crate::candidate::CandidateAttr;

/// Which line terminator the description used; the writer reproduces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\r\n`, as RFC 8866 requires.
    #[default]
    CrLf,
    /// Bare `\n`, which many stacks also emit and accept.
    Lf,
}

impl LineEnding {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LineEnding::CrLf => "\r\n",
            LineEnding::Lf => "\n",
        }
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name, `-` when none.
    pub username: String,
    /// Session id, kept as text (it may exceed 64 bits or carry leading zeros).
    pub session_id: String,
    /// Session version; bumped by [`SessionDescription::bump_version`] on each new offer.
    pub session_version: u64,
    /// Normally `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// Address or FQDN.
    pub unicast_address: String,
}

impl Default for Origin {
    fn default() -> Self {
        Origin {
            username: "-".into(),
            session_id: "0".into(),
            session_version: 0,
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            unicast_address: "0.0.0.0".into(),
        }
    }
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Normally `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// Address, possibly with `/ttl[/count]` for multicast; kept verbatim.
    pub address: String,
}

impl Connection {
    /// An `IN IP4`/`IN IP6` connection line for `ip`.
    pub fn new(ip: std::net::IpAddr) -> Self {
        Connection {
            net_type: "IN".into(),
            addr_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, ignoring any multicast `/ttl` suffix; `None` for FQDNs.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`, ...
    pub bw_type: String,
    /// Value in the unit of the type (kbit/s for AS/CT, bit/s for TIAS).
    pub bandwidth: u64,
}

/// `t=<start> <stop>` plus its `r=` repeat lines (kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timing {
    /// NTP start time, 0 for unbounded.
    pub start: u64,
    /// NTP stop time, 0 for unbounded.
    pub stop: u64,
    /// Raw values of `r=` lines following this `t=`.
    pub repeats: Vec<String>,
}

/// `a=<name>[:<value>]`, kept exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name (before the first `:`).
    pub name: String,
    /// Everything after the first `:`, or `None` for property attributes.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute such as `a=rtcp-mux`.
    pub fn property(name: &str) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// A value attribute such as `a=mid:0`.
    pub fn value(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// One media section: `m=` and the lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    /// Transport port; 0 marks a rejected or removed stream (RFC 3264 §5.1, §8.2).
    pub port: u16,
    /// Optional `/<number of ports>`.
    pub num_ports: Option<u16>,
    /// `RTP/AVP`, `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`, ...
    pub proto: String,
    /// Format list: payload type numbers for RTP, other tokens otherwise.
    pub formats: Vec<String>,
    /// `i=`.
    pub title: Option<String>,
    /// `c=` lines.
    pub connections: Vec<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` (obsolete, kept for round trip).
    pub key: Option<String>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute>,
}

/// A complete session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `v=`; always 0 in practice.
    pub version: u32,
    /// `o=`.
    pub origin: Origin,
    /// `s=`; `-` when unnamed.
    pub session_name: String,
    /// `i=`.
    pub info: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their repeats (at least one when well formed).
    pub timings: Vec<Timing>,
    /// `z=` (kept verbatim).
    pub time_zones: Option<String>,
    /// Session-level `k=`.
    pub key: Option<String>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Media sections in order.
    pub media: Vec<Media>,
    /// Line terminator to use when writing.
    pub line_ending: LineEnding,
}

impl Default for SessionDescription {
    fn default() -> Self {
        SessionDescription {
            version: 0,
            origin: Origin::default(),
            session_name: "-".into(),
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: vec![Timing::default()],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
            line_ending: LineEnding::CrLf,
        }
    }
}

/// Helpers shared by session and media attribute lists.
pub(crate) fn attr_value<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.as_deref())
}

pub(crate) fn attr_values<'a>(
    attrs: &'a [Attribute],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    attrs
        .iter()
        .filter(move |a| a.name == name)
        .filter_map(|a| a.value.as_deref())
}

pub(crate) fn has_attr(attrs: &[Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.name == name)
}

impl SessionDescription {
    /// First session-level attribute value named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        attr_value(&self.attributes, name)
    }

    /// Whether a session-level attribute named `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        has_attr(&self.attributes, name)
    }

    /// `a=group:` lines (BUNDLE and others) that parse.
    pub fn groups(&self) -> Vec<Group> {
        attr_values(&self.attributes, "group")
            .filter_map(|v| Group::parse(v).ok())
            .collect()
    }

    /// The mids in the first BUNDLE group, if any (RFC 9143).
    pub fn bundle_mids(&self) -> Option<Vec<String>> {
        self.groups()
            .into_iter()
            .find(|g| g.semantics == "BUNDLE")
            .map(|g| g.mids)
    }

    /// Whether the session declares `a=ice-lite` (RFC 8839 §5.3).
    pub fn ice_lite(&self) -> bool {
        self.has_attribute("ice-lite")
    }

    /// Session-level direction, defaulting to sendrecv.
    pub fn direction(&self) -> Direction {
        Direction::from_attributes(&self.attributes).unwrap_or(Direction::SendRecv)
    }

    /// Increments `o=` session version, as required for each new offer (RFC 3264 §8).
    pub fn bump_version(&mut self) {
        self.origin.session_version = self.origin.session_version.wrapping_add(1);
    }

    /// Media section whose `a=mid` is `mid`.
    pub fn media_by_mid(&self, mid: &str) -> Option<&Media> {
        self.media.iter().find(|m| m.mid() == Some(mid))
    }

    /// ICE ufrag for `media`: media level wins over session level (RFC 8839 §5.4).
    pub fn ice_ufrag(&self, media: usize) -> Option<&str> {
        self.media
            .get(media)
            .and_then(|m| m.attribute("ice-ufrag"))
            .or_else(|| self.attribute("ice-ufrag"))
    }

    /// ICE password for `media`, media level first.
    pub fn ice_pwd(&self, media: usize) -> Option<&str> {
        self.media
            .get(media)
            .and_then(|m| m.attribute("ice-pwd"))
            .or_else(|| self.attribute("ice-pwd"))
    }

    /// ICE options (e.g. `trickle`) for `media`, media level first.
    pub fn ice_options(&self, media: usize) -> Vec<String> {
        self.media
            .get(media)
            .and_then(|m| m.attribute("ice-options"))
            .or_else(|| self.attribute("ice-options"))
            .map(|v| v.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// DTLS fingerprints for `media`, media level first (RFC 8122).
    pub fn fingerprints(&self, media: usize) -> Vec<crate::Fingerprint> {
        let m = self
            .media
            .get(media)
            .map(|m| crate::attributes::parse_all(&m.attributes, "fingerprint"))
            .unwrap_or_default();
        if m.is_empty() {
            crate::attributes::parse_all(&self.attributes, "fingerprint")
        } else {
            m
        }
    }

    /// Adds a media section (a new stream in a subsequent offer, RFC 3264 §8.1).
    pub fn add_media(&mut self, media: Media) -> usize {
        self.media.push(media);
        self.media.len() - 1
    }

    /// Removes a stream the RFC 3264 §8.2 way: port 0, the m-line stays in place, and
    /// attributes are dropped. Returns `false` if there is no such section.
    pub fn remove_media(&mut self, index: usize) -> bool {
        match self.media.get_mut(index) {
            Some(m) => {
                m.reject();
                true
            }
            None => false,
        }
    }
}

impl Media {
    /// A new media section with no attributes.
    pub fn new(media: &str, port: u16, proto: &str, formats: Vec<String>) -> Self {
        Media {
            media: media.into(),
            port,
            num_ports: None,
            proto: proto.into(),
            formats,
            title: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// Sets the transport address of the stream: the m-line port and a single media
    /// level `c=` line (e.g. from ICE's default candidate, RFC 8839 §4.2.1.2).
    pub fn set_address(&mut self, addr: std::net::SocketAddr) {
        self.port = addr.port();
        self.connections = vec![Connection::new(addr.ip())];
    }

    /// First attribute value named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        attr_value(&self.attributes, name)
    }

    /// All values of attributes named `name`.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        attr_values(&self.attributes, name)
    }

    /// Whether an attribute named `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        has_attr(&self.attributes, name)
    }

    /// Appends an attribute.
    pub fn push_attribute(&mut self, attr: Attribute) {
        self.attributes.push(attr);
    }

    /// Removes every attribute named `name`.
    pub fn remove_attributes(&mut self, name: &str) {
        self.attributes.retain(|a| a.name != name);
    }

    /// Whether the stream is rejected/disabled (port 0, RFC 3264 §6).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// Marks the stream rejected: port 0 and no attributes except `mid` (kept so BUNDLE
    /// peers can still correlate the section).
    pub fn reject(&mut self) {
        self.port = 0;
        self.attributes.retain(|a| a.name == "mid");
        self.bandwidths.clear();
    }

    /// `a=mid` (RFC 5888).
    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid")
    }

    /// Media-level direction attribute, if present.
    pub fn direction_attr(&self) -> Option<Direction> {
        Direction::from_attributes(&self.attributes)
    }

    /// Effective direction given the session default.
    pub fn direction(&self, session: &SessionDescription) -> Direction {
        self.direction_attr().unwrap_or_else(|| session.direction())
    }

    /// Replaces any direction attribute with `dir`.
    pub fn set_direction(&mut self, dir: Direction) {
        let pos = self
            .attributes
            .iter()
            .position(|a| Direction::from_name(&a.name).is_some() && a.value.is_none());
        self.attributes
            .retain(|a| !(Direction::from_name(&a.name).is_some() && a.value.is_none()));
        let attr = Attribute::property(dir.as_str());
        match pos {
            Some(p) if p <= self.attributes.len() => self.attributes.insert(p, attr),
            _ => self.attributes.push(attr),
        }
    }

    /// Puts the stream on hold (RFC 3264 §8.4): sendrecv→sendonly, recvonly→inactive.
    pub fn hold(&mut self) {
        let dir = self.direction_attr().unwrap_or(Direction::SendRecv);
        self.set_direction(match dir {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        });
    }

    /// Takes the stream off hold: sendonly→sendrecv, inactive→recvonly.
    pub fn resume(&mut self) {
        let dir = self.direction_attr().unwrap_or(Direction::SendRecv);
        self.set_direction(match dir {
            Direction::SendRecv | Direction::SendOnly => Direction::SendRecv,
            Direction::RecvOnly | Direction::Inactive => Direction::RecvOnly,
        });
    }

    /// Parsed `a=rtpmap` lines.
    pub fn rtpmaps(&self) -> Vec<crate::Rtpmap> {
        crate::attributes::parse_all(&self.attributes, "rtpmap")
    }

    /// The rtpmap for payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<crate::Rtpmap> {
        self.rtpmaps().into_iter().find(|r| r.payload_type == pt)
    }

    /// Parsed `a=fmtp` lines.
    pub fn fmtps(&self) -> Vec<crate::Fmtp> {
        crate::attributes::parse_all(&self.attributes, "fmtp")
    }

    /// The fmtp parameters for `format`.
    pub fn fmtp(&self, format: &str) -> Option<crate::Fmtp> {
        self.fmtps().into_iter().find(|f| f.format == format)
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<crate::Rtcp> {
        self.attribute("rtcp")
            .and_then(|v| crate::Rtcp::parse(v).ok())
    }

    /// Whether RTP and RTCP share a port (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// ICE candidates (RFC 8839 §5.1); lines that do not parse are skipped.
    pub fn candidates(&self) -> Vec<CandidateAttr> {
        crate::attributes::parse_all(&self.attributes, "candidate")
    }

    /// `a=remote-candidates` (RFC 8839 §5.2).
    pub fn remote_candidates(&self) -> Vec<crate::RemoteCandidate> {
        self.attribute("remote-candidates")
            .and_then(|v| crate::RemoteCandidate::parse_list(v).ok())
            .unwrap_or_default()
    }

    /// Whether `a=end-of-candidates` is present (RFC 8838 §8.2).
    pub fn end_of_candidates(&self) -> bool {
        self.has_attribute("end-of-candidates")
    }

    /// `a=setup` (RFC 4145).
    pub fn setup(&self) -> Option<crate::Setup> {
        self.attribute("setup")
            .and_then(|v| crate::Setup::parse(v).ok())
    }

    /// `a=fingerprint` lines (RFC 8122).
    pub fn fingerprints(&self) -> Vec<crate::Fingerprint> {
        crate::attributes::parse_all(&self.attributes, "fingerprint")
    }

    /// `a=crypto` lines (RFC 4568).
    pub fn crypto(&self) -> Vec<crate::Crypto> {
        crate::attributes::parse_all(&self.attributes, "crypto")
    }

    /// `a=ssrc` lines (RFC 5576).
    pub fn ssrcs(&self) -> Vec<crate::Ssrc> {
        crate::attributes::parse_all(&self.attributes, "ssrc")
    }

    /// `a=extmap` lines (RFC 8285).
    pub fn extmaps(&self) -> Vec<crate::Extmap> {
        crate::attributes::parse_all(&self.attributes, "extmap")
    }
}
