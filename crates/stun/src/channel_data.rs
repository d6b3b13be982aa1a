//! TURN ChannelData messages (RFC 8656 section 12.4) and packet demultiplexing.
//!
//! ```text
//!  0                   1                   2                   3
//! |         Channel Number        |            Length             |
//! |                     Application Data (variable)               |
//! ```
//!
//! This is the relay hot path: parsing is two loads and a bounds check, and
//! encoding writes a 4-byte header in front of a payload the caller owns.

use crate::message::{peek_header, HEADER_LEN};

/// The smallest channel number a client may bind.
pub const CHANNEL_MIN: u16 = 0x4000;
/// The largest channel number a client may bind (RFC 8656 narrowed the range).
pub const CHANNEL_MAX: u16 = 0x4FFF;
/// The largest channel number RFC 5766 allowed. Deployed clients (coturn's own tools among them)
/// still bind numbers up to here, so the codec accepts the old range on the wire; new bindings
/// made by Natter stay within [`CHANNEL_MAX`].
pub const CHANNEL_MAX_RFC5766: u16 = 0x7FFF;

/// Why a buffer is not a ChannelData message.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelDataError {
    /// Fewer than 4 bytes, or fewer than the length field announces.
    #[error("ChannelData shorter than its length field")]
    Truncated,
    /// The channel number is outside 0x4000..=0x7FFF.
    #[error("channel number {0:#06x} outside 0x4000..=0x7FFF")]
    BadChannel(u16),
    /// The payload does not fit the 16-bit length field.
    #[error("payload longer than 65535 bytes")]
    TooLong,
}

/// A borrowed ChannelData message.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ChannelData<'a> {
    /// Channel number, 0x4000..=0x4FFF.
    pub channel: u16,
    /// The application data (without padding).
    pub payload: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Parses a ChannelData message. Bytes after the announced length
    /// (padding over TCP, or anything a UDP sender appended) are ignored, as
    /// RFC 8656 section 12.5 allows.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ChannelDataError> {
        let (head, rest) = buf
            .split_first_chunk::<4>()
            .ok_or(ChannelDataError::Truncated)?;
        let channel = u16::from_be_bytes([head[0], head[1]]);
        if !(CHANNEL_MIN..=CHANNEL_MAX_RFC5766).contains(&channel) {
            return Err(ChannelDataError::BadChannel(channel));
        }
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let payload = rest.get(..len).ok_or(ChannelDataError::Truncated)?;
        Ok(Self { channel, payload })
    }

    /// The 4-byte header for `channel` and a payload of `len` bytes, for
    /// callers that send header and payload as two slices (vectored I/O).
    pub fn header(channel: u16, len: usize) -> Result<[u8; 4], ChannelDataError> {
        if !(CHANNEL_MIN..=CHANNEL_MAX_RFC5766).contains(&channel) {
            return Err(ChannelDataError::BadChannel(channel));
        }
        let len = u16::try_from(len).map_err(|_| ChannelDataError::TooLong)?;
        let c = channel.to_be_bytes();
        let l = len.to_be_bytes();
        Ok([c[0], c[1], l[0], l[1]])
    }

    /// Appends the encoded message to `out` (cleared first). With
    /// `pad_to_4` (TCP and TLS transports, RFC 8656 section 12.5) the
    /// payload is zero-padded to a multiple of 4; over UDP pass `false`.
    pub fn encode(
        channel: u16,
        payload: &[u8],
        pad_to_4: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, ChannelDataError> {
        let header = Self::header(channel, payload.len())?;
        out.clear();
        out.extend_from_slice(&header);
        out.extend_from_slice(payload);
        if pad_to_4 {
            let pad = (4 - payload.len() % 4) % 4;
            out.extend_from_slice(&[0u8; 3][..pad]);
        }
        Ok(out.len())
    }

    /// Writes the encoded message into `out` and returns its length; the
    /// no-`Vec` variant for fixed send buffers.
    pub fn encode_into(
        channel: u16,
        payload: &[u8],
        pad_to_4: bool,
        out: &mut [u8],
    ) -> Result<usize, ChannelDataError> {
        let header = Self::header(channel, payload.len())?;
        let pad = if pad_to_4 {
            (4 - payload.len() % 4) % 4
        } else {
            0
        };
        let total = 4 + payload.len() + pad;
        let dst = out.get_mut(..total).ok_or(ChannelDataError::TooLong)?;
        let (h, rest) = dst.split_at_mut(4);
        h.copy_from_slice(&header);
        let (p, padding) = rest.split_at_mut(payload.len());
        p.copy_from_slice(payload);
        padding.fill(0);
        Ok(total)
    }
}

