//! Coalescing datagram sender: UDP GSO (`UDP_SEGMENT`) runs, batched with `sendmmsg`.
//!
//! A relay's per-packet cost is almost all kernel: every `sendto` walks the route, the IP output
//! path and (on loopback or a veth) the receive path of the destination. With UDP generic
//! segmentation offload one `sendmsg` carries a *run* of equal-sized datagrams from one socket
//! to one destination, and the stack is walked once per run; the segments are cut apart by the
//! NIC, or late in the stack when the device cannot. Relayed media is exactly that shape: a
//! `recvmmsg` batch from a client holds consecutive packets of one allocation to one peer, and a
//! batch from a relay socket holds consecutive packets for one client.
//!
//! The driver pushes every datagram it wants sent during one receive batch; consecutive pushes
//! with the same socket, destination and size (the last one may be shorter, as GSO allows)
//! join the open run. [`GsoBatch::flush`] then sends the runs in push order, grouping runs that
//! leave from the same socket into one `sendmmsg`, each message with its own `UDP_SEGMENT`
//! control message. Per-flow order is kept because runs are only ever formed from consecutive
//! pushes and sent in order.
//!
//! If the kernel refuses a GSO message (no GSO on the route's device, a segment above the path
//! MTU), that run is sent again one datagram at a time, so behaviour matches plain UDP; after
//! repeated refusals GSO is switched off for this batch object.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::batch::to_storage;

/// Most segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 on older kernels).
pub const MAX_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO send: a UDP datagram's length field is 16 bits, minus the
/// IPv6/UDP headers.
const MAX_GSO_BYTES: usize = 65_000;
/// GSO refusals after which this sender stops trying GSO at all.
const MAX_REFUSALS: u32 = 16;

/// `SOL_UDP` / `UDP_SEGMENT` from linux/udp.h (not in every libc version).
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;

/// One run: `count` segments of `seg` bytes (the last may be `last` bytes) at `start` in `buf`.
#[derive(Clone, Copy)]
struct Run {
    fd: RawFd,
    dest: SocketAddr,
    start: usize,
    seg: usize,
    count: usize,
    last: usize,
}

impl Run {
    fn bytes(&self) -> usize {
        self.seg * (self.count - 1) + self.last
    }

    /// Whether a datagram of `len` bytes for (`fd`, `dest`) can join this run.
    fn accepts(&self, fd: RawFd, dest: SocketAddr, len: usize, gso: bool) -> bool {
        gso && self.fd == fd
            && self.dest == dest
            && self.last == self.seg // no shorter tail yet
            && len <= self.seg
            && len > 0
            && self.count < MAX_SEGMENTS
            && self.bytes() + len <= MAX_GSO_BYTES
    }
}

/// Control-message space for one `UDP_SEGMENT` (a u16), as `CMSG_SPACE` computes it.
const CMSG_BUF: usize = 32;

/// Counters of what a [`GsoBatch`] did, for tests and profiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GsoStats {
    /// Datagrams handed to the kernel.
    pub datagrams: u64,
    /// Send messages (a GSO run counts once).
    pub messages: u64,
    /// System calls made.
    pub syscalls: u64,
    /// Datagrams the kernel refused (counted as lost, as UDP would).
    pub errors: u64,
}

/// The coalescing sender; buffers are allocated once and reused.
pub struct GsoBatch {
    buf: Vec<u8>,
    used: usize,
    runs: Vec<Run>,
    gso: bool,
    refusals: u32,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    cmsgs: Vec<[u64; CMSG_BUF / 8]>,
    stats: GsoStats,
}

// SAFETY: the raw pointers inside iovec/mmsghdr only ever point into this struct's own
// buffers and are rebuilt before each system call.
unsafe impl Send for GsoBatch {}

impl GsoBatch {
    /// Room for `bytes` of queued datagrams in at most `messages` runs. `gso` false sends every
    /// datagram as its own message (still batched per socket with `sendmmsg`).
    pub fn new(bytes: usize, messages: usize, gso: bool) -> Self {
        let messages = messages.max(1);
        Self {
            buf: vec![0; bytes.max(1)],
            used: 0,
            runs: Vec::with_capacity(messages),
            gso,
            refusals: 0,
            // SAFETY: all-zero is a valid value for these plain C structs.
            addrs: vec![unsafe { zeroed() }; messages],
            iovs: vec![unsafe { zeroed() }; messages],
            hdrs: vec![unsafe { zeroed() }; messages],
            cmsgs: vec![[0u64; CMSG_BUF / 8]; messages],
            stats: GsoStats::default(),
        }
    }

    /// Whether GSO is (still) in use.
    pub fn gso_enabled(&self) -> bool {
        self.gso
    }

    /// What was sent so far.
    pub fn stats(&self) -> GsoStats {
        self.stats
    }

