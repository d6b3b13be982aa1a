//! A table of transactions: matches incoming messages to transactions,
//! creates server transactions, runs timers from one deadline heap, and
//! turns state-machine actions into addressed events.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::Instant;

use super::held::Held;
use super::idhash::IdHash;
use super::{
    Action, InviteClient, InviteServer, NonInviteClient, NonInviteServer, NonInviteServerState,
    TimerConfig, TransactionKey,
};
use crate::message::Message;
use crate::method::Method;
use crate::via::{Via, MAGIC_COOKIE};

/// Transaction handle.
pub type TxId = u64;

type KeyDigest = u128;

/// How late after their Timer J held responses may be dropped (see
/// [`TransactionLayer::next_deadline`]).
const HELD_SLACK: std::time::Duration = std::time::Duration::from_millis(100);

/// What the layer asks its owner (the TU or the I/O driver) to do or know.
///
/// Messages in the events of [`TransactionLayer::on_message`] borrow the received bytes
/// (`'m`), as the message given to it did: the owner handles them before it reads the next
/// datagram, and copies only what it keeps (an INVITE being proxied, say). Every other
/// method's events are `'static`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'m, P> {
    /// Transmit bytes to a peer.
    Send {
        /// Transaction that produced them.
        tx: TxId,
        /// Destination.
        to: P,
        /// Wire bytes.
        bytes: Vec<u8>,
    },
    /// A new request created server transaction `tx`; the TU must answer it.
    Request {
        /// New server transaction.
        tx: TxId,
        /// Where it came from.
        from: P,
        /// The request.
        msg: Message<'m>,
    },
    /// A client transaction received a response for the TU.
    Response {
        /// Client transaction.
        tx: TxId,
        /// The response.
        msg: Message<'m>,
    },
    /// A message outside any transaction: an ACK for a 2xx, or a response
    /// with no matching client transaction (a proxy forwards these
    /// statelessly, §16.7/§16.10 and RFC 6026).
    Stray {
        /// Where it came from.
        from: P,
        /// The message.
        msg: Message<'m>,
    },
    /// Timer B/F/H fired.
    Timeout {
        /// Transaction.
        tx: TxId,
    },
    /// Transport failure reported for the transaction.
    TransportError {
        /// Transaction.
        tx: TxId,
    },
    /// The transaction ended and was removed.
    Terminated {
        /// Transaction.
        tx: TxId,
    },
}

#[derive(Debug)]
enum Machine {
    // The large machines are boxed so the many short-lived non-INVITE
    // server entries (REGISTER at high rates) stay small in the table.
    InviteClient(Box<InviteClient>),
    NonInviteClient(Box<NonInviteClient>),
    InviteServer(Box<InviteServer>),
    NonInviteServer(NonInviteServer),
}

impl Machine {
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Machine::InviteClient(t) => t.next_deadline(),
            Machine::NonInviteClient(t) => t.next_deadline(),
            Machine::InviteServer(t) => t.next_deadline(),
            Machine::NonInviteServer(t) => t.next_deadline(),
        }
    }

    fn is_server(&self) -> bool {
        matches!(self, Machine::InviteServer(_) | Machine::NonInviteServer(_))
    }
}

#[derive(Debug)]
struct Entry<P> {
    machine: Machine,
    peer: P,
    key: KeyDigest,
    deadline: Option<Instant>,
}

/// Transactions keyed and timed together. `P` is whatever identifies a peer
/// for the I/O layer (e.g. transport + socket address).
#[derive(Debug)]
pub struct TransactionLayer<P> {
    cfg: TimerConfig,
    auto_trying: bool,
    next_id: TxId,
    entries: HashMap<TxId, Entry<P>, IdHash>,
    client_index: HashMap<KeyDigest, TxId, IdHash>,
    server_index: HashMap<KeyDigest, TxId, IdHash>,
    hashers: (RandomState, RandomState),
    timers: BinaryHeap<Reverse<(Instant, TxId)>>,
    /// Completed non-INVITE server transactions on unreliable transports:
    /// only their final response, until Timer J.
    held: Held,
}

