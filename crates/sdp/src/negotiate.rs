//! RFC 3264 offer/answer: building offers from local capabilities, answering with codec
//! intersection and payload-type mapping, direction negotiation, and rejection of
//! streams the answerer cannot take.

use crate::attributes::{Direction, Fmtp, Group, Rtpmap};
use crate::error::{Error, Result};
use crate::session::{Attribute, Media, Origin, SessionDescription};

/// A codec this endpoint can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name (`opus`, `PCMU`, `telephone-event`...), matched case-insensitively.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels; `None` means 1.
    pub channels: Option<u16>,
    /// fmtp parameters to advertise, if any.
    pub fmtp: Option<String>,
    /// Payload type to use when we are the offerer (static ones must match RFC 3551).
    pub payload_type: u8,
}

impl Codec {
    /// A codec with no fmtp.
    pub fn new(name: &str, clock_rate: u32, channels: Option<u16>, payload_type: u8) -> Self {
        Codec {
            name: name.into(),
            clock_rate,
            channels,
            fmtp: None,
            payload_type,
        }
    }

    fn matches(&self, r: &Rtpmap) -> bool {
        self.name.eq_ignore_ascii_case(&r.encoding)
            && self.clock_rate == r.clock_rate
            && self.channels.unwrap_or(1) == r.channels.unwrap_or(1)
    }

    fn rtpmap(&self, pt: u8) -> Rtpmap {
        Rtpmap {
            payload_type: pt,
            encoding: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: self.channels,
        }
    }
}

/// What this endpoint supports for one kind of media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaCapabilities {
    /// `audio`, `video`, `application`.
    pub kind: String,
    /// Transport protocol (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`...).
    pub proto: String,
    /// Port to advertise.
    pub port: u16,
    /// Codecs in preference order (RTP); empty for non-RTP media.
    pub codecs: Vec<Codec>,
    /// Non-RTP formats (e.g. `webrtc-datachannel`).
    pub formats: Vec<String>,
    /// What we want to do with this media.
    pub direction: Direction,
    /// Offer/accept rtcp-mux.
    pub rtcp_mux: bool,
    /// Extra attributes (ICE, fingerprint, setup...) appended verbatim.
    pub extra_attributes: Vec<Attribute>,
}

impl MediaCapabilities {
    fn is_rtp(&self) -> bool {
        self.proto.contains("RTP")
    }
}

/// A codec both sides agreed on, with the payload types for each direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// Encoding name as the remote wrote it.
    pub name: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels.
    pub channels: Option<u16>,
    /// PT the remote asked to receive: use it when sending.
    pub send_pt: u8,
    /// PT we advertised: expect it when receiving.
    pub recv_pt: u8,
    /// Remote fmtp, if any.
    pub remote_fmtp: Option<String>,
}

/// RFC 3551 static audio/video payload types, used when an offer omits the rtpmap.
fn static_rtpmap(pt: u8) -> Option<Rtpmap> {
    let (enc, rate, ch) = match pt {
        0 => ("PCMU", 8000, None),
        3 => ("GSM", 8000, None),
        4 => ("G723", 8000, None),
        5 => ("DVI4", 8000, None),
        6 => ("DVI4", 16000, None),
        7 => ("LPC", 8000, None),
        8 => ("PCMA", 8000, None),
        9 => ("G722", 8000, None),
        10 => ("L16", 44100, Some(2)),
        11 => ("L16", 44100, None),
        12 => ("QCELP", 8000, None),
        13 => ("CN", 8000, None),
        14 => ("MPA", 90000, None),
        15 => ("G728", 8000, None),
        18 => ("G729", 8000, None),
        26 => ("JPEG", 90000, None),
        31 => ("H261", 90000, None),
        32 => ("MPV", 90000, None),
        34 => ("H263", 90000, None),
        _ => return None,
    };
    Some(Rtpmap {
        payload_type: pt,
        encoding: enc.into(),
        clock_rate: rate,
        channels: ch,
    })
}

fn is_rtx(r: &Rtpmap) -> bool {
    r.encoding.eq_ignore_ascii_case("rtx")
}

