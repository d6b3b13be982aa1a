//! Property tests: parse(write(x)) == x, and arbitrary bytes never panic the parsers.
#![allow(clippy::unwrap_used)]

use proptest::collection::vec;
use proptest::prelude::*;

use natter_rtp::rtcp::{parse_compound, write_compound};
use natter_rtp::{ReportBlock, RtcpPacket, RtpHeader, RtpPacket, SdesChunk};

fn extensions() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop_oneof![
        vec((1u8..=14, vec(any::<u8>(), 1..=16)), 0..6),
        vec((1u8..=255, vec(any::<u8>(), 0..40)), 0..6),
    ]
}

fn header() -> impl Strategy<Value = RtpHeader> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        vec(any::<u32>(), 0..=15),
        extensions(),
    )
        .prop_map(
            |(marker, payload_type, sequence, timestamp, ssrc, csrcs, extensions)| RtpHeader {
                marker,
                payload_type,
                sequence,
                timestamp,
                ssrc,
                csrcs,
                extensions,
            },
        )
}

fn block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..=0x7f_ffff,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ssrc, fraction_lost, cumulative_lost, highest_seq, jitter, lsr, dlsr)| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost,
                highest_seq,
                jitter,
                lsr,
                dlsr,
            },
        )
}

fn report() -> impl Strategy<Value = RtcpPacket> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            vec(block(), 0..4)
        )
            .prop_map(|(ssrc, ntp, rtp_ts, packet_count, octet_count, reports)| {
                RtcpPacket::SenderReport {
                    ssrc,
                    ntp,
                    rtp_ts,
                    packet_count,
                    octet_count,
                    reports,
                }
            }),
        (any::<u32>(), vec(block(), 0..4))
            .prop_map(|(ssrc, reports)| RtcpPacket::ReceiverReport { ssrc, reports }),
    ]
}

fn packet() -> impl Strategy<Value = RtcpPacket> {
    prop_oneof![
        report(),
        vec(
            (
                any::<u32>(),
                vec((1u8..=255, vec(any::<u8>(), 0..30)), 0..4)
            ),
            0..4
        )
        .prop_map(|c| RtcpPacket::Sdes(
            c.into_iter()
                .map(|(ssrc, items)| SdesChunk { ssrc, items })
                .collect()
        )),
        (vec(any::<u32>(), 0..5), proptest::option::of(".{0,40}"))
            .prop_map(|(ssrcs, reason)| RtcpPacket::Bye { ssrcs, reason }),
        (
            0u8..32,
            any::<u32>(),
            any::<[u8; 4]>(),
            vec(any::<u8>(), 0..30)
        )
            .prop_map(|(subtype, ssrc, name, data)| RtcpPacket::App {
                subtype,
                ssrc,
                name,
                data
            }),
        (any::<u32>(), any::<u32>(), vec(any::<u16>(), 0..60)).prop_map(
            |(sender_ssrc, media_ssrc, lost)| RtcpPacket::Nack {
                sender_ssrc,
                media_ssrc,
                lost
            }
        ),
        (any::<u32>(), any::<u32>()).prop_map(|(sender_ssrc, media_ssrc)| RtcpPacket::Pli {
            sender_ssrc,
            media_ssrc
        }),
        (any::<u32>(), vec((any::<u32>(), any::<u8>()), 0..5)).prop_map(
            |(sender_ssrc, entries)| RtcpPacket::Fir {
                sender_ssrc,
                entries
            }
        ),
        (
            prop_oneof![192u8..=199, 207u8..=223],
            0u8..32,
            vec(any::<u8>(), 0..30)
        )
            .prop_map(|(pt, fmt, body)| RtcpPacket::Other { pt, fmt, body }),
    ]
}

/// What the fuzz targets check: whatever parses writes back and reparses to the same value.
fn rtp_rewrite_is_stable(data: &[u8]) {
    if let Ok(p) = RtpPacket::parse(data) {
        let h = p.to_header();
        let mut out = Vec::new();
        h.write(p.payload(), &mut out)
            .expect("a parsed header is writable");
        let q = RtpPacket::parse(&out).expect("written packet parses");
        assert_eq!(q.to_header(), h);
        assert_eq!(q.payload(), p.payload());
    }
}

fn rtcp_rewrite_is_stable(data: &[u8]) {
    for reduced in [false, true] {
        if let Ok(packets) = parse_compound(data, reduced) {
            let mut out = Vec::new();
            write_compound(&packets, &mut out).expect("parsed packets are writable");
            assert_eq!(
                parse_compound(&out, reduced).expect("written packets parse"),
                packets
            );
        }
    }
}

proptest! {
    #[test]
    fn rtp_roundtrip(h in header(), payload in vec(any::<u8>(), 0..64), pad in 0u8..=255) {
        let mut out = Vec::new();
        if pad == 0 {
            h.write(&payload, &mut out).unwrap();
        } else {
            h.write_padded(&payload, pad, &mut out).unwrap();
        }
        let p = RtpPacket::parse(&out).unwrap();
        prop_assert_eq!(p.to_header(), h);
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.padding_len(), usize::from(pad));
    }

    #[test]
    fn rtcp_roundtrip(first in report(), rest in vec(packet(), 0..6)) {
        let mut packets = vec![first];
        packets.extend(rest);
        let mut out = Vec::new();
        write_compound(&packets, &mut out).unwrap();
        prop_assert_eq!(out.len() % 4, 0);
        prop_assert_eq!(parse_compound(&out, false).unwrap(), packets);
    }

    #[test]
    fn rtcp_reduced_roundtrip(p in packet()) {
        let mut out = Vec::new();
        write_compound(std::slice::from_ref(&p), &mut out).unwrap();
        prop_assert_eq!(parse_compound(&out, true).unwrap(), vec![p]);
    }

    #[test]
    fn arbitrary_bytes(data in vec(any::<u8>(), 0..300)) {
        rtp_rewrite_is_stable(&data);
        rtcp_rewrite_is_stable(&data);
    }

    #[test]
    fn mutated_rtp(h in header(), payload in vec(any::<u8>(), 0..20), flips in vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let mut out = Vec::new();
        h.write(&payload, &mut out).unwrap();
        for (at, v) in flips {
            let n = out.len();
            out[at % n] ^= v;
        }
        out.truncate(cut % (out.len() + 1));
        rtp_rewrite_is_stable(&out);
    }

    #[test]
    fn mutated_rtcp(first in report(), rest in vec(packet(), 0..4), flips in vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let mut packets = vec![first];
        packets.extend(rest);
        let mut out = Vec::new();
        write_compound(&packets, &mut out).unwrap();
        for (at, v) in flips {
            let n = out.len();
            out[at % n] ^= v;
        }
        out.truncate(cut % (out.len() + 1));
        rtcp_rewrite_is_stable(&out);
    }
}
