//! Building and classifying the STUN messages ICE uses, on top of natter-stun.

use std::net::SocketAddr;

use natter_stun::{Class, Message, MessageWriter, Method, TransactionId};

/// What a check request carries.
pub(crate) struct CheckRequest<'a> {
    pub(crate) tid: TransactionId,
    pub(crate) username: &'a str,
    pub(crate) priority: u32,
    pub(crate) controlling: bool,
    pub(crate) tie_breaker: u64,
    pub(crate) use_candidate: bool,
    pub(crate) key: &'a [u8],
}

pub(crate) fn check_request(r: &CheckRequest<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Request, r.tid);
    w.add_username(r.username).add_priority(r.priority);
    if r.controlling {
        w.add_ice_controlling(r.tie_breaker);
    } else {
        w.add_ice_controlled(r.tie_breaker);
    }
    if r.use_candidate {
        w.add_use_candidate();
    }
    w.add_message_integrity(r.key).add_fingerprint();
    match w.finish() {
        Ok(_) => buf,
        Err(_) => Vec::new(),
    }
}

pub(crate) fn check_success(tid: TransactionId, mapped: SocketAddr, key: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(80);
    let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Success, tid);
    w.add_xor_mapped_address(mapped)
        .add_message_integrity(key)
        .add_fingerprint();
    match w.finish() {
        Ok(_) => buf,
        Err(_) => Vec::new(),
    }
}

/// Error response; integrity only when the request authenticated (RFC 8489 §9.1.3).
pub(crate) fn check_error(
    tid: TransactionId,
    code: u16,
    reason: &str,
    key: Option<&[u8]>,
) -> Vec<u8> {
    check_error_unknown(tid, code, reason, key, &[])
}

pub(crate) fn check_error_unknown(
    tid: TransactionId,
    code: u16,
    reason: &str,
    key: Option<&[u8]>,
    unknown: &[u16],
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(80);
    let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Error, tid);
    w.add_error_code(code, reason);
    if !unknown.is_empty() {
        w.add_unknown_attributes(unknown);
    }
    if let Some(k) = key {
        w.add_message_integrity(k);
    }
    w.add_fingerprint();
    match w.finish() {
        Ok(_) => buf,
        Err(_) => Vec::new(),
    }
}

pub(crate) fn binding_request(tid: TransactionId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(28);
    let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid);
    w.add_fingerprint();
    match w.finish() {
        Ok(_) => buf,
        Err(_) => Vec::new(),
    }
}

pub(crate) fn binding_indication(tid: TransactionId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(28);
    let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Indication, tid);
    w.add_fingerprint();
    match w.finish() {
        Ok(_) => buf,
        Err(_) => Vec::new(),
    }
}

/// Attributes a connectivity check may carry that we understand (RFC 8445 §7.1.2,
/// RFC 8489 §14); any other comprehension-required one gets a 420.
pub(crate) const KNOWN_CHECK_ATTRS: &[u16] = &[
    natter_stun::attr::USERNAME,
    natter_stun::attr::MESSAGE_INTEGRITY,
    natter_stun::attr::MESSAGE_INTEGRITY_SHA256,
    natter_stun::attr::PRIORITY,
    natter_stun::attr::USE_CANDIDATE,
    natter_stun::attr::XOR_MAPPED_ADDRESS,
    natter_stun::attr::MAPPED_ADDRESS,
    natter_stun::attr::ERROR_CODE,
    natter_stun::attr::UNKNOWN_ATTRIBUTES,
    natter_stun::attr::USERHASH,
];

/// Parses a datagram as STUN if it looks like STUN (RFC 7983 first-byte demux plus
/// a valid header); `None` means application data.
pub(crate) fn parse(bytes: &[u8]) -> Option<Message<'_>> {
    match bytes.first() {
        Some(0..=3) => Message::parse(bytes).ok(),
        _ => None,
    }
}

/// FINGERPRINT, when present, must be right (RFC 8445 §7.3: ICE requires it).
pub(crate) fn fingerprint_ok(msg: &Message<'_>) -> bool {
    if msg.contains(natter_stun::attr::FINGERPRINT) {
        msg.verify_fingerprint().is_ok()
    } else {
        true
    }
}
