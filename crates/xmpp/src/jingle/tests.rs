//! Jingle against the stanza.js 12.22.1 capture (through Prosody 0.12.3): parsing both
//! serialisations, the SDP mapping, and the session state machine.

use super::sdp::{candidate_to_sdp, from_sdp, to_sdp};
use super::session::{Incoming, Role, Session, State};
use super::*;
use crate::jid::Jid;
use crate::xml::parse_element;

const CAPTURE: &str = include_str!("../../tests/vectors/stanza12-jingle-audio-call.xml");

/// Every `<jingle/>` of the capture with the IQ's direction comment order kept.
fn capture() -> Vec<(Element, Jingle)> {
    let root = parse_element(CAPTURE).expect("capture parses");
    root.elements()
        .filter(|e| e.is("iq", ns::CLIENT))
        .map(|iq| {
            let j = iq.child("jingle", ns::JINGLE).expect("jingle in every iq");
            (iq.clone(), Jingle::parse(j).expect("jingle parses"))
        })
        .collect()
}

fn by_action(a: Action) -> Vec<(Element, Jingle)> {
    capture()
        .into_iter()
        .filter(|(_, j)| j.action == a)
        .collect()
}

#[test]
fn capture_parses_both_serialisations_alike() {
    let all = capture();
    assert_eq!(all.len(), 28);
    // Each IQ was captured as sent (double quotes, prefixes) and as routed by Prosody
    // (single quotes, redeclared namespaces): the same Jingle either way.
    for (iq, j) in &all {
        let twin = all
            .iter()
            .find(|(o, _)| o.attr("id") == iq.attr("id") && o.attr("from") != iq.attr("from"))
            .expect("twin");
        assert_eq!(j, &twin.1, "{}", iq.attr("id").unwrap_or(""));
    }
}

#[test]
fn session_initiate_model() {
    let (_, j) = by_action(Action::SessionInitiate).remove(0);
    assert_eq!(j.sid, "8a213de4-6f94-47e3-aa73-a7cafd93de6e");
    assert_eq!(j.contents.len(), 1);
    let c = &j.contents[0];
    assert_eq!((c.creator.as_str(), c.name.as_str()), ("initiator", "0"));
    let d = c.description.as_ref().expect("description");
    assert_eq!(d.media, "audio");
    assert_eq!(d.ssrc, Some(3366018860));
    assert!(d.rtcp_mux && d.rtcp_reduced_size);
    let ids: Vec<u8> = d.payload_types.iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![111, 63, 9, 0, 8, 13, 110, 126]);
    let opus = &d.payload_types[0];
    assert_eq!(
        (opus.name.as_str(), opus.clockrate, opus.channels),
        ("opus", 48000, 2)
    );
    assert_eq!(
        opus.params,
        vec![
            ("minptime".to_owned(), Some("10".to_owned())),
            ("useinbandfec".to_owned(), Some("1".to_owned()))
        ]
    );
    assert_eq!(opus.rtcp_fb[0].kind, "transport-cc");
    assert_eq!(
        d.payload_types[1].params,
        vec![("111/111".to_owned(), None)]
    );
    assert_eq!(d.hdrexts.len(), 4);
    assert_eq!(
        d.hdrexts[0].uri,
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
    );
    assert_eq!(
        d.sources[0].params[0],
        ("cname".into(), "21zakVFHGcyez0Xd".into())
    );
    let t = c.transport.as_ref().expect("transport");
    assert_eq!(t.ufrag.as_deref(), Some("/h2Y"));
    assert_eq!(t.pwd.as_deref(), Some("F13L5GQIKH6h6fyUwrl8JRLj"));
    assert!(
        t.candidates.is_empty(),
        "stanza.js trickles every candidate"
    );
    assert_eq!(t.fingerprints[0].hash, "sha-256");
    assert_eq!(t.fingerprints[0].setup.as_deref(), Some("actpass"));
    assert!(t.fingerprints[0].value.starts_with("7A:DD:A2:35"));
    assert_eq!(
        j.group,
        Some(Group {
            semantics: "BUNDLE".into(),
            contents: vec!["0".into()]
        })
    );
}

