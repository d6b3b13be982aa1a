//! RTP packet parsing and writing against hand-built bytes.
#![allow(clippy::unwrap_used)]

use natter_rtp::demux::{classify, Kind};
use natter_rtp::{RtpError, RtpHeader, RtpPacket};

#[test]
fn minimal_packet_fields() {
    let buf = [
        0x80, 0xe0, 0x00, 0x01, // V=2, M=1, PT=96, seq 1
        0x00, 0x00, 0x00, 0xa0, // ts 160
        0x12, 0x34, 0x56, 0x78, // ssrc
        0xde, 0xad, 0xbe, 0xef,
    ];
    let p = RtpPacket::parse(&buf).unwrap();
    assert!(p.marker());
    assert_eq!(p.payload_type(), 96);
    assert_eq!(p.sequence(), 1);
    assert_eq!(p.timestamp(), 160);
    assert_eq!(p.ssrc(), 0x1234_5678);
    assert_eq!(p.csrcs().count(), 0);
    assert_eq!(p.extension(), None);
    assert_eq!(p.extensions().count(), 0);
    assert_eq!(p.header_len(), 12);
    assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    assert!(!p.has_padding());
    assert_eq!(classify(&buf), Kind::Rtp);

    let mut out = Vec::new();
    p.to_header().write(p.payload(), &mut out).unwrap();
    assert_eq!(out, buf);
}

const FULL: [u8; 43] = [
    0xb2, 0x6f, 0xab, 0xcd, // V=2 P=1 X=1 CC=2, M=0 PT=111, seq 0xabcd
    0x00, 0x01, 0x02, 0x03, // ts
    0xde, 0xad, 0xbe, 0xef, // ssrc
    0x00, 0x00, 0x00, 0x01, // csrc 1
    0x00, 0x00, 0x00, 0x02, // csrc 2
    0xbe, 0xde, 0x00, 0x02, // one-byte extension, 2 words
    0x10, 0xaa, // id 1, 1 byte
    0x22, 0x01, 0x02, 0x03, // id 2, 3 bytes
    0x00, 0x00, // padding
    0x01, 0x02, 0x03, // payload
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, // 8 bytes RTP padding
];

#[test]
fn csrcs_one_byte_extensions_and_padding() {
    let p = RtpPacket::parse(&FULL).unwrap();
    assert!(!p.marker());
    assert_eq!(p.payload_type(), 111);
    assert_eq!(p.sequence(), 0xabcd);
    assert_eq!(p.timestamp(), 0x0001_0203);
    assert_eq!(p.ssrc(), 0xdead_beef);
    assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(p.extension(), Some((0xbede, &FULL[24..32])));
    let ext: Vec<_> = p.extensions().collect();
    assert_eq!(ext, vec![(1, &[0xaa][..]), (2, &[1, 2, 3][..])]);
    assert_eq!(p.header_len(), 32);
    assert_eq!(p.payload(), &[1, 2, 3]);
    assert!(p.has_padding());
    assert_eq!(p.padding_len(), 8);

    let h = p.to_header();
    assert_eq!(
        h,
        RtpHeader {
            marker: false,
            payload_type: 111,
            sequence: 0xabcd,
            timestamp: 0x0001_0203,
            ssrc: 0xdead_beef,
            csrcs: vec![1, 2],
            extensions: vec![(1, vec![0xaa]), (2, vec![1, 2, 3])],
        }
    );
    let mut out = Vec::new();
    h.write_padded(p.payload(), 8, &mut out).unwrap();
    assert_eq!(out, FULL);
    out.clear();
    h.write(p.payload(), &mut out).unwrap();
    let mut expect = FULL[..35].to_vec();
    expect[0] = 0x92; // no P bit
    assert_eq!(out, expect);
    assert_eq!(h.write_padded(&[], 0, &mut out), Err(RtpError::ZeroPadding));
}

