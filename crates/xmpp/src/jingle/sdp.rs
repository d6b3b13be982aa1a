//! Jingle ⇄ SDP, the mapping XEP-0167 §10 / XEP-0176 / XEP-0320 / XEP-0338 describe (and
//! what Jitsi's and stanza.js's SDP interop layers do): one `<content/>` per `m=` line,
//! its name the `a=mid`; `<payload-type/>` ⇄ `a=rtpmap`/`a=fmtp`/`a=rtcp-fb`; ICE-UDP
//! ⇄ `a=ice-ufrag`/`a=ice-pwd`/`a=candidate`; `<fingerprint setup/>` ⇄
//! `a=fingerprint`/`a=setup`; `senders` ⇄ the direction attribute.
//!
//! Why SDP at all: the phone's offer/answer code (natter-phone's `offer` module) already
//! decides codecs, keying and ICE for SIP; mapping Jingle onto SDP lets the XMPP phone use
//! the very same negotiation instead of a second one.
//!
//! Lenient on input: no candidates gives `m=audio 9` with `c=IN IP4 0.0.0.0` (trickle),
//! and candidates without `id`/`generation` (stanza.js) map fine.

use std::net::IpAddr;

use natter_sdp::{
    Attribute, CandidateAttr, Connection, Direction, Media, Origin, SessionDescription,
};

use super::{
    Candidate, Content, Fingerprint, Group, HdrExt, IceUdp, PayloadType, RtcpFb, RtpDescription,
    Source,
};

/// Why a mapping failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The SDP does not parse.
    #[error("SDP: {0}")]
    Sdp(String),
    /// Nothing to map (no RTP content / no usable m-line).
    #[error("no RTP content")]
    NoContent,
}

/// `a=candidate` value of a Jingle candidate.
pub fn candidate_to_sdp(c: &Candidate) -> String {
    let mut s = format!(
        "{} {} {} {} {} {} typ {}",
        c.foundation, c.component, c.protocol, c.priority, c.ip, c.port, c.kind
    );
    if let Some(a) = &c.rel_addr {
        s.push_str(&format!(" raddr {a}"));
    }
    if let Some(p) = c.rel_port {
        s.push_str(&format!(" rport {p}"));
    }
    if let Some(t) = &c.tcptype {
        s.push_str(&format!(" tcptype {t}"));
    }
    s.push_str(&format!(" generation {}", c.generation.unwrap_or(0)));
    s
}

/// A Jingle candidate from an `a=candidate` value.
pub fn candidate_from_sdp(v: &str) -> Option<Candidate> {
    let a = CandidateAttr::parse(v).ok()?;
    Some(Candidate {
        component: a.component,
        foundation: a.foundation.clone(),
        generation: a.extension("generation").and_then(|g| g.parse().ok()),
        id: None,
        ip: a.address.clone(),
        port: a.port,
        priority: a.priority,
        protocol: a.transport.to_ascii_lowercase(),
        kind: a.typ.as_str().to_owned(),
        rel_addr: a.related_address.clone(),
        rel_port: a.related_port,
        network: a.extension("network-id").and_then(|g| g.parse().ok()),
        tcptype: a.tcp_type.map(|t| {
            match t {
                natter_sdp::TcpType::Active => "active",
                natter_sdp::TcpType::Passive => "passive",
                natter_sdp::TcpType::So => "so",
            }
            .to_owned()
        }),
    })
}

/// The SDP direction of a content's `senders`, seen from the description's author.
fn direction_of(senders: Option<&str>, author_is_initiator: bool) -> Direction {
    match senders {
        None | Some("both") => Direction::SendRecv,
        Some("none") => Direction::Inactive,
        Some("initiator") if author_is_initiator => Direction::SendOnly,
        Some("initiator") => Direction::RecvOnly,
        Some("responder") if author_is_initiator => Direction::RecvOnly,
        Some("responder") => Direction::SendOnly,
        Some(_) => Direction::SendRecv,
    }
}

