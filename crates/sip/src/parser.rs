//! Zero-copy message parser (RFC 3261 §7, §25) with the checks a server needs
//! before it can act on a message: every mandatory header present once and
//! well-formed, start line strict, Content-Length consistent. Errors carry a
//! reason for the `400` answer; nothing here panics and allocation is bounded
//! by the input size and [`Limits`].

use std::borrow::Cow;

use crate::addr::{Contact, NameAddr};
use crate::error::ParseError;
use crate::header::{Header, HeaderName};
use crate::message::{single_addr, Message, StartLine};
use crate::method::Method;
use crate::syntax::{for_each_comma_part, is_token, is_ws, trim_ws};
use crate::uri::{Scheme, Uri};
use crate::via::Via;

/// Size limits applied while parsing. Beyond them a server answers (see
/// [`ParseError::status_code`]): `513` for a message over `max_message`,
/// `413` for a body over `max_body`, `400` for more than `max_headers`
/// fields or a field longer than `max_header_line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (headers + body) accepted: 65 535 bytes by default,
    /// the largest UDP payload.
    pub max_message: usize,
    /// Most header fields accepted: 256 by default (a real request has a
    /// few dozen; Via/Route chains of a long proxy path stay far below).
    pub max_headers: usize,
    /// Longest header field, name and folded value together: 8 192 bytes by
    /// default (a long Route set or an Identity header is ~2 KB).
    pub max_header_line: usize,
    /// Largest body (Content-Length): 32 768 bytes by default (SDP offers
    /// with many candidates are a few KB).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 256,
            max_header_line: 8_192,
            max_body: 32_768,
        }
    }
}

/// How the message arrived: datagrams may omit Content-Length (the body is
/// the rest of the datagram); stream messages must carry it (§18.3, §20.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per datagram; trailing octets beyond Content-Length are discarded.
    Datagram,
    /// Already framed by [`crate::framer::StreamFramer`]: Content-Length must match.
    Stream,
}

/// Skip CRLFs that may precede a start line (§7.5).
pub(crate) fn skip_leading_crlf(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
    b.get(n..).unwrap_or(&[])
}

/// Find the end of the header section: index of the first byte after the
/// empty line, and the index where the header lines end.
pub(crate) fn find_header_end(b: &[u8]) -> Option<(usize, usize)> {
    // memchr's vectorised scan from line end to line end: a byte-by-byte loop
    // here was 2-3 % of a registrar's CPU.
    for i in memchr::memchr_iter(b'\n', b) {
        // "\n\n" or "\n\r\n"
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'\n'), _) => return Some((i + 2, i)),
            (Some(b'\r'), Some(b'\n')) => return Some((i + 3, i)),
            _ => {}
        }
    }
    None
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (version, rest) = rest
            .split_once(' ')
            .ok_or(ParseError::StartLine("status line"))?;
        if version != "2.0" {
            return Err(ParseError::Version);
        }
        let code_str = rest.get(..3).ok_or(ParseError::StartLine("status code"))?;
        let after = rest.get(3..).unwrap_or("");
        if !code_str.bytes().all(|b| b.is_ascii_digit())
            || !(after.is_empty() || after.starts_with(' '))
        {
            return Err(ParseError::StartLine("status code"));
        }
        let code: u16 = code_str
            .parse()
            .map_err(|_| ParseError::StartLine("status code"))?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::StartLine("status code"));
        }
        let reason = after.strip_prefix(' ').unwrap_or("");
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::StartLine("reason phrase"));
        }
        return Ok(StartLine::Response {
            code,
            reason: Cow::Borrowed(reason),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces.
    let mut parts = line.split(' ');
    let (Some(m), Some(u), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine(
            "request line must be Method SP URI SP SIP/2.0",
        ));
    };
    let method = Method::parse(m).map_err(|_| ParseError::StartLine("method"))?;
    if !v.eq_ignore_ascii_case("SIP/2.0") {
        return if v.len() > 4 && v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
            Err(ParseError::Version)
        } else {
            Err(ParseError::StartLine("version"))
        };
    }
    let uri = Uri::parse(u)?;
    if uri.is_sip() && !uri.headers.is_empty() {
        // §19.1.5: headers are not allowed in a Request-URI (RFC 4475 escruri).
        return Err(ParseError::Uri("headers in Request-URI"));
    }
    Ok(StartLine::Request {
        method,
        uri: Cow::Borrowed(u),
    })
}

