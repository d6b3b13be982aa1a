//! Batched UDP I/O with `recvmmsg(2)` / `sendmmsg(2)`.
//!
//! The load generator and the bare forwarder share these helpers so that the forwarder column of
//! the benchmark is a fair ceiling: both sides move datagrams in the same batch sizes with the
//! same system calls, and whatever the TURN servers add on top is protocol work.
//!
//! Sockets stay in blocking mode: sends then wait for socket buffer space instead of failing,
//! so a full local buffer slows the generator down rather than being counted as server loss.
//! Receives use `MSG_DONTWAIT` after [`wait_readable`] says data is there, so one thread can
//! serve many sockets with a bounded wait.

use std::io;
use std::mem;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::time::Duration;

/// Largest datagram the helpers keep; anything longer is truncated (and flagged by the kernel).
pub const SLOT_SIZE: usize = 2048;

/// Most datagrams moved by one system call.
pub const MAX_BATCH: usize = 64;

/// Receive buffer for up to [`MAX_BATCH`] datagrams and their source addresses.
///
/// The `iovec`/`mmsghdr` arrays are built once and point into the heap buffers of the same
/// struct (heap storage does not move when the struct does), so a receive costs one system call
/// and no allocation.
pub struct RecvBatch {
    data: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    count: usize,
}

impl RecvBatch {
    /// A batch of `capacity` slots (clamped to `1..=MAX_BATCH`).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_BATCH);
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
        let zero_addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut batch = Self {
            data: vec![0; capacity * SLOT_SIZE],
            lens: vec![0; capacity],
            addrs: vec![zero_addr; capacity],
            iovecs: Vec::with_capacity(capacity),
            // SAFETY: mmsghdr is plain old data; all-zero is a valid starting value.
            headers: vec![unsafe { mem::zeroed() }; capacity],
            count: 0,
        };
        for slot in batch.data.chunks_mut(SLOT_SIZE) {
            batch.iovecs.push(libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            });
        }
        for (i, header) in batch.headers.iter_mut().enumerate() {
            header.msg_hdr.msg_iov = &mut batch.iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_storage).cast();
        }
        batch
    }

    /// Receives whatever is queued on `fd` without waiting; returns the number of datagrams
    /// (0 when nothing was queued).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        for header in &mut self.headers {
            header.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as u32;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        // SAFETY: every header points at heap buffers owned by `self` (built in `new`, never
        // reallocated), which outlive the call; the lengths passed match the allocations.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        let n = n as usize;
        for (len, header) in self.lens.iter_mut().zip(&self.headers).take(n) {
            *len = (header.msg_len as usize).min(SLOT_SIZE);
        }
        self.count = n;
        Ok(n)
    }

    /// Number of datagrams held since the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the last receive returned nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`-th datagram of the last receive (empty when out of range).
    pub fn packet(&self, i: usize) -> &[u8] {
        if i >= self.count {
            return &[];
        }
        let start = i * SLOT_SIZE;
        self.data.get(start..start + self.lens[i]).unwrap_or(&[])
    }

    /// The source of the `i`-th datagram, as the raw address the kernel filled in.
    pub fn raw_source(&self, i: usize) -> Option<RawAddr> {
        let header = self.headers.get(i).filter(|_| i < self.count)?;
        Some(RawAddr {
            storage: self.addrs[i],
            len: header.msg_hdr.msg_namelen,
        })
    }
}

/// A socket address in the kernel's own layout, so the forwarder can echo without converting.
#[derive(Clone, Copy)]
pub struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    /// Converts a Rust address to the kernel layout.
    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        // SAFETY: all-zero sockaddr_storage is valid; we then write a smaller sockaddr into it.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is suitably aligned.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                mem::size_of::<libc::sockaddr_in6>()
            }
        };
        Self {
            storage,
            len: len as libc::socklen_t,
        }
    }

    /// Converts back to a Rust address; `None` for families other than IPv4/IPv6.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self.storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin: libc::sockaddr_in = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6: libc::sockaddr_in6 = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    sin6.sin6_addr.s6_addr.into(),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Most segments in one UDP GSO message (the kernel's `UDP_MAX_SEGMENTS` on older kernels).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Most payload bytes in one UDP GSO message (16-bit UDP length minus headers).
const MAX_GSO_BYTES: usize = 65_000;
/// `SOL_UDP` / `UDP_SEGMENT` from linux/udp.h.
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;

