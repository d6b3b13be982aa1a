//! Jingle (XEP-0166) for voice calls: the `<jingle/>` model with XEP-0167 RTP descriptions
//! (plus XEP-0293 rtcp-fb, XEP-0294 header extensions, XEP-0339 sources), XEP-0176 ICE-UDP
//! transports and XEP-0320 DTLS fingerprints; [`sdp`] maps it to and from SDP so the
//! phone's offer/answer code negotiates; [`session`] is the session state machine;
//! [`jmi`] is XEP-0353 message initiation.
//!
//! Parsing is lenient where real peers are: stanza.js omits the candidate `id` and
//! `generation` (REQUIRED in XEP-0176), so both are optional here. Elements and attributes
//! we do not know are ignored; a malformed candidate or payload type is skipped, not fatal.

pub mod jmi;
pub mod sdp;
pub mod session;

use crate::ns;
use crate::xml::Element;

/// Why a `<jingle/>` cannot be used (answered with `bad-request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JingleError {
    /// A required attribute is missing.
    #[error("<jingle/> without {0}")]
    Missing(&'static str),
    /// Not a `<jingle xmlns='urn:xmpp:jingle:1'/>`.
    #[error("not a jingle element")]
    NotJingle,
}

/// XEP-0166 §7.2 actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// session-initiate.
    SessionInitiate,
    /// session-accept.
    SessionAccept,
    /// session-terminate.
    SessionTerminate,
    /// session-info (ringing, hold, ...).
    SessionInfo,
    /// transport-info (trickled candidates).
    TransportInfo,
    /// content-add.
    ContentAdd,
    /// content-remove.
    ContentRemove,
    /// content-modify.
    ContentModify,
    /// content-accept.
    ContentAccept,
    /// content-reject.
    ContentReject,
    /// description-info.
    DescriptionInfo,
    /// transport-replace.
    TransportReplace,
    /// transport-accept.
    TransportAccept,
    /// transport-reject.
    TransportReject,
    /// security-info.
    SecurityInfo,
    /// Anything else (answered with `bad-request`).
    Other(String),
}

impl Action {
    /// From the attribute value.
    pub fn parse(s: &str) -> Action {
        match s {
            "session-initiate" => Action::SessionInitiate,
            "session-accept" => Action::SessionAccept,
            "session-terminate" => Action::SessionTerminate,
            "session-info" => Action::SessionInfo,
            "transport-info" => Action::TransportInfo,
            "content-add" => Action::ContentAdd,
            "content-remove" => Action::ContentRemove,
            "content-modify" => Action::ContentModify,
            "content-accept" => Action::ContentAccept,
            "content-reject" => Action::ContentReject,
            "description-info" => Action::DescriptionInfo,
            "transport-replace" => Action::TransportReplace,
            "transport-accept" => Action::TransportAccept,
            "transport-reject" => Action::TransportReject,
            "security-info" => Action::SecurityInfo,
            other => Action::Other(other.to_owned()),
        }
    }

    /// The attribute value.
    pub fn as_str(&self) -> &str {
        match self {
            Action::SessionInitiate => "session-initiate",
            Action::SessionAccept => "session-accept",
            Action::SessionTerminate => "session-terminate",
            Action::SessionInfo => "session-info",
            Action::TransportInfo => "transport-info",
            Action::ContentAdd => "content-add",
            Action::ContentRemove => "content-remove",
            Action::ContentModify => "content-modify",
            Action::ContentAccept => "content-accept",
            Action::ContentReject => "content-reject",
            Action::DescriptionInfo => "description-info",
            Action::TransportReplace => "transport-replace",
            Action::TransportAccept => "transport-accept",
            Action::TransportReject => "transport-reject",
            Action::SecurityInfo => "security-info",
            Action::Other(s) => s,
        }
    }
}

/// XEP-0166 §7.4 `<reason/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Condition element name (`success`, `decline`, `busy`, `failed-transport`, ...).
    pub condition: String,
    /// Optional human text.
    pub text: Option<String>,
}

/// XEP-0293 `<rtcp-fb/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// `type` (`nack`, `transport-cc`, ...).
    pub kind: String,
    /// `subtype` (`pli`), if any.
    pub subtype: Option<String>,
}

