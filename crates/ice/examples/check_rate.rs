//! Measures how many incoming connectivity checks per second the agent answers
//! (parse, authenticate, respond, update the check list), for `bench/ice`.
//!
//! `cargo run --release -p natter-ice --example check_rate [-- N]`

use std::net::SocketAddr;
use std::time::Instant;

use natter_ice::{Agent, AgentConfig, InterfaceFilter};
use natter_stun::{Class, MessageWriter, Method, TransactionId};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut agent = Agent::new(AgentConfig {
        controlling: false,
        seed: Some(1),
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    });
    let local: SocketAddr = "192.0.2.1:5000".parse().unwrap_or_else(|_| unreachable!());
    let remote: SocketAddr = "198.51.100.7:7000"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    agent.add_host_candidate(1, "eth0", local);
    agent.set_remote_credentials("PEER", "peer-password-0123456789");
    let creds = agent.local_credentials().clone();
    // 64 distinct requests, replayed round-robin (the agent keeps no replay state for
    // requests, so this measures the full answer path every time)
    let reqs: Vec<Vec<u8>> = (0..64u8)
        .map(|i| {
            let mut buf = Vec::new();
            let _ = MessageWriter::new(
                &mut buf,
                Method::BINDING,
                Class::Request,
                TransactionId([i; 12]),
            )
            .add_username(&format!("{}:PEER", creds.ufrag))
            .add_priority(1_862_270_975)
            .add_ice_controlling(7)
            .add_message_integrity(creds.pwd.as_bytes())
            .add_fingerprint()
            .finish();
            buf
        })
        .collect();
    let start = Instant::now();
    let mut answered = 0u64;
    for i in 0..n {
        let req = reqs
            .get(i as usize % reqs.len())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        agent.handle_receive(start, local, remote, req);
        while agent.poll_transmit().is_some() {
            answered += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "checks={n} responses={answered} secs={secs:.3} checks_per_sec={:.0}",
        f64::from(n) / secs
    );
}
