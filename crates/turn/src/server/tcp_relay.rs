//! RFC 6062 TCP relaying: the connection table behind TCP allocations, sans-IO.
//!
//! A TCP allocation (REQUESTED-TRANSPORT 6 on a TCP/TLS control connection) has a relayed
//! address the driver listens on for TCP. Each TCP connection between that address and a peer
//! gets a CONNECTION-ID:
//!
//! * **Connect** (client-initiated): the core checks the peer (family, [`super::PeerPolicy`],
//!   446 for a duplicate) and asks the driver for an outgoing connection
//!   ([`TcpAction::Connect`]); the answer is deferred until the driver reports the outcome with
//!   [`Server::tcp_connect_result`]: success carries CONNECTION-ID, failure is 447.
//! * **Peer-initiated**: the driver asks [`Server::tcp_peer_incoming`]; with a permission for
//!   the peer's IP the core sends a ConnectionAttempt indication on the control connection.
//! * **ConnectionBind** on a new data connection (authenticated as the allocation's user)
//!   binds it to the peer connection ([`TcpAction::Bind`]); from then on the driver copies
//!   bytes both ways and the core is out of the data path.
//!
//! A connection not bound within 30 s (RFC 6062 §5.2/§5.3) is closed, as is one whose
//! outgoing connect has not finished by then (447). Everything is keyed by connection ID and
//! bounded per allocation.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_stun::{attr, Class, Message, MessageWriter, Method, TransactionId};

use super::allocation::Algorithm;
use super::{Act, Authed, Authenticator, FiveTuple, RelayProvider, Server, UserKeys};

/// How long a peer connection waits for its ConnectionBind, and an outgoing connect for its
/// peer (RFC 6062 §5.2, §5.3: 30 seconds).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(30);

/// TCP connections one allocation may hold (pending or bound); bounds memory per client.
pub const MAX_CONNECTIONS_PER_ALLOCATION: usize = 128;

/// What the driver must do for TCP relaying. Poll with [`Server::poll_tcp_action`] after every
/// call into the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpAction {
    /// Open a TCP connection from `relay` (the allocation's relayed address) to `peer`, then
    /// report with [`Server::tcp_connect_result`].
    Connect {
        /// The connection ID to report back.
        id: u32,
        /// Local address to bind (shared with the relay's listener: SO_REUSEPORT).
        relay: SocketAddr,
        /// The peer.
        peer: SocketAddr,
    },
    /// Send `data` (a whole STUN message) on the client's stream connection `five`.
    ToClient {
        /// The control connection.
        five: FiveTuple,
        /// The message.
        data: Vec<u8>,
    },
    /// The ConnectionBind success was just returned on `data`: after sending it, the data
    /// connection carries raw bytes to and from peer connection `id`.
    Bind {
        /// The peer connection.
        id: u32,
        /// The data connection.
        data: FiveTuple,
    },
    /// Close peer connection `id` (and its data connection, if bound).
    Close {
        /// The peer connection.
        id: u32,
    },
}

#[derive(Debug)]
enum State {
    /// Outgoing connect under way; the CONNECT answer waits for it.
    Connecting {
        tid: TransactionId,
        seal: Option<(UserKeys, Algorithm)>,
        fingerprint: bool,
        deadline: Instant,
    },
    /// Connected (or accepted), waiting for a ConnectionBind.
    Pending { deadline: Instant },
    /// Bound to a data connection.
    Bound { data: FiveTuple },
}

#[derive(Debug)]
struct Conn {
    owner: FiveTuple,
    peer: SocketAddr,
    state: State,
}

/// The connection table of one [`Server`].
#[derive(Debug)]
pub(crate) struct TcpRelay {
    conns: HashMap<u32, Conn>,
    by_data: HashMap<FiveTuple, u32>,
    actions: VecDeque<TcpAction>,
    next_id: u32,
    tag: u8,
}

impl TcpRelay {
    pub(crate) fn new(seed: u32) -> Self {
        Self {
            conns: HashMap::new(),
            by_data: HashMap::new(),
            actions: VecDeque::new(),
            next_id: seed,
            tag: 0,
        }
    }

    /// A fresh ID whose low byte is the shard tag, so any shard can route a ConnectionBind.
    fn fresh_id(&mut self) -> u32 {
        loop {
            self.next_id = self.next_id.wrapping_add(1) & 0x00FF_FFFF;
            let id = (self.next_id << 8) | u32::from(self.tag);
            if !self.conns.contains_key(&id) {
                return id;
            }
        }
    }

    fn count_for(&self, owner: FiveTuple) -> usize {
        self.conns.values().filter(|c| c.owner == owner).count()
    }

    fn close(&mut self, id: u32) {
        if let Some(c) = self.conns.remove(&id) {
            if let State::Bound { data } = c.state {
                self.by_data.remove(&data);
            }
            self.actions.push_back(TcpAction::Close { id });
        }
    }