/// A request line split into its three parts without checking the URI; any
/// other line goes through the strict parser.
fn parse_start_line_lenient(line: &str) -> Result<StartLine<'_>, ParseError> {
    let mut parts = line.split(' ');
    if let (Some(m), Some(u), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    {
        if let (Ok(method), true) = (Method::parse(m), v.eq_ignore_ascii_case("SIP/2.0")) {
            return Ok(StartLine::Request {
                method,
                uri: Cow::Borrowed(u),
            });
        }
    }
    parse_start_line(line)
}

/// The well-formed fields of a header block within the default limits,
/// skipping the rest (for answering a message that failed to parse).
fn parse_headers_lenient(block: &str) -> Vec<Header<'_>> {
    let limits = Limits::default();
    let mut headers = Vec::new();
    for raw in block.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if headers.len() >= limits.max_headers {
            break;
        }
        if line.len() > limits.max_header_line || line.starts_with(is_ws) {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = crate::syntax::trim_ws_end(name);
        if is_token(name) {
            headers.push(Header {
                kind: HeaderName::from_wire(name),
                name: Cow::Borrowed(name),
                value: Cow::Borrowed(trim_ws(value)),
            });
        }
    }
    headers
}

/// Split the header block into fields, unfolding continuation lines.
fn parse_headers<'a>(block: &'a str, limits: &Limits) -> Result<Vec<Header<'a>>, ParseError> {
    // Typical messages have 8-20 headers: one allocation up front.
    let mut headers: Vec<Header<'a>> = Vec::with_capacity(16);
    let bytes = block.as_bytes();
    let mut pos = 0usize;
    // `pos` passes the block's length once the last line (possibly empty) is taken.
    while pos <= bytes.len() {
        // One memchr scan finds the line's end and any stray CR in it (a CR is only
        // allowed right before the LF, or as the block's last byte).
        let rest = bytes.get(pos..).unwrap_or_default();
        let (len, next) = match memchr::memchr2(b'\r', b'\n', rest) {
            None => (rest.len(), None),
            Some(k) if rest.get(k) == Some(&b'\n') => (k, Some(pos + k + 1)),
            Some(k) => match rest.get(k + 1) {
                Some(b'\n') => (k, Some(pos + k + 2)),
                None => (k, None),
                Some(_) => return Err(ParseError::HeaderLine),
            },
        };
        let line = block.get(pos..pos + len).ok_or(ParseError::HeaderLine)?;
        match next {
            Some(n) => pos = n,
            None => pos = bytes.len() + 1,
        }
        if line.len() > limits.max_header_line {
            return Err(ParseError::HeaderTooLong(limits.max_header_line));
        }
        if line.starts_with(is_ws) {
            // Continuation: fold into the previous field with a single SP.
            let last = headers.last_mut().ok_or(ParseError::HeaderLine)?;
            let piece = trim_ws(line);
            if last.name.len() + last.value.len() + piece.len() + 1 > limits.max_header_line {
                return Err(ParseError::HeaderTooLong(limits.max_header_line));
            }
            if !piece.is_empty() {
                let v = last.value.to_mut();
                if !v.is_empty() {
                    v.push(' ');
                }
                v.push_str(piece);
            }
            continue;
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders(limits.max_headers));
        }
        let colon = crate::syntax::find_byte(line, b':').ok_or(ParseError::HeaderLine)?;
        let (name, value) = (
            line.get(..colon).unwrap_or(""),
            line.get(colon + 1..).unwrap_or(""),
        );
        let name = crate::syntax::trim_ws_end(name);
        if !is_token(name) {
            return Err(ParseError::HeaderLine);
        }
        headers.push(Header {
            kind: HeaderName::from_wire(name),
            name: Cow::Borrowed(name),
            value: Cow::Borrowed(trim_ws(value)),
        });
    }
    Ok(headers)
}

/// Check a parsed message has what every SIP element relies on.
pub fn validate(msg: &Message<'_>) -> Result<(), ParseError> {
    validate_keeping_views(msg).map(|_| ())
}

