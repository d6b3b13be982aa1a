//! RTP packets (RFC 3550 §5.1) with RFC 8285 header extensions.

use crate::bytes::{patch_u16, Reader};
use crate::error::RtpError;

/// "Defined by profile" value announcing RFC 8285 one-byte extension elements.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// "Defined by profile" value (upper 12 bits) announcing RFC 8285 two-byte elements; the
/// low 4 bits are application bits and are ignored.
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

const FIXED_HEADER_LEN: usize = 12;

/// A validated, zero-copy view of an RTP packet.
///
/// `parse` checks every length up front (CSRC list, extension block, padding), so the
/// accessors are infallible and cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    header_len: usize,
    payload_end: usize,
    /// Extension profile and the byte range of its data inside `buf`.
    ext: Option<(u16, usize, usize)>,
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let mut r = Reader::new(buf);
        let fixed = r.take(FIXED_HEADER_LEN).ok_or(RtpError::TooShort)?;
        let b0 = fixed.first().copied().unwrap_or(0);
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_count = usize::from(b0 & 0x0f);
        r.take(4 * csrc_count).ok_or(RtpError::CsrcOverrun)?;
        let mut ext = None;
        if b0 & 0x10 != 0 {
            let profile = r.u16().ok_or(RtpError::ExtensionOverrun)?;
            let words = r.u16().ok_or(RtpError::ExtensionOverrun)?;
            let start = buf.len() - r.remaining();
            r.take(4 * usize::from(words))
                .ok_or(RtpError::ExtensionOverrun)?;
            ext = Some((profile, start, buf.len() - r.remaining()));
        }
        let header_len = buf.len() - r.remaining();
        let mut payload_end = buf.len();
        if b0 & 0x20 != 0 {
            // RFC 3550 §5.1: the last octet counts the padding, itself included, so zero is
            // as invalid as a count reaching into the header.
            let pad = buf.last().copied().unwrap_or(0);
            if pad == 0 || usize::from(pad) > r.remaining() {
                return Err(RtpError::BadPadding(pad));
            }
            payload_end -= usize::from(pad);
        }
        Ok(Self {
            buf,
            header_len,
            payload_end,
            ext,
        })
    }

    fn byte(&self, at: usize) -> u8 {
        self.buf.get(at).copied().unwrap_or(0)
    }

    fn word(&self, at: usize) -> u32 {
        match self.buf.get(at..at + 4) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        }
    }

    /// The whole packet as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.byte(1) & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.byte(1) & 0x7f
    }

    /// The 16-bit sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.byte(2), self.byte(3)])
    }

    /// The 32-bit media timestamp.
    pub fn timestamp(&self) -> u32 {
        self.word(4)
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> u32 {
        self.word(8)
    }

    /// Whether the padding bit was set.
    pub fn has_padding(&self) -> bool {
        self.byte(0) & 0x20 != 0
    }

    /// Number of padding bytes removed from the end (0 without the padding bit).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let n = usize::from(self.byte(0) & 0x0f);
        self.buf
            .get(FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * n)
            .unwrap_or(&[])
            .chunks_exact(4)
            .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
    }

    /// The raw header extension: its 16-bit profile value and data (without the 4-byte
    /// extension header).
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        let (profile, start, end) = self.ext?;
        Some((profile, self.buf.get(start..end)?))
    }

    /// RFC 8285 extension elements as `(id, data)`; empty when there is no extension or
    /// its profile is neither the one-byte nor the two-byte form.
    pub fn extensions(&self) -> Extensions<'a> {
        match self.extension() {
            Some((ONE_BYTE_PROFILE, data)) => Extensions {
                data,
                two_byte: false,
            },
            Some((p, data)) if p & 0xfff0 == TWO_BYTE_PROFILE => Extensions {
                data,
                two_byte: true,
            },
            _ => Extensions {
                data: &[],
                two_byte: false,
            },
        }
    }

    /// Length of the header: fixed part, CSRCs and extension block.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The payload with padding removed.
    pub fn payload(&self) -> &'a [u8] {
        self.buf
            .get(self.header_len..self.payload_end)
            .unwrap_or(&[])
    }

    /// An owned copy of the header (RFC 8285 elements only; other extension profiles are
    /// dropped because [`RtpHeader`] cannot carry them).
    pub fn to_header(&self) -> RtpHeader {
        RtpHeader {
            marker: self.marker(),
            payload_type: self.payload_type(),
            sequence: self.sequence(),
            timestamp: self.timestamp(),
            ssrc: self.ssrc(),
            csrcs: self.csrcs().collect(),
            extensions: self.extensions().map(|(id, d)| (id, d.to_vec())).collect(),
        }
    }
}

