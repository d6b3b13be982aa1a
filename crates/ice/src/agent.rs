//! The ICE agent state machine.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::{Class, Message, Method, TransactionId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::candidate::{pair_priority, priority, Candidate, CandidateType, Credentials};
use crate::checklist::{Pair, PairInfo, PairState, Transaction};
use crate::config::{AgentConfig, Nomination};
use crate::error::{Error, Result};
use crate::stun_msg::{self, CheckRequest};

/// Which side decides the nomination (RFC 8445 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nominates.
    Controlling,
    /// Follows.
    Controlled,
}

/// Overall connection state, as libnice and WebRTC report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// Nothing happened yet.
    New,
    /// Checks are running and no component has a usable pair yet.
    Checking,
    /// Every component has a working (valid) pair; data can flow.
    Connected,
    /// Every component has a nominated pair.
    Completed,
    /// Consent responses stopped for a while; may recover.
    Disconnected,
    /// No pair works, or consent was lost (RFC 7675).
    Failed,
    /// [`Agent::close`] was called.
    Closed,
}

/// Local gathering progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatheringState {
    /// [`Agent::gather`] not called yet.
    New,
    /// Waiting for STUN servers or relays.
    Gathering,
    /// Every server answered or timed out.
    Complete,
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A candidate to signal to the peer (trickle).
    LocalCandidate(Candidate),
    /// No more local candidates: signal `a=end-of-candidates`.
    GatheringComplete,
    /// The overall state changed.
    StateChanged(IceState),
    /// The pair used for a component's data changed.
    SelectedPair {
        /// Component.
        component: u16,
        /// Local candidate of the (valid) pair.
        local: Candidate,
        /// Remote candidate.
        remote: Candidate,
    },
    /// A role conflict (487) switched our role.
    RoleChanged(Role),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Local address to send from: a host socket, or a relayed address when `relayed`.
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// Send through the TURN allocation whose relayed address is `source`.
    pub relayed: bool,
    /// Payload.
    pub data: Vec<u8>,
}

/// Handle for a relay allocation the application has started (see
/// [`Agent::expect_relay`]); gathering is not complete while one is outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayToken(usize);

#[derive(Debug, Clone)]
struct LocalCand {
    cand: Candidate,
    local_pref: u16,
}

#[derive(Debug, Clone)]
struct GatherTx {
    base: SocketAddr,
    component: u16,
    local_pref: u16,
    server: SocketAddr,
    tid: TransactionId,
    bytes: Vec<u8>,
    /// `None` until the pacer sends it.
    next: Option<Instant>,
    rto: Duration,
    deadline: Instant,
    done: bool,
}

#[derive(Debug, Clone)]
struct RelayWait {
    deadline: Instant,
    done: bool,
}

#[derive(Debug, Clone)]
struct Selected {
    pair: Option<usize>,
    local: Candidate,
    remote: Candidate,
    nominated: bool,
}

#[derive(Debug, Clone, Default)]
struct Comp {
    selected: Option<Selected>,
    nominated: Option<usize>,
    first_valid: Option<Instant>,
    consent_next: Option<Instant>,
    consent_last: Option<Instant>,
    /// Outstanding consent checks and when each was sent (for the RTT).
    consent_tids: VecDeque<(TransactionId, Instant)>,
    last_sent: Option<Instant>,
    /// Latest round-trip time of a check or consent check answered on its first
    /// transmission (Karn: retransmitted ones are ambiguous).
    rtt: Option<Duration>,
}

const MAX_CANDIDATES: usize = 200;

/// The ICE agent. See the crate documentation for the I/O loop.
pub struct Agent {
    cfg: AgentConfig,
    rng: StdRng,
    role: Role,
    tie_breaker: u64,
    local_creds: Credentials,
    remote_creds: Option<Credentials>,
    locals: Vec<LocalCand>,
    remotes: Vec<Candidate>,
    pairs: Vec<Pair>,
    triggered: VecDeque<usize>,
    gathers: Vec<GatherTx>,
    relays: Vec<RelayWait>,
    gathering: GatheringState,
    foundations: Vec<(CandidateType, IpAddr, Option<IpAddr>)>,
    prflx_counter: u32,
    remote_eoc: bool,
    comps: Vec<Comp>,
    state: IceState,
    next_pace: Option<Instant>,
    last_now: Option<Instant>,
    checking_since: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Agent {
    /// Creates an agent. Credentials and the tie-breaker come from `cfg.seed` (or OS
    /// randomness when `None`).
    pub fn new(cfg: AgentConfig) -> Self {
        let mut rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        let local_creds = Credentials::random(&mut rng);
        let random: u64 = rng.gen();
        let tie_breaker = cfg.tie_breaker.unwrap_or(random);
        let role = if cfg.controlling && !cfg.lite {
            Role::Controlling
        } else {
            Role::Controlled
        };
        let comps = vec![Comp::default(); usize::from(cfg.components.max(1))];
        Agent {
            cfg,
            rng,
            role,
            tie_breaker,
            local_creds,
            remote_creds: None,
            locals: Vec::new(),
            remotes: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            gathers: Vec::new(),
            relays: Vec::new(),
            gathering: GatheringState::New,
            foundations: Vec::new(),
            prflx_counter: 0,
            remote_eoc: false,
            comps,
            state: IceState::New,
            next_pace: None,
            last_now: None,
            checking_since: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // ----- accessors -------------------------------------------------------------

    /// Our ufrag and password, to signal as `a=ice-ufrag` / `a=ice-pwd`.
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_creds
    }

    /// Replaces the generated credentials (e.g. fixed ones in tests).
    pub fn set_local_credentials(&mut self, creds: Credentials) {
        self.local_creds = creds;
    }

    /// The random tie-breaker sent in ICE-CONTROLLING/ICE-CONTROLLED (RFC 8445 §7.1.1).
    pub fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this is a lite agent.
    pub fn is_lite(&self) -> bool {
        self.cfg.lite
    }

    /// Current state.
    pub fn state(&self) -> IceState {
        self.state
    }

    /// Gathering state.
    pub fn gathering_state(&self) -> GatheringState {
        self.gathering
    }

    /// Local candidates to signal (excludes peer-reflexive ones, which are learned).
    pub fn local_candidates(&self) -> Vec<Candidate> {
        self.locals
            .iter()
            .filter(|l| l.cand.kind != CandidateType::Prflx)
            .map(|l| l.cand.clone())
            .collect()
    }

    /// Remote candidates known, including peer-reflexive ones.
    pub fn remote_candidates(&self) -> &[Candidate] {
        &self.remotes
    }

    /// Selected pair of `component` as (local, remote) candidates.
    pub fn selected_pair(&self, component: u16) -> Option<(Candidate, Candidate)> {
        let s = self.comp(component)?.selected.as_ref()?;
        // candidates may have been updated since selection (prflx later signalled)
        if let Some(p) = s.pair.and_then(|i| self.pairs.get(i)) {
            let l = self.locals.get(p.valid_local.unwrap_or(p.local))?;
            let r = self.remotes.get(p.remote)?;
            return Some((l.cand.clone(), r.clone()));
        }
        Some((s.local.clone(), s.remote.clone()))
    }

    /// The candidate to put in the m-line and `c=` of a description (RFC 8839
    /// §4.2.1.2): the selected pair's local candidate once there is one, else the one
    /// most likely to work for a peer that does not do ICE: relayed, then
    /// server-reflexive, then host (highest priority within a type).
    pub fn default_candidate(&self, component: u16) -> Option<Candidate> {
        if let Some((l, _)) = self.selected_pair(component) {
            return Some(l);
        }
        [
            CandidateType::Relay,
            CandidateType::Srflx,
            CandidateType::Host,
        ]
        .iter()
        .find_map(|k| {
            self.locals
                .iter()
                .filter(|l| l.cand.component == component && l.cand.kind == *k)
                .max_by_key(|l| l.cand.priority)
                .map(|l| l.cand.clone())
        })
    }

    /// One line for a log when ICE did not connect: the remote candidates known (a
    /// peer-reflexive one means the peer's checks arrived) and every pair with its state
    /// (pairs left in progress or failed mean our checks went unanswered).
    pub fn describe_checks(&self) -> String {
        let remotes: Vec<String> = self
            .remotes
            .iter()
            .map(|c| format!("{}/{:?}", c.addr, c.kind))
            .collect();
        let pairs: Vec<String> = self
            .pairs()
            .iter()
            .map(|p| format!("{}->{} {:?}", p.local, p.remote, p.state))
            .collect();
        format!(
            "state {:?}, remote credentials {}, remote candidates [{}], pairs [{}]",
            self.state,
            if self.remote_creds.is_some() {
                "known"
            } else {
                "unknown"
            },
            remotes.join(", "),
            pairs.join(", ")
        )
    }

    /// Snapshot of the check list, highest priority first.
    pub fn pairs(&self) -> Vec<PairInfo> {
        let mut v: Vec<PairInfo> = self
            .pairs
            .iter()
            .filter_map(|p| {
                let l = self.locals.get(p.valid_local.unwrap_or(p.local))?;
                let base = self.locals.get(p.local)?;
                let r = self.remotes.get(p.remote)?;
                Some(PairInfo {
                    component: p.component,
                    local: base.cand.base,
                    local_kind: l.cand.kind,
                    remote: r.addr,
                    remote_kind: r.kind,
                    priority: p.priority,
                    state: p.state,
                    nominated: p.nominated,
                })
            })
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.priority));
        v
    }

