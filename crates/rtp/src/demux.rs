//! Telling apart the protocols that share one media port.
//!
//! RFC 7983 §7 assigns disjoint ranges of the first byte to STUN, DTLS and RTP/RTCP, and
//! RFC 5761 §4 separates RTP from multiplexed RTCP by the second byte: RTCP packet types
//! 192..=223 would be RTP payload types 64..=95 with the marker bit set, which RFC 5761
//! forbids for dynamic payload types sharing a port with RTCP.

/// What a datagram on a multiplexed port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// RTP (version 2, second byte outside the RTCP range).
    Rtp,
    /// RTCP (version 2, packet type 192..=223).
    Rtcp,
    /// STUN (first byte 0..=3).
    Stun,
    /// DTLS record (first byte 20..=63).
    Dtls,
    /// Anything else: ZRTP, TURN channel data, garbage.
    Unknown,
}

/// Classifies a datagram by its first two bytes; never fails.
pub fn classify(buf: &[u8]) -> Kind {
    match buf.first().copied() {
        Some(0..=3) => Kind::Stun,
        Some(20..=63) => Kind::Dtls,
        Some(128..=191) => match buf.get(1).copied() {
            Some(192..=223) => Kind::Rtcp,
            Some(_) => Kind::Rtp,
            None => Kind::Unknown,
        },
        _ => Kind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(classify(&[]), Kind::Unknown);
        assert_eq!(classify(&[0x00, 0x01]), Kind::Stun);
        assert_eq!(classify(&[0x03]), Kind::Stun);
        assert_eq!(classify(&[4]), Kind::Unknown);
        assert_eq!(classify(&[16]), Kind::Unknown); // ZRTP
        assert_eq!(classify(&[19]), Kind::Unknown);
        assert_eq!(classify(&[20]), Kind::Dtls);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), Kind::Dtls);
        assert_eq!(classify(&[63]), Kind::Dtls);
        assert_eq!(classify(&[64, 0]), Kind::Unknown); // TURN channel
        assert_eq!(classify(&[79, 0]), Kind::Unknown);
        assert_eq!(classify(&[0x80]), Kind::Unknown);
        assert_eq!(classify(&[0x80, 0]), Kind::Rtp);
        assert_eq!(classify(&[0x80, 111]), Kind::Rtp);
        assert_eq!(classify(&[0x80, 0x80 | 111]), Kind::Rtp);
        assert_eq!(classify(&[0x80, 191]), Kind::Rtp);
        assert_eq!(classify(&[0x80, 192]), Kind::Rtcp);
        assert_eq!(classify(&[0x81, 200]), Kind::Rtcp);
        assert_eq!(classify(&[0x81, 206]), Kind::Rtcp);
        assert_eq!(classify(&[0xbf, 223]), Kind::Rtcp);
        assert_eq!(classify(&[0x80, 224]), Kind::Rtp);
        assert_eq!(classify(&[0xc0, 200]), Kind::Unknown); // version 3
        assert_eq!(classify(&[0x40, 200]), Kind::Unknown); // version 1 (TURN channel range)
    }
}