/// Whether fmtp parameters allow matching a local codec to an offered one. For H.264
/// (RFC 6184 §8.2.2) the packetization-mode must be equal (absent means 0) and the
/// profile_idc (first two hex digits of profile-level-id) must agree when both sides
/// state one; the level may differ. Constraint flags (profile-iop) are not compared,
/// so Constrained Baseline written as 42e0 and as 4200 match (a simplification).
/// Other codecs match on name, clock rate and channels alone.
fn fmtp_compatible(encoding: &str, local: Option<&str>, remote: Option<&Fmtp>) -> bool {
    if !encoding.eq_ignore_ascii_case("H264") {
        return true;
    }
    let local = Fmtp {
        format: String::new(),
        params: local.unwrap_or("").to_owned(),
    };
    let mode = |f: Option<&Fmtp>| {
        f.and_then(|f| f.get("packetization-mode"))
            .unwrap_or_else(|| "0".into())
    };
    if mode(Some(&local)) != mode(remote) {
        return false;
    }
    let profile = |f: Option<&Fmtp>| {
        f.and_then(|f| f.get("profile-level-id"))
            .and_then(|p| p.get(..2).map(str::to_ascii_lowercase))
    };
    match (profile(Some(&local)), profile(remote)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The rtpmap in effect for each format of an RTP media section, in m-line order.
pub(crate) fn effective_rtpmaps(m: &Media) -> Vec<Rtpmap> {
    let maps = m.rtpmaps();
    m.formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| {
            maps.iter()
                .find(|r| r.payload_type == pt)
                .cloned()
                .or_else(|| static_rtpmap(pt))
        })
        .collect()
}

fn push_codec_attrs(m: &mut Media, codec: &Codec, pt: u8, fmtp: Option<&str>) {
    m.formats.push(pt.to_string());
    m.attributes.push(codec.rtpmap(pt).to_attribute());
    if let Some(p) = fmtp {
        m.attributes.push(Attribute::value(
            "fmtp",
            Fmtp {
                format: pt.to_string(),
                params: p.into(),
            }
            .to_string(),
        ));
    }
}

/// Builds an initial offer: one m-line per capability, `a=mid` 0, 1, ... and a BUNDLE
/// group when more than one section is offered.
pub fn create_offer(origin: Origin, caps: &[MediaCapabilities]) -> SessionDescription {
    let mut sd = SessionDescription {
        origin,
        ..SessionDescription::default()
    };
    for (i, cap) in caps.iter().enumerate() {
        let mut m = Media::new(&cap.kind, cap.port, &cap.proto, Vec::new());
        m.push_attribute(Attribute::value("mid", i.to_string()));
        if cap.is_rtp() {
            for c in &cap.codecs {
                push_codec_attrs(&mut m, c, c.payload_type, c.fmtp.as_deref());
            }
            if cap.rtcp_mux {
                m.push_attribute(Attribute::property("rtcp-mux"));
            }
        } else {
            m.formats = cap.formats.clone();
        }
        m.push_attribute(Attribute::property(cap.direction.as_str()));
        m.attributes.extend(cap.extra_attributes.iter().cloned());
        sd.media.push(m);
    }
    if caps.len() > 1 {
        let mids = (0..caps.len()).map(|i| i.to_string()).collect();
        sd.attributes.push(
            Group {
                semantics: "BUNDLE".into(),
                mids,
            }
            .to_attribute(),
        );
    }
    sd
}

fn rejected(offered: &Media) -> Media {
    let mut m = Media::new(&offered.media, 0, &offered.proto, offered.formats.clone());
    if m.formats.is_empty() {
        m.formats.push("0".into());
    }
    if let Some(mid) = offered.mid() {
        m.push_attribute(Attribute::value("mid", mid));
    }
    m
}

/// Answers `offer` (RFC 3264 §6). Each offered section gets a section at the same index:
/// accepted with the intersection of codecs, in the offerer's order and with the
/// offerer's payload type numbers (§6.1), or rejected with port 0 when the kind, proto
/// or every codec is unsupported, or when the offer already disabled it.
pub fn create_answer(
    offer: &SessionDescription,
    origin: Origin,
    caps: &[MediaCapabilities],
) -> Result<SessionDescription> {
    if offer.media.is_empty() && !offer.timings.is_empty() && caps.is_empty() {
        return Err(Error::Negotiation("nothing to answer"));
    }
    let mut sd = SessionDescription {
        origin,
        line_ending: offer.line_ending,
        ..SessionDescription::default()
    };
    sd.timings = offer
        .timings
        .iter()
        .map(|t| crate::Timing {
            repeats: Vec::new(),
            ..t.clone()
        })
        .collect();
    let mut accepted_mids = Vec::new();
    for offered in &offer.media {
        let cap = caps
            .iter()
            .find(|c| c.kind == offered.media && c.proto == offered.proto);
        let answer = match cap {
            Some(cap) if !offered.is_rejected() => answer_media(offer, offered, cap),
            _ => None,
        };
        let m = answer.unwrap_or_else(|| rejected(offered));
        if !m.is_rejected() {
            if let Some(mid) = m.mid() {
                accepted_mids.push(mid.to_owned());
            }
        }
        sd.media.push(m);
    }
    if let Some(bundle) = offer.bundle_mids() {
        let mids: Vec<String> = bundle
            .into_iter()
            .filter(|m| accepted_mids.contains(m))
            .collect();
        if !mids.is_empty() {
            sd.attributes.push(
                Group {
                    semantics: "BUNDLE".into(),
                    mids,
                }
                .to_attribute(),
            );
        }
    }
    Ok(sd)
}

fn answer_media(
    offer: &SessionDescription,
    offered: &Media,
    cap: &MediaCapabilities,
) -> Option<Media> {
    let mut m = Media::new(&offered.media, cap.port, &offered.proto, Vec::new());
    if let Some(mid) = offered.mid() {
        m.push_attribute(Attribute::value("mid", mid));
    }
    if cap.is_rtp() {
        let offered_maps = effective_rtpmaps(offered);
        let offered_fmtp = |pt: u8| offered.fmtp(&pt.to_string());
        for r in offered_maps.iter().filter(|r| !is_rtx(r)) {
            let remote_fmtp = offered_fmtp(r.payload_type);
            if let Some(c) = cap.codecs.iter().find(|c| {
                c.matches(r)
                    && fmtp_compatible(&r.encoding, c.fmtp.as_deref(), remote_fmtp.as_ref())
            }) {
                let fmtp = c.fmtp.clone().or_else(|| remote_fmtp.map(|f| f.params));
                let codec = Codec {
                    name: r.encoding.clone(),
                    ..c.clone()
                };
                push_codec_attrs(&mut m, &codec, r.payload_type, fmtp.as_deref());
            }
        }
        // RTX (RFC 4588) is accepted only for accepted codecs, keeping the offer's
        // apt mapping.
        if let Some(rtx) = cap
            .codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case("rtx"))
        {
            for r in offered_maps
                .iter()
                .filter(|r| is_rtx(r) && r.clock_rate == rtx.clock_rate)
            {
                let Some(f) = offered_fmtp(r.payload_type) else {
                    continue;
                };
                let Some(apt) = f.get("apt") else { continue };
                if m.formats.contains(&apt) {
                    let codec = Codec {
                        name: r.encoding.clone(),
                        ..rtx.clone()
                    };
                    push_codec_attrs(&mut m, &codec, r.payload_type, Some(&f.params));
                }
            }
        }
        // Comfort noise and DTMF alone are not a usable stream.
        let real = effective_rtpmaps(&m).iter().any(|r| {
            !r.encoding.eq_ignore_ascii_case("telephone-event")
                && !r.encoding.eq_ignore_ascii_case("CN")
        });
        if !real {
            return None;
        }
        if cap.rtcp_mux && offered.rtcp_mux() {
            m.push_attribute(Attribute::property("rtcp-mux"));
        }
    } else {
        let formats: Vec<String> = offered
            .formats
            .iter()
            .filter(|f| cap.formats.contains(f))
            .cloned()
            .collect();
        if formats.is_empty() {
            return None;
        }
        m.formats = formats;
    }
    let dir = Direction::answer(offered.direction(offer), cap.direction);
    m.push_attribute(Attribute::property(dir.as_str()));
    m.attributes.extend(cap.extra_attributes.iter().cloned());
    Some(m)
}

