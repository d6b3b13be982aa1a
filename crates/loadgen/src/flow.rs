//! The data path of a run: an open-loop paced sender over many connected sockets and a sink
//! thread that counts what arrives.
//!
//! The sender wakes every `tick`, computes the budget the [`Pacer`] allows, and spends it in
//! batches of `batch` datagrams per socket, round-robin over the sockets. Aggregate traffic
//! stays smooth (a wake-up sends only what is due) while each system call still carries a
//! batch. Sleeping between wake-ups leaves the CPU to the server on small machines.

use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batch::{wait_readable, RecvBatch, SendBatch};
use crate::pacer::Pacer;

/// Knobs of the paced sender.
#[derive(Clone, Copy, Debug)]
pub struct PaceConfig {
    /// Aggregate offered rate, datagrams per second.
    pub rate_per_s: u64,
    /// How long to offer it.
    pub duration: Duration,
    /// Datagrams per `sendmmsg` on one socket.
    pub batch: usize,
    /// Longest sleep between wake-ups.
    pub tick: Duration,
    /// Send each batch as UDP GSO messages (see `SendBatch::with_gso`).
    pub gso: bool,
}

/// What the sender did.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendStats {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Datagrams the kernel refused (counted as offered and lost).
    pub send_errors: u64,
    /// Time from the first to the last send.
    pub elapsed: Duration,
}

/// Sends, for socket `i`, copies of `packets[i]` at the paced aggregate rate until the total is
/// offered. `fill` may rewrite a datagram just before it leaves (transaction ids, sequence
/// numbers); it gets the socket index, the global sequence number and the buffer.
pub fn paced_send<F>(
    sockets: &[RawFd],
    packets: &mut [Vec<u8>],
    config: PaceConfig,
    mut fill: F,
) -> SendStats
where
    F: FnMut(usize, u64, &mut [u8]),
{
    let mut stats = SendStats::default();
    if sockets.is_empty() || packets.len() != sockets.len() {
        return stats;
    }
    let batch = config.batch.clamp(1, crate::batch::MAX_BATCH);
    // One reusable copy per batch slot and socket, so `fill` can differ per datagram.
    let mut slots: Vec<Vec<Vec<u8>>> = packets
        .iter()
        .map(|template| vec![template.clone(); batch])
        .collect();
    let mut sender = if config.gso {
        SendBatch::with_gso()
    } else {
        SendBatch::new()
    };
    let start = Instant::now();
    let pacer = Pacer::new(start, config.rate_per_s, config.duration);
    let total = pacer.total();
    let mut offered: u64 = 0;
    let mut cursor = 0;
    while offered < total {
        let now = Instant::now();
        let due = pacer.due(now);
        // Spend whole batches; the remainder waits for the next wake-up, except at the end.
        while due - offered >= batch as u64 || (due == total && offered < total) {
            let n = (due - offered).min(batch as u64) as usize;
            let socket_slots = &mut slots[cursor];
            for (k, slot) in socket_slots.iter_mut().take(n).enumerate() {
                fill(cursor, offered + k as u64, slot);
            }
            let refs: Vec<&[u8]> = socket_slots.iter().take(n).map(Vec::as_slice).collect();
            match sender.send(sockets[cursor], &refs) {
                Ok(done) => {
                    stats.sent += done as u64;
                    stats.send_errors += (n - done) as u64;
                }
                Err(_) => stats.send_errors += n as u64,
            }
            offered += n as u64;
            cursor = (cursor + 1) % sockets.len();
        }
        if offered >= total {
            break;
        }
        // Sleep until the next whole batch is due, at most one tick.
        let next = pacer.instant_of(offered + batch as u64);
        let now = Instant::now();
        if next > now {
            std::thread::sleep((next - now).min(config.tick));
        }
    }
    stats.elapsed = start.elapsed();
    stats
}

/// How long a receiver waits after the first datagram wakes it, so that `recvmmsg` returns a
/// batch rather than one datagram (at 100 k/s, 200 µs gathers about 20).
pub const COALESCE: Duration = Duration::from_micros(200);

