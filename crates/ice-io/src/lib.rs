//! Socket driver for the natter-ice agent, shared by `natter ice connect` and the phone:
//! host sockets, a TURN allocation for the relayed candidate ([`IceTransport`]), receiver
//! threads feeding one loop ([`spawn_receiver`]), local interface addresses ([`netif`])
//! and `stun:`/`turn:` URIs ([`ServerUri`]).

pub mod netif;
mod server_uri;
mod transport;

pub use server_uri::ServerUri;
pub use transport::{
    spawn_receiver, spawn_receiver_until, Datagram, IceTransport, TransportConfig, TransportEvent,
    TurnServer,
};
