//! The server side of Binding (RFC 8489 section 6.3, RFC 5780 section 6) and
//! error answers. Pure functions: request view in, response bytes out.
//!
//! RFC 3489 clients (no magic cookie) are out of scope: [`Message::parse`]
//! rejects their requests, so [`handle_binding`] drops them instead of
//! answering with MAPPED-ADDRESS.

use std::net::SocketAddr;

use crate::attr;
use crate::attribute::{ChangeRequest, PasswordAlgorithm};
use crate::error_code;
use crate::message::Message;
use crate::method::{Class, Method};
use crate::unknown::unknown_comprehension_required;
use crate::writer::{EncodeError, MessageWriter};

/// Optional extras for responses built by this module.
#[derive(Clone, Copy, Debug, Default)]
pub struct ResponseOptions<'a> {
    /// SOFTWARE to include.
    pub software: Option<&'a str>,
    /// RESPONSE-ORIGIN: the address the response is sent from (RFC 5780).
    pub response_origin: Option<SocketAddr>,
    /// OTHER-ADDRESS: the server's alternate IP and port (RFC 5780).
    pub other_address: Option<SocketAddr>,
    /// Also include the plain MAPPED-ADDRESS (for clients that only read it).
    pub mapped_address: bool,
    /// Key for MESSAGE-INTEGRITY (short-term credentials, e.g. ICE checks).
    pub integrity_key: Option<&'a [u8]>,
    /// Append FINGERPRINT.
    pub fingerprint: bool,
}

/// Writes the success response to a Binding request received from `src`:
/// XOR-MAPPED-ADDRESS = `src`, plus the extras in `opts`.
pub fn answer_binding(
    req: &Message<'_>,
    src: SocketAddr,
    opts: &ResponseOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let mut w = MessageWriter::new(out, Method::BINDING, Class::Success, req.transaction_id());
    w.add_xor_mapped_address(src);
    if opts.mapped_address {
        w.add_mapped_address(src);
    }
    if let Some(origin) = opts.response_origin {
        w.add_response_origin(origin);
    }
    if let Some(other) = opts.other_address {
        w.add_other_address(other);
    }
    finish(&mut w, opts)
}

/// Writes an error response to `req` with ERROR-CODE `code` (reason defaults
/// to the registered phrase) and, when `unknown` is not empty,
/// UNKNOWN-ATTRIBUTES (the 420 answer).
pub fn answer_error(
    req: &Message<'_>,
    code: u16,
    reason: Option<&str>,
    unknown: &[u16],
    opts: &ResponseOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let mut w = MessageWriter::new(out, req.method(), Class::Error, req.transaction_id());
    w.add_error_code(code, reason.unwrap_or(error_code::reason_phrase(code)));
    if !unknown.is_empty() {
        w.add_unknown_attributes(unknown);
    }
    finish(&mut w, opts)
}

/// What a long-term-credential challenge carries (RFC 8489 section 9.2.4).
#[derive(Clone, Copy, Debug)]
pub struct Challenge<'a> {
    /// REALM.
    pub realm: &'a str,
    /// NONCE; start it with [`crate::credentials::nonce_cookie`] to announce
    /// RFC 8489 security features.
    pub nonce: &'a str,
    /// PASSWORD-ALGORITHMS to offer, in preference order; empty for an
    /// RFC 5389-style challenge.
    pub password_algorithms: &'a [PasswordAlgorithm],
}

/// Writes a 401 (Unauthenticated) or 438 (Stale Nonce) challenge with REALM,
/// NONCE and, when given, PASSWORD-ALGORITHMS. Integrity is only added when
/// `opts.integrity_key` is set (438 to a request that authenticated).
pub fn answer_challenge(
    req: &Message<'_>,
    code: u16,
    challenge: &Challenge<'_>,
    opts: &ResponseOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let mut w = MessageWriter::new(out, req.method(), Class::Error, req.transaction_id());
    w.add_error_code(code, error_code::reason_phrase(code))
        .add_realm(challenge.realm)
        .add_nonce(challenge.nonce);
    if !challenge.password_algorithms.is_empty() {
        w.add_password_algorithms(challenge.password_algorithms);
    }
    finish(&mut w, opts)
}

