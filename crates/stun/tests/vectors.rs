//! Published test vectors: RFC 5769 (all four samples) and RFC 8489 Appendix B.1.
//!
//! Each test parses the vector, checks every attribute, verifies integrity and
//! fingerprint, and rebuilds the message with `MessageWriter` byte for byte.
//! RFC 5769 pads with spaces (0x20) in sections 2.1 to 2.3, which RFC 8489
//! allows; the writer's `padding_byte` reproduces that.

// Test helpers outside #[test] fns are not covered by allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use natter_stun::credentials::{
    long_term_key, long_term_key_sha256, parse_nonce_cookie, userhash, SecurityFeatures,
};
use natter_stun::{
    attr, Class, IntegrityError, Message, MessageWriter, Method, PasswordAlgorithm, TransactionId,
};

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TID_5769: TransactionId = TransactionId([
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
]);

/// RFC 5769 section 2.1, Sample Request.
const SAMPLE_REQUEST: &str = "
    00 01 00 58  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
    80 22 00 10  53 54 55 4e  20 74 65 73  74 20 63 6c  69 65 6e 74
    00 24 00 04  6e 00 01 ff
    80 29 00 08  93 2f f9 b1  51 26 3b 36
    00 06 00 09  65 76 74 6a  3a 68 36 76  59 20 20 20
    00 08 00 14  9a ea a7 0c  bf d8 cb 56  78 1e f2 b5  b2 d3 f2 49  c1 b5 71 a2
    80 28 00 04  e5 7a 3b cf";

/// RFC 5769 section 2.2, Sample IPv4 Response.
const IPV4_RESPONSE: &str = "
    01 01 00 3c  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
    80 22 00 0b  74 65 73 74  20 76 65 63  74 6f 72 20
    00 20 00 08  00 01 a1 47  e1 12 a6 43
    00 08 00 14  2b 91 f5 99  fd 9e 90 c3  8c 74 89 f9  2a f9 ba 53  f0 6b e7 d7
    80 28 00 04  c0 7d 4c 96";

/// RFC 5769 section 2.3, Sample IPv6 Response.
const IPV6_RESPONSE: &str = "
    01 01 00 48  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
    80 22 00 0b  74 65 73 74  20 76 65 63  74 6f 72 20
    00 20 00 14  00 02 a1 47  01 13 a9 fa  a5 d3 f1 79  bc 25 f4 b5  be d2 b9 d9
    00 08 00 14  a3 82 95 4e  4b e6 7b f1  17 84 c9 7c  82 92 c2 75  bf e3 ed 41
    80 28 00 04  c8 fb 0b 4c";

/// RFC 5769 section 2.4, Sample Request with Long-Term Authentication.
const LONG_TERM_REQUEST: &str = "
    00 01 00 60  21 12 a4 42  78 ad 34 33  c6 ad 72 c0  29 da 41 2e
    00 06 00 12  e3 83 9e e3  83 88 e3 83  aa e3 83 83  e3 82 af e3  82 b9 00 00
    00 15 00 1c  66 2f 2f 34  39 39 6b 39  35 34 64 36  4f 4c 33 34  6f 4c 39 46
                 53 54 76 79  36 34 73 41
    00 14 00 0b  65 78 61 6d  70 6c 65 2e  6f 72 67 00
    00 08 00 14  f6 70 24 65  6d d6 4a 3e  02 b8 e0 71  2e 85 c9 a2  8c a8 96 66";

/// RFC 8489 Appendix B.1 as corrected by verified erratum 6268 (the printed
/// vector has a wrong length and omits PASSWORD-ALGORITHM).
const SHA256_REQUEST: &str = "
    00 01 00 90  21 12 a4 42  78 ad 34 33  c6 ad 72 c0  29 da 41 2e
    00 1e 00 20  4a 3c f3 8f  ef 69 92 bd  a9 52 c6 78  04 17 da 0f
                 24 81 94 15  56 9e 60 b2  05 c4 6e 41  40 7f 17 04
    00 15 00 29  6f 62 4d 61  74 4a 6f 73  32 41 41 41  43 66 2f 2f  34 39 39 6b
                 39 35 34 64  36 4f 4c 33  34 6f 4c 39  46 53 54 76  79 36 34 73
                 41 00 00 00
    00 14 00 0b  65 78 61 6d  70 6c 65 2e  6f 72 67 00
    00 1d 00 04  00 02 00 00
    00 1c 00 20  b5 c7 bf 00  5b 6c 52 a2  1c 51 c5 e8  92 f8 19 24
                 13 62 96 cb  92 7c 43 14  93 09 27 8c  c6 51 8e 65";

const USERNAME_2_4: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";

#[test]
fn rfc5769_sample_request() {
    let bytes = hex(SAMPLE_REQUEST);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.method(), Method::BINDING);
    assert_eq!(msg.class(), Class::Request);
    assert_eq!(msg.transaction_id(), TID_5769);
    assert_eq!(msg.software(), Ok(Some("STUN test client")));
    assert_eq!(msg.priority(), Ok(Some(0x6e00_01ff)));
    assert_eq!(msg.ice_controlled(), Ok(Some(0x932f_f9b1_5126_3b36)));
    assert_eq!(msg.username(), Ok(Some("evtj:h6vY")));
    assert_eq!(msg.verify_integrity(PASSWORD), Ok(()));
    assert_eq!(
        msg.verify_integrity(b"wrong"),
        Err(IntegrityError::Mismatch)
    );
    assert_eq!(msg.verify_fingerprint(), Ok(()));

    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, Method::BINDING, Class::Request, TID_5769)
        .padding_byte(0x20)
        .add_software("STUN test client")
        .add_priority(0x6e00_01ff)
        .add_ice_controlled(0x932f_f9b1_5126_3b36)
        .add_username("evtj:h6vY")
        .add_message_integrity(PASSWORD)
        .add_fingerprint()
        .finish()
        .unwrap();
    assert_eq!(buf, bytes);
}

