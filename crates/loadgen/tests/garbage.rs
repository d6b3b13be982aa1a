//! Never panics on garbage: every reader of outside bytes gets seeded random input and mutated
//! real messages. Deterministic (fixed xorshift seed), bounded.

// Test helpers outside #[test] functions may panic: a panic is a test failure here.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use natter_loadgen::binding::{answered_seq, mark_seen, request, BINDING_SUCCESS};
use natter_loadgen::procstat::{parse_rss_kib, parse_stat};
use natter_loadgen::relay::is_our_payload;
use natter_loadgen::turn_client::{build_request, read_answer, Auth, Request};
use natter_stun::credentials::long_term_key;
use natter_stun::TransactionId;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() % (max_len as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let tid = TransactionId([5; 12]);
    let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let auth = Auth {
        realm: "natter".into(),
        nonce: "n".into(),
        key: long_term_key("u", "natter", "p"),
    };
    let mut seeds = Vec::new();
    for request in [
        Request::Allocate { lifetime: 600 },
        Request::ChannelBind {
            peer,
            channel: 0x4000,
        },
        Request::Refresh { lifetime: 0 },
    ] {
        let mut buf = Vec::new();
        build_request(&mut buf, request, tid, "u", Some(&auth)).unwrap();
        // Turn requests into answers of both classes by flipping class bits.
        for class_bits in [0x0100u16, 0x0110] {
            let mut answer = buf.clone();
            let typ = u16::from_be_bytes([answer[0], answer[1]]) | class_bits;
            answer[0..2].copy_from_slice(&typ.to_be_bytes());
            seeds.push(answer);
        }
    }
    let mut binding = request([1, 2, 3, 4], 9).to_vec();
    binding[0..2].copy_from_slice(&BINDING_SUCCESS);
    seeds.push(binding);
    seeds
}

#[test]
fn readers_survive_random_and_mutated_input() {
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let seeds = seeds();
    let tid = TransactionId([5; 12]);
    let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let mut seen = vec![0u64; 16];
    for round in 0..20_000 {
        let input = if round % 2 == 0 {
            rng.bytes(160)
        } else {
            let mut input = seeds[round % seeds.len()].clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() as usize) % input.len();
                input[at] = rng.next() as u8;
            }
            input.truncate((rng.next() as usize) % (input.len() + 1));
            input
        };
        if let Some(seq) = answered_seq(&input, [1, 2, 3, 4], 1024, round % 3 == 0) {
            assert!(seq < 1024);
            mark_seen(&mut seen, seq);
        }
        let _ = is_our_payload(&input, [1, 2, 3, 4]);
        for request in [
            Request::Allocate { lifetime: 600 },
            Request::CreatePermission { peer },
            Request::ChannelBind {
                peer,
                channel: 0x4000,
            },
            Request::Refresh { lifetime: 0 },
        ] {
            let _ = read_answer(&input, request, tid, Some("natter"));
        }
        let text = String::from_utf8_lossy(&input);
        let _ = parse_stat(&text);
        let _ = parse_rss_kib(&text);
    }
}