/// Writes a 400 Bad Request answer.
pub fn answer_bad_request(
    req: &Message<'_>,
    opts: &ResponseOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    answer_error(req, error_code::BAD_REQUEST, None, &[], opts, out)
}

fn finish(w: &mut MessageWriter<'_>, opts: &ResponseOptions<'_>) -> Result<usize, EncodeError> {
    if let Some(s) = opts.software {
        w.add_software(s);
    }
    if let Some(key) = opts.integrity_key {
        w.add_message_integrity(key);
    }
    if opts.fingerprint {
        w.add_fingerprint();
    }
    w.finish()
}

/// Attributes a Binding request may carry that [`handle_binding`] understands
/// (or deliberately ignores, like the ICE ones a plain STUN server sees).
pub const BINDING_KNOWN_ATTRIBUTES: &[u16] = &[
    attr::USERNAME,
    attr::MESSAGE_INTEGRITY,
    attr::MESSAGE_INTEGRITY_SHA256,
    attr::PRIORITY,
    attr::USE_CANDIDATE,
    attr::CHANGE_REQUEST,
    attr::PADDING,
    attr::RESPONSE_PORT,
];

/// What [`handle_binding`] wrote and how it must be sent.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct BindingAnswer {
    /// Length of the answer in the output buffer.
    pub len: usize,
    /// Whether this is an error answer (400/420).
    pub is_error: bool,
    /// CHANGE-REQUEST from the request: the caller sends from its alternate
    /// IP and/or port (RFC 5780 section 6.1). Default when absent.
    pub change: ChangeRequest,
    /// RESPONSE-PORT from the request: send to this port of the client's IP
    /// instead of the source port.
    pub response_port: Option<u16>,
}

