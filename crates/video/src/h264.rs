//! H.264 RTP payload format, packetization mode 1 (RFC 6184): single NAL unit packets,
//! STAP-A aggregation of small NAL units (SPS/PPS before a key frame) and FU-A fragments
//! for NAL units larger than the payload size. Frames go in and out in Annex B form
//! (start-code separated), as encoders emit and decoders take them.

use crate::VideoError;

/// NAL unit type of STAP-A.
pub const STAP_A: u8 = 24;
/// NAL unit type of FU-A.
pub const FU_A: u8 = 28;
/// NAL unit type of an IDR slice.
pub const IDR: u8 = 5;

const START: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of an Annex B byte stream (start codes of 3 or 4 bytes), without their
/// start codes. Bytes before the first start code are ignored.
pub fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code's leading zero belongs to it, not to the NAL before.
        while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        if end > s {
            out.push(&data[s..end]);
        }
    }
    out
}

/// The payloads of one access unit (Annex B), in order; the last one carries the marker.
/// NAL units that fit are aggregated into STAP-A packets while they fit together.
pub fn packetize(annex_b: &[u8], max_payload: usize) -> Vec<Vec<u8>> {
    let max = max_payload.max(16);
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut stap: Vec<&[u8]> = Vec::new();
    let flush = |stap: &mut Vec<&[u8]>, out: &mut Vec<Vec<u8>>| {
        match stap.len() {
            0 => {}
            1 => out.push(stap[0].to_vec()),
            _ => {
                let nri = stap.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
                let mut p = vec![nri | STAP_A];
                for n in stap.iter() {
                    p.extend_from_slice(&(n.len() as u16).to_be_bytes());
                    p.extend_from_slice(n);
                }
                out.push(p);
            }
        }
        stap.clear();
    };
    for nal in split_annex_b(annex_b) {
        if nal.len() > max {
            flush(&mut stap, &mut out);
            let (hdr, body) = (nal[0], &nal[1..]);
            let chunks: Vec<&[u8]> = body.chunks(max - 2).collect();
            let last = chunks.len().saturating_sub(1);
            for (i, c) in chunks.iter().enumerate() {
                let mut fu_header = hdr & 0x1f;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i == last {
                    fu_header |= 0x40;
                }
                let mut p = Vec::with_capacity(c.len() + 2);
                p.push((hdr & 0xe0) | FU_A);
                p.push(fu_header);
                p.extend_from_slice(c);
                out.push(p);
            }
            continue;
        }
        let stap_len = 1 + stap.iter().map(|n| n.len() + 2).sum::<usize>() + nal.len() + 2;
        if stap_len > max {
            flush(&mut stap, &mut out);
        }
        stap.push(nal);
    }
    flush(&mut stap, &mut out);
    out
}

/// Joins one access unit's payloads (in sequence order) into Annex B. Fragments must be
/// complete (start, middle, end without gaps); STAP-A units are unpacked.
pub fn depacketize(payloads: &[&[u8]]) -> Result<Vec<u8>, VideoError> {
    let mut out = Vec::new();
    let mut in_fu = false;
    for p in payloads {
        let h = *p.first().ok_or(VideoError::Truncated("H.264 payload"))?;
        if h & 0x80 != 0 {
            return Err(VideoError::Invalid("H.264 forbidden_zero_bit"));
        }
        match h & 0x1f {
            0 | 30 | 31 => return Err(VideoError::Invalid("H.264 NAL unit type")),
            STAP_A => {
                if in_fu {
                    return Err(VideoError::Invalid("STAP-A inside FU-A"));
                }
                let mut rest = &p[1..];
                if rest.is_empty() {
                    return Err(VideoError::Truncated("STAP-A"));
                }
                while !rest.is_empty() {
                    let len = match rest {
                        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
                        _ => return Err(VideoError::Truncated("STAP-A size")),
                    };
                    let nal = rest
                        .get(2..2 + len)
                        .filter(|n| !n.is_empty())
                        .ok_or(VideoError::Truncated("STAP-A unit"))?;
                    out.extend_from_slice(&START);
                    out.extend_from_slice(nal);
                    rest = &rest[2 + len..];
                }
            }
            FU_A => {
                let fh = *p.get(1).ok_or(VideoError::Truncated("FU-A header"))?;
                let (start, end) = (fh & 0x80 != 0, fh & 0x40 != 0);
                if start == in_fu {
                    return Err(VideoError::Invalid("FU-A fragment out of order"));
                }
                if start {
                    out.extend_from_slice(&START);
                    out.push((h & 0xe0) | (fh & 0x1f));
                    in_fu = true;
                }
                out.extend_from_slice(&p[2..]);
                if end {
                    in_fu = false;
                }
            }
            25..=29 => return Err(VideoError::Invalid("STAP-B/MTAP/FU-B (not mode 1)")),
            _ => {
                if in_fu {
                    return Err(VideoError::Invalid("NAL unit inside FU-A"));
                }
                out.extend_from_slice(&START);
                out.extend_from_slice(p);
            }
        }
    }
    if in_fu {
        return Err(VideoError::Truncated("FU-A without its end"));
    }
    if out.is_empty() {
        return Err(VideoError::Truncated("H.264 access unit"));
    }
    Ok(out)
}

/// Whether one payload carries (the start of) an IDR slice or an SPS, i.e. a key frame.
pub fn is_keyframe_payload(p: &[u8]) -> bool {
    let Some(&h) = p.first() else { return false };
    match h & 0x1f {
        IDR | 7 => true,
        STAP_A => p.get(3).is_some_and(|n| matches!(n & 0x1f, IDR | 7)),
        FU_A => p.get(1).is_some_and(|f| f & 0x80 != 0 && f & 0x1f == IDR),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0x8c]); // SPS
        v.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]); // PPS
        v.extend_from_slice(&[0, 0, 0, 1, 0x65]); // IDR, 3000 bytes
        v.extend((0..2999u32).map(|i| (i % 251) as u8 | 1));
        v.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9a, 0x02]); // small non-IDR slice
        v
    }

    #[test]
    fn annex_b_split() {
        let v = [0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2];
        assert_eq!(split_annex_b(&v), vec![&[0x67, 1][..], &[0x68, 2][..]]);
    }

    #[test]
    fn stap_a_and_fu_a_round_trip() {
        let a = au();
        let p = packetize(&a, 1200);
        // STAP-A(SPS,PPS), 3 FU-A, single NAL.
        assert_eq!(p.len(), 5);
        assert_eq!(p[0][0] & 0x1f, STAP_A);
        assert_eq!(&p[0][1..3], &[0, 5]);
        assert_eq!(p[1][0], 0x60 | FU_A);
        assert_eq!(p[1][1], 0x80 | IDR);
        assert_eq!(p[3][1], 0x40 | IDR);
        assert_eq!(p[4], [0x41, 0x9a, 0x02]);
        assert!(p.iter().all(|x| x.len() <= 1200));
        assert!(is_keyframe_payload(&p[0]) && is_keyframe_payload(&p[1]));
        assert!(!is_keyframe_payload(&p[2]) && !is_keyframe_payload(&p[4]));
        let refs: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
        assert_eq!(depacketize(&refs), Ok(a));
        // A lost first or last fragment breaks the FU-A chain (middle losses are the
        // assembler's to see, from sequence numbers).
        assert!(depacketize(&[refs[0], refs[2], refs[3]]).is_err());
        assert!(depacketize(&[refs[0], refs[1], refs[2]]).is_err());
        assert!(depacketize(&[refs[2]]).is_err());
        assert!(depacketize(&[&[0x18, 0, 9, 1][..]]).is_err());
    }
}