/// Codecs agreed between our section `local` and the peer's section `remote` (either
/// can be the offer), in the remote's preference order. Empty when either is rejected.
pub fn negotiated_codecs(local: &Media, remote: &Media) -> Vec<NegotiatedCodec> {
    if local.is_rejected() || remote.is_rejected() {
        return Vec::new();
    }
    let ours = effective_rtpmaps(local);
    let params = |m: &Media, pt: u8| m.fmtp(&pt.to_string());
    let same = |l: &Rtpmap, r: &Rtpmap| {
        l.encoding.eq_ignore_ascii_case(&r.encoding)
            && l.clock_rate == r.clock_rate
            && l.channels.unwrap_or(1) == r.channels.unwrap_or(1)
    };
    let entry = |r: &Rtpmap, l: &Rtpmap| NegotiatedCodec {
        name: r.encoding.clone(),
        clock_rate: r.clock_rate,
        channels: r.channels,
        send_pt: r.payload_type,
        recv_pt: l.payload_type,
        remote_fmtp: params(remote, r.payload_type).map(|f| f.params),
    };
    let theirs = effective_rtpmaps(remote);
    let mut out: Vec<NegotiatedCodec> = Vec::new();
    for r in theirs.iter().filter(|r| !is_rtx(r)) {
        let rf = params(remote, r.payload_type);
        let found = ours.iter().find(|l| {
            let lf = params(local, l.payload_type).map(|f| f.params);
            same(l, r) && fmtp_compatible(&r.encoding, lf.as_deref(), rf.as_ref())
        });
        if let Some(l) = found {
            out.push(entry(r, l));
        }
    }
    // RTX pairs up through apt: the remote rtx protecting a negotiated send PT, with
    // our rtx protecting the matching receive PT.
    let apt = |m: &Media, pt: u8| {
        params(m, pt)
            .and_then(|f| f.get("apt"))
            .and_then(|a| a.parse::<u8>().ok())
    };
    let mut rtx = Vec::new();
    for r in theirs.iter().filter(|r| is_rtx(r)) {
        let Some(ra) = apt(remote, r.payload_type) else {
            continue;
        };
        let Some(base) = out.iter().find(|n| n.send_pt == ra) else {
            continue;
        };
        let recv_base = base.recv_pt;
        if let Some(l) = ours
            .iter()
            .find(|l| same(l, r) && apt(local, l.payload_type) == Some(recv_base))
        {
            rtx.push(entry(r, l));
        }
    }
    out.extend(rtx);
    out
}
