//! Two agents over the simulated network: basic connection, data, roles, failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use natter_ice::{CandidateType, Event, IceState};
use natter_netsim::NatType;

#[test]
fn open_to_open_connects_host_host_and_carries_data() {
    let sc = Scenario::new(NatType::Open, NatType::Open);
    let mut sim = Sim::new(&sc, base_config(true, 1), base_config(false, 2));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(
        sim.selected_types(0),
        Some((CandidateType::Host, CandidateType::Host))
    );
    assert_eq!(
        sim.selected_types(1),
        Some((CandidateType::Host, CandidateType::Host))
    );
    sim.send_app(0, b"hello from A");
    sim.send_app(1, b"hello from B");
    assert!(
        sim.run_until(Duration::from_secs(11), |s| !s.peers[0].app_data.is_empty()
            && !s.peers[1].app_data.is_empty())
    );
    assert_eq!(sim.peers[1].app_data, vec![b"hello from A".to_vec()]);
    assert_eq!(sim.peers[0].app_data, vec![b"hello from B".to_vec()]);
    // state sequence on the controlling side
    let states: Vec<IceState> = sim.peers[0]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![IceState::Checking, IceState::Connected, IceState::Completed]
    );
}

#[test]
fn ipv6_hosts_connect_and_do_not_pair_across_families() {
    use natter_ice::{Agent, AgentConfig, InterfaceFilter};
    use natter_netsim::{LinkConfig, Network, RealmId};
    use std::net::{IpAddr, SocketAddr};
    use std::time::Instant;
    let t0 = Instant::now();
    let mut net = Network::new(t0, 3);
    let v6a: IpAddr = "2001:db8::a".parse().unwrap();
    let v6b: IpAddr = "2001:db8::b".parse().unwrap();
    let v4a: IpAddr = "192.0.2.10".parse().unwrap();
    let ha = net.add_host(RealmId::INTERNET, &[v6a, v4a], LinkConfig::default());
    let hb = net.add_host(RealmId::INTERNET, &[v6b], LinkConfig::default());
    let cfg = |c, s| AgentConfig {
        controlling: c,
        seed: Some(s),
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    };
    let mut a = Agent::new(cfg(true, 1));
    let mut b = Agent::new(cfg(false, 2));
    a.add_host_candidate(1, "eth0", SocketAddr::new(v4a, 5000))
        .unwrap();
    a.add_host_candidate(1, "eth0", SocketAddr::new(v6a, 5000))
        .unwrap();
    b.add_host_candidate(1, "eth0", SocketAddr::new(v6b, 5000))
        .unwrap();
    let (ca, cb) = (a.local_credentials().clone(), b.local_credentials().clone());
    a.set_remote_credentials(&cb.ufrag, &cb.pwd);
    b.set_remote_credentials(&ca.ufrag, &ca.pwd);
    for c in a.local_candidates() {
        b.add_remote_candidate(c).unwrap();
    }
    for c in b.local_candidates() {
        a.add_remote_candidate(c).unwrap();
    }
    assert_eq!(
        a.pairs().len(),
        1,
        "the IPv4 host does not pair with an IPv6 remote"
    );
    a.gather(t0);
    b.gather(t0);
    let mut now = t0;
    for _ in 0..10_000 {
        for (ag, h) in [(&mut a, ha), (&mut b, hb)] {
            while let Some(t) = ag.poll_transmit() {
                net.send(h, t.source, t.destination, t.data);
            }
        }
        if a.state() == IceState::Completed && b.state() == IceState::Completed {
            break;
        }
        let next = [a.poll_timeout(), b.poll_timeout(), net.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        now = now.max(next);
        net.advance_to(now);
        while let Some(d) = net.poll_delivery() {
            let ag = if d.host == ha { &mut a } else { &mut b };
            ag.handle_receive(now, d.local, d.remote, &d.data);
        }
        for ag in [&mut a, &mut b] {
            if ag.poll_timeout().is_some_and(|t| t <= now) {
                ag.handle_timeout(now);
            }
        }
    }
    assert_eq!(a.state(), IceState::Completed);
    let (l, r) = a.selected_pair(1).unwrap();
    assert_eq!(
        (l.addr, r.addr),
        (SocketAddr::new(v6a, 5000), SocketAddr::new(v6b, 5000))
    );
}
