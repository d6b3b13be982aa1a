//! A STUN client transaction (RFC 8489 section 6.2), sans-IO.
//!
//! ```text
//!   new(now) ──► Waiting ──handle_response (matching tid)──► Succeeded | Failed(error class)
//!                  │   ▲
//!  handle_timeout  │   │ retransmit while sends < Rc (unreliable transports only)
//!                  ▼   │
//!                  └───┘──last wait (Rm × RTO, or Ti) expires──► TimedOut
//! ```
//!
//! Over UDP the request is sent at 0, RTO, 3 RTO, 7 RTO, ... (the interval
//! doubles) for Rc sends, then the client waits Rm × RTO after the last send.
//! With the defaults RTO = 500 ms, Rc = 7, Rm = 16 that is sends at 0, 0.5,
//! 1.5, 3.5, 7.5, 15.5, 31.5 s and failure at 39.5 s. Over TCP/TLS there is a
//! single send and failure after Ti = 39.5 s.

use std::time::{Duration, Instant};

use crate::message::{peek_header, Message, TransactionId};

/// RFC 8489 default initial RTO.
pub const DEFAULT_RTO: Duration = Duration::from_millis(500);
/// RFC 8489 default Rc (total sends over an unreliable transport).
pub const DEFAULT_RC: u32 = 7;
/// RFC 8489 default Rm (final wait, in multiples of the initial RTO).
pub const DEFAULT_RM: u32 = 16;
/// RFC 8489 Ti: how long a reliable-transport transaction waits.
pub const RELIABLE_TIMEOUT: Duration = Duration::from_millis(39_500);

/// Longest single wait the schedule uses, whatever the configuration.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum TransactionState {
    /// Waiting for a response; more sends or the final wait remain.
    Waiting,
    /// A success response arrived.
    Succeeded,
    /// An error response arrived (the caller reads ERROR-CODE from it).
    Failed,
    /// No response before the final deadline.
    TimedOut,
}

/// One request's retransmission schedule.
///
/// Drive it like every Natter core: after creating it or calling a
/// `handle_*` method, drain [`ClientTransaction::poll_transmit`], then sleep
/// until [`ClientTransaction::poll_timeout`] and call
/// [`ClientTransaction::handle_timeout`].
///
/// ```
/// # #![allow(clippy::disallowed_methods)]
/// use std::time::Instant;
/// use natter_stun::{Class, ClientTransaction, MessageWriter, Method, TransactionId, TransactionState};
///
/// let mut request = Vec::new();
/// MessageWriter::new(&mut request, Method::BINDING, Class::Request, TransactionId([1; 12]))
///     .finish()
///     .unwrap();
/// let start = Instant::now(); // a driver's clock; the core only sees the values
/// let mut txn = ClientTransaction::with_defaults(start, request, false);
/// let mut sends = 0;
/// while !txn.is_done() {
///     while let Some(_datagram) = txn.poll_transmit() {
///         sends += 1; // socket.send_to(datagram, server)
///     }
///     // A driver would also feed received datagrams to `handle_response`.
///     if let Some(deadline) = txn.poll_timeout() {
///         txn.handle_timeout(deadline); // after sleeping until `deadline`
///     }
/// }
/// assert_eq!((sends, txn.state()), (7, TransactionState::TimedOut));
/// ```
#[derive(Clone, Debug)]
pub struct ClientTransaction {
    request: Vec<u8>,
    tid: TransactionId,
    reliable: bool,
    rc: u32,
    rm: u32,
    initial_rto: Duration,
    next_interval: Duration,
    sends: u32,
    transmit_pending: bool,
    first_sent: Instant,
    deadline: Instant,
    state: TransactionState,
    rtt: Option<Duration>,
}

impl ClientTransaction {
    /// Starts a transaction for the encoded `request`; the first send is due
    /// at once (`poll_transmit` returns it). `rto` is the initial
    /// retransmission timeout, `rc` the total number of sends (at least 1),
    /// `rm` the final wait in multiples of `rto`. `reliable` selects the
    /// TCP/TLS behaviour (one send, Ti timeout).
    pub fn new(
        now: Instant,
        request: impl Into<Vec<u8>>,
        rto: Duration,
        rc: u32,
        rm: u32,
        reliable: bool,
    ) -> Self {
        let request = request.into();
        let tid = peek_header(&request)
            .map(|h| h.transaction_id)
            .unwrap_or_default();
        let mut t = Self {
            request,
            tid,
            reliable,
            rc: rc.max(1),
            rm,
            initial_rto: rto,
            next_interval: rto,
            sends: 0,
            transmit_pending: false,
            first_sent: now,
            deadline: now,
            state: TransactionState::Waiting,
            rtt: None,
        };
        t.send(now);
        t
    }

    /// A transaction with the RFC 8489 defaults (RTO 500 ms, Rc 7, Rm 16).
    pub fn with_defaults(now: Instant, request: impl Into<Vec<u8>>, reliable: bool) -> Self {
        Self::new(now, request, DEFAULT_RTO, DEFAULT_RC, DEFAULT_RM, reliable)
    }

