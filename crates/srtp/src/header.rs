//! Just enough RTP/RTCP header parsing to find what SRTP needs: the SSRC, the sequence
//! number and where the encrypted portion starts. Kept local so this crate depends on no
//! other natter crate.

use crate::error::SrtpError;

/// Fields of an RTP header relevant to SRTP.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpHeader {
    /// Octets of fixed header + CSRCs + header extension: the cleartext (and for GCM, the
    /// associated data).
    pub len: usize,
    pub seq: u16,
    pub ssrc: u32,
}

/// Parse the RTP header at the start of `pkt` (which must not include any SRTP tag).
pub(crate) fn parse_rtp(pkt: &[u8]) -> Result<RtpHeader, SrtpError> {
    let fixed: &[u8; 12] = pkt
        .get(..12)
        .and_then(|s| s.try_into().ok())
        .ok_or(SrtpError::TooShort)?;
    if fixed[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let cc = usize::from(fixed[0] & 0x0f);
    let mut len = 12 + 4 * cc;
    if fixed[0] & 0x10 != 0 {
        let ext = pkt.get(len..len + 4).ok_or(SrtpError::Malformed)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        len += 4 + 4 * words;
    }
    if len > pkt.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(RtpHeader {
        len,
        seq: u16::from_be_bytes([fixed[2], fixed[3]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
    })
}

/// Octets of RTCP left in the clear by SRTCP: the first header and the sender SSRC.
pub(crate) const RTCP_CLEAR_LEN: usize = 8;

/// The sender SSRC of an RTCP (compound) packet.
pub(crate) fn parse_rtcp_ssrc(pkt: &[u8]) -> Result<u32, SrtpError> {
    let h: &[u8; 8] = pkt
        .get(..RTCP_CLEAR_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(SrtpError::TooShort)?;
    if h[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    Ok(u32::from_be_bytes([h[4], h[5], h[6], h[7]]))
}
