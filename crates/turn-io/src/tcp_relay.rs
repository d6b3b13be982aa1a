//! RFC 6062 TCP relaying: the sockets behind the core's [`TcpAction`]s.
//!
//! A child module of [`super`] (the TURN driver) so it can reach the shard; the driver only
//! calls [`settle`] after every core call, [`start`] once per shard, and hands a data
//! connection's first ConnectionBind to [`bind_data`].
//!
//! * A TCP allocation's relayed address gets a TCP listener (`SO_REUSEPORT`, so outgoing
//!   CONNECTs can bind the same address, as RFC 6062 §5.2 wants).
//! * Each peer connection is one task: it writes what the data connection sends and, once
//!   bound, reads from the peer into the data connection's write queue. Until the bind, the
//!   kernel buffers what the peer sends (RFC 6062 §5.3).
//! * Connection IDs carry the owning shard in their low byte. A ConnectionBind that lands on
//!   another shard (the kernel hashes each new connection to any shard) is forwarded over the
//!   [`Hub`] to the owner, whose core authenticates it; the two shards then exchange bytes
//!   over channels, never sharing a socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use natter_turn::server::tcp_relay::PENDING_TIMEOUT;
use natter_turn::server::{ClientOutput, FiveTuple, RelayError, TcpAction};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{ShardRef, STREAM_QUEUE};

/// Bytes queued towards one side of a spliced connection.
type Queue = mpsc::Sender<Vec<u8>>;

/// A ConnectionBind forwarded to the shard that owns its connection ID.
pub(super) struct BindMsg {
    five: FiveTuple,
    frame: Vec<u8>,
    /// The data connection's write queue (replies, then the peer's bytes).
    to_client: Queue,
    /// On success: the peer connection's write queue.
    answer: oneshot::Sender<Queue>,
}

/// One sender per shard, indexed by shard number.
pub(super) type Hub = Arc<Vec<mpsc::UnboundedSender<BindMsg>>>;

/// A hub for `n` shards and each shard's receiving end.
pub(super) fn hub(n: usize) -> (Hub, Vec<mpsc::UnboundedReceiver<BindMsg>>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
    (Arc::new(txs), rxs)
}

struct PeerEntry {
    task: JoinHandle<()>,
    /// Set once connected.
    to_peer: Option<Queue>,
    /// Hands the data connection's queue to the peer task when bound.
    bind: Option<oneshot::Sender<Queue>>,
}

/// The shard's TCP relay state, kept in its relay provider.
pub(super) struct TcpRelays {
    hub: Hub,
    hub_rx: Option<mpsc::UnboundedReceiver<BindMsg>>,
    new_listeners: Vec<(SocketAddr, std::net::TcpListener)>,
    closed_listeners: Vec<SocketAddr>,
    listeners: HashMap<SocketAddr, JoinHandle<()>>,
    peers: HashMap<u32, PeerEntry>,
    binds: HashMap<FiveTuple, (Queue, oneshot::Sender<Queue>)>,
}

impl TcpRelays {
    pub(super) fn new(hub: Hub, rx: mpsc::UnboundedReceiver<BindMsg>) -> Self {
        Self {
            hub,
            hub_rx: Some(rx),
            new_listeners: Vec::new(),
            closed_listeners: Vec::new(),
            listeners: HashMap::new(),
            peers: HashMap::new(),
            binds: HashMap::new(),
        }
    }

    /// [`natter_turn::server::RelayProvider::listen_tcp`]: binds now (so a busy port is a
    /// 508 at once), registers with tokio in [`settle`].
    pub(super) fn listen(&mut self, relay: SocketAddr) -> Result<(), RelayError> {
        let l = crate::socket::tcp_listener(relay, true).map_err(|e| {
            tracing::debug!(%relay, error = %e, "cannot listen for TCP on relay address");
            RelayError::Exhausted
        })?;
        self.new_listeners.push((relay, l));
        Ok(())
    }

    /// The relay at `relay` closed: its listener goes (no-op for UDP relays).
    pub(super) fn close(&mut self, relay: SocketAddr) {
        self.closed_listeners.push(relay);
    }
}

