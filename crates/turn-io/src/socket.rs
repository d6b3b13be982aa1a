//! Socket construction: the options every Natter listener wants, in one place.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Creates a non-blocking UDP socket bound to `addr`.
///
/// `reuse_port` lets one socket per shard thread bind the same address, so the kernel spreads
/// clients over the shards by a hash of their address: a client always lands on the same shard,
/// which is what lets each shard own its allocations without locks.
pub fn udp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    let domain = Domain::for_address(addr);
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Keep v4 and v6 listeners independent, as operators configure them separately.
        s.set_only_v6(true)?;
    }
    if reuse_port {
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
    }
    // Large buffers absorb bursts while a shard is busy with a batch; the kernel caps these at
    // net.core.rmem_max / wmem_max unless run as root, in which case the values hold.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Creates a non-blocking TCP listener on `addr` (with `SO_REUSEPORT` when sharded).
pub fn tcp_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let domain = Domain::for_address(addr);
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}