fn senders_of(dir: Direction, author_is_initiator: bool) -> Option<String> {
    let (me, them) = if author_is_initiator {
        ("initiator", "responder")
    } else {
        ("responder", "initiator")
    };
    match dir {
        Direction::SendRecv => None,
        Direction::SendOnly => Some(me.to_owned()),
        Direction::RecvOnly => Some(them.to_owned()),
        Direction::Inactive => Some("none".to_owned()),
    }
}

fn fmtp_value(p: &PayloadType) -> Option<String> {
    if p.params.is_empty() {
        return None;
    }
    let parts: Vec<String> = p
        .params
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    Some(format!("{} {}", p.id, parts.join(";")))
}

/// One `m=` section for a content.
fn media_of(c: &Content, d: &RtpDescription, author_is_initiator: bool) -> Media {
    let empty = IceUdp::default();
    let t = c.transport.as_ref().unwrap_or(&empty);
    // The default candidate: the best UDP RTP candidate with an IP literal.
    let default = t
        .candidates
        .iter()
        .filter(|c| c.component == 1 && c.protocol == "udp" && c.ip.parse::<IpAddr>().is_ok())
        .max_by_key(|c| c.priority);
    let (ip, port) = match default {
        Some(c) => (c.ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), c.port),
        None => (IpAddr::from([0, 0, 0, 0]), 9),
    };
    let any_fb = !d.rtcp_fb.is_empty() || d.payload_types.iter().any(|p| !p.rtcp_fb.is_empty());
    let proto = if !t.fingerprints.is_empty() {
        "UDP/TLS/RTP/SAVPF"
    } else if any_fb {
        "RTP/AVPF"
    } else {
        "RTP/AVP"
    };
    let formats = d.payload_types.iter().map(|p| p.id.to_string()).collect();
    let mut m = Media::new(&d.media, port, proto, formats);
    m.connections.push(Connection::new(ip));
    m.push_attribute(Attribute::value("mid", c.name.clone()));
    for p in &d.payload_types {
        let mut map = format!("{} {}/{}", p.id, p.name, p.clockrate);
        if p.channels > 1 {
            map.push_str(&format!("/{}", p.channels));
        }
        m.push_attribute(Attribute::value("rtpmap", map));
        if let Some(f) = fmtp_value(p) {
            m.push_attribute(Attribute::value("fmtp", f));
        }
        for f in &p.rtcp_fb {
            let v = match &f.subtype {
                Some(s) => format!("{} {} {s}", p.id, f.kind),
                None => format!("{} {}", p.id, f.kind),
            };
            m.push_attribute(Attribute::value("rtcp-fb", v));
        }
        if let Some(pt) = p.ptime {
            m.push_attribute(Attribute::value("ptime", pt.to_string()));
        }
    }
    for f in &d.rtcp_fb {
        let v = match &f.subtype {
            Some(s) => format!("* {} {s}", f.kind),
            None => format!("* {}", f.kind),
        };
        m.push_attribute(Attribute::value("rtcp-fb", v));
    }
    for h in &d.hdrexts {
        m.push_attribute(Attribute::value("extmap", format!("{} {}", h.id, h.uri)));
    }
    if let Some(u) = &t.ufrag {
        m.push_attribute(Attribute::value("ice-ufrag", u.clone()));
    }
    if let Some(p) = &t.pwd {
        m.push_attribute(Attribute::value("ice-pwd", p.clone()));
    }
    if let Some(f) = t.fingerprints.first() {
        m.push_attribute(Attribute::value(
            "fingerprint",
            format!("{} {}", f.hash, f.value),
        ));
        m.push_attribute(Attribute::value(
            "setup",
            f.setup.clone().unwrap_or_else(|| "actpass".into()),
        ));
    }
    for cand in &t.candidates {
        m.push_attribute(Attribute::value("candidate", candidate_to_sdp(cand)));
    }
    if t.gathering_complete {
        m.push_attribute(Attribute::property("end-of-candidates"));
    }
    if d.rtcp_mux {
        m.push_attribute(Attribute::property("rtcp-mux"));
    }
    if d.rtcp_reduced_size {
        m.push_attribute(Attribute::property("rtcp-rsize"));
    }
    for s in &d.sources {
        for (k, v) in &s.params {
            m.push_attribute(Attribute::value("ssrc", format!("{} {k}:{v}", s.ssrc)));
        }
    }
    m.push_attribute(Attribute::property(
        direction_of(c.senders.as_deref(), author_is_initiator).as_str(),
    ));
    m
}

