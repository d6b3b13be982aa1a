//! Time to connected in the simulated NAT lab (virtual time, deterministic): every pair
//! of NAT types with a STUN server and a relay, 50 ms RTT, no loss. Prints one line per
//! pair, for `bench/ice` and for comparing tuning changes.
//!
//! `cargo run -p natter-ice --example sim_connect`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{base_config, Scenario, Sim};
use natter_ice::IceState;
use natter_netsim::{LinkConfig, NatType};

fn main() {
    let link = LinkConfig::delay(Duration::from_micros(12_500));
    println!("# A x B: connected (both) / completed (both), selected types on A; 50 ms RTT");
    for a in NatType::ALL {
        for b in NatType::ALL {
            let sc = Scenario {
                turn: true,
                link,
                ..Scenario::new(a, b)
            };
            let mut sim = Sim::new(&sc, base_config(true, 1), base_config(false, 2));
            let up =
                |s: &Sim, i: usize| matches!(s.state(i), IceState::Connected | IceState::Completed);
            let connected = sim
                .run_until(Duration::from_secs(30), |s| up(s, 0) && up(s, 1))
                .then(|| sim.now - sim.t0);
            let completed = sim
                .run_until(Duration::from_secs(30), |s| s.both(IceState::Completed))
                .then(|| sim.now - sim.t0);
            let types = sim
                .selected_types(0)
                .map(|(l, r)| format!("{l}/{r}"))
                .unwrap_or_else(|| "-".into());
            println!("{a:?} x {b:?}: connected={connected:?} completed={completed:?} {types}");
        }
    }
}
