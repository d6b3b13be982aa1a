//! A deterministic simulated network for testing NAT traversal without sockets.
//!
//! Everything runs in virtual time: the caller hands packets to [`Network::send`],
//! asks [`Network::poll_timeout`] when the next thing happens, moves time with
//! [`Network::advance_to`] and collects what arrived with [`Network::poll_delivery`].
//! Randomness (loss, jitter, random NAT ports) comes from one seeded RNG, so a run is
//! reproducible bit for bit.
//!
//! Topology: realm 0 is the public Internet. A [`Nat`](nat::NatConfig) joins an inner
//! realm (a private LAN) to an outer one; hosts and servers live in a realm. Private
//! address ranges may repeat across realms, as they do in real life.

mod link;
mod nat;
mod network;
mod relay;
mod stun_server;

pub use link::LinkConfig;
pub use nat::{FilteringBehavior, MappingBehavior, NatConfig, NatType, PortAllocation};
pub use network::{Delivery, DropReason, HostId, NatId, Network, RealmId, Server, Stats};
pub use relay::{RelayClientCodec, RelayMessage, RelayServer};
pub use stun_server::StunServer;
