//! Batched datagram I/O: one `recvmmsg` or `sendmmsg` system call moves up to a batch of
//! datagrams, which is where most of a relay's per-packet cost goes otherwise.
//!
//! Buffers are allocated once per batch object and reused for every call: the data path does
//! not allocate. Receive slots have configurable *headroom* in front of the datagram so a core
//! can prepend a header in place (TURN puts the 4-byte ChannelData header there) instead of
//! copying the payload.
//!
//! Its own crate because two drivers use it (natter-turn-io's TURN data path and
//! natter-sip-io's UDP shards) and neither should depend on the other; it wraps only the
//! system calls and has no dependency but libc.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Converts a kernel socket address into a std one.
pub fn from_storage(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and storage is larger.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` into kernel form; returns the length to pass as `msg_namelen`.
pub fn to_storage(addr: &SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// `SOL_UDP` / `UDP_GRO` from linux/udp.h (not in every libc version).
const SOL_UDP: libc::c_int = 17;
const UDP_GRO: libc::c_int = 104;

/// Asks the kernel to hand this UDP socket coalesced runs of datagrams (UDP GRO, Linux 5.0):
/// one receive then carries up to 64 KiB of equal-sized segments, split again by
/// [`RecvBatch::segment_size`]. False when the kernel does not have it.
pub fn enable_gro(fd: RawFd) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: plain setsockopt with an int option on a socket the caller owns.
    unsafe {
        libc::setsockopt(
            fd,
            SOL_UDP,
            UDP_GRO,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// A reusable receive batch.
///
/// With [`RecvBatch::set_gro`] on, each slot also gets a control buffer for the `UDP_GRO`
/// segment size; slots must then be large enough for a coalesced run (64 KiB), and callers
/// walk each datagram's segments.
pub struct RecvBatch {
    slot: usize,
    headroom: usize,
    buf: Vec<u8>,
    lens: Vec<usize>,
    segs: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    ctrl: Vec<[u64; 8]>,
    gro: bool,
    filled: usize,
}

// SAFETY: the raw pointers inside iovec/mmsghdr only ever point into this struct's own
// buffers and are rebuilt before each system call.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// `count` slots, each holding `headroom` free bytes then up to `max_len` datagram bytes.
    pub fn new(count: usize, max_len: usize, headroom: usize) -> Self {
        let slot = headroom + max_len;
        Self {
            slot,
            headroom,
            buf: vec![0; slot * count],
            lens: vec![0; count],
            segs: vec![0; count],
            // SAFETY: all-zero is a valid value for these plain C structs.
            addrs: vec![unsafe { zeroed() }; count],
            iovs: vec![unsafe { zeroed() }; count],
            hdrs: vec![unsafe { zeroed() }; count],
            ctrl: vec![[0; 8]; count],
            gro: false,
            filled: 0,
        }
    }

    /// Whether to read `UDP_GRO` segment sizes (for sockets with [`enable_gro`] on).
    pub fn set_gro(&mut self, on: bool) {
        self.gro = on;
    }

    /// The GRO segment size of datagram `i`: 0 when it is a single datagram, otherwise its
    /// bytes are consecutive datagrams of this size (the last may be shorter).
    pub fn segment_size(&self, i: usize) -> usize {
        if i < self.filled {
            self.segs[i]
        } else {
            0
        }
    }

    /// Receives up to a batch from non-blocking `fd`. `Err(WouldBlock)` when nothing is queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let count = self.lens.len();
        let base = self.buf.as_mut_ptr();
        for i in 0..count {
            // SAFETY: `i * slot + headroom` is inside `buf` (it has `count * slot` bytes).
            self.iovs[i].iov_base = unsafe { base.add(i * self.slot + self.headroom) }.cast();
            self.iovs[i].iov_len = self.slot - self.headroom;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            if self.gro {
                h.msg_control = self.ctrl[i].as_mut_ptr().cast();
                h.msg_controllen = size_of::<[u64; 8]>() as _;
            } else {
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
            }
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers owned by self, sized as declared.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.filled = 0;
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            self.lens[i] = self.hdrs[i].msg_len as usize;
            self.segs[i] = if self.gro { self.gro_size(i) } else { 0 };
        }
        self.filled = n;
        Ok(n)
    }

    /// The `UDP_GRO` control message of header `i`, if the kernel wrote one.
    fn gro_size(&self, i: usize) -> usize {
        let h = &self.hdrs[i].msg_hdr;
        if h.msg_controllen == 0 || h.msg_control.is_null() {
            return 0;
        }
        // SAFETY: the kernel filled msg_control (our buffer) with msg_controllen bytes of
        // well-formed control messages; the CMSG_* walkers stay inside that length.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                    let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    return usize::try_from(v).unwrap_or(0);
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        0
    }

    /// The length of read `i` of the last `recv` (a whole run with GRO).
    pub fn len_of(&self, i: usize) -> Option<usize> {
        (i < self.filled).then(|| self.lens[i])
    }

    /// How many datagrams the last `recv` filled.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// True when the last `recv` got nothing.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The headroom each slot has before its datagram.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// Datagram `i` of the last receive and its source; `None` when it was truncated by the
    /// slot size (a message larger than the caller accepts) or has an unknown address family.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.filled || self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let src = from_storage(&self.addrs[i])?;
        let start = i * self.slot + self.headroom;
        Some((self.buf.get(start..start + self.lens[i])?, src))
    }

    /// Datagram `i`: its whole slot (headroom + datagram + spare), its length and its source.
    ///
    /// A datagram truncated by the slot size is reported with the slot's full length; callers
    /// size slots above the largest datagram they accept.
    pub fn slot_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)> {
        if i >= self.filled {
            return None;
        }
        let src = from_storage(&self.addrs[i])?;
        let len = self.lens[i];
        let slot = &mut self.buf[i * self.slot..(i + 1) * self.slot];
        Some((slot, len, src))
    }
}

/// A reusable send batch: datagrams are copied in, then flushed with one `sendmmsg`.
pub struct SendBatch {
    max_len: usize,
    buf: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    namelens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    queued: usize,
}

// SAFETY: as for RecvBatch.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// Room for `count` datagrams of up to `max_len` bytes.
    pub fn new(count: usize, max_len: usize) -> Self {
        Self {
            max_len,
            buf: vec![0; max_len * count],
            lens: vec![0; count],
            // SAFETY: all-zero is valid for these C structs.
            addrs: vec![unsafe { zeroed() }; count],
            namelens: vec![0; count],
            iovs: vec![unsafe { zeroed() }; count],
            hdrs: vec![unsafe { zeroed() }; count],
            queued: 0,
        }
    }

    /// True when no more datagrams fit; flush first.
    pub fn is_full(&self) -> bool {
        self.queued == self.lens.len()
    }

    /// Number of queued datagrams.
    pub fn len(&self) -> usize {
        self.queued
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Queues a copy of `data` for `dest`. Returns false (and queues nothing) when the batch is
    /// full or the datagram is larger than a slot.
    pub fn push(&mut self, dest: SocketAddr, data: &[u8]) -> bool {
        if self.is_full() || data.len() > self.max_len {
            return false;
        }
        let i = self.queued;
        self.buf[i * self.max_len..i * self.max_len + data.len()].copy_from_slice(data);
        self.lens[i] = data.len();
        self.namelens[i] = to_storage(&dest, &mut self.addrs[i]);
        self.queued += 1;
        true
    }

    /// Sends everything queued on non-blocking `fd`. Returns how many were sent; datagrams the
    /// kernel refused (full buffer) are dropped, as UDP would, and counted by the caller.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.queued;
        if n == 0 {
            return Ok(0);
        }
        let base = self.buf.as_mut_ptr();
        for i in 0..n {
            // SAFETY: slot i lies inside buf.
            self.iovs[i].iov_base = unsafe { base.add(i * self.max_len) }.cast();
            self.iovs[i].iov_len = self.lens[i];
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = self.namelens[i];
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        let mut sent = 0usize;
        let mut result = Ok(());
        while sent < n {
            // SAFETY: headers sent..n point at live, initialised buffers.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs.as_mut_ptr().add(sent),
                    (n - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => break,
                    _ => {
                        // One bad destination (e.g. EPERM from a firewall, ENETUNREACH) must not
                        // stall the rest of the batch: skip it and go on.
                        sent += 1;
                        result = Err(e);
                        continue;
                    }
                }
            }
            if r == 0 {
                break;
            }
            sent += r as usize;
        }
        self.queued = 0;
        match result {
            Ok(()) => Ok(sent),
            Err(e) if sent == 0 => Err(e),
            Err(_) => Ok(sent),
        }
    }
}

/// Sends many borrowed datagrams with one `sendmmsg`, without copying them: for callers that
/// hold their messages already and retry what did not go out ([`SendBatch`] copies into its
/// own slots and drops what the kernel refuses, as a relay should).
pub struct SendSlices {
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: as for RecvBatch: pointers are rebuilt before each call.
unsafe impl Send for SendSlices {}

impl SendSlices {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            addrs: Vec::new(),
            iovs: Vec::new(),
            hdrs: Vec::new(),
        }
    }

    /// Sends `msgs` (bytes, destination) on non-blocking `fd`; returns how many
    /// of the first ones went out (the rest are the caller's to retry).
    pub fn send(&mut self, fd: RawFd, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
        let n = msgs.len();
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: all-zero is a valid value for these plain C structs.
        self.addrs.resize(n, unsafe { zeroed() });
        self.iovs.resize(n, unsafe { zeroed() });
        self.hdrs.resize(n, unsafe { zeroed() });
        for (i, (bytes, to)) in msgs.iter().enumerate() {
            let len = to_storage(to, &mut self.addrs[i]);
            self.iovs[i].iov_base = bytes.as_ptr() as *mut libc::c_void;
            self.iovs[i].iov_len = bytes.len();
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = len;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points at `msgs`' buffers (alive for this call) and our
        // own address storage.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// One non-blocking `sendto` on a raw socket.
///
/// The driver uses this instead of tokio's `try_send_to`, which refuses to even try until the
/// reactor has reported the socket writable once: a relay socket opened in the middle of a
/// batch would otherwise drop its first datagrams.
pub fn send_to(fd: RawFd, data: &[u8], dest: SocketAddr) -> io::Result<usize> {
    // SAFETY: zeroed storage is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = to_storage(&dest, &mut ss);
    // SAFETY: data and ss are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn batch_round_trip_over_loopback() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let b_addr = b.local_addr().unwrap();
        let mut sb = SendBatch::new(8, 64);
        for i in 0..5u8 {
            assert!(sb.push(b_addr, &[i; 10]));
        }
        assert!(!sb.push(b_addr, &[0; 65]), "oversize refused");
        assert_eq!(sb.flush(a.as_raw_fd()).unwrap(), 5);
        // Loopback delivery is synchronous with sendmmsg's return, so all five are queued now.
        let mut rb = RecvBatch::new(8, 64, 4);
        let n = rb.recv(b.as_raw_fd()).unwrap();
        assert_eq!(n, 5);
        for i in 0..5 {
            let (slot, len, src) = rb.slot_mut(i).unwrap();
            assert_eq!(len, 10);
            assert_eq!(src, a.local_addr().unwrap());
            assert_eq!(&slot[4..14], &[i as u8; 10]);
        }
        assert!(rb.slot_mut(5).is_none());
        let e = rb.recv(b.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn ipv6_addresses_survive_conversion() {
        let addr: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
        // SAFETY: zeroed storage is valid.
        let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
        to_storage(&addr, &mut ss);
        assert_eq!(from_storage(&ss), Some(addr));
    }

    #[test]
    fn batches_carry_datagrams_and_sources() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        b.set_nonblocking(true).expect("nonblocking");
        let to = b.local_addr().expect("addr");
        let msgs: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("OPTIONS {i}").into_bytes())
            .collect();
        let refs: Vec<(&[u8], SocketAddr)> = msgs.iter().map(|m| (&m[..], to)).collect();
        let mut sb = SendSlices::new();
        assert_eq!(sb.send(a.as_raw_fd(), &refs).expect("send"), 5);
        let mut rb = RecvBatch::new(8, 2048, 0);
        let mut got = Vec::new();
        // Loopback delivery is synchronous: every datagram is queued already.
        for _ in 0..5 {
            match rb.recv(b.as_raw_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let (d, from) = rb.get(i).expect("datagram");
                        assert_eq!(from, a.local_addr().expect("addr"));
                        got.push(d.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, msgs);
        let mut small = RecvBatch::new(2, 4, 0);
        sb.send(a.as_raw_fd(), &refs[..1]).expect("send");
        assert_eq!(small.recv(b.as_raw_fd()).expect("recv"), 1);
        assert!(small.get(0).is_none(), "truncated datagram is dropped");
    }
}
