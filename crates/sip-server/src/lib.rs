//! natter-sip-server: the registrar (RFC 3261 §10, RFC 3327 Path), the
//! stateful proxy (§16) and a redirect mode, as a sans-IO core built on
//! `natter-sip`'s parser, transaction layer and digest authentication.
//!
//! The driver feeds [`SipServer::handle`] with `(now, transport, source,
//! bytes)` and gets back the messages to send plus the next timer deadline.
//! Users and bindings come from the [`Credentials`] and [`BindingStore`]
//! traits so the SQLite store can back them.

mod compact;
pub mod flow;
pub mod keepalive;
pub mod locate;
pub mod peer;
pub mod registrar;
pub mod server;
pub mod store;

pub use keepalive::KeepAlive;
pub use peer::{Peer, Transmit, Transport};
pub use registrar::{RegistrarConfig, RETRY_AFTER_SECS};
pub use server::{
    branch_shard, call_id_shard, Lookup, Mode, Output, ServerConfig, SipServer, Stats,
};
pub use store::{
    Binding, BindingStore, Change, Credentials, MemoryBindings, StaticCredentials, Unavailable,
};