/// The typed headers validation had to parse anyway, handed back so that nobody parses
/// them again: the transaction layer keys on the top Via, a registrar reads To and every
/// Contact. A field is `None` when its header had to be unfolded into a copy (the views
/// borrow the input) or, for `contacts`, when the message has no Contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Views<'a> {
    /// The first element of the first Via header.
    pub top_via: Option<Via<'a>>,
    /// The To header.
    pub to: Option<NameAddr<'a>>,
    /// Every Contact element, in order (`*` included).
    pub contacts: Option<Vec<Contact<'a>>>,
}

/// [`validate`], handing back the [`Views`] it parsed (parsing them once saved two of
/// three Via parses per request, and one To and one Contact parse per registration).
fn validate_keeping_views<'a>(msg: &Message<'a>) -> Result<Views<'a>, ParseError> {
    let mut any_via = false;
    let mut top = None;
    for (i, h) in msg
        .headers
        .iter()
        .filter(|h| h.kind == HeaderName::Via)
        .enumerate()
    {
        match (&h.value, i) {
            (Cow::Borrowed(value), 0) => for_each_comma_part(value, |part: &'a str| {
                let via = Via::parse(part)?;
                any_via = true;
                top.get_or_insert(via);
                Ok::<(), ParseError>(())
            }),
            (value, _) => for_each_comma_part(value, |part| {
                Via::parse(part)?;
                any_via = true;
                Ok::<(), ParseError>(())
            }),
        }
        .map_err(|e| e.in_header("Via"))?;
    }
    if !any_via {
        return Err(ParseError::Missing("Via"));
    }
    msg.from()?;
    let to = match msg.single_value(HeaderName::To)? {
        Cow::Borrowed(v) => Some(single_addr(v, HeaderName::To)?),
        Cow::Owned(v) => {
            single_addr(v, HeaderName::To)?;
            None
        }
    };
    msg.call_id()?;
    let cseq = msg.cseq()?;
    if let Some(m) = msg.method() {
        if *m != cseq.method {
            return Err(ParseError::CSeqMismatch);
        }
    }
    msg.max_forwards()?;
    msg.content_length()?;
    msg.expires()?;
    msg.u32_header(HeaderName::MinExpires)?;
    let mut contacts: Option<Vec<Contact<'a>>> = None;
    let mut contacts_unfolded = false;
    for h in msg.headers.iter().filter(|h| h.kind == HeaderName::Contact) {
        match &h.value {
            Cow::Borrowed(v) => for_each_comma_part(v, |part: &'a str| {
                let c = if part == "*" {
                    Contact::Star
                } else {
                    Contact::Addr(NameAddr::parse(part)?)
                };
                contacts.get_or_insert_with(Vec::new).push(c);
                Ok::<(), ParseError>(())
            }),
            Cow::Owned(v) => {
                contacts_unfolded = true;
                for_each_comma_part(v, |part| {
                    if part != "*" {
                        NameAddr::parse(part)?;
                    }
                    Ok::<(), ParseError>(())
                })
            }
        }
        .map_err(|e| e.in_header("Contact"))?;
    }
    if contacts_unfolded {
        contacts = None;
    }
    for kind in [HeaderName::Route, HeaderName::RecordRoute, HeaderName::Path] {
        for v in msg.header_values(kind) {
            for_each_comma_part(v, |part| {
                NameAddr::parse(part)?;
                Ok::<(), ParseError>(())
            })
            .map_err(|e| e.in_header(kind.as_str()))?;
        }
    }
    if let Some(date) = msg.header(HeaderName::Date) {
        // rfc1123-date always ends in "GMT" (RFC 4475 baddate).
        if !date.ends_with(" GMT") {
            return Err(ParseError::BadHeader("Date"));
        }
    }
    Ok(Views {
        top_via: top,
        to,
        contacts,
    })
}

impl<'a> Message<'a> {
    /// Parse one message from a UDP datagram with default limits.
    pub fn parse(input: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Self::parse_with(input, Framing::Datagram, &Limits::default())
    }

