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
//! and after Timer J has let them go, and the heap allocations `handle` makes
//! per REGISTER.
//!
//! With `digest` as the second argument every REGISTER is answered 401 and sent
//! again with credentials (one user, as `natter-loadgen sip-register --auth`
//! does), and the figures are per registration (both requests); only the
//! server's `handle` calls are timed and counted, not building the requests:
//!
//!     valgrind --tool=callgrind target/release/examples/register_cost 5000 digest
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The system allocator, counting bytes in use.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
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

use natter_sip::digest::{answer, Challenge};
use natter_sip::{HeaderName, Message};
use natter_sip_server::{MemoryBindings, ServerConfig, SipServer, StaticCredentials, Transport};

/// A REGISTER of user `u{i}` (or of `u` itself with `auth`), CSeq `cseq`, with an extra
/// header line when given.
fn register(i: usize, cseq: u32, user: &str, extra: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-{i}-{cseq};rport\r\n\
From: <sip:{user}@natter.test>;tag={i}\r\n\
To: <sip:{user}@natter.test>\r\n\
Call-ID: {i}-reg@127.0.0.1\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:{user}@127.0.0.1:5071>\r\n\
Max-Forwards: 70\r\n\
Expires: 3600\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The Authorization line answering the 401 in `bytes`.
fn authorization(bytes: &[u8]) -> String {
    let msg = Message::parse(bytes).expect("401 parses");
    let value = msg
        .header_values(HeaderName::WwwAuthenticate)
        .next()
        .expect("401 has a challenge");
    let challenge = Challenge::parse(value).expect("challenge parses");
    let creds = answer(
        &challenge,
        "REGISTER",
        "sip:natter.test",
        "u",
        "pw",
        "c0ffee",
        1,
    )
    .expect("answerable");
    format!("Authorization: {}\r\n", creds.to_header_value())
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let digest = std::env::args().nth(2).as_deref() == Some("digest");
    let proxy: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
    let ua: SocketAddr = "127.0.0.1:5071".parse().expect("addr");
    let mut cfg = ServerConfig::new("natter.test", (Transport::Udp, proxy));
    cfg.auth = digest;
    let t0 = Instant::now();
    let mut server = SipServer::new(
        cfg,
        Arc::new(StaticCredentials::new().with_user("u", "pw")),
        Arc::new(MemoryBindings::new()),
        t0,
    );
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            register(
                i,
                1,
                &if digest {
                    "u".to_owned()
                } else {
                    format!("u{i}")
                },
                "",
            )
        })
        .collect();
    let live0 = LIVE.load(Ordering::Relaxed);
    let mut el = Duration::ZERO;
    let mut allocs = 0usize;
    let mut ok = 0usize;
    for (i, m) in msgs.iter().enumerate() {
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let start = Instant::now();
        let mut out = server.handle(t0, Transport::Udp, ua, m);
        el += start.elapsed();
        allocs += ALLOCS.load(Ordering::Relaxed) - a0;
        if digest {
            let challenge = out.transmits.pop().expect("a 401");
            let retry = register(i, 2, "u", &authorization(&challenge.bytes));
            let a0 = ALLOCS.load(Ordering::Relaxed);
            let start = Instant::now();
            out = server.handle(t0, Transport::Udp, ua, &retry);
            el += start.elapsed();
            allocs += ALLOCS.load(Ordering::Relaxed) - a0;
        }
        ok += out
            .transmits
            .iter()
            .filter(|t| t.bytes.starts_with(b"SIP/2.0 200 "))
            .count();
    }
    assert_eq!(ok, n, "every REGISTER answered 200");
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
        "{n} {}REGISTERs: {:.2} us each ({:.0}/s on one core), {:.1} heap allocations each",
        if digest { "digest " } else { "" },
        el.as_secs_f64() * 1e6 / n as f64,
        n as f64 / el.as_secs_f64(),
        allocs as f64 / n as f64
    );
}
