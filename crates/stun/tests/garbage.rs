//! Garbage and property tests: decoding never panics, and encode/decode
//! round-trips for generated messages.

use natter_stun::{fuzzing, Class, Message, MessageWriter, Method, TransactionId};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A valid message with a spread of attribute kinds, used as a mutation seed.
fn seed_message() -> Vec<u8> {
    let mut buf = Vec::new();
    MessageWriter::new(
        &mut buf,
        Method::ALLOCATE,
        Class::Request,
        TransactionId([0x42; 12]),
    )
    .add_username("alice")
    .add_realm("example.org")
    .add_nonce("obMatJos2AAABxyz")
    .add_requested_transport(17)
    .add_lifetime(600)
    .add_xor_peer_address("[2001:db8::1]:4000".parse().expect("addr"))
    .add_error_code(438, "Stale Nonce")
    .add_even_port(true)
    .add_password_algorithms(&[natter_stun::PasswordAlgorithm::SHA256])
    .add_unknown_attributes(&[0x1234])
    .add_message_integrity(b"k")
    .add_message_integrity_sha256(b"k")
    .add_fingerprint()
    .finish()
    .expect("seed encodes");
    buf
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5354_554e);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        let len = rng.gen_range(0..160);
        buf.clear();
        buf.extend((0..len).map(|_| rng.gen::<u8>()));
        fuzzing::exercise(&buf);
        // Make some inputs pass the header checks so attribute walking is reached.
        if len >= 20 {
            buf[0] &= 0x3F;
            buf[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            let body = ((len - 20) & !3) as u16;
            buf[2..4].copy_from_slice(&body.to_be_bytes());
            buf.truncate(20 + usize::from(body));
            fuzzing::exercise(&buf);
        }
    }
}

#[test]
fn mutated_valid_messages_never_panic() {
    let seed = seed_message();
    fuzzing::exercise(&seed);
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..20_000 {
        let mut m = seed.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..m.len());
            m[i] = rng.gen();
        }
        if rng.gen_bool(0.2) {
            let cut = rng.gen_range(0..m.len());
            m.truncate(cut);
        }
        fuzzing::exercise(&m);
    }
}

fn attribute() -> impl Strategy<Value = (u16, Vec<u8>)> {
    (
        any::<u16>().prop_filter("integrity attributes have their own rules", |t| {
            ![0x0008, 0x001C, 0x8028].contains(t)
        }),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(
        method in 0u16..=0x0FFF,
        class in 0u16..4,
        tid in any::<[u8; 12]>(),
        attrs in proptest::collection::vec(attribute(), 0..12),
        integrity in any::<bool>(),
        fingerprint in any::<bool>(),
    ) {
        let class = Class::from_bits(class);
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method(method), class, TransactionId(tid));
        for (t, v) in &attrs {
            w.add_raw(*t, v);
        }
        if integrity {
            w.add_message_integrity(b"pw");
        }
        if fingerprint {
            w.add_fingerprint();
        }
        let len = w.finish().expect("encodes");
        prop_assert_eq!(len, buf.len());

        let msg = Message::parse(&buf).expect("decodes");
        prop_assert_eq!(msg.method(), Method(method));
        prop_assert_eq!(msg.class(), class);
        prop_assert_eq!(msg.transaction_id(), TransactionId(tid));
        let decoded: Vec<(u16, Vec<u8>)> =
            msg.attributes().take(attrs.len()).map(|a| (a.typ, a.value.to_vec())).collect();
        prop_assert_eq!(&decoded, &attrs);
        if integrity {
            prop_assert_eq!(msg.verify_integrity(b"pw"), Ok(()));
        }
        if fingerprint {
            prop_assert_eq!(msg.verify_fingerprint(), Ok(()));
        }

        // Re-encoding the decoded attributes gives the same bytes.
        let mut again = Vec::new();
        let mut w = MessageWriter::new(&mut again, msg.method(), msg.class(), msg.transaction_id());
        for a in msg.attributes() {
            w.add_raw(a.typ, a.value);
        }
        w.finish().expect("re-encodes");
        prop_assert_eq!(again, buf.clone());
        fuzzing::exercise(&buf);
    }
}

/// Inputs for one typed attribute; `typed` picks a variant from `kind`.
#[derive(Clone, Debug)]
struct Spec {
    kind: u8,
    n64: u64,
    n32: u32,
    text: String,
    bytes: Vec<u8>,
    addr: std::net::SocketAddr,
    flag: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    let addr = prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| std::net::SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| std::net::SocketAddr::from((ip, port))),
    ];
    (
        0u8..36,
        any::<u64>(),
        any::<u32>(),
        "[a-zA-Z0-9 äö:]{0,40}",
        proptest::collection::vec(any::<u8>(), 0..48),
        addr,
        any::<bool>(),
    )
        .prop_map(|(kind, n64, n32, text, bytes, addr, flag)| Spec {
            kind,
            n64,
            n32,
            text,
            bytes,
            addr,
            flag,
        })
}

