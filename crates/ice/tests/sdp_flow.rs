//! Offer/answer carrying ICE in SDP (natter-sdp) end to end: the offerer gathers, puts
//! its ICE attributes in an RTP/AVP offer, the answerer applies them, answers with its
//! own, and both connect over the simulated network.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_ice::{Agent, AgentConfig, CandidateType, GatheringState, IceState, InterfaceFilter};
use natter_netsim::{LinkConfig, NatType, Network, RealmId, StunServer};
use natter_sdp::{
    create_answer, create_offer, Codec, Direction, MediaCapabilities, Origin, SessionDescription,
};

fn caps(extra: Vec<natter_sdp::Attribute>) -> Vec<MediaCapabilities> {
    vec![MediaCapabilities {
        kind: "audio".into(),
        proto: "RTP/AVP".into(),
        port: 5000,
        codecs: vec![Codec::new("PCMU", 8000, None, 0)],
        formats: vec![],
        direction: Direction::SendRecv,
        rtcp_mux: true,
        extra_attributes: extra,
    }]
}

#[test]
fn ice_over_sdp_offer_answer() {
    let t0 = Instant::now();
    let mut net = Network::new(t0, 5);
    let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    net.add_server(RealmId::INTERNET, stun.ip(), Box::new(StunServer::new()));
    let mut hosts = Vec::new();
    let mut agents = Vec::new();
    for (i, nat) in [NatType::RestrictedCone, NatType::Symmetric]
        .into_iter()
        .enumerate()
    {
        let public = format!("203.0.113.{}", i + 1).parse().unwrap();
        let (_, lan) = net.add_nat(
            RealmId::INTERNET,
            public,
            nat.config().unwrap(),
            LinkConfig::default(),
        );
        let addr: SocketAddr = format!("10.0.{}.2:5000", i + 1).parse().unwrap();
        hosts.push((net.add_host(lan, &[addr.ip()], LinkConfig::default()), addr));
        let mut a = Agent::new(AgentConfig {
            controlling: i == 0,
            seed: Some(i as u64 + 10),
            stun_servers: vec![stun],
            interfaces: InterfaceFilter::allow_all(),
            ..AgentConfig::default()
        });
        a.add_host_candidate(1, "eth0", addr).unwrap();
        a.gather(t0);
        agents.push(a);
    }
    let mut now = t0;
    let step = |agents: &mut Vec<Agent>, net: &mut Network, now: &mut Instant| {
        for (a, (h, _)) in agents.iter_mut().zip(&hosts) {
            while let Some(t) = a.poll_transmit() {
                net.send(*h, t.source, t.destination, t.data);
            }
            while a.poll_event().is_some() {}
        }
        let Some(next) = agents
            .iter()
            .filter_map(Agent::poll_timeout)
            .chain(net.poll_timeout())
            .min()
        else {
            panic!(
                "stalled: {:?} {:?} {:?}\n{:#?}\n{:#?}\n{:?}",
                agents[0].state(),
                agents[1].state(),
                agents[0].gathering_state(),
                agents[0].pairs(),
                agents[1].pairs(),
                agents[1].remote_candidates()
            );
        };
        *now = (*now).max(next);
        net.advance_to(*now);
        while let Some(d) = net.poll_delivery() {
            let i = hosts.iter().position(|(h, _)| *h == d.host).unwrap();
            agents[i].handle_receive(*now, d.local, d.remote, &d.data);
        }
        for a in agents.iter_mut() {
            if a.poll_timeout().is_some_and(|t| t <= *now) {
                a.handle_timeout(*now);
            }
        }
    };
    // non-trickle: wait for gathering before writing the offer
    for _ in 0..1000 {
        if agents
            .iter()
            .all(|a| a.gathering_state() == GatheringState::Complete)
        {
            break;
        }
        step(&mut agents, &mut net, &mut now);
    }
    let mut offer = create_offer(Origin::default(), &caps(agents[0].local_attributes()));
    let default = agents[0].default_candidate(1).unwrap();
    assert_eq!(default.kind, CandidateType::Srflx);
    offer.media[0].set_address(default.addr);
    let offer_text = offer.to_string();
    assert!(offer_text.contains("a=candidate:2 1 UDP 1694498815 203.0.113.1 5000 typ srflx raddr 10.0.1.2 rport 5000\r\n"), "{offer_text}");
    assert!(offer_text.contains("a=end-of-candidates\r\n"));
    assert!(
        offer_text.contains("m=audio 5000 RTP/AVP 0\r\nc=IN IP4 203.0.113.1\r\n"),
        "{offer_text}"
    );
    // the answerer parses the text, as it would off the wire
    let offer = SessionDescription::parse(&offer_text).unwrap();
    assert_eq!(agents[1].apply_remote_description(&offer, 0), 2);
    let answer = create_answer(
        &offer,
        Origin::default(),
        &caps(agents[1].local_attributes()),
    )
    .unwrap();
    let answer = SessionDescription::parse(&answer.to_string()).unwrap();
    assert_eq!(answer.media[0].formats, vec!["0"]);
    assert!(answer.media[0].rtcp_mux());
    assert_eq!(agents[0].apply_remote_description(&answer, 0), 2);
    for _ in 0..100_000 {
        if agents.iter().all(|a| a.state() == IceState::Completed) {
            break;
        }
        step(&mut agents, &mut net, &mut now);
    }
    assert!(agents.iter().all(|a| a.state() == IceState::Completed));
    assert!(now - t0 < Duration::from_secs(5));
    let (l, r) = agents[0].selected_pair(1).unwrap();
    assert_eq!(
        (l.kind, r.kind),
        (CandidateType::Srflx, CandidateType::Prflx)
    );
}
