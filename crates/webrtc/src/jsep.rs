//! JSEP (RFC 8829) descriptions for our PeerConnection: offers and answers with BUNDLE
//! (RFC 8843, max-bundle: one ICE/DTLS transport for every m-section), rtcp-mux, trickle
//! ICE (RFC 8838), `a=setup` (RFC 8842), fingerprints, `a=sctp-port` and
//! `a=max-message-size` (RFC 8841); and the parts of a remote description we act on.
//!
//! Descriptions are written as text in the shape browsers emit; remote descriptions are
//! parsed with natter-sdp, which never panics on input.

use natter_sdp::{Media, SessionDescription};
use natter_video::assembler::Codec;

use crate::error::JsepError;

/// Opus payload type we offer (the number Chromium uses).
pub const OPUS_PT: u8 = 111;
/// SCTP port of the data-channel association (RFC 8841 default).
pub const SCTP_PORT: u16 = 5000;

/// Our side of a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalParams {
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version: grows with every description we create after the first
    /// (JSEP §5.2.2, §5.3.2).
    pub session_version: u64,
    /// ICE ufrag.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// SHA-256 fingerprint of our certificate, `AB:CD:...`.
    pub fingerprint: String,
    /// `a=candidate` values (without `candidate:`) known at creation time.
    pub candidates: Vec<String>,
    /// Gathering is complete: write `a=end-of-candidates`.
    pub end_of_candidates: bool,
    /// Send/receive audio with this SSRC (offer: add an audio m-section; answer: accept
    /// the peer's).
    pub audio_ssrc: Option<u32>,
    /// Video: offer a sendrecv VP8 m-section, or accept the peer's, with this SSRC.
    pub video_ssrc: Option<u32>,
    /// Preferred video codec: offered first (H.264: then VP8 too), chosen when offered.
    pub video_codec: Codec,
    /// Data channels (offer: add an application m-section; answer: accept the peer's).
    pub data: bool,
    /// RTCP CNAME.
    pub cname: String,
}

/// What kind of m-section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
    /// `m=application` with `webrtc-datachannel`.
    Data,
    /// Anything else.
    Other,
}

/// One m-section of the remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Position in the description.
    pub index: usize,
    /// `a=mid`.
    pub mid: String,
    /// Kind.
    pub kind: Kind,
    /// Port 0: rejected / disabled.
    pub rejected: bool,
    /// `m=` proto field.
    pub proto: String,
    /// `m=` formats.
    pub formats: Vec<String>,
    /// Opus payload type, when offered.
    pub opus_pt: Option<u8>,
    /// Opus `a=fmtp` value.
    pub opus_fmtp: Option<String>,
    /// VP8 payload type, when offered.
    pub vp8_pt: Option<u8>,
    /// RTX payload types (RFC 4588) and the media types they repair (`a=fmtp:<rtx> apt=`).
    pub rtx_pts: Vec<(u8, u8)>,
    /// H.264 payload type with packetization-mode=1 and a (Constrained) Baseline
    /// profile-level-id, when offered, and that profile-level-id.
    pub h264: Option<(u8, String)>,
    /// `a=extmap` id of the transport-wide sequence number (TWCC), when offered/accepted.
    pub twcc_ext: Option<u8>,
    /// `a=sendrecv`/... as written (default sendrecv).
    pub direction: String,
    /// `a=sctp-port`.
    pub sctp_port: Option<u16>,
    /// `a=max-message-size`.
    pub max_message_size: Option<usize>,
    /// SSRCs the peer will send (`a=ssrc`).
    pub ssrcs: Vec<u32>,
}

/// Our DTLS role as decided by `a=setup` (RFC 8842).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `active`: the peer is the DTLS client.
    Active,
    /// `passive`.
    Passive,
    /// `actpass`: offers only.
    ActPass,
}

impl Setup {
    fn parse(v: &str) -> Option<Setup> {
        match v.trim() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            _ => None,
        }
    }
}

