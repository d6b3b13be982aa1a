//! ERROR-CODE numbers (RFC 8489 section 14.8, RFC 8656 section 18, RFC 6062,
//! RFC 8445) and their registered reason phrases.

/// Try Alternate: use ALTERNATE-SERVER.
pub const TRY_ALTERNATE: u16 = 300;
/// Bad Request: malformed request.
pub const BAD_REQUEST: u16 = 400;
/// Unauthenticated: missing or wrong credentials.
pub const UNAUTHENTICATED: u16 = 401;
/// Forbidden (TURN).
pub const FORBIDDEN: u16 = 403;
/// Mobility Forbidden (RFC 8016).
pub const MOBILITY_FORBIDDEN: u16 = 405;
/// Unknown Attribute: comprehension-required attributes not understood.
pub const UNKNOWN_ATTRIBUTE: u16 = 420;
/// Allocation Mismatch (TURN).
pub const ALLOCATION_MISMATCH: u16 = 437;
/// Stale Nonce.
pub const STALE_NONCE: u16 = 438;
/// Address Family not Supported (TURN).
pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
/// Wrong Credentials (TURN).
pub const WRONG_CREDENTIALS: u16 = 441;
/// Unsupported Transport Protocol (TURN).
pub const UNSUPPORTED_TRANSPORT_PROTOCOL: u16 = 442;
/// Peer Address Family Mismatch (TURN).
pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
/// Connection Already Exists (RFC 6062).
pub const CONNECTION_ALREADY_EXISTS: u16 = 446;
/// Connection Timeout or Failure (RFC 6062).
pub const CONNECTION_TIMEOUT_OR_FAILURE: u16 = 447;
/// Allocation Quota Reached (TURN).
pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
/// Role Conflict (ICE).
pub const ROLE_CONFLICT: u16 = 487;
/// Server Error.
pub const SERVER_ERROR: u16 = 500;
/// Insufficient Capacity (TURN).
pub const INSUFFICIENT_CAPACITY: u16 = 508;

/// The registered reason phrase for `code`, or a generic one by class.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        TRY_ALTERNATE => "Try Alternate",
        BAD_REQUEST => "Bad Request",
        UNAUTHENTICATED => "Unauthenticated",
        FORBIDDEN => "Forbidden",
        MOBILITY_FORBIDDEN => "Mobility Forbidden",
        UNKNOWN_ATTRIBUTE => "Unknown Attribute",
        ALLOCATION_MISMATCH => "Allocation Mismatch",
        STALE_NONCE => "Stale Nonce",
        ADDRESS_FAMILY_NOT_SUPPORTED => "Address Family not Supported",
        WRONG_CREDENTIALS => "Wrong Credentials",
        UNSUPPORTED_TRANSPORT_PROTOCOL => "Unsupported Transport Protocol",
        PEER_ADDRESS_FAMILY_MISMATCH => "Peer Address Family Mismatch",
        CONNECTION_ALREADY_EXISTS => "Connection Already Exists",
        CONNECTION_TIMEOUT_OR_FAILURE => "Connection Timeout or Failure",
        ALLOCATION_QUOTA_REACHED => "Allocation Quota Reached",
        ROLE_CONFLICT => "Role Conflict",
        SERVER_ERROR => "Server Error",
        INSUFFICIENT_CAPACITY => "Insufficient Capacity",
        // Unregistered codes get a phrase by class.
        c if c < 400 => "Redirect",
        c if c < 500 => "Client Error",
        _ => "Server Error",
    }
}
