//! The borrowed message view: header checks, the attribute table and raw access.

use std::fmt;

use crate::attr;
use crate::method::{split_message_type, Class, Method};

/// The fixed value in bytes 4..8 of every RFC 5389/8489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header.
pub const HEADER_LEN: usize = 20;
/// How many attributes [`Message::parse`] records. A message with more is
/// rejected: real messages carry about a dozen, and a fixed table keeps parsing
/// free of heap allocation.
pub const MAX_ATTRIBUTES: usize = 32;

/// The 96-bit transaction ID that pairs a response with its request.
#[derive(Clone, Copy, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// A fresh ID from the operating system's random source, as RFC 8489
    /// section 6 asks ("uniformly and randomly chosen").
    pub fn random() -> Self {
        use rand::RngCore;
        let mut id = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Self(id)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({self})")
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl From<[u8; 12]> for TransactionId {
    fn from(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }
}

/// Why a datagram is not an acceptable STUN message.
///
/// Variants carry numbers, never strings: garbage floods must not allocate.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than 20 bytes.
    #[error("shorter than a STUN header")]
    Truncated,
    /// The top two bits are set or the magic cookie is wrong (RFC 3489 messages land here).
    #[error("leading bits or magic cookie say this is not STUN")]
    NotStun,
    /// The length field is not a multiple of 4 or disagrees with the buffer size.
    #[error("length field {declared} disagrees with the {actual} bytes after the header")]
    BadLength {
        /// Length from the header.
        declared: u16,
        /// Bytes actually present after the header.
        actual: usize,
    },
    /// An attribute's TLV runs past the end of the message.
    #[error("attribute {typ:#06x} runs past the end of the message")]
    AttributeOverrun {
        /// The attribute type.
        typ: u16,
    },
    /// More than [`MAX_ATTRIBUTES`] attributes.
    #[error("more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
}

/// One attribute as it sits on the wire: type and value without padding.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct RawAttr<'a> {
    /// Attribute type (see [`crate::attr`]).
    pub typ: u16,
    /// Value bytes, excluding padding.
    pub value: &'a [u8],
}

/// One slot of the attribute table: where the TLV header sits, relative to
/// the end of the STUN header, and whether RFC 8489 section 14.5 says to ignore it.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    typ: u16,
    /// Offset of the attribute header from the start of the attribute area.
    offset: u16,
    len: u16,
    /// Follows MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT and is not allowed to.
    ignored: bool,
}

/// A parsed STUN message borrowing its datagram.
///
/// Construction checks the header and walks every attribute TLV once, filling
/// a fixed table; accessors then look values up in that table without further
/// bounds work. No heap allocation happens in [`Message::parse`] or in any
/// accessor.
///
/// RFC 8489 section 14.5: attributes after MESSAGE-INTEGRITY other than
/// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored; after
/// MESSAGE-INTEGRITY-SHA256 only FINGERPRINT counts; nothing counts after
/// FINGERPRINT. [`Message::get`] and the typed getters honour that;
/// [`Message::attributes`] still shows every TLV as it was on the wire.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    method: Method,
    class: Class,
    tid: TransactionId,
    slots: [Slot; MAX_ATTRIBUTES],
    count: u8,
    integrity: Option<u8>,
    integrity_sha256: Option<u8>,
    fingerprint: Option<u8>,
}

impl<'a> Message<'a> {
    /// Parses and validates a complete STUN message (one datagram, or one
    /// frame cut from a stream with [`crate::stream_frame_len`]).
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let header = peek_header(buf)?;
        let actual = buf.len() - HEADER_LEN;
        if usize::from(header.length) != actual {
            return Err(DecodeError::BadLength {
                declared: header.length,
                actual,
            });
        }
        let body = buf.get(HEADER_LEN..).unwrap_or_default();
        let mut msg = Self {
            buf,
            method: header.method,
            class: header.class,
            tid: header.transaction_id,
            slots: [Slot::default(); MAX_ATTRIBUTES],
            count: 0,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut pos = 0usize;
        while pos < body.len() {
            let Some(tl) = body.get(pos..).and_then(<[u8]>::first_chunk::<4>) else {
                return Err(DecodeError::AttributeOverrun { typ: 0 });
            };
            let typ = u16::from_be_bytes([tl[0], tl[1]]);
            let len = u16::from_be_bytes([tl[2], tl[3]]);
            let padded = (usize::from(len) + 3) & !3;
            if pos + 4 + padded > body.len() {
                return Err(DecodeError::AttributeOverrun { typ });
            }
            let index = usize::from(msg.count);
            if index >= MAX_ATTRIBUTES {
                return Err(DecodeError::TooManyAttributes);
            }
            let ignored = msg.fingerprint.is_some()
                || (msg.integrity_sha256.is_some() && typ != attr::FINGERPRINT)
                || (msg.integrity.is_some()
                    && typ != attr::FINGERPRINT
                    && typ != attr::MESSAGE_INTEGRITY_SHA256);
            if !ignored {
                // `index` < 32, so the narrowing cannot lose bits.
                let i = index as u8;
                match typ {
                    attr::MESSAGE_INTEGRITY => msg.integrity = msg.integrity.or(Some(i)),
                    attr::MESSAGE_INTEGRITY_SHA256 => {
                        msg.integrity_sha256 = msg.integrity_sha256.or(Some(i));
                    }
                    attr::FINGERPRINT => msg.fingerprint = Some(i),
                    _ => {}
                }
            }
            if let Some(slot) = msg.slots.get_mut(index) {
                // `pos` < 65536 because the body length came from a u16.
                *slot = Slot {
                    typ,
                    offset: pos as u16,
                    len,
                    ignored,
                };
            }
            msg.count += 1;
            pos += 4 + padded;
        }
        Ok(msg)
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The transaction ID.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// The whole message as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Every attribute in wire order, including those RFC 8489 says to ignore
    /// (after the integrity attributes). Use [`Message::get`] for lookups.
    pub fn attributes(&self) -> Attributes<'a, '_> {
        Attributes {
            msg: self,
            next: 0,
            effective_only: false,
        }
    }

    /// The attributes that count: like [`Message::attributes`] without the
    /// ones that follow MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 or
    /// FINGERPRINT against the rules.
    pub fn effective_attributes(&self) -> Attributes<'a, '_> {
        Attributes {
            msg: self,
            next: 0,
            effective_only: true,
        }
    }

    /// Number of attributes on the wire.
    pub fn attribute_count(&self) -> usize {
        usize::from(self.count)
    }

    /// The value of the first effective attribute of type `typ`.
    pub fn get(&self, typ: u16) -> Option<&'a [u8]> {
        self.slots()
            .iter()
            .find(|s| s.typ == typ && !s.ignored)
            .and_then(|s| self.value_of(s))
    }