/// A parsed remote description, reduced to what we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDescription {
    /// Every m-section, in order.
    pub media: Vec<RemoteMedia>,
    /// The BUNDLE group's mids, if any.
    pub bundle: Vec<String>,
    /// Index of the m-section whose transport we use (the BUNDLE tag: first mid of the
    /// group that is not rejected; the first usable m-section without BUNDLE).
    pub transport_index: usize,
    /// ICE ufrag of that transport.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// `a=ice-lite` at session level.
    pub ice_lite: bool,
    /// SHA-256 fingerprint, `AB:CD:...` (upper case).
    pub fingerprint: String,
    /// The peer's `a=setup`.
    pub setup: Setup,
    /// `a=candidate` values of the transport m-section.
    pub candidates: Vec<String>,
    /// `a=end-of-candidates` on the transport m-section.
    pub end_of_candidates: bool,
}

impl RemoteMedia {
    /// The video codec and payload type to use: `prefer` when offered, else the other one.
    pub fn video_choice(&self, prefer: Codec) -> Option<(Codec, u8)> {
        let vp8 = self.vp8_pt.map(|pt| (Codec::Vp8, pt));
        let h264 = self.h264.as_ref().map(|(pt, _)| (Codec::H264, *pt));
        match prefer {
            Codec::H264 => h264.or(vp8),
            Codec::Vp8 => vp8.or(h264),
        }
    }

    /// The RTX payload type that repairs media payload type `apt`, if offered/accepted.
    pub fn rtx_for(&self, apt: u8) -> Option<u8> {
        self.rtx_pts
            .iter()
            .find_map(|&(rtx, a)| (a == apt).then_some(rtx))
    }
}

impl RemoteDescription {
    /// The data m-section, if the peer offers/accepted one.
    pub fn data(&self) -> Option<&RemoteMedia> {
        self.media
            .iter()
            .find(|m| m.kind == Kind::Data && !m.rejected)
    }

    /// The first audio m-section with Opus.
    pub fn audio(&self) -> Option<&RemoteMedia> {
        self.media
            .iter()
            .find(|m| m.kind == Kind::Audio && !m.rejected && m.opus_pt.is_some())
    }

    /// The first video m-section with VP8 or H.264.
    pub fn video(&self) -> Option<&RemoteMedia> {
        self.media.iter().find(|m| {
            m.kind == Kind::Video && !m.rejected && (m.vp8_pt.is_some() || m.h264.is_some())
        })
    }

    /// Mid of the transport m-section.
    pub fn transport_mid(&self) -> &str {
        self.media
            .get(self.transport_index)
            .map_or("0", |m| m.mid.as_str())
    }
}

fn media_attr<'a>(m: &'a Media, s: &'a SessionDescription, name: &str) -> Option<&'a str> {
    m.attribute(name).or_else(|| s.attribute(name))
}

/// The `a=fmtp` parameters of payload type `pt`.
fn fmtp_of(m: &Media, pt: u8) -> Option<&str> {
    m.attribute_values("fmtp").find_map(|f| {
        let (p, params) = f.split_once(' ')?;
        (p.trim().parse::<u8>().ok()? == pt).then_some(params.trim())
    })
}

/// The H.264 payload type we can use: packetization-mode=1 (RFC 6184 §8.1) and profile_idc
/// 0x42 (Baseline; Constrained Baseline `42e0..` first), with its profile-level-id.
fn h264_choice(m: &Media) -> Option<(u8, String)> {
    let mut found: Vec<(u8, String)> = m
        .attribute_values("rtpmap")
        .filter_map(|v| {
            let (pt, enc) = v.split_once(' ')?;
            let pt = pt.trim().parse::<u8>().ok()?;
            if !enc.trim().eq_ignore_ascii_case("H264/90000") {
                return None;
            }
            let params = fmtp_of(m, pt).unwrap_or("");
            let get = |k: &str| {
                params.split(';').find_map(|kv| {
                    let (a, b) = kv.split_once('=')?;
                    a.trim()
                        .eq_ignore_ascii_case(k)
                        .then(|| b.trim().to_owned())
                })
            };
            if get("packetization-mode").as_deref() != Some("1") {
                return None;
            }
            let pli = get("profile-level-id").unwrap_or_else(|| "42e01f".into());
            (pli.len() == 6 && pli[..2].eq_ignore_ascii_case("42")).then_some((pt, pli))
        })
        .collect();
    found.sort_by_key(|(_, pli)| !pli[2..4].eq_ignore_ascii_case("e0"));
    found.into_iter().next()
}