/// Starts the shard's receiver of forwarded ConnectionBinds.
pub(super) fn start(shard: &ShardRef) {
    let rx = shard.borrow_mut().core.relay_provider().tcp.hub_rx.take();
    if let Some(rx) = rx {
        tokio::task::spawn_local(bind_task(shard.clone(), rx));
    }
}

/// Carries out the core's TCP actions and (un)registers relay listeners.
pub(super) fn settle(shard: &ShardRef) {
    let mut guard = shard.borrow_mut();
    let sh = &mut *guard;
    let new = std::mem::take(&mut sh.core.relay_provider().tcp.new_listeners);
    for (relay, l) in new {
        match TcpListener::from_std(l) {
            Ok(l) => {
                let task = tokio::task::spawn_local(accept_task(shard.clone(), l, relay));
                sh.core.relay_provider().tcp.listeners.insert(relay, task);
            }
            Err(e) => tracing::error!(error = %e, "cannot register relay TCP listener"),
        }
    }
    let closed = std::mem::take(&mut sh.core.relay_provider().tcp.closed_listeners);
    for relay in closed {
        if let Some(t) = sh.core.relay_provider().tcp.listeners.remove(&relay) {
            t.abort();
        }
    }
    while let Some(action) = sh.core.poll_tcp_action() {
        match action {
            TcpAction::Connect { id, relay, peer } => {
                let task = tokio::task::spawn_local(connect_task(shard.clone(), id, relay, peer));
                sh.core.relay_provider().tcp.peers.insert(
                    id,
                    PeerEntry {
                        task,
                        to_peer: None,
                        bind: None,
                    },
                );
            }
            TcpAction::ToClient { five, data } => {
                if let Some(tx) = sh.streams.get(&five) {
                    if tx.try_send(data).is_err() {
                        sh.send_errors += 1;
                    }
                }
            }
            TcpAction::Bind { id, data } => {
                let tcp = &mut sh.core.relay_provider().tcp;
                let Some((to_client, answer)) = tcp.binds.remove(&data) else {
                    continue;
                };
                if let Some(p) = tcp.peers.get_mut(&id) {
                    if let (Some(bind), Some(to_peer)) = (p.bind.take(), p.to_peer.clone()) {
                        let _ = bind.send(to_client);
                        let _ = answer.send(to_peer);
                    }
                }
            }
            TcpAction::Close { id } => {
                if let Some(p) = sh.core.relay_provider().tcp.peers.remove(&id) {
                    p.task.abort();
                }
            }
        }
    }
}

/// Accepts peers on a TCP allocation's relayed address.
async fn accept_task(shard: ShardRef, listener: TcpListener, relay: SocketAddr) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors and the like: the allocation stays, new peers wait.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let id = shard
            .borrow_mut()
            .core
            .tcp_peer_incoming(Instant::now(), relay, peer);
        let Some(id) = id else {
            tracing::debug!(%relay, %peer, "TCP peer without permission refused");
            continue;
        };
        let (to_peer, rx) = mpsc::channel(STREAM_QUEUE);
        let (bind, bind_rx) = oneshot::channel();
        let task = tokio::task::spawn_local(peer_task(shard.clone(), id, stream, rx, bind_rx));
        shard.borrow_mut().core.relay_provider().tcp.peers.insert(
            id,
            PeerEntry {
                task,
                to_peer: Some(to_peer),
                bind: Some(bind),
            },
        );
        super::settle(&shard);
    }
}