#[test]
fn two_byte_extensions() {
    let h = RtpHeader {
        marker: true,
        payload_type: 0,
        sequence: 65535,
        timestamp: u32::MAX,
        ssrc: 1,
        csrcs: vec![],
        // id 20 does not fit the one-byte form; empty data neither.
        extensions: vec![(20, vec![]), (3, vec![0xaa, 0xbb])],
    };
    let mut out = Vec::new();
    h.write(&[9], &mut out).unwrap();
    assert_eq!(
        out,
        [
            0x90, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, //
            0x10, 0x00, 0x00, 0x02, // two-byte profile, 2 words
            20, 0, 3, 2, 0xaa, 0xbb, 0, 0, //
            9,
        ]
    );
    let p = RtpPacket::parse(&out).unwrap();
    assert_eq!(
        p.extensions().collect::<Vec<_>>(),
        vec![(20, &[][..]), (3, &[0xaa, 0xbb][..])]
    );
    assert_eq!(p.to_header(), h);
    assert_eq!(p.payload(), &[9]);
}

#[test]
fn one_byte_id_15_stops_and_unknown_profile_is_opaque() {
    let mut buf = vec![
        0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0xf0, 0x33,
    ];
    let p = RtpPacket::parse(&buf).unwrap();
    assert_eq!(p.extensions().collect::<Vec<_>>(), vec![(1, &[0xaa][..])]);
    // Element that claims more bytes than remain: iteration stops, packet still valid.
    buf[18] = 0x2f;
    let p = RtpPacket::parse(&buf).unwrap();
    assert_eq!(p.extensions().count(), 1);
    buf[12] = 0x12;
    let p = RtpPacket::parse(&buf).unwrap();
    assert_eq!(p.extension(), Some((0x12de, &buf[16..20])));
    assert_eq!(p.extensions().count(), 0);
}

#[test]
fn malformed_inputs() {
    let good = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    assert!(RtpPacket::parse(&good).is_ok());
    assert_eq!(RtpPacket::parse(&good[..11]), Err(RtpError::TooShort));
    assert_eq!(RtpPacket::parse(&[]), Err(RtpError::TooShort));
    let mut b = good;
    b[0] = 0x40;
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadVersion(1)));
    b[0] = 0x81; // one CSRC, none present
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::CsrcOverrun));
    b[0] = 0x90; // extension bit, no extension header
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::ExtensionOverrun));
    let mut e = good.to_vec();
    e[0] = 0x90;
    e.extend_from_slice(&[0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa, 0, 0]); // claims 2 words, has 1
    assert_eq!(RtpPacket::parse(&e), Err(RtpError::ExtensionOverrun));
    let mut p = good.to_vec();
    p[0] = 0xa0;
    p.extend_from_slice(&[1, 2, 3]); // padding count 3 = whole remainder: empty payload
    assert_eq!(RtpPacket::parse(&p).unwrap().payload(), &[] as &[u8]);
    *p.last_mut().unwrap() = 4; // past the end of the payload
    assert_eq!(RtpPacket::parse(&p), Err(RtpError::BadPadding(4)));
    *p.last_mut().unwrap() = 0;
    assert_eq!(RtpPacket::parse(&p), Err(RtpError::BadPadding(0)));
    b = good;
    b[0] = 0xa0; // padding bit, no bytes after the header
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadPadding(1)));
}

#[test]
fn writer_rejects_unencodable_headers() {
    let mut out = Vec::new();
    let h = RtpHeader {
        csrcs: vec![0; 16],
        ..RtpHeader::default()
    };
    assert_eq!(h.write(&[], &mut out), Err(RtpError::TooManyCsrcs(16)));
    let h = RtpHeader {
        payload_type: 128,
        ..RtpHeader::default()
    };
    assert_eq!(h.write(&[], &mut out), Err(RtpError::BadPayloadType(128)));
    let h = RtpHeader {
        extensions: vec![(0, vec![1])],
        ..RtpHeader::default()
    };
    assert_eq!(
        h.write(&[], &mut out),
        Err(RtpError::BadExtension { id: 0, len: 1 })
    );
    let h = RtpHeader {
        extensions: vec![(1, vec![0; 256])],
        ..RtpHeader::default()
    };
    assert_eq!(
        h.write(&[], &mut out),
        Err(RtpError::BadExtension { id: 1, len: 256 })
    );
    assert!(out.is_empty());
}
