//! RTCP parsing.

use super::{
    nack, ReportBlock, RtcpPacket, SdesChunk, MAX_NACK_FCI, MAX_PACKETS, PT_APP, PT_BYE, PT_PSFB,
    PT_RR, PT_RTPFB, PT_SDES, PT_SR,
};
use crate::bytes::Reader;
use crate::error::RtcpError;

/// Parses an RTCP datagram into its packets.
///
/// Without `reduced_size_ok` the datagram must be compound and start with SR or RR
/// (RFC 3550 §6.1 / A.2). With it, any sequence of packets is accepted (RFC 5506 §3.4.2),
/// which covers a lone NACK/PLI as well as ordinary compounds.
pub fn parse_compound(buf: &[u8], reduced_size_ok: bool) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if out.len() >= MAX_PACKETS {
            return Err(RtcpError::TooMany);
        }
        let (pkt, tail) = split_packet(rest)?;
        if out.is_empty() && !reduced_size_ok && !matches!(pt_of(pkt), PT_SR | PT_RR) {
            return Err(RtcpError::NotCompound);
        }
        out.push(parse_packet(pkt)?);
        rest = tail;
    }
    Ok(out)
}

fn pt_of(pkt: &[u8]) -> u8 {
    pkt.get(1).copied().unwrap_or(0)
}

/// Splits the first packet (as its length field says) off `buf`.
fn split_packet(buf: &[u8]) -> Result<(&[u8], &[u8]), RtcpError> {
    let mut r = Reader::new(buf);
    let b0 = r.u8().ok_or(RtcpError::Truncated)?;
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion(version));
    }
    r.u8().ok_or(RtcpError::Truncated)?;
    let words = r.u16().ok_or(RtcpError::Truncated)?;
    let len = (usize::from(words) + 1) * 4;
    if len > buf.len() {
        return Err(RtcpError::Truncated);
    }
    Ok(buf.split_at(len))
}

/// Parses exactly one RTCP packet; `buf` must be that packet and nothing more.
pub fn parse_packet(buf: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let (pkt, tail) = split_packet(buf)?;
    if !tail.is_empty() {
        return Err(RtcpError::BadLength(pt_of(buf)));
    }
    let mut r = Reader::new(pkt);
    let b0 = r.u8().ok_or(RtcpError::Truncated)?;
    let pt = r.u8().ok_or(RtcpError::Truncated)?;
    r.u16().ok_or(RtcpError::Truncated)?;
    let count = b0 & 0x1f;
    let mut body = r.rest();
    if b0 & 0x20 != 0 {
        let pad = body.last().copied().unwrap_or(0);
        if pad == 0 || usize::from(pad) > body.len() {
            return Err(RtcpError::BadPadding(pad));
        }
        body = body.get(..body.len() - usize::from(pad)).unwrap_or(&[]);
    }
    let mut r = Reader::new(body);
    let short = RtcpError::Truncated;
    let packet = match (pt, count) {
        (PT_SR, _) => RtcpPacket::SenderReport {
            ssrc: r.u32().ok_or(short)?,
            ntp: r.u64().ok_or(short)?,
            rtp_ts: r.u32().ok_or(short)?,
            packet_count: r.u32().ok_or(short)?,
            octet_count: r.u32().ok_or(short)?,
            reports: report_blocks(&mut r, count)?,
        },
        (PT_RR, _) => RtcpPacket::ReceiverReport {
            ssrc: r.u32().ok_or(short)?,
            reports: report_blocks(&mut r, count)?,
        },
        (PT_SDES, _) => RtcpPacket::Sdes(sdes(body, count)?),
        (PT_BYE, _) => bye(&mut r, count)?,
        (PT_APP, _) => {
            let ssrc = r.u32().ok_or(short)?;
            let name: [u8; 4] = r.take(4).and_then(|n| n.try_into().ok()).ok_or(short)?;
            RtcpPacket::App {
                subtype: count,
                ssrc,
                name,
                data: r.rest().to_vec(),
            }
        }
        (PT_RTPFB, 1) => {
            let sender_ssrc = r.u32().ok_or(short)?;
            let media_ssrc = r.u32().ok_or(short)?;
            let fci = r.rest();
            if fci.len() % 4 != 0 {
                return Err(RtcpError::BadLength(pt));
            }
            if fci.len() / 4 > MAX_NACK_FCI {
                return Err(RtcpError::TooMany);
            }
            let mut lost = Vec::with_capacity(fci.len() / 4);
            while r.remaining() >= 4 {
                let pid = r.u16().ok_or(short)?;
                let blp = r.u16().ok_or(short)?;
                nack::expand(pid, blp, &mut lost);
            }
            RtcpPacket::Nack {
                sender_ssrc,
                media_ssrc,
                lost,
            }
        }
        (PT_PSFB, 1) => RtcpPacket::Pli {
            sender_ssrc: r.u32().ok_or(short)?,
            media_ssrc: r.u32().ok_or(short)?,
        },
        (PT_PSFB, 4) => {
            let sender_ssrc = r.u32().ok_or(short)?;
            // RFC 5104 §4.3.1.2: the media source field is unused and set to 0; the
            // targets are in the FCI entries.
            r.u32().ok_or(short)?;
            if r.remaining() % 8 != 0 {
                return Err(RtcpError::BadLength(pt));
            }
            let mut entries = Vec::with_capacity(r.remaining() / 8);
            while r.remaining() >= 8 {
                let ssrc = r.u32().ok_or(short)?;
                let seq = r.u8().ok_or(short)?;
                r.take(3).ok_or(short)?;
                entries.push((ssrc, seq));
            }
            RtcpPacket::Fir {
                sender_ssrc,
                entries,
            }
        }
        _ => RtcpPacket::Other {
            pt,
            fmt: count,
            body: body.to_vec(),
        },
    };
    Ok(packet)
}