    /// Queued datagrams not yet flushed.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Queues a copy of `data` for `dest` from socket `fd`, flushing first if there is no room.
    /// `fd` must stay open until the next [`GsoBatch::flush`]. Datagrams larger than the buffer
    /// are refused (false).
    pub fn push(&mut self, fd: RawFd, dest: SocketAddr, data: &[u8]) -> bool {
        if data.is_empty() || data.len() > self.buf.len() {
            return false;
        }
        let gso = self.gso;
        let joins = self
            .runs
            .last()
            .is_some_and(|r| r.accepts(fd, dest, data.len(), gso));
        if !joins && self.runs.len() == self.runs.capacity() {
            self.flush();
        }
        if self.used + data.len() > self.buf.len() {
            self.flush();
        }
        let start = self.used;
        self.buf[start..start + data.len()].copy_from_slice(data);
        self.used += data.len();
        match self.runs.last_mut() {
            Some(r) if r.accepts(fd, dest, data.len(), gso) => {
                r.count += 1;
                r.last = data.len();
            }
            _ => self.runs.push(Run {
                fd,
                dest,
                start,
                seg: data.len(),
                count: 1,
                last: data.len(),
            }),
        }
        true
    }

    /// Sends everything queued. Errors are counted in [`GsoStats::errors`] and the datagrams
    /// dropped, as UDP would; a full socket buffer (EAGAIN) drops the rest of that socket's
    /// group.
    pub fn flush(&mut self) {
        let mut i = 0;
        while i < self.runs.len() {
            let fd = self.runs[i].fd;
            let mut j = i + 1;
            while j < self.runs.len() && self.runs[j].fd == fd {
                j += 1;
            }
            self.send_group(i, j);
            i = j;
        }
        self.runs.clear();
        self.used = 0;
    }

