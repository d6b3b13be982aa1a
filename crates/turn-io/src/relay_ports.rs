//! Relay port management shared by every shard: which ports of the range are in use, and the
//! sockets held for RESERVATION-TOKENs (EVEN-PORT with the R bit).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter_turn::server::RelayError;

/// How long a reserved port is held for the client's second Allocate (RFC 8656: ~30 s).
const RESERVATION_HOLD: Duration = Duration::from_secs(30);

struct Reserved {
    socket: UdpSocket,
    until: Instant,
}

struct Inner {
    next: u32,
    reserved: HashMap<u64, Reserved>,
}

/// The relay port range and reservations, shared across shards.
#[derive(Clone)]
pub struct RelayPorts {
    low: u16,
    high: u16,
    inner: Arc<Mutex<Inner>>,
}

impl RelayPorts {
    /// Ports `low..=high` (coturn's default is 49152..=65535).
    pub fn new(low: u16, high: u16) -> Self {
        let (low, high) = if low <= high {
            (low, high)
        } else {
            (high, low)
        };
        Self {
            low,
            high,
            inner: Arc::new(Mutex::new(Inner {
                next: rand::random::<u32>(),
                reserved: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Binds a relay socket on `ip` in the range. The kernel is the arbiter of what is free
    /// (other processes use ports too), so this walks the range from a moving start and
    /// takes the first port that binds.
    pub fn bind(&self, ip: IpAddr, even: bool) -> Result<UdpSocket, RelayError> {
        let span = u32::from(self.high - self.low) + 1;
        let start = {
            let mut g = self.lock();
            g.next = g.next.wrapping_add(1);
            g.next
        };
        for i in 0..span {
            let port = self.low as u32 + (start.wrapping_add(i) % span);
            let port = port as u16;
            if even && port % 2 == 1 {
                continue;
            }
            if let Ok(s) = crate::socket::udp(SocketAddr::new(ip, port), false) {
                return Ok(s);
            }
        }
        Err(RelayError::Exhausted)
    }

    /// Binds an even port and holds port+1 under a new token.
    pub fn bind_pair(&self, ip: IpAddr, now: Instant) -> Result<(UdpSocket, u64), RelayError> {
        for _ in 0..64 {
            let even = self.bind(ip, true)?;
            let port = even.local_addr().map_err(|_| RelayError::Exhausted)?.port();
            if port == u16::MAX {
                continue;
            }
            if let Ok(next) = crate::socket::udp(SocketAddr::new(ip, port + 1), false) {
                let token = rand::random::<u64>();
                let mut g = self.lock();
                g.reserved.retain(|_, r| r.until > now);
                g.reserved.insert(
                    token,
                    Reserved {
                        socket: next,
                        until: now + RESERVATION_HOLD,
                    },
                );
                return Ok((even, token));
            }
        }
        Err(RelayError::Exhausted)
    }

    /// Takes the socket reserved under `token`.
    pub fn take_reserved(&self, token: u64, now: Instant) -> Result<UdpSocket, RelayError> {
        let mut g = self.lock();
        match g.reserved.remove(&token) {
            Some(r) if r.until > now => Ok(r.socket),
            _ => Err(RelayError::BadToken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_stay_in_range_and_pairs_are_even_then_odd() {
        let p = RelayPorts::new(40000, 40100);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = p.bind(ip, false).unwrap();
        let port = a.local_addr().unwrap().port();
        assert!((40000..=40100).contains(&port));
        let now = Instant::now();
        let (even, token) = p.bind_pair(ip, now).unwrap();
        let ep = even.local_addr().unwrap().port();
        assert_eq!(ep % 2, 0);
        let odd = p.take_reserved(token, now).unwrap();
        assert_eq!(odd.local_addr().unwrap().port(), ep + 1);
        assert_eq!(
            p.take_reserved(token, now).unwrap_err(),
            RelayError::BadToken
        );
    }

    #[test]
    fn a_full_range_is_exhausted_not_a_hang() {
        let p = RelayPorts::new(40200, 40201);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let _a = p.bind(ip, false).unwrap();
        let _b = p.bind(ip, false).unwrap();
        assert_eq!(p.bind(ip, false).unwrap_err(), RelayError::Exhausted);
    }
}
