//! A two-agent harness on natter-netsim: signalling is instant and in-process, relayed
//! candidates go through netsim's toy relay via a small adapter (what the TURN client
//! will do for real).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_ice::{Agent, AgentConfig, Candidate, CandidateType, Event, IceState, InterfaceFilter};
use natter_netsim::{
    HostId, LinkConfig, NatType, Network, RealmId, RelayMessage, RelayServer, StunServer,
};

pub const STUN: &str = "198.51.100.1:3478";
pub const RELAY: &str = "198.51.100.2:3478";

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub struct Peer {
    pub agent: Agent,
    pub host: HostId,
    pub addr: SocketAddr,
    pub relay: Option<SocketAddr>,
    relay_token: Option<natter_ice::RelayToken>,
    /// Next retransmission of the relay allocation request (as a TURN client would).
    aloc_next: Option<Instant>,
    pub relayed: Option<SocketAddr>,
    pub events: Vec<Event>,
    pub app_data: Vec<Vec<u8>>,
    /// (local address, payload) of application data, for component checks.
    pub app_local: Vec<SocketAddr>,
    pub connected_at: Option<Instant>,
}

pub struct Sim {
    pub net: Network,
    pub peers: Vec<Peer>,
    pub now: Instant,
    pub t0: Instant,
    pub trickle: bool,
    /// Whether each peer's candidates reach the other (false: only checks reveal them).
    pub signal_candidates: [bool; 2],
    /// Candidates held back per receiving peer while `signal_candidates` is false.
    pub held: [Vec<Candidate>; 2],
}

pub struct Scenario {
    pub nat_a: NatType,
    pub nat_b: NatType,
    pub turn: bool,
    pub link: LinkConfig,
    pub seed: u64,
    pub stun_alive: bool,
    pub components: u16,
    /// Both peers behind the NAT of `nat_a` on one LAN, with this hairpin setting.
    pub same_lan: Option<bool>,
    /// NAT binding timeout override.
    pub binding_timeout: Option<Duration>,
}

impl Scenario {
    pub fn new(nat_a: NatType, nat_b: NatType) -> Self {
        Scenario {
            nat_a,
            nat_b,
            turn: false,
            link: LinkConfig::default(),
            seed: 1,
            stun_alive: true,
            components: 1,
            same_lan: None,
            binding_timeout: None,
        }
    }
}

pub fn base_config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig {
        controlling,
        seed: Some(seed),
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    }
}

