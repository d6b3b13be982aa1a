//! Finding comprehension-required attributes a receiver does not understand,
//! to answer 420 (Unknown Attribute) with UNKNOWN-ATTRIBUTES.

use crate::attr;
use crate::message::{Message, MAX_ATTRIBUTES};

/// A fixed-capacity list of attribute types (no heap): a message holds at most
/// [`MAX_ATTRIBUTES`] attributes, so this can hold every unknown one.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct UnknownList {
    items: [u16; MAX_ATTRIBUTES],
    len: usize,
}

impl UnknownList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            items: [0; MAX_ATTRIBUTES],
            len: 0,
        }
    }

    /// Adds `typ` unless present or full.
    pub fn push(&mut self, typ: u16) {
        if self.as_slice().contains(&typ) {
            return;
        }
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = typ;
            self.len += 1;
        }
    }

    /// The types.
    pub fn as_slice(&self) -> &[u16] {
        self.items.get(..self.len).unwrap_or_default()
    }

    /// Whether the list is empty (the request can be processed).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of types.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Default for UnknownList {
    fn default() -> Self {
        Self::new()
    }
}

/// The comprehension-required attribute types in `msg` that are not in
/// `known`. When non-empty, a request must be answered with 420 listing them
/// (RFC 8489 section 6.3.1); an indication is dropped.
///
/// Only effective attributes count (see [`Message::get`]).
pub fn unknown_comprehension_required(msg: &Message<'_>, known: &[u16]) -> UnknownList {
    let mut out = UnknownList::new();
    for a in msg.effective_attributes() {
        if attr::is_comprehension_required(a.typ) && !known.contains(&a.typ) {
            out.push(a.typ);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::{Class, Method};
    use crate::writer::MessageWriter;
    use crate::TransactionId;

    #[test]
    fn lists_unknown_required_types_once_and_skips_optional_and_ignored() {
        let mut buf = Vec::new();
        MessageWriter::new(
            &mut buf,
            Method::ALLOCATE,
            Class::Request,
            TransactionId([0; 12]),
        )
        .add_raw(0x0777, b"a")
        .add_raw(0x0777, b"b")
        .add_raw(0x8777, b"c")
        .add_lifetime(600)
        .add_raw(0x0778, b"d")
        .add_message_integrity(b"k")
        .finish()
        .unwrap();
        // Smuggle a required attribute after MESSAGE-INTEGRITY: it is ignored.
        buf.extend_from_slice(&[0x07, 0x79, 0, 0]);
        let body = (buf.len() - 20) as u16;
        buf[2..4].copy_from_slice(&body.to_be_bytes());
        let msg = Message::parse(&buf).unwrap();
        let unknown =
            unknown_comprehension_required(&msg, &[attr::LIFETIME, attr::MESSAGE_INTEGRITY]);
        assert_eq!(unknown.as_slice(), &[0x0777, 0x0778]);
        assert_eq!(unknown.len(), 2);
        assert!(unknown_comprehension_required(
            &msg,
            &[0x0777, 0x0778, attr::LIFETIME, attr::MESSAGE_INTEGRITY]
        )
        .is_empty());
    }
}