/// XEP-0167 `<payload-type/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// Payload type number.
    pub id: u8,
    /// Encoding name.
    pub name: String,
    /// Clock rate (Hz).
    pub clockrate: u32,
    /// Channels (1 when absent).
    pub channels: u8,
    /// `ptime`, if given.
    pub ptime: Option<u32>,
    /// `<parameter name value/>`; a name without a value is kept as is (RED's `111/111`).
    pub params: Vec<(String, Option<String>)>,
    /// Feedback for this payload type.
    pub rtcp_fb: Vec<RtcpFb>,
}

/// XEP-0294 `<rtp-hdrext/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdrExt {
    /// Local identifier.
    pub id: u16,
    /// Extension URI.
    pub uri: String,
    /// `senders`, if restricted.
    pub senders: Option<String>,
}

/// XEP-0339 `<source/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// SSRC.
    pub ssrc: u32,
    /// Parameters (`cname`, `msid`).
    pub params: Vec<(String, String)>,
}

/// XEP-0167 `<description/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpDescription {
    /// `audio`, `video`.
    pub media: String,
    /// Sender SSRC, if announced.
    pub ssrc: Option<u32>,
    /// Codecs in preference order.
    pub payload_types: Vec<PayloadType>,
    /// `<rtcp-mux/>`.
    pub rtcp_mux: bool,
    /// `<rtcp-reduced-size/>`.
    pub rtcp_reduced_size: bool,
    /// Feedback for all payload types.
    pub rtcp_fb: Vec<RtcpFb>,
    /// Header extensions.
    pub hdrexts: Vec<HdrExt>,
    /// Sources.
    pub sources: Vec<Source>,
}

/// XEP-0176 `<candidate/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Component (1 RTP, 2 RTCP).
    pub component: u16,
    /// Foundation.
    pub foundation: String,
    /// Generation (optional here: stanza.js omits it).
    pub generation: Option<u32>,
    /// Candidate id (optional here: stanza.js omits it).
    pub id: Option<String>,
    /// Address.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Priority.
    pub priority: u32,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// `host`, `srflx`, `prflx`, `relay`.
    pub kind: String,
    /// Related address.
    pub rel_addr: Option<String>,
    /// Related port.
    pub rel_port: Option<u16>,
    /// Network index.
    pub network: Option<u32>,
    /// ICE-TCP type.
    pub tcptype: Option<String>,
}

/// XEP-0320 `<fingerprint/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function (`sha-256`).
    pub hash: String,
    /// `actpass`, `active`, `passive`.
    pub setup: Option<String>,
    /// Colon-separated hex.
    pub value: String,
}

/// XEP-0176 `<transport/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceUdp {
    /// ICE ufrag.
    pub ufrag: Option<String>,
    /// ICE password.
    pub pwd: Option<String>,
    /// Candidates.
    pub candidates: Vec<Candidate>,
    /// DTLS fingerprints.
    pub fingerprints: Vec<Fingerprint>,
    /// `<gathering-complete/>` (end of candidates).
    pub gathering_complete: bool,
}

/// A `<content/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// `initiator` or `responder`.
    pub creator: String,
    /// Name (the SDP `mid`).
    pub name: String,
    /// `senders` (`both` when absent).
    pub senders: Option<String>,
    /// RTP description.
    pub description: Option<RtpDescription>,
    /// ICE-UDP transport.
    pub transport: Option<IceUdp>,
}

/// XEP-0338 `<group/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `BUNDLE`.
    pub semantics: String,
    /// Content names.
    pub contents: Vec<String>,
}

/// A `<jingle/>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    /// Action.
    pub action: Action,
    /// Session id.
    pub sid: String,
    /// `initiator` attribute.
    pub initiator: Option<String>,
    /// `responder` attribute.
    pub responder: Option<String>,
    /// Contents.
    pub contents: Vec<Content>,
    /// Reason (terminate, reject).
    pub reason: Option<Reason>,
    /// BUNDLE group.
    pub group: Option<Group>,
    /// The session-info payload's name (`ringing`, `active`, `hold`, ...), if any.
    pub info: Option<String>,
}

fn num<T: std::str::FromStr>(e: &Element, k: &str) -> Option<T> {
    e.attr(k).and_then(|v| v.trim().parse().ok())
}

