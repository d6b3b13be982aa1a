//! Building messages into a caller-owned buffer.
//!
//! [`MessageWriter`] clears the caller's `Vec<u8>` and appends the header and
//! each attribute in place: reusing one `Vec` per socket means no allocation
//! per message once the buffer has grown to the largest message sent. Every
//! `add_*` method returns `&mut Self` so calls chain; the first problem is
//! remembered and reported by [`MessageWriter::finish`] (the same "sticky
//! error" shape as `std::fmt::Write` users know), which keeps call sites short.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::address::{self, AddressFamily};
use crate::attr;
use crate::attribute::Attribute;
use crate::attribute::{
    ChangeRequest, Icmp, PasswordAlgorithm, MAX_DOMAIN_BYTES, MAX_TEXT_BYTES, MAX_TEXT_CHARS,
    MAX_USERNAME_BYTES,
};
use crate::integrity::FINGERPRINT_XOR;
use crate::message::{Message, TransactionId, HEADER_LEN, MAGIC_COOKIE};
use crate::method::{message_type, Class, Method};

/// Why a message could not be built.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A value is longer than its attribute allows (or than 65535 bytes).
    #[error("value of attribute {typ:#06x} is too long")]
    ValueTooLong {
        /// The attribute type.
        typ: u16,
    },
    /// A value is out of range (e.g. an error code outside 300..=699).
    #[error("value of attribute {typ:#06x} is out of range")]
    InvalidValue {
        /// The attribute type.
        typ: u16,
    },
    /// The message would exceed the 65535-byte length field.
    #[error("message longer than the length field allows")]
    MessageTooLong,
    /// An attribute was added after MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT,
    /// where receivers would ignore it (RFC 8489 section 14.5).
    #[error("attribute {typ:#06x} added after an integrity or fingerprint attribute")]
    AfterIntegrity {
        /// The attribute type.
        typ: u16,
    },
}

/// Where the writer is in the attribute order rules of RFC 8489 section 14.
#[derive(Clone, Copy, Debug, Eq, PartialEq, PartialOrd)]
enum Stage {
    Open,
    Integrity,
    IntegritySha256,
    Fingerprint,
}

/// Builds one STUN message into a reused buffer.
///
/// ```
/// use natter_stun::{Class, Message, MessageWriter, Method, TransactionId};
///
/// let mut buf = Vec::new();
/// let tid = TransactionId([1; 12]);
/// let len = MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid)
///     .add_software("natter")
///     .add_message_integrity(b"secret")
///     .add_fingerprint()
///     .finish()
///     .unwrap();
/// assert_eq!(len, buf.len());
/// let msg = Message::parse(&buf).unwrap();
/// assert!(msg.verify_integrity(b"secret").is_ok());
/// assert!(msg.verify_fingerprint().is_ok());
/// ```
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut Vec<u8>,
    tid: TransactionId,
    padding: u8,
    stage: Stage,
    error: Option<EncodeError>,
}