/// A whole stateless Binding server step: parses `datagram`, answers a
/// Binding request from `src` (success, 420 for unknown
/// comprehension-required attributes, 400 for malformed ones) into `out`.
/// Returns `None` for anything that must be silently dropped: not STUN, not a
/// Binding request (indications included), or an answer that cannot be built.
///
/// `opts.response_origin`/`other_address` describe the socket the caller will
/// send from; with CHANGE-REQUEST the caller picks the socket and should pass
/// matching options (see [`BindingAnswer::change`]).
pub fn handle_binding(
    datagram: &[u8],
    src: SocketAddr,
    opts: &ResponseOptions<'_>,
    out: &mut Vec<u8>,
) -> Option<BindingAnswer> {
    let req = Message::parse(datagram).ok()?;
    if req.method() != Method::BINDING || req.class() != Class::Request {
        return None;
    }
    let unknown = unknown_comprehension_required(&req, BINDING_KNOWN_ATTRIBUTES);
    if !unknown.is_empty() {
        let len = answer_error(
            &req,
            error_code::UNKNOWN_ATTRIBUTE,
            None,
            unknown.as_slice(),
            opts,
            out,
        )
        .ok()?;
        return Some(BindingAnswer {
            len,
            is_error: true,
            change: ChangeRequest::default(),
            response_port: None,
        });
    }
    let (change, response_port) = match (req.change_request(), req.response_port()) {
        (Ok(c), Ok(p)) => (c.unwrap_or_default(), p),
        _ => {
            let len = answer_bad_request(&req, opts, out).ok()?;
            return Some(BindingAnswer {
                len,
                is_error: true,
                change: ChangeRequest::default(),
                response_port: None,
            });
        }
    };
    let len = answer_binding(&req, src, opts, out).ok()?;
    Some(BindingAnswer {
        len,
        is_error: false,
        change,
        response_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::TransactionId;

    fn request(extra: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Request,
            TransactionId([5; 12]),
        );
        extra(&mut w);
        w.finish().unwrap();
        buf
    }

    #[test]
    fn binding_answer_carries_the_source_and_extras() {
        let req = request(|_| {});
        let src: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let origin: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let other: SocketAddr = "192.0.2.2:3479".parse().unwrap();
        let opts = ResponseOptions {
            software: Some("natter"),
            response_origin: Some(origin),
            other_address: Some(other),
            fingerprint: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        let a = handle_binding(&req, src, &opts, &mut out).unwrap();
        assert!(!a.is_error);
        let resp = Message::parse(&out[..a.len]).unwrap();
        assert_eq!(resp.class(), Class::Success);
        assert_eq!(resp.transaction_id(), TransactionId([5; 12]));
        assert_eq!(resp.xor_mapped_address(), Ok(Some(src)));
        assert_eq!(resp.response_origin(), Ok(Some(origin)));
        assert_eq!(resp.other_address(), Ok(Some(other)));
        assert_eq!(resp.software(), Ok(Some("natter")));
        assert_eq!(resp.verify_fingerprint(), Ok(()));
    }

    #[test]
    fn unknown_required_attributes_get_a_420() {
        let req = request(|w| {
            w.add_raw(0x0777, b"x").add_raw(0x8777, b"y");
        });
        let mut out = Vec::new();
        let src: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let a = handle_binding(&req, src, &ResponseOptions::default(), &mut out).unwrap();
        assert!(a.is_error);
        let resp = Message::parse(&out).unwrap();
        assert_eq!(resp.class(), Class::Error);
        assert_eq!(resp.error_code().unwrap().unwrap().code, 420);
        let list: Vec<u16> = resp.unknown_attributes().unwrap().unwrap().collect();
        assert_eq!(list, [0x0777]);
    }

    #[test]
    fn change_request_is_reported_and_malformed_gets_400() {
        let req = request(|w| {
            w.add_change_request(ChangeRequest {
                change_ip: true,
                change_port: false,
            });
        });
        let src: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let mut out = Vec::new();
        let a = handle_binding(&req, src, &ResponseOptions::default(), &mut out).unwrap();
        assert!(a.change.change_ip && !a.change.change_port);

        let req = request(|w| {
            w.add_raw(attr::CHANGE_REQUEST, &[0, 0]);
        });
        let a = handle_binding(&req, src, &ResponseOptions::default(), &mut out).unwrap();
        assert!(a.is_error);
        let resp = Message::parse(&out).unwrap();
        assert_eq!(resp.error_code().unwrap().unwrap().code, 400);
        assert_eq!(resp.error_code().unwrap().unwrap().reason, "Bad Request");
    }

    #[test]
    fn challenge_carries_realm_nonce_and_algorithms() {
        let req = request(|_| {});
        let req = Message::parse(&req).unwrap();
        let mut out = Vec::new();
        let c = Challenge {
            realm: "example.org",
            nonce: "obMatJos2AAABabc",
            password_algorithms: &[PasswordAlgorithm::SHA256, PasswordAlgorithm::MD5],
        };
        answer_challenge(&req, 401, &c, &ResponseOptions::default(), &mut out).unwrap();
        let resp = Message::parse(&out).unwrap();
        assert_eq!(resp.class(), Class::Error);
        assert_eq!(
            resp.error_code().unwrap().unwrap(),
            crate::ErrorCode {
                code: 401,
                reason: "Unauthenticated"
            }
        );
        assert_eq!(resp.realm(), Ok(Some("example.org")));
        assert_eq!(resp.nonce(), Ok(Some("obMatJos2AAABabc")));
        let algos: Vec<_> = resp
            .password_algorithms()
            .unwrap()
            .unwrap()
            .map(|p| p.algorithm)
            .collect();
        assert_eq!(algos, [PasswordAlgorithm::SHA256, PasswordAlgorithm::MD5]);
        assert!(!resp.contains(attr::MESSAGE_INTEGRITY));
    }

    #[test]
    fn indications_and_garbage_are_dropped() {
        let mut buf = Vec::new();
        MessageWriter::new(
            &mut buf,
            Method::BINDING,
            Class::Indication,
            TransactionId([1; 12]),
        )
        .finish()
        .unwrap();
        let src: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            handle_binding(&buf, src, &ResponseOptions::default(), &mut out),
            None
        );
        assert_eq!(
            handle_binding(
                b"GET / HTTP/1.1",
                src,
                &ResponseOptions::default(),
                &mut out
            ),
            None
        );
    }
}