#[test]
fn trickled_candidates_without_id_or_generation_map_to_ice() {
    let infos = by_action(Action::TransportInfo);
    let mut udp = 0;
    let mut tcp = 0;
    let mut complete = 0;
    for (_, j) in &infos {
        let t = j.contents[0].transport.as_ref().expect("transport");
        complete += usize::from(t.gathering_complete);
        for c in &t.candidates {
            assert_eq!((c.id.as_deref(), c.generation), (None, None));
            let sdp = candidate_to_sdp(c);
            if c.protocol == "udp" {
                udp += 1;
                let ice = natter_ice::Candidate::from_sdp(&sdp).expect("natter-ice takes it");
                assert_eq!(ice.addr.port(), c.port);
            } else {
                tcp += 1;
                assert_eq!(c.tcptype.as_deref(), Some("active"));
                assert!(sdp.contains("tcptype active"), "{sdp}");
            }
        }
    }
    assert_eq!((udp, tcp, complete), (12, 6, 4));
}

#[test]
fn initiate_maps_to_an_sdp_offer_the_phone_answers() {
    let (_, mut j) = by_action(Action::SessionInitiate).remove(0);
    let sdp0 = to_sdp(&j.contents, j.group.as_ref(), true).expect("sdp");
    assert!(sdp0.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"));
    assert!(sdp0.contains("c=IN IP4 0.0.0.0\r\n"));
    // The candidates alice trickled, as if they had come with the initiate.
    let (_, ti) = by_action(Action::TransportInfo).remove(0);
    let cand = ti.contents[0].transport.as_ref().expect("t").candidates[0].clone();
    if let Some(t) = &mut j.contents[0].transport {
        t.candidates.push(cand);
    }
    let sdp = to_sdp(&j.contents, j.group.as_ref(), true).expect("sdp");
    for line in [
        "m=audio 35678 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 127.0.0.1",
        "a=candidate:14328027 1 udp 2122260223 127.0.0.1 35678 typ host generation 0",
        "a=group:BUNDLE 0",
        "a=mid:0",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtcp-fb:111 transport-cc",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:126 telephone-event/8000",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=ice-ufrag:/h2Y",
        "a=ice-pwd:F13L5GQIKH6h6fyUwrl8JRLj",
        "a=fingerprint:sha-256 7A:DD:A2:35:07:5D:C7:FD:62:BF:34:B8:45:71:35:1A:4D:8F:91:44:F6:58:37:8D:8B:31:3A:2F:B2:07:DC:98",
        "a=setup:actpass",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=ssrc:3366018860 cname:21zakVFHGcyez0Xd",
        "a=sendrecv",
    ] {
        assert!(sdp.contains(&format!("{line}\r\n")), "missing {line:?} in\n{sdp}");
    }
    // natter-phone's offer/answer takes it: opus, DTLS client (active to actpass).
    let local = natter_phone::offer::LocalMedia {
        addr: "127.0.0.1:40000".parse().expect("addr"),
        codecs: vec![natter_media::CodecKind::Opus, natter_media::CodecKind::Pcmu],
        srtp: natter_phone::offer::SrtpMode::Dtls,
        srtp_required: true,
        sdes_keys: Vec::new(),
        fingerprint: Some("AA:BB".into()),
        ice: Some(natter_phone::offer::IceDescription {
            ufrag: "abcd".into(),
            pwd: "0123456789abcdef012345".into(),
            candidates: vec!["1 1 udp 2130706431 127.0.0.1 40000 typ host".into()],
        }),
        direction: natter_sdp::Direction::SendRecv,
        session_id: 1,
        version: 1,
    };
    let (answer, neg) =
        natter_phone::offer::answer_offer(sdp.as_bytes(), &local).expect("phone answers");
    assert_eq!(neg.codec, natter_media::CodecKind::Opus);
    assert_eq!(neg.send_pt, 111);
    assert!(neg.rtcp_mux);
    assert!(matches!(&neg.keying, natter_phone::offer::Keying::Dtls(p) if p.client));
    // ...and the answer maps back to a Jingle content with our fingerprint as active.
    let (contents, _) = from_sdp(&answer, "initiator", false).expect("answer maps");
    let t = contents[0].transport.as_ref().expect("transport");
    assert_eq!(t.fingerprints[0].setup.as_deref(), Some("active"));
    assert_eq!(t.ufrag.as_deref(), Some("abcd"));
    assert_eq!(t.candidates[0].port, 40000);
    let d = contents[0].description.as_ref().expect("description");
    assert_eq!(d.payload_types[0].name, "opus");
}

#[test]
fn accept_round_trips_through_sdp() {
    let (_, j) = by_action(Action::SessionAccept).remove(0);
    let sdp = to_sdp(&j.contents, j.group.as_ref(), false).expect("sdp");
    let (back, group) = from_sdp(&sdp, "initiator", false).expect("back");
    assert_eq!(group, j.group);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].name, j.contents[0].name);
    assert_eq!(back[0].senders, None);
    let (orig, mapped) = (
        j.contents[0].description.as_ref().expect("d"),
        back[0].description.as_ref().expect("d"),
    );
    assert_eq!(mapped.payload_types, orig.payload_types);
    assert_eq!(mapped.hdrexts, orig.hdrexts);
    assert_eq!(mapped.ssrc, orig.ssrc);
    assert_eq!(mapped.sources[0].params[0], orig.sources[0].params[0]);
    assert_eq!(
        back[0].transport.as_ref().map(|t| &t.fingerprints),
        j.contents[0].transport.as_ref().map(|t| &t.fingerprints)
    );
}

