//! RTCP parsing and writing against hand-built bytes.
#![allow(clippy::unwrap_used)]

use natter_rtp::demux::{classify, Kind};
use natter_rtp::rtcp::{parse_compound, parse_packet, write_compound};
use natter_rtp::{ReportBlock, RtcpError, RtcpPacket, SdesChunk};

const SR: [u8; 52] = [
    0x81, 0xc8, 0x00, 0x0c, // V=2 RC=1 PT=200 length 12
    0x12, 0x34, 0x56, 0x78, // ssrc
    0xe6, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, // NTP
    0x00, 0x00, 0x03, 0xe8, // rtp ts 1000
    0x00, 0x00, 0x00, 0x0a, // 10 packets
    0x00, 0x00, 0x06, 0x40, // 1600 octets
    0xca, 0xfe, 0xba, 0xbe, // block: ssrc
    0x40, 0xff, 0xff, 0xfe, // fraction 64, cumulative -2
    0x00, 0x01, 0x00, 0x05, // highest 65541
    0x00, 0x00, 0x00, 0x20, // jitter 32
    0x00, 0x01, 0x80, 0x00, // lsr
    0x00, 0x00, 0x80, 0x00, // dlsr 0.5 s
];
const SDES: [u8; 16] = [
    0x81, 0xca, 0x00, 0x03, // SC=1 PT=202 length 3
    0x12, 0x34, 0x56, 0x78, // ssrc
    0x01, 0x04, b'a', b'b', b'c', b'd', // CNAME "abcd"
    0x00, 0x00, // end + pad
];
const BYE: [u8; 16] = [
    0x81, 0xcb, 0x00, 0x03, // SC=1 PT=203
    0x12, 0x34, 0x56, 0x78, //
    0x05, b'l', b'e', b'a', b'v', b'e', 0x00, 0x00,
];
const NACK: [u8; 16] = [
    0x81, 0xcd, 0x00, 0x03, // FMT=1 PT=205
    0x00, 0x00, 0x00, 0x01, // sender
    0x00, 0x00, 0x00, 0x02, // media
    0x00, 0x64, 0x80, 0x05, // PID 100, BLP bits 0, 2, 15
];
const PLI: [u8; 12] = [0x81, 0xce, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2];
const FIR: [u8; 20] = [
    0x84, 0xce, 0x00, 0x04, // FMT=4 PT=206
    0x00, 0x00, 0x00, 0x01, // sender
    0x00, 0x00, 0x00, 0x00, // media source: unused
    0x00, 0x00, 0x00, 0x02, 0x07, 0x00, 0x00, 0x00, // ssrc 2, seq 7
];
const APP: [u8; 16] = [
    0xa2, 0xcc, 0x00, 0x03, // P=1 subtype 2 PT=204
    0x00, 0x00, 0x00, 0x09, b'n', b'a', b't', b'r', // ssrc, name
    b'x', b'y', b'z', 0x01, // 3 data bytes + 1 padding
];

fn sr() -> RtcpPacket {
    RtcpPacket::SenderReport {
        ssrc: 0x1234_5678,
        ntp: 0xe600_0000_8000_0000,
        rtp_ts: 1000,
        packet_count: 10,
        octet_count: 1600,
        reports: vec![ReportBlock {
            ssrc: 0xcafe_babe,
            fraction_lost: 64,
            cumulative_lost: -2,
            highest_seq: 65541,
            jitter: 32,
            lsr: 0x0001_8000,
            dlsr: 0x8000,
        }],
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn compound_sr_sdes_bye_exact() {
    let buf = cat(&[&SR, &SDES, &BYE]);
    assert_eq!(classify(&buf), Kind::Rtcp);
    let packets = parse_compound(&buf, false).unwrap();
    let expect = vec![
        sr(),
        RtcpPacket::Sdes(vec![SdesChunk {
            ssrc: 0x1234_5678,
            items: vec![(1, b"abcd".to_vec())],
        }]),
        RtcpPacket::Bye {
            ssrcs: vec![0x1234_5678],
            reason: Some("leave".into()),
        },
    ];
    assert_eq!(packets, expect);
    let mut out = Vec::new();
    write_compound(&expect, &mut out).unwrap();
    assert_eq!(out, buf);
}

#[test]
fn feedback_exact() {
    let nack = RtcpPacket::Nack {
        sender_ssrc: 1,
        media_ssrc: 2,
        lost: vec![100, 101, 103, 116],
    };
    let pli = RtcpPacket::Pli {
        sender_ssrc: 1,
        media_ssrc: 2,
    };
    let fir = RtcpPacket::Fir {
        sender_ssrc: 1,
        entries: vec![(2, 7)],
    };
    let app = RtcpPacket::App {
        subtype: 2,
        ssrc: 9,
        name: *b"natr",
        data: b"xyz".to_vec(),
    };
    for (bytes, packet) in [
        (&NACK[..], nack),
        (&PLI[..], pli),
        (&FIR[..], fir),
        (&APP[..], app),
    ] {
        assert_eq!(parse_packet(bytes).unwrap(), packet);
        let mut out = Vec::new();
        write_compound(std::slice::from_ref(&packet), &mut out).unwrap();
        assert_eq!(out, bytes, "{packet:?}");
        // Alone they are reduced-size RTCP: rejected unless allowed.
        assert_eq!(parse_compound(bytes, false), Err(RtcpError::NotCompound));
        assert_eq!(parse_compound(bytes, true).unwrap(), vec![packet]);
    }
}

#[test]
fn receiver_report_and_unknown_types() {
    // Empty RR, then an RTPFB with an unknown FMT (TWCC = 15) kept verbatim.
    let buf = [
        0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 5, //
        0x8f, 0xcd, 0x00, 0x03, 0, 0, 0, 5, 0, 0, 0, 6, 1, 2, 3, 4,
    ];
    let packets = parse_compound(&buf, false).unwrap();
    assert_eq!(
        packets,
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: 5,
                reports: vec![]
            },
            RtcpPacket::Other {
                pt: 205,
                fmt: 15,
                body: vec![0, 0, 0, 5, 0, 0, 0, 6, 1, 2, 3, 4]
            },
        ]
    );
    let mut out = Vec::new();
    write_compound(&packets, &mut out).unwrap();
    assert_eq!(out, buf);
}

