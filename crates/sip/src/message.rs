//! The SIP message model: a start line, an ordered list of raw headers and a
//! body. Headers are kept as received (name spelling, order, unknown headers)
//! so a proxy forwards what it does not understand unchanged; typed views are
//! parsed on demand from the raw values.

use std::borrow::Cow;

use crate::addr::{Contact, NameAddr};
use crate::error::ParseError;
use crate::header::{Header, HeaderName};
use crate::method::Method;
use crate::syntax::{for_each_comma_part, is_callid, parse_u32, split_commas, trim_ws};
use crate::uri::Uri;
use crate::via::Via;

/// Request line or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP/2.0`
    Request {
        /// Method.
        method: Method<'a>,
        /// Request-URI as written (validated at parse time).
        uri: Cow<'a, str>,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase (may be empty).
        reason: Cow<'a, str>,
    },
}

/// `CSeq` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (< 2^31, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parse `1*DIGIT LWS Method`.
    pub fn parse(s: &'a str) -> Result<CSeq<'a>, ParseError> {
        let s = trim_ws(s);
        let (num, method) = s
            .split_once(crate::syntax::is_ws)
            .ok_or(ParseError::BadHeader("CSeq"))?;
        let seq = parse_u32(num, "CSeq").map_err(|_| ParseError::BadHeader("CSeq"))?;
        if seq >= 1 << 31 {
            return Err(ParseError::BadHeader("CSeq"));
        }
        let method = Method::parse(trim_ws(method)).map_err(|_| ParseError::BadHeader("CSeq"))?;
        Ok(CSeq { seq, method })
    }
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Start line.
    pub start: StartLine<'a>,
    /// Headers in wire order.
    pub headers: Vec<Header<'a>>,
    /// Body (exactly Content-Length bytes when that header is present).
    pub body: Cow<'a, [u8]>,
}

/// The one address of a From or To value `v` (a list of more is refused).
pub(crate) fn single_addr(v: &str, kind: HeaderName) -> Result<NameAddr<'_>, ParseError> {
    // Counted, not collected: From and To are read several times per request.
    let (mut first, mut count) = (None, 0usize);
    crate::syntax::for_each_comma_part(v, |part| {
        count += 1;
        first.get_or_insert(part);
        Ok::<(), ParseError>(())
    })
    .map_err(|e| e.in_header(kind.as_str()))?;
    match (first, count) {
        (Some(one), 1) => NameAddr::parse(one).map_err(|e| e.in_header(kind.as_str())),
        _ => Err(ParseError::BadHeader(kind.as_str())),
    }
}

impl<'a> Message<'a> {
    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// Request method, or `None` for responses.
    pub fn method(&self) -> Option<&Method<'a>> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// Status code, or `None` for requests.
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// Raw Request-URI.
    pub fn request_uri_str(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// Parsed Request-URI.
    pub fn request_uri(&self) -> Option<Result<Uri<'_>, ParseError>> {
        self.request_uri_str().map(Uri::parse)
    }