fn check_response(vector: &str, mapped: SocketAddr) {
    let bytes = hex(vector);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.method(), Method::BINDING);
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.software(), Ok(Some("test vector")));
    assert_eq!(msg.xor_mapped_address(), Ok(Some(mapped)));
    assert_eq!(msg.reflexive_address(), Ok(Some(mapped)));
    assert_eq!(msg.verify_integrity(PASSWORD), Ok(()));
    assert_eq!(msg.verify_fingerprint(), Ok(()));

    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, Method::BINDING, Class::Success, TID_5769)
        .padding_byte(0x20)
        .add_software("test vector")
        .add_xor_mapped_address(mapped)
        .add_message_integrity(PASSWORD)
        .add_fingerprint()
        .finish()
        .unwrap();
    assert_eq!(buf, bytes);
}

#[test]
fn rfc5769_ipv4_response() {
    check_response(IPV4_RESPONSE, "192.0.2.1:32853".parse().unwrap());
}

#[test]
fn rfc5769_ipv6_response() {
    check_response(
        IPV6_RESPONSE,
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap(),
    );
}

#[test]
fn rfc5769_long_term_request() {
    let bytes = hex(LONG_TERM_REQUEST);
    let msg = Message::parse(&bytes).unwrap();
    let tid = msg.transaction_id();
    assert_eq!(msg.username(), Ok(Some(USERNAME_2_4)));
    assert_eq!(msg.nonce(), Ok(Some("f//499k954d6OL34oL9FSTvy64sA")));
    assert_eq!(msg.realm(), Ok(Some("example.org")));
    // The password "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep.
    let key = long_term_key(USERNAME_2_4, "example.org", "TheMatrIX");
    assert_eq!(msg.verify_integrity(&key), Ok(()));
    assert_eq!(msg.verify_fingerprint(), Err(IntegrityError::Missing));

    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid)
        .add_username(USERNAME_2_4)
        .add_nonce("f//499k954d6OL34oL9FSTvy64sA")
        .add_realm("example.org")
        .add_message_integrity(&key)
        .finish()
        .unwrap();
    assert_eq!(buf, bytes);
}

#[test]
fn rfc8489_b1_sha256_userhash_request() {
    let bytes = hex(SHA256_REQUEST);
    let msg = Message::parse(&bytes).unwrap();
    let tid = msg.transaction_id();
    let hash = userhash(USERNAME_2_4, "example.org");
    assert_eq!(msg.userhash(), Ok(Some(&hash)));
    let nonce = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";
    assert_eq!(msg.nonce(), Ok(Some(nonce)));
    assert_eq!(
        parse_nonce_cookie(nonce),
        Some(SecurityFeatures::USERNAME_ANONYMITY)
    );
    assert_eq!(msg.realm(), Ok(Some("example.org")));
    let algo = msg.password_algorithm().unwrap().unwrap();
    assert_eq!(algo.algorithm, PasswordAlgorithm::SHA256);
    assert!(algo.params.is_empty());

    let key = long_term_key_sha256(USERNAME_2_4, "example.org", "TheMatrIX");
    assert_eq!(msg.verify_integrity_sha256(&key), Ok(()));
    assert_eq!(msg.verify_integrity(&key), Err(IntegrityError::Missing));

    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid)
        .add_userhash(&hash)
        .add_nonce(nonce)
        .add_realm("example.org")
        .add_password_algorithm(PasswordAlgorithm::SHA256, &[])
        .add_message_integrity_sha256(&key)
        .finish()
        .unwrap();
    assert_eq!(buf, bytes);
}

/// RFC 8489 Appendix B.1 / RFC 5769 section 2.4 from the *unprepared*
/// password: SASLprep must turn it into `TheMatrIX` for both algorithms.
#[test]
fn rfc8489_b1_raw_password_is_saslprepped() {
    let raw_pw = "The\u{00AD}M\u{00AA}tr\u{2168}";
    let msg_bytes = hex(SHA256_REQUEST);
    let msg = Message::parse(&msg_bytes).unwrap();
    let key = long_term_key_sha256(USERNAME_2_4, "example.org", raw_pw);
    assert_eq!(msg.verify_integrity_sha256(&key), Ok(()));
    let md5_bytes = hex(LONG_TERM_REQUEST);
    let msg = Message::parse(&md5_bytes).unwrap();
    let key = long_term_key(USERNAME_2_4, "example.org", raw_pw);
    assert_eq!(msg.verify_integrity(&key), Ok(()));
    assert_eq!(
        natter_stun::credentials::saslprep(raw_pw).as_deref(),
        Ok("TheMatrIX")
    );
}

#[test]
fn tampering_breaks_integrity_and_fingerprint() {
    let mut bytes = hex(SAMPLE_REQUEST);
    // Flip a bit inside SOFTWARE.
    bytes[25] ^= 0x01;
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        msg.verify_integrity(PASSWORD),
        Err(IntegrityError::Mismatch)
    );
    assert_eq!(msg.verify_fingerprint(), Err(IntegrityError::Mismatch));
    assert!(msg.contains(attr::SOFTWARE));
}
