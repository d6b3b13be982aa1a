//! Attribute type numbers from the IANA "STUN Attributes" registry.
//!
//! Plain `u16` constants rather than an enum: unknown types must survive a parse
//! (they are either ignored or reported in a 420 answer), and matching on
//! constants costs nothing.

// RFC 8489 (STUN), comprehension-required range 0x0000..=0x7FFF.
/// MAPPED-ADDRESS (RFC 8489 section 14.1): the reflexive address, not XORed.
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// RESPONSE-ADDRESS (RFC 3489, reserved since RFC 5389); listed so it prints by name.
pub const RESPONSE_ADDRESS: u16 = 0x0002;
/// CHANGE-REQUEST (RFC 5780 section 7.2): ask the server to answer from another IP and/or port.
pub const CHANGE_REQUEST: u16 = 0x0003;
/// SOURCE-ADDRESS (RFC 3489, reserved).
pub const SOURCE_ADDRESS: u16 = 0x0004;
/// CHANGED-ADDRESS (RFC 3489, reserved; superseded by OTHER-ADDRESS).
pub const CHANGED_ADDRESS: u16 = 0x0005;
/// USERNAME (RFC 8489 section 14.3): UTF-8, fewer than 509 bytes in RFC 8489
/// (513 in RFC 5389, the bound this crate enforces).
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY (RFC 8489 section 14.5): HMAC-SHA1, 20 bytes.
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE (RFC 8489 section 14.8).
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES (RFC 8489 section 14.9): list of 16-bit types, in a 420.
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// CHANNEL-NUMBER (RFC 8656 section 18.1).
pub const CHANNEL_NUMBER: u16 = 0x000C;
/// LIFETIME (RFC 8656 section 18.2), seconds.
pub const LIFETIME: u16 = 0x000D;
/// XOR-PEER-ADDRESS (RFC 8656 section 18.3).
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
/// DATA (RFC 8656 section 18.4): the application payload of Send/Data indications.
pub const DATA: u16 = 0x0013;
/// REALM (RFC 8489 section 14.9), fewer than 128 characters.
pub const REALM: u16 = 0x0014;
/// NONCE (RFC 8489 section 14.10), fewer than 128 characters.
pub const NONCE: u16 = 0x0015;
/// XOR-RELAYED-ADDRESS (RFC 8656 section 18.5).
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
/// REQUESTED-ADDRESS-FAMILY (RFC 8656 section 18.6).
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
/// EVEN-PORT (RFC 8656 section 18.7).
pub const EVEN_PORT: u16 = 0x0018;
/// REQUESTED-TRANSPORT (RFC 8656 section 18.8).
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
/// DONT-FRAGMENT (RFC 8656 section 18.9), no value.
pub const DONT_FRAGMENT: u16 = 0x001A;
/// MESSAGE-INTEGRITY-SHA256 (RFC 8489 section 14.6): HMAC-SHA256, 16..=32 bytes.
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
/// PASSWORD-ALGORITHM (RFC 8489 section 14.12).
pub const PASSWORD_ALGORITHM: u16 = 0x001D;
/// USERHASH (RFC 8489 section 14.4): SHA-256 of "username:realm".
pub const USERHASH: u16 = 0x001E;
/// XOR-MAPPED-ADDRESS (RFC 8489 section 14.2).
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// RESERVATION-TOKEN (RFC 8656 section 18.10), 8 bytes.
pub const RESERVATION_TOKEN: u16 = 0x0022;
/// PRIORITY (RFC 8445 section 16.1).
pub const PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE (RFC 8445 section 16.1), no value.
pub const USE_CANDIDATE: u16 = 0x0025;
/// PADDING (RFC 5780 section 7.4).
pub const PADDING: u16 = 0x0026;
/// RESPONSE-PORT (RFC 5780 section 7.5).
pub const RESPONSE_PORT: u16 = 0x0027;
/// CONNECTION-ID (RFC 6062 section 6.2.1).
pub const CONNECTION_ID: u16 = 0x002A;

// Comprehension-optional range 0x8000..=0xFFFF.
/// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 section 18.11).
pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
/// ADDRESS-ERROR-CODE (RFC 8656 section 18.12).
pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
/// PASSWORD-ALGORITHMS (RFC 8489 section 14.11).
pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
/// ALTERNATE-DOMAIN (RFC 8489 section 14.16).
pub const ALTERNATE_DOMAIN: u16 = 0x8003;
/// ICMP (RFC 8656 section 18.13).
pub const ICMP: u16 = 0x8004;
/// SOFTWARE (RFC 8489 section 14.14), fewer than 128 characters.
pub const SOFTWARE: u16 = 0x8022;
/// ALTERNATE-SERVER (RFC 8489 section 14.15).
pub const ALTERNATE_SERVER: u16 = 0x8023;
/// TRANSACTION_TRANSMIT_COUNTER (RFC 7982).
pub const TRANSACTION_TRANSMIT_COUNTER: u16 = 0x8025;
/// CACHE-TIMEOUT (RFC 5780 section 7.7).
pub const CACHE_TIMEOUT: u16 = 0x8027;
/// FINGERPRINT (RFC 8489 section 14.7): CRC-32 XOR 0x5354554e.
pub const FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED (RFC 8445 section 16.1), 64-bit tie-breaker.
pub const ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING (RFC 8445 section 16.1), 64-bit tie-breaker.
pub const ICE_CONTROLLING: u16 = 0x802A;
/// RESPONSE-ORIGIN (RFC 5780 section 7.3).
pub const RESPONSE_ORIGIN: u16 = 0x802B;
/// OTHER-ADDRESS (RFC 5780 section 7.4).
pub const OTHER_ADDRESS: u16 = 0x802C;