    /// Values of every effective attribute of type `typ` (XOR-PEER-ADDRESS
    /// may repeat in CreatePermission).
    pub fn get_all(&self, typ: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.slots()
            .iter()
            .filter(move |s| s.typ == typ && !s.ignored)
            .filter_map(|s| self.value_of(s))
    }

    /// Whether an effective attribute of type `typ` is present.
    pub fn contains(&self, typ: u16) -> bool {
        self.slots().iter().any(|s| s.typ == typ && !s.ignored)
    }

    fn slots(&self) -> &[Slot] {
        self.slots
            .get(..usize::from(self.count))
            .unwrap_or_default()
    }

    fn value_of(&self, slot: &Slot) -> Option<&'a [u8]> {
        let start = HEADER_LEN + usize::from(slot.offset) + 4;
        self.buf.get(start..start + usize::from(slot.len))
    }

    /// Absolute offset of the TLV header of attribute number `index`.
    pub(crate) fn attr_offset(&self, index: u8) -> Option<usize> {
        self.slots()
            .get(usize::from(index))
            .map(|s| HEADER_LEN + usize::from(s.offset))
    }

    /// Slot index of the effective MESSAGE-INTEGRITY.
    pub(crate) fn integrity_index(&self) -> Option<u8> {
        self.integrity
    }

    /// Slot index of the effective MESSAGE-INTEGRITY-SHA256.
    pub(crate) fn integrity_sha256_index(&self) -> Option<u8> {
        self.integrity_sha256
    }

    /// Slot index of the effective FINGERPRINT.
    pub(crate) fn fingerprint_index(&self) -> Option<u8> {
        self.fingerprint
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Attrs<'m, 'a>(&'m Message<'a>);
        impl fmt::Debug for Attrs<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for a in self.0.attributes() {
                    match attr::name(a.typ) {
                        Some(name) => list.entry(&format_args!("{name}({} bytes)", a.value.len())),
                        None => {
                            list.entry(&format_args!("{:#06x}({} bytes)", a.typ, a.value.len()))
                        }
                    };
                }
                list.finish()
            }
        }
        f.debug_struct("Message")
            .field("method", &self.method)
            .field("class", &self.class)
            .field("transaction_id", &self.tid)
            .field("attributes", &Attrs(self))
            .finish()
    }
}

/// Iterator over a message's attributes, see [`Message::attributes`].
#[derive(Clone, Debug)]
pub struct Attributes<'a, 'm> {
    msg: &'m Message<'a>,
    next: usize,
    effective_only: bool,
}

impl<'a> Iterator for Attributes<'a, '_> {
    type Item = RawAttr<'a>;

    fn next(&mut self) -> Option<RawAttr<'a>> {
        loop {
            let slot = self.msg.slots().get(self.next)?;
            self.next += 1;
            if self.effective_only && slot.ignored {
                continue;
            }
            let value = self.msg.value_of(slot)?;
            return Some(RawAttr {
                typ: slot.typ,
                value,
            });
        }
    }
}

/// The fixed header fields, read without walking the attributes.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Header {
    /// Method.
    pub method: Method,
    /// Class.
    pub class: Class,
    /// Length of the attribute area (from the header, not checked against a buffer).
    pub length: u16,
    /// Transaction ID.
    pub transaction_id: TransactionId,
}