impl<P: Clone> TransactionLayer<P> {
    /// An empty layer. With `auto_trying`, INVITE server transactions send
    /// `100 Trying` as soon as they are created (what a proxy wants).
    pub fn new(cfg: TimerConfig, auto_trying: bool) -> TransactionLayer<P> {
        TransactionLayer {
            cfg,
            auto_trying,
            next_id: 1,
            entries: HashMap::default(),
            client_index: HashMap::default(),
            server_index: HashMap::default(),
            hashers: (RandomState::new(), RandomState::new()),
            timers: BinaryHeap::new(),
            held: Held::default(),
        }
    }

    /// Timer configuration.
    pub fn config(&self) -> TimerConfig {
        self.cfg
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.entries.len() + self.held.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.held.len() == 0
    }

    /// Earliest pending timer (may be slightly early after state changes;
    /// calling [`TransactionLayer::on_timer`] then is harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        let t = self.timers.peek().map(|Reverse((t, _))| *t);
        // Held responses are let go a little after Timer J, in groups: under
        // load one expires every fraction of a millisecond, and waking up for
        // each would cost a timer and a wake-up per request.
        let held = self.held.next_deadline().map(|t| t + HELD_SLACK);
        match (t, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The request of a client or INVITE server transaction.
    pub fn request(&self, tx: TxId) -> Option<&Message<'static>> {
        match &self.entries.get(&tx)?.machine {
            Machine::InviteClient(t) => Some(t.request()),
            Machine::NonInviteClient(t) => Some(t.request()),
            Machine::InviteServer(t) => Some(t.request()),
            Machine::NonInviteServer(_) => None,
        }
    }

    /// The peer a transaction talks to.
    pub fn peer(&self, tx: TxId) -> Option<&P> {
        self.entries.get(&tx).map(|e| &e.peer)
    }

    /// Find the INVITE server transaction a CANCEL targets.
    pub fn find_cancel_target(&self, cancel: &Message<'_>) -> Option<TxId> {
        let (digest, _) = self.server_digest(cancel, "INVITE", None)?;
        self.server_index.get(&digest).copied()
    }

    /// Digest of the server transaction key of `req` (§17.2.3) for `method`,
    /// and whether it is an RFC 2543 key. For RFC 3261 branches (nearly every
    /// request) the parts are hashed where they lie in the message: building
    /// the [`TransactionKey`]'s three strings cost more than the rest of the
    /// lookup. Server digests are only compared with server digests.
    fn server_digest(
        &self,
        req: &Message<'_>,
        method: &str,
        top_via: Option<&Via<'_>>,
    ) -> Option<(KeyDigest, bool)> {
        let parsed;
        let via = match top_via {
            Some(v) => v,
            None => {
                parsed = req.top_via().ok()?;
                &parsed
            }
        };
        match via.branch() {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => {
                let mut a = self.hashers.0.build_hasher();
                let mut b = self.hashers.1.build_hasher();
                let lower;
                let host = if via.host.bytes().any(|c| c.is_ascii_uppercase()) {
                    lower = via.host.to_ascii_lowercase();
                    lower.as_str()
                } else {
                    via.host
                };
                for h in [&mut a, &mut b] {
                    branch.hash(h);
                    host.hash(h);
                    via.port.hash(h);
                    method.hash(h);
                }
                Some((
                    (u128::from(a.finish()) << 64) | u128::from(b.finish()),
                    false,
                ))
            }
            _ => {
                let key = if method == "INVITE" {
                    TransactionKey::cancel_target(req).ok()?
                } else {
                    TransactionKey::server(req).ok()?
                };
                Some((self.digest(&key), true))
            }
        }
    }

    /// 128-bit keyed digest of a transaction key. Tables store this instead
    /// of the key's strings (twice, entry + index), which halves the memory
    /// of the thousands of transactions lingering for 64*T1 under load. With
    /// two independent random SipHash keys collisions are not a concern.
    fn digest(&self, key: &TransactionKey) -> KeyDigest {
        let a = self.hashers.0.hash_one(key);
        let b = self.hashers.1.hash_one(key);
        (u128::from(a) << 64) | u128::from(b)
    }