#[test]
fn our_xml_round_trips() {
    for (_, j) in capture() {
        let again =
            Jingle::parse(&parse_element(&j.to_element().to_xml()).expect("xml")).expect("jingle");
        let mut expect = j.clone();
        // We always write candidate ids, generations and networks (XEP-0176 REQUIRED).
        for c in &mut expect.contents {
            if let Some(t) = &mut c.transport {
                for (k, cand) in t.candidates.iter_mut().enumerate() {
                    let got = &again.contents[0].transport.as_ref().expect("t").candidates[k];
                    cand.id = got.id.clone();
                    cand.generation = Some(0);
                    cand.network = Some(0);
                }
            }
        }
        assert_eq!(again, expect);
    }
}

#[test]
fn senders_map_to_directions_and_back() {
    let (_, mut j) = by_action(Action::SessionInitiate).remove(0);
    j.contents[0].senders = Some("initiator".into());
    let sdp = to_sdp(&j.contents, None, true).expect("sdp");
    assert!(sdp.contains("a=sendonly\r\n"));
    let (back, _) = from_sdp(&sdp, "initiator", true).expect("back");
    assert_eq!(back[0].senders.as_deref(), Some("initiator"));
    let responder_view = to_sdp(&j.contents, None, false).expect("sdp");
    assert!(responder_view.contains("a=recvonly\r\n"));
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("jid")
}

