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
