//! Checks that arrive before the peer's description (RFC 8445 §7.3.1.4, and
//! §6.1.2 for the pairs they imply): the SIP ordering where the answerer starts
//! checking as soon as it has the offer, so its first check reaches the offerer before
//! the answer does. Two agents joined by a fixed-delay link, in virtual time.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_ice::{Agent, AgentConfig, CandidateType, Event, IceState, InterfaceFilter};
use rand::{Rng, SeedableRng};

/// Ta of the default configuration.
const TA: Duration = Duration::from_millis(20);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Datagram {
    at: Instant,
    to: usize,
    local: SocketAddr,
    remote: SocketAddr,
    data: Vec<u8>,
}

/// Agent 0 is controlling (the caller), agent 1 controlled (the callee). Datagrams to
/// addresses that are not the other agent's (STUN servers) are dropped, so gathering
/// stays pending until its timeout.
struct Wire {
    agents: [Agent; 2],
    addrs: [Vec<SocketAddr>; 2],
    flight: Vec<Datagram>,
    delay: Duration,
    now: Instant,
    t0: Instant,
    log: [Vec<(Duration, Event)>; 2],
    /// (time, receiving agent, is a Binding request) of every delivered datagram.
    delivered: Vec<(Duration, usize, bool)>,
}

struct Side {
    hosts: Vec<SocketAddr>,
    stun_servers: usize,
}

fn side<S: AsRef<str>>(hosts: &[S], stun_servers: usize) -> Side {
    Side {
        hosts: hosts.iter().map(|h| sa(h.as_ref())).collect(),
        stun_servers,
    }
}