impl Sim {
    /// Two peers, each on the Internet (Open) or behind its own NAT, STUN server and
    /// relay on the Internet.
    pub fn new(sc: &Scenario, cfg_a: AgentConfig, cfg_b: AgentConfig) -> Self {
        let t0 = Instant::now();
        let mut net = Network::new(t0, sc.seed);
        if sc.stun_alive {
            net.add_server(
                RealmId::INTERNET,
                sa(STUN).ip(),
                Box::new(StunServer::new()),
            );
        }
        net.add_server(
            RealmId::INTERNET,
            sa(RELAY).ip(),
            Box::new(RelayServer::new(3478)),
        );
        let mut peers = Vec::new();
        if let Some(hairpin) = sc.same_lan {
            // both peers on one LAN behind one NAT
            let nc = natter_netsim::NatConfig {
                hairpin,
                ..sc.nat_a.config().unwrap_or_default()
            };
            let (_, lan) = net.add_nat(
                RealmId::INTERNET,
                "203.0.113.1".parse().unwrap(),
                nc,
                LinkConfig::default(),
            );
            for (i, cfg) in [cfg_a.clone(), cfg_b.clone()].into_iter().enumerate() {
                let private: IpAddr = format!("10.0.1.{}", 2 + i).parse().unwrap();
                let host = net.add_host(lan, &[private], sc.link);
                peers.push(Peer::new(
                    cfg,
                    host,
                    SocketAddr::new(private, 5000),
                    sc.turn,
                ));
            }
        }
        for (i, (nat, cfg)) in [(sc.nat_a, cfg_a), (sc.nat_b, cfg_b)]
            .into_iter()
            .enumerate()
            .filter(|_| sc.same_lan.is_none())
        {
            let ip: IpAddr = match nat.config() {
                None => format!("203.0.113.{}", 10 + i).parse().unwrap(),
                Some(mut nc) => {
                    if let Some(t) = sc.binding_timeout {
                        nc.binding_timeout = t;
                    }
                    let public: IpAddr = format!("203.0.113.{}", 1 + i).parse().unwrap();
                    let (_, lan) =
                        net.add_nat(RealmId::INTERNET, public, nc, LinkConfig::default());
                    let private: IpAddr = format!("10.0.{}.2", 1 + i).parse().unwrap();
                    let host = net.add_host(lan, &[private], sc.link);
                    peers.push(Peer::new(
                        cfg,
                        host,
                        SocketAddr::new(private, 5000),
                        sc.turn,
                    ));
                    continue;
                }
            };
            let host = net.add_host(RealmId::INTERNET, &[ip], sc.link);
            peers.push(Peer::new(cfg, host, SocketAddr::new(ip, 5000), sc.turn));
        }
        let mut sim = Sim {
            net,
            peers,
            now: t0,
            t0,
            trickle: true,
            signal_candidates: [true, true],
            held: [Vec::new(), Vec::new()],
        };
        // credentials are exchanged up front (offer/answer)
        let ca = sim.peers[0].agent.local_credentials().clone();
        let cb = sim.peers[1].agent.local_credentials().clone();
        sim.peers[0]
            .agent
            .set_remote_credentials(&cb.ufrag, &cb.pwd);
        sim.peers[1]
            .agent
            .set_remote_credentials(&ca.ufrag, &ca.pwd);
        for i in 0..2 {
            let now = sim.now;
            let p = &mut sim.peers[i];
            for comp in 1..=sc.components {
                let a = SocketAddr::new(p.addr.ip(), p.addr.port() + comp - 1);
                p.agent.add_host_candidate(comp, "eth0", a);
            }
            if p.relay.is_some() {
                p.relay_token = Some(p.agent.expect_relay(now));
                sim.net
                    .send(p.host, p.addr, sa(RELAY), RelayMessage::Allocate.encode());
                p.aloc_next = Some(now + Duration::from_millis(500));
            }
            p.agent.gather(now);
        }
        sim
    }

    fn signal(&mut self) {
        for i in 0..2 {
            let evs: Vec<Event> = std::iter::from_fn(|| self.peers[i].agent.poll_event()).collect();
            for e in evs {
                match &e {
                    Event::LocalCandidate(c) => {
                        if self.signal_candidates[i] {
                            self.peers[1 - i]
                                .agent
                                .add_remote_candidate(c.clone())
                                .unwrap();
                        } else {
                            self.held[1 - i].push(c.clone());
                        }
                    }
                    Event::GatheringComplete => self.peers[1 - i].agent.end_of_remote_candidates(),
                    Event::StateChanged(IceState::Connected | IceState::Completed) => {
                        self.peers[i].connected_at.get_or_insert(self.now);
                    }
                    _ => {}
                }
                self.peers[i].events.push(e);
            }
        }
    }

    fn flush(&mut self) {
        for i in 0..2 {
            while let Some(t) = self.peers[i].agent.poll_transmit() {
                let p = &self.peers[i];
                if t.relayed {
                    assert_eq!(Some(t.source), p.relayed);
                    self.net.send(
                        p.host,
                        p.addr,
                        sa(RELAY),
                        RelayMessage::Send(t.destination, t.data).encode(),
                    );
                } else {
                    self.net.send(p.host, t.source, t.destination, t.data);
                }
            }
        }
    }

