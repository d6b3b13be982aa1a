//! Entry points shared by the cargo-fuzz target and the in-crate garbage
//! tests, so both exercise exactly the same code. Not a stable API.

use crate::attribute::Attribute;
use crate::channel_data::{classify, stream_frame_len, ChannelData};
use crate::message::{is_stun, Message};
use crate::unknown::unknown_comprehension_required;
use crate::writer::MessageWriter;

/// Runs every decoder on `data` and checks the invariants that must hold for
/// any input: no panic, and anything that parses re-encodes to a message
/// with the same attributes (byte-identical when the padding was zero).
pub fn exercise(data: &[u8]) {
    let _ = classify(data);
    let _ = stream_frame_len(data);
    let _ = is_stun(data);
    if let Ok(cd) = ChannelData::parse(data) {
        let mut out = Vec::new();
        let n = ChannelData::encode(cd.channel, cd.payload, false, &mut out);
        assert_eq!(n, Ok(4 + cd.payload.len()));
        assert_eq!(ChannelData::parse(&out), Ok(cd));
    }
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    let tid = msg.transaction_id();
    for a in msg.attributes() {
        let _ = Attribute::decode(a.typ, a.value, &tid);
    }
    for a in msg.typed_attributes() {
        let _ = a;
    }
    touch_getters(&msg);
    let _ = msg.verify_integrity(b"key");
    let _ = msg.verify_integrity_sha256(b"key");
    let _ = msg.verify_fingerprint();
    let _ = unknown_comprehension_required(&msg, &[]);
    let _ = format!("{msg:?}");

    let mut out = Vec::new();
    let mut w = MessageWriter::new(&mut out, msg.method(), msg.class(), tid);
    for a in msg.attributes() {
        w.add_raw(a.typ, a.value);
    }
    assert_eq!(w.finish(), Ok(data.len()));
    let again = Message::parse(&out).expect("re-encoded message parses");
    assert!(msg.attributes().eq(again.attributes()));
    assert_eq!(again.method(), msg.method());
    assert_eq!(again.class(), msg.class());
}

fn touch_getters(m: &Message<'_>) {
    let _ = (
        m.xor_mapped_address(),
        m.mapped_address(),
        m.reflexive_address(),
    );
    let _ = (
        m.xor_peer_address(),
        m.xor_relayed_address(),
        m.alternate_server(),
    );
    let _ = m.xor_peer_addresses().count() + m.xor_relayed_addresses().count();
    let _ = (
        m.response_origin(),
        m.other_address(),
        m.username(),
        m.userhash(),
    );
    let _ = (
        m.realm(),
        m.nonce(),
        m.software(),
        m.alternate_domain(),
        m.error_code(),
    );
    if let Ok(Some(list)) = m.unknown_attributes() {
        let _ = list.count();
    }
    let _ = m.password_algorithm();
    if let Ok(Some(list)) = m.password_algorithms() {
        let _ = list.count();
    }
    let _ = (
        m.channel_number(),
        m.lifetime(),
        m.data(),
        m.requested_address_family(),
    );
    let _ = (
        m.additional_address_family(),
        m.address_error_code(),
        m.even_port(),
    );
    let _ = (
        m.requested_transport(),
        m.dont_fragment(),
        m.reservation_token(),
        m.icmp(),
    );
    let _ = (
        m.connection_id(),
        m.priority(),
        m.use_candidate(),
        m.ice_controlled(),
    );
    let _ = (
        m.ice_controlling(),
        m.change_request(),
        m.response_port(),
        m.fingerprint(),
    );
}