impl PayloadType {
    fn parse(e: &Element) -> Option<PayloadType> {
        let params = e
            .children_named("parameter", ns::JINGLE_RTP)
            .filter_map(|p| {
                Some((
                    p.attr("name")?.to_owned(),
                    p.attr("value").map(str::to_owned),
                ))
            })
            .collect();
        Some(PayloadType {
            id: num(e, "id")?,
            name: e.attr("name").unwrap_or("").to_owned(),
            clockrate: num(e, "clockrate").unwrap_or(0),
            channels: num(e, "channels").unwrap_or(1),
            ptime: num(e, "ptime"),
            params,
            rtcp_fb: parse_fb(e),
        })
    }

    fn to_element(&self) -> Element {
        let mut e = Element::new("payload-type", ns::JINGLE_RTP)
            .with_attr("id", self.id.to_string())
            .with_attr("name", self.name.clone())
            .with_attr("clockrate", self.clockrate.to_string());
        if self.channels != 1 {
            e.set_attr("channels", self.channels.to_string());
        }
        if let Some(p) = self.ptime {
            e.set_attr("ptime", p.to_string());
        }
        for (k, v) in &self.params {
            let mut p = Element::new("parameter", ns::JINGLE_RTP).with_attr("name", k.clone());
            if let Some(v) = v {
                p.set_attr("value", v.clone());
            }
            e.push(p);
        }
        for f in &self.rtcp_fb {
            e.push(f.to_element());
        }
        e
    }
}

fn parse_fb(e: &Element) -> Vec<RtcpFb> {
    e.children_named("rtcp-fb", ns::JINGLE_RTCP_FB)
        .filter_map(|f| {
            Some(RtcpFb {
                kind: f.attr("type")?.to_owned(),
                subtype: f.attr("subtype").map(str::to_owned),
            })
        })
        .collect()
}

impl RtcpFb {
    fn to_element(&self) -> Element {
        let mut e =
            Element::new("rtcp-fb", ns::JINGLE_RTCP_FB).with_attr("type", self.kind.clone());
        if let Some(s) = &self.subtype {
            e.set_attr("subtype", s.clone());
        }
        e
    }
}

impl RtpDescription {
    /// From `<description xmlns='urn:xmpp:jingle:apps:rtp:1'/>`.
    pub fn parse(e: &Element) -> RtpDescription {
        RtpDescription {
            media: e.attr("media").unwrap_or("").to_owned(),
            ssrc: num(e, "ssrc"),
            payload_types: e
                .children_named("payload-type", ns::JINGLE_RTP)
                .filter_map(PayloadType::parse)
                .collect(),
            rtcp_mux: e.child("rtcp-mux", ns::JINGLE_RTP).is_some(),
            rtcp_reduced_size: e.child("rtcp-reduced-size", ns::JINGLE_RTP).is_some(),
            rtcp_fb: parse_fb(e),
            hdrexts: e
                .children_named("rtp-hdrext", ns::JINGLE_HDREXT)
                .filter_map(|h| {
                    Some(HdrExt {
                        id: num(h, "id")?,
                        uri: h.attr("uri")?.to_owned(),
                        senders: h.attr("senders").map(str::to_owned),
                    })
                })
                .collect(),
            sources: e
                .children_named("source", ns::JINGLE_SSMA)
                .filter_map(|s| {
                    Some(Source {
                        ssrc: num(s, "ssrc")?,
                        params: s
                            .children_named("parameter", ns::JINGLE_SSMA)
                            .filter_map(|p| {
                                Some((p.attr("name")?.to_owned(), p.attr("value")?.to_owned()))
                            })
                            .collect(),
                    })
                })
                .collect(),
        }
    }

