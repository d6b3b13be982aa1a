//! Typed attribute values: decoding borrowed values into Rust types, and the
//! typed getters on [`Message`].
//!
//! Every decoder checks lengths exactly and never panics; strings are checked
//! for UTF-8 and for the RFC length limits.

use std::net::SocketAddr;

use crate::address::{self, AddressFamily};
use crate::attr;
use crate::message::{Message, TransactionId};

/// Why an attribute value could not be decoded.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AttrError {
    /// The value has the wrong size or a field out of range.
    #[error("attribute {typ:#06x} is malformed")]
    Malformed {
        /// The attribute type.
        typ: u16,
    },
    /// A text value is longer than its RFC limit.
    #[error("attribute {typ:#06x} is longer than allowed")]
    TooLong {
        /// The attribute type.
        typ: u16,
    },
    /// A text value is not UTF-8.
    #[error("attribute {typ:#06x} is not UTF-8")]
    NotUtf8 {
        /// The attribute type.
        typ: u16,
    },
}

/// USERNAME byte limit: RFC 5389's 513 (RFC 8489 says fewer than 509; the
/// older bound keeps RFC 5389 peers working).
pub(crate) const MAX_USERNAME_BYTES: usize = 513;
/// Byte limit of REALM, NONCE, SOFTWARE and reason phrases (128 characters
/// of up to 6 bytes each, as RFC 8489 counts them).
pub(crate) const MAX_TEXT_BYTES: usize = 763;
/// Character limit of REALM, NONCE, SOFTWARE and reason phrases ("fewer than 128").
pub(crate) const MAX_TEXT_CHARS: usize = 127;
/// ALTERNATE-DOMAIN byte limit (a DNS name).
pub(crate) const MAX_DOMAIN_BYTES: usize = 255;

/// IANA protocol number for UDP, the value REQUESTED-TRANSPORT carries (RFC 8656).
pub const PROTOCOL_UDP: u8 = 17;
/// IANA protocol number for TCP (RFC 6062 allocations).
pub const PROTOCOL_TCP: u8 = 6;

/// ERROR-CODE (RFC 8489 section 14.8): a number 300..=699 and a reason phrase.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ErrorCode<'a> {
    /// Class * 100 + number, e.g. 401.
    pub code: u16,
    /// UTF-8 reason, fewer than 128 characters.
    pub reason: &'a str,
}

/// ADDRESS-ERROR-CODE (RFC 8656 section 18.12): which family failed and why.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct AddressErrorCode<'a> {
    /// The address family the error is about.
    pub family: AddressFamily,
    /// Error code, 300..=699.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'a str,
}

/// CHANGE-REQUEST flags (RFC 5780 section 7.2).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
pub struct ChangeRequest {
    /// Flag A: answer from the alternate IP address.
    pub change_ip: bool,
    /// Flag B: answer from the alternate port.
    pub change_port: bool,
}

impl ChangeRequest {
    /// The 32-bit wire value.
    pub const fn to_wire(self) -> u32 {
        (if self.change_ip { 0x4 } else { 0 }) | (if self.change_port { 0x2 } else { 0 })
    }
}

/// EVEN-PORT (RFC 8656 section 18.7).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct EvenPort {
    /// R bit: also reserve the next-higher port for a later allocation.
    pub reserve_next: bool,
}

/// ICMP (RFC 8656 section 18.13): an ICMP error the relay received from a peer.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Icmp {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// Error data (e.g. the MTU for "fragmentation needed").
    pub error_data: u32,
}

/// A password algorithm number (RFC 8489 section 18.5).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub struct PasswordAlgorithm(pub u16);

impl PasswordAlgorithm {
    /// MD5, the RFC 5389 long-term key: MD5(username ":" realm ":" password).
    pub const MD5: Self = Self(0x0001);
    /// SHA-256 of the same string (RFC 8489 section 9.2.2).
    pub const SHA256: Self = Self(0x0002);
}

/// One PASSWORD-ALGORITHM value: algorithm plus its parameters.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct PasswordAlgorithmParams<'a> {
    /// The algorithm.
    pub algorithm: PasswordAlgorithm,
    /// Algorithm parameters (empty for MD5 and SHA-256).
    pub params: &'a [u8],
}

/// Iterator over a list of big-endian 16-bit values (UNKNOWN-ATTRIBUTES).
#[derive(Clone, Debug)]
pub struct U16List<'a> {
    rest: &'a [u8],
}

