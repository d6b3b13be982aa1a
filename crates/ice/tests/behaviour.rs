//! Agent behaviours in the simulated network: roles, lite, nomination modes,
//! peer-reflexive discovery, gathering timeouts, consent, keepalives, restart,
//! trickle, components.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use natter_ice::{AgentConfig, CandidateType, Event, GatheringState, IceState, Nomination, Role};
use natter_netsim::{LinkConfig, NatType};

fn states(sim: &Sim, i: usize) -> Vec<IceState> {
    sim.peers[i]
        .events
        .iter()
        .filter_map(|e| {
            if let Event::StateChanged(s) = e {
                Some(*s)
            } else {
                None
            }
        })
        .collect()
}

fn open_pair(a: AgentConfig, b: AgentConfig) -> Sim {
    Sim::new(&Scenario::new(NatType::Open, NatType::Open), a, b)
}

#[test]
fn role_conflict_both_controlling_is_repaired_by_tie_breaker() {
    let mut sim = open_pair(base_config(true, 11), base_config(true, 12));
    let winner = if sim.peers[0].agent.tie_breaker() >= sim.peers[1].agent.tie_breaker() {
        0
    } else {
        1
    };
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(sim.peers[winner].agent.role(), Role::Controlling);
    assert_eq!(sim.peers[1 - winner].agent.role(), Role::Controlled);
    let changes = |i: usize| {
        sim.peers[i]
            .events
            .iter()
            .filter(|e| matches!(e, Event::RoleChanged(_)))
            .count()
    };
    assert_eq!(changes(winner), 0);
    assert_eq!(changes(1 - winner), 1);
}

#[test]
fn role_conflict_both_controlled_is_repaired() {
    let mut sim = open_pair(base_config(false, 21), base_config(false, 22));
    let winner = if sim.peers[0].agent.tie_breaker() >= sim.peers[1].agent.tie_breaker() {
        0
    } else {
        1
    };
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(sim.peers[winner].agent.role(), Role::Controlling);
    assert_eq!(sim.peers[1 - winner].agent.role(), Role::Controlled);
}

#[test]
fn full_agent_with_lite_peer() {
    let lite = AgentConfig {
        lite: true,
        ..base_config(true, 32)
    };
    let mut sim = open_pair(base_config(true, 31), lite);
    assert_eq!(
        sim.peers[1].agent.role(),
        Role::Controlled,
        "lite is always controlled"
    );
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(
        sim.selected_types(1),
        Some((CandidateType::Host, CandidateType::Host))
    );
    // the lite agent gathered no server-reflexive candidates and sent no checks
    assert!(sim.peers[1]
        .agent
        .local_candidates()
        .iter()
        .all(|c| c.kind == CandidateType::Host));
    sim.send_app(1, b"from lite");
    assert!(sim.run_until(Duration::from_secs(11), |s| !s.peers[0].app_data.is_empty()));
    // the full agent's consent checks keep the lite side alive well past 30 s
    sim.run_until(Duration::from_secs(100), |_| false);
    assert!(sim.both(IceState::Completed));
    // and when the full agent goes away, the lite side notices
    let host_a = sim.peers[0].host;
    sim.net.set_host_link(
        host_a,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    assert!(sim.run_until(Duration::from_secs(200), |s| s.state(1) == IceState::Failed));
}

#[test]
fn aggressive_nomination_is_accepted() {
    let aggressive = AgentConfig {
        nomination: Nomination::Aggressive,
        ..base_config(true, 41)
    };
    let mut sim = open_pair(aggressive, base_config(false, 42));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(
        sim.selected_types(1),
        Some((CandidateType::Host, CandidateType::Host))
    );
}

#[test]
fn unsignalled_peer_is_learned_as_peer_reflexive() {
    let mut sim = open_pair(base_config(true, 51), base_config(false, 52));
    sim.signal_candidates = [false, true]; // B never hears of A's candidates
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(
        sim.selected_types(1),
        Some((CandidateType::Host, CandidateType::Prflx))
    );
    // when the candidate is signalled later, the prflx one takes the signalled type
    sim.release(1);
    assert_eq!(
        sim.selected_types(1),
        Some((CandidateType::Host, CandidateType::Host))
    );
}

#[test]
fn dead_stun_server_costs_exactly_the_gathering_timeout() {
    let sc = Scenario {
        stun_alive: false,
        ..Scenario::new(NatType::FullCone, NatType::Open)
    };
    let mut sim = Sim::new(&sc, base_config(true, 61), base_config(false, 62));
    // connectivity does not wait for gathering
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(
        sim.peers[0].agent.gathering_state(),
        GatheringState::Gathering
    );
    let t = sim.now;
    assert!(t - sim.t0 < Duration::from_secs(3));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.peers[0]
        .agent
        .gathering_state()
        == GatheringState::Complete));
    assert_eq!(sim.now - sim.t0, AgentConfig::default().gather_timeout);
    // no srflx was found, and the NATed side still got through as peer-reflexive
    assert!(sim.peers[0]
        .agent
        .local_candidates()
        .iter()
        .all(|c| c.kind == CandidateType::Host));
    assert_eq!(
        sim.selected_types(0),
        Some((CandidateType::Prflx, CandidateType::Host))
    );
}

