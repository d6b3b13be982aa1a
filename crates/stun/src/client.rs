//! A table of client transactions towards any number of servers, sans-IO.
//!
//! [`ClientTransaction`] times one request; [`StunClient`] keeps many, routes
//! responses to them by transaction ID and turns expiries into events. This is
//! the shape the TURN client and address gathering want: fire requests,
//! drain transmits, match answers, hear about timeouts.
//!
//! Drive order after any `handle_*` call or [`StunClient::send_request`]:
//! drain [`StunClient::poll_transmit`], drain [`StunClient::poll_event`],
//! then wait until [`StunClient::poll_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{peek_header, Message, TransactionId};
use crate::transaction::{
    ClientTransaction, TransactionState, DEFAULT_RC, DEFAULT_RM, DEFAULT_RTO,
};

/// A datagram a state machine wants sent.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes.
    pub payload: &'a [u8],
}

/// Retransmission parameters for every transaction of a [`StunClient`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct StunClientConfig {
    /// Initial RTO (RFC 8489: 500 ms unless the path is known).
    pub rto: Duration,
    /// Total sends over unreliable transports (Rc).
    pub rc: u32,
    /// Final wait in RTOs (Rm).
    pub rm: u32,
    /// Most transactions in flight; more are refused rather than growing
    /// without bound.
    pub max_in_flight: usize,
}

impl Default for StunClientConfig {
    fn default() -> Self {
        Self {
            rto: DEFAULT_RTO,
            rc: DEFAULT_RC,
            rm: DEFAULT_RM,
            max_in_flight: 64,
        }
    }
}

/// Why [`StunClient::send_request`] refused a request.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The bytes are not a STUN request.
    #[error("not a STUN request")]
    NotARequest,
    /// A transaction with this ID is already in flight.
    #[error("transaction ID already in flight")]
    DuplicateId,
    /// `max_in_flight` transactions are pending.
    #[error("too many transactions in flight")]
    Full,
}

/// Something the application must learn about.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum StunClientEvent {
    /// No response arrived in time.
    TimedOut {
        /// The transaction.
        id: TransactionId,
        /// Where the request went.
        destination: SocketAddr,
    },
}

/// A response matched to its transaction by [`StunClient::handle_response`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Answered {
    /// The transaction.
    pub id: TransactionId,
    /// Where the request went.
    pub destination: SocketAddr,
    /// Round-trip time when the request was sent only once (Karn's rule).
    pub rtt: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    destination: SocketAddr,
    txn: ClientTransaction,
}

/// Many client transactions, keyed by transaction ID.
#[derive(Debug)]
pub struct StunClient {
    config: StunClientConfig,
    entries: Vec<Entry>,
    events: VecDeque<StunClientEvent>,
    next_transmit: usize,
}

impl StunClient {
    /// An empty table.
    pub fn new(config: StunClientConfig) -> Self {
        Self {
            config,
            entries: Vec::new(),
            events: VecDeque::new(),
            next_transmit: 0,
        }
    }

    /// Starts a transaction for `request` (an encoded STUN request) towards
    /// `destination`; its first send is due at once. `reliable` selects the
    /// TCP/TLS schedule.
    pub fn send_request(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        request: Vec<u8>,
        reliable: bool,
    ) -> Result<TransactionId, SendError> {
        let header = peek_header(&request).map_err(|_| SendError::NotARequest)?;
        if header.class != crate::Class::Request {
            return Err(SendError::NotARequest);
        }
        let id = header.transaction_id;
        if self.entries.iter().any(|e| e.txn.transaction_id() == id) {
            return Err(SendError::DuplicateId);
        }
        if self.entries.len() >= self.config.max_in_flight {
            return Err(SendError::Full);
        }
        let c = self.config;
        self.entries.push(Entry {
            destination,
            txn: ClientTransaction::new(now, request, c.rto, c.rc, c.rm, reliable),
        });
        Ok(id)
    }

