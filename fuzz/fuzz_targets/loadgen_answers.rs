#![no_main]
//! Fuzzes everything natter-loadgen reads from the outside: Binding answers on the hot path,
//! TURN control answers (401 challenges, errors, XOR-RELAYED-ADDRESS), peer payloads and the
//! /proc text it measures servers with. None may panic; answers must only match their own run.
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use natter_loadgen::binding::{answered_seq, mark_seen};
use natter_loadgen::procstat::{parse_rss_kib, parse_stat};
use natter_loadgen::relay::is_our_payload;
use natter_loadgen::turn_client::{read_answer, Request};
use natter_stun::TransactionId;

fuzz_target!(|data: &[u8]| {
    let cookie = [0xde, 0xad, 0xbe, 0xef];
    if let Some(seq) = answered_seq(data, cookie, 1 << 20, true) {
        assert!(seq < 1 << 20);
        let mut seen = vec![0u64; (1 << 20) / 64];
        assert!(mark_seen(&mut seen, seq));
        assert!(!mark_seen(&mut seen, seq));
    }
    let _ = is_our_payload(data, cookie);
    let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let tid = data
        .get(8..20)
        .and_then(|t| <[u8; 12]>::try_from(t).ok())
        .map_or(TransactionId([0; 12]), TransactionId);
    for request in [
        Request::Allocate { lifetime: 600 },
        Request::CreatePermission { peer },
        Request::ChannelBind {
            peer,
            channel: 0x4000,
        },
        Request::Refresh { lifetime: 0 },
    ] {
        let _ = read_answer(data, request, tid, Some("natter"));
        let _ = read_answer(data, request, tid, None);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_stat(text);
        let _ = parse_rss_kib(text);
    }
});