/// Parses a remote offer or answer.
pub fn parse_remote(sdp: &str) -> Result<RemoteDescription, JsepError> {
    let s = SessionDescription::parse(sdp).map_err(|e| JsepError::Sdp(e.to_string()))?;
    let bundle = s.bundle_mids().unwrap_or_default();
    let mut media = Vec::with_capacity(s.media.len());
    for (index, m) in s.media.iter().enumerate() {
        let kind = match (m.media.as_str(), m.proto.as_str()) {
            ("audio", _) => Kind::Audio,
            ("video", _) => Kind::Video,
            ("application", p) if p.contains("SCTP") => Kind::Data,
            _ => Kind::Other,
        };
        let mut opus_pt = None;
        for v in m.attribute_values("rtpmap") {
            if let Some((pt, enc)) = v.split_once(' ') {
                if enc.to_ascii_lowercase().starts_with("opus/48000") {
                    opus_pt = pt.trim().parse::<u8>().ok();
                    break;
                }
            }
        }
        let vp8_pt = m.attribute_values("rtpmap").find_map(|v| {
            let (pt, enc) = v.split_once(' ')?;
            enc.to_ascii_uppercase()
                .starts_with("VP8/90000")
                .then(|| pt.trim().parse::<u8>().ok())
                .flatten()
        });
        let rtx_pts = m
            .attribute_values("rtpmap")
            .filter_map(|v| {
                let (pt, enc) = v.split_once(' ')?;
                let pt = pt.trim().parse::<u8>().ok()?;
                if !enc.trim().eq_ignore_ascii_case("rtx/90000") {
                    return None;
                }
                let apt = m.attribute_values("fmtp").find_map(|f| {
                    let (p, params) = f.split_once(' ')?;
                    if p.trim().parse::<u8>().ok()? != pt {
                        return None;
                    }
                    params
                        .split(';')
                        .find_map(|kv| kv.trim().strip_prefix("apt=")?.trim().parse::<u8>().ok())
                })?;
                Some((pt, apt))
            })
            .collect();
        let h264 = h264_choice(m);
        let twcc_ext = m.attribute_values("extmap").find_map(|v| {
            let (id, uri) = v.trim().split_once(' ')?;
            (uri.trim() == natter_video::twcc::EXTENSION_URI)
                .then(|| id.split('/').next()?.parse::<u8>().ok())
                .flatten()
                .filter(|id| (1..=14).contains(id))
        });
        let opus_fmtp = opus_pt.and_then(|pt| {
            m.attribute_values("fmtp").find_map(|v| {
                let (p, rest) = v.split_once(' ')?;
                (p.trim().parse::<u8>().ok() == Some(pt)).then(|| rest.trim().to_owned())
            })
        });
        let direction = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| m.has_attribute(d))
            .unwrap_or("sendrecv")
            .to_owned();
        let mut ssrcs: Vec<u32> = m
            .attribute_values("ssrc")
            .filter_map(|v| v.split(' ').next()?.parse().ok())
            .collect();
        ssrcs.dedup();
        media.push(RemoteMedia {
            index,
            mid: m.mid().map_or_else(|| index.to_string(), str::to_owned),
            kind,
            rejected: m.port == 0 && !m.has_attribute("bundle-only"),
            proto: m.proto.clone(),
            formats: m.formats.clone(),
            opus_pt,
            opus_fmtp,
            vp8_pt,
            rtx_pts,
            h264,
            twcc_ext,
            direction,
            sctp_port: m.attribute("sctp-port").and_then(|v| v.trim().parse().ok()),
            max_message_size: m
                .attribute("max-message-size")
                .and_then(|v| v.trim().parse().ok()),
            ssrcs,
        });
    }
    let transport_index = bundle
        .iter()
        .find_map(|mid| media.iter().find(|m| &m.mid == mid && !m.rejected))
        .or_else(|| media.iter().find(|m| !m.rejected))
        .map(|m| m.index)
        .ok_or(JsepError::Unsupported("every m-section is rejected".into()))?;
    let tm = s
        .media
        .get(transport_index)
        .ok_or(JsepError::Missing("m-section"))?;
    let ufrag = media_attr(tm, &s, "ice-ufrag")
        .ok_or(JsepError::Missing("a=ice-ufrag"))?
        .trim()
        .to_owned();
    let pwd = media_attr(tm, &s, "ice-pwd")
        .ok_or(JsepError::Missing("a=ice-pwd"))?
        .trim()
        .to_owned();
    let fingerprint = tm
        .attribute_values("fingerprint")
        .chain(
            s.attributes
                .iter()
                .filter(|a| a.name == "fingerprint")
                .filter_map(|a| a.value.as_deref()),
        )
        .find_map(|v| {
            let (hash, digest) = v.trim().split_once(' ')?;
            hash.eq_ignore_ascii_case("sha-256")
                .then(|| digest.trim().to_ascii_uppercase())
        })
        .ok_or(JsepError::Missing("a=fingerprint:sha-256"))?;
    let setup = media_attr(tm, &s, "setup")
        .map(|v| Setup::parse(v).ok_or(JsepError::Unsupported(format!("a=setup:{v}"))))
        .transpose()?
        .unwrap_or(Setup::ActPass);
    let candidates = tm
        .attribute_values("candidate")
        .map(str::to_owned)
        .collect();
    let end_of_candidates = tm.has_attribute("end-of-candidates");
    Ok(RemoteDescription {
        media,
        bundle,
        transport_index,
        ufrag,
        pwd,
        ice_lite: s.ice_lite(),
        fingerprint,
        setup,
        candidates,
        end_of_candidates,
    })
}

