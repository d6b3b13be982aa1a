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