    /// As `<description/>`.
    pub fn to_element(&self) -> Element {
        let mut e =
            Element::new("description", ns::JINGLE_RTP).with_attr("media", self.media.clone());
        if let Some(s) = self.ssrc {
            e.set_attr("ssrc", s.to_string());
        }
        for p in &self.payload_types {
            e.push(p.to_element());
        }
        if self.rtcp_mux {
            e.push(Element::new("rtcp-mux", ns::JINGLE_RTP));
        }
        if self.rtcp_reduced_size {
            e.push(Element::new("rtcp-reduced-size", ns::JINGLE_RTP));
        }
        for f in &self.rtcp_fb {
            e.push(f.to_element());
        }
        for h in &self.hdrexts {
            let mut x = Element::new("rtp-hdrext", ns::JINGLE_HDREXT)
                .with_attr("id", h.id.to_string())
                .with_attr("uri", h.uri.clone());
            if let Some(s) = &h.senders {
                x.set_attr("senders", s.clone());
            }
            e.push(x);
        }
        for s in &self.sources {
            let mut x =
                Element::new("source", ns::JINGLE_SSMA).with_attr("ssrc", s.ssrc.to_string());
            for (k, v) in &s.params {
                x.push(
                    Element::new("parameter", ns::JINGLE_SSMA)
                        .with_attr("name", k.clone())
                        .with_attr("value", v.clone()),
                );
            }
            e.push(x);
        }
        e
    }
}

impl Candidate {
    fn parse(e: &Element) -> Option<Candidate> {
        Some(Candidate {
            component: num(e, "component")?,
            foundation: e.attr("foundation")?.to_owned(),
            generation: num(e, "generation"),
            id: e.attr("id").map(str::to_owned),
            ip: e.attr("ip")?.to_owned(),
            port: num(e, "port")?,
            priority: num(e, "priority")?,
            protocol: e.attr("protocol").unwrap_or("udp").to_ascii_lowercase(),
            kind: e.attr("type").unwrap_or("host").to_owned(),
            rel_addr: e.attr("rel-addr").map(str::to_owned),
            rel_port: num(e, "rel-port"),
            network: num(e, "network"),
            tcptype: e.attr("tcptype").map(str::to_owned),
        })
    }

    fn to_element(&self) -> Element {
        let mut e = Element::new("candidate", ns::JINGLE_ICE_UDP)
            .with_attr("component", self.component.to_string())
            .with_attr("foundation", self.foundation.clone())
            .with_attr("generation", self.generation.unwrap_or(0).to_string())
            .with_attr("ip", self.ip.clone())
            .with_attr("port", self.port.to_string())
            .with_attr("priority", self.priority.to_string())
            .with_attr("protocol", self.protocol.clone())
            .with_attr("type", self.kind.clone());
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| format!("{}-{}-{}", self.foundation, self.component, self.port));
        e.set_attr("id", id);
        e.set_attr("network", self.network.unwrap_or(0).to_string());
        if let Some(a) = &self.rel_addr {
            e.set_attr("rel-addr", a.clone());
        }
        if let Some(p) = self.rel_port {
            e.set_attr("rel-port", p.to_string());
        }
        if let Some(t) = &self.tcptype {
            e.set_attr("tcptype", t.clone());
        }
        e
    }
}

impl IceUdp {
    /// From `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/>`.
    pub fn parse(e: &Element) -> IceUdp {
        IceUdp {
            ufrag: e.attr("ufrag").map(str::to_owned),
            pwd: e.attr("pwd").map(str::to_owned),
            candidates: e
                .children_named("candidate", ns::JINGLE_ICE_UDP)
                .take(64)
                .filter_map(Candidate::parse)
                .collect(),
            fingerprints: e
                .children_named("fingerprint", ns::JINGLE_DTLS)
                .map(|f| Fingerprint {
                    hash: f.attr("hash").unwrap_or("sha-256").to_ascii_lowercase(),
                    setup: f.attr("setup").map(str::to_owned),
                    value: f.text().trim().to_owned(),
                })
                .filter(|f| !f.value.is_empty())
                .collect(),
            gathering_complete: e.child("gathering-complete", ns::JINGLE_ICE_UDP).is_some(),
        }
    }

    /// As `<transport/>`.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("transport", ns::JINGLE_ICE_UDP);
        if let Some(u) = &self.ufrag {
            e.set_attr("ufrag", u.clone());
        }
        if let Some(p) = &self.pwd {
            e.set_attr("pwd", p.clone());
        }
        for f in &self.fingerprints {
            let mut x =
                Element::new("fingerprint", ns::JINGLE_DTLS).with_attr("hash", f.hash.clone());
            if let Some(s) = &f.setup {
                x.set_attr("setup", s.clone());
            }
            e.push(x.with_text(f.value.clone()));
        }
        for c in &self.candidates {
            e.push(c.to_element());
        }
        if self.gathering_complete {
            e.push(Element::new("gathering-complete", ns::JINGLE_ICE_UDP));
        }
        e
    }
}