/// CONNECT: connects from the relayed address, reports, then serves the connection.
async fn connect_task(shard: ShardRef, id: u32, relay: SocketAddr, peer: SocketAddr) {
    let connected = async {
        let sock = if relay.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        sock.set_reuseaddr(true)?;
        sock.set_reuseport(true)?;
        sock.bind(relay)?;
        sock.connect(peer).await
    };
    let stream = match tokio::time::timeout(PENDING_TIMEOUT, connected).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(%relay, %peer, error = %e, "CONNECT failed");
            None
        }
        Err(_) => None,
    };
    let Some(stream) = stream else {
        shard
            .borrow_mut()
            .core
            .tcp_connect_result(Instant::now(), id, false);
        super::settle(&shard);
        return;
    };
    let _ = stream.set_nodelay(true);
    let (to_peer, rx) = mpsc::channel(STREAM_QUEUE);
    let (bind, bind_rx) = oneshot::channel();
    {
        let mut sh = shard.borrow_mut();
        if let Some(p) = sh.core.relay_provider().tcp.peers.get_mut(&id) {
            p.to_peer = Some(to_peer);
            p.bind = Some(bind);
        }
        sh.core.tcp_connect_result(Instant::now(), id, true);
    }
    super::settle(&shard);
    serve_peer(stream, rx, bind_rx).await;
    shard.borrow_mut().core.tcp_closed(id);
    shard
        .borrow_mut()
        .core
        .relay_provider()
        .tcp
        .peers
        .remove(&id);
}

async fn peer_task(
    shard: ShardRef,
    id: u32,
    stream: TcpStream,
    rx: mpsc::Receiver<Vec<u8>>,
    bind_rx: oneshot::Receiver<Queue>,
) {
    let _ = stream.set_nodelay(true);
    serve_peer(stream, rx, bind_rx).await;
    shard.borrow_mut().core.tcp_closed(id);
    shard
        .borrow_mut()
        .core
        .relay_provider()
        .tcp
        .peers
        .remove(&id);
}

/// Copies bytes between a peer connection and its data connection's queues, until either
/// side ends. Nothing is read from the peer before the bind.
async fn serve_peer(
    stream: TcpStream,
    mut rx: mpsc::Receiver<Vec<u8>>,
    bind_rx: oneshot::Receiver<Queue>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let writer = async {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let reader = async {
        let Ok(to_client) = bind_rx.await else {
            return;
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_client.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}

/// Forwarded ConnectionBinds of this shard's IDs: answered by this core.
async fn bind_task(shard: ShardRef, mut rx: mpsc::UnboundedReceiver<BindMsg>) {
    while let Some(m) = rx.recv().await {
        {
            let mut guard = shard.borrow_mut();
            let sh = &mut *guard;
            sh.core
                .relay_provider()
                .tcp
                .binds
                .insert(m.five, (m.to_client.clone(), m.answer));
            if let ClientOutput::Reply { data, .. } =
                sh.core
                    .handle_client(Instant::now(), m.five, &m.frame, &mut sh.out)
            {
                if m.to_client.try_send(data.to_vec()).is_err() {
                    sh.send_errors += 1;
                }
            }
        }
        super::settle(&shard);
        // Refused (401, 400...): dropping the answer tells the data connection to go on.
        shard
            .borrow_mut()
            .core
            .relay_provider()
            .tcp
            .binds
            .remove(&m.five);
    }
}

/// A data connection's ConnectionBind for `id`: forwarded to the owning shard. `Some` with
/// the peer's queue when bound (the success is already in `to_client`), `None` when refused
/// (the error is in `to_client` and the connection carries on as a STUN stream).
pub(super) async fn bind_data(
    shard: &ShardRef,
    five: FiveTuple,
    id: u32,
    frame: Vec<u8>,
    to_client: Queue,
) -> Option<Queue> {
    let hub = shard.borrow_mut().core.relay_provider().tcp.hub.clone();
    let owner = hub.get(usize::from(id as u8) % hub.len().max(1))?;
    let (answer, rx) = oneshot::channel();
    owner
        .send(BindMsg {
            five,
            frame,
            to_client,
            answer,
        })
        .ok()?;
    rx.await.ok()
}

/// Copies a bound data connection's bytes (`rest` first: what followed the ConnectionBind)
/// to the peer until either side ends.
pub(super) async fn pipe_to_peer<R: AsyncRead + Unpin>(mut rd: R, rest: Vec<u8>, to_peer: Queue) {
    if !rest.is_empty() && to_peer.send(rest).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to_peer.send(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            },
            _ = to_peer.closed() => return,
        }
    }
}
