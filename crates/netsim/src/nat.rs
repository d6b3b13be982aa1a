//! NAT behaviour as classified by RFC 4787: mapping, filtering, port allocation,
//! binding lifetime and hairpinning, each configurable on its own.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

/// When a NAT reuses a mapping for a new destination (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingBehavior {
    /// Same external address for every destination (EIM).
    EndpointIndependent,
    /// New mapping per destination IP (ADM).
    AddressDependent,
    /// New mapping per destination IP and port (APDM, "symmetric").
    AddressAndPortDependent,
}

/// Which inbound packets a mapping lets through (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilteringBehavior {
    /// Anyone (EIF, "full cone").
    EndpointIndependent,
    /// Only IPs the inside host has sent to (ADF, "restricted cone").
    AddressDependent,
    /// Only IP:port pairs the inside host has sent to (APDF, "port-restricted").
    AddressAndPortDependent,
}

/// How the external port of a new mapping is chosen (RFC 4787 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortAllocation {
    /// Keep the internal port when free, else fall back to sequential.
    Preserving,
    /// Next free port from a counter starting at 40000.
    Sequential,
    /// Random free port in 1024..=65535 from the network's seeded RNG.
    Random,
}

/// The classic names, for tests and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatType {
    /// No NAT: the host sits on the public Internet.
    Open,
    /// EIM + EIF.
    FullCone,
    /// EIM + ADF.
    RestrictedCone,
    /// EIM + APDF.
    PortRestrictedCone,
    /// APDM + APDF with random ports.
    Symmetric,
}

impl NatType {
    /// All five, in the order used by the matrix tests.
    pub const ALL: [NatType; 5] = [
        NatType::Open,
        NatType::FullCone,
        NatType::RestrictedCone,
        NatType::PortRestrictedCone,
        NatType::Symmetric,
    ];

    /// Configuration for this type; `None` for [`NatType::Open`].
    pub fn config(self) -> Option<NatConfig> {
        let (mapping, filtering, ports) = match self {
            NatType::Open => return None,
            NatType::FullCone => (
                MappingBehavior::EndpointIndependent,
                FilteringBehavior::EndpointIndependent,
                PortAllocation::Preserving,
            ),
            NatType::RestrictedCone => (
                MappingBehavior::EndpointIndependent,
                FilteringBehavior::AddressDependent,
                PortAllocation::Preserving,
            ),
            NatType::PortRestrictedCone => (
                MappingBehavior::EndpointIndependent,
                FilteringBehavior::AddressAndPortDependent,
                PortAllocation::Sequential,
            ),
            NatType::Symmetric => (
                MappingBehavior::AddressAndPortDependent,
                FilteringBehavior::AddressAndPortDependent,
                PortAllocation::Random,
            ),
        };
        Some(NatConfig {
            mapping,
            filtering,
            port_allocation: ports,
            ..NatConfig::default()
        })
    }
}

/// Full NAT configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatConfig {
    /// Mapping behaviour.
    pub mapping: MappingBehavior,
    /// Filtering behaviour.
    pub filtering: FilteringBehavior,
    /// Port allocation.
    pub port_allocation: PortAllocation,
    /// Idle time after which a mapping is removed; refreshed by outbound packets only
    /// (RFC 4787 REQ-6 makes inbound refresh optional, and the stricter choice finds
    /// missing keepalives).
    pub binding_timeout: Duration,
    /// Whether inside hosts can reach each other via the public address (REQ-9).
    pub hairpin: bool,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            mapping: MappingBehavior::EndpointIndependent,
            filtering: FilteringBehavior::EndpointIndependent,
            port_allocation: PortAllocation::Preserving,
            binding_timeout: Duration::from_secs(120),
            hairpin: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Mapping {
    internal: SocketAddr,
    /// Destination the mapping is specific to (ADM keys on IP, APDM on IP and port).
    key_remote: Option<SocketAddr>,
    external_port: u16,
    /// Remote endpoints the inside has sent to through this mapping.
    contacted: Vec<SocketAddr>,
    expires: Instant,
}

