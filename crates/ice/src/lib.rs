//! A sans-IO ICE agent (RFC 8445) for Natter: full and lite modes, host / server-reflexive
//! / relayed / peer-reflexive candidates, the frozen/waiting check list with Ta pacing,
//! triggered checks, role conflict repair, regular nomination (and acceptance of
//! aggressive nomination), keepalives, consent freshness (RFC 7675), ICE restart and
//! trickle ICE (RFC 8838).
//!
//! The agent owns no sockets and reads no clock. The application:
//!
//! 1. binds one UDP socket per usable interface and component and registers each with
//!    [`Agent::add_host_candidate`] (the [`InterfaceFilter`] in the config decides which
//!    are used), then calls [`Agent::gather`] to start server-reflexive gathering;
//! 2. signals [`Event::LocalCandidate`]s and, on [`Event::GatheringComplete`],
//!    end-of-candidates; feeds the peer's with [`Agent::set_remote_credentials`],
//!    [`Agent::add_remote_candidate`] and [`Agent::end_of_remote_candidates`];
//! 3. runs the loop: send every [`Agent::poll_transmit`], pass every datagram to
//!    [`Agent::handle_receive`] (which returns `false` for non-STUN data, meant for the
//!    application), sleep until [`Agent::poll_timeout`] and call
//!    [`Agent::handle_timeout`]; drain [`Agent::poll_event`].
//!
//! Relayed candidates come from a TURN client outside the agent: the application
//! allocates, then calls [`Agent::add_relay_candidate`] with the relayed address. The
//! agent then emits [`Transmit`]s whose `source` is that relayed address (`relayed:
//! true`): send them through the allocation to `destination`. Data the allocation
//! receives from a peer is passed to [`Agent::handle_receive`] with the relayed address
//! as `local`. Permissions, refreshes and channels stay with the TURN client.

mod agent;
mod candidate;
mod checklist;
mod config;
mod error;
mod signal;
mod stun_msg;

pub use agent::{Agent, Event, GatheringState, IceState, RelayToken, Role, Transmit};
pub use candidate::{Candidate, CandidateType, Credentials};
pub use checklist::{PairInfo, PairState};
pub use config::{AgentConfig, InterfaceFilter, Nomination};
pub use error::{Error, Result};
pub use signal::{IceLine, RemoteLines};
