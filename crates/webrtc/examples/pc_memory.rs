//! Memory per idle PeerConnection: connects N pairs of sans-IO PeerConnections in memory
//! (DTLS up, SCTP up, one open data channel each), then reports the resident-set growth per
//! PeerConnection. Usage: `cargo run --release --example pc_memory -- [N] [openssl|dimpl]`.
//! Prints one line: `RESULT {"pcs":..,"rss_kb_per_pc":..}`.

use std::time::{Duration, Instant};

use natter_dtls::DtlsCertificate;
use natter_webrtc::dcep::ChannelType;
use natter_webrtc::{Config, DtlsImpl, PcEvent, PeerConnection};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pair(seed: u64, dtls: DtlsImpl) -> Option<(PeerConnection, PeerConnection)> {
    let mut now = Instant::now();
    let cfg = |s| Config {
        audio: false,
        video: false,
        data: true,
        echo: false,
        seed: s,
        dtls,
        capture_audio: false,
    };
    let mut a = PeerConnection::new(cfg(seed), DtlsCertificate::generate().ok()?, now);
    let mut b = PeerConnection::new(cfg(seed + 1), DtlsCertificate::generate().ok()?, now);
    a.set_local_ice("aaaa", "abcdefghijklmnopqrstuv");
    b.set_local_ice("bbbb", "abcdefghijklmnopqrstuv");
    a.create_channel("idle", ChannelType::RELIABLE);
    let answer = b.accept_offer(&a.create_offer().ok()?, now).ok()?;
    a.accept_answer(&answer, now).ok()?;
    a.transport_connected(now);
    b.transport_connected(now);
    let mut open = 0;
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(d) = a.poll_transmit() {
            moved = true;
            b.handle_datagram(&d, now);
        }
        while let Some(d) = b.poll_transmit() {
            moved = true;
            a.handle_datagram(&d, now);
        }
        for e in std::iter::from_fn(|| a.poll_event()).chain(std::iter::from_fn(|| b.poll_event()))
        {
            moved = true;
            if matches!(e, PcEvent::ChannelOpen { .. }) {
                open += 1;
            }
        }
        if open == 2 {
            return Some((a, b));
        }
        if !moved {
            now += Duration::from_millis(10);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
    }
    None
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let dtls = args
        .next()
        .and_then(|s| DtlsImpl::parse(&s))
        .unwrap_or_default();
    // Warm up allocator and lazy statics with one pair first.
    let warm = pair(1_000_000, dtls);
    let before = rss_kb();
    let mut keep = Vec::new();
    for i in 0..n {
        match pair(i * 2, dtls) {
            Some(p) => keep.push(p),
            None => {
                eprintln!("pair {i} did not connect");
                std::process::exit(1);
            }
        }
    }
    let after = rss_kb();
    let pcs = keep.len() as u64 * 2;
    drop(warm);
    println!(
        "RESULT {{\"pcs\":{pcs},\"dtls\":\"{dtls:?}\",\"rss_kb_per_pc\":{:.1}}}",
        after.saturating_sub(before) as f64 / pcs as f64
    );
}