/// An audio m-section's negotiated values.
struct AudioSection<'a> {
    mid: &'a str,
    pt: u8,
    fmtp: &'a str,
    direction: &'a str,
    setup: &'a str,
    first: bool,
}

/// Writes the transport attributes every m-section carries (identical in all of them,
/// as BUNDLE requires).
fn transport_lines(out: &mut String, p: &LocalParams, setup: &str, with_candidates: bool) {
    if with_candidates {
        for cand in &p.candidates {
            out.push_str(&format!("a=candidate:{cand}\r\n"));
        }
    }
    out.push_str(&format!("a=ice-ufrag:{}\r\n", p.ufrag));
    out.push_str(&format!("a=ice-pwd:{}\r\n", p.pwd));
    out.push_str("a=ice-options:trickle\r\n");
    out.push_str(&format!("a=fingerprint:sha-256 {}\r\n", p.fingerprint));
    out.push_str(&format!("a=setup:{setup}\r\n"));
    if with_candidates && p.end_of_candidates {
        out.push_str("a=end-of-candidates\r\n");
    }
}

fn session_header(out: &mut String, p: &LocalParams, bundle: &[String]) {
    out.push_str("v=0\r\n");
    out.push_str(&format!(
        "o=- {} {} IN IP4 127.0.0.1\r\n",
        p.session_id, p.session_version
    ));
    out.push_str("s=-\r\nt=0 0\r\n");
    if !bundle.is_empty() {
        out.push_str(&format!("a=group:BUNDLE {}\r\n", bundle.join(" ")));
    }
    out.push_str("a=msid-semantic: WMS natter\r\n");
}

