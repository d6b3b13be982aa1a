//! Rough per-packet cost of the relay hot path: parse a Send indication and
//! read XOR-PEER-ADDRESS + DATA, parse ChannelData, and build a Data
//! indication into a reused buffer. Run with optimisations for real numbers:
//! `cargo run -p natter-stun --example parse_rate --release`.

// An example measures wall time; the sans-IO rule is for the library.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use natter_stun::{ChannelData, Class, Message, MessageWriter, Method, TransactionId};

fn rate(name: &str, iterations: u32, mut f: impl FnMut()) {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = start.elapsed() / iterations;
    let mpps = 1e3 / per.as_nanos().max(1) as f64;
    println!("{name:<36} {per:>10.2?}/packet  {mpps:>7.2} Mpps");
}

fn main() {
    let peer = "198.51.100.20:40000".parse().unwrap();
    let payload = vec![0xAB; 1000];
    let mut send = Vec::new();
    MessageWriter::new(
        &mut send,
        Method::SEND,
        Class::Indication,
        TransactionId([1; 12]),
    )
    .add_xor_peer_address(peer)
    .add_data(&payload)
    .finish()
    .unwrap();
    let mut cd = Vec::new();
    ChannelData::encode(0x4001, &payload, false, &mut cd).unwrap();

    let n = 2_000_000;
    rate("Send indication parse + peer + data", n, || {
        let m = Message::parse(black_box(&send)).unwrap();
        black_box((m.xor_peer_address().unwrap(), m.data()));
    });
    rate("ChannelData parse", n, || {
        black_box(ChannelData::parse(black_box(&cd)).unwrap());
    });
    let mut out = Vec::with_capacity(1100);
    rate("Data indication build (1000 B)", n, || {
        MessageWriter::new(
            &mut out,
            Method::DATA,
            Class::Indication,
            TransactionId([2; 12]),
        )
        .add_xor_peer_address(black_box(peer))
        .add_data(black_box(&payload))
        .finish()
        .unwrap();
        black_box(&out);
    });
    let mut signed = Vec::with_capacity(200);
    rate("Binding request + MI + FINGERPRINT", n / 10, || {
        MessageWriter::new(
            &mut signed,
            Method::BINDING,
            Class::Request,
            TransactionId([3; 12]),
        )
        .add_username("abcd:efgh")
        .add_priority(0x6e00_01ff)
        .add_ice_controlling(42)
        .add_message_integrity(b"password")
        .add_fingerprint()
        .finish()
        .unwrap();
        black_box(&signed);
    });
    rate("parse + verify MI + FINGERPRINT", n / 10, || {
        let m = Message::parse(black_box(&signed)).unwrap();
        m.verify_integrity(black_box(b"password")).unwrap();
        m.verify_fingerprint().unwrap();
    });
}
