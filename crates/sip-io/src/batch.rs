//! Batched UDP I/O for the SIP shards: one `recvmmsg` takes every datagram
//! queued (up to a batch) and one `sendmmsg` sends every answer of a batch,
//! instead of a system call per message each way. Minimal copy of the
//! wrappers in `natter-turn-io` (this crate must not depend on it).
//!
//! Buffers are allocated once per batch object and reused.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Converts a kernel socket address into a std one.
fn from_storage(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
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
fn to_storage(addr: &SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
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

/// A reusable receive batch: `count` slots of `max_len` bytes.
pub(crate) struct RecvBatch {
    slot: usize,
    buf: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    filled: usize,
}

// SAFETY: the raw pointers inside iovec/mmsghdr only ever point into this struct's own
// buffers and are rebuilt before each system call.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub(crate) fn new(count: usize, max_len: usize) -> Self {
        Self {
            slot: max_len,
            buf: vec![0; max_len * count],
            lens: vec![0; count],
            // SAFETY: all-zero is a valid value for these plain C structs.
            addrs: vec![unsafe { zeroed() }; count],
            iovs: vec![unsafe { zeroed() }; count],
            hdrs: vec![unsafe { zeroed() }; count],
            filled: 0,
        }
    }

    /// Receives up to a batch from non-blocking `fd`. `Err(WouldBlock)` when nothing is queued.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let count = self.lens.len();
        let base = self.buf.as_mut_ptr();
        for i in 0..count {
            // SAFETY: `i * slot` is inside `buf` (it has `count * slot` bytes).
            self.iovs[i].iov_base = unsafe { base.add(i * self.slot) }.cast();
            self.iovs[i].iov_len = self.slot;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
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
        }
        self.filled = n;
        Ok(n)
    }

    /// Datagram `i` of the last receive and its source (None for a truncated
    /// datagram or an unknown address family).
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.filled || self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let from = from_storage(&self.addrs[i])?;
        let start = i * self.slot;
        Some((self.buf.get(start..start + self.lens[i])?, from))
    }
}

/// Sends many datagrams with one `sendmmsg`.
pub(crate) struct SendBatch {
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: as for RecvBatch: pointers are rebuilt before each call.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub(crate) fn new() -> Self {
        Self {
            addrs: Vec::new(),
            iovs: Vec::new(),
            hdrs: Vec::new(),
        }
    }

    /// Sends `msgs` (bytes, destination) on non-blocking `fd`; returns how many
    /// of the first ones went out (the rest are the caller's to retry).
    pub(crate) fn send(&mut self, fd: RawFd, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

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
        let mut sb = SendBatch::new();
        assert_eq!(sb.send(a.as_raw_fd(), &refs).expect("send"), 5);
        let mut rb = RecvBatch::new(8, 2048);
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
        let mut small = RecvBatch::new(2, 4);
        sb.send(a.as_raw_fd(), &refs[..1]).expect("send");
        assert_eq!(small.recv(b.as_raw_fd()).expect("recv"), 1);
        assert!(small.get(0).is_none(), "truncated datagram is dropped");
    }
}