/// Translation state of one NAT box.
#[derive(Debug)]
pub(crate) struct NatState {
    pub(crate) config: NatConfig,
    pub(crate) public_ip: IpAddr,
    mappings: Vec<Mapping>,
    next_port: u16,
}

/// Upper bound on mappings per NAT so a runaway test cannot eat memory.
const MAX_MAPPINGS: usize = 16_384;

impl NatState {
    pub(crate) fn new(config: NatConfig, public_ip: IpAddr) -> Self {
        NatState {
            config,
            public_ip,
            mappings: Vec::new(),
            next_port: 40000,
        }
    }

    fn expire(&mut self, now: Instant) {
        self.mappings.retain(|m| m.expires > now);
    }

    fn key_for(&self, remote: SocketAddr) -> Option<SocketAddr> {
        match self.config.mapping {
            MappingBehavior::EndpointIndependent => None,
            MappingBehavior::AddressDependent => Some(SocketAddr::new(remote.ip(), 0)),
            MappingBehavior::AddressAndPortDependent => Some(remote),
        }
    }

    fn port_in_use(&self, port: u16) -> bool {
        self.mappings.iter().any(|m| m.external_port == port)
    }

    fn allocate_port(&mut self, internal: SocketAddr, rng: &mut StdRng) -> Option<u16> {
        if self.config.port_allocation == PortAllocation::Preserving
            && !self.port_in_use(internal.port())
        {
            return Some(internal.port());
        }
        if self.config.port_allocation == PortAllocation::Random {
            for _ in 0..64 {
                let p = rng.gen_range(1024..=65535u16);
                if !self.port_in_use(p) {
                    return Some(p);
                }
            }
        }
        for _ in 0..=u16::MAX {
            let p = self.next_port;
            self.next_port = if self.next_port == u16::MAX {
                1024
            } else {
                self.next_port + 1
            };
            if !self.port_in_use(p) {
                return Some(p);
            }
        }
        None
    }

    /// Translates an outbound packet's source; `None` when the NAT is out of ports.
    pub(crate) fn outbound(
        &mut self,
        now: Instant,
        internal: SocketAddr,
        remote: SocketAddr,
        rng: &mut StdRng,
    ) -> Option<SocketAddr> {
        self.expire(now);
        let key = self.key_for(remote);
        let timeout = self.config.binding_timeout;
        let idx = match self
            .mappings
            .iter()
            .position(|m| m.internal == internal && m.key_remote == key)
        {
            Some(i) => i,
            None => {
                if self.mappings.len() >= MAX_MAPPINGS {
                    return None;
                }
                let port = self.allocate_port(internal, rng)?;
                self.mappings.push(Mapping {
                    internal,
                    key_remote: key,
                    external_port: port,
                    contacted: Vec::new(),
                    expires: now + timeout,
                });
                self.mappings.len() - 1
            }
        };
        let m = self.mappings.get_mut(idx)?;
        m.expires = now + timeout;
        if !m.contacted.contains(&remote) && m.contacted.len() < 256 {
            m.contacted.push(remote);
        }
        Some(SocketAddr::new(self.public_ip, m.external_port))
    }

    /// Translates an inbound packet to the inside; `Err(true)` when a mapping exists but
    /// filtering rejects the source, `Err(false)` when no mapping exists.
    pub(crate) fn inbound(
        &mut self,
        now: Instant,
        external_port: u16,
        remote: SocketAddr,
    ) -> Result<SocketAddr, bool> {
        self.expire(now);
        let filtering = self.config.filtering;
        let mut found = false;
        for m in self
            .mappings
            .iter()
            .filter(|m| m.external_port == external_port)
        {
            found = true;
            let allowed = match filtering {
                FilteringBehavior::EndpointIndependent => true,
                FilteringBehavior::AddressDependent => {
                    m.contacted.iter().any(|c| c.ip() == remote.ip())
                }
                FilteringBehavior::AddressAndPortDependent => m.contacted.contains(&remote),
            };
            if allowed {
                return Ok(m.internal);
            }
        }
        Err(found)
    }

    /// Number of live mappings (for tests).
    pub(crate) fn mapping_count(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.mappings.len()
    }
}