impl<'a> U16List<'a> {
    /// A list over `value`; `value.len()` must be even (the decoder checks).
    pub fn new(value: &'a [u8]) -> Self {
        Self { rest: value }
    }
}

impl Iterator for U16List<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        let (head, rest) = self.rest.split_first_chunk::<2>()?;
        self.rest = rest;
        Some(u16::from_be_bytes(*head))
    }
}

/// Iterator over the entries of PASSWORD-ALGORITHMS.
#[derive(Clone, Debug)]
pub struct PasswordAlgorithmList<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PasswordAlgorithmList<'a> {
    type Item = PasswordAlgorithmParams<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let (entry, used) = decode_password_algorithm_entry(self.rest)?;
        self.rest = self.rest.get(used..).unwrap_or_default();
        Some(entry)
    }
}

/// A decoded attribute. `Other` carries every type this crate has no
/// structure for (including comprehension-optional unknowns).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum Attribute<'a> {
    /// MAPPED-ADDRESS.
    MappedAddress(SocketAddr),
    /// XOR-MAPPED-ADDRESS.
    XorMappedAddress(SocketAddr),
    /// XOR-PEER-ADDRESS.
    XorPeerAddress(SocketAddr),
    /// XOR-RELAYED-ADDRESS.
    XorRelayedAddress(SocketAddr),
    /// ALTERNATE-SERVER.
    AlternateServer(SocketAddr),
    /// RESPONSE-ORIGIN.
    ResponseOrigin(SocketAddr),
    /// OTHER-ADDRESS.
    OtherAddress(SocketAddr),
    /// USERNAME.
    Username(&'a str),
    /// USERHASH (32 bytes).
    Userhash(&'a [u8; 32]),
    /// REALM.
    Realm(&'a str),
    /// NONCE.
    Nonce(&'a str),
    /// SOFTWARE.
    Software(&'a str),
    /// ALTERNATE-DOMAIN.
    AlternateDomain(&'a str),
    /// MESSAGE-INTEGRITY (20 bytes).
    MessageIntegrity(&'a [u8; 20]),
    /// MESSAGE-INTEGRITY-SHA256 (16..=32 bytes).
    MessageIntegritySha256(&'a [u8]),
    /// FINGERPRINT.
    Fingerprint(u32),
    /// ERROR-CODE.
    ErrorCode(ErrorCode<'a>),
    /// UNKNOWN-ATTRIBUTES.
    UnknownAttributes(U16ListValue<'a>),
    /// PASSWORD-ALGORITHM.
    PasswordAlgorithm(PasswordAlgorithmParams<'a>),
    /// PASSWORD-ALGORITHMS.
    PasswordAlgorithms(PasswordAlgorithmsValue<'a>),
    /// CHANNEL-NUMBER.
    ChannelNumber(u16),
    /// LIFETIME in seconds.
    Lifetime(u32),
    /// DATA.
    Data(&'a [u8]),
    /// REQUESTED-ADDRESS-FAMILY.
    RequestedAddressFamily(AddressFamily),
    /// ADDITIONAL-ADDRESS-FAMILY.
    AdditionalAddressFamily(AddressFamily),
    /// ADDRESS-ERROR-CODE.
    AddressErrorCode(AddressErrorCode<'a>),
    /// EVEN-PORT.
    EvenPort(EvenPort),
    /// REQUESTED-TRANSPORT protocol number.
    RequestedTransport(u8),
    /// DONT-FRAGMENT.
    DontFragment,
    /// RESERVATION-TOKEN.
    ReservationToken(u64),
    /// ICMP.
    Icmp(Icmp),
    /// CONNECTION-ID.
    ConnectionId(u32),
    /// PRIORITY.
    Priority(u32),
    /// USE-CANDIDATE.
    UseCandidate,
    /// ICE-CONTROLLED tie-breaker.
    IceControlled(u64),
    /// ICE-CONTROLLING tie-breaker.
    IceControlling(u64),
    /// CHANGE-REQUEST.
    ChangeRequest(ChangeRequest),
    /// RESPONSE-PORT.
    ResponsePort(u16),
    /// PADDING.
    Padding(&'a [u8]),
    /// Anything else, undecoded.
    Other {
        /// Type.
        typ: u16,
        /// Value.
        value: &'a [u8],
    },
}

/// UNKNOWN-ATTRIBUTES value kept as bytes so the enum stays `Copy`/`Eq`;
/// iterate with [`U16ListValue::iter`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct U16ListValue<'a>(pub &'a [u8]);

impl<'a> U16ListValue<'a> {
    /// The 16-bit entries.
    pub fn iter(&self) -> U16List<'a> {
        U16List::new(self.0)
    }
}

/// PASSWORD-ALGORITHMS value kept as bytes; iterate with [`PasswordAlgorithmsValue::iter`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct PasswordAlgorithmsValue<'a>(pub &'a [u8]);

impl<'a> PasswordAlgorithmsValue<'a> {
    /// The entries, in the server's order of preference.
    pub fn iter(&self) -> PasswordAlgorithmList<'a> {
        PasswordAlgorithmList { rest: self.0 }
    }
}

impl<'a> Attribute<'a> {
    /// Decodes one attribute value. `tid` is needed for the XOR addresses
    /// (IPv6 XORs with the transaction ID).
    pub fn decode(typ: u16, value: &'a [u8], tid: &TransactionId) -> Result<Self, AttrError> {
        let bad = AttrError::Malformed { typ };
        Ok(match typ {
            attr::MAPPED_ADDRESS => Self::MappedAddress(plain_addr(typ, value)?),
            attr::ALTERNATE_SERVER => Self::AlternateServer(plain_addr(typ, value)?),
            attr::RESPONSE_ORIGIN => Self::ResponseOrigin(plain_addr(typ, value)?),
            attr::OTHER_ADDRESS => Self::OtherAddress(plain_addr(typ, value)?),
            attr::XOR_MAPPED_ADDRESS => Self::XorMappedAddress(xor_addr(typ, value, tid)?),
            attr::XOR_PEER_ADDRESS => Self::XorPeerAddress(xor_addr(typ, value, tid)?),
            attr::XOR_RELAYED_ADDRESS => Self::XorRelayedAddress(xor_addr(typ, value, tid)?),
            attr::USERNAME => Self::Username(text(typ, value, MAX_USERNAME_BYTES, usize::MAX)?),
            attr::USERHASH => Self::Userhash(value.try_into().map_err(|_| bad)?),
            attr::REALM => Self::Realm(text(typ, value, MAX_TEXT_BYTES, MAX_TEXT_CHARS)?),
            attr::NONCE => Self::Nonce(text(typ, value, MAX_TEXT_BYTES, MAX_TEXT_CHARS)?),
            attr::SOFTWARE => Self::Software(text(typ, value, MAX_TEXT_BYTES, MAX_TEXT_CHARS)?),
            attr::ALTERNATE_DOMAIN => {
                Self::AlternateDomain(text(typ, value, MAX_DOMAIN_BYTES, MAX_DOMAIN_BYTES)?)
            }
            attr::MESSAGE_INTEGRITY => Self::MessageIntegrity(value.try_into().map_err(|_| bad)?),
            attr::MESSAGE_INTEGRITY_SHA256 => {
                if !(16..=32).contains(&value.len()) || value.len() % 4 != 0 {
                    return Err(bad);
                }
                Self::MessageIntegritySha256(value)
            }
            attr::FINGERPRINT => Self::Fingerprint(u32_value(typ, value)?),
            attr::ERROR_CODE => Self::ErrorCode(decode_error_code(value)?),
            attr::UNKNOWN_ATTRIBUTES => {
                if value.len() % 2 != 0 {
                    return Err(bad);
                }
                Self::UnknownAttributes(U16ListValue(value))
            }
            attr::PASSWORD_ALGORITHM => {
                let (entry, used) = decode_password_algorithm_entry(value).ok_or(bad)?;
                if used < value.len() {
                    return Err(bad);
                }
                Self::PasswordAlgorithm(entry)
            }
            attr::PASSWORD_ALGORITHMS => {
                let mut rest = value;
                while !rest.is_empty() {
                    let (_, used) = decode_password_algorithm_entry(rest).ok_or(bad)?;
                    rest = rest.get(used..).unwrap_or_default();
                }
                Self::PasswordAlgorithms(PasswordAlgorithmsValue(value))
            }
            attr::CHANNEL_NUMBER => Self::ChannelNumber((u32_value(typ, value)? >> 16) as u16),
            attr::LIFETIME => Self::Lifetime(u32_value(typ, value)?),
            attr::DATA => Self::Data(value),
            attr::REQUESTED_ADDRESS_FAMILY => Self::RequestedAddressFamily(family(typ, value)?),
            attr::ADDITIONAL_ADDRESS_FAMILY => Self::AdditionalAddressFamily(family(typ, value)?),
            attr::ADDRESS_ERROR_CODE => Self::AddressErrorCode(decode_address_error_code(value)?),
            attr::EVEN_PORT => match value {
                [b] => Self::EvenPort(EvenPort {
                    reserve_next: b & 0x80 != 0,
                }),
                _ => return Err(bad),
            },
            attr::REQUESTED_TRANSPORT => match value {
                [proto, _, _, _] => Self::RequestedTransport(*proto),
                _ => return Err(bad),
            },
            attr::DONT_FRAGMENT => empty(typ, value, Self::DontFragment)?,
            attr::USE_CANDIDATE => empty(typ, value, Self::UseCandidate)?,
            attr::RESERVATION_TOKEN => Self::ReservationToken(u64_value(typ, value)?),
            attr::ICMP => match value {
                [_, _, t, c, d0, d1, d2, d3] => Self::Icmp(Icmp {
                    icmp_type: *t,
                    icmp_code: *c,
                    error_data: u32::from_be_bytes([*d0, *d1, *d2, *d3]),
                }),
                _ => return Err(bad),
            },
            attr::CONNECTION_ID => Self::ConnectionId(u32_value(typ, value)?),
            attr::PRIORITY => Self::Priority(u32_value(typ, value)?),
            attr::ICE_CONTROLLED => Self::IceControlled(u64_value(typ, value)?),
            attr::ICE_CONTROLLING => Self::IceControlling(u64_value(typ, value)?),
            attr::CHANGE_REQUEST => {
                let v = u32_value(typ, value)?;
                Self::ChangeRequest(ChangeRequest {
                    change_ip: v & 0x4 != 0,
                    change_port: v & 0x2 != 0,
                })
            }
            attr::RESPONSE_PORT => Self::ResponsePort((u32_value(typ, value)? >> 16) as u16),
            attr::PADDING => Self::Padding(value),
            _ => Self::Other { typ, value },
        })
    }
}

fn plain_addr(typ: u16, value: &[u8]) -> Result<SocketAddr, AttrError> {
    address::decode_plain(value).ok_or(AttrError::Malformed { typ })
}

fn xor_addr(typ: u16, value: &[u8], tid: &TransactionId) -> Result<SocketAddr, AttrError> {
    address::decode_xor(value, tid).ok_or(AttrError::Malformed { typ })
}

fn u32_value(typ: u16, value: &[u8]) -> Result<u32, AttrError> {
    let b: [u8; 4] = value.try_into().map_err(|_| AttrError::Malformed { typ })?;
    Ok(u32::from_be_bytes(b))
}

fn u64_value(typ: u16, value: &[u8]) -> Result<u64, AttrError> {
    let b: [u8; 8] = value.try_into().map_err(|_| AttrError::Malformed { typ })?;
    Ok(u64::from_be_bytes(b))
}

fn empty<T>(typ: u16, value: &[u8], v: T) -> Result<T, AttrError> {
    if value.is_empty() {
        Ok(v)
    } else {
        Err(AttrError::Malformed { typ })
    }
}

fn family(typ: u16, value: &[u8]) -> Result<AddressFamily, AttrError> {
    match value {
        [f, _, _, _] => AddressFamily::from_wire(*f).ok_or(AttrError::Malformed { typ }),
        _ => Err(AttrError::Malformed { typ }),
    }
}

/// Checks UTF-8, a byte limit and a character limit.
fn text(typ: u16, value: &[u8], max_bytes: usize, max_chars: usize) -> Result<&str, AttrError> {
    if value.len() > max_bytes {
        return Err(AttrError::TooLong { typ });
    }
    let s = std::str::from_utf8(value).map_err(|_| AttrError::NotUtf8 { typ })?;
    if max_chars < max_bytes && s.chars().count() > max_chars {
        return Err(AttrError::TooLong { typ });
    }
    Ok(s)
}

/// Splits the `class/number` pair and reason shared by ERROR-CODE and ADDRESS-ERROR-CODE.
fn code_and_reason(
    typ: u16,
    class_byte: u8,
    number: u8,
    reason: &[u8],
) -> Result<(u16, &str), AttrError> {
    let class = u16::from(class_byte & 0x07);
    let number = u16::from(number);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(AttrError::Malformed { typ });
    }
    let reason = text(typ, reason, MAX_TEXT_BYTES, MAX_TEXT_CHARS)?;
    Ok((class * 100 + number, reason))
}

/// Decodes an ERROR-CODE value.
pub fn decode_error_code(value: &[u8]) -> Result<ErrorCode<'_>, AttrError> {
    let typ = attr::ERROR_CODE;
    let (head, reason) = value
        .split_first_chunk::<4>()
        .ok_or(AttrError::Malformed { typ })?;
    let (code, reason) = code_and_reason(typ, head[2], head[3], reason)?;
    Ok(ErrorCode { code, reason })
}

/// Decodes an ADDRESS-ERROR-CODE value.
pub fn decode_address_error_code(value: &[u8]) -> Result<AddressErrorCode<'_>, AttrError> {
    let typ = attr::ADDRESS_ERROR_CODE;
    let (head, reason) = value
        .split_first_chunk::<4>()
        .ok_or(AttrError::Malformed { typ })?;
    let family = AddressFamily::from_wire(head[0]).ok_or(AttrError::Malformed { typ })?;
    let (code, reason) = code_and_reason(typ, head[2], head[3], reason)?;
    Ok(AddressErrorCode {
        family,
        code,
        reason,
    })
}

/// One `algorithm, length, params, padding` entry; returns it and the bytes used.
fn decode_password_algorithm_entry(buf: &[u8]) -> Option<(PasswordAlgorithmParams<'_>, usize)> {
    let (head, rest) = buf.split_first_chunk::<4>()?;
    let algorithm = PasswordAlgorithm(u16::from_be_bytes([head[0], head[1]]));
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let params = rest.get(..len)?;
    let padded = (len + 3) & !3;
    if padded > rest.len() {
        return None;
    }
    Some((PasswordAlgorithmParams { algorithm, params }, 4 + padded))
}

/// Typed getters. Each returns `Ok(None)` when the attribute is absent and
/// `Err` when it is present but malformed, so a server can answer 400 with `?`.
/// All of them decode through [`Attribute::decode`], the one place value
/// formats are checked.
impl<'a> Message<'a> {
    /// Decodes every effective attribute in order.
    pub fn typed_attributes(&self) -> impl Iterator<Item = Result<Attribute<'a>, AttrError>> + '_ {
        let tid = self.transaction_id();
        self.effective_attributes()
            .map(move |a| Attribute::decode(a.typ, a.value, &tid))
    }

    /// Decodes the first effective `typ` attribute and picks the variant out.
    fn decoded<T>(
        &self,
        typ: u16,
        pick: impl FnOnce(Attribute<'a>) -> Option<T>,
    ) -> Result<Option<T>, AttrError> {
        let Some(value) = self.get(typ) else {
            return Ok(None);
        };
        let attribute = Attribute::decode(typ, value, &self.transaction_id())?;
        pick(attribute)
            .map(Some)
            .ok_or(AttrError::Malformed { typ })
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.decoded(attr::XOR_MAPPED_ADDRESS, |a| match a {
            Attribute::XorMappedAddress(v) => Some(v),
            _ => None,
        })
    }

    /// MAPPED-ADDRESS.
    pub fn mapped_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.decoded(attr::MAPPED_ADDRESS, |a| match a {
            Attribute::MappedAddress(v) => Some(v),
            _ => None,
        })
    }

    /// XOR-MAPPED-ADDRESS, falling back to MAPPED-ADDRESS (some servers still send only that).
    pub fn reflexive_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        match self.xor_mapped_address()? {
            Some(a) => Ok(Some(a)),
            None => self.mapped_address(),
        }
    }

    /// The first XOR-PEER-ADDRESS.
    pub fn xor_peer_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.decoded(attr::XOR_PEER_ADDRESS, pick_peer)
    }

    /// Every XOR-PEER-ADDRESS (CreatePermission may carry several).
    pub fn xor_peer_addresses(&self) -> impl Iterator<Item = Result<SocketAddr, AttrError>> + '_ {
        let tid = self.transaction_id();
        self.get_all(attr::XOR_PEER_ADDRESS)
            .map(move |v| xor_addr(attr::XOR_PEER_ADDRESS, v, &tid))
    }

    /// The first XOR-RELAYED-ADDRESS.
    pub fn xor_relayed_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.decoded(attr::XOR_RELAYED_ADDRESS, pick_relayed)
    }

    /// Every XOR-RELAYED-ADDRESS (dual-stack allocations return two).
    pub fn xor_relayed_addresses(
        &self,
    ) -> impl Iterator<Item = Result<SocketAddr, AttrError>> + '_ {
        let tid = self.transaction_id();
        self.get_all(attr::XOR_RELAYED_ADDRESS)
            .map(move |v| xor_addr(attr::XOR_RELAYED_ADDRESS, v, &tid))
    }

    /// ALTERNATE-SERVER.
    pub fn alternate_server(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.decoded(attr::ALTERNATE_SERVER, |a| match a {
            Attribute::AlternateServer(v) => Some(v),
            _ => None,
        })
    }

    /// RESPONSE-ORIGIN (RFC 5780).
    pub fn response_origin(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.decoded(attr::RESPONSE_ORIGIN, |a| match a {
            Attribute::ResponseOrigin(v) => Some(v),
            _ => None,
        })
    }

    /// OTHER-ADDRESS (RFC 5780).
    pub fn other_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.decoded(attr::OTHER_ADDRESS, |a| match a {
            Attribute::OtherAddress(v) => Some(v),
            _ => None,
        })
    }

    /// USERNAME.
    pub fn username(&self) -> Result<Option<&'a str>, AttrError> {
        self.decoded(attr::USERNAME, |a| match a {
            Attribute::Username(v) => Some(v),
            _ => None,
        })
    }

    /// USERHASH.
    pub fn userhash(&self) -> Result<Option<&'a [u8; 32]>, AttrError> {
        self.decoded(attr::USERHASH, |a| match a {
            Attribute::Userhash(v) => Some(v),
            _ => None,
        })
    }

    /// REALM.
    pub fn realm(&self) -> Result<Option<&'a str>, AttrError> {
        self.decoded(attr::REALM, |a| match a {
            Attribute::Realm(v) => Some(v),
            _ => None,
        })
    }

    /// NONCE.
    pub fn nonce(&self) -> Result<Option<&'a str>, AttrError> {
        self.decoded(attr::NONCE, |a| match a {
            Attribute::Nonce(v) => Some(v),
            _ => None,
        })
    }

    /// SOFTWARE.
    pub fn software(&self) -> Result<Option<&'a str>, AttrError> {
        self.decoded(attr::SOFTWARE, |a| match a {
            Attribute::Software(v) => Some(v),
            _ => None,
        })
    }

    /// ALTERNATE-DOMAIN.
    pub fn alternate_domain(&self) -> Result<Option<&'a str>, AttrError> {
        self.decoded(attr::ALTERNATE_DOMAIN, |a| match a {
            Attribute::AlternateDomain(v) => Some(v),
            _ => None,
        })
    }

    /// ERROR-CODE.
    pub fn error_code(&self) -> Result<Option<ErrorCode<'a>>, AttrError> {
        self.decoded(attr::ERROR_CODE, |a| match a {
            Attribute::ErrorCode(v) => Some(v),
            _ => None,
        })
    }

    /// UNKNOWN-ATTRIBUTES entries.
    pub fn unknown_attributes(&self) -> Result<Option<U16List<'a>>, AttrError> {
        self.decoded(attr::UNKNOWN_ATTRIBUTES, |a| match a {
            Attribute::UnknownAttributes(v) => Some(v.iter()),
            _ => None,
        })
    }

    /// PASSWORD-ALGORITHM.
    pub fn password_algorithm(&self) -> Result<Option<PasswordAlgorithmParams<'a>>, AttrError> {
        self.decoded(attr::PASSWORD_ALGORITHM, |a| match a {
            Attribute::PasswordAlgorithm(v) => Some(v),
            _ => None,
        })
    }

    /// PASSWORD-ALGORITHMS entries.
    pub fn password_algorithms(&self) -> Result<Option<PasswordAlgorithmList<'a>>, AttrError> {
        self.decoded(attr::PASSWORD_ALGORITHMS, |a| match a {
            Attribute::PasswordAlgorithms(v) => Some(v.iter()),
            _ => None,
        })
    }

    /// CHANNEL-NUMBER (the upper 16 bits of the value).
    pub fn channel_number(&self) -> Result<Option<u16>, AttrError> {
        self.decoded(attr::CHANNEL_NUMBER, |a| match a {
            Attribute::ChannelNumber(v) => Some(v),
            _ => None,
        })
    }

    /// LIFETIME in seconds.
    pub fn lifetime(&self) -> Result<Option<u32>, AttrError> {
        self.decoded(attr::LIFETIME, |a| match a {
            Attribute::Lifetime(v) => Some(v),
            _ => None,
        })
    }

    /// DATA, borrowed from the datagram (the relay hot path copies nothing).
    pub fn data(&self) -> Option<&'a [u8]> {
        self.get(attr::DATA)
    }

    /// REQUESTED-ADDRESS-FAMILY.
    pub fn requested_address_family(&self) -> Result<Option<AddressFamily>, AttrError> {
        self.decoded(attr::REQUESTED_ADDRESS_FAMILY, |a| match a {
            Attribute::RequestedAddressFamily(v) => Some(v),
            _ => None,
        })
    }

    /// ADDITIONAL-ADDRESS-FAMILY.
    pub fn additional_address_family(&self) -> Result<Option<AddressFamily>, AttrError> {
        self.decoded(attr::ADDITIONAL_ADDRESS_FAMILY, |a| match a {
            Attribute::AdditionalAddressFamily(v) => Some(v),
            _ => None,
        })
    }

    /// ADDRESS-ERROR-CODE.
    pub fn address_error_code(&self) -> Result<Option<AddressErrorCode<'a>>, AttrError> {
        self.decoded(attr::ADDRESS_ERROR_CODE, |a| match a {
            Attribute::AddressErrorCode(v) => Some(v),
            _ => None,
        })
    }

    /// EVEN-PORT.
    pub fn even_port(&self) -> Result<Option<EvenPort>, AttrError> {
        self.decoded(attr::EVEN_PORT, |a| match a {
            Attribute::EvenPort(v) => Some(v),
            _ => None,
        })
    }

    /// REQUESTED-TRANSPORT protocol number ([`PROTOCOL_UDP`] or [`PROTOCOL_TCP`]).
    pub fn requested_transport(&self) -> Result<Option<u8>, AttrError> {
        self.decoded(attr::REQUESTED_TRANSPORT, |a| match a {
            Attribute::RequestedTransport(v) => Some(v),
            _ => None,
        })
    }

    /// Whether DONT-FRAGMENT is present.
    pub fn dont_fragment(&self) -> bool {
        self.contains(attr::DONT_FRAGMENT)
    }

    /// RESERVATION-TOKEN.
    pub fn reservation_token(&self) -> Result<Option<u64>, AttrError> {
        self.decoded(attr::RESERVATION_TOKEN, |a| match a {
            Attribute::ReservationToken(v) => Some(v),
            _ => None,
        })
    }

    /// ICMP.
    pub fn icmp(&self) -> Result<Option<Icmp>, AttrError> {
        self.decoded(attr::ICMP, |a| match a {
            Attribute::Icmp(v) => Some(v),
            _ => None,
        })
    }

    /// CONNECTION-ID (RFC 6062).
    pub fn connection_id(&self) -> Result<Option<u32>, AttrError> {
        self.decoded(attr::CONNECTION_ID, |a| match a {
            Attribute::ConnectionId(v) => Some(v),
            _ => None,
        })
    }

    /// PRIORITY (ICE).
    pub fn priority(&self) -> Result<Option<u32>, AttrError> {
        self.decoded(attr::PRIORITY, |a| match a {
            Attribute::Priority(v) => Some(v),
            _ => None,
        })
    }

    /// Whether USE-CANDIDATE is present.
    pub fn use_candidate(&self) -> bool {
        self.contains(attr::USE_CANDIDATE)
    }

    /// ICE-CONTROLLED tie-breaker.
    pub fn ice_controlled(&self) -> Result<Option<u64>, AttrError> {
        self.decoded(attr::ICE_CONTROLLED, |a| match a {
            Attribute::IceControlled(v) => Some(v),
            _ => None,
        })
    }

    /// ICE-CONTROLLING tie-breaker.
    pub fn ice_controlling(&self) -> Result<Option<u64>, AttrError> {
        self.decoded(attr::ICE_CONTROLLING, |a| match a {
            Attribute::IceControlling(v) => Some(v),
            _ => None,
        })
    }

    /// CHANGE-REQUEST (RFC 5780).
    pub fn change_request(&self) -> Result<Option<ChangeRequest>, AttrError> {
        self.decoded(attr::CHANGE_REQUEST, |a| match a {
            Attribute::ChangeRequest(v) => Some(v),
            _ => None,
        })
    }

    /// RESPONSE-PORT (RFC 5780).
    pub fn response_port(&self) -> Result<Option<u16>, AttrError> {
        self.decoded(attr::RESPONSE_PORT, |a| match a {
            Attribute::ResponsePort(v) => Some(v),
            _ => None,
        })
    }

    /// FINGERPRINT value.
    pub fn fingerprint(&self) -> Result<Option<u32>, AttrError> {
        self.decoded(attr::FINGERPRINT, |a| match a {
            Attribute::Fingerprint(v) => Some(v),
            _ => None,
        })
    }
}