/// Reads and checks the 20-byte header (top bits, cookie, length multiple of
/// 4) without requiring the rest of the message. Handy on stream transports,
/// where the length tells how many more bytes to wait for.
pub fn peek_header(buf: &[u8]) -> Result<Header, DecodeError> {
    let Some(h) = buf.first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated);
    };
    let typ = u16::from_be_bytes([h[0], h[1]]);
    if typ & 0xC000 != 0 {
        return Err(DecodeError::NotStun);
    }
    if u32::from_be_bytes([h[4], h[5], h[6], h[7]]) != MAGIC_COOKIE {
        return Err(DecodeError::NotStun);
    }
    let length = u16::from_be_bytes([h[2], h[3]]);
    if length % 4 != 0 {
        return Err(DecodeError::BadLength {
            declared: length,
            actual: buf.len() - HEADER_LEN,
        });
    }
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&h[8..20]);
    let (method, class) = split_message_type(typ);
    Ok(Header {
        method,
        class,
        length,
        transaction_id: TransactionId(tid),
    })
}

/// Cheap demultiplexing test: does this datagram look like a complete STUN
/// message? Checks top bits, magic cookie and the length field against the
/// buffer, not the attributes.
pub fn is_stun(buf: &[u8]) -> bool {
    match peek_header(buf) {
        Ok(h) => usize::from(h.length) + HEADER_LEN == buf.len(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(typ: u16, len: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&typ.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        v.extend_from_slice(&[9; 12]);
        v
    }

    #[test]
    fn empty_binding_request_parses() {
        let buf = header(0x0001, 0);
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.method(), Method::BINDING);
        assert_eq!(m.class(), Class::Request);
        assert_eq!(m.transaction_id(), TransactionId([9; 12]));
        assert_eq!(m.attributes().count(), 0);
        assert!(is_stun(&buf));
    }

    #[test]
    fn header_errors_are_told_apart() {
        assert_eq!(
            Message::parse(&[0; 19]).unwrap_err(),
            DecodeError::Truncated
        );
        let mut buf = header(0x0001, 0);
        buf[0] = 0x40;
        assert_eq!(Message::parse(&buf).unwrap_err(), DecodeError::NotStun);
        let mut buf = header(0x0001, 0);
        buf[4] = 0;
        assert_eq!(Message::parse(&buf).unwrap_err(), DecodeError::NotStun);
        let buf = header(0x0001, 2);
        assert!(matches!(
            Message::parse(&buf).unwrap_err(),
            DecodeError::BadLength { declared: 2, .. }
        ));
        let buf = header(0x0001, 4);
        assert_eq!(
            Message::parse(&buf).unwrap_err(),
            DecodeError::BadLength {
                declared: 4,
                actual: 0
            }
        );
    }

    #[test]
    fn attribute_overrun_is_caught() {
        let mut buf = header(0x0001, 8);
        buf.extend_from_slice(&[0x80, 0x22, 0x00, 0x05, b'a', b'b', b'c', b'd']);
        assert_eq!(
            Message::parse(&buf).unwrap_err(),
            DecodeError::AttributeOverrun { typ: 0x8022 }
        );
    }

    #[test]
    fn too_many_attributes_is_an_error() {
        let n = MAX_ATTRIBUTES + 1;
        let mut buf = header(0x0001, (n * 4) as u16);
        for _ in 0..n {
            buf.extend_from_slice(&[0x80, 0x00, 0x00, 0x00]);
        }
        assert_eq!(
            Message::parse(&buf).unwrap_err(),
            DecodeError::TooManyAttributes
        );
        let mut buf = header(0x0001, (MAX_ATTRIBUTES * 4) as u16);
        for _ in 0..MAX_ATTRIBUTES {
            buf.extend_from_slice(&[0x80, 0x00, 0x00, 0x00]);
        }
        assert_eq!(Message::parse(&buf).unwrap().attribute_count(), 32);
    }

    #[test]
    fn attributes_after_integrity_are_ignored_except_the_allowed_ones() {
        // USERNAME, MESSAGE-INTEGRITY, SOFTWARE (ignored), FINGERPRINT, REALM (ignored).
        let mut buf = header(0x0001, 4 + 4 + 24 + 8 + 8 + 8);
        buf.extend_from_slice(&[0x00, 0x06, 0x00, 0x01, b'u', 0, 0, 0]);
        buf.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
        buf.extend_from_slice(&[0; 20]);
        buf.extend_from_slice(&[0x80, 0x22, 0x00, 0x01, b's', 0, 0, 0]);
        buf.extend_from_slice(&[0x80, 0x28, 0x00, 0x04, 1, 2, 3, 4]);
        buf.extend_from_slice(&[0x00, 0x14, 0x00, 0x01, b'r', 0, 0, 0]);
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.attributes().count(), 5);
        assert_eq!(m.effective_attributes().count(), 3);
        assert_eq!(m.get(attr::USERNAME), Some(&b"u"[..]));
        assert_eq!(m.get(attr::SOFTWARE), None);
        assert_eq!(m.get(attr::REALM), None);
        assert_eq!(m.get(attr::FINGERPRINT), Some(&[1, 2, 3, 4][..]));
    }
}
