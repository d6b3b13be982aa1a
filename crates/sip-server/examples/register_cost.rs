//! The core's cost per REGISTER, without sockets: feeds N distinct REGISTERs
//! (no authentication, as `bench/sip`'s reg-many scenario) through
//! `SipServer::handle` and prints the time per REGISTER. Run it under
//! `valgrind --tool=callgrind` for instruction counts that do not depend on
//! what else the machine is doing:
//!
//!     cargo build --release --example register_cost -p natter-sip-server
//!     valgrind --tool=callgrind target/release/examples/register_cost 20000
//!
//! It also counts live heap bytes (a counting global allocator), so it prints
//! the core's memory per registered user with the REGISTER transactions held
//! and after Timer J has let them go.
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The system allocator, counting bytes in use.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

use natter_sip_server::{MemoryBindings, ServerConfig, SipServer, StaticCredentials, Transport};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let proxy: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
    let ua: SocketAddr = "127.0.0.1:5071".parse().expect("addr");
    let mut cfg = ServerConfig::new("natter.test", (Transport::Udp, proxy));
    cfg.auth = false;
    let t0 = Instant::now();
    let mut server = SipServer::new(
        cfg,
        Arc::new(StaticCredentials::new()),
        Arc::new(MemoryBindings::new()),
        t0,
    );
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-{i}-1;rport\r\n\
From: <sip:u{i}@natter.test>;tag={i}\r\n\
To: <sip:u{i}@natter.test>\r\n\
Call-ID: {i}-reg@127.0.0.1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:u{i}@127.0.0.1:5071>\r\n\
Max-Forwards: 70\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n"
            )
            .into_bytes()
        })
        .collect();
    let live0 = LIVE.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut sent = 0usize;
    for m in &msgs {
        let out = server.handle(t0, Transport::Udp, ua, m);
        sent += out.transmits.len();
    }
    let el = start.elapsed();
    assert_eq!(sent, n, "every REGISTER answered");
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(live0);
    // Past Timer J (32 s): the finished transactions are gone, the bindings stay.
    let _ = server.on_timer(t0 + Duration::from_secs(40));
    let bound = LIVE.load(Ordering::Relaxed).saturating_sub(live0);
    println!(
        "heap per user: {} B with transactions held, {} B bindings only",
        held / n.max(1),
        bound / n.max(1)
    );
    println!(
        "{n} REGISTERs: {:.2} us each ({:.0}/s on one core)",
        el.as_secs_f64() * 1e6 / n as f64,
        n as f64 / el.as_secs_f64()
    );
}
