//! The transaction layer (RFC 3261 §17 with the RFC 6026 corrections).
//!
//! Four independent state machines ([`InviteClient`], [`NonInviteClient`],
//! [`InviteServer`], [`NonInviteServer`]) take messages, TU requests and the
//! current time, and return [`Action`]s. They never read a clock: every
//! timer is a deadline computed from the `now` passed in, which makes them
//! testable with virtual time. [`TransactionLayer`] keys and drives many of
//! them at once (§17.1.3/§17.2.3 matching, including the RFC 2543 fallback).

mod client;
mod held;
mod idhash;
mod key;
mod layer;
mod server;

use std::time::Duration;

use crate::message::Message;

pub use client::{
    build_ack, InviteClient, InviteClientState, NonInviteClient, NonInviteClientState,
};
pub use key::TransactionKey;
pub use layer::{Event, TransactionLayer, TxId};
pub use server::{InviteServer, InviteServerState, NonInviteServer, NonInviteServerState};

/// T1, T2, T4 (§17.1.1.1, Table 4). All other timers derive from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: timers B, F, H, J (unreliable), L, M.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: at least 32 s on unreliable transports, 0 on reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1x64().max(Duration::from_secs(32))
        }
    }
}

/// What a state machine asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Transmit these bytes to the transaction's peer.
    Send(Vec<u8>),
    /// Pass this message to the transaction user (responses on client
    /// transactions; the ACK of a 2xx on an INVITE server in Accepted state).
    Deliver(Message<'static>),
    /// Timer B, F or H fired: the peer did not answer.
    Timeout,
    /// The transport reported a failure for this transaction.
    TransportError,
    /// The transaction is finished and can be dropped.
    Terminated,
}

/// Earliest of several optional deadlines.
pub(crate) fn earliest(ts: &[Option<std::time::Instant>]) -> Option<std::time::Instant> {
    ts.iter().flatten().min().copied()
}
