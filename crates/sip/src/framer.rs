//! Content-Length framing for stream transports (TCP/TLS, RFC 3261 §18.3).
//!
//! Bytes go in as they arrive; complete messages come out. The buffer never
//! grows beyond the configured maximum message size plus one read, and any
//! framing error is final (the connection must be closed: there is no way to
//! find the next message boundary).

use crate::error::ParseError;
use crate::header::HeaderName;
use crate::parser::{find_header_end, Limits};
use crate::syntax::parse_u32;

/// What the framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (headers + exactly Content-Length body bytes).
    Message(Vec<u8>),
    /// A CRLFCRLF keep-alive ping (RFC 5626 §3.5.1); answer with CRLF.
    Ping,
}

/// Incremental stream framer.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: Limits,
    failed: bool,
}

impl StreamFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> StreamFramer {
        StreamFramer {
            buf: Vec::new(),
            limits,
            failed: false,
        }
    }

    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The header section of the message being framed, once its end has
    /// arrived (also after a framing error): enough to answer a request that
    /// is refused for its size before the connection is closed.
    pub fn head(&self) -> Option<&[u8]> {
        let start = self
            .buf
            .iter()
            .take_while(|&&c| c == b'\r' || c == b'\n')
            .count();
        let rest = self.buf.get(start..)?;
        let (body_start, _) = find_header_end(rest)?;
        rest.get(..body_start)
    }

    /// Feed received bytes.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ParseError> {
        if self.failed {
            return Err(ParseError::TooLarge("stream closed after framing error"));
        }
        if self.buf.len() + data.len() > self.limits.max_message.saturating_mul(2) {
            self.failed = true;
            return Err(ParseError::TooLarge("stream buffer"));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Take the next complete frame, if any.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.failed {
            return Err(ParseError::TooLarge("stream closed after framing error"));
        }
        let lead = self
            .buf
            .iter()
            .take_while(|&&c| c == b'\r' || c == b'\n')
            .count();
        if lead > 0 {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.drain(..4);
                return Ok(Some(Frame::Ping));
            }
            if lead == self.buf.len() && lead < 4 && self.buf.starts_with(b"\r\n") && lead == 2 {
                // Could be the first half of a ping or a pong; wait for more.
                return Ok(None);
            }
            self.buf.drain(..lead);
        }
        let Some((body_start, head_end)) = find_header_end(&self.buf) else {
            if self.buf.len() > self.limits.max_message {
                self.failed = true;
                return Err(ParseError::TooLarge("header section"));
            }
            return Ok(None);
        };
        let head = self.buf.get(..head_end).unwrap_or(&[]);
        let len = match content_length(head) {
            Ok(Some(n)) => n,
            Ok(None) => {
                self.failed = true;
                return Err(ParseError::Missing("Content-Length"));
            }
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        };
        if len > self.limits.max_body {
            self.failed = true;
            return Err(ParseError::BodyTooLarge(self.limits.max_body));
        }
        let total = body_start.saturating_add(len);
        if total > self.limits.max_message {
            self.failed = true;
            return Err(ParseError::TooLarge("message"));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(msg)))
    }
}

/// Find Content-Length (or `l`) in a raw header section without a full parse.
fn content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    let head = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    let mut found = None;
    for line in head.split('\n').skip(1) {
        let line = line.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if HeaderName::from_wire(name.trim_end()) == HeaderName::ContentLength {
            if found.is_some() {
                return Err(ParseError::Duplicate("Content-Length"));
            }
            let n = parse_u32(value.trim(), "Content-Length")
                .map_err(|_| ParseError::BadHeader("Content-Length"))?;
            found = Some(usize::try_from(n).map_err(|_| ParseError::ContentLength)?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 3\r\n\r\nabc";

    #[test]
    fn frames_split_and_joined_input() {
        let mut f = StreamFramer::new(Limits::default());
        let mut two = MSG.to_vec();
        two.extend_from_slice(b"\r\n\r\n");
        two.extend_from_slice(MSG);
        for chunk in two.chunks(7) {
            f.push(chunk).unwrap();
        }
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(MSG.to_vec())));
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(MSG.to_vec())));
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn partial_body_waits() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(&MSG[..MSG.len() - 1]).unwrap();
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(&MSG[MSG.len() - 1..]).unwrap();
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(_))));
    }

    #[test]
    fn limits_and_missing_length() {
        let mut f = StreamFramer::new(Limits {
            max_message: 40,
            max_headers: 10,
            ..Limits::default()
        });
        f.push(MSG).unwrap();
        assert!(f.next_frame().is_err());
        assert!(f.next_frame().is_err(), "errors are sticky");
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")
            .unwrap();
        assert_eq!(f.next_frame(), Err(ParseError::Missing("Content-Length")));
        let mut f = StreamFramer::new(Limits {
            max_message: 100,
            max_headers: 10,
            ..Limits::default()
        });
        assert!(f.push(&[b'a'; 150]).is_ok());
        assert!(f.next_frame().is_err(), "no header end within the limit");
    }

    #[test]
    fn body_over_its_limit_is_413_and_head_stays_readable() {
        let mut f = StreamFramer::new(Limits {
            max_body: 2,
            ..Limits::default()
        });
        f.push(MSG).unwrap();
        let e = f.next_frame().unwrap_err();
        assert_eq!(e, ParseError::BodyTooLarge(2));
        assert_eq!(e.status_code(), 413);
        assert_eq!(f.head(), Some(&MSG[..MSG.len() - 3]));
    }
}
