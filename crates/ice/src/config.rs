//! Agent configuration and the interface filter.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How the controlling agent nominates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nomination {
    /// RFC 8445 regular nomination: check first, then repeat the check on the chosen
    /// valid pair with USE-CANDIDATE.
    #[default]
    Regular,
    /// RFC 5245 aggressive nomination (USE-CANDIDATE on every check); for interop tests
    /// with old peers. As controlled, aggressive nomination is always accepted.
    Aggressive,
}

/// Which interfaces yield host candidates. Names are matched by prefix; an empty
/// `allow` list allows everything not denied. The default denies the usual container,
/// bridge and VPN interfaces, whose addresses only add pairs that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceFilter {
    /// Interface name prefixes to use (empty: all).
    pub allow: Vec<String>,
    /// Interface name prefixes never to use.
    pub deny: Vec<String>,
    /// Use loopback addresses (off by default except for tests and `--bind 127.0.0.1`).
    pub loopback: bool,
    /// Use IPv6 link-local addresses.
    pub link_local: bool,
    /// Use IPv6 at all.
    pub ipv6: bool,
}

impl Default for InterfaceFilter {
    fn default() -> Self {
        InterfaceFilter {
            allow: Vec::new(),
            deny: [
                "docker",
                "br-",
                "veth",
                "virbr",
                "tun",
                "tap",
                "wg",
                "utun",
                "zt",
                "tailscale",
                "lxc",
                "cni",
                "flannel",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            loopback: false,
            link_local: false,
            ipv6: true,
        }
    }
}

impl InterfaceFilter {
    /// A filter that allows everything (tests, explicit `--bind`).
    pub fn allow_all() -> Self {
        InterfaceFilter {
            allow: Vec::new(),
            deny: Vec::new(),
            loopback: true,
            link_local: true,
            ipv6: true,
        }
    }

    /// Whether an address on interface `name` should become a host candidate.
    pub fn allows(&self, name: &str, ip: IpAddr) -> bool {
        if ip.is_unspecified() || ip.is_multicast() {
            return false;
        }
        if ip.is_loopback() && !self.loopback {
            return false;
        }
        if let IpAddr::V6(v6) = ip {
            if !self.ipv6 {
                return false;
            }
            if (v6.segments()[0] & 0xffc0) == 0xfe80 && !self.link_local {
                return false;
            }
        }
        if self.deny.iter().any(|d| name.starts_with(d.as_str())) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|a| name.starts_with(a.as_str()))
    }
}

/// Agent settings. Defaults follow RFC 8445/7675 where they give numbers and are tuned
/// for fast connection otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Start as controlling (the offerer, normally).
    pub controlling: bool,
    /// ICE-lite: host candidates only, no checks of our own, always controlled.
    pub lite: bool,
    /// Number of components (1 with rtcp-mux).
    pub components: u16,
    /// STUN servers for server-reflexive candidates.
    pub stun_servers: Vec<SocketAddr>,
    /// Per-server (and per-relay) gathering timeout: a dead server costs at most this.
    pub gather_timeout: Duration,
    /// Pacing interval Ta between new transactions.
    pub ta: Duration,
    /// Initial retransmission timeout for gathering requests, and the floor of a check's
    /// (RFC 8445 §14.3: `max(floor, Ta × (Waiting + In-Progress pairs))`). The RFC's floor
    /// is 500 ms; the default 250 ms recovers a lost first check twice as fast, which is
    /// what decides time-to-connect under loss, and still stays above any RTT a
    /// real-time call can live with.
    pub rto: Duration,
    /// Cap on the doubling retransmission timeout.
    pub max_rto: Duration,
    /// Sends per connectivity check before it fails.
    pub max_check_sends: u32,
    /// Nomination mode when controlling.
    pub nomination: Nomination,
    /// How long the controlling agent waits after the first valid pair for better
    /// pairs to finish before nominating the best one.
    pub nomination_delay: Duration,
    /// Same, when the best valid pair is relayed and direct pairs are still pending.
    pub relay_nomination_delay: Duration,
    /// Interface filter for host candidates.
    pub interfaces: InterfaceFilter,
    /// Maximum pairs in the check list (RFC 8445 §6.1.2.5 limit).
    pub max_pairs: usize,
    /// Keepalive interval Tr (RFC 8445 §11) when nothing else was sent.
    pub keepalive_interval: Duration,
    /// Consent freshness checks (RFC 7675); `None` disables them.
    pub consent_interval: Option<Duration>,
    /// Consent is lost after this long without a response (RFC 7675: 30 s).
    pub consent_timeout: Duration,
    /// The state becomes Disconnected after this long without a consent response.
    pub disconnected_timeout: Duration,
    /// Give up when no pair works this long after checks start, even without
    /// end-of-candidates from the peer.
    pub connect_timeout: Duration,
    /// Seed for ufrag/pwd, tie-breaker and transaction ids; `None` uses OS randomness.
    pub seed: Option<u64>,
    /// Fixed tie-breaker. Set the same value on the agents of one session when it has
    /// several data streams (one agent per m-line), so a role conflict resolves the
    /// same way for all of them (RFC 8445 §6.1.1: one tie-breaker per session).
    pub tie_breaker: Option<u64>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            controlling: true,
            lite: false,
            components: 1,
            stun_servers: Vec::new(),
            gather_timeout: Duration::from_secs(3),
            ta: Duration::from_millis(20),
            rto: Duration::from_millis(250),
            max_rto: Duration::from_millis(1600),
            max_check_sends: 7,
            nomination: Nomination::Regular,
            nomination_delay: Duration::from_millis(100),
            relay_nomination_delay: Duration::from_secs(2),
            interfaces: InterfaceFilter::default(),
            max_pairs: 100,
            keepalive_interval: Duration::from_secs(15),
            consent_interval: Some(Duration::from_secs(5)),
            consent_timeout: Duration::from_secs(30),
            disconnected_timeout: Duration::from_secs(12),
            connect_timeout: Duration::from_secs(30),
            seed: None,
            tie_breaker: None,
        }
    }
}