    /// The allocation of `owner` ended: every connection of it goes.
    pub(crate) fn allocation_gone(&mut self, owner: FiveTuple) {
        let ids: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.owner == owner)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close(id);
        }
    }

    /// A stream connection closed: if it was a data connection, its peer connection goes.
    pub(crate) fn data_closed(&mut self, five: FiveTuple) {
        if let Some(id) = self.by_data.get(&five).copied() {
            self.close(id);
        }
    }
}

/// The CONNECTION-ID of a ConnectionBind request, without authenticating anything: lets a
/// driver with several shards route a new data connection to the shard that owns the ID
/// (its low byte, see [`Server::set_tcp_shard_tag`]). `None` for anything else.
pub fn connection_bind_id(frame: &[u8]) -> Option<u32> {
    let msg = Message::parse(frame).ok()?;
    if msg.method() != Method::CONNECTION_BIND || msg.class() != Class::Request {
        return None;
    }
    msg.connection_id().ok().flatten()
}

/// Builds a (sealed) response or indication into a new buffer.
fn build(
    method: Method,
    class: Class,
    tid: TransactionId,
    seal: Option<&(UserKeys, Algorithm)>,
    software: Option<&str>,
    fingerprint: bool,
    f: impl FnOnce(&mut MessageWriter<'_>),
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut w = MessageWriter::new(&mut out, method, class, tid);
    f(&mut w);
    if let Some((keys, alg)) = seal {
        if let Some(sw) = software {
            w.add_software(sw);
        }
        match (alg, keys.sha256) {
            (Algorithm::Sha256, Some(k)) => {
                w.add_message_integrity_sha256(&k);
            }
            _ => {
                w.add_message_integrity(&keys.md5);
            }
        }
    }
    if fingerprint {
        w.add_fingerprint();
    }
    w.finish().ok()?;
    Some(out)
}

impl<R: RelayProvider, A: Authenticator> Server<R, A> {
    /// Tags this core's connection IDs with `tag` (the driver's shard index) in their low
    /// byte. Call once, before traffic.
    pub fn set_tcp_shard_tag(&mut self, tag: u8) {
        self.tcp.tag = tag;
    }

    /// The next thing the driver must do for TCP relaying.
    pub fn poll_tcp_action(&mut self) -> Option<TcpAction> {
        self.tcp.actions.pop_front()
    }

    /// Live TCP connections (pending or bound) in this shard.
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.conns.len()
    }

    /// The outgoing connect of `id` finished: answers the CONNECT (success with
    /// CONNECTION-ID, or 447) and, on success, starts the 30 s ConnectionBind timer.
    pub fn tcp_connect_result(&mut self, now: Instant, id: u32, connected: bool) {
        let Some(c) = self.tcp.conns.get_mut(&id) else {
            if connected {
                // Too late (timed out, allocation gone): the driver drops the socket.
                self.tcp.actions.push_back(TcpAction::Close { id });
            }
            return;
        };
        let State::Connecting {
            tid,
            seal,
            fingerprint,
            ..
        } = &c.state
        else {
            return;
        };
        let (tid, seal, fingerprint, owner) = (*tid, *seal, *fingerprint, c.owner);
        let sw = self.cfg.software.clone();
        let reply = if connected {
            c.state = State::Pending {
                deadline: now + PENDING_TIMEOUT,
            };
            build(
                Method::CONNECT,
                Class::Success,
                tid,
                seal.as_ref(),
                sw.as_deref(),
                fingerprint,
                |w| {
                    w.add_connection_id(id);
                },
            )
        } else {
            self.tcp.close(id);
            build(
                Method::CONNECT,
                Class::Error,
                tid,
                seal.as_ref(),
                sw.as_deref(),
                fingerprint,
                |w| {
                    w.add_error_code(447, "Connection Timeout or Failure");
                },
            )
        };
        if let Some(data) = reply {
            self.tcp
                .actions
                .push_back(TcpAction::ToClient { five: owner, data });
        }
    }

    /// A peer connected to relayed address `relay`. `Some(id)`: keep the connection under
    /// that ID (a ConnectionAttempt went to the client); `None`: close it (no TCP allocation,
    /// no permission for the peer's IP, or too many connections).
    pub fn tcp_peer_incoming(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
    ) -> Option<u32> {
        let i = *self.by_relay.get(&relay)?;
        let a = self.slots.get(i)?.as_ref()?;
        // RFC 6062 §5.3: only peers the client gave a permission to (which the peer policy
        // already vetted when it was installed).
        if !a.tcp || !a.has_permission(peer.ip(), now) {
            self.stats.dropped += 1;
            return None;
        }
        let owner = a.five;
        if self.tcp.count_for(owner) >= MAX_CONNECTIONS_PER_ALLOCATION {
            self.stats.dropped += 1;
            return None;
        }
        let id = self.tcp.fresh_id();
        let data = build(
            Method::CONNECTION_ATTEMPT,
            Class::Indication,
            TransactionId::random(),
            None,
            None,
            false,
            |w| {
                w.add_xor_peer_address(peer).add_connection_id(id);
            },
        )?;
        self.tcp.conns.insert(
            id,
            Conn {
                owner,
                peer,
                state: State::Pending {
                    deadline: now + PENDING_TIMEOUT,
                },
            },
        );
        self.tcp
            .actions
            .push_back(TcpAction::ToClient { five: owner, data });
        Some(id)
    }

    /// The driver's peer connection `id` ended (EOF, error): forget it.
    pub fn tcp_closed(&mut self, id: u32) {
        if let Some(c) = self.tcp.conns.remove(&id) {
            if let State::Bound { data } = c.state {
                self.tcp.by_data.remove(&data);
            }
        }
    }

    /// Expires pending connections and overdue connects (447).
    pub(crate) fn tcp_sweep(&mut self, now: Instant) {
        let overdue: Vec<(u32, bool)> = self
            .tcp
            .conns
            .iter()
            .filter_map(|(id, c)| match c.state {
                State::Connecting { deadline, .. } if deadline <= now => Some((*id, true)),
                State::Pending { deadline } if deadline <= now => Some((*id, false)),
                _ => None,
            })
            .collect();
        for (id, connecting) in overdue {
            if connecting {
                self.tcp_connect_result(now, id, false);
            } else {
                self.tcp.close(id);
            }
        }
    }

    /// CONNECT (RFC 6062 §5.2).
    pub(super) fn connect<'a>(
        &mut self,
        now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        seal: Option<(UserKeys, Algorithm)>,
        existing: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let Some(i) = existing else {
            return self.error(five, msg, seal, 437, "Allocation Mismatch", out);
        };
        let Ok(Some(peer)) = msg.xor_peer_address() else {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        };
        let Some(a) = self.slots.get(i).and_then(Option::as_ref) else {
            return Act::Drop;
        };
        if !a.tcp {
            return self.error(five, msg, seal, 400, "Not a TCP allocation", out);
        }
        if let Err((code, reason)) = self.check_peer(a, peer) {
            return self.error(five, msg, seal, code, reason, out);
        }
        let Some(relay) = a.relay_for_family(peer.ip()) else {
            return self.error(five, msg, seal, 443, "Peer Address Family Mismatch", out);
        };
        // 446 for a connect already under way to this peer, or a connection that exists.
        let duplicate = self
            .tcp
            .conns
            .values()
            .any(|c| c.owner == five && c.peer == peer);
        if duplicate {
            return self.error(five, msg, seal, 446, "Connection Already Exists", out);
        }
        if self.tcp.count_for(five) >= MAX_CONNECTIONS_PER_ALLOCATION {
            return self.error(five, msg, seal, 508, "Insufficient Capacity", out);
        }
        let id = self.tcp.fresh_id();
        self.tcp.conns.insert(
            id,
            Conn {
                owner: five,
                peer,
                state: State::Connecting {
                    tid: msg.transaction_id(),
                    seal,
                    fingerprint: msg.contains(attr::FINGERPRINT),
                    deadline: now + PENDING_TIMEOUT,
                },
            },
        );
        self.tcp
            .actions
            .push_back(TcpAction::Connect { id, relay, peer });
        Act::Drop
    }

    /// CONNECTION-BIND (RFC 6062 §5.4), on a new data connection `five`.
    pub(super) fn connection_bind<'a>(
        &mut self,
        _now: Instant,
        five: FiveTuple,
        msg: &Message<'_>,
        authed: Authed,
        existing: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Act<'a> {
        let seal = self
            .cfg
            .auth_required
            .then_some((authed.keys, authed.algorithm));
        // Not on UDP, not on a connection that holds an allocation or is already bound.
        if !five.transport.is_stream() || existing.is_some() || self.tcp.by_data.contains_key(&five)
        {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        }
        let Ok(Some(id)) = msg.connection_id() else {
            return self.error(five, msg, seal, 400, "Bad Request", out);
        };
        let Some(c) = self.tcp.conns.get(&id) else {
            return self.error(five, msg, seal, 400, "Unknown CONNECTION-ID", out);
        };
        if !matches!(c.state, State::Pending { .. }) {
            return self.error(five, msg, seal, 400, "Connection not pending", out);
        }
        let owner_user = self
            .by_five
            .get(&c.owner)
            .and_then(|i| self.slots.get(*i))
            .and_then(Option::as_ref)
            .map(|a| a.username.clone());
        if self.cfg.auth_required && owner_user.as_deref() != Some(authed.username.as_str()) {
            self.stats.auth_failures += 1;
            return self.error(five, msg, None, 441, "Wrong Credentials", out);
        }
        if let Some(c) = self.tcp.conns.get_mut(&id) {
            c.state = State::Bound { data: five };
        }
        self.tcp.by_data.insert(five, id);
        self.tcp
            .actions
            .push_back(TcpAction::Bind { id, data: five });
        self.empty_success(five, msg, seal, out)
    }
}
