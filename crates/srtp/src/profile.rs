//! The four SRTP protection profiles this crate implements and their parameters.

/// An SRTP protection profile ("crypto suite" in SDES terms).
///
/// Only the profiles a modern softphone needs are here: the mandatory-to-implement
/// AES-CM/HMAC-SHA1 pair (RFC 3711, RFC 4568, RFC 5764) and the AEAD AES-GCM pair
/// (RFC 7714). NULL ciphers and F8 are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// AES-128 counter mode, HMAC-SHA1 truncated to 80 bits.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 truncated to 32 bits for SRTP (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
    /// AES-128 GCM with a 16-octet tag (RFC 7714).
    AeadAes128Gcm,
    /// AES-256 GCM with a 16-octet tag (RFC 7714).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every profile, in order of preference for offers (GCM first: cheaper and stronger).
    pub const ALL: [SrtpProfile; 4] = [
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ];

    /// The crypto-suite name used in SDP `a=crypto` (RFC 4568 §6.2, RFC 7714 §14.1).
    pub fn sdes_name(self) -> &'static str {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpProfile::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Inverse of [`SrtpProfile::sdes_name`]; suite names are case-sensitive in RFC 4568.
    pub fn from_sdes_name(name: &str) -> Option<SrtpProfile> {
        SrtpProfile::ALL.into_iter().find(|p| p.sdes_name() == name)
    }

    /// The DTLS `use_srtp` protection profile id (RFC 5764 §4.1.2, RFC 7714 §14.2).
    pub fn dtls_id(self) -> u16 {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => 0x0001,
            SrtpProfile::AesCm128HmacSha1_32 => 0x0002,
            SrtpProfile::AeadAes128Gcm => 0x0007,
            SrtpProfile::AeadAes256Gcm => 0x0008,
        }
    }

    /// Inverse of [`SrtpProfile::dtls_id`].
    pub fn from_dtls_id(id: u16) -> Option<SrtpProfile> {
        SrtpProfile::ALL.into_iter().find(|p| p.dtls_id() == id)
    }

    /// Master (and session) encryption key length in octets.
    pub fn master_key_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master (and session) salt length in octets: 112 bits for AES-CM, 96 bits for GCM.
    pub fn master_salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Octets appended to an SRTP packet.
    pub fn rtp_auth_tag_len(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => 10,
            SrtpProfile::AesCm128HmacSha1_32 => 4,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 16,
        }
    }

    /// Octets of tag on an SRTCP packet: the `_32` suite still uses an 80-bit tag for SRTCP
    /// (RFC 5764 §4.1.2), because RTCP is rare enough that the bandwidth saving is moot.
    pub fn rtcp_auth_tag_len(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 | SrtpProfile::AesCm128HmacSha1_32 => 10,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 16,
        }
    }

    /// Whether this is an AEAD (GCM) profile.
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm
        )
    }

    /// Session authentication key length (HMAC-SHA1 key, 160 bits); zero for AEAD.
    pub(crate) fn auth_key_len(self) -> usize {
        if self.is_aead() {
            0
        } else {
            20
        }
    }
}

impl std::fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sdes_name())
    }
}
