//! RTCP writing.

use super::{
    nack, ReportBlock, RtcpPacket, SdesChunk, PT_APP, PT_BYE, PT_PSFB, PT_RR, PT_RTPFB, PT_SDES,
    PT_SR,
};
use crate::bytes::patch_u16;
use crate::error::RtcpError;

/// Appends the packets to `out` as one datagram. On error `out` is left as it was.
///
/// Bodies that are not a multiple of 4 bytes (APP data, unknown packets) get RTCP padding
/// with the P bit, so parsing the result yields the same values back.
pub fn write_compound(packets: &[RtcpPacket], out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let start = out.len();
    for p in packets {
        if let Err(e) = write_packet(p, out) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

fn count(n: usize, what: &'static str) -> Result<u8, RtcpError> {
    u8::try_from(n)
        .ok()
        .filter(|n| *n < 32)
        .ok_or(RtcpError::Unencodable(what))
}

fn write_packet(p: &RtcpPacket, out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let start = out.len();
    let (pt, fmt) = match p {
        RtcpPacket::SenderReport { reports, .. } => (PT_SR, count(reports.len(), "report count")?),
        RtcpPacket::ReceiverReport { reports, .. } => {
            (PT_RR, count(reports.len(), "report count")?)
        }
        RtcpPacket::Sdes(chunks) => (PT_SDES, count(chunks.len(), "SDES chunk count")?),
        RtcpPacket::Bye { ssrcs, .. } => (PT_BYE, count(ssrcs.len(), "BYE source count")?),
        RtcpPacket::App { subtype, .. } => (PT_APP, count(usize::from(*subtype), "APP subtype")?),
        RtcpPacket::Nack { .. } => (PT_RTPFB, 1),
        RtcpPacket::Pli { .. } => (PT_PSFB, 1),
        RtcpPacket::Fir { .. } => (PT_PSFB, 4),
        RtcpPacket::Other { pt, fmt, .. } => (*pt, count(usize::from(*fmt), "format")?),
    };
    out.extend_from_slice(&[0x80 | fmt, pt, 0, 0]);
    let body_start = out.len();
    let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_be_bytes());
    match p {
        RtcpPacket::SenderReport {
            ssrc,
            ntp,
            rtp_ts,
            packet_count,
            octet_count,
            reports,
        } => {
            put(out, *ssrc);
            out.extend_from_slice(&ntp.to_be_bytes());
            put(out, *rtp_ts);
            put(out, *packet_count);
            put(out, *octet_count);
            report_blocks(reports, out);
        }
        RtcpPacket::ReceiverReport { ssrc, reports } => {
            put(out, *ssrc);
            report_blocks(reports, out);
        }
        RtcpPacket::Sdes(chunks) => sdes(chunks, out)?,
        RtcpPacket::Bye { ssrcs, reason } => {
            for s in ssrcs {
                put(out, *s);
            }
            if let Some(reason) = reason {
                let len =
                    u8::try_from(reason.len()).map_err(|_| RtcpError::Unencodable("BYE reason"))?;
                out.push(len);
                out.extend_from_slice(reason.as_bytes());
                zero_pad(out, body_start);
            }
        }
        RtcpPacket::App {
            ssrc, name, data, ..
        } => {
            put(out, *ssrc);
            out.extend_from_slice(name);
            out.extend_from_slice(data);
        }
        RtcpPacket::Nack {
            sender_ssrc,
            media_ssrc,
            lost,
        } => {
            put(out, *sender_ssrc);
            put(out, *media_ssrc);
            for (pid, blp) in nack::compress(lost) {
                out.extend_from_slice(&pid.to_be_bytes());
                out.extend_from_slice(&blp.to_be_bytes());
            }
        }
        RtcpPacket::Pli {
            sender_ssrc,
            media_ssrc,
        } => {
            put(out, *sender_ssrc);
            put(out, *media_ssrc);
        }
        RtcpPacket::Fir {
            sender_ssrc,
            entries,
        } => {
            put(out, *sender_ssrc);
            put(out, 0);
            for (ssrc, seq) in entries {
                put(out, *ssrc);
                out.extend_from_slice(&[*seq, 0, 0, 0]);
            }
        }
        RtcpPacket::Other { body, .. } => out.extend_from_slice(body),
    }
    let unaligned = (out.len() - body_start) % 4;
    if unaligned != 0 {
        let pad = 4 - unaligned;
        out.extend(std::iter::repeat(0).take(pad - 1));
        out.push(pad as u8);
        if let Some(b0) = out.get_mut(start) {
            *b0 |= 0x20;
        }
    }
    let words = (out.len() - start) / 4 - 1;
    let words = u16::try_from(words).map_err(|_| RtcpError::Unencodable("packet too long"))?;
    patch_u16(out, start + 2, words);
    Ok(())
}

fn zero_pad(out: &mut Vec<u8>, body_start: usize) {
    while (out.len() - body_start) % 4 != 0 {
        out.push(0);
    }
}

fn report_blocks(reports: &[ReportBlock], out: &mut Vec<u8>) {
    for b in reports {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out.extend_from_slice(&(u32::from(b.fraction_lost) << 24 | lost).to_be_bytes());
        for v in [b.highest_seq, b.jitter, b.lsr, b.dlsr] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

fn sdes(chunks: &[SdesChunk], out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let body_start = out.len();
    for c in chunks {
        out.extend_from_slice(&c.ssrc.to_be_bytes());
        for (kind, value) in &c.items {
            if *kind == 0 {
                return Err(RtcpError::Unencodable("SDES item type 0"));
            }
            let len = u8::try_from(value.len())
                .map_err(|_| RtcpError::Unencodable("SDES item length"))?;
            out.push(*kind);
            out.push(len);
            out.extend_from_slice(value);
        }
        // At least one null octet ends the item list, then pad to 32 bits.
        out.push(0);
        zero_pad(out, body_start);
    }
    Ok(())
}
