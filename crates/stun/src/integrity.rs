//! Checking MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT on a
//! parsed message, without copying it.
//!
//! The MAC covers the message up to the integrity attribute with the header
//! length rewritten as if that attribute were the last one. Rather than copy
//! and patch the datagram, the hash is fed three slices: the type, the
//! patched length, and everything from the cookie to the attribute.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::message::{Message, HEADER_LEN};

/// The constant FINGERPRINT XORs into the CRC-32 ("STUN" in ASCII), so that
/// a STUN message with a CRC trailer is not mistaken for another protocol's.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Why an integrity or fingerprint check failed.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The attribute is not in the message.
    #[error("attribute missing")]
    Missing,
    /// The attribute has the wrong length.
    #[error("attribute malformed")]
    Malformed,
    /// FINGERPRINT is not the last attribute.
    #[error("FINGERPRINT is not the last attribute")]
    NotLast,
    /// The value does not match: wrong key, or a modified message.
    #[error("integrity check failed")]
    Mismatch,
}

impl<'a> Message<'a> {
    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1) with `key`, in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let index = self.integrity_index().ok_or(IntegrityError::Missing)?;
        let (prefix, value) = self.covered(index)?;
        if value.len() != 20 {
            return Err(IntegrityError::Malformed);
        }
        let mut mac =
            <Hmac<Sha1> as Mac>::new_from_slice(key).map_err(|_| IntegrityError::Mismatch)?;
        feed(&mut mac, prefix, 20);
        mac.verify_slice(value)
            .map_err(|_| IntegrityError::Mismatch)
    }

    /// Checks MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, possibly truncated to
    /// 16..=32 bytes) with `key`, in constant time.
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let index = self
            .integrity_sha256_index()
            .ok_or(IntegrityError::Missing)?;
        let (prefix, value) = self.covered(index)?;
        if !(16..=32).contains(&value.len()) || value.len() % 4 != 0 {
            return Err(IntegrityError::Malformed);
        }
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| IntegrityError::Mismatch)?;
        feed(&mut mac, prefix, value.len());
        mac.verify_truncated_left(value)
            .map_err(|_| IntegrityError::Mismatch)
    }

    /// Checks FINGERPRINT: present, last, and equal to CRC-32 XOR 0x5354554e.
    pub fn verify_fingerprint(&self) -> Result<(), IntegrityError> {
        let index = self.fingerprint_index().ok_or(IntegrityError::Missing)?;
        if usize::from(index) + 1 != self.attribute_count() {
            return Err(IntegrityError::NotLast);
        }
        let (prefix, value) = self.covered(index)?;
        let Ok(value) = <[u8; 4]>::try_from(value) else {
            return Err(IntegrityError::Malformed);
        };
        let mut crc = crc32fast::Hasher::new();
        let (typ, len, rest) = split_prefix(prefix, 4);
        crc.update(typ);
        crc.update(&len);
        crc.update(rest);
        if crc.finalize() ^ FINGERPRINT_XOR == u32::from_be_bytes(value) {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch)
        }
    }

    /// The bytes before attribute `index` and that attribute's value.
    fn covered(&self, index: u8) -> Result<(&'a [u8], &'a [u8]), IntegrityError> {
        let offset = self.attr_offset(index).ok_or(IntegrityError::Missing)?;
        let buf = self.as_bytes();
        let prefix = buf.get(..offset).ok_or(IntegrityError::Malformed)?;
        let head = buf
            .get(offset..)
            .and_then(|b| b.first_chunk::<4>())
            .ok_or(IntegrityError::Malformed)?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = buf
            .get(offset + 4..offset + 4 + len)
            .ok_or(IntegrityError::Malformed)?;
        Ok((prefix, value))
    }
}

/// Splits the covered prefix into type, patched length (counting an
/// attribute of `value_len` bytes after the prefix) and the rest.
fn split_prefix(prefix: &[u8], value_len: usize) -> (&[u8], [u8; 2], &[u8]) {
    let body = prefix.len().saturating_sub(HEADER_LEN) + 4 + value_len;
    // The prefix lies within a parsed message, so `body` fits the u16 field.
    let len = u16::try_from(body).unwrap_or(u16::MAX).to_be_bytes();
    (
        prefix.get(..2).unwrap_or_default(),
        len,
        prefix.get(4..).unwrap_or_default(),
    )
}

fn feed<M: Mac>(mac: &mut M, prefix: &[u8], value_len: usize) {
    let (typ, len, rest) = split_prefix(prefix, value_len);
    mac.update(typ);
    mac.update(&len);
    mac.update(rest);
}