impl Wire {
    fn new(delay: Duration, sides: [Side; 2], seed: u64) -> Self {
        let t0 = Instant::now();
        let mk = |controlling: bool, seed: u64, s: &Side| {
            let mut a = Agent::new(AgentConfig {
                controlling,
                seed: Some(seed),
                interfaces: InterfaceFilter::allow_all(),
                stun_servers: (0..s.stun_servers)
                    .map(|i| sa(&format!("198.51.100.{}:3478", i + 1)))
                    .collect(),
                ..AgentConfig::default()
            });
            for (i, addr) in s.hosts.iter().enumerate() {
                a.add_host_candidate(1, &format!("eth{i}"), *addr).unwrap();
            }
            a.gather(t0);
            a
        };
        let agents = [mk(true, seed, &sides[0]), mk(false, seed + 1000, &sides[1])];
        let [a, b] = sides;
        let mut w = Wire {
            agents,
            addrs: [a.hosts, b.hosts],
            flight: Vec::new(),
            delay,
            now: t0,
            t0,
            log: [Vec::new(), Vec::new()],
            delivered: Vec::new(),
        };
        w.pump();
        w
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Gives agent `to` the other's description, the way the softphone applies an SDP
    /// body: credentials, the host candidates known so far, end-of-candidates, then a
    /// timer run if one is due.
    fn describe(&mut self, to: usize) {
        let creds = self.agents[1 - to].local_credentials().clone();
        let cands = self.agents[1 - to].local_candidates();
        let a = &mut self.agents[to];
        a.set_remote_credentials(&creds.ufrag, &creds.pwd);
        for c in cands {
            a.add_remote_candidate(c).unwrap();
        }
        a.end_of_remote_candidates();
        if a.poll_timeout().is_some_and(|t| t <= self.now) {
            a.handle_timeout(self.now);
        }
        self.pump();
    }

    fn pump(&mut self) {
        for i in 0..2 {
            while let Some(t) = self.agents[i].poll_transmit() {
                if self.addrs[1 - i].contains(&t.destination) {
                    self.flight.push(Datagram {
                        at: self.now + self.delay,
                        to: 1 - i,
                        local: t.destination,
                        remote: t.source,
                        data: t.data,
                    });
                }
            }
            while let Some(e) = self.agents[i].poll_event() {
                let at = self.elapsed();
                self.log[i].push((at, e));
            }
        }
    }

    /// Runs until `stop` holds (checked after every step) or virtual time `until`.
    fn run(&mut self, until: Duration, mut stop: impl FnMut(&Wire) -> bool) {
        loop {
            self.pump();
            if stop(self) {
                return;
            }
            let Some(next) = self
                .flight
                .iter()
                .map(|d| d.at)
                .chain(self.agents.iter().filter_map(Agent::poll_timeout))
                .min()
            else {
                return;
            };
            if next > self.t0 + until {
                self.now = self.now.max(self.t0 + until);
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let (due, rest): (Vec<Datagram>, Vec<Datagram>) = std::mem::take(&mut self.flight)
                .into_iter()
                .partition(|d| d.at <= now);
            self.flight = rest;
            for d in due {
                let request = natter_stun::Message::parse(&d.data)
                    .is_ok_and(|m| m.class() == natter_stun::Class::Request);
                self.delivered.push((self.elapsed(), d.to, request));
                self.agents[d.to].handle_receive(now, d.local, d.remote, &d.data);
                self.pump();
                if stop(self) {
                    return;
                }
            }
            for a in &mut self.agents {
                if a.poll_timeout().is_some_and(|t| t <= now) {
                    a.handle_timeout(now);
                }
            }
        }
    }

    /// When agent `i` first had a working pair (it may go straight to Completed).
    fn connected_at(&self, i: usize) -> Option<Duration> {
        self.log[i]
            .iter()
            .find(|(_, e)| {
                matches!(
                    e,
                    Event::StateChanged(IceState::Connected | IceState::Completed)
                )
            })
            .map(|(t, _)| *t)
    }

    fn connected(&self, i: usize) -> bool {
        matches!(
            self.agents[i].state(),
            IceState::Connected | IceState::Completed
        )
    }

    /// The callee gets the offer and checks; its first check reaches the caller, which
    /// answers it without knowing the callee yet. Returns the time the caller then gets
    /// the answer, once the callee is connected (the 200 OK is still in flight).
    fn early_check_then_answer(&mut self) -> Duration {
        self.describe(1);
        self.run(Duration::from_secs(5), |w| w.connected(1));
        assert!(
            self.connected(1),
            "the callee connects on the caller's answer"
        );
        assert_eq!(self.agents[0].state(), IceState::Checking);
        let learned = self.agents[0].remote_candidates();
        assert_eq!(learned.len(), 1, "the early check's source, learned");
        assert_eq!(learned[0].kind, CandidateType::Prflx);
        let t = self.elapsed();
        self.describe(0);
        t
    }
}

/// The symptom's ordering, with trickle-style gathering still running on the caller (two
/// hosts × two STUN servers: four requests to pace out) when both the callee's check
/// and its answer arrive. The triggered check for the early check's pair must take the
/// next Ta slot, not wait behind the STUN requests.
#[test]
fn caller_connects_within_ta_and_rtt_of_the_answer_when_the_callees_check_came_first() {
    let d = Duration::from_millis(2);
    let mut w = Wire::new(
        d,
        [
            side(&["10.0.0.1:5000", "10.0.1.1:5000"], 2),
            side(&["10.0.0.2:6000"], 0),
        ],
        1,
    );
    let answer = w.early_check_then_answer();
    assert_eq!(
        answer,
        2 * d,
        "the callee's check and the caller's response"
    );
    w.run(Duration::from_secs(5), |w| w.connected(0));
    let took = w.connected_at(0).unwrap() - answer;
    assert!(
        took <= TA + 2 * d,
        "caller connected {took:?} after the answer"
    );
    // exactly: the STUN request sent at 0 holds the pacer until Ta, then the triggered
    // check goes, and its answer is back one round trip later
    assert_eq!(w.connected_at(0), Some(TA + 2 * d));
    assert_eq!(
        w.agents[0]
            .selected_pair(1)
            .map(|(l, r)| (l.addr, r.addr, r.kind)),
        Some((
            sa("10.0.0.1:5000"),
            sa("10.0.0.2:6000"),
            CandidateType::Host
        )),
        "the prflx remote took its signalled form"
    );
    w.run(Duration::from_secs(5), |w| {
        w.agents.iter().all(|a| a.state() == IceState::Completed)
    });
    assert!(
        w.elapsed() <= 3 * TA + 4 * d,
        "nominated at {:?}",
        w.elapsed()
    );
}

/// The softphone's case exactly: host candidates only, no gathering, one address each.
#[test]
fn caller_without_gathering_checks_at_once_when_the_answer_follows_an_early_check() {
    let d = Duration::from_micros(100);
    let mut w = Wire::new(
        d,
        [side(&["127.0.0.1:5000"], 0), side(&["127.0.0.1:6000"], 0)],
        3,
    );
    let answer = w.early_check_then_answer();
    w.run(Duration::from_secs(5), |w| w.connected(0));
    assert_eq!(w.connected_at(0), Some(answer + 2 * d));
}

/// The early check's remote candidate, once signalled, is paired with every local
/// candidate, not only with the one the check arrived on; the early pair keeps its
/// triggered check and the pair list matches what the description alone would give.
#[test]
fn signalled_form_of_an_early_check_source_pairs_with_every_local_candidate() {
    let d = Duration::from_millis(1);
    let mut w = Wire::new(
        d,
        [
            side(&["10.0.0.1:5000", "10.0.1.1:5000"], 0),
            side(&["10.0.0.2:6000"], 0),
        ],
        9,
    );
    let answer = w.early_check_then_answer();
    assert!(answer < TA, "before the callee's second check");
    let mut pairs: Vec<_> = w.agents[0]
        .pairs()
        .iter()
        .map(|p| (p.local, p.remote, p.remote_kind))
        .collect();
    pairs.sort_by_key(|p| (p.0, p.1));
    assert_eq!(
        pairs,
        vec![
            (
                sa("10.0.0.1:5000"),
                sa("10.0.0.2:6000"),
                CandidateType::Host
            ),
            (
                sa("10.0.1.1:5000"),
                sa("10.0.0.2:6000"),
                CandidateType::Host
            ),
        ]
    );
    // the triggered check went out with the answer, on the early check's pair
    w.run(Duration::from_secs(5), |w| w.connected(0));
    assert_eq!(w.connected_at(0), Some(answer + 2 * d));
    assert_eq!(
        w.agents[0].selected_pair(1).map(|(l, r)| (l.addr, r.addr)),
        Some((sa("10.0.0.1:5000"), sa("10.0.0.2:6000")))
    );
    // The line a driver logs when a call never connects names all of it.
    let line = w.agents[0].describe_checks();
    assert!(line.contains("remote credentials known"), "{line}");
    assert!(
        line.contains("remote candidates [10.0.0.2:6000/Host]"),
        "{line}"
    );
    assert!(
        line.contains("10.0.0.1:5000->10.0.0.2:6000 Succeeded"),
        "{line}"
    );
}

/// The controlled side: the caller's first check reaches a callee whose STUN requests
/// are still being paced out. Its own check on that pair (the triggered one) must go
/// in the next Ta slot, so the callee is connected one Ta and one round trip after it.
#[test]
fn callee_checks_the_callers_pair_in_the_next_ta_slot() {
    let d = Duration::from_millis(2);
    let mut w = Wire::new(
        d,
        [
            side(&["10.0.0.1:5000"], 0),
            side(&["10.0.0.2:6000", "10.0.1.2:6000"], 2),
        ],
        5,
    );
    // the callee has the offer; the caller gets the (trickled) answer at once too
    w.describe(1);
    w.describe(0);
    w.run(Duration::from_secs(5), |w| {
        w.delivered.iter().any(|&(_, to, req)| to == 1 && req)
    });
    let first = w.elapsed();
    assert_eq!(first, d, "the caller's first check reached the callee");
    w.run(Duration::from_secs(5), |w| w.connected(1));
    let took = w.connected_at(1).unwrap() - first;
    assert!(
        took <= TA + 2 * d,
        "callee connected {took:?} after the first check"
    );
    w.run(Duration::from_secs(5), |w| {
        w.agents.iter().all(|a| a.state() == IceState::Completed)
    });
    assert!(
        w.elapsed() <= 3 * TA + 4 * d,
        "nominated at {:?}",
        w.elapsed()
    );
}

/// A seeded sweep over the ordering: 1 to 3 hosts a side (IPv4 and IPv6), STUN or not,
/// link delays 0.05 to 5 ms, the answer reaching the caller 0 to 60 ms after the early
/// check. The caller is connected at most one Ta and one round trip after the answer.
#[test]
fn early_check_sweep_connects_within_ta_and_rtt() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for it in 0..400u64 {
        let hosts = |n: usize, v6: bool, port: u16| -> Vec<String> {
            (0..n)
                .map(|i| {
                    if v6 && i == 1 {
                        format!("[2001:db8::{}]:{port}", port / 1000)
                    } else {
                        format!("10.0.{i}.{}:{port}", port / 1000)
                    }
                })
                .collect()
        };
        let v6 = rng.gen_bool(0.3);
        let (na, nb) = (rng.gen_range(1..4usize), rng.gen_range(1..4usize));
        let ha = hosts(na, v6, 5000);
        let hb = hosts(nb, v6, 6000);
        let stun = [rng.gen_range(0..3usize), rng.gen_range(0..3usize)];
        let d = Duration::from_micros(rng.gen_range(50..5000));
        let wait = Duration::from_micros(rng.gen_range(0..60_000));
        let mut w = Wire::new(d, [side(&ha, stun[0]), side(&hb, stun[1])], it + 1);
        w.describe(1);
        w.run(Duration::from_secs(5), |w| {
            !w.agents[0].remote_candidates().is_empty()
        });
        let answer = w.elapsed() + wait;
        w.run(answer, |_| false);
        w.describe(0);
        w.run(Duration::from_secs(10), |w| w.connected(0));
        let took = w.connected_at(0).unwrap() - answer;
        assert!(
            took <= TA + 2 * d,
            "case {it} (hosts {na}/{nb}, stun {stun:?}, delay {d:?}): {took:?}"
        );
    }
}