    fn comp(&self, component: u16) -> Option<&Comp> {
        self.comps.get(usize::from(component).checked_sub(1)?)
    }

    fn comp_mut(&mut self, component: u16) -> Option<&mut Comp> {
        self.comps.get_mut(usize::from(component).checked_sub(1)?)
    }

    fn new_tid(&mut self) -> TransactionId {
        TransactionId(self.rng.gen())
    }

    fn foundation(&mut self, kind: CandidateType, base: IpAddr, server: Option<IpAddr>) -> String {
        let key = (kind, base, server);
        let i = match self.foundations.iter().position(|f| *f == key) {
            Some(i) => i,
            None => {
                self.foundations.push(key);
                self.foundations.len() - 1
            }
        };
        (i + 1).to_string()
    }

    // ----- local candidates ------------------------------------------------------

    /// Registers a bound UDP socket on interface `iface` as a host candidate for
    /// `component`. Returns `None` when the interface filter rejects it (close the
    /// socket), when it is a duplicate, or when limits are reached.
    pub fn add_host_candidate(
        &mut self,
        component: u16,
        iface: &str,
        addr: SocketAddr,
    ) -> Option<Candidate> {
        if self.comp(component).is_none() || !self.cfg.interfaces.allows(iface, addr.ip()) {
            return None;
        }
        if self.locals.len() >= MAX_CANDIDATES
            || self
                .locals
                .iter()
                .any(|l| l.cand.base == addr && l.cand.component == component)
        {
            return None;
        }
        let n_hosts = self
            .locals
            .iter()
            .filter(|l| l.cand.kind == CandidateType::Host && l.cand.component == component)
            .count();
        let local_pref = 65535u16.saturating_sub(u16::try_from(n_hosts * 256).unwrap_or(u16::MAX));
        let foundation = self.foundation(CandidateType::Host, addr.ip(), None);
        let cand = Candidate {
            kind: CandidateType::Host,
            component,
            addr,
            base: addr,
            priority: priority(CandidateType::Host, local_pref, component),
            foundation,
            related: None,
        };
        self.locals.push(LocalCand {
            cand: cand.clone(),
            local_pref,
        });
        let idx = self.locals.len() - 1;
        self.events.push_back(Event::LocalCandidate(cand.clone()));
        if self.gathering == GatheringState::Gathering {
            if let Some(now) = self.last_now {
                self.start_srflx(idx, now);
            }
        }
        self.pair_local(idx);
        Some(cand)
    }

    /// Starts gathering: server-reflexive requests to every configured STUN server from
    /// every host candidate of the same address family (paced by Ta), each bounded by
    /// `gather_timeout`.
    pub fn gather(&mut self, now: Instant) {
        self.last_now = Some(now);
        if self.gathering != GatheringState::New {
            return;
        }
        self.gathering = GatheringState::Gathering;
        if !self.cfg.lite {
            for i in 0..self.locals.len() {
                self.start_srflx(i, now);
            }
        }
        self.check_gathering_complete();
    }

    fn start_srflx(&mut self, local: usize, now: Instant) {
        let Some(l) = self.locals.get(local) else {
            return;
        };
        if l.cand.kind != CandidateType::Host || self.cfg.lite {
            return;
        }
        let (base, component, local_pref) = (l.cand.base, l.cand.component, l.local_pref);
        if base.ip().is_loopback() {
            return;
        }
        for server in self.cfg.stun_servers.clone() {
            if server.is_ipv4() != base.is_ipv4() {
                continue;
            }
            let tid = self.new_tid();
            self.gathers.push(GatherTx {
                base,
                component,
                local_pref,
                server,
                tid,
                bytes: stun_msg::binding_request(tid),
                next: None,
                rto: self.cfg.rto,
                deadline: now + self.cfg.gather_timeout,
                done: false,
            });
        }
    }

    /// Adds a server-reflexive candidate learned outside the agent, typically the
    /// XOR-MAPPED-ADDRESS of a TURN Allocate response (saving a separate STUN query).
    /// `base` must be a registered host candidate's address.
    pub fn add_server_reflexive_candidate(
        &mut self,
        component: u16,
        base: SocketAddr,
        mapped: SocketAddr,
        server: SocketAddr,
    ) -> Option<Candidate> {
        let local_pref = self
            .locals
            .iter()
            .find(|l| {
                l.cand.base == base
                    && l.cand.kind == CandidateType::Host
                    && l.cand.component == component
            })?
            .local_pref;
        let before = self.locals.len();
        self.add_srflx(base, component, local_pref, server, mapped);
        (self.locals.len() > before)
            .then(|| self.locals.last().map(|l| l.cand.clone()))
            .flatten()
    }

    /// Tells the agent the peer is an ICE-lite implementation (`a=ice-lite`): a full
    /// agent must then be controlling (RFC 8445 §6.1.1).
    pub fn set_remote_lite(&mut self, lite: bool) {
        if lite && !self.cfg.lite {
            self.switch_role(Role::Controlling);
        }
    }

    /// Announces a relay allocation the application is starting; gathering completes
    /// only when it is resolved with [`Agent::relay_allocated`] or [`Agent::relay_failed`],
    /// or after `gather_timeout`.
    pub fn expect_relay(&mut self, now: Instant) -> RelayToken {
        self.relays.push(RelayWait {
            deadline: now + self.cfg.gather_timeout,
            done: false,
        });
        if self.gathering == GatheringState::Complete {
            self.gathering = GatheringState::Gathering;
        }
        RelayToken(self.relays.len() - 1)
    }

    /// Resolves a [`RelayToken`] with the allocation's relayed address and the mapped
    /// (server-reflexive) address the TURN server reported.
    pub fn relay_allocated(
        &mut self,
        token: RelayToken,
        component: u16,
        relayed: SocketAddr,
        mapped: SocketAddr,
    ) -> Option<Candidate> {
        if let Some(w) = self.relays.get_mut(token.0) {
            w.done = true;
        }
        let c = self.add_relay_candidate(component, relayed, mapped);
        self.check_gathering_complete();
        c
    }

    /// Resolves a [`RelayToken`] as failed.
    pub fn relay_failed(&mut self, token: RelayToken) {
        if let Some(w) = self.relays.get_mut(token.0) {
            w.done = true;
        }
        self.check_gathering_complete();
    }