    /// Parse and validate one message.
    pub fn parse_with(
        input: &'a [u8],
        framing: Framing,
        limits: &Limits,
    ) -> Result<Message<'a>, ParseError> {
        Self::parse_with_top_via(input, framing, limits).map(|(msg, _)| msg)
    }

    /// [`Message::parse_with`], also returning the top Via that validation parsed (`None`
    /// when its value had to be unfolded into a copy): pass it on instead of parsing it again.
    pub fn parse_with_top_via(
        input: &'a [u8],
        framing: Framing,
        limits: &Limits,
    ) -> Result<(Message<'a>, Option<Via<'a>>), ParseError> {
        Self::parse_with_views(input, framing, limits).map(|(msg, views)| (msg, views.top_via))
    }

    /// [`Message::parse_with`], also returning the typed headers validation parsed.
    pub fn parse_with_views(
        input: &'a [u8],
        framing: Framing,
        limits: &Limits,
    ) -> Result<(Message<'a>, Views<'a>), ParseError> {
        if input.len() > limits.max_message {
            return Err(ParseError::TooLarge("message"));
        }
        let input = skip_leading_crlf(input);
        let (body_start, head_end) = find_header_end(input).ok_or(ParseError::Incomplete)?;
        let head = input.get(..head_end).ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
        let head = head.strip_suffix('\r').unwrap_or(head);
        let (start_line, header_block) = match head.split_once('\n') {
            Some((s, h)) => (s.strip_suffix('\r').unwrap_or(s), h),
            None => (head, ""),
        };
        let start = parse_start_line(start_line)?;
        let headers = if header_block.is_empty() {
            Vec::new()
        } else {
            parse_headers(header_block, limits)?
        };
        let rest = input.get(body_start..).unwrap_or(&[]);
        let mut msg = Message {
            start,
            headers,
            body: Cow::Borrowed(&[]),
        };
        let declared = msg.content_length()?;
        if declared.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limits.max_body)) {
            return Err(ParseError::BodyTooLarge(limits.max_body));
        }
        let body = match (declared, framing) {
            (Some(n), _) => {
                let n = usize::try_from(n).map_err(|_| ParseError::ContentLength)?;
                match framing {
                    Framing::Datagram => rest.get(..n).ok_or(ParseError::ContentLength)?,
                    Framing::Stream if rest.len() == n => rest,
                    Framing::Stream => return Err(ParseError::ContentLength),
                }
            }
            (None, Framing::Datagram) => rest,
            (None, Framing::Stream) => return Err(ParseError::Missing("Content-Length")),
        };
        msg.body = Cow::Borrowed(body);
        let views = validate_keeping_views(&msg)?;
        Ok((msg, views))
    }

    /// Parse without the mandatory-header validation: only framing, start line
    /// and header splitting. Useful to answer `400` with the right Via/Call-ID
    /// when [`Message::parse`] fails, so the Request-URI is not checked (a
    /// request refused for its URI still gets its answer), and header fields
    /// beyond the default limits are skipped rather than refused (the answer
    /// to a request refused for its size needs only the first few fields).
    pub fn parse_lenient(input: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let input = skip_leading_crlf(input);
        let (body_start, head_end) = find_header_end(input).ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(input.get(..head_end).unwrap_or(&[]))
            .map_err(|_| ParseError::NotUtf8)?;
        let head = head.strip_suffix('\r').unwrap_or(head);
        let (start_line, header_block) = match head.split_once('\n') {
            Some((s, h)) => (s.strip_suffix('\r').unwrap_or(s), h),
            None => (head, ""),
        };
        let start = parse_start_line_lenient(start_line)?;
        let headers = if header_block.is_empty() {
            Vec::new()
        } else {
            parse_headers_lenient(header_block)
        };
        Ok(Message {
            start,
            headers,
            body: Cow::Borrowed(input.get(body_start..).unwrap_or(&[])),
        })
    }
}