    fn alloc(&mut self) -> TxId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Convert machine actions to events and refresh the timer heap.
    fn apply<'m>(&mut self, tx: TxId, actions: Vec<Action>, out: &mut Vec<Event<'m, P>>) {
        let Some(entry) = self.entries.get_mut(&tx) else {
            return;
        };
        let mut terminated = false;
        for a in actions {
            match a {
                Action::Send(bytes) => out.push(Event::Send {
                    tx,
                    to: entry.peer.clone(),
                    bytes,
                }),
                Action::Deliver(msg) if entry.machine.is_server() => {
                    out.push(Event::Stray {
                        from: entry.peer.clone(),
                        msg,
                    });
                }
                Action::Deliver(msg) => out.push(Event::Response { tx, msg }),
                Action::Timeout => out.push(Event::Timeout { tx }),
                Action::TransportError => out.push(Event::TransportError { tx }),
                Action::Terminated => terminated = true,
            }
        }
        if terminated {
            if let Some(e) = self.entries.remove(&tx) {
                let index = if e.machine.is_server() {
                    &mut self.server_index
                } else {
                    &mut self.client_index
                };
                if index.get(&e.key) == Some(&tx) {
                    index.remove(&e.key);
                }
            }
            out.push(Event::Terminated { tx });
            return;
        }
        let next = entry.machine.next_deadline();
        if next != entry.deadline {
            entry.deadline = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, tx)));
            }
        }
    }

    fn insert(&mut self, machine: Machine, peer: P, key: TransactionKey) -> TxId {
        let key = self.digest(&key);
        self.insert_digest(machine, peer, key)
    }

    fn insert_digest(&mut self, machine: Machine, peer: P, key: KeyDigest) -> TxId {
        let id = self.alloc();
        if machine.is_server() {
            self.server_index.insert(key, id);
        } else {
            self.client_index.insert(key, id);
        }
        self.entries.insert(
            id,
            Entry {
                machine,
                peer,
                key,
                deadline: None,
            },
        );
        id
    }

    /// Start a client transaction for `req` (not for ACK: the ACK of a 2xx is
    /// sent by the TU directly, §13.2.2.4).
    pub fn send_request(
        &mut self,
        now: Instant,
        to: P,
        reliable: bool,
        req: Message<'static>,
    ) -> (TxId, Vec<Event<'static, P>>) {
        let mut out = Vec::new();
        let key = TransactionKey::client(&req).unwrap_or(TransactionKey::Branch {
            branch: String::new(),
            sent_by: String::new(),
            method: String::new(),
        });
        let (machine, actions) = if req.method() == Some(&Method::Invite) {
            let (t, a) = InviteClient::new(now, req, reliable, self.cfg);
            (Machine::InviteClient(Box::new(t)), a)
        } else {
            let (t, a) = NonInviteClient::new(now, req, reliable, self.cfg);
            (Machine::NonInviteClient(Box::new(t)), a)
        };
        let id = self.insert(machine, to, key);
        self.apply(id, actions, &mut out);
        (id, out)
    }

    /// The TU answers server transaction `tx`.
    pub fn send_response(
        &mut self,
        now: Instant,
        tx: TxId,
        resp: &Message<'_>,
    ) -> Vec<Event<'static, P>> {
        let mut out = Vec::new();
        let actions = match self.entries.get_mut(&tx).map(|e| &mut e.machine) {
            Some(Machine::InviteServer(t)) => t.send_response(now, resp),
            Some(Machine::NonInviteServer(t))
                if !t.is_reliable()
                    && resp.code().is_some_and(|c| c >= 200)
                    && matches!(
                        t.state(),
                        NonInviteServerState::Trying | NonInviteServerState::Proceeding
                    ) =>
            {
                // Completed on an unreliable transport: from here on only the
                // response matters, for retransmissions until Timer J.
                let bytes = resp.to_bytes();
                if let Some(e) = self.entries.remove(&tx) {
                    if self.server_index.get(&e.key) == Some(&tx) {
                        self.server_index.remove(&e.key);
                    }
                    self.held
                        .hold(tx, e.key, now + self.cfg.t1x64(), resp, &bytes);
                    out.push(Event::Send {
                        tx,
                        to: e.peer,
                        bytes,
                    });
                }
                return out;
            }
            Some(Machine::NonInviteServer(t)) => t.send_response(now, resp),
            _ => return out,
        };
        self.apply(tx, actions, &mut out);
        out
    }

    /// Answer the request of non-INVITE server transaction `tx` with a final response and
    /// drop the transaction at once, as a stateless UAS does (RFC 3261 §8.2.7): the response is
    /// not kept for Timer J, so a retransmitted request is handled anew. Meant for digest
    /// challenges, which §8.2.7 names as the typical stateless answer: a retransmission then
    /// gets a fresh challenge, and a registrar under a REGISTER storm keeps no state for the
    /// half of its traffic that only asks for credentials. Anything else (a provisional
    /// response, an INVITE transaction, a transaction already answered) goes through
    /// [`TransactionLayer::send_response`].
    pub fn send_response_stateless(
        &mut self,
        now: Instant,
        tx: TxId,
        resp: &Message<'_>,
    ) -> Vec<Event<'static, P>> {
        let answerable = matches!(
            self.entries.get(&tx).map(|e| &e.machine),
            Some(Machine::NonInviteServer(t))
                if matches!(t.state(), NonInviteServerState::Trying | NonInviteServerState::Proceeding)
        );
        if !answerable || !resp.code().is_some_and(|c| c >= 200) {
            return self.send_response(now, tx, resp);
        }
        let mut out = Vec::new();
        if let Some(e) = self.entries.remove(&tx) {
            if self.server_index.get(&e.key) == Some(&tx) {
                self.server_index.remove(&e.key);
            }
            out.push(Event::Send {
                tx,
                to: e.peer,
                bytes: resp.to_bytes(),
            });
            out.push(Event::Terminated { tx });
        }
        out
    }

    /// Report a transport failure for `tx`.
    pub fn transport_error(&mut self, tx: TxId) -> Vec<Event<'static, P>> {
        let mut out = Vec::new();
        let actions = match self.entries.get_mut(&tx).map(|e| &mut e.machine) {
            Some(Machine::InviteClient(t)) => t.on_transport_error(),
            Some(Machine::NonInviteClient(t)) => t.on_transport_error(),
            Some(Machine::InviteServer(t)) => t.on_transport_error(),
            Some(Machine::NonInviteServer(t)) => t.on_transport_error(),
            None => return out,
        };
        self.apply(tx, actions, &mut out);
        out
    }

    /// Drop a transaction at once (a proxy giving up on a branch whose
    /// INVITE was cancelled but never completed, §16.8). No message is sent.
    pub fn terminate(&mut self, tx: TxId) -> Vec<Event<'static, P>> {
        let mut out = Vec::new();
        if self.entries.contains_key(&tx) {
            self.apply(tx, vec![Action::Terminated], &mut out);
        }
        out
    }

    /// Feed a received (already parsed and validated) message.
    pub fn on_message<'m>(
        &mut self,
        now: Instant,
        from: P,
        reliable: bool,
        msg: Message<'m>,
    ) -> Vec<Event<'m, P>> {
        self.on_message_via(now, from, reliable, msg, None)
    }

    /// [`TransactionLayer::on_message`] with the request's top Via already parsed (see
    /// `Message::parse_with_top_via`; it keys the server transaction). `None` parses it here.
    pub fn on_message_via<'m>(
        &mut self,
        now: Instant,
        from: P,
        reliable: bool,
        msg: Message<'m>,
        top_via: Option<Via<'_>>,
    ) -> Vec<Event<'m, P>> {
        let mut out = Vec::new();
        if msg.is_request() {
            let is_ack = msg.method() == Some(&Method::Ack);
            let method = match msg.method() {
                Some(Method::Ack) | None => "INVITE",
                Some(m) => m.as_str(),
            };
            let Some((digest, rfc2543)) = self.server_digest(&msg, method, top_via.as_ref()) else {
                return out;
            };
            if let Some(r) = self.held.get(digest) {
                // A retransmission of a completed non-INVITE request.
                out.push(Event::Send {
                    tx: r.tx,
                    to: from,
                    bytes: r.response(&msg),
                });
                return out;
            }
            if let Some(&id) = self.server_index.get(&digest) {
                let actions = match self.entries.get_mut(&id).map(|e| &mut e.machine) {
                    Some(Machine::InviteServer(t)) => {
                        // RFC 2543 ACK matching also needs the To tag of our final response.
                        let tag_ok = !rfc2543
                            || !is_ack
                            || t.final_to_tag().is_none()
                            || msg.to_tag() == t.final_to_tag();
                        if !tag_ok {
                            out.push(Event::Stray { from, msg });
                            return out;
                        }
                        t.on_request(now, &msg)
                    }
                    Some(Machine::NonInviteServer(t)) => t.on_request(now, &msg),
                    _ => Vec::new(),
                };
                self.apply(id, actions, &mut out);
                return out;
            }
            if is_ack {
                out.push(Event::Stray { from, msg });
                return out;
            }
            let (machine, actions) = if msg.method() == Some(&Method::Invite) {
                // The INVITE server keeps its request (for CANCEL and ACK matching).
                let (t, a) = InviteServer::new(
                    now,
                    msg.clone().into_owned(),
                    reliable,
                    self.cfg,
                    self.auto_trying,
                );
                (Machine::InviteServer(Box::new(t)), a)
            } else {
                (
                    Machine::NonInviteServer(NonInviteServer::new(now, reliable, self.cfg)),
                    Vec::new(),
                )
            };
            let id = self.insert_digest(machine, from.clone(), digest);
            out.push(Event::Request { tx: id, from, msg });
            self.apply(id, actions, &mut out);
            return out;
        }
        let Ok(key) = TransactionKey::client(&msg) else {
            out.push(Event::Stray { from, msg });
            return out;
        };
        let Some(&id) = self.client_index.get(&self.digest(&key)) else {
            out.push(Event::Stray { from, msg });
            return out;
        };
        let actions = match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::InviteClient(t)) => t.on_response(now, &msg),
            Some(Machine::NonInviteClient(t)) => t.on_response(now, &msg),
            _ => Vec::new(),
        };
        self.apply(id, actions, &mut out);
        out
    }

    /// Fire all timers due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Event<'static, P>> {
        let mut out = Vec::new();
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            if entry.deadline != Some(t) {
                continue; // stale heap entry
            }
            entry.deadline = None;
            let actions = match &mut entry.machine {
                Machine::InviteClient(m) => m.on_timer(now),
                Machine::NonInviteClient(m) => m.on_timer(now),
                Machine::InviteServer(m) => m.on_timer(now),
                Machine::NonInviteServer(m) => m.on_timer(now),
            };
            self.apply(id, actions, &mut out);
        }
        let mut ended = Vec::new();
        self.held.expire(now, &mut ended);
        out.extend(ended.into_iter().map(|tx| Event::Terminated { tx }));
        self.shrink_after_burst();
        out
    }

    /// After a burst (100 000 REGISTERs leave 100 000 entries for Timer J) the tables keep
    /// their peak capacity; give it back once they are mostly empty. Large tables live in
    /// their own mappings, so the memory returns to the kernel at once.
    fn shrink_after_burst(&mut self) {
        let len = self.entries.len();
        if self.entries.capacity() > 4 * len + 4096 {
            self.entries.shrink_to(2 * len);
            self.client_index.shrink_to(2 * self.client_index.len());
            self.server_index.shrink_to(2 * self.server_index.len());
        }
        if self.timers.capacity() > 4 * self.timers.len() + 4096 {
            self.timers.shrink_to(2 * self.timers.len());
        }
    }
}
