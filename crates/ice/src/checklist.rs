//! Candidate pairs and their check state (RFC 8445 §6.1.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_stun::TransactionId;

use crate::candidate::CandidateType;

/// State of a pair in the check list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairState {
    /// Waits for a pair of the same foundation to succeed.
    Frozen,
    /// Will be checked when its turn comes.
    Waiting,
    /// A check is outstanding.
    InProgress,
    /// A check succeeded: the pair (or the valid pair it produced) works.
    Succeeded,
    /// Checks timed out or were rejected.
    Failed,
}

/// An outstanding Binding request.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub(crate) tid: TransactionId,
    pub(crate) next: Instant,
    pub(crate) rto: Duration,
    pub(crate) sends: u32,
    pub(crate) use_candidate: bool,
    /// Whether the request claimed ICE-CONTROLLING (for 487 handling).
    pub(crate) controlling: bool,
    /// The message, kept for retransmission.
    pub(crate) bytes: Vec<u8>,
}

/// A candidate pair.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    /// Local candidate (always a base: host or relay).
    pub(crate) local: usize,
    pub(crate) remote: usize,
    pub(crate) component: u16,
    pub(crate) priority: u64,
    pub(crate) foundation: String,
    pub(crate) state: PairState,
    /// Local candidate of the valid pair this pair produced (srflx/prflx/host).
    pub(crate) valid_local: Option<usize>,
    pub(crate) nominated: bool,
    /// Controlled side: USE-CANDIDATE seen, nominate as soon as the pair is valid.
    pub(crate) nominate_on_success: bool,
    /// Controlling side: our USE-CANDIDATE check is outstanding.
    pub(crate) nominating: bool,
    pub(crate) tx: Option<Transaction>,
    /// Earlier transactions whose late responses still count (cancelled by triggers).
    pub(crate) old_tids: Vec<TransactionId>,
    pub(crate) in_triggered_queue: bool,
}

impl Pair {
    pub(crate) fn valid(&self) -> bool {
        self.state == PairState::Succeeded
    }

    pub(crate) fn owns_tid(&self, tid: &TransactionId) -> bool {
        self.tx.as_ref().is_some_and(|t| &t.tid == tid) || self.old_tids.contains(tid)
    }
}

/// A read-only view of a pair for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairInfo {
    /// Component.
    pub component: u16,
    /// Local base address.
    pub local: SocketAddr,
    /// Local candidate type of the valid pair (or of the base when not valid).
    pub local_kind: CandidateType,
    /// Remote address.
    pub remote: SocketAddr,
    /// Remote candidate type.
    pub remote_kind: CandidateType,
    /// Pair priority.
    pub priority: u64,
    /// State.
    pub state: PairState,
    /// Nominated.
    pub nominated: bool,
}
