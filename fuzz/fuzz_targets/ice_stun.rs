#![no_main]
//! Fuzzes the ICE agent's handling of incoming datagrams (connectivity checks,
//! responses, garbage): it must never panic and must stay within its limits. The first
//! byte picks the source port so the agent sees many peers; the agent has a host
//! candidate, remote credentials and one remote candidate so every code path is live.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_ice::{Agent, AgentConfig, InterfaceFilter};

fuzz_target!(|data: &[u8]| {
    let Some((&port, rest)) = data.split_first() else {
        return;
    };
    let mut agent = Agent::new(AgentConfig {
        controlling: port & 1 == 0,
        seed: Some(1),
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    });
    let local: SocketAddr = "192.0.2.1:5000".parse().unwrap();
    agent.add_host_candidate(1, "eth0", local);
    agent.set_remote_credentials("RUFRAG", "remote-password-0123456789");
    let _ =
        agent.add_remote_candidate_sdp("candidate:1 1 UDP 2130706431 198.51.100.7 7000 typ host");
    let t0 = Instant::now();
    let from = SocketAddr::new("198.51.100.7".parse().unwrap(), 7000 + u16::from(port));
    for (i, chunk) in rest.split(|b| *b == 0xff).enumerate().take(16) {
        let now = t0 + Duration::from_millis(10 * i as u64);
        agent.handle_receive(now, local, from, chunk);
        agent.handle_timeout(now);
        while agent.poll_transmit().is_some() {}
        while agent.poll_event().is_some() {}
    }
    let _ = agent.poll_timeout();
    assert!(agent.pairs().len() <= 100);
});