    /// Sends runs `from..to`, all from one socket, with `sendmmsg`.
    fn send_group(&mut self, from: usize, to: usize) {
        let base = self.buf.as_mut_ptr();
        let fd = self.runs[from].fd;
        for k in 0..to - from {
            let r = self.runs[from + k];
            // SAFETY: the run lies inside `buf` (push only records what it copied in).
            self.iovs[k].iov_base = unsafe { base.add(r.start) }.cast();
            self.iovs[k].iov_len = r.bytes();
            let namelen = to_storage(&r.dest, &mut self.addrs[k]);
            let h = &mut self.hdrs[k].msg_hdr;
            h.msg_name = (&mut self.addrs[k] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = namelen;
            h.msg_iov = &mut self.iovs[k];
            h.msg_iovlen = 1;
            h.msg_flags = 0;
            if r.count > 1 {
                let cbuf = &mut self.cmsgs[k];
                h.msg_control = cbuf.as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE is a pure size computation.
                h.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as _;
                // SAFETY: msg_control points at CMSG_BUF zeroed-capable bytes, which is at least
                // CMSG_SPACE(2); CMSG_FIRSTHDR/CMSG_DATA stay inside it.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(h);
                    (*c).cmsg_level = SOL_UDP;
                    (*c).cmsg_type = UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), r.seg as u16);
                }
            } else {
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
            }
            self.hdrs[k].msg_len = 0;
        }
        let n = to - from;
        let mut k = 0;
        while k < n {
            self.stats.syscalls += 1;
            // SAFETY: headers k..n point at live buffers owned by self.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs.as_mut_ptr().add(k),
                    (n - k) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                for m in k..k + r as usize {
                    self.stats.messages += 1;
                    self.stats.datagrams += self.runs[from + m].count as u64;
                }
                k += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    for m in k..n {
                        self.stats.errors += self.runs[from + m].count as u64;
                    }
                    return;
                }
                _ => {
                    // Message k was refused: a GSO run is retried datagram by datagram (the
                    // device or path may not take GSO), a single datagram is dropped.
                    let run = self.runs[from + k];
                    if run.count > 1 {
                        self.refusals += 1;
                        if self.refusals >= MAX_REFUSALS {
                            self.gso = false;
                        }
                        self.send_singly(run);
                    } else {
                        self.stats.errors += 1;
                    }
                    k += 1;
                }
            }
        }
    }

    /// Sends a run one datagram per `sendto`.
    fn send_singly(&mut self, run: Run) {
        for s in 0..run.count {
            let off = run.start + s * run.seg;
            let len = if s + 1 == run.count {
                run.last
            } else {
                run.seg
            };
            self.stats.syscalls += 1;
            match crate::batch::send_to(run.fd, &self.buf[off..off + len], run.dest) {
                Ok(_) => {
                    self.stats.messages += 1;
                    self.stats.datagrams += 1;
                }
                Err(_) => self.stats.errors += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RecvBatch;
    use std::os::fd::AsRawFd;

    fn sock() -> std::net::UdpSocket {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    fn drain(s: &std::net::UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut out = Vec::new();
        let mut rb = RecvBatch::new(64, 2048, 0);
        for _ in 0..100 {
            match rb.recv(s.as_raw_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let (slot, len, src) = rb.slot_mut(i).unwrap();
                        out.push((slot[..len].to_vec(), src));
                    }
                }
                Err(_) => break,
            }
        }
        out
    }

    #[test]
    fn runs_coalesce_and_arrive_as_separate_datagrams_in_order() {
        let a = sock();
        let a2 = sock();
        let peer = sock();
        let other = sock();
        let p = peer.local_addr().unwrap();
        let o = other.local_addr().unwrap();
        let mut g = GsoBatch::new(64 * 1024, 64, true);
        // 10 equal datagrams a -> peer, a shorter tail, then one to another destination,
        // then 3 from a second socket to the peer.
        for i in 0..10u8 {
            assert!(g.push(a.as_raw_fd(), p, &[i; 100]));
        }
        assert!(g.push(a.as_raw_fd(), p, &[10; 40]));
        assert!(
            g.push(a.as_raw_fd(), p, &[11; 100]),
            "after a tail: new run"
        );
        assert!(g.push(a.as_raw_fd(), o, &[12; 100]));
        for i in 13..16u8 {
            assert!(g.push(a2.as_raw_fd(), p, &[i; 100]));
        }
        g.flush();
        let st = g.stats();
        assert_eq!(st.datagrams, 16);
        assert_eq!(st.errors, 0);
        assert_eq!(st.messages, 4, "runs: 11 (with tail), 1, 1, 3");
        assert_eq!(st.syscalls, 2, "one sendmmsg per socket");
        let got = drain(&peer);
        assert_eq!(got.len(), 15);
        let from_a: Vec<_> = got
            .iter()
            .filter(|(_, s)| *s == a.local_addr().unwrap())
            .map(|(d, _)| (d[0], d.len()))
            .collect();
        let mut want: Vec<(u8, usize)> = (0..10u8).map(|i| (i, 100)).collect();
        want.push((10, 40));
        want.push((11, 100));
        assert_eq!(from_a, want);
        let from_a2: Vec<_> = got
            .iter()
            .filter(|(_, s)| *s == a2.local_addr().unwrap())
            .map(|(d, _)| d.clone())
            .collect();
        assert_eq!(from_a2, vec![vec![13; 100], vec![14; 100], vec![15; 100]]);
        let got_o = drain(&other);
        assert_eq!(got_o.len(), 1);
        assert_eq!(got_o[0].0, vec![12; 100]);
    }

    #[test]
    fn without_gso_every_datagram_is_its_own_message() {
        let a = sock();
        let peer = sock();
        let p = peer.local_addr().unwrap();
        let mut g = GsoBatch::new(4096, 8, false);
        for i in 0..5u8 {
            assert!(g.push(a.as_raw_fd(), p, &[i; 50]));
        }
        g.flush();
        assert_eq!(g.stats().messages, 5);
        assert_eq!(g.stats().syscalls, 1);
        let got = drain(&peer);
        assert_eq!(got.len(), 5);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, (d, _))| d == &vec![i as u8; 50]));
    }

    #[test]
    fn a_full_buffer_flushes_instead_of_losing() {
        let a = sock();
        let peer = sock();
        let p = peer.local_addr().unwrap();
        // Room for 3 datagrams of 100 bytes, at most 2 runs.
        let mut g = GsoBatch::new(300, 2, true);
        for i in 0..7u8 {
            assert!(g.push(a.as_raw_fd(), p, &[i; 100]));
        }
        assert!(
            !g.push(a.as_raw_fd(), p, &[0; 301]),
            "larger than the buffer"
        );
        g.flush();
        assert!(g.is_empty());
        let got = drain(&peer);
        assert_eq!(got.len(), 7);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, (d, _))| d == &vec![i as u8; 100]));
    }

    #[test]
    fn a_refused_gso_run_falls_back_to_single_datagrams() {
        // A destination the socket family cannot reach fails for every message; the batch
        // counts the loss and does not stall or panic.
        let a = sock();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let mut g = GsoBatch::new(4096, 8, true);
        for _ in 0..4 {
            assert!(g.push(a.as_raw_fd(), v6, &[1; 100]));
        }
        g.flush();
        let st = g.stats();
        assert_eq!(st.datagrams, 0);
        assert_eq!(st.errors, 4);
    }

    #[test]
    fn gro_hands_a_gso_run_over_whole_and_says_its_segment_size() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        if !crate::batch::enable_gro(b.as_raw_fd()) {
            return; // kernel without UDP GRO: nothing to test
        }
        let mut g = GsoBatch::new(8192, 8, true);
        for i in 0..5u8 {
            g.push(a.as_raw_fd(), b.local_addr().unwrap(), &[i; 100]);
        }
        g.push(a.as_raw_fd(), b.local_addr().unwrap(), &[9; 30]);
        g.flush();
        let mut rb = RecvBatch::new(8, 65536, 4);
        rb.set_gro(true);
        let mut got = Vec::new();
        for _ in 0..10 {
            let Ok(n) = rb.recv(b.as_raw_fd()) else { break };
            for i in 0..n {
                let seg = rb.segment_size(i);
                let (slot, len, _) = rb.slot_mut(i).unwrap();
                let data = &slot[4..4 + len];
                let step = if seg == 0 { len } else { seg };
                got.extend(data.chunks(step).map(<[u8]>::to_vec));
            }
        }
        let mut want: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100]).collect();
        want.push(vec![9; 30]);
        assert_eq!(got, want);
    }
}