/// Reusable `sendmmsg` scratch space: sending allocates nothing once the first batch has
/// grown the arrays.
///
/// With GSO on ([`SendBatch::with_gso`]), consecutive datagrams to the same destination and of
/// the same size (the last may be shorter) go out as one message with a `UDP_SEGMENT` control
/// message, its iovecs pointing at the caller's buffers: the kernel walks its stack once per
/// run instead of once per datagram. This is the I/O the TURN server's data path uses, so the
/// forwarder column stays the ceiling for it.
#[derive(Default)]
pub struct SendBatch {
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    /// (first packet, packets, segment size) per message.
    messages: Vec<(usize, usize, usize)>,
    cmsgs: Vec<[u64; 4]>,
    gso: bool,
}

impl SendBatch {
    /// Empty scratch space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty scratch space that coalesces runs with UDP GSO. If the kernel refuses a GSO
    /// message, GSO is switched off and the datagrams are sent one message each.
    pub fn with_gso() -> Self {
        Self {
            gso: true,
            ..Self::default()
        }
    }

    /// Whether GSO is (still) on.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Sends `packets` on a connected socket with as few `sendmmsg` calls as the kernel allows.
    /// Returns how many were handed to the kernel; stops early on an error other than EINTR
    /// and reports it only when nothing at all was sent.
    pub fn send(&mut self, fd: RawFd, packets: &[&[u8]]) -> io::Result<usize> {
        self.send_inner(fd, packets, None)
    }

    /// Like [`SendBatch::send`] on an unconnected socket: `packets[i]` goes to `dests[i]`.
    /// Extra packets without a destination are not sent.
    pub fn send_to(
        &mut self,
        fd: RawFd,
        packets: &[&[u8]],
        dests: &[RawAddr],
    ) -> io::Result<usize> {
        let n = packets.len().min(dests.len());
        self.send_inner(fd, &packets[..n], Some(&dests[..n]))
    }

    fn send_inner(
        &mut self,
        fd: RawFd,
        packets: &[&[u8]],
        dests: Option<&[RawAddr]>,
    ) -> io::Result<usize> {
        if self.gso {
            match self.send_gso(fd, packets, dests) {
                Ok(n) => return Ok(n),
                // Refused before anything left (no GSO here): plain messages from now on.
                Err(_) => self.gso = false,
            }
        }
        let mut sent = 0;
        for chunk_start in (0..packets.len()).step_by(MAX_BATCH) {
            let chunk_end = (chunk_start + MAX_BATCH).min(packets.len());
            let chunk = &packets[chunk_start..chunk_end];
            self.iovecs.clear();
            self.iovecs.extend(chunk.iter().map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            }));
            self.headers.clear();
            for i in 0..chunk.len() {
                // SAFETY: mmsghdr is plain old data; all-zero is a valid starting value.
                let mut header: libc::mmsghdr = unsafe { mem::zeroed() };
                header.msg_hdr.msg_iov = &mut self.iovecs[i];
                header.msg_hdr.msg_iovlen = 1;
                if let Some(dests) = dests {
                    let dest = &dests[chunk_start + i];
                    header.msg_hdr.msg_name = (&dest.storage as *const libc::sockaddr_storage)
                        .cast_mut()
                        .cast();
                    header.msg_hdr.msg_namelen = dest.len;
                }
                self.headers.push(header);
            }
            let mut offset = 0;
            while offset < self.headers.len() {
                // SAFETY: headers point at `self.iovecs` and caller buffers, all alive for the
                // call; the kernel only reads through msg_name and the iovecs on send.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        self.headers[offset..].as_mut_ptr(),
                        (self.headers.len() - offset) as libc::c_uint,
                        0,
                    )
                };
                if n < 0 {
                    let err = io::Error::last_os_error();
                    if err.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    if sent == 0 {
                        return Err(err);
                    }
                    return Ok(sent);
                }
                if n == 0 {
                    return Ok(sent);
                }
                offset += n as usize;
                sent += n as usize;
            }
        }
        Ok(sent)
    }
}