fn audio_section(out: &mut String, p: &LocalParams, a: &AudioSection<'_>) {
    let AudioSection {
        mid,
        pt,
        fmtp,
        direction,
        setup,
        first,
    } = *a;
    out.push_str(&format!("m=audio 9 UDP/TLS/RTP/SAVPF {pt}\r\n"));
    out.push_str("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n");
    transport_lines(out, p, setup, first);
    out.push_str(&format!("a=mid:{mid}\r\n"));
    out.push_str(&format!("a={direction}\r\n"));
    if let Some(ssrc) = p.audio_ssrc {
        if direction == "sendrecv" || direction == "sendonly" {
            out.push_str("a=msid:natter natter-audio\r\n");
        }
        out.push_str("a=rtcp-mux\r\n");
        out.push_str(&format!("a=rtpmap:{pt} opus/48000/2\r\n"));
        out.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
        if direction == "sendrecv" || direction == "sendonly" {
            out.push_str(&format!("a=ssrc:{ssrc} cname:{}\r\n", p.cname));
            out.push_str(&format!("a=ssrc:{ssrc} msid:natter natter-audio\r\n"));
        }
    }
}

/// VP8 payload type we offer (Chromium's number).
pub const VP8_PT: u8 = 96;
/// RTX payload type we offer for VP8 (Chromium's number).
pub const VP8_RTX_PT: u8 = 97;
/// H.264 payload type we offer (packetization-mode=1, Constrained Baseline 3.1).
pub const H264_PT: u8 = 102;
/// RTX payload type we offer for H.264.
pub const H264_RTX_PT: u8 = 103;
/// profile-level-id we offer: Constrained Baseline, level 3.1.
pub const H264_PROFILE: &str = "42e01f";

/// One codec of a video m-section: codec, payload type, RTX payload type, and for H.264
/// the profile-level-id.
type VideoCodecLine<'a> = (Codec, u8, Option<u8>, &'a str);
/// `a=extmap` id we offer for the transport-wide sequence number.
pub const TWCC_EXT: u8 = 3;

/// Our RTX SSRC (RFC 4588), next to the video SSRC: `a=ssrc-group:FID <video> <rtx>`.
pub fn rtx_ssrc(video_ssrc: u32) -> u32 {
    video_ssrc.wrapping_add(1)
}

