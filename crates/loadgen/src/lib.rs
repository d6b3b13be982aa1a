//! `natter-loadgen`: the load generator behind `bench/turn`, which measures Natter's TURN
//! server side by side with coturn and with a bare UDP forwarder on loopback, and behind
//! `bench/sip`'s REGISTER rows beyond what SIPp can offer ([`sip_register`]).
//!
//! What it does not do: it is not a TURN client library (the control exchanges are the few a
//! benchmark needs, built on `natter-stun`), and it never talks to anything but the addresses
//! it is given (the bench script gives loopback ones).
//!
//! Design choices, all aimed at keeping the generator off the critical path on a 2-core box:
//! - plain threads and blocking sockets, batched with `recvmmsg`/`sendmmsg` ([`batch`]);
//! - open-loop pacing ([`pacer`], [`flow`]): offered load does not slow down when the server
//!   does, so overload shows as loss;
//! - fixed-offset matching of answers on the hot path; full STUN parsing only for the control
//!   exchanges (Allocate, ChannelBind, CreatePermission, Refresh);
//! - the same batching in the forwarder ([`forwarder`]) so its column is a fair ceiling;
//! - CPU from `/proc` ([`procstat`], [`measure`]) over exactly the measured window.

pub mod allocate;
pub mod batch;
pub mod binding;
pub mod flow;
pub mod forwarder;
pub mod measure;
pub mod pacer;
pub mod procstat;
pub mod relay;
pub mod report;
pub mod sip_register;
pub mod turn_client;

use std::net::SocketAddr;
use std::time::Duration;

/// Everything a subcommand can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// A TURN control exchange failed.
    #[error("turn: {0}")]
    Turn(#[from] turn_client::TurnError),
    /// A run would offer more than the generator is willing to track.
    #[error("run too large: {0} messages")]
    TooMuchLoad(u64),
    /// Settings that cannot work together.
    #[error("bad settings: {0}")]
    Settings(&'static str),
}

/// A per-run value that tags every datagram, so leftovers of an earlier run (or strays) are not
/// counted. Not a secret: time and pid mixed are plenty to tell runs apart.
pub fn run_cookie() -> [u8; 4] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    let folded = (mixed ^ (mixed >> 32)) as u32;
    folded.to_be_bytes()
}

/// The local address client sockets bind to: a loopback address picked per process in
/// 127.0.0.0/8 when the server is on IPv4 loopback, else the wildcard address; the port is
/// chosen by the kernel.
///
/// Why not 127.0.0.1: a server keeps a deleted allocation's 5-tuple around for a while (coturn
/// answers 437 to a new Allocate from it), and the kernel hands out recently used ephemeral
/// ports again, so back-to-back runs from 127.0.0.1 collide. A fresh source address per run
/// makes every run's 5-tuples new.
pub fn any_local_for(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => {
            SocketAddr::from((client_ipv4(run_cookie_once()), 0))
        }
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(v6) if v6.ip().is_loopback() => {
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 0))
        }
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

/// The per-process client address for `cookie`: 127.a.b.c with a, c never 0 or 255.
pub fn client_ipv4(cookie: [u8; 4]) -> [u8; 4] {
    [127, 1 + cookie[0] % 254, cookie[1], 1 + cookie[2] % 254]
}

fn run_cookie_once() -> [u8; 4] {
    static COOKIE: std::sync::OnceLock<[u8; 4]> = std::sync::OnceLock::new();
    *COOKIE.get_or_init(run_cookie)
}

/// Loss in percent of `offered` (0 when nothing was offered).
pub fn loss_pct(offered: u64, received: u64) -> f64 {
    if offered == 0 {
        return 0.0;
    }
    100.0 * offered.saturating_sub(received) as f64 / offered as f64
}

/// `count` per second over `elapsed` (0 for an empty window).
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    count as f64 / secs
}

/// How far the paced sender finished behind schedule, in milliseconds. More than a few
/// milliseconds means the generator, not the server, could not keep up with the offered rate.
pub fn lag_ms(stats: &flow::SendStats, duration: Duration) -> u64 {
    stats.elapsed.saturating_sub(duration).as_millis() as u64
}
