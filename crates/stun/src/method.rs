//! STUN methods, classes and the interleaved message-type field (RFC 8489 section 5).

use std::fmt;

/// A STUN method: the 12-bit operation a message carries.
///
/// A newtype rather than an enum so methods this crate does not know (future
/// extensions, vendor methods) survive a parse and print as numbers.
#[derive(Clone, Copy, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Method(pub u16);

impl Method {
    /// Binding (RFC 8489 section 18.2).
    pub const BINDING: Self = Self(0x001);
    /// Allocate (RFC 8656 section 17).
    pub const ALLOCATE: Self = Self(0x003);
    /// Refresh (RFC 8656).
    pub const REFRESH: Self = Self(0x004);
    /// Send, indication only (RFC 8656).
    pub const SEND: Self = Self(0x006);
    /// Data, indication only (RFC 8656).
    pub const DATA: Self = Self(0x007);
    /// CreatePermission (RFC 8656).
    pub const CREATE_PERMISSION: Self = Self(0x008);
    /// ChannelBind (RFC 8656).
    pub const CHANNEL_BIND: Self = Self(0x009);
    /// Connect (RFC 6062, TURN over TCP relaying).
    pub const CONNECT: Self = Self(0x00A);
    /// ConnectionBind (RFC 6062).
    pub const CONNECTION_BIND: Self = Self(0x00B);
    /// ConnectionAttempt, indication only (RFC 6062).
    pub const CONNECTION_ATTEMPT: Self = Self(0x00C);

    /// The largest value a method can take: the field has 12 bits.
    pub const MAX: u16 = 0x0FFF;

    /// The registered name, or `None` for a method this crate does not know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::BINDING => "Binding",
            Self::ALLOCATE => "Allocate",
            Self::REFRESH => "Refresh",
            Self::SEND => "Send",
            Self::DATA => "Data",
            Self::CREATE_PERMISSION => "CreatePermission",
            Self::CHANNEL_BIND => "ChannelBind",
            Self::CONNECT => "Connect",
            Self::CONNECTION_BIND => "ConnectionBind",
            Self::CONNECTION_ATTEMPT => "ConnectionAttempt",
            _ => return None,
        })
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Method({:#05x})", self.0),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The class of a STUN message: what role it plays in a transaction.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Class {
    /// A request, answered by a success or error response.
    Request,
    /// An indication: fire and forget, no response.
    Indication,
    /// A success response.
    Success,
    /// An error response (carries ERROR-CODE).
    Error,
}

impl Class {
    /// The two class bits C1 C0 as a number 0..=3.
    pub const fn bits(self) -> u16 {
        match self {
            Self::Request => 0b00,
            Self::Indication => 0b01,
            Self::Success => 0b10,
            Self::Error => 0b11,
        }
    }

    /// The class for two bits C1 C0 (only the low two bits are looked at).
    pub const fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => Self::Request,
            0b01 => Self::Indication,
            0b10 => Self::Success,
            _ => Self::Error,
        }
    }

    /// Whether the message answers a request (success or error).
    pub const fn is_response(self) -> bool {
        matches!(self, Self::Success | Self::Error)
    }
}

/// Builds the 14-bit message-type field: the class bits sit between method bits
/// (M11..M7, C1, M6..M4, C0, M3..M0), a leftover of RFC 3489 compatibility.
///
/// Method bits above the twelfth are dropped.
pub const fn message_type(method: Method, class: Class) -> u16 {
    let m = method.0 & Method::MAX;
    let c = class.bits();
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 0b01) << 4) | ((c & 0b10) << 7)
}

/// Splits a message-type field into method and class (the inverse of [`message_type`]).
///
/// The top two bits of `typ` are ignored; the parser has already checked they are zero.
pub const fn split_message_type(typ: u16) -> (Method, Class) {
    let m = (typ & 0x000F) | ((typ & 0x00E0) >> 1) | ((typ & 0x3E00) >> 2);
    let c = ((typ >> 4) & 0b01) | ((typ >> 7) & 0b10);
    (Method(m), Class::from_bits(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_types_encode_as_the_rfc_says() {
        assert_eq!(message_type(Method::BINDING, Class::Request), 0x0001);
        assert_eq!(message_type(Method::BINDING, Class::Indication), 0x0011);
        assert_eq!(message_type(Method::BINDING, Class::Success), 0x0101);
        assert_eq!(message_type(Method::BINDING, Class::Error), 0x0111);
        assert_eq!(message_type(Method::ALLOCATE, Class::Request), 0x0003);
        assert_eq!(message_type(Method::ALLOCATE, Class::Error), 0x0113);
        assert_eq!(message_type(Method::SEND, Class::Indication), 0x0016);
        assert_eq!(message_type(Method::DATA, Class::Indication), 0x0017);
        assert_eq!(message_type(Method::CHANNEL_BIND, Class::Success), 0x0109);
        assert_eq!(
            message_type(Method::CONNECTION_ATTEMPT, Class::Indication),
            0x001C
        );
    }

    #[test]
    fn every_method_and_class_round_trips() {
        for m in 0..=Method::MAX {
            for class in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                let t = message_type(Method(m), class);
                assert_eq!(t & 0xC000, 0);
                assert_eq!(split_message_type(t), (Method(m), class));
            }
        }
    }

    #[test]
    fn unknown_methods_print_as_numbers() {
        assert_eq!(format!("{:?}", Method(0x123)), "Method(0x123)");
        assert_eq!(format!("{}", Method::CHANNEL_BIND), "ChannelBind");
    }
}
