//! VP8 RTP payload format (RFC 7741): the payload descriptor, a packetizer that splits an
//! encoded frame into MTU-sized payloads, and a depacketizer that joins a frame's payloads.
//!
//! We always write the extended descriptor with a 15-bit PictureID (what Chromium sends):
//! it lets the receiver tell lost frames from reordered ones.

use crate::VideoError;

/// The payload descriptor at the start of each VP8 RTP payload (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// N: the frame is not used as a reference.
    pub non_reference: bool,
    /// S: first packet of a VP8 partition.
    pub start: bool,
    /// PID: partition index (0..=7).
    pub partition: u8,
    /// PictureID (7 or 15 bits), when present.
    pub picture_id: Option<u16>,
    /// The PictureID was written with the long (15-bit) form.
    pub long_picture_id: bool,
    /// TL0PICIDX, when present.
    pub tl0_pic_idx: Option<u8>,
    /// TID (2 bits) and layer sync bit Y, when present.
    pub tid: Option<(u8, bool)>,
    /// KEYIDX (5 bits), when present.
    pub key_idx: Option<u8>,
}

impl Vp8Descriptor {
    /// Parses the descriptor; returns it and its length in bytes. Never panics.
    pub fn parse(p: &[u8]) -> Result<(Vp8Descriptor, usize), VideoError> {
        let b0 = *p.first().ok_or(VideoError::Truncated("VP8 descriptor"))?;
        let mut d = Vp8Descriptor {
            non_reference: b0 & 0x20 != 0,
            start: b0 & 0x10 != 0,
            partition: b0 & 0x07,
            ..Vp8Descriptor::default()
        };
        let mut i = 1;
        let next = |i: &mut usize| -> Result<u8, VideoError> {
            let v = *p.get(*i).ok_or(VideoError::Truncated("VP8 descriptor"))?;
            *i += 1;
            Ok(v)
        };
        if b0 & 0x80 != 0 {
            let x = next(&mut i)?;
            if x & 0x80 != 0 {
                let m = next(&mut i)?;
                if m & 0x80 != 0 {
                    let lo = next(&mut i)?;
                    d.picture_id = Some(u16::from(m & 0x7f) << 8 | u16::from(lo));
                    d.long_picture_id = true;
                } else {
                    d.picture_id = Some(u16::from(m));
                }
            }
            if x & 0x40 != 0 {
                d.tl0_pic_idx = Some(next(&mut i)?);
            }
            if x & 0x30 != 0 {
                let t = next(&mut i)?;
                if x & 0x20 != 0 {
                    d.tid = Some((t >> 6, t & 0x20 != 0));
                }
                if x & 0x10 != 0 {
                    d.key_idx = Some(t & 0x1f);
                }
            }
        }
        Ok((d, i))
    }

    /// Appends the descriptor's bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        let ext = self.picture_id.is_some()
            || self.tl0_pic_idx.is_some()
            || self.tid.is_some()
            || self.key_idx.is_some();
        let mut b0 = self.partition & 0x07;
        if ext {
            b0 |= 0x80;
        }
        if self.non_reference {
            b0 |= 0x20;
        }
        if self.start {
            b0 |= 0x10;
        }
        out.push(b0);
        if !ext {
            return;
        }
        let mut x = 0u8;
        if self.picture_id.is_some() {
            x |= 0x80;
        }
        if self.tl0_pic_idx.is_some() {
            x |= 0x40;
        }
        if self.tid.is_some() {
            x |= 0x20;
        }
        if self.key_idx.is_some() {
            x |= 0x10;
        }
        out.push(x);
        if let Some(pid) = self.picture_id {
            if self.long_picture_id || pid > 0x7f {
                out.push(0x80 | ((pid >> 8) & 0x7f) as u8);
                out.push(pid as u8);
            } else {
                out.push(pid as u8);
            }
        }
        if let Some(t) = self.tl0_pic_idx {
            out.push(t);
        }
        if self.tid.is_some() || self.key_idx.is_some() {
            let (tid, y) = self.tid.unwrap_or((0, false));
            let mut t = (tid & 3) << 6 | self.key_idx.unwrap_or(0) & 0x1f;
            if y {
                t |= 0x20;
            }
            out.push(t);
        }
    }
}

/// Whether a VP8 payload (descriptor included) starts a key frame: S=1, PID=0 and the
/// inverse key-frame bit P of the VP8 payload header clear (RFC 7741 §4.3).
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    match Vp8Descriptor::parse(payload) {
        Ok((d, n)) => d.start && d.partition == 0 && payload.get(n).is_some_and(|b| b & 0x01 == 0),
        Err(_) => false,
    }
}

/// Width and height from a key frame's uncompressed header (RFC 6386 §9.1), if `frame`
/// (descriptor stripped) is one.
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w, h))
}

