//! Natter's drivers: the thin layer that owns sockets, timers and TLS, and feeds the sans-IO
//! protocol cores.
//!
//! Everything that makes the data path fast lives here and not in the cores: batched socket
//! calls ([`batch`]: `recvmmsg`/`sendmmsg`; [`gso`]: UDP GSO runs), `SO_REUSEPORT` sharding of listening sockets over
//! one thread per core ([`socket`]), and TLS ([`tls`]). The TURN server driver ([`turn_server`])
//! composes them.

/// Batched UDP system calls (their own crate, shared with the SIP driver).
pub use natter_udp_batch as batch;
pub mod gso;
pub mod metrics;
pub mod relay_ports;
pub mod socket;
pub mod tls;
pub mod turn_server;
