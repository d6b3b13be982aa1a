//! Constructing messages: new requests, and responses derived from a request
//! as RFC 3261 §8.2.6.2 prescribes (Via, From, To, Call-ID, CSeq copied; a To
//! tag added for non-100 responses).

use std::borrow::Cow;

use crate::addr::NameAddr;
use crate::header::{Header, HeaderName};
use crate::message::{Message, StartLine};
use crate::method::Method;

/// Default reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match code / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Whether a To value keeps its own tag in a response: it has one, or it
/// cannot be read (a To we cannot read is copied as it is, never given a tag).
fn to_has_tag(value: &str) -> bool {
    NameAddr::params_part(value)
        .map(|p| crate::syntax::find_header_param(p, "tag"))
        .map_or(true, |p| p.map_or(true, |p| p.is_some()))
}

/// Whether [`Message::response_to`] copies headers of `kind` into a response
/// with status `code` (To aside, which it copies with a tag added).
pub(crate) fn copied_kind(kind: HeaderName, code: u16) -> bool {
    matches!(
        kind,
        HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq
    ) || ((101..300).contains(&code) && kind == HeaderName::RecordRoute)
}

/// Write what [`Message::response_to`]`(req, code, Some(reason), to_tag)`
/// serializes to, up to and without its `Content-Length: 0` line: the status
/// line and the headers copied from `req`. Straight into `out`, without
/// building the response (held responses are rebuilt with it, see
/// `transaction::held`).
pub(crate) fn write_response_head(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"SIP/2.0 ");
    crate::writer::push_u16(out, code);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in &req.headers {
        if copied_kind(h.kind, code) {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        } else if h.kind == HeaderName::To {
            out.extend_from_slice(b"To: ");
            out.extend_from_slice(h.value.as_bytes());
            if let (Some(tag), false) = (to_tag, to_has_tag(&h.value)) {
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(tag.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl<'a> Message<'a> {
    /// A request with no headers yet.
    pub fn request(method: Method<'a>, uri: impl Into<Cow<'a, str>>) -> Message<'a> {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: Cow::Borrowed(&[]),
        }
    }

    /// A response with no headers yet.
    pub fn response(code: u16, reason: impl Into<Cow<'a, str>>) -> Message<'a> {
        Message {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            headers: Vec::new(),
            body: Cow::Borrowed(&[]),
        }
    }

    /// The wire form of [`Message::response_to`]`(req, code, None, to_tag)` with the `extra`
    /// headers added before its `Content-Length: 0`, written straight into `out` without
    /// building the response: a registrar's stateless 401 to every first REGISTER of a
    /// registration needs no `Message` of its own.
    pub fn write_response_to(
        req: &Message<'_>,
        code: u16,
        to_tag: Option<&str>,
        extra: &[(HeaderName, &str)],
        out: &mut Vec<u8>,
    ) {
        write_response_head(req, code, reason_phrase(code), to_tag, out);
        for (kind, value) in extra {
            out.extend_from_slice(kind.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    }

    /// A response to `req` (§8.2.6): copies Via, From, To, Call-ID, CSeq (and
    /// Record-Route for dialog-creating answers, §12.1.1), adds `to_tag` when
    /// the To header has none, ends with `Content-Length: 0`.
    pub fn response_to(
        req: &Message<'_>,
        code: u16,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Message<'static> {
        Message::response_borrowing(req, code, reason, to_tag).into_owned()
    }

    /// [`Message::response_to`], borrowing the copied header values from `req` instead of
    /// copying them: for a response that is written out at once (a registrar's 200 OK),
    /// which then costs no allocation per copied header.
    pub fn response_borrowing<'r>(
        req: &'r Message<'_>,
        code: u16,
        reason: Option<&'r str>,
        to_tag: Option<&str>,
    ) -> Message<'r> {
        let mut resp =
            Message::response(code, Cow::Borrowed(reason.unwrap_or(reason_phrase(code))));
        resp.headers.reserve(req.headers.len().min(12));
        for h in &req.headers {
            if copied_kind(h.kind, code) {
                resp.headers.push(Header {
                    kind: h.kind,
                    name: Cow::Borrowed(&h.name),
                    value: Cow::Borrowed(&h.value),
                });
            } else if h.kind == HeaderName::To {
                let value = match (to_tag, to_has_tag(&h.value)) {
                    (Some(tag), false) => {
                        let mut value = String::with_capacity(h.value.len() + 5 + tag.len());
                        value.push_str(&h.value);
                        value.push_str(";tag=");
                        value.push_str(tag);
                        Cow::Owned(value)
                    }
                    _ => Cow::Borrowed(&*h.value),
                };
                resp.headers.push(Header {
                    kind: HeaderName::To,
                    name: Cow::Borrowed("To"),
                    value,
                });
            }
        }
        resp.push(HeaderName::ContentLength, "0");
        resp
    }
}

#[cfg(test)]
mod tests {
    use crate::header::HeaderName;
    use crate::message::Message;

    #[test]
    fn a_borrowing_response_is_the_owned_one() {
        for to in ["To: <sip:u@natter.test>", "To: <sip:u@natter.test>;tag=x9"] {
            let req = format!(
                "INVITE sip:u@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
Record-Route: <sip:p.example;lr>\r\n\
f: <sip:a@natter.test>;tag=abc\r\n\
{to}\r\n\
Call-ID: c1@192.0.2.1\r\n\
CSeq: 7 INVITE\r\n\
Content-Length: 0\r\n\r\n"
            );
            let req = Message::parse(req.as_bytes()).unwrap();
            for (code, reason) in [(180, None), (200, Some("Fine")), (486, None)] {
                let owned = Message::response_to(&req, code, reason, Some("t1"));
                let borrowed = Message::response_borrowing(&req, code, reason, Some("t1"));
                assert_eq!(borrowed.to_bytes(), owned.to_bytes(), "{to} {code}");
                assert_eq!(borrowed.clone().into_owned(), owned);
            }
        }
    }

    #[test]
    fn write_response_to_writes_what_response_to_serializes() {
        let req = b"REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=5060;received=192.0.2.9\r\n\
Max-Forwards: 70\r\n\
From: <sip:u@natter.test>;tag=abc\r\n\
To: \"U\" <sip:u@natter.test>\r\n\
Call-ID: c1@192.0.2.1\r\n\
CSeq: 7 REGISTER\r\n\
Contact: <sip:u@192.0.2.1:5060>\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";
        let req = Message::parse(req).unwrap();
        let extra = [
            (
                HeaderName::WwwAuthenticate,
                "Digest realm=\"r\", nonce=\"n\"",
            ),
            (
                HeaderName::WwwAuthenticate,
                "Digest realm=\"r\", nonce=\"m\"",
            ),
        ];
        let mut built = Message::response_to(&req, 401, None, Some("t1"));
        built.remove(HeaderName::ContentLength);
        for (k, v) in extra {
            built.push(k, v);
        }
        built.push(HeaderName::ContentLength, "0");
        let mut out = Vec::new();
        Message::write_response_to(&req, 401, Some("t1"), &extra, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&built.to_bytes())
        );
    }
}