#[test]
fn consent_loss_goes_disconnected_then_failed_and_stops_data() {
    let mut sim = open_pair(base_config(true, 71), base_config(false, 72));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    let cut = sim.now;
    let host_b = sim.peers[1].host;
    sim.net.set_host_link(
        host_b,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    assert!(sim.run_until(Duration::from_secs(120), |s| s.state(0) == IceState::Failed));
    let failed_after = sim.now - cut;
    let cfg = AgentConfig::default();
    assert!(failed_after <= cfg.consent_timeout, "{failed_after:?}");
    assert!(
        failed_after + cfg.consent_interval.unwrap() * 2 > cfg.consent_timeout,
        "{failed_after:?}"
    );
    assert_eq!(
        states(&sim, 0),
        vec![
            IceState::Checking,
            IceState::Connected,
            IceState::Completed,
            IceState::Disconnected,
            IceState::Failed
        ]
    );
    let now = sim.now;
    assert!(sim.peers[0].agent.send(now, 1, b"x").is_err());
    // the network comes back; an ICE restart recovers the session
    sim.net.set_host_link(host_b, LinkConfig::default());
    sim.restart_both();
    assert!(
        sim.peers[0].agent.selected_pair(1).is_none(),
        "the dead pair is dropped"
    );
    let t = sim.now - sim.t0;
    assert!(sim.run_until(t + Duration::from_secs(10), |s| s.both(IceState::Completed)));
    sim.send_app(0, b"back");
    assert!(sim.run_until(t + Duration::from_secs(11), |s| !s.peers[1]
        .app_data
        .is_empty()));
}

#[test]
fn consent_recovers_after_a_short_outage() {
    let mut sim = open_pair(base_config(true, 81), base_config(false, 82));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    let host_b = sim.peers[1].host;
    sim.net.set_host_link(
        host_b,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    assert!(sim.run_until(Duration::from_secs(60), |s| s.state(0)
        == IceState::Disconnected));
    sim.net.set_host_link(host_b, LinkConfig::default());
    assert!(sim.run_until(Duration::from_secs(60), |s| s.state(0)
        == IceState::Completed));
    assert!(!states(&sim, 0).contains(&IceState::Failed));
}

#[test]
fn keepalives_every_tr_when_consent_is_off() {
    let cfg = |c, seed| AgentConfig {
        consent_interval: None,
        ..base_config(c, seed)
    };
    let mut sim = open_pair(cfg(true, 91), cfg(false, 92));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    let before = sim.net.stats().sent;
    let start = sim.now - sim.t0;
    sim.run_until(start + Duration::from_secs(60), |_| false);
    let sent = sim.net.stats().sent - before;
    // each side: one Binding indication per 15 s of idleness
    assert_eq!(sent, 8, "4 per side in 60 s");
    assert!(sim.both(IceState::Completed));
}

#[test]
fn ice_restart_keeps_data_flowing_and_reconnects() {
    let mut sim = open_pair(base_config(true, 101), base_config(false, 102));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    let old = sim.peers[0].agent.local_credentials().clone();
    sim.restart_both();
    assert_ne!(sim.peers[0].agent.local_credentials(), &old);
    // the old selected pair still carries data during the restart
    sim.send_app(0, b"during restart");
    let t = sim.now - sim.t0;
    assert!(sim.run_until(t + Duration::from_secs(10), |s| !s.peers[1]
        .app_data
        .is_empty()));
    let selected_events = |s: &Sim| {
        s.peers[0]
            .events
            .iter()
            .filter(|e| matches!(e, Event::SelectedPair { .. }))
            .count()
    };
    let before = selected_events(&sim);
    assert!(
        sim.run_until(t + Duration::from_secs(10), |s| selected_events(s) > before
            && s.both(IceState::Completed))
    );
    sim.send_app(1, b"after restart");
    assert!(sim.run_until(t + Duration::from_secs(11), |s| !s.peers[0]
        .app_data
        .is_empty()));
}

#[test]
fn late_trickled_candidates_connect() {
    let sc = Scenario::new(NatType::PortRestrictedCone, NatType::PortRestrictedCone);
    let mut sim = Sim::new(&sc, base_config(true, 111), base_config(false, 112));
    sim.signal_candidates = [false, false];
    // nothing signalled: no pairs, no checks, no failure
    sim.run_until(Duration::from_secs(2), |_| false);
    assert_eq!(sim.state(0), IceState::New);
    sim.release(0);
    sim.release(1);
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    assert_eq!(
        sim.selected_types(0),
        Some((CandidateType::Srflx, CandidateType::Srflx))
    );
}

#[test]
fn end_of_candidates_with_nothing_usable_fails() {
    // B's candidates never arrive, but its end-of-candidates does
    let mut sim = open_pair(base_config(true, 121), base_config(false, 122));
    sim.signal_candidates = [true, false];
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.state(0) == IceState::Failed
            || s.state(0) == IceState::Completed)
    );
    // A still got connected because B's checks reveal it as peer-reflexive; that is
    // RFC behaviour. Now a peer that never answers at all:
    let mut sim = open_pair(base_config(true, 123), base_config(false, 124));
    sim.signal_candidates = [false, false];
    let host_b = sim.peers[1].host;
    sim.net.set_host_link(
        host_b,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    sim.release(0);
    assert!(sim.run_until(Duration::from_secs(30), |s| s.state(0) == IceState::Failed));
    assert!(
        sim.now - sim.t0 < AgentConfig::default().connect_timeout,
        "failed by exhaustion, not by timeout"
    );
}

#[test]
fn two_components_each_get_their_pair() {
    let cfg = |c, seed| AgentConfig {
        components: 2,
        ..base_config(c, seed)
    };
    let sc = Scenario {
        components: 2,
        ..Scenario::new(NatType::FullCone, NatType::Symmetric)
    };
    let mut sim = Sim::new(&sc, cfg(true, 131), cfg(false, 132));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    for comp in [1u16, 2] {
        let (l, r) = sim.peers[0].agent.selected_pair(comp).unwrap();
        assert_eq!((l.component, r.component), (comp, comp));
        assert_eq!(l.base.port(), 5000 + comp - 1);
        assert_eq!(
            sim.selected_types_of(0, comp),
            Some((CandidateType::Srflx, CandidateType::Prflx))
        );
    }
    sim.send_app_on(0, 2, b"rtcp");
    assert!(sim.run_until(Duration::from_secs(11), |s| !s.peers[1].app_data.is_empty()));
    assert_eq!(sim.peers[1].app_local[0].port(), 5001);
}

#[test]
fn peers_on_one_lan_use_host_candidates_with_or_without_hairpin() {
    for hairpin in [false, true] {
        for nat in [NatType::PortRestrictedCone, NatType::Symmetric] {
            let sc = Scenario {
                same_lan: Some(hairpin),
                ..Scenario::new(nat, nat)
            };
            let mut sim = Sim::new(&sc, base_config(true, 141), base_config(false, 142));
            assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
            assert_eq!(
                sim.selected_types(0),
                Some((CandidateType::Host, CandidateType::Host)),
                "{nat:?} hairpin={hairpin}"
            );
            let (l, r) = sim.peers[0].agent.selected_pair(1).unwrap();
            assert_eq!((l.addr, r.addr), (sa("10.0.1.2:5000"), sa("10.0.1.3:5000")));
        }
    }
}

#[test]
fn consent_and_keepalives_keep_short_nat_bindings_open() {
    for consent in [true, false] {
        let cfg = |c, seed| AgentConfig {
            consent_interval: if consent {
                Some(Duration::from_secs(5))
            } else {
                None
            },
            ..base_config(c, seed)
        };
        let sc = Scenario {
            binding_timeout: Some(Duration::from_secs(20)),
            ..Scenario::new(NatType::RestrictedCone, NatType::Symmetric)
        };
        let mut sim = Sim::new(&sc, cfg(true, 151), cfg(false, 152));
        assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
        // five idle minutes: only consent checks or keepalives cross the NATs
        sim.run_until(Duration::from_secs(310), |_| false);
        assert!(sim.both(IceState::Completed), "consent={consent}");
        sim.send_app(0, b"still there?");
        sim.send_app(1, b"yes");
        assert!(sim.run_until(Duration::from_secs(311), |s| !s.peers[0]
            .app_data
            .is_empty()
            && !s.peers[1].app_data.is_empty()));
        assert_eq!(
            sim.net.stats().no_mapping,
            0,
            "no packet hit an expired binding"
        );
    }
}

#[test]
fn keepalives_slower_than_the_binding_timeout_lose_the_path() {
    // the control for the test above: Tr = 15 s against a 10 s binding
    let cfg = |c, seed| AgentConfig {
        consent_interval: None,
        ..base_config(c, seed)
    };
    let sc = Scenario {
        binding_timeout: Some(Duration::from_secs(10)),
        ..Scenario::new(NatType::RestrictedCone, NatType::Symmetric)
    };
    let mut sim = Sim::new(&sc, cfg(true, 161), cfg(false, 162));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    sim.run_until(Duration::from_secs(100), |_| false);
    assert!(sim.net.stats().no_mapping > 0);
    // with consent on, the same NATs are kept open (checks every 4-6 s)
    let sc = Scenario {
        binding_timeout: Some(Duration::from_secs(10)),
        ..Scenario::new(NatType::RestrictedCone, NatType::Symmetric)
    };
    let mut sim = Sim::new(&sc, base_config(true, 161), base_config(false, 162));
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    sim.run_until(Duration::from_secs(100), |_| false);
    assert_eq!(sim.net.stats().no_mapping, 0);
    assert!(sim.both(IceState::Completed));
}

#[test]
fn rtt_is_measured_on_checks_and_consent() {
    let sc = Scenario {
        link: LinkConfig::delay(Duration::from_millis(30)),
        ..Scenario::new(NatType::Open, NatType::Open)
    };
    let mut sim = Sim::new(&sc, base_config(true, 91), base_config(false, 92));
    assert_eq!(sim.peers[0].agent.rtt(1), None);
    assert!(sim.run_until(Duration::from_secs(10), |s| s.both(IceState::Completed)));
    let rtt = sim.peers[0].agent.rtt(1).expect("a check was answered");
    // Later consent checks keep measuring the same path.
    let t = sim.now;
    assert!(!sim.run_until(Duration::from_secs(20), |s| s.now < t));
    let later = sim.peers[0].agent.rtt(1).expect("consent answered");
    assert_eq!(rtt, later, "virtual time: one path, one delay");
    // Each way crosses both peers' access links: 2 x 30 ms, twice.
    assert_eq!(rtt, Duration::from_millis(120));
}