/// What the first bytes of a datagram on a TURN/ICE port say it is
/// (RFC 7983 first-byte ranges, narrowed by header checks).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum PacketKind {
    /// A STUN message (top bits zero and magic cookie present).
    Stun,
    /// A TURN ChannelData message (first byte 0x40..=0x7F: RFC 8656's range plus RFC 5766's).
    ChannelData,
    /// Anything else (DTLS, RTP, garbage).
    Other,
}

/// Classifies a datagram by its first bytes. Cheap enough for every packet.
pub fn classify(buf: &[u8]) -> PacketKind {
    match buf.first() {
        Some(0..=3) if peek_header(buf).is_ok() => PacketKind::Stun,
        Some(0x40..=0x7F) if buf.len() >= 4 => PacketKind::ChannelData,
        _ => PacketKind::Other,
    }
}

/// On a stream transport (TCP/TLS), how many bytes the frame at the start of
/// `buf` occupies: a STUN message (20 + length) or a ChannelData message
/// (4 + length padded to 4). `Ok(None)` means more bytes are needed to tell;
/// `Err` means the stream is not STUN/TURN framed and should be closed.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, ChannelDataError> {
    let Some(head) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    match head[0] {
        0..=3 => Ok(Some(HEADER_LEN + len)),
        0x40..=0x7F => Ok(Some(4 + ((len + 3) & !3))),
        _ => Err(ChannelDataError::BadChannel(u16::from_be_bytes([
            head[0], head[1],
        ]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_encode_round_trip() {
        let mut out = Vec::new();
        let n = ChannelData::encode(0x4001, b"hello", false, &mut out).unwrap();
        assert_eq!(n, 9);
        assert_eq!(out, [0x40, 0x01, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o']);
        let cd = ChannelData::parse(&out).unwrap();
        assert_eq!(cd.channel, 0x4001);
        assert_eq!(cd.payload, b"hello");

        ChannelData::encode(0x4001, b"hello", true, &mut out).unwrap();
        assert_eq!(out.len(), 12);
        assert_eq!(&out[9..], &[0, 0, 0]);
        assert_eq!(ChannelData::parse(&out).unwrap().payload, b"hello");
        assert_eq!(stream_frame_len(&out), Ok(Some(12)));

        let mut fixed = [0xffu8; 16];
        assert_eq!(
            ChannelData::encode_into(0x4FFF, b"hey", true, &mut fixed),
            Ok(8)
        );
        assert_eq!(&fixed[..8], &[0x4f, 0xff, 0, 3, b'h', b'e', b'y', 0]);
        assert_eq!(
            ChannelData::encode_into(0x4FFF, b"hey", true, &mut fixed[..7]),
            Err(ChannelDataError::TooLong)
        );
    }

    #[test]
    fn bad_channel_and_truncation_are_rejected() {
        assert_eq!(
            ChannelData::parse(&[0x80, 0x00, 0, 0]),
            Err(ChannelDataError::BadChannel(0x8000))
        );
        assert_eq!(
            ChannelData::parse(&[0x40, 0x00, 0, 5, 1, 2]),
            Err(ChannelDataError::Truncated)
        );
        assert_eq!(
            ChannelData::parse(&[0x40]),
            Err(ChannelDataError::Truncated)
        );
        assert_eq!(
            ChannelData::header(0x3FFF, 0),
            Err(ChannelDataError::BadChannel(0x3FFF))
        );
    }

    #[test]
    fn classify_tells_stun_from_channel_data() {
        let mut stun = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[0; 12]);
        assert_eq!(classify(&stun), PacketKind::Stun);
        assert_eq!(classify(&[0x40, 0, 0, 0]), PacketKind::ChannelData);
        assert_eq!(classify(&[0x16, 0xfe, 0xfd]), PacketKind::Other);
        assert_eq!(classify(&[]), PacketKind::Other);
        assert_eq!(stream_frame_len(&stun), Ok(Some(20)));
        assert_eq!(stream_frame_len(&stun[..3]), Ok(None));
        assert!(stream_frame_len(&[0x80, 0, 0, 0]).is_err());
    }
}