impl SendBatch {
    /// GSO path of [`SendBatch::send_inner`]: returns datagrams sent, or the error of a first
    /// message that the kernel refused before anything was sent.
    fn send_gso(
        &mut self,
        fd: RawFd,
        packets: &[&[u8]],
        dests: Option<&[RawAddr]>,
    ) -> io::Result<usize> {
        self.messages.clear();
        let same_dest = |a: usize, b: usize| match dests {
            None => true,
            Some(d) => d[a].len == d[b].len && raw_eq(&d[a], &d[b]),
        };
        for (i, p) in packets.iter().enumerate() {
            let len = p.len();
            if let Some((first, count, seg)) = self.messages.last_mut() {
                let last_len = packets[*first + *count - 1].len();
                if last_len == *seg
                    && len <= *seg
                    && len > 0
                    && *count < MAX_GSO_SEGMENTS
                    && *seg * *count + len <= MAX_GSO_BYTES
                    && same_dest(*first, i)
                {
                    *count += 1;
                    continue;
                }
            }
            self.messages.push((i, 1, len));
        }
        self.iovecs.clear();
        self.iovecs.extend(packets.iter().map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        }));
        self.headers.clear();
        self.cmsgs.resize(self.messages.len(), [0; 4]);
        for (m, &(first, count, seg)) in self.messages.iter().enumerate() {
            // SAFETY: mmsghdr is plain old data; all-zero is a valid starting value.
            let mut header: libc::mmsghdr = unsafe { mem::zeroed() };
            header.msg_hdr.msg_iov = &mut self.iovecs[first];
            header.msg_hdr.msg_iovlen = count as _;
            if let Some(dests) = dests {
                let dest = &dests[first];
                header.msg_hdr.msg_name = (&dest.storage as *const libc::sockaddr_storage)
                    .cast_mut()
                    .cast();
                header.msg_hdr.msg_namelen = dest.len;
            }
            if count > 1 {
                header.msg_hdr.msg_control = self.cmsgs[m].as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE is a size computation; 32 bytes hold CMSG_SPACE(2).
                header.msg_hdr.msg_controllen =
                    unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as u32) } as _;
                // SAFETY: the control buffer is ours and large enough for one u16 cmsg.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(&header.msg_hdr);
                    (*c).cmsg_level = SOL_UDP;
                    (*c).cmsg_type = UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg as u16);
                }
            }
            self.headers.push(header);
        }
        let mut sent = 0;
        let mut offset = 0;
        while offset < self.headers.len() {
            let chunk = (self.headers.len() - offset).min(MAX_BATCH);
            // SAFETY: headers point at `self.iovecs`, `self.cmsgs` and caller buffers, all
            // alive for the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers[offset..].as_mut_ptr(),
                    chunk as libc::c_uint,
                    0,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if sent == 0 {
                    return Err(err);
                }
                return Ok(sent);
            }
            if n == 0 {
                return Ok(sent);
            }
            for m in offset..offset + n as usize {
                sent += self.messages[m].1;
            }
            offset += n as usize;
        }
        Ok(sent)
    }
}

/// Byte equality of two kernel addresses of the same length.
fn raw_eq(a: &RawAddr, b: &RawAddr) -> bool {
    let len = (a.len as usize).min(mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: both storages are at least `len` bytes of plain data.
    let (x, y) = unsafe {
        (
            std::slice::from_raw_parts(
                (&a.storage as *const libc::sockaddr_storage).cast::<u8>(),
                len,
            ),
            std::slice::from_raw_parts(
                (&b.storage as *const libc::sockaddr_storage).cast::<u8>(),
                len,
            ),
        )
    };
    x == y
}

/// Waits up to `timeout` until one of `fds` is readable; returns the indexes of readable ones
/// in `ready` (cleared first).
pub fn wait_readable(fds: &[RawFd], timeout: Duration, ready: &mut Vec<usize>) -> io::Result<()> {
    ready.clear();
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: pollfds is a live, correctly sized array for the duration of the call.
    let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, millis) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(());
        }
        return Err(err);
    }
    for (i, pfd) in pollfds.iter().enumerate() {
        if pfd.revents & (libc::POLLIN | libc::POLLERR) != 0 {
            ready.push(i);
        }
    }
    Ok(())
}

/// Creates a UDP socket bound to `bind`, with large kernel buffers so bursts of one batch do
/// not overflow on our side of the measurement.
pub fn bind_udp(bind: SocketAddr, buffer_bytes: usize) -> io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(bind);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(buffer_bytes);
    let _ = socket.set_send_buffer_size(buffer_bytes);
    socket.bind(&bind.into())?;
    Ok(socket.into())
}

/// Raises the open-file limit to its hard maximum so a thousand held allocations (one socket
/// each) fit.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