/// Iterator over RFC 8285 extension elements. Stops at the first malformed element (or a
/// one-byte id 15, which RFC 8285 §4.2 says ends processing) rather than failing the whole
/// packet, because extensions are advisory and the payload is still usable.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    data: &'a [u8],
    two_byte: bool,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut r = Reader::new(self.data);
            let first = r.u8()?;
            if first == 0 {
                // Padding byte between or after elements.
                self.data = r.rest();
                continue;
            }
            let (id, len) = if self.two_byte {
                let Some(len) = r.u8() else {
                    self.data = &[];
                    return None;
                };
                (first, usize::from(len))
            } else {
                let id = first >> 4;
                if id == 15 || id == 0 {
                    self.data = &[];
                    return None;
                }
                (id, usize::from(first & 0x0f) + 1)
            };
            let Some(value) = r.take(len) else {
                self.data = &[];
                return None;
            };
            self.data = r.rest();
            return Some((id, value));
        }
    }
}

/// An owned RTP header, for building packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: Vec<u32>,
    /// RFC 8285 elements `(id, data)`, written in the one-byte form when every element
    /// allows it (id 1..=14, 1..=16 bytes), otherwise in the two-byte form.
    pub extensions: Vec<(u8, Vec<u8>)>,
}

impl RtpHeader {
    /// Appends header and payload to `out`.
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtpError> {
        self.write_inner(payload, 0, out)
    }

    /// Appends header, payload and `padding` bytes of RTP padding (at least 1; the last
    /// byte holds the count), e.g. to hide payload sizes or reach a block size.
    pub fn write_padded(
        &self,
        payload: &[u8],
        padding: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), RtpError> {
        if padding == 0 {
            return Err(RtpError::ZeroPadding);
        }
        self.write_inner(payload, padding, out)
    }

    fn write_inner(&self, payload: &[u8], padding: u8, out: &mut Vec<u8>) -> Result<(), RtpError> {
        if self.csrcs.len() > 15 {
            return Err(RtpError::TooManyCsrcs(self.csrcs.len()));
        }
        if self.payload_type > 127 {
            return Err(RtpError::BadPayloadType(self.payload_type));
        }
        let one_byte = self
            .extensions
            .iter()
            .all(|(id, d)| (1..=14).contains(id) && (1..=16).contains(&d.len()));
        if !one_byte {
            if let Some((id, d)) = self
                .extensions
                .iter()
                .find(|(id, d)| *id == 0 || d.len() > 255)
            {
                return Err(RtpError::BadExtension {
                    id: *id,
                    len: d.len(),
                });
            }
        }
        let has_ext = !self.extensions.is_empty();
        let mut b0 = 0x80 | self.csrcs.len() as u8;
        if padding > 0 {
            b0 |= 0x20;
        }
        if has_ext {
            b0 |= 0x10;
        }
        let start = out.len();
        out.push(b0);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrcs {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if has_ext {
            let profile = if one_byte {
                ONE_BYTE_PROFILE
            } else {
                TWO_BYTE_PROFILE
            };
            out.extend_from_slice(&profile.to_be_bytes());
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            let data_start = out.len();
            for (id, d) in &self.extensions {
                if one_byte {
                    out.push(id << 4 | (d.len() as u8 - 1));
                } else {
                    out.push(*id);
                    out.push(d.len() as u8);
                }
                out.extend_from_slice(d);
            }
            while (out.len() - data_start) % 4 != 0 {
                out.push(0);
            }
            let words = (out.len() - data_start) / 4;
            let Ok(words) = u16::try_from(words) else {
                out.truncate(start);
                return Err(RtpError::ExtensionTooLong);
            };
            patch_u16(out, len_at, words);
        }
        out.extend_from_slice(payload);
        if padding > 0 {
            out.extend(std::iter::repeat(0).take(usize::from(padding) - 1));
            out.push(padding);
        }
        Ok(())
    }
}