impl Content {
    fn parse(e: &Element) -> Option<Content> {
        Some(Content {
            creator: e.attr("creator").unwrap_or("initiator").to_owned(),
            name: e.attr("name")?.to_owned(),
            senders: e.attr("senders").map(str::to_owned),
            description: e
                .child("description", ns::JINGLE_RTP)
                .map(RtpDescription::parse),
            transport: e.child("transport", ns::JINGLE_ICE_UDP).map(IceUdp::parse),
        })
    }

    /// As `<content/>`.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("content", ns::JINGLE)
            .with_attr("creator", self.creator.clone())
            .with_attr("name", self.name.clone());
        if let Some(s) = &self.senders {
            e.set_attr("senders", s.clone());
        }
        if let Some(d) = &self.description {
            e.push(d.to_element());
        }
        if let Some(t) = &self.transport {
            e.push(t.to_element());
        }
        e
    }
}

impl Jingle {
    /// A `<jingle/>` with no contents.
    pub fn new(action: Action, sid: &str) -> Jingle {
        Jingle {
            action,
            sid: sid.to_owned(),
            initiator: None,
            responder: None,
            contents: Vec::new(),
            reason: None,
            group: None,
            info: None,
        }
    }

    /// From `<jingle xmlns='urn:xmpp:jingle:1'/>`.
    pub fn parse(e: &Element) -> Result<Jingle, JingleError> {
        if !e.is("jingle", ns::JINGLE) {
            return Err(JingleError::NotJingle);
        }
        let action = Action::parse(e.attr("action").ok_or(JingleError::Missing("action"))?);
        let sid = e.attr("sid").ok_or(JingleError::Missing("sid"))?.to_owned();
        let reason = e.child("reason", ns::JINGLE).map(|r| Reason {
            condition: r
                .elements()
                .find(|c| c.name != "text")
                .map(|c| c.name.clone())
                .unwrap_or_else(|| "general-error".into()),
            text: r.child("text", ns::JINGLE).map(Element::text),
        });
        let group = e.child("group", ns::JINGLE_GROUPING).map(|g| Group {
            semantics: g.attr("semantics").unwrap_or("BUNDLE").to_owned(),
            contents: g
                .children_named("content", ns::JINGLE_GROUPING)
                .filter_map(|c| c.attr("name").map(str::to_owned))
                .collect(),
        });
        let info = if action == Action::SessionInfo {
            e.elements()
                .find(|c| c.ns.starts_with(ns::JINGLE_RTP))
                .map(|c| c.name.clone())
        } else {
            None
        };
        Ok(Jingle {
            action,
            sid,
            initiator: e.attr("initiator").map(str::to_owned),
            responder: e.attr("responder").map(str::to_owned),
            contents: e
                .children_named("content", ns::JINGLE)
                .take(16)
                .filter_map(Content::parse)
                .collect(),
            reason,
            group,
            info,
        })
    }

    /// As `<jingle/>`.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("jingle", ns::JINGLE)
            .with_attr("action", self.action.as_str())
            .with_attr("sid", self.sid.clone());
        if let Some(i) = &self.initiator {
            e.set_attr("initiator", i.clone());
        }
        if let Some(r) = &self.responder {
            e.set_attr("responder", r.clone());
        }
        for c in &self.contents {
            e.push(c.to_element());
        }
        if let Some(g) = &self.group {
            let mut x = Element::new("group", ns::JINGLE_GROUPING)
                .with_attr("semantics", g.semantics.clone());
            for n in &g.contents {
                x.push(Element::new("content", ns::JINGLE_GROUPING).with_attr("name", n.clone()));
            }
            e.push(x);
        }
        if let Some(i) = &self.info {
            e.push(Element::new(i, "urn:xmpp:jingle:apps:rtp:info:1"));
        }
        if let Some(r) = &self.reason {
            let mut x = Element::new("reason", ns::JINGLE)
                .with_child(Element::new(&r.condition, ns::JINGLE));
            if let Some(t) = &r.text {
                x.push(Element::new("text", ns::JINGLE).with_text(t.clone()));
            }
            e.push(x);
        }
        e
    }
}

#[cfg(test)]
mod tests;