fn video_section(
    out: &mut String,
    p: &LocalParams,
    (mid, direction, setup): (&str, &str, &str),
    (twcc, codecs): (Option<u8>, &[VideoCodecLine<'_>]),
    first: bool,
) {
    let mut fmts = String::new();
    for (_, pt, rtx, _) in codecs {
        fmts.push_str(&format!(" {pt}"));
        if let Some(r) = rtx {
            fmts.push_str(&format!(" {r}"));
        }
    }
    out.push_str(&format!("m=video 9 UDP/TLS/RTP/SAVPF{fmts}\r\n"));
    out.push_str("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n");
    transport_lines(out, p, setup, first);
    out.push_str(&format!("a=mid:{mid}\r\n"));
    out.push_str(&format!("a={direction}\r\n"));
    let sends = direction == "sendrecv" || direction == "sendonly";
    if sends {
        out.push_str("a=msid:natter natter-video\r\n");
    }
    if let Some(id) = twcc {
        out.push_str(&format!(
            "a=extmap:{id} {}\r\n",
            natter_video::twcc::EXTENSION_URI
        ));
    }
    out.push_str("a=rtcp-mux\r\na=rtcp-rsize\r\n");
    for &(codec, pt, rtx, profile) in codecs {
        match codec {
            Codec::Vp8 => out.push_str(&format!("a=rtpmap:{pt} VP8/90000\r\n")),
            Codec::H264 => out.push_str(&format!(
                "a=rtpmap:{pt} H264/90000\r\na=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}\r\n"
            )),
        }
        for fb in ["nack", "nack pli", "ccm fir"] {
            out.push_str(&format!("a=rtcp-fb:{pt} {fb}\r\n"));
        }
        if twcc.is_some() {
            out.push_str(&format!("a=rtcp-fb:{pt} transport-cc\r\n"));
        }
        if let Some(r) = rtx {
            out.push_str(&format!(
                "a=rtpmap:{r} rtx/90000\r\na=fmtp:{r} apt={pt}\r\n"
            ));
        }
    }
    if let (Some(ssrc), true) = (p.video_ssrc, sends) {
        let mut ssrcs = vec![ssrc];
        if codecs.iter().any(|c| c.2.is_some()) {
            ssrcs.push(rtx_ssrc(ssrc));
            out.push_str(&format!("a=ssrc-group:FID {ssrc} {}\r\n", rtx_ssrc(ssrc)));
        }
        for s in ssrcs {
            out.push_str(&format!("a=ssrc:{s} cname:{}\r\n", p.cname));
            out.push_str(&format!("a=ssrc:{s} msid:natter natter-video\r\n"));
        }
    }
}

fn data_section(out: &mut String, p: &LocalParams, mid: &str, setup: &str, first: bool) {
    out.push_str("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
    out.push_str("c=IN IP4 0.0.0.0\r\n");
    transport_lines(out, p, setup, first);
    out.push_str(&format!("a=mid:{mid}\r\n"));
    out.push_str(&format!("a=sctp-port:{SCTP_PORT}\r\n"));
    out.push_str(&format!(
        "a=max-message-size:{}\r\n",
        crate::sctp::LOCAL_MAX_MESSAGE_SIZE
    ));
}

/// An offer: audio (mid "0") when `audio_ssrc` is set, then VP8 video when `video_ssrc`
/// is set, then data when `data` is set (or nothing else is), one BUNDLE group,
/// `a=setup:actpass`. Candidates go in the first m-section only (the BUNDLE tag); the
/// others share its transport.
pub fn create_offer(p: &LocalParams) -> String {
    create_offer_with(p, &[], "actpass")
}

/// A subsequent offer (JSEP §5.2.2): the m-sections of the current session (`existing`,
/// kind and mid in order) keep their place and mid; audio and data we do now and the
/// session lacks are appended with fresh mids. `setup` is our settled DTLS role
/// (`active`/`passive`) once there is one.
pub fn create_offer_with(p: &LocalParams, existing: &[(Kind, String)], setup: &str) -> String {
    // Video and unknown m-sections of the session keep their place, rejected (port 0):
    // natter does not offer them.
    let mut sections: Vec<(Kind, String)> = existing.to_vec();
    let mut next = 0u32;
    let mut fresh = |sections: &Vec<(Kind, String)>| loop {
        let mid = next.to_string();
        next += 1;
        if !existing
            .iter()
            .chain(sections.iter())
            .any(|(_, m)| *m == mid)
        {
            return mid;
        }
    };
    if p.audio_ssrc.is_some() && !sections.iter().any(|(k, _)| *k == Kind::Audio) {
        let mid = fresh(&sections);
        sections.push((Kind::Audio, mid));
    }
    if p.video_ssrc.is_some() && !sections.iter().any(|(k, _)| *k == Kind::Video) {
        let mid = fresh(&sections);
        sections.push((Kind::Video, mid));
    }
    if (p.data || sections.is_empty()) && !sections.iter().any(|(k, _)| *k == Kind::Data) {
        let mid = fresh(&sections);
        sections.push((Kind::Data, mid));
    }
    let mids: Vec<String> = sections
        .iter()
        .filter(|(k, _)| {
            matches!(k, Kind::Audio | Kind::Data) || (*k == Kind::Video && p.video_ssrc.is_some())
        })
        .map(|(_, m)| m.clone())
        .collect();
    let mut out = String::new();
    session_header(&mut out, p, &mids);
    for (kind, mid) in &sections {
        let first = mids.first() == Some(mid);
        if *kind == Kind::Video && p.video_ssrc.is_some() {
            let vp8 = (Codec::Vp8, VP8_PT, Some(VP8_RTX_PT), "");
            let h264 = (Codec::H264, H264_PT, Some(H264_RTX_PT), H264_PROFILE);
            let codecs = match p.video_codec {
                Codec::Vp8 => vec![vp8],
                Codec::H264 => vec![h264, vp8],
            };
            video_section(
                &mut out,
                p,
                (mid, "sendrecv", setup),
                (Some(TWCC_EXT), &codecs),
                first,
            );
        } else if matches!(kind, Kind::Video | Kind::Other) {
            let (m, proto, fmt) = if *kind == Kind::Video {
                ("video", "UDP/TLS/RTP/SAVPF", "96")
            } else {
                ("application", "UDP/DTLS/SCTP", "webrtc-datachannel")
            };
            out.push_str(&format!(
                "m={m} 0 {proto} {fmt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=inactive\r\n"
            ));
        } else if *kind == Kind::Audio && p.audio_ssrc.is_some() {
            let a = AudioSection {
                mid,
                pt: OPUS_PT,
                fmtp: "minptime=10;useinbandfec=1",
                direction: "sendrecv",
                setup,
                first,
            };
            audio_section(&mut out, p, &a);
        } else if *kind == Kind::Audio {
            // Audio we no longer do: the m-line stays, inactive.
            let a = AudioSection {
                mid,
                pt: OPUS_PT,
                fmtp: "minptime=10;useinbandfec=1",
                direction: "inactive",
                setup,
                first,
            };
            audio_section(&mut out, p, &a);
        } else {
            data_section(&mut out, p, mid, setup, first);
        }
    }
    out
}

/// The answer direction for an offered one.
fn answer_direction(offered: &str, we_send: bool) -> &'static str {
    match (offered, we_send) {
        ("sendrecv", true) => "sendrecv",
        ("sendrecv", false) | ("sendonly", _) => "recvonly",
        ("recvonly", true) => "sendonly",
        _ => "inactive",
    }
}

/// Which m-sections of an offer we accept.
pub fn accepted(p: &LocalParams, m: &RemoteMedia) -> bool {
    !m.rejected
        && match m.kind {
            Kind::Audio => p.audio_ssrc.is_some() && m.opus_pt.is_some(),
            Kind::Data => p.data,
            Kind::Video => p.video_ssrc.is_some() && m.video_choice(p.video_codec).is_some(),
            Kind::Other => false,
        }
}

/// An answer to `offer`: Opus audio and data accepted when we do them, everything else
/// rejected (port 0); BUNDLE over the accepted m-sections with the offerer's tag first;
/// `a=setup:active` (we are the DTLS client, as RFC 8842 recommends for answerers).
pub fn create_answer(p: &LocalParams, offer: &RemoteDescription) -> Result<String, JsepError> {
    let ok: Vec<bool> = offer.media.iter().map(|m| accepted(p, m)).collect();
    if !ok.iter().any(|&a| a) {
        return Err(JsepError::Unsupported(
            "no m-section we can accept (need Opus audio or data channels)".into(),
        ));
    }
    let mut bundle: Vec<String> = offer
        .bundle
        .iter()
        .filter(|mid| {
            offer
                .media
                .iter()
                .zip(&ok)
                .any(|(m, &a)| a && &&m.mid == mid)
        })
        .cloned()
        .collect();
    if bundle.is_empty() {
        bundle = offer
            .media
            .iter()
            .zip(&ok)
            .filter(|(_, &a)| a)
            .map(|(m, _)| m.mid.clone())
            .collect();
    }
    let tag = bundle.first().cloned().unwrap_or_default();
    let mut out = String::new();
    session_header(&mut out, p, &bundle);
    for (m, &acc) in offer.media.iter().zip(&ok) {
        let first = m.mid == tag;
        if !acc {
            let proto = if m.proto.is_empty() {
                "RTP/AVP"
            } else {
                &m.proto
            };
            let fmt = m.formats.first().map_or("0", String::as_str);
            let kind = match m.kind {
                Kind::Audio => "audio",
                Kind::Video => "video",
                Kind::Data | Kind::Other => "application",
            };
            out.push_str(&format!("m={kind} 0 {proto} {fmt}\r\nc=IN IP4 0.0.0.0\r\n"));
            out.push_str(&format!("a=mid:{}\r\na=inactive\r\n", m.mid));
            continue;
        }
        match m.kind {
            Kind::Audio => {
                let pt = m.opus_pt.unwrap_or(OPUS_PT);
                let fmtp = m
                    .opus_fmtp
                    .clone()
                    .unwrap_or_else(|| "minptime=10;useinbandfec=1".into());
                let dir = answer_direction(&m.direction, true);
                let a = AudioSection {
                    mid: &m.mid,
                    pt,
                    fmtp: &fmtp,
                    direction: dir,
                    setup: "active",
                    first,
                };
                audio_section(&mut out, p, &a);
            }
            Kind::Video => {
                let (codec, pt) = m.video_choice(p.video_codec).unwrap_or((Codec::Vp8, 96));
                let profile = m.h264.as_ref().map_or(H264_PROFILE, |h| h.1.as_str());
                let dir = answer_direction(&m.direction, true);
                let codecs = [(codec, pt, m.rtx_for(pt), profile)];
                video_section(
                    &mut out,
                    p,
                    (&m.mid, dir, "active"),
                    (m.twcc_ext, &codecs),
                    first,
                );
            }
            _ => data_section(&mut out, p, &m.mid, "active", first),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(audio: bool, data: bool) -> LocalParams {
        LocalParams {
            session_id: 42,
            session_version: 2,
            ufrag: "abcd".into(),
            pwd: "0123456789012345678901".into(),
            fingerprint: "AA:BB".into(),
            candidates: vec!["1 1 UDP 2130706431 10.0.0.1 5000 typ host".into()],
            end_of_candidates: true,
            audio_ssrc: audio.then_some(1234),
            video_ssrc: None,
            video_codec: Codec::Vp8,
            data,
            cname: "natter".into(),
        }
    }

    #[test]
    fn offer_round_trips_through_our_parser() {
        let offer = create_offer(&params(true, true));
        let r = parse_remote(&offer).expect("parses");
        assert_eq!(r.bundle, ["0", "1"]);
        assert_eq!(r.transport_index, 0);
        assert_eq!(r.setup, Setup::ActPass);
        assert_eq!(r.candidates.len(), 1);
        assert!(r.end_of_candidates);
        assert_eq!(r.audio().and_then(|a| a.opus_pt), Some(111));
        assert_eq!(r.data().and_then(|d| d.max_message_size), Some(262_144));
        assert_eq!(r.audio().map(|a| a.ssrcs.clone()), Some(vec![1234]));
    }

    #[test]
    fn data_only_answer_rejects_audio() {
        let offer = parse_remote(&create_offer(&params(true, true))).expect("parses");
        let answer = create_answer(&params(false, true), &offer).expect("answer");
        let r = parse_remote(&answer).expect("parses");
        assert_eq!(r.bundle, ["1"]);
        assert!(r.media[0].rejected);
        assert_eq!(r.transport_index, 1);
        assert_eq!(r.setup, Setup::Active);
    }

    #[test]
    fn subsequent_offer_keeps_mlines_and_rejects_what_we_do_not_send() {
        let existing = [
            (Kind::Audio, "0".to_owned()),
            (Kind::Video, "1".to_owned()),
            (Kind::Data, "2".to_owned()),
        ];
        let o = create_offer_with(&params(true, true), &existing, "passive");
        let m: Vec<&str> = o.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m,
            [
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
                "m=video 0 UDP/TLS/RTP/SAVPF 96",
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel"
            ]
        );
        assert!(o.contains("a=group:BUNDLE 0 2\r\n"));
        assert!(o
            .lines()
            .filter(|l| l.starts_with("a=setup:"))
            .all(|l| l == "a=setup:passive"));
        // Appended: data after an audio-only session takes the next free mid.
        let o = create_offer_with(&params(true, true), &existing[..1], "active");
        assert!(o.contains("a=group:BUNDLE 0 1\r\n"), "{o}");
    }
}
