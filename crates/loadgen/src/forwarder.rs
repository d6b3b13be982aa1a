//! The bare UDP forwarder: the physical ceiling column of the benchmark.
//!
//! It does what a TURN relay does minus all protocol work: receive a batch on the listening
//! socket with `recvmmsg`, and hand it on with `sendmmsg` from a second socket (a TURN server
//! also relays from a socket other than its listening one). Without `--to` it echoes each
//! datagram back to its source, the ceiling for request/answer loads such as STUN Binding.
//! One thread, like one relay worker. Sends use UDP GSO for runs of equal-sized datagrams to
//! one destination unless `--no-gso`, the same I/O as the TURN server's data path.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::batch::{bind_udp, wait_readable, RawAddr, RecvBatch, SendBatch, MAX_BATCH};

/// Where the forwarder sends what it receives.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Back to each datagram's source, from the listening socket.
    Echo,
    /// To one fixed address, from a separate socket.
    Forward(SocketAddr),
}

/// Counters of a forwarder run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent on.
    pub forwarded: u64,
}

/// How the forwarder batches its I/O.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Datagrams per `recvmmsg`.
    pub batch: usize,
    /// How long to wait after a wake-up so a batch builds up (zero: none).
    pub coalesce: Duration,
    /// Send runs of equal-sized datagrams to one destination as UDP GSO messages, as the TURN
    /// server does (falls back to plain messages if the kernel refuses).
    pub gso: bool,
}

/// Runs until `max_duration` passes or `stop()` returns true (checked at least every 100 ms).
/// `ready` is called once the socket is bound, with the bound address.
pub fn run(
    listen: SocketAddr,
    target: Target,
    batching: Batching,
    max_duration: Duration,
    mut ready: impl FnMut(SocketAddr),
    mut stop: impl FnMut() -> bool,
) -> io::Result<ForwardStats> {
    let socket = bind_udp(listen, 4 << 20)?;
    let out = match target {
        Target::Echo => None,
        Target::Forward(to) => {
            let bind: SocketAddr = if to.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let out = bind_udp(bind, 4 << 20)?;
            out.connect(to)?;
            Some(out)
        }
    };
    ready(socket.local_addr()?);
    let fd = socket.as_raw_fd();
    let Batching {
        batch,
        coalesce,
        gso,
    } = batching;
    let mut inbound = RecvBatch::new(batch.clamp(1, MAX_BATCH));
    let mut sender = if gso {
        SendBatch::with_gso()
    } else {
        SendBatch::new()
    };
    let mut sources: Vec<RawAddr> = Vec::with_capacity(MAX_BATCH);
    let mut stats = ForwardStats::default();
    let deadline = Instant::now() + max_duration;
    let mut ready_fds = Vec::new();
    while Instant::now() < deadline && !stop() {
        wait_readable(&[fd], Duration::from_millis(100), &mut ready_fds)?;
        if ready_fds.is_empty() {
            continue;
        }
        if !coalesce.is_zero() {
            std::thread::sleep(coalesce);
        }
        // Drain what is queued, bounded so the stop checks still run under full load.
        for _ in 0..1024 {
            let n = inbound.recv(fd)?;
            if n == 0 {
                break;
            }
            stats.received += n as u64;
            let packets: Vec<&[u8]> = (0..n).map(|i| inbound.packet(i)).collect();
            let sent = match &out {
                Some(out) => sender.send(out.as_raw_fd(), &packets),
                None => {
                    sources.clear();
                    sources.extend((0..n).filter_map(|i| inbound.raw_source(i)));
                    sender.send_to(fd, &packets, &sources)
                }
            };
            stats.forwarded += sent.unwrap_or(0) as u64;
        }
    }
    Ok(stats)
}