/// Splits encoded frames into RTP payloads, numbering pictures with a 15-bit PictureID.
#[derive(Debug, Clone)]
pub struct Vp8Packetizer {
    /// Largest payload (descriptor included) to produce.
    pub max_payload: usize,
    picture_id: u16,
}

impl Vp8Packetizer {
    /// A packetizer producing payloads of at most `max_payload` bytes (at least 8).
    pub fn new(max_payload: usize, first_picture_id: u16) -> Self {
        Vp8Packetizer {
            max_payload: max_payload.max(8),
            picture_id: first_picture_id & 0x7fff,
        }
    }

    /// The payloads of one frame, in order; the last one carries the RTP marker bit.
    /// The whole frame is sent as partition 0 (non-partitioned mode).
    pub fn packetize(&mut self, frame: &[u8]) -> Vec<Vec<u8>> {
        let pid = self.picture_id;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let mut desc = Vp8Descriptor {
            start: true,
            picture_id: Some(pid),
            long_picture_id: true,
            ..Vp8Descriptor::default()
        };
        let room = self.max_payload - 4;
        let mut out = Vec::with_capacity(frame.len() / room + 1);
        let mut chunks = frame.chunks(room).peekable();
        if chunks.peek().is_none() {
            // An empty frame still takes one packet, so the receiver sees the picture.
            let mut p = Vec::with_capacity(4);
            desc.write(&mut p);
            out.push(p);
        }
        for c in chunks {
            let mut p = Vec::with_capacity(c.len() + 4);
            desc.write(&mut p);
            p.extend_from_slice(c);
            out.push(p);
            desc.start = false;
        }
        out
    }
}

/// Joins one frame's payloads (in sequence order) into the encoded VP8 frame.
///
/// The first payload must start partition 0 (S=1, PID=0); the others must belong to the same
/// picture (same PictureID when present). Anything else means a packet is missing.
pub fn depacketize(payloads: &[&[u8]]) -> Result<Vec<u8>, VideoError> {
    let mut out = Vec::with_capacity(payloads.iter().map(|p| p.len()).sum());
    let mut picture = None;
    for (i, p) in payloads.iter().enumerate() {
        let (d, n) = Vp8Descriptor::parse(p)?;
        if i == 0 {
            if !(d.start && d.partition == 0) {
                return Err(VideoError::Invalid("VP8 frame does not start partition 0"));
            }
            picture = d.picture_id;
        } else if d.picture_id != picture {
            return Err(VideoError::Invalid("VP8 PictureID changes inside a frame"));
        }
        out.extend_from_slice(p.get(n..).unwrap_or_default());
    }
    if out.is_empty() {
        return Err(VideoError::Truncated("VP8 frame"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7741_descriptor_bytes() {
        // X=1 S=1, I=1 L=1 T=1 K=1, M=1 PictureID 0x1234, TL0PICIDX 7, TID 2 Y KEYIDX 5.
        let d = Vp8Descriptor {
            start: true,
            picture_id: Some(0x1234),
            long_picture_id: true,
            tl0_pic_idx: Some(7),
            tid: Some((2, true)),
            key_idx: Some(5),
            ..Vp8Descriptor::default()
        };
        let mut b = Vec::new();
        d.write(&mut b);
        assert_eq!(b, [0x90, 0xf0, 0x92, 0x34, 0x07, 0xa5]);
        assert_eq!(Vp8Descriptor::parse(&b), Ok((d, 6)));
        // Short PictureID and the minimal descriptor.
        assert_eq!(
            Vp8Descriptor::parse(&[0x90, 0x80, 0x05]).map(|(d, n)| (d.picture_id, n)),
            Ok((Some(5), 3))
        );
        assert_eq!(
            Vp8Descriptor::parse(&[0x10]).map(|(d, n)| (d.start, n)),
            Ok((true, 1))
        );
        assert!(Vp8Descriptor::parse(&[0x90, 0x80]).is_err());
        assert!(Vp8Descriptor::parse(&[]).is_err());
    }

    #[test]
    fn packetize_round_trip_and_marker_split() {
        let frame: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8 & 0xfe).collect();
        let mut p = Vp8Packetizer::new(1200, 0x7fff);
        let payloads = p.packetize(&frame);
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|x| x.len() <= 1200));
        assert!(is_keyframe_start(&payloads[0]));
        assert!(!is_keyframe_start(&payloads[1]));
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        assert_eq!(depacketize(&refs).as_deref(), Ok(frame.as_slice()));
        // Missing first packet: refused.
        assert!(depacketize(&refs[1..]).is_err());
        // PictureID wraps at 15 bits.
        let next = p.packetize(&[1, 2, 3]);
        assert_eq!(
            Vp8Descriptor::parse(&next[0]).map(|(d, _)| d.picture_id),
            Ok(Some(0))
        );
    }

    #[test]
    fn keyframe_header_size() {
        let kf = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        assert_eq!(keyframe_size(&kf), Some((320, 240)));
        assert_eq!(keyframe_size(&kf[..9]), None);
    }
}