/// SDP for Jingle contents written by the initiator (`author_is_initiator`) or responder.
pub fn to_sdp(
    contents: &[Content],
    group: Option<&Group>,
    author_is_initiator: bool,
) -> Result<String, MapError> {
    let mut sd = SessionDescription {
        origin: Origin {
            username: "-".into(),
            session_id: "1".into(),
            session_version: 1,
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            unicast_address: "0.0.0.0".into(),
        },
        ..SessionDescription::default()
    };
    if let Some(g) = group {
        sd.attributes.push(Attribute::value(
            "group",
            format!("{} {}", g.semantics, g.contents.join(" ")),
        ));
    }
    for c in contents {
        if let Some(d) = &c.description {
            sd.media.push(media_of(c, d, author_is_initiator));
        }
    }
    if sd.media.is_empty() {
        return Err(MapError::NoContent);
    }
    Ok(sd.to_string())
}

/// `id[/direction] uri` of `a=extmap`.
fn parse_extmap(v: &str) -> Option<HdrExt> {
    let mut it = v.split_whitespace();
    let idpart = it.next()?;
    let uri = it.next()?.to_owned();
    let (id, dir) = match idpart.split_once('/') {
        Some((i, d)) => (i, Some(d)),
        None => (idpart, None),
    };
    let senders = match dir {
        Some("sendonly") => Some("initiator".to_owned()),
        Some("recvonly") => Some("responder".to_owned()),
        _ => None,
    };
    Some(HdrExt {
        id: id.parse().ok()?,
        uri,
        senders,
    })
}

fn static_pt(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        8 => Some(("PCMA", 8000)),
        9 => Some(("G722", 8000)),
        13 => Some(("CN", 8000)),
        _ => None,
    }
}