#[test]
fn sr_profile_extension_ignored_and_padding_stripped() {
    let mut buf = SR.to_vec();
    buf[0] |= 0x20; // P
    buf[3] = 0x0e; // two more words: 4 bytes extension + 4 bytes padding
    buf.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 4]);
    assert_eq!(parse_compound(&buf, false).unwrap(), vec![sr()]);
}

#[test]
fn nack_with_wrap_and_bye_without_reason() {
    let p = RtcpPacket::Nack {
        sender_ssrc: 1,
        media_ssrc: 2,
        lost: vec![65535, 0, 1, 40],
    };
    let mut out = Vec::new();
    write_compound(std::slice::from_ref(&p), &mut out).unwrap();
    assert_eq!(
        &out[12..],
        &[0xff, 0xff, 0x00, 0x03, 0x00, 0x28, 0x00, 0x00]
    );
    assert_eq!(parse_packet(&out).unwrap(), p);

    let bye = RtcpPacket::Bye {
        ssrcs: vec![1, 2],
        reason: None,
    };
    out.clear();
    write_compound(std::slice::from_ref(&bye), &mut out).unwrap();
    assert_eq!(out, [0x82, 0xcb, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
    assert_eq!(parse_packet(&out).unwrap(), bye);
}

#[test]
fn cumulative_lost_is_24_bit_signed() {
    let block = |lost| ReportBlock {
        cumulative_lost: lost,
        ..ReportBlock::default()
    };
    for (lost, wire, back) in [
        (-1, [0xff, 0xff, 0xff], -1),
        (0x7f_ffff, [0x7f, 0xff, 0xff], 0x7f_ffff),
        (0x100_0000, [0x7f, 0xff, 0xff], 0x7f_ffff), // clamped
        (-0x80_0000, [0x80, 0x00, 0x00], -0x80_0000),
        (-0x90_0000, [0x80, 0x00, 0x00], -0x80_0000), // clamped
    ] {
        let rr = RtcpPacket::ReceiverReport {
            ssrc: 1,
            reports: vec![block(lost)],
        };
        let mut out = Vec::new();
        write_compound(&[rr], &mut out).unwrap();
        assert_eq!(&out[13..16], &wire);
        let RtcpPacket::ReceiverReport { reports, .. } = parse_packet(&out).unwrap() else {
            panic!()
        };
        assert_eq!(reports[0].cumulative_lost, back);
    }
}

#[test]
fn malformed_inputs() {
    assert_eq!(parse_compound(&[], false), Err(RtcpError::Empty));
    assert_eq!(parse_compound(&SR[..3], false), Err(RtcpError::Truncated));
    // Length field past the end.
    assert_eq!(parse_compound(&SR[..48], false), Err(RtcpError::Truncated));
    let mut b = SR;
    b[0] = 0x41;
    assert_eq!(parse_compound(&b, false), Err(RtcpError::BadVersion(1)));
    // Report count larger than the body.
    let mut b = SR;
    b[0] = 0x82;
    assert_eq!(parse_compound(&b, false), Err(RtcpError::Truncated));
    // SR too short for its sender info.
    assert_eq!(
        parse_compound(&[0x80, 0xc8, 0, 1, 0, 0, 0, 1], false),
        Err(RtcpError::Truncated)
    );
    // Padding count past the body, and zero.
    let rr = [0xa0u8, 0xc9, 0, 1, 0, 0, 0, 9];
    assert_eq!(parse_compound(&rr, false), Err(RtcpError::BadPadding(9)));
    let rr = [0xa0u8, 0xc9, 0, 1, 0, 0, 0, 0];
    assert_eq!(parse_compound(&rr, false), Err(RtcpError::BadPadding(0)));
    // Padding eating into the SSRC.
    let rr = [0xa0u8, 0xc9, 0, 1, 0, 0, 0, 2];
    assert_eq!(parse_compound(&rr, false), Err(RtcpError::Truncated));
    // SDES item running past the end, and a chunk without its null terminator.
    let sdes = [0x81u8, 0xca, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'];
    assert_eq!(parse_compound(&sdes, true), Err(RtcpError::Truncated));
    let sdes = [0x81u8, 0xca, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
    assert_eq!(parse_compound(&sdes, true), Err(RtcpError::Truncated));
    // BYE with more sources than bytes, and a reason running past the end.
    assert_eq!(
        parse_compound(&[0x82, 0xcb, 0, 1, 0, 0, 0, 1], true),
        Err(RtcpError::Truncated)
    );
    assert_eq!(
        parse_compound(&[0x81, 0xcb, 0, 2, 0, 0, 0, 1, 9, b'x', 0, 0], true),
        Err(RtcpError::Truncated)
    );
    // NACK with a partial FCI entry; FIR with a partial entry.
    let nack = [0xa1, 0xcd, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0, 2];
    assert_eq!(parse_packet(&nack), Err(RtcpError::BadLength(205)));
    let mut fir = FIR.to_vec();
    fir[3] = 3;
    fir.truncate(16);
    assert_eq!(parse_packet(&fir), Err(RtcpError::BadLength(206)));
    // PLI without media SSRC.
    assert_eq!(
        parse_compound(&[0x81, 0xce, 0, 1, 0, 0, 0, 1], true),
        Err(RtcpError::Truncated)
    );
    // Trailing garbage shorter than a header.
    let mut b = SR.to_vec();
    b.extend_from_slice(&[0x80, 0xc9]);
    assert_eq!(parse_compound(&b, false), Err(RtcpError::Truncated));
    // A bad packet later in the compound fails the whole datagram.
    let mut b = SR.to_vec();
    b.extend_from_slice(&[0xc0, 0xc9, 0, 0]);
    assert_eq!(parse_compound(&b, false), Err(RtcpError::BadVersion(3)));
    // parse_packet refuses extra bytes.
    assert_eq!(
        parse_packet(&cat(&[&PLI, &PLI])),
        Err(RtcpError::BadLength(206))
    );
}

#[test]
fn bounded_counts() {
    let one = [0x80u8, 0xc9, 0, 1, 0, 0, 0, 1];
    let many: Vec<u8> = one.iter().copied().cycle().take(8 * 32).collect();
    assert_eq!(parse_compound(&many, false).unwrap().len(), 32);
    let too_many: Vec<u8> = one.iter().copied().cycle().take(8 * 33).collect();
    assert_eq!(parse_compound(&too_many, false), Err(RtcpError::TooMany));
    // 257 NACK FCI entries.
    let mut nack = vec![0x81u8, 0xcd, 0x01, 0x03, 0, 0, 0, 1, 0, 0, 0, 2];
    nack.extend(std::iter::repeat([0u8, 1, 0xff, 0xff]).take(257).flatten());
    assert_eq!(parse_packet(&nack), Err(RtcpError::TooMany));
    nack.truncate(nack.len() - 4);
    nack[3] = 0x02;
    let RtcpPacket::Nack { lost, .. } = parse_packet(&nack).unwrap() else {
        panic!()
    };
    assert_eq!(lost.len(), 256 * 17);
}

#[test]
fn writer_rejects_unencodable() {
    let mut out = vec![0xee];
    let rr = RtcpPacket::ReceiverReport {
        ssrc: 1,
        reports: vec![ReportBlock::default(); 32],
    };
    assert!(matches!(
        write_compound(&[rr], &mut out),
        Err(RtcpError::Unencodable(_))
    ));
    let sdes = RtcpPacket::Sdes(vec![SdesChunk {
        ssrc: 1,
        items: vec![(0, vec![])],
    }]);
    assert!(write_compound(&[sdes], &mut out).is_err());
    let sdes = RtcpPacket::Sdes(vec![SdesChunk {
        ssrc: 1,
        items: vec![(1, vec![0; 256])],
    }]);
    assert!(write_compound(&[sdes], &mut out).is_err());
    let bye = RtcpPacket::Bye {
        ssrcs: vec![],
        reason: Some("x".repeat(256)),
    };
    assert!(write_compound(
        &[
            RtcpPacket::Pli {
                sender_ssrc: 1,
                media_ssrc: 2
            },
            bye
        ],
        &mut out
    )
    .is_err());
    let other = RtcpPacket::Other {
        pt: 210,
        fmt: 0,
        body: vec![0; 0x40000],
    };
    assert!(write_compound(&[other], &mut out).is_err());
    assert_eq!(out, [0xee]);
}
