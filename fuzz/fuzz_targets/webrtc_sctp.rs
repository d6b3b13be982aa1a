#![no_main]
//! Fuzzes SCTP input through natter-webrtc's association wrapper (sctp-proto + DCEP): two
//! wrappers are connected in memory, then the input, cut into chunk sequences by 2-byte length
//! prefixes, is sent to the server inside packets with the association's verification tag and a
//! correct CRC32c (so it reaches the chunk parsers and state machine, not just the checksum check).
//! Nothing may panic, and the wrapper must keep answering.
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_webrtc::dcep::ChannelType;
use natter_webrtc::sctp::DataChannels;

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn exchange(a: &mut DataChannels, b: &mut DataChannels, now: Instant) -> Option<[u8; 4]> {
    let mut tag = None;
    for _ in 0..50 {
        let mut moved = false;
        while let Some(p) = a.poll_transmit(now) {
            moved = true;
            if let Some(t) = p.get(4..8) {
                tag = t.try_into().ok();
            }
            b.handle_packet(&p, now);
        }
        while let Some(p) = b.poll_transmit(now) {
            moved = true;
            a.handle_packet(&p, now);
        }
        if !moved {
            break;
        }
    }
    tag
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut client = DataChannels::new();
    let mut server = DataChannels::new();
    client.create_channel("fuzz", "", ChannelType::RELIABLE);
    client.start(true, Some(262_144), now);
    server.start(false, Some(262_144), now);
    // The server's verification tag is what the client writes into its packets.
    let Some(vtag) = exchange(&mut client, &mut server, now) else {
        return;
    };
    let mut rest = data;
    let mut t = now;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let chunks = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let mut pkt = vec![0x13, 0x88, 0x13, 0x88];
        pkt.extend_from_slice(&vtag);
        pkt.extend_from_slice(&[0, 0, 0, 0]);
        pkt.extend_from_slice(chunks);
        let crc = crc32c(&pkt);
        pkt[8..12].copy_from_slice(&crc.to_le_bytes());
        server.handle_packet(&pkt, t);
        while server.poll_transmit(t).is_some() {}
        while server.poll_event().is_some() {}
        t += Duration::from_millis(10);
        server.handle_timeout(t);
    }
});
