//! The Data Channel Establishment Protocol (RFC 8832): DATA_CHANNEL_OPEN and
//! DATA_CHANNEL_ACK, carried on the channel's own SCTP stream with PPID 50.
//!
//! Our own parser rather than sctp-proto's: it sees bytes from the network, so it must
//! refuse every malformed message with an error and never panic.

use crate::error::DcepError;

/// DATA_CHANNEL_ACK message type (RFC 8832 §8.2.1).
pub const MSG_ACK: u8 = 0x02;
/// DATA_CHANNEL_OPEN message type.
pub const MSG_OPEN: u8 = 0x03;

/// SCTP payload protocol identifiers of WebRTC (RFC 8831 §8).
pub mod ppid {
    /// DCEP.
    pub const DCEP: u32 = 50;
    /// UTF-8 text.
    pub const STRING: u32 = 51;
    /// Binary data.
    pub const BINARY: u32 = 53;
    /// Empty UTF-8 text (SCTP cannot carry zero-length user messages; one 0 byte is sent).
    pub const STRING_EMPTY: u32 = 56;
    /// Empty binary data.
    pub const BINARY_EMPTY: u32 = 57;
}

/// How a channel delivers messages (the channel type and reliability parameter of
/// DATA_CHANNEL_OPEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reliability {
    /// Retransmit until acknowledged.
    Reliable,
    /// Give up after this many retransmissions (`maxRetransmits`).
    MaxRetransmits(u32),
    /// Give up after this many milliseconds (`maxPacketLifeTime`).
    MaxLifetimeMs(u32),
}

/// A channel's delivery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelType {
    /// Messages are delivered in the order they were sent.
    pub ordered: bool,
    /// Retransmission policy.
    pub reliability: Reliability,
}

impl ChannelType {
    /// Reliable and ordered: the W3C default.
    pub const RELIABLE: ChannelType = ChannelType {
        ordered: true,
        reliability: Reliability::Reliable,
    };

    /// The channel type byte and reliability parameter (RFC 8832 §5.1).
    pub fn to_wire(self) -> (u8, u32) {
        let (kind, param) = match self.reliability {
            Reliability::Reliable => (0x00, 0),
            Reliability::MaxRetransmits(n) => (0x01, n),
            Reliability::MaxLifetimeMs(ms) => (0x02, ms),
        };
        (if self.ordered { kind } else { kind | 0x80 }, param)
    }

    /// Reads the channel type byte and reliability parameter.
    pub fn from_wire(kind: u8, param: u32) -> Result<Self, DcepError> {
        let reliability = match kind & 0x7f {
            0x00 => Reliability::Reliable,
            0x01 => Reliability::MaxRetransmits(param),
            0x02 => Reliability::MaxLifetimeMs(param),
            _ => return Err(DcepError::ChannelType(kind)),
        };
        Ok(ChannelType {
            ordered: kind & 0x80 == 0,
            reliability,
        })
    }
}

/// DATA_CHANNEL_OPEN (RFC 8832 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Ordering and reliability.
    pub channel_type: ChannelType,
    /// Priority (RFC 8832 §5.1; W3C "below normal" is 128, "normal" 256).
    pub priority: u16,
    /// The channel's label.
    pub label: String,
    /// Sub-protocol name.
    pub protocol: String,
}

/// A DCEP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Opens a channel on the stream it arrives on.
    Open(Open),
    /// Acknowledges our open.
    Ack,
}

/// Fixed part of DATA_CHANNEL_OPEN.
const OPEN_HEADER: usize = 12;

