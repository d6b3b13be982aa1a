//! A send/receive pair of contexts keyed from SDES or DTLS-SRTP.

use crate::context::SrtpContext;
use crate::error::SrtpError;
use crate::profile::SrtpProfile;
use crate::sdes::SdesKey;

/// The TLS exporter label for DTLS-SRTP keying material (RFC 5764 §4.2).
pub const DTLS_SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Both directions of one SRTP session: `tx` protects what we send, `rx` unprotects what
/// we receive.
#[derive(Debug)]
pub struct SrtpSession {
    /// Outbound context (our key).
    pub tx: SrtpContext,
    /// Inbound context (the peer's key).
    pub rx: SrtpContext,
}

impl SrtpSession {
    /// SDES: we send with the key we put in our SDP, and receive with the key from theirs
    /// (RFC 4568 §6.1). Both must name the same suite.
    pub fn from_sdes(local: &SdesKey, remote: &SdesKey) -> Result<Self, SrtpError> {
        if local.profile != remote.profile {
            return Err(SrtpError::ProfileMismatch);
        }
        Ok(SrtpSession {
            tx: SrtpContext::new(local.profile, &local.key, &local.salt)?,
            rx: SrtpContext::new(remote.profile, &remote.key, &remote.salt)?,
        })
    }

    /// Octets of exporter output DTLS-SRTP needs for `profile`: two keys and two salts.
    pub fn dtls_keying_material_len(profile: SrtpProfile) -> usize {
        2 * (profile.master_key_len() + profile.master_salt_len())
    }

    /// DTLS-SRTP: split the exporter output (label [`DTLS_SRTP_EXPORTER_LABEL`]) as
    /// client_write_key | server_write_key | client_write_salt | server_write_salt
    /// (RFC 5764 §4.2). The DTLS client sends with the client key and salt.
    pub fn from_dtls(
        profile: SrtpProfile,
        keying_material: &[u8],
        is_dtls_client: bool,
    ) -> Result<Self, SrtpError> {
        let k = profile.master_key_len();
        let s = profile.master_salt_len();
        let expected = Self::dtls_keying_material_len(profile);
        if keying_material.len() != expected {
            return Err(SrtpError::BadKeyingMaterialLength {
                expected,
                got: keying_material.len(),
            });
        }
        let bad = SrtpError::BadKeyingMaterialLength {
            expected,
            got: keying_material.len(),
        };
        let client_key = keying_material.get(..k).ok_or(bad.clone())?;
        let server_key = keying_material.get(k..2 * k).ok_or(bad.clone())?;
        let client_salt = keying_material.get(2 * k..2 * k + s).ok_or(bad.clone())?;
        let server_salt = keying_material.get(2 * k + s..).ok_or(bad)?;
        let client = SrtpContext::new(profile, client_key, client_salt)?;
        let server = SrtpContext::new(profile, server_key, server_salt)?;
        Ok(if is_dtls_client {
            SrtpSession {
                tx: client,
                rx: server,
            }
        } else {
            SrtpSession {
                tx: server,
                rx: client,
            }
        })
    }

    /// [`SrtpContext::protect_rtp_in_place`] on `tx`.
    pub fn protect_rtp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.tx.protect_rtp_in_place(buf)
    }

    /// [`SrtpContext::unprotect_rtp_in_place`] on `rx`.
    pub fn unprotect_rtp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.rx.unprotect_rtp_in_place(buf)
    }

    /// [`SrtpContext::protect_rtcp_in_place`] on `tx`.
    pub fn protect_rtcp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.tx.protect_rtcp_in_place(buf)
    }

    /// [`SrtpContext::unprotect_rtcp_in_place`] on `rx`.
    pub fn unprotect_rtcp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.rx.unprotect_rtcp_in_place(buf)
    }
}