#[test]
fn responder_follows_the_captured_call() {
    let me = jid("bob@localhost/web");
    let alice = jid("alice@localhost/web");
    let all = capture();
    let (_, init) = &all[0];
    Session::check_initiate(init).expect("acceptable");
    let mut s = Session::incoming(init, me, alice.clone());
    assert_eq!((s.role, s.state()), (Role::Responder, State::Pending));
    let mut infos = 0;
    for (iq, j) in &all[1..] {
        if iq.attr("to") != Some("bob@localhost/web")
            || iq.attr("from").is_none()
            || j.action == Action::SessionInitiate
        {
            continue;
        }
        match s.handle(&alice, j).expect("in order") {
            Incoming::TransportInfo(c) => infos += c.len(),
            Incoming::Terminated(r) => {
                assert_eq!(r.map(|r| r.condition), Some("success".into()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(infos, 7);
    assert_eq!(s.state(), State::Ended);
    assert_eq!(s.accept(Vec::new(), None), None, "no accept after the end");
}

#[test]
fn initiator_state_machine_refusals() {
    let me = jid("alice@localhost/a");
    let bob = jid("bob@localhost/b");
    let mut s = Session::outgoing("s1", me, bob.clone());
    let accept = by_action(Action::SessionAccept).remove(0).1;
    let mut accept = Jingle {
        sid: "s1".into(),
        ..accept
    };
    // Transport info before our initiate is out of order.
    let ti = Jingle::new(Action::TransportInfo, "s1");
    assert_eq!(
        s.handle(&bob, &ti).map_err(|r| r.jingle),
        Err(Some("out-of-order"))
    );
    let init = s.initiate(accept.contents.clone(), None);
    assert_eq!(init.action, Action::SessionInitiate);
    assert_eq!(init.initiator.as_deref(), Some("alice@localhost/a"));
    assert_eq!(s.state(), State::Pending);
    // Wrong peer or sid: unknown-session.
    assert_eq!(
        s.handle(&jid("eve@localhost/x"), &accept)
            .map_err(|r| r.jingle),
        Err(Some("unknown-session"))
    );
    accept.sid = "other".into();
    assert_eq!(
        s.handle(&bob, &accept).map_err(|r| r.condition),
        Err("item-not-found")
    );
    accept.sid = "s1".into();
    // A candidate for a content that does not exist: bad-request.
    let mut ti = Jingle::new(Action::TransportInfo, "s1");
    ti.contents.push(Content {
        creator: "initiator".into(),
        name: "video".into(),
        senders: None,
        description: None,
        transport: Some(IceUdp::default()),
    });
    assert_eq!(
        s.handle(&bob, &ti).map_err(|r| r.condition),
        Err("bad-request")
    );
    assert!(matches!(s.handle(&bob, &accept), Ok(Incoming::Accepted(_))));
    assert_eq!(s.state(), State::Active);
    assert_eq!(
        s.handle(&bob, &accept).map_err(|r| r.jingle),
        Err(Some("out-of-order"))
    );
    // content-add is refused cleanly; removing the only content ends the call.
    let mut add = Jingle::new(Action::ContentAdd, "s1");
    add.contents.push(Content {
        creator: "responder".into(),
        name: "video".into(),
        senders: None,
        description: Some(RtpDescription::default()),
        transport: None,
    });
    let Ok(Incoming::ContentAdd(c)) = s.handle(&bob, &add) else {
        panic!("content-add")
    };
    let rej = s.content_reject(&c);
    assert_eq!(rej.action, Action::ContentReject);
    assert_eq!(rej.contents[0].name, "video");
    let mut rm = Jingle::new(Action::ContentRemove, "s1");
    rm.contents.push(accept.contents[0].clone());
    assert_eq!(s.handle(&bob, &rm), Ok(Incoming::ContentRemove(true)));
    let t = s.terminate("success", None).expect("terminate");
    assert_eq!(t.reason.map(|r| r.condition), Some("success".into()));
    assert_eq!(s.terminate("success", None), None);
    assert_eq!(
        s.handle(&bob, &Jingle::new(Action::SessionTerminate, "s1"))
            .map_err(|r| r.jingle),
        Err(Some("unknown-session"))
    );
}

#[test]
fn initiate_without_rtp_is_refused() {
    let mut j = Jingle::new(Action::SessionInitiate, "x");
    j.contents.push(Content {
        creator: "initiator".into(),
        name: "file".into(),
        senders: None,
        description: None,
        transport: None,
    });
    assert_eq!(
        Session::check_initiate(&j).map_err(|r| r.condition),
        Err("feature-not-implemented")
    );
    assert!(Jingle::parse(&Element::new("jingle", ns::JINGLE)).is_err());
    assert!(Jingle::parse(&Element::new("jingle", "urn:other")).is_err());
}