fn typed(s: &Spec) -> natter_stun::Attribute<'_> {
    use natter_stun::{
        AddressErrorCode, AddressFamily, Attribute as A, ChangeRequest, ErrorCode, EvenPort, Icmp,
        PasswordAlgorithm, PasswordAlgorithmParams,
    };
    let family = if s.flag {
        AddressFamily::V4
    } else {
        AddressFamily::V6
    };
    let code = 300 + (s.n32 % 400) as u16;
    match s.kind {
        0 => A::MappedAddress(s.addr),
        1 => A::XorMappedAddress(s.addr),
        2 => A::XorPeerAddress(s.addr),
        3 => A::XorRelayedAddress(s.addr),
        4 => A::AlternateServer(s.addr),
        5 => A::ResponseOrigin(s.addr),
        6 => A::OtherAddress(s.addr),
        7 => A::Username(&s.text),
        8 => A::Realm(&s.text),
        9 => A::Nonce(&s.text),
        10 => A::Software(&s.text),
        11 => A::AlternateDomain(&s.text),
        12 => A::ErrorCode(ErrorCode {
            code,
            reason: &s.text,
        }),
        13 => A::AddressErrorCode(AddressErrorCode {
            family,
            code,
            reason: &s.text,
        }),
        14 => A::PasswordAlgorithm(PasswordAlgorithmParams {
            algorithm: PasswordAlgorithm(s.n32 as u16),
            params: &s.bytes,
        }),
        15 => A::ChannelNumber(s.n32 as u16),
        16 => A::Lifetime(s.n32),
        17 => A::Data(&s.bytes),
        18 => A::RequestedAddressFamily(family),
        19 => A::AdditionalAddressFamily(family),
        20 => A::EvenPort(EvenPort {
            reserve_next: s.flag,
        }),
        21 => A::RequestedTransport(s.n32 as u8),
        22 => A::DontFragment,
        23 => A::ReservationToken(s.n64),
        24 => A::Icmp(Icmp {
            icmp_type: s.n32 as u8,
            icmp_code: (s.n32 >> 8) as u8,
            error_data: s.n64 as u32,
        }),
        25 => A::ConnectionId(s.n32),
        26 => A::Priority(s.n32),
        27 => A::UseCandidate,
        28 => A::IceControlled(s.n64),
        29 => A::IceControlling(s.n64),
        30 => A::ChangeRequest(ChangeRequest {
            change_ip: s.flag,
            change_port: s.n32 & 1 == 1,
        }),
        31 => A::ResponsePort(s.n32 as u16),
        32 => A::Padding(&s.bytes),
        33 => A::Lifetime(s.n32.rotate_left(7)),
        34 => A::Software(""),
        _ => A::Other {
            typ: 0x8000 | 0x0100 | (s.n32 as u16 & 0x00FF),
            value: &s.bytes,
        },
    }
}

proptest! {
    #[test]
    fn typed_attributes_round_trip(specs in proptest::collection::vec(spec(), 0..10)) {
        let attrs: Vec<natter_stun::Attribute<'_>> = specs.iter().map(typed).collect();
        let mut buf = Vec::new();
        let tid = TransactionId([9; 12]);
        let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Success, tid);
        for a in &attrs {
            w.add_attribute(a);
        }
        w.finish().expect("typed attributes encode");
        let msg = Message::parse(&buf).expect("decodes");
        let back: Vec<_> = msg.typed_attributes().collect::<Result<_, _>>().expect("typed decode");
        prop_assert_eq!(back, attrs);
    }
}

/// State machines fed random datagrams (some valid responses with random
/// transaction IDs or sources) keep their invariants: no panic, deadlines
/// never in the past, and they always finish.
#[test]
#[allow(clippy::disallowed_methods)] // one real origin instant, virtual time after it
fn state_machines_tolerate_garbage() {
    use natter_stun::{NatProbe, NatProbeConfig, StunClient, StunClientConfig};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    let start = Instant::now();
    let server: SocketAddr = "192.0.2.1:3478".parse().expect("addr");
    let mut rng = StdRng::seed_from_u64(99);
    for round in 0..200 {
        let config = NatProbeConfig {
            rto: Duration::from_millis(50),
            rc: 2,
            rm: 2,
        };
        let mut probe = NatProbe::new(
            start,
            "10.0.0.1:5000".parse().expect("addr"),
            server,
            TransactionId([round as u8; 12]),
            config,
        );
        let mut client = StunClient::new(StunClientConfig::default());
        let mut req = Vec::new();
        MessageWriter::new(
            &mut req,
            Method::BINDING,
            Class::Request,
            TransactionId([1; 12]),
        )
        .finish()
        .expect("encodes");
        client
            .send_request(start, server, req, false)
            .expect("accepted");
        let mut now = start;
        for _ in 0..200 {
            while probe.poll_transmit().is_some() {}
            while client.poll_transmit().is_some() {}
            let mut junk = Vec::new();
            let tid = if rng.gen_bool(0.5) {
                TransactionId([round as u8; 12])
            } else {
                TransactionId([1; 12])
            };
            let class = Class::from_bits(rng.gen_range(0..4));
            let mut w = MessageWriter::new(&mut junk, Method(rng.gen_range(0..3)), class, tid);
            if rng.gen_bool(0.7) {
                w.add_xor_mapped_address(SocketAddr::from((rng.gen::<[u8; 4]>(), rng.gen())));
            }
            if rng.gen_bool(0.5) {
                w.add_other_address(SocketAddr::from(([192, 0, 2, 2], 3479)));
            }
            w.finish().expect("encodes");
            if rng.gen_bool(0.3) {
                let i = rng.gen_range(0..junk.len());
                junk[i] = rng.gen();
            }
            let from = if rng.gen_bool(0.5) {
                server
            } else {
                SocketAddr::from(([192, 0, 2, 2], 3479))
            };
            probe.handle_response(now, from, &junk);
            if let Ok(m) = Message::parse(&junk) {
                client.handle_response(now, from, &m);
            }
            while client.poll_event().is_some() {}
            let next = [probe.poll_timeout(), client.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            assert!(next >= now, "deadline in the past");
            now = next;
            probe.handle_timeout(now);
            client.handle_timeout(now);
        }
        assert!(probe.result().is_some(), "probe finished");
        assert_eq!(client.in_flight(), 0);
    }
}
