//! Every pair of NAT types, with STUN only and with STUN + relay, lossless and under
//! 5% loss / 200 ms RTT. Expectations follow RFC 8445 / RFC 4787: without a relay, two
//! peers connect unless one is behind an address-and-port-dependent mapping NAT and the
//! other filters by port (port-restricted or symmetric); with a relay every pair
//! connects. The selected pair's candidate types are asserted on both sides.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use natter_ice::{CandidateType, IceState};
use natter_netsim::{LinkConfig, NatType};

fn direct_possible(a: NatType, b: NatType) -> bool {
    let hard = |n| n == NatType::Symmetric;
    let port_filter = |n| matches!(n, NatType::PortRestrictedCone | NatType::Symmetric);
    !((hard(a) && port_filter(b)) || (hard(b) && port_filter(a)))
}

/// The type of a peer's local candidate on a direct path: its host address when it is
/// on the Internet, its server-reflexive one behind an endpoint-independent mapping,
/// and a peer-reflexive one behind a symmetric NAT (the mapping differs per peer).
fn direct_type(n: NatType) -> CandidateType {
    match n {
        NatType::Open => CandidateType::Host,
        NatType::Symmetric => CandidateType::Prflx,
        _ => CandidateType::Srflx,
    }
}

fn run(a: NatType, b: NatType, turn: bool, link: LinkConfig, seed: u64) -> Result<(), String> {
    let sc = Scenario {
        turn,
        link,
        seed,
        ..Scenario::new(a, b)
    };
    let mut sim = Sim::new(
        &sc,
        base_config(true, seed * 2 + 1),
        base_config(false, seed * 2 + 2),
    );
    let settled = |s: &Sim| {
        let fin = |x: IceState| matches!(x, IceState::Completed | IceState::Failed);
        // gathering too: under loss a srflx answer can come after the connection, and
        // the selected pair then takes its server-reflexive form
        let gathered =
            |i: usize| s.peers[i].agent.gathering_state() == natter_ice::GatheringState::Complete;
        fin(s.state(0)) && fin(s.state(1)) && gathered(0) && gathered(1)
    };
    sim.run_until(Duration::from_secs(60), settled);
    let expect_connect = turn || direct_possible(a, b);
    let tag = format!("{a:?} x {b:?} turn={turn} loss={}", link.loss);
    if !expect_connect {
        if sim.both(IceState::Failed) {
            return Ok(());
        }
        return Err(format!(
            "{tag}: expected failure, got {:?}/{:?}",
            sim.state(0),
            sim.state(1)
        ));
    }
    if !sim.both(IceState::Completed) {
        return Err(format!(
            "{tag}: expected Completed, got {:?}/{:?}",
            sim.state(0),
            sim.state(1)
        ));
    }
    let ta = sim.selected_types(0).unwrap();
    let tb = sim.selected_types(1).unwrap();
    if direct_possible(a, b) {
        let want_a = (direct_type(a), direct_type(b));
        let want_b = (direct_type(b), direct_type(a));
        if ta != want_a || tb != want_b {
            return Err(format!(
                "{tag}: selected {ta:?}/{tb:?}, want {want_a:?}/{want_b:?}"
            ));
        }
    } else if ta.0 != CandidateType::Relay && ta.1 != CandidateType::Relay {
        return Err(format!("{tag}: expected a relayed pair, got {ta:?}"));
    }
    eprintln!(
        "{tag}: {ta:?} {tb:?} connected_at={:?}",
        sim.peers[0].connected_at.map(|t| t - sim.t0)
    );
    // the nominated pairs agree: A's local address is B's remote address and vice versa
    let (la, ra) = sim.peers[0].agent.selected_pair(1).unwrap();
    let (lb, rb) = sim.peers[1].agent.selected_pair(1).unwrap();
    if la.addr != rb.addr || ra.addr != lb.addr {
        return Err(format!(
            "{tag}: pairs disagree {la:?}/{ra:?} vs {lb:?}/{rb:?}"
        ));
    }
    // data both ways over the selected pair (retry through loss)
    for round in 0..20u8 {
        if !sim.peers[1].app_data.is_empty() && !sim.peers[0].app_data.is_empty() {
            break;
        }
        sim.send_app(0, &[b'a', round]);
        sim.send_app(1, &[b'b', round]);
        let limit = sim.now - sim.t0 + Duration::from_millis(500);
        sim.run_until(limit, |s| {
            !s.peers[1].app_data.is_empty() && !s.peers[0].app_data.is_empty()
        });
    }
    if sim.peers[1].app_data.first().map(|d| d[0]) != Some(b'a')
        || sim.peers[0].app_data.first().map(|d| d[0]) != Some(b'b')
    {
        return Err(format!("{tag}: data did not cross"));
    }
    Ok(())
}

fn matrix(link: LinkConfig) {
    matrix_seeded(link, 0);
}

fn matrix_seeded(link: LinkConfig, offset: u64) {
    let mut errors = Vec::new();
    let mut n = 0;
    for (i, a) in NatType::ALL.into_iter().enumerate() {
        for (j, b) in NatType::ALL.into_iter().enumerate() {
            for turn in [false, true] {
                n += 1;
                let seed = (i * 10 + j) as u64 + if turn { 100 } else { 0 } + offset * 1000;
                if let Err(e) = run(a, b, turn, link, seed) {
                    errors.push(e);
                }
            }
        }
    }
    assert_eq!(n, 50);
    assert!(
        errors.is_empty(),
        "offset {offset}: {} of {n} failed:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn nat_matrix_lossless() {
    matrix(LinkConfig::default());
}

#[test]
fn nat_matrix_lossy_high_rtt() {
    // 50 ms on each of the two access links: 100 ms one way, 200 ms RTT; 2.5% loss on
    // each access link is about 5% per direction.
    matrix(LinkConfig {
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(5),
        loss: 0.025,
    });
}

#[test]
fn simulation_is_deterministic() {
    let go = || {
        let link = LinkConfig {
            delay: Duration::from_millis(30),
            jitter: Duration::from_millis(10),
            loss: 0.05,
        };
        let sc = Scenario {
            turn: true,
            link,
            seed: 99,
            ..Scenario::new(NatType::Symmetric, NatType::RestrictedCone)
        };
        let mut sim = Sim::new(&sc, base_config(true, 7), base_config(false, 8));
        sim.run_until(Duration::from_secs(20), |s| s.both(IceState::Completed));
        (
            sim.now - sim.t0,
            sim.peers[0].events.clone(),
            sim.peers[1].events.clone(),
            sim.net.stats(),
        )
    };
    assert_eq!(go(), go());
}

#[test]
fn nat_matrix_lossy_more_seeds() {
    // the same matrix under 10 other loss patterns: 500 more runs
    let link = LinkConfig {
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(5),
        loss: 0.025,
    };
    for offset in 1..=10 {
        matrix_seeded(link, offset);
    }
}