impl<'b> MessageWriter<'b> {
    /// Clears `buf` and writes a header with an empty attribute area.
    pub fn new(buf: &'b mut Vec<u8>, method: Method, class: Class, tid: TransactionId) -> Self {
        buf.clear();
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid.0);
        Self {
            buf,
            tid,
            padding: 0,
            stage: Stage::Open,
            error: None,
        }
    }

    /// Starts a response of `class` to `request`: same method, same transaction ID.
    pub fn reply(buf: &'b mut Vec<u8>, request: &Message<'_>, class: Class) -> Self {
        Self::new(buf, request.method(), class, request.transaction_id())
    }

    /// Sets the byte used to pad values to 4 bytes (default 0). RFC 8489
    /// lets senders pad with anything; RFC 5769's vectors pad with spaces,
    /// and this is how the tests reproduce them byte for byte.
    pub fn padding_byte(&mut self, byte: u8) -> &mut Self {
        self.padding = byte;
        self
    }

    /// The transaction ID this message carries.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Finishes the message and returns its length, or the first error.
    /// On error the buffer content is unspecified.
    pub fn finish(&mut self) -> Result<usize, EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.buf.len()),
        }
    }

    /// The bytes written so far (a complete message after every `add_*`).
    pub fn as_bytes(&self) -> &[u8] {
        self.buf
    }

    /// Appends an attribute whose value is produced by `fill` writing straight
    /// into the buffer, then pads it. This is the one place attributes get written.
    fn attr_with(&mut self, typ: u16, fill: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        if self.error.is_some() {
            return self;
        }
        let allowed = match self.stage {
            Stage::Open => true,
            Stage::Integrity => typ == attr::MESSAGE_INTEGRITY_SHA256 || typ == attr::FINGERPRINT,
            Stage::IntegritySha256 => typ == attr::FINGERPRINT,
            Stage::Fingerprint => false,
        };
        if !allowed {
            self.error = Some(EncodeError::AfterIntegrity { typ });
            return self;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&typ.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        fill(self.buf);
        let len = self.buf.len() - start - 4;
        let Ok(len16) = u16::try_from(len) else {
            self.buf.truncate(start);
            self.error = Some(EncodeError::ValueTooLong { typ });
            return self;
        };
        let pad = (4 - len % 4) % 4;
        self.buf.extend(std::iter::repeat(self.padding).take(pad));
        let Ok(body) = u16::try_from(self.buf.len() - HEADER_LEN) else {
            self.buf.truncate(start);
            self.error = Some(EncodeError::MessageTooLong);
            return self;
        };
        if let Some(l) = self.buf.get_mut(start + 2..start + 4) {
            l.copy_from_slice(&len16.to_be_bytes());
        }
        self.set_length(body);
        self
    }

    fn set_length(&mut self, body: u16) {
        if let Some(l) = self.buf.get_mut(2..4) {
            l.copy_from_slice(&body.to_be_bytes());
        }
    }

    fn fail(&mut self, e: EncodeError) -> &mut Self {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self
    }

    /// Appends any attribute from raw value bytes (padding handled).
    pub fn add_raw(&mut self, typ: u16, value: &[u8]) -> &mut Self {
        self.attr_with(typ, |b| b.extend_from_slice(value))
    }

    fn add_text(&mut self, typ: u16, value: &str, max_bytes: usize, max_chars: usize) -> &mut Self {
        if value.len() > max_bytes || (max_chars < max_bytes && value.chars().count() > max_chars) {
            return self.fail(EncodeError::ValueTooLong { typ });
        }
        self.add_raw(typ, value.as_bytes())
    }

    fn add_plain_address(&mut self, typ: u16, addr: SocketAddr) -> &mut Self {
        self.attr_with(typ, |b| address::encode_plain(&addr, b))
    }

    fn add_xor_address(&mut self, typ: u16, addr: SocketAddr) -> &mut Self {
        let tid = self.tid;
        self.attr_with(typ, |b| address::encode_xor(&addr, &tid, b))
    }

    fn add_u32(&mut self, typ: u16, v: u32) -> &mut Self {
        self.add_raw(typ, &v.to_be_bytes())
    }

    fn add_u64(&mut self, typ: u16, v: u64) -> &mut Self {
        self.add_raw(typ, &v.to_be_bytes())
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn add_xor_mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.add_xor_address(attr::XOR_MAPPED_ADDRESS, addr)
    }

    /// MAPPED-ADDRESS.
    pub fn add_mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.add_plain_address(attr::MAPPED_ADDRESS, addr)
    }

    /// XOR-PEER-ADDRESS.
    pub fn add_xor_peer_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.add_xor_address(attr::XOR_PEER_ADDRESS, addr)
    }

    /// XOR-RELAYED-ADDRESS.
    pub fn add_xor_relayed_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.add_xor_address(attr::XOR_RELAYED_ADDRESS, addr)
    }

    /// ALTERNATE-SERVER.
    pub fn add_alternate_server(&mut self, addr: SocketAddr) -> &mut Self {
        self.add_plain_address(attr::ALTERNATE_SERVER, addr)
    }

    /// RESPONSE-ORIGIN (RFC 5780).
    pub fn add_response_origin(&mut self, addr: SocketAddr) -> &mut Self {
        self.add_plain_address(attr::RESPONSE_ORIGIN, addr)
    }

    /// OTHER-ADDRESS (RFC 5780).
    pub fn add_other_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.add_plain_address(attr::OTHER_ADDRESS, addr)
    }

    /// USERNAME, at most 513 bytes: RFC 5389's limit. RFC 8489 lowered it to
    /// fewer than 509 bytes; the encoder keeps the older bound so it can
    /// repeat any username it decoded.
    pub fn add_username(&mut self, username: &str) -> &mut Self {
        self.add_text(attr::USERNAME, username, MAX_USERNAME_BYTES, usize::MAX)
    }

    /// USERHASH.
    pub fn add_userhash(&mut self, hash: &[u8; 32]) -> &mut Self {
        self.add_raw(attr::USERHASH, hash)
    }

    /// REALM (fewer than 128 characters).
    pub fn add_realm(&mut self, realm: &str) -> &mut Self {
        self.add_text(attr::REALM, realm, MAX_TEXT_BYTES, MAX_TEXT_CHARS)
    }

    /// NONCE (fewer than 128 characters).
    pub fn add_nonce(&mut self, nonce: &str) -> &mut Self {
        self.add_text(attr::NONCE, nonce, MAX_TEXT_BYTES, MAX_TEXT_CHARS)
    }

    /// SOFTWARE (fewer than 128 characters).
    pub fn add_software(&mut self, software: &str) -> &mut Self {
        self.add_text(attr::SOFTWARE, software, MAX_TEXT_BYTES, MAX_TEXT_CHARS)
    }

    /// ALTERNATE-DOMAIN.
    pub fn add_alternate_domain(&mut self, domain: &str) -> &mut Self {
        self.add_text(
            attr::ALTERNATE_DOMAIN,
            domain,
            MAX_DOMAIN_BYTES,
            MAX_DOMAIN_BYTES,
        )
    }

    /// ERROR-CODE; `code` must be within 300..=699.
    pub fn add_error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        self.add_coded(attr::ERROR_CODE, 0, code, reason)
    }

    /// ADDRESS-ERROR-CODE (RFC 8656).
    pub fn add_address_error_code(
        &mut self,
        family: AddressFamily,
        code: u16,
        reason: &str,
    ) -> &mut Self {
        self.add_coded(attr::ADDRESS_ERROR_CODE, family.to_wire(), code, reason)
    }

    fn add_coded(&mut self, typ: u16, first: u8, code: u16, reason: &str) -> &mut Self {
        if !(300..=699).contains(&code) {
            return self.fail(EncodeError::InvalidValue { typ });
        }
        if reason.len() > MAX_TEXT_BYTES || reason.chars().count() > MAX_TEXT_CHARS {
            return self.fail(EncodeError::ValueTooLong { typ });
        }
        // Both fit in a byte: code / 100 is 3..=6 and code % 100 is below 100.
        let class = (code / 100) as u8;
        let number = (code % 100) as u8;
        self.attr_with(typ, |b| {
            b.extend_from_slice(&[first, 0, class, number]);
            b.extend_from_slice(reason.as_bytes());
        })
    }

    /// UNKNOWN-ATTRIBUTES.
    pub fn add_unknown_attributes(&mut self, types: &[u16]) -> &mut Self {
        self.attr_with(attr::UNKNOWN_ATTRIBUTES, |b| {
            for t in types {
                b.extend_from_slice(&t.to_be_bytes());
            }
        })
    }

    /// PASSWORD-ALGORITHM with its parameters.
    pub fn add_password_algorithm(
        &mut self,
        algorithm: PasswordAlgorithm,
        params: &[u8],
    ) -> &mut Self {
        let Ok(len) = u16::try_from(params.len()) else {
            return self.fail(EncodeError::ValueTooLong {
                typ: attr::PASSWORD_ALGORITHM,
            });
        };
        let pad = self.padding;
        self.attr_with(attr::PASSWORD_ALGORITHM, |b| {
            write_algorithm_entry(b, algorithm, len, params, pad);
        })
    }

    /// PASSWORD-ALGORITHMS, each algorithm without parameters (MD5 and SHA-256 take none).
    pub fn add_password_algorithms(&mut self, algorithms: &[PasswordAlgorithm]) -> &mut Self {
        let pad = self.padding;
        self.attr_with(attr::PASSWORD_ALGORITHMS, |b| {
            for a in algorithms {
                write_algorithm_entry(b, *a, 0, &[], pad);
            }
        })
    }

    /// CHANNEL-NUMBER (the number goes in the upper 16 bits).
    pub fn add_channel_number(&mut self, channel: u16) -> &mut Self {
        self.add_u32(attr::CHANNEL_NUMBER, u32::from(channel) << 16)
    }

    /// LIFETIME in seconds.
    pub fn add_lifetime(&mut self, seconds: u32) -> &mut Self {
        self.add_u32(attr::LIFETIME, seconds)
    }

    /// DATA.
    pub fn add_data(&mut self, data: &[u8]) -> &mut Self {
        self.add_raw(attr::DATA, data)
    }

    /// REQUESTED-ADDRESS-FAMILY.
    pub fn add_requested_address_family(&mut self, family: AddressFamily) -> &mut Self {
        self.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[family.to_wire(), 0, 0, 0])
    }

    /// ADDITIONAL-ADDRESS-FAMILY.
    pub fn add_additional_address_family(&mut self, family: AddressFamily) -> &mut Self {
        self.add_raw(
            attr::ADDITIONAL_ADDRESS_FAMILY,
            &[family.to_wire(), 0, 0, 0],
        )
    }

    /// EVEN-PORT.
    pub fn add_even_port(&mut self, reserve_next: bool) -> &mut Self {
        self.add_raw(attr::EVEN_PORT, &[if reserve_next { 0x80 } else { 0 }])
    }

    /// REQUESTED-TRANSPORT.
    pub fn add_requested_transport(&mut self, protocol: u8) -> &mut Self {
        self.add_raw(attr::REQUESTED_TRANSPORT, &[protocol, 0, 0, 0])
    }

    /// DONT-FRAGMENT.
    pub fn add_dont_fragment(&mut self) -> &mut Self {
        self.add_raw(attr::DONT_FRAGMENT, &[])
    }

    /// RESERVATION-TOKEN.
    pub fn add_reservation_token(&mut self, token: u64) -> &mut Self {
        self.add_u64(attr::RESERVATION_TOKEN, token)
    }

    /// ICMP.
    pub fn add_icmp(&mut self, icmp: Icmp) -> &mut Self {
        let d = icmp.error_data.to_be_bytes();
        self.add_raw(
            attr::ICMP,
            &[0, 0, icmp.icmp_type, icmp.icmp_code, d[0], d[1], d[2], d[3]],
        )
    }

    /// CONNECTION-ID (RFC 6062).
    pub fn add_connection_id(&mut self, id: u32) -> &mut Self {
        self.add_u32(attr::CONNECTION_ID, id)
    }

    /// PRIORITY (ICE).
    pub fn add_priority(&mut self, priority: u32) -> &mut Self {
        self.add_u32(attr::PRIORITY, priority)
    }

    /// USE-CANDIDATE (ICE).
    pub fn add_use_candidate(&mut self) -> &mut Self {
        self.add_raw(attr::USE_CANDIDATE, &[])
    }

    /// ICE-CONTROLLED.
    pub fn add_ice_controlled(&mut self, tie_breaker: u64) -> &mut Self {
        self.add_u64(attr::ICE_CONTROLLED, tie_breaker)
    }

    /// ICE-CONTROLLING.
    pub fn add_ice_controlling(&mut self, tie_breaker: u64) -> &mut Self {
        self.add_u64(attr::ICE_CONTROLLING, tie_breaker)
    }

    /// CHANGE-REQUEST (RFC 5780).
    pub fn add_change_request(&mut self, change: ChangeRequest) -> &mut Self {
        self.add_u32(attr::CHANGE_REQUEST, change.to_wire())
    }

    /// RESPONSE-PORT (RFC 5780).
    pub fn add_response_port(&mut self, port: u16) -> &mut Self {
        self.add_u32(attr::RESPONSE_PORT, u32::from(port) << 16)
    }

    /// PADDING of `len` zero bytes (RFC 5780 section 7.6).
    pub fn add_padding(&mut self, len: usize) -> &mut Self {
        self.attr_with(attr::PADDING, |b| b.resize(b.len() + len, 0))
    }

    /// Appends a typed attribute (the inverse of [`Attribute::decode`]).
    ///
    /// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT values are
    /// copied as they are, not recomputed: use the dedicated methods to sign.
    pub fn add_attribute(&mut self, attribute: &Attribute<'_>) -> &mut Self {
        match *attribute {
            Attribute::MappedAddress(a) => self.add_mapped_address(a),
            Attribute::XorMappedAddress(a) => self.add_xor_mapped_address(a),
            Attribute::XorPeerAddress(a) => self.add_xor_peer_address(a),
            Attribute::XorRelayedAddress(a) => self.add_xor_relayed_address(a),
            Attribute::AlternateServer(a) => self.add_alternate_server(a),
            Attribute::ResponseOrigin(a) => self.add_response_origin(a),
            Attribute::OtherAddress(a) => self.add_other_address(a),
            Attribute::Username(s) => self.add_username(s),
            Attribute::Userhash(h) => self.add_userhash(h),
            Attribute::Realm(s) => self.add_realm(s),
            Attribute::Nonce(s) => self.add_nonce(s),
            Attribute::Software(s) => self.add_software(s),
            Attribute::AlternateDomain(s) => self.add_alternate_domain(s),
            Attribute::MessageIntegrity(v) => self.add_raw(attr::MESSAGE_INTEGRITY, v),
            Attribute::MessageIntegritySha256(v) => self.add_raw(attr::MESSAGE_INTEGRITY_SHA256, v),
            Attribute::Fingerprint(v) => self.add_raw(attr::FINGERPRINT, &v.to_be_bytes()),
            Attribute::ErrorCode(e) => self.add_error_code(e.code, e.reason),
            Attribute::UnknownAttributes(list) => self.add_raw(attr::UNKNOWN_ATTRIBUTES, list.0),
            Attribute::PasswordAlgorithm(p) => self.add_password_algorithm(p.algorithm, p.params),
            Attribute::PasswordAlgorithms(list) => self.add_raw(attr::PASSWORD_ALGORITHMS, list.0),
            Attribute::ChannelNumber(c) => self.add_channel_number(c),
            Attribute::Lifetime(l) => self.add_lifetime(l),
            Attribute::Data(d) => self.add_data(d),
            Attribute::RequestedAddressFamily(f) => self.add_requested_address_family(f),
            Attribute::AdditionalAddressFamily(f) => self.add_additional_address_family(f),
            Attribute::AddressErrorCode(e) => {
                self.add_address_error_code(e.family, e.code, e.reason)
            }
            Attribute::EvenPort(e) => self.add_even_port(e.reserve_next),
            Attribute::RequestedTransport(p) => self.add_requested_transport(p),
            Attribute::DontFragment => self.add_dont_fragment(),
            Attribute::ReservationToken(t) => self.add_reservation_token(t),
            Attribute::Icmp(i) => self.add_icmp(i),
            Attribute::ConnectionId(c) => self.add_connection_id(c),
            Attribute::Priority(p) => self.add_priority(p),
            Attribute::UseCandidate => self.add_use_candidate(),
            Attribute::IceControlled(t) => self.add_ice_controlled(t),
            Attribute::IceControlling(t) => self.add_ice_controlling(t),
            Attribute::ChangeRequest(c) => self.add_change_request(c),
            Attribute::ResponsePort(p) => self.add_response_port(p),
            Attribute::Padding(p) => self.add_raw(attr::PADDING, p),
            Attribute::Other { typ, value } => self.add_raw(typ, value),
        }
    }

    /// MESSAGE-INTEGRITY: HMAC-SHA1 keyed with `key` over the message so far,
    /// with the header length already counting this attribute (RFC 8489
    /// section 14.5). `key` is the short-term password or a long-term key from
    /// [`crate::credentials`].
    pub fn add_message_integrity(&mut self, key: &[u8]) -> &mut Self {
        let Some(tag) = self.mac_over_prefix::<Hmac<Sha1>>(key, 20) else {
            return self;
        };
        let tag = tag.get(..20).unwrap_or_default();
        self.stage_then(Stage::Integrity, attr::MESSAGE_INTEGRITY, tag)
    }

    /// MESSAGE-INTEGRITY-SHA256 with the full 32-byte tag.
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        self.add_message_integrity_sha256_truncated(key, 32)
    }

    /// MESSAGE-INTEGRITY-SHA256 truncated to `len` bytes (16..=32, multiple of 4),
    /// as RFC 8489 section 14.6 allows.
    pub fn add_message_integrity_sha256_truncated(&mut self, key: &[u8], len: usize) -> &mut Self {
        if !(16..=32).contains(&len) || len % 4 != 0 {
            return self.fail(EncodeError::InvalidValue {
                typ: attr::MESSAGE_INTEGRITY_SHA256,
            });
        }
        let Some(tag) = self.mac_over_prefix::<Hmac<Sha256>>(key, len) else {
            return self;
        };
        let tag = tag.get(..len).unwrap_or_default();
        self.stage_then(Stage::IntegritySha256, attr::MESSAGE_INTEGRITY_SHA256, tag)
    }

    /// FINGERPRINT: CRC-32 of the message so far XOR 0x5354554e, with the
    /// length counting this attribute (RFC 8489 section 14.7). Must come last.
    pub fn add_fingerprint(&mut self) -> &mut Self {
        if self.error.is_some() {
            return self;
        }
        if self.stage == Stage::Fingerprint {
            return self.fail(EncodeError::AfterIntegrity {
                typ: attr::FINGERPRINT,
            });
        }
        let Some(len) = self.prefixed_length(4) else {
            return self;
        };
        self.set_length(len);
        let crc = crc32fast::hash(self.buf) ^ FINGERPRINT_XOR;
        self.stage_then(Stage::Fingerprint, attr::FINGERPRINT, &crc.to_be_bytes())
    }

    /// Body length the header must carry once an attribute of `value_len`
    /// bytes is appended, or `None` (error recorded) when it would not fit.
    fn prefixed_length(&mut self, value_len: usize) -> Option<u16> {
        match u16::try_from(self.buf.len() - HEADER_LEN + 4 + value_len) {
            Ok(l) => Some(l),
            Err(_) => {
                self.fail(EncodeError::MessageTooLong);
                None
            }
        }
    }

    /// Sets the header length to count an attribute of `tag_len` bytes and
    /// computes the MAC over everything written so far. The tag lands in a
    /// fixed array: no allocation per message.
    fn mac_over_prefix<M: Mac + hmac::digest::KeyInit>(
        &mut self,
        key: &[u8],
        tag_len: usize,
    ) -> Option<[u8; 32]> {
        if self.error.is_some() {
            return None;
        }
        let len = self.prefixed_length(tag_len)?;
        self.set_length(len);
        let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            self.fail(EncodeError::InvalidValue {
                typ: attr::MESSAGE_INTEGRITY,
            });
            return None;
        };
        mac.update(self.buf);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 32];
        for (t, b) in tag.iter_mut().zip(full.iter()) {
            *t = *b;
        }
        Some(tag)
    }

    fn stage_then(&mut self, stage: Stage, typ: u16, value: &[u8]) -> &mut Self {
        self.add_raw(typ, value);
        if self.error.is_none() {
            self.stage = stage;
        }
        self
    }
}