    /// Adds a relayed candidate (relayed address on the TURN server, `mapped` being our
    /// reflexive address as seen by the server). Transmits for it have `relayed: true`.
    pub fn add_relay_candidate(
        &mut self,
        component: u16,
        relayed: SocketAddr,
        mapped: SocketAddr,
    ) -> Option<Candidate> {
        if self.comp(component).is_none() || self.locals.len() >= MAX_CANDIDATES {
            return None;
        }
        if self
            .locals
            .iter()
            .any(|l| l.cand.base == relayed && l.cand.component == component)
        {
            return None;
        }
        let foundation = self.foundation(CandidateType::Relay, mapped.ip(), Some(relayed.ip()));
        let local_pref = 65535;
        let cand = Candidate {
            kind: CandidateType::Relay,
            component,
            addr: relayed,
            base: relayed,
            priority: priority(CandidateType::Relay, local_pref, component),
            foundation,
            related: Some(mapped),
        };
        self.locals.push(LocalCand {
            cand: cand.clone(),
            local_pref,
        });
        let idx = self.locals.len() - 1;
        self.events.push_back(Event::LocalCandidate(cand.clone()));
        self.pair_local(idx);
        Some(cand)
    }

    fn check_gathering_complete(&mut self) {
        if self.gathering != GatheringState::Gathering {
            return;
        }
        if self.gathers.iter().all(|g| g.done) && self.relays.iter().all(|r| r.done) {
            self.gathering = GatheringState::Complete;
            self.events.push_back(Event::GatheringComplete);
        }
    }

    // ----- remote side -----------------------------------------------------------

    /// Sets the peer's ufrag and password. New values after earlier ones mean the peer
    /// restarted ICE: its old candidates and our checks are dropped (the selected pair
    /// keeps carrying data until a new one is chosen).
    pub fn set_remote_credentials(&mut self, ufrag: &str, pwd: &str) {
        let new = Credentials {
            ufrag: ufrag.into(),
            pwd: pwd.into(),
        };
        if let Some(old) = &self.remote_creds {
            if *old == new {
                return;
            }
            self.clear_checks();
        }
        self.remote_creds = Some(new);
    }

    /// Adds a remote candidate (trickled or from the description).
    pub fn add_remote_candidate(&mut self, cand: Candidate) -> Result<()> {
        if self.comp(cand.component).is_none() {
            return Err(Error::NoSuchComponent(cand.component));
        }
        if let Some(i) = self
            .remotes
            .iter()
            .position(|r| r.addr == cand.addr && r.component == cand.component)
        {
            // Signalled after we learned it as peer-reflexive: take the signalled form.
            // The early check paired it only with the local candidate it arrived on
            // (RFC 8445 §7.3.1.3); signalled, it pairs with every local one like any
            // remote candidate, and the early check's pair keeps its triggered check.
            let component = cand.component;
            let learned = self.remotes.get(i).is_some_and(|r| {
                r.kind == CandidateType::Prflx && cand.kind != CandidateType::Prflx
            });
            if learned {
                if let Some(r) = self.remotes.get_mut(i) {
                    *r = Candidate {
                        base: cand.addr,
                        ..cand
                    };
                }
                self.recompute_priorities();
                self.refoundation_remote(i);
                self.pair_remote(i);
                self.refresh_selected(component);
            }
            return Ok(());
        }
        if self.remotes.len() >= MAX_CANDIDATES {
            return Err(Error::TooMany("remote candidates"));
        }
        self.remotes.push(Candidate {
            base: cand.addr,
            ..cand
        });
        let r = self.remotes.len() - 1;
        self.pair_remote(r);
        Ok(())
    }

    /// Pair foundations follow their remote candidate's (a peer-reflexive one replaced by
    /// its signalled form), so the frozen algorithm groups them with their siblings.
    fn refoundation_remote(&mut self, r: usize) {
        let Some(rf) = self.remotes.get(r).map(|c| c.foundation.clone()) else {
            return;
        };
        for p in self.pairs.iter_mut().filter(|p| p.remote == r) {
            if let Some(l) = self.locals.get(p.local) {
                p.foundation = format!("{}:{}", l.cand.foundation, rf);
            }
        }
    }

    /// Parses and adds an `a=candidate:` line.
    pub fn add_remote_candidate_sdp(&mut self, line: &str) -> Result<()> {
        self.add_remote_candidate(Candidate::from_sdp(line)?)
    }

    /// The peer signalled end-of-candidates (RFC 8838 §8.2): once every check has run
    /// out, the agent may declare failure.
    pub fn end_of_remote_candidates(&mut self) {
        self.remote_eoc = true;
    }

    // ----- pairing -----------------------------------------------------------------

    fn pair_local(&mut self, l: usize) {
        for r in 0..self.remotes.len() {
            self.make_pair(l, r);
        }
        self.unfreeze_initial();
    }

    fn pair_remote(&mut self, r: usize) {
        for l in 0..self.locals.len() {
            self.make_pair(l, r);
        }
        self.unfreeze_initial();
    }

    fn compatible(a: SocketAddr, b: SocketAddr) -> bool {
        match (a.ip(), b.ip()) {
            (IpAddr::V4(x), IpAddr::V4(y)) => x.is_loopback() == y.is_loopback(),
            (IpAddr::V6(x), IpAddr::V6(y)) => {
                let ll = |v: std::net::Ipv6Addr| (v.segments()[0] & 0xffc0) == 0xfe80;
                ll(x) == ll(y) && x.is_loopback() == y.is_loopback()
            }
            _ => false,
        }
    }

    fn compute_pair_priority(&self, l: &Candidate, r: &Candidate) -> u64 {
        match self.role {
            Role::Controlling => pair_priority(l.priority, r.priority),
            Role::Controlled => pair_priority(r.priority, l.priority),
        }
    }