    fn send(&mut self, now: Instant) {
        self.sends += 1;
        self.transmit_pending = true;
        let last = self.reliable || self.sends >= self.rc;
        let wait = if self.reliable {
            RELIABLE_TIMEOUT
        } else if last {
            self.initial_rto.saturating_mul(self.rm)
        } else {
            let d = self.next_interval;
            self.next_interval = self.next_interval.saturating_mul(2);
            d
        };
        // Absurd configurations (huge RTO or Rc) must not overflow `Instant`.
        self.deadline = now + wait.min(MAX_WAIT);
    }

    /// The request bytes when a (re)transmission is due.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        if self.transmit_pending && self.state == TransactionState::Waiting {
            self.transmit_pending = false;
            Some(&self.request)
        } else {
            None
        }
    }

    /// Whether [`ClientTransaction::poll_transmit`] would return the request.
    pub fn has_pending_transmit(&self) -> bool {
        self.transmit_pending && self.state == TransactionState::Waiting
    }

    /// When [`ClientTransaction::handle_timeout`] must next be called; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state == TransactionState::Waiting).then_some(self.deadline)
    }

    /// Advances time: retransmits or times out when the deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != TransactionState::Waiting || now < self.deadline {
            return;
        }
        if self.reliable || self.sends >= self.rc {
            self.state = TransactionState::TimedOut;
            self.transmit_pending = false;
        } else {
            self.send(now);
        }
    }

    /// Offers a parsed message; returns `true` when it answers this
    /// transaction (same transaction ID, same method, response class) and
    /// was consumed. Later duplicates return `false`.
    pub fn handle_response(&mut self, now: Instant, response: &Message<'_>) -> bool {
        if self.state != TransactionState::Waiting
            || response.transaction_id() != self.tid
            || !response.class().is_response()
        {
            return false;
        }
        if let Ok(h) = peek_header(&self.request) {
            if h.method != response.method() {
                return false;
            }
        }
        self.state = match response.class() {
            crate::Class::Success => TransactionState::Succeeded,
            _ => TransactionState::Failed,
        };
        self.transmit_pending = false;
        // Karn's rule: an RTT sample is only unambiguous without retransmissions.
        if self.sends == 1 {
            self.rtt = Some(now.saturating_duration_since(self.first_sent));
        }
        true
    }

    /// Current state.
    pub fn state(&self) -> TransactionState {
        self.state
    }

    /// Whether the transaction has ended (any way).
    pub fn is_done(&self) -> bool {
        self.state != TransactionState::Waiting
    }

    /// The transaction ID read from the request.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// How many times the request has been handed out for sending.
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// Round-trip time, when the response answered the only send.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The request bytes.
    pub fn request(&self) -> &[u8] {
        &self.request
    }
}

/// Smoothed RTO from measured round trips (RFC 6298 section 2, which RFC
/// 8489 section 6.2.1 points to). Feed it [`ClientTransaction::rtt`] samples
/// (already filtered by Karn's rule) and start new transactions towards the
/// same server with [`RtoEstimator::rto`]; RFC 8489 suggests remembering the
/// value for 10 minutes.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct RtoEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rto: Duration,
    max_rto: Duration,
}

impl RtoEstimator {
    /// An estimator with RTO bounds; before any sample `rto()` is [`DEFAULT_RTO`]
    /// clamped to them.
    pub fn new(min_rto: Duration, max_rto: Duration) -> Self {
        Self {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rto,
            max_rto: max_rto.max(min_rto),
        }
    }

    /// Takes one RTT sample.
    pub fn update(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = if srtt > rtt { srtt - rtt } else { rtt - srtt };
                // RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|, SRTT = 7/8 SRTT + 1/8 R'.
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// The smoothed RTT, once sampled.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTO = SRTT + 4 RTTVAR, clamped to the bounds.
    pub fn rto(&self) -> Duration {
        let raw = match self.srtt {
            None => DEFAULT_RTO,
            Some(srtt) => srtt.saturating_add(self.rttvar.saturating_mul(4)),
        };
        raw.clamp(self.min_rto, self.max_rto)
    }
}

impl Default for RtoEstimator {
    /// Bounds of 500 ms (RFC 8489's floor for the initial RTO) and 60 s (RFC 6298's ceiling).
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rto_follows_rfc6298() {
        let mut e = RtoEstimator::new(Duration::from_millis(10), Duration::from_secs(60));
        assert_eq!(e.rto(), DEFAULT_RTO);
        e.update(Duration::from_millis(100));
        // SRTT 100, RTTVAR 50: RTO 300.
        assert_eq!(e.rto(), Duration::from_millis(300));
        e.update(Duration::from_millis(200));
        // RTTVAR = (150 + 100) / 4 = 62.5, SRTT = (700 + 200) / 8 = 112.5: RTO 362.5.
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(362_500));
        let floor = RtoEstimator::default();
        let mut f = floor;
        f.update(Duration::from_millis(1));
        assert_eq!(f.rto(), Duration::from_millis(500));
    }
}