/// Whether an agent that does not understand `typ` must reject the message
/// (RFC 8489 section 14: types below 0x8000 are comprehension-required).
pub const fn is_comprehension_required(typ: u16) -> bool {
    typ < 0x8000
}

/// The registered name of an attribute type, for logs and `Debug` output.
pub fn name(typ: u16) -> Option<&'static str> {
    Some(match typ {
        MAPPED_ADDRESS => "MAPPED-ADDRESS",
        RESPONSE_ADDRESS => "RESPONSE-ADDRESS",
        CHANGE_REQUEST => "CHANGE-REQUEST",
        SOURCE_ADDRESS => "SOURCE-ADDRESS",
        CHANGED_ADDRESS => "CHANGED-ADDRESS",
        USERNAME => "USERNAME",
        MESSAGE_INTEGRITY => "MESSAGE-INTEGRITY",
        ERROR_CODE => "ERROR-CODE",
        UNKNOWN_ATTRIBUTES => "UNKNOWN-ATTRIBUTES",
        CHANNEL_NUMBER => "CHANNEL-NUMBER",
        LIFETIME => "LIFETIME",
        XOR_PEER_ADDRESS => "XOR-PEER-ADDRESS",
        DATA => "DATA",
        REALM => "REALM",
        NONCE => "NONCE",
        XOR_RELAYED_ADDRESS => "XOR-RELAYED-ADDRESS",
        REQUESTED_ADDRESS_FAMILY => "REQUESTED-ADDRESS-FAMILY",
        EVEN_PORT => "EVEN-PORT",
        REQUESTED_TRANSPORT => "REQUESTED-TRANSPORT",
        DONT_FRAGMENT => "DONT-FRAGMENT",
        MESSAGE_INTEGRITY_SHA256 => "MESSAGE-INTEGRITY-SHA256",
        PASSWORD_ALGORITHM => "PASSWORD-ALGORITHM",
        USERHASH => "USERHASH",
        XOR_MAPPED_ADDRESS => "XOR-MAPPED-ADDRESS",
        RESERVATION_TOKEN => "RESERVATION-TOKEN",
        PRIORITY => "PRIORITY",
        USE_CANDIDATE => "USE-CANDIDATE",
        PADDING => "PADDING",
        RESPONSE_PORT => "RESPONSE-PORT",
        CONNECTION_ID => "CONNECTION-ID",
        ADDITIONAL_ADDRESS_FAMILY => "ADDITIONAL-ADDRESS-FAMILY",
        ADDRESS_ERROR_CODE => "ADDRESS-ERROR-CODE",
        PASSWORD_ALGORITHMS => "PASSWORD-ALGORITHMS",
        ALTERNATE_DOMAIN => "ALTERNATE-DOMAIN",
        ICMP => "ICMP",
        SOFTWARE => "SOFTWARE",
        ALTERNATE_SERVER => "ALTERNATE-SERVER",
        TRANSACTION_TRANSMIT_COUNTER => "TRANSACTION-TRANSMIT-COUNTER",
        CACHE_TIMEOUT => "CACHE-TIMEOUT",
        FINGERPRINT => "FINGERPRINT",
        ICE_CONTROLLED => "ICE-CONTROLLED",
        ICE_CONTROLLING => "ICE-CONTROLLING",
        RESPONSE_ORIGIN => "RESPONSE-ORIGIN",
        OTHER_ADDRESS => "OTHER-ADDRESS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comprehension_range_splits_at_0x8000() {
        assert!(is_comprehension_required(USERNAME));
        assert!(is_comprehension_required(0x7FFF));
        assert!(!is_comprehension_required(SOFTWARE));
        assert!(!is_comprehension_required(0x8000));
    }

    #[test]
    fn names_cover_the_registry_we_implement() {
        assert_eq!(name(XOR_MAPPED_ADDRESS), Some("XOR-MAPPED-ADDRESS"));
        assert_eq!(name(ICE_CONTROLLING), Some("ICE-CONTROLLING"));
        assert_eq!(name(0x7777), None);
    }
}