    fn deliver(&mut self) {
        while let Some(d) = self.net.poll_delivery() {
            let i = self.peers.iter().position(|p| p.host == d.host).unwrap();
            let now = self.now;
            let p = &mut self.peers[i];
            if p.relay.is_some() && d.remote == sa(RELAY) {
                match RelayMessage::decode(&d.data) {
                    Some(RelayMessage::Allocated(relayed)) => {
                        p.relayed = Some(relayed);
                        p.aloc_next = None;
                        if let Some(t) = p.relay_token.take() {
                            p.agent.relay_allocated(t, 1, relayed, p.addr);
                        }
                    }
                    Some(RelayMessage::Data(from, payload)) => {
                        let local = p.relayed.unwrap();
                        if !p.agent.handle_receive(now, local, from, &payload) {
                            p.app_data.push(payload);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            if !p.agent.handle_receive(now, d.local, d.remote, &d.data) {
                p.app_local.push(d.local);
                p.app_data.push(d.data);
            }
        }
    }

    /// Runs until `done` holds or virtual time passes `limit`. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = self.t0 + limit;
        for _ in 0..2_000_000 {
            self.flush();
            self.deliver();
            self.signal();
            self.flush();
            if done(self) {
                return true;
            }
            let next = [
                self.peers[0].agent.poll_timeout(),
                self.peers[1].agent.poll_timeout(),
                self.net.poll_timeout(),
                self.peers[0].aloc_next,
                self.peers[1].aloc_next,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return false };
            if next > deadline {
                return false;
            }
            if next > self.now {
                self.now = next;
            }
            self.net.advance_to(self.now);
            for p in &mut self.peers {
                if let Some(t) = p.aloc_next.filter(|t| *t <= self.now) {
                    let give_up = p.relay_token.is_none() || t - self.t0 > Duration::from_secs(3);
                    p.aloc_next = (!give_up).then(|| self.now + Duration::from_millis(500));
                    if !give_up {
                        self.net
                            .send(p.host, p.addr, sa(RELAY), RelayMessage::Allocate.encode());
                    }
                }
                if p.agent.poll_timeout().is_some_and(|t| t <= self.now) {
                    p.agent.handle_timeout(self.now);
                }
            }
        }
        panic!("simulation loop did not settle");
    }

    /// Releases candidates held back for peer `i` and lets future ones through.
    pub fn release(&mut self, i: usize) {
        self.signal_candidates[1 - i] = true;
        for c in std::mem::take(&mut self.held[i]) {
            self.peers[i].agent.add_remote_candidate(c).unwrap();
        }
    }

    /// ICE restart on both sides with a fresh credential exchange; candidates are
    /// re-trickled by the agents' events.
    pub fn restart_both(&mut self) {
        let now = self.now;
        self.peers[0].agent.restart(now);
        self.peers[1].agent.restart(now);
        let ca = self.peers[0].agent.local_credentials().clone();
        let cb = self.peers[1].agent.local_credentials().clone();
        self.peers[0]
            .agent
            .set_remote_credentials(&cb.ufrag, &cb.pwd);
        self.peers[1]
            .agent
            .set_remote_credentials(&ca.ufrag, &ca.pwd);
    }

    pub fn state(&self, i: usize) -> IceState {
        self.peers[i].agent.state()
    }

    pub fn both(&self, s: IceState) -> bool {
        self.state(0) == s && self.state(1) == s
    }

    pub fn selected_types(&self, i: usize) -> Option<(CandidateType, CandidateType)> {
        self.selected_types_of(i, 1)
    }

    pub fn selected_types_of(&self, i: usize, comp: u16) -> Option<(CandidateType, CandidateType)> {
        self.peers[i]
            .agent
            .selected_pair(comp)
            .map(|(l, r): (Candidate, Candidate)| (l.kind, r.kind))
    }

    /// Sends `data` from peer `i` over its selected pair.
    pub fn send_app(&mut self, i: usize, data: &[u8]) {
        self.send_app_on(i, 1, data);
    }

    pub fn send_app_on(&mut self, i: usize, comp: u16, data: &[u8]) {
        let now = self.now;
        let t = self.peers[i].agent.send(now, comp, data).unwrap();
        let p = &self.peers[i];
        if t.relayed {
            self.net.send(
                p.host,
                p.addr,
                sa(RELAY),
                RelayMessage::Send(t.destination, t.data).encode(),
            );
        } else {
            self.net.send(p.host, t.source, t.destination, t.data);
        }
    }
}

impl Peer {
    fn new(cfg: AgentConfig, host: HostId, addr: SocketAddr, turn: bool) -> Self {
        let cfg = AgentConfig {
            stun_servers: vec![sa(STUN)],
            ..cfg
        };
        Peer {
            agent: Agent::new(cfg),
            host,
            addr,
            relay: turn.then(|| sa(RELAY)),
            relay_token: None,
            aloc_next: None,
            relayed: None,
            events: Vec::new(),
            app_data: Vec::new(),
            app_local: Vec::new(),
            connected_at: None,
        }
    }
}