fn pick_peer(a: Attribute<'_>) -> Option<SocketAddr> {
    match a {
        Attribute::XorPeerAddress(v) => Some(v),
        _ => None,
    }
}

fn pick_relayed(a: Attribute<'_>) -> Option<SocketAddr> {
    match a {
        Attribute::XorRelayedAddress(v) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: TransactionId = TransactionId([1; 12]);

    #[test]
    fn error_code_decodes_class_and_number() {
        let v = [0, 0, 4, 20, b'U', b'n', b'k'];
        assert_eq!(
            decode_error_code(&v),
            Ok(ErrorCode {
                code: 420,
                reason: "Unk"
            })
        );
        assert!(decode_error_code(&[0, 0, 2, 0]).is_err());
        assert!(decode_error_code(&[0, 0, 4, 100]).is_err());
        assert!(decode_error_code(&[0, 0, 4]).is_err());
        assert!(decode_error_code(&[0, 0, 4, 1, 0xff]).is_err());
    }

    #[test]
    fn fixed_size_values_check_their_length() {
        assert_eq!(
            Attribute::decode(attr::LIFETIME, &[0, 0, 2, 0x58], &TID),
            Ok(Attribute::Lifetime(600))
        );
        assert!(Attribute::decode(attr::LIFETIME, &[0, 0, 2], &TID).is_err());
        assert_eq!(
            Attribute::decode(attr::CHANNEL_NUMBER, &[0x40, 0x01, 0, 0], &TID),
            Ok(Attribute::ChannelNumber(0x4001))
        );
        assert_eq!(
            Attribute::decode(attr::EVEN_PORT, &[0x80], &TID),
            Ok(Attribute::EvenPort(EvenPort { reserve_next: true }))
        );
        assert_eq!(
            Attribute::decode(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0], &TID),
            Ok(Attribute::RequestedTransport(PROTOCOL_UDP))
        );
        assert_eq!(
            Attribute::decode(attr::CHANGE_REQUEST, &[0, 0, 0, 6], &TID),
            Ok(Attribute::ChangeRequest(ChangeRequest {
                change_ip: true,
                change_port: true
            }))
        );
        assert_eq!(
            Attribute::decode(attr::USE_CANDIDATE, &[], &TID),
            Ok(Attribute::UseCandidate)
        );
        assert!(Attribute::decode(attr::USE_CANDIDATE, &[0], &TID).is_err());
        assert_eq!(
            Attribute::decode(attr::ICMP, &[0, 0, 3, 4, 0, 0, 5, 0xdc], &TID),
            Ok(Attribute::Icmp(Icmp {
                icmp_type: 3,
                icmp_code: 4,
                error_data: 1500
            }))
        );
        assert_eq!(
            Attribute::decode(attr::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0], &TID),
            Ok(Attribute::RequestedAddressFamily(AddressFamily::V6))
        );
        assert!(Attribute::decode(attr::REQUESTED_ADDRESS_FAMILY, &[3, 0, 0, 0], &TID).is_err());
    }

    #[test]
    fn text_limits_are_enforced() {
        let long = [b'a'; 128];
        assert_eq!(
            Attribute::decode(attr::REALM, &long, &TID),
            Err(AttrError::TooLong { typ: attr::REALM })
        );
        assert!(Attribute::decode(attr::REALM, &long[..127], &TID).is_ok());
        assert!(Attribute::decode(attr::USERNAME, &[b'u'; 513], &TID).is_ok());
        assert!(Attribute::decode(attr::USERNAME, &[b'u'; 514], &TID).is_err());
        assert_eq!(
            Attribute::decode(attr::SOFTWARE, &[0xff], &TID),
            Err(AttrError::NotUtf8 {
                typ: attr::SOFTWARE
            })
        );
    }

    #[test]
    fn password_algorithms_list_walks_entries() {
        let v = [0, 2, 0, 0, 0, 1, 0, 0];
        let Ok(Attribute::PasswordAlgorithms(list)) =
            Attribute::decode(attr::PASSWORD_ALGORITHMS, &v, &TID)
        else {
            panic!("expected a list");
        };
        let algos: Vec<_> = list.iter().map(|p| p.algorithm).collect();
        assert_eq!(algos, [PasswordAlgorithm::SHA256, PasswordAlgorithm::MD5]);
        assert!(Attribute::decode(attr::PASSWORD_ALGORITHMS, &v[..6], &TID).is_err());
        assert!(Attribute::decode(attr::PASSWORD_ALGORITHM, &v, &TID).is_err());
    }
}