fn write_algorithm_entry(b: &mut Vec<u8>, a: PasswordAlgorithm, len: u16, params: &[u8], pad: u8) {
    b.extend_from_slice(&a.0.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(params);
    let n = (4 - params.len() % 4) % 4;
    b.extend(std::iter::repeat(pad).take(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_length_are_written() {
        let mut buf = Vec::new();
        let n = MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Request,
            TransactionId([0; 12]),
        )
        .add_username("abcde")
        .finish()
        .unwrap();
        assert_eq!(n, 20 + 12);
        assert_eq!(&buf[2..4], &[0, 12]);
        assert_eq!(
            &buf[20..],
            &[0, 6, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]
        );
    }

    #[test]
    fn attributes_after_integrity_are_refused() {
        let mut buf = Vec::new();
        let err = MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Request,
            TransactionId([0; 12]),
        )
        .add_message_integrity(b"k")
        .add_software("late")
        .finish()
        .unwrap_err();
        assert_eq!(
            err,
            EncodeError::AfterIntegrity {
                typ: attr::SOFTWARE
            }
        );
        let mut buf = Vec::new();
        let ok = MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Request,
            TransactionId([0; 12]),
        )
        .add_message_integrity(b"k")
        .add_message_integrity_sha256(b"k")
        .add_fingerprint()
        .finish();
        assert!(ok.is_ok());
        let m = Message::parse(&buf).unwrap();
        assert!(m.verify_integrity(b"k").is_ok());
        assert!(m.verify_integrity_sha256(b"k").is_ok());
        assert!(m.verify_fingerprint().is_ok());
    }

    #[test]
    fn oversized_values_are_reported() {
        let mut buf = Vec::new();
        let big = vec![0u8; 70_000];
        let err = MessageWriter::new(
            &mut buf,
            Method::SEND,
            Class::Indication,
            TransactionId([0; 12]),
        )
        .add_data(&big)
        .finish()
        .unwrap_err();
        assert_eq!(err, EncodeError::ValueTooLong { typ: attr::DATA });
        let half = vec![0u8; 40_000];
        let err = MessageWriter::new(
            &mut buf,
            Method::SEND,
            Class::Indication,
            TransactionId([0; 12]),
        )
        .add_data(&half)
        .add_data(&half)
        .finish()
        .unwrap_err();
        assert_eq!(err, EncodeError::MessageTooLong);
        let err = MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Error,
            TransactionId([0; 12]),
        )
        .add_error_code(200, "no")
        .finish()
        .unwrap_err();
        assert_eq!(
            err,
            EncodeError::InvalidValue {
                typ: attr::ERROR_CODE
            }
        );
    }
}