/// Jingle contents (created by `creator`) for an SDP written by the initiator
/// (`author_is_initiator`) or the responder. Rejected m-lines (port 0) are left out.
pub fn from_sdp(
    sdp: &str,
    creator: &str,
    author_is_initiator: bool,
) -> Result<(Vec<Content>, Option<Group>), MapError> {
    let sd = SessionDescription::parse(sdp).map_err(|e| MapError::Sdp(e.to_string()))?;
    let mut contents = Vec::new();
    for (idx, m) in sd.media.iter().enumerate() {
        if m.port == 0 || !m.proto.contains("RTP") {
            continue;
        }
        let fmtps = m.fmtps();
        let mut payload_types = Vec::new();
        let mut desc_fb = Vec::new();
        let fbs: Vec<(String, RtcpFb)> = m
            .attribute_values("rtcp-fb")
            .filter_map(|v| {
                let mut it = v.split_whitespace();
                let pt = it.next()?.to_owned();
                let kind = it.next()?.to_owned();
                let subtype = it.next().map(str::to_owned);
                Some((pt, RtcpFb { kind, subtype }))
            })
            .collect();
        for (pt, fb) in &fbs {
            if pt == "*" {
                desc_fb.push(fb.clone());
            }
        }
        for f in &m.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let (name, clock, channels) = match m.rtpmap(pt) {
                Some(r) => (r.encoding, r.clock_rate, r.channels.unwrap_or(1)),
                None => match static_pt(pt) {
                    Some((n, c)) => (n.to_owned(), c, 1),
                    None => continue,
                },
            };
            let params = fmtps
                .iter()
                .find(|x| x.format == *f)
                .map(|x| {
                    x.params
                        .split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|kv| match kv.split_once('=') {
                            Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                            None => (kv.to_owned(), None),
                        })
                        .collect()
                })
                .unwrap_or_default();
            payload_types.push(PayloadType {
                id: pt,
                name,
                clockrate: clock,
                channels: u8::try_from(channels).unwrap_or(1),
                ptime: None,
                params,
                rtcp_fb: fbs
                    .iter()
                    .filter(|(p, _)| *p == pt.to_string())
                    .map(|(_, fb)| fb.clone())
                    .collect(),
            });
        }
        let mut sources: Vec<Source> = Vec::new();
        for s in m.ssrcs() {
            let (k, v) = (s.attribute.clone(), s.value.clone().unwrap_or_default());
            match sources.iter_mut().find(|x| x.ssrc == s.ssrc) {
                Some(x) => x.params.push((k, v)),
                None => sources.push(Source {
                    ssrc: s.ssrc,
                    params: vec![(k, v)],
                }),
            }
        }
        let desc = RtpDescription {
            media: m.media.clone(),
            ssrc: sources.first().map(|s| s.ssrc),
            payload_types,
            rtcp_mux: m.rtcp_mux(),
            rtcp_reduced_size: m.has_attribute("rtcp-rsize"),
            rtcp_fb: desc_fb,
            hdrexts: m
                .attribute_values("extmap")
                .filter_map(parse_extmap)
                .collect(),
            sources,
        };
        let setup = m
            .attribute("setup")
            .or(sd.attribute("setup"))
            .map(str::to_owned);
        let transport = IceUdp {
            ufrag: sd.ice_ufrag(idx).map(str::to_owned),
            pwd: sd.ice_pwd(idx).map(str::to_owned),
            candidates: m
                .attribute_values("candidate")
                .filter_map(candidate_from_sdp)
                .collect(),
            fingerprints: m
                .attribute_values("fingerprint")
                .chain(
                    sd.attributes
                        .iter()
                        .filter(|a| a.name == "fingerprint")
                        .filter_map(|a| a.value.as_deref()),
                )
                .filter_map(|v| {
                    let (h, val) = v.split_once(' ')?;
                    Some(Fingerprint {
                        hash: h.to_ascii_lowercase(),
                        setup: setup.clone(),
                        value: val.trim().to_owned(),
                    })
                })
                .take(1)
                .collect(),
            gathering_complete: m.end_of_candidates(),
        };
        contents.push(Content {
            creator: creator.to_owned(),
            name: m
                .mid()
                .map(str::to_owned)
                .unwrap_or_else(|| idx.to_string()),
            senders: senders_of(m.direction(&sd), author_is_initiator),
            description: Some(desc),
            transport: Some(transport),
        });
    }
    if contents.is_empty() {
        return Err(MapError::NoContent);
    }
    let group = sd.groups().into_iter().next().map(|g| Group {
        semantics: g.semantics,
        contents: g.mids,
    });
    Ok((contents, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_round_trip_without_id_or_generation() {
        let c = candidate_from_sdp("14328027 1 udp 2122260223 127.0.0.1 35678 typ host")
            .expect("parse");
        assert_eq!(c.generation, None);
        let s = candidate_to_sdp(&c);
        assert_eq!(
            s,
            "14328027 1 udp 2122260223 127.0.0.1 35678 typ host generation 0"
        );
        let r = candidate_from_sdp("1 1 udp 5 10.0.0.1 3478 typ relay raddr 192.0.2.1 rport 4000")
            .expect("relay");
        assert_eq!((r.kind.as_str(), r.rel_port), ("relay", Some(4000)));
    }
}
