//! One allocation's state: its relays, permissions, channels and bandwidth budget.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::TransactionId;

use super::policy::canonical;
use super::FiveTuple;

/// How long an expired channel's number and peer stay reserved (RFC 8656 §12: 5 minutes), so a
/// late packet is never delivered to a different peer that re-used the number.
pub(crate) const CHANNEL_QUARANTINE: Duration = Duration::from_secs(300);

/// At most this many permissions per allocation: each is a linear-scan entry, and a client that
/// wants more peers than this is better served by several allocations.
pub(crate) const MAX_PERMISSIONS: usize = 256;

/// At most this many channels per allocation.
pub(crate) const MAX_CHANNELS: usize = 256;

#[derive(Debug, Clone)]
pub(crate) struct Permission {
    pub ip: IpAddr,
    pub expires: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub number: u16,
    pub peer: SocketAddr,
    pub expires: Instant,
}

/// A token bucket in bytes: `rate` bytes per second, bursts up to one second's worth.
#[derive(Debug, Clone)]
pub(crate) struct ByteBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl ByteBucket {
    pub fn new(rate_bytes_per_sec: u64, now: Instant) -> Self {
        Self {
            rate: rate_bytes_per_sec as f64,
            tokens: rate_bytes_per_sec as f64,
            last: now,
        }
    }

    /// Takes `n` bytes if the budget allows; false means drop the packet.
    pub fn take(&mut self, n: usize, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }
}

/// Which hash the client authenticated with; responses are protected the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Sha256,
}

#[derive(Debug)]
pub(crate) struct Allocation {
    pub five: FiveTuple,
    pub username: String,
    /// Local relay addresses (what the driver's sockets are bound to), one per family.
    pub relays: Vec<SocketAddr>,
    /// The same relays as advertised to the client (differs behind 1:1 NAT, `--external-ip`).
    pub advertised: Vec<SocketAddr>,
    pub reservation_token: Option<u64>,
    pub expires: Instant,
    pub allocate_tid: TransactionId,
    pub permissions: Vec<Permission>,
    pub channels: Vec<Channel>,
    pub bucket: Option<ByteBucket>,
    /// An RFC 6062 TCP allocation: peers are reached over TCP connections, never UDP.
    pub tcp: bool,
}

impl Allocation {
    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = canonical(ip);
        self.permissions
            .iter()
            .any(|p| p.ip == ip && p.expires > now)
    }

    /// Installs or refreshes a permission; false if the table is full.
    pub fn permit(&mut self, ip: IpAddr, expires: Instant) -> bool {
        let ip = canonical(ip);
        if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
            p.expires = expires;
            return true;
        }
        if self.permissions.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.permissions.push(Permission { ip, expires });
        true
    }

    /// The live channel bound to `peer`.
    pub fn channel_for_peer(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
            .map(|c| c.number)
    }

    /// The live peer of `number`.
    pub fn peer_for_channel(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
            .map(|c| c.peer)
    }

    /// Drops permissions and channels past their time (channels after their quarantine).
    pub fn sweep(&mut self, now: Instant) {
        self.permissions.retain(|p| p.expires > now);
        self.channels
            .retain(|c| c.expires + CHANNEL_QUARANTINE > now);
    }

    /// The relay of `ip`'s family, if this allocation has one.
    pub fn relay_for_family(&self, ip: IpAddr) -> Option<SocketAddr> {
        let v4 = canonical(ip).is_ipv4();
        self.relays.iter().copied().find(|r| r.is_ipv4() == v4)
    }
}