fn report_blocks(r: &mut Reader<'_>, count: u8) -> Result<Vec<ReportBlock>, RtcpError> {
    let n = usize::from(count);
    if r.remaining() < n * 24 {
        return Err(RtcpError::Truncated);
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let ssrc = r.u32().ok_or(RtcpError::Truncated)?;
        let lost_word = r.u32().ok_or(RtcpError::Truncated)?;
        out.push(ReportBlock {
            ssrc,
            fraction_lost: (lost_word >> 24) as u8,
            // Sign-extend the 24-bit field.
            cumulative_lost: ((lost_word << 8) as i32) >> 8,
            highest_seq: r.u32().ok_or(RtcpError::Truncated)?,
            jitter: r.u32().ok_or(RtcpError::Truncated)?,
            lsr: r.u32().ok_or(RtcpError::Truncated)?,
            dlsr: r.u32().ok_or(RtcpError::Truncated)?,
        });
    }
    Ok(out)
}

fn sdes(body: &[u8], count: u8) -> Result<Vec<SdesChunk>, RtcpError> {
    let mut r = Reader::new(body);
    let mut chunks = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let ssrc = r.u32().ok_or(RtcpError::Truncated)?;
        let mut items = Vec::new();
        loop {
            let kind = r.u8().ok_or(RtcpError::Truncated)?;
            if kind == 0 {
                // The terminating null plus padding up to the next 32-bit boundary; the
                // body starts aligned, so alignment is relative to it.
                let used = body.len() - r.remaining();
                let pad = (4 - used % 4) % 4;
                r.take(pad).ok_or(RtcpError::Truncated)?;
                break;
            }
            let len = r.u8().ok_or(RtcpError::Truncated)?;
            let value = r.take(usize::from(len)).ok_or(RtcpError::Truncated)?;
            items.push((kind, value.to_vec()));
        }
        chunks.push(SdesChunk { ssrc, items });
    }
    Ok(chunks)
}

fn bye(r: &mut Reader<'_>, count: u8) -> Result<RtcpPacket, RtcpError> {
    let mut ssrcs = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        ssrcs.push(r.u32().ok_or(RtcpError::Truncated)?);
    }
    let reason = match r.u8() {
        None => None,
        Some(len) => {
            let text = r.take(usize::from(len)).ok_or(RtcpError::Truncated)?;
            let mut s = String::from_utf8_lossy(text).into_owned();
            // Replacement characters can grow the text past what the length byte can
            // carry; cut at a character boundary so writing it back cannot fail.
            while s.len() > 255 {
                s.pop();
            }
            Some(s)
        }
    };
    Ok(RtcpPacket::Bye { ssrcs, reason })
}