/// Counters a sink thread updates while it runs.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Datagrams the classifier accepted.
    pub matched: AtomicU64,
    /// Datagrams it rejected (strays, other runs, malformed).
    pub unmatched: AtomicU64,
}

/// What a [`Sink`] hands each datagram to, for receivers that also act once per received
/// batch (answer in batches, say). [`Sink::spawn`] takes a plain closure instead.
pub trait Receiver: Send + 'static {
    /// Whether `packet`, received on socket `socket`, belongs to this run.
    fn datagram(&mut self, socket: usize, packet: &[u8]) -> bool;

    /// Called after each `recvmmsg` batch of socket `socket` has been handed over.
    fn batch_end(&mut self, _socket: usize) {}
}

/// A closure as a [`Receiver`].
struct Classify<C>(C);

impl<C> Receiver for Classify<C>
where
    C: FnMut(usize, &[u8]) -> bool + Send + 'static,
{
    fn datagram(&mut self, socket: usize, packet: &[u8]) -> bool {
        (self.0)(socket, packet)
    }
}

/// A thread receiving on some sockets until told to stop.
pub struct Sink {
    counters: Arc<SinkCounters>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Sink {
    /// Starts counting on `sockets`; `classify(socket_index, datagram)` says whether a datagram
    /// belongs to this run. The thread holds the sockets and stops within one poll interval of
    /// [`Sink::stop`].
    pub fn spawn<C>(sockets: Vec<Arc<UdpSocket>>, classify: C) -> Self
    where
        C: FnMut(usize, &[u8]) -> bool + Send + 'static,
    {
        Self::spawn_receiver(sockets, Classify(classify))
    }

    /// Like [`Sink::spawn`], with a [`Receiver`] that also hears when each batch ends.
    pub fn spawn_receiver<R: Receiver>(sockets: Vec<Arc<UdpSocket>>, mut classify: R) -> Self {
        let counters = Arc::new(SinkCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread_counters = Arc::clone(&counters);
        let thread_stop = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let fds: Vec<RawFd> = sockets.iter().map(|s| s.as_raw_fd()).collect();
            let mut batch = RecvBatch::new(crate::batch::MAX_BATCH);
            let mut ready = Vec::new();
            while !thread_stop.load(Ordering::Relaxed) {
                if wait_readable(&fds, Duration::from_millis(20), &mut ready).is_err() {
                    break;
                }
                if ready.is_empty() {
                    continue;
                }
                // Let a batch build up: one wake-up per datagram would make the sink, not the
                // server, the bottleneck. The socket buffers (4 MiB) absorb far more than this.
                std::thread::sleep(COALESCE);
                // Read only the sockets `poll` reports readable: with many client sockets, a
                // `recvmmsg` on each per wake-up mostly finds nothing.
                if wait_readable(&fds, Duration::ZERO, &mut ready).is_err() {
                    break;
                }
                for &index in &ready {
                    let Some(&fd) = fds.get(index) else { continue };
                    // Drain this socket, bounded so one busy socket cannot starve the others.
                    for _ in 0..64 {
                        let n = batch.recv(fd).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let mut matched = 0;
                        for i in 0..n {
                            if classify.datagram(index, batch.packet(i)) {
                                matched += 1;
                            }
                        }
                        classify.batch_end(index);
                        thread_counters
                            .matched
                            .fetch_add(matched, Ordering::Relaxed);
                        thread_counters
                            .unmatched
                            .fetch_add(n as u64 - matched, Ordering::Relaxed);
                    }
                }
            }
        });
        Self {
            counters,
            stop,
            handle: Some(handle),
        }
    }

    /// Datagrams matched so far.
    pub fn matched(&self) -> u64 {
        self.counters.matched.load(Ordering::Relaxed)
    }

    /// Datagrams rejected so far.
    pub fn unmatched(&self) -> u64 {
        self.counters.unmatched.load(Ordering::Relaxed)
    }

    /// Waits until `expected` datagrams matched or `drain` passed, whichever is first.
    pub fn drain(&self, expected: u64, drain: Duration) {
        let deadline = Instant::now() + drain;
        while self.matched() < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        (self.matched(), self.unmatched())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