    /// Forgets a transaction (the application gave up on it). Returns whether it existed.
    pub fn cancel(&mut self, id: TransactionId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.txn.transaction_id() != id);
        self.next_transmit = 0;
        before != self.entries.len()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let start = self.next_transmit.min(self.entries.len());
        let idx = (start..self.entries.len()).chain(0..start).find(|&i| {
            self.entries
                .get(i)
                .is_some_and(|e| e.txn.has_pending_transmit())
        })?;
        self.next_transmit = idx + 1;
        let entry = self.entries.get_mut(idx)?;
        let destination = entry.destination;
        let payload = entry.txn.poll_transmit()?;
        Some(Transmit {
            destination,
            payload,
        })
    }

    /// The earliest deadline among pending transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| e.txn.poll_timeout())
            .min()
    }

    /// Advances time: retransmissions become due, expired transactions turn
    /// into [`StunClientEvent::TimedOut`].
    pub fn handle_timeout(&mut self, now: Instant) {
        for e in &mut self.entries {
            e.txn.handle_timeout(now);
            if e.txn.state() == TransactionState::TimedOut {
                self.events.push_back(StunClientEvent::TimedOut {
                    id: e.txn.transaction_id(),
                    destination: e.destination,
                });
            }
        }
        self.entries.retain(|e| !e.txn.is_done());
        self.next_transmit = 0;
    }

    /// Offers a parsed message received from `from`. When it answers a
    /// pending request (same ID and method, a response class, from the
    /// address the request went to) the transaction ends and its details are
    /// returned; the caller then reads the response itself.
    pub fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        response: &Message<'_>,
    ) -> Option<Answered> {
        let id = response.transaction_id();
        let idx = self
            .entries
            .iter()
            .position(|e| e.txn.transaction_id() == id && e.destination == from)?;
        let entry = self.entries.get_mut(idx)?;
        if !entry.txn.handle_response(now, response) {
            return None;
        }
        let answered = Answered {
            id,
            destination: entry.destination,
            rtt: entry.txn.rtt(),
        };
        self.entries.remove(idx);
        self.next_transmit = 0;
        Some(answered)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<StunClientEvent> {
        self.events.pop_front()
    }

    /// Transactions in flight.
    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // one real origin instant, virtual time after it

    use super::*;
    use crate::method::{Class, Method};
    use crate::writer::MessageWriter;

    fn request(tid: u8) -> Vec<u8> {
        let mut buf = Vec::new();
        MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Request,
            TransactionId([tid; 12]),
        )
        .finish()
        .unwrap();
        buf
    }

    fn answer(tid: u8) -> Vec<u8> {
        let mut buf = Vec::new();
        MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Success,
            TransactionId([tid; 12]),
        )
        .finish()
        .unwrap();
        buf
    }

    #[test]
    fn two_servers_one_answers_one_times_out() {
        let start = Instant::now();
        let a: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:3478".parse().unwrap();
        let mut c = StunClient::new(StunClientConfig {
            rto: Duration::from_millis(100),
            rc: 3,
            rm: 4,
            max_in_flight: 8,
        });
        c.send_request(start, a, request(1), false).unwrap();
        c.send_request(start, b, request(2), false).unwrap();
        assert_eq!(
            c.send_request(start, b, request(2), false),
            Err(SendError::DuplicateId)
        );
        let mut dests = Vec::new();
        while let Some(t) = c.poll_transmit() {
            dests.push(t.destination);
        }
        assert_eq!(dests, [a, b]);

        // A's answer from the wrong address is not accepted; from A it is.
        let resp = answer(1);
        let msg = Message::parse(&resp).unwrap();
        let at = start + Duration::from_millis(30);
        assert_eq!(c.handle_response(at, b, &msg), None);
        let got = c.handle_response(at, a, &msg).unwrap();
        assert_eq!(got.rtt, Some(Duration::from_millis(30)));
        assert_eq!(c.in_flight(), 1);

        // B: sends at 0, 100, 300 ms, times out at 300 + 4 x 100 = 700 ms.
        let mut sent = vec![0];
        let mut timed_out = None;
        for _ in 0..20 {
            let Some(next) = c.poll_timeout() else { break };
            let now = next;
            c.handle_timeout(now);
            while let Some(t) = c.poll_transmit() {
                assert_eq!(t.destination, b);
                sent.push((now - start).as_millis());
            }
            if let Some(ev) = c.poll_event() {
                timed_out = Some(((now - start).as_millis(), ev));
            }
        }
        assert_eq!(sent, [0, 100, 300]);
        assert_eq!(
            timed_out,
            Some((
                700,
                StunClientEvent::TimedOut {
                    id: TransactionId([2; 12]),
                    destination: b
                }
            ))
        );
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn limits_and_garbage_are_refused() {
        let start = Instant::now();
        let a: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let mut c = StunClient::new(StunClientConfig {
            max_in_flight: 1,
            ..Default::default()
        });
        assert_eq!(
            c.send_request(start, a, b"junk".to_vec(), false),
            Err(SendError::NotARequest)
        );
        assert_eq!(
            c.send_request(start, a, answer(1), false),
            Err(SendError::NotARequest)
        );
        c.send_request(start, a, request(1), false).unwrap();
        assert_eq!(
            c.send_request(start, a, request(2), false),
            Err(SendError::Full)
        );
        assert!(c.cancel(TransactionId([1; 12])));
        assert!(!c.cancel(TransactionId([1; 12])));
        assert!(c.poll_transmit().is_none());
    }
}
