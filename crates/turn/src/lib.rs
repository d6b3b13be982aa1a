//! TURN (RFC 8656, compatible with RFC 5766) for Natter: the server core and the client core,
//! both sans-IO.
//!
//! # Server
//!
//! [`server::Server`] holds allocations, permissions and channels. The driver feeds it datagrams
//! from clients ([`server::Server::handle_client`]) and from peers
//! ([`server::Server::handle_peer`]) together with the current time, and it answers with what to
//! send where. Opening relay sockets is the driver's business, reached through the
//! [`server::RelayProvider`] trait, so the core stays free of I/O and tests use a fake provider.
//!
//! The relay path is built not to allocate: a ChannelData payload from a client is returned as a
//! slice of the input, and a peer datagram is turned into ChannelData by writing the 4-byte header
//! into headroom the driver left in front of it.
//!
//! # Client
//!
//! [`client::Client`] runs one allocation: the 401/438 dance, refreshes, permissions and channel
//! bindings on their timers, and wraps/unwraps application data.

pub mod client;
pub mod server;