    fn make_pair(&mut self, l: usize, r: usize) -> Option<usize> {
        let lc = self.locals.get(l)?.cand.clone();
        let rc = self.remotes.get(r)?.clone();
        if lc.component != rc.component
            || !matches!(lc.kind, CandidateType::Host | CandidateType::Relay)
        {
            return None;
        }
        if !Self::compatible(lc.base, rc.addr) {
            return None;
        }
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.local == l && p.remote == r)
        {
            return Some(i);
        }
        if self.pairs.len() >= self.cfg.max_pairs {
            return None;
        }
        let priority = self.compute_pair_priority(&lc, &rc);
        self.pairs.push(Pair {
            local: l,
            remote: r,
            component: lc.component,
            priority,
            foundation: format!("{}:{}", lc.foundation, rc.foundation),
            state: PairState::Frozen,
            valid_local: None,
            nominated: false,
            nominate_on_success: false,
            nominating: false,
            tx: None,
            old_tids: Vec::new(),
            in_triggered_queue: false,
        });
        Some(self.pairs.len() - 1)
    }

    /// RFC 8445 §6.1.2.6 initial states, re-applied whenever pairs are added (trickle):
    /// per foundation with nothing active yet, the best pair (lowest component first)
    /// becomes Waiting.
    fn unfreeze_initial(&mut self) {
        let mut order: Vec<(u16, std::cmp::Reverse<u64>, usize)> = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.component, std::cmp::Reverse(p.priority), i))
            .collect();
        order.sort_unstable();
        for (_, _, i) in order {
            let Some(p) = self.pairs.get(i) else { continue };
            if p.state != PairState::Frozen {
                continue;
            }
            let f = p.foundation.clone();
            let active = self.pairs.iter().any(|q| {
                q.foundation == f
                    && matches!(
                        q.state,
                        PairState::Waiting | PairState::InProgress | PairState::Succeeded
                    )
            });
            let succeeded = self
                .pairs
                .iter()
                .any(|q| q.foundation == f && q.state == PairState::Succeeded);
            if !active || succeeded {
                if let Some(p) = self.pairs.get_mut(i) {
                    p.state = PairState::Waiting;
                }
            }
        }
    }

    fn recompute_priorities(&mut self) {
        for i in 0..self.pairs.len() {
            let (l, r) = match self.pairs.get(i) {
                Some(p) => (p.local, p.remote),
                None => continue,
            };
            let (Some(lc), Some(rc)) = (self.locals.get(l), self.remotes.get(r)) else {
                continue;
            };
            let pr = self.compute_pair_priority(&lc.cand, rc);
            if let Some(p) = self.pairs.get_mut(i) {
                p.priority = pr;
            }
        }
    }

    fn clear_checks(&mut self) {
        self.remotes.clear();
        self.pairs.clear();
        self.triggered.clear();
        self.remote_eoc = false;
        self.checking_since = None;
        for c in &mut self.comps {
            c.nominated = None;
            c.first_valid = None;
            c.consent_tids.clear();
            if let Some(s) = &mut c.selected {
                s.pair = None;
                s.nominated = false;
            }
        }
    }

    /// ICE restart (RFC 8445 §9): new local credentials, check list and remote
    /// candidates dropped; the current selected pair keeps carrying data until a new
    /// one is selected. Local candidates are re-announced as events, followed by
    /// `GatheringComplete` when gathering had finished.
    pub fn restart(&mut self, now: Instant) {
        self.last_now = Some(now);
        self.local_creds = Credentials::random(&mut self.rng);
        self.remote_creds = None;
        let failed = self.state == IceState::Failed;
        self.clear_checks();
        for c in &mut self.comps {
            if failed {
                // consent was lost: the old pair must not carry data any more
                c.selected = None;
            } else if c.selected.is_some() {
                // give the old pair a fresh consent window while the restart runs
                c.consent_last = Some(now);
            }
        }
        self.locals.retain(|l| l.cand.kind != CandidateType::Prflx);
        for l in &self.locals {
            self.events.push_back(Event::LocalCandidate(l.cand.clone()));
        }
        if self.gathering == GatheringState::Complete {
            self.events.push_back(Event::GatheringComplete);
        }
        if matches!(
            self.state,
            IceState::Failed | IceState::Disconnected | IceState::New
        ) {
            self.set_state(IceState::Checking);
        }
    }

    /// Latest round-trip time measured by a connectivity or consent check on `component`
    /// (checks answered on their first transmission only).
    pub fn rtt(&self, component: u16) -> Option<Duration> {
        self.comp(component).and_then(|c| c.rtt)
    }

    /// Stops everything; [`Agent::poll_timeout`] returns `None` afterwards.
    pub fn close(&mut self) {
        self.set_state(IceState::Closed);
        self.transmits.clear();
    }

    // ----- I/O ---------------------------------------------------------------------

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn is_relay_base(&self, addr: SocketAddr) -> bool {
        self.locals
            .iter()
            .any(|l| l.cand.base == addr && l.cand.kind == CandidateType::Relay)
    }

    fn push_transmit(&mut self, source: SocketAddr, destination: SocketAddr, data: Vec<u8>) {
        if data.is_empty() || self.state == IceState::Closed {
            return;
        }
        let relayed = self.is_relay_base(source);
        self.transmits.push_back(Transmit {
            source,
            destination,
            relayed,
            data,
        });
    }

    /// Application data for `component` over the selected pair.
    pub fn send(&mut self, now: Instant, component: u16, data: &[u8]) -> Result<Transmit> {
        if matches!(self.state, IceState::Failed | IceState::Closed) {
            return Err(Error::NotConnected(component));
        }
        let relay_of = |a: SocketAddr| self.is_relay_base(a);
        let c = self
            .comp(component)
            .ok_or(Error::NoSuchComponent(component))?;
        let s = c.selected.as_ref().ok_or(Error::NotConnected(component))?;
        let t = Transmit {
            source: s.local.base,
            destination: s.remote.addr,
            relayed: relay_of(s.local.base),
            data: data.to_vec(),
        };
        if let Some(c) = self.comp_mut(component) {
            c.last_sent = Some(now);
        }
        Ok(t)
    }

    /// Which component a non-STUN datagram from `remote` on `local` belongs to.
    pub fn component_for(&self, local: SocketAddr, remote: SocketAddr) -> Option<u16> {
        self.locals
            .iter()
            .filter(|l| l.cand.base == local)
            .map(|l| l.cand.component)
            .find(|&c| {
                self.remotes
                    .iter()
                    .any(|r| r.component == c && r.addr == remote)
            })
            .or_else(|| {
                self.locals
                    .iter()
                    .find(|l| l.cand.base == local)
                    .map(|l| l.cand.component)
            })
    }

    /// Feeds a datagram received on `local` (a host socket, or a relayed address when it
    /// came through TURN) from `remote`. Returns `true` if ICE consumed it (a STUN
    /// Binding message for us); `false` means application data or another protocol.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        self.last_now = Some(now);
        if self.state == IceState::Closed {
            return false;
        }
        let Some(msg) = stun_msg::parse(bytes) else {
            return false;
        };
        if msg.method() != Method::BINDING {
            return false;
        }
        if !stun_msg::fingerprint_ok(&msg) {
            return true;
        }
        match msg.class() {
            Class::Request => {
                self.handle_request(now, local, remote, &msg);
                true
            }
            Class::Indication => true,
            Class::Success | Class::Error => self.handle_response(now, local, remote, &msg),
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) {
        let tid = msg.transaction_id();
        let Some(li) = self.locals.iter().position(|l| {
            l.cand.base == local
                && matches!(l.cand.kind, CandidateType::Host | CandidateType::Relay)
        }) else {
            return;
        };
        let key = self.local_creds.pwd.clone();
        let unknown = natter_stun::unknown_comprehension_required(msg, stun_msg::KNOWN_CHECK_ATTRS);
        if !unknown.is_empty() {
            let resp = stun_msg::check_error_unknown(
                tid,
                420,
                "Unknown Attribute",
                None,
                unknown.as_slice(),
            );
            self.push_transmit(local, remote, resp);
            return;
        }
        let username = match msg.username() {
            Ok(Some(u)) => u,
            _ => {
                let resp = stun_msg::check_error(tid, 400, "Bad Request", None);
                self.push_transmit(local, remote, resp);
                return;
            }
        };
        let ours = username.split(':').next().unwrap_or("");
        if ours != self.local_creds.ufrag {
            let resp = stun_msg::check_error(tid, 401, "Unauthorized", None);
            self.push_transmit(local, remote, resp);
            return;
        }
        if msg.verify_integrity(key.as_bytes()).is_err() {
            let resp = stun_msg::check_error(tid, 401, "Unauthorized", None);
            self.push_transmit(local, remote, resp);
            return;
        }
        // Role conflict (RFC 8445 §7.3.1.1).
        if let (Role::Controlling, Ok(Some(tb))) = (self.role, msg.ice_controlling()) {
            if self.tie_breaker >= tb {
                let resp = stun_msg::check_error(tid, 487, "Role Conflict", Some(key.as_bytes()));
                self.push_transmit(local, remote, resp);
                return;
            }
            self.switch_role(Role::Controlled);
        } else if let (Role::Controlled, Ok(Some(tb))) = (self.role, msg.ice_controlled()) {
            if self.tie_breaker >= tb {
                self.switch_role(Role::Controlling);
            } else {
                let resp = stun_msg::check_error(tid, 487, "Role Conflict", Some(key.as_bytes()));
                self.push_transmit(local, remote, resp);
                return;
            }
        }
        let resp = stun_msg::check_success(tid, remote, key.as_bytes());
        self.push_transmit(local, remote, resp);
        if self.state == IceState::New {
            self.set_state(IceState::Checking);
        }
        self.checking_since.get_or_insert(now);

        let component = self.locals.get(li).map(|l| l.cand.component).unwrap_or(1);
        let ri = match self
            .remotes
            .iter()
            .position(|r| r.addr == remote && r.component == component)
        {
            Some(i) => i,
            None => {
                if self.remotes.len() >= MAX_CANDIDATES {
                    return;
                }
                let pr = match msg.priority() {
                    Ok(Some(p)) => p,
                    _ => priority(CandidateType::Prflx, 65535, component),
                };
                self.prflx_counter += 1;
                self.remotes.push(Candidate {
                    kind: CandidateType::Prflx,
                    component,
                    addr: remote,
                    base: remote,
                    priority: pr,
                    foundation: format!("prflx{}", self.prflx_counter),
                    related: None,
                });
                self.remotes.len() - 1
            }
        };
        let Some(pi) = self.make_pair(li, ri) else {
            return;
        };
        let use_candidate = msg.use_candidate();
        if self.cfg.lite {
            if let Some(p) = self.pairs.get_mut(pi) {
                p.state = PairState::Succeeded;
                p.valid_local.get_or_insert(li);
            }
            if let Some(c) = self.comp_mut(component) {
                c.first_valid.get_or_insert(now);
            }
            if use_candidate {
                self.nominate(pi, now);
            }
            self.update_selected(component, now);
            // A lite agent sends no checks; the peer's consent checks on the selected
            // pair are its evidence that the peer is alive.
            if let Some(c) = self.comp_mut(component) {
                if c.selected.as_ref().is_some_and(|s| s.pair == Some(pi)) {
                    c.consent_last = Some(now);
                }
            }
            self.update_state(now);
            return;
        }
        let Some(p) = self.pairs.get_mut(pi) else {
            return;
        };
        match p.state {
            PairState::Succeeded => {}
            PairState::InProgress => {
                if let Some(tx) = p.tx.take() {
                    if p.old_tids.len() < 8 {
                        p.old_tids.push(tx.tid);
                    }
                }
                p.state = PairState::Waiting;
                self.enqueue_triggered(pi);
            }
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                p.state = PairState::Waiting;
                self.enqueue_triggered(pi);
            }
        }
        if use_candidate && self.role == Role::Controlled {
            let valid = self.pairs.get(pi).is_some_and(Pair::valid);
            if valid {
                self.nominate(pi, now);
            } else if let Some(p) = self.pairs.get_mut(pi) {
                p.nominate_on_success = true;
            }
        }
        self.update_state(now);
    }

    fn enqueue_triggered(&mut self, pi: usize) {
        if let Some(p) = self.pairs.get_mut(pi) {
            if !p.in_triggered_queue {
                p.in_triggered_queue = true;
                self.triggered.push_back(pi);
            }
        }
    }

    fn switch_role(&mut self, role: Role) {
        if self.role != role {
            self.role = role;
            self.recompute_priorities();
            self.events.push_back(Event::RoleChanged(role));
        }
    }

    fn handle_response(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) -> bool {
        let tid = msg.transaction_id();
        // server-reflexive gathering
        if let Some(gi) = self.gathers.iter().position(|g| g.tid == tid && !g.done) {
            let Some(g) = self.gathers.get(gi).cloned() else {
                return true;
            };
            if g.server != remote || g.base != local {
                return true;
            }
            if let Some(gm) = self.gathers.get_mut(gi) {
                gm.done = true;
            }
            if msg.class() == Class::Success {
                if let Ok(Some(mapped)) = msg.xor_mapped_address() {
                    self.add_srflx(g.base, g.component, g.local_pref, g.server, mapped);
                }
            }
            self.check_gathering_complete();
            return true;
        }
        let Some(creds) = self.remote_creds.clone() else {
            return true;
        };
        // consent freshness
        if let Some(ci) = self
            .comps
            .iter()
            .position(|c| c.consent_tids.iter().any(|(t, _)| *t == tid))
        {
            if msg.class() == Class::Success && msg.verify_integrity(creds.pwd.as_bytes()).is_ok() {
                if let Some(c) = self.comps.get_mut(ci) {
                    c.consent_last = Some(now);
                    if let Some((_, sent)) = c.consent_tids.iter().find(|(t, _)| *t == tid) {
                        c.rtt = Some(now.saturating_duration_since(*sent));
                    }
                    c.consent_tids.retain(|(t, _)| *t != tid);
                }
                self.update_state(now);
            }
            return true;
        }
        // Binding belongs to ICE: a response to an expired transaction is dropped,
        // not handed to the application as data.
        let Some(pi) = self.pairs.iter().position(|p| p.owns_tid(&tid)) else {
            return true;
        };
        if msg.verify_integrity(creds.pwd.as_bytes()).is_err() {
            return true;
        }
        let Some(p) = self.pairs.get(pi) else {
            return true;
        };
        // A late answer to a superseded transaction counts only while the pair has not
        // succeeded yet (RFC 8445 §7.2.5.4: cancelled checks may still succeed); on a
        // valid pair it must neither fail it nor stand in for a nomination check.
        let current = p.tx.as_ref().is_some_and(|t| t.tid == tid);
        if !current && p.valid() {
            return true;
        }
        let nominating_tx = current && p.tx.as_ref().is_some_and(|t| t.use_candidate);
        let (l, r, component) = (p.local, p.remote, p.component);
        let base = self.locals.get(l).map(|c| c.cand.base);
        let raddr = self.remotes.get(r).map(|c| c.addr);
        if base != Some(local) || raddr != Some(remote) {
            // Non-symmetric (RFC 8445 §7.2.5.2.1).
            self.fail_pair(pi, now);
            return true;
        }
        if msg.class() == Class::Error {
            let code = msg.error_code().ok().flatten().map(|e| e.code);
            if code == Some(487) {
                // RFC 8445 §7.2.5.1: take the role opposite to the one the request
                // claimed (a no-op if an incoming check already switched us).
                // A 487 to a superseded transaction is stale: a newer check, sent with
                // the current role, is already in flight.
                let Some(sent_controlling) = self
                    .pairs
                    .get(pi)
                    .and_then(|p| p.tx.as_ref())
                    .filter(|t| t.tid == tid)
                    .map(|t| t.controlling)
                else {
                    return true;
                };
                self.switch_role(if sent_controlling {
                    Role::Controlled
                } else {
                    Role::Controlling
                });
                if let Some(p) = self.pairs.get_mut(pi) {
                    p.tx = None;
                    p.state = PairState::Waiting;
                }
                self.enqueue_triggered(pi);
            } else {
                self.fail_pair(pi, now);
            }
            return true;
        }
        let Ok(Some(mapped)) = msg.xor_mapped_address() else {
            self.fail_pair(pi, now);
            return true;
        };
        // RTT of a check answered on its first transmission (sent at `next - rto`).
        let first_try_rtt = self
            .pairs
            .get(pi)
            .and_then(|p| p.tx.as_ref())
            .filter(|t| current && t.sends == 1)
            .and_then(|t| t.next.checked_sub(t.rto))
            .map(|sent| now.saturating_duration_since(sent));
        if let (Some(rtt), Some(c)) = (first_try_rtt, self.comp_mut(component)) {
            c.rtt = Some(rtt);
        }
        // The valid pair's local candidate: the one whose address is the mapped one,
        // else a new peer-reflexive candidate (RFC 8445 §7.2.5.3.1).
        let vl = match self
            .locals
            .iter()
            .position(|c| c.cand.addr == mapped && c.cand.component == component)
        {
            Some(i) => i,
            None if self.locals.len() >= MAX_CANDIDATES => l,
            None => {
                let lp = self.locals.get(l).map(|c| c.local_pref).unwrap_or(65535);
                let base_addr = base.unwrap_or(local);
                let foundation = self.foundation(CandidateType::Prflx, base_addr.ip(), None);
                self.locals.push(LocalCand {
                    cand: Candidate {
                        kind: CandidateType::Prflx,
                        component,
                        addr: mapped,
                        base: base_addr,
                        priority: priority(CandidateType::Prflx, lp, component),
                        foundation,
                        related: Some(base_addr),
                    },
                    local_pref: lp,
                });
                self.locals.len() - 1
            }
        };
        let mut nominate = false;
        let mut foundation = String::new();
        if let Some(p) = self.pairs.get_mut(pi) {
            if current {
                p.tx = None;
                p.old_tids.clear();
                p.nominating = false;
            } else {
                p.old_tids.retain(|t| *t != tid);
            }
            p.state = PairState::Succeeded;
            p.valid_local = Some(vl);
            // Aggressive: every check carried USE-CANDIDATE, so any success nominates.
            let aggressive = self.cfg.nomination == Nomination::Aggressive;
            nominate = (self.role == Role::Controlling && (nominating_tx || aggressive))
                || p.nominate_on_success;
            foundation = p.foundation.clone();
        }
        for q in &mut self.pairs {
            if q.foundation == foundation && q.state == PairState::Frozen {
                q.state = PairState::Waiting;
            }
        }
        if let Some(c) = self.comp_mut(component) {
            c.first_valid.get_or_insert(now);
        }
        if nominate {
            self.nominate(pi, now);
        }
        self.update_selected(component, now);
        self.update_state(now);
        true
    }

    fn add_srflx(
        &mut self,
        base: SocketAddr,
        component: u16,
        local_pref: u16,
        server: SocketAddr,
        mapped: SocketAddr,
    ) {
        // Learned earlier as peer-reflexive from a check: it is really our
        // server-reflexive address, so take that form (and signal it).
        if let Some(l) = self.locals.iter().position(|l| {
            l.cand.addr == mapped && l.cand.base == base && l.cand.kind == CandidateType::Prflx
        }) {
            let foundation = self.foundation(CandidateType::Srflx, base.ip(), Some(server.ip()));
            if let Some(lc) = self.locals.get_mut(l) {
                lc.cand.kind = CandidateType::Srflx;
                lc.cand.priority = priority(CandidateType::Srflx, local_pref, component);
                lc.cand.foundation = foundation;
                lc.cand.related = Some(base);
                self.events
                    .push_back(Event::LocalCandidate(lc.cand.clone()));
            }
            for c in 1..=self.cfg.components {
                self.refresh_selected(c);
            }
            return;
        }
        // Redundant when equal to an existing candidate with the same base (no NAT).
        if self
            .locals
            .iter()
            .any(|l| l.cand.addr == mapped && l.cand.base == base)
        {
            return;
        }
        if self.locals.iter().any(|l| {
            l.cand.addr == mapped
                && l.cand.kind == CandidateType::Srflx
                && l.cand.component == component
        }) {
            return;
        }
        if self.locals.len() >= MAX_CANDIDATES {
            return;
        }
        let foundation = self.foundation(CandidateType::Srflx, base.ip(), Some(server.ip()));
        let cand = Candidate {
            kind: CandidateType::Srflx,
            component,
            addr: mapped,
            base,
            priority: priority(CandidateType::Srflx, local_pref, component),
            foundation,
            related: Some(base),
        };
        self.locals.push(LocalCand {
            cand: cand.clone(),
            local_pref,
        });
        self.events.push_back(Event::LocalCandidate(cand));
    }

    fn fail_pair(&mut self, pi: usize, now: Instant) {
        let component = match self.pairs.get_mut(pi) {
            Some(p) => {
                p.tx = None;
                p.nominating = false;
                p.state = PairState::Failed;
                p.component
            }
            None => return,
        };
        if self.comp(component).and_then(|c| c.nominated) == Some(pi) {
            if let Some(c) = self.comp_mut(component) {
                c.nominated = None;
            }
        }
        self.update_selected(component, now);
        self.update_state(now);
    }

    fn nominate(&mut self, pi: usize, now: Instant) {
        let Some(p) = self.pairs.get_mut(pi) else {
            return;
        };
        p.nominated = true;
        p.nominate_on_success = false;
        let (component, prio) = (p.component, p.priority);
        let current = self.comp(component).and_then(|c| c.nominated);
        let better = match current.and_then(|c| self.pairs.get(c)) {
            Some(cur) => prio > cur.priority,
            None => true,
        };
        if better {
            if let Some(c) = self.comp_mut(component) {
                c.nominated = Some(pi);
            }
        }
        // RFC 8445 §8.1.2: stop checking pairs of a component once it is nominated.
        for q in &mut self.pairs {
            if q.component == component && matches!(q.state, PairState::Frozen | PairState::Waiting)
            {
                q.state = PairState::Failed;
            }
        }
        self.update_selected(component, now);
    }

    fn best_valid(&self, component: u16) -> Option<usize> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.component == component && p.valid())
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)
    }

    fn update_selected(&mut self, component: u16, now: Instant) {
        let Some(c) = self.comp(component) else {
            return;
        };
        let choice = c.nominated.or_else(|| self.best_valid(component));
        let Some(pi) = choice else {
            // keep a selection made before a restart; drop one whose pair failed
            if c.selected.as_ref().is_some_and(|s| s.pair.is_some()) {
                if let Some(c) = self.comp_mut(component) {
                    c.selected = None;
                }
            }
            return;
        };
        let Some(p) = self.pairs.get(pi) else { return };
        let (Some(l), Some(r)) = (
            self.locals.get(p.valid_local.unwrap_or(p.local)),
            self.remotes.get(p.remote),
        ) else {
            return;
        };
        let nominated = p.nominated;
        let sel = Selected {
            pair: Some(pi),
            local: l.cand.clone(),
            remote: r.clone(),
            nominated,
        };
        let changed = c.selected.as_ref().map_or(true, |s| {
            s.pair != sel.pair || s.local != sel.local || s.remote != sel.remote
        });
        let first = c.selected.is_none();
        let interval = self.cfg.consent_interval;
        if let Some(c) = self.comp_mut(component) {
            c.selected = Some(sel.clone());
            if first {
                c.consent_last = Some(now);
                c.consent_next = interval.map(|i| now + i);
            }
        }
        if changed {
            self.events.push_back(Event::SelectedPair {
                component,
                local: sel.local,
                remote: sel.remote,
            });
        }
    }

    /// Re-reads the selected pair's candidates after one of them changed form
    /// (peer-reflexive learned to be server-reflexive); reports the new form.
    fn refresh_selected(&mut self, component: u16) {
        let Some(sel) = self.comp(component).and_then(|c| c.selected.clone()) else {
            return;
        };
        let Some(p) = sel.pair.and_then(|i| self.pairs.get(i)) else {
            return;
        };
        let (Some(l), Some(r)) = (
            self.locals.get(p.valid_local.unwrap_or(p.local)),
            self.remotes.get(p.remote),
        ) else {
            return;
        };
        if l.cand != sel.local || *r != sel.remote {
            let (local, remote) = (l.cand.clone(), r.clone());
            if let Some(c) = self.comp_mut(component) {
                if let Some(s) = &mut c.selected {
                    s.local = local.clone();
                    s.remote = remote.clone();
                }
            }
            self.events.push_back(Event::SelectedPair {
                component,
                local,
                remote,
            });
        }
    }

    fn set_state(&mut self, s: IceState) {
        if self.state != s && self.state != IceState::Closed {
            self.state = s;
            self.events.push_back(Event::StateChanged(s));
        }
    }

    fn checks_exhausted(&self, component: u16) -> bool {
        !self.pairs.iter().any(|p| {
            p.component == component
                && matches!(
                    p.state,
                    PairState::Frozen | PairState::Waiting | PairState::InProgress
                )
        }) && !self
            .triggered
            .iter()
            .any(|&i| self.pairs.get(i).is_some_and(|p| p.component == component))
    }

    fn update_state(&mut self, now: Instant) {
        if matches!(self.state, IceState::Closed) {
            return;
        }
        let lost = self.comps.iter().any(|c| {
            c.selected.is_some()
                && c.consent_last
                    .is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.consent_timeout)
        }) && self.cfg.consent_interval.is_some();
        if lost {
            self.set_state(IceState::Failed);
            return;
        }
        if self.state == IceState::Failed {
            return;
        }
        let all_selected = self.comps.iter().all(|c| c.selected.is_some());
        let all_nominated = self
            .comps
            .iter()
            .all(|c| c.selected.as_ref().is_some_and(|s| s.nominated));
        if all_selected {
            let stale = self.cfg.consent_interval.is_some()
                && self.comps.iter().any(|c| {
                    c.consent_last.is_some_and(|t| {
                        now.saturating_duration_since(t) >= self.cfg.disconnected_timeout
                    })
                });
            if stale {
                self.set_state(IceState::Disconnected);
            } else if all_nominated {
                self.set_state(IceState::Completed);
            } else {
                self.set_state(IceState::Connected);
            }
            return;
        }
        // Not connected: fail when nothing is left to try, or after connect_timeout.
        let gathering_done = self.gathering != GatheringState::Gathering;
        let exhausted = (1..=self.cfg.components)
            .filter(|&c| self.comp(c).is_some_and(|x| x.selected.is_none()))
            .all(|c| self.checks_exhausted(c));
        let timed_out = self
            .checking_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.connect_timeout);
        if (self.remote_eoc
            && gathering_done
            && exhausted
            && self.remote_creds.is_some()
            && !self.cfg.lite)
            || timed_out
        {
            self.set_state(IceState::Failed);
        } else if self.state != IceState::New && self.state != IceState::Checking {
            self.set_state(IceState::Checking);
        }
    }

    // ----- timers --------------------------------------------------------------------

    fn can_check(&self) -> bool {
        self.remote_creds.is_some() && !self.cfg.lite && !matches!(self.state, IceState::Closed)
    }

    fn component_done(&self, component: u16) -> bool {
        self.comp(component).is_some_and(|c| c.nominated.is_some())
    }

    fn has_paced_work(&self) -> bool {
        if self.gathers.iter().any(|g| g.next.is_none() && !g.done) {
            return true;
        }
        if !self.can_check() {
            return false;
        }
        !self.triggered.is_empty() || self.next_ordinary().is_some()
    }

    /// When [`Agent::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == IceState::Closed {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        if self.has_paced_work() {
            consider(self.next_pace.or(self.last_now));
        }
        for g in self.gathers.iter().filter(|g| !g.done) {
            consider(g.next.map(|n| n.min(g.deadline)));
        }
        for r in self.relays.iter().filter(|r| !r.done) {
            consider(Some(r.deadline));
        }
        for p in &self.pairs {
            consider(p.tx.as_ref().map(|tx| tx.next));
        }
        if self.role == Role::Controlling
            && self.cfg.nomination == Nomination::Regular
            && !self.cfg.lite
        {
            for (i, c) in self.comps.iter().enumerate() {
                let comp = u16::try_from(i + 1).unwrap_or(1);
                if c.nominated.is_none()
                    && !self
                        .pairs
                        .iter()
                        .any(|p| p.component == comp && p.nominating)
                {
                    consider(self.nomination_plan(comp).map(|(_, t)| t));
                }
            }
        }
        let consent = self.cfg.consent_interval.is_some();
        for c in self.comps.iter().filter(|c| c.selected.is_some()) {
            if consent {
                if self.remote_creds.is_some() && !self.cfg.lite {
                    consider(c.consent_next);
                }
                if let Some(last) = c.consent_last {
                    if self.state != IceState::Disconnected {
                        consider(Some(last + self.cfg.disconnected_timeout));
                    }
                    if self.state != IceState::Failed {
                        consider(Some(last + self.cfg.consent_timeout));
                    }
                }
            } else if !self.cfg.lite {
                consider(Some(
                    c.last_sent
                        .or(c.consent_last)
                        .map_or(self.last_now?, |l| l + self.cfg.keepalive_interval),
                ));
            }
        }
        if let Some(since) = self.checking_since {
            if !matches!(self.state, IceState::Failed)
                && self.comps.iter().any(|c| c.selected.is_none())
            {
                consider(Some(since + self.cfg.connect_timeout));
            }
        }
        t
    }

    /// Runs every timer due at `now`: retransmissions and their timeouts, gathering
    /// deadlines, the paced check (one new transaction per Ta), nomination, consent
    /// and keepalives.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        if self.state == IceState::Closed {
            return;
        }
        self.gather_timers(now);
        self.retransmit_checks(now);
        if self.next_pace.map_or(true, |t| now >= t) {
            if self.send_paced(now) {
                self.next_pace = Some(now + self.cfg.ta);
            } else {
                self.next_pace = None;
            }
        }
        self.regular_nomination(now);
        self.consent_and_keepalive(now);
        self.update_state(now);
    }

    fn gather_timers(&mut self, now: Instant) {
        let mut changed = false;
        let mut out = Vec::new();
        for g in self.gathers.iter_mut().filter(|g| !g.done) {
            if now >= g.deadline {
                g.done = true;
                changed = true;
                continue;
            }
            if let Some(next) = g.next {
                if now >= next {
                    g.rto = (g.rto * 2).min(self.cfg.max_rto);
                    g.next = Some(now + g.rto);
                    out.push((g.base, g.server, g.bytes.clone()));
                }
            }
        }
        for r in self.relays.iter_mut().filter(|r| !r.done) {
            if now >= r.deadline {
                r.done = true;
                changed = true;
            }
        }
        for (s, d, b) in out {
            self.push_transmit(s, d, b);
        }
        if changed {
            self.check_gathering_complete();
        }
    }

    fn retransmit_checks(&mut self, now: Instant) {
        let mut failed = Vec::new();
        let mut out = Vec::new();
        for (i, p) in self.pairs.iter_mut().enumerate() {
            let Some(tx) = &mut p.tx else { continue };
            if now < tx.next {
                continue;
            }
            if tx.sends >= self.cfg.max_check_sends {
                failed.push(i);
                continue;
            }
            tx.sends += 1;
            // doubling up to the cap, or no further when §14.3 started above it
            tx.rto = tx.rto.saturating_mul(2).min(self.cfg.max_rto.max(tx.rto));
            tx.next = now + tx.rto;
            out.push((p.local, p.remote, tx.bytes.clone()));
        }
        for (l, r, b) in out {
            if let (Some(l), Some(r)) = (self.locals.get(l), self.remotes.get(r)) {
                let (s, d) = (l.cand.base, r.addr);
                self.push_transmit(s, d, b);
            }
        }
        for i in failed {
            let valid = self.pairs.get(i).is_some_and(Pair::valid);
            if valid {
                // a nomination check on a valid pair timed out: the path died
                self.fail_pair(i, now);
            } else {
                self.fail_pair(i, now);
            }
        }
    }

    /// One new transaction: a triggered check first, then gathering, then the best
    /// Waiting pair, then unfreezing. Returns whether something was sent.
    ///
    /// Triggered checks go before gathering because each answers a peer that is already
    /// checking (RFC 8445 §7.3.1.4): its check reached us, so the pair very likely works
    /// and our check on it is what connects the call. With trickle ICE the peer's first
    /// checks (and, for the offerer, its description) routinely arrive while our STUN
    /// requests are still being paced out; behind them a triggered check waited one Ta
    /// per pending request (hosts × servers), on both sides. Gathering loses at most a
    /// few Ta, and only while checks are being answered.
    fn send_paced(&mut self, now: Instant) -> bool {
        if self.can_check() {
            while let Some(pi) = self.triggered.pop_front() {
                let Some(p) = self.pairs.get_mut(pi) else {
                    continue;
                };
                p.in_triggered_queue = false;
                let nominating = p.nominating;
                if p.state == PairState::Succeeded && !nominating {
                    continue;
                }
                if p.state == PairState::Failed {
                    continue;
                }
                self.send_check(pi, now);
                return true;
            }
        }
        if let Some(g) = self
            .gathers
            .iter_mut()
            .find(|g| g.next.is_none() && !g.done)
        {
            g.next = Some(now + g.rto);
            let (s, d, b) = (g.base, g.server, g.bytes.clone());
            self.push_transmit(s, d, b);
            return true;
        }
        if !self.can_check() {
            return false;
        }
        if let Some(pi) = self.next_ordinary() {
            self.send_check(pi, now);
            return true;
        }
        false
    }

    /// The ordinary check to send next: the best Waiting pair, else the best Frozen
    /// pair whose foundation has nothing Waiting or In-Progress (RFC 8445 §6.1.4.2).
    /// Components that already have a nominated pair are skipped.
    fn next_ordinary(&self) -> Option<usize> {
        let live = |p: &Pair| !self.component_done(p.component);
        let pick = |state: PairState| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == state && live(p))
                .filter(|(_, p)| {
                    state != PairState::Frozen
                        || !self.pairs.iter().any(|q| {
                            q.foundation == p.foundation
                                && live(q)
                                && matches!(q.state, PairState::Waiting | PairState::InProgress)
                        })
                })
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, _)| i)
        };
        pick(PairState::Waiting).or_else(|| pick(PairState::Frozen))
    }

    /// RFC 8445 §14.3: a check's first retransmission waits `Ta` times the number of
    /// pairs in the Waiting and In-Progress states, so a long check list does not
    /// retransmit faster than its pacing lets new checks out; never less than
    /// `cfg.rto`.
    fn check_rto(&self) -> Duration {
        let active = self
            .pairs
            .iter()
            .filter(|p| matches!(p.state, PairState::Waiting | PairState::InProgress))
            .count();
        let n = u32::try_from(active).unwrap_or(u32::MAX);
        self.cfg.ta.saturating_mul(n).max(self.cfg.rto)
    }

    fn send_check(&mut self, pi: usize, now: Instant) {
        let Some(creds) = self.remote_creds.clone() else {
            return;
        };
        let Some(p) = self.pairs.get(pi) else { return };
        let (l, r, nominating) = (p.local, p.remote, p.nominating);
        let (Some(lc), Some(rc)) = (self.locals.get(l).cloned(), self.remotes.get(r).cloned())
        else {
            return;
        };
        let use_candidate = self.role == Role::Controlling
            && (nominating || self.cfg.nomination == Nomination::Aggressive);
        let tid = self.new_tid();
        let username = format!("{}:{}", creds.ufrag, self.local_creds.ufrag);
        let bytes = stun_msg::check_request(&CheckRequest {
            tid,
            username: &username,
            priority: priority(CandidateType::Prflx, lc.local_pref, lc.cand.component),
            controlling: self.role == Role::Controlling,
            tie_breaker: self.tie_breaker,
            use_candidate,
            key: creds.pwd.as_bytes(),
        });
        let rto = self.check_rto();
        if let Some(p) = self.pairs.get_mut(pi) {
            if let Some(old) = p.tx.take() {
                if p.old_tids.len() < 8 {
                    p.old_tids.push(old.tid);
                }
            }
            if p.state != PairState::Succeeded {
                p.state = PairState::InProgress;
            }
            p.tx = Some(Transaction {
                controlling: self.role == Role::Controlling,
                tid,
                next: now + rto,
                rto,
                sends: 1,
                use_candidate,
                bytes: bytes.clone(),
            });
        }
        if self.state == IceState::New {
            self.set_state(IceState::Checking);
        }
        self.checking_since.get_or_insert(now);
        self.push_transmit(lc.cand.base, rc.addr, bytes);
    }

    fn regular_nomination(&mut self, now: Instant) {
        if self.role != Role::Controlling
            || self.cfg.nomination != Nomination::Regular
            || self.cfg.lite
        {
            return;
        }
        for comp in 1..=self.cfg.components {
            let Some(c) = self.comp(comp) else { continue };
            if c.nominated.is_some()
                || self
                    .pairs
                    .iter()
                    .any(|p| p.component == comp && p.nominating)
            {
                continue;
            }
            let Some((best, deadline)) = self.nomination_plan(comp) else {
                continue;
            };
            if now >= deadline {
                if let Some(p) = self.pairs.get_mut(best) {
                    p.nominating = true;
                }
                // jump the queue: nomination is what the peer is waiting for
                if let Some(p) = self.pairs.get_mut(best) {
                    p.in_triggered_queue = true;
                }
                self.triggered.retain(|&i| i != best);
                self.triggered.push_front(best);
                if self.next_pace.map_or(true, |t| now >= t) && self.send_paced(now) {
                    self.next_pace = Some(now + self.cfg.ta);
                }
            }
        }
    }

    /// The pair regular nomination would pick for `comp` and when: at once if no
    /// higher-priority pair is still being checked, else after the nomination delay
    /// (longer when the best pair is relayed: relays cost money and latency, and under
    /// loss direct checks need retransmissions).
    fn nomination_plan(&self, comp: u16) -> Option<(usize, Instant)> {
        let first = self.comp(comp)?.first_valid?;
        let best = self.best_valid(comp)?;
        let best_prio = self.pairs.get(best).map(|p| p.priority).unwrap_or(0);
        let better_pending = self.pairs.iter().any(|p| {
            p.component == comp
                && p.priority > best_prio
                && matches!(
                    p.state,
                    PairState::Frozen | PairState::Waiting | PairState::InProgress
                )
        });
        if !better_pending {
            return Some((best, first));
        }
        let relayed = self
            .pairs
            .get(best)
            .and_then(|p| self.locals.get(p.local).zip(self.remotes.get(p.remote)))
            .is_some_and(|(l, r)| {
                l.cand.kind == CandidateType::Relay || r.kind == CandidateType::Relay
            });
        let delay = if relayed {
            self.cfg.relay_nomination_delay
        } else {
            self.cfg.nomination_delay
        };
        Some((best, first + delay))
    }

    fn consent_and_keepalive(&mut self, now: Instant) {
        if self.cfg.lite {
            return;
        }
        let Some(creds) = self.remote_creds.clone() else {
            return;
        };
        for comp in 1..=self.cfg.components {
            let Some(c) = self.comp(comp) else { continue };
            let Some(sel) = c.selected.clone() else {
                continue;
            };
            match self.cfg.consent_interval {
                Some(interval) => {
                    if c.consent_next.is_some_and(|t| now >= t) {
                        let tid = self.new_tid();
                        let lp = self
                            .locals
                            .iter()
                            .find(|l| l.cand.base == sel.local.base)
                            .map(|l| l.local_pref)
                            .unwrap_or(65535);
                        let username = format!("{}:{}", creds.ufrag, self.local_creds.ufrag);
                        let bytes = stun_msg::check_request(&CheckRequest {
                            tid,
                            username: &username,
                            priority: priority(CandidateType::Prflx, lp, comp),
                            controlling: self.role == Role::Controlling,
                            tie_breaker: self.tie_breaker,
                            use_candidate: false,
                            key: creds.pwd.as_bytes(),
                        });
                        // RFC 7675 §5.1: randomised interval, 0.8 to 1.2 times the base.
                        let ms = u64::try_from(interval.as_millis()).unwrap_or(5000);
                        let jitter = self.rng.gen_range(ms * 8 / 10..=ms * 12 / 10);
                        if let Some(c) = self.comp_mut(comp) {
                            c.consent_next = Some(now + Duration::from_millis(jitter));
                            c.consent_tids.push_back((tid, now));
                            while c.consent_tids.len() > 8 {
                                c.consent_tids.pop_front();
                            }
                            c.last_sent = Some(now);
                        }
                        self.push_transmit(sel.local.base, sel.remote.addr, bytes);
                    }
                }
                None => {
                    let last = c.last_sent.or(c.consent_last);
                    if last.map_or(true, |l| now >= l + self.cfg.keepalive_interval) {
                        let tid = self.new_tid();
                        if let Some(c) = self.comp_mut(comp) {
                            c.last_sent = Some(now);
                        }
                        self.push_transmit(
                            sel.local.base,
                            sel.remote.addr,
                            stun_msg::binding_indication(tid),
                        );
                    }
                }
            }
        }
    }
}
