//! Serialisation. Headers are written in stored order with their stored
//! names; values are single-line (folding was removed by the parser), so
//! `parse(write(m)) == m` for every parsed message.

use crate::message::{Message, StartLine};

impl Message<'_> {
    /// Append the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                push_u16(out, *code);
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self.body.len()
                + self
                    .headers
                    .iter()
                    .map(|h| h.name.len() + h.value.len() + 4)
                    .sum::<usize>(),
        );
        self.write_to(&mut out);
        out
    }
}

/// Append `n` in decimal (status codes: no `String` per response).
pub(crate) fn push_u16(out: &mut Vec<u8>, n: u16) {
    let (buf, start) = crate::syntax::decimal_digits(u32::from(n));
    out.extend_from_slice(buf.get(start..).unwrap_or(&[]));
}