    /// Raw values of every header of `kind`, in order.
    pub fn header_values(&self, kind: HeaderName) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |h| h.kind == kind)
            .map(|h| h.value.as_ref())
    }

    /// First raw value of `kind`.
    pub fn header(&self, kind: HeaderName) -> Option<&str> {
        self.header_values(kind).next()
    }

    /// Raw value of an extension header by case-insensitive name.
    pub fn header_named(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
    }

    /// All elements of a list header, split at top-level commas.
    pub fn list(&self, kind: HeaderName) -> Result<Vec<&str>, ParseError> {
        let mut out = Vec::new();
        for v in self.header_values(kind) {
            crate::syntax::for_each_comma_part(v, |part| {
                out.push(part);
                Ok::<(), ParseError>(())
            })?;
        }
        Ok(out)
    }

    /// The value of a header that must appear exactly once.
    pub fn single(&self, kind: HeaderName) -> Result<&str, ParseError> {
        self.single_value(kind).map(|v| v.as_ref())
    }

    /// [`Message::single`] as stored: borrowed from the input unless it was unfolded, so
    /// validation can hand out views that outlive the message.
    pub(crate) fn single_value(&self, kind: HeaderName) -> Result<&Cow<'a, str>, ParseError> {
        let mut found = self.headers.iter().filter(|h| h.kind == kind);
        let first = found.next().ok_or(ParseError::Missing(kind.as_str()))?;
        if found.next().is_some() {
            return Err(ParseError::Duplicate(kind.as_str()));
        }
        Ok(&first.value)
    }

    /// Every Via value, topmost first.
    pub fn vias(&self) -> Result<Vec<Via<'_>>, ParseError> {
        self.list(HeaderName::Via)?
            .into_iter()
            .map(Via::parse)
            .collect()
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        let first = self
            .header(HeaderName::Via)
            .ok_or(ParseError::Missing("Via"))?;
        // The first element, with the rest of the list checked as `split_commas` does but
        // without collecting it: the transaction layer asks for the top Via of every message.
        let mut top = None;
        for_each_comma_part(first, |part| {
            top.get_or_insert(part);
            Ok::<(), ParseError>(())
        })?;
        Via::parse(top.ok_or(ParseError::Missing("Via"))?)
    }

    fn single_addr(&self, kind: HeaderName) -> Result<NameAddr<'_>, ParseError> {
        single_addr(self.single(kind)?, kind)
    }

    /// From header.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        self.single_addr(HeaderName::From)
    }

    /// To header.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.single_addr(HeaderName::To)
    }

    /// The From tag, if the message has one From with a tag. Cheaper than
    /// `from()?.tag()`: the URI is not parsed.
    pub fn from_tag(&self) -> Option<&str> {
        self.single(HeaderName::From)
            .ok()
            .and_then(NameAddr::tag_of)
    }

    /// The To tag, if the message has one To with a tag (see [`Message::from_tag`]).
    pub fn to_tag(&self) -> Option<&str> {
        self.single(HeaderName::To).ok().and_then(NameAddr::tag_of)
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let v = self.single(HeaderName::CallId)?;
        if is_callid(v) {
            Ok(v)
        } else {
            Err(ParseError::BadHeader("Call-ID"))
        }
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        CSeq::parse(self.single(HeaderName::CSeq)?)
    }

    /// Max-Forwards (0..=255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.header(HeaderName::MaxForwards) {
            None => Ok(None),
            Some(_) => {
                let v = parse_u32(self.single(HeaderName::MaxForwards)?, "Max-Forwards")
                    .map_err(|_| ParseError::BadHeader("Max-Forwards"))?;
                u8::try_from(v)
                    .map(Some)
                    .map_err(|_| ParseError::BadHeader("Max-Forwards"))
            }
        }
    }

    /// Contact values (`*` or addresses).
    pub fn contacts(&self) -> Result<Vec<Contact<'_>>, ParseError> {
        let mut out = Vec::new();
        for v in self.header_values(HeaderName::Contact) {
            crate::syntax::for_each_comma_part(v, |part| {
                out.push(if part == "*" {
                    Contact::Star
                } else {
                    Contact::Addr(NameAddr::parse(part)?)
                });
                Ok::<(), ParseError>(())
            })
            .map_err(|e| e.in_header("Contact"))?;
        }
        Ok(out)
    }

    /// Address list headers: Route, Record-Route, Path.
    pub fn addr_list(&self, kind: HeaderName) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.list(kind)
            .map_err(|e| e.in_header(kind.as_str()))?
            .into_iter()
            .map(|v| NameAddr::parse(v).map_err(|e| e.in_header(kind.as_str())))
            .collect()
    }

    /// A numeric single-valued header (`Expires`, `Min-Expires`, ...).
    pub fn u32_header(&self, kind: HeaderName) -> Result<Option<u32>, ParseError> {
        // One walk over the headers: absent, once, or a duplicate.
        let mut values = self.header_values(kind);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ParseError::Duplicate(kind.as_str()));
        }
        parse_u32(trim_ws(value), kind.as_str())
            .map(Some)
            .map_err(|_| ParseError::BadHeader(kind.as_str()))
    }

    /// Expires header.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.u32_header(HeaderName::Expires)
    }

    /// Content-Length header.
    pub fn content_length(&self) -> Result<Option<u32>, ParseError> {
        self.u32_header(HeaderName::ContentLength)
    }

    /// Append a header.
    pub fn push(&mut self, kind: HeaderName, value: impl Into<Cow<'a, str>>) {
        self.headers.push(Header::new(kind, value));
    }

    /// Insert a header before all existing headers of the same kind (or at the
    /// top), e.g. a new Via or Record-Route.
    pub fn push_front(&mut self, kind: HeaderName, value: impl Into<Cow<'a, str>>) {
        let at = self
            .headers
            .iter()
            .position(|h| h.kind == kind)
            .unwrap_or(0);
        self.headers.insert(at, Header::new(kind, value));
    }

    /// Remove every header of `kind`.
    pub fn remove(&mut self, kind: HeaderName) {
        self.headers.retain(|h| h.kind != kind);
    }

    /// Replace all headers of `kind` by one value, keeping the position of the
    /// first occurrence.
    pub fn set(&mut self, kind: HeaderName, value: impl Into<Cow<'a, str>>) {
        let at = self.headers.iter().position(|h| h.kind == kind);
        self.remove(kind);
        let h = Header::new(kind, value);
        match at {
            Some(i) if i <= self.headers.len() => self.headers.insert(i, h),
            _ => self.headers.push(h),
        }
    }

    /// Replace the body and its Content-Type/Content-Length.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
        if let Some(ct) = content_type {
            self.set(HeaderName::ContentType, ct.to_owned());
        }
        self.set(HeaderName::ContentLength, body.len().to_string());
        self.body = Cow::Owned(body);
    }

    /// Remove the topmost Via value (a proxy forwarding a response, §16.7).
    /// Returns false if there was no Via.
    pub fn pop_via(&mut self) -> bool {
        let Some(i) = self.headers.iter().position(|h| h.kind == HeaderName::Via) else {
            return false;
        };
        let rest = split_commas(&self.headers[i].value).ok().and_then(|parts| {
            if parts.len() > 1 {
                Some(parts[1..].join(", "))
            } else {
                None
            }
        });
        match rest {
            Some(r) => self.headers[i].value = Cow::Owned(r),
            None => {
                self.headers.remove(i);
            }
        }
        true
    }

    /// Detach from the input buffer.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            start: match self.start {
                StartLine::Request { method, uri } => StartLine::Request {
                    method: method.into_owned(),
                    uri: Cow::Owned(uri.into_owned()),
                },
                StartLine::Response { code, reason } => StartLine::Response {
                    code,
                    reason: Cow::Owned(reason.into_owned()),
                },
            },
            headers: self.headers.into_iter().map(Header::into_owned).collect(),
            body: Cow::Owned(self.body.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp, SIP/2.0/UDP ua.example.com;branch=z9hG4bKu\r\n\
v: SIP/2.0/TCP last.example.com;branch=z9hG4bKl\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:b@example.com>;tag=2\r\n\
Call-ID: c1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn pop_via_splits_combined_values() {
        let mut m = Message::parse(MSG).unwrap();
        assert_eq!(m.vias().unwrap().len(), 3);
        assert!(m.pop_via());
        let hosts: Vec<String> = m
            .vias()
            .unwrap()
            .iter()
            .map(|v| v.host.to_owned())
            .collect();
        assert_eq!(hosts, vec!["ua.example.com", "last.example.com"]);
        assert!(m.pop_via());
        assert!(m.pop_via());
        assert!(!m.pop_via());
        assert!(m.header(HeaderName::Via).is_none());
    }

    #[test]
    fn set_push_front_and_remove() {
        let mut m = Message::parse(MSG).unwrap();
        m.push_front(
            HeaderName::Via,
            "SIP/2.0/UDP new.example.com;branch=z9hG4bKn",
        );
        assert_eq!(m.top_via().unwrap().host, "new.example.com");
        assert_eq!(m.headers[0].name, "Via");
        m.set(HeaderName::CSeq, "2 INVITE");
        assert_eq!(m.cseq().unwrap().seq, 2);
        assert_eq!(m.header_values(HeaderName::CSeq).count(), 1);
        m.set_body(Some("text/plain"), b"hello".to_vec());
        assert_eq!(m.content_length().unwrap(), Some(5));
        assert_eq!(m.header(HeaderName::ContentType), Some("text/plain"));
        let bytes = m.to_bytes();
        let again = Message::parse(&bytes).unwrap();
        assert_eq!(&*again.body, b"hello");
        m.remove(HeaderName::Via);
        assert!(m.top_via().is_err());
        // The top Via is the first element of the first Via header; a broken list is an
        // error even past that element.
        m.push_front(
            HeaderName::Via,
            "SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b",
        );
        assert_eq!(m.top_via().map(|v| v.host), Ok("a.example"));
        m.remove(HeaderName::Via);
        m.push_front(HeaderName::Via, "SIP/2.0/UDP a.example;branch=z9hG4bK1, ,");
        assert!(m.top_via().is_err());
        m.remove(HeaderName::Via);
        m.push_front(
            HeaderName::Via,
            "SIP/2.0/UDP a.example;branch=z9hG4bK1, \"open",
        );
        assert!(m.top_via().is_err());
    }

    #[test]
    fn typed_errors_name_the_header() {
        let bad = String::from_utf8_lossy(MSG).replace("CSeq: 1 INVITE", "CSeq: x INVITE");
        assert_eq!(
            Message::parse(bad.as_bytes()).unwrap_err(),
            ParseError::BadHeader("CSeq")
        );
        let bad = String::from_utf8_lossy(MSG).replace("Call-ID: c1", "Call-ID: c 1");
        assert_eq!(
            Message::parse(bad.as_bytes()).unwrap_err(),
            ParseError::BadHeader("Call-ID")
        );
        let dup =
            String::from_utf8_lossy(MSG).replace("Call-ID: c1\r\n", "Call-ID: c1\r\ni: c2\r\n");
        assert_eq!(
            Message::parse(dup.as_bytes()).unwrap_err(),
            ParseError::Duplicate("Call-ID")
        );
    }
}