impl Message {
    /// Parses one DCEP message (a whole SCTP user message with PPID 50).
    pub fn parse(buf: &[u8]) -> Result<Message, DcepError> {
        let (&kind, _) = buf.split_first().ok_or(DcepError::Truncated)?;
        match kind {
            MSG_ACK => Ok(Message::Ack),
            MSG_OPEN => {
                let head = buf.get(..OPEN_HEADER).ok_or(DcepError::Truncated)?;
                let be16 = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
                let channel_type = ChannelType::from_wire(
                    head[1],
                    u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
                )?;
                let priority = be16(2);
                let label_len = usize::from(be16(8));
                let proto_len = usize::from(be16(10));
                let body = &buf[OPEN_HEADER..];
                if body.len() < label_len + proto_len {
                    return Err(DcepError::Truncated);
                }
                let (label, rest) = body.split_at(label_len);
                let protocol = &rest[..proto_len];
                let label = String::from_utf8(label.to_vec()).map_err(|_| DcepError::Utf8)?;
                let protocol = String::from_utf8(protocol.to_vec()).map_err(|_| DcepError::Utf8)?;
                Ok(Message::Open(Open {
                    channel_type,
                    priority,
                    label,
                    protocol,
                }))
            }
            other => Err(DcepError::MessageType(other)),
        }
    }

    /// Encodes the message. Labels and protocols longer than 65535 bytes are refused.
    pub fn encode(&self) -> Result<Vec<u8>, DcepError> {
        match self {
            Message::Ack => Ok(vec![MSG_ACK]),
            Message::Open(o) => {
                let label_len = u16::try_from(o.label.len()).map_err(|_| DcepError::TooLong)?;
                let proto_len = u16::try_from(o.protocol.len()).map_err(|_| DcepError::TooLong)?;
                let (kind, param) = o.channel_type.to_wire();
                let mut out = Vec::with_capacity(OPEN_HEADER + o.label.len() + o.protocol.len());
                out.push(MSG_OPEN);
                out.push(kind);
                out.extend_from_slice(&o.priority.to_be_bytes());
                out.extend_from_slice(&param.to_be_bytes());
                out.extend_from_slice(&label_len.to_be_bytes());
                out.extend_from_slice(&proto_len.to_be_bytes());
                out.extend_from_slice(o.label.as_bytes());
                out.extend_from_slice(o.protocol.as_bytes());
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_vector_from_chromium() {
        // Chromium's DATA_CHANNEL_OPEN for createDataChannel("bar"): reliable, ordered,
        // priority 256, no protocol.
        let wire = [
            0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0x00, 0x00, b'b', b'a', b'r',
        ];
        let m = Message::parse(&wire).expect("valid");
        assert_eq!(
            m,
            Message::Open(Open {
                channel_type: ChannelType::RELIABLE,
                priority: 256,
                label: "bar".into(),
                protocol: String::new(),
            })
        );
        assert_eq!(m.encode().expect("encodes"), wire);
    }

    #[test]
    fn unordered_partial_reliability_round_trips() {
        for ct in [
            ChannelType {
                ordered: false,
                reliability: Reliability::MaxRetransmits(0),
            },
            ChannelType {
                ordered: true,
                reliability: Reliability::MaxLifetimeMs(1500),
            },
            ChannelType {
                ordered: false,
                reliability: Reliability::Reliable,
            },
        ] {
            let m = Message::Open(Open {
                channel_type: ct,
                priority: 128,
                label: "ü".into(),
                protocol: "chat".into(),
            });
            let wire = m.encode().expect("encodes");
            assert_eq!(Message::parse(&wire).expect("parses"), m);
        }
        let (kind, param) = ChannelType {
            ordered: false,
            reliability: Reliability::MaxRetransmits(0),
        }
        .to_wire();
        assert_eq!((kind, param), (0x81, 0));
    }

    #[test]
    fn ack_and_errors() {
        assert_eq!(Message::parse(&[0x02]), Ok(Message::Ack));
        assert_eq!(Message::Ack.encode().expect("encodes"), [0x02]);
        assert_eq!(Message::parse(&[]), Err(DcepError::Truncated));
        assert_eq!(Message::parse(&[0x07]), Err(DcepError::MessageType(7)));
        assert_eq!(Message::parse(&[0x03, 0]), Err(DcepError::Truncated));
        // label length 5 but only 3 bytes follow
        let bad = [0x03, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, b'a', b'b', b'c'];
        assert_eq!(Message::parse(&bad), Err(DcepError::Truncated));
        let bad_type = [0x03, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(Message::parse(&bad_type), Err(DcepError::ChannelType(5)));
        let bad_utf8 = [0x03, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff];
        assert_eq!(Message::parse(&bad_utf8), Err(DcepError::Utf8));
    }
}