/// True if `uri` uses a scheme this stack routes (sip/sips/tel).
pub fn is_known_scheme(uri: &Uri<'_>) -> bool {
    !matches!(uri.scheme, Scheme::Other(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_end_at_lf_or_crlf_and_refuse_a_stray_cr() {
        let limits = Limits::default();
        let h = parse_headers("A: 1\r\nB: 2\nC:3\r", &limits).unwrap();
        let got: Vec<_> = h.iter().map(|h| (&*h.name, &*h.value)).collect();
        assert_eq!(got, vec![("A", "1"), ("B", "2"), ("C", "3")]);
        // A continuation as the last line folds into the field before it.
        let h = parse_headers("A: 1\r\n  more\r\n\tstill", &limits).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].value, "1 more still");
        assert!(parse_headers("A: 1\rB: 2", &limits).is_err());
        assert!(parse_headers("A: 1\r\r\nB: 2", &limits).is_err());
        // A trailing LF leaves an empty last line, which is not a header.
        assert!(parse_headers("A: 1\r\n", &limits).is_err());
        assert!(parse_headers("A 1", &limits).is_err());
    }

    #[test]
    fn to_and_contacts_come_back_as_validation_parsed_them() {
        let req = b"REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bKa\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: \"A\" <sip:a@natter.test>\r\nCall-ID: c\r\n\
Contact: <sip:a@192.0.2.1>;expires=60, sip:a@192.0.2.2\r\nContact: *\r\n\
CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
        let (msg, views) =
            Message::parse_with_views(req, Framing::Datagram, &Limits::default()).unwrap();
        assert_eq!(views.to, Some(msg.to().unwrap()));
        assert_eq!(views.contacts, Some(msg.contacts().unwrap()));
        assert_eq!(views.contacts.as_ref().map(Vec::len), Some(3));
        assert_eq!(views.top_via, Some(msg.top_via().unwrap()));
        // Folded To and Contact are unfolded into copies: nothing borrowed to hand back,
        // but they are still checked.
        let folded = b"REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bKa\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo:\r\n <sip:a@natter.test>\r\nCall-ID: c\r\n\
Contact: <sip:a@192.0.2.1>\r\nContact: <sip:a@192.0.2.2>,\r\n <sip:a@192.0.2.3>\r\n\
CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
        let (msg, views) =
            Message::parse_with_views(folded, Framing::Datagram, &Limits::default()).unwrap();
        assert_eq!((views.to, views.contacts), (None, None));
        assert_eq!(msg.contacts().unwrap().len(), 3);
        let no_contact = b"OPTIONS sip:x@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bKa\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: <sip:x@natter.test>\r\nCall-ID: c\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let (_, views) =
            Message::parse_with_views(no_contact, Framing::Datagram, &Limits::default()).unwrap();
        assert!(views.contacts.is_none());
        for bad in [
            "To: <sip:a@natter.test>\r\nTo: <sip:b@natter.test>",
            "To: <sip:a@natter.test>, <sip:b@natter.test>",
            "To: <sip:a@natter.test\r\nContact: <sip:a@192.0.2.1>",
            "To: <sip:a@natter.test>\r\nContact: <sip:a@192.0.2.1>, <sip:",
            "To: <sip:a@natter.test>\r\nContact: <sip:a@192.0.2.1>\r\nContact: ,",
        ] {
            let req = format!(
                "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bKa\r\n\
From: <sip:a@natter.test>;tag=1\r\n{bad}\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
Content-Length: 0\r\n\r\n"
            );
            assert!(
                Message::parse_with_views(req.as_bytes(), Framing::Datagram, &Limits::default())
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_top_via_comes_back_as_validation_parsed_it() {
        let req = b"OPTIONS sip:x@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example:5070;branch=z9hG4bKa, SIP/2.0/TCP b.example;branch=z9hG4bKb\r\n\
Via: SIP/2.0/UDP c.example;branch=z9hG4bKc\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: <sip:x@natter.test>\r\nCall-ID: c\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let (msg, via) =
            Message::parse_with_top_via(req, Framing::Datagram, &Limits::default()).unwrap();
        let via = via.unwrap();
        assert_eq!(
            (via.host, via.port, via.branch()),
            ("a.example", Some(5070), Some("z9hG4bKa"))
        );
        assert_eq!(msg.top_via().unwrap(), via);
        // A folded top Via is unfolded into a copy: nothing borrowed to hand back.
        let folded = b"OPTIONS sip:x@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example\r\n ;branch=z9hG4bKa\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: <sip:x@natter.test>\r\nCall-ID: c\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let (msg, via) =
            Message::parse_with_top_via(folded, Framing::Datagram, &Limits::default()).unwrap();
        assert!(via.is_none());
        assert_eq!(msg.top_via().unwrap().branch(), Some("z9hG4bKa"));
        // A broken Via anywhere is still refused.
        let broken = b"OPTIONS sip:x@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bKa, SIP/2.0/UDP\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: <sip:x@natter.test>\r\nCall-ID: c\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        assert!(
            Message::parse_with_top_via(broken, Framing::Datagram, &Limits::default()).is_err()
        );
    }

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

    #[test]
    fn parses_basic_invite() {
        let m = Message::parse(INVITE).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.request_uri_str(), Some("sip:bob@example.com"));
        assert_eq!(m.headers.len(), 9);
        assert_eq!(&*m.body, b"v=0\r");
        assert_eq!(m.cseq().unwrap().seq, 314159);
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        // zero-copy: single-line values borrow from the input
        assert!(matches!(m.headers[0].value, Cow::Borrowed(_)));
    }

    #[test]
    fn stream_framing_requires_exact_length() {
        let l = Limits::default();
        assert_eq!(
            Message::parse_with(INVITE, Framing::Stream, &l),
            Err(ParseError::ContentLength)
        );
        let trimmed = &INVITE[..INVITE.len() - 1];
        assert!(Message::parse_with(trimmed, Framing::Stream, &l).is_ok());
    }

    #[test]
    fn status_line() {
        assert!(matches!(
            parse_start_line("SIP/2.0 180 Ringing"),
            Ok(StartLine::Response { code: 180, .. })
        ));
        assert!(parse_start_line("SIP/2.0 4294967301 x").is_err());
        assert!(parse_start_line("SIP/2.0 099 x").is_err());
        assert_eq!(parse_start_line("SIP/3.0 200 OK"), Err(ParseError::Version));
        assert!(parse_start_line("INVITE  sip:a@b SIP/2.0").is_err());
        assert!(parse_start_line("INVITE sip:a@b SIP/2.0 ").is_err());
    }

    fn with_extra(extra: &str) -> Vec<u8> {
        let text = std::str::from_utf8(INVITE).unwrap();
        text.replacen(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\n{extra}"),
            1,
        )
        .into_bytes()
    }

    #[test]
    fn one_huge_header_is_refused_with_400() {
        let msg = with_extra(&format!("X-Big: {}\r\n", "a".repeat(60_000)));
        let e = Message::parse(&msg).unwrap_err();
        assert_eq!(e, ParseError::HeaderTooLong(8_192));
        assert_eq!(e.status_code(), 400);
        assert_eq!(
            e.reason_phrase(),
            "Bad Request (header line too long (limit 8192 bytes))"
        );
        // Folding does not get around the limit.
        let folded = with_extra(&format!("X-Big: a\r\n{}", " bbbbbbbbbb\r\n".repeat(1_000)));
        assert_eq!(
            Message::parse(&folded),
            Err(ParseError::HeaderTooLong(8_192))
        );
        // The answer can still be built from the lenient parse.
        let m = Message::parse_lenient(&msg).unwrap();
        assert!(m.top_via().is_ok() && m.call_id().is_ok());
    }

    #[test]
    fn three_thousand_headers_are_refused_with_400() {
        let msg = with_extra(&"X-H: v\r\n".repeat(3_000));
        let e = Message::parse(&msg).unwrap_err();
        assert_eq!(e, ParseError::TooManyHeaders(256));
        assert_eq!(e.status_code(), 400);
        assert!(Message::parse_lenient(&msg).unwrap().top_via().is_ok());
    }

    #[test]
    fn sizes_map_to_413_and_513() {
        let small = Limits {
            max_body: 3,
            ..Limits::default()
        };
        let e = Message::parse_with(INVITE, Framing::Datagram, &small).unwrap_err();
        assert_eq!(e, ParseError::BodyTooLarge(3));
        assert_eq!(
            e.reason_phrase(),
            "Request Entity Too Large (body too large (limit 3 bytes))"
        );
        let tiny = Limits {
            max_message: 100,
            ..Limits::default()
        };
        let e = Message::parse_with(INVITE, Framing::Datagram, &tiny).unwrap_err();
        assert_eq!(e.status_code(), 513);
        assert!(e.reason_phrase().starts_with("Message Too Large ("));
    }

    #[test]
    fn lenient_parse_keeps_a_request_uri_with_headers() {
        for uri in ["sip:bob@x?subject=hi", "sip:bob@x%3Fa=b"] {
            let text = std::str::from_utf8(INVITE)
                .unwrap()
                .replacen("sip:bob@example.com", uri, 1);
            assert!(Message::parse(text.as_bytes()).is_err(), "{uri}");
            let m = Message::parse_lenient(text.as_bytes()).unwrap();
            assert_eq!(m.request_uri_str(), Some(uri));
            assert_eq!(m.method(), Some(&Method::Invite));
        }
    }
}
